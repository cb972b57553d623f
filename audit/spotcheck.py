"""`ledger audit --reproduce N`: replay a reviewer-drawn sample of recorded runs inside the audit.

Why: binding a log to its run proves which run it claims to be, not that its numbers came
from that recipe. A runner can label a good competitor `diverged` (with an exploding loss it
made up) or shade a metric; only re-training shows the lie. Replaying every run costs what
the campaign cost, so the reviewer draws a sample with a seed of their own choosing: the
operator cannot know in advance which runs will be replayed, so every lie risks discovery.

The draw (`draw`, pure): the eligible runs are accepted builtin-runner records of an accepted
manifest (simulated and foreign runs cannot be re-trained here and are counted apart); they
are grouped into strata by manifest (stage) and recorded status, each stratum ordered by
SHA-256 of `"<seed>:<run id>"`, the strata ordered failed-first (`diverged`, `crashed`,
`timeout`: the labels a lie hides behind, always eligible) and then by SHA-256 of
`"<seed>:<manifest>/<status>"`, and runs are taken round-robin, one per stratum per round,
until N are drawn. Anyone can re-derive the same draw from the same seed.

Each drawn run is replayed with its recorded seed, step count and per-step schedule
(`audit.reproduce.replay_log`) and compared with its record: bit-exact expected for a run
recorded and replayed on CPU; within `tolerance` (loss of every step and val_bpb) when a GPU
is involved. A mismatch is a finding naming the run.
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from audit.evidence import Evidence
from audit.reproduce import replay_log
from audit.runs import RunCheck
from ledger.errors import ConfigError, LedgerError
from ledger.log_records import LogHeader
from ledger.plan_model import Manifest
from ledger.problems import Problem
from runner.fingerprint import code_sha256
from stages.plan import data_fingerprint

FAILED_STATUSES = ("diverged", "crashed", "timeout")
DEFAULT_GPU_TOLERANCE = 0.01
DEFAULT_DATA = Path("data/corpus")


@dataclass(frozen=True)
class SpotCheckRequest:
    """What the reviewer asks for: how many runs, the draw's seed, the accepted difference
    for replays on a GPU, the data and device to replay with."""

    count: int
    seed: int = 0
    tolerance: float | None = None
    data: Path | None = None
    device: str = "cpu"
    python: str = sys.executable
    timeout_s: float = 3600.0

    def __post_init__(self) -> None:
        if not isinstance(self.count, int) or self.count < 1:
            raise ConfigError(f"--reproduce must be a positive number of runs, not {self.count!r}")
        if self.tolerance is not None and not self.tolerance >= 0:
            raise ConfigError(f"--tolerance must be >= 0, not {self.tolerance!r}")


@dataclass(frozen=True)
class Candidate:
    """One run that can be drawn: its record id, stratum (manifest, status) and stage name."""

    run: str
    manifest: str
    status: str
    stage: str

    @property
    def stratum(self) -> str:
        return f"{self.manifest}/{self.status}"


def _rank(seed: int, text: str) -> str:
    return hashlib.sha256(f"{seed}:{text}".encode()).hexdigest()


def draw(candidates: list[Candidate], count: int, seed: int) -> list[Candidate]:
    """The reviewer's sample: stratified by manifest and status, failed statuses first,
    round-robin over strata, each ordered by SHA-256 of the seed and the run id (pure)."""
    strata: dict[str, list[Candidate]] = {}
    for cand in candidates:
        strata.setdefault(cand.stratum, []).append(cand)
    for members in strata.values():
        members.sort(key=lambda c: _rank(seed, c.run))
    order = sorted(
        strata, key=lambda s: (strata[s][0].status not in FAILED_STATUSES, _rank(seed, s))
    )
    picked: list[Candidate] = []
    depth = 0
    while len(picked) < count and any(len(strata[s]) > depth for s in order):
        for name in order:
            if depth < len(strata[name]) and len(picked) < count:
                picked.append(strata[name][depth])
        depth += 1
    return picked


@dataclass
class SpotCheck:
    """What the spot-check drew, replayed and found."""

    request: SpotCheckRequest
    eligible: int = 0
    not_eligible: dict[str, int] = field(default_factory=dict)
    results: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def notes(self) -> list[str]:
        verdicts = [r["verdict"] for r in self.results]
        done = sum(v in ("identical", "within tolerance") for v in verdicts)
        line = (
            f"spot-check (seed {self.request.seed}): replayed {len(verdicts)} of "
            f"{self.eligible} eligible run(s); {done} reproduce their record"
        )
        skipped = {k: v for k, v in self.not_eligible.items() if v}
        if skipped:
            line += (
                " (not replayable: "
                + ", ".join(f"{v} {k}" for k, v in sorted(skipped.items()))
                + ")"
            )
        out = [line]
        for result in self.results:
            if result["verdict"] in ("not comparable here", "nothing to compare"):
                out.append(
                    f"spot-check {result['run'][:12]}: {result['verdict']}: {result['detail']}"
                )
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "seed": self.request.seed,
            "requested": self.request.count,
            "tolerance": self.request.tolerance,
            "device": self.request.device,
            "eligible": self.eligible,
            "not_eligible": self.not_eligible,
            "drawn": self.results,
            "reproduced": sum(
                r["verdict"] in ("identical", "within tolerance") for r in self.results
            ),
            "mismatches": sum(r["verdict"] == "mismatch" for r in self.results),
        }


def candidates(
    checks: dict[str, RunCheck], manifests: dict[str, Manifest]
) -> tuple[list[Candidate], dict[str, int]]:
    """The runs a replay can re-train, and how many others there are by reason."""
    out: list[Candidate] = []
    skipped = {"simulated": 0, "foreign runner": 0, "unplanned": 0}
    for rid, check in sorted(checks.items()):
        mid = check.record.manifest
        if check.simulated:
            skipped["simulated"] += 1
        elif mid is None or mid not in manifests:
            skipped["unplanned"] += 1
        elif check.runner != "builtin":  # the manifest's runner kind, never the log's word
            skipped["foreign runner"] += 1
        else:
            manifest = manifests[mid]
            out.append(
                Candidate(rid, mid, check.record.status, f"{manifest.campaign}/{manifest.stage}")
            )
    return out, skipped


def spot_check(
    ev: Evidence,
    checks: dict[str, RunCheck],
    manifests: dict[str, Manifest],
    request: SpotCheckRequest,
) -> SpotCheck:
    """Draw `request.count` runs and replay each; a replay that does not reproduce its record
    is a finding naming the run (see the module docstring for the draw and the tolerance)."""
    pool, skipped = candidates(checks, manifests)
    result = SpotCheck(request, len(pool), skipped)
    local = _local_identity(request.data)
    for cand in draw(pool, request.count, request.seed):
        row = _replay_one(ev, checks[cand.run], manifests[cand.manifest], cand, request, local)
        result.results.append(row)
        if row["verdict"] in ("mismatch", "replay failed"):
            result.problems.append(
                Problem(
                    cand.run,
                    f"spot-check replay {row['verdict']}: {row['detail']}",
                    check="spot-check replay",
                )
            )
    return result


def _local_identity(data: Path | None) -> dict[str, Any]:
    """The code and data a replay here would use (compared with each run's before training)."""
    path = data or DEFAULT_DATA
    return {"code_sha256": code_sha256(), "data_sha256": data_fingerprint(path), "data": path}


def _allowed(
    recorded_device: Any, replay_device: Any, request: SpotCheckRequest
) -> tuple[float, str]:
    """The accepted difference for one run: none when it was recorded and replayed on CPU,
    the stated tolerance when a GPU took part (its kernels are not bit-reproducible)."""
    if str(recorded_device) == "cpu" and str(replay_device) == "cpu":
        return 0.0, "bit-exact (CPU)"
    tolerance = request.tolerance if request.tolerance is not None else DEFAULT_GPU_TOLERANCE
    given = "" if request.tolerance is not None else ", the default"
    return tolerance, f"within {tolerance:g} (GPU{given})"


def _replay_one(
    ev: Evidence,
    check: RunCheck,
    manifest: Manifest,
    cand: Candidate,
    request: SpotCheckRequest,
    local: dict[str, Any],
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "run": cand.run,
        "stage": cand.stage,
        "status": cand.status,
        "key": check.record.run,
    }
    try:
        raw = ev.raw_bytes(check.record.raw_log)
        header = ev.parse_log(check.record.raw_log, "jsonl").header or LogHeader(type="header")
    except LedgerError as exc:
        return {**row, "verdict": "replay failed", "detail": f"raw log unreadable: {exc}"}
    for what, said in (("code_sha256", header.code_sha256), ("data_sha256", header.data_sha256)):
        if said != local[what]:
            here = str(local[what])[:12] if local[what] else "none"
            source = f" ({local['data']})" if what == "data_sha256" else ""
            return {
                **row,
                "verdict": "not comparable here",
                "detail": f"the run's {what} is {str(said)[:12]}, here it is "
                f"{here}{source}: check out the frozen runner and data",
            }
    try:
        out = replay_log(
            raw,
            check.record,
            manifest,
            label=cand.run[:12],
            data=local["data"],
            device=request.device,
            python=request.python,
            timeout_s=request.timeout_s,
        )
    except LedgerError as exc:
        if "recorded no steps" in str(exc):
            return {
                **row,
                "verdict": "nothing to compare",
                "detail": "the log records no training step",
            }
        return {**row, "verdict": "replay failed", "detail": str(exc)}
    allowed, row["accepted"] = _allowed(header.device, out["replay_device"], request)
    row["replay"] = out
    row["verdict"], row["detail"] = _verdict(out, allowed)
    return row


def _verdict(out: dict[str, Any], allowed: float) -> tuple[str, str]:
    if out["identical"]:
        return "identical", f"{out['steps']} step(s) and the record's outcome bit for bit"
    why = []
    if out["status_compared"] and out["recorded_status"] != out["replayed_status"]:
        why.append(
            f"status recorded {out['recorded_status']}, the replay ended {out['replayed_status']}"
        )
    if out["compared_steps"] < out["steps"]:
        why.append(f"the replay logged {out['compared_steps']} of {out['steps']} steps")
    first = out["first_differing_step"]
    if first is not None and (
        out["max_loss_difference"] is None or out["max_loss_difference"] > allowed
    ):
        why.append(
            f"step {first['step']} loss recorded {first['recorded_loss']}, replayed "
            f"{first['replayed_loss']} (max difference {out['max_loss_difference']})"
        )
    rec, rep = out["recorded_val_bpb"], out["replayed_val_bpb"]
    if out["status_compared"] and (rec is None) != (rep is None):
        why.append(f"val_bpb recorded {rec}, replayed {rep}")
    elif out["status_compared"] and rec is not None and abs(rep - rec) > allowed:
        why.append(f"val_bpb recorded {rec}, replayed {rep} (difference {rep - rec:+.6g})")
    if why:
        return "mismatch", "; ".join(why) + f" [accepted difference {allowed:g}]"
    return "within tolerance", (
        f"max difference {out['max_difference']:.3g} within {allowed:g} over {out['steps']} step(s)"
    )


__all__ = [
    "Candidate",
    "DEFAULT_GPU_TOLERANCE",
    "SpotCheck",
    "SpotCheckRequest",
    "candidates",
    "draw",
    "spot_check",
]
