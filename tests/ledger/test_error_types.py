"""Signing-key, option and integrity failures raise the type a caller handles: a script can
ask for a passphrase on SigningKeyError without also catching a corrupted store."""

from __future__ import annotations

import pytest

from ledger.errors import ConfigError, IntegrityError, LedgerError, SigningKeyError
from ledger.ingest import ingest
from ledger.keys import check_key_name, generate_key, load_signing_key
from ledger.revocation import revoke_key
from ledger.store import Store
from ledger.timestamp import check_url


def test_no_key_is_a_signing_key_error():
    with pytest.raises(SigningKeyError, match="no key me at"):
        load_signing_key("me")


def test_an_encrypted_key_without_passphrase_or_with_a_wrong_one(monkeypatch):
    generate_key("locked", passphrase="right")
    with pytest.raises(SigningKeyError, match="is encrypted: set LEDGER_PASSPHRASE"):
        load_signing_key("locked")
    with pytest.raises(SigningKeyError, match="wrong passphrase for key locked"):
        load_signing_key("locked", passphrase="wrong")
    assert load_signing_key("locked", passphrase="right").name == "locked"


def test_an_unreadable_key_file_is_a_signing_key_error(isolated_keys):
    (isolated_keys / "broken.pem").write_bytes(b"-----BEGIN PRIVATE KEY-----\nnope\n")
    with pytest.raises(SigningKeyError, match="is not a valid PEM key"):
        load_signing_key("broken")


def test_signing_with_a_revoked_key_is_a_signing_key_error(tmp_path):
    store = Store.init(tmp_path / ".ledger", host="h1")
    key = generate_key("me")
    store.put_signed("anchor", {"heads": {}}, key)  # the key joins the keyring
    revoke_key(store, key.key_id, key, "leaked")
    with pytest.raises(SigningKeyError, match="was revoked at"):
        store.put_signed("anchor", {"heads": {}}, key)


def test_bad_option_values_are_config_errors(tmp_path):
    store = Store.init(tmp_path / ".ledger", host="h1")
    with pytest.raises(ConfigError, match="unknown log format 'xml'"):
        ingest(store, b"", fmt="xml")
    with pytest.raises(ConfigError, match="bad key name"):
        check_key_name("../evil")
    with pytest.raises(ConfigError, match="not an http:// or https:// URL"):
        check_url("ftp://tsa.example")


def test_stored_bytes_that_fail_their_hash_are_an_integrity_error(tmp_path):
    store = Store.init(tmp_path / ".ledger", host="h1")
    oid = store.put_bytes(b"evidence")
    path = next(p for p in (tmp_path / ".ledger" / "parts").rglob(oid))
    path.chmod(0o644)
    path.write_bytes(b"forged!!")
    with pytest.raises(IntegrityError, match="is corrupted") as caught:
        store.get_bytes(oid)
    assert caught.value.exit_code == 1 and not isinstance(caught.value, SigningKeyError)
    assert isinstance(caught.value, LedgerError)
