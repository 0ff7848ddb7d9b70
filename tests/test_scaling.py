"""Tests of course_lib.scaling (chapter 5): FLOPs, the family, the sweep runner, the fits, the shipped sweep, checkers."""

import json
import math
from dataclasses import asdict

import numpy as np
import pytest
import torch

from course_lib import scaling, stories
from course_lib.checks import CheckFailed
from course_lib.checks import scaling as check
from course_lib.model import GPT, GPTConfig, count_parameters
from course_lib.toolchain.assets import ASSETS
from course_lib.utils import ASSETS_DIR

BESIROGLU = {"E": 1.82, "A": 482.0, "B": 2085.0, "alpha": 0.35, "beta": 0.37}
SHIPPED = ASSETS_DIR / scaling.SWEEP_ASSET


# ----------------------------------------------------------------------------------------------------
# Compute


@pytest.mark.parametrize("fast", [False, True])
def test_flop_formulas_match_flop_counter(fast):
    config = GPTConfig(vocab_size=61, block_size=12, n_layer=2, n_head=3, n_embd=24, fast_attention=fast)
    torch.manual_seed(0)
    model = GPT(config)
    batch = 3
    tokens = batch * config.block_size
    measured = scaling.measured_flops(model, batch)
    # the fuller count is exactly what PyTorch counts in a forward and backward pass (every matmul)
    assert scaling.training_flops(config, tokens) == measured
    # Kaplan's 6 N D leaves out the output layer and attention, and counts biases and norms as if they were matmuls
    C, L, V, T = config.n_embd, config.n_layer, config.vocab_size, config.block_size
    matmul_weights_in_blocks = L * 12 * C * C
    non_matmul = count_parameters(config, non_embedding=True) - matmul_weights_in_blocks  # biases, layer norms
    assert measured - scaling.kaplan_flops(config, tokens) == tokens * (6 * V * C + 12 * L * T * C - 6 * non_matmul)
    assert fast == model.blocks[0].attn.fast  # the count put the fused attention back


def test_family_is_one_knob():
    configs = [scaling.family_config(w, 959, 128) for w in scaling.WIDTHS[:40]]
    sizes = [count_parameters(c) for c in configs]
    assert sizes == sorted(sizes)  # a wider member is a larger model
    for c in configs:
        assert c.n_embd == c.n_head * scaling.HEAD_SIZE
        assert c.n_layer == 1 or scaling.ASPECT * 2 / 3 <= c.n_embd / c.n_layer <= scaling.ASPECT * 3 / 2  # about 32
    assert [scaling.family_config(w, 959, 128).n_layer for w in (8, 16, 24, 32, 40, 48, 56, 64)] == [1, 1, 2, 2, 3, 3, 4, 4]
    for target in (1e4, 5e4, 3e5, 2e6):
        picked = scaling.model_for_size(target, 959, 128)
        ratio = abs(math.log(count_parameters(picked) / target))
        assert all(ratio <= abs(math.log(count_parameters(c) / target)) + 1e-12 for c in configs)
    assert count_parameters(scaling.model_for_size(1e5, 959, 128, non_embedding=True), non_embedding=True) == pytest.approx(1e5, rel=0.3)
    with pytest.raises(ValueError, match="multiples of 8"):
        scaling.family_config(20, 959, 128)
    with pytest.raises(ValueError, match="positive"):
        scaling.model_for_size(0, 959, 128)


