"""`ledger effects CSV`: factorial effects of any CSV of -1/+1 coded factors and a response.

Why: reviewers and users should be able to run the same estimator the gates use on their own
tables (a textbook example, another lab's screen) without building a campaign.

Factor columns: every column named by a single upper-case letter (other than the response and
the block), which must then hold only -1/+1; if there is none, every other column whose values
are all -1/+1.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.errors import InputError, LedgerError
from stages.stats import EffectsResult, estimate_effects


def _level(text: str) -> int | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return int(v) if v in (-1.0, 1.0) else None


@dataclass(frozen=True)
class CsvEffects:
    """The effects of a CSV's rows (`result`: each effect's term, effect, coef, se, t, p,
    q, 95% t interval and alias chain; the method, dfs, dropped terms and notes)."""

    path: str
    response: str
    result: EffectsResult

    def to_dict(self) -> dict[str, Any]:
        """What `ledger effects --json` prints: the keys of CSV_KEYS."""
        d = self.result.to_dict()
        return {k: d[k] for k in CSV_KEYS}


def analyse_csv(
    path: str | Path, response: str, terms: str = "main", block: str | None = None
) -> CsvEffects:
    """Read the CSV and estimate effects (the estimator the gates use)."""
    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            body = [(i + 2, row) for i, row in enumerate(reader) if any(x.strip() for x in row)]
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    if not header:
        raise InputError(f"{path}: empty file (no header row)")
    header = [h.strip() for h in header]
    for col in [response] + ([block] if block else []):
        if col not in header:
            raise InputError(f"{path}: no column {col!r} (columns: {', '.join(header)})")
    for line, row in body:
        if len(row) != len(header):
            raise InputError(f"{path}: line {line} has {len(row)} fields, header has {len(header)}")
    idx = {h: i for i, h in enumerate(header)}
    others = [h for h in header if h not in (response, block)]
    letters = [h for h in others if len(h) == 1 and h.isupper()]
    coded = [h for h in others if body and all(_level(r[idx[h]].strip()) for _, r in body)]
    factors = letters or coded
    if not factors:
        raise InputError(f"{path}: no factor columns (single upper-case letters coded -1/+1)")

    rows = []
    for line, r in body:
        rec: dict = {}
        for f in factors:
            lev = _level(r[idx[f]].strip())
            if lev is None:
                raise InputError(
                    f"{path}: column {f!r}, line {line}: {r[idx[f]]!r} is not a -1/+1 level"
                )
            rec[f] = lev
        text = r[idx[response]].strip()
        try:
            y = float(text)
        except ValueError:
            y = math.nan
        if not math.isfinite(y):
            raise InputError(f"{path}: column {response!r}, line {line}: {text!r} is not a number")
        rec[response] = y
        if block:
            rec[block] = r[idx[block]].strip()
        rows.append(rec)
    if not rows:
        raise InputError(f"{path}: no data rows")

    if terms not in ("main", "all"):
        terms = [t.strip() for t in str(terms).split(",") if t.strip()]  # type: ignore[assignment]
    try:
        result = estimate_effects(rows, factors, response=response, terms=terms, block=block)
    except LedgerError as exc:
        raise type(exc)(f"{path}: {exc}") from None  # the same error, naming the file
    return CsvEffects(str(path), response, result)


CSV_KEYS = (
    "effects",
    "method",
    "df_resid",
    "t_df",
    "pse",
    "me",
    "sme",
    "block",
    "dropped",
    "dropped_reasons",
    "notes",
)
