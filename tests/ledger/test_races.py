"""Crashes and races lose and duplicate nothing: two `ledger run` of one stage at once, and
`ledger run` killed with SIGKILL at random moments, then resumed (slow; CI runs it)."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from audit.rederive import audit_store
from ledger.store import Store
from ledger.verify import verify_with_evidence
from stages.lookup import current_manifest, manifest_runs

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL"),
]

# a foreign runner that takes a little while, so that two orchestrators overlap in time
SLOW = """
import json, sys, time
from datetime import UTC, datetime
a = dict(zip(sys.argv[1::2], sys.argv[2::2]))
cfg = json.load(open(a["--config"]))
t0 = time.perf_counter()
time.sleep(0.15)
val = 1 + cfg["matrix_lr"] + 0.001 * int(a["--declared-seed"])
lines = [{"type": "header", **cfg, "seed": int(a["--seed"]), "budget_s": float(a["--budget"]),
          "host": a["--host"], "runner": "slow", "manifest": a["--manifest"],
          "started_at": datetime.now(UTC).isoformat()},
         {"type": "step", "step": 1, "train_seconds": 0.01, "loss": 3.0},
         {"type": "eval", "val_bpb": val},
         {"type": "summary", "status": "ok", "val_bpb": val, "training_seconds": 0.01,
          "total_seconds": time.perf_counter() - t0, "num_steps": 1, "total_tokens": 1,
          "num_params": 1, "peak_mem_mb": None, "tokens_per_s": None, "mfu": None}]
open(a["--log"], "w").write("".join(json.dumps(x) + "\\n" for x in lines))
"""

CAMPAIGN = """
[campaign]
name = "race"
runner = {{ command = "{python} {script} --config {{config}} --seed {{seed}} --declared-seed {{declared_seed}} --log {{log}} --manifest {{manifest}} --host {{host}} --budget {{budget}}", format = "jsonl" }}
[base]
matrix_lr = 0.02
[conditions]
a = {{ matrix_lr = 0.01 }}
b = {{ matrix_lr = 0.02 }}
c = {{ matrix_lr = 0.03 }}
[[stages]]
name = "gate"
budget = "1m"
add = ["a", "b", "c"]
seeds = [{seeds}]
hosts = ["local"]
rule = {{ top_k = 1 }}
max_attempts = 25          # twenty kills: every interrupted attempt counts, and is on record
"""


def _ledger(store: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "gateledger.cli.main",
        "--store",
        str(store),
        "--host",
        "local",
        *args,
    ]


@pytest.fixture
def stage(tmp_path, isolated_keys):
    """A frozen stage of 3 conditions x N seeds run by a slow foreign command."""

    def make(seeds: int) -> tuple[Path, Path, dict]:
        script = tmp_path / "slow.py"
        script.write_text(SLOW)
        camp = tmp_path / "race.toml"
        camp.write_text(
            CAMPAIGN.format(
                python=sys.executable, script=script, seeds=", ".join(map(str, range(seeds)))
            )
        )
        store = tmp_path / ".ledger"
        env = {**os.environ, "LEDGER_KEY_DIR": str(isolated_keys)}
        for args in (
            ["init"],
            ["keygen", "--name", "op"],
            ["freeze", "gate", "--campaign", str(camp)],
        ):
            subprocess.run(_ledger(store, *args), check=True, env=env, capture_output=True)
        return store, camp, env

    return make


def _recorded(store: Path) -> Counter:
    s = Store.open(store, host="local")
    manifest = current_manifest(s, "race", "gate")
    return Counter(r.body.run for r in manifest_runs(s, manifest.id))


def test_two_runs_of_one_stage_at_once_record_each_run_once(stage):
    store, camp, env = stage(4)
    cmd = _ledger(store, "run", "gate", "--campaign", str(camp), "--jobs", "2", "--json")
    procs = [
        subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    reports = [json.loads(p.communicate(timeout=300)[0]) for p in procs]
    assert all("error" not in r for r in reports), reports
    counts = _recorded(store)
    assert len(counts) == 12 and set(counts.values()) == {1}, reports  # every run, once
    assert sum(r["executed"] for r in reports) == 12  # nothing trained twice
    verified = verify_with_evidence(Store.open(store))
    assert verified.problems == []


def _journal_lines(store: Path) -> int:
    path = store / "parts" / "local" / "journal.jsonl"
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_sigkill_at_random_moments_then_resume_loses_and_duplicates_nothing(stage):
    store, camp, env = stage(8)  # 24 runs
    rng = random.Random(20261201)
    cmd = _ledger(store, "run", "gate", "--campaign", str(camp), "--jobs", "2", "--json")
    kills = 0
    while kills < 20:
        before = _journal_lines(store)
        proc = subprocess.Popen(
            cmd,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while (
            _journal_lines(store) <= before and proc.poll() is None and time.monotonic() < deadline
        ):
            time.sleep(0.005)
        time.sleep(rng.random() * 0.3)
        if proc.poll() is not None:
            break  # it finished the stage between two kills
        os.killpg(proc.pid, signal.SIGKILL)  # the orchestrator and its runners
        proc.wait()
        kills += 1
        problems = verify_with_evidence(Store.open(store)).problems
        assert problems == [], f"after kill {kills}: {problems}"
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    counts = _recorded(store)
    assert len(counts) == 24 and set(counts.values()) == {1}, counts
    assert kills >= 5  # the loop really interrupted the work
    subprocess.run(
        _ledger(store, "decide", "gate", "--campaign", str(camp)),
        check=True,
        env=env,
        capture_output=True,
    )
    result = audit_store(Store.open(store))
    assert result.verdict == "clean", [str(f) for f in result.problems]
    # every attempt the kills cut short is on record, closed by the next `ledger run`
    (stage_audit,) = result.stages
    attempts = stage_audit.attempts
    assert attempts is not None and attempts.open == 0 and attempts.recorded == 24
    assert attempts.started == 24 + attempts.interrupted and attempts.interrupted >= 1
