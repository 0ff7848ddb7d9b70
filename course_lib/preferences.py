"""Preferences with a known true reward (chapter 7): r*, Bradley–Terry labels with known noise, the pair set.

Every preference data set in practice is labelled by people (or a model) whose "true" preference nobody can
write down, so nobody can say how good a tuned model really is. Here the readers' preference is a function:

    true reward   r*(request, story) = 0 for anything that is not a valid story under the grammar
                  (`stories.score`); a valid story earns 1, doing everything the request asks (hero name,
                  kind, colour, thing, and the thing gets lost: `instructions.verify`) earns 2 more, and
                  readers like short stories: up to 1 more, 1/120 less for each word (0 from 120 words on).
                  So r* lies in {0} ∪ [1, 2] ∪ [3, 4]. Chapter 6's data never taught brevity.
    labels        a reader shown two stories a and b picks a with probability σ(r*(a) − r*(b))
                  (Bradley–Terry); the label disagrees with r* with probability σ(−|Δr*|), so the label
                  noise of a pair set is known exactly, and so is the best pair accuracy any model can reach
                  on it: 1 − mean σ(−|Δr*|) (always predicting the story r* prefers)
    pairs         for each writing request, k stories sampled from chapter 6's SFT model at temperature 1;
                  the pair is the r*-best and r*-worst of them (requests whose k stories tie are skipped),
                  and a simulated reader labels it. Requests come from chapter 6's splits (train/val/test).

`python -m course_lib build-assets story_preferences` rebuilds the shipped pair set (assets/story_preferences.json.gz).
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch

from course_lib import instructions, sft, stories
from course_lib.utils import ASSETS_DIR, asset_path

PREFERENCES_ASSET = "story_preferences.json.gz"
VALID_REWARD, FULFILLED_REWARD, BREVITY_REWARD = 1.0, 2.0, 1.0
BREVITY_WORDS = 120  # the brevity bonus falls from 1 (no words) to 0 (this many words or more)
SIZES = {"train": 2000, "val": 100, "test": 200}  # requests per split in the shipped set
SAMPLES_PER_REQUEST = {"train": 4, "val": 4, "test": 8}


# ----------------------------------------------------------------------------------------------------
# The true reward


def reward_parts(request: instructions.Example, story: str) -> dict[str, float]:
    """The three terms of r* (see the module docstring): valid, fulfilled, brevity."""
    if request.family != "writing":
        raise ValueError(f"r* judges answers to writing requests, got a {request.family!r} example")
    if not stories.score(story).ok:
        return {"valid": 0.0, "fulfilled": 0.0, "brevity": 0.0}
    fulfilled = instructions.verify(request, story).ok
    words = len(story.split())
    return {"valid": VALID_REWARD, "fulfilled": FULFILLED_REWARD * fulfilled,
            "brevity": BREVITY_REWARD * max(0.0, 1.0 - words / BREVITY_WORDS)}


def true_reward(request: instructions.Example, story: str) -> float:
    """r*(request, story): 0 if not a valid story, else 1 + 2·[does all the request asks] + brevity in [0, 1]."""
    return sum(reward_parts(request, story).values())


# ----------------------------------------------------------------------------------------------------
# Bradley–Terry


def preference_probability(reward_a: float, reward_b: float) -> float:
    """P(a reader prefers a over b) = σ(r_a − r_b) (Bradley–Terry)."""
    return 1.0 / (1.0 + math.exp(reward_b - reward_a))


def label_noise(reward_differences: Sequence[float]) -> float:
    """Expected fraction of labels that disagree with r*: the mean of σ(−|Δr|) over the pairs."""
    if len(reward_differences) == 0:
        raise ValueError("no pairs: the label noise of an empty set is undefined")
    return sum(1.0 / (1.0 + math.exp(abs(d))) for d in reward_differences) / len(reward_differences)


def best_pair_accuracy(reward_differences: Sequence[float]) -> float:
    """The highest expected agreement with the (noisy) labels any model can reach: 1 − label noise."""
    return 1.0 - label_noise(reward_differences)


def bt_label(reward_a: float, reward_b: float, generator: torch.Generator) -> bool:
    """Draw a simulated reader's choice: True if a is picked (probability σ(r_a − r_b))."""
    return torch.rand((), generator=generator, dtype=torch.float64).item() < preference_probability(reward_a, reward_b)


# ----------------------------------------------------------------------------------------------------
# Pairs


