"""Render the report model as one self-contained HTML page and as Markdown, through two
Jinja2 templates (`audit/templates/report.html.j2`, `report.md.j2`).

Why templates over one model: the HTML and the Markdown show the same sections from the same
typed data, so a section added or fixed in one is visibly missing from the other; the model
was validated where it was built, so nothing here re-checks its shape.

Why self-contained: a reviewer must read the evidence without the tool, a network or a CDN,
so figures are embedded as base64 PNG and the style sheet is inline. Every value from the
ledger is escaped: condition names and rule values come from campaign files and are
untrusted. The HTML environment autoescapes; the Markdown one escapes every printed value
(HTML entities, then Markdown's `\\ ` * _ [ ] |`) unless the template marks it `raw`.
"""

from __future__ import annotations

import base64
import html
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2

from audit import compare, evaluation_report, plots
from audit.report_data import Report
from audit.report_model import (
    AuditView,
    ConditionView,
    CostBreakdown,
    EffectRow,
    Effects,
    ReportData,
    StageView,
)
from audit.summary import provenance_rows
from ledger.fsutil import atomic_write
from stages.campaign import budget_label

# --------------------------------------------------------------------------- formatting


def _finite(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool) and math.isfinite(x)


def fmt(x: Any, digits: int = 4) -> str:
    """A number with fixed decimals; '—' when absent (failed runs, no interval)."""
    if not _finite(x):
        return "—" if x is None else str(x)
    return f"{x:.{digits}f}"


def fmt_p(x: Any) -> str:
    """p and q values: 4 decimals, scientific below 1e-4 so tiny values do not read as 0."""
    if not _finite(x):
        return "—"
    return f"{x:.4f}" if x >= 1e-4 or x == 0 else f"{x:.1e}"


_UNITS = {"s": "s", "m": "min", "h": "h"}


def fmt_budget(seconds: Any) -> str:
    """``budget_label`` spelled for readers: ``2 min``, ``12 h``, ``90 s``."""
    if not _finite(seconds):
        return str(seconds)
    label = budget_label(seconds)
    return f"{label[:-1]} {_UNITS[label[-1]]}"


def hours(x: Any) -> str:
    """GPU-hours at a precision that suits their size (CPU demos spend thousandths)."""
    if not _finite(x):
        return "—"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}" if abs(x) >= 0.1 or x == 0 else f"{x:.3g}"


def short(oid: Any) -> str:
    return "—" if oid is None else str(oid)[:12]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:40] or "stage"


def mean_ci(c: ConditionView) -> str:
    if c.ci_low is not None and c.ci_high is not None:
        return f"{fmt(c.mean)} [{fmt(c.ci_low)}, {fmt(c.ci_high)}]"
    return fmt(c.mean)


def n_text(c: ConditionView) -> str:
    return f"{c.n} / {c.n_runs}" if c.n_runs else str(c.n)


def gate_text(c: ConditionView) -> str:
    """Where the gate's rule put the condition: its rank there, or why it was not ranked."""
    if c.excluded:
        return f"excluded: {c.excluded}"
    return f"rank {c.gate_rank}" if c.gate_rank else "—"


def level(c: ConditionView, letter: str) -> str:
    value = c.levels.get(letter)
    return "—" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def promoted_text(c: ConditionView) -> str:
    """Promoted on its merits, or carried as an always-kept anchor (the rule's `keep`)."""
    if not c.promoted:
        return ""
    return "kept (anchor)" if c.promoted_by == "keep" else "promoted"


def row_class(c: ConditionView) -> str:
    if not c.promoted:
        return ""
    return "kept" if c.promoted_by == "keep" else "promoted"


def statuses(stage: StageView) -> str:
    return ", ".join(f"{k}: {v}" for k, v in sorted(stage.statuses.items())) or "no runs"


def cells(stage: StageView) -> str:
    return "; ".join(f"seed {c.seed} @ {c.host}" for c in stage.cells) or "—"


def sorted_conditions(stage: StageView) -> list[ConditionView]:
    return sorted(
        stage.conditions, key=lambda c: (c.rank if c.rank is not None else math.inf, c.name)
    )


def level_letters(conds: Sequence[ConditionView]) -> list[str]:
    """Factor letters to show as columns (design points decoded into their levels)."""
    return sorted({x for c in conds for x in c.levels})


