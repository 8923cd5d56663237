"""Redraw the README's pictures from a real run: `python docs/pictures.py` (needs the `demo` extra).

Generates the demo's sample archive, starts moto on loopback, uploads the archive, then records
with rich's own SVG export: `populator plan` (docs/plan.svg), the live display of `populator
run` caught half way through (docs/progress.svg), its summary (docs/summary.svg) and
`populator verify` (docs/verify.svg).
"""

from __future__ import annotations

import asyncio
import io
import logging
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

import orjson
from rich.console import Console

from populator.commands.build import build_job
from populator.commands.demo import (
    DEMO_BUCKET,
    DEMO_PREFIX,
    DEMO_REGION,
    DEMO_TABLE,
    RESOLVER_CONFIG_DOCUMENT,
    _free_port,
    _upload,
    demo_spec,
    storage_config_document,
)
from populator.commands.plan_view import render_plan
from populator.commands.verify_view import render_verification
from populator.job.backfill import run_backfill
from populator.job.plan import make_plan
from populator.job.verify import verify
from populator.observe.hub import Hub
from populator.observe.progress import LiveProgress
from populator.observe.report import Tally
from populator.observe.snapshot import Speedometer
from populator.observe.summary import print_summary
from populator.samples.archive import write_archive
from populator.sink.throughput import ThroughputOptions

DOCS = Path(__file__).resolve().parent
WIDTH = 124
ARCHIVE = f"s3://{DEMO_BUCKET}/{DEMO_PREFIX}/"


def recorder() -> Console:
    return Console(
        record=True, force_terminal=True, width=WIDTH, file=io.StringIO(), color_system="truecolor"
    )


def save(console: Console, name: str, title: str) -> None:
    console.save_svg(str(DOCS / name), title=title)
    print(f"wrote docs/{name}")


def catch_half_way(live: LiveProgress, tally: Tally, into: Console, done: threading.Event) -> None:
    """Record the live display once more than half the bytes are read (and a rate is known)."""
    speed = Speedometer(tally)
    while not done.wait(0.25):
        snap = speed.snapshot()
        if snap.fraction is not None and snap.fraction >= 0.5 and snap.items_per_s_now:
            into.print(live.renderable())
            return


def main() -> None:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    workdir = Path(tempfile.mkdtemp(prefix="populator-pictures-"))
    write_archive(workdir / "archive", demo_spec(20_000))
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    os.environ.update(
        AWS_ACCESS_KEY_ID="demo", AWS_SECRET_ACCESS_KEY="demo", AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}"
    )
    os.environ.pop("AWS_PROFILE", None)
    try:
        _upload(workdir / "archive", f"http://127.0.0.1:{port}")
        storage, resolver = workdir / "dynamodb.json", workdir / "iglu_resolver.json"
        storage.write_bytes(orjson.dumps(storage_config_document(DEMO_TABLE, DEMO_REGION)))
        resolver.write_bytes(orjson.dumps(RESOLVER_CONFIG_DOCUMENT))

        shown = recorder()
        shown.print(f"$ populator plan {ARCHIVE} dynamodb.json iglu_resolver.json --on-demand", style="dim")
        render_plan(shown, asyncio.run(make_plan(build_job(ARCHIVE, storage, resolver, on_demand=True))))
        save(shown, "plan.svg", "populator plan")

        job = build_job(
            ARCHIVE,
            storage,
            resolver,
            on_demand=True,
            processes=2,
            checkpoint=workdir / "checkpoint.jsonl",
            throughput=ThroughputOptions(max_write_rate=1500.0),
        )
        tally = Tally()
        frame = recorder()
        frame.print(
            f"$ populator run {ARCHIVE} dynamodb.json iglu_resolver.json --on-demand --max-write-rate 1500",
            style="dim",
        )
        live = LiveProgress(Console(file=io.StringIO(), force_terminal=True, width=WIDTH), tally)
        done = threading.Event()
        catcher = threading.Thread(target=catch_half_way, args=(live, tally, frame, done))
        with live:
            catcher.start()
            asyncio.run(run_backfill(job, Hub(), tally))
            done.set()
            catcher.join()
        save(frame, "progress.svg", "populator run: the live display, half way")
        summary = recorder()
        print_summary(summary, tally)
        save(summary, "summary.svg", "populator run: the summary")

        checked = recorder()
        checked.print(
            f"$ populator verify {ARCHIVE} dynamodb.json iglu_resolver.json --sample 1000", style="dim"
        )
        render_verification(checked, asyncio.run(verify(build_job(ARCHIVE, storage, resolver), 1000)))
        save(checked, "verify.svg", "populator verify")
    finally:
        server.stop()


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"done in {time.monotonic() - started:.0f} s", file=sys.stderr)
