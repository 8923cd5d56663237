"""The default worker count: affinity mask, capped by a container's cgroup CPU quota."""

from __future__ import annotations

import os

import pytest

from populator.job.cores import cgroup_cpus, quota_cpus_v1, quota_cpus_v2, usable_cores


@pytest.mark.parametrize(
    ("cpu_max", "cpus"),
    [
        ("max 100000", None),
        ("200000 100000", 2.0),
        ("150000 100000", 1.5),
        ("garbage", None),
        ("0 100000", None),
    ],
)
def test_cgroup_v2_cpu_max(cpu_max: str, cpus: float | None) -> None:
    assert quota_cpus_v2(cpu_max + "\n") == cpus


def test_cgroup_v1_quota() -> None:
    assert quota_cpus_v1("-1\n", "100000\n") is None
    assert quota_cpus_v1("50000\n", "100000\n") == 0.5


def test_a_container_limit_caps_the_default(tmp_path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    affinity = len(os.sched_getaffinity(0))
    assert usable_cores(tmp_path) == min(affinity, 2)
    (tmp_path / "cpu.max").write_text("10000 100000\n")  # a tenth of a CPU still gets one worker
    assert usable_cores(tmp_path) == 1


def test_cgroup_v1_layout_is_read(tmp_path) -> None:
    (tmp_path / "cpu").mkdir()
    (tmp_path / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (tmp_path / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert cgroup_cpus(tmp_path) == 1.0
    assert usable_cores(tmp_path) == 1


def test_no_cgroup_files_means_the_affinity_mask(tmp_path) -> None:
    assert cgroup_cpus(tmp_path) is None
    assert usable_cores(tmp_path) == len(os.sched_getaffinity(0))
