"""GPT in the nanochat style: RoPE, parameter-free RMSNorm, QK-norm, ReLU^2 MLP, untied head.

RMSNorm is functional (no learnable gain), as in nanochat: it removes a parameter group
with no measurable benefit at this scale and keeps every hidden weight a 2-D Muon matrix.
Per-layer residual scalars (``resid_lambdas``, ``x0_lambdas``, as in autoresearch) are the
only 1-D parameters; they give ``scalar_lr`` something to act on.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _RMSNormCPU(torch.autograd.Function):
    """Hand-written RMSNorm backward: on CPU ``F.rms_norm`` is a composite of ~10 autograd ops."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, eps: float) -> Tensor:
        r = torch.rsqrt(x.square().mean(-1, keepdim=True).add_(eps))
        y = x * r
        ctx.save_for_backward(y, r)
        return y

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None]:
        y, r = ctx.saved_tensors
        m = (g * y).mean(-1, keepdim=True)
        return torch.addcmul(g, y, m, value=-1.0).mul_(r), None


class _ReluSquareCPU(torch.autograd.Function):
    """relu(x)^2 saving only relu(x); two elementwise ops in backward instead of four."""

    @staticmethod
    def forward(ctx: Any, x: Tensor) -> Tensor:
        r = torch.relu(x)
        ctx.save_for_backward(r)
        return r * r

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> Tensor:
        (r,) = ctx.saved_tensors
        return (g * r).mul_(2.0)


class _SoftcapCPU(torch.autograd.Function):
    """``cap * tanh(x / cap)`` saving only the tanh; backward is one ``tanh_backward``."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, cap: float) -> Tensor:
        t = torch.tanh(x * (1.0 / cap))
        ctx.save_for_backward(t)
        return t * cap

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None]:
        (t,) = ctx.saved_tensors
        return torch.ops.aten.tanh_backward(g, t), None


def softcap(x: Tensor, cap: float) -> Tensor:
    """Logit softcap ``cap * tanh(x / cap)`` (nanochat)."""
    if x.device.type == "cpu" and torch.is_grad_enabled():
        return _SoftcapCPU.apply(x, cap)
    return cap * torch.tanh(x / cap)


def rms_norm(x: Tensor) -> Tensor:
    """Parameter-free RMSNorm over the last dimension (fused kernel off CPU)."""
    if x.device.type == "cpu" and torch.is_grad_enabled():
        return _RMSNormCPU.apply(x, torch.finfo(x.dtype).eps)
    return F.rms_norm(x, (x.size(-1),))


def relu_square(x: Tensor) -> Tensor:
    """ReLU^2 activation."""
    if x.device.type == "cpu" and torch.is_grad_enabled():
        return _ReluSquareCPU.apply(x)
    return F.relu(x).square()


class _Rotary(torch.autograd.Function):
    """RoPE as ``y = x*C + swap(x)*S`` with a hand-written backward (fewer autograd nodes).

    ``swap`` exchanges the two halves of the last dimension and is its own transpose, so
    ``dx = g*C + swap(g*S)``.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, c: Tensor, s: Tensor) -> Tensor:
        ctx.save_for_backward(c, s)
        return torch.addcmul(x * c, _swap(x), s)

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None, None]:
        c, s = ctx.saved_tensors
        return (g * c).add_(_swap(g * s)), None, None


