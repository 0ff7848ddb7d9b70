"""Supervised fine-tuning (chapter 6): a chat format, loss masking, padded and packed batches, one SFT run.

    chat format   <|endoftext|><|user|>question<|end|><|assistant|>answer<|end|>: one special token per
                  role and one for the end of a turn, added to chapter 1's tokenizer (`chat_tokenizer`);
                  `format_chat` is the one formatter, CHAT_TEMPLATE the same thing in Jinja for Hugging Face
    masking       `encode_chat` gives the ids and a loss mask (1 on the assistant's tokens and its <|end|>);
                  the labels of every other token are -100, PyTorch's ignore index, so the loss is on the
                  response only (TRL's "completion-only loss")
    batches       `collate` pads a batch (inputs with <|endoftext|>, labels with -100); `pack` joins
                  examples into full rows, and `DocumentMasked` keeps packed examples from attending to
                  each other (positions restart and attention stays inside each example)
    training      chapter 2's `training.train`, fed masked batches by `sft_batch`: no second training loop;
                  the shipped recipe (SHIPPED) weights the mixture towards reading questions, asks several of
                  them per story (follow-up turns) and replays plain stories against forgetting, because the
                  loss is a mean over tokens and long written stories would otherwise take almost all of it
    evaluation    `respond` answers prompts with the model, `instructions.verify` grades every answer

`python -m course_lib.sft --out assets/story_sft.pt` rebuilds the shipped SFT model (chapter 7 starts from
it); `python -m course_lib.sft --curve 0,100,300,1000,3000 --summary FILE` measures the data-efficiency curve.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib import instructions, lm, stories, training
from course_lib.lm import END_OF_TEXT
from course_lib.model import GPT, load_model, save_model
from course_lib.tokenizer import BPETokenizer, load_story_tokenizer
from course_lib.utils import asset_path, seed_everything

ROLES = ("system", "user", "assistant")
ROLE_TOKENS = {role: f"<|{role}|>" for role in ROLES}
END_OF_TURN = "<|end|>"
CHAT_SPECIAL_TOKENS = [END_OF_TEXT, *ROLE_TOKENS.values(), END_OF_TURN]
IGNORE_INDEX = -100  # F.cross_entropy skips targets equal to this
SFT_MODEL = "story_sft.pt"
SFT_MEASUREMENTS = "story_sft.json"

# ----------------------------------------------------------------------------------------------------
# The chat format


def chat_tokenizer(base: BPETokenizer | None = None) -> BPETokenizer:
    """Chapter 1's story tokenizer with the chat tokens added after <|endoftext|>: the same merges, so every
    text gets the same ids as before; the new tokens get the next ids (959.. for the story tokenizer)."""
    base = base or load_story_tokenizer()
    return BPETokenizer(base.merges, CHAT_SPECIAL_TOKENS)


def check_messages(messages: Sequence[dict]) -> None:
    """A clear error for anything that is not a list of {"role", "content"} turns the format can hold."""
    if isinstance(messages, (str, dict)) or not isinstance(messages, Sequence) or not messages:
        raise TypeError(f"a conversation is a non-empty list of {{'role': ..., 'content': ...}} dicts, got {messages!r:.80}")
    for k, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise TypeError(f"turn {k} must be a dict with exactly the keys 'role' and 'content', got {message!r:.80}")
        role, content = message["role"], message["content"]
        if role not in ROLES:
            raise ValueError(f"turn {k} has the unknown role {role!r}; the chat format knows {list(ROLES)}")
        if role == "system" and k != 0:
            raise ValueError(f"turn {k}: a system message can only come first")
        if not isinstance(content, str):
            raise TypeError(f"turn {k} ({role}): content must be a str, got {type(content).__name__}")
        if not content.strip():
            raise ValueError(f"turn {k} ({role}) is empty: an empty {'response' if role == 'assistant' else 'message'} "
                             "teaches nothing (and an empty response would teach the model to stop at once)")
        for token in CHAT_SPECIAL_TOKENS:
            if token in content:
                raise ValueError(f"turn {k} ({role}) contains the special token {token!r} as text; "
                                 "it would be read as a turn boundary")


def format_chat(messages: Sequence[dict], add_generation_prompt: bool = False) -> str:
    """<|endoftext|> then <|role|>content<|end|> for each turn; then <|assistant|> if the model is to answer."""
    check_messages(messages)
    text = END_OF_TEXT + "".join(f"{ROLE_TOKENS[m['role']]}{m['content']}{END_OF_TURN}" for m in messages)
    return text + (ROLE_TOKENS["assistant"] if add_generation_prompt else "")


# The same format as a Jinja chat template, the form Hugging Face's tokenizers carry (tokenizer_config.json).
CHAT_TEMPLATE = (
    "{{ bos_token }}"
    "{% for message in messages %}"
    "{% if message['role'] not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('unknown role ' + message['role']) }}"
    "{% endif %}"
    "{{ '<|' + message['role'] + '|>' + message['content'] + '<|end|>' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}"
)


def render_chat_template(messages: Sequence[dict], add_generation_prompt: bool = False, template: str = CHAT_TEMPLATE) -> str:
    """Render a chat template the way transformers' `apply_chat_template` does (sandboxed Jinja, trim_blocks)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str):
        raise ValueError(message)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    env.globals["raise_exception"] = raise_exception
    return env.from_string(template).render(messages=list(messages), add_generation_prompt=add_generation_prompt,
                                            bos_token=END_OF_TEXT, eos_token=END_OF_TURN)


