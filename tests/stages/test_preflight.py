"""Preflight at freeze, not after the GPU-hours: typos, bad values, missing data, unknown
metrics and rule names are refused in one line naming the file and key; crash reasons are
kept with the run and shown by run, status and audit."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from gateledger.cli.main import cli
from runner.config import DEFAULTS

GOOD = """
[campaign]
name = "pre"
metric = "val_bpb"
data = "{data}"
[base]
depth = 2
device_batch_size = 8
seq_len = 32
total_batch_size = 512
[factors]
A = { key = "matrix_lr", levels = [0.01, 0.04] }
B = { key = "depth", levels = [1, 2] }
[conditions]
base = { }
[[stages]]
name = "screen"
budget = "10s"
design = "full"
rule = { top_k = 1, keep = ["base"] }
"""


@pytest.fixture
def lab(tmp_path):
    data = tmp_path / "text.txt"
    data.write_text("in the beginning " * 2000)
    store = tmp_path / ".ledger"
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, ["--store", str(store), *args])

    assert invoke("init").exit_code == 0
    assert invoke("keygen", "--name", "me").exit_code == 0

    def freeze(text: str, *extra: str):
        camp = tmp_path / "c.toml"
        camp.write_text(text.replace("{data}", str(data)))
        return invoke("freeze", "screen", "--campaign", str(camp), *extra), camp

    return freeze, invoke, data


def _one_line(res, *words):
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 2 and len(lines) == 1, res.output
    assert all(w in lines[0] for w in words), lines[0]


@pytest.mark.parametrize(
    "edit,words",
    [
        (
            lambda t: t.replace('key = "depth"', 'key = "dept"'),
            ("factors.B.key: 'dept' is not a key the builtin runner accepts",),
        ),
        (
            lambda t: t.replace("depth = 2\n", "depht = 2\n"),
            ("base.depht: 'depht' is not a key the builtin runner",),
        ),
        (
            lambda t: t.replace("base = { }", "base = { warmup = 0.1 }"),
            ("conditions.base.warmup: 'warmup' is not a key the builtin runner accepts",),
        ),
        (
            lambda t: t.replace("total_batch_size = 512", "total_batch_size = 500"),
            ("condition", "'total_batch_size' (500) must be a multiple of"),
        ),
        (
            lambda t: t.replace("top_k = 1,", "top_k = -1,"),
            ("stages[0].rule.top_k (stage 'screen'): must be >= 1, not -1",),
        ),
        (
            lambda t: t.replace('metric = "val_bpb"', 'metric = "val_loss"'),
            ("campaign.metric: must be 'val_bpb', ", "not 'val_loss'"),
        ),
        (
            lambda t: t + 'checks = [ { name = "c", a = "nosuch", b = "base", within = 0.01 } ]\n',
            ("checks[0].a names 'nosuch', which is not a candidate",),
        ),
    ],
)
def test_campaign_mistakes_are_refused_before_anything_is_signed(lab, edit, words):
    freeze, invoke, _ = lab
    res, camp = freeze(edit(GOOD))
    _one_line(res, str(camp), *words)
    status = json.loads(invoke("status", "--json").output)
    assert status["by_kind"].get("manifest", 0) == 0  # nothing signed


def test_missing_data_gives_the_prepare_command(lab, tmp_path):
    freeze, invoke, data = lab
    text = GOOD.replace("{data}", str(tmp_path / "absent"))
    res, camp = freeze(text)
    _one_line(res, "does not exist", "dvc repro corpus", "python -m runner.data prepare")
    res, _ = freeze(text, "--sim-only")  # a preview plan for the simulator alone
    assert res.exit_code == 0, res.output


def test_the_frozen_manifest_records_the_data_hash_and_resolved_configs(lab):
    import hashlib

    freeze, invoke, data = lab
    res, _ = freeze(GOOD)
    assert res.exit_code == 0, res.output
    mid = res.output.split("manifest ")[1].split()[0]
    from ledger.store import Store

    body = Store.open(data.parent / ".ledger").get_json(mid)["body"]
    assert body["data_sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    for info in body["conditions"].values():
        cfg = info["runner_config"]  # every key the runner will use, defaults included
        assert cfg == {**DEFAULTS, **info["config"]}
        assert cfg["seq_len"] == 32 and cfg["embedding_lr"] == 0.2


CRASHER = """
import sys
sys.stderr.write("loading the model\\n")
sys.stderr.write("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\\n")
sys.exit(1)
"""


def test_crash_reasons_are_kept_and_shown(tmp_path):
    script = tmp_path / "crash.py"
    script.write_text(CRASHER)
    camp = tmp_path / "crash.toml"
    camp.write_text(f"""
[campaign]
name = "crash"
runner = {{ command = "{sys.executable} {script} --config {{config}}", format = "jsonl" }}
[base]
matrix_lr = 0.02
[conditions]
a = {{ }}
[[stages]]
name = "gate"
budget = "1m"
add = ["a"]
seeds = [0, 1]
rule = {{ top_k = 1 }}
""")
    runner = CliRunner()
    store = str(tmp_path / ".ledger")

    def invoke(*args):
        return runner.invoke(cli, ["--store", store, "--host", "local", *args])

    assert invoke("init").exit_code == 0 and invoke("keygen", "--name", "me").exit_code == 0
    assert invoke("freeze", "gate", "--campaign", str(camp)).exit_code == 0
    res = invoke("run", "gate", "--campaign", str(camp))
    assert res.exit_code == 1  # every run of the stage crashed
    assert "crashed: a" in res.output and "CUDA out of memory" in res.output
    assert "every run this call launched crashed;" in res.output
    status = invoke("status", "--campaign", str(camp))
    assert status.output.count("CUDA out of memory") == 2, status.output
    audit = json.loads(invoke("audit", "--json").output)
    failed = audit["stages"][0]["failed_runs"]
    assert [f["status"] for f in failed] == ["crashed", "crashed"]
    assert all("torch.OutOfMemoryError: CUDA out of memory" in f["reason"] for f in failed)
    res = invoke("campaign", "--campaign", str(camp))
    assert res.exit_code == 2 and "none of its 2 recorded run(s) finished ok" in res.output
    assert "CUDA out of memory" in res.output
