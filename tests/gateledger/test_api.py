"""The Python API (`import gateledger as gl`): its docstring example, the ledger's rules
enforced for scripts, typed errors, and what the command line makes of them."""

from __future__ import annotations

import ast
import doctest
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import gateledger as gl
from gateledger import errors
from gateledger.cli.main import cli

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(tmp_path):
    return gl.init(tmp_path / ".ledger", host="h1")


@pytest.fixture
def key(store):
    return gl.keygen("me", store=store)


@pytest.fixture
def camp(sim_campaign):
    return gl.load_campaign(sim_campaign)


def test_the_docstring_example_runs(tmp_path, monkeypatch):
    shutil.copy(ROOT / "campaigns" / "demo.toml", tmp_path / "campaign.toml")
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(gl, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 10 and result.failed == 0


def test_every_public_name_resolves_and_none_is_a_submodule():
    typed = {n for n in gl.__all__ if n[0].isupper() and n != "Signed"}
    assert set(gl.__all__) == set(gl._HOME_OF) | typed | {"errors"}
    for name in gl.__all__:
        value = getattr(gl, name)
        assert not isinstance(value, type(gl)) or name == "errors", name
    with pytest.raises(AttributeError):
        gl.no_such_verb  # noqa: B018


def test_the_names_editors_see_are_the_names_the_api_loads():
    """The TYPE_CHECKING imports (what an editor or type checker sees) name each function
    from the module `__getattr__` loads it from, so the two lists cannot drift apart."""
    tree = ast.parse((ROOT / "gateledger" / "__init__.py").read_text())
    seen = {
        alias.name: node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and (node.module or "").startswith("gateledger.")
        and node.module != "gateledger.errors"
        for alias in node.names
    }
    assert seen == gl._HOME_OF


def test_second_freeze_is_refused_and_amend_replaces(store, key, camp):
    first = gl.freeze(store, camp, "screen", key=key, sim_only=True)
    assert first.body["stage"] == "screen" and first.timestamps == []
    with pytest.raises(gl.AlreadyFrozen, match="already frozen as manifest"):
        gl.freeze(store, camp, "screen", key=key, sim_only=True)
    amended = gl.freeze(store, camp, "screen", key=key, amend=True, sim_only=True)
    assert amended.body["amends"] == first.id and amended.id != first.id


def test_second_freeze_of_an_explicit_plan_is_refused_at_the_lowest_layer(store, key, camp):
    from ledger.manifest import freeze
    from stages.plan import build_plan

    plan = build_plan(store, camp, "screen", for_simulation=True)
    first = gl.freeze_plan(store, plan, key=key)
    with pytest.raises(gl.AlreadyFrozen, match=f"already frozen as manifest {first.id}"):
        freeze(store, plan, key)
    with pytest.raises(gl.AlreadyFrozen):
        gl.freeze_plan(store, plan, key=key)
    assert gl.freeze_plan(store, plan, key=key, amend=True).body["amends"] == first.id


def test_decide_before_runs_then_twice(store, key, camp):
    gl.freeze(store, camp, "screen", key=key, sim_only=True)
    with pytest.raises(gl.MissingRuns, match="17 of 17 declared runs not recorded"):
        gl.decide(store, camp, "screen", key=key)
    gl.run(store, camp, "screen", executor="sim")
    decided = gl.decide(store, camp, "screen", key=key)
    assert decided.key.key_id == key.key_id and decided.body["decider"] == key.key_id
    with pytest.raises(gl.AlreadyDecided, match="decisions are final"):
        gl.decide(store, camp, "screen", key=key)


def test_decide_with_allow_missing_records_what_is_missing(store, key, camp):
    gl.freeze(store, camp, "screen", key=key, sim_only=True)
    gl.run(store, camp, "screen", executor="sim", limit=10)
    body = gl.decide(store, camp, "screen", key=key, allow_missing=True).body
    assert len(body["missing"]) == 7 and len(body["runs"]) == 10


def test_freeze_without_any_key_is_a_signing_key_error(store, camp):
    with pytest.raises(gl.SigningKeyError, match="no signing key"):
        gl.freeze(store, camp, "screen", sim_only=True)
    assert gl.status(store)["by_kind"] == {}  # nothing written


def test_several_keys_and_no_choice_is_a_signing_key_error(tmp_path, camp):
    store = gl.init(tmp_path / "s", host="h1")
    gl.keygen("a")
    gl.keygen("b")
    with pytest.raises(gl.SigningKeyError, match="several keys"):
        gl.freeze(store, camp, "screen", sim_only=True)
    gl.set_default(store, "b")
    assert gl.freeze(store, camp, "screen", sim_only=True).key.name == "b"


def test_a_bad_campaign_is_a_campaign_error(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[campaign]\nname = 3\n")
    with pytest.raises(gl.CampaignError):
        gl.load_campaign(bad)
    with pytest.raises(gl.CampaignError):
        gl.load_campaign(tmp_path / "missing.toml")


def test_audit_of_a_tampered_store_names_the_object(store, key, camp):
    gl.walk(store, camp, key=key, executor="sim", until="screen")
    clean = gl.audit(store)
    assert clean.ok and clean.problems == [] and clean.verdict == "clean"
    run = gl.runs(store)[0]["run"]
    record = next(p for oid, p in store.iter_objects() if oid == run)
    record.chmod(0o644)
    record.write_bytes(record.read_bytes().replace(b'"status":"ok"', b'"status":"oK"'))
    result = gl.audit(store)
    assert not result.ok and result.verdict == "problems"
    assert any(run in str(p) for p in result.problems)
    assert not gl.verify(store).ok


def test_runs_rows_go_into_a_dataframe(store, key, camp):
    gl.walk(store, camp, key=key, executor="sim", until="screen")
    frame = pd.DataFrame(gl.runs(store))
    assert len(frame) == 17 and set(frame["status"]) == {"ok"}
    assert {"stage", "condition", "seed", "host", "val_bpb", "gpu_hours"} <= set(frame.columns)
    assert len(gl.runs(store, stages=["screen"], statuses=["crashed"])) == 0
    with pytest.raises(gl.LedgerError, match="no stage 'gate' in this store"):
        gl.runs(store, stages=["gate"])


def test_report_and_design_are_what_the_commands_show(store, key, camp):
    gl.walk(store, camp, key=key, executor="sim", until="screen")
    data = gl.report(store, camp)
    assert data.audit.verdict == "clean" and [s.name for s in data.stages] == ["screen"]
    assert gl.cost_summary(data).costs.n_runs == 17
    design = gl.design(campaign=camp, stage="screen")
    assert len(design["runs"]) == 16 and design["resolution_roman"] == "V"
    assert len(design["conditions"]) == 16
    with pytest.raises(gl.ConfigError):
        gl.design()


def test_typed_errors_are_ledger_errors_with_their_exit_code():
    typed = [
        errors.CampaignError,
        errors.ConfigError,
        errors.AlreadyFrozen,
        errors.AlreadyDecided,
        errors.MissingRuns,
        errors.SigningKeyError,
        errors.BundleError,
        errors.CanonicalError,
        errors.JSONInputError,
        errors.TimestampError,
        errors.TrustError,
    ]
    for error in typed:
        assert issubclass(error, gl.LedgerError) and error("x").exit_code == 2, error
    assert issubclass(errors.IntegrityError, gl.LedgerError)
    assert errors.IntegrityError("x").exit_code == 1
    assert gl.AlreadyFrozen is errors.AlreadyFrozen
    from ledger.errors import AlreadyFrozen

    assert AlreadyFrozen is gl.AlreadyFrozen  # re-exported, not redefined


def cli_run(store_dir, *args):
    return CliRunner().invoke(cli, ["--store", str(store_dir), "--host", "h1", *args])


def test_cli_refusals_stay_one_line_with_exit_2(tmp_path, sim_campaign):
    store_dir = tmp_path / ".ledger"
    camp = ["--campaign", str(sim_campaign)]
    assert cli_run(store_dir, "init").exit_code == 0
    assert cli_run(store_dir, "freeze", "screen", *camp, "--sim-only").exit_code == 2
    assert cli_run(store_dir, "keygen", "--name", "me").exit_code == 0
    assert cli_run(store_dir, "freeze", "screen", *camp, "--sim-only").exit_code == 0
    for args, words in (
        (("freeze", "screen", *camp, "--sim-only"), "is already frozen as manifest"),
        (("decide", "screen", *camp), "17 of 17 declared runs not recorded yet"),
    ):
        result = cli_run(store_dir, *args)
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert (
            len(lines) == 1 and lines[0].startswith("error: stage 'screen'") and words in lines[0]
        )
        result = cli_run(store_dir, *args, "--json")
        assert result.exit_code == 2 and json.loads(result.output)["exit"] == 2
    assert cli_run(store_dir, "run", "screen", *camp, "--executor", "sim").exit_code == 0
    assert cli_run(store_dir, "decide", "screen", *camp).exit_code == 0
    result = cli_run(store_dir, "decide", "screen", *camp, "--json")
    out = json.loads(result.output)
    assert result.exit_code == 2 and out["exit"] == 2 and "decisions are final" in out["error"]
