"""Baseline steps re-derived like a protocol gate: each from its frozen seed and its parent
decision, never from what its manifest lists.

Why: a baseline is a claim about what another method would have found at equal cost. A
random search whose "seed 0" sample is not what seed 0 draws, or a greedy walk held at a
worse incumbent than its previous step chose, makes the protocol look better than it is,
and each step's own decision re-derives cleanly from whatever the manifest listed. Here:

* random: the sample is `random.Random(seed).sample(full 2^k factorial, affordable)`, as
  `ledger baseline random` draws it; `affordable` is what the matched GPU-hours buy at the
  step's budget and cells; matched to the campaign, those are the training GPU-hours its
  protocol had recorded when the step was frozen.
* greedy: step i flips factor i (A, B, ...) of the incumbent the previous step's decision
  promoted (its mean the rule's `incumbent_mean`); step 0 evaluates the start.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

from pydantic import ValidationError

from audit.evidence import Evidence
from audit.frozen_spec import BaselineSpec, baseline_spec
from audit.runs import ObservedRun
from ledger.decision_model import Decision
from ledger.document import one_line
from ledger.plan_model import AnalysisPlan, BaselineRule, Manifest, Plan
from ledger.problems import Problem
from ledger.verify import Event, before
from stages.campaign import Factor
from stages.conditions import point_condition
from stages.designs import full_factorial, point_name

ProtocolHours = Callable[[str, Event], float]


def _factors(analysis: AnalysisPlan) -> list[Factor]:
    return [
        Factor(letter, f.key, f.levels[0], f.levels[1])
        for letter, f in sorted(analysis.factors.items())
    ]


def _base(body: Plan, factors: list[Factor]) -> dict[str, Any] | None:
    """The campaign base the step's points were built on: frozen in its spec (`base`), or,
    for steps frozen before it was, the configs' shared keys without the factors'."""
    base = body.spec.get("base")  # the campaign file's, as written
    if isinstance(base, dict):
        return base
    configs = [info.config for info in body.conditions.values()]
    if not configs:
        return None
    keys = {f.key for f in factors}
    first = {k: v for k, v in configs[0].items() if k not in keys}
    same = all({k: v for k, v in c.items() if k not in keys} == first for c in configs)
    return first if same else None


def _problem(mid: str, body: Plan, message: str) -> Problem:
    return Problem(mid, message, check="baseline re-derived", stage=body.stage)


def _name(body: Plan, cid: str) -> str:
    """A condition's name in the plan (its id's first 8 hex when the plan has none)."""
    info = body.conditions.get(cid)
    return info.name if info is not None else cid[:8]


def _conditions_match(
    mid: str, body: Plan, expected: list[tuple[str, dict[str, Any]]], what: str
) -> list[Problem]:
    """The manifest's run list is exactly `expected` (id, config) in every cell."""
    ran = sorted({r.condition for r in body.runs})
    want = sorted(cid for cid, _ in expected)
    out = []
    if ran != want:
        names = [_name(body, c) for c in ran]
        wanted = [point_name_of(config, body.analysis) for _, config in expected]
        out.append(
            _problem(
                mid,
                body,
                f"its runs are of {', '.join(names) or 'nothing'}, but {what} gives "
                f"{', '.join(wanted) or 'nothing'}",
            )
        )
    cells = sorted(tuple(c) for c in body.cells or [])
    declared = sorted((r.condition, r.seed, r.host) for r in body.runs)
    full = sorted((cid, s, h) for cid in ran for s, h in cells)
    if declared != full:
        out.append(_problem(mid, body, "its runs are not each condition in every frozen cell"))
    return out


def point_name_of(config: dict[str, Any], analysis: AnalysisPlan) -> str:
    """The design point a config is at, by the frozen factors' high levels (`abd`)."""
    coded = {}
    for f in _factors(analysis):
        coded[f.letter] = 1 if config.get(f.key) == f.high else -1
    return point_name(coded)


