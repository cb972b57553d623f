"""The fixed-time-budget training loop (autoresearch semantics) and its raw log.

Only optimizer-step time counts toward the budget: the first ``EXCLUDED_STEPS`` steps
(allocator warm-up, compilation) train but are timed separately as ``warmup_seconds``,
and evaluation is timed as ``eval_seconds``. Training stops once
``training_seconds >= budget``; with ``steps`` set it runs exactly that many optimizer
steps and schedules use ``step/steps`` instead of wall-clock progress, so a replay is
bit-for-bit reproducible on CPU.
"""

from __future__ import annotations

import gc
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from runner import config as config_mod
from runner import data as data_mod
from runner import device as device_mod
from runner import fingerprint, optim
from runner._version import __version__
from runner.bpb import val_bpb
from runner.errors import TrainingCrashed
from runner.logio import LogWriter
from runner.model import GPT, GPTConfig
from runner.schema import DIVERGE_FACTOR
from runner.stopflag import StopFlag

EXCLUDED_STEPS = 3  # warm-up steps that train but do not count toward the budget
LOG_EVERY_STEP_FIRST = 10  # log each of the first N steps, then about every LOG_INTERVAL_S
LOG_INTERVAL_S = 1.0


@dataclass
class RunOptions:
    """Everything the CLI resolved; ``cfg`` is already validated."""

    cfg: dict[str, Any]
    budget_s: float
    seed: int
    log: Path
    manifest: str | None = None
    host: str | None = None  # the cell's host name; None: this machine's name
    steps: int | None = None
    device: str = "auto"
    data: str | None = None
    threads: int | None = None
    schedule: list[float] | None = None  # per-step progress of a recorded run (--replay)
    replay_sha256: str | None = None  # SHA-256 of the --replay log (recorded in the header)
    seed_inputs: dict[str, Any] | None = None  # --seed-from: what `seed` was derived from


@dataclass
class _Parts:
    """What one run trains with: device, data, model, optimizers and the device's peak FLOPs."""

    shape: config_mod.Shape
    dev: torch.device
    dataset: data_mod.Dataset
    model: GPT
    fwd: Any
    optimizers: list[torch.optim.Optimizer]
    autocast: Any
    batches: data_mod.Batches
    num_params: int
    peak: float | None
    peak_source: str


@dataclass
class _Tally:
    """What the loop has counted so far: the numbers the summary reports."""

    step: int = 0
    tokens: int = 0
    counted_tokens: int = 0
    training_s: float = 0.0
    warmup_s: float = 0.0
    eval_s: float = 0.0
    first_loss: float | None = None
    last_log: float = 0.0


def run(opts: RunOptions, t_start: float | None = None) -> dict[str, Any]:
    """Train, evaluate and write the raw log; return the summary record."""
    t_start = time.perf_counter() if t_start is None else t_start
    parts = _build(opts)
    log = LogWriter(opts.log)
    log.write(_header(opts, parts), sync=True)
    tally = _Tally()
    bpb: float | None = None
    error: str | None = None
    with StopFlag() as stop:
        try:
            status = _train(opts, parts, log, tally, stop)
            if status == "ok":
                status, bpb = _evaluate(opts.cfg, parts, log, tally, stop)
        except Exception as exc:  # noqa: BLE001 - a failure mid-run is logged, then re-raised
            status, bpb, error = "crashed", None, describe_error(exc)
        finally:
            gc.unfreeze()
    summary = _summary(status, bpb, tally, parts, log, t_start)
    if error is not None:
        summary["error"] = error
    log.write(summary, sync=True)
    log.close()
    if error is not None:
        raise TrainingCrashed(
            f"training crashed after {tally.step} step(s): {error} "
            f"(status crashed written to {opts.log})"
        )
    return summary


