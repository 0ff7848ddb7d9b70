"""Chapter 5 side by side: training throughput and MFU of the sweep's models against the measured matmul peak,
and the approach-3 fit from the best grid points against L-BFGS from all 4,500 (what the papers do).

    python benchmarks/bench_scaling.py [--full-grid]

Prints ratios; run it on an idle machine (one process, one thread, as the sweep runs). --full-grid also runs
L-BFGS from all 4,500 starting points (several minutes).
"""

from __future__ import annotations

import sys
import time

import numpy as np
import torch

from course_lib import scaling, training
from course_lib.model import GPT, count_parameters
from course_lib.tokenizer import load_story_tokenizer
from course_lib.utils import ASSETS_DIR, seed_everything


def matmul_peak(size: int = 512, seconds: float = 2.0) -> float:
    """FLOP/s of a square float32 matmul on this thread: the practical peak a small model can approach."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        a @ b
        count += 1
    return 2 * size**3 * count / (time.perf_counter() - started)


def training_speed(width: int, rows: int, stream: torch.Tensor, steps: int = 30) -> float:
    """Tokens per second of the sweep's training step for a family member."""
    seed_everything(0)
    model = GPT(scaling.family_config(width, 959, 128))
    config = training.TrainConfig(max_steps=steps, batch_size=rows, warmup_steps=1, eval_interval=steps, eval_batches=1, progress=False)
    history = training.train(model, stream, None, config)
    return history.tokens_seen / history.seconds


def main() -> None:
    torch.set_num_threads(1)
    peak = matmul_peak()
    print(f"matmul peak (512 x 512, float32, 1 thread): {peak / 1e9:.1f} GFLOP/s")
    stream = scaling.training_stream(200_000, load_story_tokenizer())
    print(f"{'width':>5} {'params':>8} {'rows':>4} {'tokens/s':>9} {'GFLOP/s':>8} {'MFU':>6}")
    for width in (8, 16, 24, 32, 40, 48):
        for rows in (2, 20):
            config = scaling.family_config(width, 959, 128)
            speed = training_speed(width, rows, stream)
            flops = scaling.training_flops(config, 1) * speed
            print(f"{width:5d} {count_parameters(config):8,d} {rows:4d} {speed:9,.0f} {flops / 1e9:8.2f} {flops / peak:6.1%}")
    records = scaling.read_records(ASSETS_DIR / scaling.SWEEP_ASSET)
    if records:
        seconds = sum(r["wall_seconds"] for r in records)
        flops = sum(r["flops_full"] for r in records)
        print(f"shipped sweep: {len(records)} runs, {seconds / 60:.0f} min of run time (one process), "
              f"{len(records) / seconds * 3600:.0f} runs per hour, {flops / sum(r['train_seconds'] for r in records) / 1e9:.2f} GFLOP/s "
              f"while training ({flops / sum(r['train_seconds'] for r in records) / peak:.1%} MFU)")
        fitted = [r for r in records if not r["held_out"]]
        n, d, loss = (np.array([r[k] for r in fitted], dtype=float) for k in ("params", "tokens", "loss"))
        for starts in (8, 4500) if "--full-grid" in sys.argv else (8, 64):
            started = time.perf_counter()
            fit = scaling.fit_scaling_law(n, d, loss, starts=starts)
            print(f"approach 3 from the best {starts:4d} grid points: {time.perf_counter() - started:6.1f} s, objective "
                  f"{fit.objective:.6e}, " + ", ".join(f"{k} = {v:.4g}" for k, v in fit.params.items()))


if __name__ == "__main__":
    main()
