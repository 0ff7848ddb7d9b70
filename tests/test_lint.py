"""The linter configured in pyproject.toml (ruff) stays clean on the package, tests, benchmarks and solutions."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def ruff_command() -> list[str] | None:
    beside_python = Path(sys.executable).with_name("ruff")  # the venv's ruff, from requirements.txt
    if beside_python.exists():
        return [str(beside_python)]
    found = shutil.which("ruff")
    return [found] if found else None


def test_ruff_is_clean():
    command = ruff_command()
    if command is None:
        pytest.skip("ruff is not installed (pip install -r requirements.txt installs it)")
    result = subprocess.run([*command, "check", "--no-cache", "."], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
