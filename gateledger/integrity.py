"""The reviewer's integrity pass, `verify`, and the inputs a reviewer brings (trusted keys,
published anchors, TSA roots), shared with the audit in `gateledger.review`.

Apart from `gateledger.review` because verify needs only the ledger: a reviewer's
`ledger verify` then starts without the method's statistics (SciPy, statsmodels).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.anchor import read_anchor_file
from ledger.problems import Problem
from ledger.store import Store
from ledger.timestamp import load_tsa_roots
from ledger.trust import Trust, trust_from
from ledger.verify import Verified, verify_with_evidence


def reviewer_inputs(
    trust: Iterable[str] = (),
    trust_files: Iterable[str | Path] = (),
    anchors: Iterable[str | Path] = (),
) -> tuple[Trust, dict[str, dict[str, Any]]]:
    """(Trust, published anchors by id) from key ids, key-record files and anchor files.

    Raises:
        TrustError: a malformed key id or file; LedgerError: a malformed anchor file.
    """
    chosen = trust_from(list(trust), [str(p) for p in trust_files])
    return chosen, dict(read_anchor_file(Path(p)) for p in anchors)


def tsa_root_certificates(tsa_roots: Iterable[str | Path]) -> list | None:
    files = list(tsa_roots)
    return load_tsa_roots(files) if files else None


def opened(store: Store | str | Path, host: str | None) -> Store:
    return store if isinstance(store, Store) else Store.open(store, host=host)


@dataclass
class VerifyResult:
    """What `verify` found: `ok`, `problems`, and the pass itself (`verified`)."""

    verified: Verified
    trust: Trust
    leftovers: list[str]

    @property
    def problems(self) -> list[Problem]:
        return self.verified.problems

    @property
    def ok(self) -> bool:
        return not self.verified.problems

    def to_dict(self) -> dict[str, Any]:
        verified = self.verified
        return {
            "ok": self.ok,
            "problems": [p.to_dict() for p in self.problems],
            "leftover_temp_files": self.leftovers,
            "orphans": verified.orphans,
            "unanchored": verified.anchors.unanchored,
            "notes": verified.notes(),
            "timestamps": [t.to_dict() for t in verified.timestamps.tokens.values()],
            **self.trust.to_dict(),
        }


def verify(
    store: Store | str | Path,
    *,
    host: str | None = None,
    trust: Iterable[str] = (),
    trust_files: Iterable[str | Path] = (),
    anchors: Iterable[str | Path] = (),
    tsa_roots: Iterable[str | Path] = (),
    check_index: bool = True,
    progress: bool = False,
) -> VerifyResult:
    """Check every byte, signature, key file, journal chain, reference, anchor and token.

    Args:
        trust, trust_files: accept signatures by these keys only (default: the store's).
        anchors: published anchor files the journals must still extend.
        tsa_roots: PEM files of TSA roots every timestamp token must verify against.
        check_index: also compare index.duckdb with a rebuild.

    `store` is a Store or the root of one (opened, as `host`, after the reviewer's inputs
    are read).

    Raises:
        LedgerError: bad reviewer input (a key id, a file), no store; problems are returned,
            not raised.
    """
    chosen, published = reviewer_inputs(trust, trust_files, anchors)
    roots = tsa_root_certificates(tsa_roots)
    store = opened(store, host)
    verified = verify_with_evidence(
        store,
        check_index=check_index,
        progress=progress,
        trust=chosen,
        anchors=published,
        tsa_roots=roots,
    )
    leftovers = [str(p.relative_to(store.root)) for p in store.leftovers()]
    return VerifyResult(verified, chosen, leftovers)
