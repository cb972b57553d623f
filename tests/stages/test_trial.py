"""`ledger try` picks the most different configs, and plans exactly what freeze would."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateledger.cli.main import cli
from ledger.errors import ConfigError
from stages.campaign import load_campaign
from stages.conditions import Condition
from stages.trial import pick_conditions, trial_plan, trial_pool

ROOT = Path(__file__).resolve().parents[2]


def cond(name: str, **config) -> Condition:
    return Condition(name, name, config, {}, "test")


def test_the_pair_that_differs_most_first_then_the_farthest():
    pool = [
        cond("a", x=0, y=0, z=0),
        cond("b", x=1, y=0, z=0),  # 1 key from a
        cond("c", x=1, y=1, z=1),  # 3 keys from a: the most different pair is a, c
        cond("d", x=0, y=1, z=0),  # 1 from a, 2 from c
        cond("e", x=1, y=1, z=0),  # 2 from a, 1 from c
    ]
    assert [c.name for c in pick_conditions(pool, 2)] == ["a", "c"]
    # then the one whose nearest chosen condition is farthest: b, d and e are all 1 away
    # from one of a, c; ties go to the pool's order
    assert [c.name for c in pick_conditions(pool, 3)] == ["a", "c", "b"]
    assert [c.name for c in pick_conditions(pool, 9)] == ["a", "b", "c", "d", "e"]
    with pytest.raises(ConfigError, match="at least 1"):
        pick_conditions(pool, 0)


def test_the_demo_screen_tries_all_factors_low_and_all_high():
    camp = load_campaign(ROOT / "campaigns" / "demo.toml")
    picked = pick_conditions(trial_pool(camp, camp.stage("screen")), 2)
    assert [c.name for c in picked] == ["all-low", "all-high"]
    low, high = (c.config for c in picked)
    assert {f.key: low[f.key] for f in camp.factors} == {f.key: f.low for f in camp.factors}
    assert {f.key: high[f.key] for f in camp.factors} == {f.key: f.high for f in camp.factors}
    # a continuing stage draws from its parent's design and the conditions it carries
    pool = trial_pool(camp, camp.stage("gate"))
    assert "small-fast" in [c.name for c in pool] and len(pool) == 2 + 16 + 2 - 1


def test_the_trial_plan_is_the_stage_at_the_trial_budget(tmp_path):
    data = tmp_path / "text.txt"
    data.write_text("words " * 500)
    camp = load_campaign(ROOT / "campaigns" / "demo.toml")
    stage = camp.stage("gate")
    picked = pick_conditions(trial_pool(camp, stage), 2)
    plan = trial_plan(camp, stage, picked, budget_s=3.0, data=data)
    assert plan["budget_s"] == 3.0 and plan["cells"] == [[0, "local"]]
    assert plan["runner"]["kind"] == "builtin" and plan["seeds"] == {"rule": "sha256-v2"}
    assert [r["condition"] for r in plan["runs"]] == [c.id for c in picked]
    info = plan["conditions"][picked[0].id]
    assert info["runner_config"]["eval_tokens"] == 32768  # resolved as freeze resolves it


TINY = """
[campaign]
name = "tiny"
data = "{data}"
[base]
depth = 1
device_batch_size = 4
seq_len = 16
total_batch_size = 64
eval_tokens = 256
[factors]
A = { key = "matrix_lr", levels = [0.01, 0.04] }
B = { key = "aspect_ratio", levels = [16, 32] }
[[stages]]
name = "screen"
budget = "10m"
design = "full"
rule = { top_k = 1 }
"""


@pytest.mark.slow
def test_try_the_builtin_runner_binds_its_header_to_the_trial_plan(tmp_path):
    data = tmp_path / "text.txt"
    data.write_text("in the beginning " * 400)
    (tmp_path / "c.toml").write_text(TINY.replace("{data}", str(data)))
    res = CliRunner().invoke(
        cli, ["try", "screen", "--campaign", str(tmp_path / "c.toml"), "--budget", "1s", "--json"]
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert [r["outcome"] for r in out["runs"]] == ["ok", "ok"]
    assert out["binding"]["level"] == "builtin" and out["keys_checked"]
    assert [r["config"]["matrix_lr"] for r in out["runs"]] == [0.01, 0.04]
    assert all(r["metrics"]["training_seconds"] >= 1.0 for r in out["runs"])  # the trial's budget
