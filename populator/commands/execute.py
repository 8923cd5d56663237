"""A job run with everything an operator sees, and how every command ends.

`execute` runs one job, `run`'s or `import`'s, with its displays, signals, summary, logs and
report, and returns the exit code. `settle` and `report_failure` are the one place where an
exception that ends a command is told to the user and turned into an exit code (from
`errors.exit_code_for`): one paragraph for a mistake a user can fix, "a bug" for anything else.
"""

from __future__ import annotations

import asyncio
import logging
import shlex
import signal
import sys
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn, Protocol, TypeVar

import orjson
import typer
from rich.console import Console

from ..errors import (
    EXIT_FAILED,
    EXIT_LIMIT_REACHED,
    EXIT_OK,
    EXIT_OUTAGE,
    EXIT_SIGINT,
    PopulatorError,
    UsageError,
)
from ..job import runtime
from ..job.backfill import new_import_tally, new_tally, run_job
from ..job.destination import IMPORTING, STAGING
from ..job.faults import Faults
from ..job.interrupts import GRACE_SECONDS, run_interruptible
from ..job.spec import BackfillJob
from ..observe import logs
from ..observe.hub import Hub
from ..observe.import_progress import ImportTally, print_import_summary
from ..observe.progress import print_summary
from ..observe.report import Tally
from .failures import consoles, report_failure, settle
from .groups import OutputArguments
from .outputs import RunOutputs, run_outputs
from .watch import RunWatch

log = logging.getLogger("populator.run")
T = TypeVar("T")
LIMIT_FLAGS = {
    "max_write_units": "--max-write-units",
    "max_cost": "--max-cost",
    "max_duration": "--max-duration",
}


def execute(
    job: BackfillJob,
    out: Console,
    err: Console,
    *,
    quiet: bool = False,
    resume_command: str | None = None,
    outputs: RunOutputs | None = None,
) -> int:
    """Run a job with progress, signals, summary, logs and report; returns the exit code.

    Shared by `run`, `import` and `demo`.
    """
    tally = new_tally(job)
    imports = new_import_tally(job) if job.imports else None
    try:
        outputs = outputs or RunOutputs(quiet=quiet, resume_command=resume_command)
        with RunWatch(job, tally, err, outputs, imports) as watch:
            code = _Execution(job, tally, imports, watch, out, resume_command).run()
            return watch.finish(code)
    except UsageError as exc:  # the log under --log-path could not be opened: before any work
        return report_failure(exc, err)[0]


