"""Grade submissions against solutions/ with nbval.

nbval compares a notebook only with the outputs stored in that same notebook, so for each submission we
build a merged notebook: the solution notebook with the student's answers spliced into its exercise cells
(matched by exercise id), and everything else (checks, hidden checks and their stored outputs) from
solutions/. We replay it with nbval in lax mode in a temporary folder, in a separate process with time
and memory limits, and map each failing cell to its exercise.

The submission is only ever read. Whatever it holds (broken JSON, deleted or doubled cells, endless
loops, a kernel crash, huge output, another chapter's notebook) ends as a clear per-exercise report.
"""

from __future__ import annotations

import ast
import copy
import csv
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import notebooks as nbs
from .utils import ASSETS_DIR, SOLUTIONS_DIR

SANITIZER = ASSETS_DIR / "nbval_sanitize.cfg"
NBVAL_MARKER_RE = re.compile(r"^\s*#\s*(NBVAL_\w+|PYTEST_VALIDATE_IGNORE_OUTPUT)\s*$", re.MULTILINE)
ANSI_RE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
EXCEPTION_LINE_RE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Failed|Interrupt|Exit|Died))(:|$)")
CHECKER_NAMES = {"checks", "check", "run_cases", "CheckFailed", "grading", "grading_plugin", "report", "fail"}

HINTS = {
    "not implemented": "Replace the `raise NotImplementedError(...)` line with your code, run the cell, then run its check cell.",
    "missing": "The grader finds an exercise by its cell (id in the cell's metadata, or the `# EXERCISE:` first line). "
               "Copy the exercise cell from a fresh copy of the notebook and paste your code into it.",
    "timeout": "Your code ran past the time limit. Look for a loop that never ends, or work that grows too fast.",
    "crashed": "Your code stopped the Python kernel (os._exit, a crash in native code, or too much memory).",
    "error": "Your exercise cell raised an error when it ran; run it in the notebook and read the traceback.",
    "not graded": "The notebook ran out of time before reaching this exercise; make the earlier exercises faster.",
}


@dataclass
class Limits:
    cell_timeout: int = 60        # seconds for one cell
    notebook_timeout: int = 600   # seconds for the whole notebook
    memory_mb: int = 4096         # address-space limit of the kernel (Linux; ignored where unsupported)
    max_output: int = 1_000_000   # characters a cell may print before the rest is dropped
    max_file_mb: int = 50         # larger submissions are refused unread


@dataclass
class ExerciseResult:
    id: str
    max_points: int
    points: int = 0
    status: str = "not graded"
    message: str = ""
    hint: str = ""
    flags: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Report:
    submission: str
    student: str
    chapter: str = ""
    status: str = "graded"        # graded | unreadable | wrong notebook | error
    message: str = ""
    score: int = 0
    max_score: int = 0
    exercises: list[ExerciseResult] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    seconds: float = 0.0


# ----------------------------------------------------------------------------------------------------
# Which solution a submission belongs to

def solution_for(submission, path: Path, solutions_dir: Path, chapter: str | None) -> Path:
    """The solution notebook to grade against, or ValueError saying why none fits."""
    available = {p.stem: p for p in sorted(solutions_dir.glob("*.ipynb"))}
    claimed = chapter or submission.metadata.get("course", {}).get("chapter") or path.stem
    if claimed in available:
        return available[claimed]
    # A renamed file: find the chapter whose exercise ids it shares.
    ids = {e.id for e in nbs.exercises(submission)}
    shared = {chapter: len(ids & {e.id for e in nbs.exercises(nbs.read(path))}) for chapter, path in available.items()}
    best = max(shared, key=shared.get, default=None)
    if best and shared[best]:
        return available[best]
    raise ValueError(f"cannot tell which chapter this is: {claimed!r} is not one of {sorted(available)} "
                     "and it has no exercise of any chapter. Pass --chapter NAME if it was renamed.")


# ----------------------------------------------------------------------------------------------------
# Building the merged notebook

