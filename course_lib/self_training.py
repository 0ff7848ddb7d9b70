"""Models as data makers: rejection-sampling fine-tuning against an exact verifier.

STaR (Zelikman et al., 2022) and RFT (Yuan et al., 2023) let a model write answers, keep the ones a
checker accepts, and fine-tune the model on them; then repeat. Elsewhere the checker is all one knows
about the data's quality. In the story world the verifier is exact (`instructions.verify`) and the
grammar says how varied stories should be, so every round can be held against the truth:

    score      the verifier's pass rate on the held-out writing requests, answered at temperature 1
    drift      bits per byte on test stories divided by their floor: does a model that learns from
               itself forget how stories go?
    diversity  the share of distinct stories among the answers, and the entropy of a choice the
               requests leave free (the places the hero goes to), against the entropy of the same
               choice in as many corpus stories

One round (`run_round`): the current model answers `n_prompts` fresh writing requests once, at
temperature 1 (requests from train stories far past those chapter 6's SFT data used); "filtered" keeps
the answers the verifier accepts, "unfiltered" keeps them all; the model is fine-tuned on the kept
(request, answer) conversations with chapter 6's `sft.finetune`. The next round starts from that model.
`python -m course_lib build-assets story_self_training` runs both arms from the shipped SFT model and
writes the measurements to assets/SELF_TRAINING_ASSET.
"""

from __future__ import annotations

import copy
import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace

from course_lib import instructions, lm, sft, stories
from course_lib.utils import asset_path

SELF_TRAINING_ASSET = "story_self_training.json"
FRESH_START = 50_000  # requests come from train stories from here on: chapter 6's SFT data stops far below
ROUND_CONFIG = sft.SFTConfig(steps=50, batch_size=16, learning_rate=3e-4, min_lr=3e-5, warmup_steps=5,
                             loss_per="example", init_new_tokens=False, progress=False)
EVAL_STORIES = 100  # test stories for the drift in bits per byte


def fresh_requests(round_index: int, n: int) -> tuple[instructions.Example, ...]:
    """The `n` writing requests of one round: new ones every round, never seen in training before."""
    return instructions.family_examples("writing", "train", n, start=FRESH_START + round_index * 10 * n)


def keep_verified(requests: Sequence[instructions.Example], answers: Sequence[Sequence[str]],
                  max_per_request: int = 1) -> list[instructions.Example]:
    """RFT's filter: for each request, its answers that the verifier accepts, each distinct answer once, at most
    `max_per_request` of them (the first ones), as training examples (the request with `response` = the answer).

    answers[i] holds the answers sampled for requests[i]. Repeats are dropped as RFT does with reasoning paths:
    a story kept twice would count twice in the loss without adding anything new.
    """
    if len(requests) != len(answers):
        raise ValueError(f"one list of answers per request: {len(requests)} requests, {len(answers)} lists")
    kept = []
    for request, candidates in zip(requests, answers):
        chosen: list[str] = []
        for answer in candidates:
            if len(chosen) < max_per_request and answer not in chosen and instructions.verify(request, answer).ok:
                chosen.append(answer)
        kept += [replace(request, response=answer) for answer in chosen]
    return kept


def keep_all(requests: Sequence[instructions.Example], answers: Sequence[Sequence[str]]) -> list[instructions.Example]:
    """Every answer to every request, checked or not: the unfiltered arm (only empty answers are left out:
    they teach nothing, and `sft.check_messages` refuses them)."""
    if len(requests) != len(answers):
        raise ValueError(f"one list of answers per request: {len(requests)} requests, {len(answers)} lists")
    return [replace(request, response=answer) for request, candidates in zip(requests, answers)
            for answer in candidates if answer.strip()]


def entropy_bits(counts: Counter) -> float:
    """Plug-in entropy (bits) of the distribution the counts came from."""
    total = sum(counts.values())
    return -sum(c / total * math.log2(c / total) for c in counts.values() if c) if total else 0.0


def place_counts(texts: Sequence[str]) -> Counter:
    """How often each place is visited in the valid stories among `texts` (invalid ones have no facts)."""
    counts = Counter()
    for text in texts:
        parsed = stories.score(text)
        if parsed.ok:
            counts.update(parsed.facts["places"])
    return counts


