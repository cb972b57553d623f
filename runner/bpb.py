"""Validation bits per byte: summed nats over targets / (ln 2 x their UTF-8 bytes)."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import torch
from torch import Tensor, nn

EVAL_BATCH_TOKENS = 16384  # fixed, so the result never depends on device_batch_size


@torch.inference_mode()
def val_bpb(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    token_bytes: Tensor | None,
    device: torch.device,
    autocast: Callable[[], contextlib.AbstractContextManager[object]] = contextlib.nullcontext,
    should_stop: Callable[[], bool] = lambda: False,
) -> tuple[float | None, int, int]:
    """Return (val_bpb, counted target tokens, their bytes); None if stopped early.

    Targets whose byte length is 0 (special tokens) are excluded from both sums, as in nanochat.
    """
    was_training = model.training
    model.eval()
    rows = max(1, EVAL_BATCH_TOKENS // x.size(1))
    nats = torch.zeros((), dtype=torch.float64, device=device)
    nbytes = torch.zeros((), dtype=torch.int64, device=device)
    ntok = torch.zeros((), dtype=torch.int64, device=device)
    tb = token_bytes.to(device) if token_bytes is not None else None
    try:
        for i in range(0, x.size(0), rows):
            if should_stop():
                return None, 0, 0
            xb, yb = x[i : i + rows].to(device), y[i : i + rows].to(device)
            with autocast():
                loss = model(xb, yb, reduction="none").double()
            if tb is None:
                nats += loss.sum()
                nbytes += yb.numel()
                ntok += yb.numel()
            else:
                b = tb[yb.reshape(-1)]
                keep = b > 0
                nats += loss[keep].sum()
                nbytes += b.sum()
                ntok += keep.sum()
    finally:
        model.train(was_training)
    total_bytes = int(nbytes.item())
    bpb = float(nats.item()) / (math.log(2) * total_bytes) if total_bytes else None
    return bpb, int(ntok.item()), total_bytes
