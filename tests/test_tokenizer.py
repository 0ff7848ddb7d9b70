"""Tests of course_lib.tokenizer (chapter 1) and its checkers."""

from __future__ import annotations

import json
import re
import warnings
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course_lib import tokenizer as bpe
from course_lib.checks import CheckFailed
from course_lib.checks import tokenization as check
from course_lib.lm import END_OF_TEXT
from course_lib.stories import corpus_text
from course_lib.tokenizer import BPETokenizer, count_pairs, merge, pretokenize, train_bpe
from course_lib.widgets import token_playground, tokens_html

EOT = END_OF_TEXT
SAMPLES = ["Le petit renard a trouvé sa balle rouge.", "Der kleine Fuchs fand seinen roten Ball.",
           "Маленькая лиса нашла свой красный мяч.", "小狐狸找到了它的红球。", "子ギツネは赤いボールを見つけた。",
           "छोटी लोमड़ी को अपनी लाल गेंद मिल गई।", "وجد الثعلب الصغير كرته الحمراء.", "작은 여우가 빨간 공을 찾았다.",
           "🦊🎈👨‍👩‍👧 e\u0301 n\u0303 \x00\x1b\t\r\n  x = 3.14159;"]


def solution_train(text: str, vocab_size: int) -> dict[tuple[int, int], int]:
    """The notebook's training loop: recount every pair after each merge (slow, simple)."""
    word_counts = Counter(pretokenize(text))
    words = {word: list(word.encode("utf-8")) for word in word_counts}
    vocab = {i: bytes([i]) for i in range(256)}
    merges: dict[tuple[int, int], int] = {}
    for new_id in range(256, vocab_size):
        counts: dict[tuple[int, int], int] = {}
        for word, ids in words.items():
            for pair, c in count_pairs(ids).items():
                counts[pair] = counts.get(pair, 0) + c * word_counts[word]
        if not counts:
            break
        best = max(counts, key=lambda p: (counts[p], vocab[p[0]], vocab[p[1]]))
        merges[best] = new_id
        vocab[new_id] = vocab[best[0]] + vocab[best[1]]
        words = {word: merge(ids, best, new_id) for word, ids in words.items()}
    return merges


def solution_encode(text: str, merges: dict[tuple[int, int], int]) -> list[int]:
    ids = []
    for pretoken in pretokenize(text):
        tokens = list(pretoken.encode("utf-8"))
        while len(tokens) >= 2:
            pair = min(count_pairs(tokens), key=lambda p: merges.get(p, float("inf")))
            if pair not in merges:
                break
            tokens = merge(tokens, pair, merges[pair])
        ids.extend(tokens)
    return ids


def solution_decode(ids: list[int], vocab: dict[int, bytes]) -> str:
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")


@pytest.fixture(scope="module")
def stories_text() -> str:
    return corpus_text("train", 200_000)


@pytest.fixture(scope="module")
def tok(stories_text) -> BPETokenizer:
    """Trained on stories plus sentences in several scripts, so that merges span multi-byte characters."""
    return train_bpe([stories_text] + SAMPLES * 30, 700, [EOT, "<|pad|>"])


@pytest.fixture(scope="module")
def hf(tok):
    return tok.to_hf()


# ----------------------------------------------------------------------------------------------------
# Building blocks and training

def test_count_pairs_and_merge():
    assert count_pairs([1, 2, 3, 1, 2]) == {(1, 2): 2, (2, 3): 1, (3, 1): 1}
    assert count_pairs([5, 5, 5]) == {(5, 5): 2}
    assert count_pairs([]) == {} and count_pairs([4]) == {}
    assert merge([5, 5, 5], (5, 5), 9) == [9, 5]
    assert merge([5, 5, 5, 5], (5, 5), 9) == [9, 9]
    assert merge([1, 2, 3, 1, 2], (1, 2), 256) == [256, 3, 256]


def test_pretokenize_is_gpt2():
    assert pretokenize("Hi, you're 2 cool!!  ok\n") == ["Hi", ",", " you", "'re", " 2", " cool", "!!", " ", " ok", "\n"]


def test_train_small_example_by_hand():
    # aa: 4 (overlaps count); then (aa, a) and (a, b) both occur twice: b"aa" > b"a" wins the tie
    tok = train_bpe("aaabdaaabac", 259)
    assert tok.merges == [(b"a", b"a"), (b"aa", b"a"), (b"aaa", b"b")]
    assert tok.encode("aaabdaaabac") == [258, 100, 258, 97, 99]


