"""A researcher's own training script, from first contact to signed evidence, through the
`ledger` command: seeds every library accepts, mistakes refused before anything is signed,
`ledger try` that says what `ledger run` would do and writes nothing."""

from __future__ import annotations

import hashlib
import json
import re
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateledger.cli.main import cli
from ledger.store import Store
from stages.lookup import current_manifest, manifest_runs

# Calls every seeding function a numpy/torch script uses with {seed}; crashes on one width.
SCRIPT = textwrap.dedent("""
    import argparse, json, random, sys, time
    import numpy as np
    import torch

    p = argparse.ArgumentParser()
    for flag in ("--config", "--log", "--manifest", "--host"):
        p.add_argument(flag)
    p.add_argument("--seed", type=int)
    p.add_argument("--budget", type=float)
    a = p.parse_args()
    cfg = json.load(open(a.config))
    random.seed(a.seed)
    np.random.seed(a.seed)
    rng = np.random.default_rng(a.seed)
    torch.manual_seed(a.seed)
    if cfg["width"] > 100:
        print("building a model of width", cfg["width"], file=sys.stderr)
        raise ValueError(f"width {cfg['width']} does not fit")
    log = open(a.log, "w")
    def write(**rec):
        log.write(json.dumps(rec) + "\\n"); log.flush()
    write(type="header", manifest=a.manifest, seed=a.seed, host=a.host, budget_s=a.budget, **cfg)
    noise = random.random() + float(np.random.rand()) + rng.random() + float(torch.rand(1))
    for step in range(1, 4):
        write(type="step", step=step, train_seconds=0.01 * step, loss=3.0 / step)
    bpb = 1.0 + cfg["lr"] + cfg["width"] / 1000 + 1e-3 * noise
    write(type="eval", val_bpb=bpb)
    write(type="summary", status="ok", val_bpb=bpb, training_seconds=0.03, num_steps=3)
""")

CAMPAIGN = """
[campaign]
name = "mine"
runner = {{ command = "{python} {script} --config {{config}} --seed {{seed}} --budget {{budget}} --log {{log}} --manifest {{manifest}} --host {{host}}", format = "jsonl"{extra} }}
[base]
width = 16
lr = 0.01
[factors]
A = {{ key = "width", levels = [8, {high}] }}
B = {{ key = "lr", levels = [0.001, 0.05] }}
[[stages]]
name = "screen"
budget = "1s"
design = "full"
seeds = [0, 1]
rule = {{ top_k = 1 }}
"""


@pytest.fixture
def lab(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "train.py").write_text(SCRIPT)
    runner = CliRunner()

    def ledger(*args: str):
        return runner.invoke(cli, ["--store", ".ledger", "--host", "local", *args])

    def campaign(high: int = 64, extra: str = "", text: str | None = None) -> str:
        body = text or CAMPAIGN.format(
            python=sys.executable, script=tmp_path / "train.py", high=high, extra=extra
        )
        (tmp_path / "campaign.toml").write_text(body)
        return "campaign.toml"

    assert ledger("init").exit_code == 0 and ledger("keygen", "--name", "me").exit_code == 0
    return ledger, campaign, tmp_path


