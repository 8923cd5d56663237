"""Logs: the stdlib `logging` module, one handler on stderr, and a file for `--log-path`.

Records come from populator's loggers (`populator`, `populator.run`, `populator.progress`) and,
at WARNING and above, from the libraries it uses. Formats:

* stderr: `error: message`, `warning: message`, `message` (a live display shows progress, so
  `populator.progress` records are kept off a terminal's stderr while it runs);
* the log file of `--log-path`: `2026-11-27T12:00:00.000Z info: message`;
* `--json-logs`: one JSON object a line, `{"time", "level", "logger", "message", ...fields}`.

Every formatted record goes through `redact`: secrets registered with `add_secret` (the storage
config's secret key, the AWS environment's) are replaced by `********`, whatever logged them.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import TextIO, overload

import orjson

LOGGER = "populator"
LEVELS = ("debug", "info", "warning", "error")
MASK = "********"
_MIN_SECRET_LENGTH = 12  # shorter values (moto's "testing", the demo's "demo") would mask plain words
_SECRET_ENV = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")
_SECRETS: set[str] = set()
# Attributes every LogRecord has; anything else was passed with `extra=` and is a JSON field.
_STANDARD = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class LogLevel(StrEnum):
    """`--log-level` values."""

    DEBUG = "debug"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


def add_secret(value: str | None) -> None:
    """Never show `value` in a log line, a report or a stored log."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        _SECRETS.add(value)


def redact(text: str) -> str:
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


@overload
def redact_data(data: str) -> str: ...
@overload
def redact_data(data: dict[str, object]) -> dict[str, object]: ...
@overload
def redact_data(data: object) -> object: ...