def test_ties_go_to_the_greatest_pair_of_byte_strings():
    # all three pairs occur once: (b"c", b"d") > (b"a", b"b") > (b" ", b"c")
    assert train_bpe("ab cd", 257).merges == [(b"c", b"d")]
    # (b"a", b"bc") vs (b"a", b"b") at equal count: the longer byte string is greater
    assert train_bpe("ab cd", 259).merges == [(b"c", b"d"), (b"a", b"b"), (b" ", b"cd")]


def test_incremental_trainer_equals_simple_loop(stories_text):
    text = stories_text[:20_000] + " ".join(SAMPLES)
    assert train_bpe(text, 400).merge_ids == solution_train(text, 400)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ab c\nd", max_size=80), st.integers(256, 300))
def test_incremental_trainer_equals_simple_loop_on_random_text(text, vocab_size):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert train_bpe(text, vocab_size).merge_ids == solution_train(text, vocab_size)


def test_training_on_chunks_equals_training_on_text(stories_text):
    text = stories_text[:50_000]
    documents = [doc + EOT for doc in text.split(EOT)]
    assert train_bpe(documents, 400, [EOT]).merges == train_bpe(text, 400, [EOT]).merges


def test_training_stops_early_with_a_warning():
    with pytest.warns(UserWarning, match="stopped at 258 tokens"):
        tok = train_bpe("hi hi", 300)
    assert tok.merges == [(b"h", b"i"), (b" ", b"hi")] and len(tok) == 258


def test_merges_are_greedy(stories_text):
    """Every merge had the highest count at its step (what replay_merges checks for Hugging Face too)."""
    counts = bpe.count_pretokens(stories_text[:50_000], [EOT])
    tok = train_bpe(stories_text[:50_000], 500, [EOT])
    assert all(count == best for count, best in bpe.replay_merges(counts, tok.merges))


# ----------------------------------------------------------------------------------------------------
# Encoding and decoding

@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_round_trip_any_unicode(tok, text):
    assert tok.decode(tok.encode(text)) == text


@pytest.mark.parametrize("text", ["", " ", "\n\n", "é", "e\u0301", "🦊", "👨‍👩‍👧‍👦", "\x00\x01\x7f\x1b[0m", "\u200b\ufeff",
                                  "\U0010FFFF", "\U000323AF", *SAMPLES])
def test_round_trip_examples(tok, text):
    assert tok.decode(tok.encode(text)) == text


def test_encode_uses_merges(tok, stories_text):
    story = stories_text.split(EOT)[0]
    assert len(tok.encode(story)) < len(story.encode("utf-8")) / 3


def test_special_tokens(tok):
    eot, pad = tok.special_tokens[EOT], tok.special_tokens["<|pad|>"]
    assert (eot, pad) == (len(tok) - 2, len(tok) - 1)
    assert tok.encode(EOT) == [eot]
    ids = tok.encode(f"The end.{EOT}<|pad|>{EOT}Once")
    start = ids.index(eot)
    assert ids[start:start + 3] == [eot, pad, eot] and ids.count(eot) == 2
    assert ids[:start] == tok.encode("The end.") and ids[start + 3:] == tok.encode("Once")
    assert tok.decode(ids) == f"The end.{EOT}<|pad|>{EOT}Once"
    # as plain text the same string never gives the special id
    assert eot not in tok.encode_ordinary(EOT) and tok.decode(tok.encode_ordinary(EOT)) == EOT
    # no merge was learned from the special token's characters
    assert all(EOT.encode() not in left + right for left, right in tok.merges)


def test_special_tokens_overlapping_longest_wins():
    tok = BPETokenizer([], ["<a>", "<a><b>"])
    assert tok.encode("x<a><b><a>") == [ord("x"), tok.special_tokens["<a><b>"], tok.special_tokens["<a>"]]


def test_special_tokens_are_excluded_from_training():
    text = f"ab{EOT}ab{EOT}ab{EOT}"
    assert bpe.count_pretokens(text, [EOT]) == {"ab": 3}
    assert train_bpe(text, 258, [EOT]).merges == [(b"a", b"b")]


def test_decode_invalid_utf8_gives_replacement_characters(tok):
    assert tok.decode([0xFF]) == "\ufffd"
    assert tok.decode(list("€".encode())[:2] + [ord("a")]) == "\ufffda"
    assert tok.decode([]) == ""


