"""Checkers of chapter 0 (welcome)."""

from __future__ import annotations

from .. import welcome as ref
from . import Case, checker, close, fail, run_cases


@checker
def word_counts(student_fn) -> None:
    cases = [
        Case("one sentence", ("The cat saw the dog.",)),
        Case("capitals and punctuation", ('Mia said, "Look at that!" MIA laughed.',)),
        Case("newlines", ("One day,\nthere was a fox.\nThe end.",)),
        Case("empty text", ("",)),
    ]
    run_cases("word_counts", student_fn, cases, ref.word_counts,
              hint="find runs of letters (the `re` module helps), lower-case them, count them in a dict")


@checker
def most_common(student_fn) -> None:
    counts = {"the": 5, "cat": 2, "dog": 2, "a": 5, "sun": 1}
    cases = [
        Case("top 2 (a tie on count)", (counts, 2)),
        Case("all of them", (counts, 10)),
        Case("k = 0", (counts, 0)),
    ]
    run_cases("most_common", student_fn, cases, ref.most_common,
              hint="sort by count, highest first, and break ties alphabetically; return a list of (word, count) tuples")


@checker
def pooled_bits_per_byte(student_fn) -> None:
    # A mean of per-document ratios is the classic mistake: say so plainly rather than "values differ".
    logprobs, texts = [-10.0, -300.0], ["tiny", "y" * 700]
    mean_of_ratios = (10 / 4 + 300 / 700) / 2
    got = student_fn(logprobs, texts)
    if isinstance(got, float) and abs(got - mean_of_ratios) < 1e-9:
        fail("pooled_bits_per_byte", "short and long documents", ref.pooled_bits_per_byte(logprobs, texts), got,
             hint="you averaged the per-document ratios; add up all bits and all bytes first, then divide once")
    cases = [
        Case("one document", ([-80.0], ["x" * 200])),
        Case("short and long documents", (logprobs, texts)),
        Case("accented letters take two bytes", ([-12.0, -4.0], ["café", "naïve"])),
    ]
    run_cases("pooled_bits_per_byte", student_fn, cases, ref.pooled_bits_per_byte, compare=close(1e-9, 1e-12),
              hint="bytes means UTF-8 bytes (len(text.encode('utf-8'))), not characters; bits are -log2 p")
