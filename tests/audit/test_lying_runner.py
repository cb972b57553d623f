"""A runner that lies, through the public path: `ledger run` with a foreign jsonl command.

Each lie is either refused at ingest (not recorded, so no decision can use it) or, when a
modified orchestrator records it anyway, caught by `ledger audit` by name. The same runner,
honest, audits clean. Expected verdicts are what the lie is, not what the code returns.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.rederive import audit_store
from gateledger.cli.main import cli
from ledger.keys import load_signing_key
from ledger.plan_model import Manifest
from ledger.rawlog import parse_raw_log
from ledger.seeds import effective_seed
from ledger.store import Store
from stages.lookup import current_manifest

LIAR = Path(__file__).with_name("liar.py")

CAMPAIGN = """
[campaign]
name = "lies"
runner = {{ command = "{python} {liar} --config {{config}} --seed {{seed}} --declared-seed {{declared_seed}} --log {{log}} --manifest {{manifest}} --host {{host}} --budget {{budget}}", format = "jsonl" }}
[base]
matrix_lr = 0.02
weight_decay = 0.1
[conditions]
good = {{ matrix_lr = 0.01 }}
mid = {{ matrix_lr = 0.02 }}
worst = {{ matrix_lr = 0.03 }}
[[stages]]
name = "gate"
budget = "5m"
add = ["good", "mid", "worst"]
seeds = [0, 1]
hosts = ["local"]
rule = {{ top_k = 1 }}
"""

# lie -> (victim's matrix_lr, words the refusal or finding must contain)
LIES = {
    "swap": (0.03, "header matrix_lr 0.01 is not the condition's 0.03"),
    "config": (0.03, "header weight_decay 0.0 is not the condition's 0.1"),
    "seed": (0.01, "is not the effective seed"),
    "budget": (0.01, "header budget_s 1500.0 is not the manifest's 300"),
    "timeout": (0.01, "status timeout but its log has a finished evaluation"),
    "noval": (0.01, "no finite val_bpb"),
    "evaldiff": (0.03, "disagrees with the eval line"),
    "longtrain": (0.02, "claims 180000 training seconds"),
}


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """A store with the liar campaign frozen; returns (invoke, store path, campaign path)."""
    camp = tmp_path / "lies.toml"
    camp.write_text(CAMPAIGN.format(python=sys.executable, liar=LIAR))
    store = tmp_path / ".ledger"
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(
            cli, ["--store", str(store), "--host", "local", *args], catch_exceptions=False
        )

    assert invoke("init").exit_code == 0
    assert invoke("keygen", "--name", "op").exit_code == 0
    res = invoke("freeze", "gate", "--campaign", str(camp))
    assert res.exit_code == 0, res.output
    return invoke, store, camp


def test_the_honest_runner_audits_clean(lab):
    invoke, store, camp = lab
    res = invoke("run", "gate", "--campaign", str(camp))
    assert res.exit_code == 0, res.output
    decided = invoke("decide", "gate", "--campaign", str(camp), "--json")
    body = json.loads(decided.output)
    assert [body["conditions"][c]["name"] for c in body["promoted"]] == ["good"]
    result = audit_store(Store.open(store))
    assert result.verdict == "clean", [str(f) for f in result.problems]


@pytest.mark.parametrize("lie", sorted(LIES))
def test_each_lie_is_refused_at_ingest_and_never_decided(lab, monkeypatch, lie):
    invoke, store, camp = lab
    victim, words = LIES[lie]
    monkeypatch.setenv("LIE", lie)
    monkeypatch.setenv("LIE_TARGET", str(victim))
    res = invoke("run", "gate", "--campaign", str(camp))
    assert res.exit_code == 1, res.output
    assert words in res.output, res.output
    # the lying runs are not recorded, so the gate cannot be decided on them
    res = invoke("decide", "gate", "--campaign", str(camp))
    assert res.exit_code == 2 and "not recorded yet" in res.output
    result = audit_store(Store.open(store), allow_undecided=True)
    assert [s.verdict for s in result.stages] == ["undecided"]


def plant(store: Store, manifest: str, cond: str, seed: int, host: str, raw: bytes) -> str:
    """What an orchestrator with the checks removed records: the log's own status and
    metrics, its start and record journaled (the old, trusting ingest)."""
    from datetime import UTC, datetime

    parsed = parse_raw_log(raw)
    key = f"{cond}/{seed}/{host}"
    signer = load_signing_key("op")  # the orchestrator holds the store's key
    journal = store.journal()
    journal.append("run_started", run=key, manifest=manifest, key=signer)
    record = {
        "manifest": manifest,
        "stage": "gate",
        "condition": cond,
        "seed": seed,
        "host": host,
        "run": key,
        "raw_log": store.put_bytes(raw),
        "format": "jsonl",
        "runner": parsed.runner,
        "status": parsed.status,
        "metrics": parsed.metrics,
        "gpus": 1,
        "recorded_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "recorder": signer.key_id,
    }
    rid = store.put_signed("run", record, signer)
    journal.append("run_recorded", object=rid, run=key, manifest=manifest, key=signer)
    return rid


def liar_log(tmp_path: Path, body: dict, cond: str, seed: int, lie: str, victim: float) -> bytes:
    """Run the liar once by hand, as the campaign's command would."""
    info = body["conditions"][cond]
    config, log = tmp_path / f"{cond[:8]}-{seed}.json", tmp_path / f"{cond[:8]}-{seed}.jsonl"
    config.write_text(json.dumps(info["config"]))
    plan = Manifest.model_validate({k: v for k, v in body.items() if k != "_id"})
    effective = effective_seed(body_id(body), plan, cond, seed)  # what `{seed}` is
    subprocess.run(
        [
            sys.executable,
            str(LIAR),
            "--config",
            str(config),
            "--seed",
            str(effective),
            "--declared-seed",
            str(seed),
            "--log",
            str(log),
            "--manifest",
            body_id(body),
            "--host",
            "local",
            "--budget",
            "300",
        ],
        check=True,
        env={"LIE": lie, "LIE_TARGET": str(victim), "PATH": "/usr/bin:/bin"},
    )
    return log.read_bytes()


def body_id(body: dict) -> str:
    return body["_id"]


@pytest.mark.parametrize("lie", sorted(LIES))
def test_each_lie_recorded_anyway_is_caught_by_the_audit(lab, tmp_path, lie):
    invoke, store_path, camp = lab
    victim, words = LIES[lie]
    store = Store.open(store_path, host="local")
    manifest = current_manifest(store, "lies", "gate")
    body = {**manifest.body.to_dict(), "_id": manifest.id}
    for run in body["runs"]:
        raw = liar_log(tmp_path, body, run["condition"], run["seed"], lie, victim)
        plant(store, manifest.id, run["condition"], run["seed"], run["host"], raw)
    # the modified orchestrator decides on what it recorded: the wrong decision is signed
    res = invoke("decide", "gate", "--campaign", str(camp))
    assert res.exit_code == 0, res.output
    result = audit_store(store)
    found = [str(f) for f in result.problems]
    assert result.verdict == "problems" and any(words in f for f in found), found
    assert [s.verdict for s in result.stages] == ["problems"]
    # the audit's exit code agrees with the verdict
    assert invoke("audit").exit_code == 1
