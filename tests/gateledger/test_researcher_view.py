"""The researcher's and the reviewer's view through the CLI, on a sim campaign: the runs
table, live progress, protocol vs baselines, reports that say what they are, per-store keys
and one-line errors. Expected numbers are hand counts of the campaign in tests/conftest.py:

* screen: 16 design points + the kept anchor `base`, 1 cell, 2 min  -> 17 runs
* gate:   top 3 + `base` + the added `extra`, 4 cells, 10 min        -> 20 runs
* final:  the 3 promoted at the gate, 4 cells, 60 min               -> 12 runs
"""

from __future__ import annotations

import csv
import io
import json

import click
import pytest
from click.testing import CliRunner

from gateledger.cli.main import cli
from tests.conftest import SIM_CAMPAIGN

SCREEN_H, GATE_H, FINAL_H = 17 * 120 / 3600, 20 * 600 / 3600, 12 * 3600 / 3600
PROTOCOL_H = SCREEN_H + GATE_H + FINAL_H  # 15.9
GREEDY_H = 6 * 4 * 600 / 3600  # start + one flip per factor, 1 condition x 4 cells x 10 min
RANDOM_H = 3 * 4 * 600 / 3600  # --match 2.0 buys floor(2.0 / (4 x 10 min)) = 3 conditions


def invoke(store, *args, env=None):
    return CliRunner().invoke(cli, ["--store", str(store), *args], env=env)


def ok(result):
    assert result.exit_code == 0, result.output
    return result


@pytest.fixture(scope="module")
def walked(tmp_path_factory):
    """A sim campaign walked through every gate, plus a greedy and a random baseline."""
    root = tmp_path_factory.mktemp("walked")
    campaign = root / "campaign.toml"
    campaign.write_text(SIM_CAMPAIGN)
    store = root / ".ledger"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LEDGER_KEY_DIR", str(root / "keys"))
        ok(invoke(store, "init"))
        ok(invoke(store, "keygen", "--name", "me"))
        ok(invoke(store, "campaign", "--campaign", str(campaign), "--executor", "sim", "--json"))
        ok(
            invoke(
                store,
                "baseline",
                "greedy",
                "--campaign",
                str(campaign),
                "--budget",
                "10m",
                "--seeds",
                "0,1",
                "--hosts",
                "h1,h2",
                "--executor",
                "sim",
                "--json",
            )
        )
        ok(
            invoke(
                store,
                "baseline",
                "random",
                "--campaign",
                str(campaign),
                "--budget",
                "10m",
                "--seeds",
                "0,1",
                "--hosts",
                "h1,h2",
                "--match",
                "2.0",
                "--executor",
                "sim",
                "--json",
            )
        )
    return store, campaign


# ----------------------------------------------------------------------------- ledger runs


def test_runs_csv_has_a_row_per_run_with_names_levels_and_gpu_hours(walked):
    store, _ = walked
    out = ok(invoke(store, "runs", "--kind", "gate", "--csv")).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 17 + 20 + 12
    assert [sum(1 for r in rows if r["stage"] == s) for s in ("screen", "gate", "final")] == [
        17,
        20,
        12,
    ]
    assert sum(float(r["gpu_hours"]) for r in rows) == pytest.approx(PROTOCOL_H)
    # design point `a`: A (total_batch_size) high, every other factor low
    a = next(r for r in rows if r["condition"] == "a")
    assert (
        a["total_batch_size"],
        a["depth"],
        a["aspect_ratio"],
        a["matrix_lr"],
        a["warmdown_ratio"],
    ) == ("4096", "2", "32", "0.01", "0.2")
    base = next(r for r in rows if r["condition"] == "base")
    assert (base["depth"], base["total_batch_size"]) == ("3", "2048")  # the [base] config
    assert len(a["run"]) == 64 and len(a["condition_id"]) == 64
    assert {r["runner"] for r in rows} == {"sim"} and {r["status"] for r in rows} == {"ok"}
    assert float(a["training_seconds"]) == 120.0 and float(a["gpu_hours"]) == pytest.approx(
        120 / 3600
    )


