"""Ed25519 signing keys (private, outside the repo) and the store's keyring (public).

Why: manifests, decisions and anchors are signed so that a reviewer can tell who froze a
plan and that nobody edited it since. Private keys live in the user's config folder (mode
0600, optionally passphrase-encrypted); public records are committed with the store. Each
public record is self-signed, so any changed byte in a key file is detected.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import json
import os
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import platformdirs
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from pydantic import ValidationError

from ledger.canonical import canonical_bytes, sha256_hex
from ledger.document import parse
from ledger.documents import PublicKeyRecord
from ledger.errors import (
    ConfigError,
    IntegrityError,
    KeyExists,
    LedgerError,
    SigningKeyError,
    UnknownKey,
)
from ledger.fsutil import atomic_write, ensure_dir
from ledger.problems import Problem

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
_KEY_ID = re.compile(r"[0-9a-f]{32}")
RECORD_FIELDS = ("alg", "created_at", "key_id", "name", "public", "self_sig")
# The key `ledger campaign --demo-key` makes: its name says what it is wherever it shows, and
# reports call out anything it signed.
DEMO_KEY_NAME = "DEMO-KEY-not-for-real-campaigns"


def key_dir() -> Path:
    """Where private keys live: LEDGER_KEY_DIR, else the user config dir (never the repo)."""
    env = os.environ.get("LEDGER_KEY_DIR")
    if env:
        return Path(env)
    return Path(platformdirs.user_config_dir("gateledger")) / "keys"


def check_key_name(name: str) -> str:
    """Key names become file names: letters, digits, `.`, `_`, `-` only."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ConfigError(
            f"bad key name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)"
        )
    return name


def fingerprint(raw_public: bytes) -> str:
    """Key id: first 32 hex chars of sha256 over the raw 32-byte public key."""
    return sha256_hex(raw_public)[:32]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, what: str) -> bytes:
    if not isinstance(text, str):
        raise LedgerError(f"{what} is not base64 text")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise LedgerError(f"{what} is not valid base64") from None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _record_payload(record: dict[str, Any]) -> bytes:
    """What a key's self-signature covers: its record without the signature."""
    return canonical_bytes({k: v for k, v in record.items() if k != "self_sig"})


class SigningKey:
    """A loaded private key: signs bytes and describes its public half."""

    def __init__(self, name: str, private: Ed25519PrivateKey, created_at: str) -> None:
        self.name = name
        self._private = private
        raw = private.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.public_bytes = raw
        self.key_id = fingerprint(raw)
        self.created_at = created_at

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def public_record(self) -> dict[str, Any]:
        """The committed public record, self-signed (Ed25519 is deterministic)."""
        record = {
            "name": self.name,
            "key_id": self.key_id,
            "alg": "ed25519",
            "public": _b64(self.public_bytes),
            "created_at": self.created_at,
        }
        record["self_sig"] = _b64(self.sign(_record_payload(record)))
        return record

    def __repr__(self) -> str:
        return f"SigningKey(name={self.name!r}, key_id={self.key_id!r})"


def _paths(name: str, directory: Path | None) -> tuple[Path, Path]:
    folder = Path(directory) if directory is not None else key_dir()
    return folder / f"{name}.pem", folder / f"{name}.pub.json"


def generate_key(
    name: str, passphrase: str | None = None, directory: Path | None = None
) -> SigningKey:
    """Make a new Ed25519 key `<dir>/<name>.pem` (0600); refuse to overwrite one."""
    check_key_name(name)
    pem_path, pub_path = _paths(name, directory)
    if pem_path.exists():
        raise KeyExists(f"key {name} already exists at {pem_path}")
    ensure_dir(pem_path.parent)
    private = Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode())
        if passphrase
        else serialization.NoEncryption()
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    key = SigningKey(name, private, _now())
    atomic_write(pub_path, canonical_bytes(key.public_record()), mode=0o644)
    atomic_write(pem_path, pem, mode=0o600)
    return key


def _passphrase(name: str, given: str | None) -> str:
    if given is not None:
        return given
    env = os.environ.get("LEDGER_PASSPHRASE")
    if env is not None:
        return env
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(f"passphrase for key {name}: ")
    raise SigningKeyError(f"key {name} is encrypted: set LEDGER_PASSPHRASE")


