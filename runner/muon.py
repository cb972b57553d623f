"""``torch.optim.Muon`` with its exact update rule, orthogonalizing same-shape matrices together.

Why a subclass: ``torch.optim.Muon`` runs Newton-Schulz one matrix at a time and always in
bf16. On a CPU, bf16 matmuls of these small sizes are ~2.4x slower than fp32 and the
per-matrix loop dominates the step (30 ms of a 65 ms step at depth 4, width 128). Here
matrices of equal shape (up to transposition) are stacked and iterated with batched matmuls,
in ``ns_dtype`` (bf16 on CUDA as upstream, fp32 on CPU); in fp32, wide stacks iterate on their
Gram matrix (:func:`_iterate_gram`, same polynomial, fewer FLOPs). Hyperparameters, state (``momentum_buffer``),
validation and the update (Nesterov lerp, NS coefficients, decoupled weight decay,
``adjust_lr_fn``) are upstream's; ``tests/runner`` checks it against ``torch.optim.Muon``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


def _iterate(x: Tensor, a: float, b: float, c: float, steps: int) -> Tensor:
    """Upstream's iteration ``X <- aX + (bA + cA^2)X`` with ``A = XX^T``, batched."""
    for _ in range(steps):
        gram = torch.bmm(x, x.mT)
        upd = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)
        x = torch.baddbmm(x, upd, x, beta=a)
    return x


def _iterate_gram(x: Tensor, a: float, b: float, c: float, steps: int) -> Tensor:
    """The same iteration carried on the small Gram matrix, for wide ``x`` (rows << cols).

    Every iterate is ``X_k = P_k X_0`` with ``Q_k = aI + bA_k + cA_k^2`` a polynomial in
    ``A_k = X_k X_k^T``, so ``P_{k+1} = Q_k P_k`` and ``A_{k+1} = Q_k A_k Q_k`` stay rows x rows:
    two rows x cols products in all instead of two per step (equal in exact arithmetic;
    ``tests/runner`` checks it against the direct iteration in fp32). Used in fp32 only.
    """
    gram = torch.bmm(x, x.mT)
    p: Tensor | None = None
    for k in range(steps):
        q = torch.baddbmm(gram, gram, gram, beta=b, alpha=c)
        q.diagonal(dim1=-2, dim2=-1).add_(a)
        p = q if p is None else torch.bmm(q, p)
        if k < steps - 1:
            gram = torch.bmm(q, torch.bmm(gram, q))
    return torch.bmm(p, x) if p is not None else x


def batched_newton_schulz(
    g: Tensor,
    coeffs: tuple[float, float, float],
    steps: int,
    eps: float,
    dtype: torch.dtype,
    gram: bool | None = None,
    overwrite: bool = False,
) -> Tensor:
    """Quintic Newton-Schulz orthogonalization of a stack (N, rows, cols), as upstream per matrix.

    ``gram`` (default: fp32 and cols >= 2 rows after putting the short side first) uses
    :func:`_iterate_gram`, which costs ~40 % fewer FLOPs at aspect 4 (the MLP matrices).
    ``overwrite`` lets the normalization scale ``g`` in place (a caller's scratch stack).
    """
    a, b, c = coeffs
    x = g.to(dtype)
    tall = g.size(-2) > g.size(-1)
    if tall:
        x = x.mT
    scale = x.norm(dim=(-2, -1), keepdim=True).clamp(min=eps)
    x = x.div_(scale) if overwrite or x is not g else x / scale
    if gram is None:
        gram = dtype == torch.float32 and x.size(-1) >= 2 * x.size(-2)
    x = _iterate_gram(x, a, b, c, steps) if gram else _iterate(x, a, b, c, steps)
    return x.mT if tall else x


def adjusted_lr(lr: float, fn: str | None, shape: torch.Size) -> float:
    """Upstream's per-shape lr adjustment (``original`` = sqrt(max(1, rows/cols)))."""
    rows, cols = shape[:2]
    if fn is None or fn == "original":
        return lr * math.sqrt(max(1.0, rows / cols))
    if fn == "match_rms_adamw":
        return lr * 0.2 * math.sqrt(max(rows, cols))
    return lr


class Muon(torch.optim.Muon):
    """Batched-Newton-Schulz Muon; ``ns_dtype`` picks the orthogonalization precision."""

    def __init__(self, params: Any, ns_dtype: torch.dtype = torch.bfloat16, **kwargs: Any) -> None:
        super().__init__(params, **kwargs)
        self.ns_dtype = ns_dtype

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:  # type: ignore[override]
        """One Muon step over every group."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            grads = [p.grad for p in params]
            bufs = []
            for p in params:
                state = self.state[p]
                if "momentum_buffer" not in state:
                    state["momentum_buffer"] = torch.zeros_like(
                        p.grad, memory_format=torch.preserve_format
                    )
                bufs.append(state["momentum_buffer"])
            lr, wd, mom = float(group["lr"]), float(group["weight_decay"]), float(group["momentum"])
            torch._foreach_lerp_(bufs, grads, 1 - mom)
            updates = torch._foreach_lerp(grads, bufs, mom) if group["nesterov"] else bufs
            # Bucket by shape with the short side first: a tall matrix is orthogonalized as
            # its transpose (as upstream), so (4d, d) and (d, 4d) share one batched call.
            buckets: dict[tuple[int, int], list[int]] = defaultdict(list)
            for i, p in enumerate(params):
                r, c = p.shape
                buckets[(min(r, c), max(r, c))].append(i)
            for idx in buckets.values():
                stack = torch.stack(
                    [
                        updates[i].mT if updates[i].size(0) > updates[i].size(1) else updates[i]
                        for i in idx
                    ]
                )
                ortho = batched_newton_schulz(
                    stack,
                    group["ns_coefficients"],
                    group["ns_steps"],
                    group["eps"],
                    self.ns_dtype,
                    overwrite=True,
                )
                ps = [params[i] for i in idx]
                if lr * wd:
                    torch._foreach_mul_(ps, 1 - lr * wd)
                outs = [
                    o.mT if p.size(0) > p.size(1) else o
                    for o, p in zip(ortho.to(ps[0].dtype).unbind(0), ps, strict=True)
                ]
                for shape in dict.fromkeys(p.shape for p in ps):  # lr adjustment is per shape
                    sel = [j for j, p in enumerate(ps) if p.shape == shape]
                    torch._foreach_add_(
                        [ps[j] for j in sel],
                        [outs[j] for j in sel],
                        alpha=-adjusted_lr(lr, group["adjust_lr_fn"], shape),
                    )
        return loss
