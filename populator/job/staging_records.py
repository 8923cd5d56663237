"""What an import keeps between runs: the checkpoint and the staging journal, side by side.

An archive object is finished for the checkpoint once the staged object holding it is wholly
uploaded (or at once, when it gave no item). The staging journal keeps the staged objects, the
uploads in flight, and the import's token and ARN, so that a rerun resumes or reattaches.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..observe.hub import Event, ObjectFinished, ObjectStaged, StagedUploadAborted, StagedUploadStarted
from ..observe.import_progress import ImportTally
from ..sink.staging import MAX_STAGED_OBJECTS
from ..source.archive import ArchiveObject
from .checkpoint import FinishedObject, Journal
from .staging_journal import StagingJournal, finished


@dataclass
class Journals:
    checkpoint: Journal
    staging: StagingJournal
    reconciled: frozenset[tuple[str, str]] = frozenset()  # (key, ETag) finished from the staging journal

    def is_done(self, obj: ArchiveObject) -> bool:
        """Finished (staged, or with no item to stage) in an earlier run, with the same ETag."""
        return self.checkpoint.is_finished(obj) or (obj.key, obj.etag) in self.reconciled


def open_journals(checkpoint: Journal, path: Path, header: dict[str, object], restart: bool) -> Journals:
    """The staging journal at `path`, next to the open checkpoint (which its opener closes)."""
    return Journals(checkpoint, StagingJournal.open(path, header, restart=restart))


class Recorder:
    """The parent's subscriber: staged objects into the staging journal, then their archive
    objects into the checkpoint. An object that gave no item is finished at once."""

    def __init__(self, journals: Journals) -> None:
        self._journals = journals

    def __call__(self, event: Event) -> None:
        journal = self._journals.staging
        match event:
            case ObjectFinished(obj=obj, items=0):
                self._journals.checkpoint.record(
                    FinishedObject(obj.key, obj.etag, obj.size, event.lines, 0, event.bad_rows)
                )
            case StagedUploadStarted(key=key, upload_id=upload_id):
                if len(journal.state.staged) + len(journal.state.uploads) >= MAX_STAGED_OBJECTS:
                    raise UsageError(
                        f"this import would need more than {MAX_STAGED_OBJECTS:,} staged objects, "
                        "ImportTable's limit: run it again with a larger --items-per-object."
                    )
                journal.upload_started(key, upload_id)
            case StagedUploadAborted(key=key, upload_id=upload_id):
                journal.aborted(key, upload_id)
            case ObjectStaged(staged=staged):
                journal.staged(staged)
                for held in staged.held:
                    self._journals.checkpoint.record(finished(held))


def seed_tally(imports: ImportTally, journals: Journals) -> None:
    state = journals.staging.state
    imports.seed(
        objects=len(state.staged),
        items=state.items,
        raw=state.bytes,
        compressed=state.compressed_bytes,
        duplicates=state.duplicates,
    )
    imports.import_arn = state.import_arn
    imports.staging_deleted = state.cleaned
