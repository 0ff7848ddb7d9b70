"""Training a GPT on the story corpus: data, schedule, loop, checkpoints, and the same loop on N processes.

    data      the stories, tokenized, as one stream: <|endoftext|> story <|endoftext|> story ...
    batches   random windows of block_size + 1 tokens: inputs are the first block_size, targets the last
    schedule  linear warm-up, then cosine decay to min_lr (`learning_rate`)
    loop      AdamW, gradient clipping, periodic evaluation, loss history, a tqdm progress bar
    resume    a checkpoint holds the model, the optimizer, the step, the history and the state of the
              batch sampler, so a resumed run continues bit for bit as if it had never stopped (on CPU)
    parallel  `torchrun --nproc_per_node N -m course_lib.training ...` runs the same loop on N processes
              with DistributedDataParallel (gloo on CPU, NCCL on GPU): every process draws the same global
              batch and trains on its share, DDP averages the gradients, so the replicas stay identical
              and match one process training on the whole global batch

Rebuild the shipped story model (assets/story_gpt.pt) with `python -m course_lib build-assets story_gpt`,
which runs `python -m course_lib.training --preset story --half --out assets/story_gpt.pt`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from course_lib import stories
from course_lib.lm import end_of_text_id, model_bits_per_byte, model_device
from course_lib.model import GPT, GPTConfig, count_parameters, flops_per_token, language_model_loss, save_model
from course_lib.tokenizer import STORY_VOCAB_SIZE, load_story_tokenizer  # chapter 1
from course_lib.utils import pick_device, seed_everything

# ----------------------------------------------------------------------------------------------------
# Data


def encode_stories(texts: list[str], tokenizer) -> torch.Tensor:
    """One LongTensor stream: <|endoftext|> story_1 <|endoftext|> story_2 ... <|endoftext|>.

    Starting with the end token means every story, the first included, is predicted after one.
    """
    eot = end_of_text_id(tokenizer)
    ids = [eot]
    for text in texts:
        ids.extend(tokenizer.encode(text))
        ids.append(eot)
    return torch.tensor(ids, dtype=torch.long)


def story_tokens(split: str, n_bytes: int, tokenizer, seed: int = 0) -> torch.Tensor:
    """The token stream of the first stories of `split`, at least `n_bytes` of text."""
    texts, size = [], 0
    for story in stories.iter_stories(split, None, seed):
        texts.append(story.text)
        size += story.n_bytes
        if size >= n_bytes:
            break
    return encode_stories(texts, tokenizer)


def get_batch(data: torch.Tensor, batch_size: int, block_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random windows of the stream: inputs x [B, T] and their next tokens y [B, T] (x shifted by one)."""
    if data.numel() < block_size + 1:
        raise ValueError(f"the data has {data.numel()} tokens, fewer than block_size + 1 = {block_size + 1}")
    starts = torch.randint(data.numel() - block_size, (batch_size,), generator=generator)
    x = torch.stack([data[s : s + block_size] for s in starts.tolist()])
    y = torch.stack([data[s + 1 : s + 1 + block_size] for s in starts.tolist()])
    return x, y


# ----------------------------------------------------------------------------------------------------
# Schedule


def learning_rate(step: int, max_lr: float, warmup_steps: int, max_steps: int, min_lr: float) -> float:
    """Linear warm-up to max_lr over `warmup_steps`, then cosine decay to min_lr at `max_steps`.

    Warm-up keeps the first updates small while AdamW's moment estimates are still noisy; the cosine
    decay lets the model settle into a minimum at the end. Steps count from 0.
    """
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= max_steps:
        return min_lr
    progress = (step - warmup_steps) / max(1, max_steps - warmup_steps)  # 0 -> 1
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (max_lr - min_lr)


# ----------------------------------------------------------------------------------------------------
# The loop


@dataclass
class TrainConfig:
    max_steps: int = 500
    batch_size: int = 16  # global batch (rows), split across processes under torchrun
    learning_rate: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 30
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.95)
    grad_clip: float = 1.0
    eval_interval: int = 100  # evaluate every this many steps (and at the end)
    eval_batches: int = 4
    seed: int = 0
    progress: bool = True  # a tqdm progress bar

    def __post_init__(self) -> None:
        if self.max_steps < 1 or self.batch_size < 1 or self.warmup_steps < 0 or self.eval_interval < 1:
            raise ValueError(f"TrainConfig needs max_steps, batch_size, eval_interval >= 1 and warmup_steps >= 0: {self}")
        self.betas = tuple(self.betas)


