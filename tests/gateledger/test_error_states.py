"""Each state a script branches on is its own error type, raised through the public path:
the "not yet" states (never frozen, parent not decided), the "already" ones (recorded,
revoked, a key name taken), and what is not there (no store, an unknown id or key, a stage
of another store). Messages and exit codes are those the command line always printed."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

import gateledger as gl
from gateledger import errors
from gateledger.cli.main import cli
from ledger.ingest import ingest, record_run_start, recorded_runs
from stages.lookup import current_manifest


@pytest.fixture
def store(tmp_path):
    return gl.init(tmp_path / ".ledger", host="h1")


@pytest.fixture
def key(store):
    return gl.keygen("me", store=store)


@pytest.fixture
def camp(sim_campaign):
    return gl.load_campaign(sim_campaign)


def test_run_and_decide_before_freeze_are_not_frozen(store, key, camp):
    with pytest.raises(errors.NotFrozen, match="stage 'screen' was never frozen"):
        gl.run(store, camp, "screen", executor="sim")
    with pytest.raises(errors.NotFrozen, match="never frozen: run `ledger freeze screen`"):
        gl.decide(store, camp, "screen", key=key)
    with pytest.raises(errors.NotFrozen, match="was never frozen: nothing to amend"):
        gl.freeze(store, camp, "screen", key=key, sim_only=True, amend=True)


def test_freezing_a_gate_before_its_parent_is_decided(store, key, camp):
    gl.freeze(store, camp, "screen", key=key, sim_only=True)
    with pytest.raises(errors.ParentNotDecided, match="needs the signed decision of 'screen'"):
        gl.freeze(store, camp, "gate", key=key, sim_only=True)


def test_a_run_recorded_twice_and_a_run_never_declared(store, key, camp):
    manifest = gl.freeze(store, camp, "screen", key=key, sim_only=True)
    gl.run(store, camp, "screen", executor="sim")
    first = manifest.body.runs[0]
    record = store.get_json(next(iter(recorded_runs(store, manifest.id).values())))["body"]
    raw = store.get_bytes(record["raw_log"])
    cell = (record["condition"], record["seed"], record["host"])
    with pytest.raises(errors.AlreadyRecorded, match="run already recorded: "):
        ingest(
            store, raw, manifest=manifest.id, condition=cell[0], seed=cell[1], host=cell[2], key=key
        )
    with pytest.raises(errors.UndeclaredRun, match="is not declared in manifest"):
        record_run_start(store, manifest.id, first.condition, 99, first.host)


def test_no_store_unknown_ids_and_wrong_kinds(tmp_path, store, key, camp):
    with pytest.raises(errors.NoStore, match="no ledger store at"):
        gl.open_store(tmp_path / "elsewhere")
    with pytest.raises(errors.UnknownObject, match="unknown object ID"):
        store.get_bytes("0" * 64)
    with pytest.raises(errors.InvalidId, match="is too short"):
        store.resolve("abc")
    manifest = gl.freeze(store, camp, "screen", key=key, sim_only=True)
    entry = current_manifest(store, "t", "screen")
    assert entry is not None and entry.id == manifest.id
    with pytest.raises(errors.WrongKind, match=r"is a 'manifest', not a run record"):
        gl.reproduce(store, manifest.id)


def test_keys_a_name_taken_an_unknown_key_and_a_second_revocation(store, key):
    with pytest.raises(errors.KeyExists, match="key me already exists"):
        gl.keygen("me", store=store)
    with pytest.raises(errors.UnknownKey, match="no key in this store.s keyring with id f"):
        gl.revoke(store, "f" * 32, signer=key, reason="x")
    gl.revoke(store, key.key_id, signer=key, reason="leaked")
    with pytest.raises(errors.AlreadyRevoked, match="is already revoked"):
        gl.revoke(store, key.key_id, signer=key, reason="again")


def test_nothing_to_anchor_and_an_unknown_stage(store, key):
    with pytest.raises(errors.NothingToDo, match="nothing to anchor: every journal is empty"):
        gl.anchor(store, key=key)
    with pytest.raises(errors.UnknownStage, match="no stage 'nope' in this store"):
        gl.runs(store, stages=["nope"])


def test_a_bad_query_is_a_query_error(store):
    gl.rebuild_index(store)
    with pytest.raises(errors.QueryError, match="only one read-only query"):
        gl.sql(store, "DELETE FROM runs")


@pytest.mark.parametrize(
    ("error", "base"),
    [
        (errors.PlanError, errors.InputError),
        (errors.JSONInputError, errors.InputError),
        (errors.TrustError, errors.InputError),
        (errors.JournalLocked, errors.StorageError),
    ],
)
def test_narrow_errors_are_caught_by_their_family(error, base):
    assert issubclass(error, base) and issubclass(base, gl.LedgerError)


def test_the_command_line_keeps_its_lines_and_exit_codes(tmp_path, sim_campaign):
    runner = CliRunner()
    missing = runner.invoke(cli, ["--store", str(tmp_path / "none"), "status", "--json"])
    assert missing.exit_code == 2
    assert json.loads(missing.output) == {
        "error": f"no ledger store at {tmp_path / 'none'} (run `ledger init`)",
        "exit": 2,
    }
    store_dir = tmp_path / ".ledger"
    base = ["--store", str(store_dir), "--host", "h1"]
    assert runner.invoke(cli, [*base, "init"]).exit_code == 0
    assert runner.invoke(cli, [*base, "keygen", "--name", "me"]).exit_code == 0
    camp = ["--campaign", str(sim_campaign)]
    result = runner.invoke(cli, [*base, "decide", "screen", *camp])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: stage 'screen' was never frozen: run `ledger freeze screen` first"
    )
