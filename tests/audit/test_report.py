"""Report rendering: escaping, embedded figures, the model's validation, atomic writes."""

from __future__ import annotations

import base64
import copy
import json
import os

import pytest
from pydantic import ValidationError

from audit import plots
from audit.costs import (
    CostRow,
    StagePlan,
    campaign_sentence,
    campaign_totals,
    cost_breakdown,
    counterfactual_sentences,
    counterfactuals,
    saved_sentence,
)
from audit.report import render, write_report
from audit.report_data import Report, breakdown
from audit.report_model import ReportData
from ledger.errors import LedgerError
from tests.conftest import umasked

M1, D1, M2 = "a" * 64, "b" * 64, "c" * 64
EVIL = "<script>alert(1)</script>"


def _runs():
    out = []
    for stage, budget, conds in (
        ("screen-2m", 120, ("c1", "c2", "c3")),
        ("gate-10m", 600, ("c1", "c2")),
    ):
        for c in conds:
            for seed in (0, 1):
                status = "diverged" if (stage, c, seed) == ("screen-2m", "c3", 1) else "ok"
                out.append(
                    CostRow(
                        stage=stage,
                        condition=c,
                        name=c,
                        host="h1",
                        status=status,
                        training_seconds=30.0 if status != "ok" else float(budget),
                        wall_seconds=budget + 10.0,
                    )
                )
    return out


