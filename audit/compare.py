"""The protocol against the baselines recorded next to it (and campaign against campaign):
best condition found, its metric with interval, GPU-hours spent, on one table and one plot.

Why from the audited report data: a comparison is a claim ("the protocol found the same
recipe as greedy search for a fifth of the GPU-hours"), so each row is built from decisions
and run observations the audit re-derived, never from a baseline's own summary line.

Means found at different budgets are not comparable (a 12-hour mean beats any 10-minute
one), so each row says the budget its mean was measured at, and a baseline row also gives
the protocol's own mean of that condition at the same budget when the protocol ran one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from audit.frozen_spec import BaselineSpec, baseline_spec
from audit.gates import StageAudit
from audit.report_model import ReportData
from ledger.decision_model import ConditionStats, Decision
from ledger.plan_model import BaselineRule, Manifest
from stages.campaign import budget_label

TITLE = "Protocol vs baselines"


@dataclass(frozen=True)
class BaselineStep:
    """One baseline step in force as the report read it: its plan, its decision (None:
    not decided), what the audit found of it, and each of its runs' training GPU-seconds
    as the audit observed them (DESIGN §8)."""

    plan: Manifest
    decision: Decision | None
    audit: StageAudit
    gpu_seconds: tuple[float, ...]


def _num(x: Any) -> float | None:
    return (
        float(x)
        if isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)
        else None
    )


def _stats(decision: Decision | None, cid: str) -> ConditionStats | None:
    """The condition's statistics at the step, when it has any ok run there."""
    stats = decision.statistics.of(cid) if decision is not None else None
    return stats if stats is not None and stats.n else None


def protocol_row(data: ReportData, label: str | None = None) -> dict[str, Any]:
    """The protocol's row: the final decided gate's first, from the report's verdict."""
    winner = data.verdict.winner
    final = next((s for s in data.stages if s.name == data.verdict.stage), None)
    costs = data.cost_report.costs
    return {
        "method": label or f"protocol ({data.campaign.name})",
        "kind": "protocol",
        "campaign": data.campaign.name,
        "best": winner.name if winner else None,
        "best_id": winner.condition if winner else None,
        "mean": winner.mean if winner else None,
        "ci_low": winner.ci_low if winner else None,
        "ci_high": winner.ci_high if winner else None,
        "n": winner.n if winner else None,
        "budget_s": final.budget_s if final else None,
        "gpu_hours": costs.training_gpu_hours,
        "n_runs": costs.n_runs,
        "stages": [s.name for s in data.stages],
    }


def _group_key(plan: Manifest) -> tuple[str, str, str]:
    """(search, budget label, seed) of the search a step belongs to. A step whose spec does
    not fit is grouped by what its plan says (the audit says what is wrong with it)."""
    try:
        spec = baseline_spec(plan)
    except ValidationError:
        spec = BaselineSpec()
    rule = plan.rule.baseline if isinstance(plan.rule, BaselineRule) else None
    kind = spec.kind or rule or "baseline"
    label = spec.budget or budget_label(plan.budget_s)
    extra = f"seed {spec.seed}" if kind == "random" else ""
    return kind, label, extra


def _groups(items: Sequence[BaselineStep]) -> dict[tuple[str, str, str], list[BaselineStep]]:
    groups: dict[tuple[str, str, str], list[BaselineStep]] = {}
    for item in items:
        groups.setdefault(_group_key(item.plan), []).append(item)
    return groups


def audited(
    items: Sequence[BaselineStep],
) -> tuple[list[BaselineStep], list[dict[str, Any]]]:
    """The baseline searches every step of which the audit found clean (re-derived from
    its seed and parent decision, `audit.baseline_checks`), and those left out, with why: a
    comparison shows only what the audit vouches for."""
    kept: list[BaselineStep] = []
    left: list[dict[str, Any]] = []
    for (kind, label, extra), steps in _groups(items).items():
        bad = [s.audit for s in steps if s.audit.verdict != "clean"]
        if not bad:
            kept += steps
            continue
        first = bad[0]
        why = next((f.message for f in first.problems), first.verdict)
        left.append(
            {
                "method": f"{kind} search ({label}{', ' + extra if extra else ''})",
                "stages": [s.plan.stage for s in steps],
                "why": f"{first.stage}: {why}",
            }
        )
    return kept, left


