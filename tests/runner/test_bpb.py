"""val_bpb against hand computations."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from runner.bpb import val_bpb
from runner.data import eval_slice


class TableModel(nn.Module):
    """Logits are a fixed function of the current token: ``table[idx]``."""

    def __init__(self, table: Tensor) -> None:
        super().__init__()
        self.table = table

    def forward(self, idx: Tensor, targets: Tensor, reduction: str = "mean") -> Tensor:
        logits = self.table[idx]
        return F.cross_entropy(
            logits.view(-1, logits.size(-1)), targets.reshape(-1), reduction=reduction
        )


def test_uniform_logits_give_eight_bits_per_byte() -> None:
    x = torch.randint(0, 256, (5, 32))
    y = torch.randint(0, 256, (5, 32))
    bpb, ntok, nbytes = val_bpb(TableModel(torch.zeros(256, 256)), x, y, None, torch.device("cpu"))
    assert ntok == nbytes == 160
    assert abs(bpb - 8.0) < 1e-6


def test_matches_manual_softmax_cross_entropy() -> None:
    gen = torch.Generator().manual_seed(0)
    table = torch.randn(6, 6, generator=gen) * 3
    x = torch.tensor([[0, 1, 2, 3], [4, 5, 0, 1]])
    y = torch.tensor([[1, 2, 3, 4], [5, 0, 1, 2]])
    nats = 0.0
    for i, t in zip(x.flatten().tolist(), y.flatten().tolist(), strict=True):
        row = table[i].tolist()
        nats += -math.log(math.exp(row[t]) / sum(math.exp(v) for v in row))
    expected = nats / (math.log(2) * 8)
    bpb, _, nbytes = val_bpb(TableModel(table), x, y, None, torch.device("cpu"))
    assert nbytes == 8
    assert abs(bpb - expected) < 1e-6


def test_token_byte_table_weights_bytes_and_skips_zero_byte_tokens() -> None:
    table = torch.zeros(4, 4)  # uniform: ln 4 nats per counted target
    token_bytes = torch.tensor([0, 1, 2, 3])  # token 0 is a special token (0 bytes)
    x = torch.tensor([[0, 1, 2, 3]])
    y = torch.tensor([[1, 2, 3, 0]])
    bpb, ntok, nbytes = val_bpb(TableModel(table), x, y, token_bytes, torch.device("cpu"))
    assert ntok == 3 and nbytes == 6
    assert abs(bpb - 3 * math.log(4) / (math.log(2) * 6)) < 1e-6  # float32 losses


def test_eval_slice_is_fixed_and_independent_of_batch() -> None:
    import numpy as np

    val = np.arange(1000, dtype=np.uint16)
    x, y = eval_slice(val, 32, 320)
    assert x.shape == (10, 32) and torch.equal(y[:, :-1], x[:, 1:])
    assert int(x[0, 0]) == 0 and int(y[-1, -1]) == 320
    x2, _ = eval_slice(val, 32, 10**9)  # clamps to what the split holds
    assert x2.shape == (31, 32)
