"""Frozen gate rules: which conditions a stage promotes, and why, from summaries alone.

Why: a gate's rule is frozen in the manifest before its runs start; `decide` and `audit` both
call `apply_rule` on the same records, so the outcome (and its trace) must be a deterministic
function of the rule, the summaries and the effect estimates. The rule vocabulary is a contract
(DESIGN §6); docs/statistics.md spells out the semantics.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from itertools import product

from ledger.errors import LedgerError
from stages.designs import point_name
from stages.stats import ConditionSummary, EffectsResult, bh, clean

RULE_KEYS = ("top_k", "within", "keep", "wins_all_cells", "max_gap", "fdr", "reduce", "min_cells")
CHECK_KEYS = ("name", "a", "b", "within")
EPS = 1e-12  # margins compare with this slack so that decimal margins behave as written


@dataclass
class RuleOutcome:
    """What a gate decided: promoted ids, new reduced-space points, and the reasons."""

    promoted: list[str]
    new_points: list[dict] = field(default_factory=list)  # {"name", "coded"} to materialize
    excluded: list[dict] = field(default_factory=list)  # {"condition", "name", "reason"}
    significant: list[str] = field(default_factory=list)  # factor letters, BH at `fdr`
    verdicts: list[dict] = field(default_factory=list)  # {"name", "pass", "detail"}
    trace: list[str] = field(default_factory=list)
    best: str | None = None

    def to_dict(self) -> dict:
        return {
            "promoted": list(self.promoted),
            "new_points": [{"name": p["name"], "coded": dict(p["coded"])} for p in self.new_points],
            "excluded": [dict(e) for e in self.excluded],
            "significant": list(self.significant),
            "verdicts": [dict(v) for v in self.verdicts],
            "trace": list(self.trace),
            "best": self.best,
        }


def _num(rule_key: str, value: object, *, integer: bool = False, low: float = 0.0) -> float:
    ok = not isinstance(value, bool) and isinstance(value, int if integer else (int, float))
    if not ok or clean(value) is None or float(value) < low:  # type: ignore[arg-type]
        kind = "an integer" if integer else "a number"
        raise LedgerError(f"rule key {rule_key!r}: {value!r} must be {kind} >= {low:g}")
    return value  # type: ignore[return-value]


def validate_rule(rule: dict) -> dict:
    """Check the rule's keys and value types; return it unchanged (LedgerError names the key)."""
    if not isinstance(rule, dict):
        raise LedgerError(f"rule must be a table of keys, got {type(rule).__name__}")
    for key in rule:
        if key not in RULE_KEYS:
            raise LedgerError(f"unknown rule key {key!r} (known: {', '.join(RULE_KEYS)})")
    if "top_k" in rule:
        _num("top_k", rule["top_k"], integer=True, low=1)
    if "within" in rule:
        _num("within", rule["within"])
    if "min_cells" in rule:
        _num("min_cells", rule["min_cells"], integer=True, low=1)
    if "fdr" in rule:
        f = _num("fdr", rule["fdr"])
        if not 0 < f <= 1:
            raise LedgerError(f"rule key 'fdr': {f!r} must be in (0, 1]")
    for key in ("wins_all_cells", "reduce"):
        if key in rule and not isinstance(rule[key], bool):
            raise LedgerError(f"rule key {key!r}: {rule[key]!r} must be true or false")
    if rule.get("reduce") and "fdr" not in rule:
        raise LedgerError("rule key 'reduce' requires 'fdr' (the BH level that picks factors)")
    if "keep" in rule and (
        not isinstance(rule["keep"], list) or not all(isinstance(x, str) for x in rule["keep"])
    ):
        raise LedgerError("rule key 'keep': must be a list of condition names")
    if "max_gap" in rule:
        mg = rule["max_gap"]
        if not isinstance(mg, dict):
            raise LedgerError("rule key 'max_gap': must be {condition = NAME, gap = NUMBER}")
        for k in mg:
            if k not in ("condition", "gap"):
                raise LedgerError(f"rule key 'max_gap': unknown key {k!r}")
        if not isinstance(mg.get("condition"), str):
            raise LedgerError("rule key 'max_gap': 'condition' must be a condition name")
        _num("max_gap.gap", mg.get("gap"))
    return rule


def validate_checks(checks: Iterable[dict]) -> list[dict]:
    """Check `checks` entries ({name, a, b, within}); LedgerError names the bad key."""
    out = []
    for i, c in enumerate(checks):
        if not isinstance(c, dict):
            raise LedgerError(f"checks[{i}]: must be a table {{name, a, b, within}}")
        for k in c:
            if k not in CHECK_KEYS:
                raise LedgerError(
                    f"checks[{i}]: unknown key {k!r} (known: {', '.join(CHECK_KEYS)})"
                )
        for k in ("name", "a", "b"):
            if not isinstance(c.get(k), str):
                raise LedgerError(f"checks[{i}]: key {k!r} must be a string")
        _num(f"checks[{i}].within", c.get("within"))
        out.append(c)
    return out


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4g}"


