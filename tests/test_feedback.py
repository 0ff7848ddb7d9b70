"""What a student sees when a check runs: one line for a stub, a short message for a failure, Run All
that goes on, demos that borrow course_lib's version until the student's passes, widgets that display, and
a self-grading cell at the end of every released notebook."""

from __future__ import annotations

import nbclient
import nbformat
import pytest

from course_lib import __main__ as cli
from course_lib import checks, welcome, widgets
from course_lib.checks import welcome as check
from course_lib.toolchain.notebook_files import read
from course_lib.toolchain.release import release_notebook
from course_lib.utils import NOTEBOOKS_DIR, REPO_DIR, SOLUTIONS_DIR, grading_dir


def stub(text):
    raise NotImplementedError("exercise word_counts is not implemented yet")


@pytest.fixture(autouse=True)
def fresh_solved(monkeypatch):
    monkeypatch.setattr(checks, "SOLVED", set())
    monkeypatch.delenv("COURSE_GRADING", raising=False)


def test_a_stub_prints_one_line_and_does_not_raise(capsys):
    check.word_counts(stub)
    assert capsys.readouterr().out == "word_counts: not implemented yet\n"


def test_run_cases_called_from_a_cell_prints_one_line_for_a_stub(capsys):
    checks.run_cases("word_counts (hidden)", stub, [checks.Case("x", ("a b",))], welcome.word_counts)
    assert capsys.readouterr().out == "word_counts (hidden): not implemented yet\n"


def test_while_grading_a_stub_still_raises(monkeypatch):
    monkeypatch.setenv("COURSE_GRADING", "1")
    monkeypatch.setattr(checks, "_send", lambda data: None)
    with pytest.raises(NotImplementedError):
        check.word_counts(stub)


def test_yours_or_ours_borrows_until_the_check_passes(capsys):
    assert checks.yours_or_ours("word_counts", stub, welcome.word_counts) is welcome.word_counts
    assert "word_counts: your version has not passed its check yet" in capsys.readouterr().out

    def mine(text):
        return welcome.word_counts(text)

    check.word_counts(mine)
    assert "word_counts" in checks.SOLVED
    assert checks.yours_or_ours("word_counts", mine, welcome.word_counts) is mine
    assert "not passed" not in capsys.readouterr().out


def test_a_failing_check_is_not_marked_solved():
    with pytest.raises(checks.CheckFailed):
        check.word_counts(lambda text: {})
    assert "word_counts" not in checks.SOLVED


def test_a_failure_renders_short_in_a_real_kernel_with_the_students_line():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in [
        "from course_lib.checks import welcome as check",
        "def word_counts(text):\n    counts = {}\n    for w in text.split():\n        counts[w] += 1\n    return counts",
        "check.word_counts(word_counts)",
        "def word_counts(text):\n    raise NotImplementedError('exercise word_counts is not implemented yet')",
        "check.word_counts(word_counts)\nprint('the next line ran')",
    ]]
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True).execute()
    error = nb.cells[2].outputs[0]
    shown = "\n".join(error.traceback)
    assert error.output_type == "error" and error.ename == "CheckFailed"
    assert len(error.traceback) <= 10, shown
    assert "course_lib/checks" not in shown  # no frames of the checker
    for part in ("case 'one sentence' failed", "expected:", "got:      an exception, KeyError", "hint:", "counts[w] += 1"):
        assert part in shown, (part, shown)
    assert nb.cells[4].outputs[0].text == "word_counts: not implemented yet\nthe next line ran\n"


def test_an_explorer_displays_what_show_returns(monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    widgets._displaying(lambda text: IPython.display.HTML(f"<b>{text}</b>"))(text="hi")
    assert len(shown) == 1 and shown[0].data == "<b>hi</b>"
    widgets._displaying(print)()  # nothing returned: nothing displayed
    assert len(shown) == 1


def test_every_released_notebook_ends_with_a_self_grading_cell():
    for path in sorted(SOLUTIONS_DIR.glob("*.ipynb")):
        nb = release_notebook(read(path), path.stem)
        last = nb.cells[-1]
        assert last.cell_type == "code" and last.id == "self-grade", path.name
        assert f"self_grade({path.name!r})" in last.source
        assert f"notebooks/{path.name}" in nb.cells[-2].source


def test_the_self_grading_cell_shows_the_command_without_a_front_end():
    from course_lib.toolchain.self_grade import grade_command, self_grade

    bundle = self_grade("00_welcome.ipynb")._repr_mimebundle_()
    assert "course_lib grade notebooks/00_welcome.ipynb" in bundle["text/plain"]
    assert "Save the notebook first" in bundle["text/plain"]
    assert grade_command(NOTEBOOKS_DIR / "00_welcome.ipynb")[1:4] == ["-m", "course_lib", "grade"]


def test_grade_finds_a_notebook_from_the_course_folder_or_notebooks(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert cli.find_notebook("notebooks/00_welcome.ipynb") == REPO_DIR / "notebooks" / "00_welcome.ipynb"
    assert cli.find_notebook("00_welcome.ipynb") == NOTEBOOKS_DIR / "00_welcome.ipynb"
    with pytest.raises(FileNotFoundError, match="looked in"):
        cli.find_notebook("99_nothing.ipynb")


def test_reports_go_to_the_course_folder_wherever_grade_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COURSE_GRADING_DIR", raising=False)
    assert grading_dir() == REPO_DIR / "grading"
    monkeypatch.setenv("COURSE_GRADING_DIR", str(tmp_path / "elsewhere"))
    assert grading_dir() == tmp_path / "elsewhere"
