"""The checks of one frozen stage plan (a manifest): ordering, coverage, lineage, decision.

Each failed check adds a finding naming the object, so a stage shown `[BAD]` always means
exit 1. A stage that is frozen but not decided is `undecided`, not clean.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from audit.attempt_checks import AttemptSummary, audit_attempts
from audit.baseline_checks import baseline_findings
from audit.evidence import Evidence
from audit.field_diff import field_diffs
from audit.frozen_spec import stage_from
from audit.lineage import plan_findings
from audit.locate import cell_words, run_place
from audit.runs import RunCheck
from audit.seed_checks import SeedBinding, seed_binding
from ledger.binding_level import BindingLevel, binding_level
from ledger.decision_model import Decision, DecisionBody
from ledger.document import one_line
from ledger.errors import LedgerError
from ledger.plan_model import Manifest, Plan
from ledger.problems import Problem
from ledger.provenance import unknown_kind
from ledger.verify import Event, before
from stages.decide import derive_decision
from stages.observations import RecordedRun, Used, select_runs


@dataclass(frozen=True)
class BaselineContext:
    """What re-deriving a baseline step needs beyond its own manifest: every accepted
    manifest, and the protocol's GPU-hours recorded before an event (`audit.baseline_checks`)."""

    manifests: dict[str, Manifest]
    protocol_hours: Callable[[str, Event], float]


