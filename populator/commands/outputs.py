"""What the operator asked to see and keep (`--quiet`, `--progress-interval`, `--log-level`,
`--json-logs`, `--report`, `--log-path`), checked before any work."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..observe.logstore import LogDestination, parse_log_path
from ..observe.progress import DEFAULT_INTERVAL_SECONDS
from ..observe.status_feed import DEFAULT_STATUS_INTERVAL


@dataclass(frozen=True)
class RunOutputs:
    """What the operator asked to see and keep."""

    quiet: bool = False
    progress_interval: float = DEFAULT_INTERVAL_SECONDS
    log_level: str | None = None  # None: see logs.default_level
    json_logs: bool = False
    report: Path | None = None
    log_path: LogDestination | None = None
    command: str | None = None  # the command line, for the report
    resume_command: str | None = None  # the command to go on with, for the status snapshot
    status_interval: float = DEFAULT_STATUS_INTERVAL  # seconds between status snapshots


def check_report_path(path: Path) -> None:
    """Fail early (exit 2, before any work) when the report could not be written."""
    if path.is_dir():
        raise UsageError(f"--report {str(path)!r} is a directory; pass a file name.")
    if not path.parent.is_dir():
        raise UsageError(f"--report {str(path)!r}: the directory {str(path.parent)!r} does not exist.")


def run_outputs(
    *,
    quiet: bool = False,
    progress_interval: float = DEFAULT_INTERVAL_SECONDS,
    log_level: str | None = None,
    json_logs: bool = False,
    report: Path | None = None,
    log_path: str | None = None,
    command: str | None = None,
    resume_command: str | None = None,
    status_interval: float = DEFAULT_STATUS_INTERVAL,
) -> RunOutputs:
    """The command line's output options, checked: raises UsageError before any work."""
    if report is not None:
        check_report_path(report)
    return RunOutputs(
        quiet=quiet,
        progress_interval=progress_interval,
        log_level=log_level,
        json_logs=json_logs,
        report=report,
        log_path=parse_log_path(log_path) if log_path else None,
        command=command,
        resume_command=resume_command,
        status_interval=status_interval,
    )
