"""Recorded learning curves as a lookup table: `ledger evaluate --executor replay`.

Why: a protocol's worth is best judged on real curves, not only on a planted surface. A replay
table answers every run the protocol declares by lookup, so "what would this rule have decided
on the runs we have?" needs no GPU.

CSV columns (a header line; one row per recorded point of a curve):

* `budget` (or `fidelity`): how far the run had got, in the campaign's budget units
  (seconds, or labels like `2m`; a table of epochs is read against budgets written in epochs);
* the metric: a column named like the campaign's metric (e.g. `val_bpb`), else `metric`;
  empty or non-finite means the run failed there;
* `cost_gpu_s` (or `gpu_seconds`): GPU-seconds the run had used up to that point
  (cumulative: a run's cost never decreases along its curve, and a table where it does is
  refused, naming both rows);
* optional `seed`, `host`, `status` (ok, diverged, crashed, timeout);
* condition keys: a `condition` column (condition name or id), or else every other column,
  read as runner-config keys and matched against each condition's config.

A replicate is one recorded run, `(seed, host)`, followed along its fidelities; a table may
not record the same replicate twice at one fidelity. A run of condition c at budget B reads
c's rows at the largest recorded fidelity <= B; no such row is an error naming the
condition and the budget.
"""

from __future__ import annotations

import bisect
import csv
import itertools
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger.errors import InputError
from ledger.rawlog import STATUSES
from ledger.store import Store
from stages.campaign import budget_label, parse_budget
from stages.conditions import Condition
from stages.lookup import all_manifests, manifest_runs

FIDELITY_COLUMNS = ("budget", "fidelity")
COST_COLUMNS = ("cost_gpu_s", "gpu_seconds")
OPTIONAL_COLUMNS = ("seed", "host", "status")
_REL = 1e-12  # fidelities compare with this relative slack (budgets are parsed floats)

Replicate = tuple[str, str]  # (seed, host) as text: one recorded run


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
    def replicate(self) -> Replicate:
        return (str(self.seed), str(self.host))


class Curve:
    """One condition's rows, indexed once: fidelities, rows per fidelity, rows per replicate.

    Why an index: an evaluation looks a condition up hundreds of thousands of times, and
    rebuilding the replicate set on every lookup was most of its run time.
    """

    def __init__(self, rows: Iterable[Row]) -> None:
        self.at: dict[float, list[Row]] = {}
        self.by_replicate: dict[Replicate, dict[float, Row]] = {}
        for row in sorted(rows, key=lambda r: (r.fidelity, r.replicate, r.line)):
            self.at.setdefault(row.fidelity, []).append(row)
            self.by_replicate.setdefault(row.replicate, {})[row.fidelity] = row
        self.fidelities = sorted(self.at)
        self.replicates: list[Replicate] = sorted(self.by_replicate)
        self._pools: dict[tuple, tuple[list[Replicate], bool]] = {}
        self._complete: dict[float, list[Replicate]] = {}

    def fidelity_at(self, budget_s: float) -> float | None:
        """The largest recorded fidelity <= budget (None: the curve starts above it)."""
        i = bisect.bisect_right(self.fidelities, budget_s * (1 + _REL))
        return self.fidelities[i - 1] if i else None

    def pool(
        self, fidelity: float, host: str | None, complete_to: float | None = None
    ) -> tuple[list[Replicate], bool]:
        """Replicates recorded at `fidelity`: those on `host` when any are, else all; with
        `complete_to`, only those recorded at every fidelity up to it. The flag says
        whether the host matched (False: drawn across hosts)."""
        key = (fidelity, host, complete_to)
        if key not in self._pools:
            rows = self.at.get(fidelity, [])
            mine = [r.replicate for r in rows if host is not None and r.host == host]
            reps, matched = (mine, True) if mine else ([r.replicate for r in rows], False)
            if complete_to is not None:
                whole = set(self.complete(complete_to))
                reps = [r for r in reps if r in whole]
            self._pools[key] = (reps, matched)
        return self._pools[key]

    def complete(self, up_to: float) -> list[Replicate]:
        """Replicates recorded at every fidelity of this curve up to `up_to` (a run that
        can be continued all the way)."""
        if up_to not in self._complete:
            wanted = [f for f in self.fidelities if f <= up_to * (1 + _REL)]
            self._complete[up_to] = [
                rep for rep in self.replicates if all(f in self.by_replicate[rep] for f in wanted)
            ]
        return self._complete[up_to]


