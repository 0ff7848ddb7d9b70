"""Checkers of chapter 5 (scaling laws): the student's functions against course_lib.scaling.

Each checker first looks for the classic mistakes of its exercise (and names them), then runs the fixed
cases. Hidden checks call `run_cases` with the `reference_*` functions below and cases of their own.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from course_lib import scaling
from course_lib.checks import Case, Mistake, call_student, checker, close, fail, fail_on_mistake, report, run_cases, short_repr
from course_lib.model import GPT, GPTConfig

__all__ = ["training_flops", "fit_parabola", "fit_power_law", "huber_objective", "fit_law", "compute_optimal",
           "reference_training_flops", "reference_fit_parabola", "reference_fit_power_law", "reference_huber_objective",
           "reference_fit_law", "reference_compute_optimal", "synthetic_law_data", "law_tensors", "to_params", "law_compare"]


# ----------------------------------------------------------------------------------------------------
# The references, with the exercises' signatures.

def reference_training_flops(config: GPTConfig, tokens: int) -> int:
    return scaling.training_flops(config, tokens)


def reference_fit_parabola(log_n, loss) -> tuple[float, float]:
    return scaling.fit_parabola(log_n, loss)


def reference_fit_power_law(x, y) -> tuple[float, float]:
    return scaling.fit_power_law(x, y)


def reference_huber_objective(params, log_n, log_d, log_loss, delta: float = 1e-3) -> float:
    return float(scaling.huber_objective(*(_numpy(v) for v in (params, log_n, log_d, log_loss)), delta))


def reference_fit_law(log_n, log_d, log_loss, starts, delta: float = 1e-3) -> torch.Tensor:
    data = [_numpy(v) for v in (log_n, log_d, log_loss)]
    best = min((scaling.lbfgs(*data, _numpy(s), delta) for s in starts), key=lambda r: r[1])
    return torch.from_numpy(best[0])


def reference_compute_optimal(budget: float, E: float, A: float, B: float, alpha: float, beta: float) -> tuple[float, float]:
    n, d = scaling.compute_optimal(budget, E, A, B, alpha, beta)
    return float(n), float(d)


def _numpy(value) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().double().numpy()
    return np.asarray(value, dtype=np.float64)


# Fixed inputs, the same on every machine.

def synthetic_law_data(law: dict, budgets=(1e18, 1e19, 1e20, 1e21), factors=(1 / 8, 1 / 3, 1, 3, 8), noise: float = 0.0,
                       seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(N, D, loss) of an IsoFLOP-shaped sweep under `law` (sizes `factors` x the optimum of each budget),
    the losses multiplied by exp(noise * a standard normal) from a private generator."""
    rng = np.random.default_rng(seed)
    n, d = [], []
    for c in budgets:
        n_opt, _ = scaling.compute_optimal(c, **law)
        for f in factors:
            n.append(n_opt * f)
            d.append(c / (6 * n_opt * f))
    n, d = np.array(n), np.array(d)
    loss = scaling.parametric_loss(n, d, **law) * np.exp(noise * rng.standard_normal(n.size))
    return n, d, loss


def law_tensors(law: dict, **kwargs) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """log N, log D, log loss of `synthetic_law_data`, as float64 tensors (the inputs of huber_objective)."""
    return tuple(torch.from_numpy(np.log(v)) for v in synthetic_law_data(law, **kwargs))


def to_params(E: float, A: float, B: float, alpha: float, beta: float) -> torch.Tensor:
    """(a, b, e, alpha, beta) = (log A, log B, log E, alpha, beta) as a float64 tensor."""
    return torch.tensor([math.log(A), math.log(B), math.log(E), alpha, beta], dtype=torch.float64)


def _pair(got) -> tuple[float, float] | None:
    """The two numbers of a result (a tuple, list, array or tensor of 2), else None."""
    try:
        values = [float(v) for v in (got.tolist() if hasattr(got, "tolist") else got)]
    except (TypeError, ValueError):
        return None
    return (values[0], values[1]) if len(values) == 2 else None


