"""Report figures as PNG bytes: effects by budget, condition means, costs, rank paths.

Why bytes and the object-oriented API (no pyplot): the report embeds figures as base64 and
must not depend on a display or on global figure state. Style, size and dpi are fixed and the
PNG carries no "Software" metadata, so identical data gives identical bytes on one
matplotlib/freetype install (reports can be diffed and hashed).

Inputs are parts of the report model (`audit.report_model`): stages, the protocol's cost
breakdown, the counterfactuals. Titles wrap to the figure's width instead of running off it.
"""

from __future__ import annotations

import io
import math
import textwrap
from collections.abc import Sequence
from typing import Any

import matplotlib
import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from audit.report_model import (
    CostBreakdown,
    Counterfactual,
    EffectRow,
    Effects,
    StageView,
)
from stages.campaign import budget_label
from stages.stats import t_quantile

DPI = 100
STYLE = {
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "svg.hashsalt": "gateledger",
    "path.simplify": False,
}
HIGHLIGHT = "#c0392b"
MUTED = "#7f8c8d"
SIG_COLOR = "#1f6f8b"


def _label(text: Any, width: int = 28) -> str:
    """Plain text for matplotlib: `$` would start mathtext; long names are shortened."""
    s = str(text)
    if len(s) > width:
        s = s[: width - 1] + "…"
    return s.replace("\\", "\\\\").replace("$", r"\$")


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _title(ax: Any, text: str, width_in: float) -> None:
    """A title wrapped to the axes' width (about 13 characters per inch at 10 pt), so a
    long one is never cut off at the figure's edge."""
    ax.set_title(textwrap.fill(_label(text, 200), max(24, int(width_in * 13))))


def _empty(message: str, title: str) -> bytes:
    with matplotlib.style.context(["default", STYLE]):
        fig = _figure(6, 2)
        ax = fig.add_subplot()
        ax.set_axis_off()
        _title(ax, title, 6)
        ax.text(0.5, 0.5, _label(message, 80), ha="center", va="center", transform=ax.transAxes)
        return _png(fig)


def effect_interval(effects: Effects, effect: EffectRow) -> tuple[float, float] | None:
    """The effect's 95% interval: the decision's own `ci_low`/`ci_high` (t with the residual
    df for OLS, ± Lenth's ME), else t(0.975, df) x se from the record; None without a df."""
    if _finite(effect.ci_low) and _finite(effect.ci_high):
        return float(effect.ci_low), float(effect.ci_high)  # type: ignore[arg-type]
    half = effect_half_width(effects, effect)
    if half is None:
        return None
    return effect.effect - half, effect.effect + half


def effect_half_width(effects: Effects, effect: EffectRow) -> float | None:
    """Half-width of the 95% interval: Lenth's ME, or t(0.975, df) x se with df the record's
    `t_df` (else `df_resid`); None when no df is known (never a normal 1.96)."""
    if effect.ci_low is not None and effect.ci_high is not None:
        return (effect.ci_high - effect.ci_low) / 2
    if effects.method == "lenth":
        return effects.me
    df = effects.t_df if effects.t_df is not None else effects.df_resid
    t_crit = t_quantile(float(df)) if df is not None and df > 0 else None
    return t_crit * effect.se if t_crit is not None and effect.se is not None else None


def effect_terms(stages: Sequence[StageView], *, main_only: bool = True) -> list[str]:
    """Terms in design order (A, B, ..., then AB, AC, ...), not alphabetical or by size."""
    terms = {
        e.term
        for s in stages
        if s.effects
        for e in s.effects.effects
        if not main_only or _is_main(e.term)
    }
    return sorted(terms, key=lambda t: (len(t), t))


