"""The library surface: `populator/__init__.py` exports exactly these names, and each resolves.

Changing the public API is a decision: this list changes with it (httpx's test is the model).
"""

from __future__ import annotations

import populator

EXPORTED = {
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
}


def test_all_is_the_public_surface() -> None:
    assert set(populator.__all__) == EXPORTED
    assert len(populator.__all__) == len(EXPORTED), "a name listed twice"


def test_every_exported_name_resolves_and_says_where_it_lives() -> None:
    for name in populator.__all__:
        member = getattr(populator, name)
        if callable(member) and hasattr(member, "__module__"):
            assert member.__module__.startswith("populator"), name


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        populator.no_such_thing  # type: ignore[attr-defined]  # noqa: B018
    except AttributeError as exc:
        assert "no_such_thing" in str(exc)
    else:
        raise AssertionError("populator.no_such_thing resolved")


def test_the_package_says_it_is_typed() -> None:
    from pathlib import Path

    assert (Path(populator.__file__).parent / "py.typed").is_file()
