"""Tests of the chapter 4 pipeline (the course_lib.data_cleaning package) and its checkers."""

import itertools
import math
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib import data_cleaning as dc
from course_lib.checks import CheckFailed
from course_lib.checks import data_cleaning as ck
from course_lib.crawl import FOREIGN, crawl
from course_lib.data_cleaning import minhash

# ----------------------------------------------------------------------------------------------------
# The package: one module per stage, everything public re-exported, no dependency on the crawl.

# What the chapter notebook imports by name from the package.
NOTEBOOK_IMPORTS = ["BULLETS", "ELLIPSES", "STOP_WORDS", "BLOCK_TAGS", "BOILERPLATE_HINTS", "SKIP_TAGS", "VOID_TAGS",
                    "PII_PLACEHOLDERS", "EMPTY_SIGNATURE", "PRIME"]


def test_the_package_exports_its_public_names():
    assert set(NOTEBOOK_IMPORTS) <= set(dc.__all__)
    assert all(hasattr(dc, name) for name in dc.__all__)
    assert dc.BLOCKLIST is dc.toxicity.BLOCKLIST and dc.near_duplicates is dc.dedup.near_duplicates


def test_cleaning_does_not_import_the_crawl():
    # The crawl is the filters' test data: it may use their vocabulary, never the other way round.
    code = "import sys, course_lib.data_cleaning; sys.exit('course_lib.crawl' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# ----------------------------------------------------------------------------------------------------
# Decoding and extraction; bad input never raises and always gives a reason.


def test_decode_html_follows_bom_then_declaration_then_utf8_then_cp1252():
    page = '<meta charset="windows-1252"><p>caf\u00e9 \u2019</p>'
    assert dc.decode_html(page.encode("cp1252")) == (page, "cp1252")
    assert dc.decode_html(b"\xef\xbb\xbf" + page.encode("utf-8"))[0] == page
    assert dc.decode_html(page.encode("utf-16"))[0] == page
    plain = "<p>caf\u00e9 \u2019</p>"
    assert dc.decode_html(plain.encode("utf-8")) == (plain, "utf-8")
    assert dc.decode_html(plain.encode("cp1252")) == (plain, "cp1252")  # undeclared, not UTF-8
    assert dc.decode_html(b'<meta charset="no-such-charset"><p>ok</p>')[1] == "utf-8"
    assert dc.decode_html(b'<meta charset="iso-8859-1"><p>\x93q\x94</p>')[0].endswith("\u201cq\u201d</p>")


@pytest.mark.parametrize("raw, reason", [
    (b"", "empty"),
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8, "binary"),
    (b"%PDF-1.4\n" + bytes([0, 1, 2, 3, 200, 150]) * 300, "binary"),
    (b"<html><body><nav>Home</nav><script>x()</script></body></html>", "no_main_text"),
    (b"   \n\t ", "no_main_text"),
    (b"<p>" + b"word " * 300_000 + b"</p>", "too_large"),
])
def test_bad_pages_give_a_reason(raw, reason):
    assert dc.extract_text(raw).reasons == [reason]


def test_extract_text_accepts_str_and_rejects_other_types():
    assert dc.extract_text("<p>Hello there.</p>").text == "Hello there."
    with pytest.raises(TypeError, match="bytes or str"):
        dc.extract_text(42)


def test_a_page_cut_off_inside_a_tag_loses_only_the_half_tag():
    assert dc.extract_text(b"<p>Kept text.</p><script src='/a.js").text == "Kept text."
    assert dc.extract_text(b"<p>Kept text.</p><div class='ad'>Buy").text == "Kept text."


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=3000))
def test_any_bytes_are_handled(raw):
    result = dc.extract_text(raw)
    assert isinstance(result.text, str) and isinstance(result.reasons, list)
    assert result.text or result.reasons


@settings(max_examples=150, deadline=None)
@given(st.lists(st.sampled_from(["<p>", "</p>", "<div class='ad'>", "</div>", "<pre>", "</pre>", "<!--", "-->",
                                 "<script>", "</script>", "<br/>", "<", ">", "&amp;", "&#x", "text ", "\n", "<li>",
                                 "</ul>", "<![CDATA[", "]]>", "<?xml", "<!DOCTYPE", "'", '"', "<a href=", "é"]),
                max_size=60))
