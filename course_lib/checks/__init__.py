"""The checkers behind the notebooks' check cells.

A check cell calls a checker with the student's function. The checker runs it on fixed cases, compares
each result with the reference implementation's (exactly, or with stated tolerances) and then either
prints one deterministic line per case group (`count_words: 5/5 cases passed`) or raises `CheckFailed`
saying which case failed, what was expected, what came back, and a hint. IPython shows a `CheckFailed` as
that short message, not as a traceback through this package; when the student's own code raised, the
message quotes the student's line.

An exercise that is still a stub does not stop "Run All": its check prints `word_counts: not implemented
yet` and returns (every checker is wrapped in `@checker`), and later cells that need the student's function
take it through `yours_or_ours`, which hands them course_lib's version until the student's check passes.

Only integers, strings and verdicts are ever printed: floats are judged here, with tolerances, so the
printed line is the same on every OS, CPU or GPU and thread count (nbval compares it with the solution).

Chapter checkers live beside this file (`checks/welcome.py`, ...). Hidden checks call `run_cases` with
cases written in the hidden cell itself, so a student never sees them.

When the grader replays a notebook (COURSE_GRADING=1 in the kernel), `run_cases` also sends what the
student's function returned on each case out of the kernel as plain data (`toolchain/wire.py`), with the
course_lib functions it called, as an output of the check cell that the grader strips before nbval compares.
The grader decides the verdict itself from that data and the reference values recorded when the solution
notebook ran: nothing printed or raised here decides a grade (see `toolchain/verdicts.py`).
"""

from __future__ import annotations

import copy
import functools
import math
import os
import sys
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = ["CheckFailed", "Case", "run_cases", "call_student", "checker", "yours_or_ours", "exact", "close", "report",
           "fail", "short_repr", "Mistake", "fail_on_mistake"]


class CheckFailed(AssertionError):
    """A check did not pass. The message says which case, what was expected, what came back, a hint."""

    @property
    def _render_traceback_(self) -> Callable[[], list[str]]:
        # IPython shows what this returns instead of a traceback through course_lib/checks/, which would
        # push the useful lines below the fold. The grader parses the standard traceback, so while grading
        # the attribute does not exist (hasattr() is False) and IPython falls back to it.
        if _grading():
            raise AttributeError("_render_traceback_")
        return lambda: [f"{_RED}✗ {line}{_RESET}" if i == 0 else line for i, line in enumerate(str(self).splitlines())]


_RED, _RESET = "\x1b[1;31m", "\x1b[0m"


@dataclass
class Case:
    """One fixed input for a checker: a label the student can recognise and the call's arguments."""

    label: str
    args: tuple = ()
    kwargs: dict = field(default_factory=dict)

    def call_repr(self, name: str) -> str:
        parts = [short_repr(a, 60) for a in self.args] + [f"{k}={short_repr(v, 60)}" for k, v in self.kwargs.items()]
        return f"{name}({', '.join(parts)})"


def short_repr(value: Any, limit: int = 300) -> str:
    """repr() cut to `limit` characters; tensors and arrays summarised by shape, dtype and a few values."""
    if isinstance(value, torch.Tensor):
        dtype = str(value.dtype).replace("torch.", "")
        text = f"tensor(shape={tuple(value.shape)}, dtype={dtype}, values={value.flatten()[:6].tolist()}...)"
    elif isinstance(value, np.ndarray):
        text = f"array(shape={value.shape}, dtype={value.dtype}, values={value.ravel()[:6].tolist()}...)"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fail(group: str, case: str, expected: Any, got: Any, hint: str = "", detail: str = "", raised: str = "",
         error: BaseException | None = None) -> None:
    """Raise CheckFailed with the course's standard message (`raised` replaces `got` when the call raised;
    `error`, the exception the student's code raised, adds the student's own lines where it happened)."""
    lines = [f"{group}: case '{case}' failed"]
    if detail:
        lines.append(f"  {detail}")
    lines.append(f"  expected: {short_repr(expected)}")
    lines.append(f"  got:      {raised or short_repr(got)}")
    if hint:
        lines.append(f"  hint: {hint}")
    if error is not None:
        lines += student_frames(error)
    raise CheckFailed("\n".join(lines))


@dataclass(frozen=True)
class Mistake:
    """A typical wrong answer and the hint that fixes it (see `fail_on_mistake`)."""

    wrong: Any  # the answer the mistake gives, or a function of no arguments that computes it
    hint: str
    name: str = ""  # when given, the report says "your result equals <name>"


