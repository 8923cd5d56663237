"""The fleet judged at a moment: running, stale, finished, failed, missing; a job's totals, ETA and
exit code. Pure: fixed snapshots and a fixed clock."""

from __future__ import annotations

from dataclasses import replace

import pytest

from populator.errors import EXIT_FAILED, EXIT_OK, EXIT_RUNNING, EXIT_USAGE
from populator.observe.fleet import BLOCKED, MISSING, STALE, fleet, judge
from populator.observe.shard_status import FAILED, FINISHED, INTERRUPTED, RUNNING, STOPPED
from tests.support.fleet_snapshots import NOW, snap

STALE_AFTER = 180.0


@pytest.mark.parametrize(
    "state, age, judged",
    [
        (RUNNING, 5.0, RUNNING),
        (RUNNING, STALE_AFTER - 0.001, RUNNING),
        (RUNNING, STALE_AFTER + 0.001, STALE),  # killed -9: its last snapshot said running
        (FINISHED, 10 * STALE_AFTER, FINISHED),  # an ended run never goes stale
        (FAILED, 10 * STALE_AFTER, FAILED),
        (STOPPED, 1.0, STOPPED),
        (INTERRUPTED, 1.0, INTERRUPTED),
    ],
)
def test_a_shard_is_judged_by_its_last_snapshot_and_how_old_it_is(state, age, judged):
    view = judge(snap(0, 3, state, age), NOW, STALE_AFTER)
    assert view.state == judged
    assert view.age_s == pytest.approx(age, abs=0.002)
    assert view.needs_someone == (judged not in (RUNNING, FINISHED))
    assert (view.command is not None) == view.needs_someone  # the command to go on, when needed
    assert view.eta_s == (pytest.approx(max(60.0 - age, 0), abs=0.002) if judged == RUNNING else None)


def test_a_snapshot_from_a_clock_ahead_is_not_negative_in_age():
    view = judge(snap(0, 3, age=-30.0), NOW, STALE_AFTER)
    assert view.state == RUNNING and view.age_s == 0.0


def test_two_finished_one_stale_is_blocked_exit_1_with_totals_and_the_stale_shards_command():
    shards = [snap(0, 3, FINISHED, 60), snap(1, 3, RUNNING, STALE_AFTER + 1), snap(2, 3, FINISHED, 30)]
    result = fleet("s3://acme/logs/", shards, NOW, STALE_AFTER)
    [job] = result.jobs
    assert [view.state for view in job.shards] == [FINISHED, STALE, FINISHED]
    assert job.state == BLOCKED and job.exit_code == result.exit_code == EXIT_FAILED
    assert (job.objects_done, job.objects_total, job.items_done) == (24, 30, 1500)
    assert job.cost_usd == pytest.approx(0.0009)
    assert job.eta_s is None  # a stale shard never finishes by itself
    assert job.items_per_s == 0.0  # only running shards count
    assert job.shards[1].command == "populator run s3://acme/enriched/ d.json r.json --shard 1/3"
    data = result.as_dict()
    assert data["exit_code"] == 1 and data["jobs"][0]["shards_by_state"] == {"finished": 2, "stale": 1}
    assert data["checked_at"] == "2026-11-27T12:00:00.000Z"


def test_while_shards_run_the_eta_is_the_slowest_one_and_the_exit_code_6():
    shards = [
        snap(0, 3, RUNNING, 10, eta_s=100.0),
        snap(1, 3, RUNNING, 2, eta_s=300.0, items_per_s=25.0),
        snap(2, 3, FINISHED, 50),
    ]
    result = fleet("logs", shards, NOW, STALE_AFTER)
    [job] = result.jobs
    assert job.state == RUNNING and result.exit_code == EXIT_RUNNING
    assert job.eta_s == pytest.approx(298.0)  # 300 s left two seconds ago
    assert job.items_per_s == 75.0
    unknown = fleet("logs", [*shards[:2], snap(2, 3, RUNNING, 1, eta_s=None)], NOW, STALE_AFTER)
    assert unknown.jobs[0].eta_s is None  # a shard still listing: no ETA for the job yet


def test_all_finished_is_exit_0_and_nothing_at_all_is_exit_2():
    assert fleet("logs", [snap(k, 2, FINISHED, 999) for k in range(2)], NOW).exit_code == EXIT_OK
    assert fleet("logs", [snap(None, None, FINISHED, 999)], NOW).exit_code == EXIT_OK
    assert fleet("logs", [], NOW).exit_code == EXIT_USAGE


def test_a_missing_shard_waits_while_its_job_runs_and_blocks_it_once_nothing_runs():
    running = fleet("logs", [snap(0, 3, RUNNING), snap(2, 3, FINISHED)], NOW, STALE_AFTER)
    [job] = running.jobs
    missing = job.shards[1]
    assert missing.state == MISSING and missing.status is None and not missing.needs_someone
    assert (
        missing.command == "populator run s3://acme/enriched/ d.json r.json --shard 1/3"
    )  # a sibling's, made its own
    assert running.exit_code == EXIT_RUNNING and job.eta_s is None and not job.listing_done
    ended = fleet("logs", [snap(0, 3, FINISHED), snap(2, 3, FINISHED)], NOW, STALE_AFTER)
    assert ended.jobs[0].shards[1].needs_someone and ended.exit_code == EXIT_FAILED


def test_jobs_are_told_apart_by_key_and_shard_count_newest_first():
    one_job = [snap(0, 2, FINISHED, 100), snap(1, 2, FINISHED, 90)]
    other_n = [snap(k, 4, RUNNING, 1) for k in range(4)]  # another N is another job
    unsharded = replace(snap(None, None, FAILED, 5000), job="other-job")
    result = fleet("logs", [*one_job, *other_n, unsharded], NOW, STALE_AFTER)
    assert [(job.key, job.shard_count, len(job.shards)) for job in result.jobs] == [
        ("manifest-0123456789ab", 4, 4),
        ("manifest-0123456789ab", 2, 2),
        ("other-job", None, 1),
    ]
    assert [job.state for job in result.jobs] == [RUNNING, FINISHED, BLOCKED]
    assert result.exit_code == EXIT_FAILED  # the worst of them


def test_a_rerun_of_a_shard_replaces_its_snapshot_and_the_newest_wins():
    """Two snapshots of one shard (a copy of the log path, a second writer): the newest counts."""
    old, new = snap(1, 2, RUNNING, STALE_AFTER + 60), snap(1, 2, FINISHED, 1)
    result = fleet("logs", [new, old, snap(0, 2, FINISHED, 3)], NOW, STALE_AFTER)
    assert [view.state for view in result.jobs[0].shards] == [FINISHED, FINISHED]
