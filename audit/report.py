"""Render the report data dict (docs/reports.md) as one self-contained HTML page and Markdown.

Why self-contained: a reviewer must read the evidence without the tool, a network or a CDN, so
figures are embedded as base64 PNG and the style sheet is inline. Every piece of text from the
ledger is escaped: condition names and rule values come from campaign files and are untrusted.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from audit import compare, evaluation_report, plots
from audit.summary import provenance_rows
from ledger.errors import LedgerError
from ledger.fsutil import atomic_write
from stages.campaign import budget_label

TOP_KEYS = (
    "campaign",
    "generated_at",
    "tool_version",
    "audit",
    "stages",
    "rank_stability",
    "costs",
    "counterfactuals",
)
CAMPAIGN_KEYS = ("name", "metric", "factors")
AUDIT_KEYS = ("verdict", "problems", "checks")
STAGE_KEYS = (
    "name",
    "budget_s",
    "manifest",
    "decision",
    "rule",
    "cells",
    "n_runs",
    "statuses",
    "conditions",
    "effects",
    "significant",
    "promoted",
    "trace",
    "verdicts",
)
CONDITION_KEYS = ("condition", "name", "n", "mean", "rank", "promoted")
COST_KEYS = ("training_gpu_hours", "wall_gpu_hours", "by_stage", "by_host", "by_status", "checks")

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em}h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}
th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}
.banner{padding:.8em 1em;border-radius:6px;font-weight:600;margin:1em 0}
.clean{background:#e3f6e5;border:2px solid #2e8b3a;color:#1d5c26}
.caveat{background:#fff6e0;border:2px solid #d68910;color:#6e4500}
.verdict{font-size:1.05em;background:#f4f8fb;border-left:4px solid #1f6f8b;padding:.6em 1em}
.problems{background:#fde8e6;border:2px solid #c0392b;color:#7d1f14}
.banner ul{font-weight:400;margin:.4em 0 0}
pre{background:#f7f7f7;border:1px solid #e2e2e2;padding:.6em;overflow-x:auto;font-size:.88em}
code{font-size:.9em}.ok{color:#2e8b3a;font-weight:600}.bad{color:#c0392b;font-weight:600}
.promoted td{background:#fff4e5}.kept td{background:#eef3f8}img{max-width:100%;height:auto;display:block;margin:.6em 0}
footer{margin-top:3em;color:#666;font-size:.85em;border-top:1px solid #ddd;padding-top:.6em}
"""


# ----------------------------------------------------------------------------- validation


def _require(obj: Any, keys: Sequence[str], where: str) -> None:
    if not isinstance(obj, Mapping):
        raise LedgerError(f"report data: {where}: expected a dict, got {type(obj).__name__}")
    for key in keys:
        if key not in obj:
            raise LedgerError(f"report data: {where}: missing key {key!r}")


def _require_list(obj: Any, where: str) -> list[Any]:
    if isinstance(obj, str | bytes) or not isinstance(obj, Sequence):
        raise LedgerError(f"report data: {where}: expected a list, got {type(obj).__name__}")
    return list(obj)


def validate_report_data(data: Any) -> None:
    """Raise LedgerError naming the first missing or mistyped key (shape: docs/reports.md)."""
    _require(data, TOP_KEYS, "top level")
    _require(data["campaign"], CAMPAIGN_KEYS, "campaign")
    if not isinstance(data["campaign"]["factors"], Mapping):
        raise LedgerError("report data: campaign.factors: expected a dict of letter -> factor")
    _require(data["audit"], AUDIT_KEYS, "audit")
    if data["audit"]["verdict"] not in ("clean", "problems", "empty"):
        raise LedgerError(
            f"report data: audit.verdict: expected 'clean', 'problems' or 'empty', got "
            f"{data['audit']['verdict']!r}"
        )
    _require_list(data["audit"]["problems"], "audit.problems")
    for i, check in enumerate(_require_list(data["audit"]["checks"], "audit.checks")):
        _require(check, ("name", "ok"), f"audit.checks[{i}]")
    for i, stage in enumerate(_require_list(data["stages"], "stages")):
        _require(stage, STAGE_KEYS, f"stages[{i}]")
        for j, cond in enumerate(_require_list(stage["conditions"], f"stages[{i}].conditions")):
            _require(cond, CONDITION_KEYS, f"stages[{i}].conditions[{j}]")
        if stage["effects"] is not None:
            _require(stage["effects"], ("method", "effects"), f"stages[{i}].effects")
            for j, effect in enumerate(
                _require_list(stage["effects"]["effects"], f"stages[{i}].effects.effects")
            ):
                _require(effect, ("term", "effect"), f"stages[{i}].effects.effects[{j}]")
    for i, row in enumerate(_require_list(data["rank_stability"], "rank_stability")):
        _require(row, ("from", "to", "rho", "n"), f"rank_stability[{i}]")
    for i, flag in enumerate(_require_list(data.get("flags", []), "flags")):
        _require(flag, ("kind", "detail"), f"flags[{i}]")
    if data.get("variance") is not None:
        _require(data["variance"], ("campaign", "by_stage"), "variance")
    _require(data["costs"], COST_KEYS, "costs")
    for i, counterfactual in enumerate(_require_list(data["counterfactuals"], "counterfactuals")):
        _require(
            counterfactual,
            ("gate", "next_if_all", "next_planned", "final_if_all", "final_planned"),
            f"counterfactuals[{i}]",
        )


# ----------------------------------------------------------------------------- formatting


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


def fmt_budget(seconds: Any) -> str:
    """``budget_label`` spelled for readers: ``2 min``, ``12 h``, ``90 s``."""
    if not _finite(seconds):
        return str(seconds)
    label = budget_label(seconds)
    return f"{label[:-1]} {_UNITS[label[-1]]}"


