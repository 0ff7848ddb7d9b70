"""Checkers of chapter 3 (perplexity and evaluation): the student's functions against course_lib.evaluation.

Each checker first looks for the classic mistake of its exercise (and names it), then runs the fixed
cases. Hidden checks call `run_cases` with the `reference_*` functions below and cases of their own.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from course_lib import evaluation as ev
from course_lib import lm, tasks
from course_lib.checks import Case, Mistake, call_student, checker, close, fail, fail_on_mistake, run_cases

__all__ = ["token_nll", "perplexity", "bits_per_byte", "choice_log_likelihoods", "multiple_choice", "ngram_overlap",
           "reference_token_nll", "reference_perplexity", "reference_bits_per_byte", "reference_choice_log_likelihoods",
           "reference_multiple_choice", "reference_ngram_overlap", "choice_mistakes", "random_logits"]


# ----------------------------------------------------------------------------------------------------
# The references, with the exercises' signatures.

def reference_token_nll(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return -lm.token_log_likelihoods(logits, targets)


def reference_perplexity(token_logliks: list) -> float:
    return ev.perplexity(token_logliks)


def reference_bits_per_byte(token_logliks: list, texts: list[str]) -> float:
    return ev.bits_per_byte(token_logliks, texts)


def reference_choice_log_likelihoods(model: torch.nn.Module, tokenizer, context: str, choices: list[str]) -> list[float]:
    return ev.choice_log_likelihoods(model, tokenizer, [tasks.Item("exercise", context, tuple(choices), 0, "test", 0)])[0]


def reference_multiple_choice(choice_logliks: list[float], choices: list[str]) -> tuple[int, int]:
    return ev.multiple_choice_predictions(choice_logliks, choices)


def reference_ngram_overlap(test_texts: list[str], train_texts: list[str], n: int) -> list[float]:
    return [o.fraction for o in ev.ngram_overlaps(test_texts, train_texts, n)]


def random_logits(batch: int, length: int, vocab: int, seed: int = 0,
                  scale: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed logits [B, T, V] and targets [B, T] from a private generator (the same on every machine)."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(batch, length, vocab, generator=generator) * scale
    return logits, torch.randint(vocab, (batch, length), generator=generator)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) or (isinstance(x, torch.Tensor) and x.numel() == 1)


# ----------------------------------------------------------------------------------------------------
# The checkers the check cells call.

@checker
def token_nll(student_fn: Callable) -> None:
    logits, targets = random_logits(1, 3, 5, seed=1)
    got = call_student("token_nll", "sign", student_fn, logits, targets)
    expected = reference_token_nll(logits, targets)
    same_shape = isinstance(got, torch.Tensor) and got.shape == expected.shape
    if same_shape and torch.allclose(got.double(), -expected.double(), atol=1e-5):
        fail("token_nll", "sign", expected, got,
             hint="you returned log p (<= 0); the negative log-likelihood is -log p (>= 0)")
    big, big_targets = random_logits(2, 4, 7, seed=2, scale=1000.0)
    got = call_student("token_nll", "logits around 1000", student_fn, big, big_targets)
    if isinstance(got, torch.Tensor) and not torch.isfinite(got).all():
        fail("token_nll", "logits around 1000", reference_token_nll(big, big_targets), got,
             hint="a softmax followed by a log breaks on large logits (tiny probabilities round to 0 and log 0 = -inf; "
                  "exp(1000) = inf); use torch.log_softmax, or subtract the logsumexp of each row yourself")
    cases = [
        Case("uniform logits: log V each", (torch.zeros(1, 2, 4), torch.tensor([[0, 3]]))),
        Case("one sequence", random_logits(1, 6, 10, seed=3)),
        Case("batch of 3", random_logits(3, 5, 8, seed=4)),
        Case("logits around 1000", (big, big_targets)),
        Case("a confident, right prediction costs almost nothing", (torch.tensor([[[20.0, 0.0, 0.0]]]), torch.tensor([[0]]))),
    ]
    run_cases("token_nll", student_fn, cases, reference_token_nll, compare=close(1e-4, 1e-4),
              hint="log_softmax over the last dimension (the vocabulary), pick each target's entry with gather, negate; "
                   "the result has the shape of `targets`")


@checker
def perplexity(student_fn: Callable) -> None:
    # A mean of per-document perplexities (or of per-document mean losses) is the classic mistake.
    docs = [[-0.1, -0.2], [-3.0] * 10]
    got = call_student("perplexity", "a short and a long document", student_fn, docs)
    mean_per_doc = sum(math.exp(-sum(d) / len(d)) for d in docs) / len(docs)
    per_doc_loss = math.exp(sum(-sum(d) / len(d) for d in docs) / len(docs))
    mistakes = [(mean_per_doc, "averaged the documents' perplexities"), (per_doc_loss, "averaged the documents' mean losses")]
    for wrong, what in mistakes:
        if _is_number(got) and math.isclose(float(got), wrong, rel_tol=1e-6):
            fail("perplexity", "a short and a long document", reference_perplexity(docs), got,
                 hint=f"you {what}; pool instead: add up all log-likelihoods and count all tokens, then exp(-sum / count)")
    cases = [
        Case("one token of probability 1/4", ([[math.log(0.25)]],)),
        Case("uniform over 8: perplexity 8", ([[math.log(1 / 8)] * 5, [math.log(1 / 8)] * 2],)),
        Case("a short and a long document", (docs,)),
        Case("tensors work too", ([torch.tensor([-0.5, -1.5, -0.25]), torch.tensor([-2.0])],)),
    ]
    run_cases("perplexity", student_fn, cases, reference_perplexity, compare=close(1e-6, 1e-9),
              hint="exp(-(sum of every token's log-likelihood) / (number of tokens)), over all documents at once")


@checker
def bits_per_byte(student_fn: Callable) -> None:
    docs, texts = [[-2.0, -1.0], [-0.5] * 6], ["café", "a long document"]
    got = call_student("bits_per_byte", "a short and a long document, with an accent", student_fn, docs, texts)
    expected = reference_bits_per_byte(docs, texts)
    total_nats, n_bytes = 6.0, len("café".encode()) + len("a long document")
    mistakes = [
        (total_nats / n_bytes, "you forgot to convert nats to bits: divide by ln 2"),
        (total_nats / len("".join(texts)) / math.log(2),
         "you counted characters; count UTF-8 bytes: len(text.encode('utf-8'))"),
        ((3.0 / 5 + 3.0 / 15) / 2 / math.log(2),
         "you averaged per-document ratios; add up all log-likelihoods and all bytes first"),
        (-total_nats / n_bytes / math.log(2), "the sign is wrong: bits per byte is positive, -(log-likelihood) / bytes / ln 2"),
    ]
    for wrong, hint in mistakes:
        if _is_number(got) and math.isclose(float(got), wrong, rel_tol=1e-6):
            fail("bits_per_byte", "a short and a long document, with an accent", expected, got, hint=hint)
    cases = [
        Case("one document, ASCII", ([[-math.log(2)] * 8], ["abcdefgh"])),
        Case("a short and a long document, with an accent", (docs, texts)),
        Case("emoji", ([[-1.0, -2.0, -3.0]], ["hi 🙂"])),
        Case("three documents", ([[-1.0], [-2.0, -2.0], [-0.1] * 9], ["a", "bb", "a longer one"])),
    ]
    run_cases("bits_per_byte", student_fn, cases, reference_bits_per_byte, compare=close(1e-6, 1e-9),
              hint="-(sum of all log-likelihoods) / (sum of len(text.encode('utf-8'))) / ln 2")


# The classic mistakes of scoring a choice, each computed on the case at hand, so the checker can name the
# one a wrong result matches.

_SPLIT_HINT = ("encode context + choice together, once, and keep the tokens after the context's own (lm-evaluation-harness "
               "first moves the context's trailing spaces to the front of the choice); prepend <|endoftext|>; sum "
               "log p(token | everything before it) over the choice's tokens only")


def _row_log_likelihoods(model: torch.nn.Module, ids: list[int]) -> torch.Tensor:
    """log p(ids[t + 1] | ids[: t + 1]) for every t, one row through the model: float64 [len(ids) - 1]."""
    x = torch.tensor([ids], device=lm.model_device(model))
    with torch.no_grad():
        return lm.token_log_likelihoods(model(x[:, :-1]), x[:, 1:])[0].double().cpu()


def choice_mistakes(model: torch.nn.Module, tokenizer, context: str, choice: str) -> dict[str, float]:
    """{what went wrong: the log-likelihood that mistake gives this choice}, for the checker's hints."""
    eot = lm.end_of_text_id(tokenizer)
    context_ids, choice_ids = ev.encode_pair(tokenizer, context, choice)
    n = len(choice_ids)
    scored = _row_log_likelihoods(model, [eot, *context_ids, *choice_ids])  # the last n are the choice's
    apart = tokenizer.encode(choice)
    separately = _row_log_likelihoods(model, [eot, *tokenizer.encode(context), *apart])[-len(apart):]
    return {
        "you scored the context too: sum only the log-probabilities of the choice's own tokens, the last ones":
            scored.sum().item(),
        "off by one: the split is one token early, so the last token of the context was scored as part of the choice":
            scored[-n - 1:].sum().item(),
        "off by one: the split is one token late, so the choice's first token is missing from the sum":
            scored[-n + 1:].sum().item() if n > 1 else 0.0,
        "you tokenized the context and the choice separately: the context's trailing space became a token of its "
        "own and the choice lost its leading space ('blue' and ' blue' are different tokens)":
            separately.sum().item(),
        "the model did not read <|endoftext|> first (every story follows one in training)":
            _row_log_likelihoods(model, [*context_ids, *choice_ids])[-n:].sum().item(),
        "you averaged over the choice's tokens: sum them (acc_norm divides later, by characters)":
            scored[-n:].mean().item(),
        "the sign is flipped: return log-likelihoods (<= 0), not losses": -scored[-n:].sum().item(),
    }