def baseline_rows(items: Sequence[BaselineStep]) -> list[dict[str, Any]]:
    """One row per baseline search: a greedy walk (its steps together) or a random sample,
    from the live baseline steps in freeze order."""
    rows = []
    for (kind, label, extra), steps in _groups(items).items():
        decided = [s.decision for s in steps if s.decision is not None]
        last = decided[-1] if decided else None
        best = last.promoted[0] if last is not None and last.promoted else None
        stats = next(
            (found for d in reversed(decided) if best and (found := _stats(d, best))), None
        )
        names = {cid: info.name for s in steps for cid, info in s.plan.conditions.items()}
        seconds = [x for s in steps for x in s.gpu_seconds]
        rows.append(
            {
                "method": f"{kind} search ({label}{', ' + extra if extra else ''})",
                "kind": kind,
                "campaign": steps[0].plan.campaign,
                "best": names.get(best) if best else None,
                "best_id": best,
                "mean": _num(stats.mean) if stats else None,
                "ci_low": _num(stats.ci_low) if stats else None,
                "ci_high": _num(stats.ci_high) if stats else None,
                "n": stats.n if stats else None,
                "budget_s": steps[0].plan.budget_s,
                "gpu_hours": math.fsum(seconds) / 3600.0,
                "n_runs": len(seconds),
                "stages": [s.plan.stage for s in steps],
                "complete": len(decided) == len(steps),
            }
        )
    return rows


