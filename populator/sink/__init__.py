"""Where manifest items go: the DynamoDB table, and how fast they may be written to it.

- `writes`: the vocabulary (`RetryPolicy`, `TableInfo`, `WriteFailed`), free of AWS libraries.
- `batching`: items → BatchWriteItem requests with unique keys.
- `manifest`: the table (describe, create, TTL) and its two writers, batch and conditional.
- `transport`, `sigv4`: how a write request reaches the wire (botocore, or signed here).
- `ratelimit`: the adaptive rate controller; `throughput`: its ceilings from options and table.

Imports `populator.config`, `populator.events` and `populator.errors`; never a source.
"""
