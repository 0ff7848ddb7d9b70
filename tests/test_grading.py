"""The grader, from the student's and the instructor's side: right points, clear reports, no harm done.

All submissions are graded in one batch (two at a time, as an instructor would) to keep the suite fast.
"""

import csv
import hashlib
import io
import json
import sys

import nbformat
import pytest

from course_lib.toolchain import kernel_setup
from course_lib.toolchain import notebook_files as nbs
from course_lib.toolchain.grade import find_submissions, grade
from course_lib.toolchain.merge import flags_for
from course_lib.toolchain.report import ExerciseResult, ExerciseStatus, Report, ReportStatus, feedback_text, write_report
from course_lib.toolchain.roles import exercise_of, exercises
from course_lib.toolchain.run import Limits
from course_lib.toolchain.score import clean_message
from course_lib.utils import NOTEBOOKS_DIR, SOLUTIONS_DIR

CHAPTER = "00_welcome"
RELEASE = NOTEBOOKS_DIR / f"{CHAPTER}.ipynb"
SOLUTION = SOLUTIONS_DIR / f"{CHAPTER}.ipynb"


def solution_sources() -> dict[str, str]:
    return {e.id: c.source for c in nbs.read(SOLUTION).cells if (e := exercise_of(c))}


def submission(answers: dict[str, str] | None = None, drop: tuple = (), duplicate: tuple = ()):
    """The release with some exercise cells answered (`"solution"` = the reference answer)."""
    nb = nbs.read(RELEASE)
    reference = solution_sources()
    cells = []
    for cell in nb.cells:
        exercise = exercise_of(cell)
        if exercise and exercise.id in drop:
            continue
        if exercise and exercise.id in (answers or {}):
            answer = answers[exercise.id]
            cell.source = reference[exercise.id] if answer == "solution" else answer
        if exercise and exercise.id in duplicate:
            wrong = nbformat.from_dict(json.loads(json.dumps(cell)))
            wrong.source = cell.source.replace("return", "return None  #", 1)
            wrong.id = cell.id + "-copy"
            cells.append(wrong)  # an earlier wrong copy; the last copy is the one graded
        cells.append(cell)
    nb.cells = cells
    return nb


ALL = {"word_counts": "solution", "most_common": "solution", "pooled_bits_per_byte": "solution"}
HEADER = {e.id: f"# EXERCISE: {e.id} ({e.points} points)\n" for e in exercises(nbs.read(SOLUTION))}


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    folder = tmp_path_factory.mktemp("submissions")
    loop = HEADER["most_common"] + "def most_common(counts, k):\n    while True:\n        pass\n"
    crash = HEADER["word_counts"] + "def word_counts(text):\n    import os\n    os._exit(3)\n"
    huge = HEADER["word_counts"] + 'print("x" * 30_000_000)\n' + solution_sources()["word_counts"]
    memory_hog = HEADER["pooled_bits_per_byte"] + "blob = bytearray(6 * 2**30)\n"
    calls_reference = HEADER["word_counts"] + "from course_lib.welcome import word_counts\n"
    cheats = HEADER["most_common"] + (
        "check.most_common = lambda fn: print('most_common: 3/3 cases passed')\n"
        "def most_common(counts, k):\n    return []\n")
    notebooks = {
        "untouched": nbs.read(RELEASE),
        "one_solved": submission({"word_counts": "solution"}),
        "all_solved": submission(ALL),
        "deleted_cell": submission(ALL, drop=("most_common",)),
        "duplicated_cell": submission(ALL, duplicate=("word_counts",)),
        "infinite_loop": submission({**ALL, "most_common": loop}),
        "kernel_crash": submission({**ALL, "word_counts": crash}),
        "huge_output": submission({**ALL, "word_counts": huge}),
        "memory_hog": submission({**ALL, "pooled_bits_per_byte": memory_hog}),
        "calls_reference": submission({**ALL, "word_counts": calls_reference}),
        "touches_checker": submission({**ALL, "most_common": cheats}),
    }
    for name, nb in notebooks.items():
        nbs.write(nb, folder / f"{name}.ipynb")
    (folder / "malformed.ipynb").write_text('{"cells": [ this is not json', encoding="utf-8")
    other = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('hello')")])
    other.metadata["course"] = {"chapter": CHAPTER}
    nbs.write(other, folder / "wrong_notebook.ipynb")
    nbs.write(nbformat.v4.new_notebook(), folder / "no_chapter_at_all.ipynb")
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    out = tmp_path_factory.mktemp("reports")
    reports = grade([folder], out, limits=Limits(cell_timeout=20, notebook_timeout=300), jobs=2, echo=lambda _: None)
    after = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}
    return {r.student: r for r in reports}, out, before, after