CHOICE_TOLERANCE = close(1e-4, 1e-4)  # float32 logits, and rows batched with padding or not


def _diagnose_choices(group: str, case: Case, student_fn: Callable) -> None:
    """Fail with a named hint if the student's result on `case` matches a classic mistake."""
    model, tokenizer, context, choices = case.args
    got = call_student(group, case.label, student_fn, *copy.deepcopy(case.args))
    expected = reference_choice_log_likelihoods(model, tokenizer, context, choices)
    if not isinstance(got, (list, tuple)) or len(got) != len(choices):
        fail(group, case.label, expected, got, detail=case.call_repr(group),
             hint="return a list with one float per choice, in the order of `choices`")
    for i, choice in enumerate(choices):
        fail_on_mistake(group, case.label, expected[i], got[i],
                        [Mistake(wrong, hint) for hint, wrong in choice_mistakes(model, tokenizer, context, choice).items()],
                        compare=CHOICE_TOLERANCE, detail=f"{case.call_repr(group)}: choice {i} ({choice!r})")


def choice_cases() -> list[Case]:
    """The visible cases: the story GPT and tokenizer, on short stories."""
    model, tokenizer = _story_model_and_tokenizer()
    story = "Tom had a red kite. He loved his red kite. One day, Tom played with his"
    return [
        Case("the colour of the hero's thing", (model, tokenizer, story, [" red kite", " blue kite", " red ball"])),
        Case("the context ends with a space", (model, tokenizer, "Mia met a shy girl named Ivy. Mia and ", ["Ivy", "Ben"])),
        Case("a choice of several words", (model, tokenizer, "Sam went to the park.", [" He said, \"I love this park!\"",
                                                                                     " It started to rain."])),
        Case("one choice", (model, tokenizer, "Once upon a time, there was a", [" little girl"])),
    ]


