"""The course's command line: `python -m course_lib <command>`.

    doctor                     check this machine: versions, device, assets
    release [--check]          rebuild notebooks/ from solutions/ (instructors)
    execute NOTEBOOK...        run solution notebooks and store their outputs (instructors)
    grade PATH... [--out DIR]  grade notebooks (a student's self-check, or an instructor's batch)
    build-assets [NAME...]     rebuild the shipped files in assets/ (maintainers)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def cmd_doctor(args: argparse.Namespace) -> int:
    import platform

    import torch

    from . import stories
    from .utils import ASSETS_DIR, pick_device

    print(f"Python {platform.python_version()} on {platform.system()} {platform.machine()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads")
    pick_device()
    print(f"assets: {', '.join(sorted(p.name for p in ASSETS_DIR.iterdir()))}")
    from .toolchain import sandbox

    works, line = sandbox.status()
    print(f"grading {line}" + ("" if works or "install" in line else f"; {sandbox.INSTALL_HINT}"))
    start = time.perf_counter()
    sample = stories.stories("test", 200)
    ok = all(stories.score(s.text).ok for s in sample)
    print(f"story corpus: 200 stories generated and re-scored in {time.perf_counter() - start:.1f} s ({'ok' if ok else 'MISMATCH'})")
    return 0 if ok else 1


def cmd_release(args: argparse.Namespace) -> int:
    from .toolchain.release import release

    stale = release(check=args.check, force=args.force)
    if args.check:
        print("notebooks/ is up to date" if not stale else f"out of date: {', '.join(stale)}; run `python -m course_lib release`")
        return 1 if stale else 0
    print(f"released {len(stale)} changed notebook(s)" + (f": {', '.join(stale)}" if stale else ""))
    return 0


def cmd_execute(args: argparse.Namespace) -> int:
    import nbclient

    from .toolchain.notebook_files import read, write

    for path in map(Path, args.notebooks):
        start = time.perf_counter()
        nb = read(path)
        nbclient.NotebookClient(nb, timeout=args.timeout, kernel_name="python3",
                                resources={"metadata": {"path": str(path.parent.resolve())}}).execute()
        write(nb, path)
        print(f"executed {path} in {time.perf_counter() - start:.1f} s")
    return 0


def cmd_build_assets(args: argparse.Namespace) -> int:
    from .toolchain.assets import build_assets

    try:
        build_assets(args.names)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def cmd_grade(args: argparse.Namespace) -> int:
    from .toolchain.grade import SandboxUnavailable, grade
    from .toolchain.run import Limits
    from .utils import grading_dir

    limits = Limits(cell_timeout=args.cell_timeout, notebook_timeout=args.timeout, memory_mb=args.memory_mb)
    out = Path(args.out) if args.out else grading_dir()
    try:
        paths = [find_notebook(p) for p in args.paths]
        reports = grade(paths, out, limits=limits, jobs=args.jobs, chapter=args.chapter, require_sandbox=args.require_sandbox)
    except (FileNotFoundError, SandboxUnavailable) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"reports written to {out}/")
    return 0 if all(r.status == "graded" for r in reports) else 1


def find_notebook(given: str) -> Path:
    """`given` as typed, else relative to the course folder or to its notebooks/ (a student in JupyterLab's
    terminal may be in either), else FileNotFoundError naming the places tried."""
    from .utils import NOTEBOOKS_DIR, REPO_DIR

    path = Path(given)
    tries = [path] if path.is_absolute() else [path, REPO_DIR / path, NOTEBOOKS_DIR / path]
    for candidate in tries:
        if candidate.exists():
            return candidate
    raise FileNotFoundError(f"no notebook or folder {given!r}; looked in: {', '.join(str(t) for t in tries)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m course_lib", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("doctor", help="check this machine").set_defaults(run=cmd_doctor)
    p = sub.add_parser("release", help="rebuild notebooks/ from solutions/")
    p.add_argument("--check", action="store_true", help="only report whether notebooks/ is up to date")
    p.add_argument("--force", action="store_true", help="overwrite released notebooks even if they hold work")
    p.set_defaults(run=cmd_release)
    p = sub.add_parser("execute", help="run notebooks and store their outputs in place")
    p.add_argument("notebooks", nargs="+")
    p.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    p.set_defaults(run=cmd_execute)
    p = sub.add_parser("build-assets", help="rebuild files shipped in assets/ (tokenizer, models, sweeps)")
    p.add_argument("names", nargs="*", help="which assets (default: all); see course_lib/toolchain/assets.py")
    p.set_defaults(run=cmd_build_assets)
    p = sub.add_parser("grade", help="grade notebooks against solutions/")
    p.add_argument("paths", nargs="+", help="notebooks, or folders searched for notebooks (relative to here, "
                   "to the course folder or to notebooks/)")
    p.add_argument("--out", help="folder for reports, feedback and gradebook (default: grading/ in the course folder)")
    p.add_argument("--jobs", type=int, default=1, help="submissions graded in parallel")
    p.add_argument("--chapter", help="grade as this chapter (e.g. 00_welcome) whatever the file is called")
    p.add_argument("--cell-timeout", type=int, default=60, help="seconds one cell may run (default 60)")
    p.add_argument("--timeout", type=int, default=600, help="seconds a whole notebook may run (default 600)")
    p.add_argument("--memory-mb", type=int, default=4096, help="memory limit of the notebook's kernel (default 4096)")
    p.add_argument("--require-sandbox", action="store_true",
                   help="refuse to grade where no sandbox isolates submissions (bubblewrap on Linux)")
    p.set_defaults(run=cmd_grade)
    args = parser.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):  # a Windows console may not have ✓ and ✗: never crash on them
        sys.stdout.reconfigure(errors="replace")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
