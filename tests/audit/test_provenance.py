"""The provenance table, forged row by row (docs/threat-model.md, "Provenance").

Every number a decision, an effect or a cost uses has one source: the frozen manifest, the
journal, or the raw log's bytes parsed under the manifest's runner kind. Each row below
forges one number from the wrong source through a public path (a flag of `ledger ingest`,
a record the key holder's modified orchestrator writes, a file edit by a writer without the
key, `ledger freeze --plan`), lets the owner decide on it, and expects the audit to name it:
the check that fires, and the stage, condition, seed and host it concerns. The expected
findings are what each forgery is, not what the code happens to print.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from audit.rederive import audit_store
from gateledger.cli.main import cli
from ledger.canonical import canonical_bytes, sha256_hex
from ledger.keys import load_signing_key
from ledger.rawlog import parse_raw_log
from ledger.store import Store
from stages.lookup import Entry, current_manifest, manifest_runs
from tests.audit.conftest import rewrite_journal

LIAR = Path(__file__).with_name("liar.py")

CAMPAIGN = """
[campaign]
name = "prov"
runner = {{ command = "{python} {liar} --config {{config}} --seed {{seed}} --declared-seed {{declared_seed}} --log {{log}} --manifest {{manifest}} --host {{host}} --budget {{budget}}", format = "jsonl" }}
[base]
matrix_lr = 0.02
weight_decay = 0.1
[conditions]
good = {{ matrix_lr = 0.01 }}
mid = {{ matrix_lr = 0.02 }}
worst = {{ matrix_lr = 0.03 }}
[[stages]]
name = "gate"
budget = "5m"
add = ["good", "mid", "worst"]
seeds = [0, 1]
hosts = ["local"]
gpus = 2
rule = {{ top_k = 1 }}
"""


@dataclass
class Lab:
    """A store whose gate ran honestly (not decided yet), and how to reach it."""

    root: Path
    camp: Path
    tmp: Path

    def invoke(self, *args: str):
        return CliRunner().invoke(
            cli, ["--store", str(self.root), "--host", "local", *args], catch_exceptions=False
        )

    @property
    def store(self) -> Store:
        return Store.open(self.root, host="local")

    @property
    def key(self):
        return load_signing_key("op")

    @property
    def manifest(self) -> Entry:
        manifest = current_manifest(self.store, "prov", "gate")
        assert manifest is not None
        return manifest

    def run_of(self, name: str, seed: int = 0) -> Entry:
        names = {cid: info.name for cid, info in self.manifest.body.conditions.items()}
        return next(
            r
            for r in manifest_runs(self.store, self.manifest.id)
            if names[r.body.condition] == name and r.body.seed == seed
        )

    def replace(self, run: Entry, *, signed: bool = True, raw: bytes | None = None, **fields):
        """Swap a run's record (and log) for another: the key holder's modified orchestrator
        signs it and re-signs the journal head; a writer without the key cannot."""
        store, key = self.store, self.key
        body = {**run.body.to_dict(), **fields}
        if raw is not None:
            body["raw_log"] = store.put_bytes(raw)
        body.pop("recorder", None)
        new = (
            store.put_signed("run", {**body, "recorder": key.key_id}, key)
            if signed
            else store.put_unsigned("run", body)
        )
        journal = store.journal()
        events = [json.loads(x) for x in journal.path.read_text().splitlines()]
        events = [{**e, "object": new} if e["object"] == run.id else e for e in events]
        rewrite_journal(journal, events, key if signed else None)
        return new

    def relog(self, run: Entry, edit, **fields):
        """The run's log with `edit` applied to its parsed lines, and a record that says
        what the new log says (so only the forged number differs from its source)."""
        lines = [json.loads(x) for x in self.store.get_bytes(run.body.raw_log).splitlines()]
        edit(lines)
        raw = "".join(json.dumps(x) + "\n" for x in lines).encode()
        parsed = parse_raw_log(raw)
        return self.replace(run, raw=raw, metrics=parsed.metrics, **fields)


@pytest.fixture
def lab(tmp_path) -> Lab:
    camp = tmp_path / "prov.toml"
    camp.write_text(CAMPAIGN.format(python=sys.executable, liar=LIAR))
    out = Lab(tmp_path / ".ledger", camp, tmp_path)
    assert out.invoke("init").exit_code == 0
    assert out.invoke("keygen", "--name", "op").exit_code == 0
    assert out.invoke("freeze", "gate", "--campaign", str(camp)).exit_code == 0
    res = out.invoke("run", "gate", "--campaign", str(camp))
    assert res.exit_code == 0, res.output
    return out


def _summary(lines: list[dict]) -> dict:
    return next(x for x in lines if x["type"] == "summary")


# -- the forgeries: (lab) -> (object the finding names, run it is about or None) -----------


def forge_format(lab: Lab):
    """A made-up autoresearch summary credited to a run of a jsonl plan (the record says
    `format: autoresearch`, as `ledger ingest --format autoresearch` wrote it before)."""
    run = lab.run_of("worst")
    raw = b"---\nval_bpb: 0.5\ntraining_seconds: 0.001\ntotal_seconds: 0.002\n"
    parsed = parse_raw_log(raw, "autoresearch")
    oid = lab.replace(
        run, raw=raw, format="autoresearch", runner="autoresearch", metrics=parsed.metrics
    )
    return oid, run


def forge_gpus(lab: Lab):
    """The record says 1 GPU where the plan froze 2: half the GPU-hours."""
    run = lab.run_of("worst")
    return lab.replace(run, gpus=1), run


def forge_stage(lab: Lab):
    """The gate's GPU-hours booked under another stage."""
    run = lab.run_of("worst")
    return lab.replace(run, stage="screen"), run


