"""Chapter 6's chat format, masks, batches, packing, SFT through chapter 2's loop, and its checkers."""

from __future__ import annotations

import json

import pytest
import torch

from course_lib import instructions, sft, training
from course_lib.checks import CheckFailed
from course_lib.checks import sft as check
from course_lib.model import GPT, GPTConfig
from course_lib.tokenizer import load_story_tokenizer

TOK = sft.chat_tokenizer()
CONVERSATIONS = [
    [{"role": "user", "content": "Who is the hero?"}, {"role": "assistant", "content": "Mia"}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
     {"role": "user", "content": "Colour?"}, {"role": "assistant", "content": "red"}],
    instructions.held_out("writing", 1)[0].messages(),
    [{"role": "user", "content": "Ça va? 语言 \n new line"}, {"role": "assistant", "content": " spaces  "}],
]


def test_chat_tokens_keep_every_old_id():
    base = load_story_tokenizer()
    text = instructions.held_out("reading", 1)[0].prompt + "<|endoftext|>"
    assert TOK.encode(text) == base.encode(text)
    assert len(base) == 959 and len(TOK) == 963
    assert [TOK.encode(t)[0] for t in sft.CHAT_SPECIAL_TOKENS] == [958, 959, 960, 961, 962]


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_formatter_equals_jinja_template_and_hf_ids(messages):
    for add in (False, True):
        assert sft.render_chat_template(messages, add) == sft.format_chat(messages, add)
    text = sft.format_chat(messages)
    assert TOK.to_hf().encode(text).ids == TOK.encode(text)
    ids, mask = sft.encode_chat(TOK, messages)
    assert ids == TOK.encode(text) and len(mask) == len(ids)


def test_exported_tokenizer_carries_the_template(tmp_path):
    sft.export_hf_tokenizer(TOK, tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    from tokenizers import Tokenizer

    hf = Tokenizer.from_file(str(tmp_path / "tokenizer.json"))
    for messages in CONVERSATIONS:
        text = sft.render_chat_template(messages, True, template=config["chat_template"])
        assert text == sft.format_chat(messages, True)
        assert hf.encode(text).ids == TOK.encode(text)
    with pytest.raises(ValueError, match="unknown role"):
        sft.render_chat_template([{"role": "robot", "content": "x"}], template=config["chat_template"])


def test_mask_is_exactly_the_assistant_turns():
    messages = CONVERSATIONS[1]
    ids, mask = sft.encode_chat(TOK, messages)
    end, assistant = TOK.encode(sft.END_OF_TURN)[0], TOK.encode("<|assistant|>")[0]
    learned = [i for i, m in zip(ids, mask) if m]
    assert learned == TOK.encode("Hello!") + [end] + TOK.encode("red") + [end]
    assert all(m == 0 for i, m in zip(ids, mask) if i == assistant)
    _, all_ones = sft.encode_chat(TOK, messages, train_on_prompt=True)
    assert all(all_ones)


def test_collate_pads_and_masks_exactly():
    examples = [sft.encode_chat(TOK, m) for m in CONVERSATIONS[:2]]
    x, y = sft.collate(examples, pad_id=958)
    assert x.shape == y.shape == (2, max(len(i) for i, _ in examples) - 1)
    for b, (ids, mask) in enumerate(examples):
        n = len(ids) - 1
        assert x[b, :n].tolist() == ids[:-1] and (x[b, n:] == 958).all()
        want = [i if m else -100 for i, m in zip(ids[1:], mask[1:])] + [-100] * (x.size(1) - n)
        assert y[b].tolist() == want


def test_masked_cross_entropy_is_the_mean_over_response_tokens():
    logits, labels = check.random_batch(2, 5, 7, seed=0)
    keep = labels != -100
    manual = -torch.log_softmax(logits, -1)[keep].gather(-1, labels[keep].unsqueeze(-1)).mean()
    assert torch.allclose(sft.masked_cross_entropy(logits, labels), manual)
    with pytest.raises(ValueError, match="-100"):
        sft.masked_cross_entropy(logits, torch.full_like(labels, -100))


def test_per_example_cross_entropy_weighs_each_example_once():
    logits, labels = check.random_batch(3, 6, 7, seed=1)
    labels[2] = -100  # a row with nothing to learn is left out, not counted as zero
    labels[0, :5] = -100  # row 0: one labelled token; row 1: several
    by_row = [sft.masked_cross_entropy(logits[b: b + 1], labels[b: b + 1]) for b in (0, 1)]
    assert torch.allclose(sft.per_example_cross_entropy(logits, labels), (by_row[0] + by_row[1]) / 2)
    assert not torch.allclose(sft.masked_cross_entropy(logits, labels), (by_row[0] + by_row[1]) / 2)
    with pytest.raises(ValueError, match="-100"):
        sft.per_example_cross_entropy(logits, torch.full_like(labels, -100))
    with pytest.raises(ValueError, match="loss_per"):
        sft.finetune(tiny_gpt(), TOK, instructions.training_mixture(5), sft.SFTConfig(steps=1, loss_per="sentence"))
    with pytest.raises(ValueError, match="packed"):
        sft.finetune(tiny_gpt(), TOK, instructions.training_mixture(5), sft.SFTConfig(steps=1, loss_per="example", packed=True))


@pytest.mark.parametrize("messages, error, match", [
    ([{"role": "robot", "content": "hi"}, {"role": "assistant", "content": "x"}], ValueError, "unknown role"),
    ([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "  "}], ValueError, "empty"),
    ([{"role": "user", "content": "hi"}], ValueError, "last turn must be the assistant"),
    ([{"role": "user", "content": "a<|end|>b"}, {"role": "assistant", "content": "x"}], ValueError, "special token"),
    ([{"role": "user", "content": "hi"}, {"role": "system", "content": "x"}, {"role": "assistant", "content": "y"}], ValueError, "first"),
    ([{"role": "user", "text": "hi"}], TypeError, "keys"),
    ("hello", TypeError, "list"),
])
def test_bad_conversations_get_clear_errors(messages, error, match):
    with pytest.raises(error, match=match):
        sft.encode_chat(TOK, messages)


