"""Our byte-level BPE (course_lib.tokenizer) against Hugging Face `tokenizers`, side by side in one process.

    python benchmarks/bench_tokenizer.py [--mb 5] [--vocab 4096] [--repeats 3]

Two corpora of at least `--mb` MB:
  stories  the course's story corpus (train split, documents cut at <|endoftext|>). It has only a few
           hundred distinct pre-tokens, so both trainers run out of pairs long before 4096 tokens.
  python   Python's standard library source: varied text that fills the whole vocabulary.

For each it prints
  train time ratio      ours / HF (goal <= 3); both count pre-tokens and learn merges from the same text
  encode speed ratios   ours / HF in bytes per second, the same merges (our tokenizer's `to_hf()` with
                        HF's own ByteLevel regex), side by side:
                          one call    `encode` of the whole text as one string, ours against HF's;
                          batch       the documents as a list, the way a practitioner encodes a corpus: ours
                                      `encode` on each document in turn (one Python thread), HF's
                                      `encode_batch` (multi-threaded, with offsets) and `encode_batch_fast`
                                      (multi-threaded, no offsets; tokenizers >= 0.20)
  merge agreement       how many of our merges HF also learned, and whether every merge of each trainer
                        had the highest count at its step (then they can differ only where counts tie)

Fair setup: HF's trainer uses the same GPT-2 pre-tokenizer (ByteLevel, no prefix space), all 256 bytes as
the initial alphabet, min_frequency=0 (like ours: merge while any pair occurs), the same vocab size with
the special token counted in, and the text cut at the special token for it (it does not cut there itself).
Ties differ by design: ours takes the greatest pair of byte strings, HF the pair with the smallest ids in
its own numbering. HF trains and batch-encodes with its default thread pool (all cores, or
RAYON_NUM_THREADS if set: `RAYON_NUM_THREADS=1 python benchmarks/bench_tokenizer.py` compares one thread with
one thread); ours is one Python thread.
"""

from __future__ import annotations

import argparse
import itertools
import os
import sysconfig
import time
import warnings
from pathlib import Path

from course_lib import tokenizer as bpe
from course_lib.stories import END_OF_TEXT, corpus_text


def best_time(fn, repeats: int) -> tuple[float, object]:
    """The fastest of `repeats` runs (the least disturbed by other work on the machine) and its result."""
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def python_source(n_bytes: int) -> list[str]:
    """Files of Python's standard library (no tests), in a fixed order, until `n_bytes`."""
    root, files, size = Path(sysconfig.get_paths()["stdlib"]), [], 0
    for path in sorted(root.rglob("*.py")):
        if {"site-packages", "test", "tests"} & set(path.relative_to(root).parts):
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        files.append(text)
        size += len(text.encode("utf-8"))
        if size >= n_bytes:
            return files
    raise SystemExit(f"only {size} bytes of Python source under {root}")


def first_difference(ours: list, theirs: list) -> int | None:
    return next((k for k, (a, b) in enumerate(zip(ours, theirs)) if a != b), None)


def counts_after(word_counts, merges, pairs):
    """Counts of `pairs` (byte-string pairs) once `merges` have been applied."""
    token_bytes = [bytes([b]) for b in range(256)]
    id_of = {b: i for i, b in enumerate(token_bytes)}
    counts = bpe.PairCounts(word_counts, token_bytes)
    for left, right in merges:
        if left + right not in id_of:
            id_of[left + right] = len(token_bytes)
            token_bytes.append(left + right)
        counts.merge((id_of[left], id_of[right]), id_of[left + right])
    return [counts.pairs.get((id_of[a], id_of[b]), 0) if a in id_of and b in id_of else 0 for a, b in pairs]


