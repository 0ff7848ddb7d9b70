"""Stage 4, Gopher's repetition rules (Rae et al. 2021): a page that repeats itself is spam, a menu, or
broken.

Three kinds of rules, on the page's lines, paragraphs and words:

    duplicate lines / paragraphs   the share of lines (paragraphs) that repeat an earlier one, and the
                                   share of characters in those repeats
    top n-gram (n = 2, 3, 4)       the characters covered by the single most frequent word n-gram
    duplicate n-grams (n = 5..10)  the characters covered by any word n-gram that occurs more than once

Longer n-grams get lower thresholds: honest text repeats a long phrase less often than a short one.
The n-gram counts are computed with NumPy (each n-gram numbered from the (n-1)-grams), because this
stage sees every page that got this far.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import numpy as np

TOP_NGRAM_MAX = {2: 0.20, 3: 0.18, 4: 0.16}  # n -> most the commonest n-gram may cover (share of characters)
DUP_NGRAM_MAX = {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}  # n -> most repeated n-grams may cover

# (n-gram classes, counts per class, word lengths, n) -> a share of the page's characters
_Fraction = Callable[[np.ndarray, np.ndarray, np.ndarray, int], float]


# ----------------------------------------------------------------------------------------------------
# Duplicate lines and paragraphs.

def _duplicate_share(items: list[str]) -> tuple[float, float]:
    """(fraction of items that repeat an earlier one, fraction of characters in those repeats)."""
    seen, dup_items, dup_chars = set(), 0, 0
    for item in items:
        if item in seen:
            dup_items += 1
            dup_chars += len(item)
        seen.add(item)
    total_chars = sum(len(item) for item in items)
    return dup_items / max(1, len(items)), dup_chars / max(1, total_chars)


# ----------------------------------------------------------------------------------------------------
# Word n-grams, counted with NumPy.

def _ids_and_lengths(words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each word as an integer id (equal words, equal ids) and its length in characters."""
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    ids = np.fromiter(map(vocab.__getitem__, words), dtype=np.int64, count=len(words))
    return ids, np.fromiter(map(len, words), dtype=np.int64, count=len(words))


def _ngram_classes(ids: np.ndarray, max_n: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """For n = 1..max_n: (n, which distinct n-gram starts at each position, count of each distinct n-gram).

    The n-grams are numbered from the (n-1)-grams: (class of the (n-1)-gram at i, word at i+n-1) is a
    pair of small integers, so one int64 per position identifies the n-gram exactly.
    """
    classes, width = ids, int(ids.max()) + 1 if len(ids) else 1
    for n in range(1, min(max_n, len(ids)) + 1):
        if n > 1:
            classes = classes[:-1] * width + ids[n - 1:]
        _, classes, counts = np.unique(classes, return_inverse=True, return_counts=True)
        classes = classes.ravel()
        yield n, classes, counts


def _top_fraction(classes: np.ndarray, counts: np.ndarray, lengths: np.ndarray, n: int) -> float:
    """Share of characters in all occurrences of the most frequent n-gram (0 if none repeats)."""
    chars_of = np.zeros(len(counts), dtype=np.int64)
    chars_of[classes] = np.lib.stride_tricks.sliding_window_view(lengths, n).sum(axis=1)  # per distinct n-gram
    best = np.lexsort((chars_of, counts))[-1]  # most frequent, then longest
    return float(counts[best] * chars_of[best] / lengths.sum()) if counts[best] > 1 else 0.0


def _duplicate_fraction(classes: np.ndarray, counts: np.ndarray, lengths: np.ndarray, n: int) -> float:
    """Share of characters covered by at least one n-gram that occurs more than once."""
    repeated = np.flatnonzero(counts[classes] > 1)  # start positions of repeated n-grams
    edges = np.zeros(len(lengths) + 1, dtype=np.int64)  # +1 where a repeated n-gram starts, -1 after it ends
    np.add.at(edges, repeated, 1)
    np.add.at(edges, repeated + n, -1)
    inside = np.cumsum(edges[:-1]) > 0
    return float(lengths[inside].sum() / lengths.sum())


def _ngram_fraction(words: list[str], n: int, fraction: _Fraction) -> float:
    """`fraction` of the words' n-grams, counting only the n-grams of size n."""
    ids, lengths = _ids_and_lengths(words)
    for m, classes, counts in _ngram_classes(ids, n):
        if m == n:
            return fraction(classes, counts, lengths, n)
    return 0.0  # fewer than n words


def top_ngram_char_fraction(words: list[str], n: int) -> float:
    """Characters in all occurrences of the most frequent word n-gram / characters of all words.

    Characters are those of the words (spaces not counted). Ties go to the n-gram with more characters.
    An n-gram that occurs only once is not a repetition: the fraction is then 0.
    """
    return _ngram_fraction(words, n, _top_fraction)


def duplicate_ngram_char_fraction(words: list[str], n: int) -> float:
    """Characters of the words that lie inside some word n-gram occurring more than once / all."""
    return _ngram_fraction(words, n, _duplicate_fraction)


# ----------------------------------------------------------------------------------------------------
# The rules.

def gopher_repetition_reasons(text: str) -> list[str]:
    """Gopher repetition rules a text breaks: duplicate lines (0.30 of lines, 0.20 of characters),
    duplicate paragraphs (0.30, 0.20), top 2/3/4-gram (0.20/0.18/0.16), duplicate 5..10-grams (0.15..0.10)."""
    reasons = []
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]
    line_frac, line_chars = _duplicate_share(lines)
    para_frac, para_chars = _duplicate_share(paragraphs)
    if line_frac > 0.30:
        reasons.append("dup_line_fraction")
    if line_chars > 0.20:
        reasons.append("dup_line_chars")
    if para_frac > 0.30:
        reasons.append("dup_paragraph_fraction")
    if para_chars > 0.20:
        reasons.append("dup_paragraph_chars")
    ids, lengths = _ids_and_lengths(text.split())
    for n, classes, counts in _ngram_classes(ids, max(DUP_NGRAM_MAX)):
        if n in TOP_NGRAM_MAX and _top_fraction(classes, counts, lengths, n) > TOP_NGRAM_MAX[n]:
            reasons.append(f"top_{n}gram")
        if n in DUP_NGRAM_MAX and _duplicate_fraction(classes, counts, lengths, n) > DUP_NGRAM_MAX[n]:
            reasons.append(f"dup_{n}gram")
    return reasons
