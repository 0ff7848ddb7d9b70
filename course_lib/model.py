"""A small decoder-only Transformer (GPT), read top to bottom.

    idx [B, T] token ids
      -> token embedding + position embedding                     x [B, T, C]
      -> n_layer blocks: x = x + attn(ln(x)); x = x + mlp(ln(x))   (pre-norm)
      -> final layer norm -> output layer tied to the token embedding
      -> logits [B, T, V]: logits[b, t] scores the token that follows idx[b, :t+1]

Every language model of the course (the n-gram models of `course_lib.ngram` too) answers
`model(idx) -> logits`, so one evaluation function serves them all.

Attention comes in two versions that give the same numbers: `causal_self_attention` spells out the
scores, the mask, the softmax and the weighted sum; `F.scaled_dot_product_attention` is the fused kernel
a practitioner uses. `config.fast_attention` picks one.

A `KVCache` keeps the keys and values of the tokens already seen, so that sampling a token costs one
position instead of the whole context (see `course_lib.lm.generate`).

Sizes and costs (`count_parameters`, `flops_per_token`) are used again in chapters 5 and 8.
"""

from __future__ import annotations

import math
import pickle
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from course_lib.utils import asset_path


@dataclass
class GPTConfig:
    vocab_size: int = 1024  # the chapter-1 story tokenizer
    block_size: int = 256  # context length: the most tokens the model looks at
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128  # the width C; each head gets C // n_head dimensions
    fast_attention: bool = True  # fused scaled_dot_product_attention instead of the readable version

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head != 0:
            raise ValueError(
                f"GPTConfig: n_head={self.n_head} does not divide n_embd={self.n_embd}; "
                f"each head gets n_embd // n_head dimensions, so pick e.g. n_head in {divisors(self.n_embd)}")

    @property
    def head_size(self) -> int:
        return self.n_embd // self.n_head


def divisors(n: int) -> list[int]:
    return [d for d in range(1, min(n, 64) + 1) if n % d == 0]


# ----------------------------------------------------------------------------------------------------
# Attention


def causal_self_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Attention where each query sees only its own and earlier positions, written out step by step.

    q: [B, H, Tq, D]; k, v: [B, H, Tk, D] with Tk >= Tq. The queries are the *last* Tq positions of the
    Tk keys (Tq < Tk when earlier keys come from a KV cache). Returns [B, H, Tq, D].
    """
    Tq, Tk, D = q.size(-2), k.size(-2), q.size(-1)
    scores = q @ k.transpose(-2, -1) / math.sqrt(D)  # [B, H, Tq, Tk]: how well query i matches key j
    # Query i sits at position Tk - Tq + i, so it may look at keys j <= Tk - Tq + i.
    allowed = torch.ones(Tq, Tk, dtype=torch.bool, device=q.device).tril(diagonal=Tk - Tq)
    scores = scores.masked_fill(~allowed, float("-inf"))  # exp(-inf) = 0: the future gets no weight
    weights = torch.softmax(scores, dim=-1)  # each row sums to 1
    return weights @ v  # [B, H, Tq, D]: a weighted average of the values


def fast_causal_self_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """The same as `causal_self_attention`, through PyTorch's fused kernel (flash/memory-efficient)."""
    Tq, Tk = q.size(-2), k.size(-2)
    if Tq == Tk:
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    if Tq == 1:  # one new token sees everything before it: no mask needed
        return F.scaled_dot_product_attention(q, k, v)
    # is_causal aligns the mask top-left, but our queries are the last Tq keys: give the mask explicitly
    allowed = torch.ones(Tq, Tk, dtype=torch.bool, device=q.device).tril(diagonal=Tk - Tq)
    return F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)


class KVCache:
    """The keys and values of every token seen so far, one pair per layer: [B, H, T_seen, D] each."""

    def __init__(self, n_layer: int):
        self.keys: list[torch.Tensor | None] = [None] * n_layer
        self.values: list[torch.Tensor | None] = [None] * n_layer

    @property
    def length(self) -> int:
        return 0 if self.keys[0] is None else self.keys[0].size(2)

    def update(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Append this step's keys and values for `layer`; return all of them."""
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=2)
            v = torch.cat([self.values[layer], v], dim=2)
        self.keys[layer], self.values[layer] = k, v
        return k, v


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig, layer: int = 0):
        super().__init__()
        self.n_head, self.layer = config.n_head, layer
        self.fast = config.fast_attention
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd)  # queries, keys and values of all heads at once
        self.proj = nn.Linear(config.n_embd, config.n_embd)  # mixes the heads' outputs back into the stream

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """x: [B, T, C] -> [B, T, C]."""
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        # [B, T, C] -> [B, H, T, D]: each head attends on its own slice of the width
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        if cache is not None:
            k, v = cache.update(self.layer, k, v)
        attend = fast_causal_self_attention if self.fast else causal_self_attention
        y = attend(q, k, v)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # heads side by side again
        return self.proj(y)


# ----------------------------------------------------------------------------------------------------
# The block and the model


