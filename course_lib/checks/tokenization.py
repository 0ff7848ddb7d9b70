"""Checkers for chapter 1 (tokenization): the student's functions against `course_lib.tokenizer`.

Each checker runs the student's function and the reference on fixed cases and prints one line, or
raises CheckFailed naming the case, what was expected, what came back and a hint. Hidden checks call
`run_cases` with the `reference_*` functions below and their own cases.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

from course_lib import tokenizer as bpe
from course_lib.checks import Case, checker, run_cases

__all__ = ["count_pairs", "merge", "train", "encode", "decode", "same_merges", "reference_count_pairs",
           "reference_merge", "reference_train", "reference_encode", "reference_decode", "merges_for", "vocab_for"]

TIE_HINT = ("count pairs over the pre-tokens (weighted by how often each occurs), never across two pre-tokens; "
            "among pairs with the same count take the greatest (vocab[a], vocab[b]) pair of byte strings; "
            "stop early when no pair is left")


# ----------------------------------------------------------------------------------------------------
# The references, with the exercises' signatures.

def reference_count_pairs(ids: list[int]) -> dict[tuple[int, int], int]:
    return bpe.count_pairs(ids)


def reference_merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    return bpe.merge(ids, pair, new_id)


def reference_train(text: str, vocab_size: int) -> dict[tuple[int, int], int]:
    with warnings.catch_warnings():  # stopping early is part of some cases, not news
        warnings.simplefilter("ignore")
        return bpe.train_bpe(text, vocab_size).merge_ids


def reference_encode(text: str, merges: dict[tuple[int, int], int]) -> list[int]:
    return bpe.BPETokenizer.from_merge_ids(merges).encode_ordinary(text)


def reference_decode(ids: list[int], vocab: dict[int, bytes]) -> str:
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")


def merges_for(text: str, vocab_size: int) -> dict[tuple[int, int], int]:
    """Merges learned by the reference from `text` (fixed inputs for the encode cases)."""
    return reference_train(text, vocab_size)


def vocab_for(text: str, vocab_size: int) -> dict[int, bytes]:
    return bpe.BPETokenizer.from_merge_ids(merges_for(text, vocab_size)).vocab


# ----------------------------------------------------------------------------------------------------
# A comparison that says which merge differs, in bytes a person can read.

def _describe(merges: dict, index: int) -> str:
    token_bytes = {i: bytes([i]) for i in range(256)}
    for (a, b), new_id in merges.items():
        token_bytes[new_id] = token_bytes.get(a, b"?") + token_bytes.get(b, b"?")
    (a, b), new_id = list(merges.items())[index]
    return f"({a}, {b}) -> {new_id}, i.e. {token_bytes.get(a, b'?')!r} + {token_bytes.get(b, b'?')!r}"


def same_merges(got: Any, expected: dict) -> str | None:
    """None if `got` is the expected merges dict in the same order, else where the first difference is."""
    if not isinstance(got, dict):
        return f"expected a dict {{(id, id): new_id}}, got a {type(got).__name__}"
    got_items, expected_items = list(got.items()), list(expected.items())
    for k, (g, e) in enumerate(zip(got_items, expected_items)):
        if g != e:
            try:
                got_text = _describe(got, k)
            except Exception:  # a malformed answer: show it raw
                got_text = repr(g)
            return f"merge number {k + 1} differs: expected {_describe(expected, k)}, got {got_text}"
    if len(got_items) != len(expected_items):
        return f"expected {len(expected_items)} merges, got {len(got_items)}"
    return None


# ----------------------------------------------------------------------------------------------------
# The checkers the check cells call.

@checker
def count_pairs(student_fn: Callable) -> None:
    cases = [
        Case("empty list", ([],)),
        Case("one id", ([7],)),
        Case("two pairs repeat", ([1, 2, 3, 1, 2],)),
        Case("overlapping run", ([5, 5, 5, 5],)),
        Case("bytes of 'hello world'", (list(b"hello world"),)),
        Case("bytes of 'banana'", (list(b"banana"),)),
    ]
    run_cases("count_pairs", student_fn, cases, reference_count_pairs,
              hint="count every adjacent pair, overlapping ones too: [5, 5, 5] has (5, 5) twice")


@checker
def merge(student_fn: Callable) -> None:
    cases = [
        Case("one occurrence", ([1, 2, 3], (1, 2), 256)),
        Case("two occurrences", ([1, 2, 3, 1, 2], (1, 2), 256)),
        Case("pair at the end", ([3, 3, 1, 2], (1, 2), 300)),
        Case("no occurrence", ([1, 3, 2, 1], (1, 2), 256)),
        Case("overlap, odd run", ([5, 5, 5], (5, 5), 9)),
        Case("overlap, even run", ([5, 5, 5, 5], (5, 5), 9)),
        Case("empty list", ([], (1, 2), 256)),
        Case("reversed pair is not the pair", ([2, 1, 2, 1], (1, 2), 256)),
    ]
    run_cases("merge", student_fn, cases, reference_merge,
              hint="scan left to right; after a merge, skip both ids, so [5, 5, 5] with (5, 5) gives [9, 5]")


@checker
def train(student_fn: Callable) -> None:
    cases = [
        Case("classic example", ("aaabdaaabac", 259)),
        Case("ties: equal counts", ("ab cd", 257)),
        Case("ties: longer", ("ab cd ef ab cd", 260)),
        Case("story sentence", ("Once upon a time, there was a little fox. The fox had a red ball. The ball was red.", 280)),
        Case("non-ASCII", ("naïve café, déjà vu: café!", 266)),
        Case("pre-tokens are not crossed", ("dog. dog! dog? dog.", 262)),
        Case("stops when nothing is left", ("hi", 300)),
        Case("no merges asked", ("hello", 256)),
    ]
    run_cases("train", student_fn, cases, reference_train, compare=same_merges, hint=TIE_HINT)


ENCODE_TRAINING_TEXT = ("Once upon a time, there was a little fox named Finn. Finn had a red ball. "
                        "One day, Finn lost his ball. He was very sad. Then he found the ball under a tree!")
# Learns "\n" + "\n" first: an encoder that skips pre-tokenization merges newlines across pre-tokens.
NEWLINE_TRAINING_TEXT = "The end.\n\n\nOnce upon a time.\n\n\nThe fox ran.\n\n\n"


@checker
def encode(student_fn: Callable) -> None:
    merges = merges_for(ENCODE_TRAINING_TEXT, 320)
    cases = [
        Case("empty text", ("", merges)),
        Case("seen text", ("Finn had a red ball.", merges)),
        Case("unseen words", ("A tiny frog sang.", merges)),
        Case("spaces and newlines", ("fox  \n\n ball\t!", merges)),
        Case("emoji and accents", ("Finn 🦊 a été là.", merges)),
        Case("long repeat", ("aaaaaaa", merges_for("aaaaaaaaaaaaaaaa", 259))),
        Case("no merges at all", ("héllo", {})),
        Case("newline runs are pre-tokens of their own", ("The fox ran.\n\nThe end.\n\n\n\nOnce", merges_for(NEWLINE_TRAINING_TEXT, 275))),
    ]
    run_cases("encode", student_fn, cases, reference_encode,
              hint="pre-tokenize, take each pre-token's UTF-8 bytes, then repeatedly merge the pair that was learned first (lowest new id)")


@checker
def decode(student_fn: Callable) -> None:
    vocab = vocab_for(ENCODE_TRAINING_TEXT, 320)
    seen = bpe.BPETokenizer.from_merge_ids(merges_for(ENCODE_TRAINING_TEXT, 320))
    cases = [
        Case("empty list", ([], vocab)),
        Case("ASCII text", (seen.encode("Finn had a red ball."), vocab)),
        Case("multi-byte characters", (list("é🦊".encode()), vocab)),
        Case("a character cut in two", (list("€".encode())[:2], vocab)),
        Case("a byte that is never valid UTF-8", ([0xFF, 104, 105], vocab)),
    ]
    run_cases("decode", student_fn, cases, reference_decode,
              hint="join the bytes of every token, then decode once with errors='replace' (invalid UTF-8 becomes U+FFFD)")
