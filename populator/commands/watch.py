"""Everything that watches one run and keeps a record of it, set up and closed in one place.

`RunWatch` chooses the displays (a live display on a terminal, progress log lines elsewhere,
nothing but errors with `--quiet`), installs logging (stderr, plus a file for `--log-path`),
subscribes the event log, and at the end writes `--report` and stores report and log under
`--log-path` (where the run's status snapshot is also published as it goes, for `populator
status`). `execute` goes through it for `run`, `import` and the demo. An import is shown in two
phases: its staging with the same display as `run`, then its wait on DynamoDB. A `--report`
whose name ends in `.html` is the page to look at (`observe.html_report`), not the JSON.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console

from ..errors import EXIT_OK, EXITS_THAT_GO_ON, LocalWriteError, PopulatorError, exit_code_for
from ..job.destination import IMPORTING
from ..job.spec import BackfillJob
from ..observe import logs
from ..observe.eventlog import RUN_LOGGER, EventLog
from ..observe.hub import Subscriber
from ..observe.import_progress import ImportLive, ImportProgressLog, ImportTally
from ..observe.logstore import (
    LOG_NAME,
    REPORT_NAME,
    LogDestination,
    folder_name,
    local_folder,
    store,
)
from ..observe.progress import PROGRESS_LOGGER, LiveProgress, ProgressLog
from ..observe.report import Tally, report_bytes, run_report
from ..observe.status_feed import StatusFeed
from ..observe.timeline import Timeline, TimelineSampler
from .outputs import RunOutputs

log = logging.getLogger(RUN_LOGGER)
_RESUMES = "run the same command: it resumes."
HTML_SUFFIXES = (".html", ".htm")


class RunWatch:
    """Use as a context manager around a job; `display(phase)` around each phase it shows."""

    def __init__(
        self,
        job: BackfillJob,
        tally: Tally,
        err: Console,
        outputs: RunOutputs,
        imports: ImportTally | None = None,
    ) -> None:
        self._job = job
        self._tally = tally
        self._imports = imports
        self.command_name = "import" if job.imports else "run"  # in the first log line
        self.title = "populator import: staging" if job.imports else "populator run"  # of the live display
        self.phase: str | None = None  # the phase being shown
        self.timeline = Timeline(tally)
        self._sampler = TimelineSampler(self.timeline)
        self._err = err
        self._outputs = outputs
        self._started = datetime.now(UTC)
        self._own_logs: logs.LogSetup | None = None
        self._setup: logs.LogSetup | None = None
        self._log_file: Path | None = None
        self._temp_log = False
        self._log_failure: LocalWriteError | None = None
        self._tell: Callable[[BaseException], None] | None = None
        self._feed: StatusFeed | None = None
        self.error: str | None = None

    @property
    def subscribers(self) -> list[Subscriber]:
        return [EventLog()]

    @property
    def live(self) -> bool:
        """Whether the terminal shows a live display (not with --quiet or --json-logs)."""
        out = self._outputs
        return not out.quiet and not out.json_logs and self._err.is_terminal

    def __enter__(self) -> RunWatch:
        keys = self._job.storage.keys
        if keys is not None:
            logs.add_secret(keys.secret_access_key.reveal())
        setup = logs.active()
        if setup is None:
            out = self._outputs
            setup = self._own_logs = logs.configure_logging(
                level=out.log_level, json_logs=out.json_logs, quiet=out.quiet, terminal=self._err.is_terminal
            )
        self._setup = setup
        if self._outputs.log_path is not None:
            self._open_log_file(self._outputs.log_path)
            self._feed = self._status_feed(self._outputs.log_path).__enter__()
        self._sampler.__enter__()
        job = self._job
        log.info(
            "populator %s: %s -> DynamoDB table %s (%s)%s",
            self.command_name,
            job.location,
            job.storage.table,
            job.storage.region,
            " (dry run)" if job.dry_run else "",
            extra={"archive": str(job.location), "table": job.storage.table},
        )
        return self

    def _open_log_file(self, destination: LogDestination) -> None:
        assert self._setup is not None
        name = folder_name(self._job.storage.table, self._started)
        if destination.is_s3:
            handle, raw = tempfile.mkstemp(prefix="populator-", suffix=".log")
            os.close(handle)
            self._log_file, self._temp_log = Path(raw), True
        else:
            self._log_file = local_folder(destination, name) / LOG_NAME
        try:
            self._setup.add_file(self._log_file, on_failure=self._log_failed)
        except OSError as exc:
            raise LocalWriteError.of("the log", self._log_file, exc, _RESUMES) from None

    def _log_failed(self, error: OSError) -> None:
        """The log file could not be written (from any thread): the run ends with it."""
        if self._log_failure is None:
            assert self._log_file is not None
            self._log_failure = LocalWriteError.of("the log", self._log_file, error, _RESUMES)
            if self._tell is not None:
                self._tell(self._log_failure)

    def tell_faults(self, report: Callable[[BaseException], None] | None) -> None:
        """While the job runs, `report` hears of a file of ours that could not be written (the log
        under --log-path), to end the run with it; of one that failed already, at once."""
        self._tell = report
        if report is not None and self._log_failure is not None:
            report(self._log_failure)

    def _status_feed(self, destination: LogDestination) -> StatusFeed:
        """The run's status snapshot, published under `<log path>/status/<job>/` as it goes."""
        from ..observe.shard_status import JobFacts, StatusSource
        from ..observe.status_store import StatusWriter

        job = self._job
        key = dataclasses.replace(job.identity, shard=None).name() + ("-dry-run" if job.dry_run else "")
        ident = job.identity
        facts = JobFacts(key, ident.archive, ident.table, ident.since, ident.mode, job.dry_run, job.shard)
        source = StatusSource(self._tally, facts, started=self._started, command=self._outputs.resume_command)
        writer = StatusWriter(destination, source.key, profile=job.profile)
        forks = job.processes if job.processes > 1 else 0  # its first write waits for the workers
        return StatusFeed(source, writer, self._outputs.status_interval, forks=forks)

    @contextlib.contextmanager
    def display(self, phase: str) -> Iterator[None]:
        """Progress while a phase runs: the live display, and/or periodic log lines. The wait on
        an import shows the import's progress; every other phase the tally's."""
        assert self._setup is not None
        self.phase = phase
        waiting = phase == IMPORTING and self._imports is not None
        with contextlib.ExitStack() as stack:
            if self.live:
                self._setup.hide_from_stderr(PROGRESS_LOGGER)
                stack.callback(self._setup.show_on_stderr, PROGRESS_LOGGER)
                if waiting:
                    assert self._imports is not None
                    stack.enter_context(ImportLive(self._err, self._imports))
                else:
                    stack.enter_context(LiveProgress(self._err, self._tally, self.title))
            if not self._outputs.quiet or self._log_file is not None:
                if waiting:
                    assert self._imports is not None
                    stack.enter_context(ImportProgressLog(self._imports, self._outputs.progress_interval))
                else:
                    stack.enter_context(ProgressLog(self._tally, self._outputs.progress_interval))
            yield

    def finish(self, exit_code: int) -> int:
        """Log the end, write --report, store report and log under --log-path. Returns the exit
        code: a run that would end with 0 ends with 1 (2 before any write) when its report or
        log could not be written."""
        self._sampler.__exit__(None, None, None)
        failures: list[LocalWriteError] = []
        report = run_report(
            self._tally,
            exit_code=exit_code,
            started_at=self._started,
            finished_at=datetime.now(UTC),
            job=self._job_fields(exit_code),
            error=self.error,
        )
        if self._feed is not None:
            self._feed.finish(exit_code, self.error)
        tally = self._tally
        log.info(
            "finished (exit %d): %d of %d objects done, %d failed; %s items %s in %.1f s",
            exit_code,
            tally.objects_done,
            tally.objects_total,
            len(tally.failures),
            f"{tally.items_planned if tally.dry_run else tally.items_written:,}",
            "to write" if tally.dry_run else "staged" if self._imports is not None else "written",
            tally.duration_s,
            extra={"report": report},
        )
        data = report_bytes(report)
        if self._outputs.report is not None:
            path, content = self._outputs.report, data
            if path.suffix.lower() in HTML_SUFFIXES:
                from ..observe.html_report import page_or_json  # only now: nothing at start-up

                path, content = page_or_json(path, report, data)
            try:
                path.write_bytes(content)
            except OSError as exc:
                then = "run the same command to have it (what the checkpoint holds is not written again)."
                failures.append(LocalWriteError.of("--report", path, exc, then))
                log.error("%s", failures[-1])
        if self._outputs.log_path is not None:
            failures += self._store(self._outputs.log_path, data)
        if exit_code != EXIT_OK:
            return exit_code  # a log that failed as the job ran ended it: told already
        if self._log_failure is not None:  # as the job ended
            log.error("%s", self._log_failure)
            failures.insert(0, self._log_failure)
        return exit_code_for(failures[0], writes_began=tally.writes_began) if failures else exit_code

    def _store(self, destination: LogDestination, report: bytes) -> list[LocalWriteError]:
        assert self._setup is not None and self._log_file is not None
        self._setup.close_file()
        files = {REPORT_NAME: report}
        if self._temp_log:
            files[LOG_NAME] = self._log_file.read_bytes()
        try:
            where = store(
                destination,
                folder_name(self._job.storage.table, self._started),
                files,
                profile=self._job.profile,
            )
        except LocalWriteError as exc:  # the disk of a local --log-path
            log.error("%s", exc)
            return [exc]
        except Exception as exc:  # botocore's: say so, the backfill itself is done
            from ..errors import describe_failure

            why = str(exc) if isinstance(exc, PopulatorError) else describe_failure(exc)
            log.error("cannot store the report and log under --log-path %s: %s", destination, why)
        else:
            log.info("report and log stored in %s", where, extra={"log_path": where})
        return []

    def _job_fields(self, exit_code: int) -> dict[str, Any]:
        job = self._job
        return {
            "command": self._outputs.command,
            "resume_command": self._outputs.resume_command if exit_code in EXITS_THAT_GO_ON else None,
            "archive": str(job.location),
            "table": job.storage.table,
            "region": job.storage.region,
            "since": job.identity.since,
            "mode": job.identity.mode,
            "include_expired": job.pipeline.include_expired,
            "processes": job.processes,
            **(self._imports.as_dict() if self._imports is not None else {}),
            "timeline": self.timeline.as_dict(),
        }

    def __exit__(self, *exc: Any) -> None:
        self._sampler.__exit__(None, None, None)
        if self._feed is not None:
            self._feed.__exit__(None, None, None)
        if self._setup is not None:
            self._setup.close_file()
        if self._temp_log and self._log_file is not None:
            self._log_file.unlink(missing_ok=True)
        if self._own_logs is not None:
            self._own_logs.close()
