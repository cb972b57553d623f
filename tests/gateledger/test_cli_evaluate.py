"""`ledger evaluate` as a user types it: --json keys, --save/--rerun, --from-store, the report."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from audit.rederive import audit_store
from audit.report import render
from audit.report_data import build_report
from gateledger.cli.main import cli
from ledger.keys import generate_key
from ledger.store import Store
from stages.campaign import load_campaign
from stages.executors.sim import SimExecutor
from stages.lookup import current_manifest, manifest_decision
from stages.pipeline import run_campaign
from stages.sim import SimParams


@pytest.fixture
def walked(tmp_path, sim_campaign):
    """The conftest campaign walked once through the real ledger on the simulator."""
    store = Store.init(tmp_path / ".ledger", host="h1")
    camp = load_campaign(sim_campaign)
    run_campaign(
        store,
        camp,
        generate_key("tester"),
        SimExecutor(SimParams.from_table(camp.sim, "ABCDE")),
        progress=False,
    )
    return store, camp


def invoke(store, *args):
    return CliRunner().invoke(cli, ["--store", str(store), "evaluate", *args])


def test_json_has_the_documented_keys(tmp_path, sim_campaign):
    res = invoke(
        tmp_path / "none",
        "--campaign",
        str(sim_campaign),
        "--trials",
        "4",
        "--against",
        "random",
        "--json",
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["trials"] == 4
    for key in ("p_best", "p_best_ci", "p_top3", "regret_mean", "gpu_hours_mean", "gates"):
        assert key in out["protocol"]
    assert [b["method"] for b in out["baselines"]] == ["random"]
    assert {"best", "value"} <= set(out["truth"])
    assert out["inputs"]["campaign_sha256"] and out["versions"]["python"]


def test_help_and_one_line_errors(tmp_path, sim_campaign):
    res = invoke(tmp_path, "--help")
    assert res.exit_code == 0 and "Examples:" in res.output and "--against" in res.output
    for args, message in (
        (["--against", "bohb"], "unknown method 'bohb'"),
        (["--executor", "replay"], "needs --table CURVES.csv or --from-store DIR"),
        (["--table", str(tmp_path / "nope.csv")], "replay table not found"),
    ):
        res = invoke(tmp_path, "--campaign", str(sim_campaign), "--trials", "1", *args)
        assert res.exit_code == 2, res.output
        assert message in res.output and "Traceback" not in res.output
        assert len(res.output.strip().splitlines()) == 1


def test_save_then_rerun_gives_the_same_numbers_and_the_report_shows_it(walked):
    store, camp = walked
    res = invoke(
        store.root,
        "--campaign",
        str(camp.path),
        "--trials",
        "6",
        "--seed",
        "4",
        "--against",
        "successive-halving,random",
        "--save",
        "--json",
    )
    assert res.exit_code == 0, res.output
    path = json.loads(res.output)["written"][0]
    assert path.startswith(str(store.root / "evaluations"))
    res = invoke(store.root, "--rerun", path)
    assert res.exit_code == 0 and "same numbers" in res.output, res.output
    report = build_report(store.root, audit_store(store), camp)
    assert report.evaluation["trials"] == 6 and report.data.evaluation is not None
    assert "6 trials" in report.data.evaluation.intro
    html_text, md_text = render(report)
    assert "What this protocol buys" in html_text and "successive-halving" in html_text
    assert "## What this protocol buys" in md_text and "--rerun" in md_text
    assert audit_store(store).ok  # the saved forecast is not evidence: audit stays clean
    with open(path) as handle:
        saved = json.load(handle)
    saved["protocol"]["p_best"] = -1.0
    with open(path, "w") as handle:
        json.dump(saved, handle)
    res = invoke(store.root, "--rerun", path)
    assert res.exit_code == 1 and "protocol" in res.output


def test_from_store_reproduces_the_recorded_decisions(walked):
    store, camp = walked
    res = invoke(
        store.root,
        "--campaign",
        str(camp.path),
        "--from-store",
        str(store.root),
        "--trials",
        "2",
        "--against",
        "none",
        "--json",
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    for spec in camp.stages:
        decision = manifest_decision(store, current_manifest(store, camp.name, spec.name).id)
        names = [decision.body["conditions"][c]["name"] for c in decision.body["promoted"]]
        assert out["recorded"]["promoted"][spec.name] == names
    assert out["inputs"]["from_store"] == str(store.root)


def test_from_store_with_another_rule_names_the_run_it_lacks(walked, tmp_path):
    store, camp = walked
    other = tmp_path / "other.toml"
    other.write_text(
        camp.text.replace('add = ["extra"]', 'add = ["extra", "newcomer"]').replace(
            "[conditions]", "[conditions]\nnewcomer = { depth = 5 }"
        )
    )
    res = invoke(
        store.root,
        "--campaign",
        str(other),
        "--from-store",
        str(store.root),
        "--trials",
        "1",
        "--against",
        "none",
    )
    assert res.exit_code == 2
    assert "no row for condition 'newcomer'" in res.output and "Traceback" not in res.output