def test_runs_filters_json_and_table(walked):
    store, _ = walked
    gate_ok = json.loads(
        ok(invoke(store, "runs", "--stage", "gate", "--status", "ok", "--json")).stdout
    )
    assert len(gate_ok["rows"]) == 20 and gate_ok["metric"] == "val_bpb"
    assert gate_ok["factors"] == {
        "total_batch_size": "A",
        "depth": "B",
        "aspect_ratio": "C",
        "matrix_lr": "D",
        "warmdown_ratio": "E",
    }
    base = json.loads(
        ok(invoke(store, "runs", "--condition", "base", "--kind", "gate", "--json")).stdout
    )["rows"]
    assert [r["stage"] for r in base].count("screen") == 1 and len(base) == 1 + 4 + 4
    prefix = base[0]["condition_id"][:8]
    by_id = json.loads(
        ok(invoke(store, "runs", "--condition", prefix, "--kind", "gate", "--json")).stdout
    )["rows"]
    assert len(by_id) == 9
    baselines = json.loads(ok(invoke(store, "runs", "--kind", "baseline", "--json")).stdout)
    assert len(baselines["rows"]) == 6 * 4 + 3 * 4
    table = ok(invoke(store, "runs", "--stage", "final")).stdout.splitlines()
    assert table[0] == (
        "factors: A total_batch_size, B depth, C aspect_ratio, D matrix_lr, E warmdown_ratio"
    )
    # factors by letter, no condition id, no column the simulator leaves empty (MFU)
    assert table[1].split() == [
        "run", "stage", "condition", "A", "B", "C", "D", "E", "seed", "host", "status",
        "val_bpb", "train_s", "tok/s", "GPU-h",
    ]  # fmt: skip
    assert max(len(line) for line in table) <= 120
    assert len(table) == 3 + 12 + 1 and table[-1].startswith("(12 runs; 12.0 training GPU-hours")
    assert "12 simulated" in table[-1]
    bad = invoke(store, "runs", "--stage", "nope")
    assert bad.exit_code == 2 and "no stage 'nope'" in bad.stderr


def test_runs_frame_is_the_csv_table(walked):
    from audit.runs_table import costs_frame, decisions_frame, runs_frame
    from ledger.store import Store

    store = Store.open(walked[0])
    frame = runs_frame(store, kinds=("gate",))
    assert len(frame) == 49 and frame.gpu_hours.sum() == pytest.approx(PROTOCOL_H)
    means = frame[frame.stage == "final"].groupby("condition").val_bpb.count()
    assert sorted(means.tolist()) == [4, 4, 4]
    decisions = decisions_frame(store)
    assert list(decisions[decisions.kind == "gate"].stage) == ["screen", "gate", "final"]
    costs = costs_frame(store).set_index("stage")
    assert costs.loc["gate", "gpu_hours"] == pytest.approx(GATE_H)
    assert costs[costs.kind == "baseline"].gpu_hours.sum() == pytest.approx(GREEDY_H + RANDOM_H)


# ----------------------------------------------------------------------------- compare, costs


def test_compare_protocol_and_baselines(walked, tmp_path):
    store, campaign = walked
    plot = tmp_path / "compare.png"
    out = json.loads(
        ok(
            invoke(store, "compare", "--campaign", str(campaign), "--plot", str(plot), "--json")
        ).stdout
    )
    rows = {r["kind"]: r for r in out["rows"]}
    assert [r["kind"] for r in out["rows"]] == ["protocol", "greedy", "random"]
    assert rows["protocol"]["gpu_hours"] == pytest.approx(PROTOCOL_H)
    assert rows["protocol"]["budget_s"] == 3600 and rows["protocol"]["n"] == 4
    assert rows["greedy"]["gpu_hours"] == pytest.approx(GREEDY_H)
    assert rows["greedy"]["share"] == pytest.approx(GREEDY_H / PROTOCOL_H)
    assert rows["random"]["gpu_hours"] == pytest.approx(RANDOM_H)
    assert rows["random"]["n_runs"] == 12 and rows["greedy"]["n_runs"] == 24
    for row in out["rows"]:
        assert row["ci_low"] < row["mean"] < row["ci_high"]
    # the protocol ran a 10-minute gate too: its own means there, like for like
    assert rows["greedy"]["same_budget"]["stage"] == "gate"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = ok(invoke(store, "compare")).stdout
    assert "greedy search (10m)" in text and "random search (10m, seed 0)" in text