def _course_lib_names(tree: ast.AST, aliases: set[str]) -> set[str]:
    """Names from course_lib that code refers to: imports, `alias.attr` and bare imported names."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_lib"):
            names |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("course_lib")}
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            names.add(f"{node.value.id}.{node.attr}")
        elif isinstance(node, ast.Name) and node.id in aliases:
            names.add(node.id)
    return names


def _aliases(solution) -> set[str]:
    """Every name the solution notebook binds to something imported from course_lib."""
    aliases = set()
    for cell in solution.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_lib"):
                aliases |= {a.asname or a.name for a in node.names}
            elif isinstance(node, ast.Import):
                aliases |= {(a.asname or a.name).split(".")[0] for a in node.names if a.name.startswith("course_lib")}
    return aliases


def flags_for(student_source: str, solution_source: str, aliases: set[str]) -> list[str]:
    """Flags for the instructor (never a failure): calling the reference, touching the checkers."""
    try:
        student = _course_lib_names(ast.parse(student_source), aliases)
        solution = _course_lib_names(ast.parse(solution_source), aliases)
    except SyntaxError:
        return []
    flags = []
    extra = sorted(student - solution)
    touching = [n for n in extra if set(re.split(r"[.]", n)) & CHECKER_NAMES]
    if touching:
        flags.append(f"touches the checkers: {', '.join(touching)}")
    calls = [n for n in extra if n not in touching]
    if calls:
        flags.append(f"uses course_lib's {', '.join(calls)}, which the solution does not: "
                     "the exercise asks you to write this yourself")
    if NBVAL_MARKER_RE.search(student_source):
        flags.append("contains nbval markers (removed before grading)")
    return flags


def _setup_cell(limits: Limits):
    source = f'''# Added by the grader (not part of your notebook): the limits of this run.
def _course_grader_setup(memory_mb={limits.memory_mb}, max_output={limits.max_output}):
    import sys
    try:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
    except (ImportError, ValueError, OSError):
        pass  # not enforced on this OS

    class CappedStream:
        """Pass a cell's output through until max_output characters, then drop the rest (saying so once)."""
        def __init__(self, stream):
            self._stream, self._left = stream, max_output
        def reset(self, *args):
            self._left = max_output
        def write(self, text):
            if self._left <= 0:
                return len(text)
            if len(text) > self._left:
                text = text[: self._left] + "\\n[output truncated by the grader]\\n"
            self._left -= len(text)
            return self._stream.write(text)
        def __getattr__(self, name):
            return getattr(self._stream, name)

    sys.stdout, sys.stderr = CappedStream(sys.stdout), CappedStream(sys.stderr)
    shell = get_ipython()  # each cell gets its own allowance
    shell.events.register("pre_run_cell", sys.stdout.reset)
    shell.events.register("pre_run_cell", sys.stderr.reset)

