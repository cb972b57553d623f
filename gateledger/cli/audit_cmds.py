"""Audit commands: `audit`, `report costs|effects|html`, `export`, `reproduce`.

Each parses its options, calls one `gateledger` function and formats what it returns; exit
1 whenever a check fails.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

import gateledger as gl
from audit.causes import short_ids
from gateledger.cli.context import (
    emit,
    host_option,
    open_store,
    reviewer_options,
    store_root,
    tsa_roots_option,
)
from gateledger.cli.tables import gpu_hours_text, text_table

if TYPE_CHECKING:  # annotations only: `ledger --help` imports no audit machinery
    from audit.attempt_checks import AttemptSummary
    from audit.gates import StageAudit
    from audit.rederive import AuditResult
    from ledger.binding_level import BindingLevel

ALLOW_UNDECIDED = click.option(
    "--allow-undecided",
    is_flag=True,
    help="A campaign in progress: plans frozen but not yet decided are not problems.",
)


@click.command("audit")
@click.option(
    "--bundle",
    type=click.Path(dir_okay=False),
    default=None,
    help="Audit a reviewer bundle (from `ledger export`) instead of the store.",
)
@reviewer_options
@tsa_roots_option
@click.option(
    "--reproduce",
    "reproduce_n",
    type=click.IntRange(1),
    default=None,
    metavar="N",
    help="Also replay N runs drawn by --seed (stratified by stage and status, "
    "diverged and crashed runs first) and compare each with its record.",
)
@click.option(
    "--seed",
    "draw_seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of the --reproduce draw: choose your own, so the operator cannot "
    "know which runs will be replayed.",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(0),
    default=None,
    help="Largest step-loss or val_bpb difference accepted for a replay on a GPU "
    "(default 0.01); runs recorded and replayed on CPU must match bit for bit.",
)
@click.option(
    "--data",
    "data_path",
    type=click.Path(exists=True),
    default=None,
    help="Training data for --reproduce (default: data/corpus); it must hash to "
    "the data the runs record.",
)
@click.option(
    "--device",
    default="cpu",
    type=click.Choice(["cpu", "cuda", "auto"]),
    show_default=True,
    help="Device for --reproduce replays.",
)
@ALLOW_UNDECIDED
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def audit_cmd(
    ctx,
    bundle,
    trust_keys,
    trust_files,
    anchor_files,
    tsa_root_files,
    reproduce_n,
    draw_seed,
    tolerance,
    data_path,
    device,
    allow_undecided,
    as_json,
):
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
    Each log's effective seed must follow from its manifest, and each stage says how its
    seeds are bound. Every attempt must end on record within the plan's max_attempts. A
    plan frozen but never decided is a problem ("frozen, N of M runs recorded, never
    decided") unless --allow-undecided (a campaign in progress). --reproduce N re-trains N
    reviewer-drawn runs and compares them with their records (a mismatch is a problem).

    \b
    Examples:
      ledger audit
      ledger audit --allow-undecided                      # while the campaign still runs
      ledger audit --trust 3f2a...e9 --anchor anchor-2026-06-01.json
      ledger audit --bundle evidence.tar.gz --trust-file lab-keys.json --json
      ledger audit --tsa-roots freetsa-root.pem
      ledger audit --reproduce 5 --seed 8271 --data data/corpus
    """
    request = None
    if reproduce_n is not None:
        request = gl.spot_check(
            reproduce_n, seed=draw_seed, tolerance=tolerance, data=data_path, device=device
        )
    reviewer = {
        "trust": trust_keys,
        "trust_files": trust_files,
        "anchors": anchor_files,
        "tsa_roots": tsa_root_files,
        "reproduce": request,
        "progress": not as_json,
        "allow_undecided": allow_undecided,
    }
    if bundle:
        result = gl.audit_bundle(bundle, host=host_option(ctx), **reviewer)
    else:
        result = gl.audit(store_root(ctx), host=host_option(ctx), **reviewer)
    if as_json:
        emit(result.to_dict(), True)
    else:
        _print_audit(result)
    if result.verdict != "clean":
        ctx.exit(1)


