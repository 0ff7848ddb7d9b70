"""Tests of course_lib.evaluation: likelihoods, pooled metrics, sliding windows, multiple choice, aggregation,
contamination, the grammar judge, and the chapter-3 checkers (with deliberately wrong answers too)."""

import math
import re

import pytest
import torch

from course_lib import evaluation as ev
from course_lib import lm, stories
from course_lib.checks import CheckFailed
from course_lib.checks import evaluation as check
from course_lib.model import GPT, GPTConfig
from course_lib.ngram import NGramModel
from course_lib.tasks import Item
from course_lib.tokenizer import load_story_tokenizer
from course_lib.utils import seed_everything

LN2 = math.log(2)


class Uniform(torch.nn.Module):
    """A model that gives every token the same probability 1/V."""

    def __init__(self, vocab_size: int):
        super().__init__()
        self.vocab_size = vocab_size

    def forward(self, idx):
        return torch.zeros(*idx.shape, self.vocab_size)


class FixedNext(torch.nn.Module):
    """A model with the same next-token distribution everywhere: log p = `log_probs`."""

    def __init__(self, log_probs: torch.Tensor):
        super().__init__()
        self.vocab_size = log_probs.numel()
        self.register_buffer("log_probs", log_probs)

    def forward(self, idx):
        return self.log_probs.expand(*idx.shape, -1)


@pytest.fixture(scope="module")
def byte_tok():
    return ev.byte_tokenizer()


@pytest.fixture(scope="module")
def bpe():
    return load_story_tokenizer()


@pytest.fixture(scope="module")
def tiny_gpt(byte_tok):
    seed_everything(0)
    return GPT(GPTConfig(vocab_size=len(byte_tok), block_size=16, n_layer=2, n_head=2, n_embd=16)).eval()


# ----------------------------------------------------------------------------------------------------
# Pooled metrics, by hand


def test_perplexity_is_pooled_not_averaged():
    docs = [[-1.0, -1.0], [-0.1] * 8]
    pooled = math.exp((2.0 + 0.8) / 10)
    assert ev.perplexity(docs) == pytest.approx(pooled, rel=1e-12)
    mean_of_ppl = (math.exp(1.0) + math.exp(0.1)) / 2
    assert abs(ev.perplexity(docs) - mean_of_ppl) > 0.1
    assert ev.perplexity([[math.log(1 / 7)] * 3]) == pytest.approx(7.0)  # uniform over 7: 7 choices
    assert ev.perplexity([torch.tensor([-0.5, -1.5])]) == pytest.approx(math.exp(1.0))
    assert ev.perplexity([[-1000.0]]) == math.inf and ev.perplexity([[-math.inf, -1.0]]) == math.inf  # no OverflowError


def test_bits_per_byte_and_byte_perplexity_by_hand():
    docs, texts = [[-2.0, -1.0], [-0.5] * 6], ["café", "plain text"]  # é is two bytes: 5 + 10 bytes
    assert ev.bits_per_byte(docs, texts) == pytest.approx(6.0 / 15 / LN2, rel=1e-12)
    assert ev.byte_perplexity(docs, texts) == pytest.approx(math.exp(6.0 / 15), rel=1e-12)
    assert ev.bits_per_byte(docs, texts) != pytest.approx((3.0 / 5 + 3.0 / 10) / 2 / LN2)  # not a mean of ratios
    assert ev.bits_per_byte([[-8 * LN2]], ["🙂🙂"]) == pytest.approx(1.0)  # 8 bits over two 4-byte emoji


def test_metric_errors_are_clear():
    with pytest.raises(ValueError, match="empty"):
        ev.perplexity([])
    with pytest.raises(ValueError, match="no tokens"):
        ev.perplexity([[-1.0], []])
    with pytest.raises(ValueError, match="negative log-likelihoods"):
        ev.perplexity([[0.7, 1.2]])
    with pytest.raises(TypeError, match="one sequence of per-token"):
        ev.perplexity(torch.tensor([-1.0, -2.0]))
    with pytest.raises(ValueError, match="2 documents .* but 1 texts"):
        ev.bits_per_byte([[-1.0], [-1.0]], ["a"])
    with pytest.raises(ValueError, match="no bytes"):
        ev.bits_per_byte([[-1.0]], [""])
    with pytest.raises(TypeError, match="one string"):
        ev.bits_per_byte([[-1.0]], "a")