def fail_on_mistake(group: str, case: str, expected: Any, got: Any, mistakes: list[Mistake], compare: Compare,
                    detail: str = "") -> None:
    """If `got` is wrong and equals the answer of one of `mistakes`, fail with that mistake's hint.

    Checkers call this before `run_cases`, so a student who made a classic mistake reads its name and its fix
    rather than two lists of numbers. A mistake that gives the right answer on this case, or that cannot be
    computed for it, is skipped: it would name a mistake the student may not have made.
    """
    if compare(got, expected) is None:
        return
    for mistake in mistakes:
        try:
            wrong = mistake.wrong() if callable(mistake.wrong) else mistake.wrong
        except Exception:
            continue
        if compare(wrong, expected) is not None and compare(got, wrong) is None:
            fail(group, case, expected, got, hint=mistake.hint,
                 detail=detail or (f"your result equals {mistake.name}" if mistake.name else ""))


def student_frames(error: BaseException, limit: int = 3) -> list[str]:
    """The last `limit` lines of the traceback that are the student's code (not course_lib, not Python's)."""
    frames = [f for f in traceback.extract_tb(error.__traceback__)
              if not f.filename.startswith((_PACKAGE_DIR, os.path.dirname(os.__file__)))]
    if not frames:
        return []
    shown = [f"    line {f.lineno}, in {f.name}: {(f.line or '').strip()}" for f in frames[-limit:]]
    return ["  where, in your code:", *shown]


def report(group: str, passed: int, total: int | None = None) -> None:
    """Print the one deterministic line a passing case group leaves in the check cell.

    A checker that decides a group itself (not through `run_cases`) calls this; when grading, the grader
    is told that this group's verdict was reached in the kernel.
    """
    total = passed if total is None else total
    if _grading():
        _send({"kind": "kernel", "group": str(group), "passed": int(passed), "total": int(total)})
    if passed == total:
        SOLVED.add(str(group))
    _print_report(group, passed, total)


def _print_report(group: str, passed: int, total: int) -> None:
    print(f"{group}: {passed}/{total} cases passed")


# Comparisons return None when `got` matches `expected`, else a short description of the difference.
Compare = Callable[[Any, Any], "str | None"]


def exact(got: Any, expected: Any) -> str | None:
    """Equal values of the same type (lists, dicts, strings, ints, bytes...)."""
    if isinstance(expected, (torch.Tensor, np.ndarray)):
        return close(0.0, 0.0)(got, expected)
    both_numbers = isinstance(expected, (int, float)) and isinstance(got, (int, float)) and not isinstance(got, bool)
    if isinstance(expected, dict) and isinstance(got, dict):  # a Counter or defaultdict is a dict
        return None if dict(got) == dict(expected) else "values differ"
    if type(got) is not type(expected) and not both_numbers:
        return f"expected a {type(expected).__name__}, got a {type(got).__name__}"
    return None if got == expected else "values differ"


def close(rtol: float = 1e-5, atol: float = 1e-6) -> Compare:
    """Numbers, arrays or tensors equal within |got - expected| <= atol + rtol * |expected|."""

    def compare(got: Any, expected: Any) -> str | None:
        if isinstance(expected, (int, float)) and not isinstance(expected, bool):
            if isinstance(got, torch.Tensor) and got.numel() == 1:
                got = got.item()
            if not isinstance(got, (int, float)) or isinstance(got, bool):
                return f"expected a number, got a {type(got).__name__}"
            if math.isnan(got):
                return "got NaN"
            tolerance = atol + rtol * abs(expected)
            return None if abs(got - expected) <= tolerance else f"differs by {abs(got - expected):.3g} (tolerance {tolerance:.3g})"
        if isinstance(expected, torch.Tensor):
            if not isinstance(got, torch.Tensor):
                return f"expected a torch.Tensor, got a {type(got).__name__}"
            if got.shape != expected.shape:
                return f"shape {tuple(got.shape)} instead of {tuple(expected.shape)}"
            got_d, exp_d = got.detach().double().cpu(), expected.detach().double().cpu()
        elif isinstance(expected, np.ndarray):
            got = np.asarray(got)
            if got.shape != expected.shape:
                return f"shape {got.shape} instead of {expected.shape}"
            got_d, exp_d = torch.from_numpy(got.astype(np.float64)), torch.from_numpy(expected.astype(np.float64))
        elif isinstance(expected, (list, tuple)):
            if not isinstance(got, (list, tuple)) or len(got) != len(expected):
                return f"expected a sequence of length {len(expected)}, got {short_repr(got, 80)}"
            for i, (g, e) in enumerate(zip(got, expected)):
                problem = compare(g, e)
                if problem:
                    return f"item {i}: {problem}"
            return None
        else:
            return exact(got, expected)
        if torch.isnan(got_d).any() and not torch.isnan(exp_d).any():
            return "contains NaN"
        bad = (got_d - exp_d).abs() > atol + rtol * exp_d.abs()
        if bad.any():
            where = tuple(int(i) for i in bad.nonzero()[0])
            return (f"{int(bad.sum())} of {bad.numel()} values outside tolerance (rtol={rtol}, atol={atol}); "
                    f"first at index {where}: {got_d[where].item():.6g} instead of {exp_d[where].item():.6g}")
        return None

    compare.spec = ["close", rtol, atol]  # how the grader rebuilds this comparison outside the kernel
    return compare