def test_plan_spends_each_budget_with_its_own_schedule():
    preset = scaling.PRESETS["story"]
    runs = scaling.plan_sweep(preset, 959)
    assert len({r.id for r in runs}) == len(runs)
    assert len({r.seed for r in runs}) == len(runs)
    for run in runs:
        n = count_parameters(run.config)
        tokens_per_step = run.batch_size * run.block_size
        assert abs(6 * n * run.tokens - run.budget) <= 6 * n * tokens_per_step / 2 + 1  # D = C / (6 N) to within half a step
        assert run.curve_steps[-1] == run.steps and run.warmup_steps < run.steps
        assert run.learning_rate == pytest.approx(0.5 / run.width)
    assert max(r.budget for r in runs if r.held_out) > max(r.budget for r in runs if not r.held_out)
    assert scaling.plan_run(1e10, 16, preset, 959).seed == scaling.plan_run(1e10, 16, preset, 959).seed
    assert scaling.Run.from_record(json.loads(json.dumps(asdict(runs[3])))) == runs[3]


# ----------------------------------------------------------------------------------------------------
# The sweep runner: resume and shards


def test_sweep_resumes_and_shards_merge_to_the_full_sweep(tmp_path):
    full = tmp_path / "full.jsonl"
    first = scaling.run_sweep("tiny", full, progress=False, limit=1)
    assert len(first) == 1
    with full.open("a") as f:
        f.write('{"id": "cut off in the mid')  # an interrupted write
    records = scaling.run_sweep("tiny", full, progress=False)  # resumes: the three others, the cut line dropped
    planned = [r.id for r in scaling.plan_sweep(scaling.PRESETS["tiny"], 959)]
    assert [r["id"] for r in records] == planned
    assert records[0] == first[0]
    assert full.read_text().count("\n") == 4
    ratio = bytes_per_token(scaling.PRESETS["tiny"].eval_stories)
    for r in records:
        assert r["curve_tokens"][-1] == r["tokens"] and len(r["curve_loss"]) == len(r["curve_steps"])
        assert r["bits_per_byte"] == pytest.approx(r["loss"] / math.log(2) / ratio, rel=1e-9)  # the same scores, per byte
        assert r["preset"] == "tiny" and r["flops"] == 6 * r["params"] * r["tokens"]
    # two shards on two "machines", merged by concatenation, give the same runs and the same numbers
    parts = [tmp_path / f"part{i}.jsonl" for i in range(2)]
    for i, part in enumerate(parts):
        scaling.run_sweep("tiny", part, shard=(i, 2), progress=False)
    merged = tmp_path / "merged.jsonl"
    merged.write_text(parts[0].read_text() + parts[1].read_text())
    by_id = {r["id"]: r for r in scaling.read_records(merged)}
    assert sorted(by_id) == sorted(planned)
    for r in records:
        assert by_id[r["id"]]["loss"] == pytest.approx(r["loss"], rel=1e-6)
    with pytest.raises(ValueError, match="i/n"):
        scaling.parse_shard("2")
    with pytest.raises(ValueError, match="0..n-1"):
        scaling.parse_shard("2/2")


def bytes_per_token(n_stories):
    from course_lib.tokenizer import load_story_tokenizer

    tokenizer = load_story_tokenizer()
    texts = [s.text for s in stories.iter_stories("test", n_stories)]
    return sum(len(t.encode()) for t in texts) / sum(len(tokenizer.encode(t)) + 1 for t in texts)


# ----------------------------------------------------------------------------------------------------
# Fits


def test_approach_3_recovers_besiroglus_law():
    """Synthetic runs from Besiroglu et al.'s law (6 budgets x 7 sizes, 0.5% noise): each parameter comes back."""
    n, d, loss = check.synthetic_law_data(BESIROGLU, budgets=np.geomspace(1e18, 1e21, 6), factors=np.geomspace(1 / 8, 8, 7),
                                          noise=0.005, seed=1)
    fit = scaling.fit_scaling_law(n, d, loss)
    tolerances = {"E": 0.02, "A": 0.25, "B": 0.25, "alpha": 0.05, "beta": 0.05}  # relative
    for name, tolerance in tolerances.items():
        assert fit.params[name] == pytest.approx(BESIROGLU[name], rel=tolerance), name
    # and without noise, exactly
    exact = scaling.fit_scaling_law(*check.synthetic_law_data(BESIROGLU))
    for name in tolerances:
        assert exact.params[name] == pytest.approx(BESIROGLU[name], rel=1e-3), name