def test_decode_accepts_numpy_and_torch_ids(tok):
    import numpy as np
    import torch

    ids = tok.encode("Once upon a time")
    assert tok.decode(np.array(ids)) == tok.decode(torch.tensor(ids)) == "Once upon a time"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=30), st.sampled_from([EOT, "\n", " \n", "\n\n", "<|pad|>", "<|"])), max_size=12),
       st.data())
def test_encode_iterable_equals_encode(tok, parts, data):
    text = "".join(parts)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(text)), max_size=6)))
    chunks = [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)])]
    assert list(tok.encode_iterable(iter(chunks))) == tok.encode(text)


def test_encode_iterable_streams_a_file(tok, stories_text, tmp_path):
    path = tmp_path / "stories.txt"
    path.write_text(stories_text[:30_000], encoding="utf-8")
    with open(path, encoding="utf-8") as lines:
        assert list(tok.encode_iterable(lines)) == tok.encode(stories_text[:30_000])


def test_encode_cache_is_bounded(tok, monkeypatch):
    monkeypatch.setattr(bpe, "CACHE_SIZE", 10)
    fresh = BPETokenizer(tok.merges, list(tok.special_tokens))
    text = " ".join(f"w{i}" for i in range(100))
    assert fresh.decode(fresh.encode(text)) == text and len(fresh._cache) <= 10


def test_duplicate_tokens_reuse_their_id():
    # b"abc" is made twice, as b"ab" + b"c" and as b"a" + b"bc": one id, two merges
    tok = BPETokenizer([(b"a", b"b"), (b"ab", b"c"), (b"b", b"c"), (b"a", b"bc"), (b"abc", b"d")])
    assert len(tok) == 256 + 4 and tok.merge_ids[(97, 258)] == 257
    assert tok.decode(tok.encode("abcd bcd")) == "abcd bcd"


# ----------------------------------------------------------------------------------------------------
# Bad input

def test_vocab_size_too_small_says_the_minimum():
    with pytest.raises(ValueError, match="at least 258"):
        train_bpe("hello", 257, [EOT, "<|pad|>"])
    with pytest.raises(ValueError, match="at least 256"):
        train_bpe("hello", 100)


@pytest.mark.parametrize("bad", [b"bytes", 42, None, ["ok", 3]])
def test_train_on_non_text_is_a_type_error(bad):
    with pytest.raises(TypeError, match="str"):
        train_bpe(bad, 300)


@pytest.mark.parametrize("bad", [b"bytes", 42, None, ["a list"]])
def test_encode_non_string_is_a_type_error(tok, bad):
    with pytest.raises(TypeError, match="str"):
        tok.encode(bad)
    with pytest.raises(TypeError, match="str"):
        tok.encode_ordinary(bad)


def test_decode_unknown_id_names_it(tok):
    with pytest.raises(ValueError, match=f"unknown token id {len(tok)}"):
        tok.decode([1, 2, len(tok)])
    with pytest.raises(ValueError, match="unknown token id -1"):
        tok.decode([-1])
    with pytest.raises(TypeError, match="integers"):
        tok.decode(["a"])


def test_bad_special_tokens():
    with pytest.raises(TypeError, match="list of strings"):
        train_bpe("x", 300, EOT)
    with pytest.raises(ValueError, match="distinct"):
        train_bpe("x", 300, [EOT, EOT])
    with pytest.raises(ValueError, match="whitespace"):
        train_bpe("x", 300, ["<end of text>"])
    with pytest.raises(TypeError, match="non-empty"):
        train_bpe("x", 300, [""])


def test_bad_merges_are_refused():
    with pytest.raises(ValueError, match="no earlier merge"):
        BPETokenizer([(b"ab", b"c")])
    with pytest.raises(ValueError, match="repeats"):
        BPETokenizer([(b"a", b"b"), (b"a", b"b")])


# ----------------------------------------------------------------------------------------------------
# Saving, loading, Hugging Face

def test_save_load_round_trip(tok, tmp_path):
    path = tmp_path / "tok.json"
    tok.save(path)
    text = path.read_text(encoding="utf-8")
    assert '[" t", "he"]' in text or '" the"' in text  # readable: ASCII shows as itself
    loaded = BPETokenizer.load(path)
    assert loaded.merges == tok.merges and loaded.vocab == tok.vocab and loaded.special_tokens == tok.special_tokens
    sample = "Once upon a time 🦊 " + EOT + SAMPLES[3]
    assert loaded.encode(sample) == tok.encode(sample)


