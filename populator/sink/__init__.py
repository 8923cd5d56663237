"""Where manifest items go: the DynamoDB table or staged objects, and how fast.

- `writes`: the vocabulary (`ItemWriter`, `RetryPolicy`, `TableInfo`, `WriteFailed`), free of
  AWS libraries.
- `batching`: items → BatchWriteItem requests with unique keys.
- `manifest`: the table (describe, create, TTL) and its two writers, batch and conditional.
- `transport`, `sigv4`: how a write request reaches the wire (botocore, or signed here).
- `ratelimit`: the adaptive rate controller; `throughput`: its ceilings from options and table.
- `staging`: the import's writer (gzip DynamoDB JSON by multipart upload);
  `import_requests`: ImportTable, DescribeImport and TTL requests and answers.
- `table_shape`: the manifest table's keys and definition (CreateTable, ImportTable).
- `control_plane`: DescribeTable, CreateTable, TTL, ImportTable... retried when AWS says later.
- `pricing`: default prices of write units and of ImportTable.

Imports `populator.config`, `populator.events` and `populator.errors`; never a source.
"""