@dataclass(frozen=True)
class Pair:
    """One labelled comparison: the reader chose `chosen` over `rejected` for `prompt`."""

    prompt: str
    chosen: str
    rejected: str
    reward_chosen: float  # r* of each, kept to measure against (a real data set has no such column)
    reward_rejected: float
    split: str
    index: int  # the request: instructions.family_examples("writing", split, ...)[index]

    @property
    def agrees_with_reward(self) -> bool:
        """False for a noisy label: the reader picked the story r* likes less."""
        return self.reward_chosen > self.reward_rejected


def sample_stories(model, tokenizer, requests: Sequence[instructions.Example], k: int, seed: int = 0,
                   temperature: float = 1.0) -> list[list[str]]:
    """k stories per request from `model` (request i, sample j uses seed + j: reruns give the same stories)."""
    out: list[list[str]] = [[] for _ in requests]
    for j in range(k):
        answers = sft.respond(model, tokenizer, [r.prompt for r in requests], temperature, seed + 1000 * j)
        for i, answer in enumerate(answers):
            out[i].append(answer)
    return out


def make_pairs(requests: Sequence[instructions.Example], samples: Sequence[Sequence[str]], seed: int = 0) -> list[Pair]:
    """The r*-best and r*-worst story of each request, labelled by a Bradley–Terry reader (ties skipped)."""
    generator = torch.Generator().manual_seed(seed)
    pairs = []
    for k, (request, candidates) in enumerate(zip(requests, samples)):
        rewards = [true_reward(request, s) for s in candidates]
        best, worst = max(range(len(rewards)), key=rewards.__getitem__), min(range(len(rewards)), key=rewards.__getitem__)
        if rewards[best] == rewards[worst]:
            continue
        a, b = (best, worst) if bt_label(rewards[best], rewards[worst], generator) else (worst, best)
        pairs.append(Pair(request.prompt, candidates[a], candidates[b], rewards[a], rewards[b], request.split, k))
    return pairs


def requests(split: str, n: int | None = None) -> tuple[instructions.Example, ...]:
    """The writing requests of a split that the shipped pair set uses."""
    return instructions.family_examples("writing", split, SIZES[split] if n is None else n)


def build(model=None, tokenizer=None, sizes: dict | None = None, seed: int = 0, progress: bool = True) -> dict:
    """Sample, score and label: {"pairs": {split: [Pair as dict]}, "samples": {"test": [[story] per request]}}.

    The test split keeps all its samples too: they are the reference model's stories that chapter 7
    measures everything against (win rate, best-of-n, the exact KL-regularised optimum).
    """
    model = model or sft.load_sft_model()
    tokenizer = tokenizer or sft.chat_tokenizer()
    sizes = sizes or SIZES
    out: dict = {"pairs": {}, "samples": {}, "sizes": sizes, "samples_per_request": SAMPLES_PER_REQUEST, "seed": seed}
    for split, n in sizes.items():
        if progress:
            print(f"sampling {SAMPLES_PER_REQUEST[split]} stories for each of {n} {split} requests", flush=True)
        samples = sample_stories(model, tokenizer, requests(split, n), SAMPLES_PER_REQUEST[split], seed)
        out["pairs"][split] = [asdict(p) for p in make_pairs(requests(split, n), samples, seed + 1)]
        if split == "test":
            out["samples"][split] = samples
    return out


def save(data: dict, path=None) -> None:
    path = path or ASSETS_DIR / PREFERENCES_ASSET
    with gzip.open(path, "wt", encoding="utf-8") as f:
        json.dump(data, f)


def load(path=None) -> dict:
    """The shipped preference data, with pairs as `Pair` objects."""
    with gzip.open(path or asset_path(PREFERENCES_ASSET), "rt", encoding="utf-8") as f:
        data = json.load(f)
    data["pairs"] = {split: [Pair(**p) for p in pairs] for split, pairs in data["pairs"].items()}
    return data


def main() -> None:
    torch.set_num_threads(1)  # decoding: one thread is fastest on a busy machine (see lm.one_thread_on_cpu)
    data = build()
    save(data)
    for split, pairs in data["pairs"].items():
        deltas = [p["reward_chosen"] - p["reward_rejected"] for p in pairs]
        print(f"{split}: {len(pairs)} pairs, expected label noise {label_noise(deltas):.3f}")


if __name__ == "__main__":
    main()
