"""`populator status`: a fleet of shards at a glance, from the snapshots they publish under --log-path.

The shards are real `populator run` processes against moto, on a paced table (the proxy's token
bucket), so that a shard is still running when it is killed with SIGKILL.
"""

from __future__ import annotations

import io
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from rich.console import Console

from populator.commands.status_view import fleet_html, render_fleet
from populator.observe.fleet import fleet
from populator.observe.shard_status import FAILED, FINISHED, INTERRUPTED, RUNNING, STOPPED
from populator.samples.archive import SampleSpec, write_archive
from populator.source.shard import shard_of
from tests.support.backfill_helpers import NOW, run_populator, upload, write_configs
from tests.support.fleet_snapshots import NOW as SNAPSHOT_NOW
from tests.support.fleet_snapshots import snap
from tests.support.terminal import run_in_a_terminal

SHARDS = 3
# Nine parts of 300 events: every shard gets some (checked below), and a paced table makes each
# shard take seconds.
SPEC = SampleSpec(runs=1, parts_per_run=9, events_per_part=300, formats=("gz",), now=NOW, seed=11)
CAPACITY = 300  # items a second the table admits, for all the shards together
TERMINAL = {"COLUMNS": "80", "LINES": "40", "TERM": "dumb", "NO_COLOR": "1"}


def status(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_populator("status", *args, env={**env, **TERMINAL}, timeout=60)


def snapshots(s3: Any, bucket: str, prefix: str) -> dict[str, dict[str, Any]]:
    """The status snapshots under s3://bucket/prefix, by file name."""
    found = {}
    for entry in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", ()):
        name = entry["Key"].rsplit("/", 1)[-1]
        found[name] = json.loads(s3.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read())
    return found


def start_shard(
    k: int, archive: str, storage: Path, resolver: Path, logs: str, work: Path, env: dict[str, str]
) -> subprocess.Popen[str]:
    args = [
        "run", archive, str(storage), str(resolver), "--on-demand", "--processes", "1",
        "--shard", f"{k}/{SHARDS}", "--log-path", logs, "--status-interval", "0.5",
        "--checkpoint", str(work / f"checkpoint-{k}.jsonl"),
    ]  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "populator", *args],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )  # fmt: skip


