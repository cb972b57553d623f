"""`ledger runs`: one row per run (names, factor levels, metric, throughput, GPU-hours).

It parses the options, calls `gateledger.runs_rows` and formats; scripts call
`gateledger.runs(store)` for the same rows (`pandas.DataFrame(gl.runs(store))`).
"""

from __future__ import annotations

import csv
import io
from typing import Any

import click

import gateledger as gl
from gateledger.cli.context import emit, open_store
from gateledger.cli.tables import gpu_hours_text, text_table


def _cell(column: str, value: Any, metric: str) -> str:
    if value is None:
        return "-"
    if column == metric:
        return f"{value:.4f}"
    if column == "training_seconds":
        return f"{value:.1f}"
    if column == "tokens_per_s":
        return f"{value:,.0f}"
    if column == "mfu":
        return f"{100 * value:.1f}%"
    if column == "gpu_hours":
        return gpu_hours_text(value)
    if column in ("run", "manifest"):
        return str(value)[:12]
    if column == "condition_id":
        return str(value)[:8]
    return str(value)


SHOWN = {
    "run": "run",
    "training_seconds": "train_s",
    "tokens_per_s": "tok/s",
    "gpu_hours": "GPU-h",
}
# Left out of the terminal table (in --csv and --json): the condition's id (its name says
# which), the manifest, the kind and the runner (counted under the table).
HIDDEN = {"manifest", "kind", "runner", "condition_id"}


def _print_table(table) -> None:
    """The runs as an aligned table that fits a terminal: factors headed by their letter
    (a legend line names their config keys), columns nothing filled left out."""
    several = len({r["campaign"] for r in table.rows}) > 1
    skip = HIDDEN | (set() if several else {"campaign"})
    columns = [
        c
        for c in table.columns
        if c not in skip and (c in table.factors or any(r[c] is not None for r in table.rows))
    ]
    numeric = {
        table.metric,
        "training_seconds",
        "tokens_per_s",
        "mfu",
        "gpu_hours",
        "seed",
        *table.factors,
    }
    if table.factors:
        click.echo(
            "factors: " + ", ".join(f"{letter} {key}" for key, letter in table.factors.items())
        )
    rows = [[_cell(c, r[c], table.metric) for c in columns] for r in table.rows]
    headers = [table.factors.get(c) or SHOWN.get(c, c) for c in columns]
    for line in text_table(headers, rows, {i for i, c in enumerate(columns) if c in numeric}):
        click.echo(line)
    sims = sum(1 for r in table.rows if r["runner"] == "sim")
    baselines = sum(1 for r in table.rows if r["kind"] == "baseline")
    total = sum(r["gpu_hours"] for r in table.rows)
    notes = [
        f"{len(table.rows)} run{'s' if len(table.rows) != 1 else ''}",
        f"{gpu_hours_text(total)} training GPU-hours",
    ]
    if baselines:
        notes.append(f"{baselines} of them baseline runs")
    if sims:
        notes.append(f"{sims} simulated")
    click.echo(f"({'; '.join(notes)})")


def _csv(table) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=table.columns, lineterminator="\n")
    writer.writeheader()
    for row in table.rows:
        writer.writerow({k: ("" if v is None else v) for k, v in row.items()})
    return buf.getvalue()


@click.command("runs")
@click.option("--stage", "stages", multiple=True, help="Only this stage (repeatable).")
@click.option(
    "--status",
    "statuses",
    multiple=True,
    type=click.Choice(["ok", "diverged", "crashed", "timeout"]),
    help="Only runs with this status (repeatable).",
)
@click.option(
    "--condition",
    "conditions",
    multiple=True,
    help="Only this condition: its name or an id prefix of 8+ hex (repeatable).",
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(["gate", "baseline", "unplanned"]),
    help="Only protocol gates, baselines or unplanned runs (repeatable).",
)
@click.option(
    "--campaign",
    "campaign_path",
    default=None,
    envvar="LEDGER_CAMPAIGN",
    type=click.Path(dir_okay=False),
    help="Only this campaign's runs (a store may hold several). Env: LEDGER_CAMPAIGN.",
)
@click.option("--csv", "as_csv", is_flag=True, help="CSV with full ids and raw numbers.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def runs_cmd(ctx, stages, statuses, conditions, kinds, campaign_path, as_csv, as_json):
    """One row per run: stage, condition, each factor's level, seed, host, status, the metric,
    training seconds, tokens/s, MFU and GPU-hours.

    The rows are the run records the journals cite (what `ledger audit` then checks
    against the raw logs). From Python: `pandas.DataFrame(gateledger.runs(store))` is the
    same table (`audit.runs_table` also has `decisions_frame`, `costs_frame`).

    \b
    Examples:
      ledger runs
      ledger runs --stage gate --status ok
      ledger runs --condition base --condition bce
      ledger runs --csv > runs.csv
      ledger runs --json | jq '.rows[] | select(.status != "ok")'
    """
    table = gl.runs_rows(
        open_store(ctx),
        campaign=campaign_path,
        stages=stages,
        statuses=statuses,
        conditions=conditions,
        kinds=kinds,
    )
    if as_json:
        emit(table.to_dict(), True)
    elif as_csv:
        click.echo(_csv(table), nl=False)
    else:
        _print_table(table)


def register(cli: click.Group) -> None:
    """Attach `ledger runs`."""
    cli.add_command(runs_cmd)