def load_signing_key(
    name: str, passphrase: str | None = None, directory: Path | None = None
) -> SigningKey:
    """Load `<dir>/<name>.pem`, asking for its passphrase only when it is encrypted."""
    check_key_name(name)
    pem_path, pub_path = _paths(name, directory)
    try:
        pem = pem_path.read_bytes()
    except FileNotFoundError:
        raise SigningKeyError(
            f"no key {name} at {pem_path}: run `ledger keygen --name {name}`"
        ) from None
    except OSError as exc:
        raise SigningKeyError(f"cannot read key {pem_path}: {exc.strerror or exc}") from None
    encrypted = b"ENCRYPTED" in pem.split(b"\n", 1)[0]
    password = _passphrase(name, passphrase).encode() if encrypted else None
    if encrypted and not password:
        raise SigningKeyError(f"key {name} is encrypted: set LEDGER_PASSPHRASE")
    try:
        private = serialization.load_pem_private_key(pem, password=password)
    except (ValueError, RecursionError) as exc:
        if encrypted:
            raise SigningKeyError(f"wrong passphrase for key {name}") from None
        raise SigningKeyError(f"key file {pem_path} is not a valid PEM key: {exc}") from None
    except TypeError as exc:
        raise SigningKeyError(f"key file {pem_path} cannot be loaded: {exc}") from None
    if not isinstance(private, Ed25519PrivateKey):
        raise SigningKeyError(f"key file {pem_path} is not an Ed25519 key")
    created = _created_at(pub_path, pem_path)
    return SigningKey(name, private, created)


def _created_at(pub_path: Path, pem_path: Path) -> str:
    try:
        return PublicKeyRecord.model_validate_json(pub_path.read_bytes()).created_at
    except (OSError, ValidationError):
        pass  # no record beside the key (or a damaged one): the key file's own time
    stamp = pem_path.stat().st_mtime
    return datetime.fromtimestamp(stamp, UTC).isoformat(timespec="microseconds")


def check_public_record(record: Any, where: str) -> tuple[PublicKeyRecord, Ed25519PublicKey]:
    """Validate a public record (fields, key id vs key bytes, self-signature): the record
    as its model, and its public key."""
    if not isinstance(record, dict):
        raise IntegrityError(f"{where}: key record is not a JSON object")
    if set(record) != set(RECORD_FIELDS):
        missing = sorted(set(RECORD_FIELDS) - set(record))
        extra = sorted(set(record) - set(RECORD_FIELDS))
        raise IntegrityError(f"{where}: key record fields wrong (missing {missing}, extra {extra})")
    typed = parse(PublicKeyRecord, record, where, IntegrityError)
    if typed.alg != "ed25519":
        raise IntegrityError(f"{where}: unsupported key algorithm {typed.alg!r}")
    try:
        raw = _unb64(typed.public, f"{where}: public key")
        sig = _unb64(typed.self_sig, f"{where}: self-signature")
    except LedgerError as exc:
        raise IntegrityError(str(exc)) from None
    if len(raw) != 32:
        raise IntegrityError(f"{where}: public key is not 32 bytes")
    if typed.key_id != fingerprint(raw):
        raise IntegrityError(f"{where}: key_id {typed.key_id!r} does not match its key bytes")
    public = Ed25519PublicKey.from_public_bytes(raw)
    try:
        public.verify(sig, _record_payload(record))
    except (InvalidSignature, ValueError):
        raise IntegrityError(f"{where}: key record's self-signature is bad") from None
    return typed, public


