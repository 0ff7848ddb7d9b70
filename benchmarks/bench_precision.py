"""Chapter 8's claims, side by side in one process: fusion, tiled attention, mixed-precision training.

1. The roofline of this machine: peak fp32 matmul FLOP/s and a STREAM-like triad's bandwidth.
2. Elementwise chains (bias + GELU, LayerNorm and softmax from primitives) eager against `torch.compile`, at a
   size far beyond the caches (memory-bound): speed-up (goal: at least 3x), compile time, and the bandwidth
   the compiled kernel reaches as a share of the triad's.
3. Attention: peak tensor memory and time of chapter 2's naive attention, the tiled (FlashAttention-style)
   forward and `scaled_dot_product_attention` as T grows (memory: naive quadratic, tiled linear).
4. Chapter 2's story GPT trained with chapter 2's loop in fp32 and under bf16 autocast from the same weights
   on the same batches: final validation loss gap (goal: within 2%), tokens per second, peak step memory.

    python benchmarks/bench_precision.py                  # CPU (or --device cuda)
    python benchmarks/bench_precision.py --steps 30       # quicker
    python benchmarks/bench_precision.py --small-op-threads 2

Attention and training are made of many small ops; on a busy machine a second thread mostly waits for the
first (we measured 25x slower steps with 2 threads than with 1 on a shared 2-core machine), so those parts run
on `--small-op-threads` threads (default 1), every version alike. The roofline and the chains use all threads.
On a shared machine other processes steal cycles: the load average is printed, and the ratios (measured
within seconds of each other) are more trustworthy than the absolute numbers.
"""

from __future__ import annotations

import argparse
import os
from functools import partial

import torch

from course_lib import fusion, precision, training
from course_lib.model import GPT, GPTConfig, language_model_loss
from course_lib.tokenizer import load_story_tokenizer
from course_lib.utils import seed_everything


def roofline(device: torch.device) -> tuple[float, float]:
    peak = fusion.matmul_flops_per_second(device, n=1024)
    bandwidth = fusion.triad_bandwidth(device)
    fresh = fusion.triad_bandwidth(device, fresh_output=True)
    print(f"peak fp32 matmul {peak / 1e9:.1f} GFLOP/s, triad {bandwidth / 1e9:.1f} GB/s (into a new tensor each call: "
          f"{fresh / 1e9:.1f} GB/s), ridge point {fusion.ridge_point(peak, bandwidth):.1f} FLOPs/byte")
    bf16 = fusion.matmul_flops_per_second(device, n=512, dtype=torch.bfloat16)
    fp32 = fusion.matmul_flops_per_second(device, n=512)
    print(f"512 x 512 matmul: bf16 / fp32 speed {bf16 / fp32:.2f}x (CPU kernels: {precision.cpu_capability()})")
    return peak, bandwidth, fresh


def fusion_chains(device: torch.device, bandwidth: float, fresh: float, rows: int, width: int = 1024) -> None:
    x = torch.randn(rows, width, device=device)
    bias, ones, zeros = torch.randn(width, device=device), torch.ones(width, device=device), torch.zeros(width, device=device)
    chains = {"bias + GELU": (fusion.bias_gelu, (x, bias)), "LayerNorm": (fusion.layer_norm, (x, ones, zeros)),
              "softmax": (fusion.softmax, (x,))}
    print(f"\nelementwise chains on [{rows}, {width}] float32 ({x.numel() * 4 / 2**20:.0f} MiB per tensor)")
    print(f"{'chain':>12} {'eager ms':>9} {'compiled ms':>12} {'speed-up':>9} {'compile s':>10} {'payback calls':>14} "
          f"{'eager GB/s':>11} {'compiled GB/s':>14} {'share of triad':>15} {'of triad, new tensor':>21}")
    for name, (fn, args) in chains.items():
        compiled, compile_seconds, _ = fusion.compile_and_show(fn, *args)
        torch.testing.assert_close(compiled(*args), fn(*args), rtol=1e-4, atol=1e-4)
        eager_s = fusion.seconds_per_call(partial(fn, *args), device)
        compiled_s = fusion.seconds_per_call(partial(compiled, *args), device)
        eager_bytes, _ = fusion.eager_traffic(fn, *args)
        fused_bytes = fusion.fused_traffic(fn, *args)
        achieved = fused_bytes / compiled_s
        print(f"{name:>12} {eager_s * 1e3:>9.1f} {compiled_s * 1e3:>12.1f} {eager_s / compiled_s:>8.1f}x {compile_seconds:>10.1f} "
              f"{fusion.payback_calls(compile_seconds, eager_s, compiled_s):>14.0f} {eager_bytes / eager_s / 1e9:>11.1f} "
              f"{achieved / 1e9:>14.1f} {achieved / bandwidth:>15.0%} {achieved / fresh:>21.0%}")


