"""Who answers the runs of `ledger evaluate`, and what each run costs under a cost model.

A source answers "condition c, replicate r, at fidelity f" with a status, a value and the
run's cumulative cost there: the simulator (`[sim]` surface, one noise draw per replicate)
or a replay table (recorded runs). `TrialDraws` decides, for one trial of one method, which
replicate each run reads and what it is charged:

* Replicates of one condition at one fidelity and host are dealt without replacement (the
  k-th run there takes the k-th distinct draw; only more runs than recorded replicates reuse
  one, and that is counted). Draws are keyed by (evaluation seed, trial, condition, host,
  fidelity, k), not by method: the protocol and every baseline see the same replicate first
  (common random numbers), which is what makes their trial-by-trial differences sharp.
* Cost model `restart`: every stage or rung is a new run from scratch and pays the cumulative
  cost at its fidelity (what the campaign's stages do: each stage trains anew).
  `continue`: a run with the same identity goes on from where it stopped, follows the same
  replicate's curve, and pays only the difference.
"""

from __future__ import annotations

import functools
import hashlib
import random
import zlib
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist, fmean
from typing import Any

from ledger.errors import InputError, LedgerError
from stages.campaign import Campaign, budget_label
from stages.conditions import Condition
from stages.replay_table import Curve, CurveTable, Replicate, Row, read_table, table_from_store
from stages.surface import SimParams, expected_value, run_outcome

_NORMAL = NormalDist()
MEAN: Replicate = ("<mean>", "<mean>")  # the noise-free reading: the replicates' mean


_MASK = (1 << 64) - 1


