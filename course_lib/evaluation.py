"""Evaluating language models (chapter 3): likelihoods, perplexity, bits per byte, benchmarks, contamination.

    texts --tokenizer--> ids;  inputs = <|endoftext|> ids,  targets = ids <|endoftext|>
          --windows of at most the model's context--> model(idx) -> logits [B, T, V]
          --log-softmax, pick each target--> per-token log-likelihoods (nats)
          --pool over the corpus--> perplexity (per token), bits per byte (per UTF-8 byte of the text)

Every course model fits: `model(idx: LongTensor [B, T]) -> logits [B, T, V]`, the GPT of
`course_lib.model` as well as the count-based models of `course_lib.ngram`. The metrics are
lm-evaluation-harness's:

    perplexity      = exp(-Σ loglik / Σ tokens)
    byte_perplexity = exp(-Σ loglik / Σ bytes)
    bits_per_byte   = -Σ loglik / Σ bytes / ln 2

pooled over the corpus: log-likelihoods and sizes are added up over all documents first and divided
once, so a long document counts as much as its length (not as one vote, as a mean of ratios would).
The bytes are those of the original UTF-8 text, so bits per byte does not depend on the tokenizer.

A document is scored from its start: the model first reads <|endoftext|> (what every story follows in
training) and must also predict the <|endoftext|> after it, so knowing where a story ends is paid for,
as in the corpus floor `stories.entropy_floor()`.

Then: multiple-choice scoring (acc, acc_norm), aggregation across tasks (mean, HELM's mean win rate),
contamination (word n-gram overlap between test items and training text), and the grammar as a judge
of free generations. The benchmark tasks themselves are built in `course_lib.tasks`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import torch

from course_lib import lm, stories
from course_lib.lm import (
    END_OF_TEXT,
    check_model_and_tokenizer,
    model_context_size,
    score_rows,
)
from course_lib.tokenizer import BPETokenizer

# ----------------------------------------------------------------------------------------------------
# Inputs


def byte_tokenizer():
    """A byte-level tokenizer: a BPE tokenizer without merges (ids 0..255 the bytes, 256 <|endoftext|>)."""
    return BPETokenizer([], [END_OF_TEXT])


def check_texts(texts: Sequence[str]) -> list[str]:
    if isinstance(texts, str):
        raise TypeError("expected a list of texts, got one string; wrap it in a list: [text]")
    texts = list(texts)
    if not texts:
        raise ValueError("no texts to evaluate: the list is empty")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise TypeError(f"text {i} is a {type(text).__name__}, not a str")
        if not text:
            raise ValueError(f"text {i} is empty: there is nothing to score (and no bytes to divide by)")
    return texts


# ----------------------------------------------------------------------------------------------------
# Per-token log-likelihoods


def document_log_likelihoods(model: torch.nn.Module, tokenizer, texts: Sequence[str], context_size: int | None = None,
                             stride: int | None = None, batch_size: int = 16) -> list[torch.Tensor]:
    """Per-token log-likelihoods (nats) of each text, scored from its start, its end-of-text included.

    Text i with n tokens gives a float64 tensor [n + 1]: the model reads <|endoftext|> t_1 ... t_n and
    predicts t_1 ... t_n <|endoftext|>. Texts longer than the context go through `lm.window_spans`
    (context_size: at most the model's own, default the model's own; stride: see there). This is the
    core scorer, `lm.document_log_likelihoods`, with the checks a user's texts and tokenizer need.
    """
    texts = check_texts(texts)
    eot = check_model_and_tokenizer(model, tokenizer)
    limit = model_context_size(model)
    if context_size is None:
        context_size = limit
    elif context_size < 1 or (limit is not None and context_size > limit):
        raise ValueError(f"context_size must lie in [1, {limit}] for this model, got {context_size}")
    token_lists = [tokenizer.encode(text) for text in texts]
    return lm.document_log_likelihoods(model, token_lists, eot, context_size, stride, batch_size)


# ----------------------------------------------------------------------------------------------------
# Pooled metrics


def _pooled_loglik(token_logliks: Sequence) -> tuple[float, int]:
    """(Σ log-likelihood, Σ tokens) over documents, each a sequence or 1-D tensor of per-token values."""
    if isinstance(token_logliks, torch.Tensor) or not isinstance(token_logliks, (list, tuple)):
        raise TypeError("expected a list with one sequence of per-token log-likelihoods per document, "
                        f"got a {type(token_logliks).__name__}")
    if not token_logliks:
        raise ValueError("no documents: the list of log-likelihoods is empty")
    total, count = 0.0, 0
    for i, doc in enumerate(token_logliks):
        values = torch.as_tensor(doc, dtype=torch.float64).reshape(-1)
        if values.numel() == 0:
            raise ValueError(f"document {i} has no tokens")
        if torch.isnan(values).any():
            raise ValueError(f"document {i} has NaN log-likelihoods")
        if (values > 1e-6).any():
            raise ValueError(f"document {i} has positive log-likelihoods (up to {values.max().item():.3g}); "
                             "a log-probability is <= 0: did you pass negative log-likelihoods (losses)?")
        total += values.sum().item()
        count += values.numel()
    return total, count


def _total_bytes(texts: Sequence[str], n_documents: int) -> int:
    if isinstance(texts, str):
        raise TypeError("expected a list of texts, got one string; wrap it in a list: [text]")
    if len(texts) != n_documents:
        raise ValueError(f"{n_documents} documents of log-likelihoods but {len(texts)} texts")
    total = sum(len(text.encode("utf-8")) for text in texts)
    if total == 0:
        raise ValueError("the texts have no bytes")
    return total


def _exp(x: float) -> float:
    return math.exp(x) if x < 709.0 else float("inf")  # past e^709 a float64 overflows


def perplexity(token_logliks: Sequence) -> float:
    """exp(-Σ loglik / Σ tokens), pooled over all tokens of all documents (a list of 1-D tensors or lists)."""
    total, count = _pooled_loglik(token_logliks)
    return _exp(-total / count)


def byte_perplexity(token_logliks: Sequence, texts: Sequence[str]) -> float:
    """exp(-Σ loglik / Σ UTF-8 bytes of the texts), pooled."""
    total, _ = _pooled_loglik(token_logliks)
    return _exp(-total / _total_bytes(texts, len(token_logliks)))


def bits_per_byte(token_logliks: Sequence, texts: Sequence[str]) -> float:
    """-Σ loglik / Σ UTF-8 bytes of the texts / ln 2, pooled: bits the model spends per byte of text."""
    total, _ = _pooled_loglik(token_logliks)
    return -total / _total_bytes(texts, len(token_logliks)) / math.log(2)


@dataclass
class Evaluation:
    """A model's per-token log-likelihoods on some texts, and the pooled metrics of them."""

    texts: list[str]
    token_logliks: list[torch.Tensor]  # one float64 tensor [n_tokens_i + 1] per text, nats

    @property
    def n_tokens(self) -> int:
        return sum(t.numel() for t in self.token_logliks)

    @property
    def n_bytes(self) -> int:
        return sum(len(t.encode("utf-8")) for t in self.texts)

    @property
    def nll_per_token(self) -> float:
        """Mean negative log-likelihood per token (nats): the log of the perplexity."""
        total, count = _pooled_loglik(self.token_logliks)
        return -total / count

    @property
    def perplexity(self) -> float:
        return perplexity(self.token_logliks)

    @property
    def byte_perplexity(self) -> float:
        return byte_perplexity(self.token_logliks, self.texts)

    @property
    def bits_per_byte(self) -> float:
        return bits_per_byte(self.token_logliks, self.texts)

    def __repr__(self) -> str:
        return (f"Evaluation({len(self.texts)} texts, {self.n_tokens} tokens, {self.n_bytes} bytes: "
                f"perplexity {self.perplexity:.3f}, bits per byte {self.bits_per_byte:.4f})")


