"""runtime.keep_freed_memory: freed chunk buffers are reused instead of faulted in again."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

# Allocates, touches and frees buffers of the sizes the reader inflates into, and prints the
# minor page faults that took.
_CHURN = """
import resource, sys
from populator.job.runtime import keep_freed_memory
if sys.argv[1] == "kept":
    assert keep_freed_memory()
faults = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_minflt
before = faults()
for size in [300_000, 600_000, 900_000, 1_100_000] * 30:
    buffer = bytearray(size)
    buffer[::4096] = b"x" * len(buffer[::4096])
    del buffer
print(faults() - before)
"""


def _faults(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", _CHURN, mode], capture_output=True, text=True, timeout=60, check=True
    )
    return int(result.stdout)


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt thresholds are glibc's")
def test_freed_buffers_are_reused_instead_of_faulted_in_again():
    default, kept = _faults("default"), _faults("kept")
    assert kept * 2 < default, (kept, default)
