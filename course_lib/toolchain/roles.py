"""How a notebook marks its exercises, checks and hidden checks, and the role each cell plays.

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

Check and hidden-check cells belong to the nearest exercise above them (their owner). The release and the
grader compute the roles of a notebook once with `cell_roles` and pass the list along.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple

EXERCISE_RE = re.compile(r"^\s*#\s*EXERCISE:\s*([A-Za-z0-9_.\-]+)\s*\((\d+)\s*points?\)", re.IGNORECASE)
BEGIN_SOLUTION = "### BEGIN SOLUTION"
END_SOLUTION = "### END SOLUTION"
HIDDEN_MARK = "# HIDDEN CHECK"
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"


class Role(StrEnum):
    """What a cell is for."""

    EXERCISE = "exercise"  # the student's answer
    CHECK = "check"        # compared with its stored output; shipped to students
    HIDDEN = "hidden"      # a check kept from students, put back by the grader
    CODE = "code"          # any other code (or raw) cell
    MARKDOWN = "markdown"


@dataclass(frozen=True)
class Exercise:
    id: str
    points: int


class CellRole(NamedTuple):
    role: Role
    owner: str | None  # the id of the exercise the cell belongs to (None before the first exercise)


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


def _has_line(cell, mark: str) -> bool:
    return cell.get("cell_type") == "code" and any(line.strip() == mark for line in cell.get("source", "").splitlines())


def is_hidden_check(cell) -> bool:
    return _has_line(cell, HIDDEN_MARK)


def is_check(cell) -> bool:
    return _has_line(cell, CHECK_MARK)


def role_of(cell) -> Role:
    """The role of one cell on its own (an exercise marker wins over a check marker)."""
    if exercise_of(cell):
        return Role.EXERCISE
    if is_hidden_check(cell):
        return Role.HIDDEN
    if is_check(cell):
        return Role.CHECK
    return Role.MARKDOWN if cell.get("cell_type") == "markdown" else Role.CODE


def cell_roles(nb) -> list[CellRole]:
    """For each cell of `nb`, in order: its role and the exercise it belongs to."""
    roles, owner = [], None
    for cell in nb.cells:
        role = role_of(cell)
        if role is Role.EXERCISE:
            owner = exercise_of(cell).id
        roles.append(CellRole(role, owner))
    return roles


def exercises(nb) -> list[Exercise]:
    return [e for e in (exercise_of(c) for c in nb.cells) if e]
