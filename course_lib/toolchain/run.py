"""Replay a notebook with nbval in a separate process, within time limits, and collect each cell's result.

pytest runs with our plugin (`plugin.py`), which appends one JSON line per cell to a results file as the
cell finishes, so whatever ran before a time limit or a crash is kept. The process gets its own process
group on POSIX, so a kill also stops the kernel it started.

With `sandboxed=True` only the kernel runs in the sandbox (sandbox.py); pytest, nbval, the merged notebook
with its reference outputs and the results file stay in `workdir`, which the kernel never sees. Either way
pytest gets an environment built from a few safe variables, not the grader's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from ..utils import ASSETS_DIR
from . import sandbox
from .notebook_files import write

SANITIZER = ASSETS_DIR / "nbval_sanitize.cfg"
PLUGIN = "course_lib.toolchain.plugin"


@dataclass
class Limits:
    cell_timeout: int = 60        # seconds for one cell
    notebook_timeout: int = 600   # seconds for the whole notebook
    memory_mb: int = 4096         # address-space limit of the kernel (Linux; ignored where unsupported)
    max_output: int = 1_000_000   # characters a cell may print before the rest is dropped
    max_file_mb: int = 50         # larger submissions are refused unread


def nbval_command(nb_path: Path, ini: Path, limits: Limits) -> list[str]:
    return [sys.executable, "-m", "pytest", "-q", "-c", str(ini), "--rootdir", str(ini.parent),
            "-p", "no:cacheprovider", "-p", PLUGIN, "--nbval-lax", "--nbval-current-env",
            "--nbval-sanitize-with", str(SANITIZER), "--nbval-cell-timeout", str(limits.cell_timeout), "--color=no",
            str(nb_path)]


def grading_env(workdir: Path, results_path: Path, record: bool) -> dict[str, str]:
    """pytest's environment: a few safe variables (the kernel inherits it where there is no sandbox)."""
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    env = dict(sandbox.SAFE_ENV, HOME=str(home), COURSE_GRADE_RESULTS=str(results_path), PATH=os.environ.get("PATH", ""))
    for key in ("SYSTEMROOT", "SYSTEMDRIVE", "TEMP", "TMP", "TMPDIR", "VIRTUAL_ENV"):  # Windows needs these to start Python
        if key in os.environ:
            env[key] = os.environ[key]
    if record:
        env["COURSE_GRADE_RECORD"] = "1"
    return env


def run_nbval(notebook, workdir: Path, limits: Limits, sandboxed: bool = False, record: bool = False) -> tuple[list[dict], bool]:
    """Replay `notebook` with nbval in `workdir`. Returns (one result per cell that ran, timed out?).

    `sandboxed`: start the kernel in the sandbox. `record`: the grader's own run of a solution notebook,
    in which the checkers also send the reference's values and calls.
    """
    nb_path, results_path, log_path = workdir / "submission.ipynb", workdir / "results.jsonl", workdir / "pytest.log"
    write(notebook, nb_path)
    ini = workdir / "pytest.ini"
    ini.write_text("[pytest]\n", encoding="utf-8")  # keep the course's own config out
    results_path.unlink(missing_ok=True)
    env = grading_env(workdir, results_path, record)
    if sandboxed:
        ipc, scratch = sandbox.prepare(workdir)
        env["COURSE_SANDBOX"] = json.dumps([sandbox.kernel_command(ipc, scratch), str(ipc)])
    timed_out = False
    with open(log_path, "wb") as log:
        process = subprocess.Popen(nbval_command(nb_path, ini, limits), cwd=workdir, env=env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=(os.name == "posix"))
        try:
            process.wait(timeout=limits.notebook_timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
        kill(process)  # also whatever the kernel left running, where there is no sandbox to end it
    if sandboxed:
        shutil.rmtree(workdir / "sandbox", ignore_errors=True)
    return read_results(results_path), timed_out


def read_results(path: Path) -> list[dict]:
    """The plugin's records, skipping a last line cut short by a kill."""
    results = []
    if path.exists():
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                results.append(json.loads(line))
            except json.JSONDecodeError:
                pass
    return results


def kill(process: subprocess.Popen) -> None:
    """Stop pytest and the kernel it started (the whole process group on POSIX)."""
    try:
        if os.name == "posix":
            os.killpg(process.pid, signal.SIGKILL)
        else:
            process.kill()
    except (ProcessLookupError, PermissionError):
        pass
    process.wait()
