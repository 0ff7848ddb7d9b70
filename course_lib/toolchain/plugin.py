"""A pytest plugin the grader loads into its nbval run: one JSON line per notebook cell, as it finishes.

Each line is `{"index": ..., "outcome": "passed" | "failed" | "skipped", "message": ..., "seconds": ...}`,
where `index` is the cell's position in the solution notebook (the merge writes it into the cell's
metadata under "course_grade"; the grader's own first cell has -1). Writing each result at once (not a
report at the end) means that whatever was graded before a time limit or a crash is kept. The file is
named by the COURSE_GRADE_RESULTS environment variable.

It also teaches nbval to notice a dead kernel within a second: nbval waits for a reply for the whole
cell timeout, so a submission that crashes the kernel (os._exit, a segfault, out of memory) would cost a
full timeout. We wait in one-second slices and stop as soon as the kernel process is gone.
"""

from __future__ import annotations

import json
import os
import time
from queue import Empty

import pytest
from nbval import kernel as nbval_kernel

_MAX_MESSAGE = 20_000
CELL_KEY = "course_grade"  # the cell metadata key merge.py writes the cell's index under


class KernelDied(RuntimeError):
    """The notebook's kernel process exited while running a cell."""


_original_await_reply = nbval_kernel.RunningKernel.await_reply


def _await_reply_watching_the_kernel(self, msg_id, timeout=None):
    deadline = None if timeout is None else time.monotonic() + float(timeout)
    while True:
        step = 1.0 if deadline is None else max(0.01, min(1.0, deadline - time.monotonic()))
        try:
            return _original_await_reply(self, msg_id, timeout=step)
        except Empty:
            if not self.is_alive():
                raise KernelDied("the kernel died while running this cell (os._exit, a crash, or out of memory)") from None
            if deadline is not None and time.monotonic() >= deadline:
                raise


nbval_kernel.RunningKernel.await_reply = _await_reply_watching_the_kernel


def _failure_text(item, call) -> str:
    if call.excinfo is None:
        return ""
    try:
        text = str(item.repr_failure(call.excinfo))
    except Exception as error:  # a repr that fails must not stop the run
        text = f"{call.excinfo.typename}: {call.excinfo.value} (could not format: {type(error).__name__})"
    return text[:_MAX_MESSAGE]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    path = os.environ.get("COURSE_GRADE_RESULTS")
    cell = getattr(item, "cell", None)
    if not path or cell is None or report.when not in ("setup", "call"):
        return
    if report.when == "setup" and report.passed:
        return
    # After a timeout nbval marks later cells "expected to fail"; we want what really happened.
    passed = report.passed or (report.skipped and call.excinfo is None and not hasattr(report, "wasxfail"))
    failed_for_real = call.excinfo is not None and not call.excinfo.errisinstance(pytest.skip.Exception)
    record = {"index": cell.metadata.get(CELL_KEY, {}).get("index"),
              "outcome": "passed" if passed and not failed_for_real else ("failed" if failed_for_real else "skipped"),
              "message": _failure_text(item, call) if failed_for_real else "", "seconds": round(call.duration, 3)}
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
