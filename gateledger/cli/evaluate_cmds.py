"""`ledger evaluate`: what a protocol buys (P(best), regret, GPU-hours) against adaptive
baselines at equal cost, on the simulator or on replayed curves. A thin layer over
`stages.evaluate`; nothing here writes evidence."""

from __future__ import annotations

from pathlib import Path

import click

from gateledger.cli.context import emit, open_store
from ledger.errors import LedgerError


def _source(ctx, camp, executor, table, from_store, seed):
    from stages import evaluate as ev

    if table and from_store:
        raise LedgerError("give --table or --from-store, not both")
    if executor == "sim" and (table or from_store):
        executor = "replay"
    if executor == "sim":
        return ev.sim_source(camp, seed)
    if table:
        return ev.replay_csv_source(Path(table), camp, seed)
    if from_store:
        from ledger.store import Store

        return ev.replay_store_source(Store.open(from_store, host=ctx.obj.get("host")), camp,
                                      seed)
    raise LedgerError("--executor replay needs --table CURVES.csv or --from-store DIR")


def _fmt(x, digits: int = 3) -> str:
    return "—" if x is None else f"{x:.{digits}f}"


def _ci(ci, digits: int = 3) -> str:
    return "" if not ci else f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def _print(result: dict) -> None:
    truth = result["truth"]
    inputs = result["inputs"]
    click.echo(f"evaluate {result['campaign']}: {result['trials']} trials on "
               f"{inputs['executor']} (seed {result['seed']}); true best {truth['best']} "
               f"({truth['value']:.4f} at the final budget), pool {truth['pool']}")
    click.echo(f"{'method':<20}{'P(best) [95% CI]':<26}{'P(pick top3)':>13}"
               f"{'regret [95% CI]':>34}{'GPU-h':>10}{'spent':>8}")
    for row in [result["protocol"], *result["baselines"]]:
        ratio = row.get("spent_ratio_mean")
        spent = "" if ratio is None else f"{100 * ratio:.0f}%"
        click.echo(f"{row['method']:<20}{_fmt(row['p_best']) + _ci(row['p_best_ci']):<26}"
                   f"{_fmt(row['p_top3']):>13}"
                   f"{_fmt(row['regret_mean'], 4) + _ci(row['regret_ci'], 4):>34}"
                   f"{_fmt(row['gpu_hours_mean'], 2):>10}{spent:>8}")
    click.echo("gates (share of trials whose promoted set differs from the noise-free one):")
    for gate in result["protocol"]["gates"]:
        line = (f"  {gate['stage']}: changed {100 * gate['decision_changed']:.1f}%, "
                f"promoted {_fmt(gate['promoted_mean'], 1)} of "
                f"{_fmt(gate['candidates_mean'], 1)}")
        screen = gate.get("screen")
        if screen:
            line += (f"; effect screen (BH {screen['level']:g}): FDR {_fmt(screen['fdr'])}, "
                     f"power {_fmt(screen['power'])}")
        click.echo(line)
    if "recorded" in result:
        rec = result["recorded"]
        click.echo(f"on the recorded replicates: pick {rec['pick']}, "
                   f"{rec['gpu_hours']:.2f} GPU-hours")


@click.command("evaluate")
@click.option("--campaign", "campaign_path", default=None, envvar="LEDGER_CAMPAIGN",
              type=click.Path(dir_okay=False),
              help="Campaign TOML file (default: campaign.toml, or the one --rerun names).")
@click.option("--trials", default=200, show_default=True, type=click.IntRange(1, 100000),
              help="Repetitions of the whole protocol, each with fresh noise.")
@click.option("--seed", default=0, show_default=True, type=int, help="Evaluation seed.")
@click.option("--against", default="successive-halving,hyperband,random", show_default=True,
              help="Baselines at equal GPU-hours (comma-separated; 'none' for none).")
@click.option("--executor", type=click.Choice(["sim", "replay"]), default="sim",
              show_default=True, help="sim: the campaign's [sim] surface; replay: a table.")
@click.option("--table", type=click.Path(dir_okay=False), default=None,
              help="Replay table CSV (condition keys, budget, metric, cost_gpu_s, seed, host).")
@click.option("--from-store", "from_store", type=click.Path(file_okay=False), default=None,
              help="Replay the runs a finished store recorded.")
@click.option("--eta", default=3, show_default=True, type=click.IntRange(2, 100),
              help="Reduction factor of successive halving and Hyperband.")
@click.option("--save", is_flag=True,
              help="Keep the result (with its inputs) in STORE/evaluations/ for the report.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False), default=None,
              help="Also write the result JSON to this file.")
@click.option("--rerun", "rerun_path", type=click.Path(dir_okay=False), default=None,
              help="Rerun a saved evaluation with its recorded inputs; exit 1 if numbers differ.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def evaluate_cmd(ctx, campaign_path, trials, seed, against, executor, table, from_store, eta,
                 save, out_path, rerun_path, as_json):
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
    from stages import evaluate as ev
    from stages.campaign import load_campaign

    saved = None
    if rerun_path:
        saved = ev.load_evaluation(rerun_path)
        inputs = saved["inputs"]
        campaign_path = campaign_path or inputs.get("campaign_path")
        trials, seed, eta = inputs["trials"], inputs["seed"], inputs["eta"]
        against = ",".join(inputs["against"]) or "none"
        executor = inputs.get("executor", "sim")
        table = inputs.get("table")
        from_store = inputs.get("from_store")
    camp = load_campaign(campaign_path or "campaign.toml")
    if saved is not None:
        _check_inputs(saved["inputs"], camp, table)
    source = _source(ctx, camp, executor, table, from_store, seed)
    result = ev.evaluate(camp, source, trials=trials, seed=seed,
                         against=ev.parse_against(against), eta=eta, progress=not as_json)
    written = []
    if save:
        path = ev.evaluation_path(open_store(ctx).root, camp.name)
        ev.save_evaluation(path, result)
        written.append(str(path))
    if out_path:
        ev.save_evaluation(Path(out_path), result)
        written.append(out_path)
    if saved is not None:
        diffs = ev.differences(saved, result)
        out = {"rerun": rerun_path, "same": not diffs, "differences": diffs}
        emit(out, as_json, f"rerun of {rerun_path}: " + (
            "same numbers" if not diffs else f"{len(diffs)} difference(s):\n  "
            + "\n  ".join(diffs)))
        if diffs:
            ctx.exit(1)
        return
    if as_json:
        emit({**result, "written": written}, True)
        return
    _print(result)
    for path in written:
        click.echo(f"wrote {path}")


def _check_inputs(inputs: dict, camp, table: str | None) -> None:
    import hashlib

    if hashlib.sha256(camp.text.encode()).hexdigest() != inputs.get("campaign_sha256"):
        raise LedgerError(f"{camp.path}: differs from the campaign the evaluation ran on "
                          f"(SHA-256 {str(inputs.get('campaign_sha256'))[:12]}...)")
    if table and inputs.get("table_sha256"):
        path = Path(table)
        if not path.is_file():
            raise LedgerError(f"replay table not found: {path}")
        if hashlib.sha256(path.read_bytes()).hexdigest() != inputs["table_sha256"]:
            raise LedgerError(f"{path}: differs from the replay table the evaluation ran on")


def register(cli: click.Group) -> None:
    """Attach `ledger evaluate`."""
    cli.add_command(evaluate_cmd)
