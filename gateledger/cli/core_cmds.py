"""Core commands: init, keygen, keys, freeze, ingest, anchor, reindex, sql, status, verify.

Each is a thin layer over `ledger` functions that scripts can import and call directly.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import click

from gateledger.cli.context import (
    chosen_tsas,
    emit,
    open_store,
    reviewer_inputs,
    reviewer_options,
    say_stamps,
    signing_key,
    stamp_new,
    tsa_options,
    tsa_roots,
    tsa_roots_option,
)
from ledger.errors import LedgerError
from ledger.jsonsafe import loads_strict
from ledger.rawlog import MAX_LOG_BYTES

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
    from ledger.store import Store

    store = Store.init(ctx.obj["store"], host=ctx.obj.get("host"))
    emit({"store": str(store.root), "host": store.host}, as_json,
         f"store ready at {store.root} (this machine writes as host {store.host})")


@click.command("keygen")
@click.option("--name", required=True, help="Key name (letters, digits, . _ -).")
@click.option("--passphrase-prompt", is_flag=True,
              help="Encrypt the private key with a passphrase typed twice.")
@JSON_OPTION
@click.pass_context
def keygen_cmd(ctx: click.Context, name: str, passphrase_prompt: bool, as_json: bool) -> None:
    """Make an Ed25519 signing key; its public half joins the store's keyring.

    The private key stays in your config folder (LEDGER_KEY_DIR to change it), mode 0600;
    commit only the store's keys/ folder. Back the private key up: losing it means you
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
    from ledger.keys import generate_key, key_dir, set_default_key
    from ledger.store import Store

    passphrase = os.environ.get("LEDGER_PASSPHRASE") or None
    if passphrase_prompt and passphrase is None:
        if not sys.stdin.isatty():
            raise LedgerError("--passphrase-prompt needs a terminal: set LEDGER_PASSPHRASE "
                              "instead")
        passphrase = click.prompt("passphrase", hide_input=True, confirmation_prompt=True)
    key = generate_key(name, passphrase=passphrase)
    added = None
    if (Path(ctx.obj["store"]) / "store.json").exists():
        store = Store.open(ctx.obj["store"], host=ctx.obj.get("host"))
        store.keyring().add(key.public_record())
        added = str(store.root / "keys" / f"{key.key_id}.json")
        set_default_key(store.root, name)  # made in this store: it signs for it by default
    private = key_dir() / f"{name}.pem"
    emit({"name": name, "key_id": key.key_id, "private_key": str(private),
          "public_key": added, "encrypted": bool(passphrase),
          "default_for_store": str(Path(ctx.obj["store"])) if added else None}, as_json,
         f"key {name}: id {key.key_id}\nprivate key: {private}"
         + (f"\npublic key added to {added}; {name} now signs for {ctx.obj['store']} by "
            f"default" if added else
            "\n(no store here: the public key joins one when you first sign with it)"))


@click.command("keys")
@click.option("--export", "export_path", type=click.Path(dir_okay=False), default=None,
              help="Write the store's public key records (all, or the KEYIDs given) to FILE: "
                   "what a reviewer passes as --trust-file.")
@click.option("--revoke", "revoke_id", default=None, metavar="KEYID",
              help="Revoke a key: sign and journal a revocation (anything it signs later is "
                   "a problem, and the store refuses to sign with it).")
@click.option("--reason", default="", help="Why the key is revoked (with --revoke).")
@click.option("--default", "default_name", default=None, metavar="NAME",
              help="Remember private key NAME as the one that signs for this store when no "
                   "--key is given (kept on this machine, next to the private keys).")
@click.option("--key", "key_name", default=None,
              help="Key that signs the revocation (default: LEDGER_KEY or the only key).")