PAIR = close(1e-6, 1e-12)  # a pair of floats (x, y) from a closed-form answer


def law_compare(got, expected) -> str | None:
    """Two fits agree: E to 0.1%, A and B to 3%, alpha and beta to 1% (A and B move most along the valley)."""
    if not isinstance(got, torch.Tensor) or got.shape != (5,):
        return f"expected a tensor of 5 parameters (a, b, e, alpha, beta), got {short_repr(got, 80)}"
    if not torch.isfinite(got).all():
        return "the parameters are not all finite"
    natural, want = scaling._to_natural(got.detach().double()), scaling._to_natural(expected)
    for name, g, w, tol in zip(scaling.PARAMETERS, natural, want, (1e-3, 3e-2, 3e-2, 1e-2, 1e-2)):
        if not abs(g - w) <= tol * abs(w):
            return f"{name} = {g:.5g} instead of {w:.5g} (tolerance {tol:.1%})"
    return None


SMALL = GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=16, fast_attention=False)


# ----------------------------------------------------------------------------------------------------
# The checkers the check cells call.

@checker
def training_flops(student_fn: Callable) -> None:
    config = GPTConfig(vocab_size=959, block_size=128, n_layer=2, n_head=8, n_embd=64)
    got = call_student("training_flops", "a family model", student_fn, config, 1000)
    expected = reference_training_flops(config, 1000)
    forward_only = expected // 3
    n_all = sum(p.numel() for p in GPT(config).parameters())
    mistakes = [
        (forward_only, "you counted the forward pass only: training also runs backward, which costs twice the forward"),
        (scaling.kaplan_flops(config, 1000), "that is Kaplan's 6 N D with the non-embedding N; count the output layer "
                                             "(2 V C per token forward) and attention (4 L T C) too"),
        (6 * n_all * 1000, "that is 6 N D with every parameter: the embeddings are lookups, not matmuls, but the output "
                           "layer and attention cost FLOPs 6 N D leaves out"),
        (expected - 12 * config.n_layer * config.block_size * config.n_embd * 1000,
         "attention is missing: scores q k^T and the weighted sum of values cost 4 L T C per token forward"),
    ]
    for wrong, hint in mistakes:
        if got == wrong:
            fail("training_flops", "a family model", expected, got, hint=hint)
    cases = [
        Case("a family model, 1,000 tokens", (config, 1000)),
        Case("one layer, one token", (GPTConfig(vocab_size=100, block_size=8, n_layer=1, n_head=1, n_embd=8), 1)),
        Case("chapter 2's story model, 1M tokens", (GPTConfig(vocab_size=1024, block_size=256, n_layer=4, n_head=4, n_embd=128), 10**6)),
        Case("a wide, shallow model", (GPTConfig(vocab_size=959, block_size=64, n_layer=1, n_head=4, n_embd=256), 12345)),
    ]
    run_cases("training_flops", student_fn, cases, reference_training_flops, compare=close(0.0, 0.0),
              hint="per token forward: 2 x (12 L C^2 + V C) for the matmuls (blocks and output layer) + 4 L T C for "
                   "attention; training is 3x the forward; times the tokens")
    # the same number PyTorch counts in a real forward and backward pass
    passed = 0
    for batch, config in ((2, SMALL), (3, GPTConfig(vocab_size=70, block_size=12, n_layer=3, n_head=4, n_embd=24, fast_attention=False))):
        torch.manual_seed(0)
        measured = scaling.measured_flops(GPT(config), batch)
        got = call_student("training_flops vs FlopCounterMode", f"{config.n_layer} layers", student_fn, config, batch * config.block_size)
        if got != measured:
            fail("training_flops vs FlopCounterMode", f"{config.n_layer} layers, {batch} x {config.block_size} tokens", measured, got,
                 hint="FlopCounterMode counts every matmul of the forward and backward pass, attention included")
        passed += 1
    report("training_flops vs FlopCounterMode", passed)


