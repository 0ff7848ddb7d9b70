"""Tests of course_lib.model: shapes, causality, the two attention paths, the KV cache, sizes, errors."""

import pytest
import torch

from course_lib.checks import CheckFailed
from course_lib.checks import language_modeling as check
from course_lib.model import (
    GPT,
    GPTConfig,
    causal_self_attention,
    count_parameters,
    fast_causal_self_attention,
    flops_per_token,
    language_model_loss,
    load_model,
    save_model,
)
from course_lib.utils import seed_everything

TINY = dict(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=16)


def tiny_model(**changes) -> GPT:
    seed_everything(0)
    return GPT(GPTConfig(**{**TINY, **changes}))


def test_logits_have_shape_batch_time_vocab():
    model = tiny_model()
    idx = torch.randint(0, 50, (3, 11))
    assert model(idx).shape == (3, 11, 50)
    assert model(idx[:, :1]).shape == (3, 1, 50)


@pytest.mark.parametrize("fast", [True, False])
def test_changing_a_future_token_never_changes_earlier_logits(fast):
    model = tiny_model(fast_attention=fast).eval()
    idx = torch.randint(0, 50, (2, 16), generator=torch.Generator().manual_seed(1))
    base = model(idx)
    for t in [0, 5, 15]:
        changed = idx.clone()
        changed[:, t] = (changed[:, t] + 7) % 50
        out = model(changed)
        assert torch.equal(out[:, :t], base[:, :t]), f"position {t} leaked into earlier logits"
        assert not torch.allclose(out[:, t], base[:, t])  # ...while the changed position itself does change


def test_readable_attention_equals_the_fused_kernel():
    q, k, v = check.random_qkv(2, 3, 9, 8, seed=0)
    torch.testing.assert_close(causal_self_attention(q, k, v), fast_causal_self_attention(q, k, v), rtol=1e-5, atol=1e-6)
    # queries that continue cached keys (Tq < Tk), one and several at a time
    for n_new in (1, 4):
        torch.testing.assert_close(causal_self_attention(q[:, :, -n_new:], k, v),
                                   fast_causal_self_attention(q[:, :, -n_new:], k, v), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(causal_self_attention(q[:, :, -n_new:], k, v),
                                   causal_self_attention(q, k, v)[:, :, -n_new:], rtol=1e-5, atol=1e-6)


def test_readable_and_fast_models_give_the_same_logits():
    fast, readable = tiny_model(fast_attention=True), tiny_model(fast_attention=False)
    readable.load_state_dict(fast.state_dict())
    idx = torch.randint(0, 50, (2, 16))
    torch.testing.assert_close(fast(idx), readable(idx), rtol=1e-5, atol=1e-5)


def test_kv_cache_gives_the_logits_of_the_full_forward():
    model = tiny_model().eval()
    idx = torch.randint(0, 50, (2, 12))
    full = model(idx)
    cache = model.new_cache()
    pieces = [model(idx[:, :5], cache)] + [model(idx[:, t : t + 1], cache) for t in range(5, 9)] + [model(idx[:, 9:], cache)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, rtol=1e-5, atol=1e-5)
    assert cache.length == 12


def test_output_layer_is_tied_to_the_token_embedding():
    model = tiny_model()
    assert model.lm_head.weight is model.wte.weight


def test_overfits_one_batch():
    model = tiny_model()
    idx = torch.randint(0, 50, (4, 16), generator=torch.Generator().manual_seed(3))
    x, y = idx[:, :-1], idx[:, 1:]
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    first = language_model_loss(model(x), y).item()
    for _ in range(150):
        loss = language_model_loss(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert first > 3.5  # about ln(50) at the start
    assert loss.item() < 0.05


def test_parameter_count_from_config_matches_the_model():
    for changes in [{}, dict(n_layer=3, n_embd=24, n_head=3, block_size=7, vocab_size=13)]:
        model = tiny_model(**changes)
        assert count_parameters(model) == count_parameters(model.config)
        assert count_parameters(model, non_embedding=True) == count_parameters(model.config, non_embedding=True)
        embeddings = model.wte.weight.numel() + model.wpe.weight.numel()
        assert count_parameters(model) - count_parameters(model, non_embedding=True) == embeddings


def test_flops_per_token():
    config = GPTConfig(vocab_size=100, block_size=10, n_layer=2, n_head=2, n_embd=8)
    matmul_weights = 2 * 12 * 8 * 8 + 100 * 8
    assert flops_per_token(config, training=False) == 2 * matmul_weights + 4 * 2 * 10 * 8
    assert flops_per_token(config) == 3 * flops_per_token(config, training=False)
    assert flops_per_token(config, context=20) > flops_per_token(config)


@pytest.mark.parametrize("changes, words", [
    (dict(n_head=3), ["n_head=3", "n_embd=16"]),
    (dict(n_layer=0), ["n_layer"]),
    (dict(vocab_size=2.5), ["vocab_size"]),
])
def test_bad_configs_give_clear_errors(changes, words):
    with pytest.raises(ValueError) as error:
        GPTConfig(**{**TINY, **changes})
    for word in words:
        assert word in str(error.value)


def test_input_longer_than_the_context_gives_a_clear_error():
    model = tiny_model()
    with pytest.raises(ValueError, match="block_size=16"):
        model(torch.zeros(1, 17, dtype=torch.long))
    cache = model.new_cache()
    model(torch.zeros(1, 10, dtype=torch.long), cache)
    with pytest.raises(ValueError, match="exceeds"):
        model(torch.zeros(1, 7, dtype=torch.long), cache)
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        model(torch.zeros(5, dtype=torch.long))


def test_save_and_load_model(tmp_path):
    model = tiny_model()
    save_model(model, tmp_path / "m.pt", note="hello")
    loaded = load_model(tmp_path / "m.pt")
    idx = torch.randint(0, 50, (1, 8))
    assert torch.equal(loaded(idx), model.eval()(idx))
    assert loaded.metadata == {"note": "hello"}
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    with pytest.raises(ValueError, match="not a course model file"):
        load_model(tmp_path / "bad.pt")


def test_shipped_story_model_loads_and_is_small():
    from course_lib.model import load_story_model
    from course_lib.utils import asset_path

    assert asset_path("story_gpt.pt").stat().st_size < 5_000_000
    model = load_story_model()
    assert model.config.vocab_size >= 959
    assert "command" in model.metadata
    logits = model(torch.zeros(1, 4, dtype=torch.long))
    assert torch.isfinite(logits).all()


# The chapter's checker for the attention exercise: passes the reference, fails wrong answers loudly.

def test_attention_checker_accepts_the_reference(capsys):
    check.causal_attention(causal_self_attention)
    out = capsys.readouterr().out
    assert "causal_attention: 4/4 cases passed" in out and "causal_attention mask: 1/1 cases passed" in out


def no_mask(q, k, v):
    return torch.softmax(q @ k.transpose(-2, -1) / q.size(-1) ** 0.5, dim=-1) @ v


def no_scale(q, k, v):
    scores = (q @ k.transpose(-2, -1)).masked_fill(torch.ones(q.size(-2), q.size(-2)).triu(1).bool(), float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


@pytest.mark.parametrize("wrong", [no_mask, no_scale])
def test_attention_checker_rejects_wrong_answers(wrong):
    with pytest.raises(CheckFailed) as error:
        check.causal_attention(wrong)
    message = str(error.value)
    assert "expected" in message and "got" in message and "hint" in message


def test_attention_mask_check_names_the_leak():
    with pytest.raises(CheckFailed, match="changing positions 3..5"):
        check.check_causal(no_mask)