def sample_data() -> dict:
    plan = [
        StagePlan(
            name="screen-2m",
            budget_s=120,
            cells=2,
            candidates=["c1", "c2", "c3"],
            promoted=["c1", "c2"],
            executed_gpu_hours=0.2,
        ),
        StagePlan(
            name="gate-10m",
            budget_s=600,
            cells=2,
            candidates=["c1", "c2"],
            promoted=["c1"],
            executed_gpu_hours=0.66,
        ),
    ]
    cond = [
        {
            "condition": "c1" * 32,
            "name": "a",
            "n": 2,
            "mean": 1.23456789,
            "sd": 0.01,
            "ci_low": 1.2,
            "ci_high": 1.27,
            "rank": 1,
            "wins": 2,
            "promoted": True,
        },
        {
            "condition": "c2" * 32,
            "name": EVIL,
            "n": 2,
            "mean": 1.3,
            "sd": 0.02,
            "ci_low": 1.25,
            "ci_high": 1.35,
            "rank": 2,
            "wins": 0,
            "promoted": True,
        },
        {
            "condition": "c3" * 32,
            "name": "b|c",
            "n": 1,
            "mean": None,
            "sd": None,
            "ci_low": None,
            "ci_high": None,
            "rank": None,
            "wins": 0,
            "promoted": False,
        },
    ]
    stage1 = {
        "name": "screen-2m",
        "budget_s": 120,
        "manifest": M1,
        "decision": D1,
        "frozen_at": "2025-01-01T00:00:00+00:00",
        "decided_at": "2025-01-01T01:00:00+00:00",
        "rule_json": json.dumps({"top_k": 2, "keep": [EVIL]}, indent=2),
        "keep": [EVIL],
        "cells": [{"seed": 0, "host": "h1"}, {"seed": 1, "host": "h1"}],
        "n_runs": 6,
        "statuses": {"ok": 5, "diverged": 1},
        "conditions": cond,
        "effects": {
            "method": "ols",
            "effects": [
                {"term": "A", "effect": -0.05, "se": 0.01, "p": 0.001, "q": 0.002},
                {"term": "B", "effect": 0.004, "se": 0.01, "p": 0.6, "q": 0.6},
            ],
            "pse": None,
            "me": None,
            "sme": None,
            "df_resid": 3,
        },
        "significant": ["A"],
        "promoted": ["a", EVIL],
        "trace": ["top_k=2 keeps a, " + EVIL],
        "verdicts": [{"name": "greedy-equivalent", "passed": False, "detail": "gap 0.02 > 0.01"}],
    }
    stage2 = {
        "name": "gate-10m",
        "budget_s": 600,
        "manifest": M2,
        "decision": None,
        "frozen_at": "2025-01-02T00:00:00+00:00",
        "decided_at": None,
        "rule_json": json.dumps({"top_k": 1}),
        "cells": [{"seed": 0, "host": "h1"}, {"seed": 1, "host": "h1"}],
        "n_runs": 4,
        "statuses": {"ok": 4},
        "conditions": [],
        "effects": None,
        "significant": [],
        "promoted": [],
        "trace": [],
        "verdicts": [],
    }
    costs = breakdown(cost_breakdown(_runs()), ["screen-2m", "gate-10m"]).model_dump()
    # the stages do not say what they continue: the next stage takes the promoted set
    cfs = counterfactuals(plan, costs["training_gpu_hours"], lineage=False)
    totals = campaign_totals(plan, costs["training_gpu_hours"], lineage=False)
    return {
        "campaign": {
            "name": "demo & co",
            "metric": "val_bpb",
            "factors": {
                "A": {"key": "total_batch_size", "levels": [4096, 16384]},
                "B": {"key": "depth", "levels": [2, 4]},
            },
        },
        "generated_at": "2025-01-03T00:00:00+00:00",
        "tool_version": "0.1.0",
        "audit": {
            "verdict": "problems",
            "problems": [{"text": f"run {EVIL}: missing", "consequences": [f"so: {EVIL}"]}],
            "n_problems": 2,
            "checks": [{"name": "journal", "ok": True, "detail": ""}],
            "caveats": [],
            "trust": "reviewer",
            "trusted": [{"key_id": "f" * 32, "name": f"lab {EVIL}"}],
            "anchors_given": ["e" * 64],
            "source": "bundle evidence.tar.gz",
        },
        "facts": {
            "runs": 10,
            "simulated_runs": 0,
            "signers": [],
            "demo_key": False,
            "anchors": 1,
            "trust": "reviewer",
            "notes": [],
        },
        "provenance": {
            "runner": {},
            "data_sha256": {},
            "torch": {},
            "devices": {},
            "log_runners": {},
            "hosts": {"h1": 10},
            "report_tools": {},
        },
        "verdict": {
            "sentence": f"{EVIL} was promoted",
            "stage": "screen-2m",
            "winner": None,
            "runner_up": None,
            "margin": None,
            "separated": None,
            "flags": [],
        },
        "stages": [stage1, stage2],
        "rank_stability": [{"from": "screen-2m", "to": "gate-10m", "rho": None, "n": 0}],
        "variance": None,
        "flags": [],
        "cost_report": {
            "campaign_name": "demo & co",
            "costs": costs,
            "baseline_costs": None,
            "unplanned_costs": None,
            "all_costs": costs,
            "counterfactuals": [cf.model_dump() for cf in cfs],
            "campaign": {
                "protocol_gpu_hours": totals.executed_gpu_hours,
                "planned_gpu_hours": totals.planned_gpu_hours,
                "root": totals.root,
                "saved_gpu_hours": totals.saved_gpu_hours,
            },
            "text": {
                "saved": saved_sentence(totals),
                "campaign": campaign_sentence(totals),
                "counterfactuals": [t for cf in cfs for t in counterfactual_sentences(cf)],
            },
        },
    }


def sample(data: dict | None = None) -> Report:
    return Report(ReportData.model_validate(data or sample_data()))


def render_report(data: dict | None = None) -> tuple[str, str]:
    return render(sample(data))