def test_approach_3_bootstrap_intervals_cover_the_truth():
    n, d, loss = check.synthetic_law_data(BESIROGLU, noise=0.005, seed=2)
    fit = scaling.fit_scaling_law(n, d, loss, starts=4, bootstrap=12, seed=0)
    assert fit.bootstrap.shape == (12, 5)
    for name in scaling.PARAMETERS:
        low, high = fit.intervals[name]
        assert low < fit.params[name] < high, name
        width = high - low  # 12 resamples give rough intervals: the truth lies within one width of them
        assert low - width < BESIROGLU[name] < high + width, name


def test_huber_objective_gradient_is_right():
    log_n, log_d, log_loss = (np.log(v) for v in check.synthetic_law_data(BESIROGLU, noise=0.01, seed=3))
    x = np.array([6.0, 7.5, 0.6, 0.3, 0.4])
    value, grad = scaling.huber_objective(x, log_n, log_d, log_loss, 0.1, gradient=True)
    def objective(x):
        return scaling.huber_objective(x, log_n, log_d, log_loss, 0.1)

    numeric = [(objective(x + h) - objective(x - h)) / 2e-6 for h in np.eye(5) * 1e-6]
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-9)
    batch = scaling.huber_objective(np.stack([x, x + 0.1]), log_n, log_d, log_loss, 0.1)
    assert batch.shape == (2,) and batch[0] == pytest.approx(value)
    huge = scaling.huber_objective(np.array([800.0, 1.0, 0.0, 0.1, 0.1]), log_n, log_d, log_loss)
    assert np.isfinite(huge)  # log-sum-exp: A = e^800 does not overflow


def test_approach_2_recovers_known_exponents():
    # IsoFLOP curves that are exact parabolas in log N around N_opt = 0.3 C^0.6
    budgets, n, loss = [], [], []
    for c in np.geomspace(1e10, 1e13, 5):
        n_opt = 0.3 * c**0.6
        for f in np.geomspace(0.2, 5, 6):
            budgets.append(c)
            n.append(n_opt * f)
            loss.append(2.0 + 0.05 * math.log(f) ** 2 + 10 * c**-0.1)
    fit = scaling.fit_isoflops(budgets, n, loss)
    assert fit.a == pytest.approx(0.6, abs=1e-9) and fit.b == pytest.approx(0.4, abs=1e-9)
    assert fit.n_coefficient == pytest.approx(0.3, rel=1e-6) and fit.bracketed.all()
    assert fit.n_optimal(1e14) * fit.d_optimal(1e14) * 6 == pytest.approx(1e14, rel=1e-9)
    # and on a sweep drawn from a parametric law: the exponents of that law, a = beta / (alpha + beta)
    n, d, loss = check.synthetic_law_data(BESIROGLU, budgets=np.geomspace(1e18, 1e21, 5), factors=np.geomspace(1 / 4, 4, 7))
    law = scaling.fit_isoflops(6 * n * d, n, loss)
    assert law.a == pytest.approx(0.37 / 0.72, abs=0.01) and law.b == pytest.approx(0.35 / 0.72, abs=0.01)


def test_approach_1_envelope_finds_the_optimal_sizes():
    law = {"E": 1.0, "A": 50.0, "B": 200.0, "alpha": 0.4, "beta": 0.4}  # N_opt ~ C^0.5
    records = []
    for n in np.geomspace(1e4, 1e7, 25):
        tokens = np.geomspace(1e5, 1e9, 40)
        records.append({"params": float(n), "curve_tokens": tokens.tolist(),
                        "curve_loss": scaling.parametric_loss(n, tokens, **law).tolist()})
    fit = scaling.fit_envelope(records)
    inside = (fit.flops > 1e13) & (fit.flops < 1e15)  # away from the ends of the grid of sizes
    assert np.all(np.abs(np.log(fit.n_opt[inside] / scaling.compute_optimal(fit.flops[inside], **law)[0])) < 0.2)
    assert fit.a == pytest.approx(0.5, abs=0.1)


