"""Near-duplicate candidates with MinHash and LSH (Broder 1997), at FineWeb's settings: word 5-grams,
112 hashes = 14 bands x 8 rows.

Comparing every pair of documents is quadratic; a crawl has billions. Instead:

    shingles     a document is the set of hashes of its word 5-grams ("shingles"); the similarity of two
                 documents is the Jaccard index of their sets, |A & B| / |A | B|
    signatures   for a random hash h, P[min h(A) == min h(B)] = Jaccard(A, B); 112 such hashes, each
                 h(x) = (a*x + b) mod PRIME, make a document's signature
    LSH          the signature is cut into 14 bands of 8 rows; two documents become candidates if all 8
                 rows of some band agree, which happens with probability 1 - (1 - s^8)^14
                 (`candidate_probability`): 92% at s = 0.8, 56% at 0.7, 5% at 0.5

`course_lib.data_cleaning.dedup` then checks the candidates with their true Jaccard. Shingling and hashing
run over the whole corpus in a few NumPy passes (`shingle_sets`, `minhash_signatures`); the one-document
versions (`shingle_hashes`, `minhash_signature`) compute the same values more plainly.
"""

from __future__ import annotations

import itertools
import re
import zlib

import numpy as np

PRIME = (1 << 31) - 1  # h(x) = (a*x + b) mod PRIME; a < 2^31 and x < 2^32 keep a*x + b below 2^64
EMPTY_SIGNATURE = np.uint32(0xFFFFFFFF)  # the signature value of a document without shingles
NUM_PERM, BANDS, ROWS, SHINGLE = 112, 14, 8, 5  # FineWeb's: 112 hashes = 14 bands x 8 rows, word 5-grams

# ----------------------------------------------------------------------------------------------------
# Shingles: a document as the set of hashes of its word n-grams.

_WORD_RE = re.compile(r"\w+")  # words as the blocklist sees them (toxicity.py): letters, digits, underscore
_MIX = np.uint64(0x9E3779B97F4A7C15)  # 2^64 / golden ratio: an odd multiplier that spreads the bits


def dedup_words(text: str) -> list[str]:
    """Lowercase word tokens (letters, digits, underscore): punctuation and spacing do not matter."""
    return _WORD_RE.findall(text.lower())


def _combine(hashes: np.ndarray, n: int) -> np.ndarray:
    """32-bit hashes of all n-grams of a sequence of 32-bit word hashes: a polynomial, then a mix."""
    h = np.zeros(len(hashes) - n + 1, dtype=np.uint64)
    for k in range(n):
        h = h * _MIX + hashes[k:len(hashes) - n + 1 + k]
    h ^= h >> np.uint64(29)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(32)
    return (h & np.uint64(0xFFFFFFFF)).astype(np.uint32)


def word_hashes(words: list[str]) -> np.ndarray:
    """CRC-32 of every word (uint64 holding 32-bit values, shape (len(words),)); each distinct word is
    hashed once. CRC-32 depends only on the word, so equal texts give equal shingles on any machine."""
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}  # distinct words, in order of appearance
    ids = np.fromiter(map(vocab.__getitem__, words), dtype=np.int64, count=len(words))
    table = np.fromiter((zlib.crc32(w.encode("utf-8")) for w in vocab), dtype=np.uint64, count=len(vocab))
    return table[ids]


def shingle_hashes(text: str, n: int = SHINGLE) -> np.ndarray:
    """The sorted, unique 32-bit hashes of the text's word n-grams (uint32, shape (n_shingles,)).

    A text with fewer than n words (but at least one) is a single shingle; an empty text has none.
    """
    hashes = word_hashes(dedup_words(text))
    if len(hashes) == 0:
        return np.zeros(0, dtype=np.uint32)
    return np.unique(_combine(hashes, min(n, len(hashes))))


def _sorted_unique(values: np.ndarray) -> np.ndarray:
    """np.unique for a big 1-D integer array, by sorting (faster here than NumPy's hash-based unique)."""
    values = np.sort(values)
    return values[np.concatenate([[True], values[1:] != values[:-1]])] if len(values) else values


