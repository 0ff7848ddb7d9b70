"""Direct preference optimisation (chapter 7), and the RLHF pieces it replaces: a reward model, best-of-n.

    log-probs     `sequence_log_probs`: log π(response | prompt), summed over the response's tokens only
                  (labels of the prompt and of padding are -100, as in chapter 6's `sft.collate`)
    DPO loss      `dpo_loss`: −log σ(β·[(log π(y_w) − log π_ref(y_w)) − (log π(y_l) − log π_ref(y_l))]) per
                  pair (Rafailov et al. 2023); `dpo_metrics`: what TRL logs, under TRL's names
    training      chapter 2's `training.train`, unchanged: DPO is a two-way classification ("which of the two
                  did the reader choose?") whose two logits are the implicit rewards β·log(π/π_ref), so
                  `DPOObjective` returns those logits [B, 2] and the loop's cross-entropy against class 0 (the
                  chosen one) is exactly the DPO loss. The frozen reference lives inside the objective.
    two rounds    the shipped policy: round 1 from the SFT model on the shipped pairs; round 2 from round 1 on
                  pairs of round 1's own stories (on-policy, `on_policy_pairs`), with round 1 as the reference
    reward model  `RewardModel`: the SFT model with a head read at the response's last token and a per-token
                  error head (the worst token counts), trained with the Bradley–Terry loss
                  −log σ(r(y_w) − r(y_l)) through the same loop (`RewardObjective`)
    best-of-n     `best_of_n`: draw n answers, keep the one a reward scores highest (no training at all)
    exact optimum `optimal_policy`: the best any method can do at a given β, from reference samples
    judges        `pair_agreement` with r*, by kind of pair (`pair_kinds`); `likelihood_judges`, judges made from
                  a language model alone; a policy tuned on pairs labelled by a reward model (`judged_pairs`)

`python -m course_lib build-assets story_dpo` trains the shipped policy, two reward models, a policy tuned against
one of them and a β sweep from the pair set (`course_lib.preferences`), and measures them all (assets/story_dpo.pt,
assets/story_dpo.json.gz).
"""

from __future__ import annotations

import argparse
import copy
import gzip
import json
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib import instructions, preferences, sft, training
from course_lib.model import GPT, load_model, save_model
from course_lib.preferences import Pair
from course_lib.sft import IGNORE_INDEX
from course_lib.utils import asset_path, seed_everything

DPO_MODEL = "story_dpo.pt"
DPO_MEASUREMENTS = "story_dpo.json.gz"

# ----------------------------------------------------------------------------------------------------
# Log-probability of a response given its prompt


def token_log_probs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log p(labels[b, t]) at every position, 0 where the label is -100: logits [B, T, V], labels [B, T] -> [B, T]."""
    if logits.dim() != 3 or labels.shape != logits.shape[:2]:
        raise ValueError(f"logits [B, T, V] and labels [B, T] do not match: {tuple(logits.shape)} and {tuple(labels.shape)}")
    mask = labels != IGNORE_INDEX
    empty = (~mask.any(dim=1)).nonzero().flatten().tolist()
    if empty:
        raise ValueError(f"rows {empty} have no response token (every label is -100): log π(response) is undefined")
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    picked = log_probs.gather(-1, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)  # -100 -> 0 only to index
    return torch.where(mask, picked, torch.zeros_like(picked))


def sequence_log_probs(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Σ_t log p(labels[b, t]) over the positions whose label is not -100: logits [B, T, V], labels [B, T] -> [B].

    A sum, not a mean: log π(y | x) of the whole response, which is what the DPO loss compares.
    """
    return token_log_probs(logits, labels).sum(dim=1)