def test_fits_refuse_bad_data():
    n, d, loss = check.synthetic_law_data(BESIROGLU)
    with pytest.raises(ValueError, match="at least 10 points"):
        scaling.fit_scaling_law(n[:6], d[:6], loss[:6])
    with pytest.raises(ValueError, match="positive"):
        scaling.fit_scaling_law(n, d, np.where(np.arange(len(loss)) == 3, 0.0, loss))
    with pytest.raises(ValueError, match="NaN"):
        scaling.fit_scaling_law(n, d, np.where(np.arange(len(loss)) == 3, np.nan, loss))
    with pytest.raises(ValueError, match="differ in length"):
        scaling.fit_scaling_law(n, d[:-1], loss)
    with pytest.raises(ValueError, match="at least 2 points"):
        scaling.fit_power_law([1.0], [2.0])
    with pytest.raises(ValueError, match="positive"):
        scaling.fit_power_law([1.0, 2.0, 3.0], [1.0, -2.0, 3.0])
    with pytest.raises(ValueError, match="no minimum"):
        scaling.fit_parabola([1.0, 2.0, 3.0], [1.0, 2.0, 1.0])
    with pytest.raises(ValueError, match="at least 3 points"):
        scaling.fit_parabola([1.0, 2.0], [1.0, 2.0])
    budgets = [1e10] * 3 + [1e11] * 3
    with pytest.raises(ValueError, match="outside the sizes"):
        scaling.fit_isoflops(budgets, [1, 2, 4, 1, 2, 4], [3.0, 2.0, 1.5, 2.0, 1.6, 1.4])
    with pytest.raises(ValueError, match="at least 3 sizes"):
        scaling.fit_isoflops([1e10] * 3 + [1e11] * 2, [1, 2, 4, 1, 2], [3.0, 2.0, 2.5, 2.0, 1.6])
    with pytest.raises(ValueError, match="positive"):
        scaling.compute_optimal(1e20, 1.0, 1.0, 1.0, 0.0, 0.3)


def test_compute_optimal_spends_the_budget_and_minimises_the_loss():
    budget = 5.76e23  # Chinchilla's
    n_opt, d_opt = scaling.compute_optimal(budget, **BESIROGLU)
    assert 6 * n_opt * d_opt == pytest.approx(budget)
    assert 15 < d_opt / n_opt < 30  # about 20 tokens per parameter
    along = [scaling.parametric_loss(n_opt * f, budget / (6 * n_opt * f), **BESIROGLU) for f in (0.8, 1.0, 1.25)]
    assert along[1] < along[0] and along[1] < along[2]


def test_floor_in_nats_per_token():
    floor = scaling.floor_nats_per_token(40)
    bpb, low, high = stories.entropy_floor("test", 40)
    assert floor["bits_per_byte"] == bpb and floor["low"] < floor["nats_per_token"] < floor["high"]
    assert floor["nats_per_token"] == pytest.approx(bpb * math.log(2) * floor["bytes_per_token"])
    assert floor["bytes_per_token"] == pytest.approx(bytes_per_token(40))
    assert scaling.bits_per_byte_to_nats_per_token(1.0, 1 / math.log(2)) == pytest.approx(1.0)


# ----------------------------------------------------------------------------------------------------
# The shipped sweep


@pytest.fixture(scope="module")
def shipped():
    if not SHIPPED.exists():
        pytest.skip("assets/scaling_sweep.jsonl is not built yet: python -m course_lib build-assets scaling_sweep")
    return scaling.read_records(SHIPPED)


