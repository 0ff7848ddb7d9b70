"""Plumbing: seeding, device choice, assets, the checker machinery, the command line."""

import subprocess
import sys

import numpy as np
import pytest
import torch

from course_lib import utils
from course_lib.checks import Case, CheckFailed, Mistake, close, exact, fail_on_mistake, run_cases, short_repr


def test_seed_everything_repeats_every_generator():
    def draw():
        import random

        return random.random(), np.random.rand(), torch.rand(1).item()

    utils.seed_everything(123)
    first = draw()
    utils.seed_everything(123)
    assert draw() == first


def test_seed_everything_asks_for_deterministic_kernels_without_loading_the_compiler():
    code = ("import sys, torch\nfrom course_lib import utils\nutils.seed_everything(0)\n"
            "print(torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),\n"
            "      'torch._inductor' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True", "False"]  # the public call would import torch._inductor: 2-3 s per kernel


def test_pick_device_honours_the_override_and_says_which(monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert utils.pick_device().type == "cpu"
    assert "Using device: cpu (forced by COURSE_DEVICE)" in capsys.readouterr().out
    monkeypatch.delenv("COURSE_DEVICE")
    device = utils.pick_device(verbose=False)
    assert device.type in {"cpu", "cuda", "mps"}


def test_asset_path_names_what_is_missing():
    assert utils.asset_path("nbval_sanitize.cfg").exists()
    with pytest.raises(FileNotFoundError, match="no_such_asset"):
        utils.asset_path("no_such_asset")


def test_comparisons():
    assert exact([1, 2], [1, 2]) is None
    assert "expected a list" in exact((1, 2), [1, 2])
    assert exact(3, 3.0) is None
    assert close(1e-6)(1.0 + 1e-9, 1.0) is None
    assert "differs" in close(1e-6, 0)(1.1, 1.0)
    assert "NaN" in close()(float("nan"), 1.0)
    assert close()(torch.ones(3), torch.ones(3)) is None
    assert "shape" in close()(torch.ones(2), torch.ones(3))
    assert "1 of 3 values" in close()(torch.tensor([1.0, 2.0, 3.5]), torch.tensor([1.0, 2.0, 3.0]))
    assert close()(np.zeros(2), np.zeros(2)) is None
    assert close()([1.0, 2.0], [1.0, 2.0]) is None and "item 1" in close()([1.0, 2.5], [1.0, 2.0])
    assert len(short_repr("x" * 1000)) == 300


def test_run_cases_reports_pass_failure_and_not_implemented(capsys):
    cases = [Case("small", (2,)), Case("negative", (-3,))]
    run_cases("square", lambda x: x * x, cases, lambda x: x * x)
    assert capsys.readouterr().out == "square: 2/2 cases passed\n"
    with pytest.raises(CheckFailed) as error:
        run_cases("square", abs, cases, lambda x: x * x, hint="multiply x by itself")
    message = str(error.value)
    assert "case 'small' failed" in message and "expected: 4" in message and "got:      2" in message
    assert "hint: multiply x by itself" in message
    with pytest.raises(CheckFailed, match="an exception, ZeroDivisionError"):
        run_cases("square", lambda x: 1 / 0, cases, lambda x: x * x)

    def stub(x):
        raise NotImplementedError("exercise square is not implemented yet")

    run_cases("square", stub, cases, lambda x: x * x)  # a stub: one line, and Run All goes on
    assert capsys.readouterr().out == "square: not implemented yet\n"
    with pytest.raises(CheckFailed, match="expected a function"):
        run_cases("square", 42, cases, lambda x: x * x)


def test_student_cannot_change_the_reference_inputs():
    # run_cases calls the reference before the student's function, so one run cannot show whether the
    # student's in-place change would reach the reference. A checker's cases are reused, though (every
    # run of a check cell, a check and then its hidden check): the next run's reference must see the
    # case as written, and the case itself must not change.
    reference_saw = []

    def reference(values, extra):
        reference_saw.append((list(values), dict(extra)))
        return sum(values) + sum(extra.values())

    def sneaky(values, extra):
        answer = sum(values) + sum(extra.values())
        values.append(99)
        extra["sneaky"] = 99
        return answer

    cases = [Case("list", ([1, 2],), {"extra": {"a": 3}})]
    run_cases("total", sneaky, cases, reference)
    run_cases("total", sneaky, cases, reference)
    assert reference_saw == [([1, 2], {"a": 3})] * 2
    assert cases[0].args == ([1, 2],) and cases[0].kwargs == {"extra": {"a": 3}}


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "course_lib", *args], capture_output=True, text=True, timeout=120)


def test_cli_release_check_and_grade_errors(tmp_path):
    result = run_cli("release", "--check")
    assert result.returncode == 0 and "up to date" in result.stdout
    result = run_cli("grade", str(tmp_path / "nothing_here"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "no notebook or folder" in result.stderr and "looked in" in result.stderr
    (tmp_path / "empty").mkdir()
    result = run_cli("grade", str(tmp_path / "empty"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "no notebooks found" in result.stderr
    result = run_cli("--help")
    assert result.returncode == 0 and "grade" in result.stdout


def test_cli_doctor():
    result = run_cli("doctor")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Using device:" in result.stdout and "(ok)" in result.stdout


def test_every_shipped_asset_has_a_builder_and_unknown_names_are_refused():
    from course_lib.toolchain.assets import ASSETS
    from course_lib.utils import ASSETS_DIR

    for name, asset in ASSETS.items():
        assert (ASSETS_DIR / asset.file).exists(), f"asset {name} is registered but assets/{asset.file} is missing"
    result = run_cli("build-assets", "no_such_asset")
    assert result.returncode == 2 and "unknown asset(s) no_such_asset" in result.stderr and "story_tokenizer" in result.stderr


def test_fail_on_mistake_names_only_a_mistake_that_differs_from_the_right_answer():
    def crashes():
        raise ValueError("cannot compute this mistake here")

    mistakes = [Mistake(crashes, "never shown"), Mistake(2.0, "coincides with the right answer here"),
                Mistake(lambda: -2.0, "flip the sign", name="the negated result")]
    fail_on_mistake("f", "case", 2.0, 2.0, mistakes, close())  # right: nothing to name
    fail_on_mistake("f", "case", 2.0, 5.0, mistakes, close())  # wrong, but no known mistake: run_cases reports it
    with pytest.raises(CheckFailed, match="(?s)your result equals the negated result.*hint: flip the sign"):
        fail_on_mistake("f", "case", 2.0, -2.0, mistakes, close())
