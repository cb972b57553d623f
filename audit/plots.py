"""Report figures as PNG bytes: effects by budget, condition means, costs, rank paths.

Why bytes and the object-oriented API (no pyplot): the report embeds figures as base64 and
must not depend on a display or on global figure state. Style, size and dpi are fixed and the
PNG carries no "Software" metadata, so identical data gives identical bytes on one
matplotlib/freetype install (reports can be diffed and hashed).

Inputs are slices of the report data dict (docs/reports.md): stage dicts, `costs`,
`counterfactuals`.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

import matplotlib
import matplotlib.style
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

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


def _finite(x: Any) -> TypeGuard[float]:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    return buf.getvalue()


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _empty(message: str, title: str) -> bytes:
    with matplotlib.style.context(["default", STYLE]):
        fig = _figure(6, 2)
        ax = fig.add_subplot()
        ax.set_axis_off()
        ax.set_title(_label(title, 80))
        ax.text(0.5, 0.5, _label(message, 80), ha="center", va="center", transform=ax.transAxes)
        return _png(fig)


def effect_interval(
    effects: Mapping[str, Any], effect: Mapping[str, Any]
) -> tuple[float, float] | None:
    """The effect's 95% interval: the decision's own `ci_low`/`ci_high` (t with the residual
    df for OLS, ± Lenth's ME), else t(0.975, df) x se from the record; None without a df."""
    lo, hi = effect.get("ci_low"), effect.get("ci_high")
    if _finite(lo) and _finite(hi):
        return float(lo), float(hi)
    half = effect_half_width(effects, effect)
    mid = effect.get("effect")
    if half is None or not _finite(mid):
        return None
    return float(mid) - half, float(mid) + half


def effect_half_width(effects: Mapping[str, Any], effect: Mapping[str, Any]) -> float | None:
    """Half-width of the 95% interval: Lenth's ME, or t(0.975, df) x se with df the record's
    `t_df` (else `df_resid`); None when no df is known (never a normal 1.96)."""
    lo, hi = effect.get("ci_low"), effect.get("ci_high")
    if _finite(lo) and _finite(hi):
        return (float(hi) - float(lo)) / 2
    if effects.get("method") == "lenth":
        me = effects.get("me")
        return float(me) if _finite(me) else None

    df = effects.get("t_df") if _finite(effects.get("t_df")) else effects.get("df_resid")
    t_crit = t_quantile(float(df)) if _finite(df) else None
    se = effect.get("se")
    return t_crit * float(se) if t_crit is not None and _finite(se) else None


def effects_plot(stages: Sequence[Mapping[str, Any]], *, main_only: bool = True) -> bytes:
    """Grouped bars: each term's effect at each budget with its 95% t interval; significant
    terms solid and outlined, post-selection (descriptive) estimates hatched.

    `stages`: `[{"name", "budget_s", "effects": null | {"method", "effects": [{"term",
    "effect", "se", "ci_low", "ci_high"}], "me", "t_df", "df_resid", "post_selection"},
    "significant": [terms]}]`. `main_only`: main effects only (campaign factors are single
    letters), as the across-budget figure shows them; a gate's own figure shows every term.
    """
    with_effects = [s for s in stages if s.get("effects") and s["effects"].get("effects")]
    if not with_effects:
        return _empty("no effects estimated at any budget", "Effects by budget")
    terms: list[str] = []
    for s in with_effects:
        for e in s["effects"]["effects"]:
            if e["term"] not in terms and (not main_only or _is_main(e["term"])):
                terms.append(e["term"])
    n = len(with_effects)
    width = 0.8 / n
    with matplotlib.style.context(["default", STYLE]):
        fig = _figure(max(5.0, 0.9 * len(terms) + 2.5), 3.6)
        ax = fig.add_subplot()
        colors = matplotlib.colormaps["tab10"]
        for j, s in enumerate(with_effects):
            stage_effects = s["effects"]
            sig = set(s.get("significant") or [])
            color = colors(j % 10)
            post = " post-selection" if stage_effects.get("post_selection") else ""
            label = f"{s['name']} ({budget_label(s.get('budget_s'))}, {stage_effects.get('method', '?')}{post})"
            for e in stage_effects["effects"]:
                if e["term"] not in terms or not _finite(e.get("effect")):
                    continue
                x = terms.index(e["term"]) - 0.4 + width * (j + 0.5)
                interval = effect_interval(stage_effects, e)
                is_sig = e["term"] in sig
                ax.bar(
                    x,
                    e["effect"],
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
                        e["effect"],
                        yerr=[[e["effect"] - lo], [hi - e["effect"]]],
                        fmt="none",
                        ecolor="black",
                        elinewidth=0.8,
                        capsize=2,
                    )
        ax.axhline(0.0, color="black", linewidth=0.6)
        ax.set_xticks(range(len(terms)), [_label(t, 12) for t in terms])
        ax.set_ylabel("effect (mean(+) − mean(−))")
        what = "Main effects" if main_only else "Effects"
        ax.set_title(
            f"{what} by budget, 95% t intervals (solid = significant, hatched = post-selection)"
        )
        ax.legend(fontsize=7, loc="best")
        return _png(fig)


def _is_main(term: str) -> bool:
    """Campaign factors are the letters A..H, so a main effect's term is one letter."""
    return len(term) == 1


def means_plot(stage: Mapping[str, Any], metric: str = "val_bpb") -> bytes:
    """Condition means with 95% intervals at one stage, best rank on top, promoted in red.

    `stage`: `{"name", "conditions": [{"name", "mean", "ci_low", "ci_high", "rank",
    "promoted"}]}`; conditions without a finite mean (every run failed) are listed, not drawn.
    """
    conds = list(stage.get("conditions") or [])
    title = f"{stage.get('name', '?')}: condition means with 95% intervals"
    if not conds:
        return _empty("no decision yet", title)
    conds.sort(
        key=lambda c: (c.get("rank") if _finite(c.get("rank")) else math.inf, str(c.get("name")))
    )
    with matplotlib.style.context(["default", STYLE]):
        fig = _figure(6.5, max(2.0, 0.28 * len(conds) + 1.2))
        ax = fig.add_subplot()
        ys = list(range(len(conds)))[::-1]
        for y, c in zip(ys, conds, strict=True):
            color = HIGHLIGHT if c.get("promoted") else MUTED
            mean = c.get("mean")
            if not _finite(mean):
                continue
            lo, hi = c.get("ci_low"), c.get("ci_high")
            if _finite(lo) and _finite(hi):
                ax.errorbar(
                    mean,
                    y,
                    xerr=[[mean - lo], [hi - mean]],
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
            rank = c.get("rank")
            mark = " *" if c.get("promoted") else ""
            missing = "" if _finite(c.get("mean")) else " (no ok runs)"
            labels.append(
                _label(f"{rank if rank is not None else '-'}. {c.get('name')}{mark}{missing}", 34)
            )
        ax.set_yticks(ys, labels)
        ax.set_xlabel(_label(f"{metric} (lower is better); * promoted", 60))
        ax.set_title(_label(title, 80))
        return _png(fig)


def costs_plot(costs: Mapping[str, Any], counterfactuals: Sequence[Mapping[str, Any]]) -> bytes:
    """Left: executed training GPU-hours by stage. Right: planned vs continue-all per gate."""
    by_stage = costs.get("by_stage") or {}
    with matplotlib.style.context(["default", STYLE]):
        fig = _figure(9.5, 3.6)
        left, right = fig.subplots(1, 2)
        names = list(by_stage)
        left.bar(
            range(len(names)),
            [by_stage[n]["training_gpu_hours"] for n in names],
            color=SIG_COLOR,
            label="training",
        )
        left.bar(
            range(len(names)),
            [by_stage[n]["wall_gpu_hours"] for n in names],
            fill=False,
            edgecolor="black",
            linewidth=0.8,
            label="wall",
        )
        left.set_xticks(range(len(names)), [_label(n, 14) for n in names], rotation=30, ha="right")
        left.set_ylabel("GPU-hours")
        left.set_title("Executed GPU-hours by stage")
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
            series = [
                ("next_planned", "next stage, planned", "#95a5a6", None),
                ("next_if_all", "next stage, all continued", "#95a5a6", "//"),
                ("final_planned", "final stage, planned", HIGHLIGHT, None),
                ("final_if_all", "final stage, all continued", HIGHLIGHT, "//"),
            ]
            width = 0.8 / len(series)
            for j, (key, label, color, hatch) in enumerate(series):
                xs = [i - 0.4 + width * (j + 0.5) for i in range(len(counterfactuals))]
                right.bar(
                    xs,
                    [float(counterfactual[key]) for counterfactual in counterfactuals],
                    width * 0.9,
                    color=color if hatch is None else "white",
                    edgecolor=color,
                    hatch=hatch,
                    label=label,
                )
            right.set_xticks(
                range(len(counterfactuals)),
                [_label(counterfactual["gate"], 14) for counterfactual in counterfactuals],
                rotation=30,
                ha="right",
            )
            right.set_ylabel("GPU-hours (nominal)")
            right.set_title("Counterfactual at each gate")
            right.legend(fontsize=7)
        return _png(fig)


def ranks_plot(stages: Sequence[Mapping[str, Any]]) -> bytes:
    """Rank of each condition across decided stages (lines), promoted points filled."""
    decided = [s for s in stages if s.get("conditions")]
    if len(decided) < 2:
        return _empty("fewer than two decided stages", "Ranks across stages")
    with matplotlib.style.context(["default", STYLE]):
        fig = _figure(max(4.0, 1.6 * len(decided) + 2.5), 3.6)
        ax = fig.add_subplot()
        paths: dict[str, list[tuple[int, float, bool]]] = {}
        names: dict[str, str] = {}
        for x, s in enumerate(decided):
            for c in s["conditions"]:
                if _finite(c.get("rank")):
                    key = str(c.get("condition") or c.get("name"))
                    names[key] = str(c.get("name"))
                    paths.setdefault(key, []).append((x, float(c["rank"]), bool(c.get("promoted"))))
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
        ax.set_xticks(range(len(decided)), [_label(s["name"], 14) for s in decided])
        ax.set_ylabel("rank (1 = best)")
        ax.set_title("Ranks across stages (red = promoted)")
        return _png(fig)
