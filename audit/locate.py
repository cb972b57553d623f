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
from typing import Any

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
        manifests: Mapping[str, Mapping[str, Any]],
        decisions: Mapping[str, Mapping[str, Any]],
        runs: Mapping[str, Mapping[str, Any]],
    ) -> None:
        self.places: dict[str, Place] = {}
        for mid, body in manifests.items():
            self.places[mid] = Place(stage=_text(body.get("stage")))
        for did, body in decisions.items():
            manifest = manifests.get(str(body.get("manifest")), {})
            self.places[did] = Place(stage=_text(body.get("stage") or manifest.get("stage")))
        for rid, body in runs.items():
            manifest = manifests.get(str(body.get("manifest")), {})
            place = run_place(body, manifest)
            self.places[rid] = place
            for key in ("raw_log", "stderr"):
                if isinstance(body.get(key), str):
                    self.places.setdefault(body[key], place)

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


def run_place(body: Mapping[str, Any], manifest: Mapping[str, Any]) -> Place:
    """A run record's cell, named as its manifest names the condition."""
    condition = _text(body.get("condition"))
    info = (manifest.get("conditions") or {}).get(condition) or {}
    seed = body.get("seed")
    return Place(
        stage=_text(manifest.get("stage") or body.get("stage")),  # the plan's, not the record's
        condition=condition,
        condition_name=_text(info.get("name")),
        seed=seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        host=_text(body.get("host")),
    )


def cell_words(place: Place | Problem) -> str:
    """`confirm / base / seed 0 @ local`: a run's place as a reader says it."""
    name = place.condition_name or (place.condition or "?")[:8]
    return f"{place.stage or '?'} / {name} / seed {place.seed} @ {place.host or '?'}"


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


__all__ = ["Locator", "Place", "cell_words", "run_place"]
