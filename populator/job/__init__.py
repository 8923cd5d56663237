"""One job end to end, whatever its destination: the orchestration, and what keeps it safe.

- `spec`: `BackfillJob` (every option, validated) and `Staging` (an import's destination).
- `backfill`: `run_job`, the one orchestration; `run_backfill` and `run_import` call it.
- `destination`: the contract between the orchestration and a destination; `table_destination`
  (`run`: the table's writers), `staging_destination` (`import`: a `Stager` in each process).
- `staging_checks`, `staging_records`, `staging_journal`, `table_import`: an import's checks
  before staging, its journals, and its last steps (ImportTable, TTL, sample, clean-up).
- `process`, `workers`, `clients`: one process's share, `--processes P`, AWS clients and `guard`.
- `pipeline`: listing → readers → batches → writers, bounded queues, cancellation.
- `checkpoint`, `finished`, `prefix`: the resumable journal, what earlier runs finished, and how
  far into each object in flight every item is acknowledged.
- `badrows`, `limits`, `interrupts`, `faults`: bad rows, budgets, signals, and errors raised where
  nobody awaits them (a timer, a logging handler) ending the run.
- `plan`, `verify`: what a job would do, and a sample of it read back from the table.
- `runtime`, `cores`: process-wide settings, usable CPUs.

May import every room below it; nothing below imports it.
"""
