"""The whole pipeline: every stage in order over a crawl, and how well each stage does against its labels.

    clean_page     the per-page stages (extract, language, gopher_quality, gopher_repetition, c4,
                   toxicity, then PII masking); the first stage with a reason drops the page
    deduplicate    the corpus-level stages over the pages still kept: exact, then near duplicates
    clean_crawl    both, over a list of raw pages: one `Document` per page says what became of it

Because every page of `course_lib.crawl` is labeled with its defect, each stage can be scored like a
classifier (`stage_scores`): precision (of the pages it removed, how many had some defect) and recall
(of the pages with a defect it is meant to catch, how many it removed), both on the pages that reached
it. `where_caught` shows which stage removed each kind of defect, `pii_scores` how much planted PII the
masking found. `compare_training_data` judges the pipeline as a whole, the way FineWeb judged each
of its choices: the same small GPT (chapter 3's) trained on the raw and on the cleaned text, for the same
number of tokens and with the same seed, and scored in bits per byte on held-out text. The scores read
the records through `LabeledPage`, so this module needs no import of the crawl (cleaning code must not
depend on the generator of its test data).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from tqdm.auto import tqdm

from course_lib.data_cleaning.c4 import c4_clean
from course_lib.data_cleaning.dedup import exact_duplicate_of, near_duplicates
from course_lib.data_cleaning.extract import extract_text
from course_lib.data_cleaning.language import LanguageIdentifier, default_identifier, language_reasons
from course_lib.data_cleaning.pii import PII_PLACEHOLDERS, find_pii, mask_pii
from course_lib.data_cleaning.quality import gopher_quality_reasons
from course_lib.data_cleaning.repetition import gopher_repetition_reasons
from course_lib.data_cleaning.toxicity import toxicity_reasons

# ----------------------------------------------------------------------------------------------------
# Running the stages.

STAGES = ("extract", "language", "gopher_quality", "gopher_repetition", "c4", "toxicity", "pii", "exact_dedup",
          "near_dedup")


@dataclass
class Document:
    """One page's way through the pipeline: where it was dropped and why, or the text that was kept."""

    index: int
    text: str = ""  # the kept text (after C4's line filter and PII masking)
    raw_bytes: int = 0
    text_bytes: int = 0  # UTF-8 bytes of the extracted text, before C4's line filter
    dropped_at: str | None = None
    reasons: list[str] = field(default_factory=list)
    pii: dict[str, int] = field(default_factory=dict)
    pii_found: list[tuple[str, str]] = field(default_factory=list)
    duplicate_of: int | None = None

    @property
    def kept(self) -> bool:
        return self.dropped_at is None


def _drop(doc: Document, stage: str, reasons: list[str]) -> Document:
    doc.dropped_at, doc.reasons = stage, reasons
    return doc


def clean_page(index: int, raw: bytes, identifier: LanguageIdentifier | None = None,
               min_toxic_hits: int = 1) -> Document:
    """The per-page stages, in order; the first stage with a reason drops the page."""
    identifier = identifier or default_identifier()
    extracted = extract_text(raw)
    text = extracted.text
    doc = Document(index, raw_bytes=len(raw), text_bytes=len(text.encode("utf-8")))
    filters = [("extract", lambda _: extracted.reasons),
               ("language", lambda t: language_reasons(t, identifier)),
               ("gopher_quality", gopher_quality_reasons),
               ("gopher_repetition", gopher_repetition_reasons)]
    for stage, reasons_of in filters:
        reasons = reasons_of(text)
        if reasons:
            return _drop(doc, stage, reasons)
    text, reasons = c4_clean(text)  # C4 changes the text: only sentence-like lines stay
    if reasons:
        return _drop(doc, "c4", reasons)
    reasons = toxicity_reasons(text, min_hits=min_toxic_hits)
    if reasons:
        return _drop(doc, "toxicity", reasons)
    doc.pii_found = find_pii(text)
    doc.text, doc.pii = mask_pii(text)
    return doc


def deduplicate(docs: list[Document], near_threshold: float = 0.7) -> None:
    """The corpus-level stages: exact, then near duplicates of kept pages are dropped (first copy stays)."""
    kept = [d for d in docs if d.kept]
    for doc, first in zip(kept, exact_duplicate_of([d.text for d in kept])):
        if first is not None:
            _drop(doc, "exact_dedup", ["exact_duplicate"]).duplicate_of = kept[first].index
    kept = [d for d in docs if d.kept]
    for doc, first in zip(kept, near_duplicates([d.text for d in kept], threshold=near_threshold).duplicate_of):
        if first is not None:
            _drop(doc, "near_dedup", ["near_duplicate"]).duplicate_of = kept[first].index


def clean_crawl(pages: list[bytes], identifier: LanguageIdentifier | None = None, min_toxic_hits: int = 1,
                near_threshold: float = 0.7, progress: bool = False) -> list[Document]:
    """Run every stage over the pages (raw bytes): one `Document` per page says what became of it."""
    if progress:
        pages = tqdm(pages, desc="cleaning", unit="page")
    docs = [clean_page(i, raw, identifier, min_toxic_hits) for i, raw in enumerate(pages)]
    deduplicate(docs, near_threshold)
    return docs


# ----------------------------------------------------------------------------------------------------
# Scoring the stages against the crawl's labels.


class LabeledPage(Protocol):
    """The ground truth of a page that the scores read (`course_lib.crawl.CrawlRecord` has it)."""

    @property
    def defect(self) -> str: ...  # "" for a good page

    @property
    def pii(self) -> tuple[tuple[str, str], ...]: ...  # every (kind, value) planted in the text

    @property
    def is_good(self) -> bool: ...


