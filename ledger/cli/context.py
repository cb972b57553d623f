"""Helpers every command shares: opening the store, finding the signing key, printing.

Why here: commands stay thin, and "which store, which host, which key" is answered the same
way everywhere (flags, then environment, then sensible defaults).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
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


def reviewer_options(func):
    """`--trust`, `--trust-file` and `--anchor`: what a reviewer brings to verify or audit."""
    func = click.option("--anchor", "anchor_files", multiple=True,
                        type=click.Path(dir_okay=False),
                        help="A published anchor (`ledger anchor --json` output or an "
                             "anchors/<id>.json file) the journals must still extend; "
                             "repeatable.")(func)
    func = click.option("--trust-file", "trust_files", multiple=True,
                        type=click.Path(dir_okay=False),
                        help="Public key records to trust (`ledger keys --json`); repeatable.")(func)
    func = click.option("--trust", "trust_keys", multiple=True, metavar="KEYID",
                        help="Accept signatures by this key only (repeatable; ids as "
                             "`ledger keys` prints them). Default: every key the store holds.")(func)
    return func


def reviewer_inputs(trust_keys, trust_files, anchor_files):
    """(Trust, anchors by id) from the reviewer's options; LedgerError names a bad one."""
    from ledger.anchor import read_anchor_file
    from ledger.trust import trust_from

    trust = trust_from(list(trust_keys), list(trust_files))
    anchors = dict(read_anchor_file(Path(p)) for p in anchor_files)
    return trust, anchors
