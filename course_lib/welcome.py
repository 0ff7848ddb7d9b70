"""Chapter 0, welcome: the reference answers of the warm-up exercises.

Small on purpose: they exist to walk through the whole toolchain (exercise, check, hidden check,
self-grading) while looking at the story corpus. `pooled_bits_per_byte` returns in chapter 3.
"""

from __future__ import annotations

import re
from collections import Counter

WORD_RE = re.compile(r"[A-Za-z]+")


def word_counts(text: str) -> dict[str, int]:
    """How often each word occurs. A word is a maximal run of ASCII letters, lower-cased."""
    return dict(Counter(w.lower() for w in WORD_RE.findall(text)))


def most_common(counts: dict[str, int], k: int) -> list[tuple[str, int]]:
    """The k most frequent (word, count) pairs: highest count first, ties in alphabetical order."""
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:k]


def pooled_bits_per_byte(logprobs2: list[float], texts: list[str]) -> float:
    """Bits per byte of a corpus: total -log2 p over total UTF-8 bytes (pooled, not a mean of ratios)."""
    if len(logprobs2) != len(texts):
        raise ValueError(f"{len(logprobs2)} log-probabilities for {len(texts)} texts")
    total_bytes = sum(len(t.encode("utf-8")) for t in texts)
    if total_bytes == 0:
        raise ValueError("the texts have no bytes")
    return -sum(logprobs2) / total_bytes
