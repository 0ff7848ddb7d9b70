"""Our MinHash + LSH (course_lib.data_cleaning) against datasketch, side by side in one process.

Same settings on both sides: word 5-grams of the same tokens, 112 permutations = 14 bands x 8 rows
(FineWeb's), candidates verified with the same true Jaccard threshold and clustered with the same
union-find. Prints the time of each side (shingling, signatures, LSH), the throughput ratio, and how
well the duplicate clusters agree (with each other and with the crawl's labels).

    python benchmarks/bench_minhash.py                 # 10,000 pages of the course crawl
    python benchmarks/bench_minhash.py --docs 20000 --repeat 3

datasketch is used only here and in the tests; course_lib does not depend on it.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from datasketch import MinHash, MinHashLSH

from course_lib import data_cleaning as dc
from course_lib.crawl import crawl


def ours(texts: list[str], bands: int, rows: int) -> tuple[list[np.ndarray], set[tuple[int, int]], dict[str, float]]:
    times, t_start = {}, time.perf_counter()
    words = [dc.dedup_words(t) for t in texts]
    t0 = time.perf_counter()
    shingle_sets = dc.shingle_sets(words)
    t1 = time.perf_counter()
    a, b = dc.minhash_params(bands * rows, seed=1)
    signatures = dc.minhash_signatures(shingle_sets, a, b)
    t2 = time.perf_counter()
    pairs = {(i, j) for i, j in dc.lsh_candidates(signatures, bands, rows).tolist()}
    t3 = time.perf_counter()
    times.update(tokens=t0 - t_start, shingles=t1 - t0, signatures=t2 - t1, lsh=t3 - t2)
    return shingle_sets, pairs, times


def datasketch_shingles(words: list[str], n: int = dc.SHINGLE) -> list[bytes]:
    """The same word n-grams as ours, as the byte strings datasketch hashes (a short text is one shingle)."""
    n = min(n, len(words))
    return list({" ".join(words[i:i + n]).encode("utf-8") for i in range(len(words) - n + 1)})


def theirs(texts: list[str], bands: int, rows: int) -> tuple[set[tuple[int, int]], dict[str, float]]:
    times, t_start = {}, time.perf_counter()
    words = [dc.dedup_words(t) for t in texts]
    t0 = time.perf_counter()
    shingles = [datasketch_shingles(w) for w in words]
    t1 = time.perf_counter()
    minhashes = MinHash.bulk(shingles, num_perm=bands * rows, seed=1)
    t2 = time.perf_counter()
    lsh = MinHashLSH(num_perm=bands * rows, params=(bands, rows))
    with lsh.insertion_session() as session:
        for i, m in enumerate(minhashes):
            session.insert(i, m)
    pairs = {(min(i, j), max(i, j)) for i, m in enumerate(minhashes) for j in lsh.query(m) if j != i}
    t3 = time.perf_counter()
    times.update(tokens=t0 - t_start, shingles=t1 - t0, signatures=t2 - t1, lsh=t3 - t2)
    return pairs, times


def verified_clusters(n: int, pairs: set[tuple[int, int]], shingle_sets: list[np.ndarray], threshold: float) -> list[list[int]]:
    good = [(i, j) for i, j in sorted(pairs) if dc.jaccard(shingle_sets[i], shingle_sets[j]) >= threshold]
    return dc.clusters_from_pairs(n, good)


def co_clustered(clusters: list[list[int]]) -> set[tuple[int, int]]:
    return {(c[i], c[j]) for c in clusters for i in range(len(c)) for j in range(i + 1, len(c))}


def overlap(x: set, y: set) -> float:
    return len(x & y) / len(x | y) if x | y else 1.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docs", type=int, default=10_000, help="pages of the course crawl (default 10,000)")
    parser.add_argument("--bands", type=int, default=dc.BANDS)
    parser.add_argument("--rows", type=int, default=dc.ROWS)
    parser.add_argument("--threshold", type=float, default=0.7, help="Jaccard threshold for verified pairs")
    parser.add_argument("--repeat", type=int, default=3, help="time each side this many times, keep the best")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    t0 = time.perf_counter()
    records = crawl(args.docs, seed=args.seed)
    extracted = [dc.extract_text(r.html).text for r in records]
    keep = [i for i, t in enumerate(extracted) if dc.dedup_words(t)]  # pages with at least one word
    texts = [extracted[i] for i in keep]
    print(f"{len(texts):,} documents with text from {args.docs:,} crawled pages "
          f"({sum(map(len, texts)) / 1e6:.1f} MB of text; prepared in {time.perf_counter() - t0:.1f} s)")

    best_ours, best_theirs = None, None
    for _ in range(args.repeat):  # alternate the two sides so machine load affects both alike
        shingle_sets, our_pairs, t_ours = ours(texts, args.bands, args.rows)
        their_pairs, t_theirs = theirs(texts, args.bands, args.rows)
        if best_ours is None or sum(t_ours.values()) < sum(best_ours.values()):
            best_ours = t_ours
        if best_theirs is None or sum(t_theirs.values()) < sum(best_theirs.values()):
            best_theirs = t_theirs

    print(f"\n{'stage':12s} {'ours (s)':>9s} {'datasketch (s)':>15s}")
    for stage in ("tokens", "shingles", "signatures", "lsh"):
        print(f"{stage:12s} {best_ours[stage]:9.3f} {best_theirs[stage]:15.3f}")
    total_ours, total_theirs = sum(best_ours.values()), sum(best_theirs.values())
    print(f"{'total':12s} {total_ours:9.3f} {total_theirs:15.3f}")
    print(f"throughput from text: ours {len(texts) / total_ours:,.0f} docs/s, datasketch "
          f"{len(texts) / total_theirs:,.0f} docs/s, ratio {total_theirs / total_ours:.2f}x (best of {args.repeat})")
    # Tokenizing (the same regex on both sides) is shared work; without it the ratio is MinHash + LSH alone.
    minhash_ours, minhash_theirs = total_ours - best_ours["tokens"], total_theirs - best_theirs["tokens"]
    print(f"throughput from words (shingles + signatures + LSH): ratio {minhash_theirs / minhash_ours:.2f}x")

    n = len(texts)
    our_clusters = verified_clusters(n, our_pairs, shingle_sets, args.threshold)
    their_clusters = verified_clusters(n, their_pairs, shingle_sets, args.threshold)
    same = {tuple(c) for c in our_clusters} & {tuple(c) for c in their_clusters}
    print(f"\ncandidate pairs: ours {len(our_pairs):,}, datasketch {len(their_pairs):,}, "
          f"overlap (Jaccard of the two sets) {overlap(our_pairs, their_pairs):.3f}")
    print(f"clusters (Jaccard >= {args.threshold}): ours {len(our_clusters):,}, datasketch {len(their_clusters):,}, "
          f"identical {len(same):,}")
    print(f"agreement of co-clustered pairs (Jaccard of the two sets): "
          f"{overlap(co_clustered(our_clusters), co_clustered(their_clusters)):.4f}")

    # Against the labels: each duplicate page should share a cluster with the page it copies.
    position = {index: k for k, index in enumerate(keep)}
    truth = {(position[r.dup_of], position[r.index]) for r in records
             if r.dup_of is not None and r.index in position and r.dup_of in position}
    for name, clusters in (("ours", our_clusters), ("datasketch", their_clusters)):
        together = co_clustered(clusters)
        print(f"labelled duplicate pairs found, {name}: {len(truth & together):,} of {len(truth):,} "
              f"({len(truth & together) / max(1, len(truth)):.3f})")


if __name__ == "__main__":
    main()