def test_token_log_likelihoods_match_softmax_and_stay_finite():
    generator = torch.Generator().manual_seed(0)
    logits, targets = torch.randn(2, 5, 7, generator=generator), torch.randint(7, (2, 5), generator=generator)
    expected = torch.softmax(logits, -1).gather(-1, targets.unsqueeze(-1)).squeeze(-1).log()
    torch.testing.assert_close(lm.token_log_likelihoods(logits, targets), expected)
    assert torch.isfinite(lm.token_log_likelihoods(logits * 1e4, targets)).all()


def test_uniform_model_costs_log_v_per_token(byte_tok):
    texts = ["Hello there.", "é"]
    result = ev.evaluate(Uniform(len(byte_tok)), byte_tok, texts)
    n_tokens = (12 + 1) + (2 + 1)  # bytes plus the end-of-text prediction of each text
    assert result.n_tokens == n_tokens and result.n_bytes == 14
    assert result.perplexity == pytest.approx(257) and result.nll_per_token == pytest.approx(math.log(257))
    assert result.bits_per_byte == pytest.approx(n_tokens * math.log2(257) / 14)
    assert "bits per byte" in repr(result)


# ----------------------------------------------------------------------------------------------------
# Windows


@pytest.mark.parametrize("n, context, stride", [(1, 4, 2), (10, 4, 1), (10, 4, 2), (10, 4, 4), (11, 4, 3), (37, 8, 5), (5, None, None)])
def test_window_spans_keep_every_target_once(n, context, stride):
    spans = lm.window_spans(n, context, stride)
    kept = [t for _, end, first in spans for t in range(first, end)]
    assert kept == list(range(n))
    for start, end, first in spans:
        assert start <= first < end and (context is None or end - start <= context)
        if start > 0:  # a later window sees at least context - stride tokens before its first kept target
            assert first - start >= context - stride


def test_window_spans_errors():
    with pytest.raises(ValueError, match="stride"):
        lm.window_spans(10, 4, 5)
    with pytest.raises(ValueError, match="stride"):
        lm.window_spans(10, 4, 0)
    with pytest.raises(ValueError, match="nothing to score"):
        lm.window_spans(0, 4)


def test_gpt_text_that_fits_equals_one_full_forward(tiny_gpt, byte_tok):
    text = "A short one."  # 12 bytes + end: 13 predictions, within block_size 16
    ids = [256] + list(text.encode()) + [256]
    x, y = torch.tensor([ids[:-1]]), torch.tensor([ids[1:]])
    with torch.no_grad():
        expected = lm.token_log_likelihoods(tiny_gpt(x), y)[0].double()
    got = ev.document_log_likelihoods(tiny_gpt, byte_tok, [text])[0]
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    for stride in (1, 5, 16):  # the stride does not matter when everything fits
        torch.testing.assert_close(ev.document_log_likelihoods(tiny_gpt, byte_tok, [text], stride=stride)[0], expected,
                                   rtol=1e-5, atol=1e-5)


def test_gpt_sliding_window_stride_one_sees_a_full_context_everywhere(tiny_gpt, byte_tok):
    text = "Once upon a time there was a fox."  # 33 bytes: longer than the context of 16
    ids = [256] + list(text.encode()) + [256]
    expected = []
    with torch.no_grad():
        for t in range(1, len(ids)):  # predict ids[t] from (at most) the 16 tokens before it
            window = torch.tensor([ids[max(0, t - 16): t]])
            expected.append(torch.log_softmax(tiny_gpt(window)[0, -1], -1)[ids[t]].item())
    got = ev.document_log_likelihoods(tiny_gpt, byte_tok, [text], stride=1)[0]
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-4, atol=1e-4)
    chunked = ev.document_log_likelihoods(tiny_gpt, byte_tok, [text], stride=16)[0]
    assert chunked.shape == got.shape
    assert torch.allclose(chunked[:16], got[:16])  # the first chunk is the same; later chunks restart from nothing
    assert not torch.allclose(chunked[16:], got[16:])


