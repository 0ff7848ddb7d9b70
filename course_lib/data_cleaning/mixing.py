"""After cleaning, domain mixing: decide how much of each domain the model sees.

Pretraining mixes are set by weight, not by what happened to survive the filters: a target share per
domain (web, books, code...). A domain with little data but a high weight is repeated (upsampled) for
several epochs; a big domain with a low weight is subsampled. `mix_domains` turns the weights into how
many times each kept document is used.
"""

from __future__ import annotations

import numpy as np


def mix_domains(domains: list[str], sizes: list[int], weights: dict[str, float], total: int | None = None,
                seed: int = 0) -> np.ndarray:
    """How many times to use each document so domain d gets about weights[d] of `total` bytes.

    domains, sizes: one entry per document. total defaults to the bytes available. Each domain is used
    for whole epochs (every document the same number of times), then a seeded random subset of its
    documents once more for the fraction left. Returns int64 repeats of shape (n_docs,).
    """
    if len(domains) != len(sizes):
        raise ValueError(f"{len(domains)} domains but {len(sizes)} sizes")
    if any(w < 0 for w in weights.values()) or sum(weights.values()) <= 0:
        raise ValueError(f"weights must be >= 0 and not all 0, got {weights}")
    sizes_arr, domains_arr = np.asarray(sizes, dtype=np.int64), np.asarray(domains)
    total = int(sizes_arr.sum()) if total is None else total
    norm = sum(weights.values())
    repeats = np.zeros(len(sizes), dtype=np.int64)
    rng = np.random.default_rng(seed)
    for domain, weight in sorted(weights.items()):
        members = np.flatnonzero(domains_arr == domain)
        have = int(sizes_arr[members].sum())
        if have == 0 or weight == 0:
            continue
        target = total * weight / norm
        epochs = int(target // have)
        repeats[members] = epochs
        left = target - epochs * have
        order = rng.permutation(members)
        extra = order[np.cumsum(sizes_arr[order]) <= left]  # add documents while they fit
        repeats[extra] += 1
    return repeats
