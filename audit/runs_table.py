"""Tables of runs, decisions and costs as plain rows (and pandas DataFrames), from the journals.

Why here and not in SQL: a researcher wants one row per run with the condition's name, each
factor's level and the throughput numbers, which the index only has spread over two tables
keyed by full hashes. These tables read the run records and manifests the journals cite (the
same lookups `ledger run` and `ledger decide` use); they show what was recorded, and
`ledger audit` is what checks those records against the raw logs.

    >>> from ledger.store import Store
    >>> from audit.runs_table import runs_frame
    >>> df = runs_frame(Store.open(".ledger"))                     # doctest: +SKIP
    >>> df.groupby(["stage", "condition"]).val_bpb.mean()         # doctest: +SKIP
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ledger.documents import RunRecord
from ledger.errors import ConfigError, UnknownStage
from ledger.plan_model import Manifest, Plan
from ledger.provenance import run_gpus
from ledger.store import Store
from stages.lookup import Entry, all_decisions, all_manifests, all_runs

if TYPE_CHECKING:
    import pandas as pd

RUN_STATUSES = ("ok", "diverged", "crashed", "timeout")
BASE_COLUMNS = ("run", "campaign", "stage", "kind", "manifest", "condition", "condition_id")
TAIL_COLUMNS = ("seed", "host", "status")
NUMBER_COLUMNS = ("training_seconds", "tokens_per_s", "mfu", "gpu_hours")


@dataclass
class RunsTable:
    """Rows (dicts keyed by `columns`) and what the columns mean."""

    columns: list[str]
    rows: list[dict[str, Any]]
    metric: str
    factors: dict[str, str] = field(default_factory=dict)  # config key -> factor letter

    def to_dict(self) -> dict[str, Any]:
        return {
            "columns": self.columns,
            "metric": self.metric,
            "factors": self.factors,
            "rows": self.rows,
        }


def stage_kind(manifest: Plan) -> str:
    """`baseline` for a baseline's manifest (its spec says so), else `gate`."""
    return "baseline" if "baseline" in manifest.spec else "gate"


def _factor_keys(manifests: list[Entry[Manifest]]) -> dict[str, str]:
    """Config key -> letter, over every manifest's frozen factors, in letter order."""
    pairs: dict[str, str] = {}
    for entry in manifests:
        factors = entry.body.analysis.factors
        for letter in sorted(factors):
            pairs.setdefault(factors[letter].key, letter)
    return dict(sorted(pairs.items(), key=lambda kv: (kv[1], kv[0])))


def _metric(manifests: list[Entry[Manifest]]) -> str:
    metrics = {m.body.analysis.metric for m in manifests}
    return metrics.pop() if len(metrics) == 1 else "val_bpb"


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def gpu_hours(record: RunRecord, manifest: Plan | None = None) -> float:
    """Training GPU-hours of one run: training seconds x GPUs / 3600 (DESIGN §8), the GPUs
    its manifest froze (the record's only for unplanned compute)."""
    seconds = _number(record.metrics.training_seconds) or 0.0
    gpus = run_gpus(manifest) if manifest is not None else record.gpus
    return seconds * max(gpus, 1) / 3600.0


def _row(
    run: Entry[RunRecord], manifest: Manifest | None, keys: dict[str, str], metric: str
) -> dict[str, Any]:
    body = run.body
    cid = body.condition
    info = manifest.conditions.get(cid) if manifest is not None and cid is not None else None
    config = info.config if info is not None else {}
    row: dict[str, Any] = {
        "run": run.id,
        "campaign": manifest.campaign if manifest is not None else None,
        "stage": (manifest.stage if manifest is not None else None) or body.stage or "(unplanned)",
        "kind": stage_kind(manifest) if manifest is not None else "unplanned",
        "manifest": body.manifest,
        "condition": info.name if info is not None else (cid[:8] if cid else None),
        "condition_id": cid,
    }
    for key in keys:
        row[key] = config.get(key)
    row.update(
        {
            "seed": body.seed,
            "host": body.host,
            "status": body.status,
            metric: _number(body.value(metric)),
            "training_seconds": _number(body.metrics.training_seconds),
            "tokens_per_s": _number(body.metrics.tokens_per_s),
            "mfu": _number(body.metrics.mfu),
            "gpu_hours": gpu_hours(body, manifest),
            "runner": body.runner,
        }
    )
    return row


def _matches_condition(row: dict[str, Any], wanted: tuple[str, ...]) -> bool:
    cid = str(row["condition_id"] or "")
    for text in wanted:
        lowered = text.lower()
        if row["condition"] == text or (len(lowered) >= 8 and cid.startswith(lowered)):
            return True
    return False


