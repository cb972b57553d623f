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


def signing_key(name: str | None, store_root: str | Path | None = None):
    """Load the signing key: --key NAME, else LEDGER_KEY, else the key this store signs with
    by default (`ledger keys --default NAME`, or set by `ledger keygen` in the store), else
    the only private key whose public half is in the store's keyring, else the only key."""
    from ledger.keys import load_signing_key

    name = name or os.environ.get("LEDGER_KEY") or default_key_name(store_root)
    return load_signing_key(name)


def _current_store_root() -> str | None:
    ctx = click.get_current_context(silent=True)
    obj = ctx.find_root().obj if ctx is not None else None
    return (obj or {}).get("store") if isinstance(obj, dict) else None


def default_key_name(store_root: str | Path | None = None) -> str:
    """The key name a command signs with when none is given (LedgerError when ambiguous)."""
    from ledger.keys import default_key_for, key_dir, private_key_ids

    root = store_root if store_root is not None else _current_store_root()
    if root is not None:
        remembered = default_key_for(root)
        if remembered:
            return remembered
    keys = private_key_ids()
    directory = key_dir()
    if not keys:
        raise LedgerError(f"no signing key in {directory}: run `ledger keygen --name NAME` first")
    if len(keys) == 1:
        return next(iter(keys))
    if root is not None and (Path(root) / "keys").is_dir():
        in_store = [n for n, kid in keys.items() if kid and (Path(root) / "keys" /
                                                              f"{kid}.json").is_file()]
        if len(in_store) == 1:
            return in_store[0]
    raise LedgerError(f"several keys in {directory} ({', '.join(keys)}): pass --key NAME, or "
                      f"choose this store's signer once with `ledger keys --default NAME`")


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