def test_ngram_sliding_window_equals_full_context(byte_tok):
    texts = [s.text for s in stories.stories("train", 30)]
    docs = [byte_tok.encode(t) + [256] for t in texts]
    model = NGramModel(3, 257, k=0.1).fit(docs)
    test = [s.text for s in stories.stories("test", 3)]
    full = ev.document_log_likelihoods(model, byte_tok, test)  # an n-gram model has no context limit: one window
    windowed = ev.document_log_likelihoods(model, byte_tok, test, context_size=16, stride=8)
    for a, b in zip(full, windowed):  # every window gives >= 8 >= n - 1 tokens of context: identical
        torch.testing.assert_close(a, b)
    chunked = ev.document_log_likelihoods(model, byte_tok, test, context_size=16, stride=16)
    assert sum(c.sum() for c in chunked) < sum(f.sum() for f in full)  # chunk starts lose their context


def test_batching_does_not_change_results(tiny_gpt, byte_tok):
    texts = ["a", "Hello, world!", "Once upon a time there was a fox named Finn.", "xyz"]
    one = ev.document_log_likelihoods(tiny_gpt, byte_tok, texts, batch_size=1)
    many = ev.document_log_likelihoods(tiny_gpt, byte_tok, texts, batch_size=8)
    for a, b in zip(one, many):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_bad_inputs_give_clear_errors(tiny_gpt, byte_tok, bpe):
    with pytest.raises(ValueError, match="text 1 is empty"):
        ev.evaluate(tiny_gpt, byte_tok, ["fine", ""])
    with pytest.raises(ValueError, match="list is empty"):
        ev.evaluate(tiny_gpt, byte_tok, [])
    with pytest.raises(TypeError, match="wrap it in a list"):
        ev.evaluate(tiny_gpt, byte_tok, "one text")
    with pytest.raises(ValueError, match="only 257 .*tokens"):
        ev.evaluate(tiny_gpt, bpe, ["text"])  # 959 token ids, 257 outputs
    with pytest.raises(ValueError, match="another \\(larger\\) tokenizer"):
        ev.evaluate(Uniform(1024), byte_tok, ["text"])  # a BPE-sized model read with bytes
    with pytest.raises(ValueError, match="one special token"):
        from course_lib.tokenizer import BPETokenizer
        ev.evaluate(Uniform(256), BPETokenizer([], []), ["text"])
    with pytest.raises(ValueError, match="context_size"):
        ev.evaluate(tiny_gpt, byte_tok, ["text"], context_size=17)
    lm.check_model_and_tokenizer(Uniform(1024), bpe)  # padded vocabularies are fine


# ----------------------------------------------------------------------------------------------------
# Multiple choice


def test_acc_and_acc_norm_disagree_on_constructed_cases():
    assert ev.multiple_choice_predictions([-4.0, -6.0], [" zoo", " playground"]) == (0, 1)  # -1.0 vs -0.55 per char
    assert ev.multiple_choice_predictions([-3.0, -4.5, -5.0], [" park", " zoo", " playground"]) == (0, 2)
    assert ev.multiple_choice_predictions([-3.0, -2.9], [" red", " golden"]) == (1, 1)
    # acc_norm never prefers a shorter choice that acc ranks lower: a lower total spread over fewer characters
    assert ev.multiple_choice_predictions([-2.0, -3.0], [" playground", " zoo"]) == (0, 0)
    assert ev.multiple_choice_predictions([-2.0, -2.0], [" ab", " cd"]) == (0, 0)  # ties: the first
    # the leading space joins the choice to the context; lm-evaluation-harness does not count it (-1/1 < -2.2/3)
    assert ev.multiple_choice_predictions([-1.0, -2.2], [" a", " abc"]) == (0, 1)
    assert [ev.choice_length(c) for c in (" zoo", "zoo", "  two", " café")] == [3, 3, 4, 4]
    with pytest.raises(ValueError, match="2 log-likelihoods for 3 choices"):
        ev.multiple_choice_predictions([-1.0, -2.0], ["a", "b", "c"])