def interval_text(effects: Effects, e: EffectRow) -> str:
    interval = plots.effect_interval(effects, e)
    return "—" if interval is None else f"[{fmt(interval[0])}, {fmt(interval[1])}]"


POST_SELECTION_WHY = (
    "Post-selection, descriptive only: these conditions are the ones the previous gate "
    "promoted, not an orthogonal design. Factors are partly confounded with one another and "
    "the set was chosen for looking good, so the estimates describe this set and nothing "
    "wider; they carry no BH q-values and no rule uses them."
)


def effects_title(stage: StageView) -> str:
    assert stage.effects is not None
    post = ", post-selection" if stage.effects.post_selection else ""
    return f"Effects ({stage.effects.method}{post})"


def effects_paragraphs(stage: StageView) -> list[str]:
    """What the effects table rests on: Lenth's figures or the residual df, the t reference,
    the block, post-selection, terms not estimated and the notes."""
    eff = stage.effects
    assert eff is not None
    extra = ", ".join(
        f"{name} = {fmt(value)}"
        for name, value in (("pse", eff.pse), ("me", eff.me), ("sme", eff.sme))
        if value is not None
    )
    if eff.df_resid is not None:
        extra = ", ".join(filter(None, [extra, f"residual df = {fmt(eff.df_resid, 0)}"]))
    if eff.t_df is not None:
        extra += f"; intervals and p use t with {eff.t_df:.3g} df"
    if eff.block:
        extra += f"; block: {eff.block}"
    out = [extra] + ([POST_SELECTION_WHY] if eff.post_selection else [])
    if eff.dropped:
        out.append(
            "Not estimated separately: "
            + "; ".join(
                f"{t} ({eff.dropped_reasons[t]})" if t in eff.dropped_reasons else t
                for t in eff.dropped
            )
        )
    out += [n for n in eff.notes if not (eff.post_selection and n.startswith("post-"))]
    return [p for p in out if p]


EFFECT_HEADERS = ["term", "aliases", "effect", "se", "95% interval", "p", "q (BH)", "significant"]


def effect_rows(stage: StageView) -> list[list[str]]:
    eff = stage.effects
    assert eff is not None
    sig = set(stage.significant)
    return [
        [
            e.term,
            " = ".join(e.aliases) or "—",
            fmt(e.effect),
            fmt(e.se),
            interval_text(eff, e),
            fmt_p(e.p),
            fmt_p(e.q),
            "yes" if e.term in sig else "",
        ]
        for e in eff.effects
    ]


def analysis_line(stage: StageView) -> str:
    plan = stage.analysis
    what = plan.design or plan.structure or "no design"
    line = (
        f"Frozen analysis plan: {plan.points} design point(s) ({what}); method "
        f"{plan.method or '—'}; terms {', '.join(plan.terms) or 'none'}; block "
        f"{plan.block or 'none'}"
    )
    return line + ("; post-selection" if plan.post_selection else "")


FAILURE_HEADERS = ["factor", "config key", "failed at -1", "failed at +1", "Fisher p", "unequal"]


def failure_rows(stage: StageView) -> list[list[str]]:
    """Failure rate per factor level of the design points, when any of them failed."""
    table = stage.failure_rates
    if table is None or not table.n_failed:
        return []
    return [
        [
            letter,
            row.key or "",
            f"{row.low.failed} / {row.low.runs}",
            f"{row.high.failed} / {row.high.runs}",
            fmt_p(row.p),
            "FLAG" if row.unequal else "",
        ]
        for letter, row in table.factors.items()
    ]


FLAG_WHY = {
    "winner_overlaps_runner_up": "winner's 95% interval overlaps the runner-up's",
    "host_reverses_order": "a host reverses the gate's order",
    "failures_by_level": "a factor's levels fail unequally",
    "negative_rank_correlation": "ranks reverse between consecutive gates",
    "weak_rank_correlation": "ranks barely agree between consecutive gates",
}
VARIANCE_COMPONENTS = ("budget", "condition", "host", "seed", "residual")
VARIANCE_WHY = (
    "Sequential (type I) sums of squares of the ok runs, in the order budget, "
    "condition, host, seed; residual is the rest (seed-to-seed noise and "
    "interactions). A component with one level has share 0."
)