def _spec(body: Plan) -> BaselineSpec | None:
    """A step's baseline spec, None when it does not fit (its own audit says so)."""
    try:
        return baseline_spec(body)
    except ValidationError:
        return None


def baseline_findings(
    ev: Evidence,
    mid: str,
    body: Manifest,
    manifests: dict[str, Manifest],
    protocol_hours: ProtocolHours,
) -> list[Problem]:
    """Every way a baseline step is not what its seed and parent decision give.
    `protocol_hours(campaign, event)` is the protocol's training GPU-hours recorded before
    `event` (what `--match campaign` matched)."""
    try:
        spec = baseline_spec(body)
    except ValidationError as exc:
        return [_problem(mid, body, one_line("its baseline spec cannot be read", exc))]
    factors = _factors(body.analysis)
    base = _base(body, factors)
    if base is None or not factors:
        return [_problem(mid, body, "its factors or base cannot be read: nothing re-derives it")]
    rule = body.rule if isinstance(body.rule, BaselineRule) else None
    kind = spec.kind or (rule.baseline if rule is not None else None)
    if kind == "random":
        return _random(ev, mid, body, spec, factors, base, protocol_hours)
    if kind == "greedy":
        return _greedy(ev, mid, body, spec, factors, base, manifests)
    return [_problem(mid, body, f"baseline kind {kind!r} is unknown to this audit")]


def _random(
    ev: Evidence,
    mid: str,
    body: Manifest,
    spec: BaselineSpec,
    factors: list[Factor],
    base: dict[str, Any],
    protocol_hours: ProtocolHours,
) -> list[Problem]:
    seed, affordable = spec.seed, spec.affordable
    if seed is None or affordable is None or affordable < 1:
        return [_problem(mid, body, f"seed {seed!r} or affordable {affordable!r} is unreadable")]
    out = []
    per_condition = len(body.cells or []) * float(body.budget_s) / 3600.0
    matched = spec.match_gpu_hours
    if matched is not None and per_condition > 0:
        buys = int(math.floor(matched / per_condition + 1e-9))
        if buys != affordable:
            out.append(
                _problem(
                    mid,
                    body,
                    f"{matched:.6g} GPU-hours buy {buys} condition(s) at {per_condition:.6g} "
                    f"GPU-hours each, not the {affordable} it sampled",
                )
            )
        frozen = ev.event("manifest_frozen", mid)
        if spec.match == "campaign" and frozen is not None:
            spent = protocol_hours(body.campaign, frozen)
            if not math.isclose(spent, matched, rel_tol=1e-9, abs_tol=1e-9):
                out.append(
                    _problem(
                        mid,
                        body,
                        f"it matched {matched:.6g} GPU-hours, but the campaign's protocol had "
                        f"recorded {spent:.6g} when it was frozen",
                    )
                )
    points = full_factorial(len(factors))
    drawn = random.Random(seed).sample(points, min(affordable, len(points)))
    expected = [
        (c.id, c.config)
        for c in (point_condition(base, factors, p, point_name(p), "baseline") for p in drawn)
    ]
    return out + _conditions_match(mid, body, expected, f"seed {seed}'s draw of {affordable}")


