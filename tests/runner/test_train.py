"""End-to-end runs of the training loop on tiny configs (seconds each)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from runner import config, schema, train
from runner import data as data_mod

REPO = Path(__file__).resolve().parents[2]


def _run(
    tmp_path: Path, corpus: Path, cfg: dict[str, Any], name: str = "run", **kw: Any
) -> list[dict]:
    log = tmp_path / f"{name}.jsonl"
    opts = train.RunOptions(
        cfg=cfg,
        budget_s=kw.pop("budget_s", 60.0),
        seed=kw.pop("seed", 0),
        log=log,
        device="cpu",
        data=str(corpus),
        **kw,
    )
    train.run(opts)
    records = schema.validate_log(log)
    for rec in records:
        jsonschema.validate(rec, schema.SCHEMAS[rec["type"]])
    return records


def test_replay_with_steps_is_bit_for_bit(tmp_path: Path, corpus: Path, tiny_cfg: dict) -> None:
    a = _run(tmp_path, corpus, tiny_cfg, "a", steps=12)
    b = _run(tmp_path, corpus, tiny_cfg, "b", steps=12)
    losses = [[(r["step"], r["loss"]) for r in recs if r["type"] == "step"] for recs in (a, b)]
    assert losses[0][-1][0] == 12 and len(losses[0]) >= 11 and losses[0] == losses[1]
    assert a[-1]["val_bpb"] == b[-1]["val_bpb"] and a[-1]["num_steps"] == 12
    assert a[0]["steps"] == 12 and a[0]["threads"] >= 1
    c = _run(tmp_path, corpus, tiny_cfg, "c", steps=12, seed=1)
    assert [(r["step"], r["loss"]) for r in c if r["type"] == "step"] != losses[0]


def test_budget_is_respected(tmp_path: Path, corpus: Path, tiny_cfg: dict) -> None:
    recs = _run(tmp_path, corpus, tiny_cfg, budget_s=3.0)
    s = recs[-1]
    assert s["status"] == "ok"
    steps = [r for r in recs if r["type"] == "step"]
    # the tolerance is exactly one step: training stops at the first step that reaches the
    # budget (a wall-clock bound would be flaky on a loaded machine)
    assert steps[-2]["train_seconds"] < 3.0 <= s["training_seconds"]
    assert s["training_seconds"] == steps[-1]["train_seconds"]
    assert s["num_steps"] > train.EXCLUDED_STEPS and s["warmup_seconds"] > 0
    assert s["total_seconds"] >= s["training_seconds"] + s["warmup_seconds"] + s["eval_seconds"]
    steps = [r for r in recs if r["type"] == "step"]
    assert steps[-1]["step"] == s["num_steps"]  # the last step is always logged
    first = min(10, s["num_steps"])  # a loaded machine may fit fewer steps in the budget
    assert [r["step"] for r in steps[:first]] == list(range(1, first + 1))
    ev = next(r for r in recs if r["type"] == "eval")
    assert ev["eval_tokens"] == ev["eval_bytes"] == 1024 and ev["val_bpb"] == s["val_bpb"]
    assert s["tokens_per_s"] > 0 and s["peak_mem_mb"] > 0
    # no published CPU peak: MFU is unknown rather than a ratio to a measured rate
    assert s["mfu"] is None


def test_divergence_is_detected(tmp_path: Path, corpus: Path, tiny_cfg: dict) -> None:
    lr = {k: 1000.0 for k in ("matrix_lr", "embedding_lr", "unembedding_lr", "scalar_lr")}
    recs = _run(tmp_path, corpus, config.resolve({**tiny_cfg, **lr}), steps=50)
    s = recs[-1]
    assert s["status"] == "diverged" and s["val_bpb"] is None and s["num_steps"] < 50
    assert not any(r["type"] == "eval" for r in recs)


def test_header_is_on_disk_before_the_first_step(
    tmp_path: Path, corpus: Path, tiny_cfg: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "run.jsonl"
    seen: list[str] = []
    synced: list[int] = []
    real_next, real_fsync = data_mod.Batches.next, os.fsync

    def spy_next(self: data_mod.Batches) -> Any:
        if not seen:
            seen.append(log.read_text())  # read through a separate handle
            assert synced, "header was not fsynced before training"
        return real_next(self)

    def spy_fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(data_mod.Batches, "next", spy_next)
    monkeypatch.setattr(os, "fsync", spy_fsync)
    train.run(
        train.RunOptions(
            cfg=tiny_cfg,
            budget_s=60,
            seed=0,
            log=log,
            steps=2,
            device="cpu",
            data=str(corpus),
            manifest="m" * 64,
        )
    )
    lines = seen[0].splitlines()
    assert len(lines) == 1 and seen[0].endswith("\n")
    header = json.loads(lines[0])
    assert header["type"] == "header" and header["manifest"] == "m" * 64
    assert header["runner"] == "builtin" and len(header["code_sha256"]) == 64


def test_sigterm_writes_timeout_summary(tmp_path: Path, corpus: Path, tiny_cfg: dict) -> None:
    cfg_path, log = tmp_path / "cfg.json", tmp_path / "run.jsonl"
    cfg_path.write_text(json.dumps(tiny_cfg))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "runner",
            "--config",
            str(cfg_path),
            "--budget",
            "60s",
            "--seed",
            "0",
            "--log",
            str(log),
            "--data",
            str(corpus),
            "--device",
            "cpu",
            "--quiet",
        ],
        cwd=REPO,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and '"type":"step"' not in (
        log.read_text() if log.exists() else ""
    ):
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    s = schema.validate_log(log)[-1]
    assert s["status"] == "timeout" and s["val_bpb"] is None and s["training_seconds"] < 60


def test_cli_replays_identically_across_processes(
    tmp_path: Path, corpus: Path, tiny_cfg: dict
) -> None:
    cfg_path = tmp_path / "cfg.json"
    cfg_path.write_text(json.dumps(tiny_cfg))
    runs = []
    # the second process keeps glibc's allocator defaults: the runner's allocator tuning
    # (device.keep_freed_memory) must not change a single number
    for name, env in (("a", {}), ("b", {"RUNNER_GLIBC_DEFAULTS": "1"})):
        log = tmp_path / f"{name}.jsonl"
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "runner",
                "--config",
                str(cfg_path),
                "--budget",
                "5m",
                "--seed",
                "3",
                "--log",
                str(log),
                "--data",
                str(corpus),
                "--steps",
                "6",
                "--threads",
                "1",
            ],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, **env},
        )
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["status"] == "ok"
        recs = schema.validate_log(log)
        assert recs[0]["threads"] == 1 and recs[0]["budget_s"] == 300
        runs.append(
            [(r.get("loss"), r.get("val_bpb")) for r in recs if r["type"] in ("step", "eval")]
        )
    assert runs[0] == runs[1]