_course_grader_setup()
del _course_grader_setup
'''
    import nbformat

    cell = nbformat.v4.new_code_cell(source)
    cell.metadata["course_grade"] = {"index": -1, "role": "setup", "owner": None}
    return cell


def merge(solution, submission, limits: Limits, results: dict[str, ExerciseResult], skip: set[str]):
    """The solution notebook with the submission's exercise cells spliced in (a new notebook).

    Fills in `results` (missing exercises, duplicates, flags). Exercises in `skip` are replaced by a
    stub that raises (they crashed the kernel in an earlier attempt).
    """
    merged = copy.deepcopy(solution)
    aliases = _aliases(solution)
    answers: dict[str, list] = {}
    for cell in submission.cells:
        exercise = nbs.exercise_of(cell)
        if exercise:
            answers.setdefault(exercise.id, []).append(cell)
    for index, (cell, (role, owner)) in enumerate(zip(merged.cells, nbs.cell_roles(solution))):
        cell.metadata["course_grade"] = {"index": index, "role": role, "owner": owner}
        if role != "exercise":
            continue
        result = results[owner]
        copies = answers.get(owner, [])
        cell.outputs, cell.execution_count = [], None
        if not copies:
            result.status = "missing"
            cell.source = f'raise NotImplementedError("exercise {owner} is missing from the submission")'
            continue
        if len(copies) > 1:
            result.warnings.append(f"the exercise cell appears {len(copies)} times; the last one was graded")
        source = copies[-1].get("source", "")
        source = "".join(source) if isinstance(source, list) else str(source)
        result.flags = flags_for(source, cell.source, aliases)
        source = NBVAL_MARKER_RE.sub("# (nbval marker removed by the grader)", source)
        if owner in skip:
            source = f'raise RuntimeError("exercise {owner} was not run again: it crashed the kernel")'
        cell.source = source
    merged.cells.insert(0, _setup_cell(limits))
    return merged


# ----------------------------------------------------------------------------------------------------
# Running nbval

def run_nbval(notebook, workdir: Path, limits: Limits) -> tuple[list[dict], bool]:
    """Replay `notebook` with nbval in `workdir`. Returns (one result per cell that ran, timed out?)."""
    nb_path, results_path, log_path = workdir / "submission.ipynb", workdir / "results.jsonl", workdir / "pytest.log"
    nbs.write(notebook, nb_path)
    (workdir / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")  # keep the course's own config out
    results_path.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", "-q", "-c", str(workdir / "pytest.ini"), "--rootdir", str(workdir),
               "-p", "no:cacheprovider", "-p", "course_lib.grading_plugin", "--nbval-lax", "--nbval-current-env",
               "--nbval-sanitize-with", str(SANITIZER), "--nbval-cell-timeout", str(limits.cell_timeout), "--color=no",
               str(nb_path)]
    env = dict(os.environ, COURSE_GRADE_RESULTS=str(results_path), COURSE_GRADING="1", MPLBACKEND="Agg",
               PYTHONHASHSEED="0")
    timed_out = False
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=(os.name == "posix"))
        try:
            process.wait(timeout=limits.notebook_timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill(process)
    results = []
    if results_path.exists():
        for line in results_path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                results.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a line cut short by the kill
    return results, timed_out


def _kill(process: subprocess.Popen) -> None:
    """Stop pytest and the kernel it started (the whole process group on POSIX)."""
    try:
        if os.name == "posix":
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()


# ----------------------------------------------------------------------------------------------------
# From cell results to exercise results

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


def _status_of_failure(role: str, message: str) -> str:
    """Classify a failed cell by its cleaned message (the raw one quotes source lines of every frame)."""
    if message.startswith("Not run:"):
        return "not graded"  # an earlier cell killed the kernel; this one never ran
    if message.startswith("NotImplementedError"):
        return "not implemented"
    if "kernel died" in message or "could not be interrupted" in message:
        return "crashed"
    if message.startswith("KeyboardInterrupt"):
        return "timeout"
    return "error" if role == "exercise" else "failed"


GRADED_ROLES = {"exercise": "exercise cell", "check": "check", "hidden": "hidden check"}


def _cell_label(index: int, sources: list[str] | None) -> str:
    """`cell 12 (`first line`)` so a student can find the cell a note is about."""
    if not sources or not 0 <= index < len(sources):
        return f"cell {index}"
    first = next((line.strip() for line in sources[index].splitlines() if line.strip() and not line.strip().startswith("#")), "")
    return f"cell {index} (`{first[:60]}`)"


def score_exercises(results: dict[str, ExerciseResult], cells: list[dict], roles: list[tuple[str, str | None]],
                    timed_out: bool, limits: Limits, sources: list[str] | None = None) -> list[str]:
    """Set each exercise's status, points and message from the cell results. Returns general warnings.

    An exercise earns its points when its exercise cell, its checks and its hidden checks all pass.
    Other cells that fail are reported as notes, not failures (they may use several exercises).
    """
    ran = {c.get("index"): c for c in cells}
    warnings = []
    for index, (role, owner) in enumerate(roles):
        cell = ran.get(index)
        failed = cell is not None and cell["outcome"] == "failed"
        if role == "markdown" or not failed:
            continue
        message = clean_message(cell["message"])
        kind = _status_of_failure(role, message)
        if kind == "timeout":
            message = f"it ran past the {limits.cell_timeout} s limit (is your code much slower than it needs to be?)"
        if owner is None:
            warnings.append(f"{_cell_label(index, sources)}, before any exercise, failed: {message[:300]}")
        elif role == "code" and kind not in ("not graded", "not implemented"):
            results[owner].warnings.append(f"a later cell that uses your code, {_cell_label(index, sources)}, failed: {message[:300]}")
    for exercise_id, result in results.items():
        if result.status == "missing":
            result.hint = HINTS["missing"]
            continue
        owned = [(role, ran.get(i)) for i, (role, owner) in enumerate(roles) if owner == exercise_id and role in GRADED_ROLES]
        failures = [(role, cell) for role, cell in owned if cell is not None and cell["outcome"] == "failed"]
        if failures:
            role, cell = failures[0]
            message = clean_message(cell["message"])
            result.status = _status_of_failure(role, message)
            if result.status == "timeout":
                result.message = f"The {GRADED_ROLES[role]} took longer than {limits.cell_timeout} s and was stopped."
            else:
                result.message = ("A hidden check failed:\n" if role == "hidden" else "") + message
        elif any(cell is None for _, cell in owned):
            result.status = "not graded"
            if timed_out:
                result.message = f"The notebook reached its time limit ({limits.notebook_timeout} s) before this exercise finished."
        else:
            result.status, result.points = "passed", result.max_points
        if result.status != "passed":
            result.hint = HINTS.get(result.status, "Read the message above, fix your code, and run the check cell again.")
    return warnings


# ----------------------------------------------------------------------------------------------------
# One submission, many submissions

def grade_notebook(path: Path, student: str, solutions_dir: Path = SOLUTIONS_DIR, limits: Limits | None = None,
                   chapter: str | None = None) -> Report:
    """Grade one submission. Never raises for anything the submission does; never writes to it."""
    limits = limits or Limits()
    start = time.monotonic()
    report = Report(submission=str(path), student=student)
    try:
        _grade_into(report, Path(path), solutions_dir, limits, chapter)
    except Exception as error:  # the grader's own failure still gives a report, and the batch goes on
        report.status, report.message = "error", f"the grader failed on this submission: {type(error).__name__}: {error}"
    report.seconds = round(time.monotonic() - start, 1)
    report.score = sum(e.points for e in report.exercises)
    return report


def _grade_into(report: Report, path: Path, solutions_dir: Path, limits: Limits, chapter: str | None) -> None:
    if not path.is_file():
        report.status, report.message = "unreadable", f"no such file: {path}"
        return
    if path.stat().st_size > limits.max_file_mb * 2**20:
        report.status, report.message = "unreadable", f"the file is larger than {limits.max_file_mb} MB; clear its outputs and save it again"
        return
    try:
        submission = nbs.read(path)
    except ValueError as error:
        report.status, report.message = "unreadable", str(error)
        return
    try:
        solution_path = solution_for(submission, path, solutions_dir, chapter)
    except ValueError as error:
        report.status, report.message = "wrong notebook", str(error)
        return
    solution = nbs.read(solution_path)
    report.chapter = solution_path.stem
    expected = nbs.exercises(solution)
    report.max_score = sum(e.points for e in expected)
    found = {e.id for e in nbs.exercises(submission)}
    if not found & {e.id for e in expected}:
        report.status = "wrong notebook"
        report.message = f"this notebook has none of the exercises of {report.chapter}; did you submit the right file?"
        report.exercises = [ExerciseResult(e.id, e.points, status="missing", hint=HINTS["missing"]) for e in expected]
        return
    skip: set[str] = set()
    for attempt in range(3):  # re-run without an exercise that crashed the kernel, so the others get graded
        results = {e.id: ExerciseResult(e.id, e.points) for e in expected}
        merged = merge(solution, submission, limits, results, skip)
        with tempfile.TemporaryDirectory(prefix="course-grade-") as workdir:
            cells, timed_out = run_nbval(merged, Path(workdir), limits)
        roles = [(c.metadata["course_grade"]["role"], c.metadata["course_grade"]["owner"]) for c in merged.cells[1:]]
        sources = [c.source for c in merged.cells[1:]]
        report.warnings = score_exercises(results, cells, roles, timed_out, limits, sources)
        crashed = {r.id for r in results.values() if r.status == "crashed"} - skip
        if not crashed:
            break
        skip |= crashed
    for exercise_id in skip:
        results[exercise_id].status = "crashed"
        results[exercise_id].message = "Your code stopped the Python kernel; this exercise was left out of the re-run."
        results[exercise_id].hint = HINTS["crashed"]
    report.exercises = list(results.values())
    extra = sum(1 for c in submission.cells if c.cell_type == "code" and not nbs.exercise_of(c) and c.source.strip()) - \
        sum(1 for c in solution.cells if c.cell_type == "code" and not nbs.exercise_of(c) and not nbs.is_hidden_check(c))
    if extra > 0:
        report.warnings.append(f"{extra} code cell(s) of yours outside the exercise cells were not graded: "
                               "the grader uses only the exercise cells (put helpers inside them)")


def feedback_text(report: Report) -> str:
    """The readable feedback a student gets (Markdown)."""
    lines = [f"# Feedback: {report.chapter or Path(report.submission).name}", "",
             f"Submission: `{Path(report.submission).name}` · student: `{report.student}`", ""]
    if report.status != "graded":
        lines += [f"**Not graded ({report.status}):** {report.message}", ""]
    lines += [f"**Score: {report.score} / {report.max_score}**", ""]
    for e in report.exercises:
        mark = "✓" if e.status == "passed" else "✗"
        lines.append(f"## {mark} `{e.id}`: {e.points}/{e.max_points} points ({e.status})")
        if e.message:
            lines += ["", "```", e.message.strip(), "```"]
        if e.hint and e.status != "passed":
            lines += ["", f"Hint: {e.hint}"]
        for flag in e.flags:
            lines += ["", f"Flag for the instructor: {flag}"]
        for warning in e.warnings:
            lines += ["", f"Note: {warning}"]
        lines.append("")
    for warning in report.warnings:
        lines.append(f"Note: {warning}")
    return "\n".join(lines).rstrip() + "\n"


def summary_text(report: Report) -> str:
    """A few terminal lines per submission."""
    head = f"{report.student}: {report.score}/{report.max_score} points" + (f" [{report.chapter}]" if report.chapter else "")
    if report.status != "graded":
        head += f"  NOT GRADED ({report.status}): {report.message}"
    lines = [head]
    for e in report.exercises:
        first = e.message.strip().splitlines()[0] if e.message.strip() else ""
        lines.append(f"  {'✓' if e.status == 'passed' else '✗'} {e.id:<28} {e.points}/{e.max_points}  {e.status}"
                     + (f": {first[:100]}" if first and e.status != "passed" else "") + ("  [flagged]" if e.flags else ""))
    return "\n".join(lines)


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


def grade(paths: list[Path], out_dir: Path, solutions_dir: Path = SOLUTIONS_DIR, limits: Limits | None = None,
          jobs: int = 1, chapter: str | None = None, echo=print) -> list[Report]:
    """Grade every submission under `paths`; write a JSON report and a feedback file each, and a gradebook."""
    submissions = find_submissions(paths)
    if not submissions:
        raise FileNotFoundError(f"no notebooks found in {', '.join(map(str, paths))}")
    out_dir.mkdir(parents=True, exist_ok=True)

    def one(item: tuple[Path, str]) -> Report:
        report = grade_notebook(item[0], item[1], solutions_dir, limits, chapter)
        (out_dir / f"{report.student}.json").write_text(json.dumps(asdict(report), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        (out_dir / f"{report.student}.feedback.md").write_text(feedback_text(report), encoding="utf-8")
        echo(summary_text(report))
        return report

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        reports = list(pool.map(one, submissions))
    if len(reports) > 1:
        write_gradebook(reports, out_dir / "gradebook.csv")
    return reports


def write_gradebook(reports: list[Report], path: Path) -> None:
    columns = []
    for r in reports:
        columns += [f"{r.chapter}:{e.id}" for e in r.exercises if f"{r.chapter}:{e.id}" not in columns]
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["student", "chapter", "status", "score", "max_score", "flags"] + columns)
        for r in sorted(reports, key=lambda r: r.student):
            points = {f"{r.chapter}:{e.id}": e.points for e in r.exercises}
            flags = sum(len(e.flags) for e in r.exercises)
            writer.writerow([r.student, r.chapter, r.status, r.score, r.max_score, flags] + [points.get(c, "") for c in columns])
