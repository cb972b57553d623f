"""What a reviewer reads in the terminal and in `--json`: caveats naming keys by name and
id, and a tampered raw log said in words, its consequences grouped under it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateledger.cli.main import cli
from ledger.keys import DEMO_KEY_NAME
from ledger.store import Store
from tests.objects import edit_object


def ledger(store: Path, *args: str, code: int = 0) -> str:
    res = CliRunner().invoke(cli, ["--store", str(store), *args])
    assert res.exit_code == code, res.output
    return res.output


@pytest.fixture
def demo_store(tmp_path, sim_campaign) -> Path:
    """The conftest sim campaign walked to the end, signed with the demo key."""
    store = tmp_path / ".ledger"
    ledger(store, "init")
    ledger(store, "campaign", "--campaign", str(sim_campaign), "--executor", "sim", "--demo-key")
    return store


def _demo_key_id(store: Path) -> str:
    keys = json.loads(ledger(store, "keys", "--json"))["store_keys"]
    (key,) = [k for k in keys if k["name"] == DEMO_KEY_NAME]
    return key["key_id"]


def test_caveats_name_the_demo_key_in_terminal_and_json(demo_store, tmp_path):
    key_id = _demo_key_id(demo_store)
    exported = tmp_path / "lab-keys.json"
    ledger(demo_store, "keys", "--export", str(exported))
    text = ledger(demo_store, "audit", "--trust-file", str(exported))
    # the reviewer trusts the demo key: said in the terminal, by name and id
    assert f"caveat: Signed with the demo key {DEMO_KEY_NAME} [{key_id}]" in text
    assert "note: trust: signatures checked against the reviewer's keys only: " in text
    assert f"{DEMO_KEY_NAME} [{key_id}]" in text.split("note: trust:")[1]
    assert "caveat: All " in text and " runs are simulated (runner: sim)" in text
    assert "caveat: No anchor was made" in text
    assert "store-asserted" not in text  # the reviewer named keys
    # each stage says how its seeds are bound; the same reason is spelled out once
    seed_lines = [line.strip() for line in text.splitlines() if line.strip().startswith("seeds ")]
    assert len(seed_lines) == len(json.loads(ledger(demo_store, "audit", "--json"))["stages"])
    assert seed_lines[0].startswith("seeds manifest-bound (sha256-v2): grindable by the key holder")
    assert all(line == "seeds manifest-bound (sha256-v2) (as above)" for line in seed_lines[1:])
    out = json.loads(ledger(demo_store, "audit", "--trust-file", str(exported), "--json"))
    kinds = [c["kind"] for c in out["caveats"]]
    assert kinds == ["simulated", "demo_key", "no_anchor"]
    demo = out["caveats"][1]
    assert demo["keys"] == [{"key_id": key_id, "name": DEMO_KEY_NAME}]
    assert out["trusted"] == [{"key_id": key_id, "name": DEMO_KEY_NAME}]
    # without a trust file the audit says trust is the store's own assertion
    plain = json.loads(ledger(demo_store, "audit", "--json"))
    assert [c["kind"] for c in plain["caveats"]][-1] == "store_trust"


def test_run_count_in_the_simulated_caveat_is_the_campaigns(demo_store):
    rows = json.loads(ledger(demo_store, "runs", "--json"))["rows"]
    out = json.loads(ledger(demo_store, "audit", "--json"))
    (sim,) = [c for c in out["caveats"] if c["kind"] == "simulated"]
    assert sim["text"].startswith(f"All {len(rows)} runs are simulated")
    assert sim["stages"] == ["screen", "gate", "final"]


def test_trust_file_that_is_the_keys_listing_says_which_command_writes_records(
    demo_store, tmp_path
):
    listing = tmp_path / "keys.json"
    listing.write_text(ledger(demo_store, "keys", "--json"))
    res = CliRunner().invoke(
        cli, ["--store", str(demo_store), "audit", "--trust-file", str(listing)]
    )
    assert res.exit_code == 2
    assert "ledger keys --export FILE" in res.output and "Traceback" not in res.output
    help_text = " ".join(ledger(demo_store, "audit", "--help").split())
    assert "ledger keys --export" in help_text and "ledger keys --json" not in help_text


def _final_run(store: Path, condition: str, seed: int, host: str) -> dict:
    rows = json.loads(ledger(store, "runs", "--stage", "final", "--json"))["rows"]
    (row,) = [r for r in rows if (r["condition"], r["seed"], r["host"]) == (condition, seed, host)]
    (raw,) = json.loads(
        ledger(store, "sql", f"select raw_log from runs where id = '{row['run']}'", "--json")
    )
    return {**row, "raw_log": raw["raw_log"]}


def test_an_edited_raw_log_is_said_in_words_with_its_consequences(demo_store):
    run = _final_run(demo_store, "base", 0, "h1")
    store = Store.open(demo_store, host="h1")
    recorded = run["val_bpb"]
    edited = round(recorded - 1.0, 6)
    old = json.dumps(recorded).encode()
    assert store.get_bytes(run["raw_log"]).count(old) == 2  # the eval line and the summary
    edit_object(store, run["raw_log"], lambda data: data.replace(old, json.dumps(edited).encode()))

    res = CliRunner().invoke(cli, ["--store", str(demo_store), "audit"])
    assert res.exit_code == 1
    lines = res.output.splitlines()
    first = next(i for i, line in enumerate(lines) if line.startswith("problem: "))
    assert lines[first] == (
        f"problem: {run['run'][:12]}: the raw log {run['raw_log'][:12]} of final / base / "
        f"seed 0 @ h1 was altered (its bytes no longer hash to its id): the record says "
        f"val_bpb {recorded:.4f}, the log now says {edited:.4f}"
    )
    follow = lines[first + 1 :]
    assert any(line.startswith("  also: ") and "corrupted" in line for line in follow)
    assert any(
        line.startswith("  so: ") and "of final does not match the frozen rule" in line
        for line in follow
    )
    # the GPU-hours the run no longer counts: its 60-minute budget, said as a consequence
    assert any(
        line.startswith("  so: ") and "count 0 training seconds" in line and "3600" in line
        for line in follow
    )
    assert not any(len(w) == 64 for line in lines for w in line.replace(":", " ").split())

    out = json.loads(
        CliRunner().invoke(cli, ["--store", str(demo_store), "audit", "--json"]).output
    )
    cause = out["causes"][0]
    root = cause["problem"]
    assert root["check"] == "raw log intact" and root["object"] == run["run"]
    assert (root["stage"], root["condition_name"], root["seed"], root["host"]) == (
        "final",
        "base",
        0,
        "h1",
    )
    assert root["condition"] == run["condition_id"]
    assert (root["recorded"], root["found"]) == (recorded, edited)
    checks = [p["check"] for p in cause["consequences"]]
    assert checks == ["decision reproduces from raw logs", "costs"]
    assert cause["consequences"][1]["recorded"] == 3600 and cause["consequences"][1]["found"] == 0
    # every problem carries every field, full ids
    for problem in out["problems"]:
        assert set(problem) == {
            "object",
            "message",
            "check",
            "stage",
            "condition",
            "condition_name",
            "seed",
            "host",
            "recorded",
            "found",
        }
        assert problem["check"] and problem["stage"] == "final"


def test_an_anchor_of_another_store_says_so(demo_store, tmp_path, sim_campaign):
    other = tmp_path / "other"
    ledger(other, "--host", "elsewhere", "init")
    ledger(other, "--host", "elsewhere", "keygen", "--name", "other-lab")
    ledger(
        other,
        "--host",
        "elsewhere",
        "freeze",
        "screen",
        "--campaign",
        str(sim_campaign),
        "--sim-only",
    )
    anchor = tmp_path / "anchor.json"
    anchor.write_text(ledger(other, "--host", "elsewhere", "anchor", "--json"))
    res = CliRunner().invoke(
        cli, ["--store", str(demo_store), "audit", "--anchor", str(anchor), "--json"]
    )
    assert res.exit_code == 1
    messages = [p["message"] for p in json.loads(res.output)["problems"]]
    assert any(
        m.startswith("this anchor names journal 'elsewhere', which this store does not hold")
        for m in messages
    ), messages


def test_reports_straight_from_a_bundle_under_the_reviewers_trust(
    demo_store, tmp_path, sim_campaign, monkeypatch
):
    key_id = _demo_key_id(demo_store)
    bundle, keys, anchor = tmp_path / "b.tar.gz", tmp_path / "keys.json", tmp_path / "a.json"
    ledger(demo_store, "export", str(bundle), "--campaign", str(sim_campaign))
    ledger(demo_store, "keys", "--export", str(keys))
    anchor.write_text(ledger(demo_store, "anchor", "--json"))
    anchor_id = json.loads(anchor.read_text())["anchor"]
    operator = json.loads(ledger(demo_store, "report", "costs", "--json"))

    reviewer = tmp_path / "reviewer"
    reviewer.mkdir()
    monkeypatch.chdir(reviewer)  # an empty folder: no store here
    trust = ["--bundle", str(bundle), "--trust-file", str(keys), "--anchor", str(anchor)]
    costs = json.loads(ledger(Path(".ledger"), "report", "costs", *trust, "--json"))
    # the same numbers as the operator's own report (the anchor adds no run)
    assert costs["costs"] == operator["costs"]
    assert costs["campaign"] == operator["campaign"]
    effects = json.loads(ledger(Path(".ledger"), "report", "effects", *trust, "--json"))
    assert [s["stage"] for s in effects["stages"]] == ["screen", "gate", "final"]
    out = ledger(Path(".ledger"), "report", "html", *trust, "--out", "rep", "--json")
    assert json.loads(out)["headline"]["audit_clean"] is True
    page = (reviewer / "rep" / "report.html").read_text()
    assert f"Checked from bundle {bundle} against the reviewer&#39;s keys" in page
    assert f"{DEMO_KEY_NAME} [{key_id}]" in page
    assert f"1 published anchor(s) given by the reviewer ({anchor_id[:12]})" in page
    assert "Trust is store-asserted" not in page  # the reviewer named the keys
    assert sorted(p.name for p in reviewer.iterdir()) == ["rep"]  # nothing else left behind

    # a reviewer who trusts another key sees every signature refused, in the report itself
    stranger = tmp_path / "stranger"
    ledger(stranger, "init")
    ledger(stranger, "keygen", "--name", "someone-else")
    other_keys = tmp_path / "other-keys.json"
    ledger(stranger, "keys", "--export", str(other_keys))
    res = CliRunner().invoke(
        cli,
        ["report", "html", "--bundle", str(bundle), "--trust-file", str(other_keys)]
        + ["--out", "rep2", "--json"],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["headline"]["audit_clean"] is False
    page = (reviewer / "rep2" / "report.html").read_text()
    assert "Audit verdict: PROBLEMS" in page and "which the reviewer does not trust" in page
