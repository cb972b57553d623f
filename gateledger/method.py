"""The method's verbs: load a campaign, show a design, freeze, run and decide a stage, walk a
whole campaign, record baselines, estimate effects, forecast a protocol, watch progress.

Each function is what one `ledger` command does, minus the formatting. The rules that
protect the ledger are enforced below this layer (`ledger.manifest.freeze` refuses a second
freeze, `stages.decide.decide_manifest` a second decision or one with runs missing), so a
script meets them exactly as the command line does.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, NamedTuple

from gateledger.recording import Signed, tsa_urls, witness
from gateledger.signers import KeyLike, signing_key
from ledger.decision_model import Decision
from ledger.errors import CampaignError, ConfigError
from ledger.plan_model import Manifest
from ledger.run_key import Cell
from ledger.status import StoreCounts, store_status
from ledger.store import Store, read_document
from ledger.timestamp import StampResult
from stages import baselines, trial
from stages.campaign import Campaign, parse_budget
from stages.campaign import load_campaign as parse_campaign
from stages.campaign_schema import campaign_schema as schema_of_campaigns
from stages.conditions import design_conditions, stage_design
from stages.decide import decide_stage
from stages.designs import Design, fractional, parse_design_spec, point_name, roman
from stages.effects_csv import CsvEffects, analyse_csv
from stages.execute import RunReport, run_stage
from stages.executors import Executor, make_executor
from stages.pipeline import StageStanding, StepLog, campaign_progress, run_campaign
from stages.plan import freeze_stage, frozen_manifest
from stages.progress import Progress, StageProgress, campaign_done
from stages.surface import SimParams
from stages.trial import TrialReport

CampaignLike = Campaign | str | Path


@dataclass(frozen=True)
class DesignPoint:
    """One condition of a stage's design: its name, id and factor levels (config values)."""

    name: str
    id: str
    config: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "id": self.id, "config": dict(self.config)}


