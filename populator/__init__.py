"""populator: back-fill the Snowplow event manifest from an enriched-event archive.

The rooms, in the order data flows (see ARCHITECTURE.md): `events` (the pure core) and
`errors` at the bottom; `config` and `samples`; `source` and `sink`; `observe`; `job`; `commands` on top.

The library surface is re-exported here: `run_backfill` (into the table) and `run_import`
(staged in S3, then ImportTable) take a `BackfillJob`; a job with a `Staging` is an import.
The job-level names are loaded on first use (PEP 562), so `import populator.events` stays as
cheap as the module itself: a worker process or a one-line script does not pay for the
pipeline, tenacity and the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from .errors import ConfigError, PopulatorError, TableSchemaError, UsageError
from .events import NO_FINGERPRINT, BadRowReason, ManifestItem, SkipReason, parse_line

if TYPE_CHECKING:
    from .config.storage import StorageConfig, load_resolver_config, load_storage_config
    from .job.backfill import run_backfill, run_import
    from .job.pipeline import PipelineOptions
    from .job.spec import BackfillJob, Staging
    from .observe.hub import Hub
    from .observe.import_progress import ImportTally
    from .observe.report import Tally
    from .source.archive import parse_location

_LAZY = {
    "BackfillJob": "populator.job.spec",
    "Hub": "populator.observe.hub",
    "ImportTally": "populator.observe.import_progress",
    "PipelineOptions": "populator.job.pipeline",
    "StorageConfig": "populator.config.storage",
    "Tally": "populator.observe.report",
    "load_resolver_config": "populator.config.storage",
    "load_storage_config": "populator.config.storage",
    "parse_location": "populator.source.archive",
    "Staging": "populator.job.spec",
    "run_backfill": "populator.job.backfill",
    "run_import": "populator.job.backfill",
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'populator' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(_LAZY[name]), name)


__all__ = [
    "NO_FINGERPRINT",
    "BackfillJob",
    "BadRowReason",
    "ConfigError",
    "Hub",
    "ImportTally",
    "ManifestItem",
    "PipelineOptions",
    "PopulatorError",
    "SkipReason",
    "Staging",
    "StorageConfig",
    "TableSchemaError",
    "Tally",
    "UsageError",
    "__version__",
    "load_resolver_config",
    "load_storage_config",
    "parse_line",
    "parse_location",
    "run_backfill",
    "run_import",
]