def test_too_long_and_missing_end_token():
    story = instructions.held_out("writing", 1)[0].response
    long = [{"role": "user", "content": story}, {"role": "assistant", "content": story}]
    with pytest.raises(ValueError, match="fit"):
        sft.encode_chat(TOK, long, max_tokens=257)
    end = TOK.encode(sft.END_OF_TURN)[0]
    ids, mask = sft.encode_chat(TOK, CONVERSATIONS[0])
    sft.check_example(ids, mask, end)
    with pytest.raises(ValueError, match="end-of-turn"):
        sft.check_example(ids[:-1], mask[:-1], end)  # the response lost its <|end|>
    with pytest.raises(ValueError, match="no response"):
        sft.check_example(ids, [0] * len(ids), end)
    with pytest.raises(ValueError, match="same length"):
        sft.check_example(ids, mask[:-1], end)


def test_every_training_conversation_fits_the_context():
    rows = sft.build_data(TOK, instructions.training_mixture(300) + list(instructions.held_out("writing", 50)), 256).rows
    assert max(len(ids) for ids, _ in rows) <= 257


def tiny_gpt(seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=1024, block_size=64, n_layer=2, n_head=2, n_embd=16)).eval()


def test_packing_needs_the_document_mask():
    model = tiny_gpt()
    examples = [sft.encode_chat(TOK, [{"role": "user", "content": q}, {"role": "assistant", "content": a}])
                for q, a in [("Who?", "Mia"), ("What colour is it?", "red"), ("Where?", "the park")]]
    rows = sft.pack(examples, 64)
    assert len(rows) == 1 and rows[0][0] == [i for ids, _ in examples for i in ids]
    packed = torch.tensor([rows[0][0]])
    alone = [model(torch.tensor([ids]))[0] for ids, _ in examples]
    with torch.no_grad():
        fixed = sft.DocumentMasked(model, 958)(packed)[0]
        naive = model(packed)[0]
    starts = [0, len(examples[0][0]), len(examples[0][0]) + len(examples[1][0])]
    for start, logits in zip(starts, alone):
        assert torch.allclose(fixed[start: start + len(logits)], logits, atol=1e-5)
    assert torch.allclose(naive[: len(alone[0])], alone[0], atol=1e-5)  # the first example sees nothing else anyway
    assert not torch.allclose(naive[starts[1]: starts[1] + len(alone[1])], alone[1], atol=1e-3)  # the second reads the first
    with pytest.raises(ValueError, match="does not fit"):
        sft.pack(examples, 5)


def test_sft_through_chapter_2_training_loop():
    model = tiny_gpt()
    data = sft.build_data(TOK, instructions.training_mixture(20), 256)
    data.rows = [(ids[:60], mask[:60]) for ids, mask in data.rows if any(mask[1:60])]  # the tiny context
    x1, y1 = sft.sft_batch(data, 4, 64, torch.Generator().manual_seed(0))
    x2, y2 = sft.sft_batch(data, 4, 64, torch.Generator().manual_seed(0))
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    config = training.TrainConfig(max_steps=6, batch_size=4, warmup_steps=1, eval_interval=3, eval_batches=1, progress=False)
    history = training.train(model, data, data, config, batches=sft.sft_batch)
    assert len(history.train_loss) == 6 and history.train_loss[-1] < history.train_loss[0]
    per_example = training.train(tiny_gpt(), data, data, config, batches=sft.sft_batch, loss_fn=sft.per_example_cross_entropy)
    assert per_example.train_loss[-1] < per_example.train_loss[0] and per_example.train_loss[0] != history.train_loss[0]
    assert len(history.eval_val_loss) == 2 and all(v == v for v in history.eval_val_loss)
    packed = sft.SFTData(sft.pack(data.rows, 64), data.pad_id)
    history = training.train(sft.DocumentMasked(model, 958), packed, None, config, batches=sft.sft_batch)
    assert len(history.train_loss) == 6


