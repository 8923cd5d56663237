"""What the user configures: the storage config, Iglu resolution and validation, AWS sessions.

- `storage`: the `amazon_dynamodb_config` and the Iglu resolver config a Snowplow user already
  has (`load_storage_config`, `load_resolver_config`, `StorageConfig`, `AwsSettings`; re-exports
  `Secret`).
- `secret`: `Secret`, a config value that never reaches output, logs or reports.
- `iglu`: the resolver: schema keys, the resolver config, the repositories' lookup order,
  embedded lookups and the bundled fallback; `schemas/` holds the bundled schemas.
- `iglu_http`: an HTTP repository's GET, with retries, a size cap and no leaked apikey.
- `iglu_cache`: HTTP lookups remembered on disk between invocations for the resolver's
  `cacheTtl` (`$POPULATOR_CACHE_DIR`, `$XDG_CACHE_HOME/populator` or `~/.cache/populator`).
- `validation`: `validate` against an Iglu schema, and the wording of what is wrong.
- `aws`: sessions and clients made the standard way, and AWS errors in the user's terms.
- `outage`: an endpoint that stops answering, waited for up to `--max-outage` (`OutageWatch`).

Imports only `populator.events` and `populator.errors`.
"""
