"""What the user configures: the storage config, Iglu resolution and validation, AWS sessions.

- `storage`: the `amazon_dynamodb_config` and the Iglu resolver config a Snowplow user already
  has (`load_storage_config`, `load_resolver_config`, `StorageConfig`, `AwsSettings`, `Secret`).
- `iglu`: schema keys, the resolver, schema lookup, validation; `schemas/` holds the bundled ones.
- `aws`: sessions and clients made the standard way, and AWS errors in the user's terms.

Imports only `populator.events` and `populator.errors`.
"""
