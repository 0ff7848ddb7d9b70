"""The chapter-2 checkers for building the GPT: the reference passes, typical mistakes fail with a message
that names them (expected, got, hint)."""

import pytest
import torch
import torch.nn.functional as F

from course_lib.checks import CheckFailed
from course_lib.checks import language_modeling as check


def passes(capsys, checker, *fns) -> str:
    checker(*fns)
    return capsys.readouterr().out


def fails(checker, *fns) -> str:
    with pytest.raises(CheckFailed) as error:
        checker(*fns)
    message = str(error.value)
    assert "expected" in message and "got" in message and "hint" in message
    return message


# ---- split and merge

def test_split_and_merge_accepts_the_reference(capsys):
    out = passes(capsys, check.split_and_merge_heads, check.reference_split_heads, check.reference_merge_heads)
    assert "split_heads: 4/4 cases passed" in out and "merge_heads: 3/3 cases passed" in out
    assert "split and merge round trip: 1/1 cases passed" in out


def test_split_without_transpose_is_named():
    def split_by_view(x, n_head):
        B, T, C = x.shape
        return x.reshape(B, n_head, T, C // n_head)

    assert "transpose(1, 2)" in fails(check.split_and_merge_heads, split_by_view, check.reference_merge_heads)


def test_merge_without_transpose_is_named():
    def merge_by_view(y):
        B, H, T, D = y.shape
        return y.reshape(B, T, H * D)

    message = fails(check.split_and_merge_heads, check.reference_split_heads, merge_by_view)
    assert "merge_heads" in message and "without the transpose" in message


def test_split_and_merge_stubs_print_one_line(capsys):
    def stub(*args):
        raise NotImplementedError

    assert passes(capsys, check.split_and_merge_heads, stub, stub).strip() == "split_and_merge_heads: not implemented yet"


# ---- the block

def test_block_forward_accepts_the_reference(capsys):
    assert "block_forward: 3/3 cases passed" in passes(capsys, check.block_forward, check.reference_block_forward)


@pytest.mark.parametrize("mistake, words", [
    (check._post_norm, "post-norm"),
    (check._no_residual, "without the residual"),
    (check._parallel, "parallel block"),
    (check._one_norm, "ln_1 used before the MLP"),
])
def test_block_mistakes_are_named(mistake, words):
    assert words in fails(check.block_forward, mistake)


# ---- the loss

def test_loss_accepts_the_reference(capsys):
    assert "language_model_loss: 4/4 cases passed" in passes(capsys, check.language_model_loss, check.reference_language_model_loss)


@pytest.mark.parametrize("mistake, words", [
    (lambda logits, y: F.cross_entropy(logits.reshape(-1, logits.size(-1)), y.reshape(-1), reduction="sum"), "sum"),
    (lambda logits, y: F.cross_entropy(logits[:, :-1].reshape(-1, logits.size(-1)), y[:, 1:].reshape(-1)), "shifted"),
    (lambda logits, y: F.cross_entropy(logits.softmax(-1).reshape(-1, logits.size(-1)), y.reshape(-1)), "softmax"),
])
def test_loss_mistakes_are_named(mistake, words):
    assert words in fails(check.language_model_loss, mistake)


def test_loss_without_flattening_raises_a_clear_failure():
    assert "language_model_loss" in fails(check.language_model_loss, lambda logits, y: F.cross_entropy(logits, y))


# ---- the training step

def test_train_step_accepts_the_reference(capsys):
    out = passes(capsys, check.train_step, check.reference_train_step)
    assert "train_step: 2/2 cases passed" in out and "train_step clips: 1/1" in out and "train_step twice: 1/1" in out


def step_without(clip: bool = True, zero_grad: bool = True):
    def step(model, optimizer, x, y, grad_clip=1.0):
        loss = check.reference_language_model_loss(model(x), y)
        if zero_grad:
            optimizer.zero_grad()
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        optimizer.step()
        return loss.item()

    return step


def test_train_step_without_clipping_fails_on_the_clipping_case():
    assert "clip" in fails(check.train_step, step_without(clip=False))


def test_train_step_without_zero_grad_fails_on_two_steps():
    assert "zero_grad" in fails(check.train_step, step_without(zero_grad=False))


def test_checkers_leave_the_global_random_state_alone(capsys):
    torch.manual_seed(123)
    state = torch.random.get_rng_state()
    check.train_step(check.reference_train_step)
    check.block_forward(check.reference_block_forward)
    assert torch.equal(torch.random.get_rng_state(), state)


# ---- the whole model

def test_your_gpt_must_reproduce_the_bits_per_byte(capsys):
    check.same_bits_per_byte(0.36312, 0.36312 * (1 + 1e-7))
    assert "your GPT reproduces the shipped model's bits per byte: 1/1 cases passed" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match="expected"):
        check.same_bits_per_byte(0.3650, 0.36312)


@pytest.mark.parametrize("name", ["language_model_loss", "train_step", "block_forward"])
def test_stubs_print_one_line(check_a_stub, name):
    check_a_stub(getattr(check, name), name)
