"""The shared language-model core: one scorer and one sampler that every chapter calls.

Before the core existed, chapter 2 (training) and chapter 3 (evaluation) each had a windowed story scorer
and a sampling loop; a test showed the two scorers and the two samplers agreed (commit "Test that chapter
2's and chapter 3's scorers and samplers agree") before one of each was removed. These tests hold the core
to independent computations instead.
"""

import math

import pytest
import torch

from course_lib import evaluation, lm, stories, training
from course_lib.model import GPT, GPTConfig, load_story_model
from course_lib.ngram import NGramModel
from course_lib.tokenizer import load_story_tokenizer
from course_lib.utils import seed_everything


@pytest.fixture(scope="module")
def story_setup():
    return load_story_model(), load_story_tokenizer(), [s.text for s in stories.iter_stories("test", 20)]


def full_forward_logliks(model, ids, end_id):
    """The log-likelihood of one document from a single forward pass over <eot> ids -> ids <eot>."""
    x, y = torch.tensor([[end_id, *ids]]), torch.tensor([[*ids, end_id]])
    with torch.no_grad():
        return lm.token_log_likelihoods(model(x), y)[0].double()


def test_the_core_scorer_equals_one_forward_pass_per_document(story_setup):
    model, tokenizer, texts = story_setup
    eot = lm.end_of_text_id(tokenizer)
    token_lists = [ids for ids in map(tokenizer.encode, texts) if len(ids) < model.config.block_size]  # one window each
    assert len(token_lists) >= 15
    scored = lm.document_log_likelihoods(model, token_lists, eot, batch_size=7)  # batches mix lengths
    for ids, got in zip(token_lists, scored):
        torch.testing.assert_close(got, full_forward_logliks(model, ids, eot), rtol=1e-5, atol=1e-5)


def test_a_sliding_window_scores_every_token_once_and_costs_a_little_more(story_setup):
    model, tokenizer, texts = story_setup
    eot = lm.end_of_text_id(tokenizer)
    ids = tokenizer.encode(texts[0])
    [windowed] = lm.document_log_likelihoods(model, [ids], eot, context_size=32, stride=16)
    full = full_forward_logliks(model, ids, eot)
    assert windowed.shape == full.shape
    torch.testing.assert_close(windowed[:32], full[:32], rtol=1e-5, atol=1e-5)  # the first window is the same
    assert -windowed.sum() > -full.sum()  # less context: more bits


def test_chapter_2_and_chapter_3_report_the_same_bits_per_byte(story_setup):
    model, tokenizer, texts = story_setup
    pooled = evaluation.evaluate(model, tokenizer, texts).bits_per_byte
    assert lm.model_bits_per_byte(model, tokenizer, texts) == pytest.approx(pooled, rel=1e-12)
    assert training.story_bits_per_byte(model, tokenizer, 20) == pytest.approx(pooled, rel=1e-12)
    sample = list(stories.iter_stories("test", 20))
    floor = -sum(s.logprob2 for s in sample) / sum(s.n_bytes for s in sample)  # the truth on the same stories
    assert math.isfinite(pooled) and floor < pooled < 1.2 * floor


def test_model_bits_per_byte_refuses_a_tokenizer_that_does_not_fit(story_setup):
    model, _, texts = story_setup
    with pytest.raises(ValueError, match="another \\(larger\\) tokenizer"):
        lm.model_bits_per_byte(model, evaluation.byte_tokenizer(), texts[:1])


def old_ngram_sampling_loop(model, end_id, n, max_new_tokens, temperature, seed):
    """The loop chapter 3 used for n-gram models before the core: the reference the core must reproduce."""
    generator = torch.Generator().manual_seed(seed)
    idx = torch.full((n, 1), end_id, dtype=torch.long)
    done = torch.zeros(n, dtype=torch.bool)
    for _ in range(max_new_tokens):
        logits = model(idx[:, -(model.n - 1):])[:, -1].float()
        token = torch.multinomial(lm.next_token_distribution(logits, temperature), 1, generator=generator)
        idx = torch.cat([idx, token], dim=1)
        done |= token.squeeze(1) == end_id
        if done.all():
            break
    return [lm.trim_after_stop(row[1:], end_id) for row in idx.tolist()]


def test_the_core_sampler_reproduces_the_old_ngram_loop():
    tokenizer = evaluation.byte_tokenizer()
    docs = [tokenizer.encode(s.text) + [256] for s in stories.stories("train", 50)]
    model = NGramModel(3, 257, k=0.01).fit(docs)
    for temperature in (0.7, 1.0):
        expected = old_ngram_sampling_loop(model, 256, 4, 80, temperature, seed=5)
        assert lm.generate(model, [256], 80, 4, temperature=temperature, seed=5, stop_id=256) == expected


def test_kv_cache_and_plain_forward_sample_the_same_tokens():
    """The GPT's cached path (one position per token, sliding past the context) equals feeding it everything."""
    seed_everything(0)
    model = GPT(GPTConfig(vocab_size=40, block_size=12, n_layer=2, n_head=2, n_embd=16)).eval()

    class NoCache(torch.nn.Module):  # the same GPT, seen as a model without a cache
        def __init__(self):
            super().__init__()
            self.gpt = model

        def forward(self, idx):
            return self.gpt(idx[:, -12:])

    cached = lm.generate(model, [1, 2, 3], 30, num_samples=3, seed=2)  # 33 tokens: slides past block_size 12
    plain = lm.generate(NoCache(), [1, 2, 3], 30, num_samples=3, seed=2)
    assert cached == plain


def test_contracts_are_written_down(story_setup):
    model, tokenizer, _ = story_setup
    assert isinstance(model, lm.LanguageModel) and isinstance(tokenizer, lm.Tokenizer)
    assert not isinstance("not a tokenizer", lm.Tokenizer)