class _Execution:
    def __init__(
        self,
        job: BackfillJob,
        tally: Tally,
        imports: ImportTally | None,
        watch: RunWatch,
        out: Console,
        resume_command: str | None,
    ) -> None:
        self.job, self.tally, self.imports, self.watch, self.out = job, tally, imports, watch, out
        self.resume = resume_command
        self.noun = "import" if job.imports else "backfill"

    def run(self) -> int:
        try:
            interruption = asyncio.run(run_interruptible(self.main, on_signal=self.on_signal))
        except KeyboardInterrupt:  # before the event loop took over the signals
            self.watch.error = f"interrupted before the {self.noun} started"
            log.warning(
                "interrupted before anything was staged."
                if self.imports is not None
                else "interrupted before the backfill started; nothing was written."
            )
            return EXIT_SIGINT
        except Exception as exc:
            if isinstance(exc, PopulatorError) and (self.tally.started_work or self._import_failed(exc)):
                self.summary()
            code, self.watch.error = report_failure(exc, writes_began=self._wrote_something())
            if code in (EXIT_FAILED, EXIT_OUTAGE):
                self._say_how_to_go_on()
            return code
        self.summary()
        first = interruption.first
        saved = self.tally.checkpoint
        if self.tally.limit_reached is not None and first is None:
            where = f"; finished objects and how far the others got are recorded in {saved}" if saved else ""
            resume = f"\nrun the same command to go on:\n  {self.resume}" if self.resume else ""
            log.warning("stopped at a limit (%s)%s.%s", LIMIT_FLAGS[self.tally.limit_reached], where, resume)
            return EXIT_LIMIT_REACHED
        if first is not None:
            self._interrupted(first)
            return interruption.exit_code
        if self.tally.failures:
            if self.imports is not None:
                log.error(
                    "%d objects could not be staged (named above); nothing was imported. Run the same "
                    "command again: it stages what is missing, then imports.",
                    len(self.tally.failures),
                )
            self._say_how_to_go_on()
            return EXIT_FAILED
        return EXIT_OK

    def _wrote_something(self) -> bool:
        staged = self.imports is not None and self.imports.items_staged > 0
        return self.tally.writes_began or staged

    def _say_how_to_go_on(self) -> None:
        """Every exit 1 says how to go on, as exits 4, 130 and 143 do."""
        if self.resume:
            saved = f" (what is done is recorded in {self.tally.checkpoint})" if self.tally.checkpoint else ""
            log.warning("run the same command to go on%s:\n  %s", saved, self.resume)

    def _interrupted(self, first: signal.Signals) -> None:
        if self.imports is None:
            saved = (
                f"; finished objects and how far the others got are recorded in {self.tally.checkpoint}"
                if self.tally.checkpoint
                else ""
            )
            resume = f"\nresume with:\n  {self.resume}" if self.resume else ""
            log.warning("interrupted by %s%s.%s", first.name, saved, resume)
        elif self.watch.phase == IMPORTING:
            log.warning(
                "interrupted by %s: the import %s goes on in AWS. Reattach to it (and finish: TTL, "
                "the sample, the staged objects) with:\n  %s",
                first.name,
                self.imports.import_arn,
                self.resume or "the same command",
            )
        else:
            log.warning(
                "interrupted by %s; objects staged are recorded in %s. Resume with:\n  %s",
                first.name,
                self.job.checkpoint,
                self.resume or "the same command",
            )

    def _import_failed(self, exc: BaseException) -> bool:
        from ..job.table_import import ImportFailed  # an import's failure always has a summary

        return isinstance(exc, ImportFailed)

    def summary(self) -> None:
        if self.imports is None:
            print_summary(self.out, self.tally)
        else:
            print_import_summary(self.out, self.tally, self.imports, staged=self.imports.staging_ran)

    def on_signal(self, sig: signal.Signals, first: bool) -> None:
        self.tally.interrupted_by = self.tally.interrupted_by or sig.name
        if not first:
            return
        if self.imports is None:
            log.warning(
                "%s: stopping: no new object is started, writes in flight finish (at most %.0f s). "
                "Send it again to stop at once.",
                sig.name,
                GRACE_SECONDS,
            )
        elif self.watch.phase == STAGING:
            log.warning(
                "%s: stopping: no new object is started, staged objects being written are completed "
                "(at most %.0f s). Send it again to stop at once.",
                sig.name,
                GRACE_SECONDS,
            )

    async def main(self, stop: asyncio.Event) -> None:
        faults = Faults()  # the log under --log-path failing ends the run
        self.watch.tell_faults(faults.report)
        try:
            job = run_job(
                self.job,
                Hub(),
                self.tally,
                imports=self.imports,
                extra_subscribers=self.watch.subscribers,
                stop=stop,
                display=self.watch.display,
            )
            await faults.run(job)
        finally:
            self.watch.tell_faults(None)


def run_command(make_job: Callable[[], BackfillJob], outputs: OutputArguments) -> NoReturn:
    """`run` and `import`: the job from the arguments, executed; ends with its exit code."""
    out, err = consoles()
    logs.configure_logging(
        level=outputs.log_level, json_logs=outputs.json_logs, quiet=outputs.quiet, terminal=err.is_terminal
    )
    resume = shlex.join(["populator", *(arg for arg in sys.argv[1:] if arg != "--restart")])
    try:
        checked = run_outputs(
            quiet=outputs.quiet,
            progress_interval=outputs.progress_interval,
            log_level=outputs.log_level,
            json_logs=outputs.json_logs,
            report=outputs.report,
            log_path=outputs.log_path,
            command=shlex.join(["populator", *sys.argv[1:]]),
            resume_command=resume,
            status_interval=outputs.status_interval,
        )
        job = make_job()
    except UsageError as exc:
        raise typer.Exit(report_failure(exc, err)[0]) from None
    runtime.keep_freed_memory()
    raise typer.Exit(execute(job, out, err, resume_command=resume, outputs=checked))


class Showable(Protocol):
    def as_dict(self) -> dict[str, Any]: ...


S = TypeVar("S", bound=Showable)


def show(work: Callable[[], Awaitable[S]], render: Callable[[Console, S], None], as_json: bool) -> S:
    """`plan` and `verify`: run `work`, then print its result rendered, or as JSON."""
    out, err = consoles()
    logs.configure_logging(terminal=err.is_terminal)
    result = settle(err, work)
    if as_json:
        typer.echo(orjson.dumps(result.as_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        render(out, result)
    return result
