"""`ledger reproduce`: a recorded budget run (real training) replays bit for bit on CPU,
whether the executor started it as a fresh process or forked it from its warm server."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gateledger.cli.main import cli
from ledger.keys import generate_key
from ledger.plan_model import Manifest
from ledger.store import Store
from stages.campaign import parse_campaign
from stages.execute import manifest_tasks, run_stage
from stages.executors.local import LocalExecutor
from stages.lookup import manifest_runs
from stages.plan import freeze_stage

pytestmark = pytest.mark.slow

TINY = """
[campaign]
name = "rep"
[base]
depth = 1
aspect_ratio = 32
head_dim = 32
seq_len = 32
device_batch_size = 8
total_batch_size = 512
eval_tokens = 4096
[conditions]
only = { }
[[stages]]
name = "s"
budget = "2s"
add = ["only"]
seeds = [5]
hosts = ["local"]
rule = { top_k = 1 }
"""


@pytest.mark.parametrize("device", ["auto", "cpu"], ids=["fresh-process", "forked"])
def test_recorded_budget_run_replays_identically(tmp_path, device):
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
    store = Store.init(tmp_path / ".ledger", host="local")
    camp = parse_campaign(TINY, tmp_path / "c.toml")
    key = generate_key("k")
    manifest = freeze_stage(store, camp, "s", key, data=data)
    executor = LocalExecutor(workdir=tmp_path / "w", data=data, device=device)
    tasks = manifest_tasks(manifest, Manifest.model_validate(store.get_json(manifest)["body"]))
    assert [executor.forks(t) for t in tasks] == [device == "cpu"]
    run_stage(store, camp, "s", executor, key=key, progress=False)
    (run,) = manifest_runs(store, manifest)
    assert run.body.status == "ok"
    res = CliRunner().invoke(
        cli, ["--store", str(store.root), "reproduce", run.id, "--data", str(data), "--json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["identical"] and out["exact_schedule"] and out["same_data"] and out["same_code"]
    assert out["compared_steps"] == out["steps"] > 3
    assert out["val_bpb_difference"] == 0.0
