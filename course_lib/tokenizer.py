"""Byte-level BPE, the tokenizer of GPT-2 and most LLMs since (chapter 1), read top to bottom.

    text --cut at special tokens--> pieces --GPT-2 regex--> pre-tokens --UTF-8--> byte ids 0..255
         --apply the merges, earliest learned first--> token ids

Training (`train_bpe`) learns the merges: count every adjacent pair of tokens in the training text,
turn the most frequent pair into a new token, repeat until the vocabulary is full. Merges never cross a
pre-token boundary or a special token. Ties: among pairs with the same count, the lexicographically
greatest pair of byte strings wins, i.e. the greatest (bytes of left token, bytes of right token).

The vocabulary: ids 0..255 are the bytes, then one id per new token in the order learned, then the
special tokens. A merge whose bytes already are a token (b"a" + b"bc" after b"ab" + b"c") reuses that
token's id, as Hugging Face's trainer does, so no two ids have the same bytes.

The building blocks `count_pairs` and `merge` are the notebook's first exercises; `train_bpe` does the
same work as the notebook's training loop, but updates the pair counts incrementally (only in the words
that contain the merged pair) instead of recounting everything after each merge.
"""

from __future__ import annotations

import functools
import heapq
import json
import operator
import warnings
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import regex

from course_lib.lm import END_OF_TEXT
from course_lib.stories import corpus_text
from course_lib.utils import asset_path

# GPT-2's pre-tokenizer (Radford et al. 2019): contractions, letters, numbers, other symbols, spaces.
# A space sticks to the word after it (" dog"), so "dog" and " dog" are different tokens.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
PRETOKENIZER = regex.compile(GPT2_PATTERN)
STORY_TOKENIZER = "story_tokenizer.json"  # in assets/; rebuild with `python -m course_lib build-assets story_tokenizer`
STORY_VOCAB_SIZE = 1024  # asked for; the stories have so few distinct words that training stops at 959
STORY_TRAIN_BYTES = 3_000_000
CACHE_SIZE = 100_000  # pre-tokens remembered by `encode`; the cache is emptied when full, so memory stays bounded


# A lone surrogate (U+D800..U+DFFF) is half of a UTF-16 pair, not a character: Python strings can hold one
# (from `errors="surrogateescape"`, or a JSON "\ud83e" escape cut in half), but it has no UTF-8 bytes.
LONE_SURROGATE = regex.compile("[\ud800-\udfff]")


def surrogate_error(text: str, offset: int = 0, what: str = "text") -> ValueError:
    """The error for `text` that cannot be encoded: which lone surrogate, and where (index `offset` + i)."""
    found = LONE_SURROGATE.search(text)
    where = f"U+{ord(found.group()):04X} at index {offset + found.start()}" if found else "(no position found)"
    return ValueError(f"{what} has a lone surrogate {where}: half of a UTF-16 pair, not a character, so it has "
                      "no UTF-8 bytes to tokenize (text read with errors='surrogateescape' or a JSON \\u escape "
                      "cut in half makes them); clean the text first, e.g. "
                      "text.encode('utf-8', errors='replace').decode('utf-8')")


def pretokenize(text: str) -> list[str]:
    """Split text into GPT-2 pre-tokens: `"Hi, you!"` -> `["Hi", ",", " you", "!"]`."""
    return PRETOKENIZER.findall(text)


# ----------------------------------------------------------------------------------------------------
# The two building blocks of BPE (the notebook's first exercises).

def count_pairs(ids: list[int]) -> dict[tuple[int, int], int]:
    """How often each adjacent pair occurs: [1, 2, 1, 2] -> {(1, 2): 2, (2, 1): 1}. Overlaps count: [5, 5, 5] has (5, 5) twice."""
    counts: dict[tuple[int, int], int] = {}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge(ids: list[int], pair: tuple[int, int], new_id: int) -> list[int]:
    """Replace each occurrence of `pair` by `new_id`, left to right: merge([5, 5, 5], (5, 5), 9) -> [9, 5]."""
    out, i, n = [], 0, len(ids)
    while i < n:
        if i + 1 < n and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


# ----------------------------------------------------------------------------------------------------
# Special tokens: cut the text at them before anything else, so they are never split or merged.

