"""What the stages report, and who listens.

Stages publish small event records to a `Hub`; progress displays, logs and the summary are
subscribers. No stage knows about the terminal.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from ..sink.import_requests import ImportDescription
from ..sink.ratelimit import RateState
from ..sink.staging import StagedObject
from ..sink.writes import TableInfo
from ..source.archive import ArchiveObject, RunFolder


@dataclass(frozen=True, slots=True)
class RunsSelected:
    runs: list[RunFolder]


@dataclass(frozen=True, slots=True)
class ObjectListed:
    obj: ArchiveObject


@dataclass(frozen=True, slots=True)
class ListingDone:
    objects: int
    bytes: int


@dataclass(frozen=True, slots=True)
class TableReady:
    table: TableInfo


@dataclass(frozen=True, slots=True)
class BytesRead:
    obj: ArchiveObject
    count: int  # compressed bytes, as stored


@dataclass(frozen=True, slots=True)
class LinesParsed:
    """One block of lines of an object, parsed."""

    obj: ArchiveObject
    lines: int
    blank: int
    bad: Counter[str]
    expired: int
    merged: int  # duplicates of a key already in the same request, folded into it
    no_fingerprint: int = 0  # valid events without a fingerprint: skipped, not bad rows


@dataclass(frozen=True, slots=True)
class ItemsAcknowledged:
    obj: ArchiveObject
    written: int
    already_present: int
    dry_run: bool = False
    units_reported: float = 0.0  # write units DynamoDB's ConsumedCapacity reported
    units_counted: float = 0.0  # write units counted where the response reported none


@dataclass(frozen=True, slots=True)
class RateChanged:
    """The write-rate controller's state, published every second and on each cut."""

    state: RateState


@dataclass(frozen=True, slots=True)
class Throttled:
    """DynamoDB pushed back once (a throttling error or UnprocessedItems)."""

    reason: str = "UnprocessedItems"  # DynamoDB's throttling reason, else the error code


@dataclass(frozen=True, slots=True)
class ObjectSkipped:
    """Listed, and finished in an earlier run (the checkpoint says so, with the same ETag).

    Published instead of `ObjectListed`, not after it: a resume of a million objects skips
    nearly all of them, and one event each instead of two is a fifth of its time.
    """

    obj: ArchiveObject


@dataclass(frozen=True, slots=True)
class ObjectProgress:
    """Every item of the object's lines 1..`lines` is acknowledged: its prefix, for the checkpoint.

    Published about once a second an object while it is written, and for every object in flight
    when the pipeline ends (a stop, a limit, a failure), so a resume writes none of it again.
    """

    obj: ArchiveObject
    lines: int


@dataclass(frozen=True, slots=True)
class PrefixCarried:
    """A read skipped the object's first `lines` lines: their `items` were acknowledged already
    (by an earlier run, or an earlier read of this one). Published once, when the object settles."""

    obj: ArchiveObject
    lines: int
    items: int


@dataclass(frozen=True, slots=True)
class ServiceWaiting:
    """A service stopped answering (`since`: when, wall clock; `reason`), or (`since` None) it
    answers again. The work that needs it waits meanwhile (see config/outage.py)."""

    service: str
    since: float | None
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ClockSkewed:
    """`service` refused a request for its signing time: AWS's clock is `offset` seconds ahead of
    this machine's (negative: behind), from its answer's Date. The signed writes use AWS's time
    from now on (see sink/transport.py)."""

    service: str
    offset: float


@dataclass(frozen=True, slots=True)
class BadRowFound:
    obj: ArchiveObject
    line: int  # 1-based line number in the (decompressed) object
    reason: str
    head: bytes  # the first KiB of the line


@dataclass(frozen=True, slots=True)
class ObjectRestarted:
    """Reading an object broke off (S3 reset, short body...): it is read again from its start.

    Carries what was counted of it so far, so tallies can take it back.
    """

    obj: ArchiveObject
    reason: str
    attempt: int
    lines: int
    blank: int
    bad: Counter[str]
    expired: int
    merged: int
    no_fingerprint: int = 0


@dataclass(frozen=True, slots=True)
class ObjectFinished:
    """Every item of the object is acknowledged by DynamoDB (or counted, in a dry run)."""

    obj: ArchiveObject
    lines: int = 0
    items: int = 0
    bad_rows: int = 0
    no_fingerprint: int = 0


@dataclass(frozen=True, slots=True)
class ObjectFailedEvent:
    obj: ArchiveObject
    reason: str


# `populator import`: staged objects and the import (see sink/staging.py and sink/import_requests.py).


@dataclass(frozen=True, slots=True)
class StagedUploadStarted:
    """A staged object's multipart upload began: its key and upload id (to abort it after a crash)."""

    key: str
    upload_id: str


@dataclass(frozen=True, slots=True)
class StagedUploadAborted:
    key: str
    upload_id: str


@dataclass(frozen=True, slots=True)
class ObjectStaged:
    """A staged object is completely uploaded: the archive objects it holds are finished."""

    staged: StagedObject


@dataclass(frozen=True, slots=True)
class ImportDescribed:
    """What ImportTable or DescribeImport said about the import."""

    description: ImportDescription


Event = (
    RunsSelected
    | ObjectListed
    | ListingDone
    | TableReady
    | BytesRead
    | LinesParsed
    | ItemsAcknowledged
    | Throttled
    | ObjectFinished
    | ObjectFailedEvent
    | ObjectSkipped
    | BadRowFound
    | ObjectRestarted
    | ObjectProgress
    | PrefixCarried
    | ServiceWaiting
    | ClockSkewed
    | RateChanged
    | StagedUploadStarted
    | StagedUploadAborted
    | ObjectStaged
    | ImportDescribed
)
Subscriber = Callable[[Event], None]


@dataclass
class Hub:
    """Delivers every event to every subscriber, synchronously and in order."""

    subscribers: list[Subscriber] = field(default_factory=list)

    def subscribe(self, subscriber: Subscriber) -> None:
        self.subscribers.append(subscriber)

    def publish(self, event: Event) -> None:
        for subscriber in self.subscribers:
            subscriber(event)
