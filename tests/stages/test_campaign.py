"""Campaign parsing: the contract keys, and one clear error naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.errors import CampaignError, LedgerError
from stages.campaign import budget_label, load_campaign, parse_budget, parse_campaign

ROOT = Path(__file__).resolve().parents[2]

MINIMAL = """
[campaign]
name = "t"
[base]
depth = 2
[factors]
A = { key = "total_batch_size", levels = [1024, 4096] }
B = { key = "depth", levels = [2, 4] }
[conditions]
base = { }
hi = { A = 1, B = -1 }
[[stages]]
name = "screen"
budget = "2m"
design = "full"
rule = { top_k = 2, keep = ["base"] }
"""


def test_budget_units():
    assert parse_budget("90s", "x") == 90
    assert parse_budget("2m", "x") == 120
    assert parse_budget("12h", "x") == 43200
    assert parse_budget(30, "x") == 30
    for bad in ("-1m", "2d", "", True, 0):
        with pytest.raises(LedgerError, match="budget"):
            parse_budget(bad, "x")


def test_budget_label_is_the_shortest_inverse():
    cases = {90: "90s", 120: "2m", 5400: "90m", 43200: "12h", 7.5: "7.5s", 3600.0: "1h"}
    for seconds, label in cases.items():
        assert budget_label(seconds) == label
        assert parse_budget(label, "x") == seconds
    assert budget_label(float("nan")) == budget_label(None) == "?"


def test_shipped_campaigns_parse():
    demo = load_campaign(ROOT / "campaigns" / "demo.toml")
    assert [f.key for f in demo.factors] == [
        "total_batch_size",
        "depth",
        "aspect_ratio",
        "matrix_lr",
        "warmdown_ratio",
    ]
    assert [s.name for s in demo.stages] == ["screen", "gate", "confirm"]
    paper = load_campaign(ROOT / "campaigns" / "paper.toml")
    assert [s.budget_s for s in paper.stages] == [120, 300, 600, 3600, 43200]
    assert paper.stage("gate-10m").cells == [(0, "a100"), (1, "a100"), (0, "l40s"), (1, "l40s")]


def test_named_condition_coded_levels_become_config_values():
    camp = parse_campaign(MINIMAL, "m.toml")
    assert camp.named["hi"] == {"total_batch_size": 4096, "depth": 2}
    assert camp.named["base"] == {}


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda t: t.replace('name = "t"', ""), r"^m\.toml: campaign\.name: is required$"),
        (
            lambda t: t.replace("top_k = 2", "top_kk = 2"),
            r"^m\.toml: stages\[0\]\.rule\.top_kk \(stage 'screen'\): unknown key \(known: "
            r"failed, fdr, keep, max_gap, min_cells, reduce, top_k, wins_all_cells, within\)$",
        ),
        (
            lambda t: t.replace('budget = "2m"', 'budget = "2 days"'),
            r"^m\.toml: stages\[0\]\.budget \(stage 'screen'\): must be like '90s', '2m' or "
            r"'12h', not '2 days'$",
        ),
        (
            lambda t: t.replace('design = "full"', 'design = "half"'),
            r"stages\[0\]\.design \(stage 'screen'\): must be 'full' or 'fractional', not 'half'",
        ),
        (
            lambda t: t.replace('keep = ["base"]', 'keep = ["nope"]'),
            r"stages\[0\]\.rule\.keep\[0\] \(stage 'screen'\): names 'nope', which is not in",
        ),
        (lambda t: t.replace("B = { key", "C = { key"), r"factors: must be named A, B, C"),
        (
            lambda t: t.replace("hi = { A = 1", "hi = { A = 2"),
            r"^m\.toml: conditions\.hi\.A: coded levels are -1 or 1, not 2$",
        ),
        (
            lambda t: t + "\n[[stages]]\nname = 'g'\nbudget = '5m'\nfrom = 'later'\n",
            r"stages\[1\]\.from \(stage 'g'\): names 'later', which is not an earlier stage",
        ),
        (
            lambda t: t.replace("[base]", "[bogus]\n[base]"),
            r"^m\.toml: bogus: unknown key \(known: base, campaign, conditions, factors, sim, "
            r"stages\)$",
        ),
        (lambda t: t.replace("[campaign]", "[campaign"), r"malformed TOML"),
        (
            lambda t: t.replace("depth = 2", "depht = 2"),
            r"^m\.toml: base\.depht: 'depht' is not a key the builtin runner accepts \(known: "
            r"depth, ",
        ),
        (
            lambda t: t.replace("top_k = 2", "top_k = 2, reduce = true"),
            r"stages\[0\]\.rule \(stage 'screen'\): reduce requires fdr",
        ),
        (
            lambda t: t.replace("top_k = 2", "top_k = true"),
            r"stages\[0\]\.rule\.top_k \(stage 'screen'\): must be an integer, not True",
        ),
        (
            lambda t: t.replace("levels = [2, 4]", "levels = [2, 2]"),
            r"^m\.toml: factors\.B\.levels: must be two different values, not \[2, 2\]$",
        ),
        (
            lambda t: t.replace('design = "full"', 'design = "fractional"\nruns = 6'),
            r"^m\.toml: stages\[0\]\.runs \(stage 'screen'\): must be a power of two >= 2, "
            r"not 6$",
        ),
        (
            lambda t: t.replace('design = "full"', 'design = "full"\nseeds = [0, 1, 0]'),
            r"^m\.toml: stages\[0\]\.seeds \(stage 'screen'\): has duplicates: \[0, 1, 0\]$",
        ),
        (
            lambda t: t.replace('design = "full"', 'design = "full"\nhosts = ["a", "a"]'),
            r"^m\.toml: stages\[0\]\.hosts \(stage 'screen'\): has duplicates: \['a', 'a'\]$",
        ),
        (
            lambda t: t.replace('design = "full"', "").replace(', keep = ["base"]', ""),
            r"^m\.toml: stages\[0\] \(stage 'screen'\): no candidates \(set design, from or "
            r"add\)$",
        ),
    ],
)
def test_errors_name_file_and_key(edit, message):
    with pytest.raises(CampaignError, match=message) as caught:
        parse_campaign(edit(MINIMAL), "m.toml")
    assert isinstance(caught.value, LedgerError) and caught.value.exit_code == 2
    assert "\n" not in str(caught.value)


def test_every_problem_is_said_on_one_line():
    text = MINIMAL.replace("top_k = 2", "top_k = 0").replace("depth = 2", "depht = 2")
    with pytest.raises(CampaignError) as caught:
        parse_campaign(text, "m.toml")
    message = str(caught.value)
    assert "stages[0].rule.top_k (stage 'screen'): must be >= 1, not 0" in message
    assert "base.depht:" not in message  # the shape is checked first, then what relates tables
    with pytest.raises(CampaignError, match=r"conditions\.hi\.A: coded levels.*; base\.depht:"):
        parse_campaign(
            MINIMAL.replace("depth = 2", "depht = 2").replace("hi = { A = 1", "hi = { A = 3"),
            "m.toml",
        )


def test_missing_file_is_one_line(tmp_path):
    with pytest.raises(CampaignError, match="campaign file not found"):
        load_campaign(tmp_path / "nope.toml")