def check_special_tokens(special_tokens: Iterable[str]) -> list[str]:
    """The special tokens as a list, with a clear error for anything that cannot be one."""
    if isinstance(special_tokens, str):
        raise TypeError(f"special_tokens must be a list of strings, got the string {special_tokens!r}; write [{special_tokens!r}]")
    tokens = list(special_tokens)
    for token in tokens:
        if not isinstance(token, str) or not token:
            raise TypeError(f"a special token must be a non-empty string, got {token!r}")
        if regex.search(r"\s", token):
            # `encode_iterable` cuts its stream at whitespace, which must never fall inside a special token
            raise ValueError(f"special token {token!r} contains whitespace, which this tokenizer does not support")
    if len(set(tokens)) != len(tokens):
        raise ValueError(f"special tokens must be distinct, got {tokens}")
    return tokens


def special_splitter(special_tokens: Sequence[str]) -> regex.Pattern | None:
    """A regex whose `split` gives ordinary text at even and special tokens at odd positions (None without any).

    Longer tokens are tried first, so where two overlap the longest wins, as in Hugging Face's tokenizers.
    """
    if not special_tokens:
        return None
    ordered = sorted(special_tokens, key=len, reverse=True)
    return regex.compile("(" + "|".join(regex.escape(token) for token in ordered) + ")")


def _text_chunks(text: str | Iterable[str], what: str) -> Iterable[str]:
    if isinstance(text, str):
        return [text]
    if isinstance(text, (bytes, bytearray)) or not isinstance(text, Iterable):
        raise TypeError(f"{what} needs a str or an iterable of str, got {type(text).__name__}")
    return text


def count_pretokens(text: str | Iterable[str], special_tokens: Sequence[str] = ()) -> Counter[str]:
    """How often each pre-token occurs in `text` (a string, or an iterable of strings such as a file's lines).

    Special tokens are cut out first and not counted. Each string of an iterable is pre-tokenized on its own.
    """
    splitter = special_splitter(special_tokens)
    counts: Counter[str] = Counter()
    for chunk in _text_chunks(text, "training"):
        if not isinstance(chunk, str):
            raise TypeError(f"training text must be made of str, got a {type(chunk).__name__}")
        pieces = splitter.split(chunk)[::2] if splitter else [chunk]
        for piece in pieces:
            counts.update(PRETOKENIZER.findall(piece))  # Counter.update on a list runs in C
    return counts


# ----------------------------------------------------------------------------------------------------
# Training: the pair counts, kept up to date merge after merge.

class _Descending:
    """Wraps a pair of byte strings so that Python's min-heap pops the greatest pair first (our tie rule)."""

    __slots__ = ("key",)

    def __init__(self, key: tuple[bytes, bytes]) -> None:
        self.key = key

    def __lt__(self, other: _Descending) -> bool:
        return self.key > other.key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Descending) and self.key == other.key


