"""Frozen gate rules: which conditions a stage promotes, and why, from summaries alone.

Why: a gate's rule is frozen in the manifest before its runs start; `decide` and `audit` both
call `apply_rule` on the same records, so the outcome (and its trace) must be a deterministic
function of the rule, the summaries and the effect estimates. The rule vocabulary is a contract
(DESIGN §6); docs/statistics.md spells out the semantics.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import product
from typing import Any

from ledger.decision_model import Exclusion, FailedRun, NewPoint, Verdict
from ledger.errors import CampaignError
from ledger.plan_model import Check, FactorSpec, Rule
from stages.designs import point_name
from stages.stats import ConditionSummary, EffectsResult, bh, label

EPS = 1e-12  # margins compare with this slack so that decimal margins behave as written


@dataclass
class RuleOutcome:
    """What a gate decided: promoted ids, new reduced-space points, and the reasons."""

    promoted: list[str]
    new_points: list[NewPoint] = field(default_factory=list)  # to materialize (`reduce`)
    excluded: list[Exclusion] = field(default_factory=list)
    significant: list[str] = field(default_factory=list)  # factor letters, BH at `fdr`
    verdicts: list[Verdict] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    best: str | None = None
    ranking: list[str] = field(default_factory=list)  # eligible ids in the gate's order

    def to_dict(self) -> dict[str, Any]:
        """The decision body's `outcome` (ledger.decision_model.Outcome's keys)."""
        return {
            "promoted": list(self.promoted),
            "new_points": [p.to_dict() for p in self.new_points],
            "excluded": [e.to_dict() for e in self.excluded],
            "significant": list(self.significant),
            "verdicts": [v.to_dict() for v in self.verdicts],
            "trace": list(self.trace),
            "best": self.best,
            "ranking": list(self.ranking),
        }


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def _mean(s: ConditionSummary) -> float:
    """The mean of a ranked condition (clean ones always have one: n >= 1)."""
    assert s.mean is not None, f"{s.condition} is ranked without a mean"
    return s.mean


def _runs_text(failed: list[dict]) -> str:
    return ", ".join(f"{f['host']}/{f['seed']} {f['status']}" for f in failed)


class _Gate:
    """What the rule's jobs share: the rule, the summaries by id, names, and the ranking."""

    def __init__(
        self,
        rule: Rule,
        summaries: list[ConditionSummary],
        names: dict[str, str],
        coded: dict[str, dict[str, int]],
        factors: dict[str, FactorSpec],
    ) -> None:
        self.rule, self.names, self.coded, self.factors = rule, names, coded, factors
        self.summaries = sorted(summaries, key=lambda s: s.condition)
        # every condition a rule or check may name, with its summary (None: no runs here)
        self.by_id: dict[str, ConditionSummary | None] = dict.fromkeys([*names, *coded])
        self.by_id.update((s.condition, s) for s in summaries)
        self.policy = rule.policy
        self.out = RuleOutcome(promoted=[])
        self.ranking: list[ConditionSummary] = []
        self.rank: dict[str, int] = {}
        self.reference: ConditionSummary | None = None  # the best mean margins are measured from

    @property
    def trace(self) -> list[str]:
        return self.out.trace

    def label(self, cid: str) -> str:
        return label(cid, self.names)

    def resolve(self, name: str, where: str) -> str:
        ids = sorted(cid for cid, n in self.names.items() if n == name)
        if len(ids) > 1:
            raise CampaignError(f"{where}: condition name {name!r} is ambiguous ({', '.join(ids)})")
        if ids:
            return ids[0]
        if name in self.by_id:
            return name
        raise CampaignError(f"{where}: unknown condition {name!r}")

    def excluded_reason(self, cid: str) -> str | None:
        return next((e.reason for e in self.out.excluded if e.condition == cid), None)

    def failing(self, s: ConditionSummary) -> bool:
        """Has failed runs that the policy holds against it (never under `ignore`)."""
        return bool(s.failed) and self.policy != "ignore"


def apply_rule(
    rule: Rule,
    summaries: list[ConditionSummary],
    *,
    names: dict[str, str],
    effects: EffectsResult | None = None,
    coded: dict[str, dict[str, int]] | None = None,
    factors: dict[str, FactorSpec] | None = None,
    checks: Sequence[Check] = (),
) -> RuleOutcome:
    """Apply a frozen gate rule to a stage's condition summaries (see docs/statistics.md).

    The rule and checks are typed (`ledger.plan_model`): their shape was checked where the
    plan entered, so only their meaning is decided here. `coded` holds the design points
    only (by condition id, each with a level of every factor): `reduce` maps its points
    onto them and nothing else. The jobs,
    in order: eligibility and ranking (with the `failed` policy), significance and
    `reduce`, the ranking selectors, the adders, the final order, the checks.
    """
    gate = _Gate(rule, summaries, names, coded or {}, factors or {})
    _rank(gate)
    reduce_ids, reduced = _significance_and_reduce(gate, effects)
    promoted, reasons = ([], {}) if reduced else _select_by_rank(gate)
    promoted += _wins_all_cells(gate)
    promoted += _max_gap(gate)
    promoted += _keep(gate)
    promoted += reduce_ids
    _order(gate, promoted, reasons)
    for c in checks:
        gate.out.verdicts.append(_check(c, gate))
    return gate.out


