"""`--replay LOG`: a budget run's recorded per-step progress makes a replay exact on CPU."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

from tests.runner.conftest import TINY


def _run(tmp_path, corpus, name, *extra, threads=("--threads", "1")):
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(TINY))
    log = tmp_path / f"{name}.jsonl"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "runner",
            "--config",
            str(cfg),
            "--budget",
            "2s",
            "--seed",
            "4",
            "--log",
            str(log),
            "--data",
            str(corpus),
            "--quiet",
            *threads,
            *extra,
        ],
        capture_output=True,
        text=True,
    )
    return proc, log


def _lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_budget_run_replays_bit_for_bit(tmp_path, corpus):
    proc, original = _run(tmp_path, corpus, "original")
    assert proc.returncode == 0, proc.stderr
    steps = [x for x in _lines(original) if x["type"] == "step"]
    # every step is logged with the progress its schedule used
    assert [s["step"] for s in steps] == list(range(1, len(steps) + 1))
    assert all(0.0 <= s["progress"] < 1.0 for s in steps)
    assert len({s["progress"] for s in steps}) > 10  # wall-clock progress, not step/N
    # no --threads: the replay takes the recorded thread count (1) from the log's header
    proc, replay = _run(tmp_path, corpus, "replay", "--replay", str(original), threads=())
    assert proc.returncode == 0, proc.stderr
    head = _lines(replay)[0]
    assert head["threads"] == 1 and head["steps"] == len(steps)
    assert head["replay_sha256"] == hashlib.sha256(original.read_bytes()).hexdigest()
    again = [x for x in _lines(replay) if x["type"] == "step"]
    assert [s["loss"] for s in again] == [s["loss"] for s in steps]
    assert [s["progress"] for s in again] == [s["progress"] for s in steps]
    assert [s["lr"] for s in again] == [s["lr"] for s in steps]
    assert _lines(replay)[-1]["val_bpb"] == _lines(original)[-1]["val_bpb"] is not None


def test_replay_refuses_another_seed_or_recipe(tmp_path, corpus):
    _, original = _run(tmp_path, corpus, "original", "--steps", "4")  # any log with progress
    lines = _lines(original)
    lines[0]["seed"] = 99
    other = tmp_path / "other.jsonl"
    other.write_text("".join(json.dumps(x) + "\n" for x in lines))
    proc, _ = _run(tmp_path, corpus, "x", "--replay", str(other))
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0 and "recorded seed 99" in proc.stderr
    lines[0]["seed"], lines[0]["depth"] = 4, 3
    other.write_text("".join(json.dumps(x) + "\n" for x in lines))
    proc, _ = _run(tmp_path, corpus, "y", "--replay", str(other))
    assert proc.returncode == 2 and "config key 'depth' differs" in proc.stderr
    # --steps beyond the recorded steps, and a log without per-step progress, are refused
    n = sum(x["type"] == "step" for x in lines)
    proc, _ = _run(tmp_path, corpus, "z", "--replay", str(original), "--steps", str(n + 1))
    assert proc.returncode == 2 and f"exceeds the {n} steps" in proc.stderr
    lines[0]["depth"] = TINY["depth"]
    for x in lines:
        x.pop("progress", None)
    other.write_text("".join(json.dumps(x) + "\n" for x in lines))
    proc, _ = _run(tmp_path, corpus, "w", "--replay", str(other))
    assert proc.returncode == 2 and proc.stderr.startswith("error: ")
    assert "step 1 has no recorded progress" in proc.stderr and proc.stderr.count("\n") == 1