def evaluate(model: torch.nn.Module, tokenizer, texts: Sequence[str], context_size: int | None = None,
             stride: int | None = None, batch_size: int = 16) -> Evaluation:
    """Score `texts` with `model`: perplexity, bits per byte... (see `document_log_likelihoods`)."""
    texts = check_texts(texts)
    return Evaluation(texts, document_log_likelihoods(model, tokenizer, texts, context_size, stride, batch_size))


# ----------------------------------------------------------------------------------------------------
# Multiple choice: which continuation does the model find most likely?


def encode_pair(tokenizer, context: str, continuation: str) -> tuple[list[int], list[int]]:
    """Token ids of a context and of its continuation, split as lm-evaluation-harness does.

    Spaces at the end of the context move to the continuation (" red" is one token, "red" after a
    space another); then the whole text is encoded once and cut after the context's tokens, so the
    continuation is tokenized as it would be in running text.
    """
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        context, continuation = context[:-n_spaces], context[-n_spaces:] + continuation
    whole = tokenizer.encode(context + continuation)
    context_ids = tokenizer.encode(context)
    return whole[: len(context_ids)], whole[len(context_ids):]


def choice_log_likelihoods(model: torch.nn.Module, tokenizer, items: Sequence, batch_size: int = 32) -> list[list[float]]:
    """For each item (with `.context` and `.choices`): log p(choice | <|endoftext|> context), summed over its tokens.

    The context is cut on the left to fit the model's context window; the choices are scored whole.
    """
    eot = check_model_and_tokenizer(model, tokenizer)
    limit = model_context_size(model)
    rows, shape = [], []
    for k, item in enumerate(items):
        if not item.choices:
            raise ValueError(f"item {k} has no choices")
        for choice in item.choices:
            context_ids, choice_ids = encode_pair(tokenizer, item.context, choice)
            if not choice_ids:
                raise ValueError(f"item {k}: choice {choice!r} is empty, it has no tokens to score")
            sequence = [eot] + context_ids + choice_ids
            inputs, targets = sequence[:-1], sequence[1:]
            if limit is not None and len(inputs) > limit:
                if len(choice_ids) > limit:
                    raise ValueError(f"item {k}: choice {choice!r} has {len(choice_ids)} tokens, "
                                     f"more than the model's context ({limit})")
                inputs, targets = inputs[-limit:], targets[-limit:]
            rows.append((inputs, targets, len(inputs) - len(choice_ids)))
        shape.append(len(item.choices))
    sums = [s.sum().item() for s in score_rows(model, rows, eot, batch_size)]
    out, at = [], 0
    for n in shape:
        out.append(sums[at: at + n])
        at += n
    return out