def _same_budget(data: ReportData, row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The protocol's own means at the baseline's budget: of the baseline's best, and of the
    condition the protocol ranked first there (None when the protocol ran no such budget)."""
    for stage in data.stages:
        if stage.budget_s != row["budget_s"] or not stage.conditions:
            continue
        by_id = {c.condition: c for c in stage.conditions}
        first = min(stage.conditions, key=lambda c: (c.gate_rank or 1e9, c.rank or 1e9))
        mine = by_id.get(row["best_id"])
        return {
            "stage": stage.name,
            "baseline_best_mean": _num(mine.mean) if mine else None,
            "protocol_first": first.name,
            "protocol_first_mean": _num(first.mean),
        }
    return None


def comparison(
    data: ReportData,
    baseline_items: Sequence[BaselineStep],
    others: Sequence[tuple[str, ReportData]] = (),
) -> dict[str, Any]:
    """Rows: this campaign's protocol, its baselines, then each other campaign's protocol
    (`others`: (store, report) pairs). Each row adds `share` (its GPU-hours over this
    protocol's), `same_pick` (whether it found the protocol's best) and, for baselines,
    `same_budget` (see `_same_budget`). Baselines the audit does not find clean are left
    out and listed under `not_audited`, with why."""
    first = protocol_row(data)
    kept, left = audited(baseline_items)
    rows = [first] + baseline_rows(kept)
    for where, other in others:
        rows.append(protocol_row(other, f"protocol ({other.campaign.name}, {where})"))
    spent = first["gpu_hours"] or 0.0
    for row in rows:
        row["share"] = row["gpu_hours"] / spent if spent > 0 else None
        row["same_pick"] = (
            (row["best_id"] == first["best_id"]) if row["best_id"] and first["best_id"] else None
        )
        if row["kind"] not in ("protocol",):
            row["same_budget"] = _same_budget(data, row)
    return {
        "metric": data.campaign.metric,
        "rows": rows,
        "note": "Means measured at different budgets are not comparable: compare the "
        "conditions found, and the protocol's own mean at a baseline's budget.",
        "not_audited": left,
    }


def figure(comp: Mapping[str, Any]) -> bytes:
    """Best mean (95% interval) against training GPU-hours spent, one marker per row."""
    import matplotlib.style  # matplotlib: only a figure needs it

    from audit import plots  # matplotlib (through plots): only a figure needs it

    with matplotlib.style.context(["default", plots.STYLE]):
        fig = plots._figure(7.5, 3.8)
        ax = fig.add_subplot()
        hours = [r["gpu_hours"] for r in comp["rows"] if r["gpu_hours"]]
        for row in comp["rows"]:
            if row["mean"] is None:
                continue
            lo = row["ci_low"] if row["ci_low"] is not None else row["mean"]
            hi = row["ci_high"] if row["ci_high"] is not None else row["mean"]
            x = max(row["gpu_hours"], 1e-6)
            ax.errorbar(
                [x],
                [row["mean"]],
                yerr=[[row["mean"] - lo], [hi - row["mean"]]],
                fmt="o",
                capsize=3,
                color=plots.HIGHLIGHT if row["kind"] == "protocol" else None,
                label=plots._label(
                    f"{row['method']}: {row['best']} @ {budget_label(row['budget_s'] or 0)}", 60
                ),
            )
        first = comp["rows"][0]
        like = next(
            (
                r["same_budget"]
                for r in comp["rows"][1:]
                if r.get("same_budget") and r["same_budget"].get("protocol_first_mean") is not None
            ),
            None,
        )
        if like is not None and first["gpu_hours"]:
            # like for like: the protocol's own first at the baselines' budget
            ax.plot(
                [first["gpu_hours"]],
                [like["protocol_first_mean"]],
                "o",
                mfc="none",
                color=plots.HIGHLIGHT,
                label=plots._label(
                    f"protocol's first at that budget: {like['protocol_first']} ({like['stage']})",
                    60,
                ),
            )
        if hours and max(hours) / max(min(hours), 1e-9) > 50:
            ax.set_xscale("log")
        ax.set_xlabel("training GPU-hours spent")
        ax.set_ylabel(plots._label(f"best {comp['metric']} (95% interval)", 40))
        ax.set_title("Best condition found vs GPU-hours (means at different budgets differ)")
        ax.legend(fontsize=7, loc="best")
        return plots._png(fig)


def _fmt(x: Any, digits: int = 4) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _hours(x: Any) -> str:
    if x is None:
        return "—"
    return f"{x:.1f}" if x >= 10 else (f"{x:.2f}" if x >= 0.1 or x == 0 else f"{x:.3g}")


def table_rows(comp: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    """(headers, rows) of plain text, for HTML, Markdown and the terminal alike."""
    headers = [
        "method",
        "best found",
        "mean [95% CI]",
        "n",
        "at budget",
        "GPU-hours",
        "vs protocol",
        "same pick",
        "protocol at that budget",
    ]
    rows = []
    for r in comp["rows"]:
        ci = (
            f" [{_fmt(r['ci_low'])}, {_fmt(r['ci_high'])}]"
            if r["ci_low"] is not None and r["ci_high"] is not None
            else ""
        )
        same = r.get("same_budget")
        at = (
            "—"
            if not same
            else f"{same['stage']}: {same['protocol_first']} {_fmt(same['protocol_first_mean'])}"
            + (
                f"; this pick {_fmt(same['baseline_best_mean'])}"
                if same["baseline_best_mean"] is not None
                else "; this pick not run there"
            )
        )
        rows.append(
            [
                r["method"],
                str(r["best"] or "—"),
                _fmt(r["mean"]) + ci,
                str(r["n"] if r["n"] is not None else "—"),
                budget_label(r["budget_s"]) if r["budget_s"] else "—",
                _hours(r["gpu_hours"]),
                "—" if r["share"] is None else f"{100 * r['share']:.0f}%",
                {True: "yes", False: "no", None: "—"}[r["same_pick"]],
                at,
            ]
        )
    return headers, rows


__all__ = [
    "TITLE",
    "BaselineStep",
    "baseline_rows",
    "comparison",
    "figure",
    "protocol_row",
    "table_rows",
]
