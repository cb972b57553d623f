"""The autoresearch adapter: an autoresearch-shaped script (module constants, no flags,
TIME_BUDGET from prepare.py, a literal seed, a `---` summary block) runs unchanged, its
constants, budget and seed set per run, and a header that binds the log to its run."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateledger.cli.main import cli
from ledger.binding import adapter_problems
from ledger.errors import CampaignError
from ledger.log_records import LogHeader
from ledger.plan_model import Plan
from ledger.store import Store
from runner.autoresearch import adapt, script_shape, shape_problems
from stages.campaign import parse_campaign
from stages.lookup import current_manifest, manifest_runs

ROOT = Path(__file__).resolve().parents[2]

SOURCE = """\
import random
from prepare import TIME_BUDGET, SPLIT
DEPTH = 8
ADAM_BETAS = (0.8, 0.95)
MATRIX_LR: float = 0.04
random.seed(42)
DRAW = random.random()
BUDGET_SEEN = TIME_BUDGET
"""


def test_adapt_sets_constants_budget_and_seed_without_touching_the_rest():
    tree = adapt(
        SOURCE,
        "train.py",
        {"DEPTH": 3, "ADAM_BETAS": [0.9, 0.99], "MATRIX_LR": 0.1, "TIME_BUDGET": 5},
        seed=1234,
    )
    prepare = types.ModuleType("prepare")
    prepare.TIME_BUDGET, prepare.SPLIT = 300, "val"
    namespace: dict = {}
    saved = sys.modules.get("prepare")
    sys.modules["prepare"] = prepare
    try:
        exec(compile(tree, "train.py", "exec"), namespace)
    finally:
        if saved is None:
            sys.modules.pop("prepare")
        else:
            sys.modules["prepare"] = saved
    assert namespace["DEPTH"] == 3 and namespace["MATRIX_LR"] == 0.1
    assert namespace["ADAM_BETAS"] == (0.9, 0.99)  # a tuple where the script had one
    assert namespace["TIME_BUDGET"] == namespace["BUDGET_SEEN"] == 5
    assert namespace["SPLIT"] == "val"
    assert namespace["DRAW"] == random.Random(1234).random()  # seeded with the run's seed


def test_what_a_script_cannot_take_is_named():
    shape = script_shape("import torch\nDEPTH = 4\n", "t.py")
    problems = shape_problems(shape, ["DEPTH", "WIDTH"], "t.py")
    assert problems == [
        "t.py has no module-level constant WIDTH to set (its upper-case constants: DEPTH)",
        "t.py binds no TIME_BUDGET at module level (neither assigned nor imported), so the "
        "run's budget cannot be set",
        "t.py seeds nothing the adapter can set: no SEED constant and no call like "
        "torch.manual_seed(42) with an integer literal",
    ]
    assert script_shape(SOURCE).seed_sites == ("line 6: random.seed(42)",)


def test_a_key_the_script_has_no_constant_for_is_refused_at_load(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    shutil.copy(ROOT / "examples" / "autoresearch" / "train.py", tmp_path / "train.py")
    text = """
