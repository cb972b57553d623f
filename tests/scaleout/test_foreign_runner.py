"""Foreign runners: a campaign names its own training command (autoresearch's summary block);
partial output is `crashed`, never a guessed number; logs from elsewhere are ingested, and
without a manifest they are unplanned compute."""

from __future__ import annotations

import sys
import textwrap

from click.testing import CliRunner

from audit.rederive import audit_store
from gateledger.cli.main import cli
from ledger.keys import generate_key
from ledger.store import Store
from stages.campaign import parse_campaign
from stages.decide import decide_stage
from stages.execute import run_stage
from stages.executors.local import LocalExecutor
from stages.lookup import manifest_runs
from stages.plan import freeze_stage

FAKE_TRAIN = textwrap.dedent("""
    import json, sys
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    cfg = json.load(open(args["--config"]))
    if cfg["matrix_lr"] > 0.05:
        print("step 00001 | loss 9.9"); print("---"); print("val_bpb: 1.2"); sys.exit(1)
    bpb = 1.0 + cfg["matrix_lr"] + 0.001 * int(args["--seed"])
    print("step 00010 | loss 3.1")
    print("---")
    print(f"val_bpb:          {bpb:.6f}")
    print("training_seconds: 0.0101")
    print("total_seconds:    0.0202")
    print("peak_vram_mb:     45060.2")
    print("mfu_percent:      39.80")
    print("total_tokens_M:   499.6")
    print("num_steps:        953")
    print("num_params_M:     50.3")
    print("depth:            8")
""")

CAMPAIGN = """
[campaign]
name = "foreign"
runner = {{ command = "{python} {script} --config {{config}} --seed {{declared_seed}}", format = "autoresearch" }}
[base]
matrix_lr = 0.02
[conditions]
slow = {{ matrix_lr = 0.01 }}
fast = {{ matrix_lr = 0.03 }}
broken = {{ matrix_lr = 0.09 }}
[[stages]]
name = "gate"
budget = "5m"
add = ["slow", "fast", "broken"]
seeds = [0, 1]
hosts = ["local"]
rule = {{ top_k = 1 }}
"""


def test_autoresearch_command_through_the_ledger(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(FAKE_TRAIN)
    camp = parse_campaign(
        CAMPAIGN.format(python=sys.executable, script=script), tmp_path / "c.toml"
    )
    store = Store.init(tmp_path / ".ledger", host="local")
    key = generate_key("k")
    manifest = freeze_stage(store, camp, "gate", key)
    report = run_stage(
        store, camp, "gate", LocalExecutor(workdir=tmp_path / "w", jobs=2), key=key, progress=False
    )
    assert report.statuses == {"ok": 4, "crashed": 2}
    runs = {
        r.body.seed: r
        for r in manifest_runs(store, manifest)
        if r.body.status == "ok" and r.body.metrics.val_bpb < 1.015
    }
    assert runs[0].body.metrics.val_bpb == 1.01
    assert runs[0].body.metrics.training_seconds == 0.0101
    crashed = [r for r in manifest_runs(store, manifest) if r.body.status == "crashed"]
    assert all(r.body.metrics.val_bpb is None for r in crashed)
    _, decision = decide_stage(store, camp, "gate", key)
    assert [decision.name(c) for c in decision.promoted] == ["slow"]
    result = audit_store(store)
    assert result.problems == []


def test_ingest_without_manifest_is_unplanned_compute(tmp_path):
    log = tmp_path / "stray.log"
    log.write_text("---\nval_bpb: 0.99\ntraining_seconds: 300\ntotal_seconds: 320\n")
    runner = CliRunner()
    store = str(tmp_path / ".ledger")
    assert runner.invoke(cli, ["--store", store, "init"]).exit_code == 0
    res = runner.invoke(cli, ["--store", store, "ingest", str(log), "--format", "autoresearch"])
    assert res.exit_code == 0, res.output
    result = audit_store(Store.open(store))
    assert len(result.unplanned) == 1 and result.problems == []