@click.argument("key_ids", nargs=-1, metavar="[KEYID]...")
@JSON_OPTION
@click.pass_context
def keys_cmd(ctx: click.Context, export_path: str | None, revoke_id: str | None, reason: str,
             default_name: str | None, key_name: str | None, key_ids: tuple[str, ...],
             as_json: bool) -> None:
    """List the store's public keys and the private keys on this machine; export or revoke.

    \b
    Examples:
      ledger keys
      ledger keys --export lab-keys.json            # give this file to reviewers
      ledger audit --trust-file lab-keys.json       # what the reviewer then runs
      ledger keys --revoke 3f2a...e9 --reason "laptop stolen" --key backup
      ledger keys --default alice                   # alice signs here unless --key says else
    """
    from ledger.fsutil import atomic_write
    from ledger.keys import default_key_for, key_dir, set_default_key
    from ledger.revocation import revoke_key

    store = open_store(ctx)
    if default_name:
        path = set_default_key(store.root, default_name)
        emit({"default": default_name, "store": str(store.root), "file": str(path)}, as_json,
             f"{default_name} now signs for {store.root} by default (remembered in {path})")
        return
    if revoke_id:
        revoke_id = _key_id(store, revoke_id)
        oid = revoke_key(store, revoke_id, signing_key(key_name), reason)
        emit({"revoked": revoke_id, "revocation": oid}, as_json,
             f"revoked key {revoke_id} (revocation {oid})")
        return
    full = store.keyring().records()
    if key_ids:
        wanted = {_key_id(store, k) for k in key_ids}
        full = [r for r in full if r.get("key_id") in wanted]
    if export_path:
        atomic_write(Path(export_path), (json.dumps(full, indent=2, sort_keys=True) + "\n")
                     .encode())
        emit({"exported": [r.get("key_id") for r in full], "path": export_path}, as_json,
             f"wrote {len(full)} public key record(s) to {export_path}")
        return
    records = [{k: r.get(k) for k in ("key_id", "name", "created_at")} for r in full]
    for r in records:
        r["revoked_at"] = store.revoked(str(r["key_id"]))
    folder = key_dir()
    private = sorted(p.stem for p in folder.glob("*.pem")) if folder.is_dir() else []
    default = default_key_for(store.root)
    if as_json:
        emit({"store_keys": records, "private_keys": private, "key_dir": str(folder),
              "default": default}, True)
        return
    click.echo(f"store keyring ({len(records)}):")
    for r in records:
        revoked = f"  REVOKED {r['revoked_at']}" if r["revoked_at"] else ""
        click.echo(f"  {r['key_id']}  {r['name']}  created {r['created_at']}{revoked}")
    click.echo(f"private keys in {folder}: {', '.join(private) or 'none'}")
    fallback = "(not set: --key, LEDGER_KEY, or the only key)"
    click.echo(f"signs for this store by default: {default or fallback}")


MAX_PLAN_BYTES = 64 << 20