# Which defects each stage is meant to catch (for recall). Precision counts any defect as a fair catch.
STAGE_TARGETS = {
    "extract": {"not_text", "boilerplate"},
    "language": {"foreign", "gibberish"},
    "gopher_quality": {"low_quality", "gibberish", "boilerplate", "spam"},
    "gopher_repetition": {"spam", "low_quality"},
    "c4": {"low_quality", "boilerplate", "spam"},
    "toxicity": {"toxic"},
    "exact_dedup": {"exact_dup"},
    "near_dedup": {"near_dup", "exact_dup"},
}


@dataclass
class StageScore:
    """How one stage did on the pages that reached it."""

    stage: str
    reached: int  # pages that got this far
    removed: int
    good_removed: int  # false positives: pages with no defect
    targets: int  # reached pages with a defect this stage is meant to catch
    targets_removed: int

    @property
    def precision(self) -> float:
        return 1.0 - self.good_removed / self.removed if self.removed else float("nan")

    @property
    def recall(self) -> float:
        return self.targets_removed / self.targets if self.targets else float("nan")


def stage_scores(docs: list[Document], records: Iterable[LabeledPage]) -> list[StageScore]:
    """Precision (removed pages that had some defect) and recall (of the stage's target defects) per stage,
    each measured on the pages that reached the stage. `records` are the crawl's `CrawlRecord`s."""
    scores, alive = [], list(zip(docs, records))
    for stage, targets in STAGE_TARGETS.items():
        removed = [(d, r) for d, r in alive if d.dropped_at == stage]
        scores.append(StageScore(stage, len(alive), len(removed), sum(r.is_good for _, r in removed),
                                 sum(r.defect in targets for _, r in alive),
                                 sum(r.defect in targets for _, r in removed)))
        alive = [(d, r) for d, r in alive if d.dropped_at != stage]
    return scores


def where_caught(docs: list[Document], records: Iterable[LabeledPage]) -> dict[str, Counter]:
    """For each defect ("" = good pages): how many pages each stage removed, and how many were kept."""
    table: dict[str, Counter] = {}
    for doc, record in zip(docs, records):
        table.setdefault(record.defect, Counter())[doc.dropped_at or "kept"] += 1
    return table


def pii_scores(docs: list[Document], records: Iterable[LabeledPage]) -> dict[str, tuple[int, int, int]]:
    """Per PII kind, over the kept pages: (planted, found, found that were planted)."""
    result = {kind: [0, 0, 0] for kind in PII_PLACEHOLDERS}
    for doc, record in zip(docs, records):
        if not doc.kept:
            continue
        planted = Counter(record.pii)
        for kind, _ in record.pii:
            result[kind][0] += 1
        for kind, value in doc.pii_found:
            result[kind][1] += 1
            if planted[(kind, value)] > 0:
                planted[(kind, value)] -= 1
                result[kind][2] += 1
    return {kind: tuple(v) for kind, v in result.items()}


# ----------------------------------------------------------------------------------------------------
# Judging the cleaning by training on it (FineWeb's method: train small models on each version of the
# data, with the same budget and seed, and compare them on the same held-out text).

# Chapter 3's tiny GPT and its schedule: small enough to train twice in a notebook on a laptop CPU.
SMALL_GPT = dict(block_size=64, n_layer=2, n_head=2, n_embd=64)
SMALL_TRAINING = dict(batch_size=16, learning_rate=1e-2, min_lr=1e-3, warmup_steps=20)


def train_small_gpt(texts: list[str], tokenizer, max_steps: int = 200, seed: int = 0, progress: bool = False):
    """Chapter 3's tiny GPT trained on `texts` for `max_steps` steps of 16 x 64 tokens: (model, history).

    The texts become one token stream, <|endoftext|> between documents (`training.encode_stories`), and
    batches are random windows of it, so two corpora get exactly the same number of training tokens
    (max_steps x 16 x 64) whatever their size: a run sees less than one epoch of a large corpus and
    repeats a small one.
    """
    from course_lib import training  # chapter 2's loop; imported here so cleaning alone needs no torch
    from course_lib.lm import tokenizer_size
    from course_lib.model import GPT, GPTConfig
    from course_lib.utils import seed_everything

    seed_everything(seed)
    model = GPT(GPTConfig(vocab_size=tokenizer_size(tokenizer), **SMALL_GPT))
    config = training.TrainConfig(max_steps=max_steps, eval_interval=10**9, seed=seed, progress=progress, **SMALL_TRAINING)
    history = training.train(model, training.encode_stories(texts, tokenizer), None, config)
    return model, history


def compare_training_data(corpora: dict[str, list[str]], eval_sets: dict[str, list[str]], tokenizer,
                          max_steps: int = 200, seed: int = 0, progress: bool = False) -> dict[str, dict[str, float]]:
    """Train one small GPT per corpus (same budget, same seed) and score it on every evaluation set.

    Returns {corpus name: {evaluation set name: bits per byte}} (`lm.model_bits_per_byte`, pooled over
    the set's documents). Lower is better; divide by a known floor (`stories.entropy_floor`) where one exists.
    """
    from course_lib.lm import model_bits_per_byte

    table = {}
    for name, texts in corpora.items():
        model, _ = train_small_gpt(texts, tokenizer, max_steps, seed, progress)
        table[name] = {set_name: model_bits_per_byte(model, tokenizer, set_texts) for set_name, set_texts in eval_sets.items()}
    return table
