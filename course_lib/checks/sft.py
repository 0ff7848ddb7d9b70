"""Checkers for chapter 6 (supervised fine-tuning): the student's functions against the course_lib references.

Each checker runs the student's function and the reference on fixed cases and prints one line per case
group, or raises CheckFailed naming the case, what was expected, what came back and a hint aimed at the
mistake that was made (a mask on the role token, a missing <|end|>, padding that carries loss, ...).
Hidden checks call `run_cases` with the `reference_*` functions below and cases of their own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch

from course_lib import instructions, self_training, sft, stories
from course_lib.checks import Case, Mistake, call_student, checker, close, exact, fail, fail_on_mistake, run_cases, short_repr
from course_lib.model import GPT, GPTConfig

__all__ = ["format_chat_ids", "masked_cross_entropy", "collate_batch", "sft_step", "check_constraints",
           "keep_verified", "reference_keep_verified", "kept_positions", "keep_verified_mistakes", "keep_verified_cases",
           "positions_of", "reference_format_chat_ids", "reference_masked_cross_entropy", "reference_collate_batch",
           "reference_sft_step", "reference_check_constraints", "compare_ids_and_mask", "compare_batch",
           "step_outcome", "tiny_model_and_optimizer", "random_batch", "conversation"]

_TOKENIZER = None


def tokenizer():
    """The chat tokenizer (loaded once)."""
    global _TOKENIZER
    if _TOKENIZER is None:
        _TOKENIZER = sft.chat_tokenizer()
    return _TOKENIZER


def conversation(*turns: str, system: str | None = None) -> list[dict]:
    """user, assistant, user, assistant, ... turns as messages (a system message first if given)."""
    messages = [{"role": "system", "content": system}] if system else []
    return messages + [{"role": ("user", "assistant")[k % 2], "content": text} for k, text in enumerate(turns)]


# ----------------------------------------------------------------------------------------------------
# The references, with the exercises' signatures.

def reference_format_chat_ids(tok, messages: list[dict]) -> tuple[list[int], list[int]]:
    return sft.encode_chat(tok, messages)


def reference_masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    return sft.masked_cross_entropy(logits, labels)


def reference_collate_batch(examples: list[tuple[list[int], list[int]]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    return sft.collate(examples, pad_id)


def reference_sft_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor) -> float:
    loss = sft.masked_cross_entropy(model(x), y)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    return loss.item()


def reference_check_constraints(text: str, target: dict) -> dict:
    return instructions.verify_story(text, target).checks


# ----------------------------------------------------------------------------------------------------
# Comparisons that name the typical mistake


def compare_ids_and_mask(got, expected) -> str | None:
    if not isinstance(got, (tuple, list)) or len(got) != 2:
        return "return a pair (ids, mask): two lists of the same length"
    (ids, mask), (want_ids, want_mask) = got, expected
    ids, mask = [int(i) for i in ids], [int(m) for m in mask]
    if ids != want_ids:
        if ids[1:] == want_ids:
            return "ids differ: there is an extra token at the start"
        if [want_ids[0], *ids] == want_ids:
            return "ids differ: the conversation starts with <|endoftext|> (the models read every document after it)"
        return "ids differ: <|endoftext|>, then for every turn <|role|>, the content's ids, <|end|>"
    if len(mask) != len(want_mask):
        return f"mask has {len(mask)} entries for {len(ids)} ids"
    tok = tokenizer()
    role_ids = {tok.encode(t)[0] for t in sft.ROLE_TOKENS.values()}
    end_id = tok.encode(sft.END_OF_TURN)[0]
    for t, (m, w) in enumerate(zip(mask, want_mask)):
        if m != w:
            if ids[t] in role_ids:
                return f"mask[{t}] is {m} on a role token: <|assistant|> is part of the prompt (it is given), so its mask is 0"
            if ids[t] == end_id:
                return (f"mask[{t}] is {m} on an <|end|>: the <|end|> of an assistant turn carries loss (the model must learn "
                        "to stop), the <|end|> of other turns does not")
            return (f"mask[{t}] is {m}, expected {w}: 1 exactly on the tokens of assistant turns (and their <|end|>), "
                    "0 on <|endoftext|>, role tokens, system and user turns")
    return None


def compare_batch(got, expected) -> str | None:
    if not isinstance(got, (tuple, list)) or len(got) != 2 or not all(isinstance(t, torch.Tensor) for t in got):
        return "return a pair of tensors (x, y)"
    (x, y), (want_x, want_y) = got, expected
    if x.shape != want_x.shape or y.shape != want_y.shape:
        return (f"shapes {tuple(x.shape)}, {tuple(y.shape)} instead of {tuple(want_x.shape)}, {tuple(want_y.shape)}: "
                "T is the longest example's length minus one (inputs are ids[:-1], targets ids[1:])")
    if x.dtype != torch.long or y.dtype != torch.long:
        return "x and y must be integer (torch.long) tensors"
    if not torch.equal(x, want_x):
        return "inputs x differ: each row holds ids[:-1], then pad_id up to the batch's width"
    if not torch.equal(y, want_y):
        pad = want_y == sft.IGNORE_INDEX
        if (y[pad] != sft.IGNORE_INDEX).any():
            return "labels y differ where they should be -100: prompt and padding positions must carry no loss"
        return "labels y differ: y[t] = ids[t + 1] where mask[t + 1] is 1 (shifted by one, like the inputs)"
    return None


# ----------------------------------------------------------------------------------------------------
# Fixed inputs


def random_batch(B: int, T: int, V: int, seed: int, ignore_every: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits [B, T, V] and labels [B, T] with -100 at every `ignore_every`-th position (a private generator)."""
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(B, T, V, generator=generator) * 2
    labels = torch.randint(V, (B, T), generator=generator)
    if ignore_every:
        labels.view(-1)[::ignore_every] = sft.IGNORE_INDEX
    return logits, labels