_MARKS = {"clean": "ok ", "undecided": "...", "problems": "BAD"}
DETAIL_WIDTH = 110  # a failed check's detail on a stage line; the problems below say it all


def _print_audit(result: AuditResult) -> None:
    out = result.to_dict()  # the costs, causes and replays as --json prints them
    said: set[str] = set()  # a seed binding's detail is the same for every stage: once
    for stage in result.stages:
        _print_stage(stage, said)
    if result.unplanned:
        click.echo(f"unplanned compute: {len(result.unplanned)} run(s) outside any manifest")
    if result.amendments:
        click.echo(f"amendments: {len(result.amendments)} manifest(s) amend an earlier freeze")
    for row in result.reproduction["drawn"] if result.reproduction is not None else []:
        click.echo(
            f"replayed {row['run'][:12]} ({row['stage']}, {row['status']}): "
            f"{row['verdict']}: {row['detail']}"
        )
    costs = result.costs.all
    click.echo(
        f"GPU-hours: {costs.training_gpu_hours:.4f} training, {costs.wall_gpu_hours:.4f} wall"
    )
    interrupted = result.costs.interrupted
    if interrupted:
        click.echo(
            f"interrupted attempts (apart): {interrupted.n_runs}, "
            f"{interrupted.training_gpu_hours:.4f} training, "
            f"{interrupted.wall_gpu_hours:.4f} wall GPU-hours"
        )
    for caveat in result.caveats:
        click.echo(f"caveat: {caveat.text}")
    for note in result.notes:
        click.echo(f"note: {note}")
    for line in cause_lines(out["causes"]):
        click.echo(line, err=True)
    if result.verdict == "empty":
        click.echo("audit: empty: nothing was frozen or run, so nothing is proved (exit 1)")
        return
    weak = " with status-only logs" if result.binding.weakest == "status-only" else ""
    click.echo(
        f"audit: {result.verdict}{weak} ({len(result.problems)} problem(s), "
        f"{result.objects} objects, {result.anchors} anchor(s))"
    )


def _attempts_line(attempts: AttemptSummary | None) -> str:
    """How a stage's attempts ended, when any cell needed more than one or any is open."""
    if attempts is None or not (attempts.retried or attempts.open):
        return ""
    bound = attempts.max
    text = (
        f"{attempts.started} started, {attempts.recorded} recorded, "
        f"{attempts.interrupted} interrupted, {attempts.open} without an outcome "
        f"(at most {bound if bound is not None else 'unbounded'} per cell)"
    )
    retried = attempts.retried
    shown = ", ".join(
        f"{r.name or r.run[:12]} seed {r.run.split('/')[1]}: {r.attempts}" for r in retried[:3]
    )
    more = f" and {len(retried) - 3} more" if len(retried) > 3 else ""
    return text + (f"; retried: {shown}{more}" if shown else "")


def _print_stage(stage: StageAudit, said: set[str]) -> None:
    mark = _MARKS[stage.verdict]
    extra = " (superseded by an amendment)" if stage.superseded else ""
    sim = f", {stage.sim_runs} simulated" if stage.sim_runs else ""
    decision = (stage.decision or "")[:12] or "none (undecided)"
    missing = (
        f", decided with {stage.missing_runs} declared run(s) missing"
        if stage.decision and stage.missing_runs
        else ""
    )
    click.echo(
        f"[{mark}] {stage.campaign}/{stage.stage}: manifest "
        f"{stage.manifest[:12]}, {stage.runs} runs{sim}, decision "
        f"{decision}{missing}{extra}"
    )
    _say_binding(stage.binding)
    witness = _witness_line(stage.witness) if stage.witness else ""
    if witness:
        click.echo(f"      witnessed: {witness}")
    seeds = stage.seeds
    if seeds is not None:
        text = seeds.detail
        detail = f": {text}" if text and text not in said else " (as above)" if text else ""
        said.add(text)
        click.echo(f"      seeds {seeds.binding} ({seeds.rule}){detail}")
    attempts = _attempts_line(stage.attempts)
    if attempts:
        click.echo(f"      attempts: {attempts}")
    for check in stage.checks:
        if not check.ok:
            detail = short_ids(check.detail)
            if len(detail) > DETAIL_WIDTH:
                detail = detail[: DETAIL_WIDTH - 3] + "..."
            click.echo(f"      failed: {check.name}: {detail}".rstrip(": "))
    for failed in stage.failed_runs[:5]:
        reason = f": {failed['reason']}" if failed["reason"] else ""
        click.echo(f"      {failed['status']}: {failed['cell']} (run {failed['run'][:12]}){reason}")
    if len(stage.failed_runs) > 5:
        click.echo(f"      ... and {len(stage.failed_runs) - 5} more run(s) not ok")