def forge_short_training(lab: Lab):
    """A thousandth of the training seconds its siblings need for the same tokens."""
    run = lab.run_of("worst")

    def shorten(lines):
        _summary(lines)["training_seconds"] = _summary(lines)["training_seconds"] / 1000

    return lab.relog(run, shorten), run


def forge_long_training(lab: Lab):
    """More training seconds than passed between the run's journaled start and record."""
    run = lab.run_of("worst")
    return lab.relog(run, lambda lines: _summary(lines).update(training_seconds=5000.0)), run


def forge_total_seconds(lab: Lab):
    """More total seconds than the journal's start-to-record interval."""
    run = lab.run_of("worst")
    return lab.relog(run, lambda lines: _summary(lines).update(total_seconds=5000.0)), run


def forge_metric(lab: Lab):
    """The record's val_bpb is not the log's."""
    run = lab.run_of("worst")
    metrics = {**run.body.metrics.to_dict(), "val_bpb": 0.5}
    return lab.replace(run, metrics=metrics), run


def forge_status(lab: Lab):
    """A good run relabelled `timeout`, with a deadline that says it was killed early."""
    run = lab.run_of("good")

    def cut(lines):
        lines[:] = [x for x in lines if x["type"] not in ("eval", "summary")]

    return lab.relog(run, cut, status="timeout", deadline_s=0.001), run


def forge_seed(lab: Lab):
    """A header whose seed is not the one the plan's rule derives."""
    run = lab.run_of("worst")
    return lab.relog(run, lambda lines: lines[0].update(seed=lines[0]["seed"] + 7)), run


def forge_config(lab: Lab):
    """A log of another config credited to this condition."""
    run = lab.run_of("worst")
    return lab.relog(run, lambda lines: lines[0].update(matrix_lr=0.01)), run


def forge_budget(lab: Lab):
    """A log of another budget."""
    run = lab.run_of("worst")
    return lab.relog(run, lambda lines: lines[0].update(budget_s=3000.0)), run


def forge_wall(lab: Lab):
    """A writer without the key moves a run's journaled start an hour earlier (more wall
    time, or a `timeout` that looks earned) and re-chains the journal."""
    run = lab.run_of("worst")
    journal = lab.store.journal()
    events = [json.loads(x) for x in journal.path.read_text().splitlines()]
    for e in events:
        if e["kind"] == "run_started" and e["run"] == run.body.run:
            e["at"] = "2000-01-01T00:00:00+00:00"
    rewrite_journal(journal, events)  # no key: the head cannot be signed
    return "parts/local/journal.head", None


def forge_record_without_key(lab: Lab):
    """A writer without the key replaces a record and its log (unsigned)."""
    run = lab.run_of("worst")
    return lab.replace(
        run, signed=False, metrics={**run.body.metrics.to_dict(), "val_bpb": 0.5}
    ), run


def forge_attempts(lab: Lab):
    """A run tried again and again until lucky: more starts than the plan's max_attempts."""
    run = lab.run_of("worst")
    journal = lab.store.journal()
    for _ in range(2):
        journal.append("run_started", run=run.body.run, manifest=lab.manifest.id, key=lab.key)
    return lab.manifest.id, run


