"""GPT in the nanochat/autoresearch style: RoPE, parameter-free RMSNorm, QK-norm, ReLU^2 MLP,
untied head, optional sliding-window layers and value embeddings.

One code path: the same PyTorch operations run on every device (``torch.compile`` fuses them
where it is on); there are no device-specific autograd functions. ``benchmarks/runner_quality.py``
measured the hand-written CPU backward passes this replaced and they did not pay (docs/runner.md).

RMSNorm is functional (no learnable gain), as in nanochat: it removes a parameter group
with no measurable benefit at this scale and keeps every hidden weight a 2-D Muon matrix.
Per-layer residual scalars (``resid_lambdas``, ``x0_lambdas``, as in autoresearch) are the
only 1-D parameters; they give ``scalar_lr`` something to act on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

VE_GATE_CHANNELS = 32  # autoresearch: the value-embedding gate reads the first 32 channels


@dataclass(frozen=True)
class GPTConfig:
    """Everything the model's shape depends on (``n_heads = dim // head_dim``)."""

    vocab_size: int
    dim: int
    depth: int
    head_dim: int
    seq_len: int
    softcap: float = 15.0
    window_pattern: str = "L"
    value_embeds: bool = False

    @classmethod
    def from_runner(cls, cfg: dict[str, Any], vocab_size: int, dim: int) -> GPTConfig:
        """The model a resolved runner config describes (``dim`` from ``config.shape``)."""
        return cls(
            vocab_size=vocab_size,
            dim=dim,
            depth=cfg["depth"],
            head_dim=cfg["head_dim"],
            seq_len=cfg["seq_len"],
            softcap=cfg["logit_softcap"],
            window_pattern=cfg["window_pattern"],
            value_embeds=cfg["value_embeds"],
        )

    @property
    def n_heads(self) -> int:
        return self.dim // self.head_dim

    def window_sizes(self) -> list[int]:
        """Per layer, how many earlier positions a query sees (autoresearch's ``window_pattern``).

        The pattern is tiled over the layers; ``L`` is the full context (``seq_len``), ``S`` half
        of it (``seq_len // 2``); the last layer is always ``L``. As in flash-attention's
        ``window_size=(w, 0)``, position ``i`` attends to ``j`` with ``0 <= i - j <= w``.
        """
        sizes = {"L": self.seq_len, "S": self.seq_len // 2}
        out = [sizes[self.window_pattern[i % len(self.window_pattern)]] for i in range(self.depth)]
        out[-1] = self.seq_len
        return out

    def has_value_embed(self, layer: int) -> bool:
        """autoresearch's ``has_ve``: alternating layers, the last one always included."""
        return self.value_embeds and layer % 2 == (self.depth - 1) % 2


def norm(x: Tensor) -> Tensor:
    """Parameter-free RMSNorm over the last dimension (eps = the dtype's machine epsilon)."""
    return F.rms_norm(x, (x.size(-1),))


def softcap(x: Tensor, cap: float) -> Tensor:
    """Logit softcap ``cap * tanh(x / cap)`` (nanochat)."""
    return cap * torch.tanh(x / cap)


def relu_square(x: Tensor) -> Tensor:
    """ReLU^2 activation."""
    return F.relu(x).square()


def _swap(x: Tensor) -> Tensor:
    d = x.shape[-1] // 2
    return torch.cat((x[..., d:], x[..., :d]), dim=-1)


def rotary(x: Tensor, c: Tensor, s: Tensor) -> Tensor:
    """Half-split RoPE as ``x*C + swap(x)*S`` with the tables of :func:`rotary_tables`."""
    return torch.addcmul(x * c, _swap(x), s)


def rotary_tables(seq_len: int, head_dim: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """``C = [cos, cos]`` and ``S = [sin, -sin]`` shaped (1, T, 1, 1, D) for half-split RoPE."""
    inv = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    ang = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv)
    c = torch.cat((ang.cos(), ang.cos()), dim=-1)
    s = torch.cat((ang.sin(), -ang.sin()), dim=-1)
    return c[None, :, None, None, :], s[None, :, None, None, :]


def window_mask(seq_len: int, window: int) -> Tensor:
    """Boolean (T, T) mask, True where query ``i`` may attend key ``j``: ``0 <= i - j <= window``."""
    pos = torch.arange(seq_len)
    lag = pos[:, None] - pos[None, :]
    return (lag >= 0) & (lag <= window)


class Attention(nn.Module):
    """Causal multi-head attention; q, k, v kept as separate matrices so Muon sees each.

    With a value embedding (``ve``), autoresearch's value residual: ``v += 2 sigmoid(W x[:32]) * ve``
    per head, ``W`` initialised to zero (a gate of 1).
    """

    def __init__(self, dim: int, n_heads: int, head_dim: int, value_embed: bool) -> None:
        super().__init__()
        self.n_heads, self.head_dim = n_heads, head_dim
        self.c_q = nn.Linear(dim, dim, bias=False)
        self.c_k = nn.Linear(dim, dim, bias=False)
        self.c_v = nn.Linear(dim, dim, bias=False)
        self.c_proj = nn.Linear(dim, dim, bias=False)
        self.ve_channels = min(VE_GATE_CHANNELS, dim)
        self.ve_gate = nn.Linear(self.ve_channels, n_heads, bias=False) if value_embed else None

    def forward(
        self, x: Tensor, ve: Tensor | None, cos: Tensor, sin: Tensor, mask: Tensor | None
    ) -> Tensor:
        B, T, C = x.shape
        # One matmul for q, k and v (fewer kernel launches); gradients still flow per matrix.
        w = torch.cat((self.c_q.weight, self.c_k.weight, self.c_v.weight))
        qk, v = F.linear(x, w).view(B, T, 3, self.n_heads, self.head_dim).split((2, 1), dim=2)
        # RoPE then QK-norm, on q and k at once (autoresearch's order; rotation keeps the norm)
        q, k = norm(rotary(qk, cos.to(qk.dtype), sin.to(qk.dtype))).unbind(2)
        v = v.squeeze(2)
        if ve is not None and self.ve_gate is not None:
            gate = 2.0 * torch.sigmoid(self.ve_gate(x[..., : self.ve_channels]))
            v = v + (gate.unsqueeze(-1) * ve.view(B, T, self.n_heads, self.head_dim)).to(v.dtype)
        q, k = q.to(v.dtype), k.to(v.dtype)  # autocast runs the norm in fp32; no-op on CPU
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_mask=mask,
            is_causal=mask is None,
        )
        return self.c_proj(y.transpose(1, 2).reshape(B, T, C))


