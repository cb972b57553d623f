"""Where each finding is: the stage, condition, seed and host of the object it names.

Why a pass of its own: most checks see one object (a raw log's bytes, a signature, a journal
line) and cannot know which run it belongs to; the audit can, from the evidence it read. The
place comes from the source that fixes it: a manifest names its stage and its conditions'
names; a run record names its declared cell (condition, seed, host), which the binding
checks tie to the manifest; a raw log or stderr is located by the record that cites it. A
site that already said where keeps what it said.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from ledger.decision_model import Decision
from ledger.documents import RunRecord
from ledger.plan_model import Manifest, Plan
from ledger.problems import Problem


@dataclass(frozen=True)
class Place:
    """Where an object sits in the campaign (None where it does not apply)."""

    stage: str | None = None
    condition: str | None = None
    condition_name: str | None = None
    seed: int | None = None
    host: str | None = None


class Locator:
    """Object id -> Place, from the manifests, decisions and run records the audit read."""

    def __init__(
        self,
        manifests: Mapping[str, Manifest],
        decisions: Mapping[str, Decision],
        runs: Mapping[str, RunRecord],
    ) -> None:
        self.places: dict[str, Place] = {}
        for mid, manifest in manifests.items():
            self.places[mid] = Place(stage=manifest.stage or None)
        for did, decision in decisions.items():
            judged = manifests.get(decision.manifest)
            stage = decision.stage or (judged.stage if judged is not None else None)
            self.places[did] = Place(stage=stage or None)
        for rid, record in runs.items():
            place = run_place(record, manifests.get(record.manifest or ""))
            self.places[rid] = place
            self.places.setdefault(record.raw_log, place)
            if record.stderr is not None:
                self.places.setdefault(record.stderr, place)

    def locate(self, problem: Problem) -> Problem:
        """The problem with the empty place fields filled from its object's place."""
        place = self.places.get(problem.object)
        if place is None:
            return problem
        filled = {
            name: getattr(place, name)
            for name in ("stage", "condition", "condition_name", "seed", "host")
            if getattr(problem, name) is None and getattr(place, name) is not None
        }
        return replace(problem, **filled) if filled else problem

    def locate_all(self, problems: Iterable[Problem]) -> list[Problem]:
        return [self.locate(p) for p in problems]


def cell_place(
    manifest: Plan | None, condition: str | None, seed: int | None, host: str | None
) -> Place:
    """A cell of a stage, named as its manifest names the condition."""
    info = manifest.conditions.get(condition) if manifest and condition else None
    return Place(
        stage=manifest.stage if manifest is not None else None,
        condition=condition or None,
        condition_name=(info.name or None) if info is not None else None,
        seed=seed,
        host=host or None,
    )


def run_place(record: RunRecord, manifest: Plan | None) -> Place:
    """A run record's cell, named as its manifest names the condition; the stage is the
    plan's (the record's own only for unplanned compute)."""
    place = cell_place(manifest, record.condition, record.seed, record.host)
    return place if manifest is not None else replace(place, stage=record.stage or None)


def cell_words(place: Place | Problem) -> str:
    """`confirm / base / seed 0 @ local`: a run's place as a reader says it."""
    name = place.condition_name or (place.condition or "?")[:8]
    return f"{place.stage or '?'} / {name} / seed {place.seed} @ {place.host or '?'}"


__all__ = ["Locator", "Place", "cell_place", "cell_words", "run_place"]