@dataclass
class CurveTable:
    """Curves by condition key. `cumulative`: each replicate's cost is checked to be a
    running total along its fidelities (a CSV of curves); a store's runs are each trained
    from scratch, so theirs are not."""

    source: str
    keys: list[str]  # condition key columns; ["condition"] when matched by name or id
    curves: dict[tuple, Curve] = field(default_factory=dict)
    cumulative: bool = True
    has_seed: bool = True
    has_host: bool = True

    @property
    def by_condition_column(self) -> bool:
        return self.keys == ["condition"]

    def key_of(self, condition: Condition) -> tuple:
        """The table key of a condition (its `config` is read only when the table keys rows
        by config columns); None-free or an error."""
        if self.by_condition_column:
            for candidate in (condition.id, condition.name):
                if (str(candidate),) in self.curves:
                    return (str(candidate),)
            return (str(condition.name),)
        config = condition.config
        missing = [k for k in self.keys if k not in config]
        if missing:
            raise InputError(
                f"{self.source}: condition {condition.name!r} has no config value for "
                f"table column {missing[0]!r}"
            )
        return tuple(_norm(config[k]) for k in self.keys)

    def describe(self, condition: Condition) -> str:
        """A condition as an error names it (after `key_of` found every key column)."""
        if self.by_condition_column:
            return repr(condition.name)
        config = condition.config
        shown = ", ".join(f"{k}={config[k]!r}" for k in self.keys)
        return f"{condition.name!r} ({shown})"

    def has(self, condition: Condition) -> bool:
        return self.key_of(condition) in self.curves

    def curve(self, condition: Condition) -> Curve:
        """The condition's curve, or an error naming it."""
        try:
            return self.curves[self.key_of(condition)]
        except KeyError:
            raise InputError(
                f"{self.source}: no row for condition {self.describe(condition)}"
            ) from None

    def fidelity_at(self, condition: Condition, budget_s: float) -> float:
        """The largest recorded fidelity <= budget for this condition (error naming the row)."""
        curve = self.curve(condition)
        fidelity = curve.fidelity_at(budget_s)
        if fidelity is None:
            raise InputError(
                f"{self.source}: no row for condition {self.describe(condition)} at or below "
                f"budget {budget_label(budget_s)} (its first fidelity is "
                f"{curve.fidelities[0]:g})"
            )
        return fidelity

    def rows_at(self, condition: Condition, budget_s: float) -> tuple[float, list[Row]]:
        """(fidelity, replicate rows) answering a run of `condition` at `budget_s`."""
        fidelity = self.fidelity_at(condition, budget_s)
        return fidelity, self.curve(condition).at[fidelity]

    @property
    def hosts(self) -> set[str]:
        return {
            r.host for c in self.curves.values() for rows in c.at.values() for r in rows if r.host
        }

    @property
    def n_rows(self) -> int:
        return sum(len(rows) for curve in self.curves.values() for rows in curve.at.values())


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
        raise InputError(f"{where}: empty value")
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a number") from None
    return value if math.isfinite(value) else None


def _pick(header: list[str], names: Iterable[str], source: str, what: str) -> str:
    for name in names:
        if name in header:
            return name
    raise InputError(f"{source}: no {what} column (expected one of: {', '.join(names)})")


