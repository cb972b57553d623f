"""val_bpb reached in equal training seconds: the builtin runner against a nanoGPT-style loop.

The headline CPU figure of a fixed-time-budget trainer is the quality it reaches in its budget.
For each budget (default 60, 120 and 300 s of training), this script trains

* the builtin runner (``python -m runner``, the real CLI, a subprocess per run), and
* a minimal nanoGPT-style char-level loop (nanoGPT's model and its ``train.py`` recipe: AdamW,
  warmup then cosine decay, grad clip 1.0, fp32, no compile; one subprocess per run),

on the same bytes (the runner's train split of ``--data``), and evaluates both on the same
validation bytes with the same function (``runner.bpb.val_bpb`` over the first
``--eval-tokens`` targets of the runner's validation split, in windows of each model's
context length). Only training-step time counts for both, the first 3 steps excluded (the
runner's rule). Each trainer runs a few documented settings (``RUNNER_SETTINGS``,
``NANOGPT_SETTINGS``); at the selection budget (``--select-at``, default the shortest) the best
setting per trainer is chosen by mean val_bpb over ``--seeds`` and carried to the longer budgets
(``--select-at all`` runs every setting at every budget).

``--runner-ref REF`` (repeatable) also runs the runner as it was at git revision REF (extracted
with ``git archive`` into a temporary folder), so two versions of the runner can be compared by
quality-at-budget; ``--no-nanogpt`` skips the baseline. Runs are interleaved by seed and budget
so that load from other processes spreads over every trainer; ``--parallel`` runs the trainers
of each comparison at once instead (``--parallel trainers``: side by side, each with
``--threads``; on a machine other processes load, the fairest comparison; ``--parallel all``
also runs the settings together, for comparing settings at equal CPU share); each run records the 1-minute load average before it
started.

Prints one JSON object: ``runs`` (every run), ``best`` (per budget and trainer: the setting,
mean/min/max val_bpb and tokens/s over seeds) and ``ratios`` (per budget: runner val_bpb /
nanoGPT val_bpb, < 1 means the runner reached a better model). Usage:
``PYTHONPATH=. python benchmarks/runner_quality.py [--budgets 60,120,300] [--seeds 0,1]
[--data data/corpus] [--threads 2] [--settings-file FILE]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
EVAL_TOKENS = 262144  # a multiple of every context length below: both models see the same targets
EXCLUDED_STEPS = 3  # the runner's rule, applied to both

SHAPE_A = {"depth": 4, "aspect_ratio": 32, "head_dim": 32, "seq_len": 64, "device_batch_size": 12}
DEMO = {
    "depth": 3,
    "aspect_ratio": 48,
    "head_dim": 32,
    "seq_len": 64,
    "device_batch_size": 16,
    "total_batch_size": 2048,
    "weight_decay": 0.0,
    "warmdown_ratio": 0.4,
}  # campaigns/demo.toml
# The runner's settings: shape (a) stepping every 768 and every 3072 tokens, and the demo
# campaign's base recipe; compiled (the fastest CPU setting for budgets of minutes).
RUNNER_SETTINGS: dict[str, dict[str, Any]] = {
    "a-768-compiled": {**SHAPE_A, "total_batch_size": 768, "compile": True},
    "a-3072-compiled": {**SHAPE_A, "total_batch_size": 3072, "compile": True},
    "demo-compiled": {**DEMO, "compile": True},
}
# nanoGPT's README CPU example (4 layers x 128, 4 heads, block 64, batch 12, dropout 0) with its
# shakespeare_char recipe (lr 1e-3, min_lr lr/10, 100 warmup iterations, beta2 0.99, weight
# decay 0.1, grad clip 1.0), and two variations: a higher learning rate, and a larger batch.
NANO_BASE = {
    "n_layer": 4,
    "n_head": 4,
    "n_embd": 128,
    "block_size": 64,
    "batch_size": 12,
    "learning_rate": 1e-3,
    "min_lr": 1e-4,
    "warmup_iters": 100,
    "beta2": 0.99,
    "weight_decay": 0.1,
    "grad_clip": 1.0,
}
NANOGPT_SETTINGS: dict[str, dict[str, Any]] = {
    "readme-cpu": dict(NANO_BASE),
    "readme-cpu-lr2e-3": {**NANO_BASE, "learning_rate": 2e-3, "min_lr": 2e-4},
    "batch24-lr2e-3": {**NANO_BASE, "batch_size": 24, "learning_rate": 2e-3, "min_lr": 2e-4},
}


def loadavg() -> float | None:
    """The 1-minute load average (None where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


# ----------------------------------------------------------------------------- nanoGPT side


def nanogpt_lr(setting: dict[str, Any], it: int, progress: float) -> float:
    """nanoGPT's ``get_lr`` with the cosine over the time budget instead of ``lr_decay_iters``."""
    lr, min_lr, warmup = setting["learning_rate"], setting["min_lr"], setting["warmup_iters"]
    if it < warmup:
        return lr * (it + 1) / (warmup + 1)
    coeff = 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
    return min_lr + coeff * (lr - min_lr)


def nanogpt_run(
    setting: dict[str, Any], budget_s: float, seed: int, data: str, threads: int, eval_tokens: int
) -> dict[str, Any]:
    """Train nanoGPT's model for ``budget_s`` seconds of step time; evaluate like the runner."""
    import numpy as np
    import torch

    from benchmarks.runner_bench import NanoGPT
    from runner import data as data_mod
    from runner.bpb import val_bpb

    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    block, batch = setting["block_size"], setting["batch_size"]
    ds = data_mod.load(data, block)
    train = ds.train
    model = NanoGPT(ds.vocab_size, setting["n_embd"], setting["n_layer"], setting["n_head"], block)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    other = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": setting["weight_decay"]},
            {"params": other, "weight_decay": 0.0},
        ],
        lr=setting["learning_rate"],
        betas=(0.9, setting["beta2"]),
    )
    gen = torch.Generator().manual_seed(seed)

    def get_batch() -> tuple[torch.Tensor, torch.Tensor]:  # nanoGPT's, from the runner's split
        ix = torch.randint(len(train) - block, (batch,), generator=gen)
        x = torch.stack([torch.from_numpy(train[i : i + block].astype(np.int64)) for i in ix])
        y = torch.stack(
            [torch.from_numpy(train[i + 1 : i + 1 + block].astype(np.int64)) for i in ix]
        )
        return x, y

    t_start = time.perf_counter()
    step, training_s, counted = 0, 0.0, 0
    while True:
        lr = nanogpt_lr(setting, step, training_s / budget_s)
        for group in opt.param_groups:
            group["lr"] = lr
        t0 = time.perf_counter()
        x, y = get_batch()
        loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), setting["grad_clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        loss_v = loss.item()
        dt = time.perf_counter() - t0
        step += 1
        if step > EXCLUDED_STEPS:
            training_s += dt
            counted += batch * block
            if training_s >= budget_s:
                break
        if not math.isfinite(loss_v):
            break
    x, y = data_mod.eval_slice(ds.val, block, eval_tokens)
    bpb, n_tok, _ = val_bpb(model, x, y, None, torch.device("cpu"))
    return {
        "val_bpb": bpb,
        "training_seconds": training_s,
        "num_steps": step,
        "tokens_per_s": counted / training_s if training_s else None,
        "eval_tokens": n_tok,
        "num_params": sum(p.numel() for p in model.parameters()),
        "total_seconds": time.perf_counter() - t_start,
        "last_loss": loss_v,
    }


# ----------------------------------------------------------------------------- runner side


def runner_tree(ref: str | None, tmp: Path) -> Path:
    """The folder whose ``runner/`` package to run: this checkout, or REF extracted."""
    if ref is None:
        return REPO
    dest = tmp / f"ref-{ref.replace('/', '_')}"
    dest.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(REPO), "archive", ref, "runner"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive, check=True)
    return dest


