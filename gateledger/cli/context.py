"""Helpers every command shares: the store the global options name, output, shared options.

Why here: commands stay thin, and "which store, which host" is answered the same way
everywhere (flags, then environment, then sensible defaults); which key signs is answered
by `gateledger.signers.signing_key`, for scripts and commands alike.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import click

import gateledger as gl
from ledger.store import Store
from ledger.timestamp import StampResult


@dataclass
class GlobalOptions:
    """What the group's options say for every command: the store root and the host this
    machine writes under (None: LEDGER_HOST, else the short hostname; `run --host` may set
    it for its own run)."""

    store: str = ".ledger"
    host: str | None = None


def global_options(ctx: click.Context) -> GlobalOptions:
    """The group's options (defaults when a command runs without the group)."""
    root = ctx.find_root()
    if not isinstance(root.obj, GlobalOptions):
        root.obj = GlobalOptions()
    return root.obj


def host_option(ctx: click.Context) -> str | None:
    """The host the global --host/LEDGER_HOST names (None: the default host)."""
    return global_options(ctx).host


def open_store(ctx: click.Context) -> Store:
    """The store named by --store/LEDGER_STORE, writing under --host/LEDGER_HOST."""
    return gl.open_store(store_root(ctx), host=host_option(ctx))


def store_root(ctx: click.Context) -> str:
    """The store root the global --store option names (it may not exist yet)."""
    return global_options(ctx).store or ".ledger"


def plain(value: Any) -> Any:
    """A result as JSON sees it: its `to_dict()` (results, documents), else its text."""
    to_dict = getattr(value, "to_dict", None)
    return to_dict() if callable(to_dict) else str(value)


def emit(data: Any, as_json: bool, text: str | None = None) -> None:
    """Print JSON (for --json) or the human line."""
    if as_json:
        click.echo(json.dumps(data, indent=2, sort_keys=True, default=plain))
    elif text is not None:
        click.echo(text)


def reviewer_options(func):
    """`--trust`, `--trust-file` and `--anchor`: what a reviewer brings to verify or audit."""
    func = click.option(
        "--anchor",
        "anchor_files",
        multiple=True,
        type=click.Path(dir_okay=False),
        help="A published anchor (`ledger anchor --json` output or an "
        "anchors/<id>.json file) the journals must still extend; "
        "repeatable.",
    )(func)
    func = click.option(
        "--trust-file",
        "trust_files",
        multiple=True,
        type=click.Path(dir_okay=False),
        help="Public key records to trust, as `ledger keys --export FILE` writes them; repeatable.",
    )(func)
    func = click.option(
        "--trust",
        "trust_keys",
        multiple=True,
        metavar="KEYID",
        help="Accept signatures by this key only (repeatable; ids as "
        "`ledger keys` prints them). Default: every key the store holds.",
    )(func)
    return func


def tsa_options(func):
    """`--tsa URL` (repeatable) and `--no-tsa`: which timestamp authorities witness a new
    manifest, decision or anchor (default: the store's `ledger settings --tsa` list)."""
    func = click.option(
        "--no-tsa",
        is_flag=True,
        help="Ask no timestamp authority this time, whatever the store's settings say.",
    )(func)
    func = click.option(
        "--tsa",
        "tsa_urls",
        multiple=True,
        metavar="URL",
        help="RFC 3161 timestamp authority to witness the new object "
        "(repeatable; default: the store's `ledger settings --tsa`).",
    )(func)
    return func


def say_stamps(results: list[StampResult], object_id: str, kind: str, as_json: bool) -> None:
    """One line per token (text mode), one warning per failed TSA (stderr, always)."""
    for result in results:
        if result.ok:
            if not as_json:
                click.echo(
                    f"  timestamped by {result.tsa} at {result.gen_time} (token {result.token})"
                )
        else:
            click.echo(
                f"warning: {result.error}; the {kind} stands, unwitnessed by this "
                f"TSA (retry: ledger timestamp {object_id} --tsa {result.tsa})",
                err=True,
            )


def tsa_roots_option(func):
    """`--tsa-roots PEM` (repeatable): the timestamp authorities' roots a reviewer trusts."""
    return click.option(
        "--tsa-roots",
        "tsa_root_files",
        multiple=True,
        type=click.Path(dir_okay=False),
        help="PEM file of TSA root (and intermediate) certificates the "
        "reviewer trusts; every timestamp token must verify against "
        "them (repeatable).",
    )(func)