def runs_table(
    store: Store,
    *,
    campaign: str | None = None,
    stages: tuple[str, ...] = (),
    statuses: tuple[str, ...] = (),
    conditions: tuple[str, ...] = (),
    kinds: tuple[str, ...] = (),
) -> RunsTable:
    """One row per recorded run, in freeze order of its manifest, then condition, seed, host.

    Args:
        campaign: keep this campaign's runs only (its name).
        stages, statuses, kinds: keep rows whose stage / status / kind (`gate`, `baseline`,
            `unplanned`) is one of these (empty: all).
        conditions: keep rows whose condition name is one of these, or whose condition id
            starts with one of them (8+ hex characters).

    Raises:
        LedgerError: a status that is not a run status, or a stage no manifest has.
    """
    bad = sorted(set(statuses) - set(RUN_STATUSES))
    if bad:
        raise ConfigError(f"--status {bad[0]!r} is not a run status ({', '.join(RUN_STATUSES)})")
    manifests = all_manifests(store)
    if campaign is not None:
        manifests = [m for m in manifests if m.body.campaign == campaign]
    known = {m.body.stage for m in manifests}
    unknown = [s for s in stages if s not in known and s != "(unplanned)"]
    if unknown:
        raise UnknownStage(
            f"no stage {unknown[0]!r} in this store"
            + (f" for campaign {campaign!r}" if campaign else "")
            + (f" (stages: {', '.join(sorted(map(str, known)))})" if known else "")
        )
    by_id = {m.id: m.body for m in manifests}
    order = {m.id: i for i, m in enumerate(manifests)}
    keys = _factor_keys(manifests)
    metric = _metric(manifests)
    rows = []
    for run in all_runs(store):
        mid = run.body.manifest
        if mid is not None and mid not in by_id:
            continue  # another campaign's run (or a manifest that is not journaled)
        if mid is None and campaign is not None:
            continue
        manifest = by_id[mid] if mid is not None else None
        position = order[mid] if mid is not None else len(order)
        rows.append((position, _row(run, manifest, keys, metric)))
    rows.sort(
        key=lambda pr: (
            pr[0],
            str(pr[1]["condition"]),
            _sortable(pr[1]["seed"]),
            str(pr[1]["host"]),
            pr[1]["run"],
        )
    )
    out = [r for _, r in rows]
    if stages:
        out = [r for r in out if r["stage"] in stages]
    if statuses:
        out = [r for r in out if r["status"] in statuses]
    if kinds:
        out = [r for r in out if r["kind"] in kinds]
    if conditions:
        out = [r for r in out if _matches_condition(r, conditions)]
    columns = [*BASE_COLUMNS, *keys, *TAIL_COLUMNS, metric, *NUMBER_COLUMNS, "runner"]
    return RunsTable(columns, out, metric, keys)


def _sortable(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int) else (1, str(value))


def decisions_table(store: Store, *, campaign: str | None = None) -> list[dict[str, Any]]:
    """One row per decision: stage, kind, ids, time, runs used, promoted names, best and its
    mean (the gate's own first, as its decision ranks them)."""
    manifests = {m.id: m.body for m in all_manifests(store)}
    rows = []
    for entry in all_decisions(store):
        body = entry.body
        manifest = manifests.get(body.manifest)
        if manifest is None or (campaign is not None and manifest.campaign != campaign):
            continue
        names = {cid: info.name for cid, info in manifest.conditions.items()}
        promoted = list(body.promoted)
        best = body.outcome.best or (promoted[0] if promoted else None)
        stats = body.statistics.of(best) if best else None
        rows.append(
            {
                "decision": entry.id,
                "manifest": body.manifest,
                "campaign": manifest.campaign,
                "stage": body.stage,
                "kind": stage_kind(manifest),
                "budget_s": manifest.budget_s,
                "decided_at": body.decided_at,
                "n_runs": len(body.runs),
                "promoted": ", ".join(str(names.get(c, c[:8])) for c in promoted),
                "best": names.get(best) if best else None,
                "best_mean": _number(stats.mean) if stats is not None else None,
            }
        )
    return rows


def costs_table(store: Store, *, campaign: str | None = None) -> list[dict[str, Any]]:
    """Training GPU-hours by stage (protocol and baselines apart), in freeze order."""
    table = runs_table(store, campaign=campaign)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for row in table.rows:
        part = out.setdefault(
            (row["kind"], row["stage"]),
            {"stage": row["stage"], "kind": row["kind"], "n_runs": 0, "gpu_hours": 0.0},
        )
        part["n_runs"] += 1
        part["gpu_hours"] += row["gpu_hours"]
    return list(out.values())


def runs_frame(store: Store, **filters: Any) -> pd.DataFrame:
    """`runs_table` as a pandas DataFrame (one row per run; columns as `ledger runs --csv`)."""
    import pandas as pd  # pandas: ~0.3 s measured; only the DataFrame API needs it

    table = runs_table(store, **filters)
    return pd.DataFrame(table.rows, columns=table.columns)


def decisions_frame(store: Store, **filters: Any) -> pd.DataFrame:
    """`decisions_table` as a pandas DataFrame."""
    import pandas as pd  # pandas: ~0.3 s measured; only the DataFrame API needs it

    return pd.DataFrame(decisions_table(store, **filters))


def costs_frame(store: Store, **filters: Any) -> pd.DataFrame:
    """`costs_table` as a pandas DataFrame."""
    import pandas as pd  # pandas: ~0.3 s measured; only the DataFrame API needs it

    return pd.DataFrame(costs_table(store, **filters))


__all__ = [
    "RunsTable",
    "costs_frame",
    "costs_table",
    "decisions_frame",
    "decisions_table",
    "gpu_hours",
    "runs_frame",
    "runs_table",
    "stage_kind",
]
