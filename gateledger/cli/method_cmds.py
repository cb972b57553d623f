"""Method commands: `design`, `run`, `decide`, `effects`, `campaign`, `baseline`.

Each parses its options, calls one `gateledger` function and formats what it returns
(`ledger freeze STAGE` is in `core_cmds`, beside `ledger freeze --plan`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

import gateledger as gl
from gateledger.cli.context import (
    emit,
    global_options,
    host_option,
    open_store,
    say_stamps,
    tsa_options,
)
from gateledger.cli.tables import run_cell, text_table
from ledger.keys import DEMO_KEY_NAME

if TYPE_CHECKING:  # the result types, for the checker only (the method loads on first use)
    from gateledger.method import DesignSummary

CAMPAIGN_OPTION = click.option(
    "--campaign",
    "campaign_path",
    default="campaign.toml",
    show_default=True,
    envvar="LEDGER_CAMPAIGN",
    type=click.Path(dir_okay=False),
    help="Campaign TOML file. Env: LEDGER_CAMPAIGN.",
)


@click.command("design")
@click.argument("spec", required=False)
@click.argument("stage", required=False)
@CAMPAIGN_OPTION
@click.option("--generators", "-g", multiple=True, help="Generator like E=ABCD (repeatable).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def design_cmd(spec, stage, campaign_path, generators, as_json):
    """Show a two-level design: runs, generators, defining relation, resolution, aliases.

    \b
    Examples:
      ledger design "2^(5-1)"                 # minimum-aberration half fraction of 5 factors
      ledger design "2^(7-4)" -g D=AB -g E=AC -g F=BC -g G=ABC
      ledger design --campaign demo.toml screen   # the design a campaign stage will freeze
    """
    if spec and not spec.startswith("2^") and stage is None:
        spec, stage = None, spec
    out = gl.design(
        spec,
        campaign=campaign_path if stage is not None else None,
        stage=stage,
        generators=generators,
    )
    if as_json:
        emit(out, True)
    else:
        _say_design(out)


def _say_design(design: DesignSummary) -> None:
    """Size and resolution, generators, defining relation, alias chains, the runs' signs."""
    click.echo(
        f"2^({design.k}-{design.p}) design, {len(design.runs)} runs, "
        f"resolution {design.resolution_roman}"
    )
    if design.generators:
        click.echo("generators:        " + ", ".join(design.generators))
        click.echo("defining relation: I = " + " = ".join(design.defining_relation))
    if design.aliases:
        click.echo("aliases:")
        for chain in design.aliases:
            click.echo("  " + " = ".join(chain))
    letters = sorted(design.runs[0]) if design.runs else []
    click.echo("runs (standard order):")
    click.echo("  " + "name".ljust(10) + " ".join(f"{x:>3}" for x in letters))
    for run, name in zip(design.runs, design.names, strict=True):
        signs = " ".join(f"{'+' if run[x] > 0 else '-':>3}" for x in letters)
        click.echo("  " + name.ljust(10) + signs)


