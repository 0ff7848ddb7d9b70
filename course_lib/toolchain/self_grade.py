"""The last cell of every released notebook: grade this notebook from inside JupyterLab.

A button runs `python -m course_lib grade <this notebook>` with the kernel's own interpreter, so it works
whatever terminal, PATH or virtual environment the student has, and shows the grader's summary and
feedback below it. The grader reads the saved file, not the kernel: the button says to save first, and
the answer says when the file it graded was saved. Without a widget front end (nbval, nbconvert, GitHub)
the cell shows the command to type instead.
"""

from __future__ import annotations

import datetime
import html
import os
import subprocess
import sys
from pathlib import Path

from ..utils import NOTEBOOKS_DIR, REPO_DIR, grading_dir

SAVE_FIRST = "Save the notebook first (Ctrl+S, or ⌘S on a Mac): the grader reads the saved file."


def notebook_path(name: str) -> Path:
    """The notebook this kernel belongs to: JupyterLab names it in JPY_SESSION_NAME; else `name` in notebooks/."""
    session = os.environ.get("JPY_SESSION_NAME", "")  # relative to JupyterLab's root; the kernel runs beside it
    if session.endswith(".ipynb") and (Path.cwd() / Path(session).name).is_file():
        return Path.cwd() / Path(session).name
    for folder in (Path.cwd(), NOTEBOOKS_DIR):
        if (folder / name).is_file():
            return folder / name
    return NOTEBOOKS_DIR / name


def grade_command(path: Path) -> list[str]:
    """The grade command for `path`, run by this interpreter (the kernel's, with course_lib installed)."""
    return [sys.executable, "-m", "course_lib", "grade", str(path)]


def run_grader(path: Path, echo) -> int:
    """Grade `path` in a child process, passing each line it prints to `echo`; then echo the feedback file."""
    saved = datetime.datetime.fromtimestamp(path.stat().st_mtime).strftime("%H:%M:%S")
    echo(f"grading {path.name} as saved at {saved} (this runs your notebook again: a minute or a few)\n")
    child = subprocess.Popen(grade_command(path), cwd=REPO_DIR, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, encoding="utf-8", errors="replace")
    for line in child.stdout:
        echo(line)
    code = child.wait()
    feedback = grading_dir() / f"{path.stem}.feedback.md"
    if feedback.is_file() and feedback.stat().st_mtime >= path.stat().st_mtime:
        echo("\n" + feedback.read_text(encoding="utf-8"))
    return code


class _SelfGrade:
    """A button and an output area, with the command as plain text for front ends without widgets."""

    def __init__(self, name: str) -> None:
        import ipywidgets  # only where a notebook shows widgets

        self.path = notebook_path(name)
        self.button = ipywidgets.Button(description="Grade my saved notebook", icon="check", button_style="primary",
                                        layout=ipywidgets.Layout(width="auto"))
        self.output = ipywidgets.Output()
        self.button.on_click(self._grade)
        self.panel = ipywidgets.VBox([ipywidgets.HTML(html.escape(SAVE_FIRST)), self.button, self.output])

    def _grade(self, _button) -> None:
        self.button.disabled = True
        self.output.clear_output()
        try:
            run_grader(self.path, self.output.append_stdout)
        except OSError as error:
            self.output.append_stdout(f"could not run the grader: {error}\n")
        finally:
            self.button.disabled = False

    def _repr_mimebundle_(self, include=None, exclude=None):
        bundle = dict(self.panel._repr_mimebundle_(include=include, exclude=exclude) or {})
        bundle["text/plain"] = (f"{SAVE_FIRST}\nThen, in a terminal in the course folder: "
                                f".venv/bin/python -m course_lib grade notebooks/{self.path.name}")
        return bundle


def self_grade(name: str) -> _SelfGrade:
    """The self-grading panel for the notebook file `name` (e.g. "00_welcome.ipynb")."""
    return _SelfGrade(name)
