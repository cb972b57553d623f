"""Ed25519 keys, passphrases, the keyring, and signed envelopes."""

from __future__ import annotations

import base64
import os
import stat

import pytest

from ledger.errors import IntegrityError, LedgerError
from ledger.keys import Keyring, generate_key, key_dir, load_signing_key
from ledger.signing import sign_object, unsigned_object, verify_signature


def test_round_trip_and_rejections(tmp_path):
    key = generate_key("alice")
    other = generate_key("bob")
    ring = Keyring(tmp_path / "keys")
    ring.add(key.public_record())
    sig = key.sign(b"message")
    assert ring.verify(key.key_id, b"message", sig)
    assert not ring.verify(key.key_id, b"messagf", sig)  # modified message
    assert not ring.verify(key.key_id, b"message", other.sign(b"message"))  # wrong key
    assert not ring.verify(key.key_id, b"message", sig[:-1])  # truncated signature
    with pytest.raises(LedgerError, match=f"unknown key {other.key_id}"):
        ring.verify(other.key_id, b"message", sig)


def test_private_key_file_mode_and_reload():
    key = generate_key("alice")
    path = key_dir() / "alice.pem"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = load_signing_key("alice")
    assert again.key_id == key.key_id
    assert again.public_record() == key.public_record()
    with pytest.raises(LedgerError, match="already exists"):
        generate_key("alice")


def test_passphrase(monkeypatch):
    generate_key("enc", passphrase="s3cret")
    assert b"ENCRYPTED" in (key_dir() / "enc.pem").read_bytes()
    with pytest.raises(LedgerError, match="wrong passphrase for key enc"):
        load_signing_key("enc", passphrase="nope")
    with pytest.raises(LedgerError, match="key enc is encrypted: set LEDGER_PASSPHRASE"):
        load_signing_key("enc")
    monkeypatch.setenv("LEDGER_PASSPHRASE", "s3cret")
    assert load_signing_key("enc").name == "enc"


def test_missing_and_bad_names():
    with pytest.raises(LedgerError, match="ledger keygen --name ghost"):
        load_signing_key("ghost")
    for bad in ("../x", "", "a b", "-x"):
        with pytest.raises(LedgerError, match="bad key name"):
            generate_key(bad)


def test_keyring_rejects_mismatched_records(tmp_path):
    key, other = generate_key("a"), generate_key("b")
    ring = Keyring(tmp_path / "keys")
    record = key.public_record()
    with pytest.raises(IntegrityError, match="does not match its key bytes"):
        ring.add({**record, "key_id": other.key_id})
    with pytest.raises(IntegrityError, match="self-signature"):
        ring.add({**record, "name": "mallory"})
    assert ring.add(record) == key.key_id and ring.ids() == [key.key_id]
    assert ring.get(key.key_id).name == "a"
    assert ring.check() == []


def test_signed_envelope(tmp_path):
    key = generate_key("alice")
    ring = Keyring(tmp_path / "keys")
    obj = sign_object("manifest", {"x": 1}, key)
    with pytest.raises(IntegrityError, match=f"signed by unknown key {key.key_id}"):
        verify_signature(obj, ring)
    ring.add(key.public_record())
    verify_signature(obj, ring)
    tampered = {**obj, "body": {"x": 2}}
    with pytest.raises(IntegrityError, match=f"bad signature by key {key.key_id}"):
        verify_signature(tampered, ring)
    short = {**obj, "signature": {**obj["signature"], "sig": base64.b64encode(b"\0" * 10).decode()}}
    with pytest.raises(IntegrityError, match="bad signature"):
        verify_signature(short, ring)
    assert unsigned_object("run", {"a": 1}) == {"kind": "run", "body": {"a": 1}}
    with pytest.raises(LedgerError, match="must be signed"):
        unsigned_object("decision", {})
    assert os.environ.get("LEDGER_KEY_DIR")


def test_the_scans_fast_payload_cut_is_the_signed_payload_or_nothing(key):
    """The verify workers cut the signed payload from canonical bytes without parsing it
    again: it must equal the payload the signature covers, and a signature member that is
    not what the cut assumes gives no payload (the slow path re-encodes instead)."""
    from ledger.canonical import canonical_bytes
    from ledger.signing import sign_object, signing_payload, stored_payload

    body = {"manifest": "m" * 64, "note": 'a ,"signature": inside a string', "n": [1, 2.5]}
    obj = sign_object("run", body, key)
    data = canonical_bytes(obj)
    assert stored_payload(data, obj, canonical=True) == signing_payload("run", body)
    assert stored_payload(data, obj) == signing_payload("run", body)
    odd = {**obj, "signature": {**obj["signature"], "x": ',"signature":{"sig":"y"}'}}
    odd_data = canonical_bytes(odd)
    assert stored_payload(odd_data, odd, canonical=True) in (None, signing_payload("run", body))