class PairCounts:
    """Counts of adjacent token pairs over a bag of words, updated incrementally as pairs are merged.

    `words[w]` is word w as token ids and `counts[w]` how often it occurs; `pairs[p]` is the count of
    pair p over all words and `where[p]` the words that contain p. A merge only touches the words in
    `where[pair]`, and only the pairs around the merged spots change. The best pair comes from a heap
    of (-count, tie-break key, pair) entries; when a count changes we push a fresh entry and skip the
    stale ones as they surface ("lazy deletion"), so each merge costs O(changes * log heap).
    """

    def __init__(self, word_counts: dict[str, int], token_bytes: list[bytes]) -> None:
        self.token_bytes = token_bytes  # bytes of every token id; the trainer appends new tokens
        self.words = [list(word.encode("utf-8")) for word in word_counts]
        self.counts = list(word_counts.values())
        self.pairs: dict[tuple[int, int], int] = defaultdict(int)
        self.where: dict[tuple[int, int], set[int]] = defaultdict(set)
        self.merged: set[tuple[int, int]] = set()
        for w, (word, count) in enumerate(zip(self.words, self.counts)):
            for pair in zip(word, word[1:]):
                self.pairs[pair] += count
                self.where[pair].add(w)
        self.heap = [self._entry(pair) for pair in self.pairs]
        heapq.heapify(self.heap)

    def _entry(self, pair: tuple[int, int]) -> tuple:
        key = (self.token_bytes[pair[0]], self.token_bytes[pair[1]])
        return (-self.pairs[pair], _Descending(key), pair)

    def best(self) -> tuple[int, int] | None:
        """The pair with the highest count (ties: the greatest pair of byte strings), or None if none is left."""
        while self.heap:
            negative_count, _, pair = self.heap[0]
            if self.pairs.get(pair, 0) == -negative_count and pair not in self.merged:
                return pair
            heapq.heappop(self.heap)  # stale: its count changed since it was pushed, a fresh entry exists
        return None

    def merge(self, pair: tuple[int, int], new_id: int) -> None:
        """Replace `pair` by `new_id` in every word that has it, updating the counts around each change."""
        self.merged.add(pair)  # a pair is merged once; should it reappear later, it is not merged again
        changed = set()
        for w in self.where.pop(pair, ()):
            old, new, count = self.words[w], merge(self.words[w], pair, new_id), self.counts[w]
            delta: dict[tuple[int, int], int] = defaultdict(int)
            for p in zip(old, old[1:]):
                delta[p] -= 1
            for p in zip(new, new[1:]):
                delta[p] += 1
            for p, d in delta.items():
                if d:
                    self.pairs[p] += d * count
                    changed.add(p)
                    if d > 0:
                        self.where[p].add(w)  # words that lose a pair stay listed: merging there is a no-op
            self.words[w] = new
        for p in changed:
            if self.pairs[p] > 0:
                heapq.heappush(self.heap, self._entry(p))
            else:
                del self.pairs[p]


def train_bpe(text: str | Iterable[str], vocab_size: int, special_tokens: Sequence[str] = ()) -> BPETokenizer:
    """Learn a byte-level BPE tokenizer with `vocab_size` tokens (bytes, merges and special tokens together).

    text: a string, or an iterable of strings (e.g. an open file); each string is pre-tokenized on its own.
    Ties between pairs with the same count go to the lexicographically greatest pair of byte strings.
    If every pre-token becomes a single token before the vocabulary is full, training stops early
    (with a warning) and the vocabulary is smaller than asked.
    """
    special_tokens = check_special_tokens(special_tokens)
    minimum = 256 + len(special_tokens)
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int):
        raise TypeError(f"vocab_size must be an int, got {type(vocab_size).__name__}")
    if vocab_size < minimum:
        raise ValueError(f"vocab_size must be at least {minimum} (256 bytes + {len(special_tokens)} special tokens), got {vocab_size}")
    token_bytes = [bytes([b]) for b in range(256)]
    id_of = {b: i for i, b in enumerate(token_bytes)}
    try:
        counts = PairCounts(count_pretokens(text, special_tokens), token_bytes)
    except UnicodeEncodeError as error:  # error.object is the pre-token that has no UTF-8 bytes
        raise surrogate_error(error.object, what=f"the training text's pre-token {error.object!r}") from None
    merges: list[tuple[bytes, bytes]] = []
    while len(token_bytes) < vocab_size - len(special_tokens):
        pair = counts.best()
        if pair is None:
            warnings.warn(f"training stopped at {len(token_bytes) + len(special_tokens)} tokens: "
                          "every pre-token of the text is a single token", stacklevel=2)
            break
        left, right = token_bytes[pair[0]], token_bytes[pair[1]]
        new_id = id_of.get(left + right)
        if new_id is None:
            new_id = id_of[left + right] = len(token_bytes)
            token_bytes.append(left + right)
        merges.append((left, right))
        counts.merge(pair, new_id)
    return BPETokenizer(merges, special_tokens)


# ----------------------------------------------------------------------------------------------------
# The tokenizer: encode, decode, save, load, and the same tokenizer in Hugging Face's library.

