"""Plumbing every notebook uses: one seeding helper, device choice, paths and one plotting style."""

from __future__ import annotations

import os
import random
import sys
from pathlib import Path

import numpy as np
import torch

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_DIR = PACKAGE_DIR.parent
ASSETS_DIR = REPO_DIR / "assets"
SOLUTIONS_DIR = REPO_DIR / "solutions"
NOTEBOOKS_DIR = REPO_DIR / "notebooks"


def grading_dir() -> Path:
    """Where `grade` writes reports by default: $COURSE_GRADING_DIR, else grading/ in the course folder
    (wherever the command runs from), else grading/ here when course_lib is installed without the course."""
    if os.environ.get("COURSE_GRADING_DIR"):
        return Path(os.environ["COURSE_GRADING_DIR"])
    return REPO_DIR / "grading" if SOLUTIONS_DIR.is_dir() else Path("grading")


def seed_everything(seed: int = 0, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) with one call.

    With `deterministic=True`, torch is also asked for deterministic kernels (warning, not failing,
    where an op has none), so two runs with the same seed on the same machine give the same numbers.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        use_deterministic_kernels()
        torch.backends.cudnn.benchmark = False


def use_deterministic_kernels() -> None:
    """`torch.use_deterministic_algorithms(True, warn_only=True)` without its import of torch._inductor.

    The public call imports the compiler (2-3 s, every kernel start) only to set inductor's own flag; we set
    the kernels' flag directly, and inductor's once it is loaded (course_lib.fusion does, for torch.compile).
    """
    set_flag = getattr(torch._C, "_set_deterministic_algorithms", None)
    if set_flag is None:  # another torch version: take the public road
        torch.use_deterministic_algorithms(True, warn_only=True)
        return
    set_flag(True, warn_only=True)
    inductor_config = sys.modules.get("torch._inductor.config")
    if inductor_config is not None:
        inductor_config.deterministic = True


def pick_device(verbose: bool = True) -> torch.device:
    """The best device here: CUDA, then Apple's MPS, then the CPU. Prints one line saying which.

    Set the environment variable COURSE_DEVICE (e.g. `cpu`) to force one.
    """
    forced = os.environ.get("COURSE_DEVICE")
    if forced:
        device = torch.device(forced)
        why = "forced by COURSE_DEVICE"
    elif torch.cuda.is_available():
        device = torch.device("cuda")
        why = torch.cuda.get_device_name(0)
    elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        device = torch.device("mps")
        why = "Apple GPU"
    else:
        device = torch.device("cpu")
        why = f"{torch.get_num_threads()} threads"
    if verbose:
        print(f"Using device: {device.type} ({why})")
    return device


def asset_path(name: str) -> Path:
    """Path of a file shipped in `assets/`; a clear error if it is missing."""
    path = ASSETS_DIR / name
    if not path.exists():
        raise FileNotFoundError(f"asset {name!r} not found in {ASSETS_DIR}; is the course checkout complete?")
    return path


COURSE_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf", "#7f7f7f"]


def use_course_style() -> None:
    """One plotting style for every figure of the course: readable at notebook width, small PNGs."""
    import matplotlib as mpl  # here, not at the top: only notebooks plot, and the grader should not pay for it

    mpl.rcParams.update({
        "figure.figsize": (6.4, 3.6),
        "figure.dpi": 90,
        "savefig.dpi": 90,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "legend.fontsize": 9,
        "legend.frameon": False,
        "axes.prop_cycle": mpl.cycler(color=COURSE_COLORS),
    })