def export_hf_tokenizer(tokenizer: BPETokenizer, folder) -> None:
    """tokenizer.json (`to_hf`) and tokenizer_config.json with the chat template, as transformers expects."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tokenizer.to_hf().save(str(folder / "tokenizer.json"))
    config = {"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": END_OF_TEXT, "eos_token": END_OF_TURN,
              "pad_token": END_OF_TEXT, "model_max_length": 256, "chat_template": CHAT_TEMPLATE}
    (folder / "tokenizer_config.json").write_text(json.dumps(config, indent=1))


# ----------------------------------------------------------------------------------------------------
# Ids, loss mask, labels


def encode_chat(tokenizer: BPETokenizer, messages: Sequence[dict], max_tokens: int | None = None,
                train_on_prompt: bool = False) -> tuple[list[int], list[int]]:
    """(ids, mask) of a conversation: mask[t] = 1 where token t belongs to an assistant turn (its <|end|>
    included, so the model learns to stop), 0 elsewhere (train_on_prompt: 1 everywhere, the unmasked loss).

    The same ids as `tokenizer.encode(format_chat(messages))`. max_tokens: raise if longer (a model with
    context block_size reads block_size + 1 tokens of an example: all but the last as inputs).
    """
    check_messages(messages)
    if messages[-1]["role"] != "assistant":
        raise ValueError("the last turn must be the assistant's: there is no response to learn from")
    special = {token: tokenizer.encode(token) for token in CHAT_SPECIAL_TOKENS}
    if any(len(ids) != 1 for ids in special.values()):
        raise ValueError(f"the tokenizer lacks the chat tokens {CHAT_SPECIAL_TOKENS}: use sft.chat_tokenizer()")
    ids, mask = [special[END_OF_TEXT][0]], [int(train_on_prompt)]
    for message in messages:
        body = [*special[ROLE_TOKENS[message["role"]]], *tokenizer.encode(message["content"]), *special[END_OF_TURN]]
        ids += body
        learn = int(train_on_prompt or message["role"] == "assistant")
        mask += [int(train_on_prompt)] + [learn] * (len(body) - 1)  # the role token is prompt: it is given
    if max_tokens is not None and len(ids) > max_tokens:
        raise ValueError(f"the conversation has {len(ids)} tokens but at most {max_tokens} fit (the model's context "
                         "+ 1); shorten it. Nothing is truncated silently: a cut response would teach the model "
                         "to stop mid-sentence, or never to stop.")
    return ids, mask


def check_example(ids: Sequence[int], mask: Sequence[int], end_id: int) -> None:
    """ids and mask of the same length, something to learn, and every response ending with <|end|>."""
    if len(ids) != len(mask):
        raise ValueError(f"ids ({len(ids)}) and mask ({len(mask)}) must have the same length")
    if len(ids) < 2 or not any(mask[1:]):
        raise ValueError("this example has no response token to learn from (the mask is 0 after the first token)")
    for t in range(1, len(ids)):
        run_ends = mask[t] and (t + 1 == len(ids) or not mask[t + 1])
        if run_ends and ids[t] != end_id:
            raise ValueError(f"the response that ends at token {t} does not end with the end-of-turn token "
                             f"(id {end_id}): the model would never learn to stop")


def shift_labels(ids: Sequence[int], mask: Sequence[int]) -> tuple[list[int], list[int]]:
    """Inputs ids[:-1] and labels: ids[t + 1] where mask[t + 1] is 1, else -100 (no loss)."""
    return list(ids[:-1]), [i if m else IGNORE_INDEX for i, m in zip(ids[1:], mask[1:])]


def collate(examples: Sequence[tuple[Sequence[int], Sequence[int]]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A padded batch: inputs x [B, T] (padded with pad_id on the right) and labels y [B, T] (padded with -100).

    T = the longest example minus one. Padding on the right is safe for a causal model: no real token
    attends to a later one, so padding changes no real token's prediction, and its labels carry no loss.
    """
    if not examples:
        raise ValueError("cannot collate an empty batch")
    width = max(len(ids) for ids, _ in examples) - 1
    x = torch.full((len(examples), width), pad_id, dtype=torch.long)
    y = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    for b, (ids, mask) in enumerate(examples):
        inputs, labels = shift_labels(ids, mask)
        x[b, : len(inputs)] = torch.tensor(inputs, dtype=torch.long)
        y[b, : len(labels)] = torch.tensor(labels, dtype=torch.long)
    return x, y