@click.command("run")
@click.argument("stage")
@CAMPAIGN_OPTION
@click.option(
    "--executor",
    type=click.Choice(["local", "sim", "ray"]),
    default="local",
    show_default=True,
    help="local: runner subprocesses; sim: synthetic surface (instant); ray: a Ray cluster.",
)
@click.option(
    "--jobs",
    "-j",
    default=1,
    show_default=True,
    type=click.IntRange(1, 256),
    help="Parallel runs (local: one accelerator or CPU share per slot).",
)
@click.option(
    "--host",
    "run_host",
    default=None,
    help="Run only this host block of the manifest (and write under this host).",
)
@click.option(
    "--device",
    default="auto",
    type=click.Choice(["auto", "cpu", "cuda"]),
    show_default=True,
    help="Device passed to the builtin runner.",
)
@click.option(
    "--data",
    type=click.Path(exists=True),
    default=None,
    help="Training text file/folder for the builtin runner (default: data/corpus).",
)
@click.option(
    "--gpus",
    default=None,
    help="Comma-separated accelerator ids, one per slot (sets CUDA_VISIBLE_DEVICES).",
)
@click.option(
    "--grace",
    type=float,
    default=None,
    help="Seconds past the budget before a run is killed as timeout "
    "(default 120 + 25% of the budget).",
)
@click.option("--address", default=None, help="Ray cluster address (ray executor).")
@click.option("--limit", type=int, default=None, help="Run at most N of the remaining runs.")
@click.option(
    "--key",
    "key_name",
    default=None,
    envvar="LEDGER_KEY",
    help="Key that signs the run records (default: the store's signing key). Env: LEDGER_KEY.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def run_cmd(
    ctx,
    stage,
    campaign_path,
    executor,
    jobs,
    run_host,
    device,
    data,
    gpus,
    grace,
    address,
    limit,
    key_name,
    as_json,
):
    """Execute the remaining declared runs of a frozen STAGE and record each one, signed.

    Resumable: runs already recorded are skipped, never recorded twice. The start of each
    run is journaled before it launches; crashed, diverged and timed-out runs are recorded
    with their status and count toward GPU-hours. Every attempt ends on record: a log that
    ingest refuses, Ctrl-C, or a `run` that was killed (closed by the next `run`) is an
    interrupted attempt, its partial log kept; no run is attempted more often than the
    stage's frozen `max_attempts` (default 1).

    \b
    Examples:
      ledger run screen --executor sim                  # preview with the synthetic surface
      ledger run screen --executor local --jobs 2       # real training, two at a time
      ledger run gate --host a100 --gpus 0,1 --jobs 2   # this machine's host block
    """
    options = global_options(ctx)
    if run_host and not options.host:
        options.host = run_host
    report = gl.run(
        open_store(ctx),
        campaign_path,
        stage,
        executor,
        jobs=jobs,
        host=run_host,
        device=device,
        data=data,
        gpus=gpus,
        grace=grace,
        address=address,
        limit=limit,
        progress=not as_json,
        key=key_name,
    )
    emit(
        report.to_dict(),
        as_json,
        f"{stage}: executed {report.executed} ({_statuses(report)}); "
        f"{report.already} were already recorded of {report.declared} declared; "
        f"{report.training_gpu_hours:.4f} training GPU-hours this call",
    )
    if not as_json:
        _print_run_problems(report)
    if report.refused or report.all_crashed or report.exhausted:
        ctx.exit(1)


def _statuses(report) -> str:
    """`4 ok, 1 crashed`, plus the results ingest refused (run, but not recorded)."""
    parts = [f"{n} {s}" for s, n in sorted(report.statuses.items())]
    if report.refused:
        parts.append(f"{len(report.refused)} more run but refused, not recorded")
    return ", ".join(parts) or "nothing new"


def _print_run_problems(report) -> None:
    """Why runs did not finish, and which results were refused (not recorded: re-runnable)."""
    for failure in report.failures[:10]:
        reason = f": {failure.reason}" if failure.reason else ""
        click.echo(f"  {failure.status}: {run_cell(failure.run, failure.name)}{reason}")
    if len(report.failures) > 10:
        click.echo(f"  ... and {len(report.failures) - 10} more run(s) not ok")
    for refused in report.refused:
        click.echo(
            f"refused, not recorded (an interrupted attempt, its log kept): "
            f"{run_cell(refused.run, refused.name)}: {refused.reason}",
            err=True,
        )
    if report.closed:
        click.echo(
            f"closed {len(report.closed)} attempt(s) a killed `ledger run` left open "
            f"(interrupted, partial logs kept)",
            err=True,
        )
    for gone in report.exhausted:
        click.echo(
            f"not started: {run_cell(gone.run, gone.name)} has had {gone.attempts} attempt(s), "
            f"the plan allows {gone.max} (decide with --allow-missing, or freeze the stage with a "
            f"higher max_attempts)",
            err=True,
        )
    if report.busy:
        click.echo(f"skipped {len(report.busy)} run(s) another `ledger run` holds", err=True)
    if report.all_crashed:
        crashed = report.statuses["crashed"]
        what = (
            "was refused (not recorded)"
            if not crashed
            else "crashed"
            if not report.refused
            else "crashed or was refused"
        )
        click.echo(
            f"error: every run this call launched {what}; `ledger try STAGE` tries the "
            f"runner without recording anything",
            err=True,
        )