class BPETokenizer:
    """A byte-level BPE tokenizer: `merges` in the order learned, plus special tokens.

    vocab: id -> bytes (0..255 the bytes, then merged tokens, then special tokens, UTF-8 encoded).
    merges: list of (left bytes, right bytes), earliest first; merge_ids: (left id, right id) -> new id.
    special_tokens: str -> id.
    """

    def __init__(self, merges: Sequence[tuple[bytes, bytes]], special_tokens: Sequence[str] = ()) -> None:
        self.merges = [(bytes(left), bytes(right)) for left, right in merges]
        self.vocab: dict[int, bytes] = {i: bytes([i]) for i in range(256)}
        id_of = {b: i for i, b in self.vocab.items()}
        self.merge_ids: dict[tuple[int, int], int] = {}
        self._rank_and_id: dict[tuple[int, int], tuple[int, int]] = {}  # pair -> (rank, new id), what encode needs
        for rank, (left, right) in enumerate(self.merges):
            if left not in id_of or right not in id_of:
                raise ValueError(f"merge {rank} ({left!r}, {right!r}) uses a token that no earlier merge made")
            pair = (id_of[left], id_of[right])
            if pair in self.merge_ids:
                raise ValueError(f"merge {rank} ({left!r}, {right!r}) repeats merge {self._rank_and_id[pair][0]}")
            new_id = id_of.setdefault(left + right, len(self.vocab))
            self.vocab[new_id] = left + right
            self.merge_ids[pair] = new_id
            self._rank_and_id[pair] = (rank, new_id)
        self.special_tokens = {token: len(self.vocab) + i for i, token in enumerate(check_special_tokens(special_tokens))}
        for token, i in self.special_tokens.items():
            self.vocab[i] = token.encode("utf-8")
        self._splitter = special_splitter(list(self.special_tokens))
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def from_merge_ids(cls, merge_ids: dict[tuple[int, int], int], special_tokens: Sequence[str] = ()) -> BPETokenizer:
        """A tokenizer from merges written as ids, {(left id, right id): new id} in the order learned (minbpe's form)."""
        token_bytes = {i: bytes([i]) for i in range(256)}
        merges = []
        for (left, right), new_id in merge_ids.items():
            if left not in token_bytes or right not in token_bytes:
                raise ValueError(f"merge ({left}, {right}) -> {new_id} uses an id that no earlier merge made")
            token_bytes[new_id] = token_bytes[left] + token_bytes[right]
            merges.append((token_bytes[left], token_bytes[right]))
        tokenizer = cls(merges, special_tokens)
        if tokenizer.merge_ids != dict(merge_ids):
            raise ValueError("merge ids must be numbered 256, 257, ... in the order learned")
        return tokenizer

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def __len__(self) -> int:
        return len(self.vocab)

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={len(self.vocab)}, merges={len(self.merges)}, special_tokens={list(self.special_tokens)})"

    # -- encoding ------------------------------------------------------------------------------------

    def _apply_merges(self, ids: list[int]) -> list[int]:
        """Merge the byte ids of one pre-token: always the earliest-learned adjacent pair, the leftmost on ties.

        That is the order of Hugging Face's BPE model, so `to_hf` gives the same ids. A heap of candidate
        merges keyed by (rank, position) plus a linked list of live tokens makes it O(n log n) in the
        pre-token's length. (The notebook's simpler loop, "merge all occurrences of the earliest pair",
        gives the same result whenever no two merges make the same token.)
        """
        tokens: list[int | None] = list(ids)
        n = len(tokens)
        after = list(range(1, n + 1))  # after[i]: position of the live token that follows position i (n: none)
        before = list(range(-1, n - 1))
        heap: list[tuple[int, int, int, int]] = []

        def consider(i: int) -> None:  # push the merge of the pair that starts at live position i, if any
            j = after[i]
            if j < n and (rank_id := self._rank_and_id.get((tokens[i], tokens[j]))):
                heapq.heappush(heap, (rank_id[0], i, tokens[i], tokens[j]))

        for i in range(n - 1):
            consider(i)
        while heap:
            _, i, left, right = heapq.heappop(heap)
            j = after[i]
            if tokens[i] != left or j >= n or tokens[j] != right:
                continue  # stale: one of the two tokens was merged with another neighbour first
            tokens[i], tokens[j] = self._rank_and_id[left, right][1], None
            after[i] = after[j]
            if after[i] < n:
                before[after[i]] = i
            if before[i] >= 0:
                consider(before[i])
            consider(i)
        return [t for t in tokens if t is not None]

    def encode_ordinary(self, text: str) -> list[int]:
        """Token ids of `text` as plain text: a special token's string is encoded like any other text. Shape [n_tokens]."""
        if not isinstance(text, str):
            raise TypeError(f"encode needs a str, got {type(text).__name__}")
        try:
            return self._encode_plain(text)
        except UnicodeEncodeError:
            raise surrogate_error(text) from None

    def _encode_plain(self, text: str) -> list[int]:
        """encode_ordinary without the checks (a lone surrogate raises UnicodeEncodeError here)."""
        ids: list[int] = []
        cache = self._cache
        for pretoken in PRETOKENIZER.findall(text):
            token_ids = cache.get(pretoken)
            if token_ids is None:
                token_ids = self._apply_merges(list(pretoken.encode("utf-8")))
                if len(cache) >= CACHE_SIZE:
                    cache.clear()
                cache[pretoken] = token_ids
            ids.extend(token_ids)
        return ids

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`; each special token in it becomes its own id. Shape [n_tokens].

        Pre-tokens repeat a lot (" the"), so each one's ids are cached after the first time.
        """
        if not isinstance(text, str):
            raise TypeError(f"encode needs a str, got {type(text).__name__}")
        return self._encode(text)

    def _encode(self, text: str, offset: int = 0) -> list[int]:
        """encode of a str that starts at index `offset` of a longer text (for the error's position)."""
        try:
            if self._splitter is None:
                return self._encode_plain(text)
            ids: list[int] = []
            for k, piece in enumerate(self._splitter.split(text)):
                if k % 2:
                    ids.append(self.special_tokens[piece])
                elif piece:
                    ids.extend(self._encode_plain(piece))
            return ids
        except UnicodeEncodeError:
            raise surrogate_error(text, offset) from None

    def encode_iterable(self, chunks: Iterable[str]) -> Iterator[int]:
        """Stream the ids of `"".join(chunks)` (e.g. an open file, line by line) without holding it all in memory.

        The same ids as `encode` of the whole text. Text is held back only until a place where the
        pre-tokenizer is sure to cut whatever comes next: just before a whitespace character other than
        a space (e.g. a line break) that is followed by a character that is neither whitespace nor the
        start of a special token. So memory stays bounded by the longest stretch without one (a line).
        """
        if isinstance(chunks, str):
            chunks = [chunks]
        starts = "".join(sorted({regex.escape(token[0]) for token in self.special_tokens}))
        safe_cut = regex.compile(r"(?r)[^\S ](?=[^\s" + starts + "])")  # (?r): search from the end
        buffer, done = "", 0  # done: characters of the stream already encoded (where the buffer starts)
        for chunk in chunks:
            if not isinstance(chunk, str):
                raise TypeError(f"encode_iterable needs str chunks, got {type(chunk).__name__}")
            buffer += chunk
            cut = safe_cut.search(buffer)
            if cut and cut.start() > 0:
                yield from self._encode(buffer[: cut.start()], done)
                buffer, done = buffer[cut.start():], done + cut.start()
        yield from self._encode(buffer, done)

    # -- decoding ------------------------------------------------------------------------------------

    def decode(self, ids: Iterable[int]) -> str:
        """The text of token ids; bytes that are not valid UTF-8 become U+FFFD (never an exception)."""
        ids = list(ids)
        try:
            data = b"".join([self.vocab[i] for i in ids])
        except (KeyError, TypeError):  # the slow path: ids such as numpy or torch integers, or a bad id
            data = b"".join([self._bytes_of(i) for i in ids])
        return data.decode("utf-8", errors="replace")

    def _bytes_of(self, token_id) -> bytes:
        try:
            i = operator.index(token_id)
        except TypeError:
            raise TypeError(f"token ids must be integers, got {token_id!r}") from None
        if i not in self.vocab:
            raise ValueError(f"unknown token id {i}: this tokenizer has ids 0..{len(self.vocab) - 1}")
        return self.vocab[i]

    def token_strings(self, ids: Iterable[int]) -> list[str]:
        """Each token on its own as text (partial UTF-8 characters show as U+FFFD): for looking at tokens."""
        return [self.decode([i]) for i in ids]

    # -- saving and loading ----------------------------------------------------------------------------

    def save(self, path: str | Path) -> None:
        """Write a JSON file a person can read: one merge per line, tokens as Latin-1 text.

        Latin-1 maps byte b to the character chr(b), so ASCII reads as itself and every byte string
        survives the round trip; the vocabulary listed at the end is only for reading (load rebuilds it).
        """
        def text(b: bytes) -> str:
            return json.dumps(b.decode("latin-1"))

        lines = ["{", '  "format": "course_lib byte-level BPE",', '  "version": 1,',
                 f'  "pattern": {json.dumps(GPT2_PATTERN)},',
                 f'  "special_tokens": {json.dumps(self.special_tokens)},', '  "merges": [']
        lines += [f"    [{text(left)}, {text(right)}]," for left, right in self.merges]
        lines[-1] = lines[-1].rstrip(",") if self.merges else lines[-1]
        lines += ["  ],", '  "vocab": {']
        lines += [f'    "{i}": {text(b)},' for i, b in self.vocab.items()]
        lines[-1] = lines[-1].rstrip(",")
        lines += ["  }", "}"]
        Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        """Read a tokenizer written by `save`, checking that it is one."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not a tokenizer file (invalid JSON: {error})") from None
        if not isinstance(data, dict) or data.get("format") != "course_lib byte-level BPE":
            raise ValueError(f"{path} is not a course_lib tokenizer file")
        if data.get("pattern") != GPT2_PATTERN:
            raise ValueError(f"{path} uses another pre-tokenizer pattern ({data.get('pattern')!r}); only GPT-2's is supported")
        merges = [(left.encode("latin-1"), right.encode("latin-1")) for left, right in data["merges"]]
        tokenizer = cls(merges, list(data["special_tokens"]))
        if tokenizer.special_tokens != data["special_tokens"]:
            raise ValueError(f"{path}: special token ids {data['special_tokens']} do not follow the merges")
        return tokenizer

    # -- the same tokenizer in Hugging Face's library --------------------------------------------------

    def to_hf(self):
        """A `tokenizers.Tokenizer` that gives the same ids as `encode` for every input.

        Hugging Face spells bytes as printable characters (byte_to_char); its regex engine knows an
        older Unicode than the `regex` package, so the pre-tokenizer pattern spells out the letter,
        number and space classes as `regex` sees them (see `explicit_pattern`).
        """
        from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

        special_ids = set(self.special_tokens.values())
        vocab = {spell_bytes(b): i for i, b in self.vocab.items() if i not in special_ids}
        merges = [(spell_bytes(left), spell_bytes(right)) for left, right in self.merges]
        hf = Tokenizer(models.BPE(vocab=vocab, merges=merges))
        hf.pre_tokenizer = pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(explicit_pattern()), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ])
        hf.decoder = decoders.ByteLevel()
        for token, i in self.special_tokens.items():
            if spell_bytes(token.encode("utf-8")) in vocab:
                raise ValueError(f"special token {token!r} has the bytes of an ordinary token; Hugging Face cannot give them different ids")
            hf.add_special_tokens([AddedToken(token, special=True, normalized=False)])
            if hf.token_to_id(token) != i:
                raise AssertionError(f"Hugging Face gave {token!r} id {hf.token_to_id(token)} instead of {i}")
        return hf


# ----------------------------------------------------------------------------------------------------
# Hugging Face: the byte alphabet, the explicit pattern, and its trainer set up like ours.

@functools.cache
def byte_to_char() -> dict[int, str]:
    """GPT-2's map from bytes to printable characters (space -> 'Ġ', newline -> 'Ċ'), used by Hugging Face."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + k) for k, b in enumerate(others)}}


def spell_bytes(data: bytes) -> str:
    table = byte_to_char()
    return "".join(table[b] for b in data)


def unspell(text: str) -> bytes:
    inverse = {c: b for b, c in byte_to_char().items()}
    return bytes(inverse[c] for c in text)


@functools.cache
def explicit_pattern() -> str:
    r"""GPT2_PATTERN with \p{L}, \p{N} and \s written out as code-point ranges, as the `regex` package sees them.

    Why: Hugging Face's regex engine (Oniguruma) uses an older Unicode version; about 17,000 code points
    assigned since (new CJK ideographs, scripts) are letters for `regex` but not for it.
    """
    # every code point except the surrogates, with "!" (in none of the classes) where they would be
    every = "".join(map(chr, range(0xD800))) + "!" + "".join(map(chr, range(0xE000, 0x110000)))

    def ranges(cls: str) -> str:
        parts = []
        for run in regex.finditer(cls + "+", every):
            lo, hi = ord(run.group()[0]), ord(run.group()[-1])
            parts.append(f"\\x{{{lo:X}}}" if lo == hi else f"\\x{{{lo:X}}}-\\x{{{hi:X}}}")
        return "".join(parts)

    letters, numbers, spaces = ranges(r"\p{L}"), ranges(r"\p{N}"), ranges(r"\s")
    return (f"'(?:[sdmt]|ll|ve|re)| ?[{letters}]+| ?[{numbers}]+| ?[^{spaces}{letters}{numbers}]+"
            f"|[{spaces}]+(?![^{spaces}])|[{spaces}]+")


def pieces_without_special_tokens(text: str | Iterable[str], special_tokens: Sequence[str]) -> Iterator[str]:
    """The text between special tokens (Hugging Face's trainer does not cut at them itself)."""
    splitter = special_splitter(list(special_tokens))
    for chunk in _text_chunks(text, "training"):
        yield from (splitter.split(chunk)[::2] if splitter else [chunk])


def train_hf_bpe(text: str | Iterable[str], vocab_size: int, special_tokens: Sequence[str] = ()):
    """Hugging Face's BPE trainer set up like `train_bpe`: GPT-2 pre-tokenizer, all 256 bytes, no minimum count.

    Its ties go the other way: among pairs with the same count, the pair with the smallest ids in its
    own numbering (special tokens, then the 256 byte characters by code point, then merges in order).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    hf = Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=0, special_tokens=list(special_tokens),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    hf.train_from_iterator(pieces_without_special_tokens(text, special_tokens), trainer=trainer)
    return hf


def hf_merges(hf) -> list[tuple[bytes, bytes]]:
    """The merges of a Hugging Face byte-level BPE tokenizer, as pairs of bytes in the order learned."""
    merges = json.loads(hf.to_str())["model"]["merges"]
    pairs = [m.split(" ", 1) if isinstance(m, str) else m for m in merges]  # older versions wrote "a b"
    return [(unspell(left), unspell(right)) for left, right in pairs]


def replay_merges(word_counts: dict[str, int], merges: Sequence[tuple[bytes, bytes]]) -> list[tuple[int, int]]:
    """Apply `merges` in order to a bag of words; for each: (count of that pair, highest count of any pair then).

    A trainer that always merges a most frequent pair gives count == highest at every step; two such
    trainers can only differ where several pairs share the highest count (a tie).
    """
    token_bytes = [bytes([b]) for b in range(256)]
    id_of = {b: i for i, b in enumerate(token_bytes)}
    counts = PairCounts(word_counts, token_bytes)
    steps = []
    for left, right in merges:
        best = counts.best()
        pair = (id_of[left], id_of[right])
        steps.append((counts.pairs.get(pair, 0), counts.pairs[best] if best else 0))
        if left + right not in id_of:
            id_of[left + right] = len(token_bytes)
            token_bytes.append(left + right)
        counts.merge(pair, id_of[left + right])
    return steps


# ----------------------------------------------------------------------------------------------------
# The story tokenizer that chapters 2-8 use, shipped in assets/.

def load_story_tokenizer() -> BPETokenizer:
    """The course's tokenizer for the story corpus: 1024 tokens, `<|endoftext|>` among them."""
    return BPETokenizer.load(asset_path(STORY_TOKENIZER))


def build_story_tokenizer() -> BPETokenizer:
    """Train the story tokenizer again, exactly as the shipped asset was made."""
    return train_bpe(corpus_text("train", STORY_TRAIN_BYTES), STORY_VOCAB_SIZE, [END_OF_TEXT])
