"""Benchmark tasks from the story world, with known answers (chapter 3).

Each task is a cloze: a held-out story, cut just before a word that the story so far determines, and
four continuations to choose from. The right one is the story's own text; the others are drawn from
the same word list, so they read just as well locally. Only a model that remembers the story can tell.

    colour   "... Tom played with his" -> " blue boat" / " red boat" / ...      (the colour of the hero's thing)
    friend   "... Tom met a shy girl named Maya. ... Tom and" -> " Maya" / " Ben" / ...   (who met whom)
    lost     "... Tom could not find his" -> " boat" / " kite" / ...             (what was lost)
    place    '... he ran to the beach. ... He said, "I love this' -> " beach" / " zoo" / ...  (where we are)

Under the story grammar the right continuation is the only possible one (the colour of a thing never
changes, "Tom and" is always followed by the friend's name, ...), so a perfect model scores 100% and
guessing 25%. Items come from the stories in order, skipping those where the task does not apply, and
the distractors and the answer's position are drawn with the stories' own PRNG: every machine gets the
same fixed test set.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from course_lib import stories, training
from course_lib.model import GPT, GPTConfig
from course_lib.tokenizer import STORY_VOCAB_SIZE, load_story_tokenizer
from course_lib.utils import asset_path, seed_everything

N_CHOICES = 4
TEST_SET_SIZE = 100  # items per task in the fixed test sets
NAMES = stories.FEMALE_NAMES + stories.MALE_NAMES


@dataclass(frozen=True)
class Item:
    """One multiple-choice question: pick the continuation of `context` among `choices`."""

    task: str
    context: str  # the story from its start up to the blank
    choices: tuple[str, ...]  # continuations, each starting with a space
    answer: int  # index of the right one
    split: str
    story_index: int

    @property
    def text(self) -> str:
        """The story up to and including the right answer (what a contamination check looks for)."""
        return self.context + self.choices[self.answer]


def _shuffled_choices(right: str, pool: list[str], rng: stories.SplitMix64) -> tuple[tuple[str, ...], int]:
    """The right answer and N_CHOICES - 1 distinct distractors from `pool`, in a random order."""
    pool = [p for p in pool if p != right]
    distractors = [pool.pop(rng.below(len(pool))) for _ in range(N_CHOICES - 1)]
    answer = rng.below(N_CHOICES)
    return tuple(distractors[:answer] + [right] + distractors[answer:]), answer


# Each builder: (story, rng) -> (context, choices, answer), or None when the task does not apply.

def colour_item(story: stories.Story, rng: stories.SplitMix64):
    """The second mention of "<colour> <thing>": the first one told us the colour."""
    colour, thing = story.facts["colour"], story.facts["thing"]
    if colour is None:
        return None
    phrase = f" {colour} {thing}"
    first = story.text.find(phrase)
    second = story.text.find(phrase, first + 1) if first >= 0 else -1
    if second < 0:
        return None
    choices, answer = _shuffled_choices(phrase, [f" {c} {thing}" for c in stories.COLOURS], rng)
    return story.text[:second], choices, answer


def friend_item(story: stories.Story, rng: stories.SplitMix64):
    """'<hero> and' after the two met: the friend's name follows."""
    hero, friend = story.facts["hero"], story.facts["friend"]
    if friend is None:
        return None
    at = story.text.find(f"{hero['name']} and {friend['name']}")
    if at < 0:
        return None
    pool = [f" {name}" for name in NAMES if name != hero["name"]]
    choices, answer = _shuffled_choices(f" {friend['name']}", pool, rng)
    return story.text[: at + len(hero["name"]) + len(" and")], choices, answer