def tiny_model_and_optimizer(seed: int = 0, lr: float = 1e-2) -> tuple[GPT, torch.optim.Optimizer]:
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=40, block_size=16, n_layer=1, n_head=2, n_embd=16))
    torch.random.set_rng_state(generator_state)  # never disturb the notebook's random state
    return model, torch.optim.AdamW(model.parameters(), lr=lr)


def step_outcome(step_fn: Callable) -> Callable:
    """Wrap an SFT step so its whole effect can be compared: (the loss it returned, the weights after it)."""

    def run(model, optimizer, x, y):
        loss = step_fn(model, optimizer, x, y)
        if isinstance(loss, torch.Tensor):
            loss = loss.item()
        weights = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
        return [loss, weights]

    return run


# ----------------------------------------------------------------------------------------------------
# The checkers the check cells call.

@checker
def format_chat_ids(student_fn: Callable) -> None:
    tok = tokenizer()
    story = stories.story("test", 0).text
    cases = [
        Case("one question, one answer", (tok, conversation("Who is the hero?", "Mia"))),
        Case("a system message first", (tok, conversation("Hi!", "Hello.", system="You tell stories."))),
        Case("two exchanges: both answers carry loss", (tok, conversation("Name a colour.", "red", "Another one?", "blue"))),
        Case("a whole story as the answer", (tok, conversation("Write a story.", story))),
        Case("non-ASCII text", (tok, conversation("Wie heißt der Held? 语言", "Ça va"))),
    ]
    run_cases("format_chat_ids", student_fn, cases, reference_format_chat_ids, compare=compare_ids_and_mask,
              hint="ids: [<|endoftext|>] + for each turn [<|role|>] + tok.encode(content) + [<|end|>]; "
                   "mask: 1 on the content and <|end|> of assistant turns, 0 elsewhere")


@checker
def masked_cross_entropy(student_fn: Callable) -> None:
    cases = [
        Case("every third label ignored", random_batch(2, 5, 7, seed=1)),
        Case("no label ignored: plain cross-entropy", random_batch(1, 4, 6, seed=2, ignore_every=0)),
        Case("one real label among many ignored", (random_batch(1, 6, 5, seed=3)[0], torch.tensor([[-100, -100, 3, -100, -100, -100]]))),
        Case("padding rows of a batch", (random_batch(3, 4, 9, seed=4)[0],
                                         torch.tensor([[1, 2, -100, -100], [-100] * 4, [5, -100, -100, -100]]))),
        Case("large logits (stay finite)", tuple(t * 50 if t.is_floating_point() else t for t in random_batch(2, 3, 11, seed=5))),
    ]
    run_cases("masked_cross_entropy", student_fn, cases, reference_masked_cross_entropy, compare=close(1e-4, 1e-5),
              hint="average -log softmax(logits)[label] over the positions whose label is not -100 only (divide by "
                   "their count, not by B * T); F.cross_entropy(..., ignore_index=-100) does exactly this")


