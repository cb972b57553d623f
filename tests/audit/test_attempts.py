"""Every attempt on record: a run stopped by Ctrl-C, an orchestrator killed outright, a log
ingest refused. Each start gets an outcome (recorded, or interrupted with its reason and
partial log), the frozen `max_attempts` bounds retries, `status` shows a dead attempt as
dead, and interrupted compute is costed under its own heading."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from click.testing import CliRunner

from audit.rederive import audit_store
from gateledger.cli.main import cli
from ledger.keys import generate_key
from ledger.store import Store
from stages.campaign import parse_campaign
from stages.execute import manifest_tasks, run_stage
from stages.executors.sim import SimExecutor
from stages.lookup import current_manifest
from stages.plan import freeze_stage
from stages.surface import SimParams
from tests.conftest import SIM_CAMPAIGN

SCREEN_RULE = 'rule = { top_k = 3, keep = ["base"], fdr = 0.05 }'


def _campaign(tmp_path, max_attempts: int | None):
    text = SIM_CAMPAIGN
    if max_attempts is not None:
        text = text.replace(SCREEN_RULE, f"{SCREEN_RULE}\nmax_attempts = {max_attempts}")
    path = tmp_path / "c.toml"
    path.write_text(text)
    return path, parse_campaign(text, path)


class CtrlC:
    """The simulator, until the user presses Ctrl-C while the second run trains."""

    name = "sim"

    def __init__(self, sim):
        self.sim = sim

    def execute(self, tasks, on_start):
        tasks = list(tasks)
        yield from self.sim.execute(tasks[:1], on_start)
        assert on_start(tasks[1])  # the second run's start is journaled, it launches ...
        raise KeyboardInterrupt  # ... and Ctrl-C stops `ledger run`


def _interrupted_then_resumed(tmp_path, max_attempts):
    store = Store.init(tmp_path / ".ledger", host="h1")
    key = generate_key("op")
    _, camp = _campaign(tmp_path, max_attempts)
    freeze_stage(store, camp, "screen", key, for_simulation=True)
    sim = SimExecutor(SimParams.from_table(camp.sim, "ABCDE"))
    with pytest.raises(KeyboardInterrupt):
        run_stage(store, camp, "screen", CtrlC(sim), key=key, progress=False)
    manifest = current_manifest(store, "t", "screen")
    second = manifest_tasks(manifest.id, manifest.body)[1]
    report = run_stage(store, camp, "screen", sim, key=key, progress=False)
    return store, manifest, second, report


def test_ctrl_c_leaves_an_interrupted_attempt_and_one_attempt_is_all_by_default(tmp_path):
    store, manifest, second, report = _interrupted_then_resumed(tmp_path, None)
    assert report.executed == 15 and [x.run for x in report.exhausted] == [second.key]
    result = audit_store(store, allow_undecided=True)
    (screen,) = result.stages
    assert {
        k: screen.attempts.to_dict()[k]
        for k in ("max", "started", "recorded", "interrupted", "open")
    } == {
        "max": 1,
        "started": 17,
        "recorded": 16,
        "interrupted": 1,
        "open": 0,
    }
    (retried,) = screen.attempts.retried
    assert (retried.run, retried.attempts, retried.recorded) == (second.key, 1, 0)
    (event,) = [e for e in store.journal().events() if e.kind == "run_interrupted"]
    interruption = store.get_json(event.object)
    assert interruption["signature"]["key_id"] == interruption["body"]["recorder"]
    assert interruption["body"]["reason"] == "interrupted: Ctrl-C stopped `ledger run`"
    assert event.run == second.key
    # the interrupted compute is costed apart (the simulator's attempt took no wall time)
    part = result.costs.interrupted
    assert part is not None
    assert part.n_runs == 1 and set(part.by_stage) == {"screen"}


def test_a_retry_within_max_attempts_is_recorded_and_listed(tmp_path):
    store, manifest, second, report = _interrupted_then_resumed(tmp_path, 2)
    assert report.executed == 16 and report.exhausted == []
    result = audit_store(store, allow_undecided=True)
    assert result.problems == []
    (retried,) = result.stages[0].attempts.retried
    assert (retried.run, retried.attempts, retried.interrupted, retried.recorded) == (
        second.key,
        2,
        1,
        1,
    )


def test_a_killed_run_is_dead_in_status_and_closed_with_its_partial_log(tmp_path):
    """An orchestrator that dies (SIGKILL, a lost host) leaves a start without an outcome
    and its runner's partial log under work/: `status` shows it dead, the next `run`
    closes it as interrupted with that log kept, and runs it again."""
    path, camp = _campaign(tmp_path, 2)
    root = tmp_path / ".ledger"
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, ["--store", str(root), "--host", "h1", *args])

    assert invoke("init").exit_code == 0 and invoke("keygen", "--name", "op").exit_code == 0
    assert invoke("freeze", "screen", "--campaign", str(path), "--sim-only").exit_code == 0
    store = Store.open(root, host="h1")
    manifest = current_manifest(store, "t", "screen")
    task = manifest_tasks(manifest.id, manifest.body)[0]
    partial = (
        b'{"type":"header","manifest":"' + manifest.id.encode() + b'"}\n'
        b'{"type":"step","step":1,"train_seconds":0.5,"loss":3.0}\n'
    )
    killed = f"""
import os, sys
from ledger.keys import load_signing_key
from ledger.store import Store
from stages.claims import RunClaims
from stages.execute import manifest_tasks
from stages.lookup import current_manifest
store = Store.open({str(root)!r}, host="h1")
m = current_manifest(store, "t", "screen")
task = manifest_tasks(m.id, m.body)[0]
claims = RunClaims(store, m.id, key=load_signing_key("op"), max_attempts=2)
assert claims.start(task)
stem = f"{{m.id[:12]}}-{{task.condition[:12]}}-{{task.seed}}-{{task.host}}-0badf00d"
(store.root / "work" / (stem + ".jsonl")).write_bytes({partial!r})
os._exit(0)  # dies holding the claim: no outcome, no cleanup
"""
    subprocess.run([sys.executable, "-c", killed], check=True, cwd=str(tmp_path))
    status = json.loads(invoke("status", "--campaign", str(path), "--json").output)
    (screen,) = [s for s in status["progress"] if s["stage"] == "screen"]
    assert screen["running"] == [] and [d["run"] for d in screen["dead"]] == [task.key]
    assert "gone" in screen["dead"][0]["why"]
    res = invoke("run", "screen", "--campaign", str(path), "--executor", "sim", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert len(out["closed_attempts"]) == 1 and out["executed"] == 17
    closed = store.get_json(out["closed_attempts"][0])["body"]
    assert closed["run"] == task.key and closed["reason"].startswith("killed:")
    assert store.get_bytes(closed["raw_log"]) == partial  # the partial log is evidence
    result = audit_store(store, allow_undecided=True)
    assert result.problems == []
    assert result.stages[0].attempts.interrupted == 1
    # its wall time from the journal, its training seconds from the partial log
    part = result.costs.interrupted
    assert part is not None
    assert part.training_gpu_hours == pytest.approx(0.5 / 3600)
