"""The student release: in sync with solutions/, no solution leaks, stubs that say what to do, each step."""

import copy
import re
import subprocess

import nbformat
import pytest

from course_lib.toolchain.merge import merge
from course_lib.toolchain.notebook_files import read, write, writes
from course_lib.toolchain.release import (
    STEPS,
    clear_outputs,
    clear_widget_state_and_execution_metadata,
    drop_hidden_checks,
    release,
    release_notebook,
    stamp_chapter,
    stamp_exercise_ids,
    stub_answers,
    stub_source,
)
from course_lib.toolchain.report import ExerciseResult, ExerciseStatus
from course_lib.toolchain.roles import BEGIN_SOLUTION, END_SOLUTION, Role, cell_roles, exercise_of, exercises, is_hidden_check
from course_lib.toolchain.run import Limits
from course_lib.utils import NOTEBOOKS_DIR, REPO_DIR, SOLUTIONS_DIR

SOLUTIONS = sorted(SOLUTIONS_DIR.glob("*.ipynb"))


def solution_lines(source: str) -> list[str]:
    """The lines between the solution markers of a cell (markers excluded)."""
    inside, lines = False, []
    for line in source.splitlines():
        if line.strip() == BEGIN_SOLUTION:
            inside = True
        elif line.strip() == END_SOLUTION:
            inside = False
        elif inside:
            lines.append(line)
    return lines


# ----------------------------------------------------------------------------------------------------
# The released notebooks in the repository

def test_release_is_up_to_date():
    stale = release(check=True)
    assert not stale, f"notebooks/ is out of date ({stale}); run `python -m course_lib release`"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_no_solution_line_appears_in_the_release(path):
    solution, student = read(path), read(NOTEBOOKS_DIR / path.name)
    released_text = (NOTEBOOKS_DIR / path.name).read_text(encoding="utf-8")
    released_lines = {line.strip() for cell in student.cells for line in cell.source.splitlines()}
    stubs = {e.id: c.source for c in student.cells if (e := exercise_of(c))}
    for cell in solution.cells:
        answer = [line.strip() for line in solution_lines(cell.source) if re.search(r"[A-Za-z]", line)]
        exercise = exercise_of(cell)
        if exercise:  # the released exercise cell keeps none of its answer's lines
            outside = set(cell.source.splitlines()) - set(solution_lines(cell.source))
            stub = {line.strip() for line in stubs[exercise.id].splitlines()}
            leaked = [line for line in answer if line in stub and line not in {o.strip() for o in outside}]
            assert not leaked, f"{path.name}: exercise {exercise.id} leaks {leaked}"
        for code in answer:
            # Anywhere in the notebook, a long answer line is a leak; short generic lines
            # (`words = text.split()`) may legitimately occur in the chapter's own demo code.
            assert len(code) < 40 or code not in released_lines, f"solution line leaked into {path.name}: {code!r}"
        if is_hidden_check(cell):
            assert cell.source not in released_text, f"hidden check leaked into {path.name}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_release_shape(path):
    solution, student = read(path), read(NOTEBOOKS_DIR / path.name)
    assert student.metadata["course"]["chapter"] == path.stem
    assert "widgets" not in student.metadata
    assert [e.id for e in exercises(student)] == [e.id for e in exercises(solution)]
    assert exercises(solution), f"{path.name} has no exercises"
    for cell in student.cells:
        assert not is_hidden_check(cell)
        assert "execution" not in cell.metadata
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
        exercise = exercise_of(cell)
        if exercise:
            assert cell.metadata["course"] == {"exercise": exercise.id, "points": exercise.points}
            assert f'raise NotImplementedError("exercise {exercise.id} is not implemented yet")' in cell.source
            compile(cell.source, exercise.id, "exec")  # the stub is valid Python
    # Every exercise in the solutions has a check right after it, and the stored reference output.
    roles = cell_roles(solution)
    for exercise in exercises(solution):
        checks = [i for i, (role, owner) in enumerate(roles) if owner == exercise.id and role is Role.CHECK]
        assert checks, f"exercise {exercise.id} has no check cell"
        assert all(solution.cells[i].execution_count and solution.cells[i].outputs for i in checks)