def apply_rule(
    rule: dict,
    summaries: list[ConditionSummary],
    *,
    names: dict[str, str],
    effects: EffectsResult | None = None,
    coded: dict[str, dict[str, int]] | None = None,
    factors: dict[str, dict] | None = None,
    checks: Iterable[dict] = (),
) -> RuleOutcome:
    """Apply a frozen gate rule to a stage's condition summaries (see docs/statistics.md)."""
    validate_rule(rule)
    checks = validate_checks(checks)
    coded = coded or {}
    factors = factors or {}
    by_id = {s.condition: s for s in summaries}

    def label(cid: str) -> str:
        """`name [8-hex id]`: readable, and still unambiguous next to the full ids."""
        name = names.get(cid)
        return f"{name} [{cid[:8]}]" if name and name != cid else cid

    def resolve(name: str, where: str) -> str:
        ids = sorted(cid for cid, n in names.items() if n == name)
        if len(ids) > 1:
            raise LedgerError(f"{where}: condition name {name!r} is ambiguous ({', '.join(ids)})")
        if ids:
            return ids[0]
        if name in by_id or name in names or name in coded:
            return name
        raise LedgerError(f"{where}: unknown condition {name!r}")

    out = RuleOutcome(promoted=[])
    trace = out.trace

    # Eligibility.
    min_cells = rule.get("min_cells")
    eligible: list[ConditionSummary] = []
    for s in sorted(summaries, key=lambda s: s.condition):
        if s.n == 0 or s.mean is None:
            reason = "no ok runs"
        elif min_cells is not None and s.n_cells < min_cells:
            reason = f"{s.n_cells} ok cells < min_cells {min_cells}"
        else:
            eligible.append(s)
            if not s.complete:
                trace.append(
                    f"note {label(s.condition)}: incomplete, {s.n_cells} of "
                    f"{s.n_cells_expected} cells"
                )
            continue
        out.excluded.append(
            {"condition": s.condition, "name": names.get(s.condition), "reason": reason}
        )
        trace.append(f"excluded {label(s.condition)}: {reason}")

    ranking = sorted(eligible, key=lambda s: (s.mean, s.condition))
    rank = {s.condition: i for i, s in enumerate(ranking, start=1)}
    n_ranked = len(ranking)
    best = ranking[0] if ranking else None
    out.best = best.condition if best else None
    if best is None:
        trace.append("no eligible condition: nothing ranked")

    # Significant factors (fdr) and the reduced space (reduce).
    reduce_ids: list[str] = []
    reduced = False
    if "fdr" in rule:
        out.significant = _significant(rule["fdr"], effects, factors, trace)
        if rule.get("reduce"):
            if out.significant:
                reduced = True
                reduce_ids = _reduce(out, effects, factors, coded, names, trace)
            else:
                trace.append("reduce: no factor is significant; promoting per the other selectors")

    # Ranking selectors.
    promoted: list[str] = []
    reasons: dict[str, list[str]] = {}
    top_k, within = rule.get("top_k"), rule.get("within")
    if not reduced and best is not None and (top_k is not None or within is not None):
        pool = ranking
        if within is not None:
            pool = [s for s in pool if s.mean - best.mean <= within + EPS]
        if top_k is not None:
            pool = pool[:top_k]
        chosen = {s.condition for s in pool}
        for s in ranking:
            gap = s.mean - best.mean
            head = (
                f"rank {rank[s.condition]} of {n_ranked}, mean {_fmt(s.mean)} ± {_fmt(s.sd)} sd "
                f"over {s.n_cells} cells"
            )
            if s.condition in chosen:
                promoted.append(s.condition)
                trace.append(f"promoted {label(s.condition)}: {head}")
                continue
            why = []
            if within is not None and gap > within + EPS:
                why.append(f"{_fmt(gap)} above best (margin {_fmt(within)})")
            if top_k is not None and not why:
                why.append(f"outside top_k {top_k}")
            reasons[s.condition] = [f"rank {rank[s.condition]} of {n_ranked}", *why]
    elif not reduced and best is not None:
        trace.append("no top_k or within: no one is promoted by ranking")

    if rule.get("wins_all_cells"):
        winners = [
            s
            for s in ranking
            if s.n_cells_expected > 0 and s.complete and s.wins == s.n_cells_expected
        ]
        if not winners:
            trace.append("wins_all_cells: no condition ranks first in every cell")
        for s in winners:
            promoted.append(s.condition)
            trace.append(
                f"promoted {label(s.condition)}: wins_all_cells, first in all "
                f"{s.n_cells_expected} cells"
            )

    if "max_gap" in rule:
        mg = rule["max_gap"]
        cid = resolve(mg["condition"], "rule key 'max_gap'")
        s = by_id.get(cid)
        vname = f"max_gap:{mg['condition']}"
        if best is None or s is None or s.mean is None:
            out.verdicts.append(
                {"name": vname, "pass": False, "detail": f"no data for {label(cid)}"}
            )
            trace.append(f"max_gap {label(cid)}: no data, not promoted")
        elif cid not in rank:
            detail = f"{label(cid)} excluded: " + next(
                e["reason"] for e in out.excluded if e["condition"] == cid
            )
            out.verdicts.append({"name": vname, "pass": False, "detail": detail})
            trace.append(f"max_gap {detail}, not promoted")
        else:
            gap = s.mean - best.mean
            ok = gap <= mg["gap"] + EPS
            detail = f"gap {_fmt(gap)} to best {label(best.condition)} vs max {_fmt(mg['gap'])}"
            out.verdicts.append({"name": vname, "pass": ok, "detail": detail})
            if ok:
                promoted.append(cid)
                trace.append(f"promoted {label(cid)}: max_gap, {detail}")
            else:
                trace.append(f"max_gap {label(cid)} not promoted: {detail}")

    for name in rule.get("keep", []):
        cid = resolve(name, "rule key 'keep'")
        promoted.append(cid)
        s = by_id.get(cid)
        if s is None or s.n == 0:
            trace.append(f"kept {label(cid)}: always carried (no ok data at this stage)")
        elif cid not in rank:
            trace.append(f"kept {label(cid)}: always carried (excluded from ranking)")
        else:
            trace.append(f"kept {label(cid)}: always carried, rank {rank[cid]} of {n_ranked}")

    promoted.extend(reduce_ids)
    unique = list(dict.fromkeys(promoted))
    out.promoted = sorted(unique, key=lambda c: (c not in rank, rank.get(c, 0), names.get(c, c), c))
    for cid in sorted(reasons, key=rank.__getitem__):
        if cid not in unique:
            trace.append(f"not promoted {label(cid)}: {', '.join(reasons[cid])}")

    for c in checks:
        out.verdicts.append(_check(c, ranking, by_id, resolve, label))
    return out


