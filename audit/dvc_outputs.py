"""Files for `dvc metrics show` and `dvc plots show`: the headline JSON, the figures as PNG,
and the same numbers as CSV.

Why PNG plots: `dvc plots show` draws CSV plots with Vega loaded from a CDN, so its page is
blank offline (where a reviewer often is); an image plot is an `<img>` that needs nothing.
The figures are the report's own (intervals, terms in design order, stages in protocol order,
counterfactuals apart from what was spent); the CSVs carry the same rows for spreadsheets.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from audit.plots import effect_interval, effect_terms
from audit.report_data import headline
from audit.report_model import ReportData
from ledger.fsutil import atomic_write

# The report's figures `dvc plots show` displays, under names that sort in reading order (it
# lists image plots by file name): what was learnt, how stable the ranks were, what it cost.
PLOT_FIGURES = {
    "effects.png": "1-effects.png",
    "ranks.png": "2-ranks.png",
    "costs.png": "3-costs.png",
}


def effects_rows(data: ReportData) -> list[dict[str, Any]]:
    """One row per (stage, term), stages in protocol order and terms in design order (A, B,
    ..., AB, ...), with the 95% interval (t with the residual df, or ± Lenth's ME: the
    decision's own numbers); post-selection rows say so and have no q."""
    rows = []
    for stage in data.stages:
        if stage.effects is None:
            continue
        by_term = {e.term: e for e in stage.effects.effects}
        for term in effect_terms([stage], main_only=False):
            e = by_term[term]
            interval = effect_interval(stage.effects, e)
            rows.append(
                {
                    "term": f"{e.term} @ {stage.name}",
                    "stage": stage.name,
                    "budget_s": stage.budget_s,
                    "effect": e.effect,
                    "low": interval[0] if interval else "",
                    "high": interval[1] if interval else "",
                    "q": e.q if e.q is not None else "",
                    "significant": e.term in stage.significant,
                    "post_selection": stage.effects.post_selection,
                }
            )
    return rows


def cost_rows(data: ReportData) -> list[dict[str, Any]]:
    """Executed GPU-hours per stage (protocol order), then at each gate the campaign's
    total had every candidate been continued, beside what the protocol spent."""
    report = data.cost_report
    rows: list[dict[str, Any]] = [
        {"kind": "executed", "label": name, "gpu_hours": part.training_gpu_hours}
        for name, part in report.costs.by_stage.items()
    ]
    if report.counterfactuals:
        rows.append(
            {
                "kind": "campaign",
                "label": "the protocol (spent)",
                "gpu_hours": report.campaign.protocol_gpu_hours,
            }
        )
    rows += [
        {
            "kind": "campaign",
            "label": f"every candidate of {cf.gate} continued",
            "gpu_hours": cf.campaign_if_all,
        }
        for cf in report.counterfactuals
    ]
    return rows


def _csv(rows: list[dict[str, Any]], fields: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


EFFECT_FIELDS = [
    "term",
    "stage",
    "budget_s",
    "effect",
    "low",
    "high",
    "q",
    "significant",
    "post_selection",
]


def write_dvc_outputs(
    data: ReportData,
    figures: dict[str, bytes],
    metrics: Path | None,
    plots: Path | None,
) -> None:
    """`metrics` (the headline as JSON) and, in `plots`, the PLOT_FIGURES the report drew
    plus effects.csv and costs.csv; each file written atomically."""
    if metrics is not None:
        text = json.dumps(headline(data).model_dump(mode="json"), indent=2, sort_keys=True)
        atomic_write(metrics, (text + "\n").encode())
    if plots is None:
        return
    for name, shown in PLOT_FIGURES.items():
        if name in figures:
            atomic_write(plots / shown, figures[name])
    atomic_write(plots / "effects.csv", _csv(effects_rows(data), EFFECT_FIELDS).encode())
    atomic_write(
        plots / "costs.csv", _csv(cost_rows(data), ["kind", "label", "gpu_hours"]).encode()
    )


__all__ = ["PLOT_FIGURES", "cost_rows", "effects_rows", "write_dvc_outputs"]