def effects_plot(stages: Sequence[StageView], *, main_only: bool = True) -> bytes:
    """Grouped bars: each term's effect at each budget with its 95% t interval; significant
    terms solid and outlined, post-selection (descriptive) estimates hatched. Terms in
    design order, budgets in protocol order. `main_only`: main effects only (campaign
    factors are single letters), as the across-budget figure shows them; a gate's own
    figure shows every term."""
    with_effects = [s for s in stages if s.effects and s.effects.effects]
    where = (
        "by budget"
        if main_only or len(stages) != 1
        else f"at {stages[0].name} ({budget_label(stages[0].budget_s)})"
    )
    what = "Main effects" if main_only else "Effects"
    title = f"{what} {where}, 95% t intervals (solid = significant, hatched = post-selection)"
    if not with_effects:
        return _empty("no effects estimated at any budget", title)
    terms = effect_terms(with_effects, main_only=main_only)
    n = len(with_effects)
    width = 0.8 / n
    fig_w = max(6.0, 0.9 * len(terms) + 2.5)
    with matplotlib.style.context(["default", STYLE]):
        fig = _figure(fig_w, 3.8)
        ax = fig.add_subplot()
        colors = matplotlib.colormaps["tab10"]
        for j, s in enumerate(with_effects):
            stage_effects = s.effects
            assert stage_effects is not None  # filtered above
            sig = set(s.significant)
            color = colors(j % 10)
            post = " post-selection" if stage_effects.post_selection else ""
            label = f"{s.name} ({budget_label(s.budget_s)}, {stage_effects.method}{post})"
            for e in stage_effects.effects:
                if e.term not in terms:
                    continue
                x = terms.index(e.term) - 0.4 + width * (j + 0.5)
                interval = effect_interval(stage_effects, e)
                is_sig = e.term in sig
                ax.bar(
                    x,
                    e.effect,
                    width * 0.9,
                    color=color,
                    alpha=1.0 if is_sig else 0.35,
                    edgecolor="black" if is_sig else color,
                    linewidth=1.2 if is_sig else 0.5,
                    hatch="//" if post else None,
                    label=_label(label, 60),
                )
                label = "_nolegend_"
                if interval is not None:
                    lo, hi = interval
                    ax.errorbar(
                        x,
                        e.effect,
                        yerr=[[e.effect - lo], [hi - e.effect]],
                        fmt="none",
                        ecolor="black",
                        elinewidth=0.8,
                        capsize=2,
                    )
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.set_xticks(range(len(terms)), [_label(t, 12) for t in terms])
        ax.set_ylabel("effect (mean(+) − mean(−); + = worse)")
        _title(ax, title, fig_w)
        ax.legend(fontsize=7, loc="best")
        return _png(fig)


def _is_main(term: str) -> bool:
    """Campaign factors are the letters A..H, so a main effect's term is one letter."""
    return len(term) == 1


def means_plot(stage: StageView, metric: str = "val_bpb") -> bytes:
    """Condition means with 95% intervals at one stage, best rank on top, promoted in red.
    Conditions without a finite mean (every run failed) are listed, not drawn."""
    conds = list(stage.conditions)
    title = f"{stage.name}: condition means with 95% intervals"
    if not conds:
        return _empty("no decision yet", title)
    conds.sort(key=lambda c: (c.rank if c.rank is not None else math.inf, c.name))
    with matplotlib.style.context(["default", STYLE]):
        fig = _figure(6.5, max(2.0, 0.28 * len(conds) + 1.2))
        ax = fig.add_subplot()
        ys = list(range(len(conds)))[::-1]
        for y, c in zip(ys, conds, strict=True):
            color = HIGHLIGHT if c.promoted else MUTED
            mean = c.mean
            if mean is None:
                continue
            if c.ci_low is not None and c.ci_high is not None:
                ax.errorbar(
                    mean,
                    y,
                    xerr=[[mean - c.ci_low], [c.ci_high - mean]],
                    fmt="o",
                    color=color,
                    ecolor=color,
                    capsize=2,
                    markersize=4,
                )
            else:
                ax.plot(mean, y, "o", color=color, markersize=4)
        labels = []
        for c in conds:
            mark = " *" if c.promoted else ""
            missing = "" if c.mean is not None else " (no ok runs)"
            rank = c.rank if c.rank is not None else "-"
            labels.append(_label(f"{rank}. {c.name}{mark}{missing}", 34))
        ax.set_yticks(ys, labels)
        ax.set_xlabel(_label(f"{metric} (lower is better); * promoted", 60))
        _title(ax, title, 6.5)
        return _png(fig)