class MLP(nn.Module):
    """Position-wise feed-forward network: widen 4x, GELU, project back."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.proj = nn.Linear(4 * config.n_embd, config.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x)))


class Block(nn.Module):
    """Pre-norm residual block: tokens talk to each other (attention), then each thinks alone (MLP)."""

    def __init__(self, config: GPTConfig, layer: int = 0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config, layer)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x), cache)
        x = x + self.mlp(self.ln_2(x))
        return x


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embedding
        self.wpe = nn.Embedding(config.block_size, config.n_embd)  # position embedding
        self.blocks = nn.ModuleList([Block(config, layer) for layer in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # tied: reading a token and writing it share one table
        self.apply(self._init_weights)
        # GPT-2: scale the layers that write into the residual stream so its variance does not grow with depth
        for name, param in self.named_parameters():
            if name.endswith("proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor, cache: KVCache | None = None) -> torch.Tensor:
        """idx: LongTensor [B, T] -> logits [B, T, V] (logits[b, t] predicts the token after idx[b, t]).

        With a `cache`, idx holds only the new tokens; they continue the tokens already in the cache.
        """
        if idx.dim() != 2:
            raise ValueError(f"GPT expects token ids of shape [B, T], got shape {tuple(idx.shape)}")
        if idx.dtype not in (torch.long, torch.int32, torch.int64):
            raise TypeError(f"GPT expects integer token ids, got dtype {idx.dtype}")
        start = 0 if cache is None else cache.length
        T = idx.size(1)
        if start + T > self.config.block_size:
            raise ValueError(
                f"input of {start + T} tokens exceeds the model's context of block_size={self.config.block_size} "
                f"tokens; crop it to the last {self.config.block_size} tokens (or evaluate with a sliding window)")
        positions = torch.arange(start, start + T, device=idx.device)
        x = self.wte(idx) + self.wpe(positions)  # [B, T, C]
        for block in self.blocks:
            x = block(x, cache)
        return self.lm_head(self.ln_f(x))  # [B, T, V]

    def new_cache(self) -> KVCache:
        return KVCache(self.config.n_layer)


def language_model_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy (nats per token) of logits [B, T, V] against the next tokens targets [B, T]."""
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1))


# ----------------------------------------------------------------------------------------------------
# Size and cost


def count_parameters(model_or_config: GPT | GPTConfig, non_embedding: bool = False) -> int:
    """Number of parameters (the tied output layer counted once).

    `non_embedding=True` leaves out the token and position embeddings: the N of Kaplan et al. (2020).
    """
    model = model_or_config if isinstance(model_or_config, GPT) else None
    config = model.config if model is not None else model_or_config
    if model is not None:
        total = sum(p.numel() for p in model.parameters())  # parameters() yields a tied tensor once
    else:
        C, L = config.n_embd, config.n_layer
        per_block = 2 * 2 * C + (3 * C * C + 3 * C) + (C * C + C) + (4 * C * C + 4 * C) + (4 * C * C + C)
        total = (config.vocab_size + config.block_size) * C + L * per_block + 2 * C
    if non_embedding:
        total -= (config.vocab_size + config.block_size) * config.n_embd
    return total


def flops_per_token(config: GPTConfig, training: bool = True, context: int | None = None) -> int:
    """Matmul FLOPs for one token at full context (PaLM, Chowdhery et al. 2022, appendix B).

    Forward: 2 FLOPs per weight of every matmul (the blocks' 12 C^2 per layer and the output layer's V C)
    plus 4 L T C for attention (scores q.k and the weighted sum of values, counted without the causal
    saving). Training (forward + backward) costs 3x the forward: 6 N + 12 L T C.
    """
    C, L = config.n_embd, config.n_layer
    T = config.block_size if context is None else context
    matmul_weights = L * 12 * C * C + config.vocab_size * C
    forward = 2 * matmul_weights + 4 * L * T * C
    return 3 * forward if training else forward


# ----------------------------------------------------------------------------------------------------
# Saving and loading weights (training checkpoints, with optimizer state, live in course_lib.training)


def save_model(model: GPT, path: str | Path, **metadata) -> None:
    """Save the config and weights (plus any metadata: tokenizer, tokens seen, losses...)."""
    torch.save({"config": asdict(model.config), "model": model.state_dict(), "metadata": metadata}, path)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> GPT:
    """A model saved by `save_model` (or a training checkpoint), in eval mode; `.metadata` holds the rest."""
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as error:  # not a torch file, or a truncated one
        raise ValueError(f"{path} is not a course model file: torch.load failed ({type(error).__name__})") from error
    if not isinstance(state, dict) or "config" not in state or "model" not in state:
        raise ValueError(f"{path} is not a course model file (expected the keys 'config' and 'model')")
    model = GPT(GPTConfig(**state["config"])).to(device)
    model.load_state_dict(state["model"])
    model.metadata = state.get("metadata", {})
    return model.eval()


STORY_MODEL = "story_gpt.pt"


def load_story_model(device: str | torch.device = "cpu") -> GPT:
    """The small pretrained story model shipped in assets/ (rebuild: `python -m course_lib build-assets story_gpt`)."""
    return load_model(asset_path(STORY_MODEL), device)
