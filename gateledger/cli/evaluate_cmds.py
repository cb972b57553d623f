"""`ledger evaluate`: what a protocol buys (P(best), regret, GPU-hours) against adaptive
baselines at equal cost, on the simulator or on replayed curves. It parses the options,
calls `gateledger.evaluate` (or `rerun_evaluation`) and formats; nothing here writes evidence."""

from __future__ import annotations

from typing import Any

import click

import gateledger as gl
from gateledger.cli.context import emit, open_store


def _fmt(x, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _ci(ci, digits: int = 3) -> str:
    return "" if not ci else f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def _print(result: dict[str, Any]) -> None:
    truth = result["truth"]
    inputs = result["inputs"]
    click.echo(
        f"evaluate {result['campaign']}: {result['trials']} trials on "
        f"{inputs['executor']} (seed {result['seed']}); true best {truth['best']} "
        f"({truth['value']:.4f} at the final budget), pool {truth['pool']}"
    )
    click.echo(
        f"{'method':<20}{'P(best) [95% CI]':<26}{'P(pick top3)':>13}"
        f"{'regret [95% CI]':>34}{'GPU-h':>10}{'spent':>8}"
    )
    for row in [result["protocol"], *result["baselines"]]:
        ratio = row.get("spent_ratio_mean")
        spent = "" if ratio is None else f"{100 * ratio:.0f}%"
        click.echo(
            f"{row['method']:<20}{_fmt(row['p_best']) + _ci(row['p_best_ci']):<26}"
            f"{_fmt(row['p_top3']):>13}"
            f"{_fmt(row['regret_mean'], 4) + _ci(row['regret_ci'], 4):>34}"
            f"{_fmt(row['gpu_hours_mean'], 2):>10}{spent:>8}"
        )
    click.echo("gates (share of trials whose promoted set differs from the noise-free one):")
    for gate in result["protocol"]["gates"]:
        line = (
            f"  {gate['stage']}: changed {100 * gate['decision_changed']:.1f}%, "
            f"promoted {_fmt(gate['promoted_mean'], 1)} of "
            f"{_fmt(gate['candidates_mean'], 1)}"
        )
        screen = gate.get("screen")
        if screen:
            line += (
                f"; effect screen (BH {screen['level']:g}): FDR {_fmt(screen['fdr'])}, "
                f"power {_fmt(screen['power'])}"
            )
        click.echo(line)
    if "recorded" in result:
        rec = result["recorded"]
        click.echo(
            f"on the recorded replicates: pick {rec['pick']}, {rec['gpu_hours']:.2f} GPU-hours"
        )


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
    help="Repetitions of the whole protocol, each with fresh noise.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Evaluation seed.")
@click.option(
    "--against",
    default="successive-halving,hyperband,random",
    show_default=True,
    help="Baselines at equal GPU-hours (comma-separated; 'none' for none).",
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
    help="Replay table CSV (condition keys, budget, metric, cost_gpu_s, seed, host).",
)
@click.option(
    "--from-store",
    "from_store",
    type=click.Path(file_okay=False),
    default=None,
    help="Replay the runs a finished store recorded.",
)
@click.option(
    "--eta",
    default=3,
    show_default=True,
    type=click.IntRange(2, 100),
    help="Reduction factor of successive halving and Hyperband.",
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
    eta,
    save,
    out_path,
    rerun_path,
    as_json,
):
    """What would this protocol buy? P(best), regret and GPU-hours over many in-memory trials.

    Runs the campaign's whole protocol --trials times with fresh noise through the same plan
    builder and decision code as `freeze`/`decide` (nothing is written or signed), then
    Optuna's successive halving and Hyperband and random search over the same candidate
    pool, each capped at the protocol's mean GPU-hours.

    \b
    Examples:
      ledger evaluate --campaign campaigns/paper.toml --trials 200
      ledger evaluate --campaign c.toml --against hyperband --json
      ledger evaluate --campaign c.toml --executor replay --table curves.csv
      ledger evaluate --campaign other-rule.toml --from-store .ledger --trials 1
      ledger evaluate --campaign campaigns/paper.toml --save     # for `ledger report html`
      ledger evaluate --rerun .ledger/evaluations/paper-1a2b3c4d.json
    """
    diffs = None  # a rerun's differences from its saved numbers
    if rerun_path:
        result, diffs = gl.rerun_evaluation(rerun_path, campaign_path, progress=not as_json)
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
        emit({**result, "written": written}, True)
        return
    _print(result)
    for path in written:
        click.echo(f"wrote {path}")


def register(cli: click.Group) -> None:
    """Attach `ledger evaluate`."""
    cli.add_command(evaluate_cmd)