def test_new_token_rows_start_at_the_mean():
    model = tiny_gpt()
    sft.init_new_token_rows(model, TOK, 959)
    assert torch.allclose(model.wte.weight[959:963], model.wte.weight[:959].mean(0).expand(4, -1))
    assert not torch.allclose(model.wte.weight[963], model.wte.weight[:959].mean(0))


def test_respond_and_grade():
    model = tiny_gpt()
    items = instructions.held_out("reading", 3)
    answers = sft.respond(model, TOK, [e.prompt[-80:] for e in items], max_new_tokens=3)
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    counts = sft.grade(items, [e.response for e in items])
    assert counts == {"ok": [3, 3], "exact": [3, 3]}
    low, high = sft.wilson_interval(45, 50)
    assert 0.78 < low < 0.8 and 0.95 < high < 0.97 and sft.wilson_interval(0, 10)[0] == 0.0


# ----------------------------------------------------------------------------------------------------
# The checkers pass the reference and fail typical mistakes with a useful message


def test_checkers_pass_the_references():
    check.format_chat_ids(check.reference_format_chat_ids)
    check.masked_cross_entropy(check.reference_masked_cross_entropy)
    check.collate_batch(check.reference_collate_batch)
    check.sft_step(check.reference_sft_step)
    check.check_constraints(check.reference_check_constraints)


def _mask_role_token_too(tok, messages):
    ids, mask = sft.encode_chat(tok, messages)
    assistant = tok.encode("<|assistant|>")[0]
    return ids, [1 if i == assistant else m for i, m in zip(ids, mask)]


def _no_loss_on_end(tok, messages):
    ids, mask = sft.encode_chat(tok, messages)
    end = tok.encode(sft.END_OF_TURN)[0]
    return ids, [0 if i == end else m for i, m in zip(ids, mask)]


def _no_endoftext(tok, messages):
    ids, mask = sft.encode_chat(tok, messages)
    return ids[1:], mask[1:]


def _mean_over_everything(logits, labels):
    safe = labels.clamp(min=0)
    nll = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.size(-1)), safe.reshape(-1), reduction="none")
    return (nll * (labels.reshape(-1) != -100)).mean()


def _pad_labels_with_pad_id(examples, pad_id):
    x, y = sft.collate(examples, pad_id)
    width = y.size(1)
    for b, (ids, _) in enumerate(examples):
        y[b, len(ids) - 1: width] = pad_id
    return x, y


def _unshifted(examples, pad_id):
    x, y = sft.collate(examples, pad_id)
    for b, (ids, mask) in enumerate(examples):
        y[b, : len(ids) - 1] = torch.tensor([i if m else -100 for i, m in zip(ids[:-1], mask[:-1])])
    return x, y


def _no_zero_grad(model, optimizer, x, y):
    loss = sft.masked_cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.item()


def _constraints_without_lost(text, target):
    checks = check.reference_check_constraints(text, target)
    return {**checks, "lost": checks["valid"]}


@pytest.mark.parametrize("checker, wrong, message", [
    (check.format_chat_ids, _mask_role_token_too, "role token"),
    (check.format_chat_ids, _no_loss_on_end, "<|end|>"),
    (check.format_chat_ids, _no_endoftext, "<|endoftext|>"),
    (check.masked_cross_entropy, _mean_over_everything, "-100"),
    (check.collate_batch, _pad_labels_with_pad_id, "-100"),
    (check.collate_batch, _unshifted, "shifted"),
    (check.sft_step, _no_zero_grad, "zero_grad"),
    (check.check_constraints, _constraints_without_lost, "lose"),
])
def test_checkers_fail_typical_mistakes(checker, wrong, message):
    with pytest.raises(CheckFailed) as failure:
        checker(wrong)
    assert message in str(failure.value)


def test_checkers_let_not_implemented_through(check_a_stub):
    check_a_stub(check.format_chat_ids, "format_chat_ids")


def test_follow_ups_are_dropped_whole_to_fit_and_replay_is_plain_text():
    examples = instructions.training_mixture(40, mixture=(("reading", 4), ("writing", 1), ("refusal", 1), ("replay", 1)))
    data = sft.build_data(TOK, examples, 256, follow_ups=True)
    end = TOK.encode(sft.END_OF_TURN)[0]
    for example, (ids, mask) in zip(examples, data.rows):
        assert len(ids) <= 257
        if example.family == "replay":
            assert ids == [958, *TOK.encode(example.response), 958][:257] and all(mask[1:])
        else:
            sft.check_example(ids, mask, end)
            assert ids[: len(sft.encode_chat(TOK, example.messages())[0]) - 1] == sft.encode_chat(TOK, example.messages())[0][:-1]
    assert any(sum(i == end for i in ids) > 2 for e, (ids, _) in zip(examples, data.rows) if e.family == "reading")
