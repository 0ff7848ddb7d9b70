"""Foundation benchmarks, side by side in one process.

1. Story generation speed on one core (goal: at least 2 MB/s).
2. Grading time of a notebook divided by a plain nbval run of the same notebook (goal: at most 1.5):
   what the grader adds (merging, the limits, the per-cell records, a separate process) over the tool an
   instructor would otherwise run by hand.

    python benchmarks/bench_foundation.py [--chapter 00_welcome] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from course_lib import stories
from course_lib.toolchain.grade import grade_notebook
from course_lib.toolchain.run import SANITIZER, Limits
from course_lib.utils import SOLUTIONS_DIR


def plain_nbval_seconds(notebook: Path) -> float:
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        ini = Path(tmp) / "pytest.ini"
        ini.write_text("[pytest]\n")
        subprocess.run([sys.executable, "-m", "pytest", "-q", "-c", str(ini), "-p", "no:cacheprovider", "--nbval-lax",
                        "--nbval-current-env", "--nbval-sanitize-with", str(SANITIZER), str(notebook)],
                       check=True, capture_output=True)
    return time.perf_counter() - start


def grading_seconds(notebook: Path) -> float:
    start = time.perf_counter()
    report = grade_notebook(notebook, "bench", limits=Limits())
    assert report.score == report.max_score, "the solution should get full marks"
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
    plain, graded = [], []
    for _ in range(args.repeats):  # interleaved, so drift in machine load hits both alike
        plain.append(plain_nbval_seconds(notebook))
        graded.append(grading_seconds(notebook))
    p, g = statistics.median(plain), statistics.median(graded)
    print(f"{args.chapter}: plain nbval {p:.1f} s, grading {g:.1f} s (medians of {args.repeats})")
    print(f"grading / plain nbval = {g / p:.2f} (goal <= 1.5)")


if __name__ == "__main__":
    main()