def _store_bytes(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _one_line_refusal(res) -> str:
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 2 and len(lines) == 1, res.output
    return lines[0]


def _v2_seed(manifest: str, condition: str, seed: int) -> int:
    digest = hashlib.sha256(f"{manifest}:{condition}:{seed}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


@pytest.mark.slow
def test_a_numpy_torch_script_seeded_with_its_seed_audits_clean(lab):
    ledger, campaign, root = lab
    camp = campaign()
    for step in (("freeze", "screen"), ("run", "screen"), ("decide", "screen")):
        res = ledger(*step, "--campaign", camp)
        assert res.exit_code == 0, res.output
    audit = json.loads(ledger("audit", "--json").output)
    assert audit["verdict"] == "clean", audit["problems"]
    assert audit["binding"]["weakest"] == "header"
    store = Store.open(root / ".ledger")
    manifest = current_manifest(store, "mine", "screen")
    runs = manifest_runs(store, manifest.id)
    assert len(runs) == 8 and {r.body.status for r in runs} == {"ok"}
    seeds, v1_seeds = [], []
    for record in runs:
        body = record.body
        header = json.loads(store.get_bytes(body.raw_log).splitlines()[0])
        expected = _v2_seed(manifest.id, body.condition, body.seed)
        assert header["seed"] == expected  # what {seed} handed the script, hashed here again
        seeds.append(expected)
        digest = hashlib.sha256(f"{manifest.id}:{body.condition}:{body.seed}".encode())
        v1_seeds.append(int.from_bytes(digest.digest()[:8], "big") & (2**63 - 1))
    assert all(0 <= s <= 2**32 - 1 for s in seeds)
    assert any(s > 2**32 - 1 for s in v1_seeds)  # what numpy refused before the v2 rule


def test_a_key_typo_with_runner_keys_is_refused_before_anything_is_signed(lab):
    ledger, campaign, root = lab
    camp = campaign(extra=', keys = ["width", "lr"]')
    text = (root / camp).read_text().replace('key = "width"', 'key = "widht"')
    camp = campaign(text=text)
    line = _one_line_refusal(ledger("freeze", "screen", "--campaign", camp))
    assert "factors.A.key: 'widht' is not a key runner.keys accepts (known: width, lr)" in line
    line = _one_line_refusal(ledger("try", "screen", "--campaign", camp))
    assert "'widht'" in line
    assert json.loads(ledger("status", "--json").output)["by_kind"].get("manifest", 0) == 0


def test_a_placeholder_typo_is_refused_before_anything_is_signed(lab):
    ledger, campaign, root = lab
    camp = campaign(text=(root / campaign()).read_text().replace("{budget}", "{budjet}"))
    line = _one_line_refusal(ledger("freeze", "screen", "--campaign", camp))
    assert "campaign.runner.command: unknown placeholder {budjet} (valid: {config}, {seed}" in line
    assert json.loads(ledger("status", "--json").output)["by_kind"].get("manifest", 0) == 0


def test_a_config_schema_refuses_keys_at_load_and_values_at_freeze(lab):
    ledger, campaign, root = lab
    schema = {
        "type": "object",
        "properties": {"width": {"type": "integer", "maximum": 32}, "lr": {"type": "number"}},
    }
    (root / "config.schema.json").write_text(json.dumps(schema))
    camp = campaign(extra=', config_schema = "config.schema.json"')
    line = _one_line_refusal(ledger("freeze", "screen", "--campaign", camp))
    assert "condition 'a' does not fit the runner's config_schema: width: 64 is greater" in line
    text = (root / camp).read_text().replace("lr = 0.01", "lr = 0.01\nmomentum = 0.9")
    line = _one_line_refusal(ledger("freeze", "screen", "--campaign", campaign(text=text)))
    assert "base.momentum: 'momentum' is not a key runner.config_schema accepts" in line
    assert json.loads(ledger("status", "--json").output)["by_kind"].get("manifest", 0) == 0


def test_unchecked_keys_are_said_at_freeze_and_try(lab):
    ledger, campaign, root = lab
    camp = campaign()
    res = ledger("try", "screen", "--campaign", camp, "--budget", "1s")
    assert res.exit_code == 0 and "note: config keys are unchecked" in res.output, res.output
    res = ledger("freeze", "screen", "--campaign", camp)
    assert res.exit_code == 0 and res.output.count("config keys are unchecked") == 1
    checked = campaign(extra=', keys = ["width", "lr"]')
    res = ledger("try", "screen", "--campaign", checked, "--budget", "1s")
    assert res.exit_code == 0 and "config keys are unchecked" not in res.output
    typo = campaign(text=(root / campaign()).read_text().replace("lr = 0.01", "lr_ = 0.01"))
    res = ledger("freeze", "screen", "--campaign", typo, "--amend")
    assert res.exit_code == 0, res.output  # nothing can refuse it, but the line names it:
    assert "not in [base] but close to a key that is: 'lr' (did you mean 'lr_'?)" in res.output


def test_try_reports_a_crash_with_its_stderr_and_writes_nothing(lab):
    ledger, campaign, root = lab
    camp = campaign(high=128)
    before = _store_bytes(root / ".ledger")
    res = ledger("try", "screen", "--campaign", camp, "--budget", "1s")
    assert res.exit_code == 1, res.output
    assert "ok       all-low" in res.output
    # the metric as a reader compares it: four decimals, not a float's seventeen digits
    assert re.search(r"ok {7}all-low .*: val_bpb \d\.\d{4}, \S+ s training", res.output)
    assert "crashed  all-high" in res.output and "exit 1" in res.output
    assert "ValueError: width 128 does not fit" in res.output
    assert "| building a model of width 128" in res.output  # the stderr tail, not just its end
    assert "nothing was written to the store" in res.output
    out = json.loads(ledger("try", "screen", "--campaign", camp, "--json").output)
    assert [r["outcome"] for r in out["runs"]] == ["ok", "crashed"]
    assert [r["config"]["width"] for r in out["runs"]] == [8, 128]
    assert out["written_to_store"] is False and out["ok"] is False
    assert _store_bytes(root / ".ledger") == before  # no object, no journal event, no index


BAD_LOG = textwrap.dedent("""
    import argparse, json
    p = argparse.ArgumentParser()
    for flag in ("--config", "--log", "--manifest", "--host", "--seed"):
        p.add_argument(flag)
    a = p.parse_args()
    with open(a.log, "w") as log:
        for step in range(1, 4):
            log.write(json.dumps({"step": step, "loss": 1.0}) + "\\n")
        log.write(json.dumps({"type": "sumary", "status": "ok"}) + "\\n")
""")


def test_a_log_without_record_types_is_refused_with_every_reason(lab):
    ledger, campaign, root = lab
    (root / "bad.py").write_text(BAD_LOG)
    text = (root / campaign()).read_text().replace(str(root / "train.py"), str(root / "bad.py"))
    camp = campaign(text=text.replace("--budget {budget} ", ""))
    res = ledger("try", "screen", "--campaign", camp, "--conditions", "1")
    assert res.exit_code == 1 and "refused" in res.output
    assert "- raw log refused" not in res.output
    assert "lines 1-3: unknown record type None" in res.output
    assert "line 4: unknown record type 'sumary'" in res.output
    assert "and 1 more" not in res.output
    assert ledger("freeze", "screen", "--campaign", camp).exit_code == 0
    res = ledger("run", "screen", "--campaign", camp, "--limit", "2")
    assert res.exit_code == 1
    assert "executed 0 (2 more run but refused, not recorded)" in res.output
    assert "every run this call launched was refused (not recorded)" in res.output
    assert "crashed" not in res.output
    assert "lines 1-3: unknown record type None (each line needs" in res.output
    assert "docs/runner.md); line 4: unknown record type 'sumary'" in res.output