def cause_lines(causes: list[dict]) -> list[str]:
    """Each root cause on a `problem:` line, what follows from it indented under it; ids
    cut to 12 hex (`--json` keeps them whole)."""
    lines = []
    for cause in causes:
        lines.append(f"problem: {_problem_text(cause['problem'])}")
        lines += [f"  also: {_problem_text(p)}" for p in cause["related"]]
        lines += [f"  so: {_problem_text(p)}" for p in cause["consequences"]]
    return lines


def _problem_text(problem: dict) -> str:
    """`OBJECT: message`, ids cut to 12 hex."""
    return short_ids(f"{problem['object']}: {problem['message']}")


def _say_binding(binding: BindingLevel) -> None:
    """What a foreign runner's logs bind, under the stage's line (the builtin's: all of it)."""
    if binding.level != "builtin":
        click.echo(
            f"      logs bound: {binding.level} ({', '.join(binding.bound)}; "
            f"not bound: {', '.join(binding.unbound)})"
        )


def _witness_line(witness: dict[str, Any]) -> str:
    """`frozen no later than T1 (TSA), decided no later than T2` for one stage, or ''
    (`witness`: as `audit.witness.stage_witness` gives it)."""
    parts = []
    for word in ("frozen", "decided"):
        bound = witness[word]
        if bound:
            via = "" if bound["via"] == "its own token" else f", via {bound['via'][:19]}"
            parts.append(f"{word} no later than {bound['no_later_than']} ({bound['tsa']}{via})")
    if parts and witness["checked_against"].startswith("nothing"):
        parts.append("NOT checked: give --tsa-roots")
    return ", ".join(parts)


@click.group("report")
def report_group():
    """Reports a reviewer or a budget holder can read: costs, effects, html.

    Each audits first and reports what the audit re-derived. With --bundle FILE, the
    report is of a reviewer bundle (`ledger export`), audited in a scratch folder under
    the keys and anchors you name (--trust, --trust-file, --anchor): no store needed.

    \b
    Examples:
      ledger report costs
      ledger report effects --json
      ledger report html --campaign campaigns/demo.toml --out report --metrics metrics.json
      ledger report html --bundle evidence.tar.gz --trust-file lab-keys.json --anchor anchor.json
    """


def report_options(func):
    """`--campaign`, `--bundle` and the reviewer's trust roots, shared by the report views."""
    func = reviewer_options(func)
    func = click.option(
        "--bundle",
        type=click.Path(dir_okay=False),
        default=None,
        help="Report on a reviewer bundle (from `ledger export`) instead of the store, "
        "checked against --trust/--trust-file keys and --anchor files.",
    )(func)
    func = click.option(
        "--campaign",
        "campaign_path",
        default=None,
        envvar="LEDGER_CAMPAIGN",
        type=click.Path(dir_okay=False),
        help="Campaign file (for factor names).",
    )(func)
    return func


def _report_data(ctx: click.Context, options: dict[str, Any]) -> Any:
    return gl.report(**_sources(ctx, options))


def _sources(ctx: click.Context, options: dict[str, Any]) -> dict[str, Any]:
    """What `gl.report` and `gl.write_html` take from the shared options: the store (none
    with --bundle, so a reviewer's empty folder works), campaign, bundle, trust roots."""
    bundle = options["bundle"]
    return {
        "store": None if bundle else open_store(ctx),
        "campaign": options["campaign_path"],
        "bundle": bundle,
        "host": host_option(ctx),
        "trust": options["trust_keys"],
        "trust_files": options["trust_files"],
        "anchors": options["anchor_files"],
    }


