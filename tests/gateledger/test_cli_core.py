"""The core commands: happy path, and bad input as one line with exit 2, nothing written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gateledger.cli.main import cli
from tests.ledger.conftest import C0, make_log, make_plan


def run(args, store, **kw):
    result = CliRunner().invoke(cli, ["--store", str(store), "--host", "h1", *args], **kw)
    return result


def one_line_error(result, code=2):
    assert result.exit_code == code, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.fixture
def ready(tmp_path):
    store = tmp_path / "s"
    assert run(["init"], store).exit_code == 0
    assert run(["keygen", "--name", "me"], store).exit_code == 0
    return store


def test_flow(ready, tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(make_plan()))
    out = run(["freeze", "--plan", str(plan), "--json"], ready)
    assert out.exit_code == 0, out.output
    mid = json.loads(out.output)["manifest"]
    one_line_error(run(["freeze", "--plan", str(plan)], ready))  # already frozen
    log = tmp_path / "run.jsonl"
    log.write_bytes(make_log(mid, val=1.234567891))
    out = run(
        ["ingest", str(log), "--manifest", mid, "--condition", "c0", "--seed", "0", "--host", "h1"],
        ready,
    )
    assert out.exit_code == 0, out.output
    assert out.output.strip().endswith("(ok, val_bpb 1.2346)"), out.output  # 4 decimals
    assert run(["anchor"], ready).exit_code == 0
    assert run(["reindex"], ready).exit_code == 0
    out = run(["sql", "SELECT condition, status FROM runs", "--json"], ready)
    assert json.loads(out.output) == [{"condition": C0, "status": "ok"}]
    assert C0 in run(["sql", "SELECT condition FROM runs"], ready).output
    status = json.loads(run(["status", "--json"], ready).output)
    assert status["by_kind"]["run"] == 1
    assert run(["keys", "--json"], ready).exit_code == 0
    assert run(["verify"], ready).exit_code == 0
    one_line_error(run(["sql", "DROP TABLE runs"], ready))
    one_line_error(run(["sql", "SELECT * FROM nope"], ready))
    run_path = next((ready / "parts/h1/objects").rglob("*"))
    assert run_path  # objects exist
    assert run(["freeze", "--plan", str(plan), "--amend"], ready).exit_code == 0


def test_verify_exit_1_names_object(ready, tmp_path):
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(make_plan()))
    mid = json.loads(run(["freeze", "--plan", str(plan), "--json"], ready).output)["manifest"]
    path = ready / "parts/h1/objects" / mid[:2] / mid
    path.chmod(0o644)
    path.write_bytes(path.read_bytes().replace(b"screen", b"screEn"))
    out = run(["verify"], ready)
    assert out.exit_code == 1 and f"{mid[:12]}: object is corrupted" in out.output
    assert mid not in out.output  # terminal lines cut ids to 12 hex
    found = json.loads(run(["verify", "--json"], ready).output)
    assert found["ok"] is False and found["problems"][0]["object"] == mid
    assert found["problems"][0]["check"] == "object bytes"


def _snapshot(root):
    return sorted((str(p), p.stat().st_size) for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize("case", ["malformed", "nan", "missing_key", "unknown_key"])
def test_bad_plan_input(ready, tmp_path, case):
    plan = tmp_path / "plan.json"
    good = make_plan()
    texts = {
        "malformed": "{not json",
        "nan": json.dumps(good).replace('"budget_s": 60', '"budget_s": NaN'),
        "missing_key": json.dumps({k: v for k, v in good.items() if k != "runs"}),
        "unknown_key": json.dumps(good),
    }
    plan.write_text(texts[case])
    before = _snapshot(ready)
    args = ["freeze", "--plan", str(plan)] + (["--key", "nobody"] if case == "unknown_key" else [])
    line = one_line_error(run(args, ready))
    assert ("plan" in line) or ("nobody" in line)
    assert _snapshot(ready) == before


def test_wrong_passphrase_and_missing_store(tmp_path, monkeypatch):
    store = tmp_path / "s"
    run(["init"], store)
    # without a terminal the prompt is refused, never waited on; the environment works
    assert "needs a terminal" in one_line_error(
        run(["keygen", "--name", "enc", "--passphrase-prompt"], store, input="pw\npw\n")
    )
    monkeypatch.setenv("LEDGER_PASSPHRASE", "pw")
    out = run(["keygen", "--name", "enc"], store)
    assert out.exit_code == 0, out.output
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps(make_plan()))
    monkeypatch.setenv("LEDGER_PASSPHRASE", "wrong")
    before = _snapshot(store)
    assert "wrong passphrase for key enc" in one_line_error(
        run(["freeze", "--plan", str(plan), "--key", "enc"], store)
    )
    assert _snapshot(store) == before
    assert "no ledger store" in one_line_error(run(["status"], tmp_path / "none"))
    assert not (tmp_path / "none").exists()


def test_bad_ids_and_unwritable(ready, tmp_path):
    log = tmp_path / "run.jsonl"
    log.write_bytes(make_log(None))
    assert "not an object id" in one_line_error(
        run(
            [
                "ingest",
                str(log),
                "--manifest",
                "XYZ",
                "--condition",
                "c",
                "--seed",
                "0",
                "--host",
                "h1",
            ],
            ready,
        )
    )
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where a folder should be")
    assert "blocked" in one_line_error(run(["init"], blocked / "store"))


def test_python_dash_m_and_the_console_script(ready):
    """The two real entry points, in a subprocess: `python -m gateledger` and `ledger`."""
    env = {**os.environ, "LEDGER_HOST": "h1"}
    proc = subprocess.run(
        [sys.executable, "-m", "gateledger", "--store", str(ready), "verify", "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 0 and json.loads(proc.stdout)["ok"] is True
    script = Path(sys.executable).with_name("ledger")
    proc = subprocess.run(
        [str(script), "--store", str(ready / "x"), "status"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 2 and proc.stderr.strip().startswith("error: no ledger store")
    proc = subprocess.run(
        [str(script), "--store", str(ready / "x"), "status", "--json"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert proc.returncode == 2 and json.loads(proc.stdout)["exit"] == 2
