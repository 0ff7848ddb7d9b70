"""Foundation benchmarks, side by side in one process.

1. Story generation speed on one core (goal: at least 2 MB/s).
2. Grading time of a notebook divided by a plain nbval run of the same notebook (goal: at most 1.5):
   what the grader adds (merging, the limits, the per-cell records, a separate process, the sandbox and
   the verdicts decided outside it) over the tool an instructor would otherwise run by hand. Measured with
   the sandbox on (where bubblewrap works) and off, after one untimed run that records the solution's
   reference values (cached; that first run's time is printed too). Both sides use the same matplotlib
   backend: the grader's kernel gets MPLBACKEND from `sandbox.SAFE_ENV` (Agg), and the plain nbval run
   below is given that same value, read from there, so the two cannot drift apart.

    python benchmarks/bench_foundation.py [--chapter 00_welcome] [--repeats 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from course_lib import stories
from course_lib.toolchain import sandbox
from course_lib.toolchain.grade import grade_notebook
from course_lib.toolchain.run import SANITIZER, Limits
from course_lib.toolchain.verdicts import cache_dir
from course_lib.utils import SOLUTIONS_DIR

GRADER_MPLBACKEND = sandbox.SAFE_ENV["MPLBACKEND"]  # what the grader's kernel runs with, sandboxed or not


def plain_nbval_seconds(notebook: Path) -> float:
    """A plain nbval run of `notebook`, as an instructor would type it, with the grader's matplotlib backend."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n")
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-c", str(ini), "-p", "no:cacheprovider", "--nbval-lax",
                        "--nbval-current-env", "--nbval-sanitize-with", str(SANITIZER), str(notebook)],
                       check=True, capture_output=True, env=dict(os.environ, MPLBACKEND=GRADER_MPLBACKEND))
    return time.perf_counter() - start


def grading_seconds(notebook: Path, sandboxed: bool) -> float:
    start = time.perf_counter()
    report = grade_notebook(notebook, "bench", limits=Limits(), sandboxed=sandboxed)
    assert report.score == report.max_score, f"the solution should get full marks: {report}"
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chapter", default="00_welcome")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    speed = stories.generation_speed(seconds=3.0)
    print(f"story generation: {speed / 1e6:.2f} MB/s on one core (goal >= 2)")
    floor, low, high = stories.entropy_floor("test", 5000)
    print(f"entropy floor (test, 5,000 stories): {floor:.4f} bits/byte, 95% CI [{low:.4f}, {high:.4f}]")

    notebook = SOLUTIONS_DIR / f"{args.chapter}.ipynb"
    works, line = sandbox.status()
    print(line)
    print(f"matplotlib backend: {GRADER_MPLBACKEND} for the grader and for plain nbval alike")
    for stale in cache_dir().glob(f"{args.chapter}-*.json"):
        stale.unlink()
    cold = grading_seconds(notebook, works)
    print(f"{args.chapter}: first grading, recording the reference values: {cold:.1f} s")
    plain, boxed, unboxed = [], [], []
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits all alike
        plain.append(plain_nbval_seconds(notebook))
        if works:
            boxed.append(grading_seconds(notebook, True))
        unboxed.append(grading_seconds(notebook, False))
    p, u = statistics.median(plain), statistics.median(unboxed)
    print(f"{args.chapter}: plain nbval {p:.1f} s, grading without sandbox {u:.1f} s (medians of {args.repeats})")
    print(f"grading without sandbox / plain nbval = {u / p:.2f} (goal <= 1.5)")
    if works:
        b = statistics.median(boxed)
        print(f"{args.chapter}: grading in the sandbox {b:.1f} s")
        print(f"grading in the sandbox / plain nbval = {b / p:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
