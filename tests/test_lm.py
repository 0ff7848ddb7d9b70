"""The shared language-model core: one scorer and one sampler for every chapter."""

import math

import pytest
import torch

from course_lib import evaluation, sampling, stories, training
from course_lib.model import load_story_model
from course_lib.ngram import NGramModel
from course_lib.tokenizer import load_story_tokenizer


@pytest.fixture(scope="module")
def story_setup():
    return load_story_model(), load_story_tokenizer(), [s.text for s in stories.iter_stories("test", 40)]


def test_chapter_2_and_chapter_3_scorers_agree(story_setup):
    model, tokenizer, texts = story_setup
    eot = evaluation.end_of_text_id(tokenizer)
    token_lists = [tokenizer.encode(t) for t in texts]
    for block in (None, 64):  # whole stories, and a window that must slide
        old = training.story_log_likelihoods(model, token_lists, eot, block_size=block)
        new = evaluation.document_log_likelihoods(model, tokenizer, texts, context_size=block)
        assert [n.sum().item() for n in new] == pytest.approx(old, rel=1e-9)
    pooled = evaluation.evaluate(model, tokenizer, texts).bits_per_byte
    assert training.bits_per_byte(model, tokenizer, texts) == pytest.approx(pooled, rel=1e-9)
    assert math.isfinite(pooled)


def test_chapter_2_and_chapter_3_samplers_agree(story_setup):
    model, tokenizer, _ = story_setup
    assert evaluation.sample_texts(model, tokenizer, 3, 40, seed=3) == sampling.sample_stories(model, tokenizer, 3, 40, seed=3)
