"""Grade submissions against solutions/: find them, tell their chapter, merge, replay, score, report.

For each submission: pick its solution notebook (`solution_for`), build the merged notebook
(`merge.py`), replay it with nbval in a temporary folder in a separate process with time and memory
limits, its kernel in a sandbox (`run.py`, `sandbox.py`), judge each check's results against the
solution's own run (`verdicts.py`), map each cell's result to its exercise (`score.py`) and write the
reports (`report.py`). An exercise that crashes the kernel is left out of a re-run so the others still
get graded.

The submission is only ever read, and only if it is a regular file (a symbolic link is refused, never
followed). Whatever it holds (broken JSON, deleted or doubled cells, endless loops, a kernel crash, huge
output, another chapter's notebook, an attack on the grader) ends as a clear per-exercise report.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import nbformat

from ..utils import SOLUTIONS_DIR
from . import sandbox
from .merge import indexed, merge
from .notebook_files import read
from .release import SELF_GRADE_CELL_ID
from .report import ExerciseResult, ExerciseStatus, Report, ReportStatus, summary_text, write_gradebook, write_report
from .roles import cell_roles, exercise_of, exercises, is_hidden_check
from .run import Limits, run_nbval
from .score import HINTS, redact, score_exercises
from .verdicts import ReferenceRunFailed, reference_for

MAX_ATTEMPTS = 3  # one run, then up to two re-runs without the exercises that crashed the kernel
UNSAFE_NAME_RE = re.compile(r"[^\w.\-]+")


def unisolated_note() -> str:
    works, line = sandbox.status()
    return "the sandbox was turned off for this run; submissions ran unisolated" if works else line


class SandboxUnavailable(RuntimeError):
    """--require-sandbox, and no sandbox works on this machine."""


def safe_student_id(name: str) -> str:
    """A student id that is safe as a file name: letters, digits, `_`, `.`, `-` (others become `_`)."""
    name = UNSAFE_NAME_RE.sub("_", name).strip(".") or "_"
    return name[:120]


def _notebooks_below(folder: Path) -> list[Path]:
    """Every .ipynb below `folder` (links to files included, to be refused later; links to folders not followed)."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d != ".ipynb_checkpoints")
        found += [Path(root) / f for f in sorted(files) if f.endswith(".ipynb")]
    return found


def find_submissions(paths: list[Path]) -> list[tuple[Path, str]]:
    """(notebook, student id) for every file given and every .ipynb below every folder given."""
    found: list[tuple[Path, str]] = []
    for path in map(Path, paths):
        if not path.exists() and not path.is_symlink():
            raise FileNotFoundError(f"no such file or folder: {path}")
        if path.is_dir() and not path.is_symlink():
            for nb in _notebooks_below(path):
                found.append((nb, safe_student_id(nb.relative_to(path).with_suffix("").as_posix().replace("/", "__"))))
        else:
            found.append((path, safe_student_id(path.stem or path.name)))
    stems = [student for _, student in found]
    # Two files with the same name (alice/01.ipynb, bob/01.ipynb): name them by their folder too.
    found = [(nb, safe_student_id(f"{nb.parent.name}__{s}") if stems.count(s) > 1 and nb.parent.name else s) for nb, s in found]
    seen: dict[str, int] = {}
    unique = []
    for nb, student in found:
        seen[student] = seen.get(student, 0) + 1
        unique.append((nb, student if seen[student] == 1 else f"{student}-{seen[student]}"))
    return unique


def solution_for(submission, path: Path, solutions_dir: Path, chapter: str | None) -> Path:
    """The solution notebook to grade against, or ValueError saying why none fits."""
    available = {p.stem: p for p in sorted(solutions_dir.glob("*.ipynb"))}
    claimed = chapter or submission.metadata.get("course", {}).get("chapter") or path.stem
    if claimed in available:
        return available[claimed]
    # A renamed file: find the chapter whose exercise ids it shares.
    ids = {e.id for e in exercises(submission)}
    shared = {name: len(ids & {e.id for e in exercises(read(p))}) for name, p in available.items()}
    best = max(shared, key=shared.get, default=None)
    if best and shared[best]:
        return available[best]
    raise ValueError(f"cannot tell which chapter this is: {claimed!r} is not one of {sorted(available)} "
                     "and it has no exercise of any chapter. Pass --chapter NAME if it was renamed.")


def grade_notebook(path: Path, student: str, solutions_dir: Path = SOLUTIONS_DIR, limits: Limits | None = None,
                   chapter: str | None = None, sandboxed: bool | None = None) -> Report:
    """Grade one submission. Never raises for anything the submission does; never writes to it.

    `sandboxed`: run the kernel in the sandbox (default: wherever one works; see sandbox.status()).
    """
    limits = limits or Limits()
    sandboxed = sandbox.status()[0] if sandboxed is None else sandboxed
    start = time.monotonic()
    report = Report(submission=str(path), student=student)
    try:
        _grade_into(report, Path(path), solutions_dir, limits, chapter, sandboxed)
    except ReferenceRunFailed as error:
        report.status, report.message = ReportStatus.ERROR, str(error)
    except Exception as error:  # the grader's own failure still gives a report, and the batch goes on
        report.status = ReportStatus.ERROR
        report.message = redact(f"the grader failed on this submission: {type(error).__name__}: {error}")[:500]
    report.seconds = round(time.monotonic() - start, 1)
    report.score = sum(e.points for e in report.exercises)
    return report