def test_malformed_html_never_crashes(parts):
    page = "".join(parts)
    text = dc.html_to_text(page)
    assert isinstance(text, str) and "\n\n" not in text
    assert isinstance(dc.extract_text(page.encode("utf-8")).reasons, list)


def test_boilerplate_hints_are_whole_tokens():
    assert dc.is_boilerplate("div", [("class", "cookie-banner")])
    assert dc.is_boilerplate("div", [("id", "top_menu")])
    assert dc.is_boilerplate("footer", [])
    assert not dc.is_boilerplate("div", [("class", "download thread")])
    assert not dc.is_boilerplate("div", [("class", None)])


# ----------------------------------------------------------------------------------------------------
# Language identification.


def test_language_identifier_on_the_crawl_sentences():
    ident = dc.LanguageIdentifier()
    for lang, sentences in FOREIGN.items():
        for sentence in sentences[:6]:
            assert ident.identify(sentence)[0] == lang, sentence
    english = "The children walked to the market with their grandmother and bought apples for the pie."
    assert ident.identify(english)[0] == "en"
    assert ident.identify("qzxv kwpl bbrt yyuq xjjf zzkq wqpv")[0] == "und"
    assert ident.identify("") == ("und", math.inf)
    assert dc.language_reasons("Das ist ein kleines Haus am Fluss.") == ["language:de"]
    assert dc.language_reasons(english) == []


def test_language_identifier_needs_samples():
    with pytest.raises(ValueError, match="at least one"):
        dc.LanguageIdentifier({})


# ----------------------------------------------------------------------------------------------------
# Gopher quality and repetition rules, C4 rules, toxicity.


def _words_text(n: int, word: str = "apple", stop: int = 2, line_words: int = 10) -> str:
    """n words: `stop` copies of "the" and the rest `word`, `line_words` per line."""
    words = ["the"] * stop + [word] * (n - stop)
    return "\n".join(" ".join(words[i:i + line_words]) for i in range(0, len(words), line_words))


def _lines_text(n_lines: int, special: int, make_special) -> str:
    """n_lines lines of 10 words (with stop words), `special` of them changed by make_special."""
    lines = ["the cat and the dog went to the old mill together"] * n_lines
    return "\n".join(make_special(line) if i < special else line for i, line in enumerate(lines))


# Texts that sit exactly on (or just past) the published thresholds, and the reasons they must give.
GOPHER_EDGE_CASES = {
    "50 words pass": (_words_text(50), []),
    "49 words fail": (_words_text(49), ["word_count"]),
    "one stop word is not enough": (_words_text(60, stop=1), ["stop_words"]),
    "stop words are case-sensitive": (_words_text(60, stop=0) + "\nTHE THE", ["stop_words"]),
    "mean word length 3 passes": (_words_text(60, word="abc", stop=0) + " the the", []),
    "mean word length below 3": (_words_text(60, word="ab"), ["mean_word_length"]),
    "mean word length above 10": (_words_text(60, word="extraordinarily"), ["mean_word_length"]),
    "hash ratio exactly 0.1 passes": (_words_text(60, line_words=6).replace("apple", "#apple", 6), []),
    "hash ratio above 0.1": (_words_text(60, line_words=6).replace("apple", "#apple", 7), ["hash_ratio"]),
    "ellipses per word above 0.1": (_words_text(60).replace("apple", "apple...", 7), ["ellipsis_ratio"]),
    "30% ellipsis lines pass": (_lines_text(10, 3, lambda line: line + "..."), []),
    "40% ellipsis lines fail": (_lines_text(10, 4, lambda line: line + "\u2026"), ["ellipsis_lines"]),
    "90% bullet lines pass": (_lines_text(10, 9, lambda line: "\u2022 " + line), []),
    "all bullet lines fail": (_lines_text(10, 10, lambda line: "- " + line), ["bullet_lines"]),
    "80% alphabetic words pass": (_words_text(48) + " " + " ".join(["42"] * 12), []),
    "under 80% alphabetic words": (_words_text(48) + " " + " ".join(["42"] * 13), ["alphabetic_words"]),
    "empty text": ("", ["word_count", "mean_word_length", "stop_words"]),
}