def test_baselines_stay_out_of_the_protocols_costs(walked, tmp_path):
    store, campaign = walked
    costs = json.loads(ok(invoke(store, "report", "costs", "--json")).stdout)
    assert costs["costs"]["training_gpu_hours"] == pytest.approx(PROTOCOL_H)
    assert costs["costs"]["n_runs"] == 49
    assert costs["baseline_costs"]["training_gpu_hours"] == pytest.approx(GREEDY_H + RANDOM_H)
    assert costs["all_costs"]["training_gpu_hours"] == pytest.approx(
        PROTOCOL_H + GREEDY_H + RANDOM_H
    )
    assert costs["unplanned_costs"] is None
    text = ok(invoke(store, "report", "costs")).stdout
    lines = text.splitlines()
    order = [
        next(i for i, ln in enumerate(lines) if ln.strip().startswith(s + " "))
        for s in ("screen", "gate", "final")
    ]
    assert order == sorted(order)  # protocol order, not alphabetical (final, gate, screen)
    # had all 17 screen candidates gone on: the screen as spent (17 x 2 min), then 17 x 4
    # cells x (10 min + 1 h) = 79.33: the campaign 79.9 against the protocol's 15.9
    assert "Saved 64.0 GPU-hours" in text and "would have cost the campaign 79.9" in text
    # the papers' framing, at the final stage alone: 17 x 4 cells x 1 h = 68
    assert "to final would have spent 68.0 GPU-hours there" in text
    assert costs["campaign"]["saved_gpu_hours"] == pytest.approx(
        17 * 120 / 3600 + 17 * 4 * 7 / 6 - PROTOCOL_H
    )
    assert costs["text"]["saved"].startswith("Saved 64.0 GPU-hours")
    # numbers only outside `text`
    assert not [k for k, v in costs["campaign"].items() if isinstance(v, str) and " " in v]
    # the by-condition table reads by name, not by hex id
    start = lines.index("by condition (by name):")
    names = [ln.split()[0] for ln in lines[start + 3 :] if ln.startswith("  ")][:17]
    assert names == sorted(names)
    assert "baselines (not in the totals above): 6.00 training GPU-hours over 36 runs" in text
    out = tmp_path / "report"
    metrics = tmp_path / "metrics.json"
    ok(
        invoke(
            store,
            "report",
            "html",
            "--campaign",
            str(campaign),
            "--out",
            str(out),
            "--metrics",
            str(metrics),
        )
    )
    headline = json.loads(metrics.read_text())
    assert headline["training_gpu_hours"] == pytest.approx(PROTOCOL_H)
    assert headline["baseline_gpu_hours"] == pytest.approx(GREEDY_H + RANDOM_H)
    page = (out / "report.html").read_text()
    assert "Protocol vs baselines" in page and "not in these totals" in page


# ----------------------------------------------------------------------------- reports


def test_html_of_a_sim_campaign_says_simulated_and_what_was_decided(walked, tmp_path):
    store, campaign = walked
    out, metrics = tmp_path / "report", tmp_path / "metrics.json"
    ok(
        invoke(
            store,
            "report",
            "html",
            "--campaign",
            str(campaign),
            "--out",
            str(out),
            "--metrics",
            str(metrics),
        )
    )
    page = (out / "report.html").read_text()
    banner = page[page.index('<div class="banner') : page.index("</div>")]
    assert "CLEAN (simulated runs)" in banner and 'class="banner caveat"' in banner
    assert "All 85 runs are simulated" in banner  # 49 protocol + 24 greedy + 12 random
    assert "No anchor was made" in banner and "store-asserted" in banner
    assert "demo key" not in banner
    verdict = page[page.index('<p class="verdict">') :]
    verdict = verdict[: verdict.index("</p>")]
    assert "promoted at the final gate final (1h)" in verdict and "Simulated campaign" in verdict
    assert "Provenance" in page and "none (simulated) (85 runs)" in page
    assert "kept (anchor)" in page  # `base` is carried by `keep` at the screen
    headline = json.loads(metrics.read_text())
    assert (
        headline["simulated_runs"],
        headline["runs"],
        headline["demo_key"],
        headline["anchors"],
        headline["trust"],
    ) == (85, 85, False, 0, "store")
    md = (out / "report.md").read_text()
    assert "All 85 runs are simulated" in md and "**What was decided:**" in md


