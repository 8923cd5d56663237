"""What DynamoDB charges for what a backfill does: the prices behind every cost populator shows.

Defaults are us-east-1's list prices for a Standard table class; every command that shows a
cost takes the price as an option, because regions, table classes and agreements differ.
"""

from __future__ import annotations

# USD per million on-demand write request units, since the price cut of November 2024.
DEFAULT_PRICE_PER_MILLION_WRU = 0.625


def write_cost_usd(units: float, price_per_million: float = DEFAULT_PRICE_PER_MILLION_WRU) -> float:
    return units / 1_000_000 * price_per_million


# USD per GB of source data ImportTable processes, counted uncompressed (items that fail to load
# are billed too): us-east-1's list price as issue 15 read it; `--price-per-gb-import` changes it.
DEFAULT_PRICE_PER_GB_IMPORT = 0.15
GB = 1024**3  # AWS bills data by the binary gigabyte


def import_cost_usd(uncompressed_bytes: float, price_per_gb: float = DEFAULT_PRICE_PER_GB_IMPORT) -> float:
    return uncompressed_bytes / GB * price_per_gb