def test_encode_pair_moves_trailing_spaces(bpe):
    ctx, cont = ev.encode_pair(bpe, "He had a ", "red ball")
    ctx2, cont2 = ev.encode_pair(bpe, "He had a", " red ball")
    assert (ctx, cont) == (ctx2, cont2)
    assert bpe.decode(cont) == " red ball" and bpe.decode(ctx) == "He had a"


def test_score_multiple_choice_with_a_unigram_model(byte_tok):
    # every byte costs the same except "z", which is cheaper: the long choice wins per character only
    log_probs = torch.full((257,), -6.0)
    log_probs[ord("z")] = -3.5
    log_probs = log_probs - log_probs.logsumexp(0)
    model = FixedNext(log_probs)
    items = [Item("t", "Pick:", (" ab", " zzzzzzzz"), 1, "test", 0),
             Item("t", "Pick:", (" ab", " zzzzzzzz"), 0, "test", 1)]
    result = ev.score_multiple_choice(model, byte_tok, items)
    lp = log_probs.double()
    short, long = 3 * lp[0].item(), lp[32].item() + 8 * lp[ord("z")].item()
    assert result.choice_logliks[0] == pytest.approx([short, long])
    assert short > long and short / 2 < long / 8  # constructed so that the two metrics disagree (spaces not counted)
    assert result.acc_picks == [0, 0] and result.acc_norm_picks == [1, 1]
    assert result.acc == 0.5 and result.acc_norm == 0.5 and result.disagreements() == [0, 1]


def test_choice_log_likelihoods_equal_document_differences(tiny_gpt, byte_tok):
    item = Item("t", "The cat", (" sat", " ran away"), 0, "test", 0)
    got = ev.choice_log_likelihoods(tiny_gpt, byte_tok, [item])[0]
    for choice, value in zip(item.choices, got):
        whole = ev.document_log_likelihoods(tiny_gpt, byte_tok, [item.context + choice])[0]
        n = len(choice.encode())
        assert value == pytest.approx(whole[-1 - n: -1].sum().item(), abs=1e-4)  # skip the end-of-text prediction


def test_long_contexts_are_cut_on_the_left(tiny_gpt, byte_tok):
    item = Item("t", "x" * 100 + "The cat", (" sat",), 0, "test", 0)
    short = Item("t", "x" * 6 + "The cat", (" sat",), 0, "test", 0)  # the same last 16 inputs
    a = ev.choice_log_likelihoods(tiny_gpt, byte_tok, [item])[0][0]
    b = ev.choice_log_likelihoods(tiny_gpt, byte_tok, [short])[0][0]
    assert a == pytest.approx(b, abs=1e-4)


# ----------------------------------------------------------------------------------------------------
# Aggregation


def test_win_rates_follow_helm():
    assert ev.win_rates({"a": 0.9, "b": 0.5, "c": 0.1}) == {"a": 1.0, "b": 0.5, "c": 0.0}
    assert ev.win_rates({"a": 0.5, "b": 0.5, "c": 0.1}) == {"a": 0.75, "b": 0.75, "c": 0.0}  # a tie counts half
    assert ev.win_rates({"a": 1.2, "b": 0.8}, lower_is_better=True) == {"a": 0.0, "b": 1.0}
    with pytest.raises(ValueError, match="two models"):
        ev.win_rates({"a": 1.0})


def test_aggregate_mean_and_mean_win_rate():
    scores = {"big": {"t1": 0.9, "t2": 0.30, "bpb": 0.5}, "small": {"t1": 0.2, "t2": 0.35, "bpb": 0.9},
              "none": {"t1": 0.1}}
    table = ev.aggregate(scores, lower_is_better=["bpb"])
    assert table["big"]["mean"] == pytest.approx(0.6)
    assert table["big"]["mean win rate"] == pytest.approx((1.0 + 0.0 + 1.0) / 3)
    assert table["small"]["mean win rate"] == pytest.approx((0.5 + 1.0 + 0.0) / 3)
    assert table["none"]["mean win rate"] == pytest.approx(0.0)  # only t1, where it is last


# ----------------------------------------------------------------------------------------------------
# Contamination


def test_word_ngrams_ignore_case_and_punctuation():
    assert ev.words("Tom's RED ball, again!") == ["tom", "s", "red", "ball", "again"]
    assert ev.word_ngrams("A b. a B!", 2) == {("a", "b"), ("b", "a")}
    assert ev.word_ngrams("too short", 3) == set()