_UNITS = {"s": "s", "m": "min", "h": "h"}


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _md(x: Any) -> str:
    """Text for a Markdown table cell: HTML-escaped, emphasis and pipes neutralised."""
    s = html.escape(str(x), quote=False).replace("\n", " ")
    return re.sub(r"([\\`*_\[\]|])", r"\\\1", s)


def _short(oid: Any) -> str:
    return "—" if oid is None else str(oid)[:12]


def _id_html(oid: Any) -> str:
    if oid is None:
        return "—"
    return f'<code title="{_esc(oid)}">{_esc(_short(oid))}</code>'


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:40] or "stage"


def _mean_ci(c: Mapping[str, Any]) -> str:
    mean = fmt(c.get("mean"))
    lo, hi = c.get("ci_low"), c.get("ci_high")
    if _finite(lo) and _finite(hi):
        return f"{mean} [{fmt(lo)}, {fmt(hi)}]"
    return mean


def _n_text(c: Mapping[str, Any]) -> str:
    runs = c.get("n_runs")
    return f"{c['n']} / {runs}" if isinstance(runs, int) and runs else str(c["n"])


def _gate_text(c: Mapping[str, Any]) -> str:
    """Where the gate's rule put the condition: its rank there, or why it was not ranked."""
    if c.get("excluded"):
        return f"excluded: {c['excluded']}"
    return f"rank {c['gate_rank']}" if c.get("gate_rank") else "—"


def _level_letters(conds: Sequence[Mapping[str, Any]]) -> list[str]:
    """Factor letters to show as columns (design points decoded into their levels)."""
    return sorted({x for c in conds for x in (c.get("levels") or {})})


def _level(c: Mapping[str, Any], letter: str) -> str:
    value = (c.get("levels") or {}).get(letter)
    return "—" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _promoted_text(c: Mapping[str, Any]) -> str:
    """Promoted on its merits, or carried as an always-kept anchor (the rule's `keep`)."""
    if not c.get("promoted"):
        return ""
    return "kept (anchor)" if c.get("promoted_by") == "keep" else "✔ promoted"


def _row_class(c: Mapping[str, Any]) -> str:
    if not c.get("promoted"):
        return ""
    return "kept" if c.get("promoted_by") == "keep" else "promoted"


def _statuses(stage: Mapping[str, Any]) -> str:
    st = stage.get("statuses") or {}
    return ", ".join(f"{k}: {v}" for k, v in sorted(st.items())) or "no runs"


def _cells(stage: Mapping[str, Any]) -> str:
    cells = stage.get("cells") or []
    return (
        "; ".join(
            f"seed {c[0]} @ {c[1]}" if isinstance(c, Sequence) and len(c) == 2 else str(c)
            for c in cells
        )
        or "—"
    )


def _interval_text(effects: Mapping[str, Any], e: Mapping[str, Any]) -> str:
    interval = plots.effect_interval(effects, e)
    return "—" if interval is None else f"[{fmt(interval[0])}, {fmt(interval[1])}]"


POST_SELECTION_WHY = (
    "Post-selection, descriptive only: these conditions are the ones the previous gate "
    "promoted, not an orthogonal design. Factors are partly confounded with one another and "
    "the set was chosen for looking good, so the estimates describe this set and nothing "
    "wider; they carry no BH q-values and no rule uses them."
)


def _effects_section(stage: Mapping[str, Any]) -> tuple[str, list[str], list[str], list[list[str]]]:
    """(title, paragraphs, headers, rows) of a gate's effects, for HTML and Markdown alike."""
    stage_effects = stage["effects"]
    sig = set(stage["significant"] or [])
    post = bool(stage_effects.get("post_selection"))
    title = f"Effects ({stage_effects['method']}{', post-selection' if post else ''})"
    extra = ", ".join(
        f"{k} = {fmt(stage_effects.get(k))}"
        for k in ("pse", "me", "sme")
        if stage_effects.get(k) is not None
    )
    if stage_effects.get("df_resid") is not None:
        extra = ", ".join(
            filter(None, [extra, f"residual df = {fmt(stage_effects['df_resid'], 0)}"])
        )
    if _finite(stage_effects.get("t_df")):
        extra += f"; intervals and p use t with {stage_effects['t_df']:.3g} df"
    if stage_effects.get("block"):
        extra += f"; block: {stage_effects['block']}"
    paragraphs = [extra] + ([POST_SELECTION_WHY] if post else [])
    reasons = stage_effects.get("dropped_reasons") or {}
    if stage_effects.get("dropped"):
        paragraphs.append(
            "Not estimated separately: "
            + "; ".join(
                f"{t} ({reasons[t]})" if t in reasons else t for t in stage_effects["dropped"]
            )
        )
    paragraphs += [
        n for n in stage_effects.get("notes") or [] if not (post and n.startswith("post-"))
    ]
    headers = ["term", "aliases", "effect", "se", "95% interval", "p", "q (BH)", "significant"]
    rows = [
        [
            e["term"],
            " = ".join(e.get("aliases") or []) or "—",
            fmt(e["effect"]),
            fmt(e.get("se")),
            _interval_text(stage_effects, e),
            fmt_p(e.get("p")),
            fmt_p(e.get("q")),
            "yes" if e["term"] in sig else "",
        ]
        for e in stage_effects["effects"]
    ]
    return title, [p for p in paragraphs if p], headers, rows


def _analysis_lines(stage: Mapping[str, Any]) -> list[str]:
    plan = stage.get("analysis") or {}
    if not plan:
        return []
    what = plan.get("design") or plan.get("structure") or "no design"
    terms = ", ".join(plan.get("terms") or []) or "none"
    line = (
        f"Frozen analysis plan: {plan.get('points', 0)} design point(s) ({what}); method "
        f"{plan.get('method') or '—'}; terms {terms}; block {plan.get('block') or 'none'}"
    )
    if plan.get("post_selection"):
        line += "; post-selection"
    return [line]