def masked_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the labelled positions only (labels != -100): logits [B, T, V], labels [B, T]."""
    if not (labels != IGNORE_INDEX).any():
        raise ValueError("every label is -100: there is no token to compute a loss on")
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), labels.reshape(-1), ignore_index=IGNORE_INDEX)


def per_example_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean over examples of each example's mean cross-entropy on its labelled positions: logits [B, T, V],
    labels [B, T] (one example per row). A two-token answer then weighs as much as a 150-token story;
    `masked_cross_entropy`, the mean over tokens, gives the story 75 times its weight."""
    if not (labels != IGNORE_INDEX).any():
        raise ValueError("every label is -100: there is no token to compute a loss on")
    per_token = F.cross_entropy(logits.transpose(1, 2).float(), labels, ignore_index=IGNORE_INDEX, reduction="none")  # [B, T]
    counts = (labels != IGNORE_INDEX).sum(dim=1)  # [B]
    rows = counts > 0  # a row of padding only (never drawn by sft_batch) has no loss to average
    return (per_token.sum(dim=1)[rows] / counts[rows]).mean()


# ----------------------------------------------------------------------------------------------------
# Packing, and attention that stays inside each packed example


def pack(examples: Sequence[tuple[list[int], list[int]]], length: int) -> list[tuple[list[int], list[int]]]:
    """Join examples, in order, into rows of at most `length` tokens (each example starts with <|endoftext|>)."""
    rows, ids, mask = [], [], []
    for example_ids, example_mask in examples:
        if len(example_ids) > length:
            raise ValueError(f"an example of {len(example_ids)} tokens does not fit a row of {length}")
        if len(ids) + len(example_ids) > length:
            rows.append((ids, mask))
            ids, mask = [], []
        ids, mask = ids + list(example_ids), mask + list(example_mask)
    return rows + [(ids, mask)] if ids else rows


