"""How a notebook marks its exercises, checks and hidden checks; shared by the release and the grader.

In `solutions/` (the single source an instructor edits):

    # EXERCISE: count_words (2 points)          <- first line of an exercise cell: stable id, points
    def count_words(text: str) -> int:
        ### BEGIN SOLUTION
        return len(text.split())                <- the answer; the release replaces it with a stub
        ### END SOLUTION

    # NBVAL_CHECK_OUTPUT                        <- a check cell: its stored output is the reference
    check.count_words(count_words)

    # HIDDEN CHECK                              <- a hidden check: dropped by the release, put back by
    # NBVAL_CHECK_OUTPUT                           the grader
    run_cases("count_words (hidden)", count_words, [...], reference)

Check and hidden-check cells belong to the nearest exercise above them. The chapter id is the file
name without `.ipynb` (e.g. `00_welcome`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import nbformat

EXERCISE_RE = re.compile(r"^\s*#\s*EXERCISE:\s*([A-Za-z0-9_.\-]+)\s*\((\d+)\s*points?\)", re.IGNORECASE)
BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
HIDDEN_MARK = "# HIDDEN CHECK"
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


@dataclass(frozen=True)
class Exercise:
    id: str
    points: int


def first_line(source: str) -> str:
    return source.lstrip("\n").split("\n", 1)[0]


def exercise_of(cell) -> Exercise | None:
    """The exercise a code cell is (from its metadata, else its header comment), or None."""
    if cell.get("cell_type") != "code":
        return None
    meta = cell.get("metadata", {}).get("course", {})
    if isinstance(meta, dict) and meta.get("exercise"):
        return Exercise(str(meta["exercise"]), int(meta.get("points", 0)))
    match = EXERCISE_RE.match(first_line(cell.get("source", "")))
    return Exercise(match.group(1), int(match.group(2))) if match else None


def is_hidden_check(cell) -> bool:
    return cell.get("cell_type") == "code" and any(
        line.strip() == HIDDEN_MARK for line in cell.get("source", "").splitlines())


def is_check(cell) -> bool:
    return cell.get("cell_type") == "code" and any(
        line.strip() == CHECK_MARK for line in cell.get("source", "").splitlines())


def cell_roles(nb) -> list[tuple[str, str | None]]:
    """For each cell: (role, owning exercise id). Roles: exercise, check, hidden, code, markdown."""
    roles, owner = [], None
    for cell in nb.cells:
        exercise = exercise_of(cell)
        if exercise:
            owner = exercise.id
            roles.append(("exercise", owner))
        elif is_hidden_check(cell):
            roles.append(("hidden", owner))
        elif is_check(cell):
            roles.append(("check", owner))
        else:
            roles.append((cell.cell_type if cell.cell_type == "markdown" else "code", owner))
    return roles


def exercises(nb) -> list[Exercise]:
    return [e for e in (exercise_of(c) for c in nb.cells) if e]


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


def chapter_id(path: Path) -> str:
    return Path(path).stem


def read(path: Path):
    """Read a notebook, with a clear error for a file that is not one."""
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception as error:  # nbformat raises several types for broken JSON or schema
        raise ValueError(f"{path} is not a readable Jupyter notebook ({type(error).__name__}: {str(error)[:200]})") from None


def writes(nb) -> str:
    """A notebook as text, the same way every time (stable key order and indentation, final newline)."""
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def write(nb, path: Path) -> None:
    Path(path).write_text(writes(nb), encoding="utf-8")