def lost_item(story: stories.Story, rng: stories.SplitMix64):
    """'could not find his/her' names the hero's thing (with its colour, or without)."""
    at = story.text.find(" could not find ")
    if at < 0:
        return None
    end = story.text.index(" ", at + len(" could not find "))  # after "his" / "her"
    colour, thing = story.facts["colour"], story.facts["thing"]
    with_colour = story.text.startswith(f" {colour} {thing}", end)
    prefix = f" {colour} " if with_colour else " "
    choices, answer = _shuffled_choices(prefix + thing, [prefix + t for t in stories.THINGS], rng)
    return story.text[:end], choices, answer


def place_item(story: stories.Story, rng: stories.SplitMix64):
    """'"I love this' is followed by the place the speaker is at."""
    marker = '"I love this '
    at = story.text.find(marker)
    if at < 0:
        return None
    end = at + len(marker) - 1
    place = story.text[end + 1: story.text.index("!", end)]
    choices, answer = _shuffled_choices(f" {place}", [f" {p}" for p in stories.PLACES], rng)
    return story.text[:end], choices, answer


TASKS: dict[str, Callable] = {"colour": colour_item, "friend": friend_item, "lost": lost_item, "place": place_item}
_TASK_SALT = {"colour": 1, "friend": 2, "lost": 3, "place": 4}  # one PRNG stream per task and story


@functools.lru_cache(maxsize=32)
def task_items(task: str, n: int = TEST_SET_SIZE, split: str = "test", seed: int = 0) -> tuple[Item, ...]:
    """The first `n` items of a task, from stories 0, 1, 2, ... of `split` (those where it applies)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {sorted(TASKS)}")
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    items, index = [], 0
    while len(items) < n:
        story = stories.story(split, index, seed)
        rng = stories.SplitMix64((_TASK_SALT[task] << 40) ^ (seed << 20) ^ index)
        built = TASKS[task](story, rng)
        if built is not None:
            context, choices, answer = built
            items.append(Item(task, context, choices, answer, split, index))
        index += 1
    return tuple(items)


def benchmark(n: int = TEST_SET_SIZE, split: str = "test", seed: int = 0) -> dict[str, tuple[Item, ...]]:
    """Every task's first `n` items: {task name: items}."""
    return {task: task_items(task, n, split, seed) for task in TASKS}


# ----------------------------------------------------------------------------------------------------
# Range: snapshots along one training run
#
# A benchmark on which every model is either perfect or at chance cannot rank models: all those at
# chance tie, up to noise. Snapshots taken along one training run fill the range in between. The run is
# the shipped story model's own recipe (`training.PRESETS["story"]`, about 20 minutes on 2 idle cores), so
# it ends where `assets/story_gpt.pt` ends. `train_run` measures every snapshot as it is taken (bits per
# byte on the first test stories, every task's picks) and keeps the weights of one of them, so a notebook
# can reproduce that row live; `save_run` writes it all to assets/RUN_ASSET (about 2 MB), `load_run` reads
# it back.

RUN_ASSET = "story_gpt_run.pt"
RUN_PRESET = "story"
RUN_SNAPSHOTS = (0, 100, 200, 300, 400, 600, 800, 1200, 1600, 2400)  # steps after which the run is measured
RUN_TEST_STORIES = 100  # bits per byte on the first test stories (chapter 3's test texts)


@dataclass
class Snapshot:
    """One measured state of the run, after `step` steps and `tokens_seen` tokens.

    `results` holds each task's `evaluation.MultipleChoiceResult` on the first `TEST_SET_SIZE` items; `model` is
    None except for the one snapshot whose weights were kept.
    """

    step: int
    tokens_seen: int
    bits_per_byte: float
    results: dict
    model: torch.nn.Module | None = None


def measure_snapshot(model: GPT, tokenizer, test_texts: list[str], items: dict[str, tuple[Item, ...]]) -> dict:
    """Bits per byte on `test_texts` and every task's picks, as plain numbers (what `save_run` stores)."""
    from course_lib import evaluation  # evaluation imports this module

    was_training = model.training
    model.eval()
    out = {"bits_per_byte": evaluation.evaluate(model, tokenizer, test_texts).bits_per_byte, "tasks": {}}
    for task, task_items_ in items.items():
        result = evaluation.score_multiple_choice(model, tokenizer, task_items_)
        out["tasks"][task] = {"acc_picks": result.acc_picks, "acc_norm_picks": result.acc_norm_picks,
                              "answers": result.answers}
    model.train(was_training)
    return out