class _NormRotaryCPU(torch.autograd.Function):
    """QK-norm then RoPE in one node: ``y = rot(x) * rsqrt(mean(rot(x)^2) + eps)``.

    The rotation preserves the norm, so rotating first equals normalizing first; the backward
    is RMSNorm's on ``z = rot(x)`` followed by ``rot``'s transpose (see :class:`_Rotary`).
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, c: Tensor, s: Tensor, eps: float) -> Tensor:
        z = torch.addcmul(x * c, _swap(x), s)
        r = torch.rsqrt(z.square().mean(-1, keepdim=True).add_(eps))
        y = z.mul_(r)
        ctx.save_for_backward(y, r, c, s)
        return y

    @staticmethod
    def backward(ctx: Any, g: Tensor) -> tuple[Tensor, None, None, None]:
        y, r, c, s = ctx.saved_tensors
        m = (g * y).mean(-1, keepdim=True)
        gz = torch.addcmul(g, y, m, value=-1.0).mul_(r)
        return (gz * c).add_(_swap(gz * s)), None, None, None


def norm_rotary(x: Tensor, c: Tensor, s: Tensor) -> Tensor:
    """QK-norm followed by RoPE (one autograd node on CPU)."""
    c, s = c.to(x.dtype), s.to(x.dtype)
    if x.device.type == "cpu" and torch.is_grad_enabled():
        return _NormRotaryCPU.apply(x, c, s, torch.finfo(x.dtype).eps)
    return _Rotary.apply(rms_norm(x), c, s)


def _swap(x: Tensor) -> Tensor:
    d = x.shape[-1] // 2
    return torch.cat((x[..., d:], x[..., :d]), dim=-1)


def rotary_tables(seq_len: int, head_dim: int, base: float = 10000.0) -> tuple[Tensor, Tensor]:
    """``C = [cos, cos]`` and ``S = [sin, -sin]`` shaped (1, T, 1, 1, D) for half-split RoPE."""
    inv = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    ang = torch.outer(torch.arange(seq_len, dtype=torch.float32), inv)
    c = torch.cat((ang.cos(), ang.cos()), dim=-1)
    s = torch.cat((ang.sin(), -ang.sin()), dim=-1)
    return c[None, :, None, None, :], s[None, :, None, None, :]


class Attention(nn.Module):
    """Causal multi-head attention; q, k, v kept as separate matrices so Muon sees each."""

    def __init__(self, dim: int, n_heads: int, head_dim: int) -> None:
        super().__init__()
        self.n_heads, self.head_dim = n_heads, head_dim
        self.c_q = nn.Linear(dim, dim, bias=False)
        self.c_k = nn.Linear(dim, dim, bias=False)
        self.c_v = nn.Linear(dim, dim, bias=False)
        self.c_proj = nn.Linear(dim, dim, bias=False)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        B, T, C = x.shape
        # One matmul for q, k and v (fewer kernel launches); gradients still flow per matrix.
        w = torch.cat((self.c_q.weight, self.c_k.weight, self.c_v.weight))
        qk, v = F.linear(x, w).view(B, T, 3, self.n_heads, self.head_dim).split((2, 1), dim=2)
        # QK-norm and RoPE on q and k in one go (the norm commutes with the rotation).
        q, k = norm_rotary(qk, cos, sin).unbind(2)
        v = v.squeeze(2)
        q, k = q.to(v.dtype), k.to(v.dtype)  # autocast may run the norm in fp32; no-op on CPU
        y = F.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), is_causal=True
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

    def __init__(self, dim: int, n_heads: int, head_dim: int) -> None:
        super().__init__()
        self.attn = Attention(dim, n_heads, head_dim)
        self.mlp = MLP(dim)

    def forward(self, x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
        x = x + self.attn(rms_norm(x), cos, sin)
        return x + self.mlp(rms_norm(x))


class GPT(nn.Module):
    """Decoder-only language model returning the mean (or per-token) cross-entropy."""

    def __init__(
        self, vocab_size: int, dim: int, depth: int, n_heads: int, head_dim: int,
        seq_len: int, softcap: float = 15.0,
    ) -> None:
        super().__init__()
        self.vocab_size, self.dim, self.depth = vocab_size, dim, depth
        self.n_heads, self.head_dim, self.seq_len, self.softcap = n_heads, head_dim, seq_len, softcap
        self.wte = nn.Embedding(vocab_size, dim)
        self.blocks = nn.ModuleList(Block(dim, n_heads, head_dim) for _ in range(depth))
        self.lm_head = nn.Linear(dim, vocab_size, bias=False)
        self.resid_lambdas = nn.Parameter(torch.ones(depth))
        self.x0_lambdas = nn.Parameter(torch.zeros(depth))
        cos, sin = rotary_tables(seq_len, head_dim)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """nanochat init: unit-normal embedding, tiny head, uniform in-projections, zero out-projections."""
        nn.init.normal_(self.wte.weight, std=1.0)
        nn.init.normal_(self.lm_head.weight, std=0.001)
        bound = math.sqrt(3.0) * self.dim**-0.5
        for b in self.blocks:
            for lin in (b.attn.c_q, b.attn.c_k, b.attn.c_v, b.mlp.c_fc):
                nn.init.uniform_(lin.weight, -bound, bound)
            nn.init.zeros_(b.attn.c_proj.weight)
            nn.init.zeros_(b.mlp.c_proj.weight)
        self.resid_lambdas.fill_(1.0)
        self.x0_lambdas.fill_(0.1)

    def forward(self, idx: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
        return self.loss(self.trunk(self.wte(idx)), targets, reduction)

    def trunk(self, emb: Tensor) -> Tensor:
        """Token embeddings -> final normalized hidden states (every block)."""
        T = emb.size(1)
        cos, sin = self.cos[:, :T], self.sin[:, :T]
        x = x0 = rms_norm(emb)
        # unbind once: one autograd node for all layers' scalars instead of one select each
        lam_r, lam_0 = self.resid_lambdas.unbind(0), self.x0_lambdas.unbind(0)
        for block, lr, l0 in zip(self.blocks, lam_r, lam_0, strict=True):
            x = block(torch.addcmul(x * lr, x0, l0), cos, sin)
        return rms_norm(x)

    def loss(self, h: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
        """Head, softcap and cross-entropy (fp32 logits)."""
        logits = self.lm_head(h).float()
        if self.softcap > 0:
            logits = softcap(logits, self.softcap)
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.reshape(-1), reduction=reduction)

    def compiled(self) -> Callable[[Tensor, Tensor], Tensor]:
        """``torch.compile`` for training: the whole model on CUDA, the trunk alone on CPU.

        On CPU, inductor's kernels for the embedding backward (a serial scatter-add) and for
        the fused log-softmax/NLL (vectorized across rows, so strided) are slower than ATen's,
        so embedding and loss stay eager there: ~1.5 ms less per step at shape (a).
        Evaluation keeps calling the eager model, so it never triggers a recompile.
        """
        if self.wte.weight.device.type != "cpu":
            return torch.compile(self)
        trunk = torch.compile(self.trunk)
        return lambda idx, targets: self.loss(trunk(self.wte(idx)), targets)

    def num_params(self) -> int:
        """All trainable parameters."""
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self) -> float:
        """nanochat's estimate: 6 x non-embedding params + 12 x layers x heads x head_dim x seq_len."""
        n = self.num_params() - self.wte.weight.numel()
        return 6.0 * n + 12.0 * self.depth * self.n_heads * self.head_dim * self.seq_len
