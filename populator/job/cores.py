"""How many CPUs this process may really use: the default for `--processes`.

`os.cpu_count()` counts the host's cores. In a container (AWS Batch, Kubernetes, docker
`--cpus`) the limit is a CFS quota in the cgroup, and on a pinned process an affinity mask;
more worker processes than that only take turns on the same CPUs.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


def quota_cpus_v2(cpu_max: str) -> float | None:
    """`cpu.max` of cgroup v2 ("<quota> <period>" or "max <period>") → CPUs, None if unlimited."""
    parts = cpu_max.split()
    if len(parts) != 2 or parts[0] == "max":
        return None
    try:
        quota, period = int(parts[0]), int(parts[1])
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def quota_cpus_v1(quota_us: str, period_us: str) -> float | None:
    """`cpu.cfs_quota_us` and `cpu.cfs_period_us` of cgroup v1 → CPUs, None if unlimited (-1)."""
    try:
        quota, period = int(quota_us), int(period_us)
    except ValueError:
        return None
    return quota / period if quota > 0 and period > 0 else None


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def cgroup_cpus(root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup, as seen from inside a container; None if none."""
    cpu_max = _read(root / "cpu.max")
    if cpu_max is not None:
        return quota_cpus_v2(cpu_max)
    quota, period = _read(root / "cpu" / "cpu.cfs_quota_us"), _read(root / "cpu" / "cpu.cfs_period_us")
    if quota is not None and period is not None:
        return quota_cpus_v1(quota, period)
    return None


def usable_cores(root: Path = CGROUP_ROOT) -> int:
    """Cores this process may use: the affinity mask, capped by a cgroup quota (rounded up)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    quota = cgroup_cpus(root)
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(cores, 1)