def wait_for(condition: Any, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def test_three_shards_one_killed_show_two_finished_one_stale_the_totals_and_the_command_to_go_on(
    aws, dynamo_proxy, unique_name, tmp_path
):
    root = tmp_path / "archive"
    expected = write_archive(root, SPEC)
    per_shard = [0] * SHARDS
    for key in expected.objects:
        per_shard[shard_of(key, SHARDS)] += 1
    assert all(per_shard), per_shard
    s3 = aws.boto3_client("s3")
    upload(s3, root, unique_name, "enriched")
    logs = f"s3://{unique_name}/logs/"
    storage, resolver = write_configs(tmp_path, unique_name)
    env = dict(aws.env, AWS_ENDPOINT_URL_DYNAMODB=dynamo_proxy.url)
    dynamo_proxy.limit_capacity(CAPACITY)
    victim = max(range(SHARDS), key=lambda k: per_shard[k])  # the longest: surely running when killed
    archive = f"s3://{unique_name}/enriched/"
    processes = {k: start_shard(k, archive, storage, resolver, logs, tmp_path, env) for k in range(SHARDS)}
    victim_file = f"shard-{victim}-of-{SHARDS}.json"

    def victim_is_writing() -> bool:
        assert processes[victim].poll() is None, processes[victim].communicate()
        mine = snapshots(s3, unique_name, "logs/status/").get(victim_file)
        return mine is not None and mine["listing_done"] and mine["items_done"] > 0

    wait_for(victim_is_writing, "the victim's first figures")
    os.killpg(processes[victim].pid, signal.SIGKILL)
    processes[victim].wait(timeout=30)
    for k, process in processes.items():
        if k != victim:
            _, err = process.communicate(timeout=90)
            assert process.returncode == 0, err
    last = snapshots(s3, unique_name, "logs/status/")[victim_file]
    assert last["state"] == "running" and last["objects_done"] < last["objects_total"] == per_shard[victim]
    time.sleep(max(2.2 - (time.time() - _epoch(last["written_at"])), 0))

    # On the terminal: two finished, one stale, the totals, and the command to go on.
    shown = status(logs, "--stale-after", "2", env=aws.env)
    assert shown.returncode == 1, shown.stderr + shown.stdout
    lines = shown.stdout.splitlines()
    commands = [line for line in lines if line.startswith("  populator run ")]  # whole, to be copied
    assert all(len(line) <= 80 for line in lines if line not in commands), shown.stdout
    for k in range(SHARDS):
        [row] = [line for line in lines if line.startswith(f"{k}/{SHARDS} ")]
        assert row.split()[1] == ("stale" if k == victim else "finished"), row
    finished = sum(per_shard) - per_shard[victim]
    [totals] = [line for line in lines if line.split()[:2] == ["job", "blocked"]]
    assert f"{finished + last['objects_done']}/{len(expected.objects)}" in totals, totals
    words = " ".join(shown.stdout.split())
    assert "3 shards: 2 finished, 1 stale" in words
    assert f"shard {victim}/{SHARDS} stale: no snapshot for" in words
    [command] = [line.strip() for line in lines if line.strip().startswith("populator run ")]
    assert f"--shard {victim}/{SHARDS}" in command and logs in command
    assert "\x1b[" not in shown.stdout

    # As JSON: the same.
    as_json = status(logs, "--stale-after", "2", "--json", env=aws.env)
    assert as_json.returncode == 1, as_json.stderr
    report = json.loads(as_json.stdout)
    [job] = report["jobs"]
    assert report["exit_code"] == 1 and job["state"] == "blocked"
    assert job["shards_by_state"] == {"finished": 2, "stale": 1}
    states = {shard["shard"]: shard["state"] for shard in job["shards"]}
    assert states == {f"{k}/{SHARDS}": "stale" if k == victim else "finished" for k in range(SHARDS)}
    assert job["objects_total"] == len(expected.objects) and job["listing_done"]
    assert job["objects_done"] == finished + last["objects_done"]
    assert job["items_done"] == sum(shard["items_done"] for shard in job["shards"])
    assert job["eta_s"] is None  # a stale shard does not finish by itself
    [stale] = [shard for shard in job["shards"] if shard["state"] == "stale"]
    assert stale["command"] == command and stale["age_s"] >= 2 and stale["pid"] == processes[victim].pid
    assert stale["exit_code"] is None

    # The command to go on finishes the job, and status says so (exit 0).
    resumed = run_populator(*shlex.split(command)[1:], env=env, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    done = status(logs, "--stale-after", "2", "--json", env=aws.env)
    assert done.returncode == 0, done.stdout
    [job] = json.loads(done.stdout)["jobs"]
    assert job["state"] == "finished" and job["objects_done"] == job["objects_total"] == len(expected.objects)


def _epoch(iso: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(iso).timestamp()


def test_one_unsharded_run_on_a_local_log_path_is_shown_the_same(aws, unique_name, tmp_path):
    root = tmp_path / "archive"
    expected = write_archive(root, SampleSpec(runs=1, parts_per_run=2, events_per_part=50, now=NOW))
    storage, resolver = write_configs(tmp_path, unique_name)
    logs = tmp_path / "logs"
    ran = run_populator(
        "run", str(root), str(storage), str(resolver), "--on-demand", "--log-path", str(logs), env=aws.env
    )
    assert ran.returncode == 0, ran.stderr
    [snapshot] = (logs / "status").glob("*/unsharded.json")
    assert json.loads(snapshot.read_text())["state"] == "finished"
    html = tmp_path / "status.html"
    shown = status(str(logs), "--html", str(html), env=aws.env)
    assert shown.returncode == 0, shown.stderr + shown.stdout
    assert "unsharded: 1 finished" in shown.stdout
    [row] = [line for line in shown.stdout.splitlines() if line.startswith("- ")]
    assert row.split()[1:3] == ["finished", f"{len(expected.objects)}/{len(expected.objects)}"]
    assert not any(line.split()[:2] == ["job", "finished"] for line in shown.stdout.splitlines())  # no totals
    page = html.read_text()
    assert page.startswith("<!doctype html>") and "<td>finished</td>" in page and "http" not in page
    as_json = json.loads(status(str(logs), "--json", env=aws.env).stdout)
    [job] = as_json["jobs"]
    assert job["shards_total"] is None and job["shards"][0]["shard"] is None and job["state"] == "finished"


def test_watch_redraws_until_ctrl_c_and_exits_130(tmp_path):
    logs = tmp_path / "logs"
    (logs / "status").mkdir(parents=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **TERMINAL}
    process = subprocess.Popen(
        [sys.executable, "-m", "populator", "status", str(logs), "--watch", "--interval", "0.2", "--json"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stdout is not None
    first = [process.stdout.readline(), process.stdout.readline()]  # two readings, then Ctrl-C
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    readings = [json.loads(line) for line in [*first, *out.splitlines()]]
    assert len(readings) >= 2 and all(reading["jobs"] == [] for reading in readings)
    assert "Traceback" not in err


def test_nothing_under_the_location_is_exit_2_and_says_what_to_pass(tmp_path):
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **TERMINAL}
    empty = tmp_path / "empty"
    empty.mkdir()
    shown = run_populator("status", str(empty), env=env)
    assert shown.returncode == 2 and "No status snapshot here" in shown.stdout
    missing = run_populator("status", str(tmp_path / "nowhere"), env=env)
    assert missing.returncode == 2 and "no such directory" in missing.stderr
    bad = run_populator("status", str(empty), "--stale-after", "soon", env=env)
    assert bad.returncode == 2 and "--stale-after 'soon'" in bad.stderr
    helped = run_populator("status", "--help", env={**env, "COLUMNS": "200"})
    assert helped.returncode == 0 and "populator status s3://" in helped.stdout.split("Example")[1]
    assert "populator status s3://" in run_populator("--help", env={**env, "COLUMNS": "200"}).stdout


def test_a_log_path_bucket_that_is_missing_is_said_once_and_the_run_goes_on(aws, unique_name, tmp_path):
    root = tmp_path / "archive"
    write_archive(root, SampleSpec(runs=1, parts_per_run=2, events_per_part=50, now=NOW))
    storage, resolver = write_configs(tmp_path, unique_name)
    ran = run_populator(
        "run", str(root), str(storage), str(resolver), "--dry-run", "--log-path", f"s3://{unique_name}-no/x/",
        "--status-interval", "0.5", env=aws.env,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    assert ran.stderr.count("cannot publish the status snapshot") == 1, ran.stderr
    assert "NoSuchBucket" in ran.stderr and "Traceback" not in ran.stderr


def test_status_reads_nothing_it_does_not_know(tmp_path):
    """Files that are not snapshots are named, never a crash."""
    logs = tmp_path / "logs"
    folder = logs / "status" / "t-abc"
    folder.mkdir(parents=True)
    (folder / "shard-0-of-2.json").write_text("{not json")
    (folder / "notes.txt").write_text("hello")
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), **TERMINAL}
    shown = run_populator("status", str(logs), env=env)
    assert shown.returncode == 2, shown.stderr
    # However deep the path (a long --basetemp), it is shown whole; lines wrap between words.
    assert f"{folder / 'shard-0-of-2.json'} is not a status snapshot" in " ".join(shown.stdout.split())
    assert "Traceback" not in shown.stderr


def test_watch_on_a_terminal_redraws_in_place_until_ctrl_c(tmp_path):
    logs = tmp_path / "logs"
    (logs / "status").mkdir(parents=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path)}
    code, output = run_in_a_terminal(
        ["status", str(logs), "--watch", "--interval", "0.2"],
        env,
        columns=80,
        interrupt_when=lambda shown: shown.count(b"No status snapshot here") >= 3,
        budget=30,
    )
    assert code == 130
    assert output.count("No status snapshot here") >= 3 and "Traceback" not in output
    assert "\x1b[2K" in output or "\x1b[1A" in output  # redrawn in place, not printed again below


def big_fleet() -> Any:
    """Eight shards of a large job in every state, with the widest figures a real one shows."""
    archive = "s3://acme-data-lake-production/snowplow/enriched/archive/"
    wide = {
        "objects_total": 123_456, "objects_done": 98_765, "items_done": 9_876_543_210,
        "items_per_s": 98_765.4, "eta_s": 3 * 86_400.0 + 7_000, "cost_usd": 98_765.43,
        "objects_failed": 1_234, "archive": archive, "since": "2026-06-01",
        "job": "snowplow-event-manifest-production-0123456789ab",
        "table": "snowplow-event-manifest-production",
        "failures": (("s3://acme/enriched/run=2026-06-01-00-00-00/part-00001.gz", "read failed: reset"),),
    }  # fmt: skip

    def command(k: int) -> str:
        return (
            f"populator run {archive} /home/ops/dynamodb.json /home/ops/iglu_resolver.json "
            f"--since 2026-06-01 --shard {k}/8 --log-path s3://acme/populator/logs/"
        )

    states = [(RUNNING, 1), (FINISHED, 5000), (RUNNING, 9999), (FAILED, 30), (STOPPED, 30), (INTERRUPTED, 30)]
    shards = [snap(k, 8, s, age, **{**wide, "command": command(k)}) for k, (s, age) in enumerate(states)]
    shards[1] = replace(shards[1], objects_done=123_456, command=None)
    shards[3] = replace(shards[3], error="AccessDenied on GetObject")
    shards.append(snap(6, 8, RUNNING, 2, **wide))  # 2/8 is stale (9,999 s old), 7/8 missing
    return fleet("s3://acme/populator/logs/", shards, SNAPSHOT_NOW, 180.0)


def test_the_table_fits_80_columns_whatever_the_figures_and_commands_stay_whole():
    console = Console(file=io.StringIO(), width=80, force_terminal=False, _environ={"TERM": "dumb"})
    render_fleet(console, big_fleet())
    text = console.file.getvalue()
    lines = text.splitlines()
    commands = [line for line in lines if line.startswith("  populator run ")]
    assert len(commands) == 5  # stale, failed, stopped, interrupted, and missing (a sibling's, made its own)
    assert all(line.endswith("/8 --log-path s3://acme/populator/logs/") for line in commands)  # whole
    assert max(len(line) for line in lines if line not in commands) <= 80, text
    assert "…" not in text  # no figure cut short
    rows = {line.split()[0]: line.split()[1] for line in lines if line[:2] in {f"{k}/" for k in range(8)}}
    assert rows == {
        "0/8": "running", "1/8": "finished", "2/8": "stale", "3/8": "failed", "4/8": "stopped",
        "5/8": "interrupted", "6/8": "running", "7/8": "missing",
    }  # fmt: skip
    assert "9.9B" in text and "98,765/s" in text and "3d 1:56:39" in text and "$98,765" in text
    assert "failures of shard 3/8:" in text and "AccessDenied on GetObject" in text


def test_the_html_page_is_self_contained_and_escapes_what_it_shows():
    page = fleet_html(big_fleet())
    assert page.startswith("<!doctype html>") and '<meta name=viewport content="width=device-width' in page
    assert "<script" not in page and "http://" not in page and "https://" not in page and "src=" not in page
    assert page.count("<tr class=") == 8 and "<tfoot>" in page
    bad = replace(big_fleet().jobs[0].first, archive="s3://a/<script>alert(1)</script>/")
    assert "<script>alert" not in fleet_html(fleet("x", [bad], SNAPSHOT_NOW))