def test_tracked_release_carries_no_widget_state():
    """What students download: the notebooks/ files git tracks (or, without git, the folder)."""
    try:
        listed = subprocess.run(["git", "ls-files", "notebooks/*.ipynb"], cwd=REPO_DIR, capture_output=True, text=True,
                                check=True, timeout=30).stdout.split()
    except (OSError, subprocess.SubprocessError):
        listed = []
    paths = [REPO_DIR / name for name in listed] or sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
    assert paths
    for path in paths:
        text = path.read_text(encoding="utf-8")
        assert '"widgets"' not in text, f"{path.name} carries ipywidgets state; run `python -m course_lib release`"
        assert not [c for c in read(path).cells if "execution" in c.metadata], f"{path.name} carries execution metadata"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_every_exercise_is_checked_and_the_grader_can_match_it(path):
    solution, student = read(path), read(NOTEBOOKS_DIR / path.name)
    roles = cell_roles(solution)
    for exercise in exercises(solution):
        kinds = {role for role, owner in roles if owner == exercise.id}
        assert Role.CHECK in kinds, f"{exercise.id} has no check cell"
        # Chapter 0 shows hidden checks on some exercises; every later chapter has one per exercise.
        if not path.stem.startswith("00_"):
            assert Role.HIDDEN in kinds, f"{exercise.id} has no hidden check"
    results = {e.id: ExerciseResult(e.id, e.points) for e in exercises(solution)}
    merged = merge(solution, roles, student, Limits(), results, skip=set())
    assert all(r.status != ExerciseStatus.MISSING for r in results.values())
    assert len(merged.cells) == len(solution.cells) + 1  # the grader's setup cell


# ----------------------------------------------------------------------------------------------------
# Each step on its own, on small hand-built notebooks

ANSWER = "# EXERCISE: f (2 points)\ndef f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\n"
CHECK = "# NBVAL_CHECK_OUTPUT\nprint(f(1))"
HIDDEN = "# HIDDEN CHECK\n# NBVAL_CHECK_OUTPUT\nassert f(2) == 3"


def executed(source: str, count: int = 1):
    cell = nbformat.v4.new_code_cell(source, execution_count=count,
                                     outputs=[nbformat.v4.new_output("stream", name="stdout", text="2\n")])
    cell.metadata["execution"] = {"iopub.execute_input": "2024-01-01T00:00:00Z"}
    cell.metadata["ExecuteTime"] = {"end_time": "2024-01-01T00:00:01Z"}
    cell.metadata["tags"] = ["keep-me"]
    return cell


def tiny_solution():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# A chapter"),
        executed("import math", 1),
        executed(ANSWER, 2),
        executed(CHECK, 3),
        executed(HIDDEN, 4),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {"abc": {"model_name": "IntSliderModel"}}}}
    return nb


def test_the_steps_and_their_order():
    assert [step.__name__ for step in STEPS] == [
        "drop_hidden_checks", "stub_answers", "clear_outputs", "clear_widget_state_and_execution_metadata", "stamp_exercise_ids"]


def test_drop_hidden_checks_keeps_everything_else_in_order():
    nb = tiny_solution()
    drop_hidden_checks(nb)
    assert [c.source for c in nb.cells] == ["# A chapter", "import math", ANSWER, CHECK]


def test_stub_answers_replaces_only_the_solution_block():
    nb = tiny_solution()
    stub_answers(nb)
    exercise = nb.cells[2].source
    assert "return x + 1" not in exercise and exercise.startswith("# EXERCISE: f (2 points)\ndef f(x):\n    # YOUR CODE HERE\n")
    assert 'raise NotImplementedError("exercise f is not implemented yet")' in exercise
    assert [c.source for i, c in enumerate(nb.cells) if i != 2] == [c.source for i, c in enumerate(tiny_solution().cells) if i != 2]
    assert nb.cells[2].outputs  # other steps' business


