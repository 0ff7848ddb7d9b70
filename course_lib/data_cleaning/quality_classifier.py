"""A learned quality filter, fastText-style: hashed word uni- and bigrams, logistic regression in torch.

The rule-based stages encode what someone thought bad text looks like. A classifier learns it from
labelled pages instead (GPT-3 and FineWeb-Edu filter this way, with labels from a reference corpus or an
LLM's grades). fastText's recipe (Joulin et al. 2017) is small enough to write here:

    features   the page's lowercased words and word pairs, each hashed into one of `n_buckets` slots
               (the "hashing trick": no vocabulary to build, unseen words still get a slot)
    model      one weight per slot; a page's score is the mean weight of its features plus a bias,
               squashed by a sigmoid into P(good) (fastText averages embeddings; with one dimension
               and a sigmoid, that is logistic regression on the bag of hashed n-grams)
    training   full-batch AdamW on the binary cross-entropy, a few hundred steps (a second on a CPU)

Hashing uses CRC-32 (`zlib.crc32`), not Python's `hash`, which is salted per process: the same text gets
the same features on every run and platform.
"""

from __future__ import annotations

import re
import zlib

import torch
from torch import nn

N_BUCKETS = 2**16
_WORD = re.compile(r"\w+")


def hashed_ngrams(text: str, n_buckets: int = N_BUCKETS) -> list[int]:
    """The bucket of every lowercased word and every pair of neighbouring words of `text`."""
    words = _WORD.findall(text.lower())
    grams = words + [f"{a} {b}" for a, b in zip(words, words[1:])]
    return [zlib.crc32(g.encode("utf-8")) % n_buckets for g in grams]


def bag_of_ngrams(texts: list[str], n_buckets: int = N_BUCKETS) -> tuple[torch.Tensor, torch.Tensor]:
    """All texts' buckets as one flat LongTensor and the offset where each text starts (EmbeddingBag's input).

    A text without words gets a single bucket 0, so that every bag has something to average.
    """
    ids, offsets = [], []
    for text in texts:
        offsets.append(len(ids))
        ids.extend(hashed_ngrams(text, n_buckets) or [0])
    return torch.tensor(ids, dtype=torch.long), torch.tensor(offsets, dtype=torch.long)


class QualityClassifier(nn.Module):
    """Logistic regression on a bag of hashed n-grams: logit = mean of the features' weights + bias."""

    def __init__(self, n_buckets: int = N_BUCKETS) -> None:
        super().__init__()
        self.n_buckets = n_buckets
        self.weights = nn.EmbeddingBag(n_buckets, 1, mode="mean")
        nn.init.zeros_(self.weights.weight)
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, ids: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
        """Logits of P(good), shape [n_texts]."""
        return self.weights(ids, offsets).squeeze(1) + self.bias

    @torch.no_grad()
    def predict_good(self, texts: list[str]) -> torch.Tensor:
        """P(good) of each text, shape [n_texts]."""
        return torch.sigmoid(self(*bag_of_ngrams(texts, self.n_buckets)))


def train_quality_classifier(texts: list[str], good: list[bool], n_buckets: int = N_BUCKETS, steps: int = 300,
                             lr: float = 0.5, weight_decay: float = 1e-4, seed: int = 0) -> QualityClassifier:
    """Fit a `QualityClassifier` to texts labelled good (True) or bad (False); full batch, AdamW.

    The learning rate is large because each weight only moves when its n-gram appears, averaged over a
    page's hundreds of n-grams.
    """
    if len(texts) != len(good) or not texts:
        raise ValueError(f"need as many labels as texts (and at least one): {len(texts)} texts, {len(good)} labels")
    torch.manual_seed(seed)
    model = QualityClassifier(n_buckets)
    ids, offsets = bag_of_ngrams(texts, n_buckets)
    target = torch.tensor(good, dtype=torch.float32)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    for _ in range(steps):
        loss = nn.functional.binary_cross_entropy_with_logits(model(ids, offsets), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval()
