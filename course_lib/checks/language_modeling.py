"""Checkers for chapter 2 (language modeling): the student's functions against the course_lib references.

Each checker runs the student's function and the reference on fixed cases and prints one line per case
group, or raises CheckFailed naming the case, what was expected, what came back and a hint. Hidden checks
call `run_cases` with the `reference_*` functions below and cases of their own.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch

from course_lib import lm, ngram, training
from course_lib import model as gpt
from course_lib.checks import Case, CheckFailed, Mistake, call_student, checker, close, fail, fail_on_mistake, report, run_cases

__all__ = ["bigram_counts", "causal_attention", "learning_rate", "next_token_distribution", "split_and_merge_heads",
           "block_forward", "language_model_loss", "train_step",
           "reference_bigram_counts", "reference_causal_attention", "reference_learning_rate",
           "reference_next_token_distribution", "reference_split_heads", "reference_merge_heads",
           "reference_block_forward", "reference_language_model_loss", "reference_train_step",
           "random_qkv", "random_logits", "random_tensor", "random_block", "random_targets",
           "tiny_model_and_optimizer", "step_outcome", "same_bits_per_byte"]


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


# ----------------------------------------------------------------------------------------------------
# Building the GPT: the multi-head split and merge, the block, the loss, the training step.

def reference_split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    B, T, C = x.shape
    return x.view(B, T, n_head, C // n_head).transpose(1, 2)


def reference_merge_heads(y: torch.Tensor) -> torch.Tensor:
    B, H, T, D = y.shape
    return y.transpose(1, 2).contiguous().view(B, T, H * D)


def reference_block_forward(block: gpt.Block, x: torch.Tensor) -> torch.Tensor:
    return gpt.Block.forward(block, x)


def reference_language_model_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    return gpt.language_model_loss(logits, targets)


def reference_train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                         grad_clip: float = 1.0) -> float:
    loss = gpt.language_model_loss(model(x), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss.item()


def random_tensor(*shape: int, seed: int = 0, scale: float = 1.0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=generator) * scale


def random_block(n_embd: int = 16, n_head: int = 2, seed: int = 0) -> gpt.Block:
    """A course_lib Block with every weight random (layer-norm gains and biases too), so that each of its
    four parts visibly changes the output; the notebook's random state is left untouched."""
    state = torch.random.get_rng_state()
    block = gpt.Block(gpt.GPTConfig(vocab_size=8, block_size=16, n_layer=1, n_head=n_head, n_embd=n_embd)).eval()
    torch.random.set_rng_state(state)  # its default initialisation drew from the global generator
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in block.parameters():
            param.copy_(torch.randn(param.shape, generator=generator) * (0.5 if param.dim() == 1 else 0.3))
    return block


