"""benchmarks/gpu_check.py: its pieces, and its CPU fallback end to end (so the accelerator
is never the first place it runs)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from runner import schema
from stages.campaign import load_campaign

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "benchmarks" / "gpu_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu_check = _module()


def test_schema_is_valid_json_schema():
    jsonschema.Draft202012Validator.check_schema(gpu_check.SCHEMA)


def test_toml_writer_round_trips_the_paper_campaign():
    doc = tomllib.loads(gpu_check.PAPER.read_text())
    assert tomllib.loads(gpu_check.dump_toml(doc)) == doc


def test_derived_campaign_is_the_first_stage_pointed_at_the_data(tmp_path):
    doc, stage = gpu_check.derive_campaign(gpu_check.PAPER, "/data/x", None, tiny=False)
    paper = tomllib.loads(gpu_check.PAPER.read_text())
    assert stage == paper["stages"][0]["name"] == "screen-2m"
    assert doc["stages"] == [paper["stages"][0]] and doc["base"] == paper["base"]
    assert doc["factors"] == paper["factors"] and doc["campaign"]["data"] == "/data/x"
    tiny, _ = gpu_check.derive_campaign(gpu_check.PAPER, "/data/x", "1s", tiny=True)
    assert tiny["stages"][0]["budget"] == "1s" and tiny["base"]["depth"] == 1
    assert tiny["factors"]["B"] == {"key": "depth", "levels": [1, 2]}
    path = tmp_path / "campaign.toml"
    path.write_text(gpu_check.dump_toml(tiny))
    camp = load_campaign(path)  # the ledger accepts it
    assert [s.name for s in camp.stages] == ["screen-2m"]


def test_synthetic_corpus_follows_its_successor_rule(tmp_path):
    ids, successor = gpu_check.synthetic_ids(40_000, 512, seed=3)
    assert sorted(successor.tolist()) == list(range(512))
    # P(next = successor(previous)) = P(rule fires) x P(previous was a draw) + chance = 1/4 + ~0.01
    assert 0.22 < np.mean(ids[1:] == successor[ids[:-1]]) < 0.30
    shuffled = np.random.default_rng(0).permutation(ids)
    assert np.mean(shuffled[1:] == successor[shuffled[:-1]]) < 0.03
    folder = gpu_check.synthetic_corpus(tmp_path / "tok", 40_000, 512, tokens=True, seed=3)
    train = np.fromfile(folder / "train.bin", dtype=np.uint16)
    val = np.fromfile(folder / "val.bin", dtype=np.uint16)
    words = gpu_check.synthetic_words(512, seed=3)
    assert len(set(words)) == 512 and len(val) == 4_000
    assert np.array_equal(np.concatenate([train, val]), ids)
    assert json.loads((folder / "token_bytes.json").read_text()) == [len(w) + 1 for w in words]
    text = gpu_check.synthetic_corpus(tmp_path / "bytes", 40_000, 512, tokens=False, seed=3)
    assert text.read_text(encoding="utf-8").split(" ") == [words[i] for i in ids]


@pytest.mark.slow
def test_cpu_fallback_runs_end_to_end_and_matches_its_schema(tmp_path):
    out_dir = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--out", str(out_dir)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=600,
    )
    out = json.loads(proc.stdout)
    assert proc.returncode == 0, (out["errors"], proc.stderr[-2000:])
    jsonschema.validate(out, gpu_check.SCHEMA)
    assert gpu_check.schema_errors(out) == [] and out["ok"] and out["errors"] == []
    assert json.loads((out_dir / "gpu_check.json").read_text()) == out
    assert out["shape"] == "tiny" and out["config"]["depth"] == 1
    for name in ("reference", "no_compile"):
        run = out[name]
        assert run["phase"] == "ok" and run["status"] == "ok" and run["val_bpb"] > 0
        records = schema.validate_log(out_dir / run["log"])
        assert records[0]["depth"] == 1 and records[-1]["val_bpb"] == run["val_bpb"]
    assert out["no_compile"]["compile"] is False
    replay = out["replay"]
    assert replay["phase"] == "ok" and replay["steps"] == 4
    assert replay["identical"] is True and replay["max_abs_loss_diff"] == 0.0  # CPU: bit for bit
    ledger = out["ledger"]
    assert ledger["phase"] == "ok" and ledger["executed"] == 2 and ledger["statuses"] == {"ok": 2}
    assert ledger["audit_exit"] == 0 and ledger["audit_ok"] is True
    assert [c["command"] for c in ledger["commands"]] == [
        "ledger init",
        "ledger keygen",
        "ledger freeze",
        "ledger run",
        "ledger audit",
    ]
    assert len(ledger["runs"]) == 2 and all(r["status"] == "ok" for r in ledger["runs"])
    assert out["goal"]["met"] is None  # no MFU goal off the GPU


def test_schema_check_names_a_missing_phase():
    out = {"schema": gpu_check.SCHEMA_VERSION, "ok": True, "errors": []}
    problems = gpu_check.schema_errors(out)
    assert any(p.startswith("reference: missing") for p in problems)