def variance_rows(data: ReportData) -> list[list[str]]:
    """Share of the total sum of squares per component: the campaign, then each stage."""
    var = data.variance
    if var is None:
        return []
    items = [("all gates", var.campaign), *var.by_stage.items()]
    rows = []
    for name, vd in items:
        if vd is None:
            continue
        rows.append(
            [name, str(vd.n)]
            + [
                "—" if share is None else fmt(share, 3)
                for share in (vd.shares.get(c) for c in VARIANCE_COMPONENTS)
            ]
        )
    return rows


def cost_rows(part: CostBreakdown, key: str) -> list[list[str]]:
    """A breakdown's rows as text: label, runs, training and wall GPU-hours."""
    rows = []
    if key == "by_condition":
        for cid, cond in part.by_condition.items():
            rows.append(
                [
                    f"{cond.name} ({cid[:8]})",
                    str(cond.n_runs),
                    hours(cond.training_gpu_hours),
                    hours(cond.wall_gpu_hours),
                ]
            )
        return rows
    for label, p in getattr(part, key).items():
        rows.append([label, str(p.n_runs), hours(p.training_gpu_hours), hours(p.wall_gpu_hours)])
    return rows


def apart(data: ReportData) -> list[tuple[str, CostBreakdown]]:
    """Compute kept out of the protocol's totals: baselines, unplanned runs, interrupted
    attempts."""
    report = data.cost_report
    return [
        (title, part)
        for title, part in (
            ("Baselines", report.baseline_costs),
            ("Unplanned compute", report.unplanned_costs),
            ("Interrupted attempts", report.interrupted_costs),
        )
        if part is not None
    ]


def banner_title(audit: AuditView) -> str:
    """The verdict line: clean, problems or empty, and what a clean verdict rests on."""
    failed = [c for c in audit.checks if not c.ok]
    if audit.verdict == "empty":
        return "Audit verdict: EMPTY — nothing was frozen or run, so nothing is proved"
    if audit.verdict != "clean":
        return (
            f"Audit verdict: PROBLEMS — {audit.n_problems} problem(s), "
            f"{len(failed)} failed check(s)"
        )
    return (
        "Audit verdict: CLEAN"
        + (" (simulated runs)" if audit.has_caveat("simulated") else "")
        + (
            " (status-only logs: configs, seeds and budgets not proved)"
            if audit.has_caveat("status_only_logs")
            else ""
        )
        + " — every check passed"
        + (
            ": the records are intact and the decisions follow from them, read the notes below"
            if audit.caveats
            else ""
        )
    )


def banner_style(audit: AuditView) -> str:
    """Red for problems; amber for a clean verdict that should not look green (simulated
    runs, a demo key, logs bound by their status evidence only); green otherwise."""
    if audit.verdict != "clean":
        return "problems"
    return "caveat" if audit.has_caveat("simulated", "demo_key", "status_only_logs") else "clean"


def checked_against(audit: AuditView) -> str:
    """Which trust roots and anchors the evidence was checked against, in one sentence."""
    keys = (
        "the reviewer's keys " + ", ".join(f"{k.name} [{k.key_id}]" for k in audit.trusted)
        if audit.trust == "reviewer"
        else "the keys the store itself holds (store-asserted)"
    )
    anchors = (
        f"{len(audit.anchors_given)} published anchor(s) given by the reviewer ("
        + ", ".join(a[:12] for a in audit.anchors_given)
        + ")"
        if audit.anchors_given
        else "no published anchor"
    )
    return f"Checked from {audit.source} against {keys}, and {anchors}."


# --------------------------------------------------------------------------- figures


def means_name(i: int, stage: StageView) -> str:
    return f"means-{i:02d}-{slug(stage.name)}.png"


def effects_name(i: int, stage: StageView) -> str:
    return f"effects-{i:02d}-{slug(stage.name)}.png"


def figures(report: Report) -> dict[str, bytes]:
    """File name -> PNG bytes, in a fixed order (names are what the Markdown links to)."""
    data = report.data
    figs = {
        "effects.png": plots.effects_plot(data.stages),
        "costs.png": plots.costs_plot(data.cost_report.costs, data.cost_report.counterfactuals),
    }
    if sum(1 for s in data.stages if s.conditions) >= 2:
        figs["ranks.png"] = plots.ranks_plot(data.stages)
    for i, stage in enumerate(data.stages, start=1):
        if stage.conditions:
            figs[means_name(i, stage)] = plots.means_plot(stage, data.campaign.metric)
        if stage.effects and stage.effects.effects:
            figs[effects_name(i, stage)] = plots.effects_plot([stage], main_only=False)
    if report.evaluation is not None and report.evaluation.result is not None:
        figs["evaluation.png"] = evaluation_report.figure(report.evaluation)
    if report.comparison is not None:
        figs["compare.png"] = compare.figure(report.comparison)
    return figs


