"""A batch of 30 submissions graded as an instructor would (`--jobs 2`, sandbox on where it works).

The batch: chapter 0's release answered in ten ways (all right, one right, one wrong, an endless loop, a
crash, tampering with the checkers, calling the reference...), three copies of each. Prints the wall time,
seconds per submission, and checks that every submission got the grade it should.

    python benchmarks/bench_grading_batch.py [--jobs 2] [--copies 3]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from test_grading import ALL, HEADER, submission  # noqa: E402

from course_lib.toolchain import notebook_files as nbs  # noqa: E402
from course_lib.toolchain import sandbox  # noqa: E402
from course_lib.toolchain.grade import grade, grade_notebook  # noqa: E402
from course_lib.toolchain.run import Limits  # noqa: E402
from course_lib.utils import SOLUTIONS_DIR  # noqa: E402

KINDS = {  # name: (answers, expected score)
    "all_right": (ALL, 7),
    "one_right": ({"word_counts": "solution"}, 2),
    "untouched": ({}, 0),
    "wrong_word_counts": ({**ALL, "word_counts": HEADER["word_counts"] + "def word_counts(text):\n    return {}\n"}, 5),
    "loop": ({**ALL, "most_common": HEADER["most_common"] + "def most_common(c, k):\n    while True:\n        pass\n"}, 5),
    "crash": ({**ALL, "word_counts": HEADER["word_counts"] + "import os\nos._exit(1)\n"}, 5),
    "tamper": ({**ALL, "most_common": HEADER["most_common"] + "import importlib\n"
                "setattr(importlib.import_module('course_lib.checks.welcome'), 'most_common',\n"
                "        lambda f: print('most_common: 3/3 cases passed'))\n"
                "def most_common(c, k):\n    return []\n"}, 5),
    "calls_reference": ({**ALL, "word_counts": HEADER["word_counts"] + "from course_lib.welcome import word_counts\n"}, 7),
    "counter": ({**ALL, "word_counts": HEADER["word_counts"] + "import re\nfrom collections import Counter\n"
                 "def word_counts(text):\n    return Counter(w.lower() for w in re.findall('[A-Za-z]+', text))\n"}, 7),
    "half": ({"word_counts": "solution", "pooled_bits_per_byte": "solution"}, 5),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--copies", type=int, default=3)
    args = parser.parse_args()
    print(sandbox.status()[1])
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "submissions", Path(tmp) / "grades"
        expected = {}
        for copy in range(args.copies):
            for name, (answers, score) in KINDS.items():
                student = f"{name}_{copy}"
                (folder / student).mkdir(parents=True)
                nbs.write(submission(answers), folder / student / "00_welcome.ipynb")
                expected[f"{student}__00_welcome"] = score
        grade_notebook(SOLUTIONS_DIR / "00_welcome.ipynb", "warm-up")  # records the reference values (cached)
        start = time.perf_counter()
        reports = grade([folder], out, jobs=args.jobs, echo=lambda _: None, limits=Limits(cell_timeout=20))
        seconds = time.perf_counter() - start
    wrong = {r.student: (r.score, expected[r.student]) for r in reports if r.score != expected[r.student]}
    print(f"{len(reports)} submissions, --jobs {args.jobs}: {seconds:.0f} s wall, {seconds / len(reports):.1f} s per submission")
    print("every grade as expected" if not wrong else f"UNEXPECTED GRADES (got, expected): {wrong}")


if __name__ == "__main__":
    main()