@click.command("decide")
@click.argument("stage")
@CAMPAIGN_OPTION
@click.option(
    "--key",
    "key_name",
    default=None,
    envvar="LEDGER_KEY",
    help="Signing key name (default: the only key). Env: LEDGER_KEY.",
)
@click.option(
    "--allow-missing",
    is_flag=True,
    help="Decide although some declared runs are not recorded (said in the decision).",
)
@tsa_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def decide_cmd(ctx, stage, campaign_path, key_name, allow_missing, tsa_urls, no_tsa, as_json):
    """Apply STAGE's frozen rule to its recorded runs and write a signed decision.

    The decision cites the manifest and every run record used, carries the statistics and a
    readable trace, and names the promoted conditions the next stage will freeze. A second
    decide of the same stage is refused: decisions are final. With --tsa URL (or the
    store's `ledger settings --tsa`) it is timestamped: decided no later than the TSA's time.
    The stage's run records and logs in this host's part then move into one pack file
    (`ledger pack`), read faster by an audit and re-hashed like any object.

    
    Examples:
      ledger decide screen --campaign campaigns/demo.toml
      ledger decide gate --allow-missing --key alice     # two runs are lost for good
      ledger decide gate --json | jq .promoted
      ledger decide gate --tsa https://freetsa.org/tsr
    """
    decided = gl.decide(
        open_store(ctx),
        campaign_path,
        stage,
        key=key_name,
        allow_missing=allow_missing,
        tsa=list(tsa_urls),
        no_tsa=no_tsa,
    )
    body = decided.body
    if as_json:
        emit({"decision": decided.id, **body.to_dict(), "timestamps": decided.timestamps}, True)
        say_stamps(decided.timestamps, decided.id, "decision", True)
        return
    click.echo(f"decided {stage}: decision {decided.id}")
    for line in body.trace:
        click.echo(f"  {line}")
    for verdict in body.verdicts:
        mark = "yes" if verdict.passed else "no"
        click.echo(f"  check {verdict.name}: {mark} ({verdict.detail})")
    names = [body.name(c) for c in body.promoted]
    click.echo(f"promoted: {', '.join(names) or 'none'}")
    say_stamps(decided.timestamps, decided.id, "decision", False)


@click.command("effects")
@click.argument("csv_path", metavar="CSV", type=click.Path(dir_okay=False))
@click.option("--response", "-y", required=True, help="Response column (e.g. val_bpb).")
@click.option(
    "--terms", default="main", show_default=True, help="main, all, or a list like A,B,AB."
)
@click.option("--block", default=None, help="Optional blocking column (e.g. host).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def effects_cmd(csv_path, response, terms, block, as_json):
    """Estimate factorial effects from any CSV of -1/+1 coded factor columns.

    OLS (effect = 2 x coefficient) with BH q-values and 95% t intervals; Lenth's PSE/ME/SME
    when the design is saturated (no residual degrees of freedom). Each effect lists its
    alias chain; terms the rows cannot separate are listed as dropped, with the reason.

    \b
    Example:
      ledger effects screen.csv --response val_bpb --terms all --json
    """
    result = gl.effects(csv_path, response, terms=terms, block=block)
    if as_json:
        emit(result, True)
        return
    out = result.to_dict()  # the numbers as --json prints them (NaN and infinities: None)
    method = out["method"]
    click.echo(
        f"method: {method}, residual df: {out['df_resid']}, t df: {_fmt(out['t_df'])}"
        + (f", block: {out['block']}" if out["block"] else "")
    )
    if method == "lenth":
        click.echo(f"Lenth PSE {out['pse']:.4g}, ME {out['me']:.4g}, SME {out['sme']:.4g}")
    rows = []
    for effect in out["effects"]:
        interval = (
            "[" + ", ".join(f"{x:.4g}" for x in (effect["ci_low"], effect["ci_high"])) + "]"
            if effect["ci_low"] is not None
            else "-"
        )
        rows.append(
            [
                effect["term"],
                *(_fmt(effect[k]) for k in ("effect", "se", "t", "p", "q")),
                interval,
                " = ".join(effect["aliases"]) or "-",
            ]
        )
    for line in text_table(
        ["term", "effect", "se", "t", "p", "q", "95% interval", "aliases"],
        rows,
        right={1, 2, 3, 4, 5},
    ):
        click.echo(line)
    for term in out["dropped"]:
        click.echo(f"dropped {term}: {out['dropped_reasons'][term]}")  # each dropped says why
    for note in out["notes"]:
        click.echo(f"note: {note}")


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, int | float) else "-"


DEMO_KEY = DEMO_KEY_NAME


def _demo_key(store):
    """The demo signing key, made on first use (said on stderr); the store's signer from
    now on unless it has one."""
    demo = gl.demo_key(store)
    key, made = demo.key, demo.made
    if made:
        click.echo(
            f"making the demo signing key {DEMO_KEY} (unencrypted; for the demo only)", err=True
        )
    return key