def _build(opts: RunOptions) -> _Parts:
    """Device, data and a seeded model with its optimizers, in the order the seed needs."""
    cfg = opts.cfg
    shape = config_mod.shape(cfg)
    dev = device_mod.select(opts.device)
    dataset = data_mod.load(opts.data, cfg["seq_len"])
    device_mod.configure(dev, opts.threads, deterministic=opts.steps is not None)
    peak, peak_source = device_mod.peak_flops(dev)
    if cfg["compile"]:
        device_mod.check_compile(dev)

    torch.manual_seed(opts.seed)
    model = GPT(GPTConfig.from_runner(cfg, dataset.vocab_size, shape.model_dim)).to(dev)
    optimizers = optim.build(model, cfg)
    fwd = model.compiled() if cfg["compile"] else model
    autocast = device_mod.autocast(dev)
    batches = data_mod.Batches(
        dataset.train, cfg["seq_len"], cfg["device_batch_size"], opts.seed, dev
    )
    return _Parts(
        shape,
        dev,
        dataset,
        model,
        fwd,
        optimizers,
        autocast,
        batches,
        model.num_params(),
        peak,
        peak_source,
    )


def _header(opts: RunOptions, parts: _Parts) -> dict[str, Any]:
    """The log's first line: config, seed, where and with what code and data it ran."""
    shape, dataset = parts.shape, parts.dataset
    return {
        "type": "header",
        **opts.cfg,
        "seed": opts.seed,
        "effective_seed": opts.seed,
        "seed_inputs": opts.seed_inputs,
        "budget_s": opts.budget_s,
        "device": device_mod.describe(parts.dev),
        "host": opts.host or fingerprint.host(),
        "machine": fingerprint.host(),
        "torch": torch.__version__,
        "runner": "builtin",
        "runner_version": __version__,
        "code_sha256": fingerprint.code_sha256(),
        "data_sha256": dataset.sha256,
        "manifest": opts.manifest,
        "started_at": fingerprint.utc_now(),
        "threads": torch.get_num_threads(),
        "steps": opts.steps,
        "replay_sha256": opts.replay_sha256,
        "model_dim": shape.model_dim,
        "n_heads": shape.n_heads,
        "grad_accum_steps": shape.grad_accum_steps,
        "vocab_size": dataset.vocab_size,
        "data_kind": dataset.kind,
        "data_files": dataset.files,
        "num_params": parts.num_params,
        "flops_per_token": parts.model.flops_per_token(),
        "peak_flops": parts.peak,
        "peak_flops_source": parts.peak_source,
        "excluded_steps": EXCLUDED_STEPS,
    }


def _train(opts: RunOptions, parts: _Parts, log: LogWriter, tally: _Tally, stop: StopFlag) -> str:
    """Optimizer steps until the budget (or `steps`) is spent: "ok", "diverged" or "timeout"."""
    cfg = opts.cfg
    accum, tokens_per_step = parts.shape.grad_accum_steps, cfg["total_batch_size"]
    status = "ok"
    while True:
        if stop.set:
            return "timeout"
        if opts.schedule is not None:
            progress = opts.schedule[tally.step]
        else:
            progress = tally.step / opts.steps if opts.steps else tally.training_s / opts.budget_s
        mult = optim.apply(parts.optimizers, tally.step, progress, cfg)
        t0 = time.perf_counter()
        loss_v = _optimizer_step(
            parts.fwd,
            parts.model,
            parts.optimizers,
            parts.batches,
            accum,
            parts.autocast,
            parts.dev,
        )
        dt = time.perf_counter() - t0
        tally.step += 1
        tally.tokens += tokens_per_step
        if tally.step <= EXCLUDED_STEPS:
            tally.warmup_s += dt
            if tally.step == EXCLUDED_STEPS:
                _freeze_heap()
        else:
            tally.training_s += dt
            tally.counted_tokens += tokens_per_step
        if tally.first_loss is None:
            tally.first_loss = loss_v
        bad = not math.isfinite(loss_v) or loss_v > DIVERGE_FACTOR * tally.first_loss
        if bad:
            status = "diverged"
        done = bad or (
            tally.step >= opts.steps
            if opts.steps
            else (tally.step > EXCLUDED_STEPS and tally.training_s >= opts.budget_s)
        )
        now = time.perf_counter()
        due = done or tally.step <= LOG_EVERY_STEP_FIRST or now - tally.last_log >= LOG_INTERVAL_S
        # every step is logged, with the exact schedule progress it used (exact replay)
        log.write(
            {
                "type": "step",
                "step": tally.step,
                "train_seconds": tally.training_s,
                "loss": loss_v,
                "lr": cfg["matrix_lr"] * mult,
                "lr_mult": mult,
                "tokens": tally.tokens,
                "progress": progress,
            },
            flush=due,
        )
        if due:
            tally.last_log = now
        if done:
            return status