def _greedy(
    ev: Evidence,
    mid: str,
    body: Manifest,
    spec: BaselineSpec,
    factors: list[Factor],
    base: dict[str, Any],
    manifests: dict[str, Manifest],
) -> list[Problem]:
    step = spec.step
    rule = body.rule if isinstance(body.rule, BaselineRule) else None
    held, held_mean = (rule.incumbent, rule.incumbent_mean) if rule is not None else (None, None)
    letters = [f.letter for f in factors]
    if step is None or not 0 <= step <= len(letters):
        return [_problem(mid, body, f"greedy step {step!r} is not one of 0..{len(letters)}")]
    expected_flip = None if step == 0 else letters[step - 1]
    out = []
    if spec.flip != expected_flip:
        out.append(_problem(mid, body, f"step {step} flips {spec.flip!r}, not {expected_flip!r}"))
    if step == 0:
        return out + _greedy_start(mid, body, spec, factors, base)
    parent = ev.decisions.get(body.parent) if body.parent is not None else None
    parent_manifest = manifests.get(parent.manifest) if parent is not None else None
    parent_spec = _spec(parent_manifest) if parent_manifest is not None else None
    if (
        parent is None
        or parent_manifest is None
        or parent_spec is None
        or parent_spec.kind != "greedy"
        or parent_spec.step != step - 1
    ):
        return out + [
            _problem(mid, body, f"its parent is not the decision of greedy step {step - 1}")
        ]
    incumbent, mean = _incumbent(parent, parent_manifest)
    if incumbent is None:
        return out + [_problem(mid, body, "its parent step names no incumbent")]
    if held != incumbent or not _same_number(held_mean, mean):
        out.append(
            _problem(
                mid,
                body,
                f"its incumbent is {str(held)[:12]} at mean "
                f"{held_mean!r}, but step {step - 1}'s decision gives "
                f"{incumbent[:12]} at {mean!r}",
            )
        )
    # a decision carries what it promoted; a start that promoted nothing, its manifest
    info = parent.conditions.get(incumbent) or parent_manifest.conditions.get(incumbent)
    coded = {k: int(v) for k, v in (info.coded if info else {}).items() if v in (-1, 1)}
    if set(coded) != set(letters):
        return out + [_problem(mid, body, "its incumbent is not at factor levels")]
    flip = letters[step - 1]
    coded[flip] = -coded[flip]
    challenger = point_condition(base, factors, coded, point_name(coded), "baseline")
    return out + _conditions_match(
        mid,
        body,
        [(challenger.id, challenger.config)],
        f"flipping {flip} of step {step - 1}'s incumbent",
    )


def _greedy_start(
    mid: str,
    body: Manifest,
    spec: BaselineSpec,
    factors: list[Factor],
    base: dict[str, Any],
) -> list[Problem]:
    """Step 0 evaluates the start: the all-low point, or the named condition it says."""
    if spec.start not in (None, "(1)"):
        names = {_name(body, r.condition) for r in body.runs}
        if names != {spec.start}:
            return [
                _problem(mid, body, f"step 0 runs {sorted(names)}, not its start {spec.start!r}")
            ]
        return []
    low = point_condition(base, factors, {f.letter: -1 for f in factors}, "(1)", "baseline")
    return _conditions_match(mid, body, [(low.id, low.config)], "the all-low start")


def _incumbent(parent: Decision, parent_manifest: Plan) -> tuple[str | None, Any]:
    """The incumbent a step hands on: what it promoted (at its best mean), else what it
    held (a start with no ok run: its own condition, mean unknown)."""
    if parent.promoted:
        return parent.promoted[0], parent.outcome.best_mean
    rule = parent_manifest.rule
    if isinstance(rule, BaselineRule) and rule.incumbent:
        return rule.incumbent, rule.incumbent_mean
    runs = parent_manifest.runs
    return (runs[0].condition if runs else None), None


def _same_number(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b)


def protocol_hours_before(
    ev: Evidence, manifests: dict[str, Manifest], observed: dict[str, ObservedRun]
) -> ProtocolHours:
    """`protocol_hours(campaign, event)`: training GPU-hours of the campaign's protocol runs
    (stages in force, baselines excluded) recorded before `event`, from the audited runs."""
    superseded = {b.amends for b in manifests.values() if b.amends}

    def hours(campaign: str, event: Event) -> float:
        total = 0.0
        for rid, run in observed.items():
            manifest = manifests.get(run.manifest) if run.manifest is not None else None
            if (
                manifest is None
                or manifest.campaign != campaign
                or "baseline" in manifest.spec
                or run.manifest in superseded
            ):
                continue
            recorded = ev.event("run_recorded", rid)
            if recorded is None or not before(recorded, event):
                continue
            seconds = run.metrics.training_seconds
            if seconds is not None and math.isfinite(seconds):
                total += float(seconds) * run.gpus
        return total / 3600.0

    return hours


__all__ = ["baseline_findings", "protocol_hours_before"]