def test_load_refuses_other_files(tmp_path):
    (tmp_path / "a.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps({"merges": []}), encoding="utf-8")
    for name in ["a.json", "b.json"]:
        with pytest.raises(ValueError, match="not a"):
            BPETokenizer.load(tmp_path / name)


def test_explicit_pattern_splits_like_gpt2_pattern():
    import regex

    # Oniguruma writes a code point \x{1F98A}, the regex package \U0001F98A
    explicit = regex.compile(regex.sub(r"\\x\{([0-9A-F]+)\}", lambda m: f"\\U{int(m.group(1), 16):08X}", bpe.explicit_pattern()))
    text = "".join(SAMPLES) + " \u2028\u3000x\u00a0\u1680 'll 'S \U000323AF\u0d4f \U0001e5d0 \u0f3a"
    assert explicit.findall(text) == pretokenize(text)


def test_to_hf_same_ids_on_the_story_corpus(stories_text):
    tok = bpe.load_story_tokenizer()
    text = stories_text[:100_000]
    assert tok.to_hf().encode(text).ids == tok.encode(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.text(), st.sampled_from([EOT, "<|pad|>", " the", "été", "小狐狸"])), max_size=6))
def test_to_hf_same_ids_on_any_text(tok, hf, parts):
    text = "".join(parts)
    assert hf.encode(text).ids == tok.encode(text)


@pytest.mark.parametrize("text", ["\U000323AF", "a\u0558a", "x \u0cdc y", *SAMPLES])
def test_to_hf_same_ids_on_characters_newer_than_huggingface_unicode(tok, hf, text):
    assert hf.encode(text).ids == tok.encode(text)


def test_to_hf_with_duplicate_tokens():
    tok = BPETokenizer([(b"a", b"b"), (b"ab", b"c"), (b"b", b"c"), (b"a", b"bc"), (b"abc", b"d"), (b"bc", b"d")])
    hf = tok.to_hf()
    for text in ["abcd", "abcbcd", "aabcd bcd", "abcabcd", "bcbcd"]:
        assert hf.encode(text).ids == tok.encode(text), text


def test_hf_trainer_merges_are_greedy_too(stories_text):
    text = stories_text[:50_000]
    hf_merges = bpe.hf_merges(bpe.train_hf_bpe(text, 500, [EOT]))
    assert len(hf_merges) == 500 - 257
    counts = bpe.count_pretokens(text, [EOT])
    assert all(count == best for count, best in bpe.replay_merges(counts, hf_merges))


# ----------------------------------------------------------------------------------------------------
# The story tokenizer asset

def test_story_tokenizer_asset():
    tok = bpe.load_story_tokenizer()
    assert tok.special_tokens == {EOT: len(tok) - 1}
    assert len(tok) <= bpe.STORY_VOCAB_SIZE
    story = corpus_text("val", 2_000).split(EOT)[0]
    assert tok.decode(tok.encode(story)) == story and len(tok.encode(story)) < len(story) / 3


