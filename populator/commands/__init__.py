"""The command line: `run`, `plan`, `verify`, `demo`, and what each shows on screen.

- `cli`: the typer app, its options and exit codes (`main` is the console script).
- `execute`: a `BackfillJob` from arguments, and a job run with progress, summary and report.
- `watch`: the displays, logs and report one run opens and closes.
- `plan`, `plan_view`, `verify`, `verify_view`: the two read-only commands and their screens.
- `demo`: the embedded demo on moto, over an archive from `populator.samples`.

The top of the house: imports any room, and no room imports it.
"""