def run_cases(
    group: str,
    student_fn: Callable,
    cases: list[Case],
    reference: Callable,
    compare: Compare = exact,
    hint: str = "",
) -> None:
    """Run `student_fn` and `reference` on every case; print one line if all match, else raise CheckFailed.

    Each call gets its own deep copy of the arguments, so a function that modifies its input in place
    cannot change what the reference sees. A NotImplementedError is let through unchanged so the grader
    can report the exercise as not implemented (outside grading and outside a checker, it prints
    `<group>: not implemented yet` instead). When grading, the results also go to the grader (above).
    """
    record = _Record(group, cases, compare, hint) if _grading() else None
    try:
        if not callable(student_fn):
            raise CheckFailed(f"{group}: expected a function, got {short_repr(student_fn, 80)}; did you overwrite its name?")
        for case in cases:
            with _watch(record, "reference_calls"):
                expected = reference(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
            if record and os.environ.get("COURSE_GRADE_RECORD") == "1":
                record.add("expected", expected)
            try:
                with _watch(record, "calls"):
                    got = student_fn(*copy.deepcopy(case.args), **copy.deepcopy(case.kwargs))
            except NotImplementedError:
                if record:
                    record.add("results", {"$not_implemented": True}, raw=True)
                if _grading() or _INSIDE_CHECKER[0]:
                    raise  # the grader reports it; a checker prints one line for all its groups
                print(f"{group}: not implemented yet")
                return
            except Exception as error:  # the student's bug, reported as a failed case
                if record:
                    record.add("results", {"$raised": type(error).__name__}, raw=True)
                fail(group, case.label, expected, None, hint, detail=case.call_repr(group),
                     raised=f"an exception, {type(error).__name__}: {error}", error=error)
            if record:
                record.add("results", got)
            problem = compare(got, expected)
            if problem:
                fail(group, case.label, expected, got, hint, detail=f"{case.call_repr(group)}: {problem}")
        SOLVED.add(str(group))
        _print_report(group, len(cases), len(cases))
    finally:
        if record:
            record.send()


# ----------------------------------------------------------------------------------------------------
# Grading mode: the records the grader judges outside the kernel (see the module docstring).

_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_UNWATCHED = (os.path.join(_PACKAGE_DIR, "checks", "__init__.py"), os.path.join(_PACKAGE_DIR, "toolchain", ""))


def _grading() -> bool:
    return os.environ.get("COURSE_GRADING") == "1"


def _spec(compare: Compare) -> list:
    if compare is exact:
        return ["exact"]
    spec = getattr(compare, "spec", None)
    if spec:
        return list(spec)
    module, name = getattr(compare, "__module__", "") or "", getattr(compare, "__qualname__", "") or ""
    if module.startswith("course_lib.checks") and name.isidentifier():
        return ["function", module, name]
    return ["kernel"]  # a lambda or closure the grader cannot rebuild: its verdict stays the kernel's (nbval's)


class _Record:
    """What one `run_cases` sends to the grader: the group, the cases, each result, the course_lib calls."""

    def __init__(self, group: str, cases: list[Case], compare: Compare, hint: str):
        self.data = {"kind": "cases", "group": str(group), "n": len(cases), "compare": _spec(compare),
                     "labels": [str(c.label) for c in cases], "calls_repr": [c.call_repr(str(group)) for c in cases],
                     "hint": str(hint), "results": [], "expected": [], "calls": set(), "reference_calls": set()}

    def add(self, key: str, value: Any, raw: bool = False) -> None:
        from ..toolchain.wire import WireError, encode

        try:
            self.data[key].append(value if raw else encode(value))
        except (WireError, RecursionError):
            self.data[key].append({"$unsupported": "value too large to send"})

    def send(self) -> None:
        from ..toolchain.kernel_setup import drain_opened

        self.data["calls"], self.data["reference_calls"] = sorted(self.data["calls"]), sorted(self.data["reference_calls"])
        self.data["opened"] = drain_opened()
        if os.environ.get("COURSE_GRADE_RECORD") == "1":  # which course_lib files the reference values depend on
            self.data["modules"] = sorted({os.path.relpath(m.__file__, _PACKAGE_DIR) for m in list(sys.modules.values())
                                           if (getattr(m, "__file__", None) or "").startswith(_PACKAGE_DIR)})
        _send(self.data)


def _send(data: dict) -> None:
    try:
        from IPython.display import publish_display_data

        from ..toolchain.wire import MIME
    except ImportError:  # not in a kernel: nothing to send to
        return
    publish_display_data({MIME: data})


class _watch:
    """Within the block, note each course_lib function (file:qualname) that Python code calls."""

    def __init__(self, record: _Record | None, key: str):
        self.record, self.key = record, key

    def __enter__(self):
        if self.key == "reference_calls" and os.environ.get("COURSE_GRADE_RECORD") != "1":
            self.record = None  # only the grader's own run of the solution notebook watches the reference
        if self.record is None:
            return self
        seen = self.record.data[self.key]

        def tracer(frame, event, arg):
            filename = frame.f_code.co_filename
            if filename.startswith(_PACKAGE_DIR) and not filename.startswith(_UNWATCHED):
                seen.add(f"{os.path.relpath(filename, _PACKAGE_DIR)}:{frame.f_code.co_qualname}")
            return None

        from ..toolchain import kernel_setup

        self.previous = sys.gettrace()
        kernel_setup.STUDENT_CODE[0] = self.key == "calls"
        sys.settrace(tracer)
        return self

    def __exit__(self, *exc):
        if self.record is not None:
            from ..toolchain import kernel_setup

            sys.settrace(self.previous)
            kernel_setup.STUDENT_CODE[0] = False
        return False


def call_student(group: str, case: str, student_fn: Callable, *args: Any) -> Any:
    """Call the student's function for a hand-written check: a stub's NotImplementedError passes through,
    any other exception becomes a failed case that names it."""
    try:
        return student_fn(*args)
    except NotImplementedError:
        raise
    except Exception as error:
        fail(group, case, "a result", None, raised=f"an exception, {type(error).__name__}: {error}", error=error)


# ----------------------------------------------------------------------------------------------------
# Run All reaches the end: stubs print one line, later cells borrow course_lib's version

SOLVED: set[str] = set()  # the checkers and case groups that passed in this kernel
_INSIDE_CHECKER = [0]  # how many @checker calls are running (checkers can call checkers)


def checker(check: Callable[..., None]) -> Callable[..., None]:
    """Wrap a chapter's checker so that a stub prints `<exercise>: not implemented yet` instead of raising.

    The exercise's name is the checker's (without a `check_` prefix). While grading, the stub's
    NotImplementedError still propagates: the grader reports it as "not implemented" and scores it 0.
    """
    name = check.__name__.removeprefix("check_")

    @functools.wraps(check)
    def run(*args: Any, **kwargs: Any) -> None:
        _INSIDE_CHECKER[0] += 1
        try:
            check(*args, **kwargs)
        except NotImplementedError:
            if _grading() or _INSIDE_CHECKER[0] > 1:
                raise
            print(f"{name}: not implemented yet")
            return
        finally:
            _INSIDE_CHECKER[0] -= 1
        SOLVED.add(name)

    return run


def yours_or_ours(name: str, student_fn: Callable, reference: Callable) -> Callable:
    """The student's function once its check (`name`: the checker or case group) passed in this kernel,
    else course_lib's `reference`, saying so in one line, so that the cells after an unsolved exercise run."""
    if name in SOLVED:
        return student_fn
    print(f"({name}: your version has not passed its check yet, so this cell uses course_lib's)")
    return reference
