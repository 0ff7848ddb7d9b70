"""Rebuild the files shipped in assets/: `python -m course_lib build-assets [name ...]`.

Every shipped file that the course computed (rather than wrote by hand) has one builder here, so an
instructor can check that an asset is what the code makes today, and a maintainer who changes the corpus
or a chapter's code knows which command brings the assets back in line.

    story_tokenizer   chapter 1's byte-level BPE trained on the story corpus (seconds)
    story_gpt         chapter 2's story model, 4 layers, width 128 (about 20 minutes on 2 idle cores)
    story_gpt_run     chapter 3: the story model's training run, measured along the way (the benchmark's range)
    story_sft         chapter 6's SFT model; story_self_training: its rounds of self-training
                      story_preferences, story_dpo: chapter 7's pairs and DPO policy
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass

from course_lib import tokenizer, training
from course_lib.model import STORY_MODEL
from course_lib.utils import ASSETS_DIR


@dataclass(frozen=True)
class Asset:
    file: str  # in assets/
    what: str
    build: Callable[[], None]


def build_story_tokenizer() -> None:
    trained = tokenizer.build_story_tokenizer()
    trained.save(ASSETS_DIR / tokenizer.STORY_TOKENIZER)
    print(f"wrote {ASSETS_DIR / tokenizer.STORY_TOKENIZER}: {trained}")


def build_story_gpt() -> None:
    # the same arguments as `python -m course_lib.training`, so the command stored in the file reruns it
    training.main(["--preset", "story", "--half", "--out", str(ASSETS_DIR / STORY_MODEL)])


def build_story_sft() -> None:
    from course_lib import sft  # chapter 6; imported here so the other builders do not pay for it

    # the same arguments as `python -m course_lib.sft`, so the command stored in the file reruns it
    sft.main(["--out", str(ASSETS_DIR / sft.SFT_MODEL), "--summary", str(ASSETS_DIR / sft.SFT_MEASUREMENTS)])


def build_story_preferences() -> None:
    from course_lib import preferences  # chapter 7

    preferences.main()


def build_story_dpo() -> None:
    from course_lib import dpo  # chapter 7: the DPO policy, the reward model and the measurements

    dpo.main(["--out", str(ASSETS_DIR / dpo.DPO_MODEL), "--summary", str(ASSETS_DIR / dpo.DPO_MEASUREMENTS)])


def build_story_gpt_run() -> None:
    from course_lib import tasks  # chapter 3: the story model's training run, measured at snapshots

    tasks.save_run(tasks.train_run(), ASSETS_DIR / tasks.RUN_ASSET)


def build_story_self_training() -> None:
    from course_lib import self_training  # chapter 6: rounds of self-training, filtered by the verifier or not

    path = ASSETS_DIR / self_training.SELF_TRAINING_ASSET
    path.write_text(json.dumps(self_training.build(), indent=1) + "\n")


def build_scaling_sweep() -> None:
    from course_lib import scaling  # chapter 5

    # the same arguments as `python -m course_lib.scaling`: two shards side by side, rebuilt beside the shipped
    # file (resumable if interrupted), which is replaced once every run is in
    scaling.main(["--preset", "story", "--jobs", "2", "--fresh", "--out", str(ASSETS_DIR / scaling.SWEEP_ASSET)])


ASSETS = {
    "story_tokenizer": Asset(tokenizer.STORY_TOKENIZER, "the story tokenizer (chapter 1), seconds", build_story_tokenizer),
    "story_gpt": Asset(STORY_MODEL, "the story model (chapter 2), about 20 minutes on 2 idle cores", build_story_gpt),
    "story_gpt_run": Asset("story_gpt_run.pt", "the story model's recipe rerun, measured at 10 snapshots (chapter 3), about 30 minutes "
                           "on 2 idle cores", build_story_gpt_run),
    "story_sft": Asset("story_sft.pt", "the SFT story model (chapter 6), about half an hour on 2 busy cores", build_story_sft),
    "story_self_training": Asset("story_self_training.json", "four rounds of self-training from the SFT model, filtered "
                                 "by the verifier and not (chapter 6), about 7 minutes on 2 idle cores", build_story_self_training),
    "story_preferences": Asset("story_preferences.json.gz", "the preference pairs of chapter 7 (stories sampled from "
                               "the SFT model, labelled by r*), about 20 minutes on 2 busy cores", build_story_preferences),
    "story_dpo": Asset("story_dpo.pt", "the DPO policy (two rounds), reward models and judges of chapter 7 with their measurements, "
                       "about 20 minutes on 2 busy cores", build_story_dpo),
    "scaling_sweep": Asset("scaling_sweep.jsonl", "the compute sweep of chapter 5 (29 small GPTs), 15 to 40 minutes on 2 cores",
                           build_scaling_sweep),
}


def build_assets(names: list[str]) -> None:
    """Rebuild the named assets (all of them if `names` is empty), in the order of ASSETS."""
    unknown = sorted(set(names) - set(ASSETS))
    if unknown:
        raise ValueError(f"unknown asset(s) {', '.join(unknown)}; known: {', '.join(ASSETS)}")
    for name, asset in ASSETS.items():
        if names and name not in names:
            continue
        started = time.perf_counter()
        print(f"building {name} -> assets/{asset.file} ({asset.what})", flush=True)
        asset.build()
        print(f"built {name} in {time.perf_counter() - started:.0f} s", flush=True)