def test_story_tokenizer_asset_is_up_to_date():
    """The asset is what `python -m course_lib build-assets story_tokenizer` makes from today's story corpus."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rebuilt = bpe.build_story_tokenizer()
    assert rebuilt.merges == bpe.load_story_tokenizer().merges, \
        "assets/story_tokenizer.json is stale: run `python -m course_lib build-assets story_tokenizer`"


# ----------------------------------------------------------------------------------------------------
# The checkers: pass the solutions, fail loudly and helpfully on wrong answers

def test_checkers_pass_the_solutions(capsys):
    check.count_pairs(count_pairs)
    check.merge(merge)
    check.train(solution_train)
    check.encode(solution_encode)
    check.decode(solution_decode)
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["count_pairs: 6/6 cases passed", "merge: 8/8 cases passed", "train: 8/8 cases passed",
                     "encode: 8/8 cases passed", "decode: 5/5 cases passed"]


def test_checker_cases_have_no_ties_that_the_simple_encode_breaks_differently():
    """Each merges dict the checkers use is numbered 256, 257, ... (so encode by lowest new id is right)."""
    for text, size in [(check.ENCODE_TRAINING_TEXT, 320), ("aaaaaaaaaaaaaaaa", 259)]:
        merges = check.merges_for(text, size)
        assert list(merges.values()) == list(range(256, 256 + len(merges)))


def _fails(checker, fn, *fragments):
    with pytest.raises(CheckFailed) as failure:
        checker(fn)
    message = str(failure.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_checkers_fail_helpfully():
    # count_pairs without overlaps
    def no_overlap(ids):
        counts, i = {}, 0
        while i + 1 < len(ids):
            counts[(ids[i], ids[i + 1])] = counts.get((ids[i], ids[i + 1]), 0) + 1
            i += 2 if ids[i] == ids[i + 1] else 1
        return counts
    _fails(check.count_pairs, no_overlap, "case 'overlapping run'", "expected: {(5, 5): 3}", "got:      {(5, 5): 2}", "hint")

    # merge that overlaps: [5, 5, 5] -> [9, 9]
    _fails(check.merge, lambda ids, pair, new_id: [new_id if (a, b) == pair else a for a, b in zip(ids, ids[1:])] + ids[-1:],
           "case 'one occurrence'", "expected: [256, 3]")

    # training that breaks ties the other way (smallest pair)
    def smallest_tie(text, vocab_size):
        merges, words = {}, [list(w.encode()) for w in pretokenize(text)]
        for new_id in range(256, vocab_size):
            counts = Counter(p for w in words for p in zip(w, w[1:]))
            if not counts:
                break
            best = min(counts, key=lambda p: (-counts[p], p))
            merges[best] = new_id
            words = [merge(w, best, new_id) for w in words]
        return merges
    _fails(check.train, smallest_tie, "case 'classic example'", "merge number 2 differs", "b'aa' + b'a'", "greatest")

    # training without pre-tokenization (merges across words)
    def no_pretokens(text, vocab_size):
        ids, merges = list(text.encode()), {}
        for new_id in range(256, vocab_size):
            counts = count_pairs(ids)
            if not counts:
                break
            best = max(counts, key=lambda p: (counts[p], bytes([p[0]]), bytes([p[1]])))
            merges[best] = new_id
            ids = merge(ids, best, new_id)
        return merges
    _fails(check.train, no_pretokens, "failed", "pre-tokens")

    # encode without pre-tokenization, and encode that raises
    def encode_all_at_once(text, merges):
        return solution_encode(text.replace(" ", ""), merges)
    _fails(check.encode, encode_all_at_once, "case 'seen text'", "expected: [")
    _fails(check.encode, lambda text, merges: 1 / 0, "case 'empty text'", "ZeroDivisionError")

    # decode token by token (a character cut across tokens becomes two U+FFFD)
    def decode_each(ids, vocab):
        return "".join(vocab[i].decode("utf-8", errors="replace") for i in ids)
    _fails(check.decode, decode_each, "case 'multi-byte characters'", "errors='replace'")
    _fails(check.decode, lambda ids, vocab: b"".join(vocab[i] for i in ids).decode("utf-8"), "UnicodeDecodeError")


def test_checker_not_implemented_passes_through(check_a_stub):
    check_a_stub(check.merge, "merge")


@pytest.mark.parametrize("text, index", [("a\ud800b", 1), ("\udcff", 0), (f"The end.{EOT}Once \udfff", 26),
                                         ("fine\nfine\n\n   x\ud83e", 15)])
def test_lone_surrogates_are_refused_with_their_position(tok, text, index):
    code = f"U+{ord(text[index]):04X}"
    encoders = {"encode": tok.encode, "encode_ordinary": tok.encode_ordinary,
                "encode_iterable": lambda t: list(tok.encode_iterable(iter([t[:5], t[5:9], t[9:]])))}
    for name, encode in encoders.items():
        with pytest.raises(ValueError, match=re.escape(f"lone surrogate {code} at index {index}:")) as raised:
            encode(text)
        assert not isinstance(raised.value, UnicodeError), name  # our message, not the codec's


def test_surrogate_pair_and_training_text_are_refused_too(tok):
    with pytest.raises(ValueError, match="U\\+D83E at index 1"):  # Python does not join a UTF-16 pair in a str
        tok.encode("a\ud83e\udd8a")
    with pytest.raises(ValueError, match="pre-token '\\\\udcff' has a lone surrogate U\\+DCFF"):
        train_bpe(["fine", "bad\udcff"], 300)


def test_tokens_html_shows_every_token_and_escapes(tok):
    text = "<b>fox</b> & 🦊"
    page = tokens_html(tok, text)
    ids = tok.encode(text)
    assert all(f">{i}</span>" in page for i in ids) and "<b>fox" not in page and "&lt;" in page
    assert f"{len(text.encode('utf-8'))} bytes, {len(ids)} tokens" in page


def test_token_playground_has_a_static_fallback(tok):
    bundle = token_playground(tok, "Once upon a fox")._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert all(f">{i}</span>" in bundle["text/html"] for i in tok.encode("Once upon a fox"))
