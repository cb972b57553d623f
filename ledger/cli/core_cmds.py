"""Commands of the `ledger` CLI in this group (filled in by its owner)."""

from __future__ import annotations

import click


def register(cli: click.Group) -> None:
    """Attach this module's commands to the top-level group."""