def costs_plot(costs: CostBreakdown, counterfactuals: Sequence[Counterfactual]) -> bytes:
    """Left: executed training GPU-hours by stage (protocol order). Right: at each gate,
    the protocol's campaign total beside the total had every candidate been continued."""
    by_stage = costs.by_stage
    with matplotlib.style.context(["default", STYLE]):
        fig = _figure(10, 3.8)
        left, right = fig.subplots(1, 2)
        names = list(by_stage)
        left.bar(
            range(len(names)),
            [by_stage[n].training_gpu_hours for n in names],
            color=SIG_COLOR,
            label="training",
        )
        left.bar(
            range(len(names)),
            [by_stage[n].wall_gpu_hours for n in names],
            fill=False,
            edgecolor="black",
            linewidth=0.8,
            label="wall",
        )
        left.set_xticks(range(len(names)), [_label(n, 14) for n in names], rotation=30, ha="right")
        left.set_ylabel("GPU-hours")
        _title(left, "Executed GPU-hours by stage", 5)
        left.legend(fontsize=7)
        if not counterfactuals:
            right.set_axis_off()
            right.text(
                0.5,
                0.5,
                "no gate with a next stage",
                ha="center",
                va="center",
                transform=right.transAxes,
            )
        else:
            xs = range(len(counterfactuals))
            protocol = costs.training_gpu_hours
            right.bar(
                [x - 0.2 for x in xs],
                [protocol for _ in counterfactuals],
                0.38,
                color=SIG_COLOR,
                label="the protocol (spent)",
            )
            right.bar(
                [x + 0.2 for x in xs],
                [cf.campaign_if_all for cf in counterfactuals],
                0.38,
                color="white",
                edgecolor=HIGHLIGHT,
                hatch="//",
                label="every candidate of the gate continued",
            )
            right.set_xticks(
                list(xs),
                [_label(f"from {cf.gate}", 18) for cf in counterfactuals],
                rotation=30,
                ha="right",
            )
            right.set_ylabel("campaign training GPU-hours")
            _title(right, "The campaign's cost, spent vs. continuing every candidate", 5)
            right.legend(fontsize=7)
        return _png(fig)


def ranks_plot(stages: Sequence[StageView]) -> bytes:
    """Rank of each condition across decided stages (lines), promoted points filled."""
    decided = [s for s in stages if s.conditions]
    if len(decided) < 2:
        return _empty("fewer than two decided stages", "Ranks across stages")
    fig_w = max(4.0, 1.6 * len(decided) + 2.5)
    with matplotlib.style.context(["default", STYLE]):
        fig = _figure(fig_w, 3.6)
        ax = fig.add_subplot()
        paths: dict[str, list[tuple[int, float, bool]]] = {}
        names: dict[str, str] = {}
        for x, s in enumerate(decided):
            for c in s.conditions:
                if c.rank is not None:
                    names[c.condition] = c.name
                    paths.setdefault(c.condition, []).append((x, float(c.rank), c.promoted))
        for key in sorted(paths):
            pts = paths[key]
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color=MUTED, linewidth=0.8)
            for x, r, promoted in pts:
                ax.plot(x, r, "o", markersize=4, color=HIGHLIGHT if promoted else MUTED)
            x, r, _ = pts[-1]
            ax.annotate(
                _label(names[key], 14),
                (x, r),
                xytext=(4, 0),
                textcoords="offset points",
                fontsize=6,
                va="center",
            )
        ax.invert_yaxis()
        ax.set_xticks(range(len(decided)), [_label(s.name, 14) for s in decided])
        ax.set_ylabel("rank (1 = best)")
        _title(ax, "Ranks across stages (red = promoted)", fig_w)
        return _png(fig)
