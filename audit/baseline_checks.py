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

from audit.evidence import Evidence
from audit.runs import ObservedRun
from ledger.problems import Problem
from ledger.verify import Event, before
from stages.campaign import Factor
from stages.conditions import point_condition
from stages.designs import full_factorial, point_name


def _factors(body: dict[str, Any]) -> list[Factor]:
    table = (body.get("analysis") or {}).get("factors") or {}
    return [
        Factor(letter, f["key"], f["levels"][0], f["levels"][1])
        for letter, f in sorted(table.items())
    ]


def _base(body: dict[str, Any], factors: list[Factor]) -> dict[str, Any] | None:
    """The campaign base the step's points were built on: frozen in its spec (`base`), or,
    for steps frozen before it was, the configs' shared keys without the factors'."""
    spec = body.get("spec") or {}
    if isinstance(spec.get("base"), dict):
        return spec["base"]
    configs = [(info or {}).get("config") or {} for info in (body.get("conditions") or {}).values()]
    if not configs:
        return None
    keys = {f.key for f in factors}
    first = {k: v for k, v in configs[0].items() if k not in keys}
    same = all({k: v for k, v in c.items() if k not in keys} == first for c in configs)
    return first if same else None


def _problem(mid: str, body: dict[str, Any], message: str) -> Problem:
    stage = body.get("stage")
    return Problem(
        mid,
        message,
        check="baseline re-derived",
        stage=stage if isinstance(stage, str) else None,
    )


def _conditions_match(
    mid: str, body: dict[str, Any], expected: list[tuple[str, dict[str, Any]]], what: str
) -> list[Problem]:
    """The manifest's run list is exactly `expected` (id, config) in every cell."""
    runs = body.get("runs") or []
    ran = sorted({str(r.get("condition")) for r in runs if isinstance(r, dict)})
    want = sorted(cid for cid, _ in expected)
    out = []
    if ran != want:
        table = body.get("conditions") or {}
        names = [str((table.get(c) or {}).get("name", c[:8])) for c in ran]
        wanted = [point_name_of(config, body) for _, config in expected]
        out.append(
            _problem(
                mid,
                body,
                f"its runs are of {', '.join(names) or 'nothing'}, but {what} gives "
                f"{', '.join(wanted) or 'nothing'}",
            )
        )
    cells = sorted(tuple(c) for c in body.get("cells") or [])
    declared = sorted(
        (str(r.get("condition")), r.get("seed"), r.get("host")) for r in runs if isinstance(r, dict)
    )
    full = sorted((cid, s, h) for cid in ran for s, h in cells)
    if declared != full:
        out.append(_problem(mid, body, "its runs are not each condition in every frozen cell"))
    return out


def point_name_of(config: dict[str, Any], body: dict[str, Any]) -> str:
    coded = {}
    for f in _factors(body):
        value = config.get(f.key)
        coded[f.letter] = 1 if value == f.high else -1
    return point_name(coded)


def baseline_findings(
    ev: Evidence,
    mid: str,
    body: dict[str, Any],
    manifests: dict[str, dict[str, Any]],
    protocol_hours: Any,
) -> list[Problem]:
    """Every way a baseline step is not what its seed and parent decision give.
    `protocol_hours(campaign, event)` is the protocol's training GPU-hours recorded before
    `event` (what `--match campaign` matched)."""
    spec = (body.get("spec") or {}).get("baseline") or {}
    factors = _factors(body)
    base = _base(body, factors)
    if base is None or not factors:
        return [_problem(mid, body, "its factors or base cannot be read: nothing re-derives it")]
    kind = spec.get("kind") or (body.get("rule") or {}).get("baseline")
    if kind == "random":
        return _random(ev, mid, body, spec, factors, base, protocol_hours)
    if kind == "greedy":
        return _greedy(ev, mid, body, spec, factors, base, manifests)
    return [_problem(mid, body, f"baseline kind {kind!r} is unknown to this audit")]


