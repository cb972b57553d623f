"""CPU throughput benchmark of the builtin runner against a nanoGPT-style baseline.

The secondary figure: the headline is the quality reached in a fixed budget
(``benchmarks/runner_quality.py``). Prints one JSON object. For each shape it runs the real runner (``runner.train.run`` with
``--steps``, so the timing is the runner's own, warm-up steps excluded) and an inline
plain-PyTorch GPT of the same shape written the way nanoGPT's ``train.py`` runs on CPU
(fp32, no compile, LayerNorm, GELU, learned positions, tied head, AdamW, grad clip 1.0,
``loss.item()`` every step). The runner is timed twice: eager and with ``compile: true``
(inductor C++ kernels; its compile time is in ``warmup_seconds``, outside the timing).
Usage: ``python benchmarks/runner_bench.py [--steps N] [--no-compile]``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from runner import config
from runner.device import measure_cpu_fp32_peak
from runner.train import RunOptions, run

SHAPE_A = {"depth": 4, "aspect_ratio": 32, "head_dim": 32, "seq_len": 64, "device_batch_size": 12}
SHAPE_B = {"depth": 2, "aspect_ratio": 32, "head_dim": 32, "seq_len": 64, "device_batch_size": 12}
SHAPE_A16 = {**SHAPE_A, "device_batch_size": 16}
# (shape, micro-batches per optimizer step): "a" and "b" step every 768 tokens like nanoGPT's
# CPU example; "a_accum4" steps every 3072 tokens and "a_8k" every 8192 tokens (16 x 64 x 8),
# in both loops, amortizing the optimizer as a realistic total_batch_size does.
CASES = {"a": (SHAPE_A, 1), "a_accum4": (SHAPE_A, 4), "a_8k": (SHAPE_A16, 8), "b": (SHAPE_B, 1)}


class _NanoBlock(nn.Module):
    def __init__(self, c: int, h: int) -> None:
        super().__init__()
        self.h = h
        self.ln_1, self.ln_2 = nn.LayerNorm(c, bias=False), nn.LayerNorm(c, bias=False)
        self.c_attn, self.attn_proj = nn.Linear(c, 3 * c, bias=False), nn.Linear(c, c, bias=False)
        self.c_fc, self.mlp_proj = nn.Linear(c, 4 * c, bias=False), nn.Linear(4 * c, c, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.h, C // self.h).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.attn_proj(y.transpose(1, 2).contiguous().view(B, T, C))
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class NanoGPT(nn.Module):
    """nanoGPT's model (bias=False, dropout 0), trimmed to what the timing needs."""

    def __init__(self, vocab: int, c: int, layers: int, heads: int, block: int) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, c), nn.Embedding(block, c)
        self.blocks = nn.ModuleList(_NanoBlock(c, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(c, bias=False)
        self.lm_head = nn.Linear(c, vocab, bias=False)
        self.wte.weight = self.lm_head.weight
        for name, p in self.named_parameters():
            std = 0.02 / math.sqrt(2 * layers) if name.endswith("proj.weight") else 0.02
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, std)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor, reduction: str = "mean"
    ) -> torch.Tensor:
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1), device=idx.device))
        for b in self.blocks:
            x = b(x)
        logits = self.lm_head(self.ln_f(x))
        return F.cross_entropy(
            logits.view(-1, logits.size(-1)), targets.reshape(-1), reduction=reduction
        )


def nanogpt_tokens_per_s(
    shape: dict[str, int], steps: int, accum: int = 1, warmup: int = 3
) -> float:
    """Tokens/s of nanoGPT's CPU loop at ``shape`` (timing excludes ``warmup`` steps)."""
    torch.manual_seed(0)
    c = math.ceil(shape["depth"] * shape["aspect_ratio"] / shape["head_dim"]) * shape["head_dim"]
    B, T = shape["device_batch_size"], shape["seq_len"]
    model = NanoGPT(256, c, shape["depth"], c // shape["head_dim"], T)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": other, "weight_decay": 0.0}],
        lr=1e-3,
        betas=(0.9, 0.99),
    )
    data = torch.randint(0, 256, (200_000,), dtype=torch.long)
    t_start = 0.0
    for i in range(warmup + steps):
        if i == warmup:
            t_start = time.perf_counter()
        for _ in range(accum):
            ix = torch.randint(len(data) - T - 1, (B,))
            x = torch.stack([data[j : j + T] for j in ix])
            y = torch.stack([data[j + 1 : j + 1 + T] for j in ix])
            loss = model(x, y) / accum
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss.item()
    return steps * accum * B * T / (time.perf_counter() - t_start)


def runner_stats(
    shape: dict[str, int],
    steps: int,
    accum: int,
    data: Path,
    workdir: Path,
    compile_model: bool = False,
) -> dict[str, float | None]:
    """Run the real runner for ``steps`` steps and read its own throughput numbers.

    ``warmup_seconds`` (the excluded first steps) holds the compile time when compiling.
    """
    tbs = accum * shape["device_batch_size"] * shape["seq_len"]
    cfg = config.resolve(
        {**shape, "total_batch_size": tbs, "eval_tokens": 2048, "compile": compile_model}
    )
    log = workdir / "bench.jsonl"
    s = run(
        RunOptions(
            cfg=cfg, budget_s=3600.0, seed=0, log=log, steps=steps + 3, device="cpu", data=str(data)
        )
    )
    return {
        "tokens_per_s": s["tokens_per_s"],
        "mfu": s["mfu"],
        "num_params": s["num_params"],
        "log_overhead": s["log_seconds"] / s["total_seconds"],
        "log_seconds": s["log_seconds"],
        "warmup_seconds": s["warmup_seconds"],
    }


def main() -> None:
    """Run both shapes, print one JSON object."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument(
        "--no-compile",
        action="store_true",
        help="skip the runner with compile: true (needs a C++ compiler on CPU)",
    )
    args = ap.parse_args()
    out: dict[str, object] = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_fp32_peak_flops": measure_cpu_fp32_peak(),
        "steps": args.steps,
    }
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "bench.txt"
        gen = torch.Generator().manual_seed(0)
        data.write_bytes(bytes(torch.randint(32, 127, (400_000,), generator=gen).tolist()))
        for name, (shape, accum) in CASES.items():
            steps = max(10, args.steps // accum)
            r = runner_stats(shape, steps, accum, data, Path(tmp))
            base = nanogpt_tokens_per_s(shape, steps, accum)
            tokens_per_step = accum * shape["device_batch_size"] * shape["seq_len"]
            case: dict[str, object] = {
                "shape": shape,
                "tokens_per_step": tokens_per_step,
                "steps": steps,
                "runner": r,
                "nanogpt_tokens_per_s": base,
                "speedup_vs_nanogpt": (r["tokens_per_s"] or 0.0) / base,
            }
            if not args.no_compile:
                rc = runner_stats(shape, steps, accum, data, Path(tmp), compile_model=True)
                case["runner_compiled"] = rc
                case["speedup_compiled_vs_nanogpt"] = (rc["tokens_per_s"] or 0.0) / base
            out[name] = case
    json.dump(out, sys.stdout, indent=1)
    print()


if __name__ == "__main__":
    main()