@dataclass
class History:
    """What happened during training: the loss of every step, and evaluations now and then."""

    steps: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)  # per step, nats per token, this process's share
    lr: list[float] = field(default_factory=list)
    eval_steps: list[int] = field(default_factory=list)
    eval_train_loss: list[float] = field(default_factory=list)
    eval_val_loss: list[float] = field(default_factory=list)
    tokens_seen: int = 0  # by all processes together
    seconds: float = 0.0  # spent in training steps (not evaluation)

    def tokens_per_second(self) -> float:
        return self.tokens_seen / max(self.seconds, 1e-9)


def make_optimizer(model: GPT, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on biases, layer norms): the nanoGPT recipe."""
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.learning_rate, betas=config.betas)


@torch.no_grad()
def estimate_loss(model: GPT, data: torch.Tensor, batch_size: int, n_batches: int, seed: int = 1234,
                  batches: Callable = get_batch) -> float:
    """Mean loss on `n_batches` fixed random windows of `data` (the same windows at every call)."""
    generator = torch.Generator().manual_seed(seed)
    was_training = model.training
    model.eval()
    device = model_device(model)
    losses = []
    for _ in range(n_batches):
        x, y = batches(data, batch_size, model.config.block_size, generator)
        losses.append(language_model_loss(model(x.to(device)), y.to(device)).item())
    model.train(was_training)
    return sum(losses) / len(losses)


def train(
    model: GPT,
    train_data: torch.Tensor,
    val_data: torch.Tensor | None,
    config: TrainConfig,
    checkpoint_path: str | Path | None = None,
    resume: bool = False,
    stop_at: int | None = None,
    schedule: Callable[[int, float, int, int, float], float] = learning_rate,
    on_step: Callable[[int, GPT], None] | None = None,
    batches: Callable = get_batch,
    loss_scaler=None,
    loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = language_model_loss,
) -> History:
    """Train `model` in place for config.max_steps steps; return the History.

    checkpoint_path: save a checkpoint there at every evaluation and at the end (rank 0 only).
    resume: first load that checkpoint (model, optimizer, step, history, batch sampler) and go on.
    stop_at: stop after this many steps (as if interrupted), the schedule still planned for max_steps.
    schedule: the learning rate of each step, `schedule(step, max_lr, warmup_steps, max_steps, min_lr)`.
    on_step: called as `on_step(steps_done, model)` after every step, e.g. to record an evaluation curve
    (chapter 5); its time is not counted in `history.seconds`.
    batches: draws a batch, `batches(data, batch_size, block_size, generator) -> (x, y)`; default
    `get_batch` (random windows of a token stream). Targets equal to -100 carry no loss, so chapter 6
    trains on padded, masked chat examples with this same loop (`course_lib.sft.sft_batch`).
    loss_scaler: for fp16 training (chapter 8), an object with `scale(loss)`, `unscale_(optimizer)` and
    `step(optimizer)` (and `update()` if it has one), as `torch.amp.GradScaler` or
    `course_lib.precision.DynamicLossScaler`: the loss is scaled before backward, the gradients unscaled
    before clipping, and a step whose gradients hold inf or NaN is skipped.
    loss_fn: the training loss, `loss_fn(logits [B, T, V], targets [B, T]) -> scalar`; default the mean over
    tokens (chapter 6 also offers a mean over examples, `course_lib.sft.per_example_cross_entropy`). The
    evaluations keep the mean over tokens, so runs with different losses stay comparable.
    Under torchrun, each process runs this with the same arguments (see `main`).
    """
    rank, world_size = distributed_rank(), distributed_world_size()
    if config.batch_size % world_size:
        raise ValueError(f"batch_size={config.batch_size} must be divisible by the number of processes ({world_size})")
    device = next(model.parameters()).device
    optimizer = make_optimizer(model, config)
    sampler = torch.Generator().manual_seed(config.seed)  # draws the batches; saved in checkpoints
    history, step = History(), 0
    if resume:
        step, history = load_checkpoint(checkpoint_path, model, optimizer, sampler)
    # DDP averages gradients across processes during backward(); one process needs no wrapper
    ddp_model = DistributedDataParallel(model) if world_size > 1 else model
    block_size = model.config.block_size
    last_step = min(config.max_steps, stop_at if stop_at is not None else config.max_steps)
    progress = progress_bar(range(step, last_step), config.progress and rank == 0)
    model.train()
    for step in progress:
        lr = schedule(step, config.learning_rate, config.warmup_steps, config.max_steps, config.min_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = batches(train_data, config.batch_size, block_size, sampler)  # the same global batch everywhere
        x, y = x[rank::world_size].to(device), y[rank::world_size].to(device)  # this process's share
        started = time.perf_counter()
        loss = loss_fn(ddp_model(x), y)
        optimizer.zero_grad(set_to_none=True)
        if loss_scaler is None:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            optimizer.step()
        else:  # fp16: small gradients would flush to zero unless the loss is scaled up first
            loss_scaler.scale(loss).backward()
            loss_scaler.unscale_(optimizer)  # true gradient sizes, so clipping means what it says
            torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
            loss_scaler.step(optimizer)  # skipped if a gradient holds inf or NaN
            getattr(loss_scaler, "update", lambda: None)()
        loss = loss.item()  # waits for the GPU, so the timing below is honest
        history.seconds += time.perf_counter() - started
        history.steps.append(step)
        history.train_loss.append(loss)
        history.lr.append(lr)
        history.tokens_seen += config.batch_size * x.size(1)  # block_size for stream windows; padded width for SFT
        if (step + 1) % config.eval_interval == 0 or step + 1 == last_step:
            evaluate(model, train_data, val_data, config, history, step + 1, batches)
            if hasattr(progress, "set_postfix"):
                progress.set_postfix(train=f"{history.eval_train_loss[-1]:.3f}", val=f"{history.eval_val_loss[-1]:.3f}")
            if checkpoint_path is not None and rank == 0:
                save_checkpoint(checkpoint_path, model, optimizer, sampler, step + 1, history, config)
        if on_step is not None:
            on_step(step + 1, model)
    model.eval()
    return history


def evaluate(model: GPT, train_data: torch.Tensor, val_data: torch.Tensor | None, config: TrainConfig, history: History, step: int,
             batches: Callable = get_batch) -> None:
    """Append the loss on fixed train and validation windows to the history."""
    history.eval_steps.append(step)
    history.eval_train_loss.append(estimate_loss(model, train_data, config.batch_size, config.eval_batches, batches=batches))
    val = (estimate_loss(model, val_data, config.batch_size, config.eval_batches, batches=batches)
           if val_data is not None else float("nan"))
    history.eval_val_loss.append(val)


def progress_bar(steps: range, enabled: bool):
    if not enabled:
        return steps
    from tqdm.auto import tqdm

    return tqdm(steps, desc="training", unit="step", mininterval=1.0)


# ----------------------------------------------------------------------------------------------------
# Checkpoints


def save_checkpoint(path: str | Path, model: GPT, optimizer: torch.optim.Optimizer, sampler: torch.Generator,
                    step: int, history: History, config: TrainConfig) -> None:
    """Everything a run needs to continue exactly: weights, optimizer moments, step, sampler state."""
    state = {
        "config": asdict(model.config),
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "sampler": sampler.get_state(),
        "step": step,
        "history": asdict(history),
        "train_config": asdict(config),
    }
    tmp = Path(str(path) + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)  # never leave a half-written checkpoint behind


def load_checkpoint(path: str | Path, model: GPT, optimizer: torch.optim.Optimizer | None = None,
                    sampler: torch.Generator | None = None) -> tuple[int, History]:
    """Restore a checkpoint into `model` (and optimizer, sampler); return (step, history)."""
    if path is None or not Path(path).exists():
        raise FileNotFoundError(f"no checkpoint to resume from at {path}")
    state = torch.load(path, map_location=next(model.parameters()).device, weights_only=False)
    if GPTConfig(**state["config"]) != model.config:
        raise ValueError(f"checkpoint {path} holds a model with {state['config']}, not {asdict(model.config)}")
    model.load_state_dict(state["model"])
    if optimizer is not None:
        optimizer.load_state_dict(state["optimizer"])
    if sampler is not None:
        sampler.set_state(state["sampler"])
    return state["step"], History(**state["history"])


# ----------------------------------------------------------------------------------------------------
# Bits per byte on whole stories (the chapter's target; `lm.model_bits_per_byte` is the shared scorer)


def story_bits_per_byte(model: torch.nn.Module, tokenizer, n_stories: int = 200, split: str = "test") -> float:
    """Bits per byte on the first `n_stories` stories of a split (compare with `stories.entropy_floor`)."""
    return model_bits_per_byte(model, tokenizer, [s.text for s in stories.iter_stories(split, n_stories)])


# ----------------------------------------------------------------------------------------------------
# Several processes (torchrun)


def distributed_rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def distributed_world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def setup_distributed(device: torch.device) -> None:
    """Join the process group torchrun set up (env RANK, WORLD_SIZE...); a no-op for one process."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)