def _continuing_plan(lab: Lab, **changes) -> dict:
    """A plan for a stage continuing the gate (decided first), as `freeze --plan` takes."""
    res = lab.invoke("decide", "gate", "--campaign", str(lab.camp), "--json")
    assert res.exit_code == 0, res.output
    decision = json.loads(res.output)
    body = lab.store.get_json(lab.manifest.id)["body"]  # the signed JSON, as frozen
    keep = {k: body[k] for k in ("campaign", "budget_s", "rule", "analysis", "runner")}
    conditions = {cid: decision["conditions"][cid] for cid in decision["promoted"]}
    plan = {
        **keep,
        "stage": "next",
        "data_sha256": None,
        "parent": decision["decision"],
        "conditions": conditions,
        "runs": [{"condition": c, "seed": 0, "host": "local"} for c in conditions],
        "seeds": {"rule": "sha256-v2"},
        **changes,
    }
    return plan


def _freeze_plan(lab: Lab, plan: dict) -> str:
    path = lab.tmp / "plan.json"
    path.write_text(json.dumps(plan))
    res = lab.invoke("freeze", "--plan", str(path), "--json")
    assert res.exit_code == 0, res.output
    return json.loads(res.output)["manifest"]


def forge_candidates(lab: Lab):
    """A continuing plan citing the right parent that lists a condition its gate did not
    promote."""
    body = lab.manifest.body
    worst = next(c for c, i in body.conditions.items() if i.name == "worst")
    plan = _continuing_plan(lab)
    plan["conditions"][worst] = body.conditions[worst].to_dict()
    plan["runs"].append({"condition": worst, "seed": 0, "host": "local"})
    return _freeze_plan(lab, plan), None


def forge_runner_config(lab: Lab):
    """A condition that trains another condition's runner config while showing its own."""
    plan = _continuing_plan(lab)
    (cid,) = plan["conditions"]
    plan["conditions"][cid] = {
        **plan["conditions"][cid],
        "runner_config": {"matrix_lr": 0.03, "weight_decay": 0.1},
    }
    return _freeze_plan(lab, plan), None


def forge_condition_id(lab: Lab):
    """A condition named by an id that is not its config's hash (refused by `freeze`, so
    the key holder signs the manifest by hand)."""
    plan = _continuing_plan(lab)
    (cid,) = plan["conditions"]
    fake = sha256_hex(b"another recipe")
    plan["conditions"] = {fake: plan["conditions"][cid]}
    plan["runs"] = [{"condition": fake, "seed": 0, "host": "local"}]
    store, key = lab.store, lab.key
    body = {
        **plan,
        "max_attempts": 1,
        "frozen_at": datetime.now(UTC).isoformat(timespec="microseconds"),
        "freezer": key.key_id,
        "amends": None,
        "records": "signed",
    }
    mid = store.put_signed("manifest", body, key)
    store.journal().append("manifest_frozen", object=mid, key=key)
    return mid, None


def forge_unbound_seeds(lab: Lab):
    """A `--plan` without a seed rule: its runs' seeds are the operator's private choice."""
    plan = _continuing_plan(lab)
    del plan["seeds"]
    return _freeze_plan(lab, plan), None


def forge_decision(lab: Lab):
    """The decision re-signed with another winner."""
    res = lab.invoke("decide", "gate", "--campaign", str(lab.camp), "--json")
    decision = json.loads(res.output)
    store, key = lab.store, lab.key
    raw = store.get_json(decision["decision"])["body"]
    names = {i.name: c for c, i in lab.manifest.body.conditions.items()}
    body = {**raw, "promoted": [names["worst"]]}
    forged = store.put_signed("decision", body, key)
    journal = store.journal()
    events = [json.loads(x) for x in journal.path.read_text().splitlines()]
    events = [{**e, "object": forged} if e["object"] == decision["decision"] else e for e in events]
    rewrite_journal(journal, events, key)
    return forged, None


