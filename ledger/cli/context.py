"""Helpers every command shares: opening the store, finding the signing key, printing.

Why here: commands stay thin, and "which store, which host, which key" is answered the same
way everywhere (flags, then environment, then sensible defaults).
"""

from __future__ import annotations

import json
import os
from typing import Any

import click

from ledger.errors import LedgerError


def open_store(ctx: click.Context):
    """The store named by --store/LEDGER_STORE, writing under --host/LEDGER_HOST."""
    from ledger.store import Store

    root = ctx.obj.get("store") or ".ledger"
    return Store.open(root, host=ctx.obj.get("host"))


def signing_key(name: str | None):
    """Load the signing key: --key NAME, else LEDGER_KEY, else the only key there is."""
    from ledger.keys import key_dir, load_signing_key

    name = name or os.environ.get("LEDGER_KEY")
    if not name:
        directory = key_dir()
        names = sorted(p.stem for p in directory.glob("*.pem")) if directory.is_dir() else []
        if len(names) == 1:
            name = names[0]
        elif not names:
            raise LedgerError(
                f"no signing key in {directory}: run `ledger keygen --name NAME` first"
            )
        else:
            raise LedgerError(f"several keys in {directory} ({', '.join(names)}): pass --key NAME")
    return load_signing_key(name)


def emit(data: Any, as_json: bool, text: str | None = None) -> None:
    """Print JSON (for --json) or the human line."""
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))
    elif text is not None:
        click.echo(text)
