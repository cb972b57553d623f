"""Problems grouped by root cause: what was tampered with first, what follows from it after.

Why: one edited number in one raw log makes several checks fail (the object's hash, the
run's evidence, the decision that no longer re-derives, the GPU-hours that no longer count).
Printed flat, a reader sees six problems and has to work out that they are one. Grouped, the
cause leads ("the raw log of confirm / base / seed 0 @ local was altered: ...") and the
consequences follow under it. The grouping is a pure function of located problems
(`audit.locate`), so `--json` and the terminal group the same way.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ledger.problems import Problem

# Checks whose failure follows from something else having changed: they are grouped under
# a cause at the same run (or stage) when there is one, and stand alone otherwise.
CONSEQUENCE_CHECKS = frozenset({"decision reproduces from raw logs", "costs"})
# Among problems about the same run, the one that says most about what happened leads.
CAUSE_RANK = {"raw log intact": 0, "metrics match the raw log": 1, "object bytes": 2}


@dataclass(frozen=True)
class Cause:
    """A root problem, other problems found at the same place (`related`: the same fact
    seen by another check), and the problems that follow from it (`consequences`)."""

    problem: Problem
    related: tuple[Problem, ...] = ()
    consequences: tuple[Problem, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "problem": self.problem.to_dict(),
            "related": [p.to_dict() for p in self.related],
            "consequences": [p.to_dict() for p in self.consequences],
        }


def _key(p: Problem) -> tuple[Any, ...]:
    if p.condition is not None and p.seed is not None:
        return ("run", p.stage, p.condition, p.seed, p.host)
    return ("object", p.object)


def group(problems: Iterable[Problem]) -> list[Cause]:
    """Causes in the order their first problem was found; each problem appears once."""
    problems = list(problems)
    groups: dict[tuple[Any, ...], list[Problem]] = {}
    for p in problems:
        if p.check not in CONSEQUENCE_CHECKS:
            groups.setdefault(_key(p), []).append(p)
    attached: dict[tuple[Any, ...], list[Problem]] = {k: [] for k in groups}
    alone: list[Problem] = []
    for p in problems:
        if p.check not in CONSEQUENCE_CHECKS:
            continue
        home = _key(p) if _key(p) in groups else None
        if home is None and p.stage is not None:
            home = next((k for k, ps in groups.items() if ps[0].stage == p.stage), None)
        if home is None:
            alone.append(p)
        else:
            attached[home].append(p)
    out = []
    for key, members in groups.items():
        ordered = sorted(members, key=lambda p: CAUSE_RANK.get(str(p.check), 9))
        out.append(Cause(ordered[0], tuple(ordered[1:]), tuple(attached[key])))
    # a decision that no longer re-derives with nothing upstream found is a cause itself
    out += [Cause(p) for p in alone]
    return out


_LONG_ID = re.compile(r"\b([0-9a-f]{12})[0-9a-f]{52}\b")


def short_ids(text: str) -> str:
    """Object ids (64 hex) cut to the 12 hex a terminal line shows (`--json` keeps them)."""
    return _LONG_ID.sub(r"\1", text)


__all__ = ["CAUSE_RANK", "CONSEQUENCE_CHECKS", "Cause", "group", "short_ids"]
