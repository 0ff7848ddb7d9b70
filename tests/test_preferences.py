"""Chapter 7's true reward r*, Bradley–Terry labels with known noise, and the shipped pair set."""

from __future__ import annotations

import math

import pytest
import torch

from course_lib import instructions, preferences, sft
from course_lib.preferences import true_reward

REQUEST = instructions.held_out("writing", 1)[0]  # its reference response is a valid story that fulfils it
OTHER = instructions.family_examples("writing", "test", 5)[3]


def test_reward_of_a_fulfilling_story_is_one_plus_two_plus_brevity():
    words = len(REQUEST.response.split())
    assert true_reward(REQUEST, REQUEST.response) == pytest.approx(3 + max(0.0, 1 - words / 120))


def test_reward_of_a_valid_story_that_misses_the_request():
    parts = preferences.reward_parts(REQUEST, OTHER.response)  # another request's story: valid, wrong hero
    assert parts["valid"] == 1 and parts["fulfilled"] == 0 and 0 <= parts["brevity"] <= 1


@pytest.mark.parametrize("text", ["", "Hello.", "I cannot write that story.", REQUEST.response[: len(REQUEST.response) // 2]])
def test_reward_of_anything_that_is_not_a_story_is_zero(text):
    assert true_reward(REQUEST, text) == 0


def test_brevity_prefers_the_shorter_of_two_valid_fulfilling_stories():
    items = sorted(instructions.family_examples("writing", "test", 60), key=lambda e: len(e.response.split()))
    short, long = items[0], items[-1]
    assert len(short.response.split()) < 120 <= len(long.response.split())
    assert true_reward(short, short.response) == pytest.approx(3 + 1 - len(short.response.split()) / 120)
    assert true_reward(long, long.response) == 3.0  # no brevity bonus from 120 words on
    assert true_reward(short, short.response) > true_reward(long, long.response)


def test_reward_rejects_other_families():
    with pytest.raises(ValueError, match="writing"):
        true_reward(instructions.held_out("reading", 1)[0], "Mia")


def test_bradley_terry_probability_and_noise():
    assert preferences.preference_probability(2.0, 2.0) == 0.5
    assert preferences.preference_probability(1.0, 0.0) == pytest.approx(1 / (1 + math.exp(-1)))
    assert preferences.label_noise([1.0, -1.0]) == pytest.approx(1 / (1 + math.e))
    assert preferences.best_pair_accuracy([3.0]) == pytest.approx(1 / (1 + math.exp(-3)))
    with pytest.raises(ValueError, match="no pairs"):
        preferences.label_noise([])


def test_label_noise_is_realised_as_stated():
    """Simulated readers disagree with r* at the stated rate σ(−|Δ|), within a 4-sigma binomial band."""
    generator = torch.Generator().manual_seed(0)
    for delta in (0.25, 1.0, 3.0):
        n = 4000
        flips = sum(not preferences.bt_label(delta, 0.0, generator) for _ in range(n))
        p = 1 / (1 + math.exp(delta))
        assert abs(flips / n - p) < 4 * math.sqrt(p * (1 - p) / n)


def test_make_pairs_pairs_best_with_worst_and_skips_ties():
    good, other = REQUEST.response, OTHER.response
    pairs = preferences.make_pairs([REQUEST, REQUEST], [[good, "junk", other], ["junk", "more junk"]], seed=0)
    assert len(pairs) == 1  # the second request's two answers tie at r* = 0
    pair = pairs[0]
    assert {pair.chosen, pair.rejected} == {good, "junk"}
    assert pair.reward_chosen == true_reward(REQUEST, pair.chosen)
    assert pair.agrees_with_reward == (pair.chosen == good)


def test_shipped_pair_set_matches_its_rewards_and_noise():
    data = preferences.load()
    for split, n in preferences.SIZES.items():
        pairs = data["pairs"][split]
        assert 0.5 * n < len(pairs) <= n
        requests = preferences.requests(split, n)
        for p in pairs[:20]:  # r* recomputed from the text equals the stored reward
            assert p.prompt == requests[p.index].prompt
            assert true_reward(requests[p.index], p.chosen) == pytest.approx(p.reward_chosen)
            assert true_reward(requests[p.index], p.rejected) == pytest.approx(p.reward_rejected)
    train = data["pairs"]["train"]
    noise = preferences.label_noise([p.reward_chosen - p.reward_rejected for p in train])
    flips = sum(not p.agrees_with_reward for p in train)
    assert abs(flips / len(train) - noise) < 4 * math.sqrt(noise * (1 - noise) / len(train))
    assert len(data["samples"]["test"]) == preferences.SIZES["test"]


def test_pairs_fit_the_context_when_encoded():
    data = preferences.load()
    pairs = data["pairs"]["val"]
    tokenizer = sft.chat_tokenizer()
    from course_lib import dpo

    assert len(dpo.encode_pairs(tokenizer, pairs).rows) >= 0.9 * len(pairs)