def _significant(
    alpha: float, effects: EffectsResult | None, factors: dict[str, dict], trace: list[str]
) -> list[str]:
    """BH over the main effects at level `alpha`; returns the significant factor letters."""
    if effects is None:
        trace.append("fdr: no effect estimates at this stage; no factor is significant")
        return []
    letters = (
        sorted(factors) if factors else sorted(e.term for e in effects.effects if len(e.term) == 1)
    )
    rows = [e for e in effects.effects if e.term in letters]
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
        key = factors.get(e.term, {}).get("key")
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
    factors: dict[str, dict],
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
        eff = effects.get(f).effect  # type: ignore[union-attr]
        fixed[f] = -1 if eff > 0 else 1  # a positive effect raises the minimized metric
        trace.append(f"reduce: fix {f} at {fixed[f]:+d} (effect {_fmt(eff)})")
    free = [f for f in letters if f not in fixed]
    by_point = {}
    for cid in sorted(coded):
        key = tuple(coded[cid].get(f) for f in letters)
        by_point.setdefault(key, cid)
    ids = []
    for levels in product((-1, 1), repeat=len(free)):
        point = dict(fixed)
        # standard order: the first free factor alternates fastest
        point.update(dict(zip(reversed(free), levels, strict=True)))
        point = {f: point[f] for f in letters}
        pname = point_name(point)
        cid = by_point.get(tuple(point[f] for f in letters))
        if cid is not None:
            ids.append(cid)
            shown = f"{names[cid]} [{cid[:8]}]" if names.get(cid) else cid
            trace.append(f"promoted {shown}: reduce point {pname}")
        else:
            out.new_points.append({"name": pname, "coded": point})
            trace.append(f"reduce: new point {pname} to materialize")
    trace.append(
        f"reduce: full factorial of {''.join(free) or 'no free factor'} ({2 ** len(free)} points)"
    )
    return ids


def _check(c: dict, ranking: list[ConditionSummary], by_id: dict, resolve, label) -> dict:
    """A recorded yes/no near-equivalence verdict; never changes the promoted set."""

    def pick(name: str) -> tuple[str | None, float | None]:
        if name == "best":
            return (ranking[0].condition, ranking[0].mean) if ranking else (None, None)
        cid = resolve(name, f"check {c['name']!r}")
        s = by_id.get(cid)
        return cid, (s.mean if s is not None else None)

    (ia, ma), (ib, mb) = pick(c["a"]), pick(c["b"])
    missing = [n for n, m in ((c["a"], ma), (c["b"], mb)) if m is None]
    if missing:
        detail = "no data for " + " and ".join(missing)
        return {"name": c["name"], "pass": False, "detail": detail}
    diff = abs(ma - mb)  # type: ignore[operator]
    ok = diff <= c["within"] + EPS
    detail = f"|{label(ia)} - {label(ib)}| = {_fmt(diff)} {'<=' if ok else '>'} {_fmt(c['within'])}"
    return {"name": c["name"], "pass": ok, "detail": detail}