@report_group.command("costs")
@report_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def report_costs(ctx, as_json, **options):
    """GPU-hours of the protocol by stage (in protocol order), host, status and condition
    (by name); the campaign's total beside what it would have cost had a gate continued
    every candidate (the "saved" of the headline); the counterfactuals at every gate (next
    and final stage); baselines and unplanned compute apart. With --json: numbers only,
    the sentences under `text`.

    \b
    Examples:
      ledger report costs
      ledger --store preview.ledger report costs --campaign campaigns/paper.toml
      ledger report costs --json | jq .campaign.saved_gpu_hours
      ledger report costs --bundle evidence.tar.gz --trust-file lab-keys.json
    """
    out = gl.cost_summary(_report_data(ctx, options))
    if as_json:
        emit(out.model_dump(mode="json"), True)
        return
    for line in cost_lines(out):
        click.echo(line)


def _part_lines(title: str, column: str, rows: list[list[str]]) -> list[str]:
    lines = [f"{title}:"]
    lines += [
        f"  {line}"
        for line in text_table(
            [column, "runs", "training GPU-h", "wall GPU-h"], rows, right={1, 2, 3}
        )
    ]
    return lines


def _rows(parts: dict[str, Any]) -> list[list[str]]:
    return [
        [
            str(k),
            str(p.n_runs),
            gpu_hours_text(p.training_gpu_hours),
            gpu_hours_text(p.wall_gpu_hours),
        ]
        for k, p in parts.items()
    ]


def cost_lines(out: Any) -> list[str]:
    """`ledger report costs` as text: the totals, saved, the campaign block, the tables."""
    hours = gpu_hours_text
    costs = out.costs
    lines = [
        f"protocol ({out.campaign_name}): {hours(costs.training_gpu_hours)} training "
        f"GPU-hours, {hours(costs.wall_gpu_hours)} wall, {costs.n_runs} runs"
    ]
    if out.text.saved:
        lines.append(out.text.saved)
    if out.counterfactuals:
        lines.append("campaign (training GPU-hours):")
        rows = [["the protocol (spent)", "-", hours(out.campaign.protocol_gpu_hours), "-"]]
        rows += [
            [
                f"every candidate of {cf.gate} continued",
                str(cf.n_candidates),
                hours(cf.campaign_if_all),
                hours(cf.saved_gpu_hours),
            ]
            for cf in out.counterfactuals
        ]
        lines += [
            f"  {line}"
            for line in text_table(
                ["campaign", "candidates", "GPU-h", "saved"], rows, right={1, 2, 3}
            )
        ]
    else:
        lines.append(out.text.campaign)
    lines += _part_lines("by stage (protocol order)", "stage", _rows(costs.by_stage))
    lines += _part_lines("by host", "host", _rows(costs.by_host))
    lines += _part_lines("by status", "status", _rows(costs.by_status))
    lines += _part_lines(
        "by condition (by name)",
        "condition",
        [
            [
                f"{c.name} ({cid[:8]})",
                str(c.n_runs),
                hours(c.training_gpu_hours),
                hours(c.wall_gpu_hours),
            ]
            for cid, c in costs.by_condition.items()
        ],
    )
    for part, title in (
        (out.baseline_costs, "baselines"),
        (out.unplanned_costs, "unplanned compute"),
        (out.interrupted_costs, "interrupted attempts"),
    ):
        if part is not None:
            lines.append(
                f"{title} (not in the totals above): {hours(part.training_gpu_hours)} training "
                f"GPU-hours over {part.n_runs} runs"
            )
            lines += _part_lines("by stage", "stage", _rows(part.by_stage))
    if out.counterfactuals:
        lines.append("counterfactuals at each gate (nominal GPU-hours):")
        rows = [
            [
                cf.gate,
                str(cf.n_candidates),
                hours(cf.next_planned),
                hours(cf.next_if_all),
                hours(cf.final_planned),
                hours(cf.final_if_all),
            ]
            for cf in out.counterfactuals
        ]
        lines += [
            f"  {line}"
            for line in text_table(
                [
                    "gate",
                    "candidates",
                    "next: planned",
                    "next: all",
                    "final: planned",
                    "final: all",
                ],
                rows,
                right={1, 2, 3, 4, 5},
            )
        ]
        lines += [f"  {sentence}" for sentence in out.text.counterfactuals]
    checks = list(costs.checks) + list(out.all_costs.checks)
    bad = [c.name for c in checks if not c.ok]
    lines.append(
        "sum checks: "
        + (
            f"FAILED: {', '.join(bad)}"
            if bad
            else f"all {len(checks)} ok (parts add up to the totals)"
        )
    )
    return lines


