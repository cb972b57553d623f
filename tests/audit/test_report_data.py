"""audit.report_data (one typed model for every surface) and audit.dvc_outputs (DVC metrics
and plots)."""

from __future__ import annotations

import csv
import json
from collections import Counter

import pytest

from audit.dvc_outputs import cost_rows, effects_rows, write_dvc_outputs
from audit.rederive import audit_store
from audit.report_data import build_report_data, headline
from audit.report_model import EffectRow, Effects, ReportData, StageView
from ledger.keys import generate_key
from ledger.store import Store
from stages.campaign import load_campaign
from stages.executors.sim import SimExecutor
from stages.pipeline import run_campaign
from stages.surface import SimParams


@pytest.fixture
def data(tmp_path, sim_campaign):
    store = Store.init(tmp_path / ".ledger", host="h1")
    camp = load_campaign(sim_campaign)
    run_campaign(
        store,
        camp,
        generate_key("k"),
        SimExecutor(SimParams.from_table(camp.sim, "ABCDE")),
        progress=False,
    )
    return build_report_data(store.root, audit_store(store), camp)


def test_report_data_and_headline_by_hand(data):
    assert [s.name for s in data.stages] == ["screen", "gate", "final"]
    final = data.stages[-1]
    best = next(c for c in final.conditions if c.gate_rank == 1)
    head = headline(data)
    assert head.best_condition == best.name and head.best_val_bpb == best.mean
    assert head.final_stage == "final" and head.audit_clean and head.problems == 0
    # 17 screen runs x 2 min, 5 gate candidates x 4 cells x 10 min, 3 final x 4 cells x 1 h
    spent = (17 * 120 + 20 * 600 + 12 * 3600) / 3600
    assert head.training_gpu_hours == pytest.approx(spent)
    # saved: the campaign had all 17 screen candidates gone through the gate (4 cells x
    # 10 min) and the final (4 cells x 1 h), the screen as spent, minus what it spent
    campaign_if_all = 17 * 120 / 3600 + 17 * 4 * (600 + 3600) / 3600
    assert head.gpu_hours_saved_vs_all == pytest.approx(campaign_if_all - spent)
    assert data.cost_report.campaign.saved_gpu_hours == head.gpu_hours_saved_vs_all
    assert [r.from_stage for r in data.rank_stability] == ["screen", "gate"]
    (signer,) = data.facts.signers
    assert signer.name == "k" and signer.signed == 6  # 3 manifests, 3 decisions
    assert head.caveats == "simulated, no_anchor, store_trust"


def _stage(effects: Effects, significant: list[str] = ()) -> StageView:
    return StageView(
        name="s",
        budget_s=1,
        manifest="m" * 64,
        decision=None,
        rule_json="{}",
        cells=[],
        n_runs=0,
        statuses={},
        conditions=[],
        effects=effects,
        significant=list(significant),
    )


def _with_stages(data: ReportData, *stages: StageView) -> ReportData:
    return data.model_copy(update={"stages": list(stages)})


def test_dvc_outputs_intervals_and_files(data, tmp_path):
    rows = effects_rows(data)
    screen = data.stages[0].effects
    assert screen.method == "lenth" and len(screen.effects) == 15  # mains + 2FIs
    assert len(rows) == sum(len(s.effects.effects) for s in data.stages if s.effects)
    # stages in protocol order, terms in design order: A..E, then AB, AC, ...
    assert [r["term"] for r in rows[:6]] == [
        f"{t} @ screen" for t in ("A", "B", "C", "D", "E", "AB")
    ]
    first = next(e for e in screen.effects if e.term == "A")
    assert rows[0]["low"] == pytest.approx(first.effect - screen.me)  # Lenth: ± ME
    gate = [r for r in rows if r["stage"] == "gate"]
    assert gate and all(r["post_selection"] and r["q"] == "" for r in gate)
    # OLS at df = 14: the interval is t(0.975, 14) = 2.145 (printed table) x se, not 1.96
    ols = Effects(method="ols", df_resid=14, effects=[EffectRow(term="A", effect=5.0, se=0.01)])
    (row,) = effects_rows(_with_stages(data, _stage(ols)))
    assert row["high"] - 5.0 == pytest.approx(2.145 * 0.01, abs=5e-6)
    lenth = Effects(method="lenth", me=2.0, effects=[EffectRow(term="A", effect=5.0)])
    (row,) = effects_rows(_with_stages(data, _stage(lenth, ["A"])))
    assert (row["low"], row["high"], row["significant"]) == (3.0, 7.0, True)
    unknown = Effects(method="ols", effects=[EffectRow(term="A", effect=5.0, se=0.01)])
    # no df, no interval (never a normal 1.96)
    assert effects_rows(_with_stages(data, _stage(unknown)))[0]["low"] == ""
    costs = cost_rows(data)
    # what was spent, stage by stage in protocol order, then the campaign totals apart
    assert [(r["kind"], r["label"]) for r in costs[:3]] == [
        ("executed", "screen"),
        ("executed", "gate"),
        ("executed", "final"),
    ]
    assert [r["label"] for r in costs[3:]] == [
        "the protocol (spent)",
        "every candidate of screen continued",
        "every candidate of gate continued",
    ]
    figures = {"effects.png": b"\x89PNG effects", "costs.png": b"\x89PNG costs"}
    write_dvc_outputs(data, figures, tmp_path / "m.json", tmp_path / "plots")
    assert json.loads((tmp_path / "m.json").read_text()) == headline(data).model_dump(mode="json")
    with open(tmp_path / "plots" / "effects.csv") as handle:
        assert len(list(csv.DictReader(handle))) == len(rows)
    assert (tmp_path / "plots" / "1-effects.png").read_bytes() == figures["effects.png"]
    assert (tmp_path / "plots" / "3-costs.png").read_bytes() == figures["costs.png"]
    assert not (tmp_path / "plots" / "2-ranks.png").exists()  # drawn only when there is one


