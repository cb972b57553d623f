"""`ledger compare`: the protocol against its baselines, and campaign against campaign.

It parses the options, calls `gateledger.compare` (audited report data of each store) and
formats the table.
"""

from __future__ import annotations

import click

import gateledger as gl
from gateledger.cli.context import emit, open_store
from gateledger.cli.tables import text_table


@click.command("compare")
@click.option(
    "--campaign",
    "campaign_path",
    default=None,
    envvar="LEDGER_CAMPAIGN",
    type=click.Path(dir_okay=False),
    help="Campaign file (for names and the metric).",
)
@click.option(
    "--with",
    "others",
    multiple=True,
    type=click.Path(file_okay=False),
    metavar="STORE",
    help="Another store whose protocol joins the table (campaign vs campaign; repeatable).",
)
@click.option(
    "--plot",
    "plot_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Also write the plot (best mean with interval vs GPU-hours) as PNG.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def compare_cmd(ctx, campaign_path, others, plot_path, as_json):
    """Protocol vs baselines: best condition found, its mean with 95% interval, the budget it
    was measured at, GPU-hours spent and their share of the protocol's, whether it is the
    protocol's pick, and the protocol's own mean at a baseline's budget.

    Every row comes from audited decisions and raw-log observations; a baseline whose steps
    the audit does not find clean (each re-derived from its seed and parent decision) is
    left out and said so. Exit 1 when an audit of a compared store finds a problem.
    Baselines are recorded with `ledger baseline`.

    \b
    Examples:
      ledger --store preview.ledger compare --campaign campaigns/paper.toml
      ledger compare --with ../other-lab/.ledger --json
      ledger compare --plot compare.png
    """
    comp = gl.compare(open_store(ctx), campaign_path, others=others, plot=plot_path)
    verdicts = comp["audits"]
    if as_json:
        emit(comp, True)
    else:
        headers, rows = gl.comparison_table(comp)
        for line in text_table(headers, rows, right={3, 5, 6}):
            click.echo(line)
        click.echo(comp["note"])
        for left in comp["not_audited"]:
            click.echo(f"left out, not audited clean: {left['method']}: {left['why']}", err=True)
        if len(comp["rows"]) == 1 and not comp["not_audited"]:
            click.echo(
                "no baselines recorded in this store: `ledger baseline greedy|random "
                "... --store THIS_STORE` records them"
            )
        for where, verdict in verdicts.items():
            if verdict != "clean":
                click.echo(
                    f"audit of {where}: {verdict} (run `ledger --store {where} audit`)", err=True
                )
    if any(v == "problems" for v in verdicts.values()):
        ctx.exit(1)


def register(cli: click.Group) -> None:
    """Attach `ledger compare`."""
    cli.add_command(compare_cmd)