def _evaluate(
    cfg: dict[str, Any], parts: _Parts, log: LogWriter, tally: _Tally, stop: StopFlag
) -> tuple[str, float | None]:
    """Validation bits per byte on the held-out slice: ("ok", bpb), or ("timeout", None)."""
    t0 = time.perf_counter()
    x, y = data_mod.eval_slice(parts.dataset.val, cfg["seq_len"], cfg["eval_tokens"])
    token_bytes = parts.dataset.token_bytes
    tb = torch.from_numpy(token_bytes) if token_bytes is not None else None
    bpb, n_tok, n_bytes = val_bpb(
        parts.model, x, y, tb, parts.dev, parts.autocast, lambda: stop.set
    )
    tally.eval_s = time.perf_counter() - t0
    if bpb is None:
        return "timeout", None  # stopped during evaluation
    log.write(
        {
            "type": "eval",
            "val_bpb": bpb,
            "eval_tokens": n_tok,
            "eval_bytes": n_bytes,
            "eval_seconds": tally.eval_s,
        }
    )
    return "ok", bpb


def _summary(
    status: str, bpb: float | None, tally: _Tally, parts: _Parts, log: LogWriter, t_start: float
) -> dict[str, Any]:
    """The log's last line, written even after a crash."""
    tps = tally.counted_tokens / tally.training_s if tally.training_s > 0 else None
    mfu = (
        tps * parts.model.flops_per_token() / parts.peak if tps is not None and parts.peak else None
    )
    return {
        "type": "summary",
        "status": status,
        "val_bpb": bpb,
        "training_seconds": tally.training_s,
        "total_seconds": time.perf_counter() - t_start,
        "num_steps": tally.step,
        "total_tokens": tally.tokens,
        "num_params": parts.num_params,
        "peak_mem_mb": device_mod.peak_mem_mb(parts.dev),
        "tokens_per_s": tps,
        "mfu": mfu,
        "warmup_seconds": tally.warmup_s,
        "eval_seconds": tally.eval_s,
        "log_seconds": log.seconds,
    }


def _optimizer_step(
    fwd: Any,
    model: GPT,
    optimizers: list[torch.optim.Optimizer],
    batches: data_mod.Batches,
    accum: int,
    autocast: Any,
    dev: torch.device,
) -> float:
    """Forward/backward over ``accum`` micro-batches, then every optimizer; the mean loss."""
    loss_sum = torch.zeros((), device=dev)
    for _ in range(accum):
        x, y = batches.next()
        with autocast():
            loss = fwd(x, y)
        (loss / accum).backward()
        loss_sum += loss.detach()
    for o in optimizers:
        o.step()
    model.zero_grad(set_to_none=True)
    return loss_sum.item() / accum  # .item() also synchronizes CUDA before the clock stops


def _freeze_heap() -> None:
    """Move what warm-up built (model, optimizer state, compiled graphs) out of the collector's
    sight, as autoresearch does: a full collection over that heap stalls a step by up to
    ~0.5 s (autoresearch's measurement on a GPU); later collections only scan new objects.
    Outside the timed steps; numerics are unaffected."""
    gc.collect()
    gc.freeze()


def describe_error(exc: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message``, short enough for a log field and one error line."""
    first = next((ln.strip() for ln in str(exc).splitlines() if ln.strip()), "")
    text = f"{type(exc).__name__}: {first}" if first else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"
