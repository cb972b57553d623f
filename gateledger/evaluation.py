"""`ledger evaluate` as functions: what a protocol buys before it is frozen, a saved
evaluation rerun, an evaluation kept for the report.

Nothing here writes evidence: evaluations are forecasts, saved outside the signed objects.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

from ledger.errors import ConfigError, LedgerError
from ledger.store import Store
from stages import evaluate as evaluation
from stages.campaign import Campaign, load_campaign, parse_budget
from stages.evaluation_model import (
    Evaluation,
    Inputs,
    differences,
    evaluation_path,
    load_evaluation,
)
from stages.evaluation_model import save_evaluation as write_evaluation
from stages.evaluation_sources import (
    Source,
    replay_csv_source,
    replay_store_source,
    sim_source,
)
from stages.hpo_baselines import DEFAULT_AGAINST

CampaignLike = Campaign | str | Path


def evaluate(
    campaign: CampaignLike = "campaign.toml",
    *,
    trials: int = 200,
    seed: int = 0,
    against: str | Sequence[str] = ",".join(DEFAULT_AGAINST),
    executor: str = "sim",
    table: str | Path | None = None,
    from_store: Store | str | Path | None = None,
    eta: int = 3,
    min_budget: str | float | None = None,
    baseline_seeds: int = 1,
    cost_model: str = "restart",
    bootstrap: int = 20,
    bootstrap_trials: int | None = None,
    progress: bool = False,
) -> Evaluation:
    """What the protocol buys: P(best), regret and GPU-hours over `trials` in-memory walks
    (the sim surface, or replayed curves from `table` or `from_store`) against baselines at
    equal GPU-hours under one cost model, with a verdict. Nothing is written or signed.

    A campaign replayed from a table may name config keys the builtin runner does not know
    (the table's), and needs no runner command: it is never run.

    Raises:
        ConfigError: both `table` and `from_store`, replay without either, a bad option.
        LedgerError: a bad campaign, table or `[sim]` table (the message names it).
    """
    replay = executor == "replay" or bool(table) or bool(from_store)
    camp = (
        campaign
        if isinstance(campaign, Campaign)
        else load_campaign(campaign, runner_keys=not replay)
    )
    source = _source(camp, replay, table, from_store, seed)
    return evaluation.evaluate(
        camp,
        source,
        trials=trials,
        seed=seed,
        against=evaluation.parse_against(against),
        eta=eta,
        min_budget_s=None if min_budget is None else parse_budget(min_budget, "--min-budget"),
        seeds_per_evaluation=baseline_seeds,
        cost_model=cost_model,
        bootstrap=bootstrap,
        bootstrap_trials=bootstrap_trials,
        progress=progress,
    )


def _source(
    camp: Campaign,
    replay: bool,
    table: str | Path | None,
    from_store: Store | str | Path | None,
    seed: int,
) -> Source:
    if table and from_store:
        raise ConfigError("give --table or --from-store, not both")
    if not replay:
        return sim_source(camp, seed)
    if table:
        return replay_csv_source(Path(table), camp, seed)
    if from_store:
        replayed = from_store if isinstance(from_store, Store) else Store.open(from_store)
        return replay_store_source(replayed, camp, seed)
    raise ConfigError("--executor replay needs --table CURVES.csv or --from-store DIR")


def rerun_evaluation(
    path: str | Path,
    campaign: CampaignLike | None = None,
    *,
    table: str | Path | None = None,
    progress: bool = False,
) -> tuple[Evaluation, list[str]]:
    """Rerun a saved evaluation with its recorded inputs: (the fresh result, the numbers
    that differ; empty when it reproduces). `campaign` and `table` stand in for the
    recorded paths (a copy elsewhere), but must hash to what was recorded.

    Raises:
        LedgerError: the file predates the format, or the campaign or table differs from
        the one it ran on.
    """
    saved = load_evaluation(path)
    inputs = saved.inputs
    replay = inputs.executor == "replay"
    camp_path = campaign if campaign is not None else inputs.campaign_path
    camp = (
        camp_path
        if isinstance(camp_path, Campaign)
        else load_campaign(camp_path, runner_keys=not replay)
    )
    table = table if table is not None else inputs.table
    _check_inputs(inputs, camp, table)
    result = evaluate(
        camp,
        trials=inputs.trials,
        seed=inputs.seed,
        against=",".join(inputs.against) or "none",
        executor=inputs.executor,
        table=table if inputs.table else None,
        from_store=inputs.from_store,
        eta=inputs.eta,
        min_budget=inputs.min_budget_s,
        baseline_seeds=inputs.seeds_per_evaluation,
        cost_model=inputs.cost_model,
        bootstrap=inputs.bootstrap,
        bootstrap_trials=inputs.bootstrap_trials or None,
        progress=progress,
    )
    return result, differences(saved, result)


def save_evaluation(
    result: Evaluation, *, store: Store | None = None, path: str | Path | None = None
) -> list[str]:
    """Keep an evaluation in STORE/evaluations/ (for the report) and/or at `path`; the
    paths written."""
    written = []
    if store is not None:
        target = evaluation_path(store.root, result.campaign)
        write_evaluation(target, result)
        written.append(str(target))
    if path is not None:
        write_evaluation(Path(path), result)
        written.append(str(path))
    return written


def _check_inputs(inputs: Inputs, camp: Campaign, table: str | Path | None) -> None:
    if hashlib.sha256(camp.text.encode()).hexdigest() != inputs.campaign_sha256:
        raise LedgerError(
            f"{camp.path}: differs from the campaign the evaluation ran on "
            f"(SHA-256 {inputs.campaign_sha256[:12]}...)"
        )
    if table and inputs.table_sha256:
        path = Path(table)
        if not path.is_file():
            raise LedgerError(f"replay table not found: {path}")
        if hashlib.sha256(path.read_bytes()).hexdigest() != inputs.table_sha256:
            raise LedgerError(f"{path}: differs from the replay table the evaluation ran on")