def points(report) -> dict[str, int]:
    return {e.id: e.points for e in report.exercises}


def status(report) -> dict[str, str]:
    return {e.id: e.status for e in report.exercises}


def test_the_solution_itself_gets_full_marks(tmp_path):
    [report] = grade([SOLUTION], tmp_path, echo=lambda _: None)
    assert report.status == "graded" and report.score == report.max_score == 7
    assert all(e.status == "passed" and not e.flags for e in report.exercises)


def test_untouched_release_gets_zero_with_not_implemented(graded):
    report = graded[0]["untouched"]
    assert report.score == 0 and report.max_score == 7
    assert set(status(report).values()) == {"not implemented"}
    assert all("NotImplementedError" in e.message and "Replace the" in e.hint for e in report.exercises)
    assert not any("outside the exercise cells" in w for w in report.warnings)  # the self-grading cell is the release's


def test_one_exercise_solved_gives_exactly_its_points(graded):
    report = graded[0]["one_solved"]
    assert points(report) == {"word_counts": 2, "most_common": 0, "pooled_bits_per_byte": 0}
    assert graded[0]["all_solved"].score == 7


def test_deleted_and_duplicated_cells(graded):
    deleted = graded[0]["deleted_cell"]
    assert status(deleted)["most_common"] == "missing" and deleted.score == 5
    assert "Copy the exercise cell" in next(e.hint for e in deleted.exercises if e.id == "most_common")
    duplicated = graded[0]["duplicated_cell"]
    assert duplicated.score == 7
    word = next(e for e in duplicated.exercises if e.id == "word_counts")
    assert "appears 2 times" in word.warnings[0]


def test_infinite_loop_is_stopped_and_the_rest_is_graded(graded):
    report = graded[0]["infinite_loop"]
    assert status(report)["most_common"] == "timeout"
    assert "took longer than 20 s" in next(e.message for e in report.exercises if e.id == "most_common")
    assert points(report)["word_counts"] == 2 and points(report)["pooled_bits_per_byte"] == 3


def test_kernel_crash_is_reported_and_the_rest_is_graded(graded):
    report = graded[0]["kernel_crash"]
    assert status(report)["word_counts"] == "crashed"
    assert points(report) == {"word_counts": 0, "most_common": 2, "pooled_bits_per_byte": 3}


def test_huge_output_is_survived(graded):
    report = graded[0]["huge_output"]
    assert report.score == 7


@pytest.mark.skipif(sys.platform != "linux", reason="the kernel's memory limit is enforced on Linux")
def test_memory_limit_stops_a_memory_hog(graded):
    report = graded[0]["memory_hog"]
    hog = next(e for e in report.exercises if e.id == "pooled_bits_per_byte")
    assert hog.status == "error" and "MemoryError" in hog.message
    assert points(report)["word_counts"] == 2


def test_malformed_wrong_and_unknown_notebooks_get_clear_reports(graded):
    malformed = graded[0]["malformed"]
    assert malformed.status == "unreadable" and "not a readable Jupyter notebook" in malformed.message
    wrong = graded[0]["wrong_notebook"]
    assert wrong.status == "wrong notebook" and "none of the exercises of 00_welcome" in wrong.message
    assert wrong.score == 0 and set(status(wrong).values()) == {"missing"}
    unknown = graded[0]["no_chapter_at_all"]
    assert unknown.status == "wrong notebook" and "--chapter" in unknown.message


def test_reference_calls_and_checker_tampering_are_flagged_not_failed(graded):
    calls = next(e for e in graded[0]["calls_reference"].exercises if e.id == "word_counts")
    assert calls.status == "passed" and "course_lib.welcome.word_counts" in calls.flags[0]
    cheat = next(e for e in graded[0]["touches_checker"].exercises if e.id == "most_common")
    assert any("touches the checkers" in f for f in cheat.flags)


def test_submissions_are_never_modified(graded):
    _, _, before, after = graded
    assert before == after


def test_reports_feedback_and_gradebook(graded):
    reports, out, _, _ = graded
    for student in reports:
        data = json.loads((out / f"{student}.json").read_text(encoding="utf-8"))
        assert data["student"] == student and "exercises" in data
        assert (out / f"{student}.feedback.md").read_text(encoding="utf-8").startswith("# Feedback")
    rows = list(csv.DictReader((out / "gradebook.csv").open(encoding="utf-8")))
    assert len(rows) == len(reports)
    row = next(r for r in rows if r["student"] == "one_solved")
    assert row["score"] == "2" and row[f"{CHAPTER}:word_counts"] == "2"


