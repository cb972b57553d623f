"""`ledger audit --reproduce N`: a reviewer-seeded, stratified draw of runs replayed inside the
audit. On CPU an honest store replays bit for bit; a runner that shades a metric, or labels
a good run `diverged`, passes every other check and is caught only here, by name."""

from __future__ import annotations

import json
import stat
import sys
import textwrap

import pytest
from click.testing import CliRunner

from audit.rederive import audit_store
from audit.spotcheck import Candidate, SpotCheckRequest, draw
from gateledger.cli.main import cli
from ledger.errors import LedgerError
from ledger.keys import generate_key
from ledger.store import Store
from stages.campaign import parse_campaign
from stages.decide import decide_stage
from stages.execute import run_stage
from stages.executors.local import LocalExecutor
from stages.lookup import manifest_runs
from stages.plan import freeze_stage


def _pool() -> list[Candidate]:
    out = []
    for stage, statuses in (("s1", ["ok"] * 6 + ["diverged"]), ("s2", ["ok"] * 3 + ["crashed"])):
        for i, status in enumerate(statuses):
            out.append(Candidate(f"{stage}-run{i}", f"m-{stage}", status, stage))
    return out


def test_draw_is_stratified_failed_first_and_reviewer_seeded():
    pool = _pool()
    picked = draw(pool, 4, seed=7)
    # one run from each of the four strata before any stratum gives a second
    assert sorted(c.stratum for c in picked) == [
        "m-s1/diverged",
        "m-s1/ok",
        "m-s2/crashed",
        "m-s2/ok",
    ]
    # with fewer runs than strata, the failed labels come first
    assert {c.status for c in draw(pool, 2, seed=7)} == {"diverged", "crashed"}
    assert draw(pool, 4, seed=7) == picked  # the same seed gives the same draw
    orders = {tuple(c.run for c in draw(pool, 11, seed=s)) for s in range(5)}
    assert len(orders) > 1  # another seed, another order within the strata
    assert sorted(c.run for c in draw(pool, 50, seed=1)) == sorted(c.run for c in pool)
    with pytest.raises(LedgerError, match="--reproduce must be a positive number"):
        SpotCheckRequest(0)


def test_sim_runs_are_not_replayable_and_said_so(done):
    store, *_ = done
    result = audit_store(store, reproduce=SpotCheckRequest(3, seed=1))
    assert result.problems == [] and result.reproduction["eligible"] == 0
    assert result.reproduction["not_eligible"]["simulated"] == 37
    assert any("replayed 0 of 0 eligible run(s)" in n and "37 simulated" in n for n in result.notes)


TINY = """
[campaign]
name = "spot"
[base]
depth = 1
aspect_ratio = 32
head_dim = 32
seq_len = 32
device_batch_size = 8
total_batch_size = 512
eval_tokens = 4096
[conditions]
slow = { matrix_lr = 0.01 }
mid = { matrix_lr = 0.02 }
fast = { matrix_lr = 0.04 }
[[stages]]
name = "s"
budget = "1s"
add = ["slow", "mid", "fast"]
seeds = [0]
hosts = ["local"]
rule = { top_k = 1 }
"""

# Stands in for `python`: runs the real runner, then rewrites the log of the run whose
# matrix_lr is LIE_SHADE (val_bpb 0.05 better) or LIE_DIVERGE (cut after step 4 with an
# exploding loss, labelled diverged), the way a dishonest trainer would.
LIAR = textwrap.dedent("""
    import json, os, subprocess, sys
    argv = sys.argv[1:]
    code = subprocess.call([sys.executable, *argv])
    log = argv[argv.index("--log") + 1]
    lr = json.load(open(argv[argv.index("--config") + 1]))["matrix_lr"]
    lines = [json.loads(x) for x in open(log)]
    if str(lr) == os.environ.get("LIE_SHADE"):
        for line in lines:
            if line["type"] in ("eval", "summary"):
                line["val_bpb"] -= 0.05
    elif str(lr) == os.environ.get("LIE_DIVERGE"):
        steps = [x for x in lines if x["type"] == "step"][:4]
        steps[-1]["loss"] = steps[0]["loss"] * 10
        summary = lines[-1]
        summary.update(status="diverged", val_bpb=None, num_steps=4,
                       training_seconds=steps[-1]["train_seconds"], total_tokens=steps[-1]["tokens"])
        lines = [lines[0], *steps, summary]
    with open(log, "w") as fh:
        fh.write("".join(json.dumps(x, separators=(",", ":")) + "\\n" for x in lines))
    sys.exit(code)
""")


