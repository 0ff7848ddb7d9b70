"""From the plugin's cell results to exercise results: status, points, message and hint per exercise.

An exercise earns its points when its exercise cell, its checks and its hidden checks all pass. Other
cells that fail are reported as notes, not failures (they may use several exercises).
"""

from __future__ import annotations

import re

from .report import ExerciseResult, ExerciseStatus
from .roles import CellRole, Role
from .run import Limits

ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
EXCEPTION_LINE_RE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Failed|Interrupt|Exit|Died))(:|$)")
GRADED_ROLES = {Role.EXERCISE: "exercise cell", Role.CHECK: "check", Role.HIDDEN: "hidden check"}

HINTS = {
    ExerciseStatus.NOT_IMPLEMENTED: "Replace the `raise NotImplementedError(...)` line with your code, run the cell, "
                                    "then run its check cell.",
    ExerciseStatus.MISSING: "The grader finds an exercise by its cell (id in the cell's metadata, or the `# EXERCISE:` "
                            "first line). Copy the exercise cell from a fresh copy of the notebook and paste your code into it.",
    ExerciseStatus.TIMEOUT: "Your code ran past the time limit. Look for a loop that never ends, or work that grows too fast.",
    ExerciseStatus.CRASHED: "Your code stopped the Python kernel (os._exit, a crash in native code, or too much memory).",
    ExerciseStatus.ERROR: "Your exercise cell raised an error when it ran; run it in the notebook and read the traceback.",
    ExerciseStatus.NOT_GRADED: "The notebook ran out of time before reaching this exercise; make the earlier exercises faster.",
}
DEFAULT_HINT = "Read the message above, fix your code, and run the check cell again."


def clean_message(text: str) -> str:
    """The useful part of an nbval failure: the exception (e.g. the checker's message) or the diff."""
    text = ANSI_RE.sub("", text)
    if "Cell outputs differ" in text:
        diff = text.split("Traceback:", 1)[-1].strip()
        return "The check printed something other than the reference:\n" + diff[:2000]
    if "Kernel dead on test start" in text:
        return "Not run: an earlier cell had stopped the kernel."
    if "KernelDied" in text or "the kernel died" in text:
        return "The kernel died while running this cell."
    if "Failed to interrupt kernel" in text:
        return "The cell ran past its time limit and the kernel could not be interrupted, so it was stopped."
    lines = text.rstrip().splitlines()
    for i in range(len(lines) - 1, -1, -1):
        if EXCEPTION_LINE_RE.match(lines[i]):
            return "\n".join(lines[i:])[:3000]
    return text.strip()[-2000:]


def status_of_failure(role: Role, message: str) -> ExerciseStatus:
    """Classify a failed cell by its cleaned message (the raw one quotes source lines of every frame)."""
    if message.startswith("Not run:"):
        return ExerciseStatus.NOT_GRADED  # an earlier cell killed the kernel; this one never ran
    if message.startswith("NotImplementedError"):
        return ExerciseStatus.NOT_IMPLEMENTED
    if "kernel died" in message or "could not be interrupted" in message:
        return ExerciseStatus.CRASHED
    if message.startswith("KeyboardInterrupt"):
        return ExerciseStatus.TIMEOUT
    return ExerciseStatus.ERROR if role is Role.EXERCISE else ExerciseStatus.FAILED


def _cell_label(index: int, sources: list[str] | None) -> str:
    """`cell 12 (`first line`)` so a student can find the cell a note is about."""
    if not sources or not 0 <= index < len(sources):
        return f"cell {index}"
    first = next((line.strip() for line in sources[index].splitlines() if line.strip() and not line.strip().startswith("#")), "")
    return f"cell {index} (`{first[:60]}`)"


def _failed(cell: dict | None) -> bool:
    return cell is not None and cell["outcome"] == "failed"


def score_exercises(results: dict[str, ExerciseResult], cells: list[dict], roles: list[CellRole],
                    timed_out: bool, limits: Limits, sources: list[str] | None = None) -> list[str]:
    """Set each exercise's status, points, message and hint from the cell results. Returns general warnings.

    `cells` are the plugin's records (by solution index), `roles` the solution's cell roles, `sources`
    the replayed cells' sources (to name a cell in a note).
    """
    ran = {c.get("index"): c for c in cells}
    warnings = []
    for index, (role, owner) in enumerate(roles):
        cell = ran.get(index)
        if role is Role.MARKDOWN or not _failed(cell):
            continue
        message = clean_message(cell["message"])
        kind = status_of_failure(role, message)
        if kind == ExerciseStatus.TIMEOUT:
            message = f"it ran past the {limits.cell_timeout} s limit (is your code much slower than it needs to be?)"
        if owner is None:
            warnings.append(f"{_cell_label(index, sources)}, before any exercise, failed: {message[:300]}")
        elif role is Role.CODE and kind not in (ExerciseStatus.NOT_GRADED, ExerciseStatus.NOT_IMPLEMENTED):
            results[owner].warnings.append(f"a later cell that uses your code, {_cell_label(index, sources)}, failed: {message[:300]}")
    for exercise_id, result in results.items():
        if result.status == ExerciseStatus.MISSING:
            result.hint = HINTS[ExerciseStatus.MISSING]
            continue
        owned = [(role, ran.get(i)) for i, (role, owner) in enumerate(roles) if owner == exercise_id and role in GRADED_ROLES]
        failures = [(role, cell) for role, cell in owned if _failed(cell)]
        if failures:
            role, cell = failures[0]
            message = clean_message(cell["message"])
            result.status = status_of_failure(role, message)
            if result.status == ExerciseStatus.TIMEOUT:
                result.message = f"The {GRADED_ROLES[role]} took longer than {limits.cell_timeout} s and was stopped."
            else:
                result.message = ("A hidden check failed:\n" if role is Role.HIDDEN else "") + message
        elif any(cell is None for _, cell in owned):
            result.status = ExerciseStatus.NOT_GRADED
            if timed_out:
                result.message = f"The notebook reached its time limit ({limits.notebook_timeout} s) before this exercise finished."
        else:
            result.status, result.points = ExerciseStatus.PASSED, result.max_points
        if result.status != ExerciseStatus.PASSED:
            result.hint = HINTS.get(result.status, DEFAULT_HINT)
    return warnings