@checker
def fit_parabola(student_fn: Callable) -> None:
    log_n = np.log([1e4, 2e4, 4e4, 8e4, 1.6e5])
    loss = np.array([2.31, 2.12, 2.05, 2.09, 2.20])
    got = _pair(call_student("fit_parabola", "five sizes", student_fn, log_n, loss))
    expected = reference_fit_parabola(log_n, loss)
    c2, c1, c0 = np.polyfit(log_n, loss, 2)
    mistakes = [
        Mistake((float(log_n[2]), float(loss[2])), "you returned the best measured point; fit the parabola and return its vertex"),
        Mistake((math.exp(expected[0]), expected[1]), "return log N_opt (the vertex in log N), not N_opt"),
        Mistake((float(c1 / (2 * c2)), expected[1]), "the vertex of c2 x^2 + c1 x + c0 is at x = -c1 / (2 c2): check the sign"),
        Mistake((expected[0], float(c0)), "the loss at the vertex is the parabola's value there, c0 - c1^2 / (4 c2), not c0"),
    ]
    fail_on_mistake("fit_parabola", "five sizes", expected, got, mistakes, PAIR)
    rng = np.random.default_rng(5)
    x7 = np.linspace(9.0, 13.0, 7)
    cases = [
        Case("five sizes", (log_n, loss)),
        Case("exactly a parabola", (np.array([0.0, 1.0, 2.0, 3.0]), np.array([5.0, 2.0, 1.0, 2.0]))),
        Case("seven noisy sizes (least squares)", (x7, 0.08 * (x7 - 11.3) ** 2 + 1.4 + 0.01 * rng.standard_normal(7))),
        Case("uneven spacing, lists", (list(np.log([3e3, 5e3, 2e4, 9e4, 1e6])), [3.1, 2.7, 2.45, 2.5, 2.95])),
    ]
    run_cases("fit_parabola", student_fn, cases, reference_fit_parabola, compare=close(1e-6, 1e-8),
              hint="c2, c1, c0 = np.polyfit(log_n, loss, 2); the vertex is x = -c1 / (2 c2), y = c0 - c1^2 / (4 c2)")


@checker
def fit_power_law(student_fn: Callable) -> None:
    flops = np.array([1e18, 1e19, 1e20, 1e21])
    n_opt = 0.1 * flops**0.5
    got = _pair(call_student("fit_power_law", "N_opt = 0.1 C^0.5", student_fn, flops, n_opt))
    expected = reference_fit_power_law(flops, n_opt)
    mistakes = [
        Mistake((0.5, 0.1), "return (k, p) in that order: the coefficient first, then the exponent"),
        Mistake((math.log(0.1), 0.5), "k is exp(intercept): the intercept of the line in log-log space is log k"),
        Mistake((math.log10(0.1), 0.5), "k is the coefficient itself, not its logarithm"),
    ]
    fail_on_mistake("fit_power_law", "N_opt = 0.1 C^0.5", expected, got, mistakes, PAIR)
    rng = np.random.default_rng(3)
    x = np.geomspace(1e10, 1e13, 6)
    cases = [
        Case("N_opt = 0.1 C^0.5", (flops, n_opt)),
        Case("a falling law, y = 3 x^-0.3", (np.array([1.0, 10.0, 100.0]), 3 * np.array([1.0, 10.0, 100.0]) ** -0.3)),
        Case("noisy points (least squares in log-log)", (x, 2e-3 * x**0.62 * np.exp(0.05 * rng.standard_normal(6)))),
        Case("two points, lists", ([2.0, 8.0], [5.0, 20.0])),
    ]
    run_cases("fit_power_law", student_fn, cases, reference_fit_power_law, compare=close(1e-6, 1e-12),
              hint="a power law is a line in log-log space: p, log_k = np.polyfit(np.log(x), np.log(y), 1); return (exp(log_k), p)")


BESIROGLU = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.35, "beta": 0.37}