def response_log_probs(model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """log π(response | prompt) of each row under `model`: inputs, labels [B, T] (as `sft.collate` makes) -> [B]."""
    return sequence_log_probs(model(inputs), labels)


def encode_response(tokenizer, prompt: str, response: str, max_tokens: int | None = 257) -> tuple[list[int], list[int]]:
    """(ids, mask) of a one-turn conversation in chapter 6's chat format; mask 1 on the response and its <|end|>.

    The same ids as `sft.encode_chat`, except that a sampled response may hold a special token as text (a
    policy can draw <|endoftext|> mid-answer): it is encoded as the token the model drew, not refused.
    """
    if not response.strip():
        raise ValueError("the response is empty: it has no token whose log-probability could be scored")
    special = {token: tokenizer.encode(token)[0] for token in sft.CHAT_SPECIAL_TOKENS}
    given = [special[sft.END_OF_TEXT], special["<|user|>"], *tokenizer.encode(prompt), special[sft.END_OF_TURN],
             special["<|assistant|>"]]
    answer = [*tokenizer.encode(response), special[sft.END_OF_TURN]]
    if max_tokens is not None and len(given) + len(answer) > max_tokens:
        raise ValueError(f"the conversation has {len(given) + len(answer)} tokens but at most {max_tokens} fit the context")
    return given + answer, [0] * len(given) + [1] * len(answer)


# ----------------------------------------------------------------------------------------------------
# The DPO loss and its metrics


def check_logps(*logps: torch.Tensor) -> None:
    shapes = {tuple(t.shape) for t in logps}
    if len(shapes) != 1 or len(logps[0].shape) != 1:
        raise ValueError(f"the log-probabilities must be four tensors of the same shape [B], got shapes {sorted(shapes)}")


def check_beta(beta: float) -> None:
    if not beta > 0:
        raise ValueError(f"beta must be > 0 (it weighs the KL penalty; at 0 the reference no longer matters), got {beta}")


def dpo_loss(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor, ref_chosen_logps: torch.Tensor,
             ref_rejected_logps: torch.Tensor, beta: float) -> torch.Tensor:
    """The DPO loss of each pair [B]: −log σ(β·[(π_c − ref_c) − (π_r − ref_r)]), all log-probs [B].

    At the start (policy = reference) every pair's loss is ln 2, whatever β.
    """
    check_logps(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps)
    check_beta(beta)
    margin = (policy_chosen_logps - ref_chosen_logps) - (policy_rejected_logps - ref_rejected_logps)
    return -F.logsigmoid(beta * margin)  # logsigmoid stays finite where log(sigmoid(.)) would give -inf


def implicit_rewards(policy_logps: torch.Tensor, ref_logps: torch.Tensor, beta: float) -> torch.Tensor:
    """DPO's implicit reward of each response, β·(log π − log π_ref) [B] (Rafailov et al. 2023, eq. 5)."""
    check_logps(policy_logps, ref_logps)
    check_beta(beta)
    return beta * (policy_logps - ref_logps)


def dpo_metrics(policy_chosen_logps: torch.Tensor, policy_rejected_logps: torch.Tensor, ref_chosen_logps: torch.Tensor,
                ref_rejected_logps: torch.Tensor, beta: float) -> dict[str, float]:
    """What TRL's DPOTrainer logs, under its names: batch means of the implicit rewards, their margin, how
    often the chosen one's reward is higher, and the policy's log-probabilities of each side."""
    chosen = implicit_rewards(policy_chosen_logps, ref_chosen_logps, beta).detach()
    rejected = implicit_rewards(policy_rejected_logps, ref_rejected_logps, beta).detach()
    return {"rewards/chosen": chosen.mean().item(), "rewards/rejected": rejected.mean().item(),
            "rewards/margins": (chosen - rejected).mean().item(),
            "rewards/accuracies": (chosen > rejected).float().mean().item(),
            "logps/chosen": policy_chosen_logps.detach().mean().item(),
            "logps/rejected": policy_rejected_logps.detach().mean().item()}


# ----------------------------------------------------------------------------------------------------
# Pair batches for chapter 2's loop: x [B, 2, 2, T] = (chosen, rejected) x (inputs, labels); y = zeros [B]


@dataclass
class PairData:
    rows: list  # per pair: ((ids, mask) of the chosen, (ids, mask) of the rejected)
    pad_id: int


def encode_pairs(tokenizer, pairs: Sequence[Pair], max_tokens: int = 257) -> PairData:
    """Encode each pair's two conversations; a pair with a story too long for the context is left out."""
    rows = []
    for p in pairs:
        try:
            rows.append((encode_response(tokenizer, p.prompt, p.chosen, max_tokens),
                         encode_response(tokenizer, p.prompt, p.rejected, max_tokens)))
        except ValueError:  # a story cut off at the sampling limit: too long to score whole
            continue
    return PairData(rows, sft.lm.end_of_text_id(tokenizer))


def collate_pairs(rows: Sequence, pad_id: int) -> torch.Tensor:
    """Pairs -> x [B, 2, 2, T]: x[b, 0] the chosen's (inputs, labels), x[b, 1] the rejected's, padded alike."""
    inputs, labels = sft.collate([side for row in rows for side in row], pad_id)  # [2B, T]: c0, r0, c1, r1, ...
    return torch.stack([inputs, labels], dim=1).view(len(rows), 2, 2, -1)


def pair_batch(data: PairData, batch_size: int, block_size: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`training.train`'s batch hook: random pairs, and the class to predict (0: the chosen) for each."""
    picks = torch.randint(len(data.rows), (batch_size,), generator=generator).tolist()
    return collate_pairs([data.rows[i] for i in picks], data.pad_id), torch.zeros(batch_size, dtype=torch.long)


def split_pairs(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x [B, 2, 2, T] -> inputs, labels [2B, T] (chosen and rejected of each pair side by side)."""
    if x.dim() != 4 or x.shape[1:3] != (2, 2):
        raise ValueError(f"a pair batch has shape [B, 2, 2, T], got {tuple(x.shape)}")
    return x[:, :, 0].reshape(-1, x.size(-1)), x[:, :, 1].reshape(-1, x.size(-1))


# ----------------------------------------------------------------------------------------------------
# DPO through chapter 2's training loop


def check_frozen(reference: nn.Module) -> None:
    trainable = [name for name, p in reference.named_parameters() if p.requires_grad]
    if trainable:
        raise ValueError(f"the reference model must be frozen, but {len(trainable)} parameters require grad "
                         f"(e.g. {trainable[0]}); call freeze(reference) (requires_grad_(False)) first")


def freeze(model: nn.Module) -> nn.Module:
    """Turn gradients off for every parameter and switch to eval mode: a reference that never moves."""
    return model.requires_grad_(False).eval()


class DPOObjective(nn.Module):
    """policy + frozen reference, read as a two-way classifier whose logits are the implicit rewards.

    forward(x [B, 2, 2, T]) -> β·(log π − log π_ref) of (chosen, rejected) [B, 2]; cross-entropy with the
    chosen as the class gives −log σ(β·margin), the DPO loss. While training it keeps `dpo_metrics` per step.
    """

    def __init__(self, policy: GPT, reference: GPT, beta: float):
        super().__init__()
        check_frozen(reference)
        check_beta(beta)
        self.policy, self.reference, self.beta, self.config = policy, reference, beta, policy.config
        self.log: list[dict] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inputs, labels = split_pairs(x)
        policy_logps = response_log_probs(self.policy, inputs, labels).view(-1, 2)
        with torch.no_grad():
            ref_logps = response_log_probs(self.reference, inputs, labels).view(-1, 2)
        if self.training:
            self.log.append(dpo_metrics(*policy_logps.unbind(1), *ref_logps.unbind(1), self.beta))
        return self.beta * (policy_logps - ref_logps)

    def train(self, mode: bool = True) -> DPOObjective:
        super().train(mode)
        self.reference.eval()  # the reference never trains
        return self


@dataclass
class DPOConfig:
    beta: float = 0.1  # the paper's default
    steps: int = 200
    batch_size: int = 16  # pairs per step
    learning_rate: float = 1e-4
    warmup_steps: int = 10
    seed: int = 0
    progress: bool = True


def train_config(config: DPOConfig) -> training.TrainConfig:
    # no weight decay: it would pull the policy towards zero, not towards the reference
    return training.TrainConfig(max_steps=config.steps, batch_size=config.batch_size, learning_rate=config.learning_rate,
                                min_lr=config.learning_rate / 10, warmup_steps=config.warmup_steps, weight_decay=0.0,
                                eval_interval=max(config.steps // 4, 1), eval_batches=2, seed=config.seed,
                                progress=config.progress)


def train_dpo(policy: GPT, reference: GPT, train_pairs: PairData, val_pairs: PairData | None, config: DPOConfig,
              on_step=None) -> tuple[training.History, list[dict]]:
    """DPO in place on `policy` with chapter 2's loop; returns its History and the per-step `dpo_metrics`."""
    seed_everything(config.seed)
    objective = DPOObjective(policy, reference, config.beta)
    history = training.train(objective, train_pairs, val_pairs, train_config(config), batches=pair_batch, on_step=on_step)
    policy.eval()
    return history, objective.log


# ----------------------------------------------------------------------------------------------------
# The reward model of RLHF: the SFT model with a scalar head, trained with the Bradley–Terry loss


def bradley_terry_loss(reward_chosen: torch.Tensor, reward_rejected: torch.Tensor) -> torch.Tensor:
    """−log σ(r_chosen − r_rejected) per pair [B]: the negative log-likelihood of the reader's choice."""
    check_logps(reward_chosen, reward_rejected)
    return -F.logsigmoid(reward_chosen - reward_rejected)


def hidden_states(model: GPT, idx: torch.Tensor) -> torch.Tensor:
    """The GPT's last hidden states [B, T, C] (its forward pass without the output layer)."""
    x = model.wte(idx) + model.wpe(torch.arange(idx.size(1), device=idx.device))
    for block in model.blocks:
        x = block(x)
    return model.ln_f(x)


def zero_linear(n_in: int) -> nn.Linear:
    """A linear map to one number that starts at 0 for every input."""
    layer = nn.Linear(n_in, 1)
    nn.init.zeros_(layer.weight)
    nn.init.zeros_(layer.bias)
    return layer


class RewardModel(nn.Module):
    """r(prompt, response): a GPT body with two linear heads, one for the whole answer and one for its worst token.

        r = head(h_last) − max_t e_t,    e_t = error(h_t) − surprise · log π(y_t | prompt, y_<t)

    forward(inputs, labels [B, T]) -> rewards [B]. The last response position has read the whole answer
    (it predicts its <|end|>): its head can judge what the request asked and the length. But one sentence
    that breaks the grammar makes a story invalid wherever it stands, and a head read at one position
    learns to notice that slowly; so every response token t also gets an error score e_t, and the worst
    one is subtracted. e_t starts as the body's own surprise at the token written there (−log π, from the
    same forward pass): the least likely token is where a story goes wrong. Both linear heads start at
    zero, so the first reward is the log-probability of the least likely token of the response.
    worst_token=False keeps only the first head (r = head(h_last), starting at 0): the usual reward model.
    """

    def __init__(self, body: GPT, worst_token: bool = True):
        super().__init__()
        self.body, self.config, self.worst_token = body, body.config, worst_token
        self.head = zero_linear(body.config.n_embd)
        if worst_token:
            self.error = zero_linear(body.config.n_embd)
            self.surprise = nn.Parameter(torch.ones(()))

    def forward(self, inputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        mask = labels != IGNORE_INDEX
        if not mask.any(dim=1).all():
            raise ValueError("a row has no response token (every label is -100): there is nothing to score")
        hidden = hidden_states(self.body, inputs)  # [B, T, C]
        last = (mask * torch.arange(mask.size(1), device=mask.device)).argmax(dim=1)  # the last response position
        whole = self.head(hidden[torch.arange(inputs.size(0), device=inputs.device), last]).squeeze(-1)  # [B]
        if not self.worst_token:
            return whole
        written = token_log_probs(self.body.lm_head(hidden), labels)  # log π(y_t) [B, T]
        errors = self.error(hidden).squeeze(-1) - self.surprise * written  # e_t [B, T]
        return whole - errors.masked_fill(~mask, float("-inf")).amax(dim=1)


class RewardObjective(nn.Module):
    """A reward model read as a two-way classifier: forward(x [B, 2, 2, T]) -> (r_chosen, r_rejected) [B, 2];
    cross-entropy with the chosen as the class is the Bradley–Terry loss."""

    def __init__(self, reward_model: RewardModel):
        super().__init__()
        self.reward_model, self.config = reward_model, reward_model.config

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.reward_model(*split_pairs(x)).view(-1, 2)


def train_reward_model(reward_model: RewardModel, train_pairs: PairData, val_pairs: PairData | None,
                       config: DPOConfig) -> training.History:
    """Bradley–Terry training with chapter 2's loop (config.beta is not used)."""
    seed_everything(config.seed)
    history = training.train(RewardObjective(reward_model), train_pairs, val_pairs, train_config(config), batches=pair_batch)
    reward_model.eval()
    return history


def conversation_batches(model: nn.Module, tokenizer, prompts: Sequence[str], responses: Sequence[str], batch_size: int):
    """(inputs, labels) [B, T] of the (prompt, response) conversations, batch by batch, cut to the model's context."""
    pad_id, limit = sft.lm.end_of_text_id(tokenizer), model.config.block_size + 1
    for b in range(0, len(prompts), batch_size):
        rows = [encode_response(tokenizer, p, r, None) for p, r in zip(prompts[b: b + batch_size], responses[b: b + batch_size])]
        yield sft.collate([(ids[:limit], mask[:limit]) for ids, mask in rows], pad_id)


@torch.no_grad()
def score_responses(model: nn.Module, tokenizer, prompts: Sequence[str], responses: Sequence[str], reward_model: bool = False,
                    batch_size: int = 32) -> torch.Tensor:
    """log π(response | prompt) under a GPT, or r(prompt, response) under a RewardModel, for each pair [N]."""
    out = [model(inputs, labels) if reward_model else response_log_probs(model, inputs, labels)
           for inputs, labels in conversation_batches(model, tokenizer, prompts, responses, batch_size)]
    return torch.cat(out) if out else torch.zeros(0)


@torch.no_grad()
def likelihood_judges(model: GPT, tokenizer, prompts: Sequence[str], responses: Sequence[str],
                      batch_size: int = 32) -> dict[str, torch.Tensor]:
    """Two judges made from a language model alone, with no training, each scoring every response [N]:

    "least likely token": min_t log π(y_t | prompt, y_<t), what an untrained `RewardModel(model)` returns;
    "mean log-prob": (1/T) Σ_t log π(y_t | prompt, y_<t), a perplexity judge (the response's <|end|> counts).
    """
    out: dict[str, list] = {"least likely token": [], "mean log-prob": []}
    for inputs, labels in conversation_batches(model, tokenizer, prompts, responses, batch_size):
        written, mask = token_log_probs(model(inputs), labels), labels != IGNORE_INDEX
        out["least likely token"].append(written.masked_fill(~mask, float("inf")).amin(dim=1))
        out["mean log-prob"].append(written.sum(dim=1) / mask.sum(dim=1))
    return {name: torch.cat(parts) for name, parts in out.items()}


# ----------------------------------------------------------------------------------------------------
# Measuring against the true reward


def best_of_n(scores: torch.Tensor) -> torch.Tensor:
    """The index of the highest-scored of n candidates for each prompt: scores [P, n] -> [P] (ties: the first)."""
    if scores.dim() != 2 or scores.size(1) == 0:
        raise ValueError(f"scores must have shape [P, n] with n >= 1, got {tuple(scores.shape)}")
    return scores.argmax(dim=1)


def best_of_n_curve(proxy: torch.Tensor, true: torch.Tensor, ns: Sequence[int]) -> list[dict]:
    """For each n: split each prompt's N candidates into N // n groups, pick by `proxy`, average both rewards.

    proxy, true: [P, N]. Returns [{"n", "proxy", "true", "true_se"}] (se: standard error of the true mean).
    """
    if proxy.shape != true.shape:
        raise ValueError(f"proxy {tuple(proxy.shape)} and true {tuple(true.shape)} rewards must have the same shape")
    P, N = proxy.shape
    out = []
    for n in ns:
        groups = N // n
        if groups < 1:
            raise ValueError(f"n = {n} is more than the {N} candidates per prompt")
        grouped_proxy = proxy[:, : groups * n].reshape(P * groups, n)
        pick = best_of_n(grouped_proxy)
        rows = torch.arange(P * groups)
        picked_true = true[:, : groups * n].reshape(P * groups, n)[rows, pick].double()
        per_prompt = picked_true.view(P, groups).mean(dim=1)  # prompts are the independent units
        out.append({"n": n, "proxy": grouped_proxy[rows, pick].double().mean().item(), "true": per_prompt.mean().item(),
                    "true_se": per_prompt.std().item() / math.sqrt(P) if P > 1 else float("nan")})
    return out


def pair_agreement(judge: torch.Tensor, truth: torch.Tensor, keep: torch.Tensor | None = None) -> tuple[int, int]:
    """How often a judge orders two answers to one prompt as the true reward does: (agreements, pairs).

    judge, truth: [P, N] scores of N answers to each of P prompts. A pair is two answers i < j to the same
    prompt whose true rewards differ (and keep[p, i, j] is True, if a mask [P, N, N] is given); it agrees
    when the judge's scores differ in the same direction (a tie of the judge does not agree).
    """
    if judge.dim() != 2 or judge.shape != truth.shape:
        raise ValueError(f"judge and truth must both have shape [P, N], got {tuple(judge.shape)} and {tuple(truth.shape)}")
    true_order = torch.sign(truth[:, :, None] - truth[:, None, :])
    judge_order = torch.sign(judge[:, :, None] - judge[:, None, :])
    pairs = torch.ones_like(true_order, dtype=torch.bool).triu(1) & (true_order != 0)
    if keep is not None:
        pairs &= keep.bool()
    return int((pairs & (judge_order == true_order)).sum()), int(pairs.sum())


def reward_bands(truth: torch.Tensor) -> torch.Tensor:
    """Which part of r* a story earned: 0 not a valid story, 1 valid, 2 valid and does what was asked; [P, N]."""
    return (truth >= preferences.VALID_REWARD).long() + (truth >= preferences.VALID_REWARD + preferences.FULFILLED_REWARD).long()


def pair_kinds(truth: torch.Tensor) -> dict[str, torch.Tensor]:
    """Masks [P, N, N] of the kinds of pairs, by what separates the two stories under r*.

    Within a band, r* differs only by the brevity bonus: the shorter story is better and nothing else.
    """
    band = reward_bands(truth)
    low, high = torch.minimum(band[:, :, None], band[:, None, :]), torch.maximum(band[:, :, None], band[:, None, :])
    return {"does what was asked vs. not": (high == 2) & (low < 2), "a valid story vs. not": (high == 1) & (low == 0),
            "same band: only the length differs": (high == low) & (high > 0)}


def optimal_policy(rewards: torch.Tensor, beta: float) -> tuple[float, float]:
    """Expected reward and KL to the reference of π* ∝ π_ref·exp(r/β), from reference samples rewards [P, N].

    Per prompt, importance weights w ∝ exp(r/β) over its N samples give E_π*[r] = Σ w r and
    KL(π* ‖ π_ref) = E_π*[r]/β − log mean exp(r/β); both averaged over prompts. With N samples the
    estimate cannot show a KL above log N: π* then puts all its weight on the best sample.
    """
    check_beta(beta)
    r = rewards.double()
    weights = torch.softmax(r / beta, dim=1)
    expected = (weights * r).sum(dim=1)
    log_mean = torch.logsumexp(r / beta, dim=1) - math.log(r.size(1))
    return expected.mean().item(), (expected / beta - log_mean).mean().item()


def sampled_kl(policy_logps: torch.Tensor, ref_logps: torch.Tensor) -> tuple[float, float]:
    """KL(π ‖ π_ref) ≈ mean of log π(y) − log π_ref(y) over y drawn from π, and its standard error."""
    check_logps(policy_logps, ref_logps)
    d = (policy_logps - ref_logps).double()
    return d.mean().item(), d.std().item() / math.sqrt(d.numel())


def win_counts(policy_rewards: Sequence[float], baseline_rewards: Sequence[float]) -> tuple[float, int]:
    """(wins + ties/2, n) of paired comparisons by r* (the usual convention for win rates with ties)."""
    wins = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in zip(policy_rewards, baseline_rewards))
    return wins, len(policy_rewards)


# ----------------------------------------------------------------------------------------------------
# Command line: the shipped policy, reward model and measurements

SHIPPED = dict(beta=0.3, steps=120, batch_size=16, learning_rate=5e-5)


def load_dpo_model(device: str | torch.device = "cpu") -> GPT:
    """The shipped DPO policy, assets/story_dpo.pt (rebuild: `python -m course_lib build-assets story_dpo`)."""
    return load_model(asset_path(DPO_MODEL), device)


def load_measurements(path=None) -> dict:
    with gzip.open(path or asset_path(DPO_MEASUREMENTS), "rt", encoding="utf-8") as f:
        return json.load(f)


def test_requests(data: dict) -> tuple[instructions.Example, ...]:
    return preferences.requests("test", data["sizes"]["test"])


def measure_policy(policy: GPT, reference: GPT, tokenizer, data: dict, samples_per_request: int, seed: int) -> dict:
    """Sample the policy on the test requests; r*, and log-probs under policy and reference (for the KL)."""
    samples = preferences.sample_stories(policy, tokenizer, test_requests(data), samples_per_request, seed)
    prompts, flat = flatten(test_requests(data), samples)
    return {"samples": samples,
            "logps_policy": score_responses(policy, tokenizer, prompts, flat).tolist(),
            "logps_reference": score_responses(reference, tokenizer, prompts, flat).tolist()}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m course_lib.dpo", description=__doc__.split("\n\n")[0])
    for name, value in SHIPPED.items():
        parser.add_argument(f"--{name.replace('_', '-')}", type=type(value), default=value)
    parser.add_argument("--reward-steps", type=int, default=150)
    parser.add_argument("--policy-samples", type=int, default=4, help="stories per test request from each tuned policy")
    parser.add_argument("--reward-learning-rate", type=float, default=3e-4)
    parser.add_argument("--sweep-only", action="store_true", help="only add the β sweep to the existing --summary")
    parser.add_argument("--policy-only", action="store_true",
                        help="only retrain and measure the DPO policy (both rounds); keep the reward models, the judge-tuned "
                             "policy and the sweep of the existing --summary")
    parser.add_argument("--sweep", default="0.03,0.3,1", help="comma-separated betas: a shorter DPO run at each (the frontier)")
    parser.add_argument("--sweep-steps", type=int, default=60)
    parser.add_argument("--out", help="save the DPO policy here")
    parser.add_argument("--summary", help="write the measurements here (gzipped JSON)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--quiet", action="store_true")
    return parser


def run_dpo(reference: GPT, tokenizer, pairs: dict[str, list[Pair]], config: DPOConfig) -> tuple[GPT, dict]:
    """DPO from the reference on pairs["train"] (validation loss on pairs["val"]); the policy and what was logged."""
    train_pairs, val_pairs = encode_pairs(tokenizer, pairs["train"]), encode_pairs(tokenizer, pairs["val"])
    policy = copy.deepcopy(reference).requires_grad_(True)
    started = time.perf_counter()
    history, log = train_dpo(policy, reference, train_pairs, val_pairs, config)
    return policy, {"config": asdict(config), "seconds": time.perf_counter() - started, "train_loss": history.train_loss,
                    "val_loss": history.eval_val_loss, "eval_steps": history.eval_steps, "metrics": log,
                    "pairs_used": len(train_pairs.rows)}


def training_pairs(data: dict) -> dict[str, list[Pair]]:
    """The pairs the policy and the reward models train on (train) and are validated on (val)."""
    return {split: data["pairs"][split] for split in ("train", "val")}


def run_reward_model(reference: GPT, tokenizer, data: dict, config: DPOConfig, worst_token: bool) -> tuple[RewardModel, dict]:
    """Train a reward model on the training pairs and score the test pairs and the reference's test samples."""
    reward_model = RewardModel(copy.deepcopy(reference).requires_grad_(True), worst_token)
    started = time.perf_counter()
    pairs = training_pairs(data)
    history = train_reward_model(reward_model, encode_pairs(tokenizer, pairs["train"]), encode_pairs(tokenizer, pairs["val"]), config)
    chosen, rejected = score_pairs(reward_model, tokenizer, data["pairs"]["test"])
    flat_prompts, flat = flatten(test_requests(data), data["samples"]["test"])
    return reward_model, {"seconds": time.perf_counter() - started, "train_loss": history.train_loss,
                          "val_loss": history.eval_val_loss, "config": asdict(config), "worst_token": worst_token,
                          "test_chosen": chosen.tolist(), "test_rejected": rejected.tolist(),
                          "reference_sample_scores": score_responses(reward_model, tokenizer, flat_prompts, flat,
                                                                     reward_model=True).tolist()}


def score_pairs(reward_model: RewardModel, tokenizer, pairs: Sequence[Pair]) -> tuple[torch.Tensor, torch.Tensor]:
    """The rewards of each pair's chosen and rejected story: two tensors [len(pairs)]."""
    prompts = [p.prompt for p in pairs]
    return (score_responses(reward_model, tokenizer, prompts, [p.chosen for p in pairs], reward_model=True),
            score_responses(reward_model, tokenizer, prompts, [p.rejected for p in pairs], reward_model=True))


def flatten(requests: Sequence[instructions.Example], samples: Sequence[Sequence[str]]) -> tuple[list[str], list[str]]:
    """(prompt, story) of every sample, request by request: the rows of a [P, N] table, flattened."""
    return [r.prompt for r, ys in zip(requests, samples) for _ in ys], [y for ys in samples for y in ys]


def judged_pairs(pairs: Sequence[Pair], chosen_scores: torch.Tensor, rejected_scores: torch.Tensor) -> list[Pair]:
    """The same pairs, labelled by a judge instead of the reader: the story it scores higher becomes the chosen."""
    return [p if c >= r else Pair(p.prompt, p.rejected, p.chosen, p.reward_rejected, p.reward_chosen, p.split, p.index)
            for p, c, r in zip(pairs, chosen_scores.tolist(), rejected_scores.tolist())]


def main(argv: list[str] | None = None) -> dict:
    args = build_parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    tokenizer = sft.chat_tokenizer()
    data = preferences.load()
    reference = freeze(sft.load_sft_model())
    config = DPOConfig(args.beta, args.steps, args.batch_size, args.learning_rate, progress=not args.quiet)
    summary: dict = {"command": " ".join(["python -m course_lib.dpo", *(sys.argv[1:] if argv is None else argv)])}
    if args.sweep_only:  # add the β sweep to the measurements already there
        summary = load_measurements(args.summary)
        return run_sweep(reference, tokenizer, data, args, summary)
    if args.policy_only:  # the reward models, the judge-tuned policy and the sweep do not depend on it: keep them
        summary = {**load_measurements(args.summary), "command": summary["command"].replace(" --policy-only", "")}
    run_rounds(reference, tokenizer, data, config, args, summary)
    if args.policy_only:
        return summary
    run_reward_models(reference, tokenizer, data, config, args, summary)
    return run_sweep(reference, tokenizer, data, args, summary)


def run_rounds(reference: GPT, tokenizer, data: dict, config: DPOConfig, args, summary: dict) -> None:
    """The shipped policy: round 1 from the SFT model on the shipped pairs, round 2 on-policy; both measured."""
    policy_1, summary["dpo"] = run_dpo(reference, tokenizer, training_pairs(data), config)
    print(json.dumps({k: v for k, v in summary["dpo"].items() if k in ("seconds", "val_loss")}), flush=True)
    summary["policy_round1"] = measure_policy(policy_1, reference, tokenizer, data, args.policy_samples, seed=7)
    write(summary, args.summary)
    # round 2, on-policy: pairs of the round-1 policy's own stories, labelled the same way; round 1 is the reference
    pairs_2 = on_policy_pairs(policy_1, tokenizer, data, seed=100)
    policy, summary["dpo_round2"] = run_dpo(freeze(policy_1), tokenizer, pairs_2, config)
    summary["dpo_round2"]["label_noise"] = {split: preferences.label_noise([p.reward_chosen - p.reward_rejected for p in pairs])
                                            for split, pairs in pairs_2.items()}
    print(json.dumps({k: v for k, v in summary["dpo_round2"].items() if k in ("seconds", "val_loss", "pairs_used")}), flush=True)
    if args.out:
        policy.half()
        save_model(policy, args.out, tokenizer="story_tokenizer.json", chat_tokens=sft.CHAT_SPECIAL_TOKENS,
                   command=summary["command"], dpo=asdict(config), rounds=2)
        policy.float()
    summary["policy"] = measure_policy(policy, reference, tokenizer, data, args.policy_samples, seed=7)
    summary["likelihood_judges"] = judge_samples({"SFT": reference, "DPO": policy}, tokenizer, test_requests(data),
                                                 {"SFT": data["samples"]["test"], "DPO": summary["policy"]["samples"]})
    write(summary, args.summary)


def run_reward_models(reference: GPT, tokenizer, data: dict, config: DPOConfig, args, summary: dict) -> None:
    """Two reward models on the same pairs, the usual one (the last token's head) and ours (also the worst token),
    and a policy tuned on the usual one's labels."""
    rm_config = DPOConfig(steps=args.reward_steps, batch_size=args.batch_size, learning_rate=args.reward_learning_rate,
                          progress=not args.quiet)
    for key, worst_token in (("reward_model_last_token", False), ("reward_model", True)):
        reward_model, summary[key] = run_reward_model(reference, tokenizer, data, rm_config, worst_token)
        print(json.dumps({key: (torch.tensor(summary[key]["test_chosen"]) > torch.tensor(summary[key]["test_rejected"])
                                ).float().mean().item()}), flush=True)
        write(summary, args.summary)
        if not worst_token:  # a policy tuned against this judge: DPO on the same pairs, labelled by it
            summary["judge_tuned"] = run_judge_tuned(reward_model, reference, tokenizer, data, config, args.policy_samples,
                                                     summary["policy_round1"]["samples"])
            write(summary, args.summary)


def on_policy_pairs(policy: GPT, tokenizer, data: dict, seed: int) -> dict[str, list[Pair]]:
    """Pairs as the shipped set makes them (`preferences.make_pairs`: r*-best and r*-worst of k stories, a
    reader's label), from `policy`'s own stories for the same train and val requests."""
    out = {}
    for split in ("train", "val"):
        requests = preferences.requests(split, data["sizes"][split])
        samples = preferences.sample_stories(policy, tokenizer, requests, data["samples_per_request"][split], seed)
        out[split] = preferences.make_pairs(requests, samples, seed + 1)
    return out


def judge_samples(models: dict[str, GPT], tokenizer, requests: Sequence[instructions.Example],
                  samples: dict[str, Sequence[Sequence[str]]]) -> dict:
    """`likelihood_judges` of each model on each source's samples: {model: {source: {judge: [score per sample]}}}."""
    return {name: {source: {judge: scores.tolist() for judge, scores in likelihood_judges(model, tokenizer, *flatten(requests, ys)).items()}
                   for source, ys in samples.items()} for name, model in models.items()}


def run_judge_tuned(judge: RewardModel, reference: GPT, tokenizer, data: dict, config: DPOConfig, samples_per_request: int,
                    reader_tuned_samples: Sequence[Sequence[str]]) -> dict:
    """DPO with the shipped recipe on the training pairs as `judge` labels them. The judge scores its test samples
    and those of the policy tuned on the readers' labels (r* scores both in the notebook)."""
    relabelled = {split: judged_pairs(pairs, *score_pairs(judge, tokenizer, pairs)) for split, pairs in training_pairs(data).items()}
    policy, run = run_dpo(reference, tokenizer, relabelled, config)
    run["policy"] = measure_policy(policy, reference, tokenizer, data, samples_per_request, seed=7)
    run["judge_scores"] = score_responses(judge, tokenizer, *flatten(test_requests(data), run["policy"]["samples"]), True).tolist()
    run["judge_scores_reader_tuned"] = score_responses(judge, tokenizer, *flatten(test_requests(data), reader_tuned_samples),
                                                       True).tolist()
    run["agrees_with_reader"] = sum(p.chosen == q.chosen for p, q in zip(relabelled["train"], data["pairs"]["train"]))
    run.pop("metrics")
    return run


def run_sweep(reference: GPT, tokenizer, data: dict, args, summary: dict) -> dict:
    """Shorter DPO runs at each β of --sweep, each measured like the shipped policy (the reward-KL frontier)."""
    summary["sweep"] = []
    for beta in [float(b) for b in args.sweep.split(",") if b]:
        sweep_config = DPOConfig(beta, args.sweep_steps, args.batch_size, args.learning_rate, progress=not args.quiet)
        swept, run = run_dpo(reference, tokenizer, training_pairs(data), sweep_config)
        run["policy"] = measure_policy(swept, reference, tokenizer, data, 1, seed=11)
        run.pop("metrics")
        summary["sweep"].append(run)
        print(json.dumps({"beta": beta, "val_loss": run["val_loss"]}), flush=True)
        write(summary, args.summary)
    return summary


def write(summary: dict, path) -> None:
    """Save what is measured so far (after every stage: a long build interrupted keeps its first results)."""
    if path:
        with gzip.open(path, "wt", encoding="utf-8") as f:
            json.dump(summary, f)


if __name__ == "__main__":
    main()