def shingle_sets(docs: list[list[str]], n: int = SHINGLE) -> list[np.ndarray]:
    """`[shingle_hashes(text, n) for text in texts]` for a whole corpus in a few NumPy passes.

    docs: each document's words, `[dedup_words(text) for text in texts]`. All words go into one array;
    the n-gram hash of every position is computed at once, positions whose n-gram would run into the
    next document are dropped, and one sort by (document, hash) makes each document's set sorted and
    unique.
    """
    if not docs:
        return []
    lengths = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))
    ends = np.cumsum(lengths)  # where each document's words end in the flat array
    hashes = word_hashes(list(itertools.chain.from_iterable(docs)))
    doc_of = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)  # document of every word
    keys = [np.zeros(0, dtype=np.uint64)]
    if len(hashes) >= n:
        grams = _combine(hashes, n)  # the n-gram starting at every position
        doc = doc_of[: len(grams)]
        inside = np.arange(len(grams)) + n <= ends[doc]  # the n-gram ends inside its document
        keys.append((doc[inside].astype(np.uint64) << np.uint64(32)) | grams[inside].astype(np.uint64))
    for d in np.flatnonzero((lengths > 0) & (lengths < n)):  # short documents: all their words, one shingle
        gram = _combine(hashes[ends[d] - lengths[d]:ends[d]], int(lengths[d]))[0]
        keys.append(np.array([(int(d) << 32) | int(gram)], dtype=np.uint64))
    keys = _sorted_unique(np.concatenate(keys))  # by document, then hash
    bounds = np.searchsorted(keys >> np.uint64(32), np.arange(1, len(docs), dtype=np.uint64))
    return np.split((keys & np.uint64(0xFFFFFFFF)).astype(np.uint32), bounds)


# ----------------------------------------------------------------------------------------------------
# MinHash signatures: for each of num_perm hash functions, the smallest hash of any shingle.

