"""The reviewer's verbs: audit (a store or a bundle), the runs table, export a bundle or
in-toto attestations, replay a run (verify, which needs only the ledger, is in
`gateledger.integrity`).

Each function is what one `ledger` command does, minus the formatting.
"""

from __future__ import annotations

import platform
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from audit.bundle import export_bundle, open_bundle
from audit.intoto import Export as InTotoExport
from audit.intoto import export_in_toto
from audit.rederive import AuditResult, audit_store
from audit.reproduce import reproduce_run
from audit.runs_table import RunsTable, runs_table
from audit.spotcheck import SpotCheckRequest
from gateledger.integrity import opened, reviewer_inputs, tsa_root_certificates
from gateledger.method import load_campaign
from gateledger.signers import KeyLike, signing_key
from ledger.errors import ConfigError
from ledger.problems import Problem
from ledger.store import Store

BUNDLE_VERSIONS = (
    "gateledger",
    "torch",
    "duckdb",
    "statsmodels",
    "cryptography",
    "rfc8785",
    "rfc3161-client",
)


AuditReport = AuditResult  # what `audit` and `audit_bundle` return (audit.rederive)


def audit(
    store: Store | str | Path,
    *,
    host: str | None = None,
    trust: Iterable[str] = (),
    trust_files: Iterable[str | Path] = (),
    anchors: Iterable[str | Path] = (),
    tsa_roots: Iterable[str | Path] = (),
    reproduce: SpotCheckRequest | None = None,
    progress: bool = False,
    allow_undecided: bool = False,
) -> AuditReport:
    """Re-derive every estimate and decision from objects and journals alone.

    `result.ok` is True when clean; `result.problems` names each
    object at fault. `store`, `host` and the reviewer inputs are those of `verify`;
    `reproduce` replays a reviewer-drawn sample of runs (`spot_check(...)`);
    `allow_undecided` accepts plans not yet decided (a campaign in progress), which are
    otherwise problems.

    Raises:
        LedgerError: an unreadable store or bad reviewer input.
    """
    chosen, published = reviewer_inputs(trust, trust_files, anchors)
    roots = tsa_root_certificates(tsa_roots)
    store = opened(store, host)
    result = audit_store(
        store,
        progress=progress,
        trust=chosen,
        anchors=published,
        tsa_roots=roots,
        reproduce=reproduce,
        allow_undecided=allow_undecided,
    )
    return with_problems(result, [])


def spot_check(
    count: int,
    *,
    seed: int = 0,
    tolerance: float | None = None,
    data: str | Path | None = None,
    device: str = "cpu",
) -> SpotCheckRequest:
    """A reviewer's request to replay `count` runs drawn by `seed` (for `audit(reproduce=)`)."""
    return SpotCheckRequest(
        count, seed=seed, tolerance=tolerance, data=Path(data) if data else None, device=device
    )


@contextmanager
def opened_bundle(
    bundle: str | Path, *, host: str | None = None
) -> Iterator[tuple[Store, list[Problem]]]:
    """A reviewer bundle unpacked into a scratch folder and opened as a store (as `host`,
    default `reviewer`), with the bundle's own problems (members that do not match its
    listing); the folder is removed afterwards.

    Raises:
        BundleError: a malformed, truncated or oversized bundle.
    """
    with tempfile.TemporaryDirectory(prefix="ledger-bundle-") as tmp:
        root, problems = open_bundle(Path(bundle), Path(tmp))
        found = [Problem("bundle", p, check="bundle") for p in problems]
        yield Store.open(root, host=host or "reviewer"), found


def with_problems(result: AuditResult, problems: list[Problem]) -> AuditReport:
    """The audit's result as an `AuditReport`, `problems` (the bundle's own) first."""
    values = {f.name: getattr(result, f.name) for f in fields(result)}
    values["problems"] = problems + result.problems
    return AuditReport(**values)


def audit_bundle(
    bundle: str | Path,
    *,
    host: str | None = None,
    trust: Iterable[str] = (),
    trust_files: Iterable[str | Path] = (),
    anchors: Iterable[str | Path] = (),
    tsa_roots: Iterable[str | Path] = (),
    reproduce: SpotCheckRequest | None = None,
    progress: bool = False,
    allow_undecided: bool = False,
) -> AuditReport:
    """Audit a reviewer bundle (from `export`) in a scratch folder: the same result as
    `audit`, the bundle's own problems first (`allow_undecided` as in `audit`).

    Raises:
        BundleError: a malformed, truncated or oversized bundle.
    """
    chosen, published = reviewer_inputs(trust, trust_files, anchors)
    roots = tsa_root_certificates(tsa_roots)
    with opened_bundle(bundle, host=host) as (store, bundle_problems):
        result = audit_store(
            store,
            progress=progress,
            trust=chosen,
            anchors=published,
            tsa_roots=roots,
            reproduce=reproduce,
            allow_undecided=allow_undecided,
        )
    return with_problems(result, bundle_problems)


