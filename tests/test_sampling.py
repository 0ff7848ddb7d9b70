"""Tests of the sampler in course_lib.lm: the filtered distributions, seeds, stopping, the KV cache, batching."""

import pytest
import torch

from course_lib.checks import CheckFailed
from course_lib.checks import language_modeling as check
from course_lib.lm import generate, next_token_distribution, sample_texts
from course_lib.model import GPT, GPTConfig
from course_lib.utils import seed_everything


def tiny_model(block_size: int = 32) -> GPT:
    seed_everything(0)
    return GPT(GPTConfig(vocab_size=20, block_size=block_size, n_layer=2, n_head=2, n_embd=16)).eval()


def test_temperature_scales_the_logits():
    logits = torch.tensor([[1.0, 2.0, 3.0]])
    torch.testing.assert_close(next_token_distribution(logits), torch.softmax(logits, -1))
    torch.testing.assert_close(next_token_distribution(logits, 0.5), torch.softmax(logits * 2, -1))
    assert next_token_distribution(logits, 0.0).tolist() == [[0.0, 0.0, 1.0]]


def test_top_k_and_top_p():
    logits = torch.log(torch.tensor([[0.1, 0.5, 0.15, 0.25]]))
    torch.testing.assert_close(next_token_distribution(logits, top_k=2), torch.tensor([[0.0, 0.5, 0.0, 0.25]]) / 0.75)
    # sorted: 0.5, 0.25, 0.15, 0.1 -> the mass before each: 0, 0.5, 0.75, 0.9
    torch.testing.assert_close(next_token_distribution(logits, top_p=0.5), torch.tensor([[0.0, 1.0, 0.0, 0.0]]))
    torch.testing.assert_close(next_token_distribution(logits, top_p=0.6), torch.tensor([[0.0, 0.5, 0.0, 0.25]]) / 0.75)
    torch.testing.assert_close(next_token_distribution(logits, top_p=0.8), torch.tensor([[0.0, 0.5, 0.15, 0.25]]) / 0.9)
    torch.testing.assert_close(next_token_distribution(logits, top_p=1.0), torch.softmax(logits, -1))


@pytest.mark.parametrize("kwargs, message", [
    (dict(temperature=-1.0), "temperature"), (dict(top_k=0), "top_k"), (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p"),
])
def test_bad_sampling_settings_give_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        next_token_distribution(torch.zeros(1, 5), **kwargs)


def test_same_seed_same_samples_and_global_state_untouched():
    model = tiny_model()
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = generate(model, [1, 2], 20, num_samples=4, seed=7)
    after = torch.rand(1)
    assert torch.equal(before, after)  # sampling used its own generator
    assert a == generate(model, [1, 2], 20, num_samples=4, seed=7)
    assert a != generate(model, [1, 2], 20, num_samples=4, seed=8)
    assert len(a) == 4 and all(len(row) == 20 for row in a)


def greedy_without_cache(model: GPT, prompt: list[int], n: int) -> list[int]:
    ids = list(prompt)
    for _ in range(n):
        context = torch.tensor([ids[-model.config.block_size :]])
        ids.append(int(model(context)[0, -1].argmax()))
    return ids[len(prompt):]


@pytest.mark.parametrize("block_size", [32, 8])  # 8: generation runs past the context and slides the window
def test_cached_generation_matches_recomputing_everything(block_size):
    model = tiny_model(block_size)
    got = generate(model, [3, 1, 4], 15, temperature=0.0)
    assert got == [greedy_without_cache(model, [3, 1, 4], 15)]


def test_generation_stops_at_the_stop_token_per_sample():
    model = tiny_model()
    greedy = generate(model, [5], 10, temperature=0.0)[0]
    stop = greedy[3]
    first = greedy.index(stop)
    assert generate(model, [5], 10, temperature=0.0, stop_id=stop)[0] == greedy[: first + 1]
    rows = generate(model, [5], 30, num_samples=6, seed=1, stop_id=2, temperature=2.0)
    for row in rows:
        assert 2 not in row[:-1]  # nothing after the stop token
        assert row[-1] == 2 or len(row) == 30


def test_batched_prompts_and_bad_prompts():
    model = tiny_model()
    prompts = torch.tensor([[1, 2, 3], [4, 5, 6]])
    out = generate(model, prompts, 5, temperature=0.0)
    assert out == [generate(model, [1, 2, 3], 5, temperature=0.0)[0], generate(model, [4, 5, 6], 5, temperature=0.0)[0]]
    with pytest.raises(ValueError, match="prompt"):
        generate(model, [], 5)


class CharTokenizer:
    """Tokens are letters a..s (ids 0..18) and '|' stands for <|endoftext|> (id 19)."""

    def encode(self, text):
        return [19] if text == "<|endoftext|>" else [ord(c) - 97 for c in text]

    def decode(self, ids):
        return "".join("|" if i == 19 else chr(97 + i) for i in ids)


def test_sample_texts_decodes_without_the_end_token():
    model = tiny_model()
    texts = sample_texts(model, CharTokenizer(), 3, max_new_tokens=12, seed=0)
    assert len(texts) == 3 and all("|" not in t and len(t) <= 12 for t in texts)


# The checker of the sampling exercise.

def test_sampling_checker(capsys):
    check.next_token_distribution(next_token_distribution)
    out = capsys.readouterr().out
    assert "next_token_distribution: 11/11 cases passed" in out

    def top_p_inclusive(logits, temperature=1.0, top_k=None, top_p=None):
        probs = next_token_distribution(logits, temperature, top_k)
        if top_p is not None and top_p < 1:
            sorted_probs, order = probs.sort(-1, descending=True)
            drop = (sorted_probs.cumsum(-1) > top_p).scatter(-1, order, sorted_probs.cumsum(-1) > top_p)
            probs = probs.masked_fill(drop, 0) / probs.masked_fill(drop, 0).sum(-1, keepdim=True)
        return probs

    def temperature_multiplies(logits, temperature=1.0, top_k=None, top_p=None):
        return next_token_distribution(logits * max(temperature, 1e-9), 1.0, top_k, top_p)

    for wrong in (top_p_inclusive, temperature_multiplies):
        with pytest.raises(CheckFailed) as error:
            check.next_token_distribution(wrong)
        assert "case '" in str(error.value) and "hint" in str(error.value)