def document_positions_and_mask(idx: torch.Tensor, start_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """For packed rows [B, T] whose examples each start with `start_id`: the position of every token inside
    its own example [B, T], and the attention mask [B, 1, T, T] (True = may attend: causal, same example)."""
    B, T = idx.shape
    steps = torch.arange(T, device=idx.device).expand(B, T)
    is_start = idx == start_id
    start = torch.cummax(torch.where(is_start, steps, torch.zeros_like(steps)), dim=1).values
    document = is_start.long().cumsum(dim=1)
    causal = torch.ones(T, T, dtype=torch.bool, device=idx.device).tril()
    same = document[:, :, None] == document[:, None, :]
    return steps - start, (same & causal)[:, None]


class DocumentMasked(nn.Module):
    """The GPT of chapter 2 reading packed rows as if each example were alone (same weights, shared).

    Each token gets its position inside its own example and attends only to earlier tokens of that
    example: the logits equal those of the examples run one by one (`tests/test_sft.py` checks it).
    """

    def __init__(self, model: GPT, start_id: int):
        super().__init__()
        self.model, self.start_id, self.config = model, start_id, model.config

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        m = self.model
        positions, allowed = document_positions_and_mask(idx, self.start_id)
        x = m.wte(idx) + m.wpe(positions)
        B, T, C = x.shape
        for block in m.blocks:
            attn = block.attn
            q, k, v = attn.qkv(block.ln_1(x)).split(C, dim=2)
            q, k, v = (t.view(B, T, attn.n_head, C // attn.n_head).transpose(1, 2) for t in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)
            x = x + attn.proj(y.transpose(1, 2).contiguous().view(B, T, C))
            x = x + block.mlp(block.ln_2(x))
        return m.lm_head(m.ln_f(x))


# ----------------------------------------------------------------------------------------------------
# Data for chapter 2's training loop


@dataclass
class SFTData:
    """Tokenized examples (ids, mask) and the padding id; `sft_batch` draws training batches from it."""

    rows: list[tuple[list[int], list[int]]]
    pad_id: int


def build_data(tokenizer: BPETokenizer, examples: Sequence[instructions.Example], block_size: int,
               train_on_prompt: bool = False, packed: bool = False, follow_ups: bool = False) -> SFTData:
    """Tokenize instruction examples (optionally packed into rows of block_size + 1 tokens). follow_ups: reading
    examples carry their further questions as further turns. "replay" examples are plain stories, read as in
    pretraining (<|endoftext|> story <|endoftext|>, loss on every token)."""
    end_id, eot = tokenizer.encode(END_OF_TURN)[0], lm.end_of_text_id(tokenizer)
    rows = []
    for e in examples:
        if e.family == "replay":
            ids = [eot, *tokenizer.encode(e.response), eot][: block_size + 1]
            rows.append((ids, [0] + [1] * (len(ids) - 1)))
            continue
        messages = e.messages(follow_ups=follow_ups)
        ids, mask = encode_chat(tokenizer, messages, None, train_on_prompt)
        while len(ids) > block_size + 1 and len(messages) > 2:  # drop whole follow-up turns, never cut one
            messages = messages[:-2]
            ids, mask = encode_chat(tokenizer, messages, None, train_on_prompt)
        rows.append(encode_chat(tokenizer, messages, block_size + 1, train_on_prompt))  # too long: a clear error
        check_example(*rows[-1], end_id)
    return SFTData(pack(rows, block_size + 1) if packed else rows, eot)


def sft_batch(data: SFTData, batch_size: int, block_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`training.train`'s batch hook: `batch_size` random examples, padded, with -100 labels off the response."""
    picks = torch.randint(len(data.rows), (batch_size,), generator=generator).tolist()
    return collate([data.rows[i] for i in picks], data.pad_id)


def init_new_token_rows(model: GPT, tokenizer: BPETokenizer, n_old: int) -> None:
    """Give the never-trained embedding rows of the new chat tokens the mean of the trained rows.

    In pretraining those rows were never read, only pushed down as outputs (every softmax lowers the
    logits of tokens that did not come next) and shrunk by weight decay: a new token starts as something
    the model believes never happens. The mean embedding is a neutral start (Hewitt 2021; transformers'
    `resize_token_embeddings` does the same); fine-tuning then learns what each token means.
    """
    with torch.no_grad():
        mean = model.wte.weight[:n_old].mean(dim=0)
        model.wte.weight[n_old: len(tokenizer)] = mean


LOSSES = {"token": masked_cross_entropy, "example": per_example_cross_entropy}


@dataclass
class SFTConfig:
    steps: int = 600
    batch_size: int = 16
    learning_rate: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 30
    train_on_prompt: bool = False  # True: the unmasked loss, on every token of the conversation
    packed: bool = False
    follow_ups: bool = False  # reading examples with their further questions as further turns
    loss_per: str = "token"  # "token": mean over response tokens; "example": each conversation counts once
    init_new_tokens: bool = True  # start the chat tokens' rows at the mean embedding (from the base model only)
    seed: int = 0
    progress: bool = True


def finetune(model: GPT, tokenizer: BPETokenizer, examples: Sequence[instructions.Example], config: SFTConfig,
             val_examples: Sequence[instructions.Example] = ()) -> training.History:
    """Supervised fine-tuning in place, with chapter 2's `training.train` and the masked batches above."""
    if config.loss_per not in LOSSES:
        raise ValueError(f"loss_per must be one of {sorted(LOSSES)}, got {config.loss_per!r}")
    if config.packed and config.loss_per == "example":
        raise ValueError("loss_per='example' needs one example per row; packed rows hold several")
    seed_everything(config.seed)
    if config.init_new_tokens:
        init_new_token_rows(model, tokenizer, lm.end_of_text_id(tokenizer) + 1)
    block = model.config.block_size
    data = build_data(tokenizer, examples, block, config.train_on_prompt, config.packed, config.follow_ups)
    val = build_data(tokenizer, val_examples, block, config.train_on_prompt) if val_examples else None
    trained = DocumentMasked(model, data.pad_id) if config.packed else model
    train_config = training.TrainConfig(max_steps=config.steps, batch_size=config.batch_size, learning_rate=config.learning_rate,
                                        min_lr=config.min_lr, warmup_steps=config.warmup_steps, eval_interval=max(config.steps // 4, 1),
                                        eval_batches=2, seed=config.seed, progress=config.progress)
    history = training.train(trained, data, val, train_config, batches=sft_batch, loss_fn=LOSSES[config.loss_per])
    model.eval()
    return history


# ----------------------------------------------------------------------------------------------------
# Answering and grading


@torch.no_grad()
def generate_batched(model: GPT, prompts: Sequence[list[int]], max_new_tokens: int, temperature: float, seed: int,
                     stop_id: int, n_allowed: int, batch_size: int = 64) -> list[list[int]]:
    """`lm.generate` on many prompts: prompts of equal length go together (the GPT pads nothing)."""
    groups = defaultdict(list)
    for k, ids in enumerate(prompts):
        groups[len(ids)].append(k)
    out: list[list[int] | None] = [None] * len(prompts)
    for length in sorted(groups):
        members = groups[length]
        for b in range(0, len(members), batch_size):
            chunk = members[b: b + batch_size]
            budget = max(1, min(max_new_tokens, model.config.block_size - length))
            rows = lm.generate(model, torch.tensor([prompts[k] for k in chunk]), budget, temperature=temperature,
                               seed=seed + chunk[0], stop_id=stop_id, n_allowed=n_allowed)
            for k, row in zip(chunk, rows):
                out[k] = row
    return out


def respond(model: GPT, tokenizer: BPETokenizer, prompts: Sequence[str], temperature: float = 0.0, seed: int = 0,
            max_new_tokens: int = 240) -> list[str]:
    """The model's answer to each user prompt in the chat format (up to its <|end|>, which is left out)."""
    end_id = tokenizer.encode(END_OF_TURN)[0]
    ids = [tokenizer.encode(format_chat([{"role": "user", "content": p}], add_generation_prompt=True)) for p in prompts]
    rows = generate_batched(model, ids, max_new_tokens, temperature, seed, end_id, len(tokenizer))
    return [tokenizer.decode([t for t in row if t != end_id]) for row in rows]


def continue_plain(model: GPT, tokenizer: BPETokenizer, prompts: Sequence[str], max_new_tokens: int, temperature: float = 0.0,
                   seed: int = 0, first_line: bool = False) -> list[str]:
    """A base model continuing plain-text prompts (read after <|endoftext|>, up to the next one); first_line:
    keep only the text before the first line break (a short answer)."""
    eot = lm.end_of_text_id(tokenizer)
    rows = generate_batched(model, [[eot, *tokenizer.encode(p)] for p in prompts], max_new_tokens, temperature, seed, eot, len(tokenizer))
    texts = [tokenizer.decode([t for t in row if t != eot]) for row in rows]
    return [t.split("\n")[0] for t in texts] if first_line else texts


def base_scoreboard(model: GPT, tokenizer: BPETokenizer, sizes: dict | None = None, shots: Sequence[int] = (0, 1, 3)) -> dict:
    """The base model asked in plain text: reading zero- and few-shot, writing from the bare request and from
    a story start that already meets most constraints (`instructions.story_start`)."""
    sizes = sizes or instructions.TEST_SIZES
    reading, writing = instructions.held_out("reading", sizes["reading"]), instructions.held_out("writing", sizes["writing"])
    out = {}
    for k in shots:
        answers = continue_plain(model, tokenizer, [instructions.plain_reading_prompt(e, k) for e in reading], 8, first_line=True)
        out[f"reading {k}-shot"] = grade(reading, answers)
    bare = continue_plain(model, tokenizer, [e.prompt + "\n" for e in writing], 240)
    out["writing request"] = grade(writing, [t.strip() for t in bare])
    starts = [instructions.story_start(e.target) for e in writing]
    for temperature in (0.0, 1.0):  # greedy decoding loops ("He played with his box." again and again)
        texts = continue_plain(model, tokenizer, starts, 240, temperature)
        out[f"writing story start@{temperature:g}"] = grade(writing, [s + t for s, t in zip(starts, texts)])
    return out


def wilson_interval(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95% Wilson score interval of a rate k/n (sensible at 0 and n, unlike the normal approximation)."""
    if n == 0:
        return 0.0, 1.0
    p = k / n
    centre, half = (p + z * z / (2 * n)) / (1 + z * z / n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def grade(examples: Sequence[instructions.Example], responses: Sequence[str]) -> dict:
    """Rates over `examples`: "ok" and each check of the verifier, as {name: [k, n]}."""
    counts: dict[str, list[int]] = {}
    for example, response in zip(examples, responses):
        verdict = instructions.verify(example, response)
        for name, passed in {"ok": verdict.ok, **verdict.checks}.items():
            counts.setdefault(name, [0, 0])
            counts[name][0] += int(passed)
            counts[name][1] += 1
    return counts


def scoreboard(model: GPT, tokenizer: BPETokenizer, sizes: dict | None = None, temperatures: Sequence[float] = (0.0,),
               seed: int = 0) -> dict:
    """Grade the model on each family's held-out test items: {f"{family}@T": {check: [k, n]}}."""
    sizes = sizes or instructions.TEST_SIZES
    out = {}
    for family, n in sizes.items():
        items = instructions.held_out(family, n)
        for temperature in temperatures if family == "writing" else (0.0,):
            max_new = 12 if family == "reading" else 240
            answers = respond(model, tokenizer, [e.prompt for e in items], temperature, seed, max_new)
            out[f"{family}@{temperature:g}"] = grade(items, answers)
    return out


def load_sft_model(device: str | torch.device = "cpu") -> GPT:
    """The shipped SFT model, assets/story_sft.pt (rebuild: `python -m course_lib build-assets story_sft`)."""
    return load_model(asset_path(SFT_MODEL), device)


# ----------------------------------------------------------------------------------------------------
# Command line: the shipped model and the data-efficiency curve

# the shipped recipe: reading : writing : refusal : replay = 2 : 2 : 1 : 1, reading examples with their follow-up
# questions, plain stories as replay, and the loss averaged per example: with the mean over tokens, long written
# stories take almost all of the loss and the two-token reading answers go unlearned (notebook, section 5)
SHIPPED = dict(examples=6000, steps=1600, batch_size=16, mixture="2,2,1,1", follow_ups=True, loss_per="example")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m course_lib.sft", description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=SHIPPED["examples"], help="training examples (mixture of all families)")
    parser.add_argument("--steps", type=int, default=SHIPPED["steps"])
    parser.add_argument("--batch-size", type=int, default=SHIPPED["batch_size"])
    parser.add_argument("--unmasked", action="store_true", help="loss on every token, prompt included")
    parser.add_argument("--packed", action="store_true", help="pack examples into full rows (with the document mask)")
    parser.add_argument("--loss-per", choices=sorted(LOSSES), default=SHIPPED["loss_per"],
                        help="average the loss over response tokens, or over examples (each conversation once)")
    parser.add_argument("--mixture", default=SHIPPED["mixture"], help="weights of reading,writing,refusal,replay (plain stories)")
    parser.add_argument("--follow-ups", action=argparse.BooleanOptionalAction, default=SHIPPED["follow_ups"],
                        help="reading examples with further questions as further turns")
    parser.add_argument("--curve", help="comma-separated example counts: measure the data-efficiency curve instead")
    parser.add_argument("--base", action="store_true", help="measure the base model prompted in plain text instead")
    parser.add_argument("--eval-sizes", default="200,100,100", help="test items for reading,writing,refusal")
    parser.add_argument("--out", help="save the fine-tuned model here")
    parser.add_argument("--summary", help="write the measurements here (JSON)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (1 is fastest on a busy machine)")
    parser.add_argument("--quiet", action="store_true")
    return parser


def run_one(tokenizer, n_examples: int, args, temperatures=(0.0,)) -> tuple[GPT, dict]:
    model = load_model(asset_path("story_gpt.pt"))
    started = time.perf_counter()
    history = None
    if n_examples > 0:
        config = SFTConfig(steps=args.steps, batch_size=args.batch_size, train_on_prompt=args.unmasked, packed=args.packed,
                           follow_ups=args.follow_ups, loss_per=args.loss_per, seed=args.seed, progress=not args.quiet)
        mixture = tuple(zip((*instructions.FAMILIES, "replay"), (int(w) for w in args.mixture.split(","))))
        history = finetune(model, tokenizer, instructions.training_mixture(n_examples, mixture=mixture), config,
                           instructions.training_mixture(100, split="val"))
    seconds = time.perf_counter() - started
    sizes = dict(zip(instructions.FAMILIES, (int(s) for s in args.eval_sizes.split(","))))
    board = scoreboard(model, tokenizer, sizes, temperatures, args.seed)
    bpb = training.story_bits_per_byte(model, load_story_tokenizer(), 200)
    mixture = [int(w) for w in args.mixture.split(",")]
    result = {"examples": n_examples, "steps": args.steps if n_examples else 0, "train_seconds": seconds, "scores": board,
              "story_bits_per_byte": bpb,
              "final_val_loss": history.eval_val_loss[-1] if history else None,
              "mixture": mixture, "follow_ups": args.follow_ups, "loss_per": args.loss_per,
              "label": recipe_label(mixture, args.follow_ups, args.loss_per, args.steps)}
    return model, result


def recipe_label(mixture: Sequence[int], follow_ups: bool, loss_per: str, steps: int) -> str:
    """A recipe in words, e.g. 'mixture 4:2:1:1 (reading:writing:refusal:replay), follow-ups, loss per token, 800 steps'."""
    parts = [f"mixture {':'.join(map(str, mixture))}", "follow-ups" if follow_ups else "", f"loss per {loss_per}", f"{steps} steps"]
    return ", ".join(p for p in parts if p)


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    tokenizer = chat_tokenizer()
    floor = stories.entropy_floor("test", 200)[0]
    summary: dict = {"command": " ".join(["python -m course_lib.sft", *(sys.argv[1:] if argv is None else argv)]),
                     "floor_bits_per_byte": floor, "unmasked": args.unmasked, "packed": args.packed, "loss_per": args.loss_per}
    sizes = dict(zip(instructions.FAMILIES, (int(s) for s in args.eval_sizes.split(","))))
    if args.base:
        summary["scores"] = base_scoreboard(load_model(asset_path("story_gpt.pt")), load_story_tokenizer(), sizes)
        print(json.dumps(summary), flush=True)
    elif args.curve:
        summary["curve"] = []
        for n in (int(v) for v in args.curve.split(",")):
            _, result = run_one(tokenizer, n, args)
            summary["curve"].append(result)
            print(json.dumps(result), flush=True)
    else:
        model, result = run_one(tokenizer, args.examples, args, temperatures=(0.0, 0.5, 1.0))
        summary.update(result)
        if args.out:
            model.half()
            save_model(model, args.out, tokenizer="story_tokenizer.json", chat_tokens=CHAT_SPECIAL_TOKENS, **summary)
            model.float()
        print(json.dumps(summary), flush=True)
    if args.summary:  # one file for all measurements: each kind of run under its own key
        from pathlib import Path

        path = Path(args.summary)
        everything = json.loads(path.read_text()) if path.exists() else {}
        if not (args.base or args.curve):  # every recipe trained goes into the table of recipes, once
            everything["recipes"] = [r for r in everything.get("recipes", []) if r["label"] != summary["label"]] + [summary]
        if args.base or args.curve or args.out:
            key = "base" if args.base else "curve" if args.curve else "shipped"
            key += ("_unmasked" if args.unmasked else "") + ("_packed" if args.packed else "")
            everything[key] = summary
        path.write_text(json.dumps(everything, indent=1) + "\n")
    return summary


if __name__ == "__main__":
    main()
