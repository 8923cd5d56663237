"""`populator status`: a fleet at a glance, from the snapshots runs publish under their `--log-path`.

Reads every status snapshot under `<log path>/status/`, judges each shard at this moment
(`observe.fleet`) and shows the result (`status_view`): on the terminal, as JSON, and as a small
HTML page. `--watch` reads and redraws until Ctrl-C (exit 130). Exit 0 when every shard
finished, 1 when any needs someone, 6 while shards run and none does, 2 when nothing is there.
"""

from pathlib import Path
from typing import Annotated

import typer

from . import options as o

EXAMPLES = """
Examples:

  populator status s3://acme/populator/logs/

  populator status s3://acme/populator/logs/ --watch --interval 30

  populator status ./logs --json --stale-after 10m
"""

# Options of `status` alone.
StatusLocation = Annotated[
    str, typer.Argument(metavar="LOG_PATH", help="The runs' --log-path: a directory or s3://bucket/prefix/.")
]
StaleAfter = Annotated[
    str, typer.Option("--stale-after", help="A running shard is stale after this long without a snapshot.")
]
Watch = Annotated[bool, typer.Option("--watch", help="Redraw every --interval seconds until Ctrl-C.")]
WatchInterval = Annotated[float, typer.Option("--interval", min=0.1, help="Seconds between two readings.")]
Html = Annotated[Path | None, typer.Option("--html", help="Also write it as an HTML page to this file.")]


def status(
    log_path: StatusLocation,
    stale_after: StaleAfter = "3m",
    json_output: o.Json = False,
    watch: Watch = False,
    interval: WatchInterval = o.DEFAULT_STATUS_INTERVAL,
    html: Html = None,
    profile: o.Profile = None,
) -> None:
    """Show how every shard of the jobs under a --log-path stands: state, progress, ETA, cost, failures."""
    import time
    from datetime import UTC, datetime

    import orjson
    from rich.live import Live

    from ..errors import EXIT_SIGINT, UsageError
    from ..observe import logs
    from ..observe.fleet import Fleet, fleet
    from ..observe.logstore import parse_log_path
    from ..observe.status_store import read_statuses
    from .failures import consoles, report_failure
    from .status_view import fleet_html, fleet_renderable, render_fleet

    out, err = consoles()
    logs.configure_logging(terminal=err.is_terminal)
    try:
        destination = parse_log_path(log_path)
        stale = _seconds(stale_after)
        if html is not None:
            _check_html(html)
    except UsageError as exc:
        raise typer.Exit(report_failure(exc, err)[0]) from None

    def look() -> Fleet:
        try:
            found = read_statuses(destination, profile=profile)
        except UsageError as exc:
            raise typer.Exit(report_failure(exc, err)[0]) from None
        current = fleet(str(destination), found.snapshots, datetime.now(UTC), stale, found.unreadable)
        if html is not None:
            html.write_text(fleet_html(current), encoding="utf-8")
        return current

    def as_json(current: Fleet, indent: bool) -> str:
        return orjson.dumps(current.as_dict(), option=orjson.OPT_INDENT_2 if indent else 0).decode()

    if not watch:
        current = look()
        if json_output:
            typer.echo(as_json(current, indent=True))
        else:
            render_fleet(out, current)
        raise typer.Exit(current.exit_code)
    try:
        if out.is_terminal and not json_output:
            with Live(console=out, auto_refresh=False, vertical_overflow="visible") as live:
                while True:
                    live.update(fleet_renderable(look(), fold=True), refresh=True)
                    time.sleep(interval)
        while True:  # off a terminal, or JSON: one reading after another (JSON: one a line)
            current = look()
            if json_output:
                typer.echo(as_json(current, indent=False))
            else:
                render_fleet(out, current)
                out.print()
            time.sleep(interval)
    except KeyboardInterrupt:
        raise typer.Exit(EXIT_SIGINT) from None


def _seconds(raw: str) -> float:
    from ..job.limits import parse_duration

    return parse_duration(raw, "--stale-after")


def _check_html(path: Path) -> None:
    from ..errors import UsageError

    if path.is_dir():
        raise UsageError(f"--html {str(path)!r} is a directory; pass a file name.")
    if not path.parent.is_dir():
        raise UsageError(f"--html {str(path)!r}: the directory {str(path.parent)!r} does not exist.")
