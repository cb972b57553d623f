"""`ledger status` tables and `ledger status --watch`: where each stage stands, redrawn until
the watched work finishes.

The rows come from `gateledger.watch` / `gateledger.status` (journals and run records only),
so the view works in another terminal while `ledger run` or `ledger campaign` writes, on any
host's copy. Rows are the `to_dict()` form of `stages.progress.StageProgress`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from gateledger.cli.tables import duration_text, gpu_hours_text, text_table

CLEAR = "\x1b[H\x1b[2J"
RUNNING_SHOWN = 8
HEADERS = ["stage", "kind", "runs", "left", "running", "statuses", "GPU-h", "ETA", "decision"]


def _decided(row: dict[str, Any]) -> str:
    if row["decision"] is None:
        return "-"
    return f"{row['decision'][:12]}: {', '.join(row['promoted']) or 'none promoted'}"


def _table_row(row: dict[str, Any]) -> list[str]:
    if row["declared"] is None:
        return [row["stage"], row["kind"], "-", "-", "-", "not frozen", "-", "-", "-"]
    statuses = ", ".join(f"{s} {n}" for s, n in sorted(row["statuses"].items())) or "-"
    eta = (
        "done" if row["finished"] else ("~" + duration_text(row["eta_s"]) if row["eta_s"] else "-")
    )
    return [
        row["stage"],
        row["kind"],
        f"{row['recorded']}/{row['declared']}",
        str(row["left"]),
        str(len(row["running"])),
        statuses,
        gpu_hours_text(row["gpu_hours"]),
        eta,
        _decided(row),
    ]


def frame_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The progress table, what runs now, and the totals."""
    lines = text_table(HEADERS, [_table_row(r) for r in rows], right={2, 3, 4, 6})
    running = [(r["stage"], x) for r in rows for x in r["running"]]
    if running:
        shown = ", ".join(
            f"{stage} {x['condition']} seed {x['cell'].replace('/', ' @ ', 1)} "
            f"({duration_text(x['since_s'])})"
            for stage, x in running[:RUNNING_SHOWN]
        )
        more = f" and {len(running) - RUNNING_SHOWN} more" if len(running) > RUNNING_SHOWN else ""
        lines.append(f"running now: {shown}{more}")
    dead = [(r["stage"], x) for r in rows for x in r["dead"]]
    if dead:
        shown = ", ".join(
            f"{stage} {x['condition']} seed {x['cell'].replace('/', ' @ ', 1)} ({x['why']})"
            for stage, x in dead[:RUNNING_SHOWN]
        )
        more = f" and {len(dead) - RUNNING_SHOWN} more" if len(dead) > RUNNING_SHOWN else ""
        lines.append(f"dead: {shown}{more}; the next `ledger run` closes them as interrupted")
    declared = sum(r["declared"] or 0 for r in rows)
    recorded = sum(r["recorded"] for r in rows)
    total = sum(r["gpu_hours"] for r in rows)
    lines.append(
        f"total: {recorded} of {declared} declared runs recorded, "
        f"{gpu_hours_text(total)} training GPU-hours"
    )
    return lines


def show_frames(
    frames: Iterable[Any],
    root: str | Path,
    *,
    interval: float,
    stage: str | None,
    as_json: bool,
    clear: bool,
    idle: float = 60.0,
) -> int:
    """Print each frame of `gateledger.watch` as it comes; the frames shown. Ctrl-C is
    how a watch is stopped by hand: it ends the loop quietly (exit 0), saying so."""
    shown = 0
    try:
        for rows, done, why in frames:
            shown += 1
            _show(rows, done, why, root, interval, stage, as_json, clear, shown, idle)
    except KeyboardInterrupt:
        if not as_json:
            click.echo(f"stopped (Ctrl-C) after {shown} redraw(s)")
    return shown


def _show(
    rows: list[Any],
    done: bool,
    why: str | None,
    root: str | Path,
    interval: float,
    stage: str | None,
    as_json: bool,
    clear: bool,
    shown: int,
    idle: float,
) -> None:
    table = [r.to_dict() for r in rows]
    if as_json:
        click.echo(
            json.dumps(
                {
                    "at": datetime.now(UTC).isoformat(timespec="seconds"),
                    "done": done,
                    "why": why,
                    "stages": table,
                },
                sort_keys=True,
                default=str,
            )
        )
        return
    now = datetime.now(UTC).strftime("%H:%M:%S UTC")
    head = f"{root}: {now}, every {interval:g}s" + ("" if done else " (Ctrl-C stops)")
    click.echo((CLEAR if clear else ("\n" if shown > 1 else "")) + head)
    for line in frame_lines(table):
        click.echo(line)
    if why == "finished":
        click.echo("finished" if stage is None else f"stage {stage} finished")
    elif why == "idle":
        decided = sum(1 for r in table if r["decision"] is not None)
        click.echo(
            f"stopped: nothing in flight and nothing new for {idle:g}s "
            f"({decided} of {len(table)} stage(s) decided)"
        )