def _random(
    ev: Evidence,
    mid: str,
    body: dict[str, Any],
    spec: dict[str, Any],
    factors: list[Factor],
    base: dict[str, Any],
    protocol_hours: Any,
) -> list[Problem]:
    seed, affordable = spec.get("seed"), spec.get("affordable")
    if not isinstance(seed, int) or not isinstance(affordable, int) or affordable < 1:
        return [_problem(mid, body, f"seed {seed!r} or affordable {affordable!r} is unreadable")]
    out = []
    cells = body.get("cells") or []
    per_condition = len(cells) * float(body.get("budget_s") or 0) / 3600.0
    matched = spec.get("match_gpu_hours")
    if isinstance(matched, int | float) and per_condition > 0:
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
        if spec.get("match") == "campaign" and frozen is not None:
            spent = protocol_hours(body.get("campaign"), frozen)
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
    body: dict[str, Any],
    spec: dict[str, Any],
    factors: list[Factor],
    base: dict[str, Any],
    manifests: dict[str, dict[str, Any]],
) -> list[Problem]:
    step, rule = spec.get("step"), body.get("rule") or {}
    letters = [f.letter for f in factors]
    if not isinstance(step, int) or not 0 <= step <= len(letters):
        return [_problem(mid, body, f"greedy step {step!r} is not one of 0..{len(letters)}")]
    expected_flip = None if step == 0 else letters[step - 1]
    out = []
    if spec.get("flip") != expected_flip:
        out.append(
            _problem(mid, body, f"step {step} flips {spec.get('flip')!r}, not {expected_flip!r}")
        )
    if step == 0:
        return out + _greedy_start(mid, body, spec, factors, base)
    parent_id = body.get("parent")
    parent = ev.of_kind("decision").get(parent_id) if isinstance(parent_id, str) else None
    parent_manifest = manifests.get(str((parent or {}).get("manifest")))
    parent_spec = ((parent_manifest or {}).get("spec") or {}).get("baseline") or {}
    if parent is None or parent_spec.get("kind") != "greedy" or parent_spec.get("step") != step - 1:
        return out + [
            _problem(mid, body, f"its parent is not the decision of greedy step {step - 1}")
        ]
    incumbent, mean = _incumbent(parent, parent_manifest or {})
    if incumbent is None:
        return out + [_problem(mid, body, "its parent step names no incumbent")]
    if rule.get("incumbent") != incumbent or not _same_number(rule.get("incumbent_mean"), mean):
        out.append(
            _problem(
                mid,
                body,
                f"its incumbent is {str(rule.get('incumbent'))[:12]} at mean "
                f"{rule.get('incumbent_mean')!r}, but step {step - 1}'s decision gives "
                f"{incumbent[:12]} at {mean!r}",
            )
        )
    info = ((parent or {}).get("conditions") or {}).get(incumbent) or (
        (parent_manifest or {}).get("conditions") or {}
    ).get(incumbent)
    coded = {k: int(v) for k, v in ((info or {}).get("coded") or {}).items() if v in (-1, 1)}
    if set(coded) != set(letters):
        return out + [_problem(mid, body, "its incumbent is not at factor levels")]
    coded[expected_flip] = -coded[expected_flip]
    challenger = point_condition(base, factors, coded, point_name(coded), "baseline")
    return out + _conditions_match(
        mid,
        body,
        [(challenger.id, challenger.config)],
        f"flipping {expected_flip} of step {step - 1}'s incumbent",
    )


def _greedy_start(
    mid: str,
    body: dict[str, Any],
    spec: dict[str, Any],
    factors: list[Factor],
    base: dict[str, Any],
) -> list[Problem]:
    """Step 0 evaluates the start: the all-low point, or the named condition it says."""
    start = spec.get("start", "(1)")
    if start not in (None, "(1)"):
        table = body.get("conditions") or {}
        ran = {str(r.get("condition")) for r in body.get("runs") or [] if isinstance(r, dict)}
        names = {str((table.get(c) or {}).get("name")) for c in ran}
        if names != {start}:
            return [_problem(mid, body, f"step 0 runs {sorted(names)}, not its start {start!r}")]
        return []
    low = point_condition(base, factors, {f.letter: -1 for f in factors}, "(1)", "baseline")
    return _conditions_match(mid, body, [(low.id, low.config)], "the all-low start")


def _incumbent(parent: dict[str, Any], parent_manifest: dict[str, Any]) -> tuple[str | None, Any]:
    """The incumbent a step hands on: what it promoted (at its best mean), else what it
    held (a start with no ok run: its own condition, mean unknown)."""
    promoted = parent.get("promoted") or []
    if promoted:
        return str(promoted[0]), (parent.get("outcome") or {}).get("best_mean")
    rule = parent_manifest.get("rule") or {}
    if rule.get("incumbent"):
        return str(rule["incumbent"]), rule.get("incumbent_mean")
    runs = [r for r in parent_manifest.get("runs") or [] if isinstance(r, dict)]
    return (str(runs[0].get("condition")) if runs else None), None


def _same_number(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    return isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b)


def protocol_hours_before(
    ev: Evidence, manifests: dict[str, dict[str, Any]], observed: dict[str, ObservedRun]
) -> Callable[[Any, Event], float]:
    """`protocol_hours(campaign, event)`: training GPU-hours of the campaign's protocol runs
    (stages in force, baselines excluded) recorded before `event`, from the audited runs."""
    superseded = {b.get("amends") for b in manifests.values() if b.get("amends")}

    def hours(campaign: Any, event: Event) -> float:
        total = 0.0
        for rid, run in observed.items():
            manifest = manifests.get(str(run.manifest))
            if (
                manifest is None
                or manifest.get("campaign") != campaign
                or "baseline" in (manifest.get("spec") or {})
                or run.manifest in superseded
            ):
                continue
            recorded = ev.event("run_recorded", rid)
            if recorded is None or not before(recorded, event):
                continue
            seconds = run.metrics.training_seconds
            if (
                isinstance(seconds, int | float)
                and not isinstance(seconds, bool)
                and math.isfinite(seconds)
            ):
                total += float(seconds) * (run.gpus or 1)
        return total / 3600.0

    return hours


__all__ = ["baseline_findings", "protocol_hours_before"]