def diversity(texts: Sequence[str]) -> dict:
    """Distinct stories among `texts`, and the entropy of their places beside that of the corpus's.

    The corpus's entropy is measured on as many places from test stories as the texts have, since the
    plug-in estimate is biased low on small samples: like for like.
    """
    places = place_counts(texts)
    n_places = sum(places.values())
    corpus, index = Counter(), 0
    while corpus.total() < n_places:
        corpus.update(stories.story("test", index).facts["places"])
        index += 1
    return {"distinct": len(set(texts)), "n": len(texts), "place_entropy": entropy_bits(places),
            "corpus_place_entropy": entropy_bits(corpus), "n_places": n_places}


def measure(model, tokenizer, n_eval: int, seed: int = 0) -> dict:
    """The verifier's score at temperature 1 on held-out writing requests, drift and diversity."""
    requests = instructions.held_out("writing", n_eval)
    answers = sft.respond(model, tokenizer, [r.prompt for r in requests], temperature=1.0, seed=seed)
    test = [s.text for s in stories.iter_stories("test", EVAL_STORIES)]
    return {"passed": sum(instructions.verify(r, a).ok for r, a in zip(requests, answers)), "n": len(requests),
            "bits_per_byte": lm.model_bits_per_byte(model, tokenizer, test),
            "floor": stories.entropy_floor("test", EVAL_STORIES)[0], **diversity(answers)}


def cut_at_special_tokens(answer: str) -> str:
    """The answer up to the first chat special token written as text (`<|endoftext|>`, a role, `<|end|>`).

    A sampled answer sometimes ends the document with <|endoftext|> and goes on; a server stops at any end
    token, and training text may not hold special tokens as text (`sft.check_messages` refuses them).
    """
    cut = min([answer.index(t) for t in sft.CHAT_SPECIAL_TOKENS if t in answer], default=len(answer))
    return answer[:cut]


def run_round(model, tokenizer, round_index: int, n_prompts: int, filtered: bool, config: sft.SFTConfig = ROUND_CONFIG,
              seed: int = 0) -> dict:
    """Sample, keep (verified or all), fine-tune `model` in place; what was kept, counted."""
    requests = fresh_requests(round_index, n_prompts)
    answers = sft.respond(model, tokenizer, [r.prompt for r in requests], temperature=1.0, seed=seed + 1000 * round_index)
    answers = [cut_at_special_tokens(a) for a in answers]
    one_each = [[answer] for answer in answers]
    kept = keep_verified(requests, one_each) if filtered else keep_all(requests, one_each)
    model.train()
    if kept:
        sft.finetune(model, tokenizer, kept, replace(config, seed=seed + round_index))
    model.eval()
    return {"sampled": len(answers), "kept": len(kept), "kept_valid": sum(instructions.verify(r, r.response).ok for r in kept)}


def self_train(model, tokenizer, rounds: int = 4, n_prompts: int = 400, n_eval: int = 200, filtered: bool = True,
               config: sft.SFTConfig = ROUND_CONFIG, progress: bool = True) -> list[dict]:
    """`rounds` rounds from a copy of `model`; one entry per round (round 0: the model itself, measured)."""
    model = copy.deepcopy(model).eval()
    history = [{"round": 0, **measure(model, tokenizer, n_eval)}]
    for r in range(1, rounds + 1):
        data = run_round(model, tokenizer, r, n_prompts, filtered, config)
        history.append({"round": r, **data, **measure(model, tokenizer, n_eval)})
        if progress:
            h = history[-1]
            print(f"{'filtered' if filtered else 'unfiltered'} round {r}: kept {h['kept']}/{h['sampled']}, "
                  f"passes {h['passed']}/{h['n']}, {h['bits_per_byte'] / h['floor']:.3f}x floor, "
                  f"{h['distinct']} distinct, places {h['place_entropy']:.2f} bits", flush=True)
    return history


def build(rounds: int = 4, n_prompts: int = 400, n_eval: int = 200) -> dict:
    """Both arms from the shipped SFT model: what assets/SELF_TRAINING_ASSET holds."""
    model, tokenizer = sft.load_sft_model(), sft.chat_tokenizer()
    out = {"rounds": rounds, "n_prompts": n_prompts, "n_eval": n_eval, "config": {
        k: v for k, v in vars(ROUND_CONFIG).items() if k != "progress"}}
    for arm in ("filtered", "unfiltered"):
        out[arm] = self_train(model, tokenizer, rounds, n_prompts, n_eval, filtered=arm == "filtered")
    return out


def load(path=None) -> dict:
    """The shipped measurements (or those a `build` wrote to `path`)."""
    with open(path or asset_path(SELF_TRAINING_ASSET)) as f:
        return json.load(f)
