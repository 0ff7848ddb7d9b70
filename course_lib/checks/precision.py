"""Checkers for chapter 8 (mixed precision and operator fusion): the student's functions against the references.

Each checker runs the student's function and the reference on fixed cases and prints one line per case
group, or raises CheckFailed naming the case, what was expected, what came back and a hint aimed at the
usual mistake (a forgotten hidden 1, an fp16 accumulator, a scale that grows too early, a running sum that
is not rescaled, a future key that is not masked). Hidden checks call `run_cases` with the `reference_*`
functions below and cases of their own.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from course_lib import precision
from course_lib.checks import Case, call_student, checker, close, fail, report, run_cases
from course_lib.fusion import PeakMemory
from course_lib.model import causal_self_attention

__all__ = ["decode_float", "mixed_precision_sum", "scaler_update", "online_softmax", "tiled_attention",
           "reference_decode_float", "reference_mixed_precision_sum", "reference_scaler_update", "reference_online_softmax",
           "reference_tiled_attention", "same_float", "fp32_close", "bits_of", "scale_sequence", "qkv"]


# ----------------------------------------------------------------------------------------------------
# The references, with the exercises' signatures


def reference_decode_float(bits: int, exponent_bits: int, mantissa_bits: int) -> float:
    return precision.decode_bits(bits, exponent_bits, mantissa_bits)


def reference_mixed_precision_sum(values: torch.Tensor) -> torch.Tensor:
    return precision.mixed_precision_sum(values)


def reference_scaler_update(scale: float, good_steps: int, found_inf: bool, growth_factor: float = 2.0,
                            backoff_factor: float = 0.5, growth_interval: int = 2000) -> tuple[float, int]:
    return precision.scaler_update(scale, good_steps, found_inf, growth_factor, backoff_factor, growth_interval)


def reference_online_softmax(x: torch.Tensor, block: int) -> torch.Tensor:
    return torch.softmax(x.double(), dim=-1).to(x.dtype)


def reference_tiled_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, block_q: int, block_k: int) -> torch.Tensor:
    return causal_self_attention(q, k, v)


# ----------------------------------------------------------------------------------------------------
# Comparisons and inputs


def same_float(got, expected) -> str | None:
    """The same Python float (NaN matches NaN; 0.0 and -0.0 differ)."""
    if isinstance(got, torch.Tensor) and got.numel() == 1:
        got = got.item()
    if not isinstance(got, (int, float)) or isinstance(got, bool):
        return f"expected a float, got a {type(got).__name__}"
    if math.isnan(expected):
        return None if math.isnan(got) else "expected NaN (all-ones exponent, non-zero mantissa)"
    if got != expected or math.copysign(1, got) != math.copysign(1, expected):
        return "values differ"
    return None


def fp32_close(got, expected) -> str | None:
    """A float32 scalar tensor within 1e-5 (relative) of the fp32-accumulated sum."""
    if not isinstance(got, torch.Tensor):
        return f"expected a torch.Tensor, got a {type(got).__name__}"
    if got.dtype != torch.float32:
        return f"dtype {got.dtype} instead of torch.float32: the accumulator must be fp32"
    return close(1e-5, 1e-6)(got.reshape(()), expected)


def bits_of(x: float, dtype: torch.dtype) -> tuple[int, int, int]:
    """(bits, exponent_bits, mantissa_bits) of x stored in `dtype`: the arguments of decode_float."""
    fmt = precision.float_format(dtype)
    return precision.to_bits(x, dtype), fmt.exponent_bits, fmt.mantissa_bits


def scale_sequence(update_fn: Callable) -> Callable:
    """Replay `update_fn` over a sequence of steps (True = inf/NaN found): the scale after each step."""

    def run(found_infs: list[bool], init_scale: float, growth_interval: int) -> list[float]:
        scale, good = init_scale, 0
        scales = []
        for found_inf in found_infs:
            scale, good = update_fn(scale, good, found_inf, 2.0, 0.5, growth_interval)
            scales.append(float(scale))
        return scales

    return run


def grad_scaler_replay(found_infs: list[bool], init_scale: float, growth_interval: int) -> list[float]:
    """The scales torch.amp.GradScaler itself holds on the same sequence."""
    return precision.grad_scaler_scales([math.inf if f else 1.0 for f in found_infs], init_scale, growth_interval)


def qkv(B: int, H: int, Tq: int, Tk: int, D: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random q [B, H, Tq, D] and k, v [B, H, Tk, D] from a private generator."""
    generator = torch.Generator().manual_seed(seed)
    return (torch.randn(B, H, Tq, D, generator=generator), torch.randn(B, H, Tk, D, generator=generator),
            torch.randn(B, H, Tk, D, generator=generator))


# ----------------------------------------------------------------------------------------------------
# The checkers the check cells call


@checker
def decode_float(student_fn: Callable) -> None:
    cases = [
        Case("1.0 in fp32", bits_of(1.0, torch.float32)),
        Case("0.1 in fp32 (rounded)", bits_of(0.1, torch.float32)),
        Case("-2.5 in fp16", bits_of(-2.5, torch.float16)),
        Case("fp16's largest number, 65504", bits_of(65504.0, torch.float16)),
        Case("pi in bf16", bits_of(math.pi, torch.bfloat16)),
        Case("an fp16 subnormal (no hidden 1)", bits_of(1e-6, torch.float16)),
        Case("zero", (0, 8, 23)),
        Case("fp16 infinity", (0b0_11111_0000000000, 5, 10)),
        Case("fp8 e5m2 NaN", (0b1_11111_01, 5, 2)),
    ]
    run_cases("decode_float", student_fn, cases, reference_decode_float, compare=same_float,
              hint="sign = top bit; exponent = next E bits; mantissa = last M bits; bias = 2^(E-1) - 1; normal: "
                   "2^(e - bias) * (1 + m / 2^M); e == 0: 2^(1 - bias) * (m / 2^M); e all ones: inf (m == 0) or NaN")


