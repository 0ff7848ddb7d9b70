"""Grade submissions against solutions/: find them, tell their chapter, merge, replay, score, report.

For each submission: pick its solution notebook (`solution_for`), build the merged notebook
(`merge.py`), replay it with nbval in a temporary folder in a separate process with time and memory
limits (`run.py`), map each cell's result to its exercise (`score.py`) and write the reports
(`report.py`). An exercise that crashes the kernel is left out of a re-run so the others still get graded.

The submission is only ever read. Whatever it holds (broken JSON, deleted or doubled cells, endless
loops, a kernel crash, huge output, another chapter's notebook) ends as a clear per-exercise report.
"""

from __future__ import annotations

import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from ..utils import SOLUTIONS_DIR
from .merge import merge
from .notebook_files import read
from .report import ExerciseResult, ExerciseStatus, Report, ReportStatus, summary_text, write_gradebook, write_report
from .roles import cell_roles, exercise_of, exercises, is_hidden_check
from .run import Limits, run_nbval
from .score import HINTS, score_exercises

MAX_ATTEMPTS = 3  # one run, then up to two re-runs without the exercises that crashed the kernel


def find_submissions(paths: list[Path]) -> list[tuple[Path, str]]:
    """(notebook, student id) for every file given and every .ipynb below every folder given."""
    found: list[tuple[Path, str]] = []
    for path in map(Path, paths):
        if not path.exists():
            raise FileNotFoundError(f"no such file or folder: {path}")
        if path.is_dir():
            for nb in sorted(path.rglob("*.ipynb")):
                if ".ipynb_checkpoints" not in nb.parts:
                    found.append((nb, nb.relative_to(path).with_suffix("").as_posix().replace("/", "__")))
        else:
            found.append((path, path.stem))
    stems = [student for _, student in found]
    # Two files with the same name (alice/01.ipynb, bob/01.ipynb): name them by their folder too.
    found = [(nb, f"{nb.parent.name}__{s}" if stems.count(s) > 1 and nb.parent.name else s) for nb, s in found]
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
                   chapter: str | None = None) -> Report:
    """Grade one submission. Never raises for anything the submission does; never writes to it."""
    limits = limits or Limits()
    start = time.monotonic()
    report = Report(submission=str(path), student=student)
    try:
        _grade_into(report, Path(path), solutions_dir, limits, chapter)
    except Exception as error:  # the grader's own failure still gives a report, and the batch goes on
        report.status, report.message = ReportStatus.ERROR, f"the grader failed on this submission: {type(error).__name__}: {error}"
    report.seconds = round(time.monotonic() - start, 1)
    report.score = sum(e.points for e in report.exercises)
    return report


def _read_submission(report: Report, path: Path, limits: Limits):
    """The submission notebook, or None with the report saying why it cannot be read."""
    if not path.is_file():
        report.status, report.message = ReportStatus.UNREADABLE, f"no such file: {path}"
        return None
    if path.stat().st_size > limits.max_file_mb * 2**20:
        report.status = ReportStatus.UNREADABLE
        report.message = f"the file is larger than {limits.max_file_mb} MB; clear its outputs and save it again"
        return None
    try:
        return read(path)
    except ValueError as error:
        report.status, report.message = ReportStatus.UNREADABLE, str(error)
        return None


def _grade_into(report: Report, path: Path, solutions_dir: Path, limits: Limits, chapter: str | None) -> None:
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
    skip: set[str] = set()
    for _ in range(MAX_ATTEMPTS):
        results = {e.id: ExerciseResult(e.id, e.points) for e in expected}
        merged = merge(solution, roles, submission, limits, results, skip)
        with tempfile.TemporaryDirectory(prefix="course-grade-") as workdir:
            cells, timed_out = run_nbval(merged, Path(workdir), limits)
        sources = [c.source for c in merged.cells[1:]]  # without the grader's setup cell, like `roles`
        report.warnings = score_exercises(results, cells, roles, timed_out, limits, sources)
        crashed = {r.id for r in results.values() if r.status == ExerciseStatus.CRASHED} - skip
        if not crashed:
            break
        skip |= crashed
    for exercise_id in skip:
        results[exercise_id].status = ExerciseStatus.CRASHED
        results[exercise_id].message = "Your code stopped the Python kernel; this exercise was left out of the re-run."
        results[exercise_id].hint = HINTS[ExerciseStatus.CRASHED]
    report.exercises = list(results.values())
    extra = sum(1 for c in submission.cells if c.cell_type == "code" and not exercise_of(c) and c.source.strip()) - \
        sum(1 for c in solution.cells if c.cell_type == "code" and not exercise_of(c) and not is_hidden_check(c))
    if extra > 0:
        report.warnings.append(f"{extra} code cell(s) of yours outside the exercise cells were not graded: "
                               "the grader uses only the exercise cells (put helpers inside them)")


def grade(paths: list[Path], out_dir: Path, solutions_dir: Path = SOLUTIONS_DIR, limits: Limits | None = None,
          jobs: int = 1, chapter: str | None = None, echo=print) -> list[Report]:
    """Grade every submission under `paths`; write a JSON report and a feedback file each, and a gradebook."""
    submissions = find_submissions(paths)
    if not submissions:
        raise FileNotFoundError(f"no notebooks found in {', '.join(map(str, paths))}")
    out_dir.mkdir(parents=True, exist_ok=True)

    def one(item: tuple[Path, str]) -> Report:
        report = grade_notebook(item[0], item[1], solutions_dir, limits, chapter)
        write_report(report, out_dir)
        echo(summary_text(report))
        return report

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        reports = list(pool.map(one, submissions))
    if len(reports) > 1:
        write_gradebook(reports, out_dir / "gradebook.csv")
    return reports
