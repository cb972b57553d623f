"""Entry point of the `ledger` command: the group, global options and error handling.

Command groups live in sibling modules (`core_cmds`, `method_cmds`, `audit_cmds`, ...): each
command parses its options, calls one `gateledger` function and formats the result. Any
error becomes one line on stderr (with `--json`, a JSON object `{"error", "exit"}` on
stdout) and its exit code; never a traceback.
"""

from __future__ import annotations

import gc
import json
import os
import sys

import click

from gateledger.cli import (
    audit_cmds,
    compare_cmds,
    core_cmds,
    evaluate_cmds,
    method_cmds,
    runs_cmds,
    try_cmd,
)
from gateledger.cli.context import GlobalOptions
from gateledger.errors import LedgerError


def wants_json(args: list[str]) -> bool:
    """Whether the command line asks for `--json` (before a `--`, if any): errors then go to
    stdout as a JSON object, so a script reading stdout always gets one."""
    words = args[: args.index("--")] if "--" in args else args
    return "--json" in words


def fail(message: str, code: int, as_json: bool) -> int:
    """Say one error line (stderr), or with --json the object `{"error", "exit"}` (stdout)."""
    line = " ".join(str(message).split())
    if as_json:
        click.echo(json.dumps({"error": line, "exit": code}))
    else:
        click.echo(f"error: {line}", err=True)
    return code


def _usage_line(exc: click.UsageError) -> str:
    """Click's usage block as one line naming the command and where its options are listed."""
    where = exc.ctx.command_path if exc.ctx is not None else "ledger"
    message = exc.format_message().rstrip(".")
    return f"{where}: {message} (see `{where} --help`)"


class LedgerGroup(click.Group):
    """Click group whose every failure is one line (or one JSON object with `--json`).

    Library errors keep their exit code; usage errors (an unknown option, a missing
    argument) exit 2; file-system failures a command did not word itself exit 2 naming the
    path; anything else is an internal error, still one line (LEDGER_DEBUG=1 re-raises it
    with the traceback).
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        argv = list(sys.argv[1:] if args is None else args)
        as_json = wants_json(argv)
        try:
            rv = super().main(argv, prog_name, complete_var, standalone_mode=False, **extra)
            code = rv if isinstance(rv, int) and not isinstance(rv, bool) else 0
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
            code = 2  # a group named without its subcommand: its help is the answer
        except click.UsageError as exc:
            code = fail(_usage_line(exc), 2, as_json)
        except click.ClickException as exc:
            code = fail(exc.format_message(), exc.exit_code, as_json)
        except click.Abort:
            code = fail("interrupted", 130, as_json)
        except LedgerError as exc:
            code = fail(str(exc), exc.exit_code, as_json)
        except OSError as exc:
            # file-system failures a command did not word itself (unwritable output folder,
            # full disk) still end as one line naming the path
            where = f" {exc.filename}" if exc.filename else ""
            code = fail(f"cannot access{where}: {exc.strerror or exc}", 2, as_json)
        except Exception as exc:  # noqa: BLE001 - the last net: one line, never a traceback
            if os.environ.get("LEDGER_DEBUG"):
                raise
            code = fail(
                f"internal error: {type(exc).__name__}: {exc} (LEDGER_DEBUG=1 shows the traceback)",
                2,
                as_json,
            )
        if not standalone_mode:
            return code
        sys.exit(code)


@click.group(
    name="ledger", cls=LedgerGroup, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.option(
    "--store",
    "store",
    envvar="LEDGER_STORE",
    default=".ledger",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Store root (objects, journals, keys, index). Env: LEDGER_STORE.",
)
@click.option(
    "--host",
    "host",
    envvar="LEDGER_HOST",
    default=None,
    help="Name this machine writes under (its journal and object part). Env: LEDGER_HOST; "
    "default: the short hostname.",
)
@click.version_option(package_name="gateledger")
@click.pass_context
def cli(ctx: click.Context, store: str, host: str | None) -> None:
    """Auditable, staged screening of micro-pretraining recipes.

    \b
    Examples (a typical flow):
      ledger init && ledger keygen --name me
      ledger try screen-2m --campaign campaign.toml      # your runner on 2 configs, unsigned
      ledger freeze screen-2m --campaign campaign.toml   # sign the plan before any run
      ledger run screen-2m --executor local --jobs 1     # train, journal, ingest
      ledger status --watch --campaign campaign.toml     # another terminal: live progress
      ledger decide screen-2m                            # apply the frozen rule, sign
      ledger runs --stage screen-2m                      # one row per run
      ledger audit                                       # re-derive everything from raw logs

    Exit codes: 0 all good, 1 a check failed, 2 bad input or usage. Errors are one line on
    stderr; with --json, a JSON object {"error", "exit"} on stdout.
    """
    ctx.obj = GlobalOptions(store, host)


for module in (
    core_cmds,
    method_cmds,
    try_cmd,
    audit_cmds,
    evaluate_cmds,
    runs_cmds,
    compare_cmds,
):
    module.register(cli)


def main() -> None:
    """Console-script entry point: run one command, then exit the process.

    Why `gc.freeze()` on the way out: the command is done and its files are written and
    closed; what is left is the interpreter's shutdown, whose cyclic-GC passes over every
    object that NumPy, SciPy, pandas and statsmodels created took ~0.3 s of a 1.9 s
    `ledger audit` (benchmarks/startup_bench.py). Frozen objects are skipped and the
    operating system takes the memory back. Only here, where the process ends: `cli.main`
    called in-process (tests, scripts) never freezes its caller's objects.
    """
    try:
        cli.main(prog_name="ledger", standalone_mode=True)
    finally:
        gc.freeze()


if __name__ == "__main__":
    main()
