"""`ledger status --watch`: redraw where each stage stands until the watched work finishes.

The data comes from `stages.progress` (journals and run records only), so the view works in
another terminal while `ledger run` or `ledger campaign` writes, on any host's copy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime

import click

from gateledger.cli.runs_cmds import gpu_hours_text, text_table
from stages.progress import Progress, StageProgress, campaign_done, duration_text

CLEAR = "\x1b[H\x1b[2J"
RUNNING_SHOWN = 8


def _decided(row: StageProgress) -> str:
    if row.decision is None:
        return "-"
    return f"{row.decision[:12]}: {', '.join(row.promoted) or 'none promoted'}"


def frame_lines(rows: list[StageProgress]) -> list[str]:
    """The progress table, what runs now, and the totals."""
    table = []
    for r in rows:
        if r.declared is None:
            table.append([r.stage, r.kind, "-", "-", "-", "not frozen", "-", "-", "-"])
            continue
        statuses = ", ".join(f"{s} {n}" for s, n in sorted(r.statuses.items())) or "-"
        eta = "done" if r.finished else ("~" + duration_text(r.eta_s) if r.eta_s else "-")
        table.append([r.stage, r.kind, f"{r.recorded}/{r.declared}", str(r.left),
                      str(len(r.running)), statuses, gpu_hours_text(r.gpu_hours), eta,
                      _decided(r)])
    lines = text_table(["stage", "kind", "runs", "left", "running", "statuses", "GPU-h", "ETA",
                        "decision"], table, right={2, 3, 4, 6})
    running = [(r.stage, x) for r in rows for x in r.running]
    if running:
        shown = ", ".join(f"{stage} {x['condition']} seed {x['cell'].replace('/', ' @ ', 1)} "
                          f"({duration_text(x['since_s'])})" for stage, x in running[:RUNNING_SHOWN])
        more = f" and {len(running) - RUNNING_SHOWN} more" if len(running) > RUNNING_SHOWN else ""
        lines.append(f"running now: {shown}{more}")
    stale = sum(r.stale for r in rows)
    if stale:
        lines.append(f"{stale} start(s) without a record, too old to be running (a run that "
                     f"was killed; `ledger run` again takes it over)")
    declared = sum(r.declared or 0 for r in rows)
    recorded = sum(r.recorded for r in rows)
    total = sum(r.gpu_hours for r in rows)
    lines.append(f"total: {recorded} of {declared} declared runs recorded, "
                 f"{gpu_hours_text(total)} training GPU-hours")
    return lines


def watch(progress: Progress, *, interval: float, count: int | None, stage: str | None,
          as_json: bool, clear: bool, sleep: Callable[[float], None] = time.sleep) -> int:
    """Redraw every `interval` seconds until done (or `count` frames); return frames drawn."""
    frames = 0
    while True:
        rows = progress.stages()
        done = campaign_done(rows, progress.campaign, stage)
        frames += 1
        if as_json:
            click.echo(json.dumps({"at": datetime.now(UTC).isoformat(timespec="seconds"),
                                   "done": done, "stages": [r.to_dict() for r in rows]},
                                  sort_keys=True, default=str))
        else:
            now = datetime.now(UTC).strftime("%H:%M:%S UTC")
            head = (f"{progress.store.root}: {now}, every {interval:g}s"
                    + ("" if done else " (Ctrl-C stops)"))
            click.echo((CLEAR if clear else ("\n" if frames > 1 else "")) + head)
            for line in frame_lines(rows):
                click.echo(line)
            if done:
                click.echo("finished" if stage is None else f"stage {stage} finished")
        if done or (count is not None and frames >= count):
            return frames
        sleep(interval)
