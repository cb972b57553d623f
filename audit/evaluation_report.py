"""The report section "What this protocol buys": a saved `ledger evaluate --save` result.

Why a section of its own, fed by a file outside the evidence: an evaluation is a forecast
made on a simulator or replayed curves, not evidence of anything that ran, so it is neither
signed nor journaled; the section shows its inputs (campaign hash, seed, trials, versions)
so a reviewer can rerun it with `ledger evaluate --rerun FILE` and get the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from audit.report_model import TableView
from stages.evaluate import evaluation_path, load_evaluation

TITLE = "What this protocol buys"


def saved_evaluation(store_root: Path, campaign: str) -> dict[str, Any] | None:
    """The campaign's latest saved evaluation with the path it came from, or None."""
    path = evaluation_path(store_root, campaign)
    if not path.is_file():
        return None
    data = load_evaluation(path)
    return {**data, "path": str(path)}


def rows(ev: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per method: the protocol first, then the baselines."""
    out = []
    for row in [ev["protocol"], *ev["baselines"]]:
        out.append(
            {
                "method": row["method"],
                "p_best": row["p_best"],
                "p_best_ci": row.get("p_best_ci"),
                "p_top3": row.get("p_top3"),
                "regret_mean": row.get("regret_mean"),
                "regret_ci": row.get("regret_ci"),
                "gpu_hours_mean": row.get("gpu_hours_mean"),
                "spent_ratio_mean": row.get("spent_ratio_mean"),
            }
        )
    return out


def figure(ev: Mapping[str, Any]) -> bytes:
    """P(best) and regret against GPU-hours, one marker per method (95% intervals as bars)."""
    import matplotlib.style  # matplotlib: only a figure needs it

    from audit import plots  # matplotlib (through plots): only a figure needs it

    with matplotlib.style.context(["default", plots.STYLE]):
        fig = plots._figure(9.5, 3.6)
        left, right = fig.subplots(1, 2)
        for row in rows(ev):
            x = row["gpu_hours_mean"] or 0.0
            for axis, key, ci in (
                (left, "p_best", "p_best_ci"),
                (right, "regret_mean", "regret_ci"),
            ):
                y = row[key]
                if y is None:
                    continue
                lo, hi = row[ci] or (y, y)
                axis.errorbar(
                    [x],
                    [y],
                    yerr=[[max(y - lo, 0.0)], [max(hi - y, 0.0)]],
                    fmt="o",
                    capsize=3,
                    label=plots._label(row["method"]),
                )
        left.set_xlabel("GPU-hours (mean)")
        left.set_ylabel("P(true best in final set)")
        left.set_ylim(-0.03, 1.03)
        right.set_xlabel("GPU-hours (mean)")
        right.set_ylabel("regret (metric units)")
        left.legend(fontsize=8)
        fig.suptitle(f"{TITLE}: {ev['trials']} trials")
        return plots._png(fig)


def _num(x: Any, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _ci(ci: Any, digits: int = 3) -> str:
    return "" if not ci else f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def _cells(row: Mapping[str, Any]) -> list[str]:
    spent = "" if row["spent_ratio_mean"] is None else f"{100 * row['spent_ratio_mean']:.0f}%"
    return [
        str(row["method"]),
        _num(row["p_best"]) + _ci(row["p_best_ci"]),
        _num(row["p_top3"]),
        _num(row["regret_mean"], 4) + _ci(row["regret_ci"], 4),
        _num(row["gpu_hours_mean"], 2),
        spent,
    ]


HEADERS = [
    "method",
    "P(best) [95% CI]",
    "P(pick in top 3)",
    "regret [95% CI]",
    "GPU-hours",
    "of protocol",
]


def _inputs_line(ev: Mapping[str, Any]) -> str:
    inputs = ev["inputs"]
    source = inputs.get("table") or inputs.get("from_store") or "the campaign's [sim] surface"
    return (
        f"{ev['trials']} trials on {inputs.get('executor')} ({source}), seed {ev['seed']}, "
        f"against {', '.join(inputs.get('against') or []) or 'none'}; campaign SHA-256 "
        f"{str(inputs.get('campaign_sha256'))[:16]}; true best {ev['truth']['best']} "
        f"({_num(ev['truth']['value'], 4)}) of {ev['truth']['pool']} candidates"
    )


def section(ev: Mapping[str, Any]) -> TableView:
    """The report section: inputs, one row per method, one line per gate (what changes
    decisions), and the figure's file name."""
    gates = [
        f"{g['stage']}: decision differs from the noise-free one in "
        f"{100 * g['decision_changed']:.1f}% of trials"
        + (
            f"; effect screen FDR {_num(g['screen']['fdr'])}, power {_num(g['screen']['power'])}"
            if g.get("screen")
            else ""
        )
        for g in ev["protocol"]["gates"]
    ]
    return TableView(
        title=TITLE,
        intro=f"{_inputs_line(ev)}. A forecast, not evidence: rerun it with "
        f"`ledger evaluate --rerun {ev.get('path', 'FILE')}`.",
        headers=HEADERS,
        rows=[_cells(r) for r in rows(ev)],
        items=gates,
        figure="evaluation.png",
    )
