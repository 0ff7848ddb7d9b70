"""Checkers for chapter 2 (language modeling): the student's functions against the course_lib references.

Each checker runs the student's function and the reference on fixed cases and prints one line per case
group, or raises CheckFailed naming the case, what was expected, what came back and a hint. Hidden checks
call `run_cases` with the `reference_*` functions below and cases of their own.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from course_lib import lm, ngram, training
from course_lib import model as gpt
from course_lib.checks import Case, CheckFailed, checker, close, fail, report, run_cases

__all__ = ["bigram_counts", "causal_attention", "learning_rate", "next_token_distribution",
           "reference_bigram_counts", "reference_causal_attention", "reference_learning_rate",
           "reference_next_token_distribution", "random_qkv", "random_logits"]


# ----------------------------------------------------------------------------------------------------
# The references, with the exercises' signatures.

def reference_bigram_counts(token_ids: list[int], vocab_size: int) -> torch.Tensor:
    return ngram.bigram_counts(token_ids, vocab_size)


def reference_causal_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return gpt.causal_self_attention(q, k, v)


def reference_learning_rate(step: int, max_lr: float, warmup_steps: int, max_steps: int, min_lr: float) -> float:
    return training.learning_rate(step, max_lr, warmup_steps, max_steps, min_lr)


def reference_next_token_distribution(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                                      top_p: float | None = None) -> torch.Tensor:
    return lm.next_token_distribution(logits, temperature, top_k, top_p)


# Fixed random inputs: a private generator, so the cases are the same on every machine and never touch
# the notebook's global random state.

def random_qkv(batch: int, heads: int, length: int, head_size: int, seed: int = 0) -> tuple[torch.Tensor, ...]:
    generator = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(batch, heads, length, head_size, generator=generator) for _ in range(3))


def random_logits(batch: int, vocab: int, seed: int = 0, scale: float = 2.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, vocab, generator=generator) * scale


# ----------------------------------------------------------------------------------------------------
# The checkers the check cells call.

@checker
def bigram_counts(student_fn: Callable) -> None:
    cases = [
        Case("one pair", ([1, 2], 3)),
        Case("a repeated pair", ([0, 1, 0, 1, 0], 2)),
        Case("a run of one token", ([4, 4, 4, 4], 5)),
        Case("a single token: no pairs", ([3], 4)),
        Case("order matters", ([2, 0, 1, 2, 1, 0], 3)),
        Case("the last id of the vocabulary", ([0, 9, 9, 0, 5], 10)),
    ]
    run_cases("bigram_counts", student_fn, cases, reference_bigram_counts, compare=close(0.0, 0.0),
              hint="counts[a, b] += 1 for each neighbouring pair (a, b) = (ids[i], ids[i + 1]); "
                   "the result has shape [vocab_size, vocab_size], rows = previous token")


@checker
def causal_attention(student_fn: Callable) -> None:
    cases = [
        Case("one head, 4 positions", random_qkv(1, 1, 4, 8, seed=1)),
        Case("one position (sees only itself)", random_qkv(1, 2, 1, 4, seed=2)),
        Case("batch 2, 3 heads, 7 positions", random_qkv(2, 3, 7, 16, seed=3)),
        Case("large scores (softmax must not overflow)", tuple(t * 30 for t in random_qkv(1, 2, 5, 8, seed=4))),
    ]
    check_causal(student_fn)  # first: a missing mask gets its own message
    run_cases("causal_attention", student_fn, cases, reference_causal_attention, compare=close(1e-4, 1e-5),
              hint="scores = q @ k^T / sqrt(head_size); set scores[i, j] = -inf where j > i; "
                   "softmax over the last dimension; return weights @ v")


@checker
def check_causal(student_fn: Callable) -> None:
    """Changing the keys and values of the last positions must not change any earlier output."""
    q, k, v = random_qkv(1, 2, 6, 8, seed=5)
    k2, v2 = k.clone(), v.clone()
    k2[:, :, 3:] += 5.0
    v2[:, :, 3:] -= 5.0
    try:
        before = student_fn(q.clone(), k.clone(), v.clone())
        after = student_fn(q.clone(), k2, v2)
    except NotImplementedError:
        raise
    except Exception as error:  # the student's bug, reported like any failed case
        fail("causal_attention mask", "q, k, v of shape [1, 2, 6, 8]", "a tensor of shape [1, 2, 6, 8]", None,
             raised=f"{type(error).__name__}: {error}", error=error)
    if not isinstance(after, torch.Tensor) or after.shape != q.shape:
        fail("causal_attention mask", "q, k, v of shape [1, 2, 6, 8]", "a tensor of shape [1, 2, 6, 8]", after)
    problem = close(1e-5, 1e-6)(after[:, :, :3], before[:, :, :3])
    if problem:
        fail("causal_attention mask", "changing positions 3..5 changed positions 0..2", before[:, :, :3], after[:, :, :3],
             hint="position i may only look at positions j <= i: mask the scores above the diagonal before the softmax",
             detail=problem)
    report("causal_attention mask", 1)


@checker
def learning_rate(student_fn: Callable) -> None:
    settings = dict(max_lr=3e-3, warmup_steps=10, max_steps=100, min_lr=3e-4)
    steps = [0, 4, 9, 10, 11, 55, 99, 100, 150]
    cases = [Case(f"step {s}", (s,), settings) for s in steps]
    cases.append(Case("no warm-up", (0,), dict(max_lr=1e-2, warmup_steps=0, max_steps=50, min_lr=0.0)))
    cases.append(Case("no warm-up, half way", (25,), dict(max_lr=1e-2, warmup_steps=0, max_steps=50, min_lr=0.0)))
    run_cases("learning_rate", student_fn, cases, reference_learning_rate, compare=close(1e-6, 1e-12),
              hint="warm-up: max_lr * (step + 1) / warmup_steps; then min_lr + 0.5 * (1 + cos(pi * progress)) * "
                   "(max_lr - min_lr) with progress = (step - warmup_steps) / (max_steps - warmup_steps); "
                   "min_lr from max_steps on")


@checker
def next_token_distribution(student_fn: Callable) -> None:
    logits = random_logits(3, 12, seed=7)
    cases = [
        Case("temperature 1: plain softmax", (logits,)),
        Case("temperature 0.5: sharper", (logits,), dict(temperature=0.5)),
        Case("temperature 3: flatter", (logits,), dict(temperature=3.0)),
        Case("temperature 0: greedy", (logits,), dict(temperature=0.0)),
        Case("top_k=1", (logits,), dict(top_k=1)),
        Case("top_k=4", (logits,), dict(top_k=4)),
        Case("top_k larger than the vocabulary", (logits,), dict(top_k=50)),
        Case("top_p=0.5", (logits,), dict(top_p=0.5)),
        Case("top_p=0.9 at temperature 0.7", (logits,), dict(temperature=0.7, top_p=0.9)),
        Case("top_p=1.0 keeps everything", (logits,), dict(top_p=1.0)),
        Case("top_k=5 then top_p=0.8", (logits,), dict(top_k=5, top_p=0.8)),
    ]
    run_cases("next_token_distribution", student_fn, cases, reference_next_token_distribution,
              compare=close(1e-4, 1e-6),
              hint="divide the logits by the temperature (0: all mass on the argmax); top-k: -inf below the k-th "
                   "largest logit; top-p: sort the probabilities, keep a token while the mass *before* it is "
                   "< p, renormalise")
    probs = student_fn(random_logits(4, 30, seed=8), 1.3, 7, 0.95)
    if not isinstance(probs, torch.Tensor) or not torch.allclose(probs.sum(-1).double(), torch.ones(4, dtype=torch.float64), atol=1e-4):
        raise CheckFailed("next_token_distribution: each row of the result must be a probability distribution summing to 1")
    report("next_token_distribution rows sum to 1", 1)
