"""`populator report`: a run's JSON report made into one page to look at (HTML, no network needed).

Works after the fact on what a run kept: its `--report` JSON, or the report stored under
`--log-path` (a local directory or S3). `run --report run.html` writes the same page at once.
"""

from pathlib import Path

import typer

from ..errors import UsageError
from . import options as o
from .failures import consoles, report_failure

EXAMPLES = """
Examples:

  populator report report.json

  populator report ./logs -o run.html

  populator report s3://acme/populator/logs/ -o run.html
"""


def report(source: o.ReportSource, output: o.HtmlOutput = None, profile: o.Profile = None) -> None:
    """Make a run's JSON report into one HTML page: its figures, its timeline in charts, bad rows,
    failures and the command to go on. The source is the JSON report, a run's folder under --log-path,
    or the --log-path itself (its latest run). The page goes next to a local JSON report, or
    into ./<run folder>.html when read from S3."""
    from ..observe.html_report import render_html  # only here: nothing at the command line's start
    from ..observe.stored_reports import read_report

    out, err = consoles()
    try:
        stored = read_report(source, profile=profile)
        target = output or (stored.path.with_suffix(".html") if stored.path else Path(f"{stored.name}.html"))
        try:
            target.write_text(render_html(stored.report), encoding="utf-8")
        except OSError as exc:
            raise UsageError(f"cannot write {str(target)!r}: {exc.strerror or exc}.") from None
    except UsageError as exc:
        raise typer.Exit(report_failure(exc, err)[0]) from None
    latest = f" (the latest of {stored.runs_there} runs there)" if stored.runs_there > 1 else ""
    out.print(f"wrote {target}, the report of {stored.source}{latest}", markup=False, soft_wrap=True)