def attention(device: torch.device, lengths: list[int]) -> None:
    print(f"\nattention, batch 1, 4 heads of 32, causal; blocks of 128 for the tiled version; {torch.get_num_threads()} thread(s)")
    rows = fusion.attention_memory_and_time(lengths, device=device, block=128)
    by = {(r["T"], r["version"]): r for r in rows}
    print(f"{'T':>6} " + " ".join(f"{v + ' MiB':>11} {v + ' ms':>10}" for v in ("naive", "tiled", "sdpa")) + "   tiled / sdpa time")
    for T in lengths:
        cells = " ".join(f"{by[T, v]['peak_bytes'] / 2**20:>11.2f} {by[T, v]['seconds'] * 1e3:>10.1f}" for v in ("naive", "tiled", "sdpa"))
        print(f"{T:>6} {cells}   {by[T, 'tiled']['seconds'] / by[T, 'sdpa']['seconds']:>8.1f}x")
    for version in ("naive", "tiled", "sdpa"):
        growth = [by[b, version]["peak_bytes"] / by[a, version]["peak_bytes"] for a, b in zip(lengths, lengths[1:])]
        print(f"{version:>6}: peak memory grows " + ", ".join(f"x{g:.2f}" for g in growth) + " per doubling of T")


def mixed_precision_training(device: torch.device, steps: int) -> None:
    tokenizer = load_story_tokenizer()
    train_data = training.story_tokens("train", 2_000_000, tokenizer)
    val_data = training.story_tokens("val", 100_000, tokenizer)
    model_config = dict(vocab_size=1024, n_layer=4, n_head=4, n_embd=128, block_size=128)  # the story GPT, shorter context
    config = training.TrainConfig(max_steps=steps, batch_size=16, learning_rate=3e-3, warmup_steps=10, eval_interval=steps,
                                  eval_batches=8, progress=False)
    print(f"\ntraining the story GPT (L4 C128, context 128) for {steps} steps of 16, {torch.get_num_threads()} thread(s), "
          "chapter 2's loop")
    results = {}
    for name in ("fp32", "bf16"):
        seed_everything(0)
        model = GPT(GPTConfig(**model_config)).to(device)
        history = training.train(precision.AutocastModel(model, precision.AMP_DTYPES[name]), train_data, val_data, config)
        x, y = training.get_batch(train_data, 8, 128, torch.Generator().manual_seed(1))
        peak = precision.training_step_peak_memory(model, x.to(device), y.to(device), language_model_loss, precision.AMP_DTYPES[name])
        results[name] = (history.eval_val_loss[-1], history.tokens_per_second(), peak)
    base_loss, base_speed, base_peak = results["fp32"]
    print(f"{'':>6} {'val loss':>9} {'gap':>8} {'tokens/s':>9} {'speed':>7} {'step MiB':>9} {'memory':>7}")
    for name, (loss, speed, peak) in results.items():
        print(f"{name:>6} {loss:>9.4f} {loss / base_loss - 1:>+8.2%} {speed:>9.0f} {speed / base_speed:>6.2f}x "
              f"{peak / 2**20:>9.1f} {peak / base_peak:>6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--rows", type=int, default=8192, help="rows of the [rows, 1024] tensors of the chains")
    parser.add_argument("--lengths", default="256,512,1024,2048", help="sequence lengths for attention")
    parser.add_argument("--steps", type=int, default=60, help="training steps per precision")
    parser.add_argument("--small-op-threads", type=int, default=1, help="CPU threads for attention and training")
    args = parser.parse_args()
    device = torch.device(args.device)
    if hasattr(os, "getloadavg"):
        print(f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; torch uses {torch.get_num_threads()} threads")
    _, bandwidth, fresh = roofline(device)
    fusion_chains(device, bandwidth, fresh, args.rows)
    torch.set_num_threads(args.small_op_threads)
    attention(device, [int(t) for t in args.lengths.split(",")])
    mixed_precision_training(device, args.steps)


if __name__ == "__main__":
    main()
