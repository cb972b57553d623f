"""The report section "What this protocol buys": a saved `ledger evaluate --save` result.

Why a section of its own, fed by a file outside the evidence: an evaluation is a forecast
made on a simulator or replayed curves, not evidence of anything that ran, so it is neither
signed nor journaled; the section shows its inputs (campaign hash, seed, trials, cost model)
and its verdict so a reviewer can rerun it with `ledger evaluate --rerun FILE` and get the
same numbers. The section reads the typed result (`stages.evaluation_model.Evaluation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from audit.report_model import TableView
from ledger.errors import LedgerError
from stages.evaluation_model import (
    Estimate,
    Evaluation,
    evaluation_path,
    load_evaluation,
    significant,
)

TITLE = "What this protocol buys"


@dataclass(frozen=True)
class SavedEvaluation:
    """A campaign's latest saved evaluation, or why it could not be read (an older format)."""

    path: str
    result: Evaluation | None
    problem: str | None = None

    def to_dict(self) -> dict:
        return {
            "path": self.path,
            "problem": self.problem,
            "result": None if self.result is None else self.result.model_dump(mode="json"),
        }


def saved_evaluation(store_root: Path, campaign: str) -> SavedEvaluation | None:
    """The campaign's saved evaluation (None when there is none). One that cannot be read
    is shown as a note in the section rather than failing the whole report."""
    path = evaluation_path(store_root, campaign)
    if not path.is_file():
        return None
    try:
        return SavedEvaluation(str(path), load_evaluation(path))
    except LedgerError as exc:
        return SavedEvaluation(str(path), None, str(exc))


def _rows(ev: Evaluation) -> list:
    return [ev.protocol, *ev.baselines]


def figure(saved: SavedEvaluation) -> bytes:
    """P(pick best) and regret against GPU-hours, one marker per method (the intervals a
    verdict rests on as bars)."""
    import matplotlib.style  # matplotlib: only a figure needs it

    from audit import plots  # matplotlib (through plots): only a figure needs it

    ev = saved.result
    assert ev is not None
    with matplotlib.style.context(["default", plots.STYLE]):
        fig = plots._figure(9.5, 3.6)
        left, right = fig.subplots(1, 2)
        for row in _rows(ev):
            x = row.gpu_hours.value or 0.0
            for axis, est in ((left, row.p_pick_best), (right, row.regret)):
                y = est.value
                if y is None:
                    continue
                lo, hi = est.total or est.mc or (y, y)
                axis.errorbar(
                    [x],
                    [y],
                    yerr=[[max(y - lo, 0.0)], [max(hi - y, 0.0)]],
                    fmt="o",
                    capsize=3,
                    label=plots._label(row.method),
                )
        left.set_xlabel("GPU-hours (mean)")
        left.set_ylabel("P(final pick is the true best)")
        left.set_ylim(-0.03, 1.03)
        right.set_xlabel("GPU-hours (mean)")
        right.set_ylabel("regret (metric units)")
        left.legend(fontsize=8)
        fig.suptitle(f"{TITLE}: {ev.trials} trials, cost model {ev.cost_model}")
        return plots._png(fig)


def _est(est: Estimate | None, digits: int = 3) -> str:
    if est is None or est.value is None:
        return "—"
    ci = est.total or est.mc
    shown = f"{est.value:.{digits}f}"
    return shown if ci is None else f"{shown} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def _cells(row) -> list[str]:
    ratio = getattr(row, "spent_ratio_mean", None)
    return [
        row.method + (" (same walk every trial)" if row.deterministic else ""),
        _est(row.p_pick_best),
        _est(row.p_best_in_set),
        _est(row.p_top3),
        _est(row.regret, 4),
        significant(row.gpu_hours.value),
        "" if ratio is None else f"{100 * ratio:.0f}%",
    ]


HEADERS = [
    "method",
    "P(pick is best)",
    "P(best in final set)",
    "P(pick in top 3)",
    "regret",
    "GPU-hours",
    "of protocol",
]


def _inputs_line(ev: Evaluation) -> str:
    inputs = ev.inputs
    source = inputs.table or inputs.from_store or "the campaign's [sim] surface"
    ties = f" (ties: {', '.join(ev.truth.ties)})" if ev.truth.ties else ""
    return (
        f"{ev.trials} trials on {inputs.executor} ({source}), seed {ev.seed}, cost model "
        f"{ev.cost_model}, against {', '.join(inputs.against) or 'none'}; campaign SHA-256 "
        f"{inputs.campaign_sha256[:16]}; true best {ev.truth.best} "
        f"({ev.truth.value:.4f}){ties} of {ev.truth.pool} candidates. Intervals: "
        f"{ev.uncertainty.note}"
    )


def _notes(ev: Evaluation) -> list[str]:
    lines = [f"Verdict: {ev.verdict}"]
    lines += [f"Warning: {w}" for w in ev.warnings]
    lines += [
        f"{g.stage}: decision differs from the noise-free one in "
        f"{100 * g.decision_changed:.1f}% of trials"
        + (
            f"; effect screen FDR {_est(g.screen.fdr)}, power {_est(g.screen.power)}"
            + (f" ({g.screen.note})" if g.screen.note else "")
            if g.screen
            else ""
        )
        for g in ev.protocol.gates
    ]
    return lines


def section(saved: SavedEvaluation) -> TableView:
    """The report section: inputs, one row per method, the verdict, warnings and one line
    per gate, and the figure's file name; a saved result that cannot be read says why."""
    if saved.result is None:
        return TableView(
            title=TITLE, intro=str(saved.problem), headers=[], rows=[], figure="evaluation.png"
        )
    ev = saved.result
    return TableView(
        title=TITLE,
        intro=f"{_inputs_line(ev)}. A forecast, not evidence: rerun it with "
        f"`ledger evaluate --rerun {saved.path}`.",
        headers=HEADERS,
        rows=[_cells(r) for r in _rows(ev)],
        items=_notes(ev),
        figure="evaluation.png",
    )
