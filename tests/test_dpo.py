"""Chapter 7's DPO: log-probs with masks, the loss by hand, gradients, the reward model, best-of-n, the optimum."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from course_lib import dpo, sft
from course_lib.model import GPT, GPTConfig
from course_lib.preferences import Pair

LN2 = math.log(2)


def tiny_gpt(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=32, block_size=16, n_layer=1, n_head=2, n_embd=16))


def logps(*values):
    return torch.tensor(values, dtype=torch.float64)


# ----------------------------------------------------------------------------------------------------
# The loss by hand


@pytest.mark.parametrize("beta", [0.01, 0.1, 1.0, 5.0])
def test_policy_equal_to_reference_gives_ln2_for_any_beta(beta):
    chosen, rejected = logps(-10.0, -3.5, -70.0), logps(-12.0, -1.0, -20.0)
    losses = dpo.dpo_loss(chosen, rejected, chosen.clone(), rejected.clone(), beta)
    assert losses.shape == (3,)
    assert torch.allclose(losses, torch.full((3,), LN2, dtype=torch.float64))


def test_hand_worked_pairs():
    # pair 1: the policy raised the chosen by 2 nats and lowered the rejected by 3: margin 5, β = 0.1 -> 0.5
    # pair 2: the policy moved the wrong way by 4 nats: margin -4 -> β·margin = -0.4
    losses = dpo.dpo_loss(logps(-8.0, -10.0), logps(-13.0, -6.0), logps(-10.0, -10.0), logps(-10.0, -10.0), 0.1)
    expected = [math.log(1 + math.exp(-0.5)), math.log(1 + math.exp(0.4))]
    assert losses.tolist() == pytest.approx(expected, rel=1e-12)


def test_loss_stays_finite_for_huge_margins():
    losses = dpo.dpo_loss(logps(0.0, -1e4), logps(-1e4, 0.0), logps(0.0, 0.0), logps(0.0, 0.0), 1.0)
    assert losses[0] == 0 and losses[1] == pytest.approx(1e4)


def test_metrics_have_trl_names_and_values():
    m = dpo.dpo_metrics(logps(-8.0, -10.0), logps(-13.0, -6.0), logps(-10.0, -10.0), logps(-10.0, -10.0), 0.1)
    assert set(m) == {"rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "logps/chosen", "logps/rejected"}
    assert m["rewards/chosen"] == pytest.approx((0.2 + 0.0) / 2)
    assert m["rewards/rejected"] == pytest.approx((-0.3 + 0.4) / 2)
    assert m["rewards/margins"] == pytest.approx((0.5 - 0.4) / 2)
    assert m["rewards/accuracies"] == 0.5 and m["logps/chosen"] == -9.0


@pytest.mark.parametrize("beta", [0.0, -0.1])
def test_beta_must_be_positive(beta):
    x = logps(-1.0)
    with pytest.raises(ValueError, match="beta must be > 0"):
        dpo.dpo_loss(x, x, x, x, beta)


def test_mismatched_shapes_are_named():
    with pytest.raises(ValueError, match="same shape"):
        dpo.dpo_loss(logps(-1.0, -2.0), logps(-1.0), logps(-1.0, -2.0), logps(-1.0, -2.0), 0.1)


# ----------------------------------------------------------------------------------------------------
# Log-probabilities with masks


def test_sequence_log_probs_sums_only_labelled_positions():
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 4, 5, generator=generator)
    labels = torch.tensor([[-100, 1, 2, -100], [-100, -100, 4, 0]])
    log_probs = torch.log_softmax(logits, dim=-1)
    expected = [log_probs[0, 1, 1] + log_probs[0, 2, 2], log_probs[1, 2, 4] + log_probs[1, 3, 0]]
    assert dpo.sequence_log_probs(logits, labels).tolist() == pytest.approx([e.item() for e in expected], rel=1e-6)


def test_a_response_without_tokens_is_an_error():
    with pytest.raises(ValueError, match="no response token"):
        dpo.sequence_log_probs(torch.zeros(2, 3, 4), torch.tensor([[1, 2, 3], [-100, -100, -100]]))


def test_prompt_and_padding_do_not_change_the_response_log_prob():
    """The same response after two different prompts, padded to different widths: only its own tokens count."""
    model = tiny_gpt()
    response = [7, 8, 9, 3]
    rows = [([0, 5, 6, *response], [0, 0, 0, 1, 1, 1, 1]), ([0, 5, 6, *response, 11, 12], [0, 0, 0, 1, 1, 1, 1, 0, 0])]
    inputs, labels = sft.collate(rows, pad_id=0)
    with torch.no_grad():
        got = dpo.response_log_probs(model, inputs, labels)
        manual = torch.log_softmax(model(torch.tensor([[0, 5, 6, 7, 8, 9]])), -1)[0, 2:].gather(-1, torch.tensor([[7], [8], [9], [3]]))
    assert got[0].item() == pytest.approx(got[1].item(), abs=1e-5)
    assert got[0].item() == pytest.approx(manual.sum().item(), abs=1e-5)


def test_encode_response_masks_the_prompt():
    tok = sft.chat_tokenizer()
    ids, mask = dpo.encode_response(tok, "Write a story.", "Mia ran.")
    end = tok.encode(sft.END_OF_TURN)[0]
    assert ids[-1] == end and mask[-1] == 1
    assert tok.decode([i for i, m in zip(ids, mask) if m]) == "Mia ran." + sft.END_OF_TURN
    with pytest.raises(ValueError, match="empty"):
        dpo.encode_response(tok, "Write a story.", "")


# ----------------------------------------------------------------------------------------------------
# The objective through chapter 2's loop


def pair_data(n: int = 6) -> dpo.PairData:
    generator = torch.Generator().manual_seed(1)
    rows = []
    for _ in range(n):
        prompt = [0, *torch.randint(1, 30, (3,), generator=generator).tolist()]
        sides = []
        for length in (3, 5):
            response = torch.randint(1, 30, (length,), generator=generator).tolist() + [31]
            sides.append(([*prompt, *response], [0] * len(prompt) + [1] * len(response)))
        rows.append(tuple(sides))
    return dpo.PairData(rows, pad_id=0)


def test_objective_at_start_gives_ln2_and_gradients_reach_only_the_policy():
    reference = dpo.freeze(tiny_gpt())
    policy = copy.deepcopy(reference).requires_grad_(True)
    objective = dpo.DPOObjective(policy, reference, beta=0.1)
    x, y = dpo.pair_batch(pair_data(), 4, 16, torch.Generator().manual_seed(0))
    assert x.shape[:3] == (4, 2, 2)
    logits = objective(x)
    loss = torch.nn.functional.cross_entropy(logits, y)
    assert loss.item() == pytest.approx(LN2, abs=1e-6)
    loss.backward()
    assert all(p.grad is not None for p in policy.parameters())
    assert all(p.grad is None for p in reference.parameters())
    assert objective.log[-1]["rewards/margins"] == 0


def test_objective_loss_equals_dpo_loss():
    reference = dpo.freeze(tiny_gpt(0))
    policy = tiny_gpt(1)
    objective = dpo.DPOObjective(policy, reference, beta=0.5)
    x, y = dpo.pair_batch(pair_data(), 5, 16, torch.Generator().manual_seed(2))
    inputs, labels = dpo.split_pairs(x)
    with torch.no_grad():
        pol = dpo.response_log_probs(policy, inputs, labels).view(-1, 2)
        ref = dpo.response_log_probs(reference, inputs, labels).view(-1, 2)
        expected = dpo.dpo_loss(pol[:, 0], pol[:, 1], ref[:, 0], ref[:, 1], 0.5).mean()
        got = torch.nn.functional.cross_entropy(objective(x), y)
    assert got.item() == pytest.approx(expected.item(), rel=1e-5)


def test_a_reference_that_is_not_frozen_is_refused():
    with pytest.raises(ValueError, match="frozen"):
        dpo.DPOObjective(tiny_gpt(), tiny_gpt(), beta=0.1)


def test_train_dpo_through_chapter_2_loop_lowers_the_loss_and_keeps_the_reference():
    reference = dpo.freeze(tiny_gpt())
    before = [p.clone() for p in reference.parameters()]
    policy = copy.deepcopy(reference).requires_grad_(True)
    config = dpo.DPOConfig(beta=0.5, steps=30, batch_size=6, learning_rate=3e-3, warmup_steps=2, progress=False)
    history, log = dpo.train_dpo(policy, reference, pair_data(), None, config)
    assert history.train_loss[0] == pytest.approx(LN2, abs=1e-5)
    assert history.train_loss[-1] < 0.4
    assert len(log) == 30 and log[-1]["rewards/accuracies"] == 1.0
    assert all(torch.equal(a, b) for a, b in zip(before, reference.parameters()))


# ----------------------------------------------------------------------------------------------------
# Reward model


def test_bradley_terry_loss_by_hand():
    losses = dpo.bradley_terry_loss(logps(2.0, 0.0), logps(1.0, 0.0))
    assert losses.tolist() == pytest.approx([math.log(1 + math.exp(-1)), LN2])


def test_reward_model_starts_at_the_least_likely_response_token_and_learns():
    body = tiny_gpt()
    model = dpo.RewardModel(copy.deepcopy(body))
    x, _ = dpo.pair_batch(pair_data(), 4, 16, torch.Generator().manual_seed(0))
    inputs, labels = dpo.split_pairs(x)
    with torch.no_grad():  # both heads start at zero: r = min over response tokens of log π(y_t)
        written = torch.log_softmax(body(inputs), -1).gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
        expected = written.masked_fill(labels == -100, float("inf")).amin(dim=1)
        assert torch.allclose(model(inputs, labels), expected, atol=1e-5)
        assert torch.equal(dpo.RewardModel(body, worst_token=False)(inputs, labels), torch.zeros(8))  # the usual one
    history = dpo.train_reward_model(model, pair_data(), None, dpo.DPOConfig(steps=30, batch_size=6, learning_rate=3e-3,
                                                                               warmup_steps=2, progress=False))
    assert history.train_loss[-1] < 0.3
    with torch.no_grad():  # padding after the response changes nothing
        padded = torch.cat([inputs, torch.zeros(8, 3, dtype=torch.long)], 1)
        padded_labels = torch.cat([labels, torch.full((8, 3), -100)], 1)
        assert torch.allclose(model(inputs, labels), model(padded, padded_labels), atol=1e-5)
    with pytest.raises(ValueError, match="no response token"):
        model(inputs[:1], torch.full_like(labels[:1], -100))


def test_likelihood_judges_are_the_untrained_reward_model_and_the_mean_log_prob():
    tok = sft.chat_tokenizer()
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(tok), block_size=64, n_layer=1, n_head=2, n_embd=16)).eval()
    prompts, stories = ["Write a story.", "Write.", "Write a story."], ["Mia ran. The end.", "Tom sat.", "A cat sat on a mat."]
    judges = dpo.likelihood_judges(model, tok, prompts, stories, batch_size=2)
    untrained = dpo.score_responses(dpo.RewardModel(copy.deepcopy(model)), tok, prompts, stories, reward_model=True)
    assert torch.allclose(judges["least likely token"], untrained, atol=1e-5)
    tokens = torch.tensor([sum(dpo.encode_response(tok, p, y)[1]) for p, y in zip(prompts, stories)])
    assert torch.allclose(judges["mean log-prob"], dpo.score_responses(model, tok, prompts, stories) / tokens, atol=1e-5)


def test_judged_pairs_let_the_judge_pick_the_chosen_story():
    pairs = [Pair("Write.", "Mia ran.", "Tom sat.", 3.5, 0.0, "train", 0), Pair("Write.", "A.", "B.", 1.2, 1.1, "train", 1)]
    judged = dpo.judged_pairs(pairs, torch.tensor([2.0, -1.0]), torch.tensor([1.0, 0.5]))
    assert judged[0] == pairs[0]  # the judge agrees with the reader: unchanged
    assert (judged[1].chosen, judged[1].rejected, judged[1].reward_chosen, judged[1].reward_rejected) == ("B.", "A.", 1.1, 1.2)
    assert not judged[1].agrees_with_reward


# ----------------------------------------------------------------------------------------------------
# Best-of-n, the exact optimum, KL, win rate


def test_best_of_n_and_its_curve():
    assert dpo.best_of_n(torch.tensor([[0.1, 0.5, 0.5], [3.0, 1.0, 2.0]])).tolist() == [1, 0]
    proxy = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    true = torch.tensor([[1.0, 2.0, 3.0, -5.0]])  # the proxy's favourite is truly the worst
    curve = dpo.best_of_n_curve(proxy, true, [1, 2, 4])
    assert [c["true"] for c in curve] == [pytest.approx(0.25), pytest.approx(-1.5), pytest.approx(-5.0)]
    assert [c["proxy"] for c in curve] == [2.5, 3.0, 4.0]
    with pytest.raises(ValueError, match="shape"):
        dpo.best_of_n(torch.zeros(3))


def test_optimal_policy_limits():
    rewards = torch.tensor([[0.0, 1.0, 2.0, 3.0]])
    expected, kl = dpo.optimal_policy(rewards, 1e6)  # huge β: π* = π_ref
    assert expected == pytest.approx(1.5, abs=1e-3) and kl == pytest.approx(0.0, abs=1e-5)
    expected, kl = dpo.optimal_policy(rewards, 1e-3)  # tiny β: all weight on the best, KL = log N
    assert expected == pytest.approx(3.0) and kl == pytest.approx(math.log(4), abs=1e-6)
    expected, kl = dpo.optimal_policy(torch.tensor([[0.0, 1.0]]), 1.0)  # by hand: weights 1/(1+e), e/(1+e)
    w = math.e / (1 + math.e)
    assert expected == pytest.approx(w) and kl == pytest.approx(w * math.log(2 * w) + (1 - w) * math.log(2 * (1 - w)))


def test_sampled_kl_and_win_counts():
    kl, se = dpo.sampled_kl(logps(-1.0, -2.0, -3.0), logps(-2.0, -2.0, -5.0))
    assert kl == pytest.approx(1.0) and se > 0
    assert dpo.win_counts([1.0, 0.0, 2.0], [0.0, 0.0, 3.0]) == (1.5, 3)


def test_encode_pairs_skips_what_does_not_fit():
    tok = sft.chat_tokenizer()
    pairs = [Pair("Write.", "Mia ran.", "Tom sat.", 1, 0, "train", 0), Pair("Write.", "word " * 400, "Tom sat.", 1, 0, "train", 1)]
    assert len(dpo.encode_pairs(tok, pairs).rows) == 1


def test_encode_response_matches_the_chat_format_and_keeps_drawn_special_tokens():
    tok = sft.chat_tokenizer()
    messages = [{"role": "user", "content": "Write a story."}, {"role": "assistant", "content": "Mia ran. The end."}]
    assert dpo.encode_response(tok, "Write a story.", "Mia ran. The end.") == sft.encode_chat(tok, messages)
    ids, _ = dpo.encode_response(tok, "Write.", "Mia ran.<|endoftext|>")  # a policy may draw <|endoftext|> mid-answer
    assert ids[-2:] == [tok.encode("<|endoftext|>")[0], tok.encode(sft.END_OF_TURN)[0]]


# ----------------------------------------------------------------------------------------------------
# The checkers


def test_checkers_pass_the_references(capsys):
    from course_lib.checks import dpo as check

    check.sequence_log_probs(dpo.sequence_log_probs)
    check.dpo_loss(dpo.dpo_loss)
    check.reward_metrics(check.reference_reward_metrics)
    check.bradley_terry_loss(dpo.bradley_terry_loss)
    check.best_of_n(dpo.best_of_n)
    out = capsys.readouterr().out.splitlines()
    assert out == ["sequence_log_probs: 4/4 cases passed", "dpo_loss: 4/4 cases passed", "reward_metrics: 3/3 cases passed",
                   "bradley_terry_loss: 3/3 cases passed", "best_of_n: 4/4 cases passed"]


@pytest.mark.parametrize("name, wrong, hint", [
    ("dpo_loss", lambda *a: dpo.dpo_loss(*a).mean(), "no .mean()"),
    ("dpo_loss", lambda pc, pr, rc, rr, b: -torch.log(torch.sigmoid(b * ((pc - rc) - (pr - rr)))), "huge margins"),
    ("sequence_log_probs", lambda logits, labels: dpo.sequence_log_probs(logits, labels) / (labels != -100).sum(1), "SUM over T"),
    ("bradley_terry_loss", lambda c, r: -torch.nn.functional.logsigmoid(r - c), "r_chosen − r_rejected"),
    ("best_of_n", lambda s: s.argmin(dim=1), "HIGHEST"),
])
def test_checkers_name_the_usual_mistakes(name, wrong, hint):
    from course_lib.checks import CheckFailed
    from course_lib.checks import dpo as check

    with pytest.raises(CheckFailed, match="failed") as failure:
        getattr(check, name)(wrong)
    assert hint in str(failure.value)


def test_unsolved_exercise_prints_one_line(capsys):
    from course_lib.checks import dpo as check

    def stub(*args):
        raise NotImplementedError

    check.dpo_loss(stub)
    assert capsys.readouterr().out.strip() == "dpo_loss: not implemented yet"


# ----------------------------------------------------------------------------------------------------
# The reward model as a judge: pair agreement against r*, by kind of pair


def test_pair_agreement_by_hand_and_by_kind():
    truth = torch.tensor([[0.0, 3.5, 1.2, 3.1]])  # invalid, fulfilled (short), valid, fulfilled (long)
    judge = torch.tensor([[-1.0, 2.0, 0.5, 2.5]])  # right on every pair but the two fulfilled ones
    assert dpo.pair_agreement(judge, truth) == (5, 6)
    kinds = dpo.pair_kinds(truth)
    assert [dpo.pair_agreement(judge, truth, kinds[k]) for k in kinds] == [(4, 4), (1, 1), (0, 1)]
    assert dpo.reward_bands(truth).tolist() == [[0, 2, 1, 2]]
    assert dpo.pair_agreement(torch.zeros(1, 4), truth) == (0, 6)  # a judge that ties everything agrees on nothing
    with pytest.raises(ValueError, match="shape"):
        dpo.pair_agreement(judge, truth[:, :3])


def _double_counted(judge, truth, keep=None):
    t, j = truth[:, :, None] - truth[:, None, :], judge[:, :, None] - judge[:, None, :]
    pairs = (t != 0) & (torch.ones_like(t, dtype=torch.bool) if keep is None else keep)
    return int((pairs & (torch.sign(j) == torch.sign(t))).sum()), int(pairs.sum())


def _ties_agree(judge, truth, keep=None):
    t, j = truth[:, :, None] - truth[:, None, :], judge[:, :, None] - judge[:, None, :]
    pairs = torch.ones_like(t, dtype=torch.bool).triu(1) & (t != 0) & (torch.ones_like(t, dtype=torch.bool) if keep is None else keep)
    return int((pairs & (j * t >= 0)).sum()), int(pairs.sum())


@pytest.mark.parametrize("wrong, message", [
    (_double_counted, "each pair counts once"),
    (_ties_agree, "a tie of the judge"),
    (lambda judge, truth, keep=None: dpo.pair_agreement(judge, truth), "count only the pairs the mask keeps"),
    (lambda judge, truth, keep=None: torch.tensor(dpo.pair_agreement(judge, truth, keep)), "tuple of two ints"),
])
def test_the_pair_agreement_checker_names_the_mistake(wrong, message, capsys):
    from course_lib.checks import CheckFailed
    from course_lib.checks import dpo as check

    check.pair_agreement(dpo.pair_agreement)
    assert "pair_agreement: 5/5 cases passed" in capsys.readouterr().out
    with pytest.raises(CheckFailed, match=message):
        check.pair_agreement(wrong)