@pytest.mark.parametrize("label", list(GOPHER_EDGE_CASES))
def test_gopher_quality_edge_cases(label):
    text, expected = GOPHER_EDGE_CASES[label]
    assert dc.gopher_quality_reasons(text) == expected


def test_gopher_quality_more_rules():
    assert dc.gopher_quality_reasons(" ".join(["the"] * 100_001)) == ["word_count"]
    assert set(dc.gopher_quality_reasons("")) <= set(dc.GOPHER_QUALITY_RULES)
    caps = ("THE CAT AND THE DOG SAT BY THE FIRE AND TALKED ABOUT THE OLD DAYS WITH THEIR FRIENDS. " * 5)
    assert dc.gopher_quality_reasons(caps) == ["stop_words"]
    assert dc.gopher_quality_reasons(caps.lower()) == []


def test_gopher_repetition_rules():
    story = ("Once upon a time a small fox lived near a quiet river with her two brothers and an old owl. "
             "Every morning she ran to the meadow to look for berries, mushrooms and shiny stones. "
             "One day a storm came, and the river rose so high that the bridge was washed away. "
             "The fox and the owl built a raft from sticks and helped the rabbits cross the water.")
    assert dc.gopher_repetition_reasons(story) == []
    lines = "\n".join(["Buy cheap watches today!"] * 4 + ["A different line of text here.", "And one more line."])
    assert {"dup_line_fraction", "dup_line_chars"} <= set(dc.gopher_repetition_reasons(lines))
    paragraphs = "\n\n".join(["Same paragraph again and again."] * 3 + ["Another one.", "A third one."])
    assert {"dup_paragraph_fraction", "dup_paragraph_chars"} <= set(dc.gopher_repetition_reasons(paragraphs))
    assert "top_2gram" in dc.gopher_repetition_reasons("cheap watches " * 20 + story)
    assert dc.top_ngram_char_fraction("a b a b a b".split(), 2) == pytest.approx(6 / 6)
    assert dc.top_ngram_char_fraction("aa b c".split(), 2) == 0.0  # nothing repeats
    words = "x y z q x y z q r".split()
    assert dc.duplicate_ngram_char_fraction(words, 3) == pytest.approx(8 / 9)
    assert dc.duplicate_ngram_char_fraction(words, 5) == 0.0
    assert dc.duplicate_ngram_char_fraction(["a"], 5) == 0.0


def test_c4_rules():
    text = ("Short line\nThis line has enough words and ends well.\nPlease enable JavaScript in your browser now.\n"
            "We care about you, read our privacy policy for more.\nThis one ends with a question mark, right?\n"
            'She said it was "the best day ever."\nA line ending in a colon has words:')
    kept, reasons = dc.c4_clean(text)
    assert kept.split("\n") == ["This line has enough words and ends well.", "This one ends with a question mark, right?",
                                'She said it was "the best day ever."']
    assert reasons == []
    assert dc.c4_clean("Lorem ipsum dolor sit amet. " * 5)[1] == ["lorem_ipsum"]
    assert "curly_bracket" in dc.c4_clean("def f():\n    return {}\n" + kept)[1]
    assert dc.c4_clean("Only one sentence is here today.")[1] == ["fewer_than_3_sentences"]


def test_toxicity_blocklist_whole_words_any_case():
    assert dc.blocklist_hits("What a ZORBFLAX, you skrumbo!") == 2
    assert dc.blocklist_hits("Zorbflaxton is a town.") == 0  # no Scunthorpe problem with whole words
    assert dc.toxicity_reasons("a vexnard") == ["blocklist"]
    assert dc.toxicity_reasons("a vexnard", min_hits=2) == []
    assert dc.toxicity_reasons("clean text") == []


# ----------------------------------------------------------------------------------------------------
# PII.


@pytest.mark.parametrize("phone", ["2831823829", "(283)-182-3829", "(283) 182 3829", "283-182-3829", "283.182.3829",
                                   "+1 283 182 3829", "+1-283-182-3829"])
def test_every_phone_format_is_masked(phone):
    assert dc.mask_pii(f"Call {phone}, thanks.") == ("Call |||PHONE_NUMBER|||, thanks.", {"email": 0, "phone": 1, "ip": 0})