def redact_data(data: object) -> object:
    """`redact` over every string of a JSON-like structure (a tuple comes back a list)."""
    if isinstance(data, str):
        return redact(data)
    if isinstance(data, dict):
        return {redact_data(key): redact_data(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [redact_data(value) for value in data]
    return data


def parse_level(name: str) -> int:
    if name.lower() not in LEVELS:
        raise ValueError(f"log level {name!r}: use one of {', '.join(LEVELS)}")
    return int(getattr(logging, name.upper()))


class PlainFormatter(logging.Formatter):
    """stderr: `message`, `warning: message`, `error: message`; a log file: a UTC timestamp and
    the level before every message."""

    def __init__(self, *, timestamps: bool) -> None:
        super().__init__()
        self._timestamps = timestamps

    def format(self, record: logging.LogRecord) -> str:
        message = _message(record)
        level = record.levelname.lower()
        if record.exc_info:
            message = f"{message}\n{self.formatException(record.exc_info)}"
        if self._timestamps:
            text = f"{_timestamp(record.created)} {level}: {message}"
        else:
            text = message if record.levelno < logging.WARNING else f"{level}: {message}"
        return redact(text)


class JsonFormatter(logging.Formatter):
    """One JSON object a line, for log shippers; fields passed with `extra=` become keys."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": _timestamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": _message(record),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                data[key] = value
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(redact_data(data), default=str).decode()


def _message(record: logging.LogRecord) -> str:
    """The message, without a leading `warning: ` some messages carry (the level says it)."""
    message = record.getMessage()
    prefix = f"{record.levelname.lower()}: "
    return message[len(prefix) :] if message.lower().startswith(prefix) else message


def _timestamp(created: float) -> str:
    return datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _StderrHandler(logging.StreamHandler[TextIO]):
    """Writes to whatever `sys.stderr` is at the time (a live display redirects it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


class _Select(logging.Filter):
    """populator's records from `level` up; other libraries' from WARNING; some loggers never."""

    def __init__(self, level: int, hidden: Iterable[str] = ()) -> None:
        super().__init__()
        self.level = level
        self.hidden = set(hidden)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name in self.hidden:
            return False
        ours = record.name == LOGGER or record.name.startswith(LOGGER + ".")
        return record.levelno >= (self.level if ours else max(self.level, logging.WARNING))


class _LogFile(logging.FileHandler):
    """A log file that stops at its first OSError: told to `on_failure`, instead of logging's
    "--- Logging error ---" and a traceback on stderr for every record after it."""

    def __init__(self, path: Path, on_failure: Callable[[OSError], None] | None) -> None:
        self.failure: OSError | None = None
        self._on_failure = on_failure
        super().__init__(path, encoding="utf-8")

    def emit(self, record: logging.LogRecord) -> None:
        if self.failure is None:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            self._failed(error)
        else:
            super().handleError(record)

    def close(self) -> None:
        try:
            super().close()  # flushes what a failed write left in the buffer: it fails again
        except OSError as error:
            self._failed(error)

    def _failed(self, error: OSError) -> None:
        if self.failure is None:
            self.failure = error
            if self._on_failure is not None:
                self._on_failure(error)


@dataclass
class LogSetup:
    """Handlers installed on the root logger; `close()` takes them away again."""

    stderr_level: int
    json: bool
    terminal: bool
    handlers: list[logging.Handler] = field(default_factory=list)
    log_file: Path | None = None
    _saved_level: int = logging.NOTSET

    def hide_from_stderr(self, logger_name: str) -> None:
        """Keep one logger's records off stderr (a live display shows the same)."""
        for handler in self.handlers:
            if isinstance(handler, _StderrHandler):
                for selector in handler.filters:
                    if isinstance(selector, _Select):
                        selector.hidden.add(logger_name)

    def show_on_stderr(self, logger_name: str) -> None:
        for handler in self.handlers:
            if isinstance(handler, _StderrHandler):
                for selector in handler.filters:
                    if isinstance(selector, _Select):
                        selector.hidden.discard(logger_name)

    def add_file(
        self, path: Path, level: int = logging.INFO, on_failure: Callable[[OSError], None] | None = None
    ) -> None:
        """Also write every record from `level` (or the stderr level, if lower) to `path`; a write
        that fails (a full disk) is told to `on_failure`, once, and the file is written no more."""
        handler = _LogFile(path, on_failure)
        handler.setFormatter(JsonFormatter() if self.json else PlainFormatter(timestamps=True))
        handler.addFilter(_Select(min(level, self.stderr_level)))
        self._install(handler)
        self.log_file = path

    def close_file(self) -> None:
        for handler in [h for h in self.handlers if isinstance(h, logging.FileHandler)]:
            handler.close()
            logging.getLogger().removeHandler(handler)
            self.handlers.remove(handler)
        self._set_level()

    def _install(self, handler: logging.Handler) -> None:
        self.handlers.append(handler)
        logging.getLogger().addHandler(handler)
        self._set_level()

    def _set_level(self) -> None:
        levels = [f.level for h in self.handlers for f in h.filters if isinstance(f, _Select)]
        logging.getLogger(LOGGER).setLevel(min(levels) if levels else self._saved_level)

    def close(self) -> None:
        self.close_file()
        for handler in self.handlers:
            handler.close()
            logging.getLogger().removeHandler(handler)
        self.handlers.clear()
        logging.getLogger(LOGGER).setLevel(self._saved_level)
        global _ACTIVE
        if _ACTIVE is self:
            _ACTIVE = None

    def __enter__(self) -> LogSetup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


_ACTIVE: LogSetup | None = None


def active() -> LogSetup | None:
    """The setup `configure_logging` installed, while it is in place."""
    return _ACTIVE


def default_level(*, quiet: bool, terminal: bool) -> int:
    """Errors only when quiet; warnings on a terminal (the display says the rest); info elsewhere."""
    if quiet:
        return logging.ERROR
    return logging.WARNING if terminal else logging.INFO


def configure_logging(
    *, level: str | None = None, json_logs: bool = False, quiet: bool = False, terminal: bool = False
) -> LogSetup:
    """Install the stderr handler (replacing a previous setup) and register the environment's secrets."""
    global _ACTIVE
    if _ACTIVE is not None:
        _ACTIVE.close()
    for name in _SECRET_ENV:
        add_secret(os.environ.get(name))
    stderr_level = parse_level(level) if level else default_level(quiet=quiet, terminal=terminal)
    setup = LogSetup(
        stderr_level, json_logs, terminal, _saved_level=logging.getLogger(LOGGER).level or logging.NOTSET
    )
    handler = _StderrHandler()
    handler.setFormatter(JsonFormatter() if json_logs else PlainFormatter(timestamps=False))
    handler.addFilter(_Select(stderr_level))
    setup._install(handler)
    _ACTIVE = setup
    return setup
