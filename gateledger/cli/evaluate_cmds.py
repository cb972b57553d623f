"""`ledger evaluate`: what a protocol buys (P(best), regret, GPU-hours) against named
baselines at equal cost under a stated cost model, on the simulator or on replayed curves,
with a verdict. It parses the options, calls `gateledger.evaluate` (or `rerun_evaluation`)
and formats; nothing here writes evidence."""

from __future__ import annotations

import click

import gateledger as gl
from gateledger.cli.context import emit, open_store
from stages.evaluation_model import Estimate, Evaluation, significant
from stages.hpo_baselines import DEFAULT_AGAINST, METHODS


def _num(x: float | None, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _est(est: Estimate | None, digits: int = 3) -> str:
    """The figure and the interval a verdict rests on (total when the data has one)."""
    if est is None or est.value is None:
        return "—"
    ci = est.total or est.mc
    if ci is None:
        return _num(est.value, digits)
    return f"{est.value:.{digits}f} [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def _print(result: Evaluation) -> None:
    truth, inputs = result.truth, result.inputs
    source = inputs.table or inputs.from_store or "the campaign's [sim] surface"
    click.echo(
        f"evaluate {result.campaign}: {result.trials} trials on {inputs.executor} ({source}), "
        f"seed {result.seed}, cost model {result.cost_model}"
    )
    if truth.flat:
        ties = f"; all {truth.pool - len(truth.unknown)} candidates tie (a flat truth)"
    else:
        ties = f"; ties: {', '.join(truth.ties)}" if truth.ties else ""
    click.echo(
        f"true best {truth.best} ({truth.value:.4f} at the final budget){ties}; pool {truth.pool}"
    )
    unc = result.uncertainty
    shown = "Monte Carlo + data (bootstrap)" if unc.data == "bootstrap" else "Monte Carlo"
    click.echo(f"intervals (95%): {shown}; {unc.note}")
    click.echo(
        f"{'method':<20}{'P(pick best)':<24}{'P(best in set)':<24}{'P(top3)':>8}"
        f"{'regret':>28}{'GPU-h':>11}{'spent':>7}"
    )
    for row in [result.protocol, *result.baselines]:
        ratio = getattr(row, "spent_ratio_mean", None)
        spent = "" if ratio is None else f"{100 * ratio:.0f}%"
        det = " (same walk)" if row.deterministic else ""
        click.echo(
            f"{row.method:<20}{_est(row.p_pick_best) + det:<24}{_est(row.p_best_in_set):<24}"
            f"{_num(row.p_top3.value):>8}{_est(row.regret, 4):>28}"
            f"{significant(row.gpu_hours.value):>11}{spent:>7}"
        )
    click.echo("gates (share of trials whose promoted set differs from the noise-free one):")
    for gate in result.protocol.gates:
        line = (
            f"  {gate.stage}: changed {100 * gate.decision_changed:.1f}%, promoted "
            f"{_num(gate.promoted_mean, 1)} of {_num(gate.candidates_mean, 1)}"
        )
        if gate.screen:
            s = gate.screen
            line += f"; effect screen (BH {s.level:g}): FDR {_est(s.fdr)}, power {_est(s.power)}"
            if s.note:
                line += f" ({s.note})"
        click.echo(line)
    click.echo(f"verdict: {result.verdict}")
    for comparison in result.comparisons:
        click.echo(f"  vs {comparison.baseline}: {comparison.sentence}")
    for warning in result.warnings:
        click.echo(f"warning: {warning}")
    if result.recorded is not None:
        rec = result.recorded
        if rec.walk is not None:
            click.echo(
                f"on the recorded replicates: pick {rec.walk.pick}, "
                f"{significant(rec.walk.gpu_hours)} GPU-hours"
            )
        else:
            click.echo(f"no walk on the recorded replicates: {rec.unavailable}")


@click.command("evaluate")
@click.option(
    "--campaign",
    "campaign_path",
    default=None,
    envvar="LEDGER_CAMPAIGN",
    type=click.Path(dir_okay=False),
    help="Campaign TOML file (default: campaign.toml, or the one --rerun names).",
)
@click.option(
    "--trials",
    default=200,
    show_default=True,
    type=click.IntRange(1, 100000),
    help="Repetitions of the whole protocol and of each baseline.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Evaluation seed.")
@click.option(
    "--against",
    default=",".join(DEFAULT_AGAINST),
    show_default=True,
    help=f"Baselines at equal GPU-hours, comma-separated, among {', '.join(METHODS)}; "
    "'all' for every one, 'none' for none.",
)
@click.option(
    "--executor",
    type=click.Choice(["sim", "replay"]),
    default="sim",
    show_default=True,
    help="sim: the campaign's [sim] surface; replay: a table.",
)
@click.option(
    "--table",
    type=click.Path(dir_okay=False),
    default=None,
    help="Replay table CSV (condition keys, budget, metric, cost_gpu_s, seed, host); "
    "with --rerun, a copy of the recorded table.",
)
@click.option(
    "--from-store",
    "from_store",
    type=click.Path(file_okay=False),
    default=None,
    help="Replay the runs a finished store recorded.",
)
@click.option(
    "--cost-model",
    type=click.Choice(["restart", "continue"]),
    default="restart",
    show_default=True,
    help="restart: every stage and rung trains from scratch (what stages do); continue: "
    "a run goes on from where it stopped. Applied to the protocol and every baseline.",
)
@click.option(
    "--eta",
    default=3,
    show_default=True,
    type=click.IntRange(2, 100),
    help="Reduction factor of successive halving, Hyperband and ASHA.",
)
@click.option(
    "--min-budget",
    default=None,
    help="The baselines' minimum budget (e.g. 2m; default: the smallest stage budget).",
)
@click.option(
    "--baseline-seeds",
    default=1,
    show_default=True,
    type=click.IntRange(1, 1000),
    help="Seeds a baseline trains and averages per evaluation (like a stage's cells).",
)
@click.option(
    "--bootstrap",
    default=20,
    show_default=True,
    type=click.IntRange(0, 10000),
    help="Bootstrap worlds over recorded replicates for the data interval (0: off).",
)
@click.option(
    "--bootstrap-trials",
    default=None,
    type=click.IntRange(1, 100000),
    help="Trials per bootstrap world [default: min(trials, 10)].",
)
@click.option(
    "--save",
    is_flag=True,
    help="Keep the result (with its inputs) in STORE/evaluations/ for the report.",
)
@click.option(
    "--out",
    "out_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the result JSON to this file.",
)
@click.option(
    "--rerun",
    "rerun_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Rerun a saved evaluation with its recorded inputs; exit 1 if numbers differ.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def evaluate_cmd(
    ctx,
    campaign_path,
    trials,
    seed,
    against,
    executor,
    table,
    from_store,
    cost_model,
    eta,
    min_budget,
    baseline_seeds,
    bootstrap,
    bootstrap_trials,
    save,
    out_path,
    rerun_path,
    as_json,
):
    """What would this protocol buy? P(best), regret and GPU-hours over many in-memory trials,
    against named baselines at equal GPU-hours, and a verdict.

    Runs the campaign's whole protocol --trials times through the same plan builder and
    decision code as `freeze`/`decide` (nothing is written or signed), then textbook
    synchronous successive halving, Hyperband and random search (and, on request, Optuna's
    asynchronous ASHA) over the same candidate pool, each capped at the protocol's mean
    GPU-hours under one cost model. Intervals are Monte Carlo, plus a bootstrap over the
    recorded replicates when a replay table has them.

    \b
    Examples:
      ledger evaluate --campaign campaigns/paper.toml --trials 200
      ledger evaluate --campaign c.toml --against hyperband,asha --json
      ledger evaluate --campaign c.toml --table curves.csv --cost-model continue
      ledger evaluate --campaign other-rule.toml --from-store .ledger --trials 1
      ledger evaluate --campaign campaigns/paper.toml --save     # for `ledger report html`
      ledger evaluate --rerun .ledger/evaluations/paper-1a2b3c4d.json
    """
    diffs = None  # a rerun's differences from its saved numbers
    if rerun_path:
        result, diffs = gl.rerun_evaluation(
            rerun_path, campaign_path, table=table, progress=not as_json
        )
    else:
        result = gl.evaluate(
            campaign_path or "campaign.toml",
            trials=trials,
            seed=seed,
            against=against,
            executor=executor,
            table=table,
            from_store=from_store,
            eta=eta,
            min_budget=min_budget,
            baseline_seeds=baseline_seeds,
            cost_model=cost_model,
            bootstrap=bootstrap,
            bootstrap_trials=bootstrap_trials,
            progress=not as_json,
        )
    written = gl.save_evaluation(result, store=open_store(ctx) if save else None, path=out_path)
    if diffs is not None:
        emit(
            {"rerun": rerun_path, "same": not diffs, "differences": diffs},
            as_json,
            f"rerun of {rerun_path}: "
            + (
                "same numbers"
                if not diffs
                else f"{len(diffs)} difference(s):\n  " + "\n  ".join(diffs)
            ),
        )
        if diffs:
            ctx.exit(1)
        return
    if as_json:
        emit({**result.model_dump(mode="json"), "written": written}, True)
        return
    _print(result)
    for path in written:
        click.echo(f"wrote {path}")


def register(cli: click.Group) -> None:
    """Attach `ledger evaluate`."""
    cli.add_command(evaluate_cmd)
