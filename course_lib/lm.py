"""The language-model core every chapter shares: one end-of-text token, one contract, one scorer, one sampler.

Every model of the course answers the same question the same way, and every chapter talks to it only
through these two contracts:

    LanguageModel   model(idx: LongTensor [B, T]) -> logits [B, T, V]
                    logits[b, t] scores the token after idx[b, :t + 1]; a model never looks ahead
                    (the GPT of `course_lib.model`, the n-gram models of `course_lib.ngram`, ...)
    Tokenizer       encode(text) -> list[int], decode(ids) -> text, len(tokenizer) = the number of ids,
                    with <|endoftext|> as one special token (the BPE of `course_lib.tokenizer`)

A document is read the way the models were trained on the story stream: after <|endoftext|>, and the
model must also predict the <|endoftext|> after it, so knowing where a story ends is paid for (as in the
corpus floor, `stories.entropy_floor`).

    scoring    document_log_likelihoods: per-token log-likelihoods of whole documents; a document
               longer than the model's context goes through windows that slide by `stride` tokens
    sampling   next_token_distribution (temperature, top-k, top-p), generate (with the GPT's KV cache
               when the model has one), sample_texts (whole texts, from one end-of-text to the next)

Chapter 2 trains against these, chapter 3 builds its metrics on them, later chapters fine-tune and
judge with them. No chapter keeps its own copy.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Protocol, runtime_checkable

import torch

END_OF_TEXT = "<|endoftext|>"


# ----------------------------------------------------------------------------------------------------
# The contracts


@runtime_checkable
class LanguageModel(Protocol):
    """Anything that maps token ids [B, T] to next-token logits [B, T, V] (an nn.Module in practice)."""

    def __call__(self, idx: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Tokenizer(Protocol):
    """Text <-> token ids; `len(tokenizer)` is the number of ids it can produce."""

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: Sequence[int]) -> str: ...

    def __len__(self) -> int: ...


def end_of_text_id(tokenizer: Tokenizer) -> int:
    """The id of <|endoftext|>, with a clear error for a tokenizer that splits it into pieces."""
    ids = tokenizer.encode(END_OF_TEXT)
    if len(ids) != 1:
        raise ValueError(f"the tokenizer must encode {END_OF_TEXT!r} as one special token, got ids {ids}; "
                         f"build it with special_tokens=[{END_OF_TEXT!r}]")
    return ids[0]


def model_device(model: torch.nn.Module) -> torch.device:
    """Where the model's weights live (n-gram models have only buffers; a model with neither: the CPU)."""
    tensor = next(iter(model.parameters()), None)
    tensor = tensor if tensor is not None else next(iter(model.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def model_context_size(model: torch.nn.Module) -> int | None:
    """How many tokens the model can read at once: a GPT's block_size, or None (no limit, e.g. n-grams)."""
    return getattr(getattr(model, "config", None), "block_size", None)


def model_vocab_size(model: torch.nn.Module) -> int:
    """How many tokens the model predicts: the size V of its logits [B, T, V]."""
    for owner in (getattr(model, "config", None), model):
        size = getattr(owner, "vocab_size", None)
        if isinstance(size, int):
            return size
    with torch.no_grad():  # any other model: ask it
        return model(torch.zeros(1, 1, dtype=torch.long, device=model_device(model))).size(-1)


def tokenizer_size(tokenizer: Tokenizer) -> int:
    """How many ids the tokenizer can produce (`vocab_size`, else `len`)."""
    size = getattr(tokenizer, "vocab_size", None)
    if isinstance(size, int):
        return size
    if hasattr(tokenizer, "__len__"):
        return len(tokenizer)
    raise TypeError(f"cannot tell the vocabulary size of {type(tokenizer).__name__}: give it `vocab_size` or `__len__`")


def check_model_and_tokenizer(model: torch.nn.Module, tokenizer: Tokenizer) -> int:
    """Raise a clear error if `tokenizer` cannot be the one `model` was trained with; return its end-of-text id.

    The model must have an output for every token id (V >= the tokenizer's size). Vocabularies are often
    padded to a round number (nanoGPT pads GPT-2's 50257 to 50304; the story GPT has 1024 rows for 959
    tokens), so a model may be a little larger, but not twice as large: a byte-level tokenizer (257 ids)
    with a BPE model (1024) would run, read the wrong tokens, and report meaningless numbers.
    """
    n_ids, V = tokenizer_size(tokenizer), model_vocab_size(model)
    if n_ids > V:
        raise ValueError(f"the tokenizer has {n_ids} token ids but the model predicts only {V} tokens: ids {V}..{n_ids - 1} "
                         "have no output. Evaluate the model with the tokenizer it was trained with.")
    if V >= 2 * n_ids:
        raise ValueError(f"the model predicts {V} tokens but the tokenizer has only {n_ids}: this model was trained with "
                         "another (larger) tokenizer. Evaluate it with the tokenizer it was trained with.")
    return end_of_text_id(tokenizer)


# ----------------------------------------------------------------------------------------------------
# Scoring documents


def token_log_likelihoods(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """log p(target | everything before it), from logits [B, T, V] and targets [B, T] -> [B, T], in nats.

    log_softmax subtracts logsumexp, which stays finite for any logits (a softmax then log would
    overflow to inf/inf = nan for logits around 100 in float32).
    """
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    return log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def window_spans(n_targets: int, context_size: int | None, stride: int | None = None) -> list[tuple[int, int, int]]:
    """How to score `n_targets` next-token predictions with windows of at most `context_size` positions.

    Returns (start, end, first_new) triples: feed inputs[start:end] to the model and keep the predictions
    of targets[first_new:end]. Every target is kept exactly once. Windows move by `stride` tokens:
      stride = context_size   chunked: windows do not overlap, each starts from nothing, so the first
                              tokens of every chunk are predicted with little context and cost more;
      stride < context_size   sliding window: each kept prediction sees at least context_size - stride
                              earlier tokens; smaller strides cost more model calls.
    A text that fits the context (or a model without a limit, context_size None) gets one window.
    Default stride: half the context (every token then sees at least half a context).
    """
    if n_targets < 1:
        raise ValueError(f"nothing to score: n_targets = {n_targets}")
    if context_size is None:
        return [(0, n_targets, 0)]
    stride = max(1, context_size // 2) if stride is None else stride
    if not 1 <= stride <= context_size:
        raise ValueError(f"stride must lie in [1, context_size = {context_size}], got {stride}")
    end = min(n_targets, context_size)
    spans = [(0, end, 0)]
    while end < n_targets:
        new_end = min(n_targets, end + stride)
        spans.append((new_end - context_size, new_end, end))  # new_end >= context_size here
        end = new_end
    return spans


@torch.no_grad()
def score_rows(model: torch.nn.Module, rows: list[tuple[list[int], list[int], int]], pad_id: int,
               batch_size: int = 16) -> list[torch.Tensor]:
    """For each row (inputs, targets, first_kept): log p(targets[t] | inputs[:t + 1]) for t >= first_kept.

    Rows of any length are batched together (sorted by length, padded on the right: the models are
    causal, so padding after a position cannot change its prediction). Returns float64 tensors, in
    the order of `rows`.
    """
    device = model_device(model)
    was_training = model.training
    model.eval()
    order = sorted(range(len(rows)), key=lambda r: len(rows[r][0]))  # similar lengths together: less padding
    out: list[torch.Tensor | None] = [None] * len(rows)
    for b in range(0, len(order), batch_size):
        chunk = order[b: b + batch_size]
        width = max(len(rows[r][0]) for r in chunk)
        x = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        y = torch.full((len(chunk), width), pad_id, dtype=torch.long)
        for i, r in enumerate(chunk):
            inputs, targets, _ = rows[r]
            x[i, : len(inputs)] = torch.tensor(inputs)
            y[i, : len(targets)] = torch.tensor(targets)
        logliks = token_log_likelihoods(model(x.to(device)), y.to(device)).double().cpu()
        for i, r in enumerate(chunk):
            inputs, _, first_kept = rows[r]
            out[r] = logliks[i, first_kept: len(inputs)]
    model.train(was_training)
    return out


def document_log_likelihoods(model: torch.nn.Module, token_lists: Sequence[Sequence[int]], end_id: int,
                             context_size: int | None = None, stride: int | None = None,
                             batch_size: int = 16) -> list[torch.Tensor]:
    """Per-token log-likelihoods (nats) of each document, scored from its start, its end token included.

    Document i of n token ids gives a float64 tensor [n + 1]: the model reads <|endoftext|> t_1 ... t_n
    and predicts t_1 ... t_n <|endoftext|>. A document longer than `context_size` (default: the model's
    own, `model_context_size`) goes through `window_spans` with `stride` (default: half the context).
    """
    if context_size is None:
        context_size = model_context_size(model)
    rows, owners = [], []
    for i, ids in enumerate(token_lists):
        inputs, targets = [end_id, *ids], [*ids, end_id]
        for start, end, first_new in window_spans(len(targets), context_size, stride):
            rows.append((inputs[start:end], targets[start:end], first_new - start))
            owners.append(i)
    pieces: list[list[torch.Tensor]] = [[] for _ in token_lists]
    for i, kept in zip(owners, score_rows(model, rows, end_id, batch_size)):
        pieces[i].append(kept)  # the windows of a document come back in order
    return [torch.cat(p) for p in pieces]


def model_bits_per_byte(model: torch.nn.Module, tokenizer: Tokenizer, texts: Sequence[str], batch_size: int = 16) -> float:
    """-Σ log-likelihood / Σ UTF-8 bytes / ln 2 of `model` on whole texts (end token included), pooled.

    The number every chapter reports a model by; compare it with `stories.entropy_floor` of the same
    texts. Chapter 3 builds the metrics behind it step by step (`evaluation.bits_per_byte`).
    """
    end_id = check_model_and_tokenizer(model, tokenizer)
    logliks = document_log_likelihoods(model, [tokenizer.encode(t) for t in texts], end_id, batch_size=batch_size)
    total_bytes = sum(len(t.encode("utf-8")) for t in texts)
    if total_bytes == 0:
        raise ValueError("the texts have no bytes: there is nothing to divide by")
    return -sum(ll.sum().item() for ll in logliks) / total_bytes / math.log(2)


# ----------------------------------------------------------------------------------------------------
# Sampling


def next_token_distribution(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Logits [B, V] -> the probabilities [B, V] to draw the next token from.

    temperature  divide the logits by T: T < 1 sharpens the distribution, T > 1 flattens it, T = 0 is
                 greedy (all the probability on the most likely token)
    top_k        keep only the k most likely tokens (ties at the cut-off: the ones `torch.topk` returns)
    top_p        keep the smallest set of most likely tokens whose probabilities add up to at least p
    Temperature is applied first, then top-k, then top-p (on the renormalised top-k distribution).
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be a positive integer or None, got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must lie in (0, 1], got {top_p}")
    logits = logits.float()
    if temperature == 0:
        return torch.nn.functional.one_hot(logits.argmax(dim=-1), logits.size(-1)).float()
    logits = logits / temperature
    if top_k is not None and top_k < logits.size(-1):
        kth_best = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth_best, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    if top_p is not None and top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        mass_before = sorted_probs.cumsum(dim=-1) - sorted_probs  # probability of the better tokens
        drop_sorted = mass_before >= top_p  # already p without this token: drop it (the best always stays)
        drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
        probs = probs.masked_fill(drop, 0.0)
        probs = probs / probs.sum(dim=-1, keepdim=True)
    return probs


@contextmanager
def one_thread_on_cpu(device: torch.device) -> Iterator[None]:
    """Run the block with one CPU thread. Decoding multiplies tiny matrices one token at a time, where
    extra threads only add synchronisation; on a busy machine they even wait for each other (we measured
    sampling 100x slower with 2 threads than with 1 on a shared 2-core machine)."""
    threads = torch.get_num_threads()
    if device.type == "cpu":
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


@torch.no_grad()
def generate(
    model: torch.nn.Module,
    prompt: Sequence[int] | torch.Tensor,
    max_new_tokens: int,
    num_samples: int = 1,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    stop_id: int | None = None,
    n_allowed: int | None = None,
    distribution: Callable[..., torch.Tensor] | None = None,
) -> list[list[int]]:
    """Continue a prompt; return the new tokens of each sample (the stop token, if drawn, included).

    prompt: a list of token ids (continued `num_samples` times) or a LongTensor [B, T] of equal-length
    prompts. Generation stops when every sample has drawn `stop_id` or after `max_new_tokens`; a sample
    that is done is not extended. A model with a KV cache (`model.new_cache()`, the GPT) computes one
    position per token; past its context it continues on the last block_size tokens. n_allowed: draw
    only ids below it (a tokenizer may use fewer ids than the model has rows: the story tokenizer has 959
    of the model's 1024). The draws come from a private generator seeded with `seed`, so the same seed
    gives the same samples and sampling never disturbs the global random state. distribution: what turns
    logits [B, V] into probabilities (logits, temperature, top_k, top_p); default `next_token_distribution`
    (chapter 2 passes the student's).
    """
    device = model_device(model)
    idx = torch.as_tensor(prompt, dtype=torch.long, device=device)
    if idx.dim() == 1:
        idx = idx.unsqueeze(0).repeat(num_samples, 1)
    if idx.dim() != 2 or idx.size(1) == 0:
        raise ValueError(f"prompt must be a non-empty list of token ids or a [B, T] tensor, got shape {tuple(idx.shape)}")
    generator = torch.Generator(device=device).manual_seed(seed)
    next_logits = _cached_next_logits(model, idx) if hasattr(model, "new_cache") else _plain_next_logits(model, idx)
    was_training = model.training
    model.eval()
    with one_thread_on_cpu(device):
        new_tokens = _sample_loop(next_logits, idx, max_new_tokens, temperature, top_k, top_p, generator, stop_id, n_allowed,
                                  distribution or next_token_distribution)
    model.train(was_training)
    return [trim_after_stop(row, stop_id) for row in new_tokens.tolist()]


def _cached_next_logits(model: torch.nn.Module, idx: torch.Tensor):
    """Next-token logits [B, V] for a GPT, one new position per call thanks to its KV cache."""
    block_size = model.config.block_size
    cache = model.new_cache()

    def next_logits(new_tokens: torch.Tensor) -> torch.Tensor:
        if new_tokens.size(1) == 0:  # the prompt
            return model(idx[:, -block_size:], cache)[:, -1]
        if cache.length < block_size:
            return model(new_tokens[:, -1:], cache)[:, -1]
        # the context is full: slide the window and recompute (absolute positions shift)
        return model(torch.cat([idx, new_tokens], dim=1)[:, -block_size:])[:, -1]

    return next_logits


def _plain_next_logits(model: torch.nn.Module, idx: torch.Tensor):
    """Next-token logits [B, V] for any other model, fed the tokens it reads (an n-gram: its last n - 1)."""
    n = getattr(model, "n", None)
    context = model_context_size(model) or (max(1, n - 1) if isinstance(n, int) else None)

    def next_logits(new_tokens: torch.Tensor) -> torch.Tensor:
        tokens = torch.cat([idx, new_tokens], dim=1)
        return model(tokens if context is None else tokens[:, -context:])[:, -1]

    return next_logits


def _sample_loop(next_logits, idx: torch.Tensor, max_new_tokens: int, temperature: float, top_k: int | None,
                 top_p: float | None, generator: torch.Generator, stop_id: int | None, n_allowed: int | None,
                 distribution: Callable[..., torch.Tensor]) -> torch.Tensor:
    """The autoregressive loop of `generate`: returns the new tokens [B, <= max_new_tokens]."""
    new_tokens = torch.empty(idx.size(0), 0, dtype=torch.long, device=idx.device)
    done = torch.zeros(idx.size(0), dtype=torch.bool, device=idx.device)
    for _ in range(max_new_tokens):
        logits = next_logits(new_tokens).float()
        if n_allowed is not None:
            logits[:, n_allowed:] = float("-inf")
        probs = distribution(logits, temperature, top_k, top_p)
        token = torch.multinomial(probs, 1, generator=generator)  # [B, 1]
        new_tokens = torch.cat([new_tokens, token], dim=1)
        if stop_id is not None:
            done |= token.squeeze(1) == stop_id
            if done.all():
                break
    return new_tokens


def trim_after_stop(tokens: list[int], stop_id: int | None) -> list[int]:
    """Cut a sample just after its first stop token (samples in a batch finish at different times)."""
    if stop_id is not None and stop_id in tokens:
        return tokens[: tokens.index(stop_id) + 1]
    return tokens


def sample_texts(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    num_samples: int,
    max_new_tokens: int | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    distribution: Callable[..., torch.Tensor] | None = None,
) -> list[str]:
    """Whole texts: start from <|endoftext|>, stop at the next one, decode (the end token left out).

    max_new_tokens: default the model's context (past it a GPT recomputes its whole window at every
    token), or 400 tokens for a model without a limit. A text cut off there comes back unfinished.
    """
    end_id = end_of_text_id(tokenizer)
    max_new_tokens = max_new_tokens or model_context_size(model) or 400
    n_allowed = len(tokenizer) if hasattr(tokenizer, "__len__") else None
    samples = generate(model, [end_id], max_new_tokens, num_samples, temperature, top_k, top_p, seed, end_id, n_allowed,
                       distribution)
    return [tokenizer.decode([t for t in sample if t != end_id]) for sample in samples]