_STORY = []  # the story GPT and tokenizer, loaded once per kernel


def _story_model_and_tokenizer():
    if not _STORY:
        from course_lib.model import load_story_model
        from course_lib.tokenizer import load_story_tokenizer

        _STORY.extend([load_story_model("cpu"), load_story_tokenizer()])
    return tuple(_STORY)


@checker
def choice_log_likelihoods(student_fn: Callable, cases: list[Case] | None = None,
                           group: str = "choice_log_likelihoods") -> None:
    cases = choice_cases() if cases is None else cases
    for case in cases:
        _diagnose_choices(group, case, student_fn)
    run_cases(group, student_fn, cases, reference_choice_log_likelihoods, compare=CHOICE_TOLERANCE, hint=_SPLIT_HINT)


def _same_picks(got: Any, expected: Sequence[int]) -> bool:
    return isinstance(got, (tuple, list)) and tuple(got) == tuple(expected)


@checker
def multiple_choice(student_fn: Callable) -> None:
    cases = [
        Case("both pick the same", ([-1.0, -5.0, -3.0], [" red", " blue", " green"])),
        Case("acc takes the short choice, acc_norm the long one", ([-4.0, -6.0], [" zoo", " playground"])),
        Case("acc_norm prefers a third, longer choice", ([-3.0, -4.5, -5.0], [" park", " zoo", " playground"])),
        Case("the leading space is not part of the choice", ([-1.0, -2.2], [" a", " abc"])),
        Case("ties go to the first choice", ([-2.0, -2.0, -2.0], [" ab", " cd", " ef"])),
        Case("one choice", ([-7.0], [" anything"])),
    ]
    got = call_student("multiple_choice", "the result", student_fn, [-4.0, -6.0], [" zoo", " playground"])
    two_ints = isinstance(got, (tuple, list)) and len(got) == 2 and all(
        isinstance(g, (int, np.integer)) and not isinstance(g, bool) for g in got)
    if not two_ints:
        fail("multiple_choice", "the result", (0, 1), got, hint="return a tuple of two ints: (acc's pick, acc_norm's pick)")
    if tuple(got) == (1, 0):
        fail("multiple_choice", "acc takes the short choice, acc_norm the long one", (0, 1), got,
             hint="the two picks are swapped, or you minimised: pick the *largest* log-likelihood, and for acc_norm "
                  "the largest log-likelihood per character")
    logliks, choices = cases[3].args
    got = call_student("multiple_choice", cases[3].label, student_fn, list(logliks), list(choices))
    others_right = all(_same_picks(call_student("multiple_choice", case.label, student_fn, *map(list, case.args)),
                                   reference_multiple_choice(*case.args)) for k, case in enumerate(cases) if k != 3)
    if others_right and _same_picks(got, (0, 0)):  # -1/2 > -2.2/4 with the space; -1/1 < -2.2/3 without
        fail("multiple_choice", cases[3].label, reference_multiple_choice(logliks, choices), got,
             hint="you counted the leading space: lm-evaluation-harness scores ' ' + choice but divides by "
                  "len(choice), the answer without the space that joins it to the context")
    run_cases("multiple_choice", student_fn, cases, lambda *a: tuple(reference_multiple_choice(*a)),
              compare=lambda g, e: None if isinstance(g, (tuple, list)) and tuple(g) == e else "picks differ",
              hint="acc: the index of the largest log-likelihood; acc_norm: the index of the largest "
                   "log-likelihood / len(choice without its leading space) (characters); ties go to the first")


