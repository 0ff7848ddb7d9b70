"""Checkers for chapter 7 (preference optimisation): the student's functions against the course_lib references.

Each checker runs the student's function and the reference on fixed cases and prints one line per case
group, or raises CheckFailed naming the case, what was expected, what came back and a hint aimed at the
usual mistake (a mean instead of a sum, the prompt counted, log(sigmoid) overflowing, a mean over the batch
where each pair's loss is asked for, ...). Hidden checks call `run_cases` with the `reference_*` functions.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from course_lib import dpo
from course_lib.checks import Case, Mistake, call_student, checker, close, exact, fail, fail_on_mistake, run_cases

__all__ = ["sequence_log_probs", "dpo_loss", "reward_metrics", "bradley_terry_loss", "best_of_n",
           "reference_sequence_log_probs", "reference_dpo_loss", "reference_reward_metrics",
           "reference_bradley_terry_loss", "reference_best_of_n", "compare_metrics", "compare_per_pair",
           "random_logits_and_labels", "random_logps",
           "pair_agreement", "reference_pair_agreement", "pair_agreement_cases"]

REWARD_METRICS = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies")

# ----------------------------------------------------------------------------------------------------
# The references, with the exercises' signatures.


def reference_sequence_log_probs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return dpo.sequence_log_probs(logits, labels)


def reference_dpo_loss(pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor, beta: float) -> torch.Tensor:
    return dpo.dpo_loss(pc, pr, rc, rr, beta)


def reference_reward_metrics(pc: torch.Tensor, pr: torch.Tensor, rc: torch.Tensor, rr: torch.Tensor, beta: float) -> dict:
    metrics = dpo.dpo_metrics(pc, pr, rc, rr, beta)
    return {name: metrics[name] for name in REWARD_METRICS}


def reference_bradley_terry_loss(reward_chosen: torch.Tensor, reward_rejected: torch.Tensor) -> torch.Tensor:
    return dpo.bradley_terry_loss(reward_chosen, reward_rejected)


def reference_best_of_n(scores: torch.Tensor) -> torch.Tensor:
    return dpo.best_of_n(scores)


# ----------------------------------------------------------------------------------------------------
# Comparisons that name the typical mistake


def compare_per_pair(got, expected) -> str | None:
    """One value per pair [B], within 1e-5 relative."""
    if isinstance(got, torch.Tensor) and got.dim() == 0 and expected.numel() > 1:
        return "got one number for the whole batch: return the loss of every pair, shape [B] (no .mean())"
    return close(1e-5, 1e-6)(got, expected)


def compare_metrics(got, expected) -> str | None:
    if not isinstance(got, dict):
        return f"return a dict with the keys {list(REWARD_METRICS)}"
    missing = [k for k in REWARD_METRICS if k not in got]
    if missing:
        return f"missing the key(s) {missing} (TRL's names, with the slash)"
    for name in REWARD_METRICS:
        value = got[name]
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                return f"{name}: a batch mean is one number, got a tensor of shape {tuple(value.shape)}"
            value = value.item()
        problem = close(1e-5, 1e-6)(value, expected[name])
        if problem:
            return f"{name}: {problem}"
    return None


# ----------------------------------------------------------------------------------------------------
# Fixed inputs


def random_logits_and_labels(B: int, T: int, V: int, seed: int, prompt: int = 2, pad: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits [B, T, V], and labels [B, T] that are -100 on the first `prompt` and last `pad` positions."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, V, generator=generator) * 2
    labels = torch.randint(V, (B, T), generator=generator)
    labels[:, :prompt] = -100
    if pad:
        labels[:, T - pad:] = -100
    return logits, labels


def random_logps(B: int, seed: int, spread: float = 5.0) -> tuple[torch.Tensor, ...]:
    """Four log-prob tensors [B] (policy chosen, policy rejected, reference chosen, reference rejected)."""
    generator = torch.Generator().manual_seed(seed)
    base = -60 + 20 * torch.randn(4, B, generator=generator, dtype=torch.float64)
    base[:2] = base[2:] + spread * torch.randn(2, B, generator=generator, dtype=torch.float64)  # policy near reference
    return tuple(base)


# ----------------------------------------------------------------------------------------------------
# The checkers the check cells call.


@checker
def sequence_log_probs(student_fn: Callable) -> None:
    ragged = random_logits_and_labels(3, 6, 7, seed=3, prompt=1, pad=0)
    ragged[1][1, 4:] = -100  # a shorter response, padded
    ragged[1][2, :3] = -100  # a longer prompt
    large = random_logits_and_labels(2, 4, 9, seed=5)
    cases = [
        Case("prompt of 2 tokens, 1 of padding", random_logits_and_labels(2, 5, 6, seed=1)),
        Case("rows with different prompt and padding lengths", ragged),
        Case("one response token", (random_logits_and_labels(1, 4, 5, seed=4)[0], torch.tensor([[-100, -100, 2, -100]]))),
        Case("large logits (stay finite)", (large[0] * 40, large[1])),
    ]
    run_cases("sequence_log_probs", student_fn, cases, reference_sequence_log_probs, compare=close(1e-5, 1e-5),
              hint="log_softmax over the vocabulary, pick each label's log-prob (gather), zero it where the label is "
                   "-100, and SUM over T (log π(y|x) of the whole response, not a mean per token); one number per row [B]")


@checker
def dpo_loss(student_fn: Callable) -> None:
    same = random_logps(4, seed=1)
    cases = [
        Case("policy = reference (ln 2 for every pair)", (same[2], same[3], same[2], same[3], 0.1)),
        Case("policy moved, beta 0.1", (*random_logps(5, seed=2), 0.1)),
        Case("beta 1", (*random_logps(3, seed=3), 1.0)),
        Case("huge margins (stay finite)", (*random_logps(4, seed=4, spread=2000.0), 1.0)),
    ]
    run_cases("dpo_loss", student_fn, cases, reference_dpo_loss, compare=compare_per_pair,
              hint="margin = (π_chosen − ref_chosen) − (π_rejected − ref_rejected); loss = −logsigmoid(β·margin) "
                   "for each pair ([B], no mean); F.logsigmoid stays finite where torch.log(torch.sigmoid(.)) gives -inf")


@checker
def reward_metrics(student_fn: Callable) -> None:
    cases = [
        Case("policy = reference: all rewards 0, accuracy 0", (*(random_logps(4, seed=5)[2:] * 2), 0.1)),
        Case("policy moved, beta 0.1", (*random_logps(8, seed=6), 0.1)),
        Case("beta 0.5", (*random_logps(5, seed=7), 0.5)),
    ]
    run_cases("reward_metrics", student_fn, cases, reference_reward_metrics, compare=compare_metrics,
              hint="implicit reward = β·(log π − log π_ref) of each response; report batch means of the chosen's, the "
                   "rejected's and their difference, and the fraction of pairs whose chosen reward is strictly higher")


@checker
def bradley_terry_loss(student_fn: Callable) -> None:
    generator = torch.Generator().manual_seed(8)
    cases = [
        Case("equal rewards (ln 2)", (torch.zeros(3), torch.zeros(3))),
        Case("random rewards", tuple(torch.randn(2, 6, generator=generator, dtype=torch.float64))),
        Case("huge differences (stay finite)", (torch.tensor([500.0, -500.0]), torch.tensor([-500.0, 500.0]))),
    ]
    run_cases("bradley_terry_loss", student_fn, cases, reference_bradley_terry_loss, compare=compare_per_pair,
              hint="−logsigmoid(r_chosen − r_rejected) for each pair: the negative log-likelihood that the reader "
                   "picked the chosen one; shape [B]")


@checker
def best_of_n(student_fn: Callable) -> None:
    generator = torch.Generator().manual_seed(9)
    cases = [
        Case("three prompts, four candidates", (torch.randn(3, 4, generator=generator),)),
        Case("n = 1 (nothing to choose)", (torch.randn(5, 1, generator=generator),)),
        Case("ties go to the first", (torch.tensor([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]),)),
        Case("negative scores", (-torch.rand(2, 6, generator=generator) - 1,)),
    ]
    run_cases("best_of_n", student_fn, cases, reference_best_of_n, compare=close(0, 0),
              hint="for each prompt (row), the index of the HIGHEST score among its n candidates (argmax over dim 1); shape [P]")


# ----------------------------------------------------------------------------------------------------
# A judge held against the true reward


def reference_pair_agreement(judge: torch.Tensor, truth: torch.Tensor, keep: torch.Tensor | None = None) -> tuple[int, int]:
    return dpo.pair_agreement(judge, truth, keep)


def pair_agreement_cases() -> list[Case]:
    g = torch.Generator().manual_seed(91)
    truth = torch.tensor([[0.0, 3.5, 1.2, 3.1], [3.4, 3.4, 0.0, 1.5]])
    judge = torch.tensor([[-1.0, 2.0, 0.5, 2.5], [1.0, 0.0, 0.0, -2.0]])
    ties = torch.tensor([[1.0, 1.0, 2.0], [0.0, 0.0, 0.0]])
    return [
        Case("two prompts, four answers each", (judge, truth)),
        Case("the judge ties: not an agreement", (ties, torch.tensor([[0.0, 1.0, 2.0], [1.0, 2.0, 3.0]]))),
        Case("a mask keeps some pairs", (judge, truth, dpo.pair_kinds(truth)["same band: only the length differs"])),
        Case("one answer per prompt: no pairs", (torch.randn(3, 1, generator=g), torch.randn(3, 1, generator=g))),
        Case("random scores, 8 answers", (torch.randn(5, 8, generator=g), torch.randn(5, 8, generator=g).round())),
    ]


def _pair_mistakes(judge, truth, keep=None) -> list[Mistake]:
    t, j = truth[:, :, None] - truth[:, None, :], judge[:, :, None] - judge[:, None, :]
    kept = torch.ones_like(t, dtype=torch.bool) if keep is None else keep.bool()
    upper = torch.ones_like(t, dtype=torch.bool).triu(1) & kept

    def count(pairs, agree):
        return int((pairs & agree).sum()), int(pairs.sum())

    same = torch.sign(j) == torch.sign(t)
    return [
        Mistake(lambda: count(kept & (t != 0) & ~torch.eye(t.size(1), dtype=torch.bool), same),
                "each pair counts once: take i < j only (the pair (j, i) is the same pair, the other way round)"),
        Mistake(lambda: count(upper, same), "a pair whose true rewards are equal has no right order: leave it out"),
        Mistake(lambda: count(upper & (t != 0), (j * t) >= 0),
                "a tie of the judge (equal scores) does not agree: the judge did not order the pair"),
        Mistake(lambda: count(torch.ones_like(upper).triu(1) & (t != 0), same), "count only the pairs the mask keeps"),
    ]


@checker
def pair_agreement(student_fn: Callable) -> None:
    cases = pair_agreement_cases()
    for case in cases:
        got = call_student("pair_agreement", case.label, student_fn, *case.args)
        if not (isinstance(got, tuple) and len(got) == 2 and all(isinstance(v, int) and not isinstance(v, bool) for v in got)):
            fail("pair_agreement", case.label, reference_pair_agreement(*case.args), got,
                 hint="return a tuple of two ints (agreements, pairs): int(tensor.sum()) makes an int of a count")
        fail_on_mistake("pair_agreement", case.label, reference_pair_agreement(*case.args), got, _pair_mistakes(*case.args),
                        compare=exact, detail="(agreements, pairs)")
    run_cases("pair_agreement", student_fn, cases, reference_pair_agreement,
              hint="pairs: i < j of the same prompt with truth[p, i] != truth[p, j] (and keep[p, i, j]); agreement: "
                   "sign(judge[p, i] - judge[p, j]) == sign(truth[p, i] - truth[p, j])")
