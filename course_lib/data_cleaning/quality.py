"""Stage 3, Gopher's quality rules (Rae et al. 2021, appendix A): is this page prose at all?

Cheap document statistics with the published thresholds: the number of words, the mean word length,
symbols per word ('#', ellipses), lines that are bullets or trail off, words without a letter, and stop
words. A page of prose passes them all; menus, tables of numbers, keyword lists, all-caps shouting and
pages cut into teasers ("Read more...") tend to break at least one.
"""

from __future__ import annotations

import string

# English prose cannot avoid these eight words; menus, tables and keyword lists mostly do.
STOP_WORDS = frozenset({"the", "be", "to", "of", "and", "that", "have", "with"})
BULLETS = ("\u2022", "\u25cf", "\u25e6", "\u2023", "-", "*", "\u00b7")  # • ● ◦ ‣ - * ·
ELLIPSES = ("...", "\u2026")
GOPHER_QUALITY_RULES = {
    "word_count": "between 50 and 100,000 words",
    "mean_word_length": "mean word length between 3 and 10 characters",
    "hash_ratio": "at most 0.1 '#' per word",
    "ellipsis_ratio": "at most 0.1 ellipses ('...' or '\u2026') per word",
    "bullet_lines": "at most 90% of lines start with a bullet",
    "ellipsis_lines": "at most 30% of lines end with an ellipsis",
    "alphabetic_words": "at least 80% of words contain a letter",
    "stop_words": "at least 2 stop words (the, be, to, of, and, that, have, with)",
}


def gopher_quality_reasons(text: str) -> list[str]:
    """The Gopher quality rules a text breaks (keys of GOPHER_QUALITY_RULES, in that order).

    Words are `text.split()`. Word length and stop words use each word stripped of punctuation at both
    ends (words that are only punctuation do not count toward the mean); stop words match case-sensitively,
    so an all-caps page has none. Lines are the non-empty lines, stripped.
    """
    words = text.split()
    bare = [w.strip(string.punctuation + "\u2026\u201c\u201d\u2018\u2019") for w in words]
    lengths = [len(w) for w in bare if w]
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    n = len(words)
    reasons = []
    if not 50 <= n <= 100_000:
        reasons.append("word_count")
    if not lengths or not 3 <= sum(lengths) / len(lengths) <= 10:
        reasons.append("mean_word_length")
    if n and text.count("#") / n > 0.1:
        reasons.append("hash_ratio")
    if n and (text.count("...") + text.count("\u2026")) / n > 0.1:
        reasons.append("ellipsis_ratio")
    if lines and sum(line.startswith(BULLETS) for line in lines) / len(lines) > 0.9:
        reasons.append("bullet_lines")
    if lines and sum(line.endswith(ELLIPSES) for line in lines) / len(lines) > 0.3:
        reasons.append("ellipsis_lines")
    if n and sum(any(ch.isalpha() for ch in w) for w in words) / n < 0.8:
        reasons.append("alphabetic_words")
    if sum(w in STOP_WORDS for w in bare) < 2:
        reasons.append("stop_words")
    return reasons
