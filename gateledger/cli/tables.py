"""Plain-text tables and numbers as every command prints them."""

from __future__ import annotations

from collections.abc import Sequence


def text_table(
    columns: Sequence[str], rows: Sequence[Sequence[str]], right: set[int] | None = None
) -> list[str]:
    """Aligned plain-text columns (numbers right-aligned), a rule under the header."""
    right = right or set()
    widths = [max([len(c)] + [len(r[i]) for r in rows]) for i, c in enumerate(columns)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    return [line(columns), "  ".join("-" * w for w in widths), *(line(r) for r in rows)]


def gpu_hours_text(value: float | None) -> str:
    """GPU-hours with precision that suits their size (1 decimal from 10 up, 2 from 0.1,
    else 3 significant digits: CPU demo runs are thousandths of an hour)."""
    if value is None:
        return "-"
    if abs(value) >= 10:
        return f"{value:,.1f}"
    if abs(value) >= 0.1 or value == 0:
        return f"{value:.2f}"
    return f"{value:.3g}"


def duration_text(seconds: float | None) -> str:
    """`1h 04m`, `3m 20s`, `45s`; `-` when unknown."""
    if seconds is None:
        return "-"
    seconds = int(round(seconds))
    if seconds >= 3600:
        return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds}s"


def run_cell(run: str | None, name: str) -> str:
    """`base [7c4f7ef3] seed 0 @ local`: a run's cell as a terminal line says it (its key,
    `condition/seed/host`, carries the 64-hex condition id; --json keeps it whole)."""
    condition, _, rest = str(run).partition("/")
    seed, _, host = rest.partition("/")
    return f"{name} [{condition[:8]}] seed {seed} @ {host}"
