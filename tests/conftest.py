"""Shared test settings."""

import os

import pytest
import torch


def _share_the_cores_between_workers() -> None:
    """pytest-xdist runs one worker per core (see pyproject.toml). Each worker, and every notebook kernel it
    starts (kernels inherit this environment), gets its share of the cores, so that two workers on two cores
    do not make their threads wait for each other."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, cores // workers)))


_share_the_cores_between_workers()


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models gain nothing from threads, and on a busy machine threads wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def check_a_stub(monkeypatch, capsys):
    """`check_a_stub(checker, name)`: a stub's check prints `<name>: not implemented yet` and lets Run All go
    on; while grading, the stub's NotImplementedError reaches the grader instead."""

    def run(checker, name: str) -> None:
        def stub(*args, **kwargs):
            raise NotImplementedError(f"exercise {name} is not implemented yet")

        checker(stub)
        assert capsys.readouterr().out == f"{name}: not implemented yet\n"
        monkeypatch.setenv("COURSE_GRADING", "1")
        monkeypatch.setattr("course_lib.checks._send", lambda data: None)
        with pytest.raises(NotImplementedError):
            checker(stub)

    return run
