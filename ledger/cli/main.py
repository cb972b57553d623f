"""Entry point of the `ledger` command: the group, global options and error handling.

Command groups live in sibling modules (`core_cmds`, `method_cmds`, `audit_cmds`), each a
thin layer over a Python API. Any `LedgerError` becomes one line on stderr and its exit code.
"""

from __future__ import annotations

import sys

import click

from ledger.errors import LedgerError


class LedgerGroup(click.Group):
    """Click group that turns library errors into one clear line instead of a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except LedgerError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(exc.exit_code)
        except OSError as exc:
            # a safety net: file-system failures a command did not word itself (unwritable
            # output folder, full disk) still end as one line naming the path, exit 2
            where = f" {exc.filename}" if exc.filename else ""
            click.echo(f"error: cannot access{where}: {exc.strerror or exc}", err=True)
            ctx.exit(2)
        except KeyboardInterrupt:
            click.echo("error: interrupted", err=True)
            ctx.exit(130)


@click.group(cls=LedgerGroup, context_settings={"help_option_names": ["-h", "--help"]})
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
    Typical flow:
      ledger init && ledger keygen --name me
      ledger freeze screen-2m --campaign campaign.toml   # sign the plan before any run
      ledger run screen-2m --executor local --jobs 1     # train, journal, ingest
      ledger decide screen-2m                            # apply the frozen rule, sign
      ledger audit                                       # re-derive everything from raw logs

    Exit codes: 0 all good, 1 a check failed, 2 bad input or usage.
    """
    ctx.ensure_object(dict)
    ctx.obj["store"] = store
    ctx.obj["host"] = host


def _register() -> None:
    from ledger.cli import audit_cmds, core_cmds, evaluate_cmds, method_cmds

    for module in (core_cmds, method_cmds, audit_cmds, evaluate_cmds):
        module.register(cli)


_register()


def main() -> None:
    """Console-script entry point."""
    try:
        cli.main(prog_name="ledger", standalone_mode=True)
    except LedgerError as exc:  # raised outside a command (e.g. during parsing callbacks)
        click.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
