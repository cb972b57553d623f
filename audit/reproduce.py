"""`ledger reproduce RUN`: replay a recorded run step for step and compare with the record.

Why: a reviewer who doubts a number can re-train the very run from the frozen config, seed and
data with the runner's `--replay` (each step's recorded schedule progress, so a budget run's
wall-clock-driven LR schedule is reproduced too; bit for bit on CPU with the same threads) and
see how far the replay lands from the log.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ledger.errors import LedgerError
from ledger.ingest import parse_raw_log
from ledger.store import Store


def _steps(raw: bytes) -> dict[int, float]:
    out = {}
    for line in raw.splitlines():
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(obj, dict) and obj.get("type") == "step" and obj.get("loss") is not None:
            out[int(obj["step"])] = float(obj["loss"])
    return out


def _has_progress(raw: bytes) -> bool:
    """Whether the log records each step's schedule progress (needed for an exact replay)."""
    for line in raw.splitlines():
        if b'"type":"step"' in line.replace(b" ", b""):
            return b'"progress"' in line
    return False


def reproduce_run(
    store: Store, run_id: str, *, data: Path | None = None, device: str = "cpu",
    python: str = sys.executable, timeout_s: float = 3600.0,
) -> dict[str, Any]:
    """Replay a builtin-runner run with `--steps` and report differences from the record."""
    obj = store.get_json(run_id)
    if obj.get("kind") != "run":
        raise LedgerError(f"object {run_id} is a {obj.get('kind')!r}, not a run record")
    body = obj["body"]
    parsed = parse_raw_log(store.get_bytes(body["raw_log"]), body.get("format", "jsonl"))
    header = parsed.header or {}
    if header.get("runner") != "builtin":
        raise LedgerError(
            f"run {run_id[:12]} was produced by runner {header.get('runner')!r}; only builtin "
            f"runs can be replayed"
        )
    steps = parsed.metrics.get("num_steps")
    if not steps:
        raise LedgerError(f"run {run_id[:12]} recorded no steps to replay")
    manifest = store.get_json(body["manifest"])["body"] if body.get("manifest") else None
    if manifest is not None:
        config = manifest["conditions"][body["condition"]]["config"]
    else:
        config = {k: v for k, v in header.items() if k in _CONFIG_KEYS}
    with tempfile.TemporaryDirectory(prefix="ledger-reproduce-") as tmp:
        cfg = Path(tmp) / "config.json"
        cfg.write_text(json.dumps(config))
        original = Path(tmp) / "original.jsonl"
        original.write_bytes(store.get_bytes(body["raw_log"]))
        log = Path(tmp) / "replay.jsonl"
        argv = [python, "-m", "runner", "--config", str(cfg),
                "--budget", f"{header.get('budget_s', body.get('budget_s', 60))}s",
                "--seed", str(body["seed"]), "--log", str(log), "--steps", str(steps),
                "--device", device]
        if _has_progress(original.read_bytes()):
            argv += ["--replay", str(original)]
        if body.get("manifest"):
            argv += ["--manifest", body["manifest"]]
        if data is not None:
            argv += ["--data", str(data)]
        if header.get("threads"):
            argv += ["--threads", str(header["threads"])]
        proc = subprocess.run(argv, capture_output=True, timeout=timeout_s)
        if proc.returncode != 0 or not log.exists():
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
            raise LedgerError(f"replay of run {run_id[:12]} failed: {tail[0]}")
        replay_raw = log.read_bytes()
    replay = parse_raw_log(replay_raw, "jsonl")
    original_steps, replay_steps = _steps(store.get_bytes(body["raw_log"])), _steps(replay_raw)
    common = sorted(set(original_steps) & set(replay_steps))
    max_loss_diff = max((abs(original_steps[s] - replay_steps[s]) for s in common), default=None)
    rec_bpb, rep_bpb = parsed.metrics.get("val_bpb"), replay.metrics.get("val_bpb")
    data_match = header.get("data_sha256") == (replay.header or {}).get("data_sha256")
    code_match = header.get("code_sha256") == (replay.header or {}).get("code_sha256")
    return {
        "run": run_id,
        "steps": steps,
        "recorded_val_bpb": rec_bpb,
        "replayed_val_bpb": rep_bpb,
        "val_bpb_difference": (rep_bpb - rec_bpb) if None not in (rec_bpb, rep_bpb) else None,
        "compared_steps": len(common),
        "max_loss_difference": max_loss_diff,
        "identical": bool(common) and max_loss_diff == 0.0 and rec_bpb == rep_bpb,
        "exact_schedule": "--replay" in argv,
        "same_data": data_match,
        "same_code": code_match,
        "recorded_device": header.get("device"),
        "replay_device": (replay.header or {}).get("device"),
    }


_CONFIG_KEYS = {
    "depth", "aspect_ratio", "head_dim", "seq_len", "device_batch_size", "total_batch_size",
    "matrix_lr", "embedding_lr", "unembedding_lr", "scalar_lr", "weight_decay", "adam_betas",
    "warmup_ratio", "warmdown_ratio", "final_lr_frac",
}
