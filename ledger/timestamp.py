"""Trusted time (RFC 3161): timestamp tokens over object ids, from authorities the operator
does not control.

Why: every `frozen_at`, `decided_at` and journal time is the writing machine's clock. A
timestamp authority (TSA) signs "this hash existed at time T"; stored with the ledger and
checked offline against TSA roots the reviewer chooses, it proves a manifest existed (was
frozen) no later than T, a decision was made no later than T', an anchor's journal heads
existed no later than T''. Several TSAs can be asked, so that no single one must be trusted.

What is sent: the SHA-256 message imprint of the object's stored bytes, which *is* its id;
the TSA never sees the plan. The token is kept as a `timestamp` object (canonical JSON, not
signed by us: its authenticity is the TSA's signature inside it)::

    {"kind": "timestamp", "body": {"object": ID, "object_kind": "manifest", "tsa": URL,
     "hash": "sha256", "response": BASE64 (the TSA's DER TimeStampResp), "gen_time": ISO,
     "serial": "...", "received_at": ISO}}

journaled as `timestamped` so that verify's evidence rules include it. `gen_time` and
`serial` are copies for reading; checks use the token. Requests and verification are
`rfc3161-client`'s (the library behind sigstore-python's timestamp verification).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from pydantic import ConfigDict, ValidationError
from rfc3161_client import (
    HashAlgorithm,
    PKIStatus,
    TimestampRequestBuilder,
    VerificationError,
    VerifierBuilder,
    decode_timestamp_response,
)

from ledger.canonical import canonical_bytes, is_object_id
from ledger.document import Document
from ledger.documents import TimestampToken
from ledger.errors import (
    ConfigError,
    InputError,
    InvalidId,
    StorageError,
    TimestampError,
    WrongKind,
)
from ledger.fsutil import atomic_write
from ledger.jsonsafe import loads_strict
from ledger.keys import SigningKey
from ledger.problems import Problem
from ledger.scan import Scan
from ledger.store import Store, read_envelope

TIMESTAMPABLE = ("manifest", "decision", "anchor")
QUERY_TYPE = "application/timestamp-query"
REPLY_TYPE = "application/timestamp-reply"
SHA256_OID = "2.16.840.1.101.3.4.2.1"
DEFAULT_TIMEOUT_S = 10.0
MAX_RESPONSE_BYTES = 1 << 20
SETTINGS_FILE = "settings.json"
BODY_FIELDS = (
    "object",
    "object_kind",
    "tsa",
    "hash",
    "response",
    "gen_time",
    "serial",
    "received_at",
)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds")


def _iso(when: datetime) -> str:
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(UTC).isoformat(timespec="microseconds")


# -- store setting ------------------------------------------------------------------------


class StoreSettings(Document):
    """`settings.json` (not evidence): the TSAs a team stamps with by default. Other keys
    are kept as written (`set_tsas` rewrites the file with them)."""

    model_config = ConfigDict(extra="allow")

    tsa: list[str] = []


def configured_tsas(store: Store) -> list[str]:
    """The TSA URLs the store's `settings.json` names (a team sets them once)."""
    path = store.root / SETTINGS_FILE
    if not path.is_file():
        return []
    try:
        settings = StoreSettings.model_validate(loads_strict(path.read_bytes(), str(path)))
    except OSError as exc:
        raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValidationError:
        raise ConfigError(f"{path}: key 'tsa' must be a list of URLs") from None
    return settings.tsa


def set_tsas(store: Store, urls: Iterable[str]) -> list[str]:
    """Replace the store's TSA list (empty: none); returns it. LedgerError names a bad URL."""
    urls = list(dict.fromkeys(check_url(u) for u in urls))
    path = store.root / SETTINGS_FILE
    settings: dict[str, Any] = {}
    if path.is_file():
        try:
            value = loads_strict(path.read_bytes(), str(path))
        except OSError as exc:
            raise StorageError(f"cannot read {path}: {exc.strerror or exc}") from None
        settings = value if isinstance(value, dict) else {}
    settings["tsa"] = urls
    atomic_write(path, json.dumps(settings, indent=2, sort_keys=True).encode() + b"\n")
    return urls


