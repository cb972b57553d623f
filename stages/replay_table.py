"""Recorded learning curves as a lookup table: `ledger evaluate --executor replay`.

Why: a protocol's worth is best judged on real curves, not only on a planted surface. A replay
table answers every run the protocol declares by lookup, so "what would this rule have decided
on the runs we have?" needs no GPU.

CSV columns (a header line; one row per recorded point of a curve):

* `budget` (or `fidelity`): how far the run had got, in the campaign's budget units
  (seconds, or labels like `2m`; a table of epochs is read against budgets written in epochs);
* the metric: a column named like the campaign's metric (e.g. `val_bpb`), else `metric`;
  empty or non-finite means the run failed there;
* `cost_gpu_s` (or `gpu_seconds`): GPU-seconds the run had used up to that point;
* optional `seed`, `host`, `status` (ok, diverged, crashed, timeout);
* condition keys: a `condition` column (condition name or id), or else every other column,
  read as runner-config keys and matched against each condition's config.

A run of condition c at budget B reads c's rows at the largest recorded fidelity <= B; no such
row is an error naming the condition and the budget.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.errors import LedgerError
from ledger.rawlog import STATUSES
from stages.campaign import budget_label, parse_budget
from stages.lookup import manifest_runs

FIDELITY_COLUMNS = ("budget", "fidelity")
COST_COLUMNS = ("cost_gpu_s", "gpu_seconds")
OPTIONAL_COLUMNS = ("seed", "host", "status")


@dataclass(frozen=True)
class Row:
    """One recorded point: a replicate (seed, host) of a condition at one fidelity."""

    fidelity: float
    value: float | None
    status: str
    cost_gpu_s: float
    seed: Any
    host: str | None
    line: int

    @property
    def replicate(self) -> tuple[str, str]:
        return (str(self.seed), str(self.host))


@dataclass
class CurveTable:
    """Rows grouped by condition key, then fidelity (ascending)."""

    source: str
    keys: list[str]  # condition key columns; ["condition"] when matched by name or id
    curves: dict[tuple, dict[float, list[Row]]] = field(default_factory=dict)

    @property
    def by_condition_column(self) -> bool:
        return self.keys == ["condition"]

    def key_of(self, condition: Mapping[str, Any]) -> tuple:
        """The table key of a condition (`{"id", "name", "config"}`); None-free or an error."""
        if self.by_condition_column:
            for candidate in (condition.get("id"), condition.get("name")):
                if (str(candidate),) in self.curves:
                    return (str(candidate),)
            return (str(condition.get("name")),)
        config = condition.get("config", {})
        missing = [k for k in self.keys if k not in config]
        if missing:
            raise LedgerError(
                f"{self.source}: condition {condition.get('name')!r} has no config value for "
                f"table column {missing[0]!r}"
            )
        return tuple(_norm(config[k]) for k in self.keys)

    def describe(self, condition: Mapping[str, Any]) -> str:
        if self.by_condition_column:
            return repr(condition.get("name"))
        config = condition.get("config", {})
        shown = ", ".join(f"{k}={config.get(k)!r}" for k in self.keys)
        return f"{condition.get('name')!r} ({shown})"

    def has(self, condition: Mapping[str, Any]) -> bool:
        return self.key_of(condition) in self.curves

    def fidelity_at(self, condition: Mapping[str, Any], budget_s: float) -> float:
        """The largest recorded fidelity <= budget for this condition (error naming the row)."""
        curve = self.curves.get(self.key_of(condition))
        if not curve:
            raise LedgerError(f"{self.source}: no row for condition {self.describe(condition)}")
        below = [f for f in curve if f <= budget_s * (1 + 1e-12)]
        if not below:
            raise LedgerError(
                f"{self.source}: no row for condition {self.describe(condition)} at or below "
                f"budget {budget_label(budget_s)} (its first fidelity is {min(curve):g})"
            )
        return max(below)

    def rows_at(self, condition: Mapping[str, Any], budget_s: float) -> tuple[float, list[Row]]:
        """(fidelity, replicate rows) answering a run of `condition` at `budget_s`."""
        fidelity = self.fidelity_at(condition, budget_s)
        return fidelity, self.curves[self.key_of(condition)][fidelity]

    def replicates(self, condition: Mapping[str, Any]) -> list[tuple[str, str]]:
        """Distinct (seed, host) replicates recorded for a condition, sorted."""
        curve = self.curves.get(self.key_of(condition), {})
        return sorted({r.replicate for rows in curve.values() for r in rows})

    @property
    def n_rows(self) -> int:
        return sum(len(rows) for curve in self.curves.values() for rows in curve.values())


def _norm(value: Any) -> Any:
    """Comparable key values: numbers as floats (512 == 512.0), everything else as text."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int | float):
        return float(value)
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def _number(text: str, where: str, *, allow_empty: bool = False) -> float | None:
    text = (text or "").strip()
    if not text:
        if allow_empty:
            return None
        raise LedgerError(f"{where}: empty value")
    try:
        value = float(text)
    except ValueError:
        raise LedgerError(f"{where}: {text!r} is not a number") from None
    return value if math.isfinite(value) else None


