"""Checkers for chapter 4 (data cleaning): text extraction, Gopher rules, PII masking, MinHash, LSH.

Each checker runs the student's function and the reference in `course_lib.data_cleaning` on fixed cases
and prints one line per case group, or raises CheckFailed naming the case, the expected and the actual
result, and a hint. Hidden check cells reuse the comparisons below (`same_lines`, `same_reasons`,
`same_pairs`) with cases of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from course_lib import data_cleaning as ref
from course_lib.checks import Case, checker, run_cases

# ----------------------------------------------------------------------------------------------------
# Comparisons (None = equal, else what differs).


def text_lines(text: str) -> list[str]:
    """The non-empty lines of a text, whitespace collapsed: what `html_to_text` results are compared on."""
    return [" ".join(line.split()) for line in text.split("\n") if line.strip()]


def same_lines(got: Any, expected: str) -> str | None:
    if not isinstance(got, str):
        return f"expected a str, got a {type(got).__name__}"
    got_lines, want_lines = text_lines(got), text_lines(expected)
    if got_lines == want_lines:
        return None
    for i, (g, w) in enumerate(zip(got_lines, want_lines)):
        if g != w:
            return f"line {i} is {g!r}, expected {w!r}"
    return f"{len(got_lines)} lines instead of {len(want_lines)}"


def same_reasons(got: Any, expected: list[str]) -> str | None:
    if not isinstance(got, (list, tuple)) or not all(isinstance(r, str) for r in got):
        return f"expected a list of reason names, got {got!r}"
    missing, extra = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    if not missing and not extra and len(got) == len(set(got)):
        return None
    parts = ([f"missing {missing}"] if missing else []) + ([f"unexpected {extra}"] if extra else [])
    return ", ".join(parts) or "a reason is listed twice"


def same_masking(got: Any, expected: tuple[str, dict[str, int]]) -> str | None:
    if not isinstance(got, tuple) or len(got) != 2:
        return "expected a tuple (masked text, counts)"
    text, counts = got
    if text != expected[0]:
        return f"the masked text is {text!r}"
    if not isinstance(counts, dict) or set(counts) != set(expected[1]):
        return f"counts must be a dict with exactly the keys {sorted(expected[1])} (zeros included), got {counts!r}"
    return None if counts == expected[1] else f"the counts are {counts}, expected {expected[1]}"


def _as_pairs(value: Any) -> set[tuple[int, int]] | None:
    try:
        pairs = {(int(min(i, j)), int(max(i, j))) for i, j in np.asarray(list(value), dtype=np.int64).reshape(-1, 2).tolist()}
    except (TypeError, ValueError):
        return None
    return pairs


def same_pairs(got: Any, expected: Any) -> str | None:
    got_pairs, want_pairs = _as_pairs(got), _as_pairs(expected)
    if got_pairs is None:
        return f"expected a set of (i, j) pairs, got {type(got).__name__}"
    if got_pairs == want_pairs:
        return None
    missing, extra = sorted(want_pairs - got_pairs)[:5], sorted(got_pairs - want_pairs)[:5]
    return f"missing pairs {missing}, unexpected pairs {extra}"


def same_signature(got: Any, expected: np.ndarray) -> str | None:
    got = np.asarray(got)
    if got.shape != expected.shape:
        return f"shape {got.shape} instead of {expected.shape}"
    if not np.issubdtype(got.dtype, np.integer):
        return f"dtype {got.dtype}: signatures are integers"
    bad = np.flatnonzero(got.astype(np.int64) != expected.astype(np.int64))
    if len(bad) == 0:
        return None
    return f"{len(bad)} of {len(expected)} values differ; first at {bad[0]}: {got[bad[0]]} instead of {expected[bad[0]]}"


# ----------------------------------------------------------------------------------------------------
# Exercise 1: html_to_text.

def _page(body: str) -> str:
    return f"<html><head><title>T</title><style>p {{ color: red }}</style></head><body>{body}</body></html>"


HTML_BASICS = [
    Case("two paragraphs", (_page("<p>Hello world.</p><p>Second   paragraph\n here.</p>"),)),
    Case("inline tags stay on one line", (_page("<p>Some <b>bold</b> and <a href='#'>a link</a>.</p>"),)),
    Case("entities are decoded", (_page("<p>Fish &amp; chips &lt;3 &eacute;t&eacute;</p>"),)),
    Case("headings, list items and br are lines", (_page("<h1>Title</h1><ul><li>one</li><li>two</li></ul>a<br>b"),)),
    Case("pre keeps its line breaks", (_page("<pre>def f(x):\n    return x\n</pre><p>after</p>"),)),
    Case("empty page", ("",)),
]
HTML_BOILERPLATE = [
    Case("script and style are skipped", (_page("<script>var x = 1;</script><p>kept</p><style>.a{}</style>"),)),
    Case("nav, header, footer, aside are skipped",
         (_page("<header><nav>Home About</nav></header><main><p>Story text.</p></main><aside>Ads</aside><footer>(c) 2024</footer>"),)),
    Case("class and id hints", (_page('<div class="cookie-banner">We use cookies.</div><div id="main">Real text.</div>'
                                      '<div class="sidebar ad_slot">Buy!</div>'),)),
    Case("a hint must be a whole token", (_page('<div class="download-area">Download here.</div><div class="thread">Posts.</div>'),)),
    Case("boilerplate nested in content", (_page('<article><p>Before.</p><div class="share"><a>Tweet</a></div><p>After.</p></article>'),)),
]
HTML_MESSY = [
    Case("unclosed p and li", (_page("<p>one<p>two<ul><li>a<li>b</ul><p>three"),)),
    Case("a stray end tag is ignored", (_page("<p>one</span> two</p></div><p>three</p>"),)),
    Case("unclosed boilerplate swallows the rest", (_page('<p>kept</p><div class="ad">ad text <p>still ad'),)),
    Case("upper-case tags", (_page("<P>Loud</P><DIV CLASS='footer'>bye</DIV>"),)),
]


@checker
def check_html_to_text(student_fn: Callable[[str], str]) -> None:
    hint = ("one line per block element (BLOCK_TAGS), skip SKIP_TAGS and class/id tokens in BOILERPLATE_HINTS, "
            "an end tag closes the most recent open element with that name")
    run_cases("html_to_text: basics", student_fn, HTML_BASICS, ref.html_to_text, same_lines, hint)
    run_cases("html_to_text: boilerplate", student_fn, HTML_BOILERPLATE, ref.html_to_text, same_lines, hint)
    run_cases("html_to_text: messy html", student_fn, HTML_MESSY, ref.html_to_text, same_lines, hint)


# ----------------------------------------------------------------------------------------------------
# Exercise 2: gopher_quality_reasons. Edge cases sit exactly on the published thresholds.

def words_text(n: int, word: str = "apple", stop: int = 2, line_words: int = 10) -> str:
    """n words: `stop` copies of "the" and the rest `word`, `line_words` per line."""
    words = ["the"] * stop + [word] * (n - stop)
    return "\n".join(" ".join(words[i:i + line_words]) for i in range(0, len(words), line_words))


def _lines_text(n_lines: int, special: int, make_special: Callable[[str], str]) -> str:
    """n_lines lines of 10 words (with stop words), `special` of them changed by make_special."""
    lines = ["the cat and the dog went to the old mill together"] * n_lines
    return "\n".join(make_special(line) if i < special else line for i, line in enumerate(lines))


GOPHER_CASES = [
    Case("50 words pass", (words_text(50),)),
    Case("49 words fail", (words_text(49),)),
    Case("one stop word is not enough", (words_text(60, stop=1),)),
    Case("stop words are case-sensitive", (words_text(60, stop=0) + "\nTHE THE",)),
    Case("mean word length 3 passes", (words_text(60, word="abc", stop=0) + " the the",)),
    Case("mean word length below 3", (words_text(60, word="ab"),)),
    Case("mean word length above 10", (words_text(60, word="extraordinarily"),)),
    Case("hash ratio exactly 0.1 passes", (words_text(60, line_words=6).replace("apple", "#apple", 6),)),
    Case("hash ratio above 0.1", (words_text(60, line_words=6).replace("apple", "#apple", 7),)),
    Case("ellipses per word above 0.1", (words_text(60).replace("apple", "apple...", 7),)),
    Case("30% ellipsis lines pass", (_lines_text(10, 3, lambda line: line + "..."),)),
    Case("40% ellipsis lines fail", (_lines_text(10, 4, lambda line: line + "\u2026"),)),
    Case("90% bullet lines pass", (_lines_text(10, 9, lambda line: "\u2022 " + line),)),
    Case("all bullet lines fail", (_lines_text(10, 10, lambda line: "- " + line),)),
    Case("80% alphabetic words pass", (words_text(48) + " " + " ".join(["42"] * 12),)),
    Case("under 80% alphabetic words", (words_text(48) + " " + " ".join(["42"] * 13),)),
    Case("empty text", ("",)),
]


@checker
def check_gopher_quality(student_fn: Callable[[str], list[str]]) -> None:
    hint = ("return the names in GOPHER_QUALITY_RULES of every rule the text breaks; thresholds are inclusive "
            "(50 words pass, a ratio of exactly 0.1 passes); see the docstring for how words and lines are counted")
    run_cases("gopher_quality_reasons", student_fn, GOPHER_CASES, ref.gopher_quality_reasons, same_reasons, hint)


# ----------------------------------------------------------------------------------------------------
# Exercise 3: mask_pii.

PII_CASES = [
    Case("no pii", ("Nothing to hide here, call me maybe.",)),
    Case("an email", ("Write to anna.k@mailbox.example today.",)),
    Case("phone 2831823829", ("Call 2831823829 now.",)),
    Case("phone (283)-182-3829", ("Call (283)-182-3829 now.",)),
    Case("phone (283) 182 3829", ("Call (283) 182 3829 now.",)),
    Case("phone 283-182-3829", ("Call 283-182-3829 now.",)),
    Case("an IPv4 address at the end of a sentence", ("The server is 192.168.0.12.",)),
    Case("several of each", ("a@b.example and c@d.example, 283-182-3829 or 10.0.0.1, 10.0.0.2",)),
    Case("existing placeholders are not counted", ("Mail |||EMAIL_ADDRESS||| or x@y.example, |||PHONE_NUMBER|||",)),
]


@checker
def check_mask_pii(student_fn: Callable[[str], tuple[str, dict[str, int]]]) -> None:
    hint = ("return (masked text, {'email': n, 'phone': n, 'ip': n}); use PII_PLACEHOLDERS and mask emails, "
            "then IPv4 addresses, then phone numbers")
    run_cases("mask_pii", student_fn, PII_CASES, ref.mask_pii, same_masking, hint)


# ----------------------------------------------------------------------------------------------------
# Exercise 4: minhash_signature.

def minhash_cases() -> list[Case]:
    a, b = ref.minhash_params(16, seed=3)
    rng = np.random.default_rng(0)
    many = np.unique(rng.integers(0, 2**32, size=500, dtype=np.uint64)).astype(np.uint32)
    return [
        Case("one shingle", (np.array([12345], dtype=np.uint32), a, b)),
        Case("a sentence", (ref.shingle_hashes("the quick brown fox jumps over the lazy dog again and again"), a, b)),
        Case("500 random shingles, 32-bit values", (many, a, b)),
        Case("112 permutations", (many[:50], *ref.minhash_params(112, seed=1))),
        Case("no shingles", (np.zeros(0, dtype=np.uint32), a, b)),
    ]


@checker
def check_minhash_signature(student_fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]) -> None:
    hint = ("compute (a * x + b) % PRIME for every shingle x and every hash (broadcast to shape "
            "(n_shingles, num_perm)) in uint64, then take the minimum over shingles; no shingles -> EMPTY_SIGNATURE")
    run_cases("minhash_signature", student_fn, minhash_cases(), ref.minhash_signature, same_signature, hint)


# ----------------------------------------------------------------------------------------------------
# Exercise 5: lsh_candidate_pairs.

def reference_pairs(signatures: np.ndarray, bands: int, rows: int) -> set[tuple[int, int]]:
    return {(i, j) for i, j in ref.lsh_candidates(signatures, bands, rows).tolist()}


def lsh_cases() -> list[Case]:
    small = np.array([[1, 2, 3, 4], [1, 2, 9, 9], [7, 7, 3, 4], [5, 6, 7, 8], [1, 2, 3, 4]], dtype=np.uint32)
    rng = np.random.default_rng(1)
    noisy = rng.integers(0, 4, size=(40, 6), dtype=np.uint32)  # few values: many accidental collisions
    empty = small.copy()
    empty[[1, 3]] = ref.EMPTY_SIGNATURE
    return [
        Case("2 bands x 2 rows", (small, 2, 2)),
        Case("1 band x 4 rows", (small, 1, 4)),
        Case("4 bands x 1 row", (small, 4, 1)),
        Case("40 documents, 3 bands x 2 rows", (noisy, 3, 2)),
        Case("empty documents are never candidates", (np.vstack([empty, empty[[1]]]), 2, 2)),
        Case("no pairs", (np.arange(12, dtype=np.uint32).reshape(3, 4), 2, 2)),
    ]


@checker
def check_lsh_candidate_pairs(student_fn: Callable[[np.ndarray, int, int], set]) -> None:
    hint = ("for each band, put each document in a bucket keyed by its `rows` values in that band (a tuple); "
            "every two documents sharing a bucket are a pair (i, j) with i < j; skip documents whose signature "
            "is EMPTY_SIGNATURE")
    run_cases("lsh_candidate_pairs", student_fn, lsh_cases(), reference_pairs, same_pairs, hint)