def runs(
    store: Store,
    *,
    campaign: str | Path | None = None,
    stages: Iterable[str] = (),
    statuses: Iterable[str] = (),
    conditions: Iterable[str] = (),
    kinds: Iterable[str] = (),
) -> list[dict[str, Any]]:
    """One dict per run (stage, condition, factor levels, seed, host, status, metric,
    training seconds, tokens/s, MFU, GPU-hours): `pandas.DataFrame(gl.runs(store))`.

    `campaign` is a campaign file (its name filters); the others filter by value.

    Raises:
        CampaignError: `campaign` cannot be read; IntegrityError: a run record's bytes fail.
    """
    return runs_rows(
        store,
        campaign=campaign,
        stages=stages,
        statuses=statuses,
        conditions=conditions,
        kinds=kinds,
    ).rows


def runs_rows(
    store: Store,
    *,
    campaign: str | Path | None = None,
    stages: Iterable[str] = (),
    statuses: Iterable[str] = (),
    conditions: Iterable[str] = (),
    kinds: Iterable[str] = (),
) -> RunsTable:
    """`runs` with its columns, metric and factors (`RunsTable`), for tables and CSV.

    Raises:
        CampaignError: `campaign` cannot be read; IntegrityError: a run record's bytes fail.
    """
    name = load_campaign(campaign).name if campaign else None
    return runs_table(
        store,
        campaign=name,
        stages=tuple(stages),
        statuses=tuple(statuses),
        conditions=tuple(conditions),
        kinds=tuple(kinds),
    )


def package_versions() -> dict[str, str | None]:
    """Python's and the packages' versions a bundle records."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for package in BUNDLE_VERSIONS:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return versions


@dataclass(frozen=True)
class Exported:
    """What `export` wrote: the reviewer bundle (its path and the package versions it
    records) and/or the in-toto attestations (`audit.intoto.Export`), whichever was asked."""

    bundle: str | None = None
    versions: dict[str, str | None] | None = None
    in_toto: InTotoExport | None = None

    def to_dict(self) -> dict[str, Any]:
        """What `ledger export --json` prints: the parts that were written."""
        out: dict[str, Any] = {}
        if self.in_toto is not None:
            out["in_toto"] = self.in_toto.to_dict()
        if self.bundle is not None:
            out.update(bundle=self.bundle, versions=self.versions)
        return out


def export(
    store: Store,
    bundle: str | Path | None = None,
    *,
    campaigns: Iterable[str | Path] = (),
    in_toto: str | Path | None = None,
    key: KeyLike = None,
    allow_undecided: bool = False,
) -> Exported:
    """Write a reviewer bundle (objects, journals, keys, campaigns, versions) and/or every
    manifest and decision as in-toto attestations into folder `in_toto`, signed with `key`
    (refused while the audit finds a problem; `allow_undecided` as in `audit`).

    Returns what was written (`Exported`: the bundle and its versions, the in-toto export).

    Raises:
        ConfigError: neither a bundle nor `in_toto`; SigningKeyError: no key for in-toto;
        IntegrityError: in-toto asked and the audit finds a problem; BundleError: a host
        part is a symbolic link (the store does not read it, so no bundle carries it).
    """
    if not bundle and not in_toto:
        raise ConfigError("give a BUNDLE path, --in-toto DIR, or both")
    attested = (
        export_in_toto(
            store, Path(in_toto), signing_key(key, store), allow_undecided=allow_undecided
        )
        if in_toto
        else None
    )
    if not bundle:
        return Exported(in_toto=attested)
    versions = package_versions()
    path = export_bundle(
        store.root,
        Path(bundle),
        extra_files={Path(c).name: Path(c) for c in campaigns},
        meta={"versions": versions},
    )
    return Exported(str(path), versions, attested)


def reproduce(
    store: Store, run: str, *, data: str | Path | None = None, device: str = "cpu"
) -> dict[str, Any]:
    """Replay a recorded run (id or 12+ hex prefix) and compare it with its record
    (`identical`, the val_bpb and step-loss differences).

    Raises:
        LedgerError: an unknown run, data that does not hash to the run's.
    """
    return reproduce_run(
        store, store.resolve(run, "run"), data=Path(data) if data else None, device=device
    )
