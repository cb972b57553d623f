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


def tsa_options(func):
    """`--tsa URL` (repeatable) and `--no-tsa`: which timestamp authorities witness a new
    manifest, decision or anchor (default: the store's `ledger settings --tsa` list)."""
    func = click.option("--no-tsa", is_flag=True,
                        help="Ask no timestamp authority this time, whatever the store's "
                             "settings say.")(func)
    func = click.option("--tsa", "tsa_urls", multiple=True, metavar="URL",
                        help="RFC 3161 timestamp authority to witness the new object "
                             "(repeatable; default: the store's `ledger settings --tsa`).")(func)
    return func


def chosen_tsas(store, tsa_urls, no_tsa: bool) -> list[str]:
    """The TSAs to ask: --tsa, else the store's settings; none with --no-tsa. Checked before
    anything is signed, so a malformed URL is an error (exit 2) rather than a half-done
    command."""
    from ledger.timestamp import check_url, configured_tsas

    if no_tsa:
        return []
    return [check_url(u) for u in (list(tsa_urls) or configured_tsas(store))]


def stamp_new(store, object_id: str, urls: list[str]) -> list[dict[str, Any]]:
    """Timestamp a just-signed object with `urls`: what each TSA answered (a TSA that fails
    leaves the object as it is: it is signed and journaled already)."""
    from ledger.timestamp import stamp

    return [r.to_dict() for r in stamp(store, object_id, urls)] if urls else []


def say_stamps(results: list[dict[str, Any]], object_id: str, kind: str,
               as_json: bool) -> None:
    """One line per token (text mode), one warning per failed TSA (stderr, always)."""
    for result in results:
        if result["ok"]:
            if not as_json:
                click.echo(f"  timestamped by {result['tsa']} at {result['gen_time']} "
                           f"(token {result['token']})")
        else:
            click.echo(f"warning: {result['error']}; the {kind} stands, unwitnessed by this "
                       f"TSA (retry: ledger timestamp {object_id} --tsa {result['tsa']})",
                       err=True)


def tsa_roots_option(func):
    """`--tsa-roots PEM` (repeatable): the timestamp authorities' roots a reviewer trusts."""
    return click.option("--tsa-roots", "tsa_root_files", multiple=True,
                        type=click.Path(dir_okay=False),
                        help="PEM file of TSA root (and intermediate) certificates the "
                             "reviewer trusts; every timestamp token must verify against "
                             "them (repeatable).")(func)


def tsa_roots(files) -> list | None:
    """The certificates in the reviewer's --tsa-roots files (None when none were given)."""
    if not files:
        return None
    from ledger.timestamp import load_tsa_roots

    return load_tsa_roots(files)