@click.command("campaign")
@CAMPAIGN_OPTION
@click.option(
    "--executor",
    type=click.Choice(["local", "sim", "ray"]),
    default="local",
    show_default=True,
    help="Where runs happen (see `ledger run --help`).",
)
@click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(1, 256))
@click.option(
    "--device", default="auto", type=click.Choice(["auto", "cpu", "cuda"]), show_default=True
)
@click.option(
    "--data",
    type=click.Path(exists=True),
    default=None,
    help="Training data for the builtin runner (default: the campaign's `data`).",
)
@click.option("--gpus", default=None, help="Comma-separated accelerator ids, one per slot.")
@click.option("--grace", type=float, default=None, help="Seconds past budget before timeout.")
@click.option("--address", default=None, help="Ray cluster address (ray executor).")
@click.option("--until", default=None, help="Stop after this stage.")
@click.option(
    "--key",
    "key_name",
    default=None,
    envvar="LEDGER_KEY",
    help="Signing key name (default: the only key). Env: LEDGER_KEY.",
)
@click.option(
    "--demo-key",
    is_flag=True,
    help=f"Sign with the demo key {DEMO_KEY} (made on first use). Demo only.",
)
@tsa_options
@click.option(
    "--schema",
    "print_schema",
    is_flag=True,
    help="Print the JSON Schema of campaign files (for editors: Even Better TOML, taplo) "
    "and do nothing else.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def campaign_cmd(
    ctx,
    campaign_path,
    executor,
    jobs,
    device,
    data,
    gpus,
    grace,
    address,
    until,
    key_name,
    demo_key,
    tsa_urls,
    no_tsa,
    print_schema,
    as_json,
):
    """Walk a whole campaign: freeze, run and decide each stage in order (resumable).

    Exactly what typing `ledger freeze`, `ledger run` and `ledger decide` stage after stage
    would record; an interrupted walk picks up where it stopped. The file's keys, their
    types, defaults and meaning: docs/campaign.md, or `--schema` for the JSON Schema.

    \b
    Examples:
      ledger campaign --campaign campaigns/paper.toml --executor sim   # preview in seconds
      ledger campaign --campaign campaigns/demo.toml --jobs 2 --demo-key
      ledger campaign --schema > campaign.schema.json   # then in campaign.toml, line 1:
                                                        #:schema ./campaign.schema.json
    """
    if print_schema:
        emit(gl.campaign_schema(), True)
        return
    store = open_store(ctx)
    campaign = gl.load_campaign(campaign_path)
    if until is not None:
        campaign.stage(until)  # an unknown stage is an error before any key or run
    key = _demo_key(store) if demo_key else key_name
    say = (lambda _line: None) if as_json else (lambda line: click.echo(line, err=True))
    walked = gl.walk(
        store,
        campaign,
        key=key,
        executor=executor,
        until=until,
        host=host_option(ctx),
        tsa=list(tsa_urls),
        no_tsa=no_tsa,
        progress=not as_json,
        say=say,
        on_stamps=lambda found, oid, kind: say_stamps(found, oid, kind, True),
        jobs=jobs,
        device=device,
        data=data,
        gpus=gpus,
        grace=grace,
        address=address,
    )
    stamps, steps = walked.stamps, walked.log.steps
    urls = bool(stamps) or bool(gl.tsa_urls(store, tsa_urls, none=no_tsa))
    emit(
        {"campaign": campaign.name, "steps": steps, "timestamps": stamps},
        as_json,
        f"campaign {campaign.name}: {len(steps)} step(s) done"
        + (f", {sum(s.ok for s in stamps)} timestamp token(s)" if urls else "")
        + "; next: `ledger audit`",
    )


@click.group("baseline")
def baseline_group():
    """Baselines recorded through the same ledger (frozen, signed, audited like any gate).

    Their GPU-hours are kept apart from the protocol's costs; `ledger compare` sets the
    protocol and the baselines side by side.

    \b
    Examples:
      ledger --store preview.ledger baseline greedy --campaign campaigns/paper.toml \\
          --budget 10m --seeds 0,1 --hosts a100,l40s --executor sim
      ledger --store preview.ledger compare --campaign campaigns/paper.toml
    """


