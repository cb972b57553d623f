"""Optimizer pieces: batched Muon equals torch.optim.Muon; progress-based schedules."""

from __future__ import annotations

import pytest
import torch

from runner import optim
from runner.muon import Muon, batched_newton_schulz


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float32])
def test_batched_muon_matches_upstream(dtype: torch.dtype) -> None:
    gen = torch.Generator().manual_seed(0)
    shapes = [(16, 16), (16, 16), (64, 16), (16, 64), (64, 16)]
    ours = [torch.nn.Parameter(torch.randn(s, generator=gen)) for s in shapes]
    ref = [torch.nn.Parameter(p.detach().clone()) for p in ours]
    kw = {"lr": 0.02, "weight_decay": 0.1, "momentum": 0.9, "nesterov": True}
    a, b = Muon(ours, ns_dtype=dtype, **kw), torch.optim.Muon(ref, **kw)
    assert isinstance(a, torch.optim.Muon)
    for _ in range(3):
        grads = [torch.randn(s, generator=gen) for s in shapes]
        for p, q, g in zip(ours, ref, grads, strict=True):
            p.grad, q.grad = g.clone(), g.clone()
        a.step()
        b.step()
    tol = 2e-2 if dtype == torch.float32 else 1e-2  # upstream orthogonalizes in bf16
    for p, q in zip(ours, ref, strict=True):
        assert torch.allclose(p, q, atol=tol * 0.02 * 3, rtol=0), (p - q).abs().max()
        assert torch.equal(a.state[p]["momentum_buffer"], b.state[q]["momentum_buffer"])


def test_gram_newton_schulz_equals_direct_iteration() -> None:
    gen = torch.Generator().manual_seed(1)
    coeffs = (3.4445, -4.775, 2.0315)
    for shape in [(3, 16, 64), (2, 64, 16), (2, 8, 40)]:
        g = torch.randn(shape, generator=gen, dtype=torch.float64)
        direct = batched_newton_schulz(g, coeffs, 5, 1e-7, torch.float64, gram=False)
        gram = batched_newton_schulz(g, coeffs, 5, 1e-7, torch.float64, gram=True)
        assert torch.allclose(gram, direct, atol=1e-10, rtol=0)
        fp32 = batched_newton_schulz(g.float(), coeffs, 5, 1e-7, torch.float32)  # gram by default
        assert torch.allclose(fp32.double(), direct, atol=1e-5, rtol=0)


def test_lr_schedule_shape() -> None:
    cfg = {"warmup_ratio": 0.1, "warmdown_ratio": 0.5, "final_lr_frac": 0.1, "weight_decay": 0.2}
    m = optim.lr_multiplier
    assert m(0.0, cfg) == 0.0 and m(0.05, cfg) == pytest.approx(0.5)
    assert m(0.1, cfg) == 1.0 and m(0.5, cfg) == 1.0
    assert m(0.75, cfg) == pytest.approx(0.55) and m(1.0, cfg) == pytest.approx(0.1)
    assert m(2.0, cfg) == pytest.approx(0.1)
    assert optim.weight_decay(0.0, cfg) == 0.2 and optim.weight_decay(0.75, cfg) == pytest.approx(
        0.05
    )
    assert optim.lr_multiplier(0.0, {**cfg, "warmup_ratio": 0.0}) == 1.0
