"""The method commands as a user types them: exit codes, one-line errors, --json."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from gateledger.cli.main import cli

MONTGOMERY = [45, 71, 48, 65, 68, 60, 80, 65, 43, 100, 45, 104, 75, 86, 70, 96]


@pytest.fixture
def runner():
    return CliRunner()


def invoke(runner, store, *args):
    return runner.invoke(cli, ["--store", str(store), *args])


def test_design_json_reports_resolution_and_aliases(runner, tmp_path):
    res = invoke(runner, tmp_path, "design", "2^(7-4)", "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["resolution"] == 3 and len(out["runs"]) == 8
    assert len(out["defining_relation"]) == 15
    res = invoke(runner, tmp_path, "design", "2^(5-1)")
    assert "resolution V" in res.output and "I = ABCDE" in res.output


def test_effects_csv_gives_textbook_lenth_answer(runner, tmp_path):
    rows = ["A,B,C,D,y"]
    for i, y in enumerate(MONTGOMERY):
        levels = [1 if (i >> j) & 1 else -1 for j in range(4)]
        rows.append(",".join(map(str, levels)) + f",{y}")
    path = tmp_path / "filtration.csv"
    path.write_text("\n".join(rows) + "\n")
    res = invoke(
        runner, tmp_path, "effects", str(path), "--response", "y", "--terms", "all", "--json"
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    effects = {e["term"]: e["effect"] for e in out["effects"]}
    assert out["method"] == "lenth" and out["pse"] == pytest.approx(2.625)
    assert effects["A"] == pytest.approx(21.625) and effects["AC"] == pytest.approx(-18.125)
    assert out["block"] is None and out["dropped"] == [] and out["effects"][0]["aliases"] == []
    res = invoke(runner, tmp_path, "effects", str(path), "--response", "y", "--terms", "A,B,AB")
    assert res.exit_code == 0 and "95% interval" in res.output


def test_campaign_walk_audit_and_tamper(runner, tmp_path, sim_campaign):
    store = tmp_path / ".ledger"
    assert invoke(runner, store, "init").exit_code == 0
    assert invoke(runner, store, "keygen", "--name", "me").exit_code == 0
    res = invoke(
        runner, store, "campaign", "--campaign", str(sim_campaign), "--executor", "sim", "--json"
    )
    assert res.exit_code == 0, res.output
    steps = json.loads(res.output)["steps"]
    assert [s["stage"] for s in steps if s["action"] == "decided"] == ["screen", "gate", "final"]
    res = invoke(runner, store, "audit", "--json")
    assert res.exit_code == 0 and json.loads(res.output)["verdict"] == "clean"
    res = invoke(runner, store, "status", "--campaign", str(sim_campaign), "--json")
    rows = json.loads(res.output)["stages"]
    assert [(r["stage"], r["recorded"], r["declared"]) for r in rows] == [
        ("screen", 17, 17),
        ("gate", 20, 20),
        ("final", 12, 12),
    ]
    assert all(r["decision"] for r in rows) and "base" in rows[0]["promoted"]
    res = invoke(runner, store, "report", "costs", "--json")
    costs = json.loads(res.output)
    gate = next(s for s in steps if s["stage"] == "gate" and s["action"] == "decided")
    assert len(gate["promoted"]) == 3  # top 2 (within 0.05) + the kept anchor
    # screen 17 x 2 min; gate 5 candidates x 4 cells x 10 min; final 3 x 4 cells x 60 min
    assert costs["costs"]["training_gpu_hours"] == pytest.approx(
        (17 * 120 + 20 * 600 + 12 * 3600) / 3600
    )
    res = invoke(runner, store, "report", "effects", "--json")
    effects = json.loads(res.output)
    assert set(effects) == {"stages", "variance", "rank_stability", "flags"}
    screen = effects["stages"][0]["effects"]
    assert screen["method"] == "lenth" and screen["effects"][0]["aliases"] == ["BCDE"]
    assert effects["stages"][1]["effects"]["post_selection"] is True
    assert effects["variance"]["campaign"]["components"][0] == "budget"
    res = invoke(runner, store, "report", "effects")
    assert res.exit_code == 0 and "variance shares over" in res.output
    assert "post-selection (descriptive, no q)" in res.output
    victim = next(p for p in (store / "parts").rglob("objects/*/*"))
    victim.chmod(0o644)
    victim.write_bytes(victim.read_bytes() + b" ")
    res = invoke(runner, store, "audit")
    assert res.exit_code == 1 and victim.name[:12] in res.output  # terminal ids: 12 hex
    assert victim.name not in res.output
    res = invoke(runner, store, "audit", "--json")
    assert victim.name in {p["object"] for p in json.loads(res.output)["problems"]}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["freeze", "screen", "--campaign", "nope.toml"], "campaign file not found: nope.toml"),
        (["run", "nostage", "--campaign", "{c}"], "no stage named 'nostage'"),
        (["run", "screen", "--campaign", "{c}"], "never frozen"),
        (["decide", "screen", "--campaign", "{c}"], "no signing key"),
        (["design", "2^(x-1)"], "2^(x-1)"),
        (
            ["baseline", "random", "--campaign", "{c}", "--budget", "1m", "--match", "lots"],
            "--match must be",
        ),
        (["report", "html", "--out", "/proc/no-such-folder"], "/proc/no-such-folder"),
        (["export", "/proc/no-such-folder/b.tar.gz"], "/proc/no-such-folder"),
    ],
)
def test_bad_input_is_one_line_exit_2(runner, tmp_path, sim_campaign, args, needle):
    store = tmp_path / ".ledger"
    invoke(runner, store, "init")
    args = [a.replace("{c}", str(sim_campaign)) for a in args]
    res = invoke(runner, store, *args)
    assert res.exit_code == 2, res.output
    lines = [x for x in res.output.strip().splitlines() if x]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in res.output