class Keyring:
    """Public keys committed in the store's `keys/<key_id>.json`: who may sign."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self._cache: dict[str, Ed25519PublicKey] = {}

    def _path(self, key_id: str) -> Path:
        return self.folder / f"{key_id}.json"

    def files(self) -> Iterator[Path]:
        if self.folder.is_dir():
            yield from sorted(p for p in self.folder.glob("*.json") if not p.name.startswith("."))

    def _load(self, key_id: str) -> Ed25519PublicKey:
        if key_id in self._cache:
            return self._cache[key_id]
        if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
            raise UnknownKey(f"unknown key {key_id}")
        path = self._path(key_id)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise UnknownKey(f"unknown key {key_id}") from None
        record = _parse(data, f"keys/{path.name}")
        found, public = check_public_record(record, f"keys/{path.name}")
        if found.key_id != key_id:
            raise IntegrityError(
                f"keys/{path.name}: file name does not match key_id {found.key_id}"
            )
        self._cache[key_id] = public
        return public

    def get(self, key_id: str) -> PublicKeyRecord:
        """The public record of `key_id` (LedgerError "unknown key ..." if absent)."""
        self._load(key_id)
        path = self._path(key_id)
        return parse(PublicKeyRecord, _parse(path.read_bytes(), f"keys/{path.name}"), str(path))

    def add(self, public_record: dict[str, Any]) -> str:
        """Add a self-signed public record (idempotent); returns its key id."""
        record, public = check_public_record(public_record, "public key record")
        key_id = record.key_id
        path = self._path(key_id)
        if not path.exists():
            atomic_write(path, canonical_bytes(public_record), mode=0o644)
        self._cache[key_id] = public
        return key_id

    def has(self, key_id: str) -> bool:
        return isinstance(key_id, str) and self._path(key_id).is_file()

    def verify(self, key_id: str, data: bytes, sig: bytes) -> bool:
        """Whether `sig` is `key_id`'s signature of `data` (LedgerError if key unknown)."""
        public = self._load(key_id)
        try:
            public.verify(sig, data)
        except (InvalidSignature, ValueError):
            return False
        return True

    def ids(self) -> list[str]:
        return [p.stem for p in self.files()]

    def name_of(self, key_id: str) -> str | None:
        """The name `key_id`'s valid record gives (None: no such key, or a bad record)."""
        try:
            return self.get(key_id).name
        except LedgerError:
            return None

    def records(self) -> list[PublicKeyRecord]:
        """Every key record that parses (`check` reports the others)."""
        out = []
        for path in self.files():
            try:
                record = _parse(path.read_bytes(), f"keys/{path.name}")
                out.append(parse(PublicKeyRecord, record, f"keys/{path.name}", IntegrityError))
            except LedgerError:
                continue
        return out

    def check(self) -> list[Problem]:
        """Every key file: canonical, self-signed, key id matching bytes and file name."""
        problems = []
        for path in self.files():
            where = f"keys/{path.name}"
            try:
                data = path.read_bytes()
                record = _parse(data, where)
                checked, _ = check_public_record(record, where)
                if path.stem != checked.key_id:
                    raise IntegrityError(
                        f"{where}: file name does not match key_id {checked.key_id}"
                    )
                if canonical_bytes(record) != data:
                    raise IntegrityError(f"{where}: not in canonical form")
            except (LedgerError, OSError) as exc:
                message = str(exc).removeprefix(f"{where}: ")
                problems.append(Problem(where, message))
        return problems


def _parse(data: bytes, where: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise IntegrityError(f"{where}: not valid JSON") from None


# -- which private key signs for which store ------------------------------------------------

STORE_DEFAULTS = "store-defaults.json"


def _defaults_path() -> Path:
    return key_dir() / STORE_DEFAULTS


def _store_key(store_root: Path | str) -> str:
    return str(Path(store_root).resolve())


def _read_defaults() -> dict[str, str]:
    path = _defaults_path()
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must be a JSON object of store folder -> key name")
    return {str(k): str(v) for k, v in data.items()}


def default_key_for(store_root: Path | str) -> str | None:
    """The private key name remembered as this store's signer on this machine, or None.

    Why kept next to the private keys and not in the store: the choice is one user's (two
    people sign for one shared store with their own keys), and the store is evidence that
    DVC and git carry to others; a per-user file changes nothing they would see.
    """
    return _read_defaults().get(_store_key(store_root))


def set_default_key(store_root: Path | str, name: str) -> Path:
    """Remember `name` as the key that signs for this store by default (`--key` overrides).

    Raises LedgerError when there is no private key of that name here.
    """
    check_key_name(name)
    if not (key_dir() / f"{name}.pem").is_file():
        raise SigningKeyError(
            f"no private key {name} in {key_dir()}: run `ledger keygen --name {name}` first"
        )
    defaults = _read_defaults()
    defaults[_store_key(store_root)] = name
    path = _defaults_path()
    atomic_write(path, (json.dumps(defaults, indent=2, sort_keys=True) + "\n").encode(), mode=0o600)
    return path


def private_key_ids() -> dict[str, str | None]:
    """Private key name -> its key id (from the `.pub.json` next to it; None if unreadable)."""
    folder = key_dir()
    out: dict[str, str | None] = {}
    if not folder.is_dir():
        return out
    for pem in sorted(folder.glob("*.pem")):
        try:
            record = PublicKeyRecord.model_validate_json(pem.with_suffix(".pub.json").read_bytes())
            out[pem.stem] = record.key_id
        except (OSError, ValidationError):
            out[pem.stem] = None
    return out