@pytest.mark.parametrize("text", ["Order 28318238291 shipped.", "PIN 283-182-382 only.", "Year 2024-2025.",
                                  "Version 999.1.2.3 is out.", "Pi is 3.14159.", "Score 1.2.3.", "id 12345"])
def test_things_that_are_not_pii(text):
    assert dc.mask_pii(text) == (text, {"email": 0, "phone": 0, "ip": 0})


def test_pii_emails_ips_and_counts():
    text = "Mail jo.ann+x@mail.example.org or a_b@c.example; servers 10.0.0.1 and 255.255.255.255."
    masked, counts = dc.mask_pii(text)
    assert masked == "Mail |||EMAIL_ADDRESS||| or |||EMAIL_ADDRESS|||; servers |||IP_ADDRESS||| and |||IP_ADDRESS|||."
    assert counts == {"email": 2, "phone": 0, "ip": 2}
    assert dc.find_pii(text) == [("email", "jo.ann+x@mail.example.org"), ("email", "a_b@c.example"),
                                 ("ip", "10.0.0.1"), ("ip", "255.255.255.255")]


def test_an_existing_placeholder_is_not_counted_twice():
    masked, counts = dc.mask_pii("Call 283-182-3829 or write to x@y.example.")
    assert counts == {"email": 1, "phone": 1, "ip": 0}
    assert dc.mask_pii(masked) == (masked, {"email": 0, "phone": 0, "ip": 0})
    assert dc.mask_pii("Already |||IP_ADDRESS||| and 1.2.3.4")[1] == {"email": 0, "phone": 0, "ip": 1}


# ----------------------------------------------------------------------------------------------------
# Exact and near deduplication.


def test_exact_duplicates_ignore_case_and_spacing():
    texts = ["Hello  World.", "hello world.", "Something else.", "HELLO\nWORLD."]
    assert dc.exact_duplicate_of(texts) == [None, 0, None, 0]


def test_shingles():
    assert len(dc.shingle_hashes("one two three four five six")) == 2
    assert np.array_equal(dc.shingle_hashes("One, two; three four five!"), dc.shingle_hashes("one two three four five"))
    assert len(dc.shingle_hashes("only three words")) == 1
    assert len(dc.shingle_hashes("... !!")) == 0
    texts = ["a b c d e f g h", "", "x y", "a b c d e f g h i j", "q " * 30]
    batched = dc.shingle_sets([dc.dedup_words(t) for t in texts])
    assert all(np.array_equal(x, dc.shingle_hashes(t)) for x, t in zip(batched, texts))
    assert dc.shingle_sets([]) == []


def test_minhash_signatures_match_one_at_a_time_and_the_modulus():
    rng = np.random.default_rng(0)
    a, b = dc.minhash_params(112, seed=5)
    sets = [np.unique(rng.integers(0, 2**32, size=int(rng.integers(1, 700)), dtype=np.uint64)).astype(np.uint32)
            for _ in range(60)] + [np.zeros(0, dtype=np.uint32)]
    one_by_one = np.stack([dc.minhash_signature(s, a, b) for s in sets])
    assert np.array_equal(dc.minhash_signatures(sets, a, b, chunk_rows=300), one_by_one)
    assert (one_by_one[-1] == dc.EMPTY_SIGNATURE).all() and (one_by_one[:-1] < dc.PRIME).all()
    x = rng.integers(0, 2**32, size=(50, 1), dtype=np.uint64)
    out, tmp = np.empty((50, 112), dtype=np.uint64), np.empty((50, 112), dtype=np.uint64)
    assert np.array_equal(minhash._hash_rows(x, a, b, out, tmp), (a * x + b) % np.uint64(dc.PRIME))
    assert np.array_equal(dc.minhash_params(8, seed=1)[0], dc.minhash_params(8, seed=1)[0])


def test_minhash_agreement_estimates_jaccard():
    base = [f"w{i}" for i in range(400)]
    a, b = dc.minhash_params(512, seed=2)
    for k in (0, 40, 100, 200):  # replace k words: Jaccard goes down
        other = base[:400 - k] + [f"v{i}" for i in range(k)]
        sa, sb = dc.shingle_hashes(" ".join(base)), dc.shingle_hashes(" ".join(other))
        estimate = (dc.minhash_signature(sa, a, b) == dc.minhash_signature(sb, a, b)).mean()
        assert abs(estimate - dc.jaccard(sa, sb)) < 0.07