def random_targets(B: int, T: int, V: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(V, (B, T), generator=torch.Generator().manual_seed(seed))


def tiny_model_and_optimizer(seed: int = 0, optimizer: str = "adamw", lr: float = 1e-2) -> tuple[gpt.GPT, torch.optim.Optimizer]:
    """A one-layer GPT and its optimizer, built from a private seed (the global random state is restored)."""
    state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = gpt.GPT(gpt.GPTConfig(vocab_size=40, block_size=16, n_layer=1, n_head=2, n_embd=16))
    torch.random.set_rng_state(state)
    opt = torch.optim.SGD(model.parameters(), lr=lr) if optimizer == "sgd" else torch.optim.AdamW(model.parameters(), lr=lr)
    return model, opt


def step_outcome(step_fn: Callable, times: int = 1) -> Callable:
    """Wrap a training step so its whole effect can be compared: [the last loss it returned, the weights after]."""

    def run(model, optimizer, x, y, grad_clip):
        for _ in range(times):
            loss = step_fn(model, optimizer, x, y, grad_clip)
        if isinstance(loss, torch.Tensor):
            loss = loss.item()
        return [loss, torch.cat([p.detach().reshape(-1) for p in model.parameters()])]

    return run


def diagnose(group: str, case: str, student_fn: Callable, args: tuple, reference: Callable,
             mistakes: dict[str, tuple[Callable, str]]) -> None:
    """Before the cases: if the student's result on `args` is exactly a known mistake, say which one.

    `mistakes` maps a mistake's name to (a function computing what it gives on `args`, its hint).
    """
    try:
        got = student_fn(*copy.deepcopy(args))
    except NotImplementedError:
        raise
    except Exception:
        return  # run_cases reports the exception with the student's line
    fail_on_mistake(group, case, reference(*copy.deepcopy(args)), got,
                    [Mistake(lambda f=f: f(*copy.deepcopy(args)), hint, name) for name, (f, hint) in mistakes.items()],
                    compare=close(1e-4, 1e-5))


@checker
def split_and_merge_heads(split_fn: Callable, merge_fn: Callable) -> None:
    split_cases = [
        Case("2 heads, 3 positions, width 4", (random_tensor(1, 3, 4, seed=31), 2)),
        Case("4 heads, batch 2, 5 positions, width 8", (random_tensor(2, 5, 8, seed=32), 4)),
        Case("one head: [B, 1, T, C]", (random_tensor(2, 3, 6, seed=33), 1)),
        Case("as many heads as channels", (random_tensor(1, 4, 6, seed=34), 6)),
    ]
    diagnose("split_heads", split_cases[0].label, split_fn, split_cases[0].args, reference_split_heads, {
        "x.view(B, n_head, T, C // n_head)": (
            lambda x, h: x.reshape(x.size(0), h, x.size(1), x.size(2) // h),
            "a view straight to [B, H, T, D] cuts the memory in the wrong order: first view as [B, T, H, D] "
            "(each position's channels split into heads), then swap T and H with .transpose(1, 2)"),
    })
    run_cases("split_heads", split_fn, split_cases, reference_split_heads, compare=close(0.0, 0.0),
              hint="[B, T, C] -> view [B, T, H, C // H] -> transpose(1, 2) -> [B, H, T, C // H]: head h gets "
                   "channels h*D .. (h+1)*D - 1 of every position")
    merge_cases = [
        Case("2 heads of 2, 3 positions", (random_tensor(1, 2, 3, 2, seed=35),)),
        Case("4 heads of 2, batch 2, 5 positions", (random_tensor(2, 4, 5, 2, seed=36),)),
        Case("one head", (random_tensor(2, 1, 3, 6, seed=37),)),
    ]
    diagnose("merge_heads", merge_cases[0].label, merge_fn, merge_cases[0].args, reference_merge_heads, {
        "y.reshape(B, T, H * D) without the transpose": (
            lambda y: y.reshape(y.size(0), y.size(2), -1),
            "swap H and T back first (.transpose(1, 2)), then .contiguous().view(B, T, H * D): the heads' "
            "outputs must sit side by side for each position"),
    })
    run_cases("merge_heads", merge_fn, merge_cases, reference_merge_heads, compare=close(0.0, 0.0),
              hint="[B, H, T, D] -> transpose(1, 2) -> [B, T, H, D] -> .contiguous().view(B, T, H * D)")
    x = random_tensor(2, 5, 12, seed=38)
    round_trip = call_student("split and merge", "merge_heads(split_heads(x, 3))", lambda t: merge_fn(split_fn(t, 3)), x)
    problem = close(0.0, 0.0)(round_trip, x)
    if problem:
        fail("split and merge", "merge_heads(split_heads(x, 3)) must give x back", x, round_trip, detail=problem,
             hint="merge_heads undoes split_heads: transpose back, then view")
    report("split and merge round trip", 1)


def _post_norm(block, x):
    x = block.ln_1(x + block.attn(x))
    return block.ln_2(x + block.mlp(x))


def _no_residual(block, x):
    x = block.attn(block.ln_1(x))
    return block.mlp(block.ln_2(x))


def _parallel(block, x):
    return x + block.attn(block.ln_1(x)) + block.mlp(block.ln_2(x))


def _one_norm(block, x):
    x = x + block.attn(block.ln_1(x))
    return x + block.mlp(block.ln_1(x))


BLOCK_MISTAKES = {
    "a post-norm block (norm after the residual addition)": (
        _post_norm, "this course's GPT is pre-norm (GPT-2): normalise the input of each branch, x + attn(ln_1(x)), "
                    "and never the residual stream itself"),
    "the branches without the residual additions": (
        _no_residual, "add each branch to its input: x = x + attn(ln_1(x)); the stream must carry x on"),
    "both branches computed from the same input (a parallel block)": (
        _parallel, "the MLP reads the stream *after* attention added to it: compute x = x + attn(ln_1(x)) first, "
                   "then x + mlp(ln_2(x)) from that new x"),
    "ln_1 used before the MLP too": (
        _one_norm, "each branch has its own layer norm: ln_1 before attention, ln_2 before the MLP"),
}


@checker
def block_forward(student_fn: Callable) -> None:
    cases = [
        Case("one sequence of 4 positions, width 16", (random_block(seed=41), random_tensor(1, 4, 16, seed=42))),
        Case("batch 3, 7 positions", (random_block(seed=43), random_tensor(3, 7, 16, seed=44))),
        Case("4 heads of 8", (random_block(32, 4, seed=45), random_tensor(2, 5, 32, seed=46))),
    ]
    diagnose("block_forward", cases[0].label, student_fn, cases[0].args, reference_block_forward, BLOCK_MISTAKES)
    run_cases("block_forward", student_fn, cases, reference_block_forward, compare=close(1e-4, 1e-5),
              hint="pre-norm: x = x + block.attn(block.ln_1(x)), then return x + block.mlp(block.ln_2(x))")


LOSS_MISTAKES = {
    "the sum over tokens, not the mean": (
        lambda logits, y: torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum"),
        "the loss is the *mean* over all B * T positions (nats per token), so it does not grow with the batch"),
    "targets shifted by one more position": (
        lambda logits, y: torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), y[:, 1:].reshape(-1)),
        "targets[b, t] is already the token after position t: compare logits[:, t] with targets[:, t], no shift"),
    "softmax applied before the cross-entropy": (
        lambda logits, y: torch.nn.functional.cross_entropy(logits.softmax(-1).reshape(-1, logits.size(-1)), y.reshape(-1)),
        "F.cross_entropy takes raw logits (it applies log-softmax itself); do not softmax them first"),
}


