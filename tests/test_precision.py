"""Chapter 8: number formats, accumulation, the loss scaler against torch's, autocast through chapter 2's loop,
online softmax, tiled attention, the memory tracker, and the chapter's checkers."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch

from course_lib import fusion, lm, precision, training
from course_lib.checks import CheckFailed
from course_lib.checks import precision as check
from course_lib.model import GPT, GPTConfig, causal_self_attention, language_model_loss
from course_lib.utils import seed_everything

# ----------------------------------------------------------------------------------------------------
# Formats


def test_limits_from_the_bit_counts_equal_torch_finfo():
    rows = precision.format_table()
    assert [r["format"] for r in rows] == list(precision.FORMATS)
    assert all(r["agree"] for r in rows)
    e4m3 = precision.format_limits(precision.FORMATS["fp8 e4m3"])
    assert e4m3["max"] == 448 and e4m3["eps"] == 0.125 and e4m3["smallest normal"] == 2.0**-6
    assert precision.format_limits(precision.FORMATS["fp8 e5m2"])["max"] == 57344


def test_decoding_every_fp16_and_fp8_e5m2_pattern_gives_torchs_value():
    for dtype, int_dtype, bits in ((torch.float16, torch.int16, 16), (torch.float8_e5m2, torch.uint8, 8)):
        fmt = precision.float_format(dtype)
        patterns = torch.arange(2**bits, dtype=torch.int32)
        as_float = (patterns - (patterns >= 2 ** (bits - 1)) * 2**bits if int_dtype is torch.int16 else patterns)
        values = as_float.to(int_dtype).view(dtype).double()
        decoded = torch.tensor([precision.decode_bits(int(b), fmt.exponent_bits, fmt.mantissa_bits) for b in patterns],
                               dtype=torch.float64)
        assert torch.equal(decoded.isnan(), values.isnan())
        assert torch.equal(decoded[~values.isnan()], values[~values.isnan()])


@pytest.mark.parametrize("x", [0.1, -2.5, 65504.0, 1e-6, math.pi, 3.0e38, 0.0])
def test_bits_round_trip_in_ieee_formats(x):
    for fmt in precision.FORMATS.values():
        if fmt.ieee:
            value = precision.decode_bits(precision.to_bits(x, fmt.dtype), fmt.exponent_bits, fmt.mantissa_bits)
            assert value == precision.stored_value(x, fmt.dtype)


def test_anatomy_of_one_in_bf16_and_unsupported_dtype():
    a = precision.anatomy(1.0, torch.bfloat16)
    assert a["bits"] == "0 01111111 0000000" and a["exponent"] == 0 and a["relative_error"] == 0.0
    assert "fp8 e5m2" in precision.anatomy_text(0.5)
    with pytest.raises(TypeError, match="unsupported dtype"):
        precision.float_format(torch.int32)


# ----------------------------------------------------------------------------------------------------
# Accumulation and fp8


def test_summation_table_reproduces_the_reference_facts():
    table = dict(precision.summation_table(0.01, 1000))
    assert table["fp32 accumulator"] == pytest.approx(10.000134, abs=1e-6)
    assert table["fp16 accumulator"] == 9.953125
    assert table["fp16 inputs, fp32 accumulator"] == pytest.approx(10.002136, abs=1e-6)
    assert table["bf16 accumulator"] == 4.0
    assert table["bf16 with Kahan compensation"] == pytest.approx(10.0, abs=0.01)


def test_matmul_error_grows_as_mantissa_shrinks_and_fp8_needs_a_scale():
    errors = [precision.matmul_error(f.dtype, n=64) for f in precision.FORMATS.values()]
    assert errors == sorted(errors) and errors[0] < 1e-6 and errors[-1] < 0.15
    a = torch.randn(32, 32) * 1e-3
    assert ((precision.fp8_matmul(a, a) - a @ a).norm() / (a @ a).norm()) < 0.1
    with pytest.raises(TypeError, match="fp8 dtype"):
        precision.fp8_quantize(a, torch.float16)


# ----------------------------------------------------------------------------------------------------
# Loss scaling


def test_own_scaler_decides_as_torch_grad_scaler():
    gradients = [1.0] * 7 + [math.inf] + [1.0] * 4 + [math.nan, math.inf] + [1.0] * 9
    for interval in (1, 3, 5):
        assert precision.own_scaler_scales(gradients, 1024.0, interval) == precision.grad_scaler_scales(gradients, 1024.0, interval)


def test_scaler_skips_overflowing_steps_and_rejects_a_non_finite_loss():
    param = torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.SGD([param], lr=0.1)
    scaler = precision.DynamicLossScaler(init_scale=8.0, growth_interval=2)
    scaler.scale((param * torch.tensor([1.0, 2.0])).sum()).backward()
    assert scaler.step(optimizer) and torch.allclose(param.detach(), torch.tensor([0.9, 0.8]))
    param.grad = torch.tensor([math.inf, 0.0])
    assert not scaler.step(optimizer) and scaler.scale_value == 4.0 and scaler.skipped == 1
    assert torch.allclose(param.detach(), torch.tensor([0.9, 0.8]))  # the skipped step changed nothing
    with pytest.raises(ValueError, match="not finite"):
        scaler.scale(torch.tensor(float("nan")))
    with pytest.raises(ValueError, match="growth_factor"):
        precision.DynamicLossScaler(growth_factor=0.5)


def test_underflow_shares_move_with_the_scale():
    magnitudes = torch.tensor([1e-9, 1e-6, 1e-3, 1.0])
    assert precision.underflow_shares(magnitudes)["zero"] == 0.25
    scaled = precision.underflow_shares(magnitudes, 2.0**16)
    assert scaled["zero"] == 0.0 and scaled["overflow"] == 0.25


# ----------------------------------------------------------------------------------------------------
# Autocast through chapter 2's loop


def tiny_gpt() -> GPT:
    seed_everything(0)
    return GPT(GPTConfig(vocab_size=64, block_size=16, n_layer=1, n_head=2, n_embd=16))


def test_bf16_autocast_through_chapter_2_loop_ends_within_2_percent_of_fp32():
    data = torch.randint(0, 64, (4000,), generator=torch.Generator().manual_seed(0))
    config = training.TrainConfig(max_steps=20, batch_size=8, warmup_steps=2, eval_interval=20, eval_batches=2, progress=False)
    final = {}
    with lm.one_thread_on_cpu(torch.device("cpu")):
        for dtype in (None, torch.bfloat16):
            model = tiny_gpt()
            history = training.train(precision.AutocastModel(model, dtype), data, data, config)
            final[dtype] = history.eval_val_loss[-1]
            assert all(p.dtype == torch.float32 for p in model.parameters())  # fp32 master weights
    assert abs(final[torch.bfloat16] / final[None] - 1) < 0.02


def test_autocast_observed_and_bad_settings():
    model = tiny_gpt()
    idx = torch.randint(0, 64, (2, 16))
    ops = precision.observe_autocast(model, idx, idx, language_model_loss)
    dtypes = {op: {d for (o, d) in ops if o == op} for op, _ in ops}
    assert dtypes["addmm"] == {"bfloat16"} and dtypes["native_layer_norm"] == {"float32"}
    assert dtypes["nll_loss_forward"] == {"float32"}
    with pytest.raises(TypeError, match="unsupported autocast dtype"):
        precision.AutocastModel(model, torch.float64)
    with pytest.raises(ValueError, match="unsupported device"):
        precision.check_amp("meta", torch.bfloat16)


def test_bytes_per_parameter_measured_after_an_adamw_step():
    model = tiny_gpt()
    optimizer = torch.optim.AdamW(model.parameters())
    idx = torch.randint(0, 64, (2, 16))
    language_model_loss(model(idx), idx).backward()
    optimizer.step()
    assert precision.measured_bytes_per_parameter(model, optimizer)["total"] == 16
    assert precision.training_bytes_per_parameter(weights=2, gradients=2, master=4)["total"] == 16
    peaks = [precision.training_step_peak_memory(model, idx, idx, language_model_loss, d) for d in (None, torch.bfloat16)]
    assert all(p > 0 for p in peaks)


# ----------------------------------------------------------------------------------------------------
# Fusion and attention


def test_online_softmax_handles_masked_blocks_and_bad_blocks():
    x = torch.randn(3, 32) * 50
    x[0, :8] = -math.inf  # a whole first block masked
    torch.testing.assert_close(fusion.online_softmax(x, 8), torch.softmax(x, -1))
    with pytest.raises(ValueError, match="does not tile"):
        fusion.online_softmax(x, 5)


@pytest.mark.parametrize("Tq, Tk, bq, bk", [(32, 32, 8, 8), (32, 32, 16, 4), (32, 32, 4, 16), (8, 24, 4, 8), (1, 16, 1, 4)])
def test_tiled_attention_equals_chapter_2_attention(Tq, Tk, bq, bk):
    q, k, v = check.qkv(2, 2, Tq, Tk, 8, seed=Tq + Tk + bq)
    torch.testing.assert_close(fusion.tiled_attention(q, k, v, bq, bk), causal_self_attention(q, k, v), rtol=1e-4, atol=1e-5)


def test_tiled_attention_rejects_shapes_that_do_not_tile():
    q, k, v = check.qkv(1, 1, 30, 30, 4, seed=0)
    with pytest.raises(ValueError, match="do not tile"):
        fusion.tiled_attention(q, k, v, 8, 8)
    with pytest.raises(ValueError, match="expects q"):
        fusion.tiled_attention(q[0], k[0], v[0], 5, 5)
    q2, k2, v2 = check.qkv(1, 1, 16, 8, 4, seed=0)
    with pytest.raises(ValueError, match="at least as many keys"):
        fusion.tiled_attention(q2, k2, v2, 8, 8)


def test_peak_memory_naive_quadratic_tiled_linear():
    peaks = {}
    for T in (256, 512, 1024):
        q, k, v = check.qkv(1, 2, T, T, 16, seed=T)
        peaks[T] = (fusion.peak_memory(partial(fusion.naive_attention, q, k, v)),
                    fusion.peak_memory(partial(fusion.tiled_attention, q, k, v, 64, 64)))
    assert peaks[1024][0] / peaks[256][0] > 12  # ~16x for 4x the length
    assert peaks[1024][1] / peaks[256][1] < 4.5  # linear, plus a constant for the tiles
    assert all(tiled < naive for naive, tiled in peaks.values())


def test_bytes_moved_by_an_eager_chain_and_its_fused_version():
    x, bias = torch.randn(64, 32), torch.randn(32)
    moved, ops = fusion.eager_traffic(fusion.bias_gelu, x, bias)
    assert ops >= 8 and moved > 6 * fusion.fused_traffic(fusion.bias_gelu, x, bias)
    torch.testing.assert_close(fusion.bias_gelu(x, bias), torch.nn.functional.gelu(x + bias, approximate="tanh"))
    torch.testing.assert_close(fusion.layer_norm(x, torch.ones(32), torch.zeros(32)), torch.nn.functional.layer_norm(x, (32,)))
    torch.testing.assert_close(fusion.softmax(x), torch.softmax(x, -1))


def test_roofline_arithmetic_and_gpu_path_without_a_gpu():
    assert fusion.attainable(0.1, 100.0, 10.0) == 1.0 and fusion.attainable(100.0, 100.0, 10.0) == 100.0
    assert fusion.ridge_point(100.0, 10.0) == 10.0 and fusion.payback_calls(5.0, 1.0, 2.0) == math.inf
    assert fusion.kernel_excerpt("import x\nwrapper\ncpp_fused_add_0 = ...\nloop", 2) == "cpp_fused_add_0 = ...\nloop"
    if not torch.cuda.is_available():
        assert fusion.gpu_skip_reason().startswith("skipped:")
        with pytest.raises(RuntimeError, match="skipped"):
            fusion.triton_bias_gelu(torch.zeros(4, 4), torch.zeros(4))


# ----------------------------------------------------------------------------------------------------
# The checkers


def test_checkers_pass_the_references(capsys):
    check.decode_float(check.reference_decode_float)
    check.mixed_precision_sum(check.reference_mixed_precision_sum)
    check.scaler_update(check.reference_scaler_update)
    check.online_softmax(fusion.online_softmax)
    check.tiled_attention(fusion.tiled_attention)
    out = capsys.readouterr().out
    assert "decode_float: 9/9 cases passed" in out and "tiled_attention memory: 1/1 cases passed" in out


@pytest.mark.parametrize("checker, wrong, hint", [
    (check.decode_float, lambda b, e, m: precision.decode_bits(b, e, m) if (b >> m) & ((1 << e) - 1) else 0.0, "subnormal"),
    (check.mixed_precision_sum, lambda v: precision.sequential_sum(v), "torch.float32"),
    (check.scaler_update, lambda s, g, f, gf=2.0, bf=0.5, gi=2000: (s * bf, 0) if f else (s, g + 1), "growth"),
    (check.online_softmax, lambda x, b: torch.exp(x) / torch.exp(x).sum(-1, keepdim=True), "NaN"),
    (check.tiled_attention, lambda q, k, v, a, b: fusion.naive_attention(q, k, v), "full score matrix"),
])
def test_checkers_catch_a_typical_mistake(checker, wrong, hint):
    with pytest.raises(CheckFailed, match=hint):
        checker(wrong)


def test_a_stub_prints_one_line(capsys):
    def stub(*args):
        raise NotImplementedError

    check.online_softmax(stub)
    assert capsys.readouterr().out.strip() == "online_softmax: not implemented yet"


def test_fp16_backward_loses_gradients_that_loss_scaling_keeps():
    model = tiny_gpt()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1e-3)  # tiny weights: tiny gradients, as deep in a real network
    idx = torch.randint(0, 64, (2, 16), generator=torch.Generator().manual_seed(0))
    with lm.one_thread_on_cpu(torch.device("cpu")):
        fp32 = precision.gradient_magnitudes(model, idx, idx, language_model_loss)
        fp16 = precision.gradient_magnitudes(model, idx, idx, language_model_loss, torch.float16)
        scaled = precision.gradient_magnitudes(model, idx, idx, language_model_loss, torch.float16, 2.0**16)
    lost = [((g == 0) & (fp32 > 0)).sum().item() for g in (fp16, scaled)]
    assert lost[0] > 0 and lost[1] < lost[0]


def test_fp16_training_through_chapter_2s_loop_with_either_scaler():
    # The same tiny run with our scaler and with torch.amp.GradScaler: the same skipped steps, scale and weights.
    data = torch.randint(0, 64, (4096,), generator=torch.Generator().manual_seed(0))
    config = training.TrainConfig(max_steps=8, batch_size=4, learning_rate=1e-3, warmup_steps=2, eval_interval=8,
                                  eval_batches=1, progress=False)
    finals = []
    for scaler in (precision.DynamicLossScaler(), torch.amp.GradScaler("cpu")):
        torch.manual_seed(0)
        model = GPT(GPTConfig(vocab_size=64, n_layer=1, n_head=2, n_embd=16, block_size=16))
        history = training.train(precision.AutocastModel(model, torch.float16), data, None, config, loss_scaler=scaler)
        assert all(math.isfinite(loss) for loss in history.train_loss)
        finals.append((float(scaler.scale_value if hasattr(scaler, "scale_value") else scaler.get_scale()),
                       torch.cat([p.detach().flatten() for p in model.parameters()])))
    assert finals[0][0] == finals[1][0]
    torch.testing.assert_close(finals[0][1], finals[1][1])