def runner_run(
    tree: Path,
    setting: dict[str, Any],
    budget_s: float,
    seed: int,
    data: str,
    threads: int,
    eval_tokens: int,
    tmp: Path,
) -> dict[str, Any]:
    """One ``python -m runner`` run; its summary and header facts."""
    cfg = tmp / "runner-config.json"
    cfg.write_text(json.dumps({**setting, "eval_tokens": eval_tokens}))
    log = tmp / "runner.jsonl"
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "--config",
            str(cfg),
            "--budget",
            f"{budget_s:g}s",
            "--seed",
            str(seed),
            "--log",
            str(log),
            "--data",
            data,
            "--device",
            "cpu",
            "--threads",
            str(threads),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(tmp),
    )
    if proc.returncode != 0:
        raise RuntimeError(f"runner failed: {proc.stderr.strip().splitlines()[-1:]}")
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    header, summary = lines[0], lines[-1]
    evals = [x for x in lines if x["type"] == "eval"]
    return {
        "val_bpb": summary["val_bpb"],
        "training_seconds": summary["training_seconds"],
        "num_steps": summary["num_steps"],
        "tokens_per_s": summary["tokens_per_s"],
        "eval_tokens": evals[0]["eval_tokens"] if evals else None,
        "num_params": summary["num_params"],
        "total_seconds": summary["total_seconds"],
        "warmup_seconds": summary["warmup_seconds"],
        "status": summary["status"],
        "code_sha256": header["code_sha256"],
    }