TARGET_DELIMITER = " "  # what lm-evaluation-harness puts between a context and each choice


def choice_length(choice: str) -> int:
    """acc_norm's length of a choice: its characters without the leading space that joins it to the context.

    lm-evaluation-harness scores the request (context, " " + choice) but divides by len(choice), the
    choice as the dataset writes it: the delimiter is not part of the answer. Our items keep that space
    in each choice (" blue boat"), so it comes off here. Characters, not tokens or bytes: the length
    then does not depend on the tokenizer.
    """
    return len(choice.removeprefix(TARGET_DELIMITER))


def multiple_choice_predictions(choice_logliks: Sequence[float], choices: Sequence[str]) -> tuple[int, int]:
    """(acc's pick, acc_norm's pick): the choice with the highest log-likelihood, and the highest per character.

    acc_norm divides each choice's log-likelihood by `choice_length` (lm-evaluation-harness), so a long
    answer is not punished for having more tokens to pay for. Ties go to the first choice.
    """
    if len(choice_logliks) != len(choices) or not choices:
        raise ValueError(f"{len(choice_logliks)} log-likelihoods for {len(choices)} choices")
    lengths = [choice_length(c) for c in choices]
    if min(lengths) == 0:
        raise ValueError("a choice is empty (or only the leading space); acc_norm cannot divide by a length of 0")
    per_char = [ll / n for ll, n in zip(choice_logliks, lengths)]
    return argmax(choice_logliks), argmax(per_char)