def test_overlaps_and_contaminated_items():
    train = ["The cat sat on the mat. It was happy.", "A dog ran to the park."]
    test = ["the CAT sat on the mat!", "it was happy a dog ran", "a bird", "a dog ran to the sea"]
    overlaps = ev.ngram_overlaps(test, iter(train), n=3)  # training texts may be a stream
    assert [(o.n_ngrams, o.n_found) for o in overlaps] == [(4, 4), (4, 2), (0, 0), (4, 3)]
    assert overlaps[1].fraction == 0.5 and overlaps[2].fraction == 0.0  # "was happy a" crosses documents: not found
    assert ev.contaminated(test, train, n=3) == [0, 1, 3]
    assert ev.contaminated(test, train, n=3, min_fraction=0.5) == [0, 3]


def test_leaked_test_stories_are_found_and_clean_ones_mostly_not():
    test = [s.text for s in stories.stories("test", 20)]
    train = [s.text for s in stories.stories("train", 300)] + test[:5]
    flagged = ev.contaminated(test, train, n=13, min_fraction=0.5)
    assert flagged == [0, 1, 2, 3, 4]


# ----------------------------------------------------------------------------------------------------
# Free generation, judged by the grammar


def test_grammar_judge(byte_tok):
    sample = stories.stories("val", 3)
    broken = sample[0].text.replace(".", ",", 1)
    judged = ev.judge_with_grammar([s.text for s in sample] + [broken])
    assert judged.valid == [True, True, True, False] and judged.valid_fraction == 0.75
    assert judged.progress[:3] == [1.0] * 3 and 0.0 <= judged.progress[3] < 1.0
    pooled = -sum(s.logprob2 for s in sample) / sum(s.n_bytes for s in sample)
    assert judged.bits_per_byte == pytest.approx(pooled)


def test_sample_texts_from_an_ngram_model_are_reproducible(byte_tok):
    docs = [byte_tok.encode(s.text) + [256] for s in stories.stories("train", 50)]
    model = NGramModel(4, 257, k=0.01).fit(docs)
    first = lm.sample_texts(model, byte_tok, 3, max_new_tokens=60, seed=1)
    assert first == lm.sample_texts(model, byte_tok, 3, max_new_tokens=60, seed=1)
    assert len(first) == 3 and all(isinstance(t, str) and "<|endoftext|>" not in t for t in first)


# ----------------------------------------------------------------------------------------------------
# The checkers: the reference passes, typical wrong answers fail with a useful hint


def test_checkers_pass_the_reference(capsys):
    check.token_nll(check.reference_token_nll)
    check.perplexity(check.reference_perplexity)
    check.bits_per_byte(check.reference_bits_per_byte)
    check.choice_log_likelihoods(check.reference_choice_log_likelihoods)
    check.multiple_choice(check.reference_multiple_choice)
    check.ngram_overlap(check.reference_ngram_overlap)
    out = capsys.readouterr().out
    for line in ["token_nll: 5/5", "perplexity: 4/4", "bits_per_byte: 4/4", "choice_log_likelihoods: 4/4",
                 "multiple_choice: 6/6", "ngram_overlap: 7/7"]:
        assert line in out


def test_token_nll_checker_catches_mistakes():
    with pytest.raises(CheckFailed, match="-log p"):
        check.token_nll(lambda logits, targets: lm.token_log_likelihoods(logits, targets))
    def overflowing(logits, targets):
        probs = logits.exp() / logits.exp().sum(-1, keepdim=True)  # inf / inf
        return -probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).log()

    with pytest.raises(CheckFailed, match="log 0 = -inf"):
        check.token_nll(overflowing)
    with pytest.raises(CheckFailed, match="shape"):
        check.token_nll(lambda logits, targets: check.reference_token_nll(logits, targets).sum())