@checker
def mixed_precision_sum(student_fn: Callable) -> None:
    generator = torch.Generator().manual_seed(8)
    cases = [
        Case("0.01 a thousand times in fp16", (torch.full((1000,), 0.01, dtype=torch.float16),)),
        Case("0.01 a thousand times in bf16", (torch.full((1000,), 0.01, dtype=torch.bfloat16),)),
        Case("random fp16 values", ((torch.rand(500, generator=generator) * 4).half(),)),
        Case("one large value, then many small ones (bf16)", (torch.cat([torch.tensor([256.0]), torch.full((300,), 0.5)]).bfloat16(),)),
        Case("an empty tensor", (torch.zeros(0, dtype=torch.float16),)),
    ]
    run_cases("mixed_precision_sum", student_fn, cases, reference_mixed_precision_sum, compare=fp32_close,
              hint="start from torch.zeros((), dtype=torch.float32) and add each value converted with .float(): "
                   "the inputs stay low precision, only the running sum is fp32")


@checker
def scaler_update(student_fn: Callable) -> None:
    cases = [
        Case("a clean step counts", (65536.0, 0, False)),
        Case("overflow: back off, restart the count", (65536.0, 5, True)),
        Case("the last clean step of the interval grows the scale", (1024.0, 1999, False)),
        Case("a short interval", (8.0, 2, False, 2.0, 0.5, 3)),
        Case("other factors", (100.0, 0, True, 4.0, 0.25, 10)),
    ]
    run_cases("scaler_update", student_fn, cases, reference_scaler_update, compare=close(0.0, 0.0),
              hint="found_inf: (scale * backoff_factor, 0); else good_steps + 1, and when that reaches growth_interval: "
                   "(scale * growth_factor, 0); otherwise (scale, good_steps + 1)")
    overflow = [False] * 5 + [True] + [False] * 7 + [True, True] + [False] * 4
    run_cases("scaler_update against torch.amp.GradScaler", scale_sequence(student_fn), [
        Case("19 steps, two overflows in a row, growth_interval 3", (overflow, 2.0**16, 3)),
        Case("growth every step", ([False] * 6 + [True] + [False] * 2, 1.0, 1)),
    ], grad_scaler_replay, compare=close(0.0, 0.0),
        hint="torch's GradScaler (the expected scales) counts clean steps since the last change of the scale")


@checker
def online_softmax(student_fn: Callable) -> None:
    generator = torch.Generator().manual_seed(3)
    x = torch.randn(4, 64, generator=generator) * 3
    rising = torch.arange(32.0).repeat(2, 1)  # every block raises the max: the rescaling is needed each time
    masked = x[:2].clone()
    masked[:, 16:32] = -math.inf  # a whole block masked, as the future keys of attention are
    cases = [
        Case("random rows, blocks of 16", (x, 16)),
        Case("one block (plain softmax)", (x, 64)),
        Case("blocks of one column", (x[:1, :8], 1)),
        Case("a larger value in every block", (rising, 8)),
        Case("huge scores (exp overflows without the max)", (x * 1000, 16)),
        Case("a block of -inf (masked positions)", (masked, 16)),
        Case("three dimensions [B, H, T]", (torch.randn(2, 3, 24, generator=generator), 6)),
    ]
    run_cases("online_softmax", student_fn, cases, reference_online_softmax, compare=close(1e-5, 1e-7),
              hint="keep m (running max) and l (running sum of exp(x - m)) per row; for each block: m_new = max(m, "
                   "block max); l = l * exp(m - m_new) + sum(exp(block - m_new)); at the end return exp(x - m) / l")


@checker
def tiled_attention(student_fn: Callable) -> None:
    cases = [
        Case("T=32, blocks of 8", (*qkv(1, 2, 32, 32, 8, seed=1), 8, 8)),
        Case("one block each (plain attention)", (*qkv(1, 1, 16, 16, 4, seed=2), 16, 16)),
        Case("blocks of 16 queries and 4 keys", (*qkv(2, 2, 32, 32, 8, seed=3), 16, 4)),
        Case("blocks of 4 queries and 16 keys", (*qkv(1, 2, 32, 32, 8, seed=4), 4, 16)),
        Case("queries continue a cache (Tq=8 < Tk=24)", (*qkv(1, 2, 8, 24, 8, seed=5), 4, 8)),
    ]
    run_cases("tiled_attention", student_fn, cases, reference_tiled_attention, compare=close(1e-4, 1e-5),
              hint="per block of queries: m = -inf, l = 0, acc = 0; per block of keys: s = q k^T / sqrt(D), future keys "
                   "(key position > query position; query i sits at Tk - Tq + i) set to -inf, then update m, l and "
                   "acc = acc * exp(m - m_new) + exp(s - m_new) @ v; output acc / l")
    q, k, v = qkv(1, 2, 512, 512, 16, seed=6)
    full_scores = q.size(0) * q.size(1) * 512 * 512 * q.element_size()
    with PeakMemory() as memory:
        call_student("tiled_attention memory", "T=512, blocks of 64", student_fn, q, k, v, 64, 64)
    if memory.peak >= full_scores:
        fail("tiled_attention memory", "T=512, blocks of 64", f"a peak below one full score matrix ({full_scores:,} bytes)",
             f"a peak of {memory.peak:,} bytes",
             hint="never build the [T, T] scores: each step only needs one [block_q, block_k] tile of them")
    report("tiled_attention memory", 1)
