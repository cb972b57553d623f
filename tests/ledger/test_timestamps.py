"""RFC 3161 timestamps on freezes, decisions and anchors, against local TSAs (tests/tsa.py).

Each forgery is caught by name: a token over another id, from an untrusted root, tampered,
from a certificate expired at the token's time, and a decision stamped before its manifest.
Times are the TSAs' clocks, which the tests set: nothing here depends on the wall clock.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from rfc3161_client import HashAlgorithm, TimestampRequestBuilder

from audit.rederive import audit_store
from gateledger.cli.main import cli
from ledger.keys import load_signing_key
from ledger.store import Store
from ledger.timestamp import TimestampError, check_response, load_tsa_roots, stamp
from ledger.verify import verify_with_evidence
from stages.lookup import current_manifest, manifest_decision
from tests.tsa import LocalTSA

NOON = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def lab(tmp_path, sim_campaign):
    """A store and a campaign; `invoke(*args)` runs `ledger` on them."""
    store = tmp_path / ".ledger"
    runner = CliRunner()

    def invoke(*args, code=0):
        res = runner.invoke(
            cli, ["--store", str(store), "--host", "h1", *args], catch_exceptions=False
        )
        assert res.exit_code == code, res.output
        return res

    invoke("init")
    invoke("keygen", "--name", "op")
    return invoke, store, sim_campaign


def _stage(invoke, camp, *tsa_args):
    """Freeze, run (sim) and decide the screen; returns (manifest id, decision id)."""
    frozen = json.loads(
        invoke(
            "freeze", "screen", "--campaign", str(camp), "--sim-only", "--json", *tsa_args
        ).output
    )
    invoke("run", "screen", "--campaign", str(camp), "--executor", "sim")
    decided = json.loads(
        invoke("decide", "screen", "--campaign", str(camp), "--json", *tsa_args).output
    )
    return frozen, decided


def _tokens(store: Store) -> dict[str, dict]:
    out = {}
    for oid, _path in store.iter_objects():
        obj = store.get_json(oid) if store.get_bytes(oid).startswith(b'{"body"') else {}
        if obj.get("kind") == "timestamp":
            out[oid] = obj["body"]
    return out


def _plant_token(store: Store, body: dict) -> str:
    """What an operator with file access does: store a timestamp object and journal it."""
    token = store.put_unsigned("timestamp", body)
    store.journal().append("timestamped", object=token, key=load_signing_key("op"))
    return token


def test_tokens_from_two_tsas_verify_and_give_the_witnessed_interval(lab, tsa, tsa_b, tmp_path):
    invoke, store_path, camp = lab
    tsa_b.now = NOON.replace(minute=5)
    frozen, _ = _stage(invoke, camp, "--tsa", tsa.url, "--tsa", tsa_b.url)
    assert [s["ok"] for s in frozen["timestamps"]] == [True, True]
    tsa.later(hours=1)
    decided = json.loads(invoke("timestamp", frozen["manifest"], "--tsa", tsa.url, "--json").output)
    assert decided["timestamps"][0]["gen_time"].startswith("2026-03-01T13:00:00")
    roots = [str(tsa.root_pem(tmp_path)), str(tsa_b.root_pem(tmp_path))]
    res = invoke("verify", "--tsa-roots", roots[0], "--tsa-roots", roots[1], "--json")
    out = json.loads(res.output)
    assert out["ok"] and all(t["verified"] for t in out["timestamps"])
    assert len(out["timestamps"]) == 5  # two on the manifest, two on the decision, one late
    res = invoke("audit", "--tsa-roots", roots[0], "--tsa-roots", roots[1], "--json")
    audit = json.loads(res.output)
    (stage,) = audit["stages"]
    # the earliest token of each object bounds it: TSA A's noon, not B's 12:05 or A's 13:00
    assert stage["witness"]["frozen"]["no_later_than"] == "2026-03-01T12:00:00+00:00"
    assert stage["witness"]["frozen"]["tsa"] == tsa.url
    assert stage["witness"]["decided"]["no_later_than"] == "2026-03-01T12:00:00+00:00"
    assert stage["witness"]["checked_against"] == "reviewer TSA roots"
    assert {"name": "timestamps in order", "ok": True, "detail": ""} in stage["checks"]
    assert audit["timestamps"]["verified"] == 5 and audit["verdict"] == "clean"
    text = invoke("audit", "--tsa-roots", roots[0], "--tsa-roots", roots[1]).output
    assert "witnessed: frozen no later than 2026-03-01T12:00:00+00:00" in text


def test_without_roots_tokens_are_the_stores_claim(lab, tsa):
    invoke, store_path, camp = lab
    _stage(invoke, camp, "--tsa", tsa.url)
    out = json.loads(invoke("verify", "--json").output)
    assert out["ok"] and not any(t["verified"] for t in out["timestamps"])
    assert any("not checked against TSA roots" in n for n in out["notes"])
    text = invoke("audit").output
    assert "NOT checked: give --tsa-roots" in text


def test_a_token_over_another_id_is_caught(lab, tsa, tmp_path):
    invoke, store_path, camp = lab
    frozen, decided = _stage(invoke, camp, "--tsa", tsa.url)
    store = Store.open(store_path, host="h1")
    genuine = next(b for b in _tokens(store).values() if b["object"] == decided["decision"])
    # the decision's token, relabelled as the manifest's (an earlier-looking witness)
    forged = _plant_token(
        store, {**genuine, "object": frozen["manifest"], "object_kind": "manifest"}
    )
    problems = [str(p) for p in verify_with_evidence(store).problems]
    assert any(
        p.startswith(forged)
        and "does not stamp object" in p
        and "is not the id of the object it claims to stamp" in p
        for p in problems
    ), problems


def test_a_token_from_an_untrusted_root_is_caught(lab, tsa, tmp_path):
    invoke, store_path, camp = lab
    frozen, _ = _stage(invoke, camp, "--tsa", tsa.url)
    mine = LocalTSA("Operator's own TSA")  # the root the reviewer does not trust
    store = Store.open(store_path, host="h1")
    (own,) = stamp(
        store, frozen["manifest"], [tsa.url], key=load_signing_key("op")
    )  # a second genuine token
    with mine.serve():
        (forged,) = stamp(store, frozen["manifest"], [mine.url], key=load_signing_key("op"))
    assert forged.ok and own.ok
    roots = load_tsa_roots([tsa.root_pem(tmp_path)])
    problems = [str(p) for p in verify_with_evidence(store, tsa_roots=roots).problems]
    assert problems == [
        f"{forged.token}: timestamp token from {mine.url} does not verify "
        f"against the given TSA roots: certificate chain: unable to get local "
        f"issuer certificate"
    ]
    res = invoke("audit", "--tsa-roots", str(tsa.root_pem(tmp_path)), "--json", code=1)
    assert json.loads(res.output)["problems"][0]["object"] == forged.token


@pytest.mark.parametrize("where", ["signature", "gen_time"])
def test_a_tampered_token_is_caught(lab, tsa, tmp_path, where):
    invoke, store_path, camp = lab
    frozen, _ = _stage(invoke, camp, "--tsa", tsa.url)
    store = Store.open(store_path, host="h1")
    genuine = next(b for b in _tokens(store).values() if b["object"] == frozen["manifest"])
    der = bytearray(base64.b64decode(genuine["response"]))
    body = dict(genuine)
    if where == "signature":
        der[-1] ^= 0x01  # the last byte of the DER is the ECDSA signature's
    else:
        at = bytes(der).index(b"20260301120000Z")  # TSTInfo genTime: claim an hour earlier
        der[at : at + 15] = b"20260301110000Z"
        body["gen_time"] = "2026-03-01T11:00:00.000000+00:00"
    forged = _plant_token(store, {**body, "response": base64.b64encode(bytes(der)).decode()})
    roots = load_tsa_roots([tsa.root_pem(tmp_path)])
    problems = [str(p) for p in verify_with_evidence(store, tsa_roots=roots).problems]
    assert len(problems) == 1 and problems[0].startswith(
        f"{forged}: timestamp token from {tsa.url} does not verify against the given TSA roots"
    ), problems


def test_a_certificate_expired_at_the_tokens_time_is_caught(lab, tmp_path):
    invoke, store_path, camp = lab
    expired = LocalTSA("Expired TSA", not_after=datetime(2025, 1, 1, tzinfo=UTC))
    with expired.serve():
        frozen, _ = _stage(invoke, camp, "--tsa", expired.url)
    roots = load_tsa_roots([expired.root_pem(tmp_path)])
    problems = [
        str(p) for p in verify_with_evidence(Store.open(store_path), tsa_roots=roots).problems
    ]
    assert len(problems) == 2 and all(
        "certificate chain: certificate has expired" in p for p in problems
    ), problems


def test_a_decision_token_earlier_than_its_manifests_is_caught(lab, tsa, tmp_path):
    invoke, store_path, camp = lab
    invoke("freeze", "screen", "--campaign", str(camp), "--sim-only")  # not stamped now
    invoke("run", "screen", "--campaign", str(camp), "--executor", "sim")
    tsa.now = NOON
    decided = json.loads(
        invoke("decide", "screen", "--campaign", str(camp), "--json", "--tsa", tsa.url).output
    )
    store = Store.open(store_path, host="h1")
    manifest = current_manifest(store, "t", "screen").id
    tsa.later(hours=2)  # the manifest is stamped only afterwards
    invoke("timestamp", manifest, "--tsa", tsa.url)
    roots = str(tsa.root_pem(tmp_path))
    out = json.loads(invoke("audit", "--tsa-roots", roots, "--json", code=1).output)
    decision = decided["decision"]
    assert [p["object"] for p in out["problems"]] == [decision]
    assert (
        "decision timestamped at 2026-03-01T12:00:00+00:00" in out["problems"][0]["message"]
        and "earlier than its manifest" in out["problems"][0]["message"]
    )
    (stage,) = out["stages"]
    assert stage["verdict"] == "problems"
    (order,) = [c for c in stage["checks"] if c["name"] == "timestamps in order"]
    assert order["ok"] is False
    assert manifest_decision(store, manifest).id == decision


def test_an_anchor_token_witnesses_what_its_heads_cover(lab, tsa, tmp_path):
    invoke, store_path, camp = lab
    frozen, _ = _stage(invoke, camp)  # nothing stamped directly
    out = json.loads(invoke("anchor", "--tsa", tsa.url, "--json").output)
    assert out["timestamps"][0]["ok"]
    roots = str(tsa.root_pem(tmp_path))
    audit = json.loads(invoke("audit", "--tsa-roots", roots, "--json").output)
    (stage,) = audit["stages"]
    assert stage["witness"]["frozen"] == {
        "no_later_than": "2026-03-01T12:00:00+00:00",
        "token": out["timestamps"][0]["token"],
        "tsa": tsa.url,
        "via": f"anchor {out['anchor']}",
    }
    assert stage["witness"]["decided"]["via"] == f"anchor {out['anchor']}"
    assert list(audit["timestamps"]["anchors"]) == [out["anchor"]]


def test_a_failing_tsa_leaves_the_freeze_intact_and_says_so(lab, tsa, tsa_b):
    invoke, store_path, camp = lab
    tsa_b.mode = "http-error"
    res = CliRunner().invoke(
        cli,
        [
            "--store",
            str(store_path),
            "--host",
            "h1",
            "freeze",
            "screen",
            "--campaign",
            str(camp),
            "--sim-only",
            "--tsa",
            tsa_b.url,
            "--tsa",
            tsa.url,
        ],
    )
    assert res.exit_code == 0, res.output
    assert f"warning: TSA {tsa_b.url} answered HTTP 500" in res.output
    assert "the freeze stands" in res.output and f"timestamped by {tsa.url}" in res.output
    store = Store.open(store_path, host="h1")
    manifest = current_manifest(store, "t", "screen").id
    assert len(_tokens(store)) == 1
    # a refusal, a token over another hash and an unreachable TSA are each said, not stored
    tsa_b.mode = "rejection"
    tsa.mode = "wrong-imprint"
    results = stamp(
        store, manifest, [tsa_b.url, tsa.url, "http://127.0.0.1:9/none"], key=load_signing_key("op")
    )
    assert [r.ok for r in results] == [False, False, False]
    assert "the TSA refused: not today" in results[0].error
    assert "its message imprint" in results[1].error
    assert "cannot be reached" in results[2].error
    assert len(_tokens(store)) == 1 and verify_with_evidence(store).problems == []
    # retried later with `ledger timestamp`
    tsa.mode = "ok"
    res = invoke("timestamp", manifest, "--tsa", tsa.url, "--json")
    assert json.loads(res.output)["timestamps"][0]["ok"] and len(_tokens(store)) == 2
    tsa.mode = "http-error"
    assert "answered HTTP 500" in invoke("timestamp", manifest, "--tsa", tsa.url, code=1).output


def test_the_store_setting_is_used_by_freeze_decide_anchor_and_campaign(lab, tsa):
    invoke, store_path, camp = lab
    assert json.loads(invoke("settings", "--json").output) == {"tsa": []}
    invoke("settings", "--tsa", tsa.url)
    frozen, decided = _stage(invoke, camp)
    assert frozen["timestamps"][0]["tsa"] == tsa.url and decided["timestamps"][0]["ok"]
    anchor = json.loads(invoke("anchor", "--json", "--no-tsa").output)
    assert anchor["timestamps"] == []
    res = CliRunner().invoke(
        cli,
        [
            "--store",
            str(store_path),
            "campaign",
            "--campaign",
            str(camp),
            "--executor",
            "sim",
            "--until",
            "gate",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    walked = json.loads(res.output)
    assert [s["object"][:12] for s in walked["timestamps"]] == [
        s["manifest"][:12] if s["action"] == "froze" else s["decision"][:12]
        for s in walked["steps"]
        if s["action"] in ("froze", "decided")
    ]
    assert tsa.requests == 4
    invoke("settings", "--clear-tsa")
    assert json.loads(invoke("settings", "--json").output) == {"tsa": []}
    res = invoke("settings", "--tsa", "ftp://x", code=2)
    assert "not an http:// or https:// URL" in res.output


def test_timestamp_refuses_other_kinds_and_bad_roots(lab, tsa, tmp_path):
    invoke, store_path, camp = lab
    _stage(invoke, camp)
    store = Store.open(store_path, host="h1")
    run = next(
        oid
        for oid, _ in store.iter_objects()
        if store.get_bytes(oid).startswith(b'{"body"') and store.get_json(oid)["kind"] == "run"
    )
    res = invoke("timestamp", run, "--tsa", tsa.url, code=2)
    assert "timestamps are for manifest, decision, anchor" in res.output
    assert "no timestamp authority" in invoke("timestamp", run, code=2).output
    bad = tmp_path / "roots.pem"
    bad.write_text("not a certificate")
    res = invoke("verify", "--tsa-roots", str(bad), code=2)
    assert f"--tsa-roots {bad}: no PEM certificate in it" in res.output
    assert audit_store(store).timestamps["tokens"] == 0


def test_check_response_names_what_is_wrong(tsa):
    data = b"an object"
    request = TimestampRequestBuilder().data(data).hash_algorithm(HashAlgorithm.SHA256).build()
    der = tsa.respond(request.as_bytes())
    oid = hashlib.sha256(data).hexdigest()
    assert check_response(der, oid, request.nonce).tst_info.gen_time == NOON
    with pytest.raises(TimestampError, match="does not echo the request's nonce"):
        check_response(der, oid, request.nonce + 1)
    with pytest.raises(TimestampError, match="is not the id of the object"):
        check_response(der, "0" * 64)
