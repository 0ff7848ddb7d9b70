"""Count-based language models: the bigram table, and n-gram models with add-k smoothing.

An n-gram model predicts the next token from the n - 1 tokens before it, with probabilities read off
counts in the training data:

    P(next = w | context = c) = (count(c, w) + k) / (count(c) + k V)        (add-k smoothing)

k > 0 gives every token a little probability, so a sequence never seen in training does not get
probability 0 (and an infinite loss). A context never seen at all gets the uniform distribution.

`NGramModel` answers like every model in the course, `model(idx) -> logits [B, T, V]`, so chapter 3's
evaluation scores it exactly as it scores the GPT. Positions before the start of idx count as the
end-of-text token (`boundary_id`): a story starts after an end of text.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
import torch.nn as nn


def bigram_counts(token_ids: Sequence[int] | torch.Tensor, vocab_size: int) -> torch.Tensor:
    """counts[a, b] = how often token b directly follows token a in `token_ids`. Shape [V, V], int64."""
    ids = torch.as_tensor(token_ids, dtype=torch.long)
    if ids.dim() != 1:
        raise ValueError(f"bigram_counts expects a flat sequence of token ids, got shape {tuple(ids.shape)}")
    if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"token ids must lie in [0, {vocab_size}), got values in [{ids.min()}, {ids.max()}]")
    counts = torch.zeros(vocab_size * vocab_size, dtype=torch.long)
    pairs = ids[:-1] * vocab_size + ids[1:]  # one number per (previous, next) pair
    counts.index_add_(0, pairs, torch.ones_like(pairs))
    return counts.view(vocab_size, vocab_size)


def add_k_log_probs(counts: torch.Tensor, k: float = 1.0) -> torch.Tensor:
    """Row-wise log P(next | context) from counts [..., V] with add-k smoothing. Same shape, float32."""
    if k < 0:
        raise ValueError(f"add-k smoothing needs k >= 0, got k={k}")
    counts = counts.double() + k
    totals = counts.sum(dim=-1, keepdim=True)
    return (counts.log() - totals.log()).float()  # log 0 = -inf where k = 0 and nothing was counted


class NGramModel(nn.Module):
    """An n-gram language model (n = 1 unigram, 2 bigram, 3 trigram, ...) with add-k smoothing.

    The counts are stored sparsely (only the (context, next) pairs that occurred), so a trigram model of
    a 1024-token vocabulary does not need a 1024^3 table.
    """

    def __init__(self, n: int, vocab_size: int, k: float = 1.0, boundary_id: int | None = None):
        super().__init__()
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"NGramModel needs n >= 1 (1 = unigram, 2 = bigram...), got n={n!r}")
        if k <= 0:
            raise ValueError(f"NGramModel needs k > 0 so that every token keeps some probability, got k={k}")
        if vocab_size ** n >= 2**62:
            raise ValueError(f"vocab_size={vocab_size} and n={n} overflow the int64 keys of the count table")
        self.n, self.vocab_size, self.k = n, vocab_size, float(k)
        self.boundary_id = vocab_size - 1 if boundary_id is None else boundary_id
        # keys[i] = context_id * V + next_token, sorted; counts[i] its count
        self.register_buffer("keys", torch.zeros(0, dtype=torch.long))
        self.register_buffer("counts", torch.zeros(0, dtype=torch.long))

    def context_ids(self, idx: torch.Tensor) -> torch.Tensor:
        """idx [B, T] -> one number per position encoding the n - 1 tokens that end there: [B, T]."""
        B, T = idx.shape
        padded = torch.cat([torch.full((B, self.n - 1), self.boundary_id, dtype=torch.long, device=idx.device), idx.long()], dim=1)
        context = torch.zeros(B, T, dtype=torch.long, device=idx.device)
        for j in range(self.n - 1):  # base-V number whose digits are the context tokens, oldest first
            context = context * self.vocab_size + padded[:, j + 1 : j + 1 + T]
        return context

    def fit(self, documents: Iterable[Sequence[int]]) -> NGramModel:
        """Count every (context, next) pair in `documents` (lists of token ids, each ending with its
        end-of-text token); each document starts after n - 1 boundary tokens. Returns self."""
        keys = [self.keys]
        for doc in documents:
            ids = torch.as_tensor(list(doc), dtype=torch.long).view(1, -1)
            if ids.numel() < 1:
                continue
            self._check_ids(ids)
            # the context of token t is the n - 1 tokens before it: shift right by one, boundary first
            inputs = torch.cat([torch.tensor([[self.boundary_id]]), ids[:, :-1]], dim=1)
            keys.append((self.context_ids(inputs) * self.vocab_size + ids).view(-1))
        all_keys = torch.cat(keys)
        old_counts = torch.cat([self.counts, torch.ones(all_keys.numel() - self.keys.numel(), dtype=torch.long)])
        unique, inverse = torch.unique(all_keys, sorted=True, return_inverse=True)
        counts = torch.zeros_like(unique).index_add_(0, inverse, old_counts)
        self.keys, self.counts = unique, counts
        return self

    def _check_ids(self, idx: torch.Tensor) -> None:
        if idx.numel() and (idx.min() < 0 or idx.max() >= self.vocab_size):
            raise ValueError(f"token ids must lie in [0, {self.vocab_size}), got values in [{int(idx.min())}, {int(idx.max())}]")

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx: LongTensor [B, T] -> logits [B, T, V] = log P(next token | the n - 1 tokens ending at t)."""
        if idx.dim() != 2:
            raise ValueError(f"NGramModel expects token ids of shape [B, T], got shape {tuple(idx.shape)}")
        self._check_ids(idx)
        V = self.vocab_size
        contexts, where = torch.unique(self.context_ids(idx), return_inverse=True)  # only the contexts asked for
        table = torch.zeros(contexts.numel(), V, dtype=torch.long, device=idx.device)
        stored_context = self.keys // V
        row = torch.searchsorted(contexts, stored_context).clamp(max=contexts.numel() - 1)
        hit = contexts[row] == stored_context
        table.index_put_((row[hit], self.keys[hit] % V), self.counts[hit], accumulate=True)
        return add_k_log_probs(table, self.k)[where]  # [B, T, V]

    def num_contexts(self) -> int:
        """How many distinct contexts were seen in training."""
        return int(torch.unique(self.keys // self.vocab_size).numel())
