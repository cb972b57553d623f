"""`ledger reproduce RUN`: replay a recorded run step for step and compare with the record.

Why: a reviewer who doubts a number can re-train the very run from the frozen config, seed and
data with the runner's `--replay` (each step's recorded schedule progress, so a budget run's
wall-clock-driven LR schedule is reproduced too; bit for bit on CPU with the same threads) and
see how far the replay lands from the log. The replay trains with the seed the log records
(for a manifest with a seed rule, the effective seed derived from the manifest id), for as
many steps as the log records, so a run labelled `diverged` or `crashed` is replayed up to
where it stopped: a loss that did not really explode shows.

`replay_log` is the comparison itself (used by `ledger audit --reproduce`, `audit.spotcheck`);
`reproduce_run` finds the run in a store first.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ledger.document import parse
from ledger.documents import Envelope, RunRecord
from ledger.errors import IntegrityError, ReplayError, WrongKind
from ledger.log_records import LogHeader
from ledger.plan_model import Manifest, Plan
from ledger.rawlog import ParsedLog, parse_raw_log
from ledger.store import Store, load_object

# statuses whose outcome a replay must repeat; crashed and timeout depend on the machine
# (out of memory, a kill), so only their logged steps are compared
REPEATABLE_STATUSES = ("ok", "diverged")


def _steps(raw: bytes) -> dict[int, float | None]:
    """step -> loss of every step line (None for a non-finite loss, logged as null)."""
    out: dict[int, float | None] = {}
    for line in raw.splitlines():
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(obj, dict) and obj.get("type") == "step" and isinstance(obj.get("step"), int):
            loss = obj.get("loss")
            finite = isinstance(loss, int | float) and math.isfinite(loss)
            out[obj["step"]] = float(loss) if finite and loss is not None else None
    return out


def _has_progress(raw: bytes) -> bool:
    """Whether the log records each step's schedule progress (needed for an exact replay)."""
    for line in raw.splitlines():
        if b'"type":"step"' in line.replace(b" ", b""):
            return b'"progress"' in line
    return False


def _difference(a: float | None, b: float | None) -> float | None:
    """|a - b|; 0 when both are missing (a null loss is a non-finite one); None when one is."""
    if a is None and b is None:
        return 0.0
    if a is None or b is None:
        return None
    return abs(a - b)


def recorded_seed(header: LogHeader, record: RunRecord) -> int:
    """The seed the run trained with: the header's effective seed, else its seed, else the
    record's declared seed (logs from before seeds were bound)."""
    for value in (header.effective_seed, header.seed, record.seed):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    raise ReplayError("the run records no integer seed to replay with")


def replay_log(
    raw: bytes,
    record: RunRecord,
    manifest: Plan | None,
    *,
    label: str,
    data: Path | None = None,
    device: str = "cpu",
    python: str = sys.executable,
    timeout_s: float = 3600.0,
) -> dict[str, Any]:
    """Replay one builtin-runner log and compare it with what it records.

    Args:
        raw: the raw log bytes (as stored).
        record: the run record (condition, seed, status, format, manifest).
        manifest: the manifest the run belongs to (its frozen config), or None.
        label: how errors name the run.
        data, device, python, timeout_s: how the runner is started.

    Returns the comparison: steps, losses and val_bpb recorded and replayed, statuses,
    `identical` (every recorded step's loss, the metric and a repeatable status the same).

    Raises:
        LedgerError: the log is not the builtin runner's, records no step, or the replay
            process failed (naming `label`).
    """
    parsed = parse_raw_log(raw, record.format)
    header = parsed.header
    if header is None or header.runner != "builtin":
        runner = header.runner if header is not None else None
        raise ReplayError(
            f"run {label} was produced by runner {runner!r}; only builtin runs can be replayed"
        )
    recorded_losses = _steps(raw)
    logged = len(recorded_losses)
    steps = parsed.metrics["num_steps"]
    steps = min(steps, logged) if isinstance(steps, int) and steps > 0 and logged else logged
    if not steps:
        raise ReplayError(f"run {label} recorded no steps to replay")
    planned = manifest.conditions.get(record.condition or "") if manifest is not None else None
    if planned is not None:
        config = planned.config
    else:
        config = {k: v for k, v in header.config.items() if k in _CONFIG_KEYS}
    seed = recorded_seed(header, record)
    with tempfile.TemporaryDirectory(prefix="ledger-reproduce-") as tmp:
        config_path = Path(tmp) / "config.json"
        config_path.write_text(json.dumps(config))
        original = Path(tmp) / "original.jsonl"
        original.write_bytes(raw)
        log = Path(tmp) / "replay.jsonl"
        argv = [
            python,
            "-m",
            "runner",
            "--config",
            str(config_path),
            "--budget",
            f"{header.budget_s if header.budget_s is not None else 60}s",
            "--seed",
            str(seed),
            "--log",
            str(log),
            "--steps",
            str(steps),
            "--device",
            device,
        ]
        argv += _replay_options(raw, header, record, original, data)
        replay_raw = _run_replay(argv, log, label, timeout_s)
    replay = parse_raw_log(replay_raw, "jsonl")
    comparison = _compare(parsed, recorded_losses, record, replay, _steps(replay_raw), steps)
    again = replay.header or LogHeader(type="header")  # (a replay without one says nothing)
    return {
        "run": label,
        "steps": steps,
        "seed": seed,
        **comparison,
        "exact_schedule": "--replay" in argv,
        "same_data": header.data_sha256 == again.data_sha256,
        "same_code": header.code_sha256 == again.code_sha256,
        "recorded_device": header.device,
        "replay_device": again.device,
    }