# row id -> (forgery, check that must fire, words its message holds)
ROWS = {
    "runner kind and format": (forge_format, "log format", "fixes 'jsonl'"),
    "GPUs": (forge_gpus, "GPUs", "fixes 2"),
    "stage booked": (forge_stage, "booked stage", "fixes 'gate'"),
    "training seconds (too few)": (forge_short_training, "throughput consistent", "x the median"),
    "training seconds (too many)": (
        forge_long_training,
        "status has evidence",
        "claims 5000 training",
    ),
    "total seconds": (forge_total_seconds, "status has evidence", "claims 5000 total seconds"),
    "wall seconds (journal times)": (forge_wall, "signed journal head", "not signed"),
    "metric": (forge_metric, "metrics match the raw log", "the record says val_bpb 0.5000"),
    "status and deadline": (forge_status, "status has evidence", "before its deadline of 300 s"),
    "seed": (forge_seed, "raw log binds to its run", "is not the effective seed"),
    "config": (forge_config, "raw log binds to its run", "header matrix_lr 0.01"),
    "budget": (forge_budget, "raw log binds to its run", "header budget_s 3000.0"),
    "run record": (forge_record_without_key, "signed records", "run record is not signed"),
    "attempts": (forge_attempts, "attempts within max_attempts", "attempted 3 times"),
    "candidates": (forge_candidates, "candidates derived", "was not promoted by its parent"),
    "runner config": (forge_runner_config, "candidates derived", "trains runner config"),
    "condition id": (forge_condition_id, "candidates derived", "is not the hash of its config"),
    "seeds bound": (forge_unbound_seeds, "seeds bound", "seeds unbound"),
    "decision": (forge_decision, None, "does not match the frozen rule"),
}


@pytest.mark.slow
@pytest.mark.parametrize("row", sorted(ROWS))
def test_each_number_forged_from_the_wrong_source_is_a_finding(lab, row):
    forge, check, words = ROWS[row]
    honest = audit_store(lab.store, allow_undecided=True)
    assert honest.verdict == "clean", [str(f) for f in honest.problems]
    obj, run = forge(lab)
    lab.invoke("decide", "gate", "--campaign", str(lab.camp))  # the owner decides on it
    result = audit_store(lab.store, allow_undecided=True)
    hits = [f for f in result.problems if f.object == obj and words in f.message]
    assert hits, [str(f) for f in result.problems]
    if check is not None:
        assert any(f.check == check for f in hits), [(f.check, str(f)) for f in hits]
    if run is not None:  # a run's finding names where it is
        where = {(f.stage, f.condition, f.seed, f.host) for f in hits}
        body = run.body
        assert ("gate", body.condition, body.seed, body.host) in where, where
    assert lab.invoke("audit", "--allow-undecided").exit_code == 1


def test_the_costs_take_the_plans_gpus_and_stage_not_the_records(lab):
    """Whatever the record says, the gate's GPU-hours are its logs' training seconds times
    the manifest's GPUs, booked under the manifest's stage."""
    forge_gpus(lab)
    result = audit_store(lab.store, allow_undecided=True)
    seconds = 0.0
    for run in manifest_runs(lab.store, lab.manifest.id):
        parsed = parse_raw_log(lab.store.get_bytes(run.body.raw_log))
        seconds += parsed.metrics["training_seconds"]
    assert set(result.costs.all.by_stage) == {"gate"}
    assert result.costs.all.by_stage["gate"].training_gpu_hours == pytest.approx(seconds * 2 / 3600)


@pytest.mark.parametrize(
    "flag, value, words",
    [
        ("--format", "autoresearch", "writes jsonl logs, not autoresearch"),
        ("--gpus", "1", "froze 2 GPU(s) per run, not 1"),
        ("--stage", "screen", "is stage 'gate', not 'screen'"),
    ],
    ids=["--format", "--gpus", "--stage"],
)
def test_ingest_flags_never_override_the_plan(lab, flag, value, words):
    run = lab.run_of("worst", seed=1)
    log = lab.tmp / "again.jsonl"
    log.write_bytes(lab.store.get_bytes(run.body.raw_log))
    res = lab.invoke(
        "ingest",
        str(log),
        "--manifest",
        lab.manifest.id,
        "--condition",
        "worst",
        "--seed",
        "1",
        "--host",
        "local",
        flag,
        value,
    )
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 2 and len(lines) == 1 and words in lines[0], res.output


def test_canonical_ids_keep_hashing(lab):
    """The condition ids the plan uses are the hashes of their configs (independently)."""
    for cid, info in lab.manifest.body.conditions.items():
        assert cid == sha256_hex(canonical_bytes(info.config))


def test_a_runner_kind_the_audit_does_not_know_is_a_finding(lab):
    """The kind decides which checks a log must pass: one the audit cannot read is named."""
    mid = _freeze_plan(lab, _continuing_plan(lab, runner={"kind": "docker"}))
    result = audit_store(lab.store, allow_undecided=True)
    (hit,) = [f for f in result.problems if f.check == "runner kind known"]
    assert hit.object == mid and "runner kind 'docker' is unknown" in hit.message
