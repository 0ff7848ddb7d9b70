"""Number formats and mixed-precision training (chapter 8), read top to bottom.

    formats       fp32, fp16, bf16 and the two fp8 formats bit by bit: sign, exponent, mantissa; the
                  range, smallest normal and subnormal and eps from the bit counts, beside torch.finfo
    accumulation  summing many small numbers in each format, with an fp32 accumulator, and with Kahan's
                  compensation; the error of a matmul in each format against float64
    loss scaling  why fp16 gradients underflow, and a dynamic loss scaler written out (skip the step and
                  halve on inf/NaN, grow after N clean steps) that decides as torch.amp.GradScaler does
    autocast      which ops run in low precision (observed with a dispatch mode), a model wrapper that
                  trains chapter 2's GPT under autocast through chapter 2's own loop, and the memory
                  each parameter costs
    fp8           a simulated fp8 matmul with per-tensor scaling, and its error

Everything runs on a CPU; the same functions take a CUDA or MPS device where one is present.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn as nn
from torch.utils._python_dispatch import TorchDispatchMode

# ----------------------------------------------------------------------------------------------------
# Formats: how many bits each field gets


@dataclass(frozen=True)
class FloatFormat:
    """The bit layout of a floating-point format: 1 sign bit, then exponent bits, then mantissa bits."""

    name: str
    dtype: torch.dtype
    exponent_bits: int
    mantissa_bits: int
    ieee: bool = True  # all-ones exponent means inf/NaN; float8_e4m3fn spends it on numbers (no inf)

    @property
    def bits(self) -> int:
        return 1 + self.exponent_bits + self.mantissa_bits

    @property
    def bias(self) -> int:
        return 2 ** (self.exponent_bits - 1) - 1


FORMATS = {
    "fp32": FloatFormat("fp32", torch.float32, 8, 23),
    "fp16": FloatFormat("fp16", torch.float16, 5, 10),
    "bf16": FloatFormat("bf16", torch.bfloat16, 8, 7),
    "fp8 e4m3": FloatFormat("fp8 e4m3", torch.float8_e4m3fn, 4, 3, ieee=False),
    "fp8 e5m2": FloatFormat("fp8 e5m2", torch.float8_e5m2, 5, 2),
}
_BY_DTYPE = {f.dtype: f for f in FORMATS.values()}
_INT_VIEW = {32: torch.int32, 16: torch.int16, 8: torch.uint8}


def float_format(dtype: torch.dtype) -> FloatFormat:
    """The layout of `dtype`; a clear error for a dtype this chapter does not cover."""
    if dtype not in _BY_DTYPE:
        raise TypeError(f"unsupported dtype {dtype}: this chapter covers {', '.join(str(d) for d in _BY_DTYPE)}")
    return _BY_DTYPE[dtype]


def to_bits(x: float, dtype: torch.dtype) -> int:
    """The bit pattern (an unsigned int) of `x` rounded to `dtype` (round to nearest even, as torch casts)."""
    fmt = float_format(dtype)
    stored = torch.tensor([x], dtype=torch.float64).to(torch.float32).to(dtype)
    raw = int(stored.view(_INT_VIEW[fmt.bits]).item())
    return raw & ((1 << fmt.bits) - 1)  # int16/int32 views are signed: keep the raw bits


def decode_bits(bits: int, exponent_bits: int, mantissa_bits: int) -> float:
    """The value an IEEE-style bit pattern stands for (sign | exponent | mantissa, all-ones exponent = inf/NaN).

    normal (0 < e < all ones): (-1)^s * 2^(e - bias) * (1 + m / 2^M)
    subnormal (e == 0):         (-1)^s * 2^(1 - bias) * (m / 2^M)     (no hidden 1: gradual underflow)
    """
    sign = (bits >> (exponent_bits + mantissa_bits)) & 1
    exponent = (bits >> mantissa_bits) & ((1 << exponent_bits) - 1)
    mantissa = bits & ((1 << mantissa_bits) - 1)
    bias = 2 ** (exponent_bits - 1) - 1
    if exponent == (1 << exponent_bits) - 1:
        magnitude = math.inf if mantissa == 0 else math.nan
    elif exponent == 0:
        magnitude = 2.0 ** (1 - bias) * mantissa / 2**mantissa_bits
    else:
        magnitude = 2.0 ** (exponent - bias) * (1 + mantissa / 2**mantissa_bits)
    return -magnitude if sign else magnitude


def stored_value(x: float, dtype: torch.dtype) -> float:
    """What `dtype` actually stores for `x` (after rounding), as a Python float."""
    float_format(dtype)
    return torch.tensor([x], dtype=torch.float64).to(torch.float32).to(dtype).to(torch.float64).item()


def anatomy(x: float, dtype: torch.dtype) -> dict:
    """The fields of `x` stored in `dtype`: bit strings, unbiased exponent, stored value, rounding error."""
    fmt = float_format(dtype)
    bits = format(to_bits(x, dtype), f"0{fmt.bits}b")
    sign, exponent, mantissa = bits[0], bits[1 : 1 + fmt.exponent_bits], bits[1 + fmt.exponent_bits :]
    value = stored_value(x, dtype)
    error = abs(value - x) / abs(x) if x != 0 and math.isfinite(value) else (0.0 if value == x else math.inf)
    return {"format": fmt.name, "bits": f"{sign} {exponent} {mantissa}", "sign": int(sign),
            "exponent": int(exponent, 2) - fmt.bias, "mantissa": int(mantissa, 2), "value": value, "relative_error": error}


def anatomy_text(x: float) -> str:
    """One line per format: the bits of `x` (sign | exponent | mantissa) and what each stores."""
    lines = [f"x = {x!r}"]
    for fmt in FORMATS.values():
        a = anatomy(x, fmt.dtype)
        lines.append(f"{fmt.name:>9}: {a['bits']:<36} stores {a['value']!r:<24} relative error {a['relative_error']:.1e}")
    return "\n".join(lines)


def format_limits(fmt: FloatFormat) -> dict:
    """Largest, smallest normal, smallest subnormal and eps from the bit counts (the formulas)."""
    M, bias = fmt.mantissa_bits, fmt.bias
    if fmt.ieee:  # the all-ones exponent is reserved: the top exponent is 2^E - 2 - bias
        largest = (2 - 2.0**-M) * 2.0 ** (2**fmt.exponent_bits - 2 - bias)
    else:  # e4m3fn: all-ones exponent is a number; only mantissa all ones there is NaN
        largest = (2 - 2.0 ** (1 - M)) * 2.0 ** (2**fmt.exponent_bits - 1 - bias)
    return {"max": largest, "smallest normal": 2.0 ** (1 - bias), "smallest subnormal": 2.0 ** (1 - bias - M), "eps": 2.0**-M}


def format_table() -> list[dict]:
    """Each format's limits from the formula beside torch.finfo's, and whether they agree."""
    rows = []
    for fmt in FORMATS.values():
        info = torch.finfo(fmt.dtype)
        from_torch = {"max": info.max, "smallest normal": info.tiny, "smallest subnormal": info.smallest_normal * info.eps,
                      "eps": info.eps}
        formula = format_limits(fmt)
        rows.append({"format": fmt.name, "bits": f"1+{fmt.exponent_bits}+{fmt.mantissa_bits}", "formula": formula,
                     "finfo": from_torch, "agree": all(math.isclose(formula[k], from_torch[k], rel_tol=1e-12) for k in formula)})
    return rows


# ----------------------------------------------------------------------------------------------------
# Accumulation


def sequential_sum(values: torch.Tensor, accumulate: torch.dtype | None = None) -> torch.Tensor:
    """values [N] added one by one into an accumulator of dtype `accumulate` (default: the values' dtype).

    A running sum is what a naive loop, or a dot product inside a kernel, does: each addition rounds to
    the accumulator's format, so once the sum is large its spacing (ulp) can exceed the numbers added.
    """
    accumulate = accumulate or values.dtype
    total = torch.zeros((), dtype=accumulate, device=values.device)
    for value in values:
        total = total + value.to(accumulate)
    return total


def mixed_precision_sum(values: torch.Tensor) -> torch.Tensor:
    """Low-precision values [N] summed in an fp32 accumulator: the rule inside every mixed-precision matmul."""
    return sequential_sum(values, torch.float32)


def kahan_sum(values: torch.Tensor) -> torch.Tensor:
    """values [N] summed in their own dtype with Kahan's compensation: a second variable keeps the low
    bits that each addition rounds away, and feeds them back into the next addition."""
    total = torch.zeros((), dtype=values.dtype, device=values.device)
    lost = torch.zeros((), dtype=values.dtype, device=values.device)
    for value in values:
        corrected = value - lost
        new_total = total + corrected
        lost = (new_total - total) - corrected  # what the addition rounded away (exactly, in this format)
        total = new_total
    return total


def summation_table(value: float = 0.01, n: int = 1000) -> list[tuple[str, float]]:
    """Summing `value` n times in different ways: (how, result). The exact answer is value * n."""
    rows = []
    for name in ("fp32", "fp16", "bf16"):
        xs = torch.full((n,), value, dtype=FORMATS[name].dtype)
        rows.append((f"{name} accumulator", sequential_sum(xs).item()))
        if name != "fp32":
            rows.append((f"{name} inputs, fp32 accumulator", mixed_precision_sum(xs).item()))
            rows.append((f"{name} with Kahan compensation", kahan_sum(xs).item()))
    rows.append(("float64 (reference)", sequential_sum(torch.full((n,), value, dtype=torch.float64)).item()))
    return rows


def matmul_error(dtype: torch.dtype, n: int = 256, seed: int = 0, device: str | torch.device = "cpu") -> float:
    """Relative error (Frobenius) of an n x n matmul with inputs and output in `dtype`, against float64."""
    float_format(dtype)
    generator = torch.Generator().manual_seed(seed)
    a, b = torch.randn(n, n, generator=generator, dtype=torch.float64), torch.randn(n, n, generator=generator, dtype=torch.float64)
    exact = a @ b
    if dtype in (torch.float8_e4m3fn, torch.float8_e5m2):
        got = fp8_matmul(a.float(), b.float(), dtype)
    else:
        got = (a.to(dtype).to(device) @ b.to(dtype).to(device)).double().cpu()
    return ((got.double() - exact).norm() / exact.norm()).item()


# ----------------------------------------------------------------------------------------------------
# fp8: a simulated matmul with per-tensor scaling


def fp8_quantize(x: torch.Tensor, dtype: torch.dtype = torch.float8_e4m3fn) -> tuple[torch.Tensor, torch.Tensor]:
    """x (any shape) -> (x_fp8, scale) with x ~= x_fp8 * scale: the largest |x| is mapped onto the format's max.

    fp8 has so little range that one scale per tensor is needed to use it at all (as in NVIDIA's
    Transformer Engine); the scale is kept in fp32.
    """
    if dtype not in (torch.float8_e4m3fn, torch.float8_e5m2):
        raise TypeError(f"fp8_quantize needs an fp8 dtype (torch.float8_e4m3fn or torch.float8_e5m2), got {dtype}")
    amax = x.abs().max().float().clamp(min=1e-12)
    scale = amax / torch.finfo(dtype).max
    return (x.float() / scale).to(dtype), scale


def fp8_matmul(a: torch.Tensor, b: torch.Tensor, dtype: torch.dtype = torch.float8_e4m3fn) -> torch.Tensor:
    """a [M, K] @ b [K, N] with both inputs rounded to fp8 (per-tensor scales), products summed in fp32.

    Simulated: the fp8 values are widened to fp32 for the matmul, which is exactly what an fp8 tensor core
    computes (fp8 products, fp32 accumulation), only slower.
    """
    a8, scale_a = fp8_quantize(a, dtype)
    b8, scale_b = fp8_quantize(b, dtype)
    return (a8.float() @ b8.float()) * (scale_a * scale_b)


# ----------------------------------------------------------------------------------------------------
# Loss scaling


def gradient_magnitudes(model: nn.Module, x: torch.Tensor, y: torch.Tensor, loss_fn: Callable,
                        dtype: torch.dtype | None = None, scale: float = 1.0) -> torch.Tensor:
    """|gradient| of every parameter entry [N_params] after one backward pass on (x, y), in float32.

    With `dtype`, the forward pass runs under autocast (so the backward's matmuls run in `dtype` too), and
    the loss is multiplied by `scale` before backward; the gradients returned are divided by it again.
    """
    model.zero_grad(set_to_none=True)
    loss = loss_fn(AutocastModel(model, dtype)(x), y)
    (loss * scale).backward()
    grads = torch.cat([p.grad.detach().reshape(-1).abs().float().cpu() / scale for p in model.parameters() if p.grad is not None])
    model.zero_grad(set_to_none=True)
    return grads


def underflow_shares(magnitudes: torch.Tensor, scale: float = 1.0) -> dict:
    """Share of non-zero gradient entries that fp16 would flush to zero, or keep only as subnormals, after
    multiplying by `scale`."""
    info = torch.finfo(torch.float16)
    values = magnitudes[magnitudes > 0].double() * scale
    smallest_subnormal = info.smallest_normal * info.eps
    return {"zero": (values < smallest_subnormal / 2).double().mean().item(),
            "subnormal": ((values >= smallest_subnormal / 2) & (values < info.smallest_normal)).double().mean().item(),
            "overflow": (values > info.max).double().mean().item()}


def scaler_update(scale: float, good_steps: int, found_inf: bool, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                  growth_interval: int = 2000) -> tuple[float, int]:
    """One decision of a dynamic loss scaler: (new scale, new count of clean steps in a row).

    inf/NaN in the gradients: the step is skipped, the scale backs off, the count restarts.
    A clean step: the count grows; after `growth_interval` clean steps in a row the scale grows, count restarts.
    """
    if found_inf:
        return scale * backoff_factor, 0
    good_steps += 1
    if good_steps == growth_interval:
        return scale * growth_factor, 0
    return scale, good_steps


class DynamicLossScaler:
    """A loss scaler written out: scale the loss, unscale the gradients, skip the step on inf/NaN, adapt.

        loss = scaler.scale(loss); loss.backward(); scaler.step(optimizer)  # step() also updates the scale

    Defaults are torch.amp.GradScaler's (init 2^16, growth 2, backoff 0.5, every 2000 clean steps).
    """

    def __init__(self, init_scale: float = 2.0**16, growth_factor: float = 2.0, backoff_factor: float = 0.5,
                 growth_interval: int = 2000) -> None:
        if not (init_scale > 0 and growth_factor > 1 and 0 < backoff_factor < 1 and growth_interval >= 1):
            raise ValueError("DynamicLossScaler needs init_scale > 0, growth_factor > 1, 0 < backoff_factor < 1, growth_interval >= 1")
        self.scale_value, self.good_steps = float(init_scale), 0
        self.growth_factor, self.backoff_factor, self.growth_interval = growth_factor, backoff_factor, growth_interval
        self.skipped, self.skipped_at, self.calls = 0, [], 0  # how many steps were skipped, and which (0-based)
        self.found_inf: bool | None = None  # set by unscale_ until step() uses it (so clipping can come between)

    def scale(self, loss: torch.Tensor) -> torch.Tensor:
        """loss * scale; a non-finite loss is a diverged forward pass, not an overflow the scale can fix."""
        if not torch.isfinite(loss).all():
            raise ValueError(f"the loss passed to the scaler is not finite ({loss.detach().float().cpu().tolist()}): "
                             "the forward pass itself overflowed or diverged; lower the learning rate or check the data")
        return loss * self.scale_value

    def unscale_(self, optimizer: torch.optim.Optimizer) -> bool:
        """Divide every gradient by the scale in place (once per step); return True if any holds inf or NaN."""
        if self.found_inf is not None:
            return self.found_inf
        found_inf = False
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad.div_(self.scale_value)
                    found_inf = found_inf or not torch.isfinite(p.grad).all().item()
        self.found_inf = found_inf
        return found_inf

    def step(self, optimizer: torch.optim.Optimizer) -> bool:
        """Unscale (unless unscale_ already did), step unless inf/NaN was found, update the scale.
        Returns True if the step was taken."""
        found_inf = self.unscale_(optimizer)
        self.found_inf = None
        if found_inf:
            self.skipped += 1
            self.skipped_at.append(self.calls)
        else:
            optimizer.step()
        self.scale_value, self.good_steps = scaler_update(self.scale_value, self.good_steps, found_inf, self.growth_factor,
                                                          self.backoff_factor, self.growth_interval)
        self.calls += 1
        return not found_inf


def grad_scaler_scales(gradients: list[float], init_scale: float = 2.0**16, growth_interval: int = 2000) -> list[float]:
    """The scale torch.amp.GradScaler holds after each step when a parameter's gradient is each of `gradients`
    (inf or nan to simulate an overflow). Run on the CPU."""
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.0)
    scaler = torch.amp.GradScaler("cpu", init_scale=init_scale, growth_interval=growth_interval)
    scales = []
    for g in gradients:
        optimizer.zero_grad()
        scaler.scale((param * g).sum()).backward()  # the gradient is g * scale: inf or nan when g is
        scaler.step(optimizer)  # skipped when the unscaled gradient holds inf or nan
        scaler.update()
        scales.append(float(scaler.get_scale()))
    return scales


def own_scaler_scales(gradients: list[float], init_scale: float = 2.0**16, growth_interval: int = 2000) -> list[float]:
    """The same sequence through `DynamicLossScaler`: the scale after each step."""
    param = nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=0.0)
    scaler = DynamicLossScaler(init_scale, growth_interval=growth_interval)
    scales = []
    for g in gradients:
        param.grad = torch.full((1,), g * scaler.scale_value)  # as if backward ran on the scaled loss
        scaler.step(optimizer)
        scales.append(scaler.scale_value)
    return scales


# ----------------------------------------------------------------------------------------------------
# Autocast: what runs in low precision, and chapter 2's model trained under it

AMP_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_amp(device: torch.device | str, dtype: torch.dtype | None) -> None:
    """A clear error for a device type or dtype autocast does not handle here."""
    device_type = torch.device(device).type
    if device_type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"unsupported device {device_type!r} for autocast: use cpu, cuda or mps")
    if dtype is not None and dtype not in (torch.bfloat16, torch.float16):
        raise TypeError(f"unsupported autocast dtype {dtype}: use torch.bfloat16 or torch.float16 (or None for fp32)")
    if dtype is torch.bfloat16 and device_type == "cuda" and not torch.cuda.is_bf16_supported():
        raise TypeError("this GPU has no bf16 support: use torch.float16 with a loss scaler")


class AutocastModel(nn.Module):
    """Chapter 2's GPT with its forward pass under `torch.autocast(dtype)`: chapter 2's `train` trains it as is.

    The weights stay fp32 (they are the master weights); autocast casts them to `dtype` on the fly for each
    matmul, and keeps precision-sensitive ops (softmax, norms, the loss) in fp32.
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype | None) -> None:
        super().__init__()
        device = next(model.parameters()).device
        check_amp(device, dtype)
        self.model, self.dtype, self.device_type = model, dtype, device.type
        self.config = model.config

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx [B, T] -> logits [B, T, V] (in `dtype` for the matmul that makes them)."""
        with torch.autocast(self.device_type, dtype=self.dtype or torch.bfloat16, enabled=self.dtype is not None):
            return self.model(idx)


class DtypeRecorder(TorchDispatchMode):
    """Records every op that runs, with the dtype of its first floating-point output."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: Counter = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        first = out[0] if isinstance(out, (tuple, list)) and out else out
        if isinstance(first, torch.Tensor) and first.is_floating_point():
            self.ops[(func.overloadpacket.__name__, str(first.dtype).replace("torch.", ""))] += 1
        return out


def observe_autocast(model: nn.Module, idx: torch.Tensor, targets: torch.Tensor, loss_fn: Callable,
                     dtype: torch.dtype = torch.bfloat16) -> Counter:
    """Which ops a forward pass and the loss run in which dtype under autocast: {(op, dtype): count}."""
    device = next(model.parameters()).device
    check_amp(device, dtype)
    recorder = DtypeRecorder()
    with torch.no_grad(), torch.autocast(device.type, dtype=dtype), recorder:
        loss_fn(model(idx), targets)
    return recorder.ops


def training_bytes_per_parameter(weights: int = 4, gradients: int = 4, master: int = 0, adam: int = 8) -> dict:
    """Bytes each parameter costs during training (activations not included), field by field."""
    parts = {"weights": weights, "gradients": gradients, "fp32 master weights": master, "AdamW moments": adam}
    return {**parts, "total": sum(parts.values())}


def measured_bytes_per_parameter(model: nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    """Bytes per parameter actually held by the weights, the gradients and the optimizer's state tensors."""
    n = sum(p.numel() for p in model.parameters())
    weights = sum(p.numel() * p.element_size() for p in model.parameters())
    grads = sum(p.grad.numel() * p.grad.element_size() for p in model.parameters() if p.grad is not None)
    state = sum(t.numel() * t.element_size() for s in optimizer.state.values() for t in s.values()
                if isinstance(t, torch.Tensor) and t.dim() > 0)  # leave out the scalar step counters
    return {"weights": weights / n, "gradients": grads / n, "AdamW moments": state / n, "total": (weights + grads + state) / n}


def training_step_peak_memory(model: nn.Module, idx: torch.Tensor, targets: torch.Tensor, loss_fn: Callable,
                              dtype: torch.dtype | None) -> int:
    """Peak bytes of the tensors one forward + backward creates (activations, casts, gradients), in fp32
    (`dtype=None`) or under autocast."""
    from course_lib.fusion import peak_memory  # the tracker lives with the other measurements

    wrapped = AutocastModel(model, dtype)

    def step() -> None:
        loss_fn(wrapped(idx), targets).backward()

    peak = peak_memory(step, idx.device)
    model.zero_grad(set_to_none=True)
    return peak


def cpu_capability() -> str:
    """The widest vector instruction set PyTorch's CPU kernels use here (e.g. AVX2, AVX512; 'n/a' off x86)."""
    try:
        return torch.backends.cpu.get_cpu_capability()
    except (AttributeError, RuntimeError):
        return "n/a"