def _failure_rows(stage: Mapping[str, Any]) -> list[list[str]]:
    """Failure rate per factor level of the design points, when any of them failed."""
    table = stage.get("failure_rates") or {}
    if not table.get("n_failed"):
        return []
    rows = []
    for letter, row in table["factors"].items():
        rows.append(
            [
                letter,
                str(row.get("key") or ""),
                f"{row['low']['failed']} / {row['low']['runs']}",
                f"{row['high']['failed']} / {row['high']['runs']}",
                fmt_p(row.get("p")),
                "FLAG" if row.get("unequal") else "",
            ]
        )
    return rows


FAILURE_HEADERS = ["factor", "config key", "failed at -1", "failed at +1", "Fisher p", "unequal"]
FLAG_WHY = {
    "winner_overlaps_runner_up": "winner's 95% interval overlaps the runner-up's",
    "host_reverses_order": "a host reverses the gate's order",
    "failures_by_level": "a factor's levels fail unequally",
    "negative_rank_correlation": "ranks reverse between consecutive gates",
    "weak_rank_correlation": "ranks barely agree between consecutive gates",
}


def _flag_rows(flags: Sequence[Mapping[str, Any]]) -> list[list[str]]:
    return [
        [
            str(f.get("stage", "")),
            FLAG_WHY.get(str(f.get("kind")), str(f.get("kind"))),
            str(f.get("detail", "")),
        ]
        for f in flags
    ]


VARIANCE_COMPONENTS = ("budget", "condition", "host", "seed", "residual")


def _variance_rows(data: Mapping[str, Any]) -> list[list[str]]:
    """Share of the total sum of squares per component: the campaign, then each stage."""
    var = data.get("variance") or {}
    items = [("all gates", var.get("campaign"))] + list((var.get("by_stage") or {}).items())
    rows = []
    for name, vd in items:
        if not vd:
            continue
        shares = vd.get("shares") or {}
        rows.append(
            [str(name), str(vd.get("n", "—"))]
            + ["—" if c not in shares else fmt(shares[c], 3) for c in VARIANCE_COMPONENTS]
        )
    return rows


VARIANCE_WHY = (
    "Sequential (type I) sums of squares of the ok runs, in the order budget, "
    "condition, host, seed; residual is the rest (seed-to-seed noise and "
    "interactions). A component with one level has share 0."
)


# ----------------------------------------------------------------------------- figures


def _figures(data: Mapping[str, Any]) -> dict[str, bytes]:
    """File name -> PNG bytes, in a fixed order (names are what the Markdown links to)."""
    figs = {
        "effects.png": plots.effects_plot(data["stages"]),
        "costs.png": plots.costs_plot(_ordered_costs(data), data["counterfactuals"]),
    }
    if sum(1 for s in data["stages"] if s["conditions"]) >= 2:
        figs["ranks.png"] = plots.ranks_plot(data["stages"])
    metric = str(data["campaign"]["metric"])
    for i, stage in enumerate(data["stages"], start=1):
        if stage["conditions"]:
            figs[_means_name(i, stage)] = plots.means_plot(stage, metric)
        if stage["effects"] and stage["effects"].get("effects"):
            figs[_effects_name(i, stage)] = plots.effects_plot([stage], main_only=False)
    if data.get("evaluation") and data["evaluation"].result is not None:
        figs["evaluation.png"] = evaluation_report.figure(data["evaluation"])
    if data.get("comparison"):
        figs["compare.png"] = compare.figure(data["comparison"])
    return figs


def _means_name(i: int, stage: Mapping[str, Any]) -> str:
    return f"means-{i:02d}-{_slug(str(stage['name']))}.png"


def _effects_name(i: int, stage: Mapping[str, Any]) -> str:
    return f"effects-{i:02d}-{_slug(str(stage['name']))}.png"


# ----------------------------------------------------------------------------- HTML


