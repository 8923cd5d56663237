"""The command line: thin commands that parse, build a job, show it, and end with an exit code.

- `cli`: the typer app and `main` (the console script); registers each command below.
- `options`: every option and argument, declared once (`import_options`: those of `import` and
  `plan` alone); `groups`: those several commands take together (`SourceArguments`,
  `JobArguments`, `OutputArguments`).
- `run`, `import_table`, `plan`, `verify`, `report`: one module a command (`populator import` is
  `import_table`); `demo`: the embedded demo on moto (its command is in `cli`).
- `build`: arguments → a validated `BackfillJob` (with `ImportArguments`, an import).
- `execute`: a job run with its displays, signals and summary, and its exit code.
- `failures`: the one place where an exception that ends a command is told and becomes its
  exit code (the codes themselves are in `populator/errors.py`).
- `watch`: the displays, logs and report one job opens and closes; `outputs`: what the operator
  asked to see and keep, checked.
- `plan_view`, `verify_view`: what `plan` and `verify` print.
- `status`: a fleet at a glance from the snapshots under a `--log-path`; `status_view`: what it
  prints (a table a job, 80 columns) and its small HTML page.

The top of the house: imports any room, and no room imports it.
"""