def test_html_contents_and_escaping():
    html_text, md = render_report()
    assert html_text.startswith("<!DOCTYPE html>")
    assert "Audit verdict: PROBLEMS" in html_text and 'class="banner problems"' in html_text
    assert "screen-2m" in html_text and "gate-10m" in html_text
    assert "<script>" not in html_text and "&lt;script&gt;" in html_text
    assert "demo &amp; co" in html_text
    assert html_text.count("data:image/png;base64,") >= 4
    assert "http://" not in html_text and "https://" not in html_text  # no external assets
    assert f'title="{M1}"' in html_text and M1[:12] in html_text
    assert "1.2346 [1.2000, 1.2700]" in html_text  # 4 decimals for bpb
    assert "continuing all 3 candidates of screen-2m to gate-10m" in html_text
    assert "not decided yet" in html_text
    # the page says what it was checked against: the reviewer's keys and anchors
    assert "Checked from bundle evidence.tar.gz against the reviewer&#39;s keys lab" in html_text
    assert f"[{'f' * 32}]" in html_text and "e" * 12 in html_text
    prose = "".join(md.split("```")[::2])  # fenced code blocks render literally
    assert "<script>" not in prose and "&lt;script&gt;" in prose
    assert "b\\|c" in md  # a pipe in a name does not break the table
    assert "![main effects by budget](effects.png)" in md
    assert "  - so: so: &lt;script&gt;" in md  # a consequence under its cause
    # a verdict over problems says whose word it is
    assert "<i>as the signed decisions say; the audit found the problems above" in html_text
    assert "_as the signed decisions say; the audit found the problems above" in md


def test_embedded_images_are_pngs():
    html_text, _ = render_report()
    b64 = html_text.split("data:image/png;base64,")[1].split('"')[0]
    assert base64.b64decode(b64).startswith(b"\x89PNG\r\n\x1a\n")


def test_clean_banner_is_green_and_a_demo_key_amber():
    data = sample_data()
    data["audit"].update(verdict="clean", problems=[], n_problems=0, checks=[])
    html_text, md = render_report(data)
    assert (
        'class="banner clean"' in html_text
        and "**Audit verdict: CLEAN — every check passed**" in md
    )
    data["audit"]["caveats"] = [{"kind": "demo_key", "text": "Signed with the demo key"}]
    html_text, _ = render_report(data)
    assert 'class="banner caveat"' in html_text and "Signed with the demo key" in html_text


def test_the_model_names_a_missing_or_mistyped_field():
    data = sample_data()
    del data["stages"][1]["manifest"]
    with pytest.raises(ValidationError, match=r"stages\.1\.manifest\s+Field required"):
        ReportData.model_validate(data)
    data = sample_data()
    data["audit"]["verdict"] = "fine"
    with pytest.raises(ValidationError, match=r"audit\.verdict"):
        ReportData.model_validate(data)
    data = sample_data()
    data["stages"][0]["surprise"] = 1  # unknown fields are errors, not silently dropped
    with pytest.raises(ValidationError, match=r"stages\.0\.surprise"):
        ReportData.model_validate(data)


def test_identical_data_identical_output():
    data = sample_data()
    assert render_report(data) == render_report(copy.deepcopy(data))


def test_write_report_atomic(tmp_path, monkeypatch):
    out = tmp_path / "rep"
    paths = write_report(sample(), out)
    assert paths["html"] == out / "report.html" and paths["md"].read_text().startswith("# ")
    md = paths["md"].read_text()
    for name in ("effects.png", "costs.png", "means-01-screen-2m.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG")
    for key, path in paths.items():
        assert path.exists(), key
        if key.endswith(".png"):
            assert f"]({key})" in md
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]
    assert paths["html"].stat().st_mode & 0o777 == umasked(0o644)
    # a failure mid-write leaves the previous report whole and no temp files behind
    before = paths["html"].read_bytes()

    def boom(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    data = sample_data()
    data["campaign"]["name"] = "changed"
    with pytest.raises(LedgerError, match="disk full"):  # one clear line, not a traceback
        write_report(sample(data), out)
    assert paths["html"].read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.startswith(".tmp-")]


def test_plots_deterministic_and_robust():
    data = sample().data
    assert plots.effects_plot(data.stages) == plots.effects_plot(data.stages)
    assert plots.means_plot(data.stages[0]).startswith(b"\x89PNG")
    assert plots.effects_plot([data.stages[1]]).startswith(b"\x89PNG")  # nothing estimated
    assert plots.costs_plot(data.cost_report.costs, []).startswith(b"\x89PNG")
    from audit.report_model import EffectRow, Effects

    lenth = Effects(method="lenth", effects=[EffectRow(term="A", effect=0.1)], me=0.05)
    assert plots.effect_half_width(lenth, lenth.effects[0]) == 0.05
    ols = data.stages[0].effects
    assert plots.effect_half_width(ols, ols.effects[0]) == pytest.approx(3.182446 * 0.01, rel=1e-5)