def test_perplexity_and_bpb_checkers_catch_mistakes():
    with pytest.raises(CheckFailed, match="averaged the documents' perplexities"):
        check.perplexity(lambda docs: sum(math.exp(-sum(d) / len(d)) for d in docs) / len(docs))
    with pytest.raises(CheckFailed, match="nats to bits"):
        check.bits_per_byte(lambda docs, texts: -sum(sum(d) for d in docs) / sum(len(t.encode()) for t in texts))
    with pytest.raises(CheckFailed, match="characters"):
        check.bits_per_byte(lambda docs, texts: -sum(sum(d) for d in docs) / sum(len(t) for t in texts) / LN2)
    with pytest.raises(CheckFailed, match="per-document ratios"):
        check.bits_per_byte(lambda docs, texts: sum(-sum(d) / len(t.encode()) for d, t in zip(docs, texts)) / len(docs) / LN2)


def test_multiple_choice_checker_catches_mistakes():
    with pytest.raises(CheckFailed, match="swapped"):
        check.multiple_choice(lambda ll, ch: tuple(reversed(ev.multiple_choice_predictions(ll, ch))))
    with pytest.raises(CheckFailed, match="tuple of two ints"):
        check.multiple_choice(lambda ll, ch: ev.multiple_choice_predictions(ll, ch)[0])
    by_tokens = lambda ll, ch: (ev.argmax(ll), ev.argmax([v / len(c.split()) for v, c in zip(ll, ch)]))  # noqa: E731
    with pytest.raises(CheckFailed, match="characters"):
        check.multiple_choice(by_tokens)
    with_space = lambda ll, ch: (ev.argmax(ll), ev.argmax([v / len(c) for v, c in zip(ll, ch)]))  # noqa: E731
    with pytest.raises(CheckFailed, match="you counted the leading space"):
        check.multiple_choice(with_space)


def _scorer(mistake: str):
    """A student's choice_log_likelihoods with one classic mistake (or none)."""
    def score(model, tokenizer, context, choices):
        eot, out = lm.end_of_text_id(tokenizer), []
        for choice in choices:
            if mistake == "apart":
                context_ids, choice_ids = tokenizer.encode(context), tokenizer.encode(choice)
            else:
                context_ids, choice_ids = ev.encode_pair(tokenizer, context, choice)
            ids = ([] if mistake == "no end of text" else [eot]) + context_ids + choice_ids
            x = torch.tensor([ids])
            with torch.no_grad():
                logliks = lm.token_log_likelihoods(model(x[:, :-1]), x[:, 1:])[0]
            n = len(choice_ids) + {"early": 1, "late": -1}.get(mistake, 0)
            kept = logliks if mistake == "context too" else logliks[len(logliks) - n:]
            value = kept.mean() if mistake == "mean" else kept.sum()
            out.append(-value.item() if mistake == "sign" else value.item())
        return out
    return score


def test_choice_checker_names_each_classic_mistake(capsys):
    check.choice_log_likelihoods(_scorer("none"))
    assert "choice_log_likelihoods: 4/4 cases passed" in capsys.readouterr().out
    for mistake, message in [("context too", "scored the context too"), ("apart", "tokenized the context and the choice separately"),
                             ("early", "one token early"), ("late", "one token late"), ("no end of text", "<|endoftext|> first"),
                             ("mean", "averaged"), ("sign", "sign is flipped")]:
        with pytest.raises(CheckFailed, match=re.escape(message)):
            check.choice_log_likelihoods(_scorer(mistake))
    with pytest.raises(CheckFailed, match="one float per choice"):
        check.choice_log_likelihoods(lambda model, tokenizer, context, choices: 0.0)


def test_ngram_overlap_checker_catches_mistakes():
    def joined(test_texts, train_texts, n):  # n-grams across document boundaries
        seen = ev.word_ngrams(" ".join(train_texts), n)
        return [len(g & seen) / len(g) if g else 0.0 for g in (ev.word_ngrams(t, n) for t in test_texts)]

    with pytest.raises(CheckFailed, match="each training text on its own"):
        check.ngram_overlap(joined)

    def case_sensitive(test_texts, train_texts, n):
        def grams(text):
            w = text.split()
            return {tuple(w[i:i + n]) for i in range(len(w) - n + 1)}
        seen = set().union(*(grams(t) for t in train_texts))
        return [len(grams(t) & seen) / len(grams(t)) if grams(t) else 0.0 for t in test_texts]

    with pytest.raises(CheckFailed, match="re.findall"):
        check.ngram_overlap(case_sensitive)
