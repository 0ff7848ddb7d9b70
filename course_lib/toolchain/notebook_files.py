"""Notebook files: read with a clear error, write the same bytes every time, name the chapter."""

from __future__ import annotations

from pathlib import Path

import nbformat


def chapter_id(path: Path) -> str:
    """The chapter a notebook file is: its name without `.ipynb` (e.g. `00_welcome`)."""
    return Path(path).stem


def read(path: Path):
    """Read a notebook, with a clear error for a file that is not one."""
    try:
        return nbformat.read(str(path), as_version=4)
    except Exception as error:  # nbformat raises several types for broken JSON or schema
        raise ValueError(f"{path} is not a readable Jupyter notebook ({type(error).__name__}: {str(error)[:200]})") from None


def writes(nb) -> str:
    """A notebook as text, the same way every time (stable key order and indentation, final newline)."""
    text = nbformat.writes(nb, version=4)
    return text if text.endswith("\n") else text + "\n"


def write(nb, path: Path) -> None:
    Path(path).write_text(writes(nb), encoding="utf-8")
