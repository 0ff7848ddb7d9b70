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
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import KernelManager
from nbval import kernel as nbval_kernel
from nbval import plugin as nbval_plugin

from .wire import MIME

# Read once and removed, so that a kernel started without the sandbox does not inherit where results go.
_RESULTS_PATH = os.environ.pop("COURSE_GRADE_RESULTS", None)
_SANDBOX_SPEC = os.environ.pop("COURSE_SANDBOX", None)
_MAX_MESSAGE = 20_000
_MAX_RECORDS = 5_000_000  # characters of records one cell may send
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


_original_start_new_kernel = nbval_kernel.start_new_kernel


def _start_sandboxed_kernel(startup_timeout=60, kernel_name="python", **kwargs):
    """nbval's start_new_kernel, but the kernel runs in the sandbox and talks over ipc sockets."""
    spec = _SANDBOX_SPEC
    if not spec:
        return _original_start_new_kernel(startup_timeout=startup_timeout, kernel_name=kernel_name, **kwargs)
    argv, ipc = json.loads(spec)
    km = KernelManager(transport="ipc", ip=os.path.join(ipc, "kernel"), connection_file=os.path.join(ipc, "kernel.json"))
    km._kernel_spec = KernelSpec(argv=argv, display_name="sandboxed", language="python", interrupt_mode="message", env={})
    km.start_kernel(**kwargs)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=startup_timeout)
    except RuntimeError:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
        raise
    return km, kc


nbval_kernel.start_new_kernel = _start_sandboxed_kernel


def _is_record(output) -> bool:
    return isinstance(output.get("data"), dict) and MIME in output["data"]


_original_compare_outputs = nbval_plugin.IPyNbCell.compare_outputs


def _compare_without_records(self, test, ref, skip_compare=None):
    """Take the checkers' records out of the outputs, then let nbval compare the rest."""
    self.course_records = [o["data"][MIME] for o in test if _is_record(o)]
    test[:] = [o for o in test if not _is_record(o)]
    return _original_compare_outputs(self, test, ref, skip_compare)


nbval_plugin.IPyNbCell.compare_outputs = _compare_without_records


def _records(item) -> list:
    records = getattr(item, "course_records", None)
    if records is None:
        records = [o["data"][MIME] for o in (getattr(item, "test_outputs", None) or []) if _is_record(o)]
    if len(json.dumps(records)) > _MAX_RECORDS:
        return [{"kind": "too large"}]
    return records


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
    path = _RESULTS_PATH
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
              "message": _failure_text(item, call) if failed_for_real else "", "seconds": round(call.duration, 3),
              "records": _records(item) if report.when == "call" else []}
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")
