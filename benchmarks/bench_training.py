"""Training throughput and model FLOP utilization (MFU) of course_lib's GPT, for a few model sizes.

MFU = (model FLOPs per token x tokens per second) / peak FLOP/s, with the model FLOPs of
`course_lib.model.flops_per_token` (6 N + 12 L T C, PaLM appendix B) and the peak *measured here, in this
process*: the best float32 matmul rate torch reaches on this machine. Also compares the readable attention
with the fused `scaled_dot_product_attention` it is checked against.

    python benchmarks/bench_training.py            # CPU (or --device cuda)
    python benchmarks/bench_training.py --steps 5  # quicker

The load average is printed: on a shared machine other processes steal cycles and every number drops.
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from course_lib.model import GPT, GPTConfig, count_parameters, flops_per_token, language_model_loss
from course_lib.training import TrainConfig, make_optimizer
from course_lib.utils import seed_everything

SIZES = {
    "notebook (L2 C128)": dict(n_layer=2, n_head=4, n_embd=128),
    "shipped (L4 C128)": dict(n_layer=4, n_head=4, n_embd=128),
    "wider (L4 C256)": dict(n_layer=4, n_head=8, n_embd=256),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_peak(device: torch.device, size: int = 2048, repeats: int = 10) -> float:
    """Best float32 matmul FLOP/s over a few sizes: the machine's practical peak for this process."""
    best = 0.0
    for n in (size // 2, size):
        a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
        for _ in range(3):
            a @ b
        sync(device)
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(repeats):
                a @ b
            sync(device)
            best = max(best, 2 * n**3 * repeats / (time.perf_counter() - start))
    return best


def tokens_per_second(config: GPTConfig, batch_size: int, steps: int, device: torch.device) -> float:
    """Training tokens per second of full steps (forward, backward, clip, AdamW), after warm-up steps."""
    seed_everything(0)
    model = GPT(config).to(device)
    optimizer = make_optimizer(model, TrainConfig())
    x = torch.randint(0, config.vocab_size, (batch_size, config.block_size), device=device)

    def step() -> None:
        loss = language_model_loss(model(x), x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()

    for _ in range(2):
        step()
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return batch_size * config.block_size * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--block-size", type=int, default=256)
    args = parser.parse_args()
    device = torch.device(args.device)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"device {device}, {torch.get_num_threads()} threads, load average {load:.2f} on {os.cpu_count()} CPUs")
    peak = matmul_peak(device)
    print(f"measured float32 matmul peak: {peak / 1e9:.1f} GFLOP/s\n")
    print(f"{'model':20s} {'params':>8s} {'MFLOP/tok':>9s} {'tokens/s':>9s} {'GFLOP/s':>8s} {'MFU':>6s} {'readable attn':>14s}")
    for name, sizes in SIZES.items():
        config = GPTConfig(vocab_size=1024, block_size=args.block_size, **sizes)
        rate = tokens_per_second(config, args.batch_size, args.steps, device)
        readable = tokens_per_second(GPTConfig(**{**config.__dict__, "fast_attention": False}), args.batch_size, args.steps, device)
        flops = flops_per_token(config) * rate
        print(f"{name:20s} {count_parameters(config) / 1e6:7.2f}M {flops_per_token(config) / 1e6:9.2f} {rate:9.0f} "
              f"{flops / 1e9:8.1f} {flops / peak:6.1%} {readable / rate:13.2f}x")
    print("\nMFU: model FLOPs (6N + 12LTC per token) per second over the measured matmul peak, same process.")
    print("readable attn: tokens/s with the step-by-step attention relative to the fused kernel (1.00x = same speed).")


if __name__ == "__main__":
    main()
