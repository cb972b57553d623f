"""Turn a campaign stage into a frozen, signed manifest, and hold the file to it afterwards.

Why: the manifest, not the editable campaign file, is the rule. `freeze` resolves the exact
candidates (design points, the parent gate's signed promotions, `add`), the run list, the rule
and the analysis plan; `run` and `decide` refuse when the file has drifted from it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ledger.decision_model import Decision
from ledger.errors import (
    AlreadyFrozen,
    CampaignError,
    ConfigError,
    LedgerError,
    NotFrozen,
    NothingToDo,
    ParentNotDecided,
)
from ledger.keys import SigningKey
from ledger.manifest import freeze
from ledger.plan_model import Manifest, PlannedCondition
from ledger.seeds import seed_plan
from ledger.store import Store
from runner._version import __version__
from runner.config import resolve
from runner.errors import UsageError
from runner.fingerprint import code_sha256
from stages.campaign import Campaign, StageSpec
from stages.campaign_model import AdapterRunner, CommandRunner
from stages.conditions import (
    Condition,
    design_conditions,
    named_condition,
    point_condition,
    stage_design,
)
from stages.designs import point_name, point_structure
from stages.lookup import Entry, current_manifest, manifest_decision
from stages.runner_checks import config_schema, file_sha256, schema_problems
from stages.stats import default_terms

DEFAULT_DATA = Path("data/corpus")


def stage_spec(campaign: Campaign, stage: StageSpec) -> dict[str, Any]:
    """What of the campaign file a stage's manifest freezes (compared on every later use)."""
    used = set(carried_names(campaign, stage))
    return {
        "stage": stage.raw,
        "base": campaign.base,
        "factors": campaign.factor_table,
        "named": {n: campaign.named[n] for n in sorted(used) if n in campaign.named},
        "metric": campaign.metric,
        "runner": campaign.runner_table,
    }