def test_clear_outputs_clears_code_cells_only():
    nb = tiny_solution()
    clear_outputs(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert nb.cells[0].source == "# A chapter" and "outputs" not in nb.cells[0]
    assert nb.metadata["widgets"]  # other steps' business


def test_clear_widget_state_and_execution_metadata():
    nb = tiny_solution()
    clear_widget_state_and_execution_metadata(nb)
    assert "widgets" not in nb.metadata and nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells[1:]:
        assert "execution" not in cell.metadata and "ExecuteTime" not in cell.metadata
        assert cell.metadata["tags"] == ["keep-me"]  # metadata the author put there stays
    assert '"widgets"' not in writes(nb) and '"execution"' not in writes(nb)


def test_stamp_exercise_ids_and_chapter():
    nb = tiny_solution()
    stamp_exercise_ids(nb)
    stamp_chapter(nb, "07_tiny")
    assert nb.cells[2].metadata["course"] == {"exercise": "f", "points": 2}
    assert all("course" not in c.metadata for i, c in enumerate(nb.cells) if i != 2)
    assert nb.metadata["course"] == {"chapter": "07_tiny"}
    nb.cells.append(nbformat.v4.new_code_cell(ANSWER))
    with pytest.raises(ValueError, match=r"used twice: \['f'\]"):
        stamp_exercise_ids(nb)


def test_release_notebook_applies_every_step_to_a_copy():
    solution = tiny_solution()
    before = copy.deepcopy(solution)
    student = release_notebook(solution, "07_tiny")
    assert solution == before
    assert [c.source.splitlines()[0] for c in student.cells] == ["# A chapter", "import math", "# EXERCISE: f (2 points)",
                                                                  "# NBVAL_CHECK_OUTPUT", "## Grade yourself",
                                                                  "from course_lib.toolchain.self_grade import self_grade"]
    assert "widgets" not in student.metadata and student.metadata["course"] == {"chapter": "07_tiny"}
    assert all(c.outputs == [] and "execution" not in c.metadata for c in student.cells if c.cell_type == "code")
    assert "return x + 1" not in writes(student)
    assert writes(release_notebook(solution, "07_tiny")) == writes(student)  # the same bytes every time


def test_release_of_a_folder_drops_widget_state(tmp_path):
    solutions, out = tmp_path / "solutions", tmp_path / "notebooks"
    solutions.mkdir()
    write(tiny_solution(), solutions / "07_tiny.ipynb")
    assert release(solutions, out) == ["07_tiny.ipynb"]
    text = (out / "07_tiny.ipynb").read_text(encoding="utf-8")
    assert '"widgets"' not in text and '"execution"' not in text and "IntSliderModel" not in text
    assert release(solutions, out, check=True) == []


# ----------------------------------------------------------------------------------------------------
# Stubs, broken markers, idempotence, never overwriting work

def test_stub_keeps_indentation_and_everything_outside_the_markers():
    source = "# EXERCISE: f (1 points)\ndef f(x):\n    y = 1\n    ### BEGIN SOLUTION\n    return x + y\n    ### END SOLUTION\n"
    stub = stub_source(source, "f")
    assert "return x + y" not in stub
    assert '    raise NotImplementedError("exercise f is not implemented yet")' in stub
    assert stub.startswith("# EXERCISE: f (1 points)\ndef f(x):\n    y = 1\n    # YOUR CODE HERE")


@pytest.mark.parametrize("source, problem", [
    ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n### END SOLUTION\n", "without a matching begin"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside another"),
])
def test_broken_markers_are_named(source, problem):
    with pytest.raises(ValueError, match=problem):
        stub_source(source, "broken")


def test_exercise_without_solution_block_or_with_duplicate_id_is_refused():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("# EXERCISE: a (1 points)\nx = 1")])
    with pytest.raises(ValueError, match="no '### BEGIN SOLUTION' block"):
        release_notebook(nb)
    cell = "# EXERCISE: a (1 points)\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION"
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell), nbformat.v4.new_code_cell(cell)])
    with pytest.raises(ValueError, match="used twice"):
        release_notebook(nb)


def test_release_is_idempotent_and_never_overwrites_work(tmp_path):
    out = tmp_path / "notebooks"
    first = release(notebooks_dir=out)
    assert sorted(first) == sorted(p.name for p in SOLUTIONS)
    snapshot = {p.name: p.read_bytes() for p in out.glob("*.ipynb")}
    assert release(notebooks_dir=out) == []
    assert snapshot == {p.name: p.read_bytes() for p in out.glob("*.ipynb")}
    # A student's work in the target folder is never overwritten without --force.
    target = out / SOLUTIONS[0].name
    nb = read(target)
    for cell in nb.cells:
        if exercise_of(cell):
            cell.source = cell.source.replace("raise NotImplementedError", "pass  #")
    write(nb, target)
    work = target.read_bytes()
    (out / "my_own_notes.ipynb").write_bytes(b"{}")
    with pytest.raises(FileExistsError, match="holds work"):
        release(notebooks_dir=out)
    assert target.read_bytes() == work
    assert (out / "my_own_notes.ipynb").read_bytes() == b"{}"
    release(notebooks_dir=out, force=True)
    assert target.read_bytes() == snapshot[target.name]