def test_candidate_probability_matches_the_published_values():
    assert dc.candidate_probability(0.7) == pytest.approx(1 - (1 - 0.7**8) ** 14)
    assert [round(float(dc.candidate_probability(s)), 2) for s in (0.70, 0.75, 0.80)] == [0.56, 0.77, 0.92]
    assert dc.candidate_probability(0.0) == 0.0 and dc.candidate_probability(1.0) == 1.0
    assert np.allclose(dc.candidate_probability(np.array([0.5, 0.9]), 20, 5), 1 - (1 - np.array([0.5, 0.9]) ** 5) ** 20)


def _brute_force_candidates(signatures, bands, rows):
    pairs = set()
    for band in range(bands):
        buckets = {}
        for i, row in enumerate(signatures):
            if not (row == dc.EMPTY_SIGNATURE).all():
                buckets.setdefault(tuple(row[band * rows:(band + 1) * rows]), []).append(i)
        for members in buckets.values():
            pairs |= set(itertools.combinations(members, 2))
    return pairs


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 40), st.sampled_from([(1, 4), (2, 2), (4, 1), (3, 2)]), st.integers(0, 2**16))
def test_lsh_candidates_equal_brute_force(n_docs, shape, seed):
    bands, rows = shape
    rng = np.random.default_rng(seed)
    signatures = rng.integers(0, 3, size=(n_docs, bands * rows), dtype=np.uint32)
    if n_docs:
        signatures[rng.integers(0, n_docs)] = dc.EMPTY_SIGNATURE
    got = {tuple(p) for p in dc.lsh_candidates(signatures, bands, rows).tolist()}
    assert got == _brute_force_candidates(signatures, bands, rows)


def test_lsh_rejects_a_wrong_shape():
    with pytest.raises(ValueError, match="bands x rows"):
        dc.lsh_candidates(np.zeros((3, 10), dtype=np.uint32), 14, 8)


def test_union_find_clusters_are_transitive():
    assert dc.clusters_from_pairs(6, [(0, 1), (1, 2), (4, 5)]) == [[0, 1, 2], [4, 5]]
    assert dc.clusters_from_pairs(3, []) == []
    sets = dc.UnionFind(4)
    sets.union(3, 1)
    assert sets.find(3) == 1


def test_near_duplicates_end_to_end():
    base = " ".join(f"word{i}" for i in range(120))
    edited = base.replace("word60", "changed")
    texts = [base, "a completely different text " * 10, edited, edited + " tail", ""]
    found = dc.near_duplicates(texts, threshold=0.7)
    assert found.clusters == [[0, 2, 3]]
    assert found.duplicate_of == [None, None, 0, 0, None]
    assert all(s >= 0.7 for _, _, s in found.verified)


def test_jaccard():
    a, b = np.array([1, 2, 3], dtype=np.uint32), np.array([2, 3, 4, 5], dtype=np.uint32)
    assert dc.jaccard(a, b) == pytest.approx(2 / 5)
    assert dc.jaccard(a[:0], b[:0]) == 0.0


# ----------------------------------------------------------------------------------------------------
# Domain mixing.


def test_mix_domains_hits_the_weights_and_upsamples():
    domains = ["a"] * 80 + ["b"] * 20
    sizes = [100] * 100
    repeats = dc.mix_domains(domains, sizes, {"a": 0.5, "b": 0.5}, seed=0)
    used = {d: sum(r * s for r, s, dd in zip(repeats, sizes, domains) if dd == d) for d in "ab"}
    assert used["a"] == pytest.approx(5000, abs=100) and used["b"] == pytest.approx(5000, abs=100)
    assert repeats[80:].min() >= 2  # domain b is seen 2.5 times on average
    assert np.array_equal(repeats, dc.mix_domains(domains, sizes, {"a": 0.5, "b": 0.5}, seed=0))
    assert dc.mix_domains(domains, sizes, {"a": 1.0, "b": 0.0})[80:].sum() == 0


