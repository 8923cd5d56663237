"""Options that several commands take together, as groups: `SourceArguments` (every command),
`JobArguments` and `OutputArguments` (`run` and `import`).

A command names a group once in its signature (`source: SourceArguments`); `grouped` spreads the
group's fields into the signature typer reads, and hands the command the group rebuilt from
them. Each field is an option of `options`, so it reads the same in every command's --help.

No `from __future__ import annotations`: the fields' annotations are the typer options
themselves, read at each start (see `options`).
"""

import dataclasses
import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar, cast

from ..job.pipeline import ReadRetryPolicy
from .options import (
    DEFAULT_CONCURRENCY,
    DEFAULT_PRICE_PER_MILLION,
    DEFAULT_PROCESSES,
    DEFAULT_PROGRESS_INTERVAL,
    DEFAULT_READ_ATTEMPTS,
    DEFAULT_RETRY_BASE_DELAY,
    DEFAULT_STATUS_INTERVAL,
    Archive,
    BadRows,
    Checkpoint,
    Concurrency,
    IncludeExpired,
    JsonLogs,
    LogLevel,
    LogPath,
    MaxBadRows,
    MaxOutage,
    OnDemand,
    PricePerMillion,
    Processes,
    Profile,
    ProgressInterval,
    Provisioned,
    Quiet,
    ReadAttempts,
    Report,
    RequestTimeout,
    ResolverConfig,
    Restart,
    RetryBaseDelay,
    Shard,
    Since,
    StatusInterval,
    StorageConfig,
)

F = TypeVar("F", bound=Callable[..., None])


@dataclasses.dataclass(frozen=True)
class SourceArguments:
    """The archive and the configs: what every command reads."""

    enriched_archive: Archive
    storage_config: StorageConfig
    resolver_config: ResolverConfig
    since: Since = None
    profile: Profile = None


@dataclasses.dataclass(frozen=True)
class JobArguments:
    """How `run` and `import` read the archive and keep their place."""

    include_expired: IncludeExpired = False
    on_demand: OnDemand = False
    provisioned: Provisioned = None
    price_per_million: PricePerMillion = DEFAULT_PRICE_PER_MILLION
    concurrency: Concurrency = DEFAULT_CONCURRENCY
    processes: Processes = DEFAULT_PROCESSES
    checkpoint: Checkpoint = None
    restart: Restart = False
    bad_rows: BadRows = None
    max_bad_rows: MaxBadRows = None
    read_attempts: ReadAttempts = DEFAULT_READ_ATTEMPTS
    retry_base_delay: RetryBaseDelay = DEFAULT_RETRY_BASE_DELAY
    max_outage: MaxOutage = "5m"
    request_timeout: RequestTimeout = None
    shard: Shard = None

    def read_retry(self) -> ReadRetryPolicy:
        return ReadRetryPolicy(attempts=self.read_attempts, base_delay=self.retry_base_delay * 10)


@dataclasses.dataclass(frozen=True)
class OutputArguments:
    """What the operator of `run` and `import` sees and keeps."""

    quiet: Quiet = False
    progress_interval: ProgressInterval = DEFAULT_PROGRESS_INTERVAL
    log_level: LogLevel = None
    json_logs: JsonLogs = False
    report: Report = None
    log_path: LogPath = None
    status_interval: StatusInterval = DEFAULT_STATUS_INTERVAL


def grouped(command: F) -> F:
    """`command` with each parameter typed as an options group spread into its fields, for typer;
    called, it gets the group back as one argument."""
    signature = inspect.signature(command)
    groups: dict[str, type[Any]] = {}
    required: list[inspect.Parameter] = []
    optional: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        kind = parameter.annotation
        if not (isinstance(kind, type) and dataclasses.is_dataclass(kind)):
            (required if parameter.default is parameter.empty else optional).append(parameter)
            continue
        groups[parameter.name] = kind
        for field in dataclasses.fields(kind):
            default = parameter.empty if field.default is dataclasses.MISSING else field.default
            spread = inspect.Parameter(
                field.name, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=default, annotation=field.type
            )
            (required if default is parameter.empty else optional).append(spread)

    @functools.wraps(command)
    def spread_out(**arguments: Any) -> None:
        for name, group in groups.items():
            arguments[name] = group(**{f.name: arguments.pop(f.name) for f in dataclasses.fields(group)})
        command(**arguments)

    # inspect.signature, which typer reads, honours __signature__; functions do not declare it.
    spread_out.__signature__ = signature.replace(parameters=[*required, *optional])  # type: ignore[attr-defined]
    return cast(F, spread_out)
