"""The instruction data of chapter 6: deterministic, split-disjoint, and graded exactly."""

from __future__ import annotations

import pytest

from course_lib import instructions, stories
from course_lib.instructions import REFUSAL, Example, family_examples, held_out, normalise_answer, verify, verify_story


@pytest.mark.parametrize("family", instructions.FAMILIES)
def test_generators_are_deterministic(family):
    first = family_examples.__wrapped__(family, "train", 30)
    again = family_examples.__wrapped__(family, "train", 30)
    assert first == again
    assert family_examples(family, "train", 10) == first[:10]  # item k does not depend on how many are asked for
    assert all(e.family == family and e.split == "train" for e in first)


def test_splits_are_disjoint():
    train = instructions.training_mixture(1500)
    test = [e for family in instructions.FAMILIES for e in held_out(family)]
    test_stories = {stories.story("test", e.index).text for e in test}
    train_texts = {e.prompt for e in train} | {e.response for e in train}
    assert not any(text in t for text in test_stories for t in train_texts if len(t) > 200)
    assert {e.split for e in test} == {"test"} and {e.split for e in train} == {"train"}
    # impossible words of the test refusals never appear in training data
    for what, lists in instructions.OUTSIDE.items():
        assert not set(lists["test"]) & set(lists["train"]), what
    train_prompts = {e.prompt for e in train if e.family == "refusal"}
    assert not train_prompts & {e.prompt for e in held_out("refusal")}


def test_mixture_proportions_and_sizes():
    mix = instructions.training_mixture(103)
    assert len(mix) == 103
    counts = {f: sum(e.family == f for e in mix) for f in instructions.FAMILIES}
    assert counts == {"reading": 42, "writing": 41, "refusal": 20}
    assert [len(held_out(f)) for f in instructions.FAMILIES] == [200, 100, 100]


def test_every_family_has_its_questions_and_reasons():
    reading = family_examples("reading", "train", 300)
    assert {e.target["question"] for e in reading} == set(instructions.READING_QUESTIONS)
    refusal = family_examples("refusal", "train", 100)
    assert {e.target["why"] for e in refusal} == {"name", "kind", "thing", "colour", "gender"}
    assert all(len(stories.story("train", e.index).text) <= instructions.MAX_STORY_CHARS for e in reading)


@pytest.mark.parametrize("family", instructions.FAMILIES)
def test_reference_answers_pass(family):
    for example in held_out(family, 40):
        verdict = verify(example, example.response)
        assert verdict.ok and all(verdict.checks.values()), (example, verdict)


def test_reading_normalisation_and_wrong_answers():
    assert normalise_answer("  The Park. ") == "park"
    assert normalise_answer("an  Apple!") == "apple"
    assert normalise_answer("under the bed") == "under the bed"
    example = next(e for e in held_out("reading") if e.target["question"] == "colour")
    assert verify(example, example.response.upper() + ".").ok
    wrong = "red" if example.response != "red" else "blue"
    assert not verify(example, wrong).ok and verify(example, wrong).checks == {"exact": False}
    assert not verify(example, example.response + " kite").ok  # more than the answer is wrong


def test_writing_constraints_fail_one_by_one():
    example = held_out("writing")[0]
    story, target = example.response, example.target
    assert verify_story(story, target).checks == dict.fromkeys(instructions.WRITING_CHECKS, True)
    for key, other in (("name", "Zoe"), ("kind", "frog"), ("colour", "silver"), ("thing", "drum")):
        if target[key] == other:
            continue
        checks = verify_story(story, {**target, key: other}).checks
        assert [k for k, v in checks.items() if not v] == [key], key
    never_lost = next(s for s in stories.iter_stories("test", 50) if "lose" not in s.facts["events"] and s.facts["thing"])
    facts = never_lost.facts
    checks = verify_story(never_lost.text, {"name": facts["hero"]["name"], "kind": facts["hero"]["kind"],
                                            "colour": facts["colour"], "thing": facts["thing"]}).checks
    assert [k for k, v in checks.items() if not v] == ["lost"]
    broken = verify(example, story[: len(story) // 2])
    assert not broken.ok and not any(broken.checks.values()) and broken.detail
    assert not verify(example, held_out("refusal")[0].response).ok  # refusing a possible request fails


def test_refusals():
    example = held_out("refusal")[0]
    assert example.response.startswith("I cannot write that story: the story world has no ")
    assert verify(example, example.response.lower()).ok
    wrong_reason = REFUSAL.format(what="dragons") if "dragons" not in example.response else REFUSAL.format(what="pianos")
    assert verify(example, wrong_reason).checks == {"refused": True, "reason": False}
    assert verify(example, held_out("writing")[0].response).checks == {"refused": False, "reason": False}
    gender = next(e for e in family_examples("refusal", "test", 60) if e.target["why"] == "gender")
    assert ("girl named" in gender.prompt and gender.prompt.split(" named ")[1].split()[0] in stories.MALE_NAMES) or \
           ("boy named" in gender.prompt and gender.prompt.split(" named ")[1].split()[0] in stories.FEMALE_NAMES)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown family"):
        family_examples("poetry", "train", 1)
    with pytest.raises(ValueError, match="unknown split"):
        family_examples("reading", "dev", 1)
    with pytest.raises(TypeError, match="str"):
        verify(held_out("reading", 1)[0], None)
    assert isinstance(held_out("reading", 1)[0], Example)


def test_follow_ups_and_replay():
    example = family_examples("reading", "train", 1)[0]
    assert example.messages() == example.messages(follow_ups=False) and len(example.messages()) == 2
    turns = example.messages(follow_ups=True)
    assert len(turns) == 2 + 2 * len(example.follow_ups) and len(example.follow_ups) >= 1
    assert all(t["content"].startswith("Question: ") for t in turns[2::2])
    questions = instructions.reading_questions(stories.story("train", example.index))
    assert set(example.follow_ups) <= set(questions.values()) and (example.target["question"], example.response) not in example.follow_ups
    mix = instructions.training_mixture(14, mixture=(("reading", 4), ("writing", 1), ("refusal", 1), ("replay", 1)))
    assert [e.family for e in mix[:7]] == ["reading"] * 4 + ["writing", "refusal", "replay"]
    assert mix[6].response == stories.story("train", 0).text