@checker
def huber_objective(student_fn: Callable) -> None:
    log_n, log_d, log_loss = law_tensors(BESIROGLU, noise=0.01, seed=1)
    truth = to_params(**BESIROGLU)
    off = truth + torch.tensor([0.3, -0.2, 0.05, 0.02, -0.01], dtype=torch.float64)
    got = call_student("huber_objective", "the law, a little off", student_fn, off, log_n, log_d, log_loss, 1e-3)
    expected = reference_huber_objective(off, log_n, log_d, log_loss, 1e-3)
    def objective_with(residual) -> float:
        return float(scaling.huber(residual, 1e-3).sum())

    a, b, e, alpha, beta = (_numpy(v) for v in off)
    n, d, loss = (np.exp(_numpy(v)) for v in (log_n, log_d, log_loss))
    residual = np.log(np.exp(a) / n**alpha + np.exp(b) / d**beta + np.exp(e)) - np.log(loss)
    mistakes = [
        (0.5 * float(np.sum(residual**2)), "that is least squares; Huber is quadratic only for |r| <= delta, linear beyond"),
        (expected / len(residual), "sum over the runs (the papers' objective), not the mean"),
        (2 * expected, "Huber is 0.5 r^2 for |r| <= delta and delta (|r| - delta / 2) beyond: you dropped the factors 1/2"),
        (objective_with(np.exp(a) / n**alpha + np.exp(b) / d**beta + np.exp(e) - loss),
         "fit the log of the loss: r = log L_predicted - log L_measured, not L_predicted - L_measured"),
        (objective_with(np.log(np.exp(a) * n**alpha + np.exp(b) * d**beta + np.exp(e)) - np.log(loss)),
         "the terms are a - alpha log N and b - beta log D (A / N^alpha = exp(a - alpha log N)): check the signs"),
    ]
    value = float(got) if isinstance(got, (torch.Tensor, float, int)) and np.size(_numpy(got)) == 1 else None
    for wrong, hint in mistakes:
        if value is not None and math.isclose(value, wrong, rel_tol=1e-6):
            fail("huber_objective", "the law, a little off", expected, got, hint=hint)
    huge = truth.clone()
    huge[0] = 800.0  # A = e^800: computing A / N^alpha directly overflows
    cases = [
        Case("the true law: only the noise is left", (truth, log_n, log_d, log_loss, 1e-3)),
        Case("the law, a little off", (off, log_n, log_d, log_loss, 1e-3)),
        Case("a larger delta", (off, log_n, log_d, log_loss, 0.1)),
        Case("A = e^800 (logsumexp must not overflow)", (huge, log_n[:4], log_d[:4], log_loss[:4], 1e-3)),
        Case("three runs", tuple(torch.tensor(v, dtype=torch.float64) for v in
                                 ([1.0, 2.0, -0.5, 0.3, 0.4], [8.0, 9.0, 10.0], [12.0, 11.0, 10.0], [0.9, 0.7, 0.6])) + (1e-3,)),
    ]
    run_cases("huber_objective", student_fn, cases, reference_huber_objective, compare=close(1e-6, 1e-12),
              hint="pred = torch.logsumexp(torch.stack([a - alpha * log_n, b - beta * log_d, e + 0 * log_n]), dim=0); "
                   "r = pred - log_loss; sum of 0.5 r^2 where |r| <= delta, delta (|r| - delta / 2) elsewhere")
    # L-BFGS needs gradients: the objective must be built from torch operations on params
    params = off.clone().requires_grad_(True)
    result = call_student("huber_objective gradient", "the law, a little off", student_fn, params, log_n, log_d, log_loss, 1e-3)
    if not isinstance(result, torch.Tensor) or not result.requires_grad:
        fail("huber_objective gradient", "the law, a little off", "a tensor that requires grad", result,
             hint="compute with torch operations on `params` (no .item(), numpy or float()), so that autograd can "
                  "give L-BFGS the gradient")
    result.backward()
    _, grad = scaling.huber_objective(_numpy(off), _numpy(log_n), _numpy(log_d), _numpy(log_loss), 1e-3, gradient=True)
    problem = close(1e-5, 1e-10)(params.grad, torch.from_numpy(grad))
    if problem:
        fail("huber_objective gradient", "the law, a little off", torch.from_numpy(grad), params.grad, detail=problem,
             hint="the value is right but not its gradient: do not detach anything inside")
    report("huber_objective gradient", 1)


