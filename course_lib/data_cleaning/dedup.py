"""Stages 8 and 9, deduplication: drop pages whose text we have already kept.

    exact    hash the text lowercased with whitespace collapsed (`dedup_key`); the first page with each
             hash stays
    near     MinHash + LSH candidates (`course_lib.data_cleaning.minhash`), verified by their true Jaccard
             similarity >= threshold, then clustered transitively with union-find: if B is a near copy
             of A and C of B, all three are one cluster, and only its first member stays

Duplicates matter more than their share of the data suggests: a model trained on many copies of a page
memorizes it, and duplicates between training and test data inflate evaluation scores.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from course_lib.data_cleaning.minhash import (
    BANDS,
    NUM_PERM,
    ROWS,
    SHINGLE,
    dedup_words,
    lsh_candidates,
    minhash_params,
    minhash_signatures,
    shingle_sets,
)

# ----------------------------------------------------------------------------------------------------
# Exact deduplication: hash the normalized text, keep the first page with each hash.

def dedup_key(text: str) -> str:
    """SHA-1 of the text lowercased with whitespace collapsed (so trivial reformatting still matches)."""
    return hashlib.sha1(" ".join(text.lower().split()).encode("utf-8")).hexdigest()


def exact_duplicate_of(texts: list[str]) -> list[int | None]:
    """For each text, the index of the first earlier text with the same key, or None."""
    first: dict[str, int] = {}
    duplicate_of = []
    for i, text in enumerate(texts):
        key = dedup_key(text)
        duplicate_of.append(first.get(key))
        first.setdefault(key, i)
    return duplicate_of


# ----------------------------------------------------------------------------------------------------
# Near deduplication: verify the LSH candidates, then cluster them.

def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """|A & B| / |A | B| for two sorted arrays of unique shingle hashes (0.0 if both are empty)."""
    union = len(a) + len(b)
    if union == 0:
        return 0.0
    inter = len(np.intersect1d(a, b, assume_unique=True))
    return inter / (union - inter)


class UnionFind:
    """Disjoint sets over 0..n-1 with path halving; `find` returns a set's smallest member as its root."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, x: int, y: int) -> None:
        rx, ry = self.find(x), self.find(y)
        if rx != ry:
            self.parent[max(rx, ry)] = min(rx, ry)  # the smaller index stays the root: "keep the first"


def clusters_from_pairs(n: int, pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Connected components with at least two members, each sorted, ordered by first member."""
    sets = UnionFind(n)
    for i, j in pairs:
        sets.union(int(i), int(j))
    groups: dict[int, list[int]] = {}
    for x in range(n):
        groups.setdefault(sets.find(x), []).append(x)
    return [g for _, g in sorted(groups.items()) if len(g) > 1]


@dataclass
class NearDuplicates:
    """What near-deduplication found: candidate pairs, those verified, and the clusters they form."""

    candidates: np.ndarray  # (n_candidates, 2)
    verified: list[tuple[int, int, float]]  # (i, j, Jaccard) for candidates at or above the threshold
    clusters: list[list[int]]
    duplicate_of: list[int | None]  # for each document: its cluster's first member, or None if it is kept


def near_duplicates(texts: list[str], threshold: float = 0.7, num_perm: int = NUM_PERM, bands: int = BANDS,
                    rows: int = ROWS, n: int = SHINGLE, seed: int = 1) -> NearDuplicates:
    """Stage 9: MinHash + LSH candidates, verified by true Jaccard >= threshold, clustered transitively."""
    sets = shingle_sets([dedup_words(t) for t in texts], n)
    a, b = minhash_params(num_perm, seed)
    candidates = lsh_candidates(minhash_signatures(sets, a, b), bands, rows)
    verified = []
    for i, j in candidates.tolist():
        s = jaccard(sets[i], sets[j])
        if s >= threshold:
            verified.append((i, j, s))
    clusters = clusters_from_pairs(len(texts), [(i, j) for i, j, _ in verified])
    duplicate_of: list[int | None] = [None] * len(texts)
    for cluster in clusters:
        for member in cluster[1:]:
            duplicate_of[member] = cluster[0]
    return NearDuplicates(candidates, verified, clusters, duplicate_of)
