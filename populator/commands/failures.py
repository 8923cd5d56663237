"""How a command ends on an exception: told the user once, and turned into its exit code.

The one catch-all of the command line. The exit codes and which exception maps to which are in
`populator/errors.py` (`exit_code_for`); here an exception is told: one paragraph for a mistake
a user can fix (exit 2) or a failure (exit 1), "a bug" for anything else (exit 3, the traceback
only with POPULATOR_DEBUG=1).
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import TypeVar

import typer
from rich.console import Console

from ..errors import EXIT_INTERNAL, PopulatorError, exit_code_for
from ..observe import logs

log = logging.getLogger("populator.run")
T = TypeVar("T")


def settle(err: Console, work: Callable[[], Awaitable[T]]) -> T:
    """Run `work` (plan, verify) and return its result; an exception that ends it is told the
    user and ends the command with its exit code."""
    try:
        return asyncio.run(_awaited(work))
    except (Exception, KeyboardInterrupt) as exc:
        raise typer.Exit(report_failure(exc, err)[0]) from None


async def _awaited(work: Callable[[], Awaitable[T]]) -> T:
    return await work()


def report_failure(
    exc: BaseException, err: Console | None = None, *, writes_began: bool = False
) -> tuple[int, str]:
    """Tell the user about the exception that ends a command; its exit code and message
    (`writes_began`: items were written already, see `exit_code_for`).

    A `PopulatorError` is one paragraph; Ctrl-C says nothing more; anything else is a bug,
    said plainly, with the traceback only under POPULATOR_DEBUG (then re-raised).
    """
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    code = exit_code_for(exc, writes_began=writes_began)
    if isinstance(exc, KeyboardInterrupt):
        return code, "interrupted"
    if code == EXIT_INTERNAL:
        if os.environ.get("POPULATOR_DEBUG"):
            raise exc
        return code, log_bug(exc)
    assert isinstance(exc, PopulatorError)
    print_error(err, exc)
    return code, str(exc)


def consoles() -> tuple[Console, Console]:
    """stdout and stderr as every command prints them: no highlighting, and no emoji codes
    (an object key like `:smile:` is printed as it is)."""
    return Console(highlight=False, emoji=False), Console(stderr=True, highlight=False, emoji=False)


def print_error(err: Console | None, exc: PopulatorError) -> None:
    """Through logging once it is set up (JSON with --json-logs), else straight to `err`."""
    if logs.active() is not None or err is None:
        log.error("%s", exc)
    else:
        err.print(f"error: {exc}", markup=False, highlight=False, soft_wrap=True)


def log_bug(exc: BaseException) -> str:
    """Say plainly that an unexpected error is a bug (the traceback only with POPULATOR_DEBUG)."""
    while isinstance(exc, BaseExceptionGroup):  # the task group's wrapper says nothing useful
        exc = exc.exceptions[0]
    message = f"internal error: {type(exc).__name__}: {exc}"
    log.error(
        "%s. This is a bug in populator; rerun with POPULATOR_DEBUG=1 for the traceback and report it.",
        message,
    )
    return message