def argmax(values: Sequence[float]) -> int:
    """Index of the largest value, the first one on ties."""
    return max(range(len(values)), key=lambda i: (values[i], -i))


@dataclass
class MultipleChoiceResult:
    """Per-item log-likelihoods of every choice, the picks of acc and acc_norm, and the right answers."""

    choice_logliks: list[list[float]]
    acc_picks: list[int]
    acc_norm_picks: list[int]
    answers: list[int]

    @property
    def acc(self) -> float:
        return sum(p == a for p, a in zip(self.acc_picks, self.answers)) / len(self.answers)

    @property
    def acc_norm(self) -> float:
        return sum(p == a for p, a in zip(self.acc_norm_picks, self.answers)) / len(self.answers)

    def disagreements(self) -> list[int]:
        """Indices of the items where acc and acc_norm pick different choices."""
        return [i for i, (a, b) in enumerate(zip(self.acc_picks, self.acc_norm_picks)) if a != b]


def score_multiple_choice(model: torch.nn.Module, tokenizer, items: Sequence, batch_size: int = 32) -> MultipleChoiceResult:
    """acc and acc_norm of `model` on items with `.context`, `.choices` and `.answer` (see course_lib.tasks)."""
    items = list(items)
    if not items:
        raise ValueError("no items to score")
    logliks = choice_log_likelihoods(model, tokenizer, items, batch_size)
    picks = [multiple_choice_predictions(ll, item.choices) for ll, item in zip(logliks, items)]
    return MultipleChoiceResult(logliks, [p[0] for p in picks], [p[1] for p in picks], [item.answer for item in items])


# ----------------------------------------------------------------------------------------------------
# Aggregating across tasks and models


def win_rates(scores: dict[str, float], lower_is_better: bool = False) -> dict[str, float]:
    """For each model: the chance it beats another model drawn at random on this task (HELM; ties count half)."""
    if len(scores) < 2:
        raise ValueError(f"a win rate needs at least two models, got {len(scores)}")
    values = list(scores.values())
    out = {}
    for name, value in scores.items():
        beaten = sum((v > value) if lower_is_better else (v < value) for v in values)
        tied = sum(v == value for v in values) - 1  # not counting itself
        out[name] = (beaten + tied / 2) / (len(values) - 1)
    return out


def aggregate(scores: dict[str, dict[str, float]], lower_is_better: Iterable[str] = ()) -> dict[str, dict[str, float]]:
    """scores[model][task] -> {model: {"mean": mean score, "mean win rate": HELM's mean win rate}}.

    The mean of raw scores lets one easy task dominate and mixes units; the mean win rate only uses the
    order of models on each task. Tasks in `lower_is_better` (e.g. bits per byte) count as better when
    lower; they are left out of the mean. A task a model lacks is skipped for it.
    """
    lower = set(lower_is_better)
    tasks = sorted({task for per_model in scores.values() for task in per_model})
    rates: dict[str, list[float]] = {name: [] for name in scores}
    for task in tasks:
        column = {name: per_model[task] for name, per_model in scores.items() if task in per_model}
        if len(column) >= 2:
            for name, rate in win_rates(column, task in lower).items():
                rates[name].append(rate)
    out = {}
    for name, per_model in scores.items():
        higher = [v for task, v in per_model.items() if task not in lower]
        out[name] = {"mean": sum(higher) / len(higher) if higher else float("nan"),
                     "mean win rate": sum(rates[name]) / len(rates[name]) if rates[name] else float("nan")}
    return out


# ----------------------------------------------------------------------------------------------------
# Contamination: do test items appear in the training data?