def _read_plan(path: str) -> dict[str, Any]:
    """A plan file as strict JSON (no NaN, no repeated keys, bounded size and depth)."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_PLAN_BYTES + 1)
    except OSError as exc:
        raise LedgerError(f"cannot read plan {path}: {exc.strerror or exc}") from None
    plan = loads_strict(data, f"plan {path}", max_bytes=MAX_PLAN_BYTES)
    if not isinstance(plan, dict):
        raise LedgerError(f"plan {path} must be a JSON object")
    return plan


@click.command("freeze")
@click.argument("stage", required=False)
@click.option("--plan", "plan_path", type=click.Path(dir_okay=False),
              help="A plan as JSON (what `ledger.manifest.freeze` validates and signs).")
@click.option("--campaign", "campaign_path", default=None, envvar="LEDGER_CAMPAIGN",
              type=click.Path(dir_okay=False), help="Campaign TOML (with STAGE).")
@click.option("--key", "key_name", default=None, help="Signing key (default: LEDGER_KEY or "
              "the only key).")
@click.option("--amend", is_flag=True,
              help="Replace the stage's manifest in force (recorded; audit reports it).")
@click.option("--data", "data_path", type=click.Path(exists=True), default=None,
              help="Data set to hash into the manifest (default: the campaign's, or data/corpus).")
@click.option("--sim-only", is_flag=True,
              help="A plan for the sim executor alone: the data set may be missing (its "
                   "manifest then records none, and real runs of it are refused).")
@tsa_options
@JSON_OPTION
@click.pass_context
def freeze_cmd(ctx: click.Context, stage: str | None, plan_path: str | None,
               campaign_path: str | None, key_name: str | None, amend: bool,
               data_path: str | None, sim_only: bool, tsa_urls: tuple[str, ...],
               no_tsa: bool, as_json: bool) -> None:
    """Sign a stage's plan as a manifest before any of its runs start.

    With --tsa URL (or the store's `ledger settings --tsa`), each timestamp authority is
    sent the manifest's id and its RFC 3161 token is stored beside it: a third party can
    then check the plan existed no later than the TSA's time. A TSA that fails leaves the
    freeze intact and says so (retry with `ledger timestamp ID`).

    \b
    Examples:
      ledger freeze screen-2m --campaign campaign.toml   # from a campaign stage
      ledger freeze screen-2m --sim-only                 # a preview plan, no data needed
      ledger freeze --plan plan.json --key alice          # from an explicit plan
      ledger freeze --plan plan2.json --amend             # replace that stage's manifest
      ledger freeze screen-2m --tsa https://freetsa.org/tsr --tsa http://timestamp.digicert.com
    """
    ctx.obj["json"] = as_json
    if stage is not None:
        # a campaign stage resolves into a plan through the method; it freezes on the same path
        from gateledger.cli.method_cmds import freeze_stage_cmd

        freeze_stage_cmd(ctx, stage, campaign_path, key_name, amend, data_path, sim_only,
                         tsa_urls=tsa_urls, no_tsa=no_tsa)
        return
    if not plan_path:
        raise LedgerError("give a campaign STAGE or --plan plan.json")
    from ledger.manifest import current_manifest_id, freeze, validate_plan

    store = open_store(ctx)
    plan = _read_plan(plan_path)
    validate_plan(store, plan)
    existing = current_manifest_id(store, plan["campaign"], plan["stage"])
    if existing and not amend:
        raise LedgerError(f"stage {plan['stage']!r} of {plan['campaign']!r} is already frozen "
                          f"as manifest {existing}; use --amend to replace it")
    if amend and not existing:
        raise LedgerError(f"stage {plan['stage']!r} was never frozen: nothing to amend")
    amends = existing if amend else None
    key = signing_key(key_name)
    urls = chosen_tsas(store, tsa_urls, no_tsa)
    manifest_id = freeze(store, plan, key, amends=amends)
    stamps = stamp_new(store, manifest_id, urls)
    emit({"manifest": manifest_id, "runs": len(plan["runs"]), "amends": amends,
          "freezer": key.key_id, "timestamps": stamps}, as_json,
         f"froze manifest {manifest_id} ({len(plan['runs'])} runs, signed by {key.name})")
    say_stamps(stamps, manifest_id, "freeze", as_json)


@click.command("ingest")
@click.argument("log", type=click.Path(dir_okay=False))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "autoresearch"]), default="jsonl",
              show_default=True, help="jsonl: the builtin runner's log; autoresearch: stdout.")
@click.option("--manifest", default=None, help="Manifest id the run belongs to.")
@click.option("--condition", default=None, help="Condition id (with --manifest).")
@click.option("--seed", type=int, default=None, help="Seed (with --manifest).")
@click.option("--run-host", "--host", "run_host", default=None,
              help="Host of the declared cell (with --manifest).")
@click.option("--stage", default=None, help="Stage name (default: the manifest's).")
@click.option("--gpus", type=click.IntRange(1, 4096), default=1, show_default=True)
@JSON_OPTION
@click.pass_context
def ingest_cmd(ctx: click.Context, log: str, fmt: str, manifest: str | None,
               condition: str | None, seed: int | None, run_host: str | None,
               stage: str | None, gpus: int, as_json: bool) -> None:
    """Record a raw log as a run: store it byte for byte, write and journal a run record.

    Without --manifest the run is recorded as unplanned compute (it costs GPU-hours but
    belongs to no stage).

    \b
    Examples:
      ledger ingest run.jsonl --manifest ID --condition CID --seed 0 --host a100
      ledger ingest stdout.txt --format autoresearch          # unplanned compute
    """
    from ledger.ingest import ingest

    store = open_store(ctx)
    try:
        with open(log, "rb") as fh:
            raw = fh.read(MAX_LOG_BYTES + 1)  # a longer log is refused; never read it whole
    except OSError as exc:
        raise LedgerError(f"cannot read log {log}: {exc.strerror or exc}") from None
    if manifest:
        manifest = store.resolve(manifest, "manifest")
        if condition:
            condition = _condition_id(store, manifest, condition)
    record_id = ingest(store, raw, fmt=fmt, manifest=manifest, condition=condition, seed=seed,
                       host=run_host, stage=stage, gpus=gpus)
    body = store.get_json(record_id)["body"]
    emit({"run": record_id, **body}, as_json,
         f"recorded run {record_id} ({body['status']}, val_bpb {body['metrics'].get('val_bpb')})")


def _condition_id(store: Any, manifest: str, text: str) -> str:
    """A condition of the manifest by id, 12+ hex prefix, or name."""
    from ledger.store import load_object, resolve_prefix

    conditions = load_object(store, manifest, "manifest").get("conditions", {})
    named = [cid for cid, info in conditions.items() if info.get("name") == text]
    if len(named) == 1:
        return named[0]
    return resolve_prefix(text, lambda p: sorted(c for c in conditions if c.startswith(p)),
                          f"condition of manifest {manifest[:12]}")


def _key_id(store: Any, text: str) -> str:
    """A key of the store's keyring by its 32-hex id or a 12+ hex prefix of it."""
    from ledger.store import resolve_prefix

    ids = store.keyring().ids()
    return resolve_prefix(text, lambda p: sorted(k for k in ids if k.startswith(p)),
                          "key in this store's keyring", length=32)


@click.command("anchor")
@click.option("--key", "key_name", default=None, help="Signing key (default: LEDGER_KEY or "
              "the only key).")
@tsa_options
@JSON_OPTION
@click.pass_context
def anchor_cmd(ctx: click.Context, key_name: str | None, tsa_urls: tuple[str, ...],
               no_tsa: bool, as_json: bool) -> None:
    """Sign every journal's head and print it: publish it (git tag, paper appendix).

    Later, `ledger verify` fails if any journal no longer extends a published head. With
    --tsa URL (or the store's settings) the anchor is also timestamped: every event up to
    its heads then existed no later than the TSA's time.

    \b
    Examples:
      ledger anchor && git tag -a ledger-$(date +%F) -m "$(ledger anchor --json)"
      ledger anchor --tsa https://freetsa.org/tsr
    """
    from ledger.anchor import make_anchor

    store = open_store(ctx)
    key = signing_key(key_name)
    urls = chosen_tsas(store, tsa_urls, no_tsa)
    anchor_id, obj = make_anchor(store, key)
    stamps = stamp_new(store, anchor_id, urls)
    if as_json:
        emit({"anchor": anchor_id, **obj, "timestamps": stamps}, True)
        say_stamps(stamps, anchor_id, "anchor", True)
        return
    click.echo(f"anchor {anchor_id} (anchors/{anchor_id}.json)")
    for head in obj["body"]["heads"]:
        click.echo(f"  {head['host']} seq {head['seq']} {head['hash']}")
    say_stamps(stamps, anchor_id, "anchor", False)


@click.command("timestamp")
@click.argument("object_id", metavar="ID")
@click.option("--tsa", "tsa_urls", multiple=True, metavar="URL",
              help="Timestamp authority to ask (repeatable; default: the store's settings).")
@JSON_OPTION
@click.pass_context
def timestamp_cmd(ctx: click.Context, object_id: str, tsa_urls: tuple[str, ...],
                  as_json: bool) -> None:
    """Ask timestamp authorities for tokens over an existing manifest, decision or anchor.

    For a TSA that failed at freeze time, or an object frozen before any TSA was set. The
    token then witnesses only that the object existed by the TSA's (later) time. Exit 1
    when any TSA failed.

    \b
    Examples:
      ledger timestamp 3f2a9c1d0e77 --tsa https://freetsa.org/tsr   # an id or its first 12+ hex
      ledger timestamp 3f2a9c1d0e77 --json     # the TSAs of `ledger settings`
    """
    store = open_store(ctx)
    urls = chosen_tsas(store, tsa_urls, False)
    if not urls:
        raise LedgerError("no timestamp authority: pass --tsa URL or set one with "
                          "`ledger settings --tsa URL`")
    object_id = store.resolve(object_id)
    kind = store.get_json(object_id).get("kind")
    stamps = stamp_new(store, object_id, urls)
    emit({"object": object_id, "timestamps": stamps}, as_json,
         f"{kind} {object_id}: {sum(s['ok'] for s in stamps)} of {len(stamps)} TSA(s) "
         f"answered")
    say_stamps(stamps, object_id, str(kind), as_json)
    if not all(s["ok"] for s in stamps):
        ctx.exit(1)


@click.command("settings")
@click.option("--tsa", "tsa_urls", multiple=True, metavar="URL",
              help="Set the timestamp authorities freeze, decide, anchor and campaign ask "
                   "by default (repeatable; replaces the list).")
@click.option("--clear-tsa", is_flag=True, help="Ask no timestamp authority by default.")
@JSON_OPTION
@click.pass_context
def settings_cmd(ctx: click.Context, tsa_urls: tuple[str, ...], clear_tsa: bool,
                 as_json: bool) -> None:
    """Show or set the store's settings (`settings.json`, not evidence): default TSAs.

    \b
    Examples:
      ledger settings --tsa https://freetsa.org/tsr --tsa http://timestamp.digicert.com
      ledger settings                       # show them
      ledger settings --clear-tsa
    """
    from ledger.timestamp import configured_tsas, set_tsas

    store = open_store(ctx)
    if tsa_urls and clear_tsa:
        raise LedgerError("give --tsa URL or --clear-tsa, not both")
    if tsa_urls or clear_tsa:
        set_tsas(store, [] if clear_tsa else tsa_urls)
    urls = configured_tsas(store)
    emit({"tsa": urls}, as_json,
         "timestamp authorities: " + (", ".join(urls) if urls else "none"))


@click.command("reindex")
@JSON_OPTION
@click.pass_context
def reindex_cmd(ctx: click.Context, as_json: bool) -> None:
    """Rebuild index.duckdb from objects and journals alone (atomic).

    \b
    Example:
      dvc pull && ledger reindex && ledger sql "SELECT status, count(*) FROM runs GROUP BY 1"
    """
    from ledger.index import reindex

    path = reindex(open_store(ctx))
    emit({"index": str(path)}, as_json, f"rebuilt {path}")


def _table(columns: list[str], rows: list[tuple]) -> list[str]:
    cells = [[("NULL" if v is None else str(v)) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    line = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    out = [line.rstrip(), "  ".join("-" * w for w in widths)]
    for r in cells:
        out.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    return out


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
    from ledger.index import query as run_query

    columns, rows = run_query(open_store(ctx), query)
    if as_json:
        emit([dict(zip(columns, r, strict=True)) for r in rows], True)
        return
    for line in _table(columns, rows):
        click.echo(line)
    click.echo(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")


def store_status(store: Any) -> dict[str, Any]:
    """Counts of objects by kind, runs by status, journals and heads, keys."""
    from ledger.scan import looks_like_envelope

    kinds: Counter[str] = Counter()
    statuses: Counter[str] = Counter()
    total = 0
    for _oid, path in store.iter_objects():
        total += 1
        data = path.read_bytes()
        if not looks_like_envelope(data):
            kinds["raw"] += 1
            continue
        try:
            obj = json.loads(data)
        except (ValueError, RecursionError):
            kinds["raw"] += 1
            continue
        kind = str(obj.get("kind"))
        kinds[kind] += 1
        if kind == "run":
            statuses[str(obj.get("body", {}).get("status"))] += 1
    return {
        "store": str(store.root),
        "host": store.host,
        "objects": total,
        "by_kind": dict(sorted(kinds.items())),
        "runs_by_status": dict(sorted(statuses.items())),
        "journals": [j.head() or {"host": j.host, "seq": None, "hash": None}
                     for j in store.journals()],
        "keys": [{k: r.get(k) for k in ("key_id", "name")} for r in store.keyring().records()],
        "leftover_temp_files": len(store.leftovers()),
    }


@click.command("status")
@click.option("--campaign", "campaign_path", default=None, envvar="LEDGER_CAMPAIGN",
              type=click.Path(dir_okay=False),
              help="Also show where each stage of this campaign stands. Env: LEDGER_CAMPAIGN.")
@click.option("--watch", is_flag=True,
              help="Redraw the stage table (runs done/left, running now, ETA, GPU-hours) until "
                   "the work finishes: the --stage, else every campaign stage decided, else "
                   "every frozen stage's runs recorded.")
@click.option("--interval", type=click.FloatRange(0.05, 3600), default=2.0, show_default=True,
              help="Seconds between redraws (with --watch).")
@click.option("--count", type=click.IntRange(1, None), default=None,
              help="Stop after this many redraws (with --watch).")
@click.option("--stage", "watch_stage", default=None, help="Watch until this stage finishes.")
@JSON_OPTION
@click.pass_context
def status_cmd(ctx: click.Context, campaign_path: str | None, watch: bool, interval: float,
               count: int | None, watch_stage: str | None, as_json: bool) -> None:
    """Where each stage stands (runs done/left, running now, ETA, GPU-hours, decision), and
    counts of objects, runs by status, journal heads and keys.

    With --campaign: the campaign's stages in file order, those not frozen yet included.
    With --watch: the stage table, redrawn until the work finishes (Ctrl-C stops it), in
    another terminal while `ledger run` or `ledger campaign` writes; with --json one JSON
    object per redraw.

    \b
    Examples:
      ledger status
      ledger status --campaign campaigns/demo.toml --json
      ledger status --watch --campaign campaigns/demo.toml     # while `ledger campaign` runs
      ledger status --watch --stage gate --interval 10
    """
    from stages.progress import Progress

    store = open_store(ctx)
    campaign = None
    if campaign_path:
        from stages.campaign import load_campaign

        campaign = load_campaign(campaign_path)
    progress = Progress(store, campaign)
    if watch:
        from gateledger.cli.status_watch import watch as watch_loop

        watch_loop(progress, interval=interval, count=count, stage=watch_stage,
                   as_json=as_json, clear=sys.stdout.isatty() and not as_json)
        return
    out = store_status(store)
    rows = progress.stages()
    out["progress"] = [r.to_dict() for r in rows]
    if campaign is not None:
        from stages.pipeline import campaign_progress

        out["stages"] = campaign_progress(store, campaign)
    if as_json:
        emit(out, True)
        return
    from gateledger.cli.status_watch import frame_lines

    kinds = out["by_kind"]
    parts = sorted(h["host"] for h in out["journals"])
    click.echo(f"store {out['store']}: {out['objects']} objects; journal parts: "
               f"{', '.join(parts) or 'none'}; commands here write as host {out['host']} "
               f"(--host or LEDGER_HOST to change)")
    click.echo(f"  manifests {kinds.get('manifest', 0)}, runs {kinds.get('run', 0)}, "
               f"decisions {kinds.get('decision', 0)}, anchors {kinds.get('anchor', 0)}, "
               f"raw logs {kinds.get('raw', 0)}")
    if out["runs_by_status"]:
        click.echo("  runs by status: " + ", ".join(f"{s} {n}" for s, n in
                                                    out["runs_by_status"].items()))
    for head in out["journals"]:
        click.echo(f"  journal {head['host']}: head seq {head['seq']} {head['hash']}")
    for key in out["keys"]:
        click.echo(f"  key {key['key_id']} {key['name']}")
    if rows:
        for line in frame_lines(rows):
            click.echo(line)
    for row in out.get("stages", []):
        failures = row.get("failures", [])
        if failures:
            click.echo(f"  stage {row['stage']}: {len(failures)} run(s) not ok")
        for failure in failures[:5]:
            reason = f": {failure['reason']}" if failure["reason"] else ""
            click.echo(f"    {failure['status']}: {failure['name']} ({failure['run']}){reason}")
        if len(failures) > 5:
            click.echo(f"    ... and {len(failures) - 5} more run(s) not ok")


@click.command("verify")
@click.option("--no-index", is_flag=True, help="Skip comparing index.duckdb with a rebuild.")
@reviewer_options
@tsa_roots_option
@JSON_OPTION
@click.pass_context
def verify_cmd(ctx: click.Context, no_index: bool, trust_keys: tuple[str, ...],
               trust_files: tuple[str, ...], anchor_files: tuple[str, ...],
               tsa_root_files: tuple[str, ...], as_json: bool) -> None:
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
    from ledger.verify import verify_with_evidence

    trust, anchors = reviewer_inputs(trust_keys, trust_files, anchor_files)
    roots = tsa_roots(tsa_root_files)
    store = open_store(ctx)
    verified = verify_with_evidence(store, check_index=not no_index, progress=not as_json,
                                    trust=trust, anchors=anchors, tsa_roots=roots)
    problems = verified.problems
    leftovers = [str(p.relative_to(store.root)) for p in store.leftovers()]
    if as_json:
        emit({"ok": not problems, "problems": [p.to_dict() for p in problems],
              "leftover_temp_files": leftovers, "orphans": verified.orphans,
              "unanchored": verified.anchors.unanchored, "notes": verified.notes(),
              "timestamps": [t.to_dict() for t in verified.timestamps.tokens.values()],
              **trust.to_dict()}, True)
    else:
        for problem in problems:
            click.echo(str(problem))
        for note in verified.notes():
            click.echo(f"note: {note}", err=True)
        if leftovers:
            click.echo(f"note: {len(leftovers)} temp file(s) left by interrupted writes "
                       f"(harmless, ignored)", err=True)
        click.echo(f"verify: {'clean' if not problems else f'{len(problems)} problem(s)'}",
                   err=True)
    if problems:
        ctx.exit(1)


def register(cli: click.Group) -> None:
    """Attach this module's commands to the top-level group."""
    for command in (init_cmd, keygen_cmd, keys_cmd, freeze_cmd, ingest_cmd, anchor_cmd,
                    timestamp_cmd, settings_cmd, reindex_cmd, sql_cmd, status_cmd, verify_cmd):
        cli.add_command(command)
