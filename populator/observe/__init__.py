"""What the operator sees and keeps: the events of a run and their subscribers.

- `hub`: the event records stages publish (`ObjectFinished`, `Throttled`...) and the `Hub`.
- `report`: the `Tally` that counts every event, and the JSON report made of it.
- `snapshot`, `progress`, `summary`: rates and time left, the live display, the end summary.
- `timeline`: the run's figures every few seconds, bounded, for the report.
- `html_report`: the report as one self-contained page (uPlot's charts, inlined from `assets/`);
  `stored_reports`: a report read back from a file, a run's folder or a `--log-path`.
- `import_progress`: what an import adds (`ImportTally`, its display, progress and summary).
- `logs`, `eventlog`, `logstore`: logging set-up, events as log lines, `--log-path`.
- `shard_status`: a run's status snapshot (job, shard, state, figures) and where it is kept;
  `status_store`: snapshots written and read under `--log-path` (local or S3); `status_feed`:
  the thread that publishes a run's snapshot as it goes; `fleet`: the snapshots judged at a
  moment (running, finished, failed, stale, missing), per job, for `populator status`.

Stages never print; everything here reads events. Imports the layers below it (`events`,
`config`, and the record types of `source` and `sink`).
"""