def test_mix_domains_bad_input():
    with pytest.raises(ValueError, match="sizes"):
        dc.mix_domains(["a"], [1, 2], {"a": 1})
    with pytest.raises(ValueError, match="weights"):
        dc.mix_domains(["a"], [1], {"a": -1})


# ----------------------------------------------------------------------------------------------------
# The whole pipeline against the labels.


@pytest.fixture(scope="module")
def cleaned():
    records = crawl(600, seed=0)
    return records, dc.clean_crawl([r.html for r in records])


def test_pipeline_keeps_good_pages_and_drops_defects(cleaned):
    records, docs = cleaned
    kept = [r for d, r in zip(docs, records) if d.kept]
    good = [r for r in records if r.is_good]
    assert sum(r.is_good for r in kept) / len(good) > 0.85
    assert sum(not r.is_good for r in kept) / len(kept) < 0.03
    for doc in docs:
        assert doc.kept == (doc.dropped_at is None) and (doc.kept or doc.reasons)
        assert doc.dropped_at in (None, *dc.STAGES)


def test_stage_scores(cleaned):
    records, docs = cleaned
    scores = {s.stage: s for s in dc.stage_scores(docs, records)}
    assert list(scores) == list(dc.STAGE_TARGETS)
    assert scores["extract"].reached == len(records)
    assert scores["language"].precision == 1.0 and scores["language"].recall > 0.8
    assert scores["exact_dedup"].recall == 1.0 and scores["near_dedup"].recall > 0.8
    assert sum(s.removed for s in scores.values()) == sum(not d.kept for d in docs)
    table = dc.where_caught(docs, records)
    assert sum(sum(c.values()) for c in table.values()) == len(records)
    pii = dc.pii_scores(docs, records)
    assert all(found_true <= min(planted, found) for planted, found, found_true in pii.values())
    assert pii["email"][0] == pii["email"][2] > 0  # every planted email is found


def test_c4_alone_catches_short_pages_and_code_but_not_sentence_spam():
    # Why C4 scores badly in the pipeline: its page rules catch what Gopher catches first, plus code.
    sentences = "The fox ran to the park. She found a red ball there. Then she went home for dinner."
    assert dc.c4_clean("Buy now\nCheap pills")[1] == ["fewer_than_3_sentences"]
    assert dc.c4_clean(sentences + "\nd = {}")[1] == ["curly_bracket"]
    seo = "Cheap flights are the best cheap flights you can buy. " * 5
    assert dc.c4_clean(seo)[1] == []  # spam in full sentences passes every line rule


# ----------------------------------------------------------------------------------------------------
# Judging the cleaning by training on it: chapter 3's tiny GPT, same budget and seed for every corpus.

TEXTS = ["The fox ran to the park. She found a red ball.", "Tom had a blue kite. He flew it on the hill."] * 20


@pytest.fixture(scope="module")
def story_tokenizer():
    from course_lib.tokenizer import load_story_tokenizer

    return load_story_tokenizer()


def test_train_small_gpt_is_chapter_3s_model_and_budget(story_tokenizer):
    import torch

    model, history = dc.train_small_gpt(TEXTS, story_tokenizer, max_steps=3, seed=0)
    config = model.config
    assert (config.block_size, config.n_layer, config.n_head, config.n_embd) == (64, 2, 2, 64)
    assert history.tokens_seen == 3 * dc.SMALL_TRAINING["batch_size"] * dc.SMALL_GPT["block_size"]
    again, _ = dc.train_small_gpt(TEXTS, story_tokenizer, max_steps=3, seed=0)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), again.parameters()))  # same seed, same model
    assert not model.training


def test_compare_training_data_scores_every_corpus_on_every_set(story_tokenizer):
    table = dc.compare_training_data({"a": TEXTS, "b": TEXTS[:10]}, {"x": TEXTS[:1], "y": ["A cat sat on a mat."]},
                                     story_tokenizer, max_steps=2)
    assert list(table) == ["a", "b"] and all(list(row) == ["x", "y"] for row in table.values())
    assert all(0 < v < 20 for row in table.values() for v in row.values())


# ----------------------------------------------------------------------------------------------------
# The learned quality filter (fastText-style hashed n-grams, logistic regression).