@checker
def fit_law(student_fn: Callable, objective: Callable | None = None) -> None:
    """The fit: on noise-free data from a known law it must recover the law (and match the reference fit)."""
    starts = [to_params(2.0, 100.0, 100.0, 0.5, 0.5), to_params(1.0, 1000.0, 1000.0, 0.3, 0.3)]
    cases = [
        Case("Besiroglu et al.'s law, no noise", (*law_tensors(BESIROGLU), starts)),
        Case("Chinchilla's law, no noise", (*law_tensors({"E": 1.69, "A": 406.4, "B": 410.7, "alpha": 0.34, "beta": 0.28}), starts)),
        Case("a law of small models", (*law_tensors({"E": 0.97, "A": 60.0, "B": 300.0, "alpha": 0.45, "beta": 0.4},
                                                    budgets=(1e10, 1e11, 1e12)), starts)),
    ]

    run_cases("fit_law", student_fn, cases, reference_fit_law, compare=law_compare,
              hint="for each start: x = start.clone().requires_grad_(True); optimizer = torch.optim.LBFGS([x], "
                   "line_search_fn='strong_wolfe', max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-15); "
                   "step with a closure that zeroes the gradient, computes the objective and calls backward(); keep "
                   "the x with the smallest objective")


@checker
def compute_optimal(student_fn: Callable) -> None:
    law = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.35, "beta": 0.37}
    budget = 5.76e23  # Chinchilla's
    got = _pair(call_student("compute_optimal", "Chinchilla's budget, Besiroglu's law", student_fn, budget, *law.values()))
    expected = reference_compute_optimal(budget, *law.values())
    no_six = reference_compute_optimal(6 * budget, *law.values())
    a, b = law["beta"] / (law["alpha"] + law["beta"]), law["alpha"] / (law["alpha"] + law["beta"])
    g = (law["alpha"] * law["A"] / (law["beta"] * law["B"])) ** (1 / (law["alpha"] + law["beta"]))
    mistakes = [
        Mistake(no_six, "C = 6 N D: use C / 6, not C, in the formulas"),
        Mistake((g * (budget / 6) ** b, (budget / 6) ** a / g), "the exponents are swapped: N_opt grows as C^(beta / (alpha + beta))"),
        Mistake((expected[1], expected[0]), "return (N_opt, D_opt) in that order"),
    ]
    fail_on_mistake("compute_optimal", "Chinchilla's budget, Besiroglu's law", expected, got, mistakes, PAIR)
    if got is not None and not math.isclose(6 * got[0] * got[1], budget, rel_tol=1e-6):
        fail("compute_optimal", "Chinchilla's budget, Besiroglu's law", expected, got,
             hint=f"the pair must spend the budget: 6 N D = C, yours spends {6 * got[0] * got[1] / budget:.3g} C")
    cases = [
        Case("Chinchilla's budget, Besiroglu's law", (budget, *law.values())),
        Case("Chinchilla's fit, 1e21 FLOPs", (1e21, 1.69, 406.4, 410.7, 0.34, 0.28)),
        Case("equal exponents: N_opt ~ sqrt(C)", (1e12, 1.0, 100.0, 100.0, 0.4, 0.4)),
        Case("a small budget", (3e10, 0.97, 60.0, 300.0, 0.45, 0.4)),
    ]
    run_cases("compute_optimal", student_fn, cases, reference_compute_optimal, compare=close(1e-6, 0.0),
              hint="G = (alpha A / (beta B))^(1 / (alpha + beta)); N_opt = G (C/6)^(beta / (alpha + beta)); D_opt = C / (6 N_opt)")
