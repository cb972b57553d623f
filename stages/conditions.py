"""Conditions: concrete runner configs, their content ids, coded levels and display names.

Why: a condition's id is the hash of its canonical config, so the same recipe reached by two
routes (a design point and a named anchor) is recognised as one condition everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.canonical import canonical_bytes, sha256_hex
from ledger.errors import CampaignError, LedgerError
from stages.campaign import Campaign, Factor, StageSpec
from stages.designs import design_for_runs, fractional, point_name


@dataclass(frozen=True)
class Condition:
    """One concrete runner config with where it came from and its coded factor levels."""

    id: str
    name: str
    config: dict[str, Any]
    coded: dict[str, float | None]
    origin: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "config": self.config,
            "coded": self.coded,
            "origin": self.origin,
        }


def condition_id(config: dict[str, Any]) -> str:
    """Content id of a runner config: SHA-256 of its RFC 8785 canonical JSON."""
    return sha256_hex(canonical_bytes(config))


def code_value(value: Any, factor: Factor) -> float | None:
    """Coded level of a config value: -1/+1 at the levels, linear in between, else None.

    Why interpolate: a named "bridge" condition halfway between levels is coded 0, so the
    simulator and plots can place it; effect estimation only uses exactly coded points.
    """
    if value == factor.low:
        return -1.0
    if value == factor.high:
        return 1.0
    numeric = (int, float)
    if (
        isinstance(value, numeric)
        and isinstance(factor.low, numeric)
        and isinstance(factor.high, numeric)
        and not isinstance(value, bool)
    ):
        span = float(factor.high) - float(factor.low)
        return round(2.0 * (float(value) - float(factor.low)) / span - 1.0, 12)
    return None


def code_config(config: dict[str, Any], factors: list[Factor]) -> dict[str, float | None]:
    return {f.letter: code_value(config.get(f.key), f) for f in factors}


def make_condition(
    base: dict[str, Any], factors: list[Factor], overrides: dict[str, Any], name: str, origin: str
) -> Condition:
    config = {**base, **overrides}
    return Condition(
        id=condition_id(config),
        name=name,
        config=config,
        coded=code_config(config, factors),
        origin=origin,
    )


def point_condition(
    base: dict[str, Any], factors: list[Factor], coded: dict[str, int], name: str, origin: str
) -> Condition:
    """The condition at a design point (every factor at its coded level)."""
    overrides = {f.key: f.level(coded[f.letter]) for f in factors if f.letter in coded}
    return make_condition(base, factors, overrides, name, origin)


def named_condition(campaign: Campaign, name: str) -> Condition:
    if name not in campaign.named:
        raise CampaignError(f"{campaign.path}: no condition named {name!r} in [conditions]")
    return make_condition(campaign.base, campaign.factors, campaign.named[name], name, "named")


def stage_design(campaign: Campaign, stage: StageSpec):
    """The stage's design (full or fractional) as `stages.designs.Design`; errors name the stage."""
    k = len(campaign.factors)
    generators = stage.generators
    try:
        if stage.design == "full":
            design = fractional(k, 0)
        elif generators:
            design = fractional(k, len(generators), generators)
        else:
            design = design_for_runs(k, stage.runs or 0)
    except LedgerError as exc:
        raise CampaignError(f"{campaign.path}: stage {stage.name!r}: {exc}") from None
    if stage.design != "full" and stage.runs is not None and len(design.runs) != stage.runs:
        raise CampaignError(
            f"{campaign.path}: stage {stage.name!r}.runs is {stage.runs} but the "
            f"generators give {len(design.runs)} runs"
        )
    return design


def design_points(campaign: Campaign, stage: StageSpec) -> list[dict[str, int]]:
    """Coded runs of the stage's design (full or fractional), in standard order."""
    return stage_design(campaign, stage).runs


def design_conditions(campaign: Campaign, stage: StageSpec) -> list[Condition]:
    return [
        point_condition(campaign.base, campaign.factors, coded, point_name(coded), "design")
        for coded in design_points(campaign, stage)
    ]