@checker
def language_model_loss(student_fn: Callable) -> None:
    cases = [
        Case("batch 2, 5 positions, 7 tokens", (random_tensor(2, 5, 7, seed=51, scale=2.0), random_targets(2, 5, 7, seed=52))),
        Case("one position", (random_tensor(1, 1, 4, seed=53), random_targets(1, 1, 4, seed=54))),
        Case("uniform logits: ln V", (torch.zeros(3, 4, 10), random_targets(3, 4, 10, seed=55))),
        Case("confident and right: near 0", (torch.eye(6).mul(30).unsqueeze(0), torch.arange(6).unsqueeze(0))),
    ]
    diagnose("language_model_loss", cases[0].label, student_fn, cases[0].args, reference_language_model_loss, LOSS_MISTAKES)
    run_cases("language_model_loss", student_fn, cases, reference_language_model_loss, compare=close(1e-5, 1e-6),
              hint="flatten to logits [B*T, V] and targets [B*T], then F.cross_entropy (the mean of -log softmax "
                   "at the target token)")


@checker
def train_step(student_fn: Callable) -> None:
    def setup(seed: int, optimizer: str, lr: float, grad_clip: float):
        model, opt = tiny_model_and_optimizer(seed, optimizer, lr)
        return model, opt, random_targets(2, 8, 40, seed=seed + 100), random_targets(2, 8, 40, seed=seed + 200), grad_clip

    hint = ("loss = loss of model(x) against y; optimizer.zero_grad(); loss.backward(); "
            "torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip); optimizer.step(); return loss.item()")
    cases = [Case("AdamW, one step", setup(0, "adamw", 1e-2, 1.0)),
             Case("SGD, no clipping needed", setup(1, "sgd", 0.5, 100.0))]
    run_cases("train_step", step_outcome(student_fn), cases, step_outcome(reference_train_step),
              compare=close(1e-4, 1e-6), hint=hint)
    run_cases("train_step clips", step_outcome(student_fn), [Case("SGD, gradient norm clipped to 0.05",
                                                                  setup(2, "sgd", 0.5, 0.05))],
              step_outcome(reference_train_step), compare=close(1e-4, 1e-6),
              hint="clip after backward() and before optimizer.step(): "
                   "torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip) rescales the gradients in place")
    run_cases("train_step twice", step_outcome(student_fn, times=2), [Case("two SGD steps in a row",
                                                                           setup(3, "sgd", 0.5, 100.0))],
              step_outcome(reference_train_step, times=2), compare=close(1e-4, 1e-6),
              hint="clear the gradients (optimizer.zero_grad()) before backward(): otherwise the second step "
                   "adds the first one's gradients to its own")


@checker
def same_bits_per_byte(yours: float, reference: float, rtol: float = 1e-5) -> None:
    """Your GPT, loaded with the shipped weights, must score the test stories as course_lib's GPT does."""
    problem = close(rtol, 0.0)(yours, reference)
    if problem:
        fail("your GPT", "the shipped weights in your GPT, bits per byte on the test stories", reference, yours,
             detail=problem, hint="the same weights give the same function only if every piece matches: run the "
                                  "checks of causal_attention, split_and_merge_heads and block_forward again; a "
                                  "small difference often means a missing 1/sqrt(D) or a transpose in the wrong place")
    report("your GPT reproduces the shipped model's bits per byte", 1)