def _ineligible(gate: _Gate, s: ConditionSummary) -> str | None:
    """Why a condition cannot be ranked at this gate, or None."""
    runs = s.n + len(s.failed)
    min_cells = gate.rule.min_cells
    if runs == 0:
        return "no recorded runs"
    if min_cells is not None and s.n_cells < min_cells:
        return f"{s.n_cells} ok cells < min_cells {min_cells}"
    if s.failed and gate.policy == "exclude":
        return f"{len(s.failed)} of {runs} runs failed ({_runs_text(s.failed)}); failed = exclude"
    if s.n == 0 and gate.policy == "ignore":
        return f"no ok runs ({_runs_text(s.failed)})"
    return None


def _rank(gate: _Gate) -> None:
    """Eligibility, then the ranking: by mean; under `failed = worst` the conditions with failed
    runs come after every condition without, by (failed runs, mean, id)."""
    clean_ranked: list[ConditionSummary] = []
    failing: list[ConditionSummary] = []
    for s in gate.summaries:
        reason = _ineligible(gate, s)
        if reason is not None:
            gate.out.excluded.append(
                Exclusion(
                    condition=s.condition,
                    name=gate.names.get(s.condition),
                    reason=reason,
                    failed=[FailedRun.model_validate(f) for f in s.failed],
                )
            )
            gate.trace.append(f"excluded {gate.label(s.condition)}: {reason}")
            continue
        (failing if gate.failing(s) else clean_ranked).append(s)
        notes = []
        if s.failed:
            notes.append(
                f"{len(s.failed)} failed run(s) ({_runs_text(s.failed)}); failed = "
                f"{gate.policy}: "
                + (
                    "ranked after every condition without"
                    if gate.policy == "worst"
                    else f"ranked on its {s.n} ok run(s)"
                )
            )
        elif not s.complete:
            notes.append(f"incomplete, {s.n_cells} of {s.n_cells_expected} cells")
        for note in notes:
            gate.trace.append(f"note {gate.label(s.condition)}: {note}")
    clean_ranked.sort(key=lambda s: (s.mean, s.condition))
    failing.sort(key=lambda s: (len(s.failed), s.mean is None, s.mean or 0.0, s.condition))
    gate.ranking = clean_ranked + failing
    gate.rank = {s.condition: i for i, s in enumerate(gate.ranking, start=1)}
    gate.out.ranking = [s.condition for s in gate.ranking]
    gate.reference = clean_ranked[0] if clean_ranked else None
    gate.out.best = gate.ranking[0].condition if gate.ranking else None
    if not gate.ranking:
        gate.trace.append("no eligible condition: nothing ranked")


def _significance_and_reduce(gate: _Gate, effects: EffectsResult | None) -> tuple[list[str], bool]:
    """`fdr`: BH-significant factors; `reduce`: their reduced factorial (replaces ranking)."""
    rule = gate.rule
    if rule.fdr is None:
        return [], False
    gate.out.significant = _significant(rule.fdr, effects, gate.factors, gate.trace)
    if not rule.reduce:
        return [], False
    if not gate.out.significant:
        gate.trace.append("reduce: no factor is significant; promoting per the other selectors")
        return [], False
    return _reduce(gate.out, effects, gate.factors, gate.coded, gate.names, gate.trace), True


def _select_by_rank(gate: _Gate) -> tuple[list[str], dict[str, list[str]]]:
    """`within` (margin to the best mean) then `top_k` (the first k of the ranking)."""
    top_k, within = gate.rule.top_k, gate.rule.within
    if not gate.ranking:
        return [], {}
    if top_k is None and within is None:
        gate.trace.append("no top_k or within: no one is promoted by ranking")
        return [], {}
    ref = gate.reference
    pool = gate.ranking
    if within is not None:
        if ref is None:
            gate.trace.append(
                "within: every ranked condition has failed runs; none is within a margin"
            )
        pool = [
            s
            for s in pool
            if ref is not None and not gate.failing(s) and _mean(s) - _mean(ref) <= within + EPS
        ]
    if top_k is not None:
        pool = pool[:top_k]
    chosen = {s.condition for s in pool}
    promoted, reasons = [], {}
    n_ranked = len(gate.ranking)
    for s in gate.ranking:
        rank = f"rank {gate.rank[s.condition]} of {n_ranked}"
        if s.condition in chosen:
            promoted.append(s.condition)
            extra = f", {len(s.failed)} failed run(s)" if s.failed else ""
            gate.trace.append(
                f"promoted {gate.label(s.condition)}: {rank}, mean {_fmt(s.mean)} ± "
                f"{_fmt(s.sd)} sd over {s.n_cells} cells{extra}"
            )
            continue
        why = []
        if within is not None and gate.failing(s):
            why.append(
                f"{len(s.failed)} failed run(s) (failed = {gate.policy}): never within a margin"
            )
        elif within is not None and ref is not None and _mean(s) - _mean(ref) > within + EPS:
            why.append(f"{_fmt(_mean(s) - _mean(ref))} above best (margin {_fmt(within)})")
        if top_k is not None and not why:
            why.append(f"outside top_k {top_k}")
        reasons[s.condition] = [rank, *why]
    return promoted, reasons


