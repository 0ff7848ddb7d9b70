"""Scaling laws (chapter 5): count the compute, sweep sizes and budgets, fit the laws, meet the floor.

    compute   training FLOPs C = 6 N D (Kaplan et al. 2020, N the non-embedding parameters), and the
              fuller count of `model.flops_per_token` (the output layer and attention too)
    family    one knob: a target size N picks (n_layer, n_embd, n_head) at a fixed aspect ratio
    sweep     for every budget C and size N, train D = C / (6 N) tokens with the learning-rate schedule
              stretched to that run's own length; record the held-out loss (nats per token and bits per
              byte, on whole test stories, as the floor is measured) and its curve, one JSON line per run
    fits      approach 1 (envelope of the loss curves), approach 2 (IsoFLOP parabolas), approach 3
              (the parametric law L(N, D) = E + A / N^alpha + B / D^beta), and the compute-optimal split
    floor     the corpus's entropy floor in nats per token, to set beside the fitted E

The shipped sweep (assets/scaling_sweep.jsonl) is rebuilt by `python -m course_lib build-assets
scaling_sweep`, which runs `python -m course_lib.scaling --preset story --jobs 2 --fresh --out
assets/scaling_sweep.jsonl` (two shards side by side, one thread each). A sweep can also be split across
machines (`--shard 0/2` here, `--shard 1/2` there; merging the files is concatenating them), and an
interrupted sweep resumes where it stopped.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from course_lib import lm, stories, training
from course_lib.model import GPT, GPTConfig, count_parameters, flops_per_token
from course_lib.tokenizer import load_story_tokenizer
from course_lib.utils import seed_everything

SWEEP_ASSET = "scaling_sweep.jsonl"

# ----------------------------------------------------------------------------------------------------
# Compute


def kaplan_flops(config: GPTConfig, tokens: int) -> int:
    """C = 6 N D with N the non-embedding parameters (Kaplan et al. 2020): 2 FLOPs per weight and token
    forward (a multiply and an add), twice that backward (gradients of activations and of weights)."""
    return 6 * count_parameters(config, non_embedding=True) * tokens


def training_flops(config: GPTConfig, tokens: int) -> int:
    """The fuller count (PaLM's): every matmul, the output layer and attention included (`flops_per_token`)."""
    return flops_per_token(config) * tokens


def measured_flops(model: GPT, batch_size: int = 2) -> int:
    """FLOPs PyTorch counts (`FlopCounterMode`) in one forward and backward pass on [batch_size, block_size] tokens.

    Attention runs the readable way for the count: FlopCounterMode does not see inside the fused attention
    kernel on a CPU (it would count 0 FLOPs there).
    """
    from torch.utils.flop_counter import FlopCounterMode

    idx = torch.randint(model.config.vocab_size, (batch_size, model.config.block_size), generator=torch.Generator().manual_seed(0))
    attentions = [m for m in model.modules() if hasattr(m, "fast")]
    fast = [m.fast for m in attentions]
    try:
        for m in attentions:
            m.fast = False
        with FlopCounterMode(display=False) as counter:
            logits = model(idx.to(lm.model_device(model)))
            logits.float().square().mean().backward()
    finally:
        for m, f in zip(attentions, fast):
            m.fast = f
        model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


# ----------------------------------------------------------------------------------------------------
# The model family: one knob

ASPECT = 16  # width / depth: deep enough that the compute-optimal models of our budgets have 2 to 3 layers
HEAD_SIZE = 8  # every head gets 8 dimensions
WIDTHS = range(8, 1025, 8)


def family_config(width: int, vocab_size: int, block_size: int) -> GPTConfig:
    """The family member of `width` (a multiple of 8): n_layer = width / 16 rounded (at least 1), heads of 8.

    Widths 8 and 16 have one layer, 24 and 32 two, 40 and 48 three, 56 and 64 four...
    With the story tokenizer's 959 tokens the embedding table (959 x width) holds most parameters of
    the small members: at width 16, 15,000 of 21,000.
    """
    if width % HEAD_SIZE or width < HEAD_SIZE:
        raise ValueError(f"the family's widths are multiples of {HEAD_SIZE}, got {width}")
    n_layer = max(1, math.floor(width / ASPECT + 0.5))
    return GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=width // HEAD_SIZE, n_embd=width)


def model_for_size(n_params: float, vocab_size: int, block_size: int, non_embedding: bool = False) -> GPTConfig:
    """The family member whose parameter count (all, or non-embedding) is closest to `n_params` in ratio."""
    if not n_params > 0:
        raise ValueError(f"a model size must be positive, got {n_params}")
    configs = [family_config(w, vocab_size, block_size) for w in WIDTHS]
    return min(configs, key=lambda c: abs(math.log(count_parameters(c, non_embedding) / n_params)))


# ----------------------------------------------------------------------------------------------------
# The sweep: what to train


@dataclass(frozen=True)
class Preset:
    """A sweep: budgets (FLOPs, C = 6 N D with N all parameters) and the family widths trained at each."""

    budgets: tuple[float, ...]
    widths: tuple[tuple[int, ...], ...]  # one tuple of widths per budget
    held_out: tuple[float, ...] = ()  # budgets kept out of every fit (the largest): extrapolation only
    held_out_widths: tuple[int, ...] = ()
    batch_size: int | None = None  # rows of block_size tokens per step; None: `batch_size_for(budget)`
    block_size: int = 128
    eval_stories: int = 500  # held-out (test) stories for the final loss, and their floor
    curve_stories: int = 64  # the first of them, for the loss curve during training
    curve_points: int = 10
    data_factor: float = 1.0  # each run draws its windows from the first data_factor * D tokens of the stream

    def __post_init__(self) -> None:
        if len(self.budgets) != len(self.widths):
            raise ValueError(f"{len(self.budgets)} budgets but {len(self.widths)} lists of widths")


PRESETS = {
    # the unit tests: 2 budgets x 2 sizes, seconds
    "tiny": Preset(budgets=(2e8, 4e8), widths=((8, 16), (8, 16)), batch_size=2, block_size=32, eval_stories=6,
                   curve_stories=3, curve_points=3),
    # the shipped sweep, assets/scaling_sweep.jsonl (29 runs; with --jobs 2 about 15 minutes on 2 idle cores, 40 on
    # busy ones): 5 budgets over two orders of magnitude, 5 or 6 sizes each around the optimum, and a larger budget
    # held out to test extrapolation
    "story": Preset(budgets=(1e10, 3e10, 1e11, 3e11, 1e12),
                    widths=((8, 16, 24, 32, 40), (8, 16, 24, 32, 40), (8, 16, 24, 32, 40, 48), (16, 24, 32, 40, 48),
                            (16, 24, 32, 40, 48, 56)),
                    held_out=(3e12,), held_out_widths=(32, 48)),
    # the notebook's live mini-sweep: the smallest budget of "story", four sizes (the same runs, so the same
    # numbers), about 20 s on 2 cores
    "mini": Preset(budgets=(1e10,), widths=((8, 16, 24, 32),)),
}


def batch_size_for(budget: float) -> int:
    """Rows per step grow as the square root of the budget (2 at 1e10 FLOPs, 20 at 1e12, at most 32), so that
    runs near the optimum all take several hundred steps: tiny models learn by steps as much as by tokens."""
    return int(min(32, max(2, round(2 * math.sqrt(budget / 1e10)))))


def learning_rate_for(width: int) -> float:
    """Peak learning rate 0.5 / width: 0.03 at width 16, 0.01 at 48 (a pilot sweep at 1e10 and 1e11 FLOPs
    found these best among 0.005, 0.01, 0.02, 0.04; wider models want smaller steps, as muP predicts)."""
    return 0.5 / width


@dataclass(frozen=True)
class Run:
    """One training run of a sweep: everything needed to redo it exactly."""

    budget: float
    width: int
    held_out: bool
    vocab_size: int
    block_size: int
    batch_size: int
    steps: int
    learning_rate: float
    warmup_steps: int
    pool_tokens: int
    curve_steps: tuple[int, ...]
    eval_stories: int
    curve_stories: int

    @property
    def id(self) -> str:
        return f"C={self.budget:.3g} width={self.width}"

    @property
    def seed(self) -> int:
        """Each run's seed comes from its identity, so a rerun (or another shard) draws the same numbers."""
        return zlib.crc32(self.id.encode()) % 2**31

    @property
    def config(self) -> GPTConfig:
        return family_config(self.width, self.vocab_size, self.block_size)

    @property
    def tokens(self) -> int:
        return self.steps * self.batch_size * self.block_size

    @classmethod
    def from_record(cls, record: dict) -> Run:
        return cls(**{name: record[name] for name in cls.__dataclass_fields__} | {"curve_steps": tuple(record["curve_steps"])})


def plan_run(budget: float, width: int, preset: Preset, vocab_size: int, held_out: bool = False) -> Run:
    """Train D = C / (6 N) tokens (whole steps), the schedule stretched to exactly that many steps."""
    config = family_config(width, vocab_size, preset.block_size)
    batch_size = preset.batch_size or batch_size_for(budget)
    tokens_per_step = batch_size * preset.block_size
    steps = max(1, round(budget / (6 * count_parameters(config)) / tokens_per_step))
    fractions = np.geomspace(0.05, 1.0, preset.curve_points)  # log-spaced: the curves are drawn against log FLOPs
    curve_steps = tuple(sorted({max(1, round(steps * f)) for f in fractions}))
    return Run(budget=budget, width=width, held_out=held_out, vocab_size=vocab_size, block_size=preset.block_size,
               batch_size=batch_size, steps=steps, learning_rate=learning_rate_for(width),
               warmup_steps=max(1, steps // 10), pool_tokens=max(int(preset.data_factor * steps * tokens_per_step), 10 * tokens_per_step),
               curve_steps=curve_steps, eval_stories=preset.eval_stories, curve_stories=preset.curve_stories)


def plan_sweep(preset: Preset, vocab_size: int) -> list[Run]:
    """Every run of the preset, cheapest first (so `--shard i/n`, which takes every n-th, shares the work fairly)."""
    runs = [plan_run(budget, width, preset, vocab_size) for budget, widths in zip(preset.budgets, preset.widths) for width in widths]
    runs += [plan_run(budget, width, preset, vocab_size, held_out=True) for budget in preset.held_out for width in preset.held_out_widths]
    return sorted(runs, key=lambda r: (r.budget, r.width))


# ----------------------------------------------------------------------------------------------------
# The sweep: training and recording


@dataclass
class EvalSet:
    """The held-out stories every run is scored on (test split), tokenized once."""

    token_lists: list[list[int]]
    n_bytes: list[int]
    end_id: int

    @classmethod
    def load(cls, tokenizer, n_stories: int) -> EvalSet:
        texts = [s.text for s in stories.iter_stories("test", n_stories)]
        return cls([tokenizer.encode(t) for t in texts], [len(t.encode("utf-8")) for t in texts], lm.end_of_text_id(tokenizer))

    def loss(self, model: torch.nn.Module, n: int | None = None) -> tuple[float, float]:
        """(nats per token, bits per byte) of the model on the first n stories, each scored from its start."""
        n = len(self.token_lists) if n is None else n
        logliks = lm.document_log_likelihoods(model, self.token_lists[:n], self.end_id, batch_size=32)
        total = -sum(ll.sum().item() for ll in logliks)
        return total / sum(ll.numel() for ll in logliks), total / sum(self.n_bytes[:n]) / math.log(2)


def train_run(run: Run, stream: torch.Tensor, evals: EvalSet, device: str | torch.device = "cpu") -> dict:
    """Train one run of the sweep and return its record (one JSON line)."""
    began = time.perf_counter()
    seed_everything(run.seed)
    model = GPT(run.config).to(device)
    curve_tokens, curve_loss, eval_seconds = [], [], 0.0

    def record_curve(step: int, model: GPT) -> None:
        nonlocal eval_seconds
        if step in run.curve_steps:
            started = time.perf_counter()
            curve_tokens.append(step * run.batch_size * run.block_size)
            curve_loss.append(evals.loss(model, run.curve_stories)[0])
            eval_seconds += time.perf_counter() - started

    if stream.numel() < run.pool_tokens:
        raise ValueError(f"the training stream has {stream.numel()} tokens, the run needs {run.pool_tokens}")
    config = training.TrainConfig(max_steps=run.steps, batch_size=run.batch_size, learning_rate=run.learning_rate,
                                  min_lr=run.learning_rate / 10, warmup_steps=run.warmup_steps, eval_interval=run.steps,
                                  eval_batches=1, seed=run.seed, progress=False)
    history = training.train(model, stream[: run.pool_tokens], None, config, on_step=record_curve)
    started = time.perf_counter()
    loss, bpb = evals.loss(model, run.eval_stories)
    eval_seconds += time.perf_counter() - started
    n, n_embedding = count_parameters(model), count_parameters(model, non_embedding=True)
    return {"id": run.id, **asdict(run), "n_layer": run.config.n_layer, "n_head": run.config.n_head,
            "params": n, "params_non_embedding": n_embedding, "tokens": run.tokens,
            "flops": 6 * n * run.tokens, "flops_kaplan": kaplan_flops(run.config, run.tokens),
            "flops_full": training_flops(run.config, run.tokens),
            "loss": loss, "bits_per_byte": bpb, "curve_tokens": curve_tokens, "curve_loss": curve_loss,
            "train_seconds": history.seconds, "eval_seconds": eval_seconds, "wall_seconds": time.perf_counter() - began,
            "threads": torch.get_num_threads(), "device": str(device), "torch": torch.__version__.split("+")[0]}


def training_stream(n_tokens: int, tokenizer) -> torch.Tensor:
    """The first n_tokens of the training stories' token stream (the same prefix whatever n_tokens is)."""
    stream = training.story_tokens("train", int(4.2 * n_tokens) + 10_000, tokenizer)
    while stream.numel() < n_tokens:  # unusually short tokens: take more text
        stream = training.story_tokens("train", 2 * int(4.2 * n_tokens), tokenizer)
    return stream[:n_tokens]


def read_records(path: str | Path) -> list[dict]:
    """The runs of a sweep file (JSON lines). A cut-off last line (an interrupted write) is ignored."""
    path = Path(path)
    if not path.exists():
        return []
    lines = path.read_text().splitlines()
    records = []
    for i, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            if i < len(lines) - 1:
                raise ValueError(f"{path}, line {i + 1}: not a JSON record (only the last line may be cut off)") from None
    unique = {r["id"]: r for r in records}  # merged shards may repeat a run: keep one
    return list(unique.values())


def append_record(path: str | Path, record: dict) -> None:
    """Append one run as a line, dropping a cut-off last line first; flushed, so a crash loses at most this run."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        data = path.read_bytes()
        if data and not data.endswith(b"\n"):
            path.write_bytes(data[: data.rfind(b"\n") + 1])
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")
        f.flush()
        os.fsync(f.fileno())


def parse_shard(text: str) -> tuple[int, int]:
    try:
        index, count = (int(x) for x in text.split("/"))
    except ValueError:
        raise ValueError(f"a shard is written i/n (e.g. 0/2), got {text!r}") from None
    if not 0 <= index < count:
        raise ValueError(f"shard {text}: i must lie in 0..n-1")
    return index, count


def run_sweep(preset: Preset | str, out: str | Path, shard: tuple[int, int] = (0, 1), device: str | torch.device = "cpu",
              progress: bool = True, limit: int | None = None, skip: frozenset[str] = frozenset()) -> list[dict]:
    """Train every run of the preset (this shard's share) not yet in `out`, appending each record as it finishes.

    Returns all records of `out` afterwards. `limit`: stop after this many new runs (as if interrupted).
    `skip`: ids of runs done elsewhere.
    """
    name = preset if isinstance(preset, str) else None
    preset = PRESETS[preset] if isinstance(preset, str) else preset
    tokenizer = load_story_tokenizer()
    index, count = shard
    runs = plan_sweep(preset, len(tokenizer))[index::count]
    done = {r["id"] for r in read_records(out)} | set(skip)
    todo = [r for r in runs if r.id not in done][:limit]
    if todo:
        stream = training_stream(max(r.pool_tokens for r in todo), tokenizer)
        evals = EvalSet.load(tokenizer, preset.eval_stories)
        from tqdm.auto import tqdm

        bar = tqdm(todo, desc="sweep", unit="run", disable=not progress)
        for run in bar:
            bar.set_postfix_str(run.id)
            append_record(out, train_run(run, stream, evals, device) | {"preset": name})
    return read_records(out)


# ----------------------------------------------------------------------------------------------------
# The floor in the units of the fits


def bits_per_byte_to_nats_per_token(bpb: float, bytes_per_token: float) -> float:
    """nats/token = bpb * ln 2 * bytes/token (and bpb = nats/token / ln 2 / bytes/token)."""
    return bpb * math.log(2) * bytes_per_token


def floor_nats_per_token(n_stories: int, tokenizer=None) -> dict:
    """The entropy floor of the first n test stories in nats per token of the story tokenizer (end tokens
    counted, as the models are scored), with its 95% interval, and the same in bits per byte."""
    tokenizer = tokenizer or load_story_tokenizer()
    bpb, low, high = stories.entropy_floor("test", n_stories)
    texts = [s.text for s in stories.iter_stories("test", n_stories)]
    n_tokens = sum(len(tokenizer.encode(t)) + 1 for t in texts)
    bytes_per_token = sum(len(t.encode("utf-8")) for t in texts) / n_tokens
    to_nats = [bits_per_byte_to_nats_per_token(x, bytes_per_token) for x in (bpb, low, high)]
    return {"nats_per_token": to_nats[0], "low": to_nats[1], "high": to_nats[2], "bits_per_byte": bpb,
            "bits_per_byte_low": low, "bits_per_byte_high": high, "bytes_per_token": bytes_per_token, "stories": n_stories}


# ----------------------------------------------------------------------------------------------------
# Fitting: checks every fit shares


def check_points(min_points: int, **arrays) -> list[np.ndarray]:
    """The arrays as float64, with a clear error for too few points, unequal lengths, NaNs or values <= 0."""
    out = [np.asarray(a, dtype=np.float64).reshape(-1) for a in arrays.values()]
    lengths = {name: len(a) for name, a in zip(arrays, out)}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"the arrays differ in length: {lengths}")
    if out[0].size < min_points:
        raise ValueError(f"this fit needs at least {min_points} points, got {out[0].size}")
    for name, a in zip(arrays, out):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} holds NaN or infinite values (at positions {np.flatnonzero(~np.isfinite(a))[:5].tolist()})")
        if (a <= 0).any():
            raise ValueError(f"{name} must be positive (losses, sizes, tokens and FLOPs are > 0); got {a[a <= 0][:3].tolist()}")
    return out


def fit_power_law(x, y) -> tuple[float, float]:
    """y = k * x^p by least squares on log y against log x; returns (k, p)."""
    x, y = check_points(2, x=x, y=y)
    p, log_k = np.polyfit(np.log(x), np.log(y), 1)
    return float(np.exp(log_k)), float(p)


# ----------------------------------------------------------------------------------------------------
# Approach 1: the lower envelope of the training curves


@dataclass
class EnvelopeFit:
    """Hoffmann et al. (2022), approach 1: at each FLOP count, the run whose curve is lowest there."""

    flops: np.ndarray
    loss: np.ndarray
    n_opt: np.ndarray
    d_opt: np.ndarray
    a: float  # N_opt ~ C^a
    b: float  # D_opt ~ C^b
    n_coefficient: float
    d_coefficient: float


def fit_envelope(records: list[dict], n_grid: int = 40, params: str = "params") -> EnvelopeFit:
    """Approach 1 of Hoffmann et al. 2022 (Chinchilla): every run's loss curve against its FLOPs (6 N D),
    interpolated in log FLOPs; at each C of a grid the lowest curve gives N_opt(C), D_opt(C) = C / (6 N_opt);
    then power laws N_opt ~ C^a, D_opt ~ C^b."""
    if len(records) < 2:
        raise ValueError(f"the envelope needs the curves of at least 2 runs, got {len(records)}")
    curves = []
    for r in records:
        flops = 6 * r[params] * np.asarray(r["curve_tokens"], dtype=np.float64)
        loss, = check_points(2, loss=r["curve_loss"])
        curves.append((np.log(flops), loss, r[params]))
    low, high = min(c[0][-1] for c in curves), max(c[0][-1] for c in curves)  # from the smallest budget to the largest
    grid = np.linspace(low, high, n_grid)
    best_loss, best_n = np.full(n_grid, np.inf), np.zeros(n_grid)
    for log_flops, loss, n in curves:
        inside = (grid >= log_flops[0]) & (grid <= log_flops[-1])
        value = np.interp(grid[inside], log_flops, loss)
        better = value < best_loss[inside]
        best_loss[np.flatnonzero(inside)[better]] = value[better]
        best_n[np.flatnonzero(inside)[better]] = n
    flops = np.exp(grid)
    d_opt = flops / (6 * best_n)
    n_coefficient, a = fit_power_law(flops, best_n)
    d_coefficient, b = fit_power_law(flops, d_opt)
    return EnvelopeFit(flops, best_loss, best_n, d_opt, a, b, n_coefficient, d_coefficient)


# ----------------------------------------------------------------------------------------------------
# Approach 2: IsoFLOP parabolas


def fit_parabola(log_n, loss) -> tuple[float, float]:
    """Least-squares parabola loss = c2 (log N)^2 + c1 log N + c0; returns its vertex (log N_opt, loss_opt)."""
    x, y = np.asarray(log_n, dtype=np.float64), np.asarray(loss, dtype=np.float64)
    check_points(3, loss=y)
    if not np.isfinite(x).all():
        raise ValueError("log N holds NaN or infinite values")
    c2, c1, c0 = np.polyfit(x, y, 2)
    if c2 <= 0:
        raise ValueError("the points bend downwards (or lie on a line): this budget's curve has no minimum; "
                         "train sizes on both sides of the optimum")
    return float(-c1 / (2 * c2)), float(c0 - c1**2 / (4 * c2))


@dataclass
class IsoFLOPFit:
    """Hoffmann et al. (2022), approach 2: per budget, the vertex of a parabola of loss in log N."""

    budgets: np.ndarray
    n_opt: np.ndarray
    d_opt: np.ndarray
    loss_opt: np.ndarray
    bracketed: np.ndarray  # was the vertex inside the range of sizes fitted at that budget?
    parabolas: list[np.ndarray]  # coefficients (c2, c1, c0) in log N
    points: list[tuple[np.ndarray, np.ndarray]]  # the (N, loss) each parabola was fitted to
    a: float
    b: float
    n_coefficient: float
    d_coefficient: float

    def n_optimal(self, flops: float) -> float:
        return self.n_coefficient * flops**self.a

    def d_optimal(self, flops: float) -> float:
        return self.d_coefficient * flops**self.b


def near_the_best(n: np.ndarray, loss: np.ndarray, near: float | None) -> np.ndarray:
    """Which runs of one budget the parabola is fitted to: those within `near` (a fraction) of the best loss,
    and at least the best and one neighbour on each side (in N) that exists; all of them if near is None.
    If those do not curve upwards (a noisy run among them), only the best and its two neighbours."""
    if near is None:
        return np.ones(len(n), dtype=bool)
    order = np.argsort(n)
    best = int(np.flatnonzero(order == np.argmin(loss))[0])
    around = np.zeros(len(n), dtype=bool)
    around[order[max(0, min(best - 1, len(n) - 3)): max(0, min(best - 1, len(n) - 3)) + 3]] = True  # three sizes
    keep = around | (loss <= (1 + near) * loss.min())
    if keep.sum() > 3 and np.polyfit(np.log(n[keep]), loss[keep], 2)[0] <= 0:
        return around
    return keep


def fit_isoflops(budgets, n, loss, require_bracketed: bool = True, near: float | None = 0.25) -> IsoFLOPFit:
    """Approach 2 of Hoffmann et al. 2022 (Chinchilla): for each compute budget, fit a parabola to the loss
    against log N over the sizes trained at that budget, take its vertex N_opt(C) (D_opt = C / (6 N_opt)),
    then fit N_opt ~ C^a and D_opt ~ C^b across budgets.

    near: fit each parabola only to the sizes within this fraction of the budget's best loss (`near_the_best`).
    Far from the optimum an IsoFLOP curve is no parabola: our largest models at the smallest budgets take only
    a hundred steps and their loss shoots up, which would bend the parabola and move its vertex. And tiny
    models are noisy (when a run leaves its early plateau varies from seed to seed), so a parabola through
    many sizes can even bend the wrong way: then the best size and its two neighbours are used."""
    budgets, n, loss = check_points(3, budgets=budgets, n=n, loss=loss)
    keys = np.round(np.log(budgets), 6)  # budgets equal to 6 digits are one budget
    if len(np.unique(keys)) < 2:
        raise ValueError(f"approach 2 needs at least 2 budgets to fit exponents, got {len(np.unique(keys))}")
    levels, n_opt, loss_opt, bracketed, parabolas, points = [], [], [], [], [], []
    for key in np.unique(keys):
        here = keys == key
        c = float(budgets[here].mean())
        levels.append(c)
        if here.sum() < 3:
            raise ValueError(f"budget {c:.3g} has {here.sum()} runs; a parabola needs at least 3 sizes")
        used = near_the_best(n[here], loss[here], near)
        n_c, loss_c = n[here][used], loss[here][used]
        log_n_opt, l_opt = fit_parabola(np.log(n_c), loss_c)
        inside = bool(np.log(n_c).min() < log_n_opt < np.log(n_c).max())
        if require_bracketed and not inside:
            raise ValueError(f"at budget {c:.3g} the optimum (N = {math.exp(log_n_opt):.3g}) lies outside the sizes fitted "
                             f"({n_c.min():.3g} to {n_c.max():.3g}): add sizes beyond it")
        n_opt.append(math.exp(log_n_opt))
        loss_opt.append(l_opt)
        bracketed.append(inside)
        parabolas.append(np.polyfit(np.log(n_c), loss_c, 2))
        points.append((n_c, loss_c))
    levels, n_opt = np.array(levels), np.array(n_opt)
    d_opt = levels / (6 * n_opt)
    n_coefficient, a = fit_power_law(levels, n_opt)
    d_coefficient, b = fit_power_law(levels, d_opt)
    return IsoFLOPFit(levels, n_opt, d_opt, np.array(loss_opt), np.array(bracketed), parabolas, points, a, b, n_coefficient,
                      d_coefficient)


# ----------------------------------------------------------------------------------------------------
# Approach 3: the parametric law L(N, D) = E + A / N^alpha + B / D^beta

# Hoffmann et al.'s grid of initial values for (a, b, e, alpha, beta) = (log A, log B, log E, alpha, beta)
INIT_GRID = {"a": (0, 5, 10, 15, 20, 25), "b": (0, 5, 10, 15, 20, 25), "e": (-1, -0.5, 0, 0.5, 1),
             "alpha": (0, 0.5, 1, 1.5, 2), "beta": (0, 0.5, 1, 1.5, 2)}


def parametric_loss(n, d, E: float, A: float, B: float, alpha: float, beta: float):
    """L(N, D) = E + A / N^alpha + B / D^beta (numbers or arrays)."""
    return E + A / np.asarray(n, dtype=np.float64) ** alpha + B / np.asarray(d, dtype=np.float64) ** beta


def huber(residual, delta: float):
    """Quadratic for |r| <= delta, linear beyond: a few outlying runs pull less than in least squares."""
    absolute = np.abs(residual)
    return np.where(absolute <= delta, 0.5 * np.square(residual), delta * (absolute - 0.5 * delta))


def huber_objective(params, log_n, log_d, log_loss, delta: float = 1e-3, gradient: bool = False):
    """Sum over runs of Huber_delta(log L_predicted - log L_measured), where
    log L_predicted = logsumexp(a - alpha log N, b - beta log D, e), so that A = e^a, B = e^b, E = e^e stay
    positive and nothing overflows. params = (a, b, e, alpha, beta): shape [5], or [K, 5] for K sets at once.
    With gradient=True, also the gradient (by hand: d logsumexp / d term = the softmax weight of the term)."""
    params = np.asarray(params, dtype=np.float64)
    log_n, log_d, log_loss = (np.asarray(v, dtype=np.float64) for v in (log_n, log_d, log_loss))
    a, b, e, alpha, beta = (params[..., k, None] for k in range(5))
    t1, t2 = a - alpha * log_n, b - beta * log_d  # log(A / N^alpha), log(B / D^beta)
    top = np.maximum(np.maximum(t1, t2), e)  # subtract the largest term before exp: nothing overflows
    s1, s2, s3 = np.exp(t1 - top), np.exp(t2 - top), np.exp(e - top)
    total = s1 + s2 + s3
    residual = top + np.log(total) - log_loss
    value = huber(residual, delta).sum(axis=-1)
    if not gradient:
        return value
    slope = np.clip(residual, -delta, delta) / total  # Huber'(r) times the softmax denominator
    g1, g2, g3 = slope * s1, slope * s2, slope * s3  # each term's share of the prediction, weighted
    grad = np.stack([g1.sum(-1), g2.sum(-1), g3.sum(-1), -(g1 * log_n).sum(-1), -(g2 * log_d).sum(-1)], axis=-1)
    return value, grad


def lbfgs(log_n, log_d, log_loss, start, delta: float = 1e-3, max_iter: int = 1000) -> tuple[np.ndarray, float]:
    """Minimise `huber_objective` from `start` with L-BFGS (torch.optim.LBFGS, strong Wolfe line search, the
    gradient by hand). Tolerances are tight: the objective is of order 1e-4 (delta = 1e-3 times small
    residuals), so a default stopping rule would stop far from the optimum."""
    x = torch.tensor(np.asarray(start, dtype=np.float64), requires_grad=True)
    optimizer = torch.optim.LBFGS([x], lr=1.0, max_iter=max_iter, max_eval=2 * max_iter, tolerance_grad=1e-12, tolerance_change=1e-15,
                                  history_size=20, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        value, grad = huber_objective(x.detach().numpy(), log_n, log_d, log_loss, delta, gradient=True)
        x.grad = torch.from_numpy(grad)
        return torch.tensor(value, dtype=torch.float64)

    optimizer.step(closure)
    best = x.detach().numpy().copy()
    return best, float(huber_objective(best, log_n, log_d, log_loss, delta))


PARAMETERS = ("E", "A", "B", "alpha", "beta")


@dataclass
class ScalingLawFit:
    """Hoffmann et al. (2022), approach 3: E, A, B, alpha, beta, and 95% bootstrap intervals (when asked)."""

    E: float
    A: float
    B: float
    alpha: float
    beta: float
    objective: float
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    bootstrap: np.ndarray | None = None  # [resamples, 5] in the order of PARAMETERS

    @property
    def params(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in PARAMETERS}

    def loss(self, n, d):
        return parametric_loss(n, d, **self.params)

    def compute_optimal(self, flops):
        return compute_optimal(flops, **self.params)


def _to_natural(x) -> list[float]:
    a, b, e, alpha, beta = (float(v) for v in x)
    return [math.exp(e), math.exp(a), math.exp(b), alpha, beta]


def fit_scaling_law(n, d, loss, delta: float = 1e-3, starts: int = 8, bootstrap: int = 0, seed: int = 0) -> ScalingLawFit:
    """Approach 3 of Hoffmann et al. 2022 (Chinchilla), as Besiroglu et al. 2024 replicate it: minimise
    `huber_objective` (delta = 1e-3, on log-loss, log-sum-exp parametrisation) with L-BFGS. The papers start
    L-BFGS from every point of `INIT_GRID` (4,500) and keep the best; we evaluate the objective on the whole
    grid at once and start L-BFGS from the `starts` best grid points. `bootstrap` > 0: refit that many
    resamples of the runs (drawn with replacement, each fit started from the full fit) for 95% percentile
    intervals of each parameter."""
    n, d, loss = check_points(2 * len(PARAMETERS), n=n, d=d, loss=loss)
    data = [np.log(v) for v in (n, d, loss)]
    grid = np.stack(np.meshgrid(*INIT_GRID.values(), indexing="ij"), axis=-1).reshape(-1, 5).astype(np.float64)

    def fit(log_n, log_d, log_loss, extra: list, grid_starts: int = starts, max_iter: int = 1000) -> tuple[np.ndarray, float]:
        on_grid = huber_objective(grid, log_n, log_d, log_loss, delta)
        candidates = [*grid[np.argsort(on_grid, kind="stable")[:grid_starts]], *extra]
        return min((lbfgs(log_n, log_d, log_loss, x0, delta, max_iter) for x0 in candidates), key=lambda r: r[1])

    best, value = fit(*data, [])
    result = ScalingLawFit(*_to_natural(best), objective=value)
    if bootstrap:
        rng = np.random.default_rng(seed)
        samples = []
        for _ in range(bootstrap):
            pick = rng.integers(0, len(n), len(n))
            x, _ = fit(*(v[pick] for v in data), [best], grid_starts=0, max_iter=200)  # from the full fit: resamples lie near it
            samples.append(_to_natural(x))
        result.bootstrap = np.array(samples)
        result.intervals = {name: tuple(np.percentile(result.bootstrap[:, i], [2.5, 97.5]).tolist()) for i, name in enumerate(PARAMETERS)}
    return result


def compute_optimal(flops, E: float, A: float, B: float, alpha: float, beta: float) -> tuple:
    """The (N_opt, D_opt) minimising L(N, D) under 6 N D = C (Hoffmann et al. 2022, eq. 4):
    N_opt = G (C/6)^(beta/(alpha+beta)), D_opt = (C/6)^(alpha/(alpha+beta)) / G, G = (alpha A / (beta B))^(1/(alpha+beta))."""
    if alpha <= 0 or beta <= 0:
        raise ValueError(f"alpha and beta must be positive for an optimum to exist, got {alpha}, {beta}")
    c = np.asarray(flops, dtype=np.float64) / 6
    g = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    return g * c ** (beta / (alpha + beta)), c ** (alpha / (alpha + beta)) / g


# ----------------------------------------------------------------------------------------------------
# Command line: the one command that rebuilds the shipped sweep


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m course_lib.scaling", description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="story")
    parser.add_argument("--out", required=True, help="the JSON-lines file; runs already in it are skipped (resume)")
    parser.add_argument("--shard", default="0/1", help="i/n: run every n-th run starting at the i-th (merge: concatenate)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (tiny models run best on one)")
    parser.add_argument("--limit", type=int, help="stop after this many runs")
    parser.add_argument("--jobs", type=int, default=1, help="run this many shards side by side here, then merge")
    parser.add_argument("--skip-done-in", help="skip the runs already in this file (how --jobs resumes)")
    parser.add_argument("--fresh", action="store_true", help="rebuild from scratch (beside --out, which is replaced at the end)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def run_jobs(args: argparse.Namespace, out: Path) -> None:
    """`--jobs n`: n shards side by side on this machine (one thread each), then merged into `out`."""
    import subprocess
    import sys

    parts = [out.with_name(f"{out.name}.shard{i}of{args.jobs}") for i in range(args.jobs)]
    command = [sys.executable, "-m", "course_lib.scaling", "--preset", args.preset, "--device", args.device,
               "--threads", str(args.threads), "--quiet"]
    if any(part.exists() for part in parts):  # an interrupted build: keep what its shards finished
        merge_records([out, *parts], out)
        for part in parts:
            part.unlink(missing_ok=True)
    if out.exists():
        command += ["--skip-done-in", str(out)]
    workers = [subprocess.Popen([*command, "--out", str(part), "--shard", f"{i}/{args.jobs}"]) for i, part in enumerate(parts)]
    total = len(plan_sweep(PRESETS[args.preset], len(load_story_tokenizer())))
    from tqdm.auto import tqdm

    with tqdm(total=total, desc="sweep", unit="run", disable=args.quiet) as bar:
        while any(w.poll() is None for w in workers):
            time.sleep(2.0)
            bar.update(sum(len(read_records(part)) for part in parts) + len(read_records(out)) - bar.n)
    if any(w.returncode for w in workers):
        raise RuntimeError(f"a shard failed (exit codes {[w.returncode for w in workers]}); rerun to resume")
    merge_records([out, *parts], out)
    for part in parts:
        part.unlink()


def merge_records(paths: list[Path], out: Path) -> None:
    """Concatenate sweep files into `out` (one line per run, in the order of the plan), atomically."""
    records = {r["id"]: r for path in paths for r in read_records(path)}
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in sorted(records.values(), key=lambda r: (r["budget"], r["width"]))))
    os.replace(tmp, out)


def main(argv: list[str] | None = None) -> list[dict]:
    args = build_parser().parse_args(argv)
    from course_lib.utils import pick_device

    started = time.perf_counter()
    final = Path(args.out)
    out = final.with_name(final.name + ".partial") if args.fresh else final  # --fresh: rebuild beside, then replace
    if args.jobs > 1:
        if args.shard != "0/1" or args.limit:
            raise SystemExit("--jobs runs all shards itself: leave out --shard and --limit")
        run_jobs(args, out)
        records = read_records(out)
    else:
        device = pick_device(verbose=False) if args.device == "auto" else torch.device(args.device)
        torch.set_num_threads(args.threads)
        skip = frozenset(r["id"] for r in read_records(args.skip_done_in)) if args.skip_done_in else frozenset()
        records = run_sweep(args.preset, out, parse_shard(args.shard), device, not args.quiet, args.limit, skip)
    if args.fresh and len(records) == len(plan_sweep(PRESETS[args.preset], len(load_story_tokenizer()))):
        os.replace(out, final)
    print(f"{final}: {len(records)} runs ({time.perf_counter() - started:.0f} s for this call)")
    return records


if __name__ == "__main__":
    main()