def test_variance_rank_stability_and_flags(data):
    var = data.variance
    ok_runs = sum(s.statuses.get("ok", 0) for s in data.stages)
    assert var.campaign.n == ok_runs
    assert var.campaign.components[0] == "budget"  # three budgets: budget enters first
    assert sum(v for v in var.campaign.shares.values()) == pytest.approx(1.0)
    assert set(var.by_stage) == {"screen", "gate", "final"}
    for row in data.rank_stability:
        assert row.flag in (None, "negative", "weak", "too few shared conditions")
    gate_flags = [f for s in data.stages for f in s.flags]
    assert len(data.flags) >= len(gate_flags)
    screen = data.stages[0]
    assert screen.analysis.method == "lenth" and screen.analysis.points == 16
    assert data.stages[1].analysis.post_selection is True


class _FailingSim:
    """The simulator, except that two runs fail: `crash` is a crash the runner logged
    (summary with an error), and the first other run is a process that died without one."""

    def __init__(self, sim, crash: str):
        self.sim, self.crash, self.died = sim, crash, None
        self.name = sim.name

    def execute(self, tasks, on_start):
        from stages.executors.base import RunResult

        for result in self.sim.execute(tasks, on_start):
            task, lines = result.task, result.raw.decode().splitlines()
            if task.name == self.crash:
                summary = {
                    **json.loads(lines[-1]),
                    "status": "crashed",
                    "val_bpb": None,
                    "error": "OutOfMemoryError: CUDA out of memory",
                }
                lines = [x for x in lines[:-1] if json.loads(x)["type"] != "eval"]
                lines.append(json.dumps(summary))
            elif self.died in (None, task.name):
                self.died = task.name
                lines = lines[:-1]
            yield RunResult(task, ("\n".join(lines) + "\n").encode())


def test_failed_runs_are_listed_with_their_reason(tmp_path, sim_campaign):
    from stages.execute import run_stage
    from stages.plan import freeze_stage

    store = Store.init(tmp_path / ".ledger", host="h1")
    camp = load_campaign(sim_campaign)
    key = generate_key("k")
    freeze_stage(store, camp, "screen", key, for_simulation=True)
    sim = SimExecutor(SimParams.from_table(camp.sim, "ABCDE"))
    failing = _FailingSim(sim, "base")
    run_stage(store, camp, "screen", failing, key=key, progress=False)
    result = audit_store(store, allow_undecided=True)
    assert result.ok, result.problems
    (screen,) = build_report_data(store.root, result, camp).stages
    assert screen.statuses["crashed"] == 2
    expected = [
        {
            "condition": "base",
            "seed": 0,
            "host": "h1",
            "status": "crashed",
            "reason": "OutOfMemoryError: CUDA out of memory",
        },
        {
            "condition": failing.died,
            "seed": 0,
            "host": "h1",
            "status": "crashed",
            "reason": "no summary: the process died",
        },
    ]
    found = [f.model_dump() for f in screen.failures]
    assert found == sorted(expected, key=lambda f: f["condition"])


def test_provenance_counts_what_each_raw_log_header_says(tmp_path, sim_campaign):
    """The provenance table's counts, against the first line of every raw log read here."""
    store = Store.init(tmp_path / ".ledger", host="h1")
    camp = load_campaign(sim_campaign)
    run_campaign(
        store,
        camp,
        generate_key("k"),
        SimExecutor(SimParams.from_table(camp.sim, "ABCDE")),
        progress=False,
    )
    torch, devices, runners, hosts = Counter(), Counter(), Counter(), Counter()
    for oid, _file in store.iter_objects():  # loose or in the decided stages' packs
        try:
            obj = json.loads(store.get_bytes(oid))
        except ValueError:
            continue  # a raw log (JSON lines)
        if not (isinstance(obj, dict) and obj.get("kind") == "run"):
            continue
        body = obj["body"]
        hosts[body["host"]] += 1
        header = json.loads(store.get_bytes(body["raw_log"]).splitlines()[0])
        assert header["type"] == "header"
        torch[header.get("torch") or "none (simulated)"] += 1
        devices[header.get("device") or "?"] += 1
        runners[
            f"{header.get('runner') or 'builtin'} {header.get('runner_version') or ''}".strip()
        ] += 1
    prov = build_report_data(store.root, audit_store(store), camp).provenance
    assert sum(hosts.values()) == 17 + 20 + 12  # screen, gate and final runs
    assert (prov.torch, prov.devices, prov.log_runners, prov.hosts) == (
        dict(torch),
        dict(devices),
        dict(runners),
        dict(hosts),
    )
