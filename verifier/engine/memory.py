"""Keep freed memory in the process for the next step (glibc's allocator only).

glibc serves every block above its mmap threshold (128 KiB, rising only as such blocks are
freed) with a fresh mapping and unmaps it on free, so a step's large intermediates (a
convolution's patches, a batch's activations) fault in page by page on every step: a traced
convnet inference spent most of its time in page faults. Raising the thresholds keeps those
blocks in the heap and reuses them. Speed only: no value changes."""

from __future__ import annotations

import ctypes
import sys

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# blocks up to this size come from the heap; up to twice that stays mapped after a free
MMAP_THRESHOLD = 64 << 20

_done = False


def keep_freed_memory() -> bool:
    """Raise glibc's mmap and trim thresholds once per process; False where there is no glibc."""
    global _done
    if _done:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the C library the interpreter itself links
    except (OSError, AttributeError):  # musl and other C libraries have no mallopt
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _done = bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD))
    return _done


__all__ = ["keep_freed_memory"]
