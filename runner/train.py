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
from runner import optim, provenance
from runner._version import __version__
from runner.errors import TrainingCrashed
from runner.evaluate import val_bpb
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


def run(opts: RunOptions, t_start: float | None = None) -> dict[str, Any]:
    """Train, evaluate and write the raw log; return the summary record."""
    t_start = time.perf_counter() if t_start is None else t_start
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
    batches = data_mod.Batches(dataset.train, cfg["seq_len"], cfg["device_batch_size"], opts.seed, dev)
    num_params = model.num_params()

    log = LogWriter(opts.log)
    header = {
        "type": "header", **cfg, "seed": opts.seed, "effective_seed": opts.seed,
        "seed_inputs": opts.seed_inputs, "budget_s": opts.budget_s,
        "device": device_mod.describe(dev), "host": opts.host or provenance.host(), "machine": provenance.host(), "torch": torch.__version__,
        "runner": "builtin", "runner_version": __version__,
        "code_sha256": provenance.code_sha256(), "data_sha256": dataset.sha256,
        "manifest": opts.manifest, "started_at": provenance.utc_now(),
        "threads": torch.get_num_threads(), "steps": opts.steps,
        "replay_sha256": opts.replay_sha256,
        "model_dim": shape.model_dim, "n_heads": shape.n_heads, "grad_accum_steps": shape.grad_accum_steps,
        "vocab_size": dataset.vocab_size, "data_kind": dataset.kind, "data_files": dataset.files,
        "num_params": num_params, "flops_per_token": model.flops_per_token(),
        "peak_flops": peak, "peak_flops_source": peak_source, "excluded_steps": EXCLUDED_STEPS,
    }
    log.write(header, sync=True)

    accum, tokens_per_step = shape.grad_accum_steps, cfg["total_batch_size"]
    step = tokens = counted_tokens = 0
    training_s = warmup_s = eval_s = 0.0
    first_loss: float | None = None
    status, last_log = "ok", 0.0
    bpb: float | None = None
    error: str | None = None
    with StopFlag() as stop:
        try:
            while True:
                if stop.set:
                    status = "timeout"
                    break
                if opts.schedule is not None:
                    progress = opts.schedule[step]
                else:
                    progress = step / opts.steps if opts.steps else training_s / opts.budget_s
                mult = optim.apply(optimizers, step, progress, cfg)
                t0 = time.perf_counter()
                loss_v = _optimizer_step(fwd, model, optimizers, batches, accum, autocast, dev)
                dt = time.perf_counter() - t0
                step += 1
                tokens += tokens_per_step
                if step <= EXCLUDED_STEPS:
                    warmup_s += dt
                    if step == EXCLUDED_STEPS:
                        _freeze_heap()
                else:
                    training_s += dt
                    counted_tokens += tokens_per_step
                if first_loss is None:
                    first_loss = loss_v
                bad = not math.isfinite(loss_v) or loss_v > DIVERGE_FACTOR * first_loss
                if bad:
                    status = "diverged"
                done = bad or (
                    step >= opts.steps if opts.steps else (step > EXCLUDED_STEPS and training_s >= opts.budget_s)
                )
                now = time.perf_counter()
                # every step is logged, with the exact schedule progress it used (exact replay)
                log.write({"type": "step", "step": step, "train_seconds": training_s, "loss": loss_v,
                           "lr": cfg["matrix_lr"] * mult, "lr_mult": mult, "tokens": tokens,
                           "progress": progress},
                          flush=done or step <= LOG_EVERY_STEP_FIRST or now - last_log >= LOG_INTERVAL_S)
                if done or step <= LOG_EVERY_STEP_FIRST or now - last_log >= LOG_INTERVAL_S:
                    last_log = now
                if done:
                    break

            if status == "ok":
                t0 = time.perf_counter()
                x, y = data_mod.eval_slice(dataset.val, cfg["seq_len"], cfg["eval_tokens"])
                tb = torch.from_numpy(dataset.token_bytes) if dataset.token_bytes is not None else None
                bpb, n_tok, n_bytes = val_bpb(model, x, y, tb, dev, autocast, lambda: stop.set)
                eval_s = time.perf_counter() - t0
                if bpb is None:
                    status = "timeout"  # stopped during evaluation
                else:
                    log.write({"type": "eval", "val_bpb": bpb, "eval_tokens": n_tok,
                               "eval_bytes": n_bytes, "eval_seconds": eval_s})
        except Exception as exc:  # noqa: BLE001 - a failure mid-run is logged, then re-raised
            status, bpb, error = "crashed", None, describe_error(exc)
        finally:
            gc.unfreeze()

    tps = counted_tokens / training_s if training_s > 0 else None
    mfu = tps * model.flops_per_token() / peak if tps is not None and peak else None
    summary = {
        "type": "summary", "status": status, "val_bpb": bpb, "training_seconds": training_s,
        "total_seconds": time.perf_counter() - t_start, "num_steps": step, "total_tokens": tokens,
        "num_params": num_params, "peak_mem_mb": device_mod.peak_mem_mb(dev),
        "tokens_per_s": tps, "mfu": mfu, "warmup_seconds": warmup_s, "eval_seconds": eval_s,
        "log_seconds": log.seconds,
    }
    if error is not None:
        summary["error"] = error
    log.write(summary, sync=True)
    log.close()
    if error is not None:
        raise TrainingCrashed(f"training crashed after {step} step(s): {error} "
                              f"(status crashed written to {opts.log})")
    return summary


def _optimizer_step(fwd: Any, model: GPT, optimizers: list[torch.optim.Optimizer],
                    batches: data_mod.Batches, accum: int, autocast: Any, dev: torch.device) -> float:
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
