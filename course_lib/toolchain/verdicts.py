"""Verdicts decided outside the student's kernel.

In grading mode the checkers send, from each check cell, what the student's function returned on each case
(plain data, wire.py) and which course_lib functions it called. Here, in the grader's own process, those
results are judged against reference values the grader recorded itself, by running the solution notebook
once (cached by the hash of the notebook and of the course_lib files it loaded), with the checker's own comparison rebuilt from
that trusted run. Nothing the student's code prints, raises or replaces decides a verdict: a check cell
passes only when nbval's replay passed (its printed line matches the reference) *and* its results, judged
here, match. A check cell whose results never arrived fails.

The same trusted run tells which course_lib functions the references execute that the solution's answers
do not: a student's function that calls one of them while being checked is flagged.
"""

from __future__ import annotations

import builtins
import hashlib
import importlib
import json
import os
import re
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..checks import close, exact, short_repr
from ..utils import PACKAGE_DIR
from .report import ExerciseStatus
from .roles import CellRole, Role
from .wire import Unsupported, WireError, decode

CACHE_VERSION = "1"
SAFE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,60}$")
_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


class ReferenceRunFailed(RuntimeError):
    """The solution notebook itself does not pass its checks: nothing can be graded against it."""


@dataclass
class Reference:
    """What the trusted run of a solution notebook recorded: check records by cell index, flagged calls."""

    records: dict[int, list[dict]]
    flagged_calls: set[str] = field(default_factory=set)
    flagged_files: set[str] = field(default_factory=set)


@dataclass
class Verdict:
    ok: bool
    message: str = ""
    status: ExerciseStatus | None = None
    flags: list[str] = field(default_factory=list)
    kernel_words: bool = False  # the kernel's own failure message says it better (a comparison only it has)


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "course_lib" / "grading-reference"