def spec_differences(frozen: Any, current: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Dotted keys whose values differ between the frozen and the current spec."""
    if isinstance(frozen, dict) and isinstance(current, dict):
        out: list[tuple[str, Any, Any]] = []
        for key in sorted(set(frozen) | set(current)):
            path = f"{prefix}.{key}" if prefix else str(key)
            out += spec_differences(frozen.get(key), current.get(key), path)
        return out
    return [] if frozen == current else [(prefix, frozen, current)]


def check_matches(campaign: Campaign, stage: StageSpec, manifest: Entry[Manifest]) -> None:
    """Refuse (exit 2, naming the key) when the file's stage no longer matches its manifest."""
    diffs = spec_differences(manifest.body.spec, stage_spec(campaign, stage))
    if diffs:
        key, old, new = diffs[0]
        key = key.removeprefix("stage.")
        raise CampaignError(
            f"{campaign.path}: stage {stage.name!r} key {key!r} differs from its frozen "
            f"manifest {manifest.id[:12]} (frozen: {old!r}, file: {new!r}); the manifest is the "
            f"rule: restore the file or re-freeze with --amend"
        )


@dataclass(frozen=True)
class ParentGate:
    """The gate a stage continues: its decision's id, and what it promoted with their
    configs (what the stage's candidates and effect points start from)."""

    id: str
    promoted: list[str]
    conditions: dict[str, PlannedCondition]

    @classmethod
    def of(cls, decision: Entry[Decision]) -> ParentGate:
        return cls(decision.id, list(decision.body.promoted), dict(decision.body.conditions))


def parent_stage(campaign: Campaign, stage: StageSpec) -> StageSpec | None:
    """The stage whose gate feeds this one: `from`, else the previous stage in the file."""
    if stage.parent:
        return campaign.stage(stage.parent)
    return campaign.stages[stage.index - 1] if stage.index > 0 else None


def parent_decision(store: Store, campaign: Campaign, stage: StageSpec) -> Entry[Decision] | None:
    parent = parent_stage(campaign, stage)
    if parent is None:
        return None
    manifest = current_manifest(store, campaign.name, parent.name)
    decision = manifest_decision(store, manifest.id) if manifest else None
    if decision is None:
        raise ParentNotDecided(
            f"stage {stage.name!r} needs the signed decision of {parent.name!r} first "
            f"(run `ledger decide {parent.name}`)"
        )
    return decision


def candidates(campaign: Campaign, stage: StageSpec, parent: ParentGate | None) -> list[Condition]:
    """Design points, the parent's promoted conditions (with its configs), then `add`."""
    out: dict[str, Condition] = {}
    if stage.design:
        for cond in design_conditions(campaign, stage):
            out.setdefault(cond.id, cond)
    if stage.parent and parent is not None:
        table = parent.conditions
        for cid in parent.promoted:
            try:
                info = table[cid]
            except KeyError:
                raise LedgerError(f"decision {parent.id}: promoted {cid} has no config") from None
            out.setdefault(
                cid, Condition(cid, info.name, info.config, dict(info.coded), "promoted")
            )
    for name in carried_names(campaign, stage):
        cond = named_condition(campaign, name)
        if cond.id in out and out[cond.id].name != name:
            # the user's name wins (rules and checks refer to it); the other stays visible
            prior = out[cond.id]
            cond = Condition(
                cond.id, f"{name}", cond.config, cond.coded, f"{prior.origin}+named:{prior.name}"
            )
        out[cond.id] = cond
    return list(out.values())


def carried_names(campaign: Campaign, stage: StageSpec) -> list[str]:
    """Named conditions a stage runs: `add`, then the rule's anchors and checked names.

    Why: an always-carried anchor (`keep`), a `max_gap` reference or a check's condition
    must have data at this budget, so it is a candidate of the stage, not only of the rule.
    """
    names = list(stage.add) + list(stage.rule.keep or [])
    if stage.rule.max_gap is not None:
        names.append(stage.rule.max_gap.condition)
    names += [name for c in stage.checks for name in (c.a, c.b)]
    seen: list[str] = []
    for name in names:
        if name in campaign.named and name not in seen:
            seen.append(name)
    return seen


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def data_fingerprint(path: Path | None) -> str | None:
    """The data hash the builtin runner writes in its log header (same files, same rule).

    One file hashes to its own SHA-256; several to the SHA-256 of `relpath\0sha\n` lines.
    A folder means its `train.bin` (+ `val.bin`, token-byte table) or else its `*.txt` files.
    """
    if path is None or not path.exists():
        return None
    if path.is_file():
        return _sha256_file(path)
    if (path / "train.bin").is_file():
        files = [path / "train.bin"]
        if (path / "val.bin").is_file():
            files.append(path / "val.bin")
        table = "token_bytes.npy" if (path / "token_bytes.npy").exists() else "token_bytes.json"
        files.append(path / table)
    else:
        files = sorted(f for f in path.rglob("*.txt") if f.is_file())
    if not files:
        return None
    if len(files) == 1:
        return _sha256_file(files[0])
    lines = "".join(f"{f.relative_to(path).as_posix()}\0{_sha256_file(f)}\n" for f in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def runner_identity(campaign: Campaign, *, simulated: bool = False) -> dict[str, Any]:
    """Which trainer the manifest commits to: the simulator (a preview plan), the builtin
    runner's code hash, a command (and the SHA-256 of the config schema it declares), or an
    adapted script and its SHA-256 (`ledger.provenance` reads the kind back)."""
    if simulated:
        return {"kind": "sim"}
    runner = campaign.runner
    if isinstance(runner, AdapterRunner):
        return {
            "kind": "adapter",
            **runner.model_dump(exclude_none=True),
            "format": "autoresearch",
            "script_sha256": file_sha256(runner.script),
        }
    if isinstance(runner, CommandRunner):
        out = {"kind": "command", **runner.model_dump(exclude_none=True)}
        if runner.config_schema is not None:
            out["config_schema_sha256"] = file_sha256(runner.config_schema)
        return out
    return {"kind": "builtin", "version": __version__, "code_sha256": code_sha256()}


def effect_points(
    campaign: Campaign, stage: StageSpec, conds: list[Condition], parent: ParentGate | None
) -> dict[str, dict[str, int]]:
    """The conditions whose runs enter the effect model, by id, with their coded levels.

    A stage with a design: exactly its design points (a named condition enters only if it is
    the same config, hence the same id). Without one: the parent gate's promoted conditions
    that are points of the factorial itself (every factor at a level, every other key the
    base's: checked by recomputing the id), never an anchor or an `add`ed condition.
    """
    if stage.design:
        ids = {c.id for c in design_conditions(campaign, stage)}
    else:
        ids = set(parent.promoted) if stage.parent and parent else set()
    out = {}
    for cond in conds:
        levels = [cond.coded.get(f.letter) for f in campaign.factors]
        if cond.id not in ids or any(x not in (-1, 1) for x in levels):
            continue
        coded = {f.letter: int(x) for f, x in zip(campaign.factors, levels, strict=True)}  # type: ignore[arg-type]
        lattice = point_condition(campaign.base, campaign.factors, coded, "", "").id
        if stage.design or lattice == cond.id:
            out[cond.id] = coded
    return out


def _design_info(campaign: Campaign, stage: StageSpec) -> dict[str, Any] | None:
    if not stage.design:
        return None
    design = stage_design(campaign, stage)
    return {
        "label": design.label,
        "generators": list(design.generators),
        "defining_relation": list(design.defining_relation),
        "resolution": design.resolution,
    }


def analysis_plan(
    campaign: Campaign, stage: StageSpec, conds: list[Condition], parent: ParentGate | None
) -> dict[str, Any]:
    """The frozen analysis `decide` and the audit carry out (docs/statistics.md).

    Why frozen: which runs enter the effect model, which terms are fitted and how the error is
    estimated are choices that change the answer, so they are fixed before the runs, like the
    rule. Default: a regular fraction (the stage's design, or a factorial the parent made)
    fits every alias class it can separate (resolution V: mains and 2FIs); unreplicated
    (one cell) that model is saturated and Lenth's PSE is the error; replicated, OLS with the
    host block and seeds as replicates. Any other set (not a regular fraction, or one of
    resolution II whose main effects are aliased with each other) is post-selection: main
    effects, OLS, descriptive only (no BH), and the rule may not use `fdr` on it.
    """
    letters = [f.letter for f in campaign.factors]
    points = effect_points(campaign, stage, conds, parent)
    plan: dict[str, Any] = {
        "metric": campaign.metric,
        "factors": campaign.factor_table,
        "design": _design_info(campaign, stage),
        "points": {cid: point_name(coded) for cid, coded in sorted(points.items())},
        "block": "host" if len(stage.hosts) > 1 else None,
        "replicates": "seed",
        "fdr": stage.rule.fdr,
        "structure": None,
        "terms": [],
        "method": None,
        "post_selection": False,
        "dropped": [],
        "dropped_reasons": {},
    }
    if len(points) >= 2 and letters:
        structure = point_structure(list(points.values()), letters)
        # orthogonal for main effects: a regular fraction whose mains are not aliased with
        # one another (two promoted points that differ in D and E together are not)
        orthogonal = structure.regular and (structure.resolution or 3) >= 3
        terms, dropped, reasons = default_terms(list(points.values()), letters, regular=orthogonal)
        saturated = len(terms) + 1 >= structure.n_points
        plan.update(
            structure=structure.to_dict(),
            terms=terms,
            dropped=dropped,
            dropped_reasons=reasons,
            post_selection=not orthogonal,
            method="lenth" if saturated and len(stage.cells) == 1 else "ols",
        )
    if stage.rule.fdr is not None and (not plan["terms"] or plan["post_selection"]):
        what = plan["structure"]["label"] if plan["structure"] else f"{len(points)} design points"
        raise CampaignError(
            f"{campaign.path}: stage {stage.name!r} rule key 'fdr': its effect set ({what}) is "
            f"not an orthogonal design, so its effects are post-selection and get no BH test; "
            f"give the stage a design or remove 'fdr'"
        )
    return plan


def build_plan(
    store: Store,
    campaign: Campaign,
    stage_name: str,
    data: Path | None = None,
    *,
    for_simulation: bool = False,
    witnessed: bool = False,
) -> dict[str, Any]:
    """Resolve a stage into the plan `ledger.manifest.freeze` signs, after a preflight.

    Preflight (so that nothing wrong is signed and then trained on): every condition's config
    against the builtin runner's schema (its resolved config, defaults written out, is frozen
    as `runner_config`), every name the rule and checks use, and the data set, which must
    exist unless the plan is only for the simulator (`for_simulation`: its runner kind is
    `sim` and it records no data set, so no real run can answer it). `witnessed` plans
    derive their seeds from the freeze's timestamp token as well.
    """
    stage = campaign.stage(stage_name)
    decided = parent_decision(store, campaign, stage)
    parent = ParentGate.of(decided) if decided is not None else None
    data_path = data or (Path(campaign.data) if campaign.data else DEFAULT_DATA)
    data_sha = None if for_simulation else data_fingerprint(data_path)
    plan = stage_plan(
        campaign,
        stage,
        parent,
        runner=runner_identity(campaign, simulated=for_simulation),
        data_sha256=data_sha,
        witnessed=witnessed,
    )
    if data_sha is None and campaign.runner is None and not for_simulation:
        raise CampaignError(
            f"{campaign.path}: stage {stage.name!r}: the data set {data_path} does not exist or "
            f"holds no text; prepare it with `dvc repro corpus` (or `python -m runner.data "
            f"prepare --out {DEFAULT_DATA}`), or pass --data PATH"
        )
    return plan


def stage_plan(
    campaign: Campaign,
    stage: StageSpec,
    parent: ParentGate | None,
    *,
    runner: dict[str, Any],
    data_sha256: str | None,
    witnessed: bool = False,
    resolve_configs: bool = True,
    check_foreign: bool = True,
) -> dict[str, Any]:
    """The plan of `stage` given its parent gate's decision (preflight included), no store.

    Why separate from `build_plan`: `ledger evaluate` walks a protocol in memory with
    decisions it derived itself, and must simulate exactly the plan `freeze` would sign.
    `resolve_configs=False` leaves out the builtin runner's resolved configs: a replayed
    protocol runs nothing, so its conditions may carry keys only the table knows.
    `check_foreign=False` skips checking configs against a foreign runner's declared schema
    file (the audit re-derives a frozen plan without the freezer's files).
    """
    parent_spec = parent_stage(campaign, stage)
    conds = candidates(campaign, stage, parent)
    if not conds:
        raise NothingToDo(f"stage {stage.name!r} has no candidates (its parent promoted none)")
    check_rule_names(campaign, stage, conds)
    table = {c.id: c.to_dict() for c in conds}
    if campaign.runner is None and resolve_configs:
        for info in table.values():
            info["runner_config"] = runner_config(campaign, info["name"], info["config"])
    if check_foreign:
        check_foreign_configs(campaign, [(info["name"], info["config"]) for info in table.values()])
    runs = [
        {"condition": c.id, "seed": seed, "host": host} for c in conds for seed, host in stage.cells
    ]
    return {
        "campaign": campaign.name,
        "stage": stage.name,
        "budget_s": stage.budget_s,
        "gpus": stage.gpus,
        "cells": [[seed, host] for seed, host in stage.cells],
        "runs": runs,
        "conditions": table,
        "rule": stage.written_rule,
        "checks": stage.written_checks,
        "analysis": analysis_plan(campaign, stage, conds, parent),
        "runner": runner,
        "data_sha256": data_sha256,
        "parent": parent.id if parent else None,
        "parent_stage": parent_spec.name if parent_spec else None,
        "spec": stage_spec(campaign, stage),
        # each run trains with a seed derived from this manifest's id (ledger/seeds.py), and
        # from its timestamp token when the freeze is witnessed
        "seeds": seed_plan(witnessed=witnessed),
        "max_attempts": stage.max_attempts,
    }


def runner_config(campaign: Campaign, name: str, config: dict[str, Any]) -> dict[str, Any]:
    """The config the builtin runner will train with (defaults filled in), or a LedgerError
    naming the campaign file, the condition and the key it refuses."""
    try:
        return resolve(config, f"{campaign.path}: condition {name!r}")
    except UsageError as exc:
        raise ConfigError(str(exc)) from None


def check_foreign_configs(campaign: Campaign, configs: list[tuple[str, dict[str, Any]]]) -> None:
    """Every condition's whole config against the runner's declared keys or config schema
    (CampaignError naming the condition and every key it refuses)."""
    runner = campaign.runner
    if not isinstance(runner, CommandRunner):
        return  # the builtin runner resolves configs above; an adapter's keys are checked at load
    schema = config_schema(runner)
    for name, config in configs:
        if schema is not None:
            problems = schema_problems(schema, config)
        else:
            keys = runner.keys
            problems = (
                []
                if keys is None
                else [f"{k}: not in runner.keys" for k in config if k not in keys]
            )
        if problems:
            raise CampaignError(
                f"{campaign.path}: condition {name!r} does not fit the runner's "
                f"{'config_schema' if schema is not None else 'keys'}: {'; '.join(problems)}"
            )


def check_rule_names(campaign: Campaign, stage: StageSpec, conds: list[Condition]) -> None:
    """Every condition the rule or a check names must be a candidate of this stage."""
    names = {c.name for c in conds}
    where = f"{campaign.path}: stage {stage.name!r}"
    used = [("rule.keep", n) for n in stage.rule.keep or []]
    if stage.rule.max_gap is not None:
        used.append(("rule.max_gap.condition", stage.rule.max_gap.condition))
    for i, check in enumerate(stage.checks):
        used += [(f"checks[{i}].a", check.a), (f"checks[{i}].b", check.b)]
    for key, name in used:
        if (name != "best" or not key.startswith("checks")) and name not in names:
            raise CampaignError(
                f"{where}.{key} names {name!r}, which is not a candidate of "
                f"this stage (candidates: {', '.join(sorted(names))})"
            )


def freeze_stage(
    store: Store,
    campaign: Campaign,
    stage_name: str,
    key: SigningKey,
    *,
    amend: bool = False,
    data: Path | None = None,
    for_simulation: bool = False,
    witnessed: bool = False,
) -> str:
    """Freeze a campaign stage: refuse a second freeze unless amending (recorded as such).

    `for_simulation` freezes a plan that only the `sim` executor can satisfy (its manifest
    records runner kind `sim` and no data hash, so real runs of it are refused); `witnessed`
    binds its seeds to the timestamp token the caller asks for next.
    """
    stage = campaign.stage(stage_name)
    existing = current_manifest(store, campaign.name, stage.name)
    if existing is not None and not amend:
        diffs = spec_differences(existing.body.spec, stage_spec(campaign, stage))
        hint = f" (the file now differs at {diffs[0][0]!r})" if diffs else ""
        raise AlreadyFrozen(
            f"stage {stage.name!r} is already frozen as manifest {existing.id[:12]}{hint}; "
            f"use --amend to replace it (audit reports amendments)"
        )
    if amend and existing is None:
        raise NotFrozen(f"stage {stage.name!r} was never frozen: nothing to amend")
    plan = build_plan(
        store, campaign, stage.name, data, for_simulation=for_simulation, witnessed=witnessed
    )
    return freeze(store, plan, key, amends=existing.id if amend and existing else None)


def frozen_manifest(store: Store, campaign: Campaign, stage_name: str) -> Entry[Manifest]:
    """The stage's manifest in force, after checking the campaign file still matches it."""
    stage = campaign.stage(stage_name)
    manifest = current_manifest(store, campaign.name, stage.name)
    if manifest is None:
        raise NotFrozen(
            f"stage {stage.name!r} was never frozen: run `ledger freeze {stage.name}` first"
        )
    check_matches(campaign, stage, manifest)
    return manifest