def _read_submission(report: Report, path: Path, limits: Limits):
    """The submission notebook, or None with the report saying why it cannot be read.

    Only a regular file is read, opened without following a link (O_NOFOLLOW), so a link to another
    student's work, a solution or a system file is refused, never read.
    """
    def refuse(message: str) -> None:
        report.status, report.message = ReportStatus.UNREADABLE, message

    try:
        info = os.lstat(path)
    except OSError:
        return refuse(f"no such file: {path.name}")
    if stat.S_ISLNK(info.st_mode):
        return refuse("the file is a symbolic link; the grader reads only regular files (submit the notebook itself)")
    if not stat.S_ISREG(info.st_mode):
        return refuse("not a regular file; the grader reads only regular files (submit the notebook itself)")
    if info.st_size > limits.max_file_mb * 2**20:
        return refuse(f"the file is larger than {limits.max_file_mb} MB; clear its outputs and save it again")
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        return refuse(f"the file cannot be opened ({type(error).__name__})")
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return refuse("not a regular file; the grader reads only regular files (submit the notebook itself)")
        data = handle.read(limits.max_file_mb * 2**20 + 1)
    try:
        return nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as error:  # broken JSON, not UTF-8, not a notebook: say what, never quote the file
        where = re.search(r"line \d+ column \d+", str(error))
        return refuse(f"{path.name} is not a readable Jupyter notebook ({type(error).__name__}"
                      + (f" at {where.group(0)}" if where else "") + ")")


def _grade_into(report: Report, path: Path, solutions_dir: Path, limits: Limits, chapter: str | None,
                sandboxed: bool) -> None:
    submission = _read_submission(report, path, limits)
    if submission is None:
        return
    try:
        solution_path = solution_for(submission, path, solutions_dir, chapter)
    except ValueError as error:
        report.status, report.message = ReportStatus.WRONG_NOTEBOOK, str(error)
        return
    solution = read(solution_path)
    report.chapter = solution_path.stem
    expected = exercises(solution)
    report.max_score = sum(e.points for e in expected)
    if not {e.id for e in exercises(submission)} & {e.id for e in expected}:
        report.status = ReportStatus.WRONG_NOTEBOOK
        report.message = f"this notebook has none of the exercises of {report.chapter}; did you submit the right file?"
        report.exercises = [ExerciseResult(e.id, e.points, status=ExerciseStatus.MISSING, hint=HINTS[ExerciseStatus.MISSING])
                            for e in expected]
        return
    roles = cell_roles(solution)
    reference = reference_for(solution_path, indexed(solution, limits), roles, limits,
                              lambda nb, workdir: run_nbval(nb, workdir, limits, sandboxed=False, record=True))
    skip: set[str] = set()
    for _ in range(MAX_ATTEMPTS):
        results = {e.id: ExerciseResult(e.id, e.points) for e in expected}
        merged = merge(solution, roles, submission, limits, results, skip)
        with tempfile.TemporaryDirectory(prefix="course-grade-") as workdir:
            cells, timed_out = run_nbval(merged, Path(workdir), limits, sandboxed=sandboxed)
        sources = [c.source for c in merged.cells[1:]]  # without the grader's setup cell, like `roles`
        report.warnings = score_exercises(results, cells, roles, timed_out, limits, sources, reference)
        crashed = {r.id for r in results.values() if r.status == ExerciseStatus.CRASHED} - skip
        if not crashed:
            break
        skip |= crashed
    for exercise_id in skip:
        results[exercise_id].status = ExerciseStatus.CRASHED
        results[exercise_id].message = "Your code stopped the Python kernel; this exercise was left out of the re-run."
        results[exercise_id].hint = HINTS[ExerciseStatus.CRASHED]
    report.exercises = list(results.values())
    extra = sum(1 for c in submission.cells if c.cell_type == "code" and not exercise_of(c) and c.source.strip()
                and c.get("id") != SELF_GRADE_CELL_ID) - \
        sum(1 for c in solution.cells if c.cell_type == "code" and not exercise_of(c) and not is_hidden_check(c))
    if extra > 0:
        report.warnings.append(f"{extra} code cell(s) of yours outside the exercise cells were not graded: "
                               "the grader uses only the exercise cells (put helpers inside them)")
    if not sandboxed:
        report.warnings.append(f"graded without isolation: {unisolated_note()}")


def grade(paths: list[Path], out_dir: Path, solutions_dir: Path = SOLUTIONS_DIR, limits: Limits | None = None,
          jobs: int = 1, chapter: str | None = None, echo=print, require_sandbox: bool = False,
          sandboxed: bool | None = None) -> list[Report]:
    """Grade every submission under `paths`; write a JSON report and a feedback file each, and a gradebook.

    Says in one line whether submissions run in a sandbox; with `require_sandbox`, refuses
    (SandboxUnavailable) where none works. `sandboxed=False` turns it off (tests of the fallback).
    """
    submissions = find_submissions(paths)
    if not submissions:
        raise FileNotFoundError(f"no notebooks found in {', '.join(map(str, paths))}")
    works, line = sandbox.status()
    if require_sandbox and not works:
        raise SandboxUnavailable(f"--require-sandbox: {line}")
    sandboxed = works if sandboxed is None else (sandboxed and works)
    echo(line if sandboxed else f"WARNING: {unisolated_note()}")
    out_dir.mkdir(parents=True, exist_ok=True)

    def one(item: tuple[Path, str]) -> Report:
        report = grade_notebook(item[0], item[1], solutions_dir, limits, chapter, sandboxed)
        write_report(report, out_dir)
        echo(summary_text(report))
        return report

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        reports = list(pool.map(one, submissions))
    if len(reports) > 1:
        write_gradebook(reports, out_dir / "gradebook.csv")
    return reports