def _img(figs: Mapping[str, bytes], name: str, alt: str) -> str:
    if name not in figs:
        return ""
    b64 = base64.b64encode(figs[name]).decode("ascii")
    return f'<img alt="{_esc(alt)}" src="data:image/png;base64,{b64}">'


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    num: set[int] | None = None,
    row_classes: Sequence[str] | None = None,
) -> str:
    """Rows are already-escaped HTML cells."""
    num = num or set()
    head = "".join(f"<th>{_esc(h)}</th>" for h in headers)
    body = []
    for r, row in enumerate(rows):
        cls = f' class="{row_classes[r]}"' if row_classes and row_classes[r] else ""
        cells = "".join(
            f'<td class="num">{c}</td>' if j in num else f"<td>{c}</td>" for j, c in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _html_rows(
    headers: Sequence[str], rows: Sequence[Sequence[Any]], num: set[int] | None = None
) -> str:
    """A table of plain-text cells, escaped here."""
    return _table(headers, [[_esc(c) for c in row] for row in rows], num=num)


def _ok(flag: Any) -> str:
    return '<span class="ok">pass</span>' if flag else '<span class="bad">FAIL</span>'


def banner_title(audit: Mapping[str, Any]) -> str:
    """The verdict line: clean, problems or empty, and what a clean verdict rests on."""
    failed = [c for c in audit["checks"] if not c.get("ok")]
    if audit["verdict"] == "empty":
        return "Audit verdict: EMPTY — nothing was frozen or run, so nothing is proved"
    if audit["verdict"] != "clean":
        return (
            f"Audit verdict: PROBLEMS — {len(audit['problems'])} problem(s), "
            f"{len(failed)} failed check(s)"
        )
    caveats = audit.get("caveats") or []
    simulated = any("simulated" in c for c in caveats)
    status_only = any(c.startswith("Status-only logs") for c in caveats)
    return (
        "Audit verdict: CLEAN"
        + (" (simulated runs)" if simulated else "")
        + (" (status-only logs: configs, seeds and budgets not proved)" if status_only else "")
        + " — every check passed"
        + (
            ": the records are intact and the decisions follow from them, read the notes below"
            if caveats
            else ""
        )
    )


def _serious(audit: Mapping[str, Any]) -> bool:
    """A clean verdict that should not look green: simulated runs, a demo key, or logs
    bound by their status evidence only."""
    return any(
        ("simulated" in c or "demo key" in c or c.startswith("Status-only logs"))
        for c in audit.get("caveats") or []
    )


def _html_banner(audit: Mapping[str, Any]) -> str:
    clean = audit["verdict"] == "clean"
    failed = [c for c in audit["checks"] if not c.get("ok")]
    items = [f"<li>{_esc(p)}</li>" for p in audit["problems"]]
    items += [
        f"<li>failed check: {_esc(c['name'])} {_esc(c.get('detail') or '')}</li>" for c in failed
    ]
    items += [f"<li>{_esc(c)}</li>" for c in audit.get("caveats") or []]
    lst = f"<ul>{''.join(items)}</ul>" if items else ""
    style = ("caveat" if _serious(audit) else "clean") if clean else "problems"
    return f'<div class="banner {style}">{_esc(banner_title(audit))}{lst}</div>'


def _html_verdict(data: Mapping[str, Any]) -> str:
    verdict = data.get("verdict")
    if not verdict:
        return ""
    return f'<p class="verdict"><b>What was decided:</b> {_esc(verdict["sentence"])}</p>'


def _html_provenance(data: Mapping[str, Any]) -> str:
    prov = data.get("provenance")
    if not prov:
        return ""
    rows = provenance_rows(prov)
    signers = (data.get("facts") or {}).get("signers") or []
    rows.append(
        (
            "signing keys",
            "; ".join(
                f"{s['name']} [{s['key_id']}] ({s['signed']} object(s)"
                + (", a DEMO key)" if s.get("demo") else ")")
                for s in signers
            )
            or "—",
        )
    )
    anchors = (data.get("facts") or {}).get("anchors")
    rows.append(("anchors", "none made" if not anchors else f"{anchors}"))
    return "<h2>Provenance</h2>" + _html_rows(["what", "value"], rows)


def _html_campaign(data: Mapping[str, Any]) -> str:
    camp = data["campaign"]
    rows = []
    for letter in sorted(camp["factors"]):
        f = camp["factors"][letter] or {}
        levels = f.get("levels") or ["?", "?"]
        lo, hi = (levels + ["?", "?"])[:2]
        rows.append([_esc(letter), f"<code>{_esc(f.get('key', '?'))}</code>", _esc(lo), _esc(hi)])
    factors = (
        _table(["factor", "config key", "low (−1)", "high (+1)"], rows)
        if rows
        else "<p>No factors declared.</p>"
    )
    stages = _table(
        ["#", "stage", "budget", "runs", "conditions", "promoted"],
        [
            [
                str(i),
                _esc(s["name"]),
                _esc(fmt_budget(s["budget_s"])),
                _esc(s["n_runs"]),
                _esc(len(s["conditions"])),
                _esc(", ".join(map(str, s["promoted"])) or "—"),
            ]
            for i, s in enumerate(data["stages"], start=1)
        ],
        num={0, 3, 4},
    )
    return (
        f"<h2>Campaign</h2><p>Campaign <b>{_esc(camp['name'])}</b>; metric "
        f"<code>{_esc(camp['metric'])}</code> (minimised).</p>{factors}"
        f"<h3>Stages</h3>{stages}"
    )


def _html_stage(i: int, stage: Mapping[str, Any], figs: Mapping[str, bytes]) -> str:
    parts = [
        f'<h2 id="stage-{i}">Gate {i}: {_esc(stage["name"])} '
        f"({_esc(fmt_budget(stage['budget_s']))})</h2>"
    ]
    meta = [
        ("manifest", _id_html(stage["manifest"])),
        ("decision", _id_html(stage["decision"]) if stage["decision"] else "not decided yet"),
        ("frozen at", _esc(stage.get("frozen_at") or "—")),
        ("decided at", _esc(stage.get("decided_at") or "—")),
        ("runs", _esc(stage["n_runs"])),
        ("statuses", _esc(_statuses(stage))),
        ("cells (seed @ host)", _esc(_cells(stage))),
        ("promoted", _esc(", ".join(map(str, stage["promoted"])) or "—")),
    ]
    parts.append(_table(["", ""], [[_esc(k), v] for k, v in meta]))
    fails = stage.get("failures") or []
    if fails:
        parts.append(
            "<h3>Runs that did not finish</h3>"
            + _table(
                ["condition", "seed", "host", "status", "why"],
                [
                    [
                        _esc(f["condition"]),
                        _esc(f["seed"]),
                        _esc(f["host"]),
                        _esc(f["status"]),
                        _esc(f["reason"]),
                    ]
                    for f in fails
                ],
                num={1},
            )
        )
    rule = json.dumps(stage["rule"], indent=2, sort_keys=True, ensure_ascii=False, default=str)
    parts.append(f"<h3>Frozen rule</h3><pre>{_esc(rule)}</pre>")
    conds = sorted(
        stage["conditions"],
        key=lambda c: (c["rank"] if _finite(c.get("rank")) else math.inf, str(c["name"])),
    )
    if conds:
        letters = _level_letters(conds)
        rows = [
            [
                _esc(c["rank"] if c["rank"] is not None else "—"),
                f'<span title="{_esc(c["condition"])}">{_esc(c["name"])}</span>',
                *[_esc(_level(c, x)) for x in letters],
                _esc(_n_text(c)),
                _esc(_mean_ci(c)),
                _esc(fmt(c.get("sd"))),
                _esc(c.get("wins", "—")),
                _esc(_gate_text(c)),
                _esc(_promoted_text(c)),
            ]
            for c in conds
        ]
        nums = {0, *range(2, 2 + len(letters) + 4)}
        parts.append(
            "<h3>Conditions</h3>"
            + _table(
                [
                    "rank",
                    "condition",
                    *letters,
                    "n ok / runs",
                    "mean [95% CI]",
                    "sd",
                    "wins",
                    "at the gate",
                    "promoted",
                ],
                rows,
                num=nums,
                row_classes=[_row_class(c) for c in conds],
            )
        )
        parts.append(_img(figs, _means_name(i, stage), f"condition means at {stage['name']}"))
    else:
        parts.append("<p>No decision yet: no condition statistics.</p>")
    parts += [f"<p>{_esc(line)}</p>" for line in _analysis_lines(stage)]
    if stage["effects"]:
        title, paragraphs, headers, rows = _effects_section(stage)
        parts.append(
            f"<h3>{_esc(title)}</h3>"
            + "".join(f"<p>{_esc(t)}</p>" for t in paragraphs)
            + _html_rows(headers, rows, num={2, 3, 5, 6})
        )
        parts.append(_img(figs, _effects_name(i, stage), f"effects at {stage['name']}"))
    elif stage.get("effects_note"):
        parts.append(f"<p>No effects: {_esc(stage['effects_note'])}</p>")
    failure_rows = _failure_rows(stage)
    if failure_rows:
        parts.append(
            "<h3>Failure rate by factor level (design points)</h3>"
            + _html_rows(FAILURE_HEADERS, failure_rows, num={4})
        )
    if stage.get("flags"):
        parts.append(
            "<h3>Flags</h3><ul>"
            + "".join(
                f"<li><b>{_esc(FLAG_WHY.get(f['kind'], f['kind']))}</b>: {_esc(f['detail'])}</li>"
                for f in stage["flags"]
            )
            + "</ul>"
        )
    if stage["trace"]:
        parts.append(
            "<h3>Decision trace</h3><ol>"
            + "".join(f"<li>{_esc(t)}</li>" for t in stage["trace"])
            + "</ol>"
        )
    if stage["verdicts"]:
        parts.append(
            "<h3>Check verdicts</h3>"
            + _table(
                ["check", "verdict", "detail"],
                [
                    [_esc(v.get("name", "?")), _ok(v.get("pass")), _esc(v.get("detail") or "")]
                    for v in stage["verdicts"]
                ],
            )
        )
    return "\n".join(parts)


def _cost_rows(part: Mapping[str, Any], names: bool = False) -> list[list[str]]:
    rows = []
    for key, row in part.items():
        label = f"{row.get('name', '')} ({str(key)[:8]})" if names and row.get("name") else key
        rows.append(
            [
                _esc(label),
                _esc(row["n_runs"]),
                _esc(_hours(row["training_gpu_hours"])),
                _esc(_hours(row["wall_gpu_hours"])),
            ]
        )
    return rows


def _sentences(counterfactuals: Sequence[Mapping[str, Any]]) -> list[str]:
    """Next-stage then final-stage sentence per gate, without repeats (next may be final)."""
    out: list[str] = []
    for counterfactual in counterfactuals:
        out += [
            counterfactual[k]
            for k in ("sentence_next", "sentence")
            if counterfactual.get(k) and counterfactual[k] not in out
        ]
    return out


def _ordered_costs(data: Mapping[str, Any]) -> dict[str, Any]:
    """Costs with by_stage in protocol order (the breakdown itself is sorted by name)."""
    costs = dict(data["costs"])
    by_stage = costs.get("by_stage") or {}
    order = [s["name"] for s in data["stages"] if s["name"] in by_stage]
    order += [k for k in by_stage if k not in order]
    costs["by_stage"] = {k: by_stage[k] for k in order}
    return costs


def saved_sentence(data: Mapping[str, Any]) -> str | None:
    """The money line: GPU-hours saved against continuing every candidate of the first
    continued gate to the final stage (the `gpu_hours_saved_vs_all` of metrics.json)."""
    counterfactuals = data.get("counterfactuals") or []
    if not counterfactuals:
        return None
    counterfactual = counterfactuals[0]
    saved = counterfactual["final_if_all"] - counterfactual.get("protocol_remaining", 0.0)
    return (
        f"Saved {_hours(saved)} GPU-hours: continuing all {counterfactual.get('n_candidates', '?')} "
        f"candidates of {counterfactual['gate']} straight to {counterfactual['final']} would have spent "
        f"{_hours(counterfactual['final_if_all'])}; the protocol planned "
        f"{_hours(counterfactual.get('protocol_remaining'))} for the stages after {counterfactual['gate']}."
    )


def _hours(x: Any) -> str:
    """GPU-hours at a precision that suits their size (CPU demos spend thousandths)."""
    if not _finite(x):
        return "—"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}" if abs(x) >= 0.1 or x == 0 else f"{x:.3g}"


