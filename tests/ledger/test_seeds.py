"""Seeds bound to the frozen manifest: each run's effective seed follows from the manifest id,
the condition id and the cell's declared seed; a log whose seed does not is caught."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from audit.rederive import audit_store
from ledger.binding import header_problems
from ledger.errors import LedgerError
from ledger.ingest import ingest, record_run_start
from ledger.keys import generate_key
from ledger.manifest import freeze, load_manifest
from ledger.plan_model import RunnerIdentity
from ledger.rawlog import parse_raw_log
from ledger.seeds import derive_seed, effective_seed
from ledger.store import Store
from stages.campaign import load_campaign
from stages.execute import manifest_tasks, run_stage
from stages.executors.local import LocalExecutor
from stages.executors.sim import SimExecutor
from stages.lookup import current_manifest, manifest_runs
from stages.plan import freeze_stage
from stages.surface import SimParams, simulate_log
from tests.ledger.conftest import C0, freeze_as_before, make_log, make_plan

REPO = Path(__file__).resolve().parents[2]


def test_rule_matches_sha256sum_of_the_inputs():
    # `printf '%s' "m:c:0" | sha256sum` starts 8e6502937e25f2c8; the top bit is cleared
    assert derive_seed("sha256-v1", "m", "c", 0) == 0x0E6502937E25F2C8
    # "a"*64 ":" "b"*64 ":1" starts c4e7e2dbdc03aedd -> 44e7e2dbdc03aedd
    assert derive_seed("sha256-v1", "a" * 64, "b" * 64, 1) == 0x44E7E2DBDC03AEDD
    # sha256-v2 (the default) keeps the first 4 bytes: 0x8e650293 and 0xc4e7e2db
    assert derive_seed("sha256-v2", "m", "c", 0) == 0x8E650293
    assert derive_seed("sha256-v2", "a" * 64, "b" * 64, 1) == 0xC4E7E2DB
    with pytest.raises(LedgerError, match="unknown seed rule"):
        derive_seed("md5-v0", "m", "c", 0)


def test_old_manifests_have_no_rule_and_keep_declared_seeds(store, key):
    mid = freeze_as_before(store, make_plan(), key)  # a plan without "seeds", as before
    body = load_manifest(store, mid)
    assert body.seeds is None and effective_seed(mid, body, C0, 0) is None
    assert header_problems(mid, body, C0, 0, "h1", parse_raw_log(make_log(mid))) == []
    wrong = parse_raw_log(make_log(mid, seed=5))
    assert header_problems(mid, body, C0, 0, "h1", wrong) == [
        "header seed 5 is not the declared seed 0"
    ]
    record_run_start(store, mid, C0, 0, "h1")
    ingest(store, make_log(mid), manifest=mid, condition=C0, seed=0, host="h1")
    assert not [f for f in audit_store(store).problems if "seed" in f.message]


def test_freeze_refuses_an_unknown_rule(store, key):
    with pytest.raises(LedgerError, match="plan key 'seeds': unknown rule 'md5-v0'"):
        freeze(store, {**make_plan(), "seeds": {"rule": "md5-v0"}}, key)


@pytest.fixture
def sim_store(tmp_path, sim_campaign):
    store = Store.init(tmp_path / ".ledger", host="h1")
    key = generate_key("tester")
    camp = load_campaign(sim_campaign)
    freeze_stage(store, camp, "screen", key, for_simulation=True)
    return store, key, camp, SimExecutor(SimParams.from_table(camp.sim, "ABCDE"))


def test_sim_runs_carry_the_effective_seed_and_audit_clean(sim_store):
    store, _key, camp, sim = sim_store
    run_stage(store, camp, "screen", sim, key=_key, progress=False)
    manifest = current_manifest(store, camp.name, "screen")
    assert manifest.body.seeds is not None and manifest.body.seeds.rule == "sha256-v2"
    for run in manifest_runs(store, manifest.id):
        header = parse_raw_log(store.get_bytes(run.body.raw_log)).header
        expected = derive_seed("sha256-v2", manifest.id, run.body.condition, 0)
        assert header.seed == header.effective_seed == expected != 0
        assert header.seed_inputs.to_dict() == {
            "manifest": manifest.id,
            "condition": run.body.condition,
            "seed": 0,
        }
        assert run.body.seed == 0  # the record keeps the declared seed (the cell)
    assert audit_store(store, allow_undecided=True).problems == []


def _log_for(manifest, cond: str, *, derived_from: str) -> bytes:
    """A sim log of `cond` whose seeds were derived from manifest id `derived_from`."""
    info = manifest.body.conditions[cond]
    raw = simulate_log(
        SimParams.from_table({}, "ABCDE"),
        condition=cond,
        name=info.name,
        config=info.run_config,
        coded=info.coded,
        budget_s=manifest.body.budget_s,
        seed=0,
        host="h1",
        manifest=derived_from,
        effective_seed=derive_seed("sha256-v2", derived_from, cond, 0),
    )
    lines = [json.loads(x) for x in raw.splitlines()]
    lines[0]["manifest"] = manifest.id  # ... and then relabelled to cite the official plan
    return "".join(json.dumps(x) + "\n" for x in lines).encode()


def test_a_log_seeded_from_another_manifest_is_refused_and_caught(sim_store):
    store, _key, camp, _sim = sim_store
    manifest = current_manifest(store, camp.name, "screen")
    cond = manifest.body.runs[0].condition
    draft = "d" * 64  # a plan that existed before the official one (or never)
    raw = _log_for(manifest, cond, derived_from=draft)
    parsed = parse_raw_log(raw)
    found = header_problems(manifest.id, manifest.body, cond, 0, "h1", parsed)
    assert any("is not the effective seed" in p for p in found), found
    assert any("seed_inputs" in p for p in found), found
    record_run_start(store, manifest.id, cond, 0, "h1", key=_key)
    with pytest.raises(LedgerError, match="is not the effective seed"):
        ingest(store, raw, manifest=manifest.id, condition=cond, seed=0, host="h1", key=_key)
    # an orchestrator (holding the key) that records it anyway is caught by the audit
    key = f"{cond}/0/h1"
    record = {
        "manifest": manifest.id,
        "stage": "screen",
        "condition": cond,
        "seed": 0,
        "host": "h1",
        "run": key,
        "raw_log": store.put_bytes(raw),
        "format": "jsonl",
        "runner": "sim",
        "status": parsed.status,
        "metrics": parsed.metrics,
        "gpus": 1,
        "recorded_at": parsed.header.started_at,
        "recorder": _key.key_id,
    }
    rid = store.put_signed("run", record, _key)
    store.journal().append("run_recorded", object=rid, run=key, manifest=manifest.id, key=_key)
    found = [str(f) for f in audit_store(store).problems]
    assert any(f.startswith(rid) and "is not the effective seed" in f for f in found), found


def test_a_log_with_the_declared_seed_under_a_rule_is_caught(sim_store):
    store, _key, camp, _sim = sim_store
    manifest = current_manifest(store, camp.name, "screen")
    cond = manifest.body.runs[0].condition
    info = manifest.body.conditions[cond]
    raw = simulate_log(
        SimParams.from_table({}, "ABCDE"),
        condition=cond,
        name=info.name,
        config=info.run_config,
        coded=info.coded,
        budget_s=manifest.body.budget_s,
        seed=0,
        host="h1",
        manifest=manifest.id,
    )  # no effective seed: trained with seed 0
    found = header_problems(manifest.id, manifest.body, cond, 0, "h1", parse_raw_log(raw))
    assert any("header seed 0 is not the effective seed" in p for p in found), found


def test_executors_hand_the_effective_seed_to_the_trainer(sim_store, tmp_path):
    store, _key, camp, _sim = sim_store
    manifest = current_manifest(store, camp.name, "screen")
    task = manifest_tasks(manifest.id, manifest.body)[0]
    expected = derive_seed("sha256-v2", manifest.id, task.condition, task.seed)
    assert task.effective_seed == task.run_seed == expected
    argv, _ = LocalExecutor(workdir=tmp_path).command(task, tmp_path / "c.json", tmp_path / "l")
    assert argv[argv.index("--seed") + 1] == str(expected)
    assert argv[argv.index("--seed-from") + 1] == f"{manifest.id}:{task.condition}:0"
    foreign = type(task)(
        **{
            **task.__dict__,
            "runner": RunnerIdentity(
                kind="command", command="train --seed {seed} --cell-seed {declared_seed}"
            ),
        }
    )
    argv, _ = LocalExecutor(workdir=tmp_path).command(foreign, tmp_path / "c.json", tmp_path / "l")
    assert argv[-1] == f"train --seed {expected} --cell-seed 0"


def test_runner_records_seed_inputs(tmp_path):
    from tests.runner.conftest import TINY

    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog. " * 400)
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(TINY))
    log = tmp_path / "run.jsonl"
    base = [
        sys.executable,
        "-m",
        "runner",
        "--config",
        str(cfg),
        "--budget",
        "5m",
        "--seed",
        "12345",
        "--log",
        str(log),
        "--data",
        str(text),
        "--steps",
        "1",
        "--threads",
        "1",
        "--device",
        "cpu",
        "--quiet",
    ]
    proc = subprocess.run(
        base + ["--manifest", "m" * 64, "--seed-from", f"{'m' * 64}:cond:3"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ},
    )
    assert proc.returncode == 0, proc.stderr
    header = json.loads(log.read_text().splitlines()[0])
    assert header["seed"] == header["effective_seed"] == 12345
    assert header["seed_inputs"] == {"manifest": "m" * 64, "condition": "cond", "seed": 3}
    bad = subprocess.run(
        base + ["--manifest", "x" * 64, "--seed-from", f"{'m' * 64}:cond:3"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bad.returncode == 2 and "--seed-from names manifest" in bad.stderr
    bad = subprocess.run(
        base + ["--seed-from", "only:two"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert bad.returncode == 2 and "MANIFEST:CONDITION:SEED" in bad.stderr


def test_a_v1_manifest_keeps_verifying_under_its_own_rule(store, key):
    # a store frozen under the first rule: its runs' seeds follow sha256-v1, not the default
    mid = freeze(store, {**make_plan(), "seeds": {"rule": "sha256-v1"}}, key)
    body = load_manifest(store, mid)
    v1 = derive_seed("sha256-v1", mid, C0, 0)
    assert effective_seed(mid, body, C0, 0) == v1 > 2**32

    def log_with(seed: int) -> bytes:
        head, rest = make_log(mid, seed=seed).split(b"\n", 1)
        header = json.loads(head)
        header["effective_seed"] = seed
        header["seed_inputs"] = {"manifest": mid, "condition": C0, "seed": 0}
        return json.dumps(header).encode() + b"\n" + rest

    assert header_problems(mid, body, C0, 0, "h1", parse_raw_log(log_with(v1))) == []
    v2 = derive_seed("sha256-v2", mid, C0, 0)
    assert header_problems(mid, body, C0, 0, "h1", parse_raw_log(log_with(v2)))