@report_group.command("effects")
@report_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def report_effects(ctx, as_json, **options):
    """Effects by budget (BH q-values within each budget), variance decomposition, rank
    stability between gates, and the flags a reviewer needs, from the decisions.

    \b
    Examples:
      ledger report effects
      ledger report effects --json | jq '.flags[]'
      ledger report effects --bundle evidence.tar.gz --trust-file lab-keys.json
    """
    out = gl.effect_summary(_report_data(ctx, options))
    if as_json:
        emit(out.model_dump(mode="json", by_alias=True), True)
        return
    _print_effects(out)


def _print_effects(out: Any) -> None:
    for row in out.stages:
        estimate = row.effects
        post = (
            ", post-selection (descriptive, no q)" if estimate and estimate.post_selection else ""
        )
        what = f"{estimate.method}{post}" if estimate else f"no effects ({row.effects_note})"
        click.echo(f"{row.stage} ({row.budget_s:g} s): {what}")
        for effect in estimate.effects if estimate else []:
            mark = "*" if effect.term in row.significant else " "
            interval = (
                f"[{effect.ci_low:+.4f}, {effect.ci_high:+.4f}]"
                if effect.ci_low is not None and effect.ci_high is not None
                else "[-]"
            )
            aliases = f"  = {' = '.join(effect.aliases)}" if effect.aliases else ""
            q = "None" if effect.q is None else f"{effect.q:.4g}"
            click.echo(
                f"  {mark} {effect.term:<6} {effect.effect:>+10.4f} {interval}  q={q}{aliases}"
            )
        for term in estimate.dropped if estimate else []:
            click.echo(f"    dropped {term}: {estimate.dropped_reasons.get(term, '')}")
    campaign_var = out.variance.campaign if out.variance else None
    if campaign_var:
        shares = ", ".join(f"{k} {v:.3f}" for k, v in campaign_var.shares.items() if v is not None)
        click.echo(f"variance shares over {campaign_var.n} ok runs: {shares}")
    for rank in out.rank_stability:
        rho = "n/a" if rank.rho is None else f"{rank.rho:.3f}"
        click.echo(
            f"rank stability {rank.from_stage} -> {rank.to_stage}: rho {rho} over {rank.n}"
            + (f" ({rank.flag})" if rank.flag else "")
        )
    for flag in out.flags:
        click.echo(f"flag {flag.stage}: {flag.kind}: {flag.detail}")


@report_group.command("html")
@report_options
@click.option(
    "--out",
    "out_dir",
    default="report",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for report.html, report.md, plots.",
)
@click.option(
    "--metrics",
    "metrics_path",
    default=None,
    type=click.Path(dir_okay=False),
    help="Also write the headline numbers as JSON (for `dvc metrics show`).",
)
@click.option(
    "--plots",
    "plots_dir",
    default=None,
    type=click.Path(file_okay=False),
    help="Also write the figures as PNG and their numbers as CSV (for `dvc plots show`).",
)
@click.option("--json", "as_json", is_flag=True, help="Print written paths and headline as JSON.")
@click.pass_context
def report_html(ctx, out_dir, metrics_path, plots_dir, as_json, **options):
    """Write a self-contained HTML page (and Markdown) a reviewer can read without the tool.

    The page opens with the audit verdict and what it rests on (simulated runs, demo key,
    anchors, trust, and which keys and anchors it was checked against), a one-paragraph
    verdict on what was decided and how sure it is, and the review flags; then
    provenance, each gate's frozen rule and outcome, main effects by budget, condition
    means with intervals, rank stability, costs (baselines apart) and counterfactuals,
    and the protocol against its baselines when there are any.

    \b
    Examples:
      ledger report html --campaign campaigns/demo.toml --out report
      ledger report html --out report --metrics metrics.json --plots plots   # for DVC
      ledger report html --bundle evidence.tar.gz --trust-file lab-keys.json --anchor anchor.json
    """
    out, data = gl.write_html(
        out=out_dir, metrics=metrics_path, plots=plots_dir, **_sources(ctx, options)
    )
    emit(
        out,
        as_json,
        f"wrote {out['paths']['html']} and {out['paths']['md']} (audit: {data.audit.verdict})",
    )


