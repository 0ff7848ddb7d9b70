"""Tests of course_lib.training: data, schedule, the loop, exact resume, bits per byte, and torchrun."""

import json
import math
import os
import subprocess
import sys

import pytest
import torch

from course_lib.checks import CheckFailed
from course_lib.checks import language_modeling as check
from course_lib.lm import document_log_likelihoods, model_bits_per_byte
from course_lib.model import GPT, GPTConfig, load_model
from course_lib.training import TrainConfig, encode_stories, get_batch, learning_rate, main, train
from course_lib.utils import REPO_DIR, seed_everything


def tiny_model(vocab_size: int = 30, block_size: int = 16) -> GPT:
    seed_everything(0)
    return GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=2, n_head=2, n_embd=16))


def toy_data(n: int = 2000) -> torch.Tensor:
    """A learnable stream: counting up modulo 30 with a random restart now and then."""
    generator = torch.Generator().manual_seed(0)
    ids, current = [], 0
    for _ in range(n):
        current = int(torch.randint(30, (1,), generator=generator)) if torch.rand(1, generator=generator) < 0.1 else (current + 1) % 30
        ids.append(current)
    return torch.tensor(ids)


def quiet(**changes) -> TrainConfig:
    settings = dict(max_steps=10, batch_size=4, warmup_steps=2, eval_interval=5, eval_batches=1, progress=False)
    return TrainConfig(**{**settings, **changes})


def test_learning_rate_schedule():
    settings = dict(max_lr=1.0, warmup_steps=10, max_steps=110, min_lr=0.1)
    assert learning_rate(0, **settings) == pytest.approx(0.1)
    assert learning_rate(9, **settings) == pytest.approx(1.0)
    assert learning_rate(10, **settings) == pytest.approx(1.0)
    assert learning_rate(60, **settings) == pytest.approx(0.55)
    assert learning_rate(110, **settings) == pytest.approx(0.1)
    assert learning_rate(500, **settings) == pytest.approx(0.1)
    after_warmup = [learning_rate(s, **settings) for s in range(10, 111)]
    assert all(a >= b for a, b in zip(after_warmup, after_warmup[1:]))


