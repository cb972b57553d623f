"""`ledger try STAGE`: a stage's runner tried on a few configs before anything is signed."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

import gateledger as gl
from gateledger.cli.context import emit
from gateledger.cli.method_cmds import CAMPAIGN_OPTION

if TYPE_CHECKING:  # names only: stages.trial loads the method (NumPy, SciPy), which
    # `ledger --help` must not; `gl.try_stage` loads it when the command runs
    from stages.trial import TrialReport, TrialRun


@click.command("try")
@click.argument("stage")
@CAMPAIGN_OPTION
@click.option(
    "--budget",
    default="10s",
    show_default=True,
    help="Training time per tried run (replaces the stage's budget): 10s, 1m, ...",
)
@click.option(
    "--conditions",
    "-n",
    default=2,
    show_default=True,
    type=click.IntRange(1, 64),
    help="How many conditions to try: the most different configs first (all factors low, "
    "all factors high, then the farthest from those).",
)
@click.option(
    "--device",
    default="auto",
    type=click.Choice(["auto", "cpu", "cuda"]),
    show_default=True,
    help="Device passed to the builtin runner.",
)
@click.option(
    "--data",
    type=click.Path(exists=True),
    default=None,
    help="Training data for the builtin runner (default: the campaign's `data`).",
)
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--grace", type=float, default=None, help="Seconds past the budget before a run is killed."
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def try_cmd(stage, campaign_path, budget, conditions, device, data, jobs, grace, as_json):
    """Try STAGE's runner on a few configs, through the code `ledger run` uses, unsigned.

    Each tried run gets its command, effective seed, log parsing and header binding exactly
    as `ledger run` and ingest would, with a short budget, in a scratch folder outside the
    store. Prints what `ledger run` would record for each (status, metric, time) or every
    reason it would refuse the log, with the runner's stderr on a crash. Nothing is signed,
    journaled or stored. Exit 0 when every tried run would be recorded ok, 1 otherwise.

    \b
    Examples:
      ledger try screen --campaign campaign.toml              # all-low and all-high, 10 s each
      ledger try screen --campaign campaign.toml -n 4 --budget 30s
      ledger try screen --campaign campaign.toml --json | jq '.runs[].reasons'
    """
    report = gl.try_stage(
        campaign_path,
        stage,
        budget=budget,
        conditions=conditions,
        data=data,
        device=device,
        jobs=jobs,
        grace=grace,
        progress=not as_json,
    )
    if as_json:
        emit(report.to_dict(), True)
    else:
        _say(report)
    if not report.ok:
        click.get_current_context().exit(1)


def _runner_words(report: TrialReport) -> str:
    runner = report.runner
    if runner.kind == "adapter":
        what = f"the {runner.adapter} adapter on {runner.script}"
    elif runner.kind == "command":
        what = f"`{runner.command}` ({runner.format} logs)"
    else:
        what = "the builtin runner"
    binding = report.binding
    return f"{what}; logs bound: {binding['level']} ({', '.join(binding['bound'])})"


def _say(report: TrialReport) -> None:
    first = report.runs[0] if report.runs else None
    cell = f"seed {first.seed} on host {first.host}" if first else "no cell"
    click.echo(
        f"try {report.stage}: {len(report.runs)} condition(s) at {report.budget_s:g} s each, "
        f"{cell}; runner: {_runner_words(report)}"
    )
    for note in report.notes:
        click.echo(f"note: {note}")
    for run in report.runs:
        _say_run(run, report.metric)
    good = sum(r.ok for r in report.runs)
    click.echo(
        f"try: {good} of {len(report.runs)} would be recorded ok; nothing was written to the "
        f"store (no objects, no journal events)"
        + ("" if report.ok else "; fix what is above before `ledger freeze`")
    )


def _say_run(run: TrialRun, metric: str) -> None:
    seed = f"seed {run.seed} -> {run.effective_seed}" if run.effective_seed is not None else ""
    timing = f"{run.wall_seconds:.1f} s wall"
    trained = run.metrics["training_seconds"]  # a parsed log names every metric
    if isinstance(trained, int | float):
        timing = f"{trained:g} s training, {timing}"
    head = f"  {run.outcome:<8} {run.name} [{run.condition[:8]}] {seed}"
    if run.outcome == "refused":
        click.echo(f"{head}: `ledger run` would refuse its log ({timing}):")
        for reason in run.reasons:
            click.echo(f"      - {reason}")
    elif run.ok:
        value = run.metrics[metric]
        shown = f"{value:.4f}" if isinstance(value, int | float) else "none"
        click.echo(f"{head}: {metric} {shown}, {timing}")
    else:
        code = f", exit {run.exit_code}" if run.exit_code is not None else ""
        reason = f": {run.failure}" if run.failure else ""
        click.echo(f"{head}: would be recorded {run.outcome}{code} ({timing}){reason}")
    if run.stderr_tail:
        click.echo("      stderr (last lines):")
        for line in run.stderr_tail:
            click.echo(f"      | {line}")
    elif run.log_tail and not run.ok:
        click.echo("      log (last lines):")
        for line in run.log_tail:
            click.echo(f"      | {line}")


def register(cli: click.Group) -> None:
    cli.add_command(try_cmd)
