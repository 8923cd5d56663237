"""One backfill end to end: the pipeline that joins a source to a sink, and what keeps it safe.

- `spec`: `BackfillJob`, one backfill's every option, validated.
- `backfill`: `run_backfill`, the library entry point: checkpoint, bad rows, one process or many.
- `process`, `workers`: one process's share (clients, table, writer), and `--processes P`.
- `pipeline`: listing → readers → batches → writers, bounded queues, cancellation.
- `checkpoint`: the resumable journal; `badrows`: the bad-row file and `--max-bad-rows`.
- `interrupts`, `runtime`, `cores`: signals, process-wide settings, usable CPUs.

May import every room below it; nothing below imports it.
"""
