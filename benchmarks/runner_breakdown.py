"""Where a runner step goes at shape (a), next to the nanoGPT-style loop: the CPU speed floor.

Prints one JSON object with per-step milliseconds (768 tokens: 12 x 64): forward+backward
(eager and compiled), the Muon and AdamW steps, and, from ``torch.profiler``, the time in
matrix products (``aten::mm``/``bmm``) and in attention. Matmuls and attention are the same
work in both models, so ``floor_ms`` (their sum plus Muon) bounds the runner's step time
from below however the elementwise work is fused. Usage:
``PYTHONPATH=. python benchmarks/runner_breakdown.py [--iters N] [--no-compile]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable

import torch
from torch.profiler import ProfilerActivity, profile

from benchmarks.runner_bench import SHAPE_A, NanoGPT
from runner import config, optim
from runner.model import GPT, GPTConfig

MATMUL_OPS = ("aten::mm", "aten::bmm", "aten::addmm", "aten::baddbmm")


def _ms_per_call(fn: Callable[[], object], iters: int) -> float:
    for _ in range(5):
        fn()
    t0 = time.perf_counter()
    for _ in range(iters):
        fn()
    return (time.perf_counter() - t0) / iters * 1e3


def _fwd_bwd(model: torch.nn.Module, loss_fn: Callable[[], torch.Tensor]) -> Callable[[], None]:
    """One training forward+backward as the loops run it (gradients reset to None first)."""

    def step() -> None:
        model.zero_grad(set_to_none=True)
        loss_fn().backward()

    return step


def _profiled_ms(fn: Callable[[], object], iters: int) -> dict[str, float]:
    """Self time per call in matrix products and in attention kernels."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(iters):
            fn()
    mm = attn = 0.0
    for ev in prof.key_averages():
        if ev.key in MATMUL_OPS:
            mm += ev.self_cpu_time_total
        elif "scaled_dot_product" in ev.key:
            attn += ev.self_cpu_time_total
    return {"matmul_ms": mm / iters / 1e3, "attention_ms": attn / iters / 1e3}


def main() -> None:
    """Measure and print the breakdown."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=60)
    ap.add_argument("--no-compile", action="store_true")
    args = ap.parse_args()
    torch.manual_seed(0)
    s = SHAPE_A
    B, T = s["device_batch_size"], s["seq_len"]
    cfg = config.resolve({**s, "total_batch_size": B * T})
    dim = config.shape(cfg).model_dim
    x, y = torch.randint(0, 256, (B, T)), torch.randint(0, 256, (B, T))

    model = GPT(GPTConfig.from_runner(cfg, 256, dim))
    adamw, muon = optim.build(model, cfg)
    model(x, y).backward()
    runner = {
        "fwd_bwd_ms": _ms_per_call(_fwd_bwd(model, lambda: model(x, y)), args.iters),
        "muon_step_ms": _ms_per_call(muon.step, args.iters),
        "adamw_step_ms": _ms_per_call(adamw.step, args.iters),
        **_profiled_ms(_fwd_bwd(model, lambda: model(x, y)), args.iters // 3),
    }
    if not args.no_compile:
        compiled = model.compiled()  # what the runner runs with compile: true
        compiled(x, y).backward()
        runner["fwd_bwd_compiled_ms"] = _ms_per_call(
            _fwd_bwd(model, lambda: compiled(x, y)), args.iters
        )

    nano = NanoGPT(256, dim, s["depth"], dim // s["head_dim"], T)
    nopt = torch.optim.AdamW(nano.parameters(), lr=1e-3)
    nano(x, y).backward()

    def nano_opt() -> None:
        torch.nn.utils.clip_grad_norm_(nano.parameters(), 1.0)
        nopt.step()

    baseline = {
        "fwd_bwd_ms": _ms_per_call(_fwd_bwd(nano, lambda: nano(x, y)), args.iters),
        "clip_adamw_step_ms": _ms_per_call(nano_opt, args.iters),
        **_profiled_ms(_fwd_bwd(nano, lambda: nano(x, y)), args.iters // 3),
    }
    baseline["step_ms"] = baseline["fwd_bwd_ms"] + baseline["clip_adamw_step_ms"]
    floor = runner["matmul_ms"] + runner["attention_ms"] + runner["muon_step_ms"]
    out = {
        "shape": s,
        "tokens_per_step": B * T,
        "threads": torch.get_num_threads(),
        "runner": runner,
        "nanogpt": baseline,
        "runner_floor_ms": floor,
        "best_possible_ratio_at_768_tokens": baseline["step_ms"] / floor,
    }
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