def test_shipped_sweep_is_the_planned_design(shipped):
    planned = {r.id: r for r in scaling.plan_sweep(scaling.PRESETS["story"], 959)}
    assert sorted(r["id"] for r in shipped) == sorted(planned)
    for r in shipped:  # every run is what today's code plans (family, steps, schedule, seed...)
        assert scaling.Run.from_record(r) == planned[r["id"]] and r["n_layer"] == planned[r["id"]].config.n_layer, r["id"]
    fitted = [r for r in shipped if not r["held_out"]]
    budgets = sorted({r["budget"] for r in fitted})
    assert len(budgets) >= 5 and budgets[-1] / budgets[0] >= 100  # at least two orders of magnitude
    assert all(sum(r["budget"] == c for r in fitted) >= 5 for c in budgets)  # at least 5 sizes per budget
    held_out = [r for r in shipped if r["held_out"]]
    assert held_out and min(r["budget"] for r in held_out) > budgets[-1]
    # every IsoFLOP minimum is bracketed: the optimum never sits at the edge of a budget's sizes
    fit = scaling.fit_isoflops([r["budget"] for r in fitted], [r["params"] for r in fitted], [r["loss"] for r in fitted])
    assert fit.bracketed.all()
    assert ASSETS["scaling_sweep"].file == scaling.SWEEP_ASSET


def test_shipped_sweep_is_reproducible(shipped):
    """Rerun the two cheapest runs (fewest steps): their losses come back to 1% (exactly on the machine that built
    the file; other CPUs and libraries round differently, and training amplifies it)."""
    cheapest = sorted(shipped, key=lambda r: (r["steps"], r["id"]))[:2]
    from course_lib.tokenizer import load_story_tokenizer

    tokenizer = load_story_tokenizer()
    runs = [scaling.Run.from_record(r) for r in cheapest]
    stream = scaling.training_stream(max(r.pool_tokens for r in runs), tokenizer)
    evals = scaling.EvalSet.load(tokenizer, max(r.eval_stories for r in runs))
    for record, run in zip(cheapest, runs):
        again = scaling.train_run(run, stream, evals)
        assert again["loss"] == pytest.approx(record["loss"], rel=0.01), record["id"]
        assert again["curve_loss"] == pytest.approx(record["curve_loss"], rel=0.02)


# ----------------------------------------------------------------------------------------------------
# Checkers: the reference passes, typical mistakes fail with their hint


def student_flops(config, tokens):
    L, C, V, T = config.n_layer, config.n_embd, config.vocab_size, config.block_size
    return tokens * (6 * (12 * L * C * C + V * C) + 12 * L * T * C)


def student_parabola(log_n, loss):
    c2, c1, c0 = np.polyfit(log_n, loss, 2)
    return -c1 / (2 * c2), c0 - c1**2 / (4 * c2)


def student_power_law(x, y):
    p, log_k = np.polyfit(np.log(x), np.log(y), 1)
    return math.exp(log_k), p


def student_objective(params, log_n, log_d, log_loss, delta):
    a, b, e, alpha, beta = params
    pred = torch.logsumexp(torch.stack([a - alpha * log_n, b - beta * log_d, e.expand_as(log_n)]), dim=0)
    r = pred - log_loss
    return torch.where(r.abs() <= delta, 0.5 * r**2, delta * (r.abs() - 0.5 * delta)).sum()


def student_fit(log_n, log_d, log_loss, starts, delta=1e-3):
    def minimise(start):
        x = start.clone().requires_grad_(True)
        optimizer = torch.optim.LBFGS([x], line_search_fn="strong_wolfe", max_iter=500, tolerance_grad=1e-12, tolerance_change=1e-15)

        def closure():
            optimizer.zero_grad()
            value = student_objective(x, log_n, log_d, log_loss, delta)
            value.backward()
            return value

        optimizer.step(closure)
        return x.detach()

    fits = [minimise(start) for start in starts]
    return min(fits, key=lambda x: student_objective(x, log_n, log_d, log_loss, delta).item())


