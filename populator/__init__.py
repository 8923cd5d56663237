"""populator: back-fill the Snowplow event manifest from an enriched-event archive."""

from .errors import ConfigError, ObjectFailed, PopulatorError, TableSchemaError, UsageError
from .events import BadRowReason, ManifestItem, parse_line

__version__ = "0.1.0"

__all__ = [
    "BadRowReason",
    "ConfigError",
    "ManifestItem",
    "ObjectFailed",
    "PopulatorError",
    "TableSchemaError",
    "UsageError",
    "__version__",
    "parse_line",
]
