"""A gate's candidates re-derived, however its manifest was frozen: what its parent decision
promoted plus what its frozen plan adds and keeps; each condition id the hash of its
config; the runner config trained the one the plan shows.

Why: the lineage check used to accept any manifest that cited the right parent decision,
so a plan frozen by hand (`ledger freeze --plan`) could list a condition the screen had
eliminated, train one condition's config under another's name, or name a condition by an
id that is not its config's. Here a campaign stage's plan is rebuilt from its frozen `spec`
and its parent decision with the code `freeze` signs the output of (`stages.plan`), and
compared field by field; a plan without a spec must hold exactly its parent's promoted
conditions plus the conditions its rule and checks name. Baseline steps are re-derived in
`audit.baseline_checks`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from audit.field_diff import equal, fields, plain
from audit.frozen_spec import FrozenStage
from ledger.canonical import canonical_bytes, sha256_hex
from ledger.decision_model import Decision
from ledger.document import one_line
from ledger.errors import LedgerError
from ledger.plan_model import Manifest, Plan, PlannedCondition, PlannedRun, Rule
from ledger.problems import Problem
from runner.config import resolve
from runner.errors import UsageError
from runner.fingerprint import code_sha256
from stages.campaign import Campaign, Factor, StageSpec
from stages.campaign_model import CampaignFile, StageTable, budget_seconds
from stages.plan import ParentGate, stage_plan

# Fields of a campaign stage's plan that follow from its spec and its parent decision.
DERIVED_FIELDS = ("budget_s", "gpus", "cells", "runs", "conditions", "rule", "checks", "analysis")


def plan_findings(mid: str, body: Manifest, parent: Decision | None) -> list[Problem]:
    """Every way the manifest's candidates, ids and runner configs are not what its spec and
    parent decision give (`parent`: the parent decision, when accepted)."""
    out = id_findings(mid, body)
    if "baseline" in body.spec:
        return out  # audit.baseline_checks re-derives baseline steps
    if "stage" in body.spec:
        return out + _rederived(mid, body, parent)
    return out + _without_spec(mid, body, parent)


def _problem(mid: str, body: Manifest, message: str, cid: str | None = None) -> Problem:
    info = body.conditions.get(cid) if cid else None
    return Problem(
        mid,
        message,
        check="candidates derived",
        stage=body.stage,
        condition=cid,
        condition_name=info.name if info is not None else None,
    )


def id_findings(mid: str, body: Manifest) -> list[Problem]:
    """Each condition id is the SHA-256 of its canonical config, and its frozen runner
    config holds that config (exactly the runner's resolution of it when the auditor runs
    the frozen runner code)."""
    out = []
    exact = _same_runner_code(body)
    for cid, info in sorted(body.conditions.items()):
        try:
            expected = sha256_hex(canonical_bytes(info.config))
        except LedgerError as exc:
            out.append(_problem(mid, body, f"condition {cid[:12]}: {exc}", cid))
            continue
        if cid != expected:
            out.append(
                _problem(
                    mid,
                    body,
                    f"condition id {cid[:12]} ({info.name!r}) is not the hash of its "
                    f"config ({expected[:12]})",
                    cid,
                )
            )
        if info.runner_config is not None:
            why = _runner_config_problem(info.config, info.runner_config, exact)
            if why:
                out.append(_problem(mid, body, f"condition {info.name!r} trains {why}", cid))
    return out


@cache
def _current_code() -> str:
    return code_sha256()


def _same_runner_code(body: Plan) -> bool:
    return body.runner.kind == "builtin" and body.runner.code_sha256 == _current_code()


def _runner_config_problem(
    config: dict[str, Any], trained: dict[str, Any], exact: bool
) -> str | None:
    """Why `trained` (a condition's frozen runner config) is not `config` as the runner
    resolves it (None: it is)."""
    for key in sorted(config):
        if key not in trained or not equal(trained[key], config[key]):
            return (
                f"runner config {key} = {trained.get(key)!r}, but its config (what reports "
                f"show) says {config[key]!r}"
            )
    if not exact:
        return None
    try:
        resolved = resolve(config, "config")
    except UsageError as exc:
        return f"a config the runner refuses ({exc})"
    if not equal(resolved, trained):
        differs = sorted(
            k for k in set(resolved) | set(trained) if resolved.get(k) != trained.get(k)
        )
        return f"a runner config that is not its config resolved (differs at {', '.join(differs)})"
    return None


def spec_campaign(mid: str, body: Plan) -> tuple[Campaign, StageSpec]:
    """The campaign (as far as this stage uses it) and the stage, rebuilt from the spec the
    manifest froze (LedgerError when the spec cannot be read as one)."""
    try:
        spec = FrozenStage.model_validate(body.spec)
        table = StageTable.model_validate(spec.stage)
    except ValidationError as exc:
        raise LedgerError(one_line("its spec is not a campaign stage", exc)) from None
    before = table.from_ or body.parent_stage
    stages = [dict(spec.stage)]
    if before is not None and before != table.name:
        stages.insert(0, {"name": before, "budget": 1})
    head: dict[str, Any] = {"name": body.campaign, "metric": spec.metric}
    if spec.runner:
        head["runner"] = spec.runner
    doc: dict[str, Any] = {
        "campaign": head,
        "base": dict(spec.base or {}),
        "factors": dict(spec.factors or {}),
        "conditions": dict(spec.named or {}),
        "stages": stages,
    }
    try:
        document = CampaignFile.model_validate(doc)
        specs = [
            StageSpec(t.name, budget_seconds(t.budget), t, stages[i], i)
            for i, t in enumerate(document.stages)
        ]
        factors = [
            Factor(letter, f.key, f.levels[0], f.levels[1])
            for letter, f in sorted(document.factors.items())
        ]
    except (ValidationError, ValueError, KeyError, TypeError, IndexError) as exc:
        first = str(exc).splitlines()[0]
        raise LedgerError(f"its spec is not a campaign stage ({first})") from None
    campaign = Campaign(
        Path(f"manifest {mid[:12]}"), "", document, doc["base"], factors, doc["conditions"], specs
    )
    return campaign, specs[-1]


def _rederived(mid: str, body: Manifest, parent: Decision | None) -> list[Problem]:
    """The plan `freeze` would sign for this spec and parent decision, field by field."""
    try:
        campaign, stage = spec_campaign(mid, body)
        gate = (
            ParentGate(str(body.parent), list(parent.promoted), dict(parent.conditions))
            if parent is not None
            else None
        )
        derived = Plan.model_validate(
            stage_plan(
                campaign,
                stage,
                gate,
                runner=body.runner.to_dict(),
                data_sha256=body.data_sha256,
                resolve_configs=_same_runner_code(body),
                check_foreign=False,  # the freezer's file: reading the auditor's proves nothing
            )
        )
    except LedgerError as exc:
        first = str(exc).splitlines()[0]
        return [_problem(mid, body, f"its plan cannot be re-derived from its spec: {first}")]
    except ValidationError as exc:
        why = one_line("its plan cannot be re-derived from its spec", exc)
        return [_problem(mid, body, why)]
    frozen, derived_conditions = body.conditions, derived.conditions
    if not _same_runner_code(body):  # another runner's defaults: compared by id_findings
        frozen = _without_runner_config(frozen)
        derived_conditions = _without_runner_config(derived_conditions)
    out = []
    for cid in sorted(set(frozen) - set(derived_conditions)):
        out.append(
            _problem(
                mid,
                body,
                f"condition {frozen[cid].name!r} ({cid[:12]}) is a candidate the spec and "
                f"parent decision do not give (not promoted, added or kept)",
                cid,
            )
        )
    for cid in sorted(set(derived_conditions) - set(frozen)):
        out.append(
            _problem(
                mid,
                body,
                f"condition {derived_conditions[cid].name!r} ({cid[:12]}) should be a "
                f"candidate (the spec and parent decision give it) but is missing",
                cid,
            )
        )
    if out:
        return out
    mine, theirs = fields(body), fields(derived)
    mine["conditions"], theirs["conditions"] = frozen, derived_conditions
    mine["runs"], theirs["runs"] = _sorted_runs(body.runs), _sorted_runs(derived.runs)
    for field in DERIVED_FIELDS:
        if field not in body.model_fields_set and field in ("gpus", "checks"):
            continue  # frozen before the field existed
        if not equal(mine[field], theirs[field]):
            out.append(
                _problem(
                    mid,
                    body,
                    f"{field} is not what its spec and parent decision give "
                    f"({_differs(mine[field], theirs[field])})",
                )
            )
    return out


def _without_runner_config(table: dict[str, PlannedCondition]) -> dict[str, PlannedCondition]:
    return {cid: info.model_copy(update={"runner_config": None}) for cid, info in table.items()}


def _sorted_runs(runs: list[PlannedRun]) -> list[PlannedRun]:
    return sorted(runs, key=lambda r: (r.condition, str(r.seed), r.host))


def _differs(mine: Any, theirs: Any, path: str = "") -> str:
    """The first place two values differ, as `path: frozen X, derived Y` (models and
    mappings looked into key by key, in key order)."""
    if isinstance(mine, BaseModel) and type(mine) is type(theirs):
        mine, theirs = fields(mine), fields(theirs)
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for key in sorted(set(mine) | set(theirs)):
            a, b = mine.get(key), theirs.get(key)  # a missing key reads as null
            if not equal(a, b):
                return _differs(a, b, f"{path}.{key}" if path else key)
    text = f"frozen {_short(plain(mine))}, derived {_short(plain(theirs))}"
    return f"{path}: {text}" if path else text


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _without_spec(mid: str, body: Manifest, parent: Decision | None) -> list[Problem]:
    """A plan frozen without a campaign spec: a continuing stage must hold every condition
    its parent promoted (with the parent's configs), and nothing else but the conditions
    its rule keeps or its checks name."""
    if parent is None:
        return []
    out = []
    for cid in parent.promoted:
        given = parent.conditions.get(cid)  # a decision carries its promoted conditions
        if cid not in body.conditions:
            out.append(
                _problem(mid, body, f"condition {cid[:12]} promoted by its parent is missing", cid)
            )
        elif given is None or not equal(given.config, body.conditions[cid].config):
            out.append(
                _problem(mid, body, f"condition {cid[:12]}'s config is not its parent's", cid)
            )
    named: set[str] = set()
    if isinstance(body.rule, Rule):
        named.update(body.rule.keep or [])
        if body.rule.max_gap is not None:
            named.add(body.rule.max_gap.condition)
    for check in body.checks:
        named.update({check.a, check.b})
    for cid, info in sorted(body.conditions.items()):
        if cid not in parent.promoted and info.name not in named:
            out.append(
                _problem(
                    mid,
                    body,
                    f"condition {info.name!r} ({cid[:12]}) was not promoted by "
                    f"its parent and is not kept by its rule",
                    cid,
                )
            )
    return out


__all__ = ["id_findings", "plan_findings", "spec_campaign"]
