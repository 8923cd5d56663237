"""Where a job's items go: the contract between the one orchestration and its destinations.

A job lists, reads and parses the archive the same way whatever it writes to; only the
destination differs. `populator run` writes to the table (`table_destination`); `populator
import` stages the items in S3 and has ImportTable create the table (`staging_destination`,
finished by `table_import`). A third destination is a writer in `sink/` and a class here that
keeps this protocol.

```
open ─► checkpoint ─► attach ─► prepare ─► pipeline ─► finish
                                           (each process: writers.ready once, writers.open_writer)
```
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from ..observe.hub import Hub
from ..sink.writes import ItemWriter, TableInfo
from ..source.archive import ArchiveObject
from .checkpoint import Journal

if TYPE_CHECKING:
    from .clients import Clients
    from .spec import BackfillJob

#: What a phase of the job is shown with: the command's displays, entered around each phase.
PhaseDisplay = Callable[[str], AbstractContextManager[None]]
#: Whether an object was finished by an earlier run of the same job.
Skip = Callable[[ArchiveObject], bool]


@dataclass(frozen=True)
class EarlierRun:
    """What earlier runs of the same job did: objects they finished, and how many of the first
    lines of others they wrote every item of (their prefixes; None: none kept)."""

    finished: Skip
    lines_done: Callable[[ArchiveObject], int] | None = None


# The phases a job goes through, as `PhaseDisplay` is told them.
WRITING, STAGING, IMPORTING = "writing", "staging", "importing"


@dataclass(frozen=True)
class RateSharing:
    """One process's part in a rate controller shared by several."""

    state: Any  # a ratelimit.SharedControllerState
    share: float  # the fraction of the common rate this process paces at


@dataclass(frozen=True)
class WorkerShare:
    """What a worker process is given by its parent: the table it made ready, a rate share."""

    table: TableInfo | None
    rate: RateSharing


@dataclass
class ProcessParts:
    """What one process hands its destination's writer."""

    job: BackfillJob
    clients: Clients
    hub: Hub
    stack: contextlib.AsyncExitStack  # closes the writer with the process's pipeline
    table: TableInfo | None  # the table made ready by the parent (None: writing elsewhere)
    rate: RateSharing | None  # this process's share of one rate controller (None: all of it)
    #: tasks the writer keeps running beside the pipeline (the rate watcher): the first to fail
    #: ends the pipeline with its error, instead of dying unseen
    helpers: list[asyncio.Task[None]] = field(default_factory=list)


class WriterFactory(Protocol):
    """Each process's part of a destination: what it needs before writing, and its writer.

    Handed to every worker process, so it holds only picklable settings, never clients.
    """

    @property
    def stores_on_acknowledge(self) -> bool:
        """Whether an item its writer acknowledges is stored for good (the table's writers), so
        that each object's acknowledged prefix may be kept; staged items are not, until their
        staged object is uploaded."""
        ...

    async def ready(self, job: BackfillJob, clients: Clients, hub: Hub) -> TableInfo | None:
        """Once, in the parent, before any object is read: the table the writers write to
        (described, or created), or None when they write elsewhere."""
        ...

    async def open_writer(self, process: ProcessParts) -> ItemWriter | None:
        """This process's writer, closed with `process.stack`; None for a dry run."""
        ...


class Destination(Protocol):
    """The parent's side of a destination, for the life of one job."""

    @property
    def writers(self) -> WriterFactory:
        """Each process's part of the destination."""
        ...

    @property
    def phase(self) -> str:
        """What the pipeline's phase is called: WRITING or STAGING."""
        ...

    async def open(self, resources: contextlib.AsyncExitStack) -> None:
        """Before any file is written: the clients it needs, and what must be refused first."""
        ...

    def attach(
        self, checkpoint: Journal | None, hub: Hub, resources: contextlib.AsyncExitStack
    ) -> EarlierRun | None:
        """Subscribe what records finished objects (and prefixes) in the checkpoint, and the
        destination's own journals, closed with `resources`; returns what earlier runs did."""
        ...

    async def prepare(self, resources: contextlib.AsyncExitStack) -> bool:
        """After the checkpoint is open, before the pipeline: False when there is nothing to
        read (an import already asked for, which the job reattaches to)."""
        ...

    async def finish(self, hub: Hub, stop: asyncio.Event, display: PhaseDisplay) -> None:
        """After every object is written: the destination's own last steps (none for the table)."""
        ...