def read_table(path: str | Path, metric: str = "val_bpb") -> CurveTable:
    """Read a replay CSV (see the module docstring); every error names the file, line, column."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"replay table not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read replay table {path}: {exc}") from None
    reader = csv.reader(text.splitlines())
    header = [h.strip() for h in next(reader, [])]
    if not any(header):
        raise InputError(f"{path}: empty replay table (no header line)")
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
        raise InputError(f"{path}: no condition key columns (add `condition` or config keys)")
    col = {h: i for i, h in enumerate(header)}
    budgets: dict[str, float] = {}  # parse each distinct budget label once
    grouped: dict[tuple, list[Row]] = {}
    for line, raw in enumerate(reader, start=2):
        if not raw:
            continue

        def cell(name: str, raw: list[str] = raw) -> str:
            i = col.get(name)
            return raw[i].strip() if i is not None and i < len(raw) else ""

        where = f"{path}: line {line}"
        label = cell(fid_col)
        if label not in budgets:
            budgets[label] = parse_budget(label, f"{where}, column {fid_col!r}")
        value = _number(cell(metric_col), f"{where}, column {metric_col!r}", allow_empty=True)
        cost = _number(cell(cost_col), f"{where}, column {cost_col!r}")
        if cost is None or cost < 0:
            raise InputError(f"{where}, column {cost_col!r}: cost must be a finite number >= 0")
        status = cell("status") or ("ok" if value is not None else "diverged")
        if status not in STATUSES:
            raise InputError(
                f"{where}, column 'status': {status!r} is not one of {', '.join(STATUSES)}"
            )
        seed = cell("seed")
        key = tuple(cell(k) if k == "condition" else _norm(cell(k)) for k in keys)
        grouped.setdefault(key, []).append(
            Row(
                budgets[label],
                value if status == "ok" else None,
                status,
                cost,
                int(seed) if seed.lstrip("-").isdigit() else (seed or None),
                cell("host") or None,
                line,
            )
        )
    if not grouped:
        raise InputError(f"{path}: the replay table has a header but no rows")
    table = CurveTable(
        str(path), keys, cumulative=True, has_seed="seed" in col, has_host="host" in col
    )
    for key, rows in grouped.items():
        _check_replicates(str(path), key, rows)
        table.curves[key] = Curve(rows)
    return table


def _check_replicates(source: str, key: tuple, rows: list[Row]) -> None:
    """One row per replicate and fidelity, and costs that never decrease along a replicate.

    Why refuse rather than repair: a repeated replicate makes "which run is this?"
    ambiguous, and a cost that falls along a run cannot be a running total, so any cost
    model built on it (continuing pays the difference) would be wrong without saying so.
    """
    name = "/".join(str(k) for k in key)
    seen: dict[tuple[Replicate, float], Row] = {}
    for row in rows:
        where = (row.replicate, row.fidelity)
        if where in seen:
            raise InputError(
                f"{source}: line {row.line} repeats line {seen[where].line} (condition "
                f"{name}, seed {row.seed}, host {row.host}, budget {row.fidelity:g}): give "
                f"each recorded run its own seed"
            )
        seen[where] = row
    ordered = sorted(rows, key=lambda r: (r.replicate, r.fidelity))
    for prev, row in itertools.pairwise(ordered):
        if prev.replicate == row.replicate and row.cost_gpu_s < prev.cost_gpu_s:
            raise InputError(
                f"{source}: line {row.line}: cost {row.cost_gpu_s:g} at budget "
                f"{row.fidelity:g} is below {prev.cost_gpu_s:g} at budget {prev.fidelity:g} "
                f"(line {prev.line}) for the same run (condition {name}, seed {row.seed}, "
                f"host {row.host}): the cost column must be cumulative GPU-seconds"
            )


def table_from_store(store: Store, metric: str = "val_bpb") -> CurveTable:
    """A replay table of every run a store recorded (baseline steps left out).

    Rows are keyed by condition id, at the manifest's budget, with the status and the value of
    the manifest's metric (`metric` when it names none) that the run record holds (what
    `decide` judged), and training_seconds x gpus as the cost. Each budget's runs were
    trained from scratch, so costs are not running totals (`cumulative` is False); the same
    cell run again at one budget (another stage) is kept as another replicate.
    """
    manifests = {m.id: m.body for m in all_manifests(store)}
    grouped: dict[tuple, list[Row]] = {}
    seen: set[tuple] = set()
    line = 0
    for manifest_id, body in sorted(manifests.items()):
        if body.is_baseline:
            continue
        for run in manifest_runs(store, manifest_id):
            record = run.body
            line += 1
            found = record.value(body.analysis.metric or metric)
            value = float(found) if record.status == "ok" and found is not None else None
            cost = float(record.metrics.training_seconds or 0.0) * int(record.gpus or 1)
            key = (str(record.condition),)
            seed: int | str | None = record.seed
            host, budget = record.host, float(body.budget_s)
            copy = 1
            while (key, str(seed), str(host), budget) in seen:  # the cell again at this budget
                copy += 1
                seed = f"{record.seed}#{copy}"
            seen.add((key, str(seed), str(host), budget))
            grouped.setdefault(key, []).append(
                Row(budget, value, record.status, cost, seed, host, line)
            )
    if not grouped:
        raise InputError(f"store {store.root} has no recorded runs to replay")
    table = CurveTable(f"store {store.root}", ["condition"], cumulative=False)
    for key, rows in grouped.items():
        table.curves[key] = Curve(rows)
    return table
