"""Tests of course_lib.tasks: fixed, deterministic cloze tasks whose right answer the grammar alone allows."""

from collections import Counter

import pytest
import torch

from course_lib import stories, tasks


@pytest.fixture(scope="module")
def bench():
    return tasks.benchmark()


def test_fixed_test_sets(bench):
    assert sorted(bench) == ["colour", "friend", "lost", "place"]
    for name, items in bench.items():
        assert len(items) == tasks.TEST_SET_SIZE
        indices = [item.story_index for item in items]
        assert indices == sorted(set(indices))  # stories in order, each at most once per task
        tasks.task_items.cache_clear()
        assert tasks.task_items(name) == items  # rebuilt from scratch: the same items


def test_items_are_well_formed(bench):
    for name, items in bench.items():
        for item in items:
            assert item.task == name and item.split == "test"
            assert len(item.choices) == tasks.N_CHOICES == len(set(item.choices))
            assert 0 <= item.answer < tasks.N_CHOICES
            assert all(choice.startswith(" ") and choice.strip() for choice in item.choices)
            story = stories.story("test", item.story_index)
            assert story.text.startswith(item.text)  # the right answer is the story's own continuation
        positions = Counter(item.answer for item in items)
        assert len(positions) == tasks.N_CHOICES and max(positions.values()) < 45  # not always the same slot


def test_only_the_right_answer_keeps_the_story_grammatical(bench):
    for items in bench.values():
        for item in items[:8]:
            story = stories.story("test", item.story_index)
            rest = story.text[len(item.text):]
            assert stories.score(item.text + rest).ok
            for k, choice in enumerate(item.choices):
                if k != item.answer:
                    assert not stories.score(item.context + choice + rest).ok, (item, choice)


def test_a_first_item_by_hand(bench):
    item = bench["friend"][0]
    facts = stories.story("test", item.story_index).facts
    assert item.context.endswith(f"{facts['hero']['name']} and")
    assert item.choices[item.answer] == f" {facts['friend']['name']}"


def test_other_splits_and_errors():
    val = tasks.task_items("place", 5, split="val")
    assert [i.split for i in val] == ["val"] * 5 and val != tasks.task_items("place", 5)
    with pytest.raises(ValueError, match="unknown task"):
        tasks.task_items("weather")
    with pytest.raises(ValueError, match="n must be"):
        tasks.task_items("place", 0)


def test_a_short_run_keeps_half_precision_snapshots_that_load_back(tmp_path):
    run = tasks.train_run(snapshots=(0, 2, 3), train_bytes=30_000, progress=False)
    assert [s["step"] for s in run["snapshots"]] == [0, 2, 3]
    assert all(v.dtype == torch.float16 for s in run["snapshots"] for v in s["model"].values())
    first, last = run["snapshots"][0]["model"], run["snapshots"][-1]["model"]
    assert not torch.equal(first["wte.weight"], last["wte.weight"])  # the snapshots differ: it trained
    tasks.save_run(run, tmp_path / "run.pt")
    loaded = tasks.load_run(tmp_path / "run.pt")
    assert [s.step for s in loaded] == [0, 2, 3] and loaded[2].tokens_seen == 3 * 16 * 256
    assert next(loaded[1].model.parameters()).dtype == torch.float32 and not loaded[1].model.training