def _apart(data: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Compute kept out of the protocol's totals: baselines, unplanned runs, interrupted attempts."""
    return [
        (title, data[key])
        for key, title in (
            ("baseline_costs", "Baselines"),
            ("unplanned_costs", "Unplanned compute"),
            ("interrupted_costs", "Interrupted attempts"),
        )
        if data.get(key)
    ]


def _html_costs(data: Mapping[str, Any], figs: Mapping[str, bytes]) -> str:
    costs = _ordered_costs(data)
    out = [
        f"<h2>Costs</h2><p>The protocol's training GPU-hours <b>"
        f"{_hours(costs['training_gpu_hours'])}</b>, wall GPU-hours <b>"
        f"{_hours(costs['wall_gpu_hours'])}</b> over {costs['n_runs']} runs (failed runs "
        f"count for the seconds they used)."
        + "".join(
            f" {title}: {_hours(part['training_gpu_hours'])} training GPU-hours over "
            f"{part['n_runs']} runs, not in these totals."
            for title, part in _apart(data)
        )
        + "</p>"
    ]
    saved = saved_sentence(data)
    if saved:
        out.append(f"<p><b>{_esc(saved)}</b></p>")
    headers = ["", "runs", "training GPU-h", "wall GPU-h"]
    for key, title in (
        ("by_stage", "By stage"),
        ("by_host", "By host"),
        ("by_status", "By status"),
        ("by_condition", "By condition"),
    ):
        if costs.get(key):
            out.append(
                f"<h3>{title}</h3>"
                + _table(
                    [title.split()[-1], *headers[1:]],
                    _cost_rows(costs[key], names=key == "by_condition"),
                    num={1, 2, 3},
                )
            )
    for title, part in _apart(data):
        out.append(
            f"<h3>{title} (apart from the protocol's totals)</h3>"
            + _table(["stage", *headers[1:]], _cost_rows(part["by_stage"]), num={1, 2, 3})
        )
    if costs["checks"]:
        out.append(
            "<h3>Sum checks</h3>"
            + _table(
                ["check", "verdict", "difference"],
                [
                    [_esc(c["name"]), _ok(c["ok"]), _esc(f"{c.get('difference', 0.0):.3g}")]
                    for c in costs["checks"]
                ],
            )
        )
    counterfactuals = data["counterfactuals"]
    if counterfactuals:
        out.append(
            "<h3>Counterfactuals (nominal GPU-hours)</h3>"
            + _table(
                [
                    "gate",
                    "candidates",
                    "next: planned",
                    "next: all",
                    "final: planned",
                    "final: all",
                    "protocol remaining",
                ],
                [
                    [
                        _esc(counterfactual["gate"]),
                        _esc(counterfactual.get("n_candidates", "—")),
                        _esc(_hours(counterfactual["next_planned"])),
                        _esc(_hours(counterfactual["next_if_all"])),
                        _esc(_hours(counterfactual["final_planned"])),
                        _esc(_hours(counterfactual["final_if_all"])),
                        _esc(_hours(counterfactual.get("protocol_remaining"))),
                    ]
                    for counterfactual in counterfactuals
                ],
                num={1, 2, 3, 4, 5, 6},
            )
        )
        out.append(
            "<ul>" + "".join(f"<li>{_esc(s)}</li>" for s in _sentences(counterfactuals)) + "</ul>"
        )
    out.append(_img(figs, "costs.png", "executed and counterfactual GPU-hours"))
    return "\n".join(out)


def _html_ranks(data: Mapping[str, Any], figs: Mapping[str, bytes]) -> str:
    rows = data["rank_stability"]
    if not rows:
        return "<h2>Rank stability</h2><p>Fewer than two decided stages.</p>"
    table = _html_rows(
        ["from", "to", "Spearman ρ", "shared conditions", "flag"],
        [[r["from"], r["to"], fmt(r["rho"], 3), r["n"], r.get("flag") or ""] for r in rows],
        num={2, 3},
    )
    return f"<h2>Rank stability</h2>{table}" + _img(figs, "ranks.png", "ranks across stages")


def _html_variance(data: Mapping[str, Any]) -> str:
    rows = _variance_rows(data)
    if not rows:
        return ""
    return (
        "<h2>Variance decomposition</h2>"
        + f"<p>{_esc(VARIANCE_WHY)}</p>"
        + _html_rows(["set", "ok runs", *VARIANCE_COMPONENTS], rows, num={1, 2, 3, 4, 5, 6})
    )


def _html_flags(data: Mapping[str, Any]) -> str:
    flags = data.get("flags") or []
    if not flags:
        return "<h2>Review flags</h2><p>None raised.</p>"
    return (
        "<h2>Review flags</h2><p>What a reviewer should look at before trusting a gate "
        "(details in each gate's section).</p>"
        + _html_rows(["stage", "flag", "detail"], _flag_rows(flags))
    )


def _render_html(data: Mapping[str, Any], figs: Mapping[str, bytes]) -> str:
    name = str(data["campaign"]["name"])
    stages = "\n".join(_html_stage(i, s, figs) for i, s in enumerate(data["stages"], start=1))
    body = [
        f"<h1>Staged screening report: {_esc(name)}</h1>",
        _html_banner(data["audit"]),
        _html_verdict(data),
        _html_flags(data),
        _html_campaign(data),
        _html_provenance(data),
        "<h2>Main effects by budget</h2>" + _img(figs, "effects.png", "main effects by budget"),
        stages,
        _html_ranks(data, figs),
        _html_variance(data),
        _html_costs(data, figs),
    ]
    if data.get("comparison"):
        body.append(
            compare.html_section(data["comparison"], _img(figs, "compare.png", compare.TITLE))
        )
    if data.get("evaluation"):
        body.append(
            evaluation_report.html_section(
                data["evaluation"], _img(figs, "evaluation.png", evaluation_report.TITLE)
            )
        )
    checks = data["audit"]["checks"]
    if checks:
        failed = sum(1 for c in checks if not c["ok"])
        table = _table(
            ["check", "verdict", "detail"],
            [[_esc(c["name"]), _ok(c["ok"]), _esc(c.get("detail") or "")] for c in checks],
        )
        summary = (
            f"{failed} of {len(checks)} checks failed"
            if failed
            else f"all {len(checks)} checks passed"
        )
        # failures stay open; a long list of passes is one click away
        body.append(
            f"<h2>Audit checks</h2><details{' open' if failed else ''}><summary>"
            f"{_esc(summary)} (show each)</summary>{table}</details>"
        )
    body.append(
        f"<footer>Generated {_esc(data['generated_at'])} by gateledger "
        f"{_esc(data['tool_version'])}. Every number here is re-derivable with "
        f"<code>ledger audit</code> from the signed objects and journals.</footer>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_esc(name)} — gateledger report</title><style>{CSS}</style></head>"
        f"<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


# ----------------------------------------------------------------------------- Markdown


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = [
        "| " + " | ".join(_md(h) for h in headers) + " |",
        "|" + "|".join("---" for _ in headers) + "|",
    ]
    out += ["| " + " | ".join(_md(c) for c in row) + " |" for row in rows]
    return [*out, ""]


def _md_stage(i: int, s: Mapping[str, Any]) -> list[str]:
    """One gate's section of the Markdown report."""
    lines: list[str] = []
    lines += [f"## Gate {i}: {_md(s['name'])} ({_md(fmt_budget(s['budget_s']))})", ""]
    lines += [
        f"- manifest: `{s['manifest']}`",
        f"- decision: `{s['decision']}`" if s["decision"] else "- decision: not yet",
        f"- frozen at: {_md(s.get('frozen_at') or '—')}; decided at: "
        f"{_md(s.get('decided_at') or '—')}",
        f"- runs: {_md(s['n_runs'])} ({_md(_statuses(s))}); cells: {_md(_cells(s))}",
        f"- promoted: {_md(', '.join(map(str, s['promoted'])) or '—')}",
        "",
    ]
    if s.get("failures"):
        lines += ["Runs that did not finish:", ""]
        lines += _md_table(
            ["condition", "seed", "host", "status", "why"],
            [
                [f["condition"], f["seed"], f["host"], f["status"], f["reason"]]
                for f in s["failures"]
            ],
        )
    rule = json.dumps(s["rule"], indent=2, sort_keys=True, ensure_ascii=False, default=str)
    lines += ["Frozen rule:", "", "```json", rule.replace("```", "'''"), "```", ""]
    conds = sorted(
        s["conditions"],
        key=lambda c: (c["rank"] if _finite(c.get("rank")) else math.inf, str(c["name"])),
    )
    if conds:
        letters = _level_letters(conds)
        lines += _md_table(
            [
                "rank",
                "condition",
                *letters,
                "n ok / runs",
                "mean [95% CI]",
                "wins",
                "at the gate",
                "promoted",
            ],
            [
                [
                    c["rank"] if c["rank"] is not None else "—",
                    c["name"],
                    *[_level(c, x) for x in letters],
                    _n_text(c),
                    _mean_ci(c),
                    c.get("wins", "—"),
                    _gate_text(c),
                    _promoted_text(c).replace("✔ ", ""),
                ]
                for c in conds
            ],
        )
        lines += [f"![condition means]({_means_name(i, s)})", ""]
    for line in _analysis_lines(s):
        lines += [_md(line), ""]
    if s["effects"]:
        title, paragraphs, headers, rows = _effects_section(s)
        lines += [f"{_md(title)}:", ""] + [x for t in paragraphs for x in (_md(t), "")]
        lines += _md_table(headers, rows)
        lines += [f"![effects]({_effects_name(i, s)})", ""]
    elif s.get("effects_note"):
        lines += [f"No effects: {_md(s['effects_note'])}", ""]
    if _failure_rows(s):
        lines += ["Failure rate by factor level (design points):", ""]
        lines += _md_table(FAILURE_HEADERS, _failure_rows(s))
    if s.get("flags"):
        lines += (
            ["Flags:", ""]
            + [
                f"- **{_md(FLAG_WHY.get(f['kind'], f['kind']))}**: {_md(f['detail'])}"
                for f in s["flags"]
            ]
            + [""]
        )
    if s["trace"]:
        lines += ["Decision trace:", ""] + [f"1. {_md(t)}" for t in s["trace"]] + [""]
    if s["verdicts"]:
        lines += _md_table(
            ["check", "verdict", "detail"],
            [
                [v.get("name", "?"), "pass" if v.get("pass") else "FAIL", v.get("detail") or ""]
                for v in s["verdicts"]
            ],
        )
    return lines


def _render_md(data: Mapping[str, Any], figs: Mapping[str, bytes]) -> str:
    lines = _md_head(data) + _md_campaign(data, figs)
    for i, s in enumerate(data["stages"], start=1):
        lines += _md_stage(i, s)
    lines += _md_rank_and_variance(data, figs) + _md_costs(data)
    if data.get("comparison"):
        lines += compare.md_section(data["comparison"], _md)
    if data.get("evaluation"):
        lines += evaluation_report.md_section(data["evaluation"])
    lines += [
        "---",
        "",
        f"Generated {_md(data['generated_at'])} by gateledger {_md(data['tool_version'])}.",
        "",
    ]
    return "\n".join(lines)


def _md_head(data: Mapping[str, Any]) -> list[str]:
    """Title, the audit's banner with its problems, what was decided, and the review flags."""
    camp, audit = data["campaign"], data["audit"]
    lines = [f"# Staged screening report: {_md(camp['name'])}", ""]
    lines += [f"**{_md(banner_title(audit))}**", ""]
    lines += [f"- {_md(p)}" for p in audit["problems"]]
    lines += [
        f"- failed check: {_md(c['name'])} {_md(c.get('detail') or '')}"
        for c in audit["checks"]
        if not c.get("ok")
    ]
    lines += [f"- {_md(c)}" for c in audit.get("caveats") or []]
    if data.get("verdict"):
        lines += ["", f"**What was decided:** {_md(data['verdict']['sentence'])}"]
    lines += ["", "## Review flags", ""]
    flags = data.get("flags") or []
    lines += (
        _md_table(["stage", "flag", "detail"], _flag_rows(flags)) if flags else ["None raised.", ""]
    )
    return lines


def _md_campaign(data: Mapping[str, Any], figs: Mapping[str, bytes]) -> list[str]:
    """The campaign's metric and factors, provenance, and the main-effects figure."""
    camp = data["campaign"]
    lines = [
        "",
        "## Campaign",
        "",
        f"Campaign {_md(camp['name'])}; metric {_md(camp['metric'])} (minimised).",
        "",
    ]
    factor_rows = []
    for letter in sorted(camp["factors"]):
        f = camp["factors"][letter] or {}
        lo, hi = ((f.get("levels") or []) + ["?", "?"])[:2]
        factor_rows.append([letter, f.get("key", "?"), lo, hi])
    if factor_rows:
        lines += _md_table(["factor", "config key", "low (-1)", "high (+1)"], factor_rows)
    if data.get("provenance"):
        lines += ["## Provenance", ""] + _md_table(
            ["what", "value"], provenance_rows(data["provenance"])
        )
    if "effects.png" in figs:
        lines += ["## Main effects by budget", "", "![main effects by budget](effects.png)", ""]
    return lines


def _md_rank_and_variance(data: Mapping[str, Any], figs: Mapping[str, bytes]) -> list[str]:
    """Rank stability between decided stages, and where the variance of the runs lies."""
    lines = ["## Rank stability", ""]
    if data["rank_stability"]:
        lines += _md_table(
            ["from", "to", "Spearman rho", "shared conditions", "flag"],
            [
                [r["from"], r["to"], fmt(r["rho"], 3), r["n"], r.get("flag") or ""]
                for r in data["rank_stability"]
            ],
        )
        if "ranks.png" in figs:
            lines += ["![ranks across stages](ranks.png)", ""]
    else:
        lines += ["Fewer than two decided stages.", ""]
    if _variance_rows(data):
        lines += ["## Variance decomposition", "", _md(VARIANCE_WHY), ""]
        lines += _md_table(["set", "ok runs", *VARIANCE_COMPONENTS], _variance_rows(data))
    return lines


def _md_costs(data: Mapping[str, Any]) -> list[str]:
    """GPU-hours: totals, by stage/host/status, what ran apart, checks, counterfactuals."""
    costs = _ordered_costs(data)
    lines = [
        "## Costs",
        "",
        f"The protocol's training GPU-hours "
        f"{_hours(costs['training_gpu_hours'])}, wall GPU-hours "
        f"{_hours(costs['wall_gpu_hours'])} over {costs['n_runs']} runs."
        + "".join(
            f" {title}: {_hours(part['training_gpu_hours'])} training GPU-hours "
            f"over {part['n_runs']} runs, not in these totals."
            for title, part in _apart(data)
        ),
        "",
    ]
    if saved_sentence(data):
        lines += [f"**{_md(saved_sentence(data))}**", ""]
    for key in ("by_stage", "by_host", "by_status"):
        if costs.get(key):
            lines += _md_table(
                [key.removeprefix("by_"), "runs", "training GPU-h", "wall GPU-h"],
                [
                    [k, r["n_runs"], _hours(r["training_gpu_hours"]), _hours(r["wall_gpu_hours"])]
                    for k, r in costs[key].items()
                ],
            )
    for title, part in _apart(data):
        lines += [f"{_md(title)} (apart from the protocol's totals):", ""]
        lines += _md_table(
            ["stage", "runs", "training GPU-h", "wall GPU-h"],
            [
                [k, r["n_runs"], _hours(r["training_gpu_hours"]), _hours(r["wall_gpu_hours"])]
                for k, r in part["by_stage"].items()
            ],
        )
    lines += _md_table(
        ["check", "verdict", "difference"],
        [
            [c["name"], "pass" if c["ok"] else "FAIL", f"{c.get('difference', 0.0):.3g}"]
            for c in costs["checks"]
        ],
    )
    lines += [f"- {_md(s)}" for s in _sentences(data["counterfactuals"])]
    lines += ["", "![executed and counterfactual GPU-hours](costs.png)", ""]
    return lines


# ----------------------------------------------------------------------------- API


def _render(data: Mapping[str, Any]) -> tuple[str, str, dict[str, bytes]]:
    validate_report_data(data)
    figs = _figures(data)
    return _render_html(data, figs), _render_md(data, figs), figs


def render_report(data: Mapping[str, Any]) -> tuple[str, str]:
    """(self-contained HTML, Markdown). The Markdown links PNGs by bare file name."""
    html_text, md_text, _ = _render(data)
    return html_text, md_text


def write_report(data: Mapping[str, Any], out_dir: Path) -> dict[str, Path]:
    """Write report.html, report.md and the PNGs next to them, each atomically.

    Returns `{"html": path, "md": path, "<name>.png": path, ...}`. Figures go first and the
    HTML last, so a reader never finds a page whose images are not there yet.
    """
    html_text, md_text, figs = _render(data)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[str, Path] = {}
    for name, png in figs.items():
        atomic_write(out_dir / name, png)
        paths[name] = out_dir / name
    atomic_write(out_dir / "report.md", md_text.encode("utf-8"))
    atomic_write(out_dir / "report.html", html_text.encode("utf-8"))
    return {"html": out_dir / "report.html", "md": out_dir / "report.md", **paths}
