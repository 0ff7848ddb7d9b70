"""Self-training (rejection-sampling fine-tuning): the filter, the diversity measures and one round."""

from collections import Counter
from dataclasses import replace

import pytest
import torch

from course_lib import instructions, self_training, sft, stories
from course_lib.checks import CheckFailed
from course_lib.checks import sft as check
from course_lib.instructions import verify


def test_keep_verified_keeps_distinct_accepted_answers_up_to_the_cap():
    requests = instructions.held_out("writing", 3)
    good, other = requests[0].response, requests[1].response
    answers = [[good, "Once upon a time.", good], [good], [requests[2].response, other]]  # [1]: right story, wrong request
    kept = self_training.keep_verified(requests, answers, max_per_request=2)
    assert [(k.index, k.response) for k in kept] == [(requests[0].index, good), (requests[2].index, requests[2].response)]
    assert kept[0].prompt == requests[0].prompt and kept[0].target == requests[0].target
    assert len(self_training.keep_verified(requests, answers)) == 2
    assert [k.response for k in self_training.keep_all(requests, answers)] == [a for row in answers for a in row]
    with pytest.raises(ValueError, match="one list of answers per request"):
        self_training.keep_verified(requests, answers[:2])


def test_fresh_requests_are_new_every_round_and_past_the_sft_data():
    first, second = self_training.fresh_requests(1, 5), self_training.fresh_requests(2, 5)
    assert min(r.index for r in first) >= self_training.FRESH_START and all(r.split == "train" for r in first)
    assert not {r.index for r in first} & {r.index for r in second}


def test_entropy_and_diversity_are_measured_like_for_like():
    assert self_training.entropy_bits(Counter("aabb")) == 1.0 and self_training.entropy_bits(Counter()) == 0.0
    texts = [s.text for s in stories.iter_stories("test", 20)]
    measured = self_training.diversity(texts + texts[:5] + ["not a story"])
    assert (measured["distinct"], measured["n"]) == (21, 26)
    assert measured["n_places"] == sum(len(stories.story("test", i).facts["places"]) for i in [*range(20), *range(5)])
    assert 0 < measured["place_entropy"] <= measured["corpus_place_entropy"] + 1.0


def test_a_round_fine_tunes_on_the_answers_it_kept():
    model, tokenizer = sft.load_sft_model(), sft.chat_tokenizer()
    before = [p.detach().clone() for p in model.parameters()]
    config = sft.SFTConfig(steps=2, batch_size=2, warmup_steps=1, loss_per="example", init_new_tokens=False, progress=False)
    counts = self_training.run_round(model, tokenizer, 1, 4, filtered=False, config=config)
    assert counts["sampled"] == counts["kept"] == 4 and 0 <= counts["kept_valid"] <= 4
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters())) and not model.training


def _no_dedupe(requests, answers, cap=1):
    return [replace(r, response=a) for r, row in zip(requests, answers) for a in [a for a in row if verify(r, a).ok][:cap]]


@pytest.mark.parametrize("wrong, message", [
    (lambda requests, answers, cap=1: self_training.keep_all(requests, answers), "instructions.verify"),
    (_no_dedupe, "does not count towards max_per_request"),
    (lambda requests, answers, cap=1: [a for row in answers for a in row], "list of instructions.Example"),
])
def test_the_keep_verified_checker_names_the_mistake(wrong, message, capsys):
    check.keep_verified(self_training.keep_verified)
    assert "keep_verified: 5/5 cases passed" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match=message):
        check.keep_verified(wrong)


def test_sampled_answers_end_at_the_first_special_token_and_empty_ones_teach_nothing():
    assert self_training.cut_at_special_tokens("Once upon a time.<|endoftext|>Tom ran.<|end|>") == "Once upon a time."
    assert self_training.cut_at_special_tokens("no special token") == "no special token"
    requests = instructions.held_out("writing", 2)
    assert [k.response for k in self_training.keep_all(requests, [[""], [" ", "a"]])] == ["a"]
