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


def test_a_short_run_is_measured_at_each_snapshot_and_keeps_one_model(tmp_path):
    run = tasks.train_run(snapshots=(0, 2, 3), preset="tiny", train_bytes=30_000, n_items=4, n_test_stories=3,
                          keep_weights_of=0.0, progress=False)
    assert [s["step"] for s in run["snapshots"]] == [0, 2, 3]
    first, last = run["snapshots"][0], run["snapshots"][-1]
    assert first["bits_per_byte"] != last["bits_per_byte"]  # it trained between the snapshots
    assert set(last["tasks"]) == set(tasks.TASKS) and all(len(t["answers"]) == 4 for t in last["tasks"].values())
    assert all(v.dtype == torch.float16 for v in run["kept"]["model"].values())
    tasks.save_run(run, tmp_path / "run.pt")
    loaded = tasks.load_run(tmp_path / "run.pt")
    assert [s.step for s in loaded] == [0, 2, 3] and loaded[2].tokens_seen == 3 * 8 * 32
    kept = [s for s in loaded if s.model is not None]
    assert len(kept) == 1 and kept[0].step == run["kept"]["step"] and not kept[0].model.training
    assert loaded[1].results["colour"].acc == sum(
        p == a for p, a in zip(run["snapshots"][1]["tasks"]["colour"]["acc_picks"], run["snapshots"][1]["tasks"]["colour"]["answers"])) / 4