def _text(tmp_path):
    words = [
        "in",
        "the",
        "beginning",
        "was",
        "the",
        "word",
        "and",
        "the",
        "word",
        "was",
        "with",
        "god",
    ]
    data = tmp_path / "text.txt"
    data.write_text(" ".join(words[(i * 7) % len(words)] for i in range(60000)))
    return data


def _store(tmp_path, data, python=sys.executable):
    store = Store.init(tmp_path / ".ledger", host="local")
    camp = parse_campaign(TINY, tmp_path / "c.toml")
    key = generate_key("k")
    manifest = freeze_stage(store, camp, "s", key, data=data)
    report = run_stage(
        store,
        camp,
        "s",
        LocalExecutor(workdir=tmp_path / "w", data=data, python=python),
        key=key,
        progress=False,
    )
    assert not report.refused, report.refused
    decide_stage(store, camp, "s", key)
    names = store.get_json(manifest)["body"]["conditions"]
    return store, {names[r.body.condition]["name"]: r for r in manifest_runs(store, manifest)}


def _audit(store, data, *args):
    res = CliRunner().invoke(
        cli,
        [
            "--store",
            str(store.root),
            "audit",
            "--reproduce",
            "3",
            "--seed",
            "11",
            "--data",
            str(data),
            "--json",
            *args,
        ],
    )
    return res.exit_code, json.loads(res.output)


@pytest.mark.slow
def test_an_honest_cpu_store_replays_bit_for_bit(tmp_path):
    data = _text(tmp_path)
    store, _runs = _store(tmp_path, data)
    code, out = _audit(store, data)
    assert code == 0 and out["verdict"] == "clean", out["problems"]
    rep = out["reproduction"]
    assert rep["eligible"] == 3 and rep["reproduced"] == 3 and rep["mismatches"] == 0
    for row in rep["drawn"]:
        assert row["verdict"] == "identical" and row["accepted"] == "bit-exact (CPU)"
        assert row["replay"]["max_loss_difference"] == 0.0
        assert row["replay"]["val_bpb_difference"] == 0.0
        assert row["replay"]["compared_steps"] == row["replay"]["steps"] > 3


@pytest.mark.slow
def test_a_shaded_metric_and_a_fake_divergence_are_caught_by_replay(tmp_path, monkeypatch):
    data = _text(tmp_path)
    liar = tmp_path / "python-liar"
    liar.write_text(f"#!{sys.executable}\n{LIAR}")
    liar.chmod(liar.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("LIE_SHADE", "0.04")
    monkeypatch.setenv("LIE_DIVERGE", "0.01")
    store, runs = _store(tmp_path, data, python=str(liar))
    assert {name: r.body.status for name, r in runs.items()} == {
        "slow": "diverged",
        "mid": "ok",
        "fast": "ok",
    }
    # every other check passes: the logs bind, the statuses have their evidence
    assert audit_store(store).problems == []
    code, out = _audit(store, data)
    assert code == 1 and out["verdict"] == "problems"
    named = {p["object"]: p["message"] for p in out["problems"]}
    diverged, shaded = runs["slow"].id, runs["fast"].id
    assert set(named) == {diverged, shaded}, named
    assert "status recorded diverged, the replay ended ok" in named[diverged]
    assert "step 4 loss recorded" in named[diverged]
    assert "val_bpb recorded" in named[shaded] and "difference +0.05" in named[shaded]
    honest = [r for r in out["reproduction"]["drawn"] if r["run"] not in named]
    assert [(r["run"], r["verdict"]) for r in honest] == [(runs["mid"].id, "identical")]
