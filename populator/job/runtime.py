"""Process-wide settings for a long streaming job, applied once before the work starts.

glibc's malloc hands every inflated chunk (a few hundred KiB) back to the kernel when it is
freed, so the next chunk faults its pages in afresh: on the benchmark archive that was one minor
page fault per 4 KiB of output, and about a sixth of a dry run's CPU time was spent in the
kernel. Raising the mmap and trim thresholds keeps freed memory in the heap for the next chunk.
Peak RSS does not grow: the heap keeps what the job already used at its peak.
"""

from __future__ import annotations

import ctypes

# mallopt(3) parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# Above the largest buffer the reader allocates (MAX_INFLATE_BYTES, a line of up to
# MAX_LINE_BYTES), so every chunk buffer comes from the heap and is reused.
MMAP_THRESHOLD_BYTES = 8 * 1024 * 1024
# Freed memory kept at the top of the heap before it is returned to the kernel.
TRIM_THRESHOLD_BYTES = 128 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Ask the C library's malloc to reuse freed buffers instead of unmapping them. False where
    there is no mallopt (macOS, Windows) or it refuses a setting. Process-wide, and left so:
    forked worker processes inherit it."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES)
    )
