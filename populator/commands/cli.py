"""`populator`: the typer app. Each command lives in a module of its own; options in `options`.

Exit codes are listed, and exceptions mapped to them, in `populator/errors.py`.

Unlike most modules, no `from __future__ import annotations` here: typer reads every
command's annotations at each start, and string annotations made it compile and evaluate each
of them twice (callgrind: 48M instructions, 12-15 ms, of every start-up).
"""

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Annotated, NoReturn

import typer

from .. import __version__
from ..errors import EXIT_FAILED, EXIT_OK, EXIT_SIGINT, UsageError
from . import import_table, plan, report, run, status, verify
from .failures import consoles, report_failure

app = typer.Typer(
    name="populator",
    help="Back-fill the Snowplow event manifest (DynamoDB) from an enriched-event archive.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    epilog="Before, during and after a backfill:\n\n"
    "  populator plan s3://acme/enriched/archive/ dynamodb.json iglu_resolver.json --since 2026-06-01\n\n"
    "  populator run s3://acme/enriched/archive/ dynamodb.json iglu_resolver.json --since 2026-06-01 "
    "--report report.json\n\n"
    "  populator verify s3://acme/enriched/archive/ dynamodb.json iglu_resolver.json --since 2026-06-01\n\n"
    "  populator status s3://acme/populator/logs/ (the --log-path of a fleet of shards)\n\n"
    "Try it without AWS: populator demo. Shell completion: populator --install-completion.",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"populator {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Back-fill the Snowplow event manifest (DynamoDB) from an enriched-event archive."""


def demo(
    events: Annotated[int, typer.Option(min=100, help="Events to generate in the sample archive.")] = 20_000,
    keep: Annotated[Path | None, typer.Option(help="Write the sample archive here and keep it.")] = None,
) -> None:
    """Generate a sample archive, start moto (S3 + DynamoDB) on loopback, and back-fill it."""
    try:
        import moto.server  # noqa: F401  (the `demo` extra; a plain install lacks it)
    except ImportError:
        error = UsageError(
            "`populator demo` runs an embedded moto server, and moto is not installed here. "
            "Install it with: pip install 'populator[demo]'"
        )
        raise typer.Exit(report_failure(error, consoles()[1])[0]) from None
    from .demo import run_demo

    raise typer.Exit(run_demo(events=events, keep=keep))


app.command(epilog=run.EXAMPLES)(run.run)
app.command(epilog=plan.EXAMPLES)(plan.plan)
app.command(epilog=verify.EXAMPLES)(verify.verify)
app.command("import", epilog=import_table.EXAMPLES)(import_table.import_table)
app.command(epilog=status.EXAMPLES)(status.status)
app.command(epilog=report.EXAMPLES)(report.report)
app.command(epilog="Example:\n\n  populator demo --events 20000")(demo)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        code: object = EXIT_SIGINT
    except SystemExit as exc:
        code = exc.code
    else:
        code = EXIT_OK
    exit_now(code)


def exit_now(code: object) -> NoReturn:
    """End the process without tearing the interpreter down.

    Every command has closed its files, joined its workers and printed its result by now. What
    is left, freeing a few hundred imported modules (jsonschema's Rust-backed objects among
    them) object by object, took 60-90 ms: a tenth of a short run. `code` is a SystemExit code.
    """
    if code is None:
        code = EXIT_OK
    elif not isinstance(code, int):
        print(code, file=sys.stderr)
        code = EXIT_FAILED
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe (`| head`) or stream
            stream.flush()
    os._exit(code)