def minhash_params(num_perm: int = NUM_PERM, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """The seeded hash functions: a in [1, PRIME), b in [0, PRIME), each uint64 of shape (num_perm,)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(1, PRIME, size=num_perm, dtype=np.uint64)
    b = rng.integers(0, PRIME, size=num_perm, dtype=np.uint64)
    return a, b


def minhash_signature(shingles: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """min over shingles x of (a*x + b) mod PRIME, for every hash function: uint32 of shape (num_perm,).

    shingles: uint32 (n_shingles,); a, b: uint64 (num_perm,). No shingles -> all EMPTY_SIGNATURE.
    """
    if len(shingles) == 0:
        return np.full(len(a), EMPTY_SIGNATURE, dtype=np.uint32)
    x = shingles.astype(np.uint64)[:, None]  # (n_shingles, 1), broadcast against (num_perm,)
    return ((a * x + b) % np.uint64(PRIME)).min(axis=0).astype(np.uint32)


def _hash_rows(x: np.ndarray, a: np.ndarray, b: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> np.ndarray:
    """(a*x + b) mod PRIME for x of shape (rows, 1), into `out` (rows, num_perm), without a division.

    Since 2^31 = 1 (mod 2^31 - 1), y mod p = (y & p) + (y >> 31) up to one more fold and one subtraction.
    Working in place on a small buffer keeps the data in the CPU cache, which matters more than the
    arithmetic here.
    """
    p = np.uint64(PRIME)
    np.multiply(x, a, out=out)
    out += b
    for _ in range(2):
        np.right_shift(out, np.uint64(31), out=tmp)
        out &= p
        out += tmp
    np.subtract(out, p, out=out, where=out >= p)
    return out


def minhash_signatures(shingle_sets: list[np.ndarray], a: np.ndarray, b: np.ndarray,
                       chunk_rows: int = 2048) -> np.ndarray:
    """Signatures of many documents at once: uint32 of shape (n_docs, num_perm).

    Equal to stacking `minhash_signature` per document. The shingles of consecutive documents go through
    one (chunk_rows, num_perm) buffer and `np.minimum.reduceat` takes each document's minimum.
    """
    n_docs, num_perm = len(shingle_sets), len(a)
    signatures = np.full((n_docs, num_perm), EMPTY_SIGNATURE, dtype=np.uint32)
    sizes = np.fromiter(map(len, shingle_sets), dtype=np.int64, count=n_docs)
    if sizes.sum() == 0:
        return signatures
    x = np.concatenate(shingle_sets).astype(np.uint64)[:, None]
    starts = np.concatenate([[0], np.cumsum(sizes)])
    out = np.empty((max(chunk_rows, int(sizes.max())), num_perm), dtype=np.uint64)
    tmp = np.empty_like(out)
    first = 0
    while first < n_docs:  # documents first..last-1 fill the buffer (at least one document)
        last = max(first + 1, int(np.searchsorted(starts, starts[first] + chunk_rows, side="right")) - 1)
        rows = slice(starts[first], starts[last])
        hashed = _hash_rows(x[rows], a, b, out[: rows.stop - rows.start], tmp[: rows.stop - rows.start])
        docs = first + np.flatnonzero(sizes[first:last])  # documents with shingles (reduceat needs rows)
        if len(docs):
            signatures[docs] = np.minimum.reduceat(hashed, starts[docs] - starts[first], axis=0)
        first = last
    return signatures


# ----------------------------------------------------------------------------------------------------
# LSH: documents whose signatures agree on all rows of some band become candidate pairs.

def candidate_probability(s: float | np.ndarray, bands: int = BANDS, rows: int = ROWS) -> float | np.ndarray:
    """P(a pair with Jaccard s shares at least one band) = 1 - (1 - s^rows)^bands."""
    return 1.0 - (1.0 - np.asarray(s, dtype=float) ** rows) ** bands


def _pairs_within_groups(members: np.ndarray, group_starts: np.ndarray) -> np.ndarray:
    """All (i, j) pairs inside each group of `members` (groups are runs starting at group_starts)."""
    sizes = np.diff(np.append(group_starts, len(members)))
    pairs = [np.stack([members[group_starts[sizes == 2]], members[group_starts[sizes == 2] + 1]], axis=1)]
    for start, size in zip(group_starts[sizes > 2], sizes[sizes > 2]):  # rare: buckets of 3 or more
        i, j = np.triu_indices(size, k=1)
        pairs.append(np.stack([members[start + i], members[start + j]], axis=1))
    return np.concatenate(pairs)


def lsh_candidates(signatures: np.ndarray, bands: int = BANDS, rows: int = ROWS) -> np.ndarray:
    """All pairs (i, j), i < j, whose signatures agree on every row of at least one band.

    signatures: (n_docs, bands*rows). Returns int64 (n_pairs, 2), sorted, without repeats. Documents
    without shingles (EMPTY_SIGNATURE) are never candidates.
    """
    n_docs, num_perm = signatures.shape
    if bands * rows != num_perm:
        raise ValueError(f"bands x rows = {bands} x {rows} = {bands * rows}, but signatures have {num_perm} values")
    live = np.flatnonzero(signatures[:, 0] != EMPTY_SIGNATURE)
    pairs = [np.zeros((0, 2), dtype=np.int64)]
    for band in range(bands):
        block = np.ascontiguousarray(signatures[live, band * rows:(band + 1) * rows])
        keys = block.view(np.dtype((np.void, block.dtype.itemsize * rows))).ravel()  # the band as one key
        order = np.argsort(keys, kind="stable")  # equal keys (a bucket) end up next to each other
        same_as_next = keys[order[1:]] == keys[order[:-1]]
        in_bucket = np.zeros(len(order), dtype=bool)
        in_bucket[1:] |= same_as_next
        in_bucket[:-1] |= same_as_next
        members = live[order[in_bucket]]
        bucket_starts = np.flatnonzero(np.concatenate([[True], ~same_as_next])[in_bucket])
        pairs.append(_pairs_within_groups(members, bucket_starts))
    pairs = np.sort(np.concatenate(pairs).astype(np.int64), axis=1)  # i < j
    codes = _sorted_unique(pairs[:, 0] * n_docs + pairs[:, 1])  # a pair found in several bands counts once
    return np.stack([codes // max(1, n_docs), codes % max(1, n_docs)], axis=1)