def _mix(x: int) -> int:
    """splitmix64's finaliser: a 64-bit integer mixed so that every input bit moves every
    output bit (Steele, Lea and Flood 2014)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK
    return x ^ (x >> 31)


def unit_hash(*parts: int) -> float:
    """A uniform number in (0, 1) fixed by integer parts: the same key, the same draw, in
    every process (a hash library per draw was a third of an evaluation's time)."""
    h = 0
    for part in parts:
        h = _mix(h ^ (part & _MASK))
    return ((h >> 11) + 0.5) / 2.0**53


@functools.lru_cache(maxsize=65536)
def text_key(text: str) -> int:
    """A stable integer for a name (condition id, host): CRC-32, not Python's salted hash."""
    return zlib.crc32(text.encode())


def number_key(x: float) -> int:
    """A stable integer for a budget (Python's float hash is not salted)."""
    return hash(float(x))


_Z, _DEAL = 1, 2  # what a draw is for, so the noise and the deal never share numbers


@dataclass(frozen=True)
class Answer:
    """A run read at one fidelity: its status, value (None: failed) and cumulative cost."""

    status: str
    value: float | None
    cost_gpu_s: float


class World:
    """The replicates each condition has: the recorded ones (no picks), or a bootstrap
    resample. The recorded world keeps no state (its pools are the curves' own), so one
    instance serves every table."""

    def __init__(self, index: int, picks: dict[str, list[Replicate]] | None = None) -> None:
        self.index = index  # 0: the recorded table
        self.picks = picks
        self._pools: dict[tuple, tuple[list[Replicate], bool]] = {}

    def pool(
        self, cid: str, curve: Curve, fidelity: float, host: str | None, complete_to: float | None
    ) -> tuple[list[Replicate], bool]:
        if self.picks is None:
            return curve.pool(fidelity, host, complete_to)
        key = (cid, fidelity, host, complete_to)
        if key not in self._pools:
            whole = set(curve.complete(complete_to)) if complete_to is not None else None
            reps = [
                r
                for r in self.replicates(cid, curve)
                if fidelity in curve.by_replicate[r] and (whole is None or r in whole)
            ]
            mine = [r for r in reps if curve.by_replicate[r][fidelity].host == host]
            self._pools[key] = (mine, True) if mine else (reps, False)
        return self._pools[key]

    def replicates(self, cid: str, curve: Curve) -> list[Replicate]:
        """The condition's replicates in this world: its resample, else the recorded ones
        (the recorded world, or a condition the resample did not draw)."""
        mine = self.picks.get(cid) if self.picks is not None else None
        return curve.replicates if mine is None else mine


RECORDED = World(0)


class SimSource:
    """The campaign's `[sim]` surface; a replicate is one standard-normal noise draw.
    A `cond` is a candidate (`stages.conditions.Condition`: id, name, config, coded)."""

    kind = "sim"

    def __init__(self, params: SimParams, seed: int) -> None:
        self.params = params
        self.seed = seed

    def fidelity(self, cond: Condition, budget_s: float) -> float:
        return budget_s

    def can_answer(self, cond: Condition, budget_s: float) -> bool:
        return True

    def read(
        self, trial: int, cond: Condition, rep: Any, fidelity: float, host: str, gpus: int
    ) -> Answer:
        if rep == MEAN:
            z = 0.0
        else:
            u = unit_hash(
                self.seed,
                _Z,
                trial,
                text_key(cond.id),
                text_key(host),
                number_key(rep[0]),
                rep[1],
            )
            z = _NORMAL.inv_cdf(u)
        out = run_outcome(
            self.params,
            name=cond.name,
            coded=cond.coded,
            budget_s=fidelity,
            host=host,
            z=z,
        )
        return Answer(out.status, out.val_bpb, out.training_seconds * gpus)

    def truth(self, cond: Condition, budget_s: float, world: World = RECORDED) -> float | None:
        if cond.name in self.params.diverge:
            return None
        return expected_value(self.params, cond.coded, budget_s)

    def mean_cost(self, cond: Condition, budget_s: float, gpus: int) -> float:
        return self.read(0, cond, MEAN, budget_s, "", gpus).cost_gpu_s

    def true_effects(self, budget_s: float, letters: Sequence[str]) -> dict[str, float]:
        p = self.params
        shrink = (p.ref_budget / budget_s) ** p.penalty_decay
        return {f: p.effects.get(f, 0.0) + p.penalties.get(f, 0.0) * shrink for f in letters}

    def describe(self) -> dict[str, Any]:
        return {"executor": "sim", "sim": self.params.to_dict()}


class ReplaySource:
    """Recorded curves: a run reads its replicate's row at the condition's largest recorded
    fidelity at or below the budget."""

    kind = "replay"

    def __init__(self, table: CurveTable, seed: int, description: dict[str, Any]) -> None:
        self.table = table
        self.seed = seed
        self.description = description
        self._curves: dict[str, Curve] = {}
        self._fidelity: dict[tuple[str, float], float] = {}

    def curve(self, cond: Condition) -> Curve:
        cid = cond.id
        if cid not in self._curves:
            self._curves[cid] = self.table.curve(cond)
        return self._curves[cid]

    def fidelity(self, cond: Condition, budget_s: float) -> float:
        key = (cond.id, budget_s)
        if key not in self._fidelity:
            self._fidelity[key] = self.table.fidelity_at(cond, budget_s)
        return self._fidelity[key]

    def can_answer(self, cond: Condition, budget_s: float) -> bool:
        try:
            self.fidelity(cond, budget_s)
        except LedgerError:
            return False
        return True

    def read(
        self, trial: int, cond: Condition, rep: Any, fidelity: float, host: str, gpus: int
    ) -> Answer | Row:
        curve = self.curve(cond)
        if rep == MEAN:
            return _mean(curve.at[fidelity])
        row = curve.by_replicate[rep].get(fidelity)
        if row is None:
            raise MissingReplicate(
                f"{self.table.source}: condition {cond.name!r} has no row for seed "
                f"{rep[0]}, host {rep[1]} at budget {fidelity:g}"
            )
        return row  # a Row reads like an Answer (status, value, cost_gpu_s)

    def truth(self, cond: Condition, budget_s: float, world: World = RECORDED) -> float | None:
        if not self.table.has(cond):
            return None
        try:
            fidelity = self.fidelity(cond, budget_s)
        except LedgerError:
            return None
        curve = self.curve(cond)
        reps = world.replicates(cond.id, curve)
        ok = [
            row.value
            for rep in reps
            if (row := curve.by_replicate[rep].get(fidelity)) is not None and row.value is not None
        ]
        return fmean(ok) if ok else None

    def mean_cost(self, cond: Condition, budget_s: float, gpus: int) -> float:
        return _mean(self.curve(cond).at[self.fidelity(cond, budget_s)]).cost_gpu_s

    def true_effects(self, budget_s: float, letters: Sequence[str]) -> None:
        return None  # recorded curves carry no planted truth

    def replicated(self, conds: Sequence[Condition]) -> bool:
        """Whether any condition has more than one recorded replicate."""
        return any(len(self.curve(c).replicates) > 1 for c in conds if self.table.has(c))

    def bootstrap_world(self, index: int, conds: Sequence[Condition], seed: int) -> World:
        """Every condition's recorded runs resampled with replacement, whole runs, within
        groups of runs recorded at the same fidelities (so every fidelity keeps as many runs
        as it has), listed in the recorded order: the k-th position of a world then mostly
        holds the recorded k-th run, which couples a trial's draws to its recorded ones."""
        rng = random.Random(f"{seed}/bootstrap/{index}")
        picks = {}
        for cond in conds:
            if not self.table.has(cond):
                continue
            curve = self.curve(cond)
            groups: dict[frozenset[float], list[int]] = {}
            for i, rep in enumerate(curve.replicates):
                groups.setdefault(frozenset(curve.by_replicate[rep]), []).append(i)
            drawn = sorted(
                members[rng.randrange(len(members))] for members in groups.values() for _ in members
            )
            picks[cond.id] = [curve.replicates[i] for i in drawn]
        return World(index, picks)

    def describe(self) -> dict[str, Any]:
        return dict(self.description)


Source = SimSource | ReplaySource


class MissingReplicate(LedgerError):
    """A run's own replicate has no row where it is read (the recorded walk, continuing)."""


def _mean(rows: list[Any]) -> Answer:
    ok = [r.value for r in rows if r.value is not None]
    cost = fmean(r.cost_gpu_s for r in rows)
    if not ok:
        return Answer(rows[0].status, None, cost)
    return Answer("ok", fmean(ok), cost)


@dataclass
class _Run:
    rep: Any
    fidelity: float


@dataclass
class _Slot:
    """Draws of one condition at one fidelity on one host, within one trial."""

    prefix: int  # the hash of (seed, trial, condition, host, fidelity): one per slot
    pool: list[Replicate]  # empty for the simulator (every draw is new noise)
    matched: bool  # the pool is on the run's host
    dealt: list[int] = field(default_factory=list)


@dataclass
class TrialDraws:
    """The runs of one trial of one method: which replicate each reads, what each pays.

    `mode`: "draw" (deal replicates), "mean" (the noise-free reading, for the reference
    walk) or "exact" (each run's own declared seed and host: the recorded walk).
    """

    source: Source
    trial: int
    cost_model: str
    world: World = RECORDED
    final_budget_s: float | None = None  # continue: follow only runs recorded that far
    mode: str = "draw"
    slots: dict[tuple, _Slot] = field(default_factory=dict)
    runs: dict[Hashable, _Run] = field(default_factory=dict)
    choices: int = 0  # draws that had more than one replicate to choose from
    reused: int = 0  # draws that had to reuse a replicate (more runs than recorded)
    other_host: int = 0  # draws made across hosts (none recorded on the run's host)

    def run(
        self,
        key: Hashable,
        cond: Condition,
        budget_s: float,
        host: str,
        gpus: int,
        seed: Any = None,
    ) -> tuple[Answer | Row, float]:
        """Read the run `key` at `budget_s`; (its answer, the GPU-seconds it is charged)."""
        fidelity = self.source.fidelity(cond, budget_s)
        state = self.runs.get(key) if self.cost_model == "continue" else None
        rep = state.rep if state is not None else self._replicate(cond, fidelity, host, seed)
        answer = self.source.read(self.trial, cond, rep, fidelity, host, gpus)
        charge = answer.cost_gpu_s
        if self.cost_model == "continue":
            if state is not None:
                done = min(state.fidelity, fidelity)
                before = self.source.read(self.trial, cond, rep, done, host, gpus).cost_gpu_s
                charge = answer.cost_gpu_s - before
                fidelity = max(fidelity, state.fidelity)
            self.runs[key] = _Run(rep, fidelity)
        return answer, charge

    def _replicate(self, cond: Condition, fidelity: float, host: str, seed: Any) -> Any:
        if self.mode == "mean":
            return MEAN
        if self.mode == "exact":
            return self._own(cond, seed, host)
        where = (cond.id, host, fidelity)
        if where not in self.slots:
            self._slot(cond, fidelity, host)
        slot = self.slots[where]
        k = len(slot.dealt)
        if isinstance(self.source, SimSource):
            slot.dealt.append(k)
            self.choices += 1
            return (fidelity, k)
        pool, n = slot.pool, len(slot.pool)
        if n > 1:
            self.choices += 1
        if not slot.matched and host is not None and self.source.table.has_host:
            self.other_host += 1
        if k < n:
            attempt = 0
            while (index := int(unit_hash(slot.prefix, k, attempt) * n)) in slot.dealt:
                attempt += 1
        else:
            self.reused += 1
            index = int(unit_hash(slot.prefix, k) * n)
        slot.dealt.append(index)
        return pool[index]

    def _slot(self, cond: Condition, fidelity: float, host: str) -> _Slot:
        """The slot's hash prefix and, on a table, its pool: keyed by the trial, not the
        method, so every method's first draw there is the same replicate."""
        prefix = 0
        for part in (
            self.source.seed,
            _DEAL,
            self.trial,
            text_key(cond.id),
            text_key(str(host)),
            number_key(fidelity),
        ):
            prefix = _mix(prefix ^ (part & _MASK))
        pool: list[Replicate] = []
        matched = True
        if isinstance(self.source, ReplaySource):
            complete_to = None
            if self.cost_model == "continue" and self.final_budget_s is not None:
                complete_to = self.source.fidelity(cond, self.final_budget_s)
            pool, matched = self.world.pool(
                cond.id, self.source.curve(cond), fidelity, host, complete_to
            )
            if not pool and complete_to is not None:
                raise InputError(
                    f"{self.source.table.source}: condition {cond.name!r} has no run "
                    f"recorded at every fidelity up to budget "
                    f"{budget_label(self.final_budget_s)}: --cost-model continue follows one "
                    f"run along its curve (use --cost-model restart, or complete the table)"
                )
            if not pool:
                raise InputError(
                    f"{self.source.table.source}: condition {cond.name!r} has no row at "
                    f"budget {fidelity:g}"
                )
        slot = self.slots[(cond.id, host, fidelity)] = _Slot(prefix, pool, matched)
        return slot

    def _own(self, cond: Condition, seed: Any, host: str) -> Replicate:
        assert isinstance(self.source, ReplaySource)
        table = self.source.table
        rep = (str(seed), str(host) if table.has_host else "None")
        if rep not in self.source.curve(cond).by_replicate:
            raise MissingReplicate(
                f"{table.source}: condition {cond.name!r} has no recorded run with seed "
                f"{seed}" + (f" on host {host}" if table.has_host else "")
            )
        return rep


def sim_source(campaign: Campaign, seed: int) -> SimSource:
    """The simulator of the campaign's `[sim]` table (errors name the key)."""
    letters = "".join(f.letter for f in campaign.factors)
    return SimSource(SimParams.from_table(campaign.sim, letters, f"{campaign.path}: [sim]"), seed)


def replay_csv_source(path: str | Path, campaign: Campaign, seed: int) -> ReplaySource:
    """Replay a curves CSV (`stages.replay_table`); the inputs record its absolute path and
    SHA-256."""
    path = Path(path)
    table = read_table(path, campaign.metric)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return ReplaySource(
        table,
        seed,
        {
            "executor": "replay",
            "table": str(path.resolve()),
            "table_sha256": digest,
            "table_rows": table.n_rows,
        },
    )


def replay_store_source(store: Any, campaign: Campaign, seed: int) -> ReplaySource:
    """Replay every run a finished store recorded ("what would this rule have decided?")."""
    table = table_from_store(store, campaign.metric)
    return ReplaySource(
        table,
        seed,
        {
            "executor": "replay",
            "from_store": str(Path(store.root).resolve()),
            "table_rows": table.n_rows,
        },
    )
