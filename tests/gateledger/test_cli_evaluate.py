"""`ledger evaluate` as a user types it: --json keys, --save/--rerun, --from-store, the report."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

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
from stages.surface import SimParams


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
    assert out["trials"] == 4 and out["format"] == "gateledger-evaluation" and out["version"] == 2
    for key in ("p_pick_best", "p_best_in_set", "p_top3", "regret", "gpu_hours", "gates"):
        assert key in out["protocol"]
    assert set(out["protocol"]["p_pick_best"]) == {"value", "mc", "data", "total"}
    assert [b["method"] for b in out["baselines"]] == ["random"]
    assert out["baselines"][0]["p_best_in_set"] is None  # random search ends with one pick
    assert out["comparisons"][0]["baseline"] == "random" and out["verdict"]
    assert {"best", "value", "ties", "flat"} <= set(out["truth"])
    assert out["inputs"]["campaign_sha256"] and out["versions"]["python"]
    assert out["inputs"]["campaign_path"] == str(sim_campaign.resolve())
    assert out["cost_model"] == "restart" and out["uncertainty"]["data"] == "planted"


def test_help_and_one_line_errors(tmp_path, sim_campaign):
    res = invoke(tmp_path, "--help")
    assert res.exit_code == 0 and "Examples:" in res.output and "--against" in res.output
    for args, message in (
        (["--against", "bohb"], "unknown method 'bohb'"),
        (["--min-budget", "soon"], "--min-budget: budget must be like"),
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
    assert report.evaluation.result.trials == 6 and report.data.evaluation is not None
    assert "6 trials" in report.data.evaluation.intro
    html_text, md_text = render(report)
    assert "What this protocol buys" in html_text and "successive-halving" in html_text
    assert "## What this protocol buys" in md_text and "--rerun" in md_text
    assert "Verdict: The protocol" in md_text
    assert audit_store(store).ok  # the saved forecast is not evidence: audit stays clean
    with open(path) as handle:
        saved = json.load(handle)
    saved["protocol"]["p_pick_best"]["value"] = 0.25
    with open(path, "w") as handle:
        json.dump(saved, handle)
    res = invoke(store.root, "--rerun", path)
    assert res.exit_code == 1 and "protocol.p_pick_best.value: saved 0.25" in res.output
    # a file of the first format: one line saying so, and the report notes it
    saved["version"] = 1
    with open(path, "w") as handle:
        json.dump(saved, handle)
    res = invoke(store.root, "--rerun", path)
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert "predates version 2" in res.output and "Traceback" not in res.output
    report = build_report(store.root, audit_store(store), camp)
    assert "predates version 2" in render(report)[1]


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
        names = [decision.body.conditions[c].name for c in decision.body.promoted]
        assert out["recorded"]["walk"]["promoted"][spec.name] == names
    assert out["inputs"]["from_store"] == str(Path(store.root).resolve())


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


CURVES = "condition,budget,val_bpb,cost_gpu_s,seed\n" + "".join(
    f"{name},{budget},{value},{budget},{seed}\n"
    for name, base in (("w", 1.0), ("x", 1.1), ("y", 1.2))
    for seed in (0, 1)
    for budget, value in ((60, base + 0.3 + 0.01 * seed), (600, base + 0.02 * seed))
)
REPLAYED = """
[campaign]
name = "replayed"

[conditions]
w = { learner = "svc" }
x = { learner = "knn" }
y = { learner = "tree" }

[[stages]]
name = "short"
budget = "1m"
add = ["w", "x", "y"]
rule = { top_k = 2 }

[[stages]]
name = "long"
budget = "10m"
from = "short"
rule = { top_k = 1 }
"""


def test_a_replay_only_campaign_needs_no_runner_and_reruns_anywhere(tmp_path, monkeypatch):
    """Config keys only the table knows (`learner`), no runner command; the rerun reads the
    recorded absolute paths from another folder, and --table names a copy."""
    work = tmp_path / "work"
    work.mkdir()
    (work / "c.toml").write_text(REPLAYED)
    (work / "curves.csv").write_text(CURVES)
    monkeypatch.chdir(work)
    res = invoke(
        tmp_path / "s",
        "--campaign",
        "c.toml",
        "--table",
        "curves.csv",
        "--trials",
        "5",
        "--bootstrap",
        "4",
        "--bootstrap-trials",
        "3",
        "--against",
        "random",
        "--out",
        "ev.json",
    )
    assert res.exit_code == 0, res.output
    assert "intervals (95%): Monte Carlo + data (bootstrap)" in res.output
    assert "verdict: " in res.output
    saved = json.loads((work / "ev.json").read_text())
    assert saved["inputs"]["table"] == str(work / "curves.csv")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    res = invoke(tmp_path / "s", "--rerun", str(work / "ev.json"))
    assert res.exit_code == 0 and "same numbers" in res.output, res.output
    shutil.copy(work / "curves.csv", elsewhere / "copy.csv")
    (work / "curves.csv").unlink()
    res = invoke(tmp_path / "s", "--rerun", str(work / "ev.json"), "--table", "copy.csv")
    assert res.exit_code == 0 and "same numbers" in res.output, res.output
    (elsewhere / "copy.csv").write_text(CURVES.replace("1.0,", "0.5,", 1))
    res = invoke(tmp_path / "s", "--rerun", str(work / "ev.json"), "--table", "copy.csv")
    assert res.exit_code == 2 and "differs from the replay table" in res.output


def test_a_flat_truth_and_its_ties_are_stated_in_the_text(tmp_path):
    demo = Path(__file__).resolve().parents[2] / "campaigns" / "demo.toml"
    res = invoke(tmp_path, "--campaign", str(demo), "--trials", "3", "--against", "random")
    assert res.exit_code == 0, res.output
    assert "all 18 candidates tie" in res.output and "warning: flat truth" in res.output
    assert "verdict: No verdict" in res.output


def test_the_progress_bar_counts_trials_per_phase(tmp_path, sim_campaign):
    res = invoke(tmp_path, "--campaign", str(sim_campaign), "--trials", "7", "--against", "random")
    assert res.exit_code == 0, res.output
    assert "protocol:   0%" in res.stderr and "random:   0%" in res.stderr
    assert res.stderr.count("0/7 ") == 2 and "/14" not in res.stderr and "/28" not in res.stderr
