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

from pydantic import ValidationError

from ledger.canonical import canonical_bytes, sha256_hex
from ledger.decision_model import Decision
from ledger.errors import LedgerError
from ledger.problems import Problem
from runner.config import resolve
from runner.errors import UsageError
from runner.fingerprint import code_sha256
from stages.campaign import Campaign, Factor, StageSpec
from stages.campaign_model import CampaignFile, budget_seconds
from stages.lookup import Entry
from stages.plan import ParentGate, stage_plan

# Fields of a campaign stage's plan that follow from its spec and its parent decision.
DERIVED_FIELDS = ("budget_s", "gpus", "cells", "runs", "conditions", "rule", "checks", "analysis")


def plan_findings(mid: str, body: dict[str, Any], parent: dict[str, Any] | None) -> list[Problem]:
    """Every way the manifest's candidates, ids and runner configs are not what its spec and
    parent decision give (`parent`: the parent decision's body, when accepted)."""
    out = id_findings(mid, body)
    spec = body.get("spec") if isinstance(body.get("spec"), dict) else None
    if spec is not None and "baseline" in spec:
        return out  # audit.baseline_checks re-derives baseline steps
    if spec is not None and isinstance(spec.get("stage"), dict):
        return out + _rederived(mid, body, spec, parent)
    return out + _without_spec(mid, body, parent)


def _problem(mid: str, body: dict[str, Any], message: str, cid: str | None = None) -> Problem:
    info = (body.get("conditions") or {}).get(cid) if cid else None
    return Problem(
        mid,
        message,
        check="candidates derived",
        stage=body.get("stage") if isinstance(body.get("stage"), str) else None,
        condition=cid,
        condition_name=(info or {}).get("name") if isinstance(info, dict) else None,
    )


def id_findings(mid: str, body: dict[str, Any]) -> list[Problem]:
    """Each condition id is the SHA-256 of its canonical config, and its frozen runner
    config holds that config (exactly the runner's resolution of it when the auditor runs
    the frozen runner code)."""
    out = []
    exact = _same_runner_code(body)
    for cid, info in sorted((body.get("conditions") or {}).items()):
        if not isinstance(info, dict) or not isinstance(info.get("config"), dict):
            out.append(_problem(mid, body, f"condition {cid[:12]} has no config", cid))
            continue
        config = info["config"]
        try:
            expected = sha256_hex(canonical_bytes(config))
        except LedgerError as exc:
            out.append(_problem(mid, body, f"condition {cid[:12]}: {exc}", cid))
            continue
        if cid != expected:
            out.append(
                _problem(
                    mid,
                    body,
                    f"condition id {cid[:12]} ({info.get('name')!r}) is not the hash of its "
                    f"config ({expected[:12]})",
                    cid,
                )
            )
        trained = info.get("runner_config")
        if trained is not None:
            why = _runner_config_problem(config, trained, exact)
            if why:
                out.append(_problem(mid, body, f"condition {info.get('name')!r} trains {why}", cid))
    return out


@cache
def _current_code() -> str:
    return code_sha256()


def _same_runner_code(body: dict[str, Any]) -> bool:
    raw = body.get("runner")
    runner: dict[str, Any] = raw if isinstance(raw, dict) else {}
    return runner.get("kind") == "builtin" and runner.get("code_sha256") == _current_code()


def _runner_config_problem(config: dict[str, Any], trained: Any, exact: bool) -> str | None:
    """Why `trained` (a condition's frozen runner config) is not `config` as the runner
    resolves it (None: it is)."""
    if not isinstance(trained, dict):
        return f"a runner config that is not an object ({trained!r})"
    for key in sorted(config):
        if key not in trained or canonical_bytes({"v": trained[key]}) != canonical_bytes(
            {"v": config[key]}
        ):
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
    if canonical_bytes(resolved) != canonical_bytes(trained):
        differs = sorted(
            k for k in set(resolved) | set(trained) if resolved.get(k) != trained.get(k)
        )
        return f"a runner config that is not its config resolved (differs at {', '.join(differs)})"
    return None


def spec_campaign(
    mid: str, body: dict[str, Any], spec: dict[str, Any]
) -> tuple[Campaign, StageSpec]:
    """The campaign (as far as this stage uses it) and the stage, rebuilt from the spec the
    manifest froze (LedgerError when the spec cannot be read as one)."""
    raw = spec.get("stage")
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str):
        raise LedgerError("its spec names no campaign stage")
    before = raw.get("from") or body.get("parent_stage")
    stages = [dict(raw)]
    if isinstance(before, str) and before != raw["name"]:
        stages.insert(0, {"name": before, "budget": 1})
    head: dict[str, Any] = {
        "name": str(body.get("campaign")),
        "metric": spec.get("metric", "val_bpb"),
    }
    if spec.get("runner"):
        head["runner"] = spec["runner"]
    doc: dict[str, Any] = {
        "campaign": head,
        "base": dict(spec.get("base") or {}),
        "factors": dict(spec.get("factors") or {}),
        "conditions": dict(spec.get("named") or {}),
        "stages": stages,
    }
    try:
        document = CampaignFile.model_validate(doc)
        specs = [
            StageSpec(t.name, budget_seconds(t.budget), t, stages[i], i)
            for i, t in enumerate(document.stages)
        ]
        factors = [
            Factor(letter, f["key"], f["levels"][0], f["levels"][1])
            for letter, f in sorted(doc["factors"].items())
        ]
    except (ValidationError, ValueError, KeyError, TypeError, IndexError) as exc:
        first = str(exc).splitlines()[0]
        raise LedgerError(f"its spec is not a campaign stage ({first})") from None
    campaign = Campaign(
        Path(f"manifest {mid[:12]}"), "", document, doc["base"], factors, doc["conditions"], specs
    )
    return campaign, specs[-1]