def _condition(name: str, mean: float, lo: float, hi: float, rank: int, **extra):
    import hashlib

    from audit.report_model import ConditionView

    return ConditionView(
        condition=hashlib.sha256(name.encode()).hexdigest(),
        name=name,
        n=2,
        mean=mean,
        ci_low=lo,
        ci_high=hi,
        rank=rank,
        gate_rank=rank,
        promoted=extra.pop("promoted", True),
        **extra,
    )


def _stage(name: str, budget: float, conditions, *, keep=(), parent=None):
    from audit.report_model import StageView

    return StageView(
        name=name,
        from_stage=parent,
        budget_s=budget,
        manifest="m" * 64,
        decision="d" * 64,
        rule_json="{}",
        keep=list(keep),
        cells=[],
        n_runs=4,
        statuses={"ok": 4},
        conditions=conditions,
    )


def test_verdict_paragraph_against_hand_numbers():
    from audit.report_model import Flag
    from audit.summary import verdict

    stage = _stage(
        "confirm",
        40,
        [
            _condition("base", 2.0900, 2.0800, 2.1000, 2),
            _condition("bce", 2.0875, 2.0200, 2.1550, 1),
        ],
    )
    flags = [
        Flag(
            stage="gate",
            kind="negative_rank_correlation",
            detail="Spearman rho -0.800 over 4 shared conditions between screen and gate",
        ),
        Flag(stage="confirm", kind="winner_overlaps_runner_up", detail="..."),
        Flag(stage="gate", kind="host_reverses_order", detail="..."),
    ]
    out = verdict([stage], flags, "val_bpb")
    assert out.winner.name == "bce" and out.runner_up.name == "base"
    assert out.margin == pytest.approx(0.0025) and out.separated is False
    assert out.sentence.startswith(
        "bce was promoted at the final gate confirm (40s): mean val_bpb 2.0875 [2.0200, 2.1550] "
        "over 2 run(s), ahead of base (2.0900 [2.0800, 2.1000]) by 0.0025; the 95% intervals "
        "overlap: not separated."
    )
    assert "ranks reverse going into gate (Spearman rho -0.800" in out.sentence
    assert "a host reverses the gate's order at 1 gate (gate)" in out.sentence
    apart = _stage(
        "confirm",
        40,
        [
            _condition("base", 2.0900, 2.0800, 2.1000, 2),
            _condition("bce", 2.0000, 2.0100, 2.0200, 1),
        ],
    )
    out = verdict([apart], [], "val_bpb")
    assert out.separated is True and "do not overlap: separated" in out.sentence


def test_the_verdict_names_the_competitor_not_the_always_kept_anchor():
    """At the final gate only the winner and the anchor ran; the real competitor was cut
    at the gate before by `within`, where its interval overlapped the winner's."""
    from audit.summary import verdict

    gate = _stage(
        "gate",
        20,
        [
            _condition("bce", 2.1000, 2.0900, 2.1100, 1),
            _condition("ab", 2.1050, 2.0950, 2.1150, 2, promoted=False),
            _condition("base", 2.2000, 2.1900, 2.2100, 3, promoted_by="keep"),
        ],
        keep=["base"],
    )
    final = _stage(
        "confirm",
        40,
        [
            _condition("bce", 2.0500, 2.0450, 2.0550, 1),
            _condition("base", 2.1500, 2.1450, 2.1550, 2, promoted_by="keep"),
        ],
        keep=["base"],
        parent="gate",
    )
    out = verdict([gate, final], [], "val_bpb")
    assert out.runner_up.name == "ab" and out.runner_up.stage == "gate"
    assert out.margin == pytest.approx(0.0050) and out.separated is False
    assert out.anchor.name == "base"
    assert (
        "its closest competitor, ab, was cut at gate (20s), where it measured 2.1050 "
        "[2.0950, 2.1150] against bce's 2.1000 [2.0900, 2.1100] by 0.0050; the 95% "
        "intervals overlap: not separated"
    ) in out.sentence
    assert "the always-kept anchor base measured 2.1500 [2.1450, 2.1550]" in out.sentence
    # against the anchor alone the intervals are apart: that is not what the verdict says
    assert "separated." not in out.sentence.replace("not separated", "")


