"""Sample enriched archives: realistic Snowplow archives, and what a correct run must find in them.

Used by `populator demo`, the tests and the benchmarks; not a command. Pure stdlib, and
deterministic for a given `SampleSpec` (including its `now`).

- `archive`: `write_archive` and its `SampleSpec`: run folders (`run_id`), parts in every format
  populator reads (`FORMATS`), duplicates, bad, blank and expired lines, marker files.
- `expected`: `ExpectedManifest`, what the archive holds (items, expired ones, line tallies,
  objects), from what the generator chose to write; `TTL_SECONDS`.
- `lines`: one line: `enriched_line` (a valid 131-field event), its long contexts, the bad lines.
- `fields`: the pools of field values a line is drawn from (geos, pages, user agents, users...).
- `stamps`: event ids, fingerprints and timestamps in the enriched format.

Imports nothing of populator's: the expectation never comes from reading the lines back.
"""