def _rederived(
    mid: str, body: dict[str, Any], spec: dict[str, Any], parent: dict[str, Any] | None
) -> list[Problem]:
    """The plan `freeze` would sign for this spec and parent decision, field by field."""
    try:
        campaign, stage = spec_campaign(mid, body, spec)
        entry = (
            ParentGate.of(
                Entry(str(body.get("parent")), Decision.model_validate(parent), "", -1, "")
            )
            if parent
            else None
        )
        derived = stage_plan(
            campaign,
            stage,
            entry,
            runner=body.get("runner") or {},
            data_sha256=body.get("data_sha256"),
            resolve_configs=_same_runner_code(body),
            check_foreign=False,  # a file of the freezer's: reading the auditor's proves nothing
        )
    except (LedgerError, ValidationError) as exc:
        first = str(exc).splitlines()[0]
        return [_problem(mid, body, f"its plan cannot be re-derived from its spec: {first}")]
    frozen_conditions = dict(body.get("conditions") or {})
    if not _same_runner_code(body):  # another runner's defaults: compared by id_findings
        derived["conditions"] = _without_runner_config(derived["conditions"])
        frozen_conditions = _without_runner_config(frozen_conditions)
    body = {**body, "conditions": frozen_conditions}
    out = []
    for cid in sorted(set(frozen_conditions) - set(derived["conditions"])):
        info = frozen_conditions.get(cid) or {}
        out.append(
            _problem(
                mid,
                body,
                f"condition {info.get('name')!r} ({cid[:12]}) is a candidate the spec and "
                f"parent decision do not give (not promoted, added or kept)",
                cid,
            )
        )
    for cid in sorted(set(derived["conditions"]) - set(frozen_conditions)):
        info = derived["conditions"][cid]
        out.append(
            _problem(
                mid,
                body,
                f"condition {info.get('name')!r} ({cid[:12]}) should be a candidate (the "
                f"spec and parent decision give it) but is missing",
                cid,
            )
        )
    if out:
        return out
    for field in DERIVED_FIELDS:
        if field not in body and field in ("gpus", "checks"):
            continue  # frozen before the field existed
        mine = _sorted_runs(body.get(field)) if field == "runs" else body.get(field)
        theirs = _sorted_runs(derived[field]) if field == "runs" else derived[field]
        if canonical_bytes({"v": mine}) != canonical_bytes({"v": theirs}):
            out.append(
                _problem(
                    mid,
                    body,
                    f"{field} is not what its spec and parent decision give "
                    f"({_differs(mine, theirs)})",
                )
            )
    return out


def _without_runner_config(table: dict[str, Any]) -> dict[str, Any]:
    return {
        cid: {k: v for k, v in info.items() if k != "runner_config"}
        if isinstance(info, dict)
        else info
        for cid, info in table.items()
    }


def _sorted_runs(runs: Any) -> Any:
    if not isinstance(runs, list):
        return runs
    return sorted(
        runs,
        key=lambda r: (
            (str(r.get("condition")), str(r.get("seed")), str(r.get("host")))
            if isinstance(r, dict)
            else ("", "", "")
        ),
    )


def _differs(mine: Any, theirs: Any, path: str = "") -> str:
    """The first place two JSON values differ, as `path: frozen X, derived Y`."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        for key in sorted(set(mine) | set(theirs)):
            if canonical_bytes({"v": mine.get(key)}) != canonical_bytes({"v": theirs.get(key)}):
                return _differs(mine.get(key), theirs.get(key), f"{path}.{key}" if path else key)
    text = f"frozen {_short(mine)}, derived {_short(theirs)}"
    return f"{path}: {text}" if path else text


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _without_spec(mid: str, body: dict[str, Any], parent: dict[str, Any] | None) -> list[Problem]:
    """A plan frozen without a campaign spec: a continuing stage must hold every condition
    its parent promoted (with the parent's configs), and nothing else but the conditions
    its rule keeps or its checks name."""
    if parent is None:
        return []
    conditions = body.get("conditions") or {}
    promoted = [c for c in parent.get("promoted") or [] if isinstance(c, str)]
    table = parent.get("conditions") or {}
    out = []
    for cid in promoted:
        if cid not in conditions:
            out.append(
                _problem(mid, body, f"condition {cid[:12]} promoted by its parent is missing", cid)
            )
        elif (table.get(cid) or {}).get("config") != conditions[cid].get("config"):
            out.append(
                _problem(mid, body, f"condition {cid[:12]}'s config is not its parent's", cid)
            )
    raw_rule = body.get("rule")
    rule: dict[str, Any] = raw_rule if isinstance(raw_rule, dict) else {}
    named = set(rule.get("keep") or [])
    gap = rule.get("max_gap")
    if isinstance(gap, dict):
        named.add(gap.get("condition"))
    for check in body.get("checks") or []:
        if isinstance(check, dict):
            named.update({check.get("a"), check.get("b")})
    for cid, info in sorted(conditions.items()):
        if cid not in promoted and (info or {}).get("name") not in named:
            out.append(
                _problem(
                    mid,
                    body,
                    f"condition {(info or {}).get('name')!r} ({cid[:12]}) was not promoted by "
                    f"its parent and is not kept by its rule",
                    cid,
                )
            )
    return out


__all__ = ["id_findings", "plan_findings", "spec_campaign"]