def _wins_all_cells(gate: _Gate) -> list[str]:
    if not gate.rule.wins_all_cells:
        return []
    winners = [
        s
        for s in gate.ranking
        if s.n_cells_expected > 0 and s.complete and not s.failed and s.wins == s.n_cells_expected
    ]
    if not winners:
        gate.trace.append("wins_all_cells: no condition ranks first in every cell")
    for s in winners:
        gate.trace.append(
            f"promoted {gate.label(s.condition)}: wins_all_cells, first in all "
            f"{s.n_cells_expected} cells"
        )
    return [s.condition for s in winners]


def _max_gap(gate: _Gate) -> list[str]:
    """Promote the named condition iff its mean is at most `gap` above the best; a verdict."""
    max_gap = gate.rule.max_gap
    if max_gap is None:
        return []
    cid = gate.resolve(max_gap.condition, "rule key 'max_gap'")
    s, ref = gate.by_id[cid], gate.reference
    vname = f"max_gap:{max_gap.condition}"
    excluded = gate.excluded_reason(cid)
    if excluded is not None:
        detail = f"{gate.label(cid)} excluded: {excluded}"
    elif s is None or s.mean is None or ref is None:
        detail = f"no data for {gate.label(cid)}"
    elif gate.failing(s):
        detail = f"{gate.label(cid)} has {len(s.failed)} failed run(s) (failed = {gate.policy})"
    else:
        gap = _mean(s) - _mean(ref)
        ok = gap <= max_gap.gap + EPS
        detail = f"gap {_fmt(gap)} to best {gate.label(ref.condition)} vs max {_fmt(max_gap.gap)}"
        gate.out.verdicts.append(_verdict(vname, ok, detail))
        gate.trace.append(
            f"promoted {gate.label(cid)}: max_gap, {detail}"
            if ok
            else f"max_gap {gate.label(cid)} not promoted: {detail}"
        )
        return [cid] if ok else []
    gate.out.verdicts.append(_verdict(vname, False, detail))
    gate.trace.append(f"max_gap {detail}, not promoted")
    return []


def _keep(gate: _Gate) -> list[str]:
    out = []
    n_ranked = len(gate.ranking)
    for name in gate.rule.keep or []:
        cid = gate.resolve(name, "rule key 'keep'")
        out.append(cid)
        s = gate.by_id[cid]
        if s is None or s.n == 0:
            why = "no ok data at this stage"
        elif cid not in gate.rank:
            why = "excluded from ranking"
        else:
            why = None
        gate.trace.append(
            f"kept {gate.label(cid)}: always carried"
            + (f" ({why})" if why else f", rank {gate.rank[cid]} of {n_ranked}")
        )
    return out


def _order(gate: _Gate, promoted: list[str], reasons: dict[str, list[str]]) -> None:
    """Deduplicate, order by rank (unranked last, by name), and say who was left out."""
    unique = list(dict.fromkeys(promoted))
    rank, names = gate.rank, gate.names
    ranked = sorted((c for c in unique if c in rank), key=rank.__getitem__)
    unranked = sorted((c for c in unique if c not in rank), key=lambda c: (names.get(c, c), c))
    gate.out.promoted = ranked + unranked
    for cid in sorted(reasons, key=rank.__getitem__):
        if cid not in unique:
            gate.trace.append(f"not promoted {gate.label(cid)}: {', '.join(reasons[cid])}")