BASELINE_OPTIONS = [
    CAMPAIGN_OPTION,
    click.option("--budget", required=True, help="Budget per run, e.g. 10m."),
    click.option("--seeds", default="0", show_default=True, help="Comma-separated seeds."),
    click.option("--hosts", default="local", show_default=True, help="Comma-separated hosts."),
    click.option(
        "--executor", type=click.Choice(["local", "sim", "ray"]), default="local", show_default=True
    ),
    click.option("--jobs", "-j", default=1, show_default=True, type=click.IntRange(1, 256)),
    click.option("--device", default="auto", type=click.Choice(["auto", "cpu", "cuda"])),
    click.option("--data", type=click.Path(exists=True), default=None),
    click.option("--key", "key_name", default=None, envvar="LEDGER_KEY"),
    click.option("--json", "as_json", is_flag=True, help="Machine-readable output."),
]


def _baseline_options(func):
    for option in reversed(BASELINE_OPTIONS):
        func = option(func)
    return func


@baseline_group.command("greedy")
@_baseline_options
@click.option("--start", default=None, help="Named start condition (default: all factors low).")
@click.pass_context
def greedy_cmd(
    ctx, campaign_path, budget, seeds, hosts, executor, jobs, device, data, key_name, as_json, start
):
    """Greedy one-factor-at-a-time search: flip A, B, ... keeping each flip that helps.

    Record it in the store that holds the campaign it is compared with (`--store`).

    \b
    Examples:
      ledger --store preview.ledger baseline greedy --campaign campaigns/paper.toml \\
          --budget 10m --seeds 0,1 --hosts a100,l40s --executor sim
      ledger baseline greedy --campaign campaigns/demo.toml --budget 20s --seeds 0,1
    """
    say = (lambda _line: None) if as_json else (lambda line: click.echo(line, err=True))
    out = gl.greedy_search(
        open_store(ctx),
        campaign_path,
        budget=budget,
        seeds=seeds,
        hosts=hosts,
        key=key_name,
        executor=executor,
        start=start,
        host=host_option(ctx),
        data=data,
        progress=not as_json,
        say=say,
        jobs=jobs,
        device=device,
    )
    emit(
        out,
        as_json,
        f"greedy: best {out['best']} mean {out['best_mean']} after "
        f"{len(out['steps'])} steps, {out['training_gpu_hours']:.4g} GPU-hours "
        f"(kept apart from the protocol's costs; `ledger compare` sets them side "
        f"by side)",
    )


@baseline_group.command("random")
@_baseline_options
@click.option(
    "--match",
    "match",
    default="campaign",
    show_default=True,
    help="Match the GPU-hours of: 'campaign' (its executed stages) or a number.",
)
@click.option(
    "--seed",
    "sample_seed",
    default=0,
    show_default=True,
    type=int,
    help="Seed of the random sample (recorded in the manifest).",
)
@click.pass_context
def random_cmd(
    ctx,
    campaign_path,
    budget,
    seeds,
    hosts,
    executor,
    jobs,
    device,
    data,
    key_name,
    as_json,
    match,
    sample_seed,
):
    """Random search over the full factorial whose GPU-hours match a named protocol's.

    `--match campaign` spends what the campaign's own stages spent in this store (run it
    there first); a number is GPU-hours. At most the whole 2^k space is sampled.

    \b
    Examples:
      ledger --store preview.ledger baseline random --campaign campaigns/paper.toml \\
          --budget 10m --seeds 0,1 --hosts a100,l40s --match campaign --executor sim
      ledger baseline random --campaign campaigns/demo.toml --budget 40s --match 0.05
    """
    out, hours = gl.random_search(
        open_store(ctx),
        campaign_path,
        budget=budget,
        match=match,
        seeds=seeds,
        hosts=hosts,
        key=key_name,
        executor=executor,
        sample_seed=sample_seed,
        host=host_option(ctx),
        data=data,
        progress=not as_json,
        jobs=jobs,
        device=device,
    )
    capped = (
        f"; {hours:.4g} GPU-hours would buy {out['affordable']}, the space has {out['sampled']}"
        if out["affordable"] > out["sampled"]
        else ""
    )
    emit(
        out,
        as_json,
        f"random: {out['sampled']} conditions sampled to match {hours:.4g} "
        f"GPU-hours ({match}){capped}; spent {out['training_gpu_hours']:.4g} "
        f"GPU-hours; best {out['best']} mean {out['best_mean']}",
    )


def register(cli: click.Group) -> None:
    """Attach the method commands."""
    for command in (design_cmd, run_cmd, decide_cmd, effects_cmd, campaign_cmd, baseline_group):
        cli.add_command(command)