@click.command("export")
@click.argument("bundle", type=click.Path(dir_okay=False), required=False)
@click.option(
    "--campaign",
    "campaigns",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False),
    help="Campaign file(s) to include (repeatable).",
)
@click.option(
    "--in-toto",
    "in_toto_dir",
    type=click.Path(file_okay=False),
    default=None,
    help="Also (or only) write every manifest and decision as an in-toto Statement "
    "v1 in a DSSE envelope into this folder, signed with --key.",
)
@click.option(
    "--key",
    "key_name",
    default=None,
    help="Key that signed the manifests and decisions (for --in-toto; default: "
    "LEDGER_KEY or the only key).",
)
@ALLOW_UNDECIDED
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def export_cmd(ctx, bundle, campaigns, in_toto_dir, key_name, allow_undecided, as_json):
    """Write a reviewer bundle: objects, journals, public keys, campaigns, versions.

    A reviewer runs `ledger audit --bundle BUNDLE` in an empty directory. With --in-toto
    DIR, every manifest and decision your key signed is also written as an in-toto
    attestation (DSSE envelope; subject: the object id, predicate: its body) that generic
    supply-chain verifiers check with the exported public key; refused (exit 1) while
    `ledger audit` finds a problem. A host part that is a symbolic link is refused: the
    store does not read it, so no bundle may silently leave it out.

    \b
    Examples:
      ledger export evidence.tar.gz --campaign campaigns/demo.toml
      ledger keys --export lab-keys.json     # the keys the reviewer is told to trust
      ledger audit --bundle evidence.tar.gz --trust-file lab-keys.json   # on their side
      ledger export --in-toto attestations/ --key alice
    """
    out = gl.export(
        open_store(ctx),
        bundle,
        campaigns=campaigns,
        in_toto=in_toto_dir,
        key=key_name,
        allow_undecided=allow_undecided,
    )
    attested = out.in_toto
    if out.bundle is None and attested is not None:
        emit(
            out,
            as_json,
            f"wrote {len(attested.written)} in-toto attestation(s) to "
            f"{in_toto_dir} ({len(attested.skipped)} skipped), public key "
            f"{attested.public_key}",
        )
        return
    text = f"wrote {out.bundle}"
    if attested is not None:
        text += f" and {len(attested.written)} in-toto attestation(s) to {in_toto_dir}"
    emit(out, as_json, text)


@click.command("reproduce")
@click.argument("run_id", metavar="RUN")
@click.option(
    "--data",
    type=click.Path(exists=True),
    default=None,
    help="Training data (default: data/corpus).",
)
@click.option(
    "--device", default="cpu", type=click.Choice(["cpu", "cuda", "auto"]), show_default=True
)
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
    out = gl.reproduce(open_store(ctx), run_id, data=data, device=device)
    if as_json:
        emit(out, True)
    else:
        click.echo(
            f"replayed {out['steps']} steps: recorded val_bpb {out['recorded_val_bpb']}, "
            f"replayed {out['replayed_val_bpb']} (difference {out['val_bpb_difference']}); "
            f"max step-loss difference {out['max_loss_difference']} over "
            f"{out['compared_steps']} logged steps; "
            f"{'identical' if out['identical'] else 'NOT identical'}"
        )
    if not out["identical"]:
        ctx.exit(1)


def register(cli: click.Group) -> None:
    """Attach the audit commands."""
    for command in (audit_cmd, report_group, export_cmd, reproduce_cmd):
        cli.add_command(command)
