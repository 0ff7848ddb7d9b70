"""Build the student release: solutions/ -> notebooks/.

A release is a list of named steps applied in order to a copy of each solution notebook:

    drop_hidden_checks                          hidden check cells go (the grader puts them back)
    stub_answers                                the code between the solution markers becomes a stub that
                                                raises NotImplementedError naming the exercise
    clear_outputs                               no outputs, no execution counts
    clear_widget_state_and_execution_metadata   no ipywidgets state from the solution run, no per-cell
                                                timing records
    stamp_exercise_ids                          each exercise's id and points go into its cell's metadata
                                                (the grader matches cells by them); ids must be unique

and then `stamp_chapter` records the chapter in the notebook's metadata and `add_self_grade_cell` ends the
notebook with a cell that grades it from inside JupyterLab. Running it twice gives the same
bytes, and a released notebook that holds someone's work is never overwritten without `force`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path

from ..utils import NOTEBOOKS_DIR, SOLUTIONS_DIR
from .notebook_files import chapter_id, read, writes
from .roles import BEGIN_SOLUTION, END_SOLUTION, exercise_of, exercises, is_hidden_check

STUB_COMMENT = "# YOUR CODE HERE"
EXECUTION_METADATA = ("execution", "ExecuteTime")  # nbclient's and the ExecuteTime extension's records


def stub_source(source: str, exercise_id: str) -> str:
    """Replace every solution block of a cell by a stub at the block's indentation."""
    out, inside = [], False
    for line in source.split("\n"):
        stripped = line.strip()
        if stripped == BEGIN_SOLUTION:
            if inside:
                raise ValueError(f"exercise {exercise_id}: '{BEGIN_SOLUTION}' inside another solution block")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + STUB_COMMENT)
            out.append(f'{indent}raise NotImplementedError("exercise {exercise_id} is not implemented yet")')
        elif stripped == END_SOLUTION:
            if not inside:
                raise ValueError(f"exercise {exercise_id}: '{END_SOLUTION}' without a matching begin")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"exercise {exercise_id}: '{BEGIN_SOLUTION}' is never closed")
    return "\n".join(out)


# ----------------------------------------------------------------------------------------------------
# The steps: each changes the notebook it is given, in place.

def drop_hidden_checks(nb) -> None:
    nb.cells = [cell for cell in nb.cells if not is_hidden_check(cell)]


def stub_answers(nb) -> None:
    for cell in nb.cells:
        exercise = exercise_of(cell)
        if exercise:
            if BEGIN_SOLUTION not in cell.source:
                raise ValueError(f"exercise {exercise.id} has no '{BEGIN_SOLUTION}' block")
            cell.source = stub_source(cell.source, exercise.id)


def clear_outputs(nb) -> None:
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None


def clear_widget_state_and_execution_metadata(nb) -> None:
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for key in EXECUTION_METADATA:
            cell.metadata.pop(key, None)


def stamp_exercise_ids(nb) -> None:
    ids = [e.id for e in exercises(nb)]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise ValueError(f"exercise ids used twice: {sorted(duplicates)}")
    for cell in nb.cells:
        exercise = exercise_of(cell)
        if exercise:
            cell.metadata["course"] = {"exercise": exercise.id, "points": exercise.points}


def stamp_chapter(nb, chapter: str) -> None:
    nb.metadata["course"] = {"chapter": chapter}


SELF_GRADE_CELL_ID = "self-grade"  # the grader knows this cell is the release's own, not the student's
SELF_GRADE_TEXT = """## Grade yourself

Save the notebook, then run the cell below and press its button: it grades this notebook exactly as your
instructor's grader does (hidden checks included) and shows the feedback here. The same from a terminal in
the course folder: `.venv/bin/python -m course_lib grade notebooks/{name}`. Reports go to `grading/`; your
notebook is never changed."""


def add_self_grade_cell(nb, chapter: str) -> None:
    """End the notebook with a markdown cell and a code cell that grade it (see toolchain/self_grade.py).
    Fixed cell ids keep the release byte-for-byte repeatable."""
    from nbformat.v4 import new_code_cell, new_markdown_cell

    name = f"{chapter}.ipynb"
    nb.cells.append(new_markdown_cell(SELF_GRADE_TEXT.format(name=name), id="self-grade-text"))
    nb.cells.append(new_code_cell(f"from course_lib.toolchain.self_grade import self_grade\n\nself_grade({name!r})",
                                  id=SELF_GRADE_CELL_ID))


STEPS: tuple[Callable[[object], None], ...] = (
    drop_hidden_checks,
    stub_answers,
    clear_outputs,
    clear_widget_state_and_execution_metadata,
    stamp_exercise_ids,
)


def release_notebook(solution, chapter: str | None = None):
    """The student version of one solution notebook (a new object; the input is not changed)."""
    nb = copy.deepcopy(solution)
    for step in STEPS:
        step(nb)
    if chapter is not None:
        stamp_chapter(nb, chapter)
        add_self_grade_cell(nb, chapter)
    return nb


# ----------------------------------------------------------------------------------------------------
# The whole release

def has_student_work(path: Path) -> bool:
    """Does this released notebook hold someone's work (outputs, or an exercise without its stub)?"""
    try:
        nb = read(path)
    except ValueError:
        return True  # not ours to judge: never overwrite what we cannot read
    for cell in nb.cells:
        if cell.cell_type == "code" and (cell.get("outputs") or cell.get("execution_count") is not None):
            return True
        if exercise_of(cell) and "raise NotImplementedError" not in cell.source:
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
        text = writes(release_notebook(read(path), chapter_id(path)))
        target = notebooks_dir / path.name
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
