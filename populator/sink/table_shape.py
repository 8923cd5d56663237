"""The manifest table as DynamoDB is told it: its keys, their types, and how it is billed.

Snowplow's library creates `eventId` (S, HASH) and `fingerprint` (S, RANGE); CreateTable (for
`run`) and ImportTable (for `import`) both take the definition from here, and a table found is
checked against the same keys.
"""

from __future__ import annotations

from typing import Any

#: (attribute, key type, attribute type) of the manifest's primary key.
MANIFEST_KEYS = frozenset({("eventId", "HASH", "S"), ("fingerprint", "RANGE", "S")})


def table_definition(name: str, provisioned: tuple[int, int] | None) -> dict[str, Any]:
    """CreateTable's parameters for a manifest table (ImportTable's `TableCreationParameters`):
    on demand, or with `provisioned` (read, write) capacity units."""
    ordered = sorted(MANIFEST_KEYS, key=lambda key: key[1])  # HASH before RANGE
    billing: dict[str, Any] = (
        {"BillingMode": "PAY_PER_REQUEST"}
        if provisioned is None
        else {
            "BillingMode": "PROVISIONED",
            "ProvisionedThroughput": {
                "ReadCapacityUnits": provisioned[0],
                "WriteCapacityUnits": provisioned[1],
            },
        }
    )
    return {
        "TableName": name,
        "AttributeDefinitions": [
            {"AttributeName": name_, "AttributeType": kind} for name_, _, kind in ordered
        ],
        "KeySchema": [{"AttributeName": name_, "KeyType": key} for name_, key, _ in ordered],
        **billing,
    }