@checker
def collate_batch(student_fn: Callable) -> None:
    cases = [
        Case("two examples of equal length", ([([0, 5, 6, 7], [0, 0, 1, 1]), ([0, 8, 9, 7], [0, 0, 1, 1])], 0)),
        Case("a short and a long example", ([([0, 5, 6], [0, 1, 1]), ([0, 8, 9, 10, 11, 7], [0, 0, 0, 1, 1, 1])], 0)),
        Case("padding with another id", ([([3, 1, 2], [0, 0, 1]), ([3, 4, 5, 6, 2], [0, 0, 1, 1, 1])], 99)),
        Case("a single example", ([([0, 1, 2, 3, 4], [0, 0, 0, 1, 1])], 0)),
    ]
    run_cases("collate_batch", student_fn, cases, reference_collate_batch, compare=compare_batch,
              hint="x[b] = ids[:-1] padded with pad_id; y[b] = ids[1:] with -100 where mask[1:] is 0 and on padding")


@checker
def sft_step(student_fn: Callable) -> None:
    def setup(seed: int, lr: float = 1e-2):
        model, optimizer = tiny_model_and_optimizer(seed, lr)
        generator = torch.Generator().manual_seed(seed)
        x = torch.randint(40, (2, 6), generator=generator)
        y = torch.randint(40, (2, 6), generator=generator)
        y[:, :3] = sft.IGNORE_INDEX  # a prompt of three tokens
        return model, optimizer, x, y

    cases = [Case("one step on a tiny GPT", setup(0)), Case("another model and batch", setup(1, 3e-3))]
    run_cases("sft_step", step_outcome(student_fn), cases, step_outcome(reference_sft_step), compare=close(1e-4, 1e-6),
              hint="loss = masked cross-entropy of model(x) against y; optimizer.zero_grad(); loss.backward(); "
                   "optimizer.step(); return loss.item() (the loss before the update)")
    # two steps in a row: gradients must not pile up across steps
    twice = step_outcome(lambda m, o, x, y: [student_fn(m, o, x, y), student_fn(m, o, x, y)][-1])
    reference_twice = step_outcome(lambda m, o, x, y: [reference_sft_step(m, o, x, y), reference_sft_step(m, o, x, y)][-1])
    run_cases("sft_step twice", twice, [Case("two steps in a row", setup(2))], reference_twice, compare=close(1e-4, 1e-6),
              hint="call optimizer.zero_grad() before backward(): otherwise the second step adds the first one's gradients")


