"""campaigns/paper.toml previewed on the simulator: its GPU-hours against hand arithmetic, and
configured as the papers ran it (docs/reports.md), the papers' 169.2 and 144 / 192 / 432."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateledger.cli.main import cli

PAPER = Path(__file__).resolve().parents[2] / "campaigns" / "paper.toml"
# the two edits docs/reports.md gives, verbatim from the campaign file
AS_RUN = (
    (
        "runs = 16                    # default generator E=ABCD (minimum aberration)\n"
        'seeds = [0]\nhosts = ["a100", "l40s"]',
        "runs = 16                    # default generator E=ABCD (minimum aberration)\n"
        'seeds = [0]\nhosts = ["a100"]',
    ),
    ('rule = { top_k = 7, keep = ["base"], fdr = 0.05 }', "rule = { top_k = 7, fdr = 0.05 }"),
)


def costs_of(tmp_path: Path, campaign: Path) -> dict:
    store = str(tmp_path / f"{campaign.stem}.ledger")
    runner = CliRunner()
    for args in (
        ["init"],
        ["campaign", "--campaign", str(campaign), "--executor", "sim", "--demo-key"],
    ):
        res = runner.invoke(cli, ["--store", store, *args])
        assert res.exit_code == 0, res.output
    res = runner.invoke(cli, ["--store", store, "report", "costs", "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)


def by_gate(costs: dict) -> dict:
    return {cf["gate"]: cf for cf in costs["counterfactuals"]}


def test_paper_toml_spends_169_9(tmp_path):
    costs = costs_of(tmp_path, PAPER)
    minutes = 16 * 2 * 2 + 17 * 2 * 5 + 9 * 4 * 10 + 4 * 4 * 60 + 3 * 4 * 720
    assert costs["costs"]["training_gpu_hours"] == pytest.approx(minutes / 60)
    assert round(costs["costs"]["training_gpu_hours"], 1) == 169.9


def test_configured_as_the_papers_ran_it_it_spends_169_2(tmp_path):
    text = PAPER.read_text()
    for old, new in AS_RUN:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    as_run = tmp_path / "paper-as-run.toml"
    as_run.write_text(text)
    costs = costs_of(tmp_path, as_run)
    # 2-minute screen on one host, no base at 5 minutes: 32 + 160 minutes of screening
    minutes = 16 * 1 * 2 + 16 * 2 * 5 + 9 * 4 * 10 + 4 * 4 * 60 + 3 * 4 * 720
    assert costs["costs"]["training_gpu_hours"] == pytest.approx(minutes / 60)
    assert round(costs["costs"]["training_gpu_hours"], 1) == 169.2
    gates = by_gate(costs)
    # the staged-promotion paper's framing, at the 12-hour stage: 144 executed, all four
    # sixty-minute candidates 192, all nine ten-minute candidates 432
    assert gates["gate-10m"]["final_planned"] == pytest.approx(144.0)
    assert gates["gate-60m"]["final_if_all"] == pytest.approx(192.0)
    assert gates["gate-10m"]["final_if_all"] == pytest.approx(432.0)
    # the campaign had the 10-minute gate continued all nine: 60-minute stage 9 x 4 x 1 h,
    # 12-hour stage 432, the rest as spent
    spent = minutes / 60
    assert gates["gate-10m"]["campaign_if_all"] == pytest.approx(spent - 16 - 144 + 36 + 432)
    assert gates["gate-10m"]["saved_gpu_hours"] == pytest.approx(36 + 432 - 16 - 144)
    assert costs["text"]["saved"].startswith("Saved ")