# ----------------------------------------------------------------------------- orchestration


def _stats(values: list[float]) -> dict[str, float]:
    return {"mean": sum(values) / len(values), "min": min(values), "max": max(values)}


def summarize(runs: list[dict[str, Any]], budgets: list[float]) -> tuple[dict, dict]:
    """Per budget and trainer, the best setting (lowest mean val_bpb); runner/nanoGPT ratios."""
    best: dict[str, dict[str, Any]] = {}
    ratios: dict[str, dict[str, float]] = {}
    for budget in budgets:
        per: dict[str, Any] = {}
        groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for r in runs:
            if r["budget_s"] == budget and r["val_bpb"] is not None:
                groups.setdefault((r["trainer"], r["setting"]), []).append(r)
        for (trainer, setting), rs in groups.items():
            bpb = _stats([r["val_bpb"] for r in rs])
            if trainer not in per or bpb["mean"] < per[trainer]["val_bpb"]["mean"]:
                per[trainer] = {
                    "setting": setting,
                    "seeds": len(rs),
                    "val_bpb": bpb,
                    "tokens_per_s": _stats([r["tokens_per_s"] for r in rs]),
                    "num_steps": _stats([r["num_steps"] for r in rs]),
                }
        key = f"{budget:g}"
        best[key] = per
        if "nanogpt" in per:
            base = per["nanogpt"]
            ratios[key] = {
                t: v["val_bpb"]["mean"] / base["val_bpb"]["mean"]
                for t, v in per.items()
                if t != "nanogpt"
            }
            ratios[key].update(
                {
                    f"{t}:tokens_per_s": v["tokens_per_s"]["mean"] / base["tokens_per_s"]["mean"]
                    for t, v in per.items()
                    if t != "nanogpt"
                }
            )
    return best, ratios


