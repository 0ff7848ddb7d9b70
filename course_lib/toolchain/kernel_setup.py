"""What the grader sets up inside the notebook's kernel before the first cell runs.

The grader adds one cell (`cell_source`) at the top of the notebook it replays; that cell imports this
module and calls `install` with the run's limits:

- a memory limit on the kernel's address space (RLIMIT_AS; Linux and other POSIX systems only), so a
  memory hog ends in a MemoryError instead of taking the machine down;
- a cap on what each cell may print: past `max_output` characters the rest is dropped (saying so once),
  so huge output cannot flood the grader. Every cell gets its own allowance;
- an audit hook (it cannot be removed) that notes each attempt to open a solution notebook, and each
  course_lib source file opened while a checker runs the student's function; the checkers send these
  notes to the grader with their results, and the grader flags them.

None of this is a security boundary (the sandbox is, see sandbox.py): the student's code runs in this
process. It keeps honest mistakes cheap and records what the grader reports.

Only the standard library is used here: this runs in the student's kernel.
"""

from __future__ import annotations

import os
import sys

try:
    import resource
except ImportError:  # Windows: no memory limit
    resource = None

TRUNCATED = "\n[output truncated by the grader]\n"
PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STUDENT_CODE = [False]     # True while a checker runs the student's function (set by course_lib.checks)
OPENED: list[str] = []     # what the audit hook noted, sent with the next check's results
_MAX_OPENED = 50


def cell_source(memory_mb: int, max_output: int) -> str:
    """The source of the cell the grader puts first in the notebook it replays."""
    return ("# Added by the grader (not part of your notebook): the limits of this run.\n"
            "from course_lib.toolchain.kernel_setup import install as _course_grader_setup\n"
            f"_course_grader_setup(get_ipython(), memory_mb={int(memory_mb)}, max_output={int(max_output)})\n"
            "del _course_grader_setup\n")


class CappedStream:
    """Pass a cell's output through until max_output characters, then drop the rest (saying so once)."""

    def __init__(self, stream, max_output: int):
        self._stream, self._max, self._left = stream, max_output, max_output

    def reset(self, *args) -> None:
        self._left = self._max

    def write(self, text: str) -> int:
        if self._left <= 0:
            return len(text)
        if len(text) > self._left:
            text = text[: self._left] + TRUNCATED
        self._left -= len(text)
        return self._stream.write(text)

    def __getattr__(self, name):
        return getattr(self._stream, name)


def limit_memory(memory_mb: int) -> bool:
    """Limit this process's address space to `memory_mb` MiB. False where the OS does not support it."""
    if resource is None:
        return False
    try:
        resource.setrlimit(resource.RLIMIT_AS, (memory_mb * 2**20, memory_mb * 2**20))
    except (ValueError, OSError):
        return False
    return True


def cap_output(shell, max_output: int) -> None:
    """Wrap stdout and stderr in CappedStreams whose allowance `shell` resets before each cell."""
    sys.stdout, sys.stderr = CappedStream(sys.stdout, max_output), CappedStream(sys.stderr, max_output)
    shell.events.register("pre_run_cell", sys.stdout.reset)
    shell.events.register("pre_run_cell", sys.stderr.reset)


def _audit(event: str, args: tuple) -> None:
    if event != "open" or not args or len(OPENED) >= _MAX_OPENED:
        return
    try:
        path = args[0]
        if isinstance(path, int):
            return
        path = os.fsdecode(path)
        parts = path.replace("\\", "/").split("/")
        if "solutions" in parts or path.endswith(".ipynb"):
            OPENED.append("a solution notebook or the solutions folder")
        elif STUDENT_CODE[0] and path.endswith(".py") and os.path.abspath(path).startswith(PACKAGE_DIR):
            OPENED.append("course_lib/" + os.path.relpath(os.path.abspath(path), PACKAGE_DIR).replace(os.sep, "/"))
    except Exception:  # an audit hook must never break the student's code
        return


def watch_opens() -> None:
    sys.addaudithook(_audit)


def drain_opened() -> list[str]:
    """What the audit hook noted since the last call (a copy), and forget it."""
    noted = sorted(set(OPENED))
    OPENED.clear()
    return noted


def install(shell, memory_mb: int, max_output: int) -> None:
    """Everything the grader's first cell sets up: the memory limit, the output cap, the audit hook."""
    limit_memory(memory_mb)
    cap_output(shell, max_output)
    watch_opens()