def _significant(
    alpha: float, effects: EffectsResult | None, factors: dict[str, FactorSpec], trace: list[str]
) -> list[str]:
    """BH over the main effects at level `alpha`; returns the significant factor letters."""
    if effects is None:
        trace.append("fdr: no effect estimates at this stage; no factor is significant")
        return []
    if effects.post_selection:
        trace.append(
            "fdr: the effects here are post-selection (not an orthogonal design); "
            "no factor is significant"
        )
        return []
    letters = (
        sorted(factors) if factors else sorted(e.term for e in effects.effects if len(e.term) == 1)
    )
    rows = [e for e in effects.effects if e.term in letters]
    for letter in letters:
        if effects.term(letter) is None:
            why = effects.dropped_reasons.get(letter, "not in the plan")
            trace.append(f"fdr: {letter} not estimated ({why}); not significant")
    usable = [e for e in rows if e.p is not None]
    for e in rows:
        if e.p is None:
            trace.append(f"fdr: {e.term} has no p-value ({effects.method}); not significant")
    if not usable:
        trace.append("fdr: no main effect with a p-value; no factor is significant")
        return []
    reject, q = bh([e.p for e in usable], alpha)  # type: ignore[misc]
    sig = []
    for e, r, qv in zip(usable, reject, q, strict=True):
        key = factors[e.term].key if factors else None  # rows are of `factors`' letters
        what = f"{e.term} ({key})" if key else e.term
        verdict = "significant" if r else "not significant"
        trace.append(
            f"fdr {alpha:g}: {what} effect {_fmt(e.effect)}, p {_fmt(e.p)}, q {_fmt(qv)}: {verdict}"
        )
        if r:
            sig.append(e.term)
    return sig


def _reduce(
    out: RuleOutcome,
    effects: EffectsResult | None,
    factors: dict[str, FactorSpec],
    coded: dict[str, dict[str, int]],
    names: dict[str, str],
    trace: list[str],
) -> list[str]:
    """Fix significant factors at their better level; list the factorial of the rest."""
    assert effects is not None
    letters = (
        sorted(factors) if factors else sorted(e.term for e in effects.effects if len(e.term) == 1)
    )
    fixed = {}
    for f in out.significant:
        row = effects.term(f)
        assert row is not None and row.effect is not None, f"significant {f} has no estimate"
        eff = row.effect
        fixed[f] = -1 if eff > 0 else 1  # a positive effect raises the minimized metric
        trace.append(f"reduce: fix {f} at {fixed[f]:+d} (effect {_fmt(eff)})")
    free = [f for f in letters if f not in fixed]
    by_point: dict[tuple[int, ...], str] = {}
    for cid in sorted(coded):
        key = tuple(coded[cid][f] for f in letters)
        by_point.setdefault(key, cid)
    ids = []
    for levels in product((-1, 1), repeat=len(free)):
        point = dict(fixed)
        # standard order: the first free factor alternates fastest
        point.update(dict(zip(reversed(free), levels, strict=True)))
        point = {f: point[f] for f in letters}
        pname = point_name(point)
        found = by_point.get(tuple(point[f] for f in letters))
        if found is not None:
            ids.append(found)
            trace.append(f"promoted {label(found, names)}: reduce point {pname}")
        else:
            out.new_points.append(NewPoint(name=pname, coded=point))
            trace.append(f"reduce: new point {pname} to materialize")
    trace.append(
        f"reduce: full factorial of {''.join(free) or 'no free factor'} ({2 ** len(free)} points)"
    )
    return ids


def _verdict(name: str, passed: bool, detail: str) -> Verdict:
    return Verdict.model_validate({"name": name, "pass": passed, "detail": detail})


def _check(c: Check, gate: _Gate) -> Verdict:
    """A recorded yes/no near-equivalence verdict; never changes the promoted set."""

    def pick(name: str) -> tuple[str, ConditionSummary] | None:
        """The condition a check names and its summary; None when it has no mean."""
        if name == "best":
            return (gate.ranking[0].condition, gate.ranking[0]) if gate.ranking else None
        cid = gate.resolve(name, f"check {c.name!r}")
        s = gate.by_id[cid]
        return (cid, s) if s is not None and s.mean is not None else None

    picked_a, picked_b = pick(c.a), pick(c.b)
    if picked_a is None or picked_b is None:
        missing = [n for n, got in ((c.a, picked_a), (c.b, picked_b)) if got is None]
        return _verdict(c.name, False, "no data for " + " and ".join(missing))
    (id_a, summary_a), (id_b, summary_b) = picked_a, picked_b
    failing = [
        f"{gate.label(cid)} has {len(s.failed)} failed run(s)"
        for cid, s in ((id_a, summary_a), (id_b, summary_b))
        if gate.failing(s)
    ]
    if failing:
        detail = "; ".join(dict.fromkeys(failing)) + f" (failed = {gate.policy})"
        return _verdict(c.name, False, detail)
    diff = abs(_mean(summary_a) - _mean(summary_b))
    ok = diff <= c.within + EPS
    detail = (
        f"|{gate.label(id_a)} - {gate.label(id_b)}| = {_fmt(diff)} {'<=' if ok else '>'} "
        f"{_fmt(c.within)}"
    )
    return _verdict(c.name, ok, detail)