@torch.no_grad()
def replica_difference(model: GPT) -> float:
    """Largest difference between any weight on this process and on rank 0 (0.0 means in sync)."""
    if distributed_world_size() == 1:
        return 0.0
    flat = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    reference = flat.clone()
    dist.broadcast(reference, src=0)
    difference = (flat - reference).abs().max()
    dist.all_reduce(difference, op=dist.ReduceOp.MAX)
    return difference.item()


# ----------------------------------------------------------------------------------------------------
# Command line: presets, and the one command that rebuilds the shipped model

PRESETS = {
    # a model the unit tests train in seconds
    "tiny": dict(model=dict(n_layer=2, n_head=2, n_embd=32, block_size=32),
                 train=dict(max_steps=20, batch_size=8, warmup_steps=5, eval_interval=10, eval_batches=2),
                 train_bytes=100_000, val_bytes=20_000),
    # the notebook's model at SCALE = 1 (about a minute on two CPU cores)
    "notebook": dict(model=dict(n_layer=2, n_head=4, n_embd=128, block_size=256),
                     train=dict(max_steps=300, batch_size=16, learning_rate=5e-3, min_lr=5e-4, warmup_steps=20, eval_interval=50),
                     train_bytes=2_000_000, val_bytes=100_000),
    # the shipped model, assets/story_gpt.pt (about 20 minutes on two idle CPU cores)
    "story": dict(model=dict(n_layer=4, n_head=4, n_embd=128, block_size=256),
                  train=dict(max_steps=2400, batch_size=32, learning_rate=3e-3, min_lr=3e-4, warmup_steps=100, eval_interval=200),
                  train_bytes=60_000_000, val_bytes=200_000),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m course_lib.training", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="tiny")
    parser.add_argument("--steps", type=int, help="override max_steps")
    parser.add_argument("--batch-size", type=int, help="override the global batch size")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--checkpoint", help="save training checkpoints here")
    parser.add_argument("--resume", action="store_true", help="continue from --checkpoint")
    parser.add_argument("--out", help="save the final model here (course_lib.model.save_model format)")
    parser.add_argument("--summary", help="write a JSON summary here (rank 0)")
    parser.add_argument("--eval-stories", type=int, default=200, help="test stories for the final bits per byte")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--half", action="store_true", help="store the final weights in float16 (smaller file)")
    return parser


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    device = pick_device(verbose=False) if args.device == "auto" else torch.device(args.device)
    if device.type == "cuda" and "LOCAL_RANK" in os.environ:
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    setup_distributed(device)
    rank = distributed_rank()
    preset = PRESETS[args.preset]
    overrides = {k: v for k, v in (("max_steps", args.steps), ("batch_size", args.batch_size)) if v is not None}
    config = TrainConfig(**{**preset["train"], **overrides, "seed": args.seed, "progress": rank == 0 and not args.quiet})
    tokenizer = load_story_tokenizer()
    train_data = story_tokens("train", preset["train_bytes"], tokenizer)
    val_data = story_tokens("val", preset["val_bytes"], tokenizer)
    seed_everything(args.seed)  # the same initial weights on every process
    # 1024 rows even if the tokenizer stopped merging early (chapter 1): a few rows stay unused
    model = GPT(GPTConfig(vocab_size=max(STORY_VOCAB_SIZE, len(tokenizer)), **preset["model"])).to(device)
    history = train(model, train_data, val_data, config, args.checkpoint, args.resume)
    summary = {
        "preset": args.preset, "world_size": distributed_world_size(), "steps": config.max_steps,
        "parameters": count_parameters(model), "tokens_seen": history.tokens_seen,
        "train_flops": flops_per_token(model.config) * history.tokens_seen,
        "tokens_per_second": history.tokens_per_second(), "final_val_loss": history.eval_val_loss[-1],
        "replica_difference": replica_difference(model),
        "test_bits_per_byte": story_bits_per_byte(model, tokenizer, args.eval_stories) if args.eval_stories else None,
        "checksum": float(sum(p.double().sum().item() for p in model.parameters())),
    }
    if rank == 0:
        if args.out:
            if args.half:
                model.half()
            command = " ".join(["python -m course_lib.training", *(sys.argv[1:] if argv is None else argv)])
            save_model(model, args.out, tokenizer="story_tokenizer.json", command=command, **summary)
            model.float()
        if args.summary:
            Path(args.summary).write_text(json.dumps(summary, indent=1))
        print(json.dumps(summary))
    if dist.is_initialized():
        dist.destroy_process_group()
    return summary


if __name__ == "__main__":
    main()