def test_demo_key_and_anchor_show_in_report(tmp_path, sim_campaign):
    store = tmp_path / ".ledger"
    ok(invoke(store, "init"))
    ok(
        invoke(
            store,
            "campaign",
            "--campaign",
            str(sim_campaign),
            "--executor",
            "sim",
            "--until",
            "screen",
            "--demo-key",
            "--json",
        )
    )
    out, metrics = tmp_path / "report", tmp_path / "m.json"
    ok(invoke(store, "report", "html", "--out", str(out), "--metrics", str(metrics)))
    assert json.loads(metrics.read_text())["demo_key"] is True
    assert (
        "Signed with the demo key DEMO-KEY-not-for-real-campaigns"
        in (out / "report.html").read_text()
    )
    ok(invoke(store, "anchor"))
    ok(invoke(store, "report", "html", "--out", str(out), "--metrics", str(metrics)))
    assert json.loads(metrics.read_text())["anchors"] == 1
    assert "No anchor was made" not in (out / "report.html").read_text()


# ----------------------------------------------------------------------------- status --watch


def test_status_watch_stops_when_the_campaign_is_decided(walked):
    store, campaign = walked
    res = ok(invoke(store, "status", "--watch", "--interval", "0.1", "--campaign", str(campaign)))
    lines = res.stdout.splitlines()
    assert lines[-1] == "finished"
    screen = next(ln for ln in lines if ln.startswith("screen "))
    assert "17/17" in screen and "done" in screen
    # the campaign's baselines are shown after its stages: 49 protocol + 36 baseline runs
    assert any(ln.startswith("total: 85 of 85 declared runs recorded") for ln in lines)
    frames = [
        json.loads(ln)
        for ln in ok(
            invoke(store, "status", "--watch", "--json", "--campaign", str(campaign))
        ).stdout.splitlines()
    ]
    assert len(frames) == 1 and frames[0]["done"] is True
    assert [(s["stage"], s["recorded"], s["left"]) for s in frames[0]["stages"]][:3] == [
        ("screen", 17, 0),
        ("gate", 20, 0),
        ("final", 12, 0),
    ]
    assert {s["kind"] for s in frames[0]["stages"][3:]} == {"baseline"}


def test_status_watch_sees_a_run_in_flight_and_the_stage_finish(tmp_path, sim_campaign, capsys):
    import gateledger as gl
    from gateledger.cli.status_watch import show_frames
    from ledger.ingest import ingest
    from stages.claims import RunClaims
    from stages.execute import manifest_tasks
    from stages.lookup import current_manifest

    store_dir = tmp_path / ".ledger"
    ok(invoke(store_dir, "--host", "h1", "init"))
    ok(invoke(store_dir, "keygen", "--name", "me"))
    ok(
        invoke(
            store_dir,
            "--host",
            "h1",
            "freeze",
            "screen",
            "--campaign",
            str(sim_campaign),
            "--sim-only",
        )
    )
    store, camp = gl.open_store(store_dir, host="h1"), gl.load_campaign(sim_campaign)
    manifest = current_manifest(store, "t", "screen")
    # a `ledger run` (this process) claims the first run and journals its start
    key = gl.signing_key("me")
    task = manifest_tasks(manifest.id, manifest.body)[0]
    claims = RunClaims(store, manifest.id, key=key, max_attempts=1)
    assert claims.start(task)
    res = ok(
        invoke(
            store_dir,
            "status",
            "--watch",
            "--count",
            "1",
            "--stage",
            "screen",
            "--campaign",
            str(sim_campaign),
        )
    )
    screen = next(ln for ln in res.stdout.splitlines() if ln.startswith("screen "))
    assert screen.split()[2:5] == ["0/17", "17", "1"]  # runs, left, running
    assert "running now: screen " in res.stdout and "finished" not in res.stdout
    # between two redraws a `ledger run` (here: the sim executor) records the whole stage
    sleeps = []

    def run_meanwhile(seconds):
        sleeps.append(seconds)
        (result,) = gl.build_executor(store, camp, "sim").execute([task], lambda _t: True)
        ingest(
            store,
            result.raw,
            manifest=manifest.id,
            condition=task.condition,
            seed=task.seed,
            host=task.host,
            key=key,
        )  # the run in flight ends on record ...
        claims.release(task.key)
        gl.run(store, camp, "screen", executor="sim")  # ... and another records the rest

    capsys.readouterr()
    frames = show_frames(
        gl.watch(store, camp, stage="screen", interval=0.5, count=5, sleep=run_meanwhile),
        store.root,
        interval=0.5,
        stage="screen",
        as_json=True,
        clear=False,
    )
    shown = [json.loads(ln) for ln in capsys.readouterr().out.splitlines()]
    assert frames == 2 and sleeps == [0.5] and [f["done"] for f in shown] == [False, True]
    screen = shown[1]["stages"][0]
    assert (screen["recorded"], screen["left"], screen["running"]) == (17, 0, [])
    assert screen["gpu_hours"] == pytest.approx(SCREEN_H)


