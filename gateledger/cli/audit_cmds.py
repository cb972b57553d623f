"""Audit commands: `audit`, `report costs|effects|html`, `export`, `reproduce`.

Thin layers over `audit` functions; exit 1 whenever a check fails.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from gateledger.cli.context import (
    emit,
    open_store,
    reviewer_inputs,
    reviewer_options,
    signing_key,
    tsa_roots,
    tsa_roots_option,
)
from ledger.errors import LedgerError


def _load_campaign(path: str | None):
    if not path:
        return None
    from stages.campaign import load_campaign

    return load_campaign(path)


@click.command("audit")
@click.option("--bundle", type=click.Path(dir_okay=False), default=None,
              help="Audit a reviewer bundle (from `ledger export`) instead of the store.")
@reviewer_options
@tsa_roots_option
@click.option("--reproduce", "reproduce_n", type=click.IntRange(1), default=None, metavar="N",
              help="Also replay N runs drawn by --seed (stratified by stage and status, "
                   "diverged and crashed runs first) and compare each with its record.")
@click.option("--seed", "draw_seed", type=int, default=0, show_default=True,
              help="Seed of the --reproduce draw: choose your own, so the operator cannot "
                   "know which runs will be replayed.")
@click.option("--tolerance", type=click.FloatRange(0), default=None,
              help="Largest step-loss or val_bpb difference accepted for a replay on a GPU "
                   "(default 0.01); runs recorded and replayed on CPU must match bit for bit.")
@click.option("--data", "data_path", type=click.Path(exists=True), default=None,
              help="Training data for --reproduce (default: data/corpus); it must hash to "
                   "the data the runs record.")
@click.option("--device", default="cpu", type=click.Choice(["cpu", "cuda", "auto"]),
              show_default=True, help="Device for --reproduce replays.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def audit_cmd(ctx, bundle, trust_keys, trust_files, anchor_files, tsa_root_files, reproduce_n,
              draw_seed, tolerance, data_path, device, as_json):
    """Re-derive every estimate and decision from objects and journals alone.

    Checks every byte and signature, parses every raw log and binds it to its run (config,
    seed, host, budget, manifest, runner and data hashes; a status needs its evidence),
    recomputes every decision from its frozen rule on what the logs say, checks ordering
    (freeze before runs, runs before decisions), lineage, missing and extra runs,
    amendments, published anchors, and that GPU-hours add up. Exit 0 when clean; 1 with one
    line per problem naming the object, and also when there is nothing to audit.

    A reviewer names the keys they trust (--trust KEYID, --trust-file FILE) and the anchors
    they saw published (--anchor FILE); without them trust is store-asserted, and the
    output says so. With --tsa-roots every timestamp token is verified against the TSA
    roots given, and each stage reports its witnessed interval: frozen no later than T1,
    decided no later than T2 (a decision stamped before its manifest is a problem).
    Each log's effective seed must follow from its manifest. --reproduce N re-trains N
    reviewer-drawn runs and compares them with their records (a mismatch is a problem).

    \b
    Examples:
      ledger audit
      ledger audit --trust 3f2a...e9 --anchor anchor-2026-06-01.json
      ledger audit --bundle evidence.tar.gz --trust-file lab-keys.json --json
      ledger audit --tsa-roots freetsa-root.pem
      ledger audit --reproduce 5 --seed 8271 --data data/corpus
    """
    from audit.rederive import audit_store
    from audit.spotcheck import SpotCheckRequest
    from ledger.store import Store

    trust, anchors = reviewer_inputs(trust_keys, trust_files, anchor_files)
    roots = tsa_roots(tsa_root_files)
    request = None
    if reproduce_n is not None:
        request = SpotCheckRequest(reproduce_n, seed=draw_seed, tolerance=tolerance,
                                   data=Path(data_path) if data_path else None, device=device)
    problems_extra: list[str] = []
    with tempfile.TemporaryDirectory(prefix="ledger-bundle-") as tmp:
        if bundle:
            from audit.bundle import open_bundle

            root, problems_extra = open_bundle(Path(bundle), Path(tmp))
            store = Store.open(root, host=ctx.obj.get("host") or "reviewer")
        else:
            store = open_store(ctx)
        result = audit_store(store, progress=not as_json, trust=trust, anchors=anchors,
                             tsa_roots=roots, reproduce=request)
    out = result.to_dict()
    if problems_extra:
        out["problems"] = [{"object": "bundle", "message": p} for p in problems_extra] + \
            out["problems"]
        out["verdict"] = "problems"
    if as_json:
        emit(out, True)
    else:
        _print_audit(out)
    if out["verdict"] != "clean":
        ctx.exit(1)


_MARKS = {"clean": "ok ", "undecided": "...", "problems": "BAD"}


def _print_audit(out: dict) -> None:
    for stage in out["stages"]:
        mark = _MARKS.get(stage["verdict"], "BAD")
        extra = " (superseded by an amendment)" if stage["superseded"] else ""
        sim = f", {stage['sim_runs']} simulated" if stage["sim_runs"] else ""
        decision = (stage["decision"] or "")[:12] or "none (undecided)"
        missing = (f", decided with {stage['missing_runs']} declared run(s) missing"
                   if stage["decision"] and stage["missing_runs"] else "")
        click.echo(f"[{mark}] {stage['campaign']}/{stage['stage']}: manifest "
                   f"{stage['manifest'][:12]}, {stage['runs']} runs{sim}, decision "
                   f"{decision}{missing}{extra}")
        witness = _witness_line(stage.get("witness") or {})
        if witness:
            click.echo(f"      witnessed: {witness}")
        for check in stage["checks"]:
            if not check["ok"]:
                click.echo(f"      failed: {check['name']} {check['detail']}".rstrip())
        for failed in stage["failed_runs"][:5]:
            reason = f": {failed['reason']}" if failed["reason"] else ""
            click.echo(f"      {failed['status']}: run {failed['key']}{reason}")
        if len(stage["failed_runs"]) > 5:
            click.echo(f"      ... and {len(stage['failed_runs']) - 5} more run(s) not ok")
    if out["unplanned_runs"]:
        click.echo(f"unplanned compute: {len(out['unplanned_runs'])} run(s) outside any manifest")
    if out["amendments"]:
        click.echo(f"amendments: {len(out['amendments'])} manifest(s) amend an earlier freeze")
    for row in (out.get("reproduction") or {}).get("drawn", []):
        click.echo(f"replayed {row['run'][:12]} ({row['stage']}, {row['status']}): "
                   f"{row['verdict']}: {row['detail']}")
    costs = out["costs"]
    click.echo(f"GPU-hours: {costs['training_gpu_hours']:.4f} training, "
               f"{costs['wall_gpu_hours']:.4f} wall")
    for note in out["notes"]:
        click.echo(f"note: {note}")
    for problem in out["problems"]:
        click.echo(f"{problem['object']}: {problem['message']}", err=True)
    if out["verdict"] == "empty":
        click.echo("audit: empty: nothing was frozen or run, so nothing is proved (exit 1)")
        return
    click.echo(f"audit: {out['verdict']} ({len(out['problems'])} problem(s), "
               f"{out['objects']} objects, {out['anchors']} anchor(s))")


def _witness_line(witness: dict) -> str:
    """`frozen no later than T1 (TSA), decided no later than T2` for one stage, or ''."""
    parts = []
    for word in ("frozen", "decided"):
        bound = witness.get(word)
        if bound:
            via = "" if bound["via"] == "its own token" else f", via {bound['via'][:19]}"
            parts.append(f"{word} no later than {bound['no_later_than']} ({bound['tsa']}{via})")
    if parts and witness.get("checked_against", "").startswith("nothing"):
        parts.append("NOT checked: give --tsa-roots")
    return ", ".join(parts)


@click.group("report")
def report_group():
    """Reports a reviewer or a budget holder can read: costs, effects, html.

    \b
    Examples:
      ledger report costs
      ledger report effects --json
      ledger report html --campaign campaigns/demo.toml --out report --metrics metrics.json
    """


def _report_data(ctx, campaign_path):
    from audit.rederive import audit_store
    from audit.report_data import build_report_data

    store = open_store(ctx)
    result = audit_store(store)
    return build_report_data(store, result, _load_campaign(campaign_path))


CAMPAIGN = click.option("--campaign", "campaign_path", default=None, envvar="LEDGER_CAMPAIGN",
                        type=click.Path(dir_okay=False), help="Campaign file (for factor names).")


@report_group.command("costs")
@CAMPAIGN
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def report_costs(ctx, campaign_path, as_json):
    """GPU-hours of the protocol by stage (in protocol order), host and status, what it saved,
    the counterfactuals at every gate, and baselines and unplanned compute apart.

    \b
    Examples:
      ledger report costs
      ledger --store preview.ledger report costs --campaign campaigns/paper.toml
      ledger report costs --json | jq .costs.training_gpu_hours
    """
    from audit.report import saved_sentence

    data = _report_data(ctx, campaign_path)
    out = {"costs": data["costs"], "baseline_costs": data["baseline_costs"],
           "unplanned_costs": data["unplanned_costs"], "all_costs": data["all_costs"],
           "counterfactuals": data["counterfactuals"], "saved": saved_sentence(data)}
    if as_json:
        emit(out, True)
        return
    _print_costs(data)


def _print_costs(data) -> None:
    from audit.report import _ordered_costs, saved_sentence
    from gateledger.cli.runs_cmds import gpu_hours_text as hours
    from gateledger.cli.runs_cmds import text_table

    costs = _ordered_costs(data)
    click.echo(f"protocol ({data['campaign']['name']}): {hours(costs['training_gpu_hours'])} "
               f"training GPU-hours, {hours(costs['wall_gpu_hours'])} wall, "
               f"{costs['n_runs']} runs")
    saved = saved_sentence(data)
    if saved:
        click.echo(saved)

    def part(title: str, rows: dict) -> None:
        click.echo(f"{title}:")
        lines = text_table([title.split()[1], "runs", "training GPU-h", "wall GPU-h"],
                           [[str(k), str(r["n_runs"]), hours(r["training_gpu_hours"]),
                             hours(r["wall_gpu_hours"])] for k, r in rows.items()],
                           right={1, 2, 3})
        for line in lines:
            click.echo(f"  {line}")

    part("by stage (protocol order)", costs["by_stage"])
    part("by host", costs["by_host"])
    part("by status", costs["by_status"])
    for key, title in (("baseline_costs", "baselines"), ("unplanned_costs", "unplanned compute")):
        other = data.get(key)
        if other:
            click.echo(f"{title} (not in the totals above): "
                       f"{hours(other['training_gpu_hours'])} training GPU-hours over "
                       f"{other['n_runs']} runs")
            part("by stage", other["by_stage"])
    if data["counterfactuals"]:
        click.echo("counterfactuals (nominal GPU-hours):")
        for cf in data["counterfactuals"]:
            for key in ("sentence_next", "sentence"):
                if cf.get(key) and (key == "sentence" or cf["next"] != cf["final"]):
                    click.echo(f"  {cf[key]}")
    checks = costs.get("checks", []) + (data.get("all_costs") or {}).get("checks", [])
    bad = [c["name"] for c in checks if not c["ok"]]
    click.echo("sum checks: " + (f"FAILED: {', '.join(bad)}" if bad else
                                 f"all {len(checks)} ok (parts add up to the totals)"))


@report_group.command("effects")
@CAMPAIGN
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def report_effects(ctx, campaign_path, as_json):
    """Effects by budget (BH q-values within each budget), variance decomposition, rank
    stability between gates, and the flags a reviewer needs, from the decisions.

    \b
    Examples:
      ledger report effects
      ledger report effects --json | jq '.flags[]'
    """
    data = _report_data(ctx, campaign_path)
    out = {
        "stages": [{"stage": s["name"], "budget_s": s["budget_s"], "analysis": s["analysis"],
                    "effects": s["effects"], "effects_note": s["effects_note"],
                    "significant": s["significant"], "failure_rates": s["failure_rates"]}
                   for s in data["stages"]],
        "variance": data["variance"],
        "rank_stability": data["rank_stability"],
        "flags": data["flags"],
    }
    if as_json:
        emit(out, True)
        return
    for row in out["stages"]:
        eff = row["effects"]
        what = (f"{eff['method']}{', post-selection (descriptive, no q)' if eff['post_selection'] else ''}"
                if eff else f"no effects ({row['effects_note']})")
        click.echo(f"{row['stage']} ({row['budget_s']:g} s): {what}")
        for e in (eff or {}).get("effects", []):
            mark = "*" if e["term"] in row["significant"] else " "
            interval = (f"[{e['ci_low']:+.4f}, {e['ci_high']:+.4f}]"
                        if e.get("ci_low") is not None else "[-]")
            aliases = f"  = {' = '.join(e['aliases'])}" if e.get("aliases") else ""
            click.echo(f"  {mark} {e['term']:<6} {e['effect']:>+10.4f} {interval}  "
                       f"q={_round(e.get('q'))}{aliases}")
        for term in (eff or {}).get("dropped", []):
            click.echo(f"    dropped {term}: {eff['dropped_reasons'].get(term, '')}")
    campaign_var = (out["variance"] or {}).get("campaign")
    if campaign_var:
        shares = ", ".join(f"{k} {v:.3f}" for k, v in campaign_var["shares"].items()
                           if v is not None)
        click.echo(f"variance shares over {campaign_var['n']} ok runs: {shares}")
    for r in out["rank_stability"]:
        rho = "n/a" if r["rho"] is None else f"{r['rho']:.3f}"
        click.echo(f"rank stability {r['from']} -> {r['to']}: rho {rho} over {r['n']}"
                   + (f" ({r['flag']})" if r["flag"] else ""))
    for f in out["flags"]:
        click.echo(f"flag {f['stage']}: {f['kind']}: {f['detail']}")


def _round(x):
    return x if x is None else round(x, 4)


@report_group.command("html")
@CAMPAIGN
@click.option("--out", "out_dir", default="report", show_default=True,
              type=click.Path(file_okay=False), help="Folder for report.html, report.md, plots.")
@click.option("--metrics", "metrics_path", default=None, type=click.Path(dir_okay=False),
              help="Also write the headline numbers as JSON (for `dvc metrics show`).")
@click.option("--plots", "plots_dir", default=None, type=click.Path(file_okay=False),
              help="Also write effects.csv and costs.csv (for `dvc plots show`).")
@click.option("--json", "as_json", is_flag=True, help="Print written paths and headline as JSON.")
@click.pass_context
def report_html(ctx, campaign_path, out_dir, metrics_path, plots_dir, as_json):
    """Write a self-contained HTML page (and Markdown) a reviewer can read without the tool.

    The page opens with the audit verdict and what it rests on (simulated runs, demo key,
    anchors, trust), a one-paragraph verdict on what was decided and how sure it is, and
    the review flags; then provenance, each gate's frozen rule and outcome, main effects by
    budget, condition means with intervals, rank stability, costs (baselines apart) and
    counterfactuals, and the protocol against its baselines when there are any.

    \b
    Examples:
      ledger report html --campaign campaigns/demo.toml --out report
      ledger report html --out report --metrics metrics.json --plots plots   # for DVC
    """
    from audit.dvc_outputs import write_dvc_outputs
    from audit.report import write_report
    from audit.report_data import headline

    data = _report_data(ctx, campaign_path)
    paths = write_report(data, Path(out_dir))
    write_dvc_outputs(data, Path(metrics_path) if metrics_path else None,
                      Path(plots_dir) if plots_dir else None)
    out = {"paths": {k: str(v) for k, v in paths.items()}, "headline": headline(data)}
    emit(out, as_json, f"wrote {paths.get('html')} and {paths.get('md')} "
                       f"(audit: {data['audit']['verdict']})")


@click.command("export")
@click.argument("bundle", type=click.Path(dir_okay=False), required=False)
@click.option("--campaign", "campaigns", multiple=True, type=click.Path(exists=True,
              dir_okay=False), help="Campaign file(s) to include (repeatable).")
@click.option("--in-toto", "in_toto_dir", type=click.Path(file_okay=False), default=None,
              help="Also (or only) write every manifest and decision as an in-toto Statement "
                   "v1 in a DSSE envelope into this folder, signed with --key.")
@click.option("--key", "key_name", default=None,
              help="Key that signed the manifests and decisions (for --in-toto; default: "
                   "LEDGER_KEY or the only key).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def export_cmd(ctx, bundle, campaigns, in_toto_dir, key_name, as_json):
    """Write a reviewer bundle: objects, journals, public keys, campaigns, versions.

    A reviewer runs `ledger audit --bundle BUNDLE` in an empty directory. With --in-toto
    DIR, every manifest and decision your key signed is also written as an in-toto
    attestation (DSSE envelope; subject: the object id, predicate: its body) that generic
    supply-chain verifiers check with the exported public key.

    \b
    Examples:
      ledger export evidence.tar.gz --campaign campaigns/demo.toml
      ledger keys --export lab-keys.json     # the keys the reviewer is told to trust
      ledger audit --bundle evidence.tar.gz --trust-file lab-keys.json   # on their side
      ledger export --in-toto attestations/ --key alice
    """
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from audit.bundle import export_bundle

    store = open_store(ctx)
    if not bundle and not in_toto_dir:
        raise LedgerError("give a BUNDLE path, --in-toto DIR, or both")
    out: dict = {}
    if in_toto_dir:
        from audit.intoto import export_in_toto

        written = export_in_toto(store, Path(in_toto_dir), signing_key(key_name))
        out["in_toto"] = written.to_dict()
        if not bundle:
            emit(out, as_json, f"wrote {len(written.written)} in-toto attestation(s) to "
                               f"{in_toto_dir} ({len(written.skipped)} skipped), public key "
                               f"{written.public_key}")
            return
    versions = {"python": platform.python_version()}
    for pkg in ("gateledger", "torch", "duckdb", "statsmodels", "cryptography", "rfc8785",
                "rfc3161-client"):
        try:
            versions[pkg] = version(pkg)
        except PackageNotFoundError:
            versions[pkg] = None
    path = export_bundle(store.root, Path(bundle),
                         extra_files={Path(c).name: Path(c) for c in campaigns},
                         meta={"versions": versions})
    text = f"wrote {path}"
    if "in_toto" in out:
        text += f" and {len(out['in_toto']['written'])} in-toto attestation(s) to {in_toto_dir}"
    emit({**out, "bundle": str(path), "versions": versions}, as_json, text)


@click.command("reproduce")
@click.argument("run_id", metavar="RUN")
@click.option("--data", type=click.Path(exists=True), default=None,
              help="Training data (default: data/corpus).")
@click.option("--device", default="cpu", type=click.Choice(["cpu", "cuda", "auto"]),
              show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def reproduce_cmd(ctx, run_id, data, device, as_json):
    """Replay a recorded run with `--steps` and report its difference from the record.

    RUN is a run record id, or its first 12+ hex characters (as `ledger runs` prints them).
    Exit 0 when the replay is identical, 1 when it differs.

    \b
    Examples:
      ledger runs --stage screen                 # pick a run id
      ledger reproduce 3f2a9c01b7e4 --data data/corpus
      ledger reproduce 3f2a9c01b7e4 --json | jq .val_bpb_difference
    """
    from audit.reproduce import reproduce_run

    store = open_store(ctx)
    out = reproduce_run(store, store.resolve(run_id, "run"), data=Path(data) if data else None,
                        device=device)
    if as_json:
        emit(out, True)
    else:
        click.echo(f"replayed {out['steps']} steps: recorded val_bpb {out['recorded_val_bpb']}, "
                   f"replayed {out['replayed_val_bpb']} (difference {out['val_bpb_difference']}); "
                   f"max step-loss difference {out['max_loss_difference']} over "
                   f"{out['compared_steps']} logged steps; "
                   f"{'identical' if out['identical'] else 'NOT identical'}")
    if not out["identical"]:
        ctx.exit(1)


def register(cli: click.Group) -> None:
    """Attach the audit commands."""
    for command in (audit_cmd, report_group, export_cmd, reproduce_cmd):
        cli.add_command(command)
    _ = (sys, LedgerError)
