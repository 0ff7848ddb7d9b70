"""From the plugin's cell results to exercise results: status, points, message and hint per exercise.

An exercise earns its points when its exercise cell, its checks and its hidden checks all pass. Other
cells that fail are reported as notes, not failures (they may use several exercises).

A check or hidden check passes only when nbval's replay passed *and* the grader's own verdict on the
results the cell sent (verdicts.py) is a pass. Text that comes from the student's kernel (exception
messages, output diffs) is untrusted: it is redacted (the grader's paths and environment), cut short, and
once a hidden check has run in the kernel (so its inputs could be in the student's hands) it is reduced
to the name of a built-in exception. Hidden checks are only ever described by the grader's own words.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

from ..utils import REPO_DIR
from .report import ExerciseResult, ExerciseStatus
from .roles import CellRole, Role
from .run import Limits
from .verdicts import Reference, Verdict, exception_name, judge, runtime_flags

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
WITHHELD = ("(details withheld: a hidden check had already run in the grader's kernel; run the cell in your "
            "notebook to see them)")
TAMPERED = ("the check cell printed its result, but the checker's results never reached the grader: "
            "the checkers were replaced, bypassed or their output forged")
MAX_UNTRUSTED = 2000


def _secrets() -> list[tuple[str, str]]:
    """Strings of the grader's that feedback must not show, longest first, with what replaces them."""
    pairs = [(str(Path(tempfile.gettempdir())), "<tmp>"), (str(REPO_DIR), "<course>"), (sys.prefix, "<python>"),
             (sys.base_prefix, "<python>"), (os.path.expanduser("~"), "<home>"), (os.getcwd(), "<cwd>")]
    pairs += [(value, f"<{key}>") for key, value in os.environ.items() if len(value) >= 8 and value not in ("C.UTF-8",)]
    return sorted({p for p in pairs if len(p[0]) > 1}, key=lambda p: -len(p[0]))


def redact(text: str) -> str:
    """Untrusted text with the grader's paths and environment values replaced, cut to MAX_UNTRUSTED."""
    text = re.sub(r"[^\s'\"]*course-(?:grade|reference)-[^\s'\"/]*", "<work>", text)
    for secret, placeholder in _secrets():
        text = text.replace(secret, placeholder)
    return text if len(text) <= MAX_UNTRUSTED else text[:MAX_UNTRUSTED] + "\n[cut]"


def untrusted(message: str, tainted: bool) -> str:
    """What a student may see of a message that came from the kernel."""
    if not tainted:
        return redact(message)
    match = EXCEPTION_LINE_RE.match(message)
    name = exception_name(match.group(1).rsplit(".", 1)[-1]) if match else ""
    return f"{name} {WITHHELD}" if name and name != "an exception" else f"The cell failed {WITHHELD}"


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
                    timed_out: bool, limits: Limits, sources: list[str] | None = None,
                    reference: Reference | None = None) -> list[str]:
    """Set each exercise's status, points, message and hint from the cell results. Returns general warnings.

    `cells` are the plugin's records (by solution index), `roles` the solution's cell roles, `sources`
    the replayed cells' sources (to name a cell in a note), `reference` the trusted run's records (None:
    nbval's verdict alone, for tests of the scoring itself).
    """
    ran = {c.get("index"): c for c in cells}
    hidden = [i for i, (role, _) in enumerate(roles) if role is Role.HIDDEN]

    def tainted(index: int) -> bool:
        return any(h < index and h in ran for h in hidden)

    verdicts: dict[int, Verdict] = {}
    if reference is not None:
        for index, (role, owner) in enumerate(roles):
            cell = ran.get(index)
            if role not in (Role.CHECK, Role.HIDDEN) or cell is None or owner is None:
                continue
            got = cell.get("records", [])
            verdict = judge(reference.records.get(index, []), got, role is Role.HIDDEN, not tainted(index))
            for flag in runtime_flags(reference, got):
                if flag not in results[owner].flags:
                    results[owner].flags.append(flag)
            if verdict is not None:
                if not got and cell["outcome"] == "passed" and TAMPERED not in results[owner].flags:
                    results[owner].flags.append(TAMPERED)
                    verdict.message = TAMPERED
                verdicts[index] = verdict

    def cell_message(index: int, role: Role, cell: dict) -> tuple[ExerciseStatus, str]:
        raw = clean_message(cell["message"]) if cell["outcome"] == "failed" else ""
        kind = status_of_failure(role, raw) if raw else ExerciseStatus.FAILED
        verdict = verdicts.get(index)
        if kind == ExerciseStatus.TIMEOUT:
            return kind, f"it ran past the {limits.cell_timeout} s limit (is your code much slower than it needs to be?)"
        if kind in (ExerciseStatus.CRASHED, ExerciseStatus.NOT_GRADED):
            return kind, raw  # the plugin's own words
        # The grader's own verdict says why, unless the cell raised before any result was sent (the
        # student's error, e.g. NotImplementedError: nbval's message, treated as untrusted, says it).
        if verdict is not None and not verdict.ok and not (raw and (not cell.get("records") or verdict.kernel_words)):
            return verdict.status or (kind if raw else ExerciseStatus.FAILED), verdict.message
        if role is Role.HIDDEN:
            if kind == ExerciseStatus.NOT_IMPLEMENTED:
                return kind, "NotImplementedError: the exercise still raises NotImplementedError"
            return kind, "the hidden check failed (it printed something other than the reference, or raised)"
        return kind, untrusted(raw, tainted(index))

    def failed(index: int) -> bool:
        cell = ran.get(index)
        return _failed(cell) or (cell is not None and index in verdicts and not verdicts[index].ok)

    warnings = []
    for index, (role, owner) in enumerate(roles):
        if role is Role.MARKDOWN or not failed(index):
            continue
        kind, message = cell_message(index, role, ran[index])
        if owner is None:
            warnings.append(f"{_cell_label(index, sources)}, before any exercise, failed: {message[:300]}")
        elif role is Role.CODE and kind not in (ExerciseStatus.NOT_GRADED, ExerciseStatus.NOT_IMPLEMENTED):
            results[owner].warnings.append(f"a later cell that uses your code, {_cell_label(index, sources)}, failed: {message[:300]}")
    for exercise_id, result in results.items():
        if result.status == ExerciseStatus.MISSING:
            result.hint = HINTS[ExerciseStatus.MISSING]
            continue
        owned = [(i, role, ran.get(i)) for i, (role, owner) in enumerate(roles) if owner == exercise_id and role in GRADED_ROLES]
        failures = [(i, role, cell) for i, role, cell in owned if failed(i)]
        if failures:
            index, role, cell = failures[0]
            result.status, message = cell_message(index, role, cell)
            if result.status == ExerciseStatus.TIMEOUT:
                result.message = f"The {GRADED_ROLES[role]} took longer than {limits.cell_timeout} s and was stopped."
            else:
                result.message = ("A hidden check failed:\n" if role is Role.HIDDEN else "") + message
        elif any(cell is None for _, _, cell in owned):
            result.status = ExerciseStatus.NOT_GRADED
            if timed_out:
                result.message = f"The notebook reached its time limit ({limits.notebook_timeout} s) before this exercise finished."
        else:
            result.status, result.points = ExerciseStatus.PASSED, result.max_points
        if result.status != ExerciseStatus.PASSED:
            result.hint = HINTS.get(result.status, DEFAULT_HINT)
    return warnings