def student_optimal(budget, E, A, B, alpha, beta):
    g = (alpha * A / (beta * B)) ** (1 / (alpha + beta))
    n = g * (budget / 6) ** (beta / (alpha + beta))
    return n, budget / (6 * n)


def test_checkers_pass_correct_answers(capsys):
    check.training_flops(student_flops)
    check.fit_parabola(student_parabola)
    check.fit_power_law(student_power_law)
    check.huber_objective(student_objective)
    check.fit_law(student_fit)
    check.compute_optimal(student_optimal)
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "training_flops: 4/4 cases passed", "training_flops vs FlopCounterMode: 2/2 cases passed",
        "fit_parabola: 4/4 cases passed", "fit_power_law: 4/4 cases passed",
        "huber_objective: 5/5 cases passed", "huber_objective gradient: 1/1 cases passed",
        "fit_law: 3/3 cases passed", "compute_optimal: 4/4 cases passed"]


def huber_least_squares(params, log_n, log_d, log_loss, delta):
    a, b, e, alpha, beta = params
    pred = torch.logsumexp(torch.stack([a - alpha * log_n, b - beta * log_d, e.expand_as(log_n)]), dim=0)
    return (0.5 * (pred - log_loss) ** 2).sum()


def huber_on_loss(params, log_n, log_d, log_loss, delta):
    a, b, e, alpha, beta = params
    r = torch.exp(a - alpha * log_n) + torch.exp(b - beta * log_d) + torch.exp(e) - torch.exp(log_loss)
    return torch.where(r.abs() <= delta, 0.5 * r**2, delta * (r.abs() - 0.5 * delta)).sum()


def huber_detached(params, log_n, log_d, log_loss, delta):
    return torch.tensor(float(student_objective(params.detach(), log_n, log_d, log_loss, delta)), dtype=torch.float64)


@pytest.mark.parametrize("checker, wrong, hint", [
    (check.training_flops, lambda c, t: student_flops(c, t) // 3, "forward pass only"),
    (check.training_flops, lambda c, t: scaling.kaplan_flops(c, t), "Kaplan"),
    (check.training_flops, lambda c, t: t * 6 * (12 * c.n_layer * c.n_embd**2 + c.vocab_size * c.n_embd), "attention is missing"),
    (check.fit_parabola, lambda x, y: (float(x[np.argmin(y)]), float(np.min(y))), "best measured point"),
    (check.fit_parabola, lambda x, y: (math.exp(student_parabola(x, y)[0]), student_parabola(x, y)[1]), "log N_opt"),
    (check.fit_parabola, lambda x, y: (-student_parabola(x, y)[0], student_parabola(x, y)[1]), "sign"),
    (check.fit_power_law, lambda x, y: student_power_law(x, y)[::-1], "coefficient first"),
    (check.fit_power_law, lambda x, y: (math.log(student_power_law(x, y)[0]), student_power_law(x, y)[1]), "exp(intercept)"),
    (check.huber_objective, huber_least_squares, "least squares"),
    (check.huber_objective, lambda *a: student_objective(*a) / a[1].numel(), "not the mean"),
    (check.huber_objective, huber_on_loss, "log of the loss"),
    (check.huber_objective, huber_detached, "requires grad"),
    (check.fit_law, lambda log_n, log_d, log_loss, starts: starts[0], "LBFGS"),
    (check.compute_optimal, lambda c, *law: student_optimal(6 * c, *law), "C / 6"),
    (check.compute_optimal, lambda c, *law: student_optimal(c, *law)[::-1], "(N_opt, D_opt)"),
])
def test_checkers_name_typical_mistakes(checker, wrong, hint):
    with pytest.raises(CheckFailed, match="hint") as failure:
        checker(wrong)
    assert hint in str(failure.value)
    assert "expected" in str(failure.value) and "got" in str(failure.value)


def test_checkers_let_unsolved_exercises_through(check_a_stub):
    check_a_stub(check.fit_parabola, "fit_parabola")