@checker
def ngram_overlap(student_fn: Callable) -> None:
    train = ["The cat sat on the mat. It was happy.", "A dog ran to the park and sat down."]
    cases = [
        Case("an exact copy", (["the cat sat on the mat"], train, 3)),
        Case("case and punctuation do not count", (["THE CAT, sat -- on the MAT!"], train, 3)),
        Case("n-grams do not cross training documents", (["it was happy a dog"], train, 4)),
        Case("nothing shared", (["a bird flew over the sea"], train, 3)),
        Case("shorter than n: 0.0", (["cat sat"], train, 3)),
        Case("distinct n-grams count once", (["the cat the cat the cat sat"], train, 2)),
        Case("several test texts", (["the cat sat on a hat", "it was happy today", "dog ran"], train, 2)),
    ]
    got = call_student("ngram_overlap", "n-grams do not cross training documents", student_fn, ["it was happy a dog"], train, 4)
    if isinstance(got, (list, tuple)) and len(got) == 1 and _is_number(got[0]) and float(got[0]) > 0:
        fail("ngram_overlap", "n-grams do not cross training documents", [0.0], got,
             hint="take the n-grams of each training text on its own; joining the texts creates n-grams across "
                  "documents ('was happy a dog') that exist in none of them")
    run_cases("ngram_overlap", student_fn, cases, reference_ngram_overlap, compare=close(1e-9, 1e-12),
              hint="words = re.findall(r'[a-z0-9]+', text.lower()); the n-grams of a text are the set of tuples "
                   "words[i:i+n]; for each test text return |its n-grams found in training| / |its n-grams| "
                   "(0.0 when it has none)")

