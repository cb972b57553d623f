"""Seeds the operator cannot choose: a freeze witnessed by a timestamp authority derives each
run's seed from the manifest id and the TSA's token, which nobody knows before the TSA
signs; the audit says per stage whether seeds are witness-bound, manifest-bound (grindable
by the key holder) or unbound. Checked against the rule computed by hand here."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from click.testing import CliRunner

from gateledger.cli.main import cli
from ledger.rawlog import parse_raw_log
from ledger.store import Store
from stages.lookup import current_manifest, manifest_runs


@pytest.fixture
def lab(tmp_path, sim_campaign):
    root = tmp_path / ".ledger"
    runner = CliRunner()

    def invoke(*args, code=0):
        res = runner.invoke(cli, ["--store", str(root), "--host", "h1", *args])
        assert res.exit_code == code, res.output
        return res

    invoke("init")
    invoke("keygen", "--name", "op")
    return invoke, root, sim_campaign


def _by_hand(manifest: str, token_der: bytes, condition: str, seed: int) -> int:
    witness = hashlib.sha256(token_der).hexdigest()
    digest = hashlib.sha256(f"{manifest}:{witness}:{condition}:{seed}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _first_token(store: Store, manifest: str) -> tuple[str, bytes]:
    events = store.journal().events()
    frozen = next(i for i, e in enumerate(events) if e.object == manifest)
    for event in events[frozen + 1 :]:
        if event.kind == "timestamped":
            body = store.get_json(event.object)["body"]
            if body["object"] == manifest:
                return event.object, base64.b64decode(body["response"])
    raise AssertionError("no token")


def test_a_witnessed_freeze_binds_every_seed_to_its_token(lab, tsa, tmp_path):
    invoke, root, camp = lab
    tsa.now = datetime.now(UTC)
    out = json.loads(
        invoke(
            "freeze", "screen", "--campaign", str(camp), "--sim-only", "--tsa", tsa.url, "--json"
        ).output
    )
    assert out["seeds"] == {"rule": "sha256-v3-witness"}
    invoke("run", "screen", "--campaign", str(camp), "--executor", "sim")
    invoke("decide", "screen", "--campaign", str(camp))
    store = Store.open(root, host="h1")
    manifest = current_manifest(store, "t", "screen")
    token, der = _first_token(store, manifest.id)
    for run in manifest_runs(store, manifest.id):
        header = parse_raw_log(store.get_bytes(run.body.raw_log)).header
        expected = _by_hand(manifest.id, der, run.body.condition, 0)
        assert header.seed == header.effective_seed == expected
        assert header.seed_inputs.witness == hashlib.sha256(der).hexdigest()
    root_pem = str(tsa.root_pem(tmp_path))
    audit = json.loads(invoke("audit", "--tsa-roots", root_pem, "--json").output)
    (stage,) = audit["stages"]
    assert audit["verdict"] == "clean"
    assert stage["seeds"]["binding"] == "witness-bound" and stage["seeds"]["token"] == token
    assert f"token {token[:12]} from {tsa.url}" in stage["seeds"]["detail"]
    # without the reviewer's roots the token could be the store's own: said so
    stage = json.loads(invoke("audit", "--json").output)["stages"][0]
    assert stage["seeds"]["binding"] == "witness-bound (store-asserted token)"


def test_without_a_witness_seeds_are_manifest_bound_and_said_grindable(lab):
    invoke, root, camp = lab
    invoke("freeze", "screen", "--campaign", str(camp), "--sim-only")
    invoke("run", "screen", "--campaign", str(camp), "--executor", "sim")
    invoke("decide", "screen", "--campaign", str(camp))
    (stage,) = json.loads(invoke("audit", "--json").output)["stages"]
    assert stage["seeds"]["rule"] == "sha256-v2"
    assert stage["seeds"]["binding"] == "manifest-bound"
    assert "grindable by the key holder" in stage["seeds"]["detail"]


def test_a_token_fetched_long_after_the_freeze_is_a_finding(lab, tsa, tmp_path):
    """The TSA refused at freeze time; a token fetched an hour later still binds the seeds,
    but meanwhile tokens could have been fetched until the seeds suited: a finding."""
    invoke, root, camp = lab
    tsa.mode = "rejection"
    res = invoke(
        "freeze", "screen", "--campaign", str(camp), "--sim-only", "--tsa", tsa.url, "--json"
    )
    out, _ = json.JSONDecoder().raw_decode(res.output)  # a warning about the TSA follows
    manifest = out["manifest"]
    body = Store.open(root, host="h1").get_json(manifest)["body"]
    res = invoke("run", "screen", "--campaign", str(camp), "--executor", "sim", code=2)
    assert "bound to its timestamp token, and none is journaled yet" in res.output
    tsa.mode = "ok"
    frozen_at = datetime.fromisoformat(body["frozen_at"])
    tsa.now = frozen_at + timedelta(hours=1)
    invoke("timestamp", manifest, "--tsa", tsa.url)
    invoke("run", "screen", "--campaign", str(camp), "--executor", "sim")
    invoke("decide", "screen", "--campaign", str(camp))
    root_pem = str(tsa.root_pem(tmp_path))
    audit = json.loads(invoke("audit", "--tsa-roots", root_pem, "--json", code=1).output)
    (finding,) = [p for p in audit["problems"] if p["check"] == "seeds bound"]
    # the TSA's time has whole seconds: an hour after a freeze at x.y s reads 3599 or 3600
    assert finding["object"] == manifest
    assert re.search(r"signed 3[56]\d\d s after the freeze", finding["message"]), finding