def train_run(snapshots: tuple[int, ...] = RUN_SNAPSHOTS, preset: str = RUN_PRESET, train_bytes: int | None = None,
              n_items: int = TEST_SET_SIZE, n_test_stories: int = RUN_TEST_STORIES, keep_weights_of: float = 0.6,
              progress: bool = True, seed: int = 0) -> dict:
    """Train `training.PRESETS[preset]` for max(snapshots) steps, measuring the model after each snapshot step.

    Keeps float16 weights of the snapshot whose mean accuracy over the tasks is closest to `keep_weights_of`
    (a model in the middle of the range). Returns what `save_run` writes.
    """
    recipe = training.PRESETS[preset]
    tokenizer = load_story_tokenizer()
    data = training.story_tokens("train", train_bytes or recipe["train_bytes"], tokenizer)
    test_texts = [s.text for s in stories.iter_stories("test", n_test_stories)]
    items = benchmark(n_items)
    seed_everything(seed)
    model = GPT(GPTConfig(vocab_size=max(STORY_VOCAB_SIZE, len(tokenizer)), **recipe["model"]))
    config = training.TrainConfig(**{**recipe["train"], "max_steps": max(snapshots), "eval_interval": max(snapshots),
                                     "eval_batches": 1, "seed": seed, "progress": progress})
    tokens_per_step = config.batch_size * model.config.block_size
    measured, weights = [], {}

    def measure(step: int, model: GPT) -> None:
        if step in snapshots:
            measured.append({"step": step, "tokens_seen": step * tokens_per_step,
                             **measure_snapshot(model, tokenizer, test_texts, items)})
            weights[step] = {name: value.detach().to("cpu", torch.float16, copy=True)
                             for name, value in model.state_dict().items()}

    measure(0, model)
    training.train(model, data, None, config, on_step=measure)
    mean_acc = {m["step"]: sum(_accuracy(t["acc_picks"], t["answers"]) for t in m["tasks"].values()) / len(m["tasks"])
                for m in measured}
    kept = min(mean_acc, key=lambda step: abs(mean_acc[step] - keep_weights_of))
    return {"config": asdict(model.config), "train": {"preset": preset, **asdict(config)}, "n_items": n_items,
            "n_test_stories": n_test_stories, "snapshots": measured, "kept": {"step": kept, "model": weights[kept]}}


def _accuracy(picks: list[int], answers: list[int]) -> float:
    return sum(p == a for p, a in zip(picks, answers)) / len(answers)


def load_run(path: str | Path | None = None, device: str | torch.device = "cpu") -> list[Snapshot]:
    """The measured snapshots of the shipped run (or of a file `save_run` wrote); the kept one has its model
    (float32, eval mode)."""
    from course_lib import evaluation

    state = torch.load(path or asset_path(RUN_ASSET), map_location="cpu", weights_only=True)
    out = []
    for entry in state["snapshots"]:
        results = {task: evaluation.MultipleChoiceResult([], r["acc_picks"], r["acc_norm_picks"], r["answers"])
                   for task, r in entry["tasks"].items()}
        model = None
        if entry["step"] == state["kept"]["step"]:
            model = GPT(GPTConfig(**state["config"]))
            model.load_state_dict({name: value.float() for name, value in state["kept"]["model"].items()})
            model = model.to(device).eval()
        out.append(Snapshot(entry["step"], entry["tokens_seen"], entry["bits_per_byte"], results, model))
    return out


def save_run(run: dict, path: str | Path) -> None:
    """Write what `train_run` returned (plain tensors, lists and numbers: `load_run` reads it with weights_only)."""
    torch.save(run, path)
