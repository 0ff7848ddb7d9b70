"""Build the student release: solutions/ -> notebooks/.

For every solution notebook: the code between the solution markers becomes a stub that raises
NotImplementedError naming the exercise, hidden check cells are dropped, outputs and execution counts are
cleared, and the exercise id and points go into the cell metadata (the grader matches cells by them).
Running it twice gives the same bytes.
"""

from __future__ import annotations

import copy
from pathlib import Path

from . import notebooks as nbs
from .utils import NOTEBOOKS_DIR, SOLUTIONS_DIR

STUB_COMMENT = "# YOUR CODE HERE"


def stub_source(source: str, exercise_id: str) -> str:
    """Replace every solution block of a cell by a stub at the block's indentation."""
    out, inside = [], False
    for line in source.split("\n"):
        stripped = line.strip()
        if stripped == nbs.BEGIN_SOLUTION:
            if inside:
                raise ValueError(f"exercise {exercise_id}: '{nbs.BEGIN_SOLUTION}' inside another solution block")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + STUB_COMMENT)
            out.append(f'{indent}raise NotImplementedError("exercise {exercise_id} is not implemented yet")')
        elif stripped == nbs.END_SOLUTION:
            if not inside:
                raise ValueError(f"exercise {exercise_id}: '{nbs.END_SOLUTION}' without a matching begin")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"exercise {exercise_id}: '{nbs.BEGIN_SOLUTION}' is never closed")
    return "\n".join(out)


def release_notebook(solution) -> "nbformat.NotebookNode":
    """The student version of one solution notebook (a new object; the input is not changed)."""
    nb = copy.deepcopy(solution)
    cells = []
    for cell in nb.cells:
        if nbs.is_hidden_check(cell):
            continue
        exercise = nbs.exercise_of(cell)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
        if exercise:
            if nbs.BEGIN_SOLUTION not in cell.source:
                raise ValueError(f"exercise {exercise.id} has no '{nbs.BEGIN_SOLUTION}' block")
            cell.source = stub_source(cell.source, exercise.id)
            cell.metadata["course"] = {"exercise": exercise.id, "points": exercise.points}
        cells.append(cell)
    nb.cells = cells
    ids = [e.id for e in nbs.exercises(nb)]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise ValueError(f"exercise ids used twice: {sorted(duplicates)}")
    return nb


def chapter_metadata(nb, chapter: str) -> None:
    nb.metadata["course"] = {"chapter": chapter}


def has_student_work(path: Path) -> bool:
    """Does this released notebook hold someone's work (outputs, or an exercise without its stub)?"""
    try:
        nb = nbs.read(path)
    except ValueError:
        return True  # not ours to judge: never overwrite what we cannot read
    for cell in nb.cells:
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            return True
        if nbs.exercise_of(cell) and "raise NotImplementedError" not in cell.source:
            return True
    return False


def release(solutions_dir: Path = SOLUTIONS_DIR, notebooks_dir: Path = NOTEBOOKS_DIR, check: bool = False,
            force: bool = False) -> list[str]:
    """Write (or with `check`, compare) the release of every solution notebook. Returns the stale files.

    A notebook in `notebooks_dir` that holds work (outputs or answers) is never overwritten unless
    `force`: a student who runs this by mistake loses nothing.
    """
    stale = []
    notebooks_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted(solutions_dir.glob("*.ipynb")):
        solution = nbs.read(path)
        student = release_notebook(solution)
        chapter_metadata(student, nbs.chapter_id(path))
        target = notebooks_dir / path.name
        text = nbs.writes(student)
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            stale.append(target.name)
            if check:
                continue
            if target.exists() and not force and has_student_work(target):
                raise FileExistsError(f"{target} holds work (outputs or answers); move it away or use --force")
            target.write_text(text, encoding="utf-8")
    expected = {p.name for p in solutions_dir.glob("*.ipynb")}
    stale += [p.name for p in sorted(notebooks_dir.glob("*.ipynb")) if p.name not in expected]
    return stale