WORD_RE = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lower-cased runs of letters and digits: punctuation, spacing and case do not count (GPT-3, lm-eval)."""
    return WORD_RE.findall(text.lower())


def word_ngrams(text: str, n: int) -> set[tuple[str, ...]]:
    """The distinct n-grams of the words of `text` (none when it has fewer than n words)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    w = words(text)
    return {tuple(w[i: i + n]) for i in range(len(w) - n + 1)}


@dataclass
class Overlap:
    """How much of one test text's word n-grams occur in the training data."""

    index: int
    n_ngrams: int  # distinct n-grams of the test text
    n_found: int  # of those, how many occur in some training text

    @property
    def fraction(self) -> float:
        return self.n_found / self.n_ngrams if self.n_ngrams else 0.0


def ngram_overlaps(test_texts: Sequence[str], train_texts: Iterable[str], n: int = 13) -> list[Overlap]:
    """For each test text: its distinct word n-grams, and how many of them occur in the training texts.

    Only the test n-grams are kept in memory; the training texts are streamed once (each on its own,
    so no n-gram spans two documents). GPT-3 used n between 8 and 13, lm-evaluation-harness 13.
    """
    grams = [word_ngrams(text, n) for text in test_texts]
    wanted = set().union(*grams) if grams else set()
    seen: set[tuple[str, ...]] = set()
    for text in train_texts:
        seen |= word_ngrams(text, n) & wanted
    return [Overlap(i, len(g), len(g & seen)) for i, g in enumerate(grams)]


def contaminated(test_texts: Sequence[str], train_texts: Iterable[str], n: int = 13, min_fraction: float = 0.0) -> list[int]:
    """Indices of the test texts whose n-gram overlap with the training texts exceeds `min_fraction`.

    min_fraction = 0: any shared n-gram flags the item (lm-evaluation-harness's rule). On a corpus with
    a small vocabulary, common phrases collide by chance; a higher threshold (e.g. 0.5) or a longer n
    keeps those false positives out.
    """
    return [o.index for o in ngram_overlaps(test_texts, train_texts, n) if o.n_ngrams and o.fraction > min_fraction]


# ----------------------------------------------------------------------------------------------------
# Open-ended generation (sampled with `lm.sample_texts`), judged by the grammar


@dataclass
class GrammarJudgement:
    """What the exact grammar says of some texts: which are stories, how probable, how far the others got."""

    texts: list[str]
    valid: list[bool]
    logprob2: list[float]  # log2 p(text) under the grammar; -inf for a text that is not a story
    progress: list[float]  # the fraction of the text before the first error (1.0 for a story)
    sentences_ok: list[int]  # sentences that parse before the first error (all of them for a story)

    @property
    def valid_fraction(self) -> float:
        return sum(self.valid) / len(self.valid)

    @property
    def bits_per_byte(self) -> float:
        """Bits per byte of the valid texts under the grammar, pooled (nan if none is valid).

        Samples of a perfect model at temperature 1 land on the entropy floor; lower temperatures give
        more typical, more probable stories (fewer bits), higher ones rarer stories.
        """
        pairs = [(lp, len(t.encode("utf-8"))) for t, ok, lp in zip(self.texts, self.valid, self.logprob2) if ok]
        return -sum(lp for lp, _ in pairs) / sum(n for _, n in pairs) if pairs else float("nan")


def judge_with_grammar(texts: Sequence[str]) -> GrammarJudgement:
    """Score free generations with the story grammar (`stories.score`): a perfect judge of this world."""
    texts = list(texts)
    if not texts:
        raise ValueError("no texts to judge")
    results = [stories.score(text) for text in texts]
    progress = [1.0 if r.ok else max(0, r.position) / max(1, len(t)) for r, t in zip(results, texts)]
    return GrammarJudgement(texts, [r.ok for r in results], [r.logprob2 for r in results], progress,
                            [r.sentences for r in results])
