"""What the operator sees and keeps: the events of a run and their subscribers.

- `hub`: the event records stages publish (`ObjectFinished`, `Throttled`...) and the `Hub`.
- `report`: the `Tally` that counts every event, and the JSON report made of it.
- `snapshot`, `progress`, `summary`: rates and time left, the live display, the end summary.
- `timeline`: the run's figures every few seconds, bounded, for the report.
- `html_report`: the report as one self-contained page (uPlot's charts, inlined from `assets/`);
  `stored_reports`: a report read back from a file, a run's folder or a `--log-path`.
- `import_progress`: what an import adds (`ImportTally`, its display, progress and summary).
- `logs`, `eventlog`, `logstore`: logging set-up, events as log lines, `--log-path`.

Stages never print; everything here reads events. Imports the layers below it (`events`,
`config`, and the record types of `source` and `sink`).
"""