@dataclass(frozen=True)
class DesignSummary:
    """A two-level design as `ledger design` shows it: size, generators, defining relation,
    resolution, alias chains, its runs (coded levels) and their names; with a campaign
    stage, its conditions."""

    k: int
    p: int
    generators: list[str]
    defining_relation: list[str]
    resolution: int | None
    resolution_roman: str
    aliases: list[list[str]]
    runs: list[dict[str, int]]
    names: list[str]
    conditions: list[DesignPoint] | None = None

    def to_dict(self) -> dict[str, Any]:
        """What `ledger design --json` prints (`conditions` only for a campaign stage)."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "conditions"}
        if self.conditions is not None:
            out["conditions"] = [c.to_dict() for c in self.conditions]
        return out


@dataclass(frozen=True)
class Witnessed:
    """One timestamp answer during a walk: the object it was asked for, and the answer."""

    object: str
    answer: StampResult

    @property
    def ok(self) -> bool:
        return self.answer.ok

    def to_dict(self) -> dict[str, Any]:
        return {"object": self.object, **self.answer.to_dict()}


@dataclass(frozen=True)
class Walked:
    """What `walk` did: each step (frozen, ran, decided, skipped), and every TSA answer."""

    log: StepLog
    stamps: list[Witnessed]


@dataclass(frozen=True)
class StoreStatus:
    """`ledger status`: what the store holds (`store`: the counts), each frozen stage's
    progress, and with a campaign where each of its stages stands."""

    store: StoreCounts
    progress: list[StageProgress]
    stages: list[StageStanding] | None = None

    def to_dict(self) -> dict[str, Any]:
        """What `ledger status --json` prints."""
        out = {**self.store.to_dict(), "progress": [row.to_dict() for row in self.progress]}
        if self.stages is not None:
            out["stages"] = [row.to_dict() for row in self.stages]
        return out


def load_campaign(path: str | Path) -> Campaign:
    """Parse a campaign TOML file (`campaign.stage_names`: its stages in protocol order).

    Raises:
        CampaignError: unreadable or malformed; the message names the file and key.
    """
    return parse_campaign(path)


def campaign_schema() -> dict[str, Any]:
    """The JSON Schema of campaign files (`ledger campaign --schema`; shipped as
    `stages/campaign.schema.json`), generated from the model the loader validates with."""
    return schema_of_campaigns()


def campaign_of(campaign: CampaignLike) -> Campaign:
    """`campaign` itself, or the campaign file it names, parsed (`load_campaign`)."""
    return campaign if isinstance(campaign, Campaign) else load_campaign(campaign)


def design_summary(design: Design, conditions: list[DesignPoint] | None = None) -> DesignSummary:
    """A design as `ledger design` shows it (with a stage's conditions, when given)."""
    return DesignSummary(
        k=design.k,
        p=design.p,
        generators=list(design.generators),
        defining_relation=[w for w in design.defining_relation if w != "I"],
        resolution=design.resolution,
        resolution_roman=roman(design.resolution) if design.resolution else "full",
        aliases=[[term, *aliased] for term, aliased in design.aliases.items() if aliased],
        runs=design.runs,
        names=[point_name(r) for r in design.runs],
        conditions=conditions,
    )


def design(
    spec: str | None = None,
    *,
    campaign: CampaignLike | None = None,
    stage: str | None = None,
    generators: Sequence[str] = (),
) -> DesignSummary:
    """A two-level design, from a spec like `"2^(5-1)"` (with optional `generators`), or
    the one a campaign stage freezes (then with its conditions: name, id, factor levels).

    Raises:
        CampaignError: the stage has no design, a bad spec or generator; ConfigError:
        neither a spec nor a stage.
    """
    if stage is not None:
        camp = campaign_of(campaign or "campaign.toml")
        spec_of_stage = camp.stage(stage)
        if not spec_of_stage.design:
            raise CampaignError(f"{camp.path}: stage {stage!r} has no design")
        points = [
            DesignPoint(c.name, c.id, {f.key: c.config[f.key] for f in camp.factors})
            for c in design_conditions(camp, spec_of_stage)
        ]
        return design_summary(stage_design(camp, spec_of_stage), points)
    if spec:
        k, p = parse_design_spec(spec)
        return design_summary(fractional(k, p, list(generators) or None) if p else fractional(k, 0))
    raise ConfigError('give a design like "2^(5-1)" or a campaign STAGE')


def freeze(
    store: Store,
    campaign: CampaignLike,
    stage: str,
    *,
    key: KeyLike = None,
    amend: bool = False,
    data: str | Path | None = None,
    sim_only: bool = False,
    tsa: list[str] | None = None,
    no_tsa: bool = False,
) -> Signed[Manifest]:
    """Sign a campaign stage's plan as its manifest, before any of its runs.

    Args:
        key: a SigningKey, a key name, or None for the default (`gateledger.signers`).
        amend: replace the manifest in force (recorded; the audit reports it).
        data: the data set hashed into the plan (default: the campaign's, or data/corpus).
        sim_only: a plan for the sim executor alone (runner kind `sim`, no data set).
        tsa, no_tsa: timestamp authorities to witness the manifest (default: settings);
            a witnessed plan derives its seeds from the first token as well.

    Raises:
        AlreadyFrozen: the stage has a manifest in force and `amend` is False.
        NotFrozen: `amend` for a stage never frozen; ParentNotDecided: the parent gate has
        no decision yet; CampaignError: a bad campaign or stage, the data set is missing;
        SigningKeyError: no key can be chosen.
    """
    camp = campaign_of(campaign)
    signer = signing_key(key, store)
    urls = tsa_urls(store, tsa, none=no_tsa)
    manifest_id = freeze_stage(
        store,
        camp,
        stage,
        signer,
        amend=amend,
        data=Path(data) if data else None,
        for_simulation=sim_only,
        witnessed=bool(urls),
    )
    body = read_document(store, manifest_id, "manifest", Manifest)
    return Signed(manifest_id, body, signer, witness(store, manifest_id, urls, signer))


def build_executor(
    store: Store,
    campaign: Campaign,
    name: str = "local",
    *,
    jobs: int = 1,
    device: str = "auto",
    data: str | Path | None = None,
    gpus: str | Sequence[str] | None = None,
    grace: float | None = None,
    address: str | None = None,
) -> Executor:
    """Build the executor `name` ("local", "sim" or "ray") for this campaign and store.

    `sim` reads the campaign's [sim] surface; `local` works under STORE/work with `jobs`
    slots on `gpus` (ids, or a comma-separated string); `ray` uses the cluster at `address`.

    Raises:
        CampaignError: a bad [sim] table; ConfigError: an unknown executor; MissingExtra:
        `ray` without Ray installed.
    """
    data_path = Path(data) if data else (Path(campaign.data) if campaign.data else None)
    if name == "sim":
        letters = "".join(f.letter for f in campaign.factors)
        return make_executor(
            "sim", params=SimParams.from_table(campaign.sim, letters, f"{campaign.path}: [sim]")
        )
    if name == "local":
        ids = [g for g in gpus.split(",") if g] if isinstance(gpus, str) else list(gpus or [])
        return make_executor(
            "local",
            workdir=store.root / "work",
            jobs=jobs,
            device=device,
            data=data_path,
            gpus=ids,
            grace_s=grace,
        )
    return make_executor(
        name, address=address, data=data_path, device=device, grace_s=grace, jobs=jobs
    )


def run(
    store: Store,
    campaign: CampaignLike,
    stage: str,
    executor: str | Executor = "local",
    *,
    jobs: int = 1,
    host: str | None = None,
    device: str = "auto",
    data: str | Path | None = None,
    gpus: str | Sequence[str] | None = None,
    grace: float | None = None,
    address: str | None = None,
    limit: int | None = None,
    progress: bool = False,
    key: KeyLike = None,
) -> RunReport:
    """Execute the remaining declared runs of a frozen stage and record each one, signed.

    Resumable: runs already recorded are skipped, and attempts a killed `run` left open
    are closed as interrupted first. `executor` is "local", "sim", "ray" or an Executor;
    `host` runs only that host block; `limit` at most that many runs; `key` signs the
    records and journal heads (default: the store's signing key).

    Raises:
        NotFrozen: the stage was never frozen; CampaignError: the campaign file drifted
        from its manifest; ConfigError: the executor cannot answer the plan's runner kind;
        SigningKeyError: no key.
    """
    camp = campaign_of(campaign)
    frozen_manifest(store, camp, stage)  # a stage never frozen is said before any key
    signer = signing_key(key, store)
    if isinstance(executor, str):
        executor = build_executor(
            store,
            camp,
            executor,
            jobs=jobs,
            device=device,
            data=data,
            gpus=gpus,
            grace=grace,
            address=address,
        )
    return run_stage(
        store, camp, stage, executor, key=signer, host=host, limit=limit, progress=progress
    )


def try_stage(
    campaign: CampaignLike,
    stage: str,
    *,
    budget: str | float = "10s",
    conditions: int = 2,
    data: str | Path | None = None,
    device: str = "auto",
    jobs: int = 1,
    grace: float | None = None,
    progress: bool = False,
) -> TrialReport:
    """Run the stage's runner on `conditions` of its most different configs for `budget`
    each, in a scratch folder, and say what `ledger run` would record or refuse for each
    (`TrialReport.ok`: every run would be recorded ok). Nothing is signed, journaled or
    stored: use it before `freeze`, to find a script's mistakes while they cost nothing.

    Raises:
        CampaignError: a bad campaign or stage, or a config the runner's schema refuses;
        ConfigError: conditions < 1.
    """
    camp = campaign_of(campaign)
    return trial.try_stage(
        camp,
        stage,
        budget_s=parse_budget(budget, "--budget"),
        conditions=conditions,
        data=Path(data) if data else None,
        device=device,
        jobs=jobs,
        grace_s=grace,
        progress=progress,
    )


def decide(
    store: Store,
    campaign: CampaignLike,
    stage: str,
    *,
    key: KeyLike = None,
    allow_missing: bool = False,
    tsa: list[str] | None = None,
    no_tsa: bool = False,
) -> Signed[Decision]:
    """Apply the stage's frozen rule to its recorded runs and sign the decision.

    Raises:
        AlreadyDecided: the stage has a decision (decisions are final).
        MissingRuns: declared runs are not recorded and `allow_missing` is False.
        SigningKeyError: no key can be chosen; NotFrozen: the stage was never frozen.
    """
    camp = campaign_of(campaign)
    signer = signing_key(key, store)
    urls = tsa_urls(store, tsa, none=no_tsa)
    decision_id, body = decide_stage(store, camp, stage, signer, allow_missing=allow_missing)
    return Signed(decision_id, body, signer, witness(store, decision_id, urls, signer))


def walk(
    store: Store,
    campaign: CampaignLike,
    *,
    key: KeyLike = None,
    executor: str | Executor = "local",
    until: str | None = None,
    host: str | None = None,
    tsa: list[str] | None = None,
    no_tsa: bool = False,
    progress: bool = False,
    say: Callable[[str], None] = lambda _line: None,
    on_stamps: Callable[[list[StampResult], str, str], None] | None = None,
    **executor_options: Any,
) -> Walked:
    """Freeze, run and decide every stage in order (resumable): `ledger campaign`.

    `host` runs only that host block of each stage; `executor_options` are those of
    `build_executor()`; `on_stamps(answers, object_id, kind)`
    hears each new object's TSA answers. Returns the steps and every timestamp answer.

    Raises:
        CampaignError: an unknown `until`; RunsFailed: a gate whose runs were refused or
        all failed; as `freeze`, `run` and `decide`.
    """
    camp = campaign_of(campaign)
    if until is not None:
        camp.stage(until)  # an unknown stage is an error before any key or run
    signer = signing_key(key, store)
    if isinstance(executor, str):
        executor = build_executor(store, camp, executor, **executor_options)
    urls = tsa_urls(store, tsa, none=no_tsa)
    stamps: list[Witnessed] = []

    def stamp_signed(object_id: str, kind: str) -> None:
        found = witness(store, object_id, urls, signer)
        stamps.extend(Witnessed(object_id, s) for s in found)
        if on_stamps is not None:
            on_stamps(found, object_id, kind)

    log = run_campaign(
        store,
        camp,
        signer,
        executor,
        until=until,
        host=host,
        progress=progress,
        say=say,
        on_signed=stamp_signed if urls else None,
        witnessed=bool(urls),
    )
    return Walked(log, stamps)


def cells(seeds: str | Sequence[int], hosts: str | Sequence[str]) -> list[Cell]:
    """(seed, host) cells from seeds and hosts (lists, or comma-separated strings).

    Raises:
        ConfigError: a seed that is not an integer, or no seed or no host.
    """
    try:
        seed_list = (
            [int(s) for s in seeds.split(",") if s.strip()]
            if isinstance(seeds, str)
            else [int(s) for s in seeds]
        )
    except ValueError:
        raise ConfigError(f"--seeds must be integers like 0,1, not {seeds!r}") from None
    host_list = (
        [h.strip() for h in hosts.split(",") if h.strip()]
        if isinstance(hosts, str)
        else list(hosts)
    )
    if not seed_list or not host_list:
        raise ConfigError("--seeds and --hosts must each name at least one")
    return [Cell(s, h) for h in host_list for s in seed_list]


def greedy_search(
    store: Store,
    campaign: CampaignLike,
    *,
    budget: str | float,
    seeds: str | Sequence[int] = "0",
    hosts: str | Sequence[str] = "local",
    key: KeyLike = None,
    executor: str = "local",
    start: str | None = None,
    host: str | None = None,
    data: str | Path | None = None,
    progress: bool = False,
    say: Callable[[str], None] = lambda _line: None,
    **executor_options: Any,
) -> dict[str, Any]:
    """Record a greedy one-factor-at-a-time baseline (frozen, signed and audited like a
    gate, its GPU-hours apart from the protocol's); its summary.

    Raises:
        ConfigError: bad seeds or hosts; CampaignError: a bad budget or start name.
    """
    camp = campaign_of(campaign)
    runner = build_executor(store, camp, executor, data=data, **executor_options)
    return baselines.greedy_search(
        store,
        camp,
        signing_key(key, store),
        runner,
        budget_s=parse_budget(budget, "--budget"),
        cells=cells(seeds, hosts),
        start=start,
        host=host,
        data=_data_path(camp, data),
        progress=progress,
        say=say,
    )


def random_search(
    store: Store,
    campaign: CampaignLike,
    *,
    budget: str | float,
    match: str | float = "campaign",
    seeds: str | Sequence[int] = "0",
    hosts: str | Sequence[str] = "local",
    key: KeyLike = None,
    executor: str = "local",
    sample_seed: int = 0,
    host: str | None = None,
    data: str | Path | None = None,
    progress: bool = False,
    **executor_options: Any,
) -> tuple[dict[str, Any], float]:
    """Record a random-search baseline matching the GPU-hours of the campaign's recorded
    stages (`match="campaign"`) or a number of GPU-hours: (its summary, the hours matched).

    Raises:
        ConfigError: `match` neither "campaign" nor a number, or nothing recorded to match.
    """
    camp = campaign_of(campaign)
    if match == "campaign":
        hours = baselines.protocol_gpu_hours(store, camp)
        if hours <= 0:
            raise ConfigError(
                f"campaign {camp.name!r} has no recorded runs in store "
                f"{store.root} to match: walk it in that store first (`ledger "
                f"--store {store.root} campaign --campaign {camp.path}`), "
                f"or give --match GPU_HOURS"
            )
    else:
        try:
            hours = float(match)
        except ValueError:
            raise ConfigError(f"--match must be 'campaign' or a number, not {match!r}") from None
    runner = build_executor(store, camp, executor, data=data, **executor_options)
    out = baselines.random_search(
        store,
        camp,
        signing_key(key, store),
        runner,
        budget_s=parse_budget(budget, "--budget"),
        cells=cells(seeds, hosts),
        gpu_hours=hours,
        match=str(match),
        seed=sample_seed,
        host=host,
        data=_data_path(camp, data),
        progress=progress,
    )
    return out, hours


def _data_path(campaign: Campaign, data: str | Path | None) -> Path | None:
    return Path(data) if data else (Path(campaign.data) if campaign.data else None)


def effects(
    csv_path: str | Path, response: str, *, terms: str = "main", block: str | None = None
) -> CsvEffects:
    """Factorial effects from any CSV of -1/+1 coded factor columns (OLS or Lenth, BH
    q-values, alias chains, dropped terms with reasons).

    Raises:
        InputError: an unreadable CSV, a missing column; AnalysisError: terms that cannot
        be fitted.
    """
    return analyse_csv(str(csv_path), response, terms=terms, block=block)


def status(store: Store, campaign: CampaignLike | None = None) -> StoreStatus:
    """`ledger status`: the store's counts, each stage's progress, and with a campaign where
    each of its stages stands (its failures named).

    Raises:
        CampaignError: `campaign` cannot be read or does not match its frozen plans.
    """
    camp = campaign_of(campaign) if campaign is not None else None
    return StoreStatus(
        store_status(store),
        Progress(store, camp).stages(),
        campaign_progress(store, camp) if camp is not None else None,
    )


class Frame(NamedTuple):
    """One redraw of `watch`: the stage rows, whether the watch ends here, and why
    (`finished`: the watched work is done; `idle`: nothing in flight and nothing new for
    the idle time, with stages still undecided; None while it goes on)."""

    rows: list[StageProgress]
    done: bool
    why: str | None


def _signature(rows: list[StageProgress]) -> tuple[Any, ...]:
    return tuple((r.manifest, r.recorded, r.decision, len(r.running)) for r in rows)


def watch(
    store: Store,
    campaign: CampaignLike | None = None,
    *,
    stage: str | None = None,
    interval: float = 2.0,
    count: int | None = None,
    idle: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Frame]:
    """Every `interval` seconds, a `Frame` until the watched work is done: the `stage`,
    else every campaign stage decided, else every frozen stage's runs recorded; at most
    `count` frames. Watching a campaign whose stages are not all decided, it also stops
    once nothing is in flight, every frozen stage's runs are recorded and nothing new has
    happened for `idle` seconds (a `ledger run` of one stage ended; `ledger campaign` goes
    from a decision to the next freeze in seconds, so it never looks idle).

    Raises:
        CampaignError: `campaign` cannot be read.
    """
    tracker = Progress(store, campaign_of(campaign) if campaign is not None else None)
    frames, quiet, last = 0, 0.0, None
    while True:
        rows = tracker.stages()
        done = campaign_done(rows, tracker.campaign, stage)
        signature = _signature(rows)
        frozen = [r for r in rows if r.declared is not None]
        settled = bool(frozen) and all(r.finished for r in frozen)
        quiet = quiet + interval if settled and signature == last else 0.0
        last = signature
        why = "finished" if done else ("idle" if stage is None and quiet >= idle else None)
        frames += 1
        yield Frame(rows, why is not None, why)
        if why is not None or (count is not None and frames >= count):
            return
        sleep(interval)