class MLP(nn.Module):
    """4x MLP with ReLU^2 (cheap, and better than GELU in nanochat's ablations)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.c_fc = nn.Linear(dim, 4 * dim, bias=False)
        self.c_proj = nn.Linear(4 * dim, dim, bias=False)

    def forward(self, x: Tensor) -> Tensor:
        return self.c_proj(relu_square(self.c_fc(x)))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, n_heads: int, head_dim: int, value_embed: bool) -> None:
        super().__init__()
        self.attn = Attention(dim, n_heads, head_dim, value_embed)
        self.mlp = MLP(dim)

    def forward(
        self, x: Tensor, ve: Tensor | None, cos: Tensor, sin: Tensor, mask: Tensor | None
    ) -> Tensor:
        x = x + self.attn(norm(x), ve, cos, sin, mask)
        return x + self.mlp(norm(x))


class GPT(nn.Module):
    """Decoder-only language model returning the mean (or per-token) cross-entropy."""

    cos: Tensor  # rotary tables (buffers registered in __init__)
    sin: Tensor

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        dim, depth = config.dim, config.depth
        self.dim, self.depth, self.softcap = dim, depth, config.softcap
        self.wte = nn.Embedding(config.vocab_size, dim)
        self.blocks = nn.ModuleList(
            Block(dim, config.n_heads, config.head_dim, config.has_value_embed(i))
            for i in range(depth)
        )
        # value embeddings by layer index (as strings: ModuleDict keys), autoresearch's layout
        self.value_embeds = nn.ModuleDict(
            {
                str(i): nn.Embedding(config.vocab_size, dim)
                for i in range(depth)
                if config.has_value_embed(i)
            }
        )
        self.lm_head = nn.Linear(dim, config.vocab_size, bias=False)
        self.resid_lambdas = nn.Parameter(torch.ones(depth))
        self.x0_lambdas = nn.Parameter(torch.zeros(depth))
        cos, sin = rotary_tables(config.seq_len, config.head_dim)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.windows = config.window_sizes()
        for w in sorted(set(self.windows)):
            if w < config.seq_len:
                self.register_buffer(f"mask_{w}", window_mask(config.seq_len, w), persistent=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """nanochat init: unit-normal embedding, tiny head, uniform in-projections and value
        embeddings, zero out-projections and value-embedding gates."""
        nn.init.normal_(self.wte.weight, std=1.0)
        nn.init.normal_(self.lm_head.weight, std=0.001)
        bound = math.sqrt(3.0) * self.dim**-0.5
        for b in cast("list[Block]", list(self.blocks)):
            for lin in (b.attn.c_q, b.attn.c_k, b.attn.c_v, b.mlp.c_fc):
                nn.init.uniform_(lin.weight, -bound, bound)
            nn.init.zeros_(b.attn.c_proj.weight)
            nn.init.zeros_(b.mlp.c_proj.weight)
            if b.attn.ve_gate is not None:
                nn.init.zeros_(b.attn.ve_gate.weight)
        for ve in self._value_embeds():
            nn.init.uniform_(ve.weight, -bound, bound)
        self.resid_lambdas.fill_(1.0)
        self.x0_lambdas.fill_(0.1)

    def _value_embeds(self) -> list[nn.Embedding]:
        return cast("list[nn.Embedding]", list(self.value_embeds.values()))

    def forward(self, idx: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
        return self.loss(self.trunk(*self.embed(idx)), targets, reduction)

    def embed(self, idx: Tensor) -> tuple[Tensor, list[Tensor | None]]:
        """Token embeddings and each layer's value embedding (None where a layer has none)."""
        ves = [
            self.value_embeds[str(i)](idx) if str(i) in self.value_embeds else None
            for i in range(self.depth)
        ]
        return self.wte(idx), ves

    def _mask(self, layer: int, T: int) -> Tensor | None:
        w = self.windows[layer]
        if w >= T:
            return None  # plain causal attention (flash kernels on CUDA)
        return getattr(self, f"mask_{w}")[:T, :T]

    def trunk(self, emb: Tensor, ves: list[Tensor | None]) -> Tensor:
        """Embeddings -> final normalized hidden states (every block)."""
        T = emb.size(1)
        cos, sin = self.cos[:, :T], self.sin[:, :T]
        x = x0 = norm(emb)
        # unbind once: one autograd node for all layers' scalars instead of one select each
        lam_r, lam_0 = self.resid_lambdas.unbind(0), self.x0_lambdas.unbind(0)
        for i, (block, lr, l0) in enumerate(zip(self.blocks, lam_r, lam_0, strict=True)):
            x = block(torch.addcmul(x * lr, x0, l0), ves[i], cos, sin, self._mask(i, T))
        return norm(x)

    def loss(self, h: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
        """Head, softcap and cross-entropy (fp32 logits)."""
        logits = self.lm_head(h).float()
        if self.softcap > 0:
            logits = softcap(logits, self.softcap)
        return F.cross_entropy(
            logits.view(-1, logits.size(-1)), targets.reshape(-1), reduction=reduction
        )

    def compiled(self) -> Callable[[Tensor, Tensor], Tensor]:
        """``torch.compile`` for training: the whole model on CUDA, the trunk alone on CPU.

        On CPU, inductor's kernels for the embedding backward (a serial scatter-add) and for
        the fused log-softmax/NLL (vectorized across rows, so strided) are slower than ATen's,
        so embeddings and loss stay eager there: ~1.5 ms less per step at shape (a).
        Evaluation keeps calling the eager model, so it never triggers a recompile.
        """
        if self.wte.weight.device.type != "cpu":
            return torch.compile(self)
        trunk = torch.compile(self.trunk)
        return lambda idx, targets: self.loss(trunk(*self.embed(idx)), targets)

    def num_params(self) -> int:
        """All trainable parameters."""
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self) -> float:
        """nanochat's estimate: 6 x non-embedding params + 12 x heads x head_dim x context per layer.

        A layer's context is its attention window capped at ``seq_len`` (autoresearch); the
        embeddings (token and value) are lookups and are left out.
        """
        embeddings = self.wte.weight.numel() + sum(v.weight.numel() for v in self._value_embeds())
        c = self.config
        attention = sum(12.0 * c.n_heads * c.head_dim * min(w, c.seq_len) for w in self.windows)
        return 6.0 * (self.num_params() - embeddings) + attention