@dataclass(frozen=True)
class CheckResult:
    """One named check of a stage: passed or failed, and what failed (the problems below
    say where)."""

    name: str
    ok: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class StageAudit:
    """Verdict and checks of one manifest (one frozen stage plan)."""

    campaign: str
    stage: str
    manifest: str
    decision: str | None
    budget_s: float
    amends: str | None
    superseded: bool
    checks: list[CheckResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    runs: int = 0
    sim_runs: int = 0
    missing_runs: int = 0
    failed_runs: list[dict[str, Any]] = field(default_factory=list)
    witness: dict[str, Any] | None = None  # frozen/decided no later than (audit.witness)
    attempts: AttemptSummary | None = None  # per cell, from the journals
    seeds: SeedBinding | None = None  # how the seeds are bound (audit.seed_checks)
    # how strongly this stage's logs bind their runs, from the manifest's runner kind
    binding: BindingLevel = field(default_factory=lambda: binding_level({}))

    def passed(self, name: str, detail: str = "") -> None:
        self.checks.append(CheckResult(name, True, detail))

    def failed(self, name: str, detail: str, findings: list[Problem]) -> None:
        """A check that failed, and the findings that say where (at least one); each finding
        names this stage and the check (where its site did not name a narrower one)."""
        self.checks.append(CheckResult(name, False, detail))
        found = findings or [Problem(self.manifest, f"{name}: {detail}")]
        self.problems += [
            replace(p, stage=p.stage or self.stage, check=p.check or name) for p in found
        ]

    def check(self, name: str, bad: list[Problem], detail: str = "") -> None:
        if bad:
            self.failed(name, detail or bad[0].message, bad)
        else:
            self.passed(name)

    @property
    def verdict(self) -> str:
        """`problems` for a failed check, `undecided` for a plan in force without a
        decision (the audit's finding says so unless it allows it), else `clean`."""
        if any(not c.ok and c.name != "decided" for c in self.checks) or any(
            f.check != "decided" for f in self.problems
        ):
            return "problems"
        return "undecided" if self.decision is None and not self.superseded else "clean"

    @property
    def ok(self) -> bool:
        return self.verdict != "problems"

    def to_dict(self) -> dict[str, Any]:
        return {
            "campaign": self.campaign,
            "stage": self.stage,
            "manifest": self.manifest,
            "decision": self.decision,
            "budget_s": self.budget_s,
            "amends": self.amends,
            "superseded": self.superseded,
            "runs": self.runs,
            "sim_runs": self.sim_runs,
            "missing_runs": self.missing_runs,
            "failed_runs": self.failed_runs,
            "verdict": self.verdict,
            "checks": [c.to_dict() for c in self.checks],
            "witness": self.witness,
            "attempts": self.attempts.to_dict() if self.attempts is not None else {},
            "seeds": self.seeds.to_dict() if self.seeds is not None else {},
            "binding": self.binding.to_dict(),
        }


def audit_manifest(
    ev: Evidence,
    mid: str,
    body: Manifest,
    runs: list[RunCheck],
    superseded: bool,
    *,
    allow_undecided: bool = False,
    baselines: BaselineContext | None = None,
) -> StageAudit:
    """Every check of one manifest, given its run records already checked against logs.

    A plan in force that was never decided is a finding ("frozen, N of M runs recorded,
    never decided": a plan whose results were not liked is not clean) unless
    `allow_undecided` (a campaign in progress)."""
    stage_audit = StageAudit(
        campaign=body.campaign,
        stage=body.stage,
        manifest=mid,
        decision=None,
        budget_s=body.budget_s,
        amends=body.amends,
        superseded=superseded,
        binding=binding_level(body),
    )
    stage_audit.runs = len(runs)
    stage_audit.sim_runs = sum(1 for r in runs if r.simulated)
    frozen = ev.event("manifest_frozen", mid) or ev.event("amended", mid)
    if frozen is None:
        stage_audit.failed(
            "journaled",
            "manifest freeze is in no journal",
            [Problem(mid, "manifest is not in any journal")],
        )
    else:
        stage_audit.passed("journaled")
    _check_runs(ev, stage_audit, mid, body, runs, frozen)
    why = unknown_kind(body)
    stage_audit.check(
        "runner kind known",
        [Problem(mid, f"{why}: its logs' checks cannot be chosen", check="runner kind known")]
        if why
        else [],
    )
    stage_audit.seeds, unbound = seed_binding(ev, mid, body)
    stage_audit.check("seeds bound", unbound)
    if superseded:
        _check_replacement(ev, stage_audit, mid)
        _check_attempts(ev, stage_audit, mid, body)
        return stage_audit
    _check_lineage(ev, stage_audit, mid, body, frozen)
    if "baseline" in body.spec and baselines is not None:
        stage_audit.check(
            "baseline re-derived",
            baseline_findings(ev, mid, body, baselines.manifests, baselines.protocol_hours),
        )
    _check_decision(ev, stage_audit, mid, body, runs, allow_undecided)
    _check_attempts(ev, stage_audit, mid, body)
    return stage_audit


def _check_attempts(ev: Evidence, stage_audit: StageAudit, mid: str, body: Manifest) -> None:
    """Attempts per cell within the frozen bound, each ended on record (`audit.attempt_checks`)."""
    found = audit_attempts(ev, mid, body, decided=stage_audit.decision is not None)
    stage_audit.attempts = found.summary
    stage_audit.check("attempts within max_attempts", found.over_max)
    stage_audit.check("every attempt has an outcome", found.unended)


def _check_runs(
    ev: Evidence,
    stage_audit: StageAudit,
    mid: str,
    body: Manifest,
    runs: list[RunCheck],
    frozen: Event | None,
) -> None:
    """Ordering (starts and logs after the freeze) and each run's own log findings."""
    early = [
        e
        for e in ev.for_manifest("run_started", mid)
        if frozen is not None and not before(frozen, e)
    ]
    stage_audit.check(
        "runs started after freeze",
        [Problem(mid, f"run {e.run} started before this manifest was frozen") for e in early],
    )
    frozen_at = body.frozen_at
    late = []
    for run in runs:
        started = run.log_started
        if started is not None and _iso(started) < _iso(frozen_at):
            late.append(Problem(run.id, f"raw log starts before manifest {mid[:12]} was frozen"))
    stage_audit.check("logs after freeze", late)
    stage_audit.check("raw logs bind to their runs", [p for r in runs for p in r.problems])
    for run in runs:
        if run.observed.status != "ok":
            place = run_place(run.record, body)
            stage_audit.failed_runs.append(
                {
                    "run": run.id,
                    "key": run.record.run,
                    "cell": cell_words(place),
                    "status": run.observed.status,
                    "reason": run.reason,
                }
            )


def _iso(text: str) -> str:
    """Timestamps compare as text once both say UTC the same way (`Z` or `+00:00`)."""
    return text.replace("Z", "+00:00")


def _check_replacement(ev: Evidence, stage_audit: StageAudit, mid: str) -> None:
    amended_by = [m for m, b in ev.manifests.items() if b.amends == mid]
    started = ev.for_manifest("run_started", mid)
    if started:
        by = amended_by[0][:12] if amended_by else "?"
        stage_audit.failed(
            "not replaced after runs began",
            f"amended by {by}",
            [Problem(mid, f"manifest was replaced by {by} after {len(started)} of its runs began")],
        )
    else:
        stage_audit.passed("not replaced after runs began")


def _expected_parent_stage(body: Manifest) -> str | None | bool:
    """The stage this manifest continues (None: none), or False when the manifest predates
    recording it and its spec does not say (`from`)."""
    if "parent_stage" in body.model_fields_set:
        return body.parent_stage
    return stage_from(body) or False


def _check_lineage(
    ev: Evidence, stage_audit: StageAudit, mid: str, body: Manifest, frozen: Event | None
) -> None:
    """The parent must be the counting decision of the stage this one continues, in the
    same campaign, made before this freeze; the candidates must be what the parent and the
    frozen plan give (`audit.lineage`)."""
    parent_id, expected = body.parent, _expected_parent_stage(body)
    parent = ev.decisions.get(parent_id) if parent_id is not None else None
    if parent_id is None or parent is not None:
        stage_audit.check("candidates derived", plan_findings(mid, body, parent))
    if parent_id is None:
        bad = (
            [Problem(mid, f"continues stage {expected!r} but cites no parent decision")]
            if expected
            else []
        )
        stage_audit.check("parent decision", bad)
        return
    problems = []
    if parent is None:
        problems.append(Problem(mid, f"parent {parent_id[:12]} is not an accepted decision"))
    else:
        if parent.campaign != body.campaign:
            problems.append(
                Problem(
                    mid,
                    f"parent {parent_id[:12]} decides campaign "
                    f"{parent.campaign!r}, not {body.campaign!r}",
                )
            )
        if expected is not False and parent.stage != expected:
            problems.append(
                Problem(
                    mid,
                    f"parent {parent_id[:12]} decides stage {parent.stage!r}, not {expected!r}",
                )
            )
        if counting_decision(ev, parent.manifest) != parent_id:
            problems.append(
                Problem(
                    mid, f"parent {parent_id[:12]} is not the decision that counts for its manifest"
                )
            )
        made = ev.event("decision_made", parent_id)
        if made is None or (frozen is not None and not before(made, frozen)):
            problems.append(
                Problem(mid, f"parent {parent_id[:12]} is not a decision made before this freeze")
            )
    stage_audit.check("parent decision", problems)


def counting_decision(ev: Evidence, mid: str) -> str | None:
    """The decision that counts for a manifest: the first journaled, accepted decision whose
    body cites it (an event naming another manifest's decision does not count)."""
    for event in ev.for_manifest("decision_made", mid):
        body = ev.decisions.get(event.object) if isinstance(event.object, str) else None
        if body is not None and body.manifest == mid:
            return event.object
    return None


def _check_decision(
    ev: Evidence,
    stage_audit: StageAudit,
    mid: str,
    body: Manifest,
    runs: list[RunCheck],
    allow_undecided: bool,
) -> None:
    observed: list[tuple[str, RecordedRun]] = [(r.id, r.observed) for r in runs]
    used, missing, extra = select_runs(mid, body, observed)
    started = {e.run for e in ev.for_manifest("run_started", mid)}
    unstarted = [
        Problem(used[k][0], f"run {k} has no run_started event") for k in used if k not in started
    ]
    stage_audit.check("runs journaled at start", unstarted)
    stage_audit.check(
        "no undeclared runs",
        [Problem(rid, f"run is not declared by manifest {mid[:12]}") for rid in extra],
    )
    did = counting_decision(ev, mid)
    others = [d for d, b in ev.decisions.items() if b.manifest == mid and d != did]
    if others:
        stage_audit.failed(
            "one decision",
            f"{len(others) + (did is not None)} decisions cite this manifest",
            [
                Problem(o, f"a second decision of manifest {mid[:12]}; the first counts")
                for o in others
            ],
        )
    if did is None:
        stage_audit.missing_runs = len(missing)
        declared = len(body.runs)
        detail = f"{declared - len(missing)} of {declared} recorded (undecided)"
        stage_audit.passed("declared runs recorded", detail)
        if allow_undecided:
            stage_audit.passed("decided", f"{detail}: allowed (--allow-undecided)")
        else:
            message = (
                f"stage {body.stage!r}: frozen, {declared - len(missing)} of "
                f"{declared} runs recorded, never decided (--allow-undecided for a "
                f"campaign in progress)"
            )
            stage_audit.failed(
                "decided",
                message,
                [Problem(mid, message, check="decided", stage=body.stage)],
            )
        return
    stage_audit.decision = did
    recorded = ev.decisions[did]
    stage_audit.missing_runs = len(missing)
    if missing and not recorded.missing:
        stage_audit.failed(
            "declared runs recorded",
            f"{len(missing)} declared run(s) missing",
            [Problem(did, f"declared runs missing: {', '.join(missing[:3])}")],
        )
    else:
        stage_audit.passed(
            "declared runs recorded",
            f"decided with {len(missing)} declared run(s) missing (--allow-missing)"
            if missing
            else "",
        )
    _check_cited_runs(ev, stage_audit, did, recorded, used)
    _check_reproduces(stage_audit, mid, body, did, recorded, observed)


def _check_cited_runs(
    ev: Evidence,
    stage_audit: StageAudit,
    did: str,
    recorded: Decision,
    used: Used,
) -> None:
    cited = recorded.runs
    expected = sorted(rid for rid, _ in used.values())
    if sorted(cited) != expected:
        stage_audit.failed(
            "decision cites exactly the declared runs",
            f"cites {len(cited)}, declared and recorded {len(expected)}",
            [
                Problem(
                    did,
                    f"decision cites {len(cited)} runs; the manifest's recorded "
                    f"declared runs are {len(expected)}",
                )
            ],
        )
    else:
        stage_audit.passed("decision cites exactly the declared runs")
    made = ev.event("decision_made", did)
    late = [
        rid
        for rid in cited
        if made is None
        or (recorded_event := ev.event("run_recorded", rid)) is None
        or not before(recorded_event, made)
    ]
    stage_audit.check(
        "decision after its runs",
        [Problem(did, f"decision was journaled before {len(late)} of its runs")] if late else [],
    )


def _check_reproduces(
    stage_audit: StageAudit,
    mid: str,
    plan: Plan,
    did: str,
    recorded: Decision,
    observed: Sequence[tuple[str, RecordedRun]],
) -> None:
    """The frozen rule applied to the observations the raw logs support gives the decision:
    the re-derived body and the signed one compared field by field, as models."""
    try:
        derived = DecisionBody.model_validate(derive_decision(mid, plan, observed))
    except LedgerError as exc:
        stage_audit.failed(
            "decision reproduces from raw logs",
            str(exc),
            [Problem(did, f"cannot re-derive: {exc}")],
        )
        return
    except ValidationError as exc:  # the rule gave a body no decision can hold
        why = one_line("the re-derived decision", exc)
        stage_audit.failed(
            "decision reproduces from raw logs", why, [Problem(did, f"cannot re-derive: {why}")]
        )
        return
    found = field_diffs(derived, recorded)
    if not found:
        stage_audit.passed("decision reproduces from raw logs")
        return
    found.sort(key=lambda d: (DIFF_ORDER.index(d[0]) if d[0] in DIFF_ORDER else 99, d[0]))
    names = {cid: info.name or cid[:8] for cid, info in plan.conditions.items()}
    said: dict[str, str] = {}  # `promoted` and `outcome.promoted` say the same: once
    for path, rec, der in found:
        text = f"recorded {_say(rec, names)}, re-derived {_say(der, names)}"
        leaf = path.rsplit(".", 1)[-1]
        if (leaf, text) not in {(k.rsplit(".", 1)[-1], v) for k, v in said.items()}:
            said[_say_path(path, names)] = text
    words = "; ".join(f"{path}: {text}" for path, text in list(said.items())[:3])
    more = f" (and {len(said) - 3} more field(s))" if len(said) > 3 else ""
    shown = found[:DIFF_FIELDS_KEPT]
    problem = Problem(
        did,
        f"decision {did[:12]} of {stage_audit.stage} does not match the frozen rule applied "
        f"to the raw logs: {words}{more}",
        recorded={path: rec for path, rec, _ in shown},
        found={path: der for path, _, der in shown},
    )
    stage_audit.failed("decision reproduces from raw logs", words, [problem])


# What a reader needs first when a decision no longer re-derives: who was promoted.
DIFF_ORDER = ("promoted", "outcome.promoted", "outcome.best", "outcome.ranking", "verdicts")
DIFF_FIELDS_KEPT = 10  # differing fields carried in a problem's recorded/found (--json)


def _say_path(path: str, names: dict[str, str]) -> str:
    """A field path with condition ids read as names (`conditions.e`)."""
    return ".".join(names.get(part, part) for part in path.split("."))


def _say(value: Any, names: dict[str, str]) -> str:
    """A decision value as a reader says it: condition ids by name, numbers to 4 decimals,
    lists joined, anything larger as `an entry`."""
    if value is None:
        return "nothing"
    if isinstance(value, str):
        return names.get(value, value if len(value) < 40 else value[:12])
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, list):
        if not value:
            return "none"
        if all(not isinstance(v, dict | list) for v in value):
            text = ", ".join(_say(v, names) for v in value)
            return text if len(text) <= 80 else text[:77] + "..."
        return f"{len(value)} entries"
    if isinstance(value, dict):
        return "an entry"
    return str(value)


__all__ = ["StageAudit", "audit_manifest", "counting_decision"]