def _sha(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return "missing"


def reference_key(solution_path: Path) -> str:
    digest = hashlib.sha256(f"{CACHE_VERSION} {sys.version}".encode())
    digest.update(Path(solution_path).read_bytes())
    return f"{Path(solution_path).stem}-{digest.hexdigest()[:24]}"


def _fresh(data: dict) -> bool:
    """Whether every course_lib file the recorded run loaded is still the same."""
    return all(_sha(PACKAGE_DIR / name) == digest for name, digest in data["deps"].items())


def reference_for(solution_path: Path, indexed_solution, roles: list[CellRole], limits, run) -> Reference:
    """The trusted records of a solution notebook, from the cache or by running it once (`run(nb, workdir)`)."""
    key = reference_key(solution_path)
    with _locks_guard:
        lock = _locks.setdefault(key, threading.Lock())
    with lock:
        path = cache_dir() / f"{key}.json"
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                if _fresh(data):
                    return _from_json(data)
            except (ValueError, KeyError, TypeError, AttributeError):
                pass  # a damaged or stale cache file: record again
        with tempfile.TemporaryDirectory(prefix="course-reference-") as workdir:
            cells, timed_out = run(indexed_solution, Path(workdir))
        data = _record(cells, roles, timed_out, Path(solution_path).name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        tmp.write_text(json.dumps(data), encoding="utf-8")
        os.replace(tmp, path)
        return _from_json(data)


def _record(cells: list[dict], roles: list[CellRole], timed_out: bool, name: str) -> dict:
    ran = {c.get("index"): c for c in cells}
    records, reference_calls, solution_calls = {}, set(), set()
    modules = {"checks/__init__.py", "toolchain/wire.py", "toolchain/kernel_setup.py"}
    for index, (role, _) in enumerate(roles):
        cell = ran.get(index)
        if role in (Role.CHECK, Role.HIDDEN) and (cell is None or cell["outcome"] != "passed"):
            why = "did not run (time limit)" if cell is None else "failed"
            raise ReferenceRunFailed(f"cell {index} of the solution notebook {name} {why} in the grader's reference run; "
                                  "fix the solution (python -m course_lib execute) before grading")
        if cell is None or role not in (Role.CHECK, Role.HIDDEN):
            continue
        records[str(index)] = cell.get("records", [])
        for record in records[str(index)]:
            reference_calls |= set(record.get("reference_calls", []))
            solution_calls |= set(record.get("calls", []))
            modules |= set(record.get("modules", []))
            record.pop("modules", None)
    flagged = sorted(reference_calls - solution_calls)
    return {"records": records, "flagged_calls": flagged, "deps": {name: _sha(PACKAGE_DIR / name) for name in sorted(modules)}}


def _from_json(data: dict) -> Reference:
    flagged = set(data["flagged_calls"])
    return Reference({int(k): v for k, v in data["records"].items()}, flagged,
                     {"course_lib/" + name.split(":", 1)[0] for name in flagged})


def compare_from_spec(spec: list):
    """The checker's comparison, rebuilt here from the trusted run's description of it (["kernel"]: none)."""
    if spec == ["exact"]:
        return exact
    if len(spec) == 3 and spec[0] == "close":
        return close(float(spec[1]), float(spec[2]))
    if len(spec) == 3 and spec[0] == "function" and str(spec[1]).startswith("course_lib.checks") \
            and SAFE_NAME_RE.match(str(spec[2])):
        return getattr(importlib.import_module(str(spec[1])), str(spec[2]))
    raise ValueError(f"unknown comparison {spec!r}")


def exception_name(name) -> str:
    """A built-in exception's name as it is, anything else (a name the student chose) as 'an exception'."""
    name = str(name)
    value = getattr(builtins, name, None) if SAFE_NAME_RE.match(name) else None
    known = isinstance(value, type) and issubclass(value, BaseException)
    return name if known or name in ("CheckFailed", "KernelDied") else "an exception"


def _judge_cases(expected: dict, got: dict, hidden: bool, show_got: bool) -> Verdict:
    group, n = expected["group"], expected["n"]
    results = got.get("results")
    if not isinstance(results, list) or len(results) > n:
        return Verdict(False, f"{group}: the check's results did not reach the grader intact")
    if expected["compare"] == ["kernel"]:  # a comparison only the kernel has: check that every case ran
        return Verdict(len(results) == n and not any(isinstance(r, dict) and ("$raised" in r or "$not_implemented" in r)
                                                    for r in results), f"{group}: the check failed", kernel_words=True)
    compare = compare_from_spec(expected["compare"])
    for i, raw in enumerate(results):
        label = f"case {i + 1} of {n}" if hidden else f"case '{expected['labels'][i]}'"
        head = f"{group}: {label} failed"
        if isinstance(raw, dict) and raw.get("$not_implemented") is True:
            return Verdict(False, "NotImplementedError: the exercise still raises NotImplementedError",
                           ExerciseStatus.NOT_IMPLEMENTED)
        if isinstance(raw, dict) and "$raised" in raw:
            what = exception_name(raw["$raised"])
            if hidden:
                return Verdict(False, f"{head}: your function raised {what}")
            return Verdict(False, f"{head}\n  {expected['calls_repr'][i]}\n  expected: {short_repr(decode(expected['expected'][i]))}\n"
                                  f"  got:      {what} was raised" + _hint(expected))
        try:
            value = decode(raw)
            problem = compare(value, decode(expected["expected"][i]))
        except (WireError, ValueError, TypeError, RecursionError, OverflowError) as error:
            value, problem = Unsupported("unreadable value"), f"the result could not be read ({type(error).__name__})"
        except Exception as error:  # a comparison that chokes on a strange value: that value is wrong
            value, problem = Unsupported("unreadable value"), f"the result could not be compared ({type(error).__name__})"
        if problem:
            if hidden:
                return Verdict(False, head + ("" if "differ" in problem or "tolerance" in problem else f": {_type_only(problem)}"))
            shown = short_repr(value) if show_got else "(not shown: run the check cell in your notebook to see it)"
            return Verdict(False, f"{head}\n  {expected['calls_repr'][i]}: {problem if show_got else _type_only(problem)}\n"
                                  f"  expected: {short_repr(decode(expected['expected'][i]))}\n  got:      {shown}" + _hint(expected))
    if len(results) < n:
        return Verdict(False, f"{group}: the check stopped after {len(results)} of {n} cases")
    return Verdict(True)


def _type_only(problem: str) -> str:
    """A comparison's problem without values in it (only 'expected a dict, got a list' kinds of text)."""
    return problem if problem.startswith("expected a") and len(problem) < 120 else "a different value"


def _hint(expected: dict) -> str:
    return f"\n  hint: {expected['hint']}" if expected.get("hint") else ""


def judge(expected: list[dict], got: list, hidden: bool, show_got: bool) -> Verdict | None:
    """The verdict on one check cell: `expected` from the trusted run, `got` what the kernel sent.

    None when the trusted run recorded nothing for this cell (a check that uses no checker).
    """
    if not expected:
        return None
    if not isinstance(got, list) or any(not isinstance(g, dict) for g in got):
        return Verdict(False, "the check's results did not reach the grader intact")
    if not got:
        return Verdict(False, "the check's results never reached the grader", flags=[])
    for i, e in enumerate(expected):
        if i >= len(got):
            return Verdict(False, f"{e['group']}: this check did not run")
        g = got[i]
        if g.get("kind") != e["kind"] or g.get("group") != e["group"]:
            return Verdict(False, "the check's results did not match the checks that were asked for")
        if e["kind"] == "cases":
            verdict = _judge_cases(e, g, hidden, show_got)
        else:  # a group the checker decided in the kernel (no run_cases): only its count can be checked here
            ok = g.get("passed") == g.get("total") == e.get("total")
            verdict = Verdict(ok, "" if ok else f"{e['group']}: the check failed")
        if not verdict.ok:
            return verdict
    if len(got) > len(expected):
        return Verdict(False, "the check sent more results than it has checks")
    return Verdict(True)


def runtime_flags(reference: Reference, got: list) -> list[str]:
    """Flags from what the kernel noted while the student's function was checked."""
    calls, opened = set(), set()
    for g in got if isinstance(got, list) else []:
        if isinstance(g, dict):
            calls |= {str(c)[:200] for c in g.get("calls", []) if isinstance(c, str)}
            opened |= {str(o)[:200] for o in g.get("opened", []) if isinstance(o, str)}
    flags = []
    used = sorted(calls & reference.flagged_calls)
    if used:
        shown = ", ".join(name.replace(".py:", ".") for name in used[:4]) + (" ..." if len(used) > 4 else "")
        flags.append(f"calls course_lib's reference ({shown}) when it is checked: the exercise asks you to write this yourself")
    if "a solution notebook or the solutions folder" in opened:
        flags.append("tried to read a solution notebook or the solutions folder")
    read = sorted(o for o in opened if o in reference.flagged_files)
    if read:
        flags.append(f"reads the reference's source ({', '.join(read[:3])}) when it is checked")
    return flags
