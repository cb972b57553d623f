"""Optimizers and progress-based schedules (autoresearch semantics).

Muon orthogonalizes updates of the 2-D hidden matrices (value-embedding gates included, as in
autoresearch); AdamW handles embeddings, head and scalars, each in its own group with its own
learning rate. Embedding and head learning rates are scaled by ``(model_dim/768)**-0.5`` as in
nanochat, so defaults transfer across widths.
"""

from __future__ import annotations

from typing import Any

import torch

from runner.model import GPT
from runner.muon import Muon

MUON_MOMENTUM = (0.85, 0.95)  # linearly warmed over the first MUON_MOMENTUM_STEPS steps
MUON_MOMENTUM_STEPS = 300


def build(model: GPT, cfg: dict[str, Any]) -> list[torch.optim.Optimizer]:
    """Return ``[adamw, muon]`` with per-group ``initial_lr`` recorded for the schedule."""
    scale = (model.dim / 768) ** -0.5
    matrices = [p for b in model.blocks for p in b.parameters()]
    assert all(p.ndim == 2 for p in matrices)
    adam_groups: list[dict[str, Any]] = [
        {"params": [model.wte.weight], "lr": cfg["embedding_lr"] * scale},
        # value embeddings train like the token embedding (autoresearch)
        {
            "params": [v.weight for v in model.value_embeds.values()],
            "lr": cfg["embedding_lr"] * scale,
        },
        {"params": [model.lm_head.weight], "lr": cfg["unembedding_lr"] * scale},
        # Scalars as in nanochat: unscaled by width, residual gains 100x gentler than x0 gains.
        {"params": [model.resid_lambdas], "lr": cfg["scalar_lr"] * 0.01},
        {"params": [model.x0_lambdas], "lr": cfg["scalar_lr"]},
    ]
    adam_groups = [g for g in adam_groups if g["params"]]
    b1, b2 = cfg["adam_betas"]
    fused = model.wte.weight.device.type in ("cpu", "cuda")
    adamw = torch.optim.AdamW(adam_groups, betas=(b1, b2), eps=1e-10, weight_decay=0.0, fused=fused)
    ns_dtype = torch.bfloat16 if model.wte.weight.device.type == "cuda" else torch.float32
    muon = Muon(
        matrices,
        ns_dtype=ns_dtype,
        lr=cfg["matrix_lr"],
        weight_decay=cfg["weight_decay"],
        momentum=MUON_MOMENTUM[1],
        nesterov=True,
        adjust_lr_fn="original",
    )
    opts: list[torch.optim.Optimizer] = [adamw, muon]
    for opt in opts:
        for g in opt.param_groups:
            g["initial_lr"] = g["lr"]
    return opts


def lr_multiplier(progress: float, cfg: dict[str, Any]) -> float:
    """Linear warmup to 1, flat, then linear warmdown to ``final_lr_frac`` at progress 1."""
    p = min(max(progress, 0.0), 1.0)
    wu, wd, final = cfg["warmup_ratio"], cfg["warmdown_ratio"], cfg["final_lr_frac"]
    if p < wu:
        return p / wu
    if wd <= 0 or p < 1.0 - wd:
        return 1.0
    frac = (1.0 - p) / wd
    return frac + (1.0 - frac) * final


def weight_decay(progress: float, cfg: dict[str, Any]) -> float:
    """Weight decay fades linearly to zero with progress (autoresearch)."""
    return cfg["weight_decay"] * (1.0 - min(max(progress, 0.0), 1.0))


def apply(
    opts: list[torch.optim.Optimizer], step: int, progress: float, cfg: dict[str, Any]
) -> float:
    """Set lr, weight decay and Muon momentum for this step; return the lr multiplier."""
    mult = lr_multiplier(progress, cfg)
    wd = weight_decay(progress, cfg)
    frac = min(step / MUON_MOMENTUM_STEPS, 1.0)
    momentum = (1 - frac) * MUON_MOMENTUM[0] + frac * MUON_MOMENTUM[1]
    for opt in opts:
        is_muon = isinstance(opt, torch.optim.Muon)
        for g in opt.param_groups:
            g["lr"] = g["initial_lr"] * mult
            if is_muon:
                g["weight_decay"] = wd
                g["momentum"] = momentum
    return mult
