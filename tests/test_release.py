"""The student release: in sync with solutions/, no solution leaks, stubs that say what to do."""

import re

import pytest

from course_lib import notebooks as nbs
from course_lib.release import release, release_notebook, stub_source
from course_lib.utils import NOTEBOOKS_DIR, SOLUTIONS_DIR

SOLUTIONS = sorted(SOLUTIONS_DIR.glob("*.ipynb"))


def test_release_is_up_to_date():
    stale = release(check=True)
    assert not stale, f"notebooks/ is out of date ({stale}); run `python -m course_lib release`"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_no_solution_line_appears_in_the_release(path):
    solution, student = nbs.read(path), nbs.read(NOTEBOOKS_DIR / path.name)
    released_text = (NOTEBOOKS_DIR / path.name).read_text(encoding="utf-8")
    released_lines = {line.strip() for cell in student.cells for line in cell.source.splitlines()}
    stubs = {e.id: c.source for c in student.cells if (e := nbs.exercise_of(c))}
    for cell in solution.cells:
        answer = [line.strip() for line in nbs.solution_lines(cell.source) if re.search(r"[A-Za-z]", line)]
        exercise = nbs.exercise_of(cell)
        if exercise:  # the released exercise cell keeps none of its answer's lines
            outside = set(cell.source.splitlines()) - set(nbs.solution_lines(cell.source))
            stub = {line.strip() for line in stubs[exercise.id].splitlines()}
            leaked = [line for line in answer if line in stub and line not in {o.strip() for o in outside}]
            assert not leaked, f"{path.name}: exercise {exercise.id} leaks {leaked}"
        for code in answer:
            # Anywhere in the notebook, a long answer line is a leak; short generic lines
            # (`words = text.split()`) may legitimately occur in the chapter's own demo code.
            assert len(code) < 40 or code not in released_lines, f"solution line leaked into {path.name}: {code!r}"
        if nbs.is_hidden_check(cell):
            assert cell.source not in released_text, f"hidden check leaked into {path.name}"


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_release_shape(path):
    solution, student = nbs.read(path), nbs.read(NOTEBOOKS_DIR / path.name)
    assert student.metadata["course"]["chapter"] == path.stem
    assert [e.id for e in nbs.exercises(student)] == [e.id for e in nbs.exercises(solution)]
    assert nbs.exercises(solution), f"{path.name} has no exercises"
    for cell in student.cells:
        assert not nbs.is_hidden_check(cell)
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None
        exercise = nbs.exercise_of(cell)
        if exercise:
            assert cell.metadata["course"] == {"exercise": exercise.id, "points": exercise.points}
            assert f'raise NotImplementedError("exercise {exercise.id} is not implemented yet")' in cell.source
            compile(cell.source, exercise.id, "exec")  # the stub is valid Python
    # Every exercise in the solutions has a check right after it, and the stored reference output.
    roles = nbs.cell_roles(solution)
    for exercise in nbs.exercises(solution):
        checks = [i for i, (role, owner) in enumerate(roles) if owner == exercise.id and role == "check"]
        assert checks, f"exercise {exercise.id} has no check cell"
        assert all(solution.cells[i].execution_count and solution.cells[i].outputs for i in checks)


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
    import nbformat

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
    nb = nbs.read(target)
    for cell in nb.cells:
        if nbs.exercise_of(cell):
            cell.source = cell.source.replace("raise NotImplementedError", "pass  #")
    nbs.write(nb, target)
    work = target.read_bytes()
    (out / "my_own_notes.ipynb").write_bytes(b"{}")
    with pytest.raises(FileExistsError, match="holds work"):
        release(notebooks_dir=out)
    assert target.read_bytes() == work
    assert (out / "my_own_notes.ipynb").read_bytes() == b"{}"
    release(notebooks_dir=out, force=True)
    assert target.read_bytes() == snapshot[target.name]


@pytest.mark.parametrize("path", SOLUTIONS, ids=lambda p: p.stem)
def test_every_exercise_is_checked_and_the_grader_can_match_it(path):
    from course_lib.grading import ExerciseResult, Limits, merge

    solution, student = nbs.read(path), nbs.read(NOTEBOOKS_DIR / path.name)
    roles = nbs.cell_roles(solution)
    for exercise in nbs.exercises(solution):
        kinds = {role for role, owner in roles if owner == exercise.id}
        assert "check" in kinds, f"{exercise.id} has no check cell"
        # Chapter 0 shows hidden checks on some exercises; every later chapter has one per exercise.
        if not path.stem.startswith("00_"):
            assert "hidden" in kinds, f"{exercise.id} has no hidden check"
    results = {e.id: ExerciseResult(e.id, e.points) for e in nbs.exercises(solution)}
    merged = merge(solution, student, Limits(), results, skip=set())
    assert all(r.status != "missing" for r in results.values())
    assert len(merged.cells) == len(solution.cells) + 1  # the grader's setup cell