def _pick(header: list[str], names: Iterable[str], source: str, what: str) -> str:
    for name in names:
        if name in header:
            return name
    raise LedgerError(f"{source}: no {what} column (expected one of: {', '.join(names)})")


def read_table(path: str | Path, metric: str = "val_bpb") -> CurveTable:
    """Read a replay CSV (see the module docstring); every error names the file, line, column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LedgerError(f"replay table not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LedgerError(f"cannot read replay table {path}: {exc}") from None
    reader = csv.DictReader(text.splitlines())
    header = [h.strip() for h in (reader.fieldnames or [])]
    if not header:
        raise LedgerError(f"{path}: empty replay table (no header line)")
    reader.fieldnames = header
    fid_col = _pick(header, FIDELITY_COLUMNS, str(path), "budget")
    metric_col = _pick(header, (metric, "metric"), str(path), "metric")
    cost_col = _pick(header, COST_COLUMNS, str(path), "cost")
    used = {fid_col, metric_col, cost_col, *OPTIONAL_COLUMNS}
    keys = (
        ["condition"]
        if "condition" in header
        else [
            h
            for h in header
            if h not in used and h not in FIDELITY_COLUMNS and h not in COST_COLUMNS
        ]
    )
    if not keys:
        raise LedgerError(f"{path}: no condition key columns (add `condition` or config keys)")
    table = CurveTable(str(path), keys)
    for line, raw in enumerate(reader, start=2):
        where = f"{path}: line {line}"
        fidelity = parse_budget((raw.get(fid_col) or "").strip(), f"{where}, column {fid_col!r}")
        value = _number(
            raw.get(metric_col, ""), f"{where}, column {metric_col!r}", allow_empty=True
        )
        cost = _number(raw.get(cost_col, ""), f"{where}, column {cost_col!r}")
        if cost is None or cost < 0:
            raise LedgerError(f"{where}, column {cost_col!r}: cost must be a finite number >= 0")
        status = (raw.get("status") or "").strip() or ("ok" if value is not None else "diverged")
        if status not in STATUSES:
            raise LedgerError(
                f"{where}, column 'status': {status!r} is not one of {', '.join(STATUSES)}"
            )
        if status != "ok":
            value = None
        seed = (raw.get("seed") or "").strip()
        host = (raw.get("host") or "").strip() or None
        key = tuple(
            _norm(raw.get(k, "")) if k != "condition" else (raw.get(k) or "").strip() for k in keys
        )
        row = Row(
            fidelity,
            value,
            status,
            cost,
            int(seed) if seed.lstrip("-").isdigit() else (seed or None),
            host,
            line,
        )
        table.curves.setdefault(key, {}).setdefault(fidelity, []).append(row)
    if not table.curves:
        raise LedgerError(f"{path}: the replay table has a header but no rows")
    _sort(table)
    return table


def _sort(table: CurveTable) -> None:
    for key, curve in table.curves.items():
        table.curves[key] = {
            f: sorted(curve[f], key=lambda r: (r.replicate, r.line)) for f in sorted(curve)
        }


def table_from_store(store, metric: str = "val_bpb") -> CurveTable:
    """A replay table of every run a store recorded (baseline steps left out).

    Rows are keyed by condition id, at the manifest's budget, with the status and the value of
    the manifest's metric (`metric` when it names none) that the run record holds (what
    `decide` judged), and training_seconds x gpus as the cost.
    """
    manifests: dict[str, dict[str, Any]] = {}
    for journal in store.journals():
        for event in journal.events():
            if event.get("kind") in ("manifest_frozen", "amended") and event.get("object"):
                manifests.setdefault(event["object"], store.get_json(event["object"])["body"])
    table = CurveTable(f"store {store.root}", ["condition"])
    line = 0
    for manifest_id, body in sorted(manifests.items()):
        if "baseline" in body.get("spec", {}):
            continue
        for run in manifest_runs(store, manifest_id):
            record = run.body
            line += 1
            metrics = record.get("metrics", {})
            value = metrics.get(body.get("analysis", {}).get("metric", metric))
            ok = record.get("status") == "ok" and isinstance(value, int | float)
            cost = float(metrics.get("training_seconds") or 0.0) * int(record.get("gpus") or 1)
            row = Row(
                float(body["budget_s"]),
                float(value) if ok else None,
                str(record.get("status")),
                cost,
                record.get("seed"),
                record.get("host"),
                line,
            )
            table.curves.setdefault((str(record["condition"]),), {}).setdefault(
                row.fidelity, []
            ).append(row)
    if not table.curves:
        raise LedgerError(f"store {store.root} has no recorded runs to replay")
    _sort(table)
    return table