def main() -> None:
    """Run the comparison and print one JSON object."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--budgets", default="60,120,300", help="training seconds, comma-separated")
    ap.add_argument("--seeds", default="0", help="seeds, comma-separated (repeats)")
    ap.add_argument("--data", default=str(REPO / "data" / "corpus"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--eval-tokens", type=int, default=EVAL_TOKENS)
    ap.add_argument(
        "--select-at",
        default=None,
        help="budget where settings are screened (default the shortest), or 'all'",
    )
    ap.add_argument(
        "--runner-ref",
        action="append",
        default=[],
        help="also run the runner as of this git revision (repeatable)",
    )
    ap.add_argument("--no-head", action="store_true", help="skip the runner of this checkout")
    ap.add_argument(
        "--parallel",
        choices=["none", "trainers", "all"],
        default="none",
        help="side by side (at once, each with --threads), so that load from other "
        "processes hits them alike: 'trainers' runs each setting's trainers "
        "together, 'all' every trainer and setting of a budget and seed",
    )
    ap.add_argument("--no-nanogpt", action="store_true", help="skip the nanoGPT-style loop")
    ap.add_argument(
        "--settings-file",
        default=None,
        help='JSON {"runner": {name: config}, "nanogpt": {name: setting}} replacing the defaults',
    )
    ap.add_argument("--worker-nanogpt", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    args.data = str(Path(args.data).resolve())
    budgets = [float(b) for b in args.budgets.split(",")]
    seeds = [int(s) for s in args.seeds.split(",")]
    if args.worker_nanogpt is not None:  # one nanoGPT run in a fresh process
        setting = json.loads(args.worker_nanogpt)
        print(
            json.dumps(
                nanogpt_run(
                    setting, budgets[0], seeds[0], args.data, args.threads, args.eval_tokens
                )
            )
        )
        return
    runner_settings, nano_settings = RUNNER_SETTINGS, NANOGPT_SETTINGS
    if args.settings_file:
        loaded = json.loads(Path(args.settings_file).read_text())
        runner_settings, nano_settings = loaded.get("runner", {}), loaded.get("nanogpt", {})
    select = budgets if args.select_at == "all" else [float(args.select_at or min(budgets))]

    with tempfile.TemporaryDirectory(prefix="runner-quality-") as tmp_name:
        tmp = Path(tmp_name)
        trainers: dict[str, tuple[str, Any]] = {}
        if not args.no_head:
            trainers["runner"] = ("runner", runner_tree(None, tmp))
        for ref in args.runner_ref:
            trainers[f"runner@{ref}"] = ("runner", runner_tree(ref, tmp))
        if not args.no_nanogpt:
            trainers["nanogpt"] = ("nanogpt", None)
        runs: list[dict[str, Any]] = []
        order = sorted(budgets, key=lambda b: (b not in select, b))
        for budget in order:
            chosen: dict[str, list[str]] = {}
            for trainer, (kind, _) in trainers.items():
                names = list(runner_settings if kind == "runner" else nano_settings)
                if budget not in select:  # carry the best setting of the selection budget
                    at = [r for r in runs if r["trainer"] == trainer and r["budget_s"] in select]
                    means = {
                        n: [
                            r["val_bpb"]
                            for r in at
                            if r["setting"] == n and r["val_bpb"] is not None
                        ]
                        for n in names
                    }
                    names = [
                        min(
                            (n for n in names if means[n]),
                            key=lambda n: sum(means[n]) / len(means[n]),
                        )
                    ]
                chosen[trainer] = names
            for seed in seeds:
                width = max(len(v) for v in chosen.values())
                groups = [
                    [
                        (trainer, kind, tree, chosen[trainer][i])
                        for trainer, (kind, tree) in trainers.items()
                        if i < len(chosen[trainer])
                    ]
                    for i in range(width)
                ]  # interleave trainers setting by setting
                if args.parallel == "all":
                    groups = [[job for group in groups for job in group]]
                for group in groups:
                    jobs = [
                        partial(
                            _one_run,
                            kind,
                            tree,
                            runner_settings,
                            nano_settings,
                            name,
                            budget,
                            seed,
                            args,
                            tmp / f"w{j}",
                        )
                        for j, (_, kind, tree, name) in enumerate(group)
                    ]
                    if args.parallel != "none":  # side by side: the whole group at once
                        befores = [loadavg()] * len(jobs)
                        with ThreadPoolExecutor(len(jobs)) as pool:
                            results = list(pool.map(lambda job: job(), jobs))
                    else:
                        befores, results = [], []
                        for job in jobs:
                            befores.append(loadavg())
                            results.append(job())
                    for (trainer, _, _, name), res, before in zip(
                        group, results, befores, strict=True
                    ):
                        runs.append(
                            {
                                "trainer": trainer,
                                "setting": name,
                                "budget_s": budget,
                                "seed": seed,
                                "loadavg_1m_before": before,
                                **res,
                            }
                        )
                        print(
                            f"{trainer} {name} {budget:g}s seed {seed}: val_bpb "
                            f"{res['val_bpb']} ({res['tokens_per_s'] or 0:.0f} tok/s, load {before})",
                            file=sys.stderr,
                        )
        best, ratios = summarize(runs, budgets)

    import torch

    out = {
        "torch": torch.__version__,
        "threads": args.threads,
        "cpus": os.cpu_count(),
        "data": args.data,
        "eval_tokens": args.eval_tokens,
        "budgets": budgets,
        "seeds": seeds,
        "select_at": select,
        "settings": {"runner": runner_settings, "nanogpt": nano_settings},
        "best": best,
        "ratios": ratios,
        "runs": runs,
    }
    json.dump(out, sys.stdout, indent=1)
    print()


def _one_run(
    kind: str,
    tree: Path | None,
    runner_settings: dict[str, Any],
    nano_settings: dict[str, Any],
    name: str,
    budget: float,
    seed: int,
    args: argparse.Namespace,
    work: Path,
) -> dict[str, Any]:
    work.mkdir(exist_ok=True)
    if kind == "runner":
        assert tree is not None
        return runner_run(
            tree,
            runner_settings[name],
            budget,
            seed,
            args.data,
            args.threads,
            args.eval_tokens,
            work,
        )
    return _nanogpt_subprocess(nano_settings[name], budget, seed, args)


def _nanogpt_subprocess(
    setting: dict[str, Any], budget: float, seed: int, args: argparse.Namespace
) -> dict[str, Any]:
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--worker-nanogpt",
            json.dumps(setting),
            "--budgets",
            f"{budget:g}",
            "--seeds",
            str(seed),
            "--data",
            args.data,
            "--threads",
            str(args.threads),
            "--eval-tokens",
            str(args.eval_tokens),
        ],
        capture_output=True,
        text=True,
        env=env,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"nanoGPT loop failed: {proc.stderr.strip().splitlines()[-1:]}")
    return json.loads(proc.stdout)


if __name__ == "__main__":
    main()
