# Copyright 2026 The hf-axlstm developers. Licensed under the Apache License, Version 2.0.
"""Keep large freed blocks inside the process heap (glibc), so that a CPU training step does not page-fault on every
large tensor it allocates.

glibc's malloc serves a request above its mmap threshold with a fresh `mmap` and gives the pages back with `munmap`
on free. The threshold adapts to the blocks a program frees, but only up to 32 MiB on 64-bit Linux; a training step
of AxLSTM allocates many tensors above that (batch 32 of 2 s crops: every (batch, heads, 251, 251) matrix of the
mLSTM cell is 32.3 MiB, every (batch, 251, 1536) activation of base 49 MiB). Each of them then costs a page fault
per 4 KiB page the first time it is written, every step: measured on a 2-core AMD EPYC, a q @ k^T product of that
size took 26 ms instead of 16, and the tiny pretraining step 6.2 s instead of 4.7 s (benchmarks/README.md).

`tune_cpu_allocator()` switches glibc to serving every block from its heap (`M_MMAP_MAX = 0`) and to keeping freed
memory there (`M_TRIM_THRESHOLD` at its maximum), so the second step reuses the first step's pages. The cost is that
the process's resident memory stays at its peak instead of shrinking between steps; a training loop returns to its
peak every step anyway. It changes nothing on other C libraries (musl, macOS, Windows) and returns False there.

The same settings as environment variables, for any program: `MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=2147483647`.
"""

from __future__ import annotations

import ctypes
import sys

# mallopt parameter numbers (glibc's malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_INT_MAX = 2**31 - 1

_state = {"tuned": False}


def _glibc():
    """The process's glibc as a ctypes library, or None on another C library or platform."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)  # the symbols already loaded into this process
        version = libc.gnu_get_libc_version  # glibc only (musl has no such function)
        _ = libc.mallopt
    except (OSError, AttributeError):
        return None
    version.restype = ctypes.c_char_p
    libc.mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    libc.mallopt.restype = ctypes.c_int
    return libc


def tune_cpu_allocator() -> bool:
    """Serve all allocations from glibc's heap and keep freed memory there (see the module docstring).

    Idempotent; applies to the whole process from the call on (and to processes it forks later, e.g. DataLoader
    workers). Returns True when the settings are in effect, False where the C library is not glibc.
    """
    if _state["tuned"]:
        return True
    libc = _glibc()
    if libc is None:
        return False
    # mallopt returns 1 on success. The trim threshold first: setting it also freezes the adaptive mmap threshold.
    ok = libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX) == 1 and libc.mallopt(_M_MMAP_MAX, 0) == 1
    _state["tuned"] = ok
    return ok


def cpu_allocator_tuned() -> bool:
    """Whether `tune_cpu_allocator()` has been applied in this process."""
    return _state["tuned"]


__all__ = ["cpu_allocator_tuned", "tune_cpu_allocator"]