def test_terms_in_design_order_and_long_titles_wrap():
    from audit.report_model import EffectRow, Effects

    stage = sample().data.stages[0]
    terms = ["AB", "B", "ABC", "A", "C", "BC"]
    effects = Effects(
        method="lenth", me=0.01, effects=[EffectRow(term=t, effect=0.01) for t in terms]
    )
    assert plots.effect_terms([stage.model_copy(update={"effects": effects})], main_only=False) == [
        "A",
        "B",
        "C",
        "AB",
        "BC",
        "ABC",
    ]
    import matplotlib.style
    from matplotlib.figure import Figure

    with matplotlib.style.context(["default", plots.STYLE]):
        ax = Figure(figsize=(4, 3)).add_subplot()
        plots._title(ax, "Main effects by budget, 95% t intervals (solid = significant)", 4)
        lines = ax.get_title().splitlines()
    assert len(lines) == 2 and all(len(line) <= 52 for line in lines)


def test_two_decided_stages_get_rank_plot(tmp_path):
    data = sample_data()
    second = data["stages"][1]
    second.update(
        decision="d" * 64,
        conditions=[dict(c) for c in data["stages"][0]["conditions"][:2]],
        promoted=["a"],
    )
    second["conditions"][0]["promoted"] = True
    second["conditions"][1]["promoted"] = False
    data["rank_stability"] = [{"from": "screen-2m", "to": "gate-10m", "rho": 1.0, "n": 2}]
    paths = write_report(sample(data), tmp_path)
    assert paths["ranks.png"].read_bytes().startswith(b"\x89PNG")
    assert "![ranks across stages](ranks.png)" in paths["md"].read_text()
    html_text = paths["html"].read_text()
    # by_stage follows protocol order, not alphabetical order
    costs = html_text.split("<h2>Costs</h2>")[1]
    assert costs.index("screen-2m") < costs.index("gate-10m")


def test_post_selection_aliases_flags_and_variance_are_shown():
    from audit.report import POST_SELECTION_WHY

    data = sample_data()
    eff = data["stages"][0]["effects"]
    eff.update(
        post_selection=True,
        t_df=3,
        dropped=["C"],
        dropped_reasons={"C": "factor C is constant in these rows"},
        notes=["1 of 6 design-point runs failed and are not in the model"],
    )
    eff["effects"][0].update(q=None, aliases=["-BC"], ci_low=-0.08, ci_high=-0.02)
    data["stages"][0]["flags"] = [
        {"stage": "screen-2m", "kind": "host_reverses_order", "detail": "on host h2, b beats a"}
    ]
    data["flags"] = [
        {"stage": "screen-2m", "kind": "host_reverses_order", "detail": "on host h2, b beats a"}
    ]
    data["variance"] = {
        "campaign": {
            "n": 5,
            "components": ["budget", "condition", "host"],
            "shares": {"budget": 0.5, "condition": 0.3, "host": 0.1, "seed": 0.0, "residual": 0.1},
        },
        "by_stage": {"screen-2m": None},
    }
    data["rank_stability"][0]["flag"] = "too few shared conditions"
    html_text, md = render_report(data)
    assert _text(POST_SELECTION_WHY) in html_text and "Effects (ols, post-selection)" in html_text
    assert "-BC" in html_text and "[-0.0800, -0.0200]" in html_text  # chain and t interval
    assert "C (factor C is constant in these rows)" in html_text
    assert "a host reverses the gate&#39;s order" in html_text and "on host h2, b beats a" in md
    assert "<h2>Variance decomposition</h2>" in html_text and "## Variance decomposition" in md
    assert "0.500" in html_text and "too few shared conditions" in html_text
    assert "1 of 6 design-point runs failed" in md


def _text(s: str) -> str:
    import html

    return html.escape(s, quote=True).replace("&#x27;", "&#39;")