def _replay_options(
    raw: bytes, header: LogHeader, record: RunRecord, original: Path, data: Path | None
) -> list[str]:
    """The runner options that make the replay the recorded run: its schedule, manifest,
    seed derivation, data and thread count."""
    argv: list[str] = []
    if _has_progress(raw):
        argv += ["--replay", str(original)]
    if record.manifest:
        argv += ["--manifest", record.manifest]
    inputs = header.seed_inputs
    if inputs is not None:
        argv += ["--seed-from", f"{inputs.manifest}:{inputs.condition}:{inputs.seed}"]
    if data is not None:
        argv += ["--data", str(data)]
    if header.threads:
        argv += ["--threads", str(header.threads)]
    return argv


def _run_replay(argv: list[str], log: Path, label: str, timeout_s: float) -> bytes:
    """Run the trainer; the replayed raw log (a crashed run still writes one: exit 1)."""
    try:
        proc = subprocess.run(argv, capture_output=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise ReplayError(f"replay of run {label} took longer than {timeout_s:g} s") from None
    if not log.exists() or proc.returncode not in (0, 1):
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        raise ReplayError(f"replay of run {label} failed: {tail[0]}")
    return log.read_bytes()


def _compare(
    parsed: ParsedLog,
    recorded_losses: dict[int, float | None],
    record: RunRecord,
    replay: ParsedLog,
    replay_losses: dict[int, float | None],
    steps: int,
) -> dict[str, Any]:
    """Recorded against replayed: statuses, val_bpb, and the loss of every step both logged."""
    common = sorted(set(recorded_losses) & set(replay_losses))
    diffs = [_difference(recorded_losses[s], replay_losses[s]) for s in common]
    known = [d for d in diffs if d is not None]
    max_loss_diff = None if len(known) < len(diffs) else max(known, default=None)
    first = next((s for s, d in zip(common, diffs, strict=True) if d != 0.0), None)
    recorded_status, replayed_status = record.status, replay.status
    repeatable = recorded_status in REPEATABLE_STATUSES
    rec_bpb, rep_bpb = parsed.metrics["val_bpb"], replay.metrics["val_bpb"]
    bpb_diff = _difference(rec_bpb, rep_bpb) if repeatable else 0.0
    return {
        "recorded_status": recorded_status,
        "replayed_status": replayed_status,
        "status_compared": repeatable,
        "recorded_val_bpb": rec_bpb,
        "replayed_val_bpb": rep_bpb,
        "val_bpb_difference": (
            rep_bpb - rec_bpb if rec_bpb is not None and rep_bpb is not None else None
        ),
        "compared_steps": len(common),
        "first_differing_step": None
        if first is None
        else {
            "step": first,
            "recorded_loss": recorded_losses[first],
            "replayed_loss": replay_losses[first],
        },
        "max_loss_difference": max_loss_diff,
        "max_difference": (
            None if max_loss_diff is None or bpb_diff is None else max(max_loss_diff, bpb_diff)
        ),
        "identical": (
            len(common) == steps
            and max_loss_diff == 0.0
            and bpb_diff == 0.0
            and (not repeatable or recorded_status == replayed_status)
        ),
    }


def reproduce_run(
    store: Store,
    run_id: str,
    *,
    data: Path | None = None,
    device: str = "cpu",
    python: str = sys.executable,
    timeout_s: float = 3600.0,
) -> dict[str, Any]:
    """Replay a builtin-runner run of the store with `--steps` and report differences from
    the record (see `replay_log`; LedgerError when `run_id` is not a replayable run)."""
    envelope = parse(Envelope, store.get_json(run_id), f"object {run_id}", IntegrityError)
    if envelope.kind != "run":
        raise WrongKind(f"object {run_id} is a {envelope.kind!r}, not a run record")
    record = parse(RunRecord, envelope.body, f"run {run_id}", IntegrityError)
    manifest = (
        parse(
            Manifest,
            load_object(store, record.manifest, "manifest"),
            f"manifest {record.manifest}",
            IntegrityError,
        )
        if record.manifest
        else None
    )
    out = replay_log(
        store.get_bytes(record.raw_log),
        record,
        manifest,
        label=run_id[:12],
        data=data,
        device=device,
        python=python,
        timeout_s=timeout_s,
    )
    return {**out, "run": run_id}


_CONFIG_KEYS = {
    "depth",
    "aspect_ratio",
    "head_dim",
    "seq_len",
    "device_batch_size",
    "total_batch_size",
    "matrix_lr",
    "embedding_lr",
    "unembedding_lr",
    "scalar_lr",
    "weight_decay",
    "adam_betas",
    "warmup_ratio",
    "warmdown_ratio",
    "final_lr_frac",
}