@checker
def check_constraints(student_fn: Callable) -> None:
    example = instructions.held_out("writing", 3)[0]
    story, target = example.response, example.target
    other = next(s for s in stories.iter_stories("test", 50) if "lose" not in s.facts["events"] and s.facts["thing"])
    other_target = {"name": other.facts["hero"]["name"], "kind": other.facts["hero"]["kind"],
                    "colour": other.facts["colour"], "thing": other.facts["thing"]}
    cases = [
        Case("the reference story itself", (story, target)),
        Case("another hero name asked for", (story, {**target, "name": "Zoe" if target["name"] != "Zoe" else "Ben"})),
        Case("another colour asked for", (story, {**target, "colour": "silver" if target["colour"] != "silver" else "red"})),
        Case("the thing is never lost", (other.text, other_target)),
        Case("not a story: cut in the middle", (story[: len(story) // 2], target)),
        Case("a refusal instead of a story", ("I cannot write that story.", target)),
    ]
    run_cases("check_constraints", student_fn, cases, reference_check_constraints, compare=lambda got, want: (
        None if isinstance(got, dict) and {k: bool(v) for k, v in got.items()} == want else f"checks differ: {sorted(want.items())}"),
              hint="parsed = stories.score(text); if not parsed.ok every check is False; else compare parsed.facts "
                   "(hero name and kind, colour, thing) with the target, and 'lose' in parsed.facts['events']")



# ----------------------------------------------------------------------------------------------------
# Self-training: the verifier as a filter of the model's own answers


def reference_keep_verified(requests, answers, max_per_request: int = 1) -> list:
    return self_training.keep_verified(requests, answers, max_per_request)


def kept_positions(kept, requests, answers) -> list:
    """Each kept example as (request number, answer number) in the case's lists, so that a report reads
    `[(0, 0), (2, 1)]`; anything that is not one of the case's answers to its request, as it came."""
    out = []
    for example in kept if isinstance(kept, (list, tuple)) else [kept]:
        where = next(((i, j) for i, (request, row) in enumerate(zip(requests, answers)) for j, answer in enumerate(row)
                      if isinstance(example, instructions.Example) and example.prompt == request.prompt
                      and example.response == answer), None)
        out.append(where if where is not None else short_repr(example, 60))
    return out


def keep_verified_cases() -> list[Case]:
    requests = instructions.held_out("writing", 4)
    good = [r.response for r in requests]
    half = good[0][: len(good[0]) // 2]
    return [
        Case("one answer each, some wrong", (requests[:3], [[good[0]], [half], [good[0]]], 1)),
        Case("a repeated answer counts once", (requests[:2], [[good[0], good[0]], [good[1]]], 3)),
        Case("at most max_per_request, the first ones", (requests[3:], [[good[3], half, good[3] + "\n", good[3] + " "]], 2)),
        Case("nothing passes", (requests[:2], [["I cannot write that story."], []], 1)),
        Case("several requests, several answers", (requests, [[half, good[0]], [good[1], good[1]], [good[0]], [good[3]]], 2)),
    ]


def keep_verified_mistakes(requests, answers, cap: int) -> list[Mistake]:
    """Where the usual wrong filters' examples sit, each with the hint that fixes it."""
    def kept(rows):
        return kept_positions([replace(r, response=a) for r, row in zip(requests, rows) for a in row], requests, answers)

    accepted = [[a for a in row if instructions.verify(r, a).ok] for r, row in zip(requests, answers)]
    return [
        Mistake(lambda: kept([row[:cap] for row in accepted]),
                "a repeat of an answer already kept is dropped, and does not count towards max_per_request"),
        Mistake(lambda: kept([list(dict.fromkeys(row)) for row in accepted]),
                "keep at most max_per_request accepted answers for each request (the first ones)"),
        Mistake(lambda: kept(accepted), "drop repeated answers, and keep at most max_per_request per request"),
        Mistake(lambda: kept(answers), "keep only the answers that instructions.verify(request, answer).ok accepts"),
    ]


def positions_of(keep_fn: Callable) -> Callable:
    """keep_fn's result on a case, as `kept_positions`."""
    return lambda requests, answers, cap: kept_positions(keep_fn(requests, answers, cap), requests, answers)


@checker
def keep_verified(student_fn: Callable) -> None:
    cases = keep_verified_cases()
    got = call_student("keep_verified", cases[0].label, student_fn, *cases[0].args)
    if not isinstance(got, list) or not all(isinstance(e, instructions.Example) for e in got):
        fail("keep_verified", cases[0].label, "a list of instructions.Example", got,
             hint="return training examples: dataclasses.replace(request, response=answer) for each kept answer")
    for case in cases:
        got = call_student("keep_verified", case.label, positions_of(student_fn), *case.args)
        fail_on_mistake("keep_verified", case.label, positions_of(reference_keep_verified)(*case.args), got,
                        keep_verified_mistakes(*case.args), compare=exact,
                        detail="(request number, answer number) of each kept example")
    run_cases("keep_verified", positions_of(student_fn), cases, positions_of(reference_keep_verified),
              hint="for each request and its list of answers: keep an answer if instructions.verify(request, answer).ok, "
                   "it is not already kept for that request, and fewer than max_per_request are kept; return "
                   "dataclasses.replace(request, response=answer) for each")