def test_eta_is_runs_left_times_pace_over_runs_in_flight():
    from stages.progress import StageProgress

    row = StageProgress(
        "gate",
        "t",
        "gate",
        600.0,
        "m" * 64,
        declared=20,
        recorded=8,
        running=[{"run": "x"}, {"run": "y"}],
        mean_run_s=60.0,
    )
    assert row.left == 12 and row.eta_s == pytest.approx(12 * 60 / 2) and not row.finished
    assert StageProgress("s", "t", "gate", 1.0, declared=3, recorded=3).eta_s == 0.0


# ----------------------------------------------------------------------------- keys


def test_two_stores_with_one_key_each_freeze_without_key(tmp_path, monkeypatch, sim_campaign):
    from ledger.store import Store

    monkeypatch.delenv("LEDGER_KEY_DIR", raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    ids = {}
    for store, name in ((tmp_path / "one", "alice"), (tmp_path / "two", "bob")):
        ok(invoke(store, "init"))
        ids[name] = json.loads(ok(invoke(store, "keygen", "--name", name, "--json")).stdout)[
            "key_id"
        ]
    keys = json.loads(ok(invoke(tmp_path / "one", "keys", "--json")).stdout)
    assert sorted(keys["private_keys"]) == ["alice", "bob"] and keys["default"] == "alice"
    assert keys["key_dir"].startswith(str(tmp_path / "home"))
    for store, name in ((tmp_path / "one", "alice"), (tmp_path / "two", "bob")):
        res = ok(
            invoke(
                store, "freeze", "screen", "--campaign", str(sim_campaign), "--sim-only", "--json"
            )
        )
        assert json.loads(res.stdout)["freezer"] == ids[name]
    # `keys --default` changes a store's signer; --key still overrides it
    ok(invoke(tmp_path / "one", "keys", "--default", "bob"))
    anchor = json.loads(ok(invoke(tmp_path / "one", "anchor", "--json")).stdout)
    assert anchor["signature"]["key_id"] == ids["bob"]
    anchor = json.loads(ok(invoke(tmp_path / "one", "anchor", "--key", "alice", "--json")).stdout)
    assert anchor["signature"]["key_id"] == ids["alice"]
    assert Store.open(tmp_path / "two").keyring().ids() == [ids["bob"]]


def test_demo_key_then_a_named_key_freezes_without_key(tmp_path, sim_campaign):
    store = tmp_path / ".ledger"
    ok(invoke(store, "init"))
    ok(
        invoke(
            store,
            "campaign",
            "--campaign",
            str(sim_campaign),
            "--executor",
            "sim",
            "--until",
            "screen",
            "--demo-key",
        )
    )
    alice = json.loads(ok(invoke(store, "keygen", "--name", "alice", "--json")).stdout)
    res = ok(
        invoke(store, "freeze", "gate", "--campaign", str(sim_campaign), "--sim-only", "--json")
    )
    assert json.loads(res.stdout)["freezer"] == alice["key_id"]


def test_several_keys_and_no_default_is_one_line_naming_the_fix(tmp_path, sim_campaign):
    for name in ("a", "b"):
        ok(invoke(tmp_path / "nostore", "keygen", "--name", name))  # no store: no default
    ok(invoke(tmp_path / "s", "init"))
    res = invoke(tmp_path / "s", "freeze", "screen", "--campaign", str(sim_campaign), "--sim-only")
    assert res.exit_code == 2 and "ledger keys --default NAME" in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


# ----------------------------------------------------------------------------- errors, ids


def test_json_error_for_a_missing_campaign(tmp_path):
    ok(invoke(tmp_path / "s", "init"))
    res = invoke(tmp_path / "s", "status", "--campaign", str(tmp_path / "nope.toml"), "--json")
    assert res.exit_code == 2 and res.stderr == ""
    error = json.loads(res.stdout)
    assert error["exit"] == 2 and "nope.toml" in error["error"]
    res = invoke(tmp_path / "s", "runs", "--json", "--no-such-option")
    assert res.exit_code == 2 and json.loads(res.stdout)["exit"] == 2


def _commands():
    def walk(group, path):
        for name, command in sorted(group.commands.items()):
            if isinstance(command, click.Group):
                yield [*path, name], command
                yield from walk(command, [*path, name])
            else:
                yield [*path, name], command

    yield [], cli
    yield from walk(cli, [])


def test_every_command_has_examples_and_one_line_usage_errors(tmp_path):
    for path, command in _commands():
        res = CliRunner().invoke(cli, [*path, "--help"])
        assert res.exit_code == 0 and "Example" in res.stdout, f"ledger {' '.join(path)}"
        if isinstance(command, click.Group):
            continue
        res = invoke(tmp_path, *path, "--no-such-option")
        assert res.exit_code == 2, f"ledger {' '.join(path)}"
        assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: ledger ")
        assert "--no-such-option" in res.stderr and "Usage:" not in res.stderr


def test_ids_by_twelve_hex_prefix(walked):
    from ledger.errors import LedgerError
    from ledger.store import Store

    store, _ = walked
    rows = json.loads(ok(invoke(store, "runs", "--stage", "final", "--json")).stdout)["rows"]
    run_id = rows[0]["run"]
    assert Store.open(store).resolve(run_id[:12]) == run_id
    with pytest.raises(LedgerError, match="too short"):
        Store.open(store).resolve(run_id[:11])
    res = invoke(store, "reproduce", run_id[:12])
    # the prefix resolved: the refusal is about what produced the run, not about its id
    assert res.exit_code == 2 and "produced by runner 'sim'" in res.stderr
    res = invoke(store, "reproduce", "abcdefabcdef")
    assert res.exit_code == 2 and "no run with id abcdefabcdef" in res.stderr


def test_effects_columns_never_run_together(tmp_path):
    path = tmp_path / "tiny.csv"
    rows = ["A,B,y"] + [
        f"{a},{b},{1 + 0.00001 * a - 0.000003 * b + 1e-7 * i}"
        for i, (a, b) in enumerate([(-1, -1), (1, -1), (-1, 1), (1, 1)] * 2)
    ]
    path.write_text("\n".join(rows) + "\n")
    out = ok(invoke(tmp_path, "effects", str(path), "--response", "y")).stdout.splitlines()
    header = next(i for i, ln in enumerate(out) if ln.startswith("term"))
    for line in out[header + 2 : header + 4]:
        assert len(line.split()) == 9  # term, effect, se, t, p, q, "[lo," "hi]", aliases


def test_status_watch_on_a_campaign_stops_when_idle_and_ctrl_c_is_a_clean_stop(
    tmp_path, sim_campaign, monkeypatch
):
    import gateledger as gl

    store = tmp_path / ".ledger"
    ok(invoke(store, "--host", "h1", "init"))
    ok(invoke(store, "keygen", "--name", "me"))
    args = ["--campaign", str(sim_campaign)]
    ok(invoke(store, "--host", "h1", "freeze", "screen", *args, "--sim-only"))
    ok(invoke(store, "--host", "h1", "run", "screen", *args, "--executor", "sim"))
    # one stage run, none decided: the campaign is not done, but nothing more is happening
    res = ok(invoke(store, "status", "--watch", "--interval", "0.05", "--idle", "0.1", *args))
    last = res.stdout.splitlines()[-1]
    assert last == "stopped: nothing in flight and nothing new for 0.1s (0 of 3 stage(s) decided)"
    frames = [
        json.loads(ln)
        for ln in ok(
            invoke(
                store, "status", "--watch", "--json", "--interval", "0.05", "--idle", "0.1", *args
            )
        ).stdout.splitlines()
    ]
    assert frames[-1]["done"] is True and frames[-1]["why"] == "idle"
    assert [f["done"] for f in frames[:-1]] == [False] * (len(frames) - 1)

    real = gl.watch

    def interrupted(*a, **k):
        frames = real(*a, **k)
        yield next(frames)
        raise KeyboardInterrupt

    monkeypatch.setattr(gl, "watch", interrupted)
    res = invoke(store, "status", "--watch", "--interval", "0.05", *args)
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[-1] == "stopped (Ctrl-C) after 1 redraw(s)"
    assert "error" not in res.output