def check_url(url: str) -> str:
    """A TSA URL must be http(s)://... (LedgerError naming it otherwise)."""
    if not isinstance(url, str) or not re.match(r"^https?://[^\s/]+", url):
        raise ConfigError(f"--tsa {url!r}: not an http:// or https:// URL")
    return url


# -- asking a TSA -------------------------------------------------------------------------


@dataclass
class StampResult:
    """What one TSA answered: a stored token (and its time) or the reason it failed."""

    tsa: str
    token: str | None = None
    gen_time: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.token is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "tsa": self.tsa,
            "ok": self.ok,
            "token": self.token,
            "gen_time": self.gen_time,
            "error": self.error,
        }


def request_token(
    url: str, data: bytes, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> tuple[bytes, Any]:
    """POST an RFC 3161 request for SHA-256(data) to `url`; (DER response, the request).

    Raises TimestampError naming the URL when the TSA cannot be reached or says no.
    """
    request = (
        TimestampRequestBuilder()
        .data(data)
        .hash_algorithm(HashAlgorithm.SHA256)
        .nonce(nonce=True)
        .cert_request(cert_request=True)
        .build()
    )
    http = urllib.request.Request(
        check_url(url),
        data=request.as_bytes(),
        method="POST",
        headers={"Content-Type": QUERY_TYPE, "Accept": REPLY_TYPE},
    )
    try:
        with urllib.request.urlopen(http, timeout=timeout_s) as reply:
            der = reply.read(MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise TimestampError(f"TSA {url} answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise TimestampError(f"TSA {url} cannot be reached: {reason}") from None
    if len(der) > MAX_RESPONSE_BYTES:
        raise TimestampError(f"TSA {url} answered more than {MAX_RESPONSE_BYTES} bytes")
    return der, request


def _decode(der: bytes) -> Any:
    try:
        return decode_timestamp_response(der)
    except ValueError as exc:
        raise TimestampError(f"not an RFC 3161 timestamp response ({_first_line(exc)})") from None


def _first_line(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= 160 else text[:157] + "..."


def _imprint_problem(response: Any, object_id: str) -> str | None:
    """Why the token's message imprint is not the object's id (None: it is)."""
    imprint = response.tst_info.message_imprint
    if imprint.hash_algorithm.dotted_string != SHA256_OID:
        return f"its message imprint uses hash {imprint.hash_algorithm.dotted_string}, not SHA-256"
    if imprint.message != bytes.fromhex(object_id):
        return (
            f"its message imprint {imprint.message.hex()[:16]}... is not the id of the "
            f"object it claims to stamp ({object_id[:16]}...)"
        )
    return None


def check_response(der: bytes, object_id: str, nonce: int | None = None) -> Any:
    """The decoded response if it grants a token over `object_id` (and echoes `nonce`).

    Raises TimestampError saying what is wrong. The signature is checked offline later
    against the reviewer's roots (`check_token`), not here: the operator's trust would
    prove nothing.
    """
    response = _decode(der)
    if PKIStatus(response.status) != PKIStatus.GRANTED:
        text = "; ".join(response.status_string) or f"status {response.status}"
        raise TimestampError(f"the TSA refused: {text}")
    why = _imprint_problem(response, object_id)
    if why:
        raise TimestampError(f"the TSA's token does not cover the object: {why}")
    if nonce is not None and response.tst_info.nonce != nonce:
        raise TimestampError("the TSA's token does not echo the request's nonce (a replay?)")
    return response


def stamp(
    store: Store,
    object_id: str,
    urls: Iterable[str],
    *,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    key: SigningKey | None = None,
) -> list[StampResult]:
    """Ask each TSA in `urls` for a token over `object_id`; store and journal each one.

    A TSA that fails is reported in its `StampResult` (the object stays as it is); the
    others are still asked.

    Args:
        store: where the object lies and the tokens go.
        object_id: a manifest, decision or anchor id.
        urls: TSA URLs (http or https).
        timeout_s: per TSA.
        key: signs the journal head after each token is journaled.

    Raises:
        LedgerError: `object_id` is not a manifest, decision or anchor of the store.
    """
    if not is_object_id(object_id):
        raise InvalidId(f"{object_id!r} is not an object id")
    kind = read_envelope(store, object_id).kind
    if kind not in TIMESTAMPABLE:
        raise WrongKind(
            f"object {object_id} is a {kind!r}; timestamps are for {', '.join(TIMESTAMPABLE)}"
        )
    data = store.get_bytes(object_id)
    out = []
    for url in urls:
        try:
            der, request = request_token(url, data, timeout_s=timeout_s)
            response = check_response(der, object_id, request.nonce)
        except TimestampError as exc:
            message = str(exc) if str(exc).startswith("TSA ") else f"TSA {url}: {exc}"
            out.append(StampResult(url, error=message))
            continue
        body = {
            "object": object_id,
            "object_kind": kind,
            "tsa": url,
            "hash": "sha256",
            "response": base64.b64encode(der).decode("ascii"),
            "gen_time": _iso(response.tst_info.gen_time),
            "serial": str(response.tst_info.serial_number),
            "received_at": _now(),
        }
        canonical_bytes(body)
        token_id = store.put_unsigned("timestamp", body)
        store.journal().append("timestamped", object=token_id, key=key)
        out.append(StampResult(url, token_id, body["gen_time"]))
    return out


# -- checking tokens offline --------------------------------------------------------------


def load_tsa_roots(paths: Iterable[str | Path]) -> list[x509.Certificate]:
    """Certificates from PEM files (the TSA roots, and any intermediates, a reviewer trusts).

    Raises LedgerError naming the file that cannot be read or holds no certificate.
    """
    roots: list[x509.Certificate] = []
    for path in paths:
        path = Path(path)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise InputError(f"--tsa-roots {path}: cannot read: {exc.strerror or exc}") from None
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError:
            raise InputError(f"--tsa-roots {path}: no PEM certificate in it") from None
        roots += certs
    return roots


@dataclass
class TokenCheck:
    """One token: what it stamps, which TSA, when, and what is wrong with it."""

    id: str
    object: str | None
    object_kind: str | None
    tsa: str | None
    gen_time: datetime | None = None
    verified: bool = False  # its signature and chain checked against reviewer roots
    problems: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        """Whether its time may bound the object's (no problem found)."""
        return not self.problems and self.gen_time is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "token": self.id,
            "object": self.object,
            "object_kind": self.object_kind,
            "tsa": self.tsa,
            "gen_time": _iso(self.gen_time) if self.gen_time else None,
            "verified": self.verified,
            "problems": self.problems,
        }


def _verify_error(exc: Exception) -> str:
    """The useful part of rfc3161-client's (OpenSSL's) error text."""
    text = str(exc)
    found = re.findall(r'Verify error: ([^"]+)', text)
    if found:
        return f"certificate chain: {found[-1]}"
    reasons = re.findall(r'reason: "([^"]+)"', text)
    if reasons:
        return reasons[-1]
    return _first_line(exc)


def check_token(
    token_id: str, body: TimestampToken, roots: list[x509.Certificate] | None
) -> TokenCheck:
    """Check one token offline: it parses, grants, its imprint is the object's id, its copy
    of the time is the token's, and (given `roots`) its signature and chain verify against
    them with the certificate valid at the token's time."""
    oid, tsa, gen_time = body.object, body.tsa, body.gen_time
    check = TokenCheck(token_id, oid, body.object_kind, tsa)
    if not is_object_id(oid):
        check.problems.append(f"timestamp cites {oid!r}, not an object id")
        return check
    try:
        der = base64.b64decode(body.response.encode("ascii"), validate=True)
        response = _decode(der)
    except (binascii.Error, UnicodeEncodeError, ValueError, TimestampError) as exc:
        why = exc if isinstance(exc, TimestampError) else "not base64"
        check.problems.append(f"timestamp token from {tsa} is unreadable: {why}")
        return check
    if PKIStatus(response.status) != PKIStatus.GRANTED:
        check.problems.append(f"timestamp response from {tsa} does not grant a token")
        return check
    check.gen_time = response.tst_info.gen_time
    imprint = _imprint_problem(response, oid)
    if imprint:
        check.problems.append(
            f"timestamp token from {tsa} does not stamp object {oid[:12]}: {imprint}"
        )
    if gen_time != _iso(check.gen_time):
        check.problems.append(
            f"timestamp says gen_time {gen_time!r} but its token says {_iso(check.gen_time)}"
        )
    if roots and not imprint:
        try:
            VerifierBuilder(roots=list(roots)).build().verify(response, bytes.fromhex(oid))
            check.verified = True
        except (VerificationError, ValueError) as exc:
            check.problems.append(
                f"timestamp token from {tsa} does not verify against the "
                f"given TSA roots: {_verify_error(exc)}"
            )
    return check


@dataclass
class TimestampReport:
    """Every accepted token, checked; the problems; whether reviewer roots were given."""

    roots: int = 0
    tokens: dict[str, TokenCheck] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def for_object(self, oid: str) -> list[TokenCheck]:
        """The usable tokens over `oid`, earliest first."""
        found = [t for t in self.tokens.values() if t.object == oid and t.usable]
        return sorted(found, key=lambda t: (t.gen_time, t.id))

    @property
    def witnessed(self) -> bool:
        """Whether token times are witnessed (checked against reviewer roots) or claims."""
        return self.roots > 0

    def note(self) -> str | None:
        if not self.tokens:
            return None
        tsas = {t.tsa for t in self.tokens.values()}
        if self.witnessed:
            good = sum(t.verified for t in self.tokens.values())
            return (
                f"timestamps: {good} of {len(self.tokens)} token(s) from {len(tsas)} TSA(s) "
                f"verify against {self.roots} reviewer TSA root certificate(s)"
            )
        return (
            f"timestamps: {len(self.tokens)} token(s) from {len(tsas)} TSA(s) not checked "
            f"against TSA roots (give --tsa-roots PEM): their times are the store's claim"
        )


def check_tokens(
    scan: Scan, evidence: set[str], roots: list[x509.Certificate] | None
) -> TimestampReport:
    """Check every accepted `timestamp` object; each must stamp an accepted manifest,
    decision or anchor (problems name the token)."""
    report = TimestampReport(roots=len(roots or []))
    for oid, stored in sorted(scan.stored.items()):
        if not isinstance(stored.body, TimestampToken) or oid not in evidence:
            continue
        check = check_token(oid, stored.body, roots)
        target = scan.objects.get(stored.body.object)  # None: not in the store (as an envelope)
        target_kind = target["kind"] if target is not None else None
        if check.object and target is None:
            check.problems.append(
                f"timestamp stamps object {check.object[:12]}, which is not in the store"
            )
        elif target is not None and target_kind not in TIMESTAMPABLE:
            check.problems.append(
                f"timestamp stamps a {target_kind!r}, not a manifest, decision or anchor"
            )
        elif check.object and target is not None and check.object_kind != target_kind:
            check.problems.append(
                f"timestamp says it stamps a {check.object_kind!r}, but "
                f"{check.object[:12]} is a {target_kind!r}"
            )
        elif check.object and check.object not in evidence:
            check.problems.append(
                f"timestamp stamps {check.object[:12]}, which is not accepted evidence"
            )
        report.tokens[oid] = check
        report.problems += [Problem(oid, p) for p in check.problems]
    return report


__all__ = [
    "TIMESTAMPABLE",
    "StampResult",
    "TimestampError",
    "TimestampReport",
    "TokenCheck",
    "check_response",
    "check_token",
    "check_tokens",
    "configured_tsas",
    "load_tsa_roots",
    "request_token",
    "set_tsas",
    "stamp",
]