# --------------------------------------------------------------------------- templates


class Raw(str):
    """Text the Markdown template prints as it is (fenced code, links it built itself)."""


_MD_SPECIAL = re.compile(r"([\\`*_\[\]|])")


def md_escape(value: Any) -> str:
    """Every value printed into Markdown: HTML-escaped, line breaks flattened, Markdown's
    emphasis, code, link and table characters backslashed; `Raw` values as they are."""
    if isinstance(value, Raw):
        return str(value)
    if value is None:
        return ""
    text = html.escape(str(value), quote=False).replace("\n", " ")
    return _MD_SPECIAL.sub(r"\\\1", text)


def _fenced(text: str) -> Raw:
    """A fenced block whose content cannot close the fence early."""
    return Raw("```json\n" + text.replace("```", "'''") + "\n```")


HELPERS = {
    "fmt": fmt,
    "fmt_p": fmt_p,
    "fmt_budget": fmt_budget,
    "hours": hours,
    "short": short,
    "mean_ci": mean_ci,
    "n_text": n_text,
    "gate_text": gate_text,
    "level": level,
    "promoted_text": promoted_text,
    "row_class": row_class,
    "statuses": statuses,
    "cells": cells,
    "sorted_conditions": sorted_conditions,
    "level_letters": level_letters,
    "effects_title": effects_title,
    "effects_paragraphs": effects_paragraphs,
    "effect_rows": effect_rows,
    "EFFECT_HEADERS": EFFECT_HEADERS,
    "analysis_line": analysis_line,
    "failure_rows": failure_rows,
    "FAILURE_HEADERS": FAILURE_HEADERS,
    "FLAG_WHY": FLAG_WHY,
    "variance_rows": variance_rows,
    "VARIANCE_COMPONENTS": VARIANCE_COMPONENTS,
    "VARIANCE_WHY": VARIANCE_WHY,
    "provenance_rows": provenance_rows,
    "cost_rows": cost_rows,
    "apart": apart,
    "banner_title": banner_title,
    "banner_style": banner_style,
    "checked_against": checked_against,
    "means_name": means_name,
    "effects_name": effects_name,
    "POST_SELECTION_WHY": POST_SELECTION_WHY,
}


def _environment(markdown: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("audit", "templates"),
        autoescape=not markdown,
        undefined=jinja2.StrictUndefined,  # a misspelt name is an error, not an empty cell
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        finalize=md_escape if markdown else None,
        extensions=["jinja2.ext.do"],
    )
    env.globals.update(HELPERS)
    if markdown:
        env.globals["raw"] = Raw
        env.globals["fenced"] = _fenced
    return env


_HTML = _environment(markdown=False)
_MD = _environment(markdown=True)


def _data_uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def render(report: Report, figs: Mapping[str, bytes] | None = None) -> tuple[str, str]:
    """(self-contained HTML, Markdown). The Markdown links PNGs by bare file name."""
    figs = figures(report) if figs is None else figs
    context = {"data": report.data, "figures": {k: _data_uri(v) for k, v in figs.items()}}
    page = _HTML.get_template("report.html.j2").render(context)
    text = _MD.get_template("report.md.j2").render({**context, "figures": dict.fromkeys(figs)})
    return page, text


def write_report(report: Report, out_dir: Path) -> dict[str, Path]:
    """Write report.html, report.md and the PNGs next to them, each atomically.

    Returns `{"html": path, "md": path, "<name>.png": path, ...}`. Figures go first and the
    HTML last, so a reader never finds a page whose images are not there yet.
    """
    figs = figures(report)
    page, text = render(report, figs)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, png in figs.items():
        atomic_write(out_dir / name, png)
        paths[name] = out_dir / name
    atomic_write(out_dir / "report.md", text.encode("utf-8"))
    atomic_write(out_dir / "report.html", page.encode("utf-8"))
    return {"html": out_dir / "report.html", "md": out_dir / "report.md", **paths}


__all__ = [
    "POST_SELECTION_WHY",
    "banner_title",
    "figures",
    "fmt",
    "fmt_budget",
    "hours",
    "md_escape",
    "render",
    "write_report",
]
