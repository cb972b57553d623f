"""`ledger export --in-toto DIR`: DSSE-enveloped in-toto Statements, checked with independent
implementations (securesystemslib's DSSE and Ed25519, in-toto-attestation's Statement
validator), never with our own code."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from google.protobuf import json_format
from in_toto_attestation.v1 import statement_pb2
from in_toto_attestation.v1.statement import Statement
from securesystemslib.dsse import Envelope
from securesystemslib.exceptions import VerificationError
from securesystemslib.signer import SSlibKey

from gateledger.cli.main import cli
from ledger.keys import generate_key
from ledger.manifest import freeze
from ledger.store import Store
from stages.lookup import current_manifest, manifest_decision
from tests.audit.conftest import rewrite_journal
from tests.ledger.conftest import make_plan


@pytest.fixture
def exported(done, tmp_path):
    """The two-gate sim campaign exported as in-toto attestations with its key."""
    store, key, _camp, _sim = done
    folder = tmp_path / "attest"
    res = CliRunner().invoke(
        cli,
        [
            "--store",
            str(store.root),
            "export",
            "--in-toto",
            str(folder),
            "--key",
            key.name,
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    return store, key, folder, json.loads(res.output)["in_toto"]


def _sslib_key(folder, key_id):
    public = load_pem_public_key((folder / f"{key_id}.pub.pem").read_bytes())
    return SSlibKey.from_crypto(public, keyid=key_id)


def test_every_manifest_and_decision_verifies_with_independent_libraries(exported):
    store, key, folder, out = exported
    kinds = sorted(row["kind"] for row in out["written"])
    assert kinds == ["decision", "decision", "manifest", "manifest"] and out["skipped"] == []
    verifier = _sslib_key(folder, key.key_id)
    for row in out["written"]:
        envelope = Envelope.from_dict(json.loads((folder / row["file"]).read_text()))
        assert envelope.payload_type == "application/vnd.in-toto+json"
        assert list(envelope.verify([verifier], threshold=1)) == [key.key_id]
        statement = json.loads(envelope.payload)
        parsed = json_format.Parse(envelope.payload, statement_pb2.Statement())
        Statement.copy_from_pb(parsed).validate()  # raises on an invalid Statement
        assert statement["_type"] == "https://in-toto.io/Statement/v1"
        (subject,) = statement["subject"]
        # the subject digest is the SHA-256 of the stored object file: its id
        stored = store.path_of(row["object"]).read_bytes()
        assert subject["digest"] == {"sha256": hashlib.sha256(stored).hexdigest()}
        assert subject["digest"]["sha256"] == row["object"]
        assert statement["predicate"] == json.loads(stored)["body"]
        assert statement["predicateType"].endswith(f"/{row['kind']}/v1")
    bundle = [
        json.loads(line) for line in (folder / "attestations.intoto.jsonl").read_text().splitlines()
    ]
    assert bundle == [json.loads((folder / r["file"]).read_text()) for r in out["written"]]


@pytest.mark.parametrize("part", ["payload", "signature", "payloadType"])
def test_one_changed_byte_fails_verification(exported, part):
    _store, key, folder, out = exported
    doc = json.loads((folder / out["written"][0]["file"]).read_text())
    if part == "payload":
        payload = bytearray(base64.b64decode(doc["payload"]))
        payload[len(payload) // 2] ^= 0x01
        doc["payload"] = base64.b64encode(bytes(payload)).decode()
    elif part == "signature":
        sig = bytearray(base64.b64decode(doc["signatures"][0]["sig"]))
        sig[0] ^= 0x01
        doc["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    else:
        doc["payloadType"] = doc["payloadType"].replace("+json", "+jsoN")
    with pytest.raises(VerificationError):
        Envelope.from_dict(doc).verify([_sslib_key(folder, key.key_id)], threshold=1)


def test_objects_signed_by_another_key_are_left_out(tmp_path):
    store = Store.init(tmp_path / ".ledger", host="h1")
    mine, theirs = generate_key("mine"), generate_key("theirs")
    plan = {**make_plan(), "seeds": {"rule": "sha256-v2"}}
    freeze(store, plan, mine)
    other = freeze(store, {**plan, "stage": "other"}, theirs)
    runner = CliRunner()
    res = runner.invoke(
        cli,
        [
            "--store",
            str(store.root),
            "export",
            "--in-toto",
            str(tmp_path / "a"),
            "--key",
            "mine",
            "--allow-undecided",  # two plans frozen, nothing run yet
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)["in_toto"]
    assert len(out["written"]) == 1
    assert out["skipped"] == [
        {
            "object": other,
            "kind": "manifest",
            "why": f"signed by key {theirs.key_id}, not {mine.key_id}",
        }
    ]
    empty = Store.init(tmp_path / "empty", host="h1")
    res = runner.invoke(
        cli,
        ["--store", str(empty.root), "export", "--in-toto", str(tmp_path / "b"), "--key", "mine"],
    )
    assert res.exit_code == 2 and "nothing to export" in res.output
    res = runner.invoke(cli, ["--store", str(store.root), "export"])
    assert res.exit_code == 2 and "give a BUNDLE path, --in-toto DIR, or both" in res.output


def test_no_attestation_for_a_store_the_audit_rejects(done, tmp_path):
    """A decision re-signed with another outcome verifies as a signature, but the audit
    re-derives it and rejects it: `export --in-toto` refuses (exit 1) and writes nothing."""
    store, key, _camp, _sim = done
    manifest = current_manifest(store, "t", "gate")
    decision = manifest_decision(store, manifest.id)
    body = {**decision.body.to_dict(), "promoted": decision.body.promoted[::-1][:1]}
    forged = store.put_signed("decision", body, key)
    journal = store.journal()
    events = [json.loads(x) for x in journal.path.read_text().splitlines()]
    rewrite_journal(
        journal, [{**e, "object": forged} if e["object"] == decision.id else e for e in events], key
    )
    folder = tmp_path / "attest"
    res = CliRunner().invoke(
        cli, ["--store", str(store.root), "export", "--in-toto", str(folder), "--key", key.name]
    )
    assert res.exit_code == 1 and "not exported: the audit finds" in res.output, res.output
    assert forged in res.output or "decision" in res.output
    assert not folder.exists()