[campaign]
name = "ar"
runner = { adapter = "autoresearch", script = "train.py" }
[base]
depth = 2
widht = 3
[conditions]
base = { }
[[stages]]
name = "s"
budget = "1s"
add = ["base"]
"""
    with pytest.raises(CampaignError) as caught:
        parse_campaign(text, "c.toml")
    assert str(caught.value) == (
        "c.toml: base.widht: 'widht' sets WIDHT, which train.py does not define at module "
        "level (its constants: ASPECT_RATIO, DEPTH, DEVICE_BATCH_SIZE, MATRIX_LR, "
        "WARMDOWN_RATIO)"
    )


def test_a_header_whose_overrides_are_not_the_config_is_named():
    manifest = Plan.model_validate(
        {
            "campaign": "t",
            "stage": "s",
            "budget_s": 2.0,
            "runs": [{"condition": "c", "seed": 0, "host": "h"}],
            "conditions": {"c": {"name": "c", "config": {"depth": 2, "lr": 0.04}}},
            "rule": {"top_k": 1},
            "analysis": {},
            "runner": {
                "kind": "adapter",
                "script_sha256": "ab" * 32,
                "constants": {"lr": "MATRIX_LR"},
            },
            "data_sha256": None,
            "parent": None,
        }
    )
    overrides = {"DEPTH": 2, "MATRIX_LR": 0.5, "TIME_BUDGET": 2}

    def header(**changes) -> LogHeader:
        written = {"runner": "autoresearch-adapter", "script_sha256": "ab" * 32}
        return LogHeader(type="header", **written, overrides={**overrides, **changes})

    config = {"depth": 2, "lr": 0.04}
    assert adapter_problems(manifest, header(), config) == [
        "header sets MATRIX_LR to 0.5, not 0.04"
    ]
    assert adapter_problems(manifest, header(MATRIX_LR=0.04), config) == []
    assert adapter_problems(manifest, header(MATRIX_LR=0.04, TIME_BUDGET=300), config) == [
        "header sets TIME_BUDGET to 300, not the manifest's budget 2.0"
    ]


CAMPAIGN = """
[campaign]
name = "toy"
runner = { adapter = "autoresearch", script = "toy/train.py" }
[base]
depth = 2
[conditions]
shallow = { depth = 1, matrix_lr = 0.02 }
deep = { depth = 3 }
[[stages]]
name = "gate"
budget = "1s"
add = ["shallow", "deep"]
rule = { top_k = 1 }
"""


@pytest.fixture
def toy(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "toy").mkdir()
    for name in ("train.py", "prepare.py"):
        shutil.copy(ROOT / "examples" / "autoresearch" / name, tmp_path / "toy" / name)
    (tmp_path / "campaign.toml").write_text(CAMPAIGN)
    runner = CliRunner()

    def ledger(*args: str):
        return runner.invoke(cli, ["--store", ".ledger", "--host", "local", *args])

    assert ledger("init").exit_code == 0 and ledger("keygen", "--name", "me").exit_code == 0
    return ledger, tmp_path


def _header(store: Store, record) -> dict:
    return json.loads(store.get_bytes(record.body.raw_log).splitlines()[0])


@pytest.mark.slow
def test_the_toy_script_runs_unchanged_and_its_header_binds_the_run(toy):
    ledger, root = toy
    script = root / "toy" / "train.py"
    original = script.read_bytes()
    for step in ("freeze", "run", "decide"):
        res = ledger(step, "gate", "--campaign", "campaign.toml")
        assert res.exit_code == 0, res.output
    assert script.read_bytes() == original  # never edited
    audit = json.loads(ledger("audit", "--json").output)
    assert audit["verdict"] == "clean", audit["problems"]
    assert audit["stages"][0]["binding"]["level"] == "header"
    assert "script" in audit["stages"][0]["binding"]["bound"]
    store = Store.open(root / ".ledger")
    manifest = current_manifest(store, "toy", "gate")
    assert manifest.body.runner.script_sha256 == hashlib.sha256(original).hexdigest()
    by_name = {
        manifest.body.conditions[r.body.condition].name: r
        for r in manifest_runs(store, manifest.id)
    }
    header = _header(store, by_name["shallow"])
    assert header["overrides"] == {"DEPTH": 1, "MATRIX_LR": 0.02, "TIME_BUDGET": 1}
    assert header["script_sha256"] == hashlib.sha256(original).hexdigest()
    assert header["manifest"] == manifest.id and header["budget_s"] == 1.0
    assert (header["depth"], header["matrix_lr"]) == (1, 0.02)
    raw = store.get_bytes(by_name["deep"].body.raw_log).decode()
    assert "depth:            3" in raw  # the script itself printed the depth it was given
    assert by_name["deep"].body.status == "ok"


@pytest.mark.slow
def test_a_script_changed_after_freeze_is_refused_before_it_trains(toy):
    ledger, root = toy
    assert ledger("freeze", "gate", "--campaign", "campaign.toml").exit_code == 0
    script = root / "toy" / "train.py"
    script.write_text(script.read_text().replace("DEPTH = 2", "DEPTH = 2  # tuned"))
    res = ledger("run", "gate", "--campaign", "campaign.toml", "--limit", "1")
    assert res.exit_code == 1 and "crashed" in res.output
    assert "changed since the manifest was frozen" in res.output
    store = Store.open(root / ".ledger")
    [record] = manifest_runs(store, current_manifest(store, "toy", "gate").id)
    assert record.body.status == "crashed"
    assert store.get_bytes(record.body.raw_log) == b""  # refused before any output


@pytest.mark.slow
def test_a_log_credited_to_another_condition_is_refused_naming_the_overrides(toy):
    ledger, root = toy
    assert ledger("freeze", "gate", "--campaign", "campaign.toml").exit_code == 0
    assert ledger("run", "gate", "--campaign", "campaign.toml", "--limit", "1").exit_code == 0
    store = Store.open(root / ".ledger")
    manifest = current_manifest(store, "toy", "gate")
    [done] = manifest_runs(store, manifest.id)
    other = next(c for c in manifest.body.conditions if c != done.body.condition)
    (root / "stolen.log").write_bytes(store.get_bytes(done.body.raw_log))
    res = ledger(
        "ingest", "stolen.log", "--format", "autoresearch", "--manifest", manifest.id,
        "--condition", other, "--seed", "0", "--host", "local",
    )  # fmt: skip
    assert res.exit_code == 2, res.output
    names = {c: i.name for c, i in manifest.body.conditions.items()}
    depth = {"shallow": 1, "deep": 3}
    assert f"header sets DEPTH to {depth[names[done.body.condition]]}, not " in res.output
    assert f"not {depth[names[other]]}" in res.output and "effective seed" in res.output
