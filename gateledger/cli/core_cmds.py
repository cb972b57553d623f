"""Core commands: init, keygen, keys, freeze, ingest, anchor, timestamp, settings, reindex,
pack, sql, status, verify.

Each parses its options, calls one `gateledger` function and formats what it returns.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import click

import gateledger as gl
from audit.causes import short_ids
from gateledger.cli.context import (
    emit,
    host_option,
    open_store,
    reviewer_options,
    say_stamps,
    store_root,
    tsa_options,
    tsa_roots_option,
)
from gateledger.cli.status_watch import frame_lines, show_frames
from gateledger.cli.tables import run_cell, text_table
from gateledger.errors import ConfigError
from ledger.documents import Anchor
from stages.runner_checks import frozen_keys_unchecked, unchecked_note

if TYPE_CHECKING:  # the result types, for the checker only (the API loads on first use)
    from gateledger.signers import KeyListing
    from ledger.plan_model import Manifest
    from ledger.status import StoreCounts
    from stages.pipeline import StageStanding

JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


@click.command("init")
@JSON_OPTION
@click.pass_context
def init_cmd(ctx: click.Context, as_json: bool) -> None:
    """Create a store (store.json, keys/, parts/, anchors/). Safe to run twice.

    \b
    Examples:
      ledger init                      # .ledger/ in this folder
      ledger --store /data/ledger init
    """
    store = gl.init(store_root(ctx), host=host_option(ctx))
    emit(
        {"store": str(store.root), "host": store.host},
        as_json,
        f"store ready at {store.root} (this machine writes as host {store.host})",
    )


@click.command("keygen")
@click.option("--name", required=True, help="Key name (letters, digits, . _ -).")
@click.option(
    "--passphrase-prompt",
    is_flag=True,
    help="Encrypt the private key with a passphrase typed twice.",
)
@JSON_OPTION
@click.pass_context
def keygen_cmd(ctx: click.Context, name: str, passphrase_prompt: bool, as_json: bool) -> None:
    """Make an Ed25519 signing key; its public half joins the store's keyring.

    The private key stays in your config folder (LEDGER_KEY_DIR to change it), mode 0600,
    unencrypted unless you give a passphrase (said when it is not); commit only the store's
    keys/ folder. Back the private key up: losing it means you
    can no longer sign, and leaking it means someone else can.

    \b
    Made in a store (one exists at --store), the key becomes the one that signs for that
    store by default; `ledger keys --default NAME` changes it, `--key NAME` overrides it.

    \b
    Examples:
      ledger keygen --name alice
      ledger keygen --name alice --passphrase-prompt   # type a passphrase (a terminal)
      LEDGER_PASSPHRASE=... ledger keygen --name ci    # encrypt non-interactively
    """
    passphrase = os.environ.get("LEDGER_PASSPHRASE") or None
    if passphrase_prompt and passphrase is None:
        if not sys.stdin.isatty():
            raise ConfigError("--passphrase-prompt needs a terminal: set LEDGER_PASSPHRASE instead")
        passphrase = click.prompt("passphrase", hide_input=True, confirmation_prompt=True)
    root = store_root(ctx)
    in_store = (Path(root) / "store.json").exists()  # made in a store: it signs for it
    key = gl.keygen(
        name, passphrase=passphrase, store=root if in_store else None, host=host_option(ctx)
    )
    added = str(Path(root) / "keys" / f"{key.key_id}.json") if in_store else None
    private = gl.key_dir() / f"{name}.pem"
    if not passphrase and not as_json:
        click.echo(
            f"note: {private} is not encrypted (no passphrase): whoever can read it can sign "
            f"as {name}; encrypt a key with --passphrase-prompt or LEDGER_PASSPHRASE",
            err=True,
        )
    emit(
        {
            "name": name,
            "key_id": key.key_id,
            "private_key": str(private),
            "public_key": added,
            "encrypted": bool(passphrase),
            "default_for_store": str(Path(root)) if added else None,
        },
        as_json,
        f"key {name}: id {key.key_id}\nprivate key: {private}"
        + (
            f"\npublic key added to {added}; {name} now signs for {root} by default"
            if added
            else "\n(no store here: the public key joins one when you first sign with it)"
        ),
    )


@click.command("keys")
@click.option(
    "--export",
    "export_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Write the store's public key records (all, or the KEYIDs given) to FILE: "
    "what a reviewer passes as --trust-file.",
)
@click.option(
    "--revoke",
    "revoke_id",
    default=None,
    metavar="KEYID",
    help="Revoke a key: sign and journal a revocation (anything it signs later is "
    "a problem, and the store refuses to sign with it).",
)
@click.option("--reason", default="", help="Why the key is revoked (with --revoke).")
@click.option(
    "--default",
    "default_name",
    default=None,
    metavar="NAME",
    help="Remember private key NAME as the one that signs for this store when no "
    "--key is given (kept on this machine, next to the private keys).",
)
@click.option(
    "--key",
    "key_name",
    default=None,
    help="Key that signs the revocation (default: LEDGER_KEY or the only key).",
)
@click.argument("key_ids", nargs=-1, metavar="[KEYID]...")
@JSON_OPTION
@click.pass_context
def keys_cmd(
    ctx: click.Context,
    export_path: str | None,
    revoke_id: str | None,
    reason: str,
    default_name: str | None,
    key_name: str | None,
    key_ids: tuple[str, ...],
    as_json: bool,
) -> None:
    """List the store's public keys and the private keys on this machine; export or revoke.

    \b
    Examples:
      ledger keys
      ledger keys --export lab-keys.json            # give this file to reviewers
      ledger audit --trust-file lab-keys.json       # what the reviewer then runs
      ledger keys --revoke 3f2a...e9 --reason "laptop stolen" --key backup
      ledger keys --default alice                   # alice signs here unless --key says else
    """
    store = open_store(ctx)
    if default_name:
        path = gl.set_default(store, default_name)
        emit(
            {"default": default_name, "store": str(store.root), "file": str(path)},
            as_json,
            f"{default_name} now signs for {store.root} by default (remembered in {path})",
        )
    elif revoke_id:
        done = gl.revoke(store, revoke_id, signer=key_name, reason=reason)
        emit(
            {"revoked": done.key_id, "revocation": done.revocation},
            as_json,
            f"revoked key {done.key_id} (revocation {done.revocation})",
        )
    elif export_path:
        records = gl.export_keys(store, export_path, key_ids)
        emit(
            {"exported": [r.key_id for r in records], "path": export_path},
            as_json,
            f"wrote {len(records)} public key record(s) to {export_path}",
        )
    else:
        _say_keys(gl.keys(store, key_ids), as_json)


def _say_keys(listing: KeyListing, as_json: bool) -> None:
    """The store's keyring, the private keys here, and the store's default signer."""
    if as_json:
        emit(listing, True)
        return
    records = listing.store_keys
    click.echo(f"store keyring ({len(records)}):")
    for record in records:
        revoked = f"  REVOKED {record.revoked_at}" if record.revoked_at else ""
        click.echo(f"  {record.key_id}  {record.name}  created {record.created_at}{revoked}")
    click.echo(f"private keys in {listing.key_dir}: {', '.join(listing.private_keys) or 'none'}")
    fallback = "(not set: --key, LEDGER_KEY, or the only key)"
    click.echo(f"signs for this store by default: {listing.default or fallback}")


@click.command("freeze")
@click.argument("stage", required=False)
@click.option(
    "--plan",
    "plan_path",
    type=click.Path(dir_okay=False),
    help="A plan as JSON (what `ledger.manifest.freeze` validates and signs).",
)
@click.option(
    "--campaign",
    "campaign_path",
    default=None,
    envvar="LEDGER_CAMPAIGN",
    type=click.Path(dir_okay=False),
    help="Campaign TOML (with STAGE).",
)
@click.option(
    "--key", "key_name", default=None, help="Signing key (default: LEDGER_KEY or the only key)."
)
@click.option(
    "--amend",
    is_flag=True,
    help="Replace the stage's manifest in force (recorded; audit reports it).",
)
@click.option(
    "--data",
    "data_path",
    type=click.Path(exists=True),
    default=None,
    help="Data set to hash into the manifest (default: the campaign's, or data/corpus).",
)
@click.option(
    "--sim-only",
    is_flag=True,
    help="A plan for the sim executor alone: the data set may be missing (its "
    "manifest then records none, and real runs of it are refused).",
)
@tsa_options
@JSON_OPTION
@click.pass_context
def freeze_cmd(
    ctx: click.Context,
    stage: str | None,
    plan_path: str | None,
    campaign_path: str | None,
    key_name: str | None,
    amend: bool,
    data_path: str | None,
    sim_only: bool,
    tsa_urls: tuple[str, ...],
    no_tsa: bool,
    as_json: bool,
) -> None:
    """Sign a stage's plan as a manifest before any of its runs start.

    With --tsa URL (or the store's `ledger settings --tsa`), each timestamp authority is
    sent the manifest's id and its RFC 3161 token is stored beside it: a third party can
    then check the plan existed no later than the TSA's time. A TSA that fails leaves the
    freeze intact and says so (retry with `ledger timestamp ID`).

    Before freezing a stage of your own training script, run `ledger try STAGE`: it runs
    the script on a few configs through the same code, unsigned, so a mistake costs nothing
    there instead of being signed here.

    \b
    Examples:
      ledger try screen-2m --campaign campaign.toml      # first: the runner on 2 configs
      ledger freeze screen-2m --campaign campaign.toml   # from a campaign stage
      ledger freeze screen-2m --sim-only                 # a preview plan, no data needed
      ledger freeze --plan plan.json --key alice          # from an explicit plan
      ledger freeze --plan plan2.json --amend             # replace that stage's manifest
      ledger freeze screen-2m --tsa https://freetsa.org/tsr --tsa http://timestamp.digicert.com
    """
    store = open_store(ctx)
    if stage is not None:
        frozen = gl.freeze(
            store,
            campaign_path or "campaign.toml",
            stage,
            key=key_name,
            amend=amend,
            data=data_path,
            sim_only=sim_only,
            tsa=list(tsa_urls),
            no_tsa=no_tsa,
        )
        _say_stage_frozen(stage, frozen, amend, as_json)
        return
    if not plan_path:
        raise ConfigError("give a campaign STAGE or --plan plan.json")
    frozen = gl.freeze_plan(
        store, plan_path, key=key_name, amend=amend, tsa=list(tsa_urls), no_tsa=no_tsa
    )
    runs = len(frozen.body.runs)
    emit(
        {
            "manifest": frozen.id,
            "runs": runs,
            "amends": frozen.body.amends,
            "freezer": frozen.key.key_id,
            "timestamps": frozen.timestamps,
        },
        as_json,
        f"froze manifest {frozen.id} ({runs} runs, signed by {frozen.key.name})",
    )
    say_stamps(frozen.timestamps, frozen.id, "freeze", as_json)


def _say_stage_frozen(stage: str, frozen: gl.Signed[Manifest], amend: bool, as_json: bool) -> None:
    body = frozen.body
    notes = []
    if frozen_keys_unchecked(body.runner):
        spec = body.spec  # as `stages.plan.stage_spec` froze it just now
        used = [f["key"] for f in spec["factors"].values()]
        used += [k for overrides in spec["named"].values() for k in overrides]
        notes.append(unchecked_note(spec["base"], used))
    emit(
        {
            "manifest": frozen.id,
            "stage": stage,
            "runs": len(body.runs),
            "conditions": len(body.conditions),
            "parent": body.parent,
            "amends": body.amends,
            "freezer": body.freezer,
            "seeds": body.seeds.to_dict() if body.seeds is not None else None,
            "timestamps": frozen.timestamps,
            "notes": notes,
        },
        as_json,
        f"froze {stage}: manifest {frozen.id} ({len(body.runs)} runs, "
        f"{len(body.conditions)} conditions){' [amendment]' if amend else ''}",
    )
    if not as_json:
        for note in notes:
            click.echo(f"note: {note}")
    say_stamps(frozen.timestamps, frozen.id, "freeze", as_json)


@click.command("ingest")
@click.argument("log", type=click.Path(dir_okay=False))
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["jsonl", "autoresearch"]),
    default=None,
    help="jsonl: the builtin runner's log; autoresearch: stdout. A run of a manifest takes "
    "the format its runner froze (a different one is refused); default jsonl otherwise.",
)
@click.option("--manifest", default=None, help="Manifest id the run belongs to.")
@click.option("--condition", default=None, help="Condition id (with --manifest).")
@click.option("--seed", type=int, default=None, help="Seed (with --manifest).")
@click.option(
    "--run-host",
    "--host",
    "run_host",
    default=None,
    help="Host of the declared cell (with --manifest).",
)
@click.option("--stage", default=None, help="Stage name (the manifest's; another one is refused).")
@click.option(
    "--gpus",
    type=click.IntRange(1, 4096),
    default=None,
    help="GPUs the run used: the manifest's (another number is refused); 1 for unplanned.",
)
@click.option(
    "--key", "key_name", default=None, help="Signing key (default: the store's signing key)."
)
@JSON_OPTION
@click.pass_context
def ingest_cmd(
    ctx: click.Context,
    log: str,
    fmt: str | None,
    manifest: str | None,
    condition: str | None,
    seed: int | None,
    run_host: str | None,
    stage: str | None,
    gpus: int | None,
    key_name: str | None,
    as_json: bool,
) -> None:
    """Record a raw log as a run: store it byte for byte, write a run record signed with
    the store's key and journal it.

    A run of a manifest takes its log format, stage and GPUs from the manifest: the plan,
    not a flag, fixes them. Without --manifest the run is recorded as unplanned compute (it
    costs GPU-hours but belongs to no stage).

    \b
    Examples:
      ledger ingest run.jsonl --manifest ID --condition CID --seed 0 --host a100
      ledger ingest stdout.txt --format autoresearch          # unplanned compute
    """
    recorded = gl.ingest(
        open_store(ctx),
        log,
        fmt=fmt,
        manifest=manifest,
        condition=condition,
        seed=seed,
        host=run_host,
        stage=stage,
        gpus=gpus,
        key=key_name,
    )
    body = recorded.body
    value = body.metrics.val_bpb
    shown = f"{value:.4f}" if value is not None else "none"
    emit(recorded, as_json, f"recorded run {recorded.id} ({body.status}, val_bpb {shown})")


@click.command("anchor")
@click.option(
    "--key", "key_name", default=None, help="Signing key (default: LEDGER_KEY or the only key)."
)
@tsa_options
@JSON_OPTION
@click.pass_context
def anchor_cmd(
    ctx: click.Context, key_name: str | None, tsa_urls: tuple[str, ...], no_tsa: bool, as_json: bool
) -> None:
    """Sign every journal's head and print it: publish it (git tag, paper appendix).

    Later, `ledger verify` fails if any journal no longer extends a published head. With
    --tsa URL (or the store's settings) the anchor is also timestamped: every event up to
    its heads then existed no later than the TSA's time.

    \b
    Examples:
      ledger anchor && git tag -a ledger-$(date +%F) -m "$(ledger anchor --json)"
      ledger anchor --tsa https://freetsa.org/tsr
    """
    anchored = gl.anchor(open_store(ctx), key=key_name, tsa=list(tsa_urls), no_tsa=no_tsa)
    if as_json:
        emit(
            {"anchor": anchored.id, **anchored.body.to_dict(), "timestamps": anchored.timestamps},
            True,
        )
        say_stamps(anchored.timestamps, anchored.id, "anchor", True)
        return
    click.echo(f"anchor {anchored.id} (anchors/{anchored.id}.json)")
    for head in Anchor.model_validate(anchored.body.body).heads:
        click.echo(f"  {head.host} seq {head.seq} {head.hash}")
    say_stamps(anchored.timestamps, anchored.id, "anchor", False)


@click.command("timestamp")
@click.argument("object_id", metavar="ID")
@click.option(
    "--tsa",
    "tsa_urls",
    multiple=True,
    metavar="URL",
    help="Timestamp authority to ask (repeatable; default: the store's settings).",
)
@click.option(
    "--key",
    "key_name",
    default=None,
    help="Key that signs the journal head (default: the store's).",
)
@JSON_OPTION
@click.pass_context
def timestamp_cmd(
    ctx: click.Context,
    object_id: str,
    tsa_urls: tuple[str, ...],
    key_name: str | None,
    as_json: bool,
) -> None:
    """Ask timestamp authorities for tokens over an existing manifest, decision or anchor.

    For a TSA that failed at freeze time, or an object frozen before any TSA was set. The
    token then witnesses only that the object existed by the TSA's (later) time. Exit 1
    when any TSA failed.

    \b
    Examples:
      ledger timestamp 3f2a9c1d0e77 --tsa https://freetsa.org/tsr   # an id or its first 12+ hex
      ledger timestamp 3f2a9c1d0e77 --json     # the TSAs of `ledger settings`
    """
    stamped = gl.timestamp(open_store(ctx), object_id, tsa_urls, key=key_name)
    stamps = stamped.timestamps
    emit(
        stamped,
        as_json,
        f"{stamped.kind} {stamped.object}: {sum(s.ok for s in stamps)} of {len(stamps)} "
        f"TSA(s) answered",
    )
    say_stamps(stamps, stamped.object, stamped.kind, as_json)
    if not stamped.ok:
        ctx.exit(1)


@click.command("settings")
@click.option(
    "--tsa",
    "tsa_urls",
    multiple=True,
    metavar="URL",
    help="Set the timestamp authorities freeze, decide, anchor and campaign ask "
    "by default (repeatable; replaces the list).",
)
@click.option("--clear-tsa", is_flag=True, help="Ask no timestamp authority by default.")
@JSON_OPTION
@click.pass_context
def settings_cmd(
    ctx: click.Context, tsa_urls: tuple[str, ...], clear_tsa: bool, as_json: bool
) -> None:
    """Show or set the store's settings (`settings.json`, not evidence): default TSAs.

    \b
    Examples:
      ledger settings --tsa https://freetsa.org/tsr --tsa http://timestamp.digicert.com
      ledger settings                       # show them
      ledger settings --clear-tsa
    """
    urls = gl.settings(open_store(ctx), tsa=tsa_urls, clear_tsa=clear_tsa).tsa
    emit({"tsa": urls}, as_json, "timestamp authorities: " + (", ".join(urls) if urls else "none"))


@click.command("reindex")
@JSON_OPTION
@click.pass_context
def reindex_cmd(ctx: click.Context, as_json: bool) -> None:
    """Rebuild index.duckdb from objects and journals alone (atomic).

    \b
    Example:
      dvc pull && ledger reindex && ledger sql "SELECT status, count(*) FROM runs GROUP BY 1"
    """
    path = gl.rebuild_index(open_store(ctx))
    emit({"index": str(path)}, as_json, f"rebuilt {path}")


@click.command("pack")
@click.option(
    "--part",
    "parts",
    multiple=True,
    metavar="HOST",
    help="Pack this host part (repeatable). Default: this machine's own (--host).",
)
@click.option(
    "--all-parts", is_flag=True, help="Pack every host part (a store gathered on one machine)."
)
@JSON_OPTION
@click.pass_context
def pack_cmd(ctx: click.Context, parts: tuple[str, ...], all_parts: bool, as_json: bool) -> None:
    """Move decided stages' run records and logs into one pack file per stage.

    `ledger decide` packs the stage it decides; this packs the decided stages of an
    existing store (made before packs, or by another host). Each pack lies in the host
    part its objects were in (objects never move between parts) and is read with every
    object re-hashed, like a loose file. A store holding packs is format version 2, which
    older versions of gateledger refuse to read. Safe to run again.

    \b
    Examples:
      ledger pack                      # this host's part
      ledger pack --all-parts --json   # every part of a store gathered here
    """
    store = open_store(ctx)
    if parts and all_parts:
        raise click.UsageError("give --part or --all-parts, not both")
    done = gl.pack(store, parts=store.parts() if all_parts else parts, progress=not as_json)
    damaged = f"; {len(done.damaged)} damaged loose object(s) left for `ledger verify`"
    emit(
        done,
        as_json,
        f"packed {done.objects} object(s) into {len(done.packs)} pack(s)"
        + (f"; removed {done.duplicates} loose copies of packed objects" if done.duplicates else "")
        + (damaged if done.damaged else ""),
    )


@click.command("sql")
@click.argument("query")
@JSON_OPTION
@click.pass_context
def sql_cmd(ctx: click.Context, query: str, as_json: bool) -> None:
    """Run a read-only SQL query on the index (built first if absent or stale).

    Tables: manifests, runs, decisions, events, keys, conditions.

    \b
    Examples:
      ledger sql "SELECT status, count(*) AS n FROM runs GROUP BY status"
      ledger sql "SELECT stage, sum(training_seconds*gpus)/3600 AS gpu_h FROM runs GROUP BY 1"
    """
    result = gl.sql(open_store(ctx), query)
    if as_json:
        emit(result.records(), True)
        return
    cells = [["NULL" if v is None else str(v) for v in row] for row in result.rows]
    for line in text_table(result.columns, cells):
        click.echo(line)
    n = len(result.rows)
    click.echo(f"({n} row{'s' if n != 1 else ''})")


@click.command("status")
@click.option(
    "--campaign",
    "campaign_path",
    default=None,
    envvar="LEDGER_CAMPAIGN",
    type=click.Path(dir_okay=False),
    help="Also show where each stage of this campaign stands. Env: LEDGER_CAMPAIGN.",
)
@click.option(
    "--watch",
    is_flag=True,
    help="Redraw the stage table (runs done/left, running now, ETA, GPU-hours) until "
    "the work finishes: the --stage, else every campaign stage decided, else "
    "every frozen stage's runs recorded.",
)
@click.option(
    "--interval",
    type=click.FloatRange(0.05, 3600),
    default=2.0,
    show_default=True,
    help="Seconds between redraws (with --watch).",
)
@click.option(
    "--count",
    type=click.IntRange(1, None),
    default=None,
    help="Stop after this many redraws (with --watch).",
)
@click.option("--stage", "watch_stage", default=None, help="Watch until this stage finishes.")
@click.option(
    "--idle",
    type=click.FloatRange(0),
    default=60.0,
    show_default=True,
    help="With --watch --campaign: also stop when nothing is in flight, every frozen "
    "stage's runs are recorded and nothing new has happened for this many seconds.",
)
@JSON_OPTION
@click.pass_context
def status_cmd(
    ctx: click.Context,
    campaign_path: str | None,
    watch: bool,
    interval: float,
    count: int | None,
    watch_stage: str | None,
    idle: float,
    as_json: bool,
) -> None:
    """Where each stage stands (runs done/left, running now, ETA, GPU-hours, decision), and
    counts of objects, runs by status, journal heads and keys.

    With --campaign: the campaign's stages in file order, those not frozen yet included.
    With --watch: the stage table, redrawn until the work finishes, in another terminal
    while `ledger run` or `ledger campaign` writes; with --json one JSON object per redraw.
    With --campaign it ends when every stage is decided, or when nothing is in flight and
    nothing new has happened for --idle seconds (one stage's `ledger run` ended). Ctrl-C
    stops it by hand (exit 0).

    \b
    Examples:
      ledger status
      ledger status --campaign campaigns/demo.toml --json
      ledger status --watch --campaign campaigns/demo.toml     # while `ledger campaign` runs
      ledger status --watch --stage gate --interval 10
    """
    store = open_store(ctx)
    campaign = gl.load_campaign(campaign_path) if campaign_path else None
    if watch:
        frames = gl.watch(
            store, campaign, stage=watch_stage, interval=interval, count=count, idle=idle
        )
        show_frames(
            frames,
            store.root,
            interval=interval,
            stage=watch_stage,
            as_json=as_json,
            clear=sys.stdout.isatty() and not as_json,
            idle=idle,
        )
        return
    out = gl.status(store, campaign)
    if as_json:
        emit(out, True)
        return
    _say_store(out.store)
    if out.progress:
        for line in frame_lines([row.to_dict() for row in out.progress]):
            click.echo(line)
    _say_stage_failures(out.stages or [])


def _say_store(out: StoreCounts) -> None:
    """Objects by kind, runs by status, journal heads and keys."""
    kinds = Counter(out.by_kind)
    parts = sorted(h["host"] for h in out.journals)
    click.echo(
        f"store {out.store}: {out.objects} objects; journal parts: "
        f"{', '.join(parts) or 'none'}; commands here write as host {out.host} "
        f"(--host or LEDGER_HOST to change)"
    )
    click.echo(
        f"  manifests {kinds['manifest']}, runs {kinds['run']}, "
        f"decisions {kinds['decision']}, anchors {kinds['anchor']}, raw logs {kinds['raw']}"
    )
    if out.runs_by_status:
        click.echo(
            "  runs by status: " + ", ".join(f"{s} {n}" for s, n in out.runs_by_status.items())
        )
    for head in out.journals:
        click.echo(f"  journal {head['host']}: head seq {head['seq']} {head['hash']}")
    for key in out.keys:
        click.echo(f"  key {key['key_id']} {key['name']}")


def _say_stage_failures(stages: list[StageStanding]) -> None:
    """Per campaign stage, its runs that did not finish ok (the first five named)."""
    for row in stages:
        failures = row.failures
        if failures:
            click.echo(f"  stage {row.stage}: {len(failures)} run(s) not ok")
        for failure in failures[:5]:
            reason = f": {failure.reason}" if failure.reason else ""
            click.echo(f"    {failure.status}: {run_cell(failure.run, failure.name)}{reason}")
        if len(failures) > 5:
            click.echo(f"    ... and {len(failures) - 5} more run(s) not ok")


@click.command("verify")
@click.option("--no-index", is_flag=True, help="Skip comparing index.duckdb with a rebuild.")
@reviewer_options
@tsa_roots_option
@JSON_OPTION
@click.pass_context
def verify_cmd(
    ctx: click.Context,
    no_index: bool,
    trust_keys: tuple[str, ...],
    trust_files: tuple[str, ...],
    anchor_files: tuple[str, ...],
    tsa_root_files: tuple[str, ...],
    as_json: bool,
) -> None:
    """Check every byte, signature, key file, journal chain, reference and anchor.

    Exit 0 when clean; exit 1 with one line per problem, `OBJECT: message`. Without
    --trust/--trust-file, signatures are checked against the keys the store itself holds
    (said in the output); with them, any other signer is a problem. Every timestamp token
    must stamp the object it names; with --tsa-roots its signature and certificate chain
    must verify against those roots at the token's time.

    \b
    Examples:
      ledger verify
      ledger verify --trust 3f2a...e9 --anchor published-anchor.json
      ledger verify --tsa-roots freetsa-root.pem --tsa-roots digicert-roots.pem
      ledger verify --json | jq '.problems[].object'
    """
    result = gl.verify(
        store_root(ctx),
        host=host_option(ctx),
        trust=trust_keys,
        trust_files=trust_files,
        anchors=anchor_files,
        tsa_roots=tsa_root_files,
        check_index=not no_index,
        progress=not as_json,
    )
    if as_json:
        emit(result.to_dict(), True)
    else:
        for problem in result.problems:
            click.echo(short_ids(str(problem)))  # --json keeps the full ids
        for note in result.verified.notes():
            click.echo(f"note: {note}", err=True)
        if result.leftovers:
            click.echo(
                f"note: {len(result.leftovers)} temp file(s) left by interrupted writes "
                f"(harmless, ignored)",
                err=True,
            )
        click.echo(
            f"verify: {'clean' if result.ok else f'{len(result.problems)} problem(s)'}", err=True
        )
    if not result.ok:
        ctx.exit(1)


def register(cli: click.Group) -> None:
    """Attach this module's commands to the top-level group."""
    for command in (
        init_cmd,
        keygen_cmd,
        keys_cmd,
        freeze_cmd,
        ingest_cmd,
        anchor_cmd,
        timestamp_cmd,
        settings_cmd,
        reindex_cmd,
        pack_cmd,
        sql_cmd,
        status_cmd,
        verify_cmd,
    ):
        cli.add_command(command)