def run(name: str, documents: list[str], vocab_size: int, special: list[str], repeats: int) -> dict:
    text = "".join(documents)
    n_bytes = len(text.encode("utf-8"))
    print(f"\n== {name}: {n_bytes / 1e6:.2f} MB, {len(documents)} documents, vocab {vocab_size}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the story corpus runs out of pairs: reported below
        ours_s, ours = best_time(lambda: bpe.train_bpe(documents, vocab_size, special), repeats)
    hf_s, hf = best_time(lambda: bpe.train_hf_bpe(documents, vocab_size, special), repeats)
    hf_merges = bpe.hf_merges(hf)
    print(f"train   ours {ours_s:6.2f} s ({len(ours)} tokens)   HF {hf_s:6.2f} s ({hf.get_vocab_size()} tokens)"
          f"   ratio ours/HF = {ours_s / hf_s:.2f}")

    # encoding: the same merges on both sides
    # (to_hf() spells out the regex's Unicode classes; on these texts HF's own ByteLevel regex splits the
    # same way and is what a practitioner runs, so that is the one timed)
    from tokenizers import pre_tokenizers

    hf_same = ours.to_hf()
    hf_same.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)

    def cold(encode):  # start with an empty pre-token cache each time, like a fresh tokenizer
        def run():
            ours._cache.clear()
            return encode()
        return run

    # one call on the whole text
    ours_one_s, ours_ids = best_time(cold(lambda: ours.encode(text)), repeats)
    hf_one_s, hf_encoding = best_time(lambda: hf_same.encode(text), repeats)
    assert hf_encoding.ids == ours_ids == ours.to_hf().encode(text).ids, "HF must give the same ids"
    # the documents as a list
    ours_batch_s, ours_lists = best_time(cold(lambda: [ours.encode(d) for d in documents]), repeats)
    hf_batch_s, hf_encodings = best_time(lambda: hf_same.encode_batch(documents), repeats)
    fast = getattr(hf_same, "encode_batch_fast", None)
    fast_s, fast_encodings = best_time(lambda: fast(documents), repeats) if fast else (None, None)
    assert [e.ids for e in hf_encodings] == ours_lists, "HF's batch must give the same ids"
    assert fast is None or [e.ids for e in fast_encodings] == ours_lists, "HF's fast batch must give the same ids"
    assert list(itertools.chain(*ours_lists)) == ours_ids, "document by document must give the ids of the whole text"

    threads = os.environ.get("RAYON_NUM_THREADS") or os.environ.get("RAYON_RS_NUM_CPUS") or str(os.cpu_count())
    print(f"encode  ({n_bytes / len(ours_ids):.2f} bytes/token; MB/s; ratio = ours/HF speed, higher is better;"
          f" HF batch on {threads} threads)")
    rows = [("one call on the whole text", ours_one_s, "encode", hf_one_s),
            (f"{len(documents)} documents as a list", ours_batch_s, "encode_batch", hf_batch_s)]
    if fast:
        rows.append((f"{len(documents)} documents as a list", ours_batch_s, "encode_batch_fast", fast_s))
    for what, ours_seconds, hf_name, hf_seconds in rows:
        print(f"        {what:28s} ours {n_bytes / ours_seconds / 1e6:6.2f}   HF {hf_name:17s}"
              f" {n_bytes / hf_seconds / 1e6:6.2f}   ratio {hf_seconds / ours_seconds:.2f}")

    # merges: agreement, and proof that disagreements are ties
    word_counts = bpe.count_pretokens(documents, special)
    shared = len(set(ours.merges) & set(hf_merges))
    ours_greedy = sum(c == best for c, best in bpe.replay_merges(word_counts, ours.merges))
    hf_greedy = sum(c == best for c, best in bpe.replay_merges(word_counts, hf_merges))
    print(f"merges  HF also learned {shared}/{len(ours.merges)} of ours ({shared / len(ours.merges):.1%});"
          f" first {first_difference(ours.merges, hf_merges)} identical in order")
    print(f"        at the highest count when made: ours {ours_greedy}/{len(ours.merges)}, HF {hf_greedy}/{len(hf_merges)}")
    k = first_difference(ours.merges, hf_merges)
    if k is not None:
        a, b = counts_after(word_counts, ours.merges[:k], [ours.merges[k], hf_merges[k]])
        print(f"        first difference, merge {k}: ours {ours.merges[k]} count {a}, HF {hf_merges[k]} count {b}"
              f" -> {'a tie' if a == b else 'NOT a tie'}")
    return {"train": ours_s / hf_s, "encode": hf_one_s / ours_one_s, "batch": hf_batch_s / ours_batch_s,
            "fast": fast_s / ours_batch_s if fast else None, "agreement": shared / len(ours.merges),
            "greedy": ours_greedy == len(ours.merges) and hf_greedy == len(hf_merges)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=float, default=5.0, help="megabytes of text per corpus")
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--repeats", type=int, default=3, help="timings are the best of this many runs")
    args = parser.parse_args()
    n_bytes = int(args.mb * 1e6)

    stories = [doc + END_OF_TEXT for doc in corpus_text("train", n_bytes).split(END_OF_TEXT)[:-1]]
    results = {"stories": run("stories", stories, args.vocab, [END_OF_TEXT], args.repeats),
               "python": run("python", python_source(n_bytes), args.vocab, [], args.repeats)}
    print("\nsummary (ratios ours/HF; train time: lower is better, goal <= 3; encode speed: higher is better)")
    for name, r in results.items():
        fast = f"   encode_batch_fast {r['fast']:.2f}" if r["fast"] is not None else ""
        print(f"  {name:8s} train {r['train']:.2f}   encode: one call {r['encode']:.2f}   encode_batch {r['batch']:.2f}{fast}")
        print(f"  {'':8s} merges shared with HF {r['agreement']:.1%}; every merge of both at the highest pair count"
              f" (so every difference is a tie): {'yes' if r['greedy'] else 'NO'}")


if __name__ == "__main__":
    main()