def test_a_wrong_answer_reads_well():
    # What a student sees for a plausible bug: which case, expected, got, and a hint.
    from course_lib.checks import welcome as check

    with pytest.raises(AssertionError) as error:
        check.word_counts(lambda text: {w: text.split().count(w) for w in text.split()})
    text = str(error.value)
    assert "case 'one sentence' failed" in text and "expected:" in text and "got:" in text and "hint:" in text


def test_clean_message_keeps_the_checker_message():
    raw = ("\x1b[31mTraceback\x1b[0m\n  File x\n  except NotImplementedError:\n"
           "CheckFailed: word_counts: case 'a' failed\n  expected: 1\n  got:      2")
    assert clean_message(raw) == "CheckFailed: word_counts: case 'a' failed\n  expected: 1\n  got:      2"


def test_flags_ignore_what_the_solution_itself_uses():
    aliases = {"stories", "welcome"}
    solution = "def f(n):\n    ### BEGIN SOLUTION\n    return stories.story('train', n)\n    ### END SOLUTION\n"
    assert flags_for("def f(n):\n    return stories.story('train', n)\n", solution, aliases) == []
    assert flags_for("def f(n):\n    return welcome.word_counts(n)\n", solution, aliases)


def test_missing_paths_and_name_clashes(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        grade([tmp_path / "missing"], tmp_path / "out", echo=lambda _: None)
    (tmp_path / "alice").mkdir()
    (tmp_path / "bob").mkdir()
    for who in ("alice", "bob"):
        (tmp_path / who / "00_welcome.ipynb").write_text("{}")
    names = [s for _, s in find_submissions([tmp_path / "alice" / "00_welcome.ipynb", tmp_path / "bob" / "00_welcome.ipynb"])]
    assert names == ["alice__00_welcome", "bob__00_welcome"]


def test_kernel_setup_caps_each_cells_output_and_is_what_the_first_cell_calls(monkeypatch):
    class Shell:  # the part of IPython's shell that install() uses
        def __init__(self):
            self.callbacks = []
            self.events = self

        def register(self, event, callback):
            assert event == "pre_run_cell"
            self.callbacks.append(callback)

    out, err, shell = io.StringIO(), io.StringIO(), Shell()
    monkeypatch.setattr(sys, "stdout", out)
    monkeypatch.setattr(sys, "stderr", err)
    monkeypatch.setattr(kernel_setup, "limit_memory", lambda memory_mb: True)  # never limit the test process
    monkeypatch.setattr(kernel_setup, "watch_opens", lambda: None)  # nor add an audit hook to it
    kernel_setup.install(shell, memory_mb=512, max_output=10)
    print("x" * 25)
    print("more")
    assert out.getvalue() == "x" * 10 + kernel_setup.TRUNCATED
    for callback in shell.callbacks:  # the next cell gets its own allowance
        callback(None)
    print("hello")
    assert out.getvalue().endswith(kernel_setup.TRUNCATED + "hello\n") and err.getvalue() == ""
    source = kernel_setup.cell_source(memory_mb=512, max_output=10)
    compile(source, "setup", "exec")
    assert "import install" in source and "get_ipython(), memory_mb=512, max_output=10" in source


def test_report_json_and_feedback_keep_their_strings(tmp_path):
    report = Report("a/00_welcome.ipynb", "alice", chapter=CHAPTER, status=ReportStatus.WRONG_NOTEBOOK, message="why",
                    exercises=[ExerciseResult("word_counts", 2, status=ExerciseStatus.NOT_IMPLEMENTED, hint="do it")])
    write_report(report, tmp_path)
    data = json.loads((tmp_path / "alice.json").read_text(encoding="utf-8"))
    assert list(data) == ["submission", "student", "chapter", "status", "message", "score", "max_score", "exercises",
                          "warnings", "seconds"]
    assert data["status"] == "wrong notebook" and data["exercises"][0]["status"] == "not implemented"
    assert list(data["exercises"][0]) == ["id", "max_points", "points", "status", "message", "hint", "flags", "warnings"]
    text = feedback_text(report)
    assert "**Not graded (wrong notebook):** why" in text and "## ✗ `word_counts`: 0/2 points (not implemented)" in text