def test_batches_are_windows_and_their_next_tokens():
    data = torch.arange(100)
    x, y = get_batch(data, 5, 8, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (5, 8)
    assert torch.equal(y, x + 1)
    with pytest.raises(ValueError, match="block_size"):
        get_batch(torch.arange(5), 2, 8, torch.Generator())


def test_encode_stories_puts_an_end_token_before_and_after_each_story():
    from course_lib.tokenizer import load_story_tokenizer

    tokenizer = load_story_tokenizer()
    end = tokenizer.encode("<|endoftext|>")[0]
    stream = encode_stories(["Once upon a time.", "The end."], tokenizer)
    assert stream[0] == end and stream[-1] == end and int((stream == end).sum()) == 3
    assert tokenizer.decode(stream.tolist()) == "<|endoftext|>Once upon a time.<|endoftext|>The end.<|endoftext|>"


def test_training_lowers_the_loss():
    model = tiny_model()
    history = train(model, toy_data(), toy_data(500), quiet(max_steps=60, learning_rate=1e-2, eval_interval=30))
    assert history.eval_steps == [30, 60]
    assert history.eval_val_loss[-1] < history.eval_val_loss[0] < math.log(30)
    assert history.eval_val_loss[-1] < 1.5
    assert len(history.train_loss) == 60 and history.tokens_seen == 60 * 4 * 16
    assert not model.training


def test_resuming_a_checkpoint_is_bit_exact(tmp_path):
    data, val = toy_data(), toy_data(500)
    straight = tiny_model()
    straight_history = train(straight, data, val, quiet())

    interrupted = tiny_model()
    train(interrupted, data, val, quiet(), checkpoint_path=tmp_path / "ck.pt", stop_at=5)
    resumed = tiny_model()  # a fresh process would start like this
    with torch.no_grad():
        for p in resumed.parameters():
            p.add_(1.0)  # whatever it holds must be replaced by the checkpoint
    history = train(resumed, data, val, quiet(), checkpoint_path=tmp_path / "ck.pt", resume=True)

    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
    assert history.train_loss == straight_history.train_loss
    assert history.eval_val_loss == straight_history.eval_val_loss


def test_resume_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        train(tiny_model(), toy_data(), None, quiet(), checkpoint_path=tmp_path / "missing.pt", resume=True)
    train(tiny_model(), toy_data(), None, quiet(max_steps=2), checkpoint_path=tmp_path / "ck.pt")
    with pytest.raises(ValueError, match="checkpoint"):
        train(tiny_model(block_size=8), toy_data(), None, quiet(), checkpoint_path=tmp_path / "ck.pt", resume=True)


def test_bad_train_configs():
    with pytest.raises(ValueError, match="max_steps"):
        TrainConfig(max_steps=0)


def story_log_likelihoods(model, token_lists, end_id, **kwargs):
    return [t.sum().item() for t in document_log_likelihoods(model, token_lists, end_id, **kwargs)]


def test_story_log_likelihoods_include_the_end_token_and_slide_past_the_context():
    model = tiny_model(block_size=16).eval()
    story = list(range(1, 12))
    logits = model(torch.tensor([[29] + story]))
    targets = torch.tensor(story + [29])
    direct = torch.log_softmax(logits[0], -1).gather(-1, targets.unsqueeze(-1)).sum().item()
    assert story_log_likelihoods(model, [story], 29) == [pytest.approx(direct, rel=1e-5)]
    long_story = list(range(1, 29)) * 2  # 56 tokens, 3.5 contexts
    [value] = story_log_likelihoods(model, [long_story], 29)
    assert math.isfinite(value) and value < 0
    # batching and sorting by length must not mix stories up
    many = story_log_likelihoods(model, [story, long_story, story[:3]], 29, batch_size=2)
    assert many[0] == pytest.approx(direct, rel=1e-5) and many[1] == pytest.approx(value, rel=1e-5)


def test_bits_per_byte_of_a_uniform_model():
    class Uniform(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("dummy", torch.zeros(1))

        def forward(self, idx):
            return torch.zeros(*idx.shape, 256 + 1)

    class Bytes:
        def encode(self, text):
            return [256] if text == "<|endoftext|>" else list(text.encode())

        def __len__(self):
            return 257

    texts = ["abc", "hello"]
    # (3 + 1) + (5 + 1) tokens, each ln(257) nats, over 8 bytes
    assert model_bits_per_byte(Uniform(), Bytes(), texts) == pytest.approx(10 * math.log2(257) / 8)


# The checker of the learning-rate exercise.

def test_learning_rate_checker(capsys):
    check.learning_rate(learning_rate)
    assert "learning_rate: 11/11 cases passed" in capsys.readouterr().out

    def no_warmup(step, max_lr, warmup_steps, max_steps, min_lr):
        return learning_rate(step, max_lr, 0, max_steps, min_lr)

    def linear_decay(step, max_lr, warmup_steps, max_steps, min_lr):
        if step < warmup_steps:
            return max_lr * (step + 1) / warmup_steps
        return max(min_lr, max_lr - (max_lr - min_lr) * (step - warmup_steps) / (max_steps - warmup_steps))

    for wrong in (no_warmup, linear_decay):
        with pytest.raises(CheckFailed, match="hint"):
            check.learning_rate(wrong)


# Several processes: torchrun with 2 CPU processes against one process with the same global batch.

def test_two_processes_stay_in_sync_and_match_one_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO_DIR)}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               "-m", "course_lib.training", "--preset", "tiny", "--steps", "6", "--quiet",
               "--out", str(tmp_path / "ddp.pt"), "--summary", str(tmp_path / "ddp.json")]
    done = subprocess.run(command, env=env, cwd=REPO_DIR, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:  # one retry: on a busy shared machine the rendezvous can fail for reasons of its own
        first = done.stderr[-2000:]
        done = subprocess.run(command, env=env, cwd=REPO_DIR, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"first try:\n{first}\n\nsecond try:\n{done.stderr[-2000:]}"
    summary = json.loads((tmp_path / "ddp.json").read_text())
    assert summary["world_size"] == 2
    assert summary["replica_difference"] == 0.0  # every process holds exactly the same weights

    single = main(["--preset", "tiny", "--steps", "6", "--quiet", "--out", str(tmp_path / "one.pt")])
    assert single["world_size"] == 1 and single["tokens_seen"] == summary["tokens_seen"]
    ddp, one = load_model(tmp_path / "ddp.pt"), load_model(tmp_path / "one.pt")
    for (name, a), b in zip(ddp.state_dict().items(), one.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5, msg=lambda m, name=name: f"{name}: {m}")
    assert summary["final_val_loss"] == pytest.approx(single["final_val_loss"], rel=1e-4)