def test_hashed_ngrams_are_stable_and_in_range():
    from course_lib.data_cleaning import quality_classifier as qc

    buckets = qc.hashed_ngrams("The fox ran. The fox", n_buckets=1000)
    assert len(buckets) == 5 + 4 and all(0 <= b < 1000 for b in buckets)  # 5 words, 4 word pairs
    assert buckets == qc.hashed_ngrams("the FOX ran the fox", n_buckets=1000)  # case and punctuation ignored
    ids, offsets = qc.bag_of_ngrams(["a b", "", "c"], n_buckets=1000)
    assert offsets.tolist() == [0, 3, 4] and len(ids) == 5  # an empty text still gets one bucket


def test_quality_classifier_learns_a_separable_toy_task():
    from course_lib.data_cleaning import quality_classifier as qc

    good = ["the fox ran to the park and found a red ball", "she read a book with her friend by the lake"]
    bad = ["buy cheap pills now best price", "cheap flights buy now click here"]
    model = qc.train_quality_classifier(good + bad, [True, True, False, False], n_buckets=4096, steps=60)
    p = model.predict_good(good + bad + ["the cat sat by the park", "buy cheap now"])
    assert (p[:2] > 0.9).all() and (p[2:4] < 0.1).all() and p[4] > 0.5 > p[5]
    with pytest.raises(ValueError):
        qc.train_quality_classifier(["a"], [True, False])


# ----------------------------------------------------------------------------------------------------
# The checkers pass the reference and fail wrong answers with a helpful message.


def test_checkers_accept_the_reference(capsys):
    ck.check_html_to_text(dc.html_to_text)
    ck.check_gopher_quality(dc.gopher_quality_reasons)
    ck.check_mask_pii(dc.mask_pii)
    ck.check_minhash_signature(dc.minhash_signature)
    ck.check_lsh_candidate_pairs(lambda s, b, r: {tuple(p) for p in dc.lsh_candidates(s, b, r).tolist()})
    out = capsys.readouterr().out
    assert "html_to_text: basics: 6/6 cases passed" in out and "lsh_candidate_pairs: 6/6 cases passed" in out


def _naive_html_to_text(page):  # forgets to skip boilerplate classes
    import re
    return "\n".join(line for line in re.sub(r"<[^>]+>", "\n", page).split("\n") if line.strip())


WRONG_ANSWERS = [
    (ck.check_html_to_text, lambda page: dc.html_to_text(page).replace("\n", " "), "html_to_text: basics"),
    (ck.check_html_to_text, _naive_html_to_text, "html_to_text"),
    (ck.check_gopher_quality, lambda text: [r for r in dc.gopher_quality_reasons(text) if r != "stop_words"],
     "gopher_quality_reasons"),
    (ck.check_gopher_quality, lambda text: dc.gopher_quality_reasons(text.lower()), "case-sensitive"),
    (ck.check_mask_pii, lambda text: (text, {"email": 0, "phone": 0, "ip": 0}), "mask_pii"),
    (ck.check_mask_pii, lambda text: dc.mask_pii(text)[0], "mask_pii"),
    (ck.check_minhash_signature, lambda x, a, b: dc.minhash_signature(x, a, b) + 1, "minhash_signature"),
    (ck.check_minhash_signature, lambda x, a, b: ((a * x.astype(np.uint64)[:, None] + b) % np.uint64(dc.PRIME)).max(axis=0)
     if len(x) else np.full(len(a), dc.EMPTY_SIGNATURE, dtype=np.uint32), "minhash_signature"),
    (ck.check_lsh_candidate_pairs, lambda s, bands, rows: set(), "lsh_candidate_pairs"),
    (ck.check_lsh_candidate_pairs, lambda s, bands, rows: {(i, j) for i in range(len(s)) for j in range(i + 1, len(s))
                                                           if (s[i, :rows] == s[j, :rows]).all()}, "lsh_candidate_pairs"),
]


@pytest.mark.parametrize("checker, wrong, where", WRONG_ANSWERS)
def test_checkers_reject_wrong_answers_helpfully(checker, wrong, where):
    with pytest.raises(CheckFailed) as failure:
        checker(wrong)
    message = str(failure.value)
    assert where in message and "expected" in message and "got" in message and "hint" in message


def test_checker_lets_not_implemented_through(check_a_stub):
    check_a_stub(ck.check_mask_pii, "mask_pii")
