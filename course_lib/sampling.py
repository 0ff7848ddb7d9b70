"""Sampling text from a language model: temperature, top-k, top-p (nucleus), a seed, batched.

Generation is autoregressive: feed the tokens so far, turn the last position's logits into a
distribution, draw one token, append it, repeat, until the end-of-text token or a length limit.

    temperature  divide the logits by T: T < 1 sharpens the distribution, T > 1 flattens it, T = 0 is
                 greedy (always the most likely token)
    top_k        keep only the k most likely tokens
    top_p        keep the smallest set of most likely tokens whose probabilities add up to at least p

The random draws come from a private `torch.Generator` seeded with `seed`, so the same seed gives the
same samples and sampling never disturbs the global random state (set by `utils.seed_everything`).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator, Sequence

import torch

from course_lib.model import GPT


def next_token_distribution(
    logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None
) -> torch.Tensor:
    """Logits [B, V] -> the probabilities [B, V] to draw the next token from.

    Temperature is applied first, then top-k, then top-p (on the renormalised top-k distribution).
    Ties at the top-k cut-off keep the tokens `torch.topk` returns.
    """
    if temperature < 0:
        raise ValueError(f"temperature must be >= 0, got {temperature}")
    if top_k is not None and top_k < 1:
        raise ValueError(f"top_k must be a positive integer or None, got {top_k}")
    if top_p is not None and not 0.0 < top_p <= 1.0:
        raise ValueError(f"top_p must lie in (0, 1], got {top_p}")
    logits = logits.float()
    if temperature == 0:  # greedy: all the probability on the most likely token
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
    model: GPT,
    prompt: Sequence[int] | torch.Tensor,
    max_new_tokens: int,
    num_samples: int = 1,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    stop_id: int | None = None,
    n_allowed: int | None = None,
) -> list[list[int]]:
    """Continue a prompt; return the new tokens of each sample (the stop token, if drawn, included).

    prompt: a list of token ids (continued `num_samples` times) or a LongTensor [B, T] of equal-length
    prompts. Generation stops when every sample has drawn `stop_id` or after `max_new_tokens`; a sample
    that is done is not extended. Uses the model's KV cache; past the context (block_size) it continues
    on the last block_size tokens. n_allowed: draw only ids below it (a tokenizer may use fewer ids than
    the model has rows: the story tokenizer has 959 of the model's 1024).
    """
    device = next(model.parameters()).device
    idx = torch.as_tensor(prompt, dtype=torch.long, device=device)
    if idx.dim() == 1:
        idx = idx.unsqueeze(0).repeat(num_samples, 1)
    if idx.dim() != 2 or idx.size(1) == 0:
        raise ValueError(f"prompt must be a non-empty list of token ids or a [B, T] tensor, got shape {tuple(idx.shape)}")
    generator = torch.Generator(device=device).manual_seed(seed)
    was_training = model.training
    model.eval()
    with one_thread_on_cpu(device):
        new_tokens = _sample_loop(model, idx, max_new_tokens, temperature, top_k, top_p, generator, stop_id, n_allowed)
    model.train(was_training)
    return [trim_after_stop(row, stop_id) for row in new_tokens.tolist()]


def _sample_loop(model: GPT, idx: torch.Tensor, max_new_tokens: int, temperature: float, top_k: int | None,
                 top_p: float | None, generator: torch.Generator, stop_id: int | None, n_allowed: int | None) -> torch.Tensor:
    """The autoregressive loop of `generate`: returns the new tokens [B, <= max_new_tokens]."""
    device = idx.device
    block_size = model.config.block_size
    new_tokens = torch.empty(idx.size(0), 0, dtype=torch.long, device=device)
    done = torch.zeros(idx.size(0), dtype=torch.bool, device=device)
    cache = model.new_cache()
    logits = model(idx[:, -block_size:], cache)[:, -1]
    for step in range(max_new_tokens):
        if n_allowed is not None:
            logits[:, n_allowed:] = float("-inf")
        probs = next_token_distribution(logits, temperature, top_k, top_p)
        token = torch.multinomial(probs, 1, generator=generator)  # [B, 1]
        new_tokens = torch.cat([new_tokens, token], dim=1)
        if stop_id is not None:
            done |= token.squeeze(1) == stop_id
            if done.all():
                break
        if step == max_new_tokens - 1:
            break
        if cache.length < block_size:
            logits = model(token, cache)[:, -1]
        else:  # the context is full: slide the window and recompute (absolute positions shift)
            context = torch.cat([idx, new_tokens], dim=1)[:, -block_size:]
            logits = model(context)[:, -1]
    return new_tokens


def trim_after_stop(tokens: list[int], stop_id: int | None) -> list[int]:
    """Cut a sample just after its first stop token (samples in a batch finish at different times)."""
    if stop_id is not None and stop_id in tokens:
        return tokens[: tokens.index(stop_id) + 1]
    return tokens


def sample_stories(
    model: GPT,
    tokenizer,
    num_samples: int,
    max_new_tokens: int | None = None,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int = 0,
    end_token: str = "<|endoftext|>",
) -> list[str]:
    """Sample whole stories: start from the end-of-text token, stop at the next one, decode.

    The end-of-text token is left out of the returned text; a story cut off by `max_new_tokens`
    (default: the model's context) comes back unfinished.
    """
    end_id = tokenizer.encode(end_token)
    if len(end_id) != 1:
        raise ValueError(f"{end_token!r} is not a single token of this tokenizer (got ids {end_id})")
    end_id = end_id[0]
    max_new_tokens = max_new_tokens or model.config.block_size
    n_allowed = len(tokenizer) if hasattr(tokenizer, "__len__") else None
    samples = generate(model, [end_id], max_new_tokens, num_samples, temperature, top_k, top_p, seed, end_id, n_allowed)
    return [tokenizer.decode([t for t in sample if t != end_id]) for sample in samples]
