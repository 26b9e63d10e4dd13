"""Keep memory the command frees for its next arrays, instead of handing it back.

A fit allocates and frees arrays of tens to hundreds of megabytes again and again (a
block of rows after another, the design, its sorted copy, the moments' temporaries). By
default glibc's allocator maps arrays above a threshold afresh for each request and
returns freed memory at the top of the heap to the system, so every new array costs the
kernel a page fault per page touched (mapping and zeroing it): on this project's
benchmark machine (a virtual machine) that was 1.8 of 10.4 CPU seconds of the
out-of-core fit of 6 million rows and 9.0 of 20.0 of the in-memory fit, against 0.5 and
3.2 with this setting (apim/DESIGN.md §10). :func:`keep_freed_memory` sets
the allocator to serve arrays up to :data:`MMAP_BYTES` from the heap and to keep freed
heap memory for reuse; the price is a somewhat higher peak (freed memory is kept, and
the heap fragments: 2.67 GB against 2.58 for the in-memory fit, 0.39 against 0.30 for
the largest out-of-core process); the memory is returned when the process ends.

Called by the command line (:func:`apim.cli.main`) for its process, not on import: a
library does not change the allocator of the program that imports it.

Examples
--------
>>> keep_freed_memory() in (True, False)  # False where the C library has no mallopt
True
"""

from __future__ import annotations

__all__ = ["keep_freed_memory", "MMAP_BYTES", "TRIM_BYTES"]

MMAP_BYTES = 1 << 30
"""Allocations up to this size come from the heap (glibc's default starts at 128 kB and
grows only up to the largest block freed so far, at most 32 MB: a column of 6 million
rows is 48 MB). Measured on the 6-million-row fit in memory: 7.0 s of kernel time at
32 MB, 3.4 s at 1 GB, peak memory 2.63 and 2.68 GB."""

TRIM_BYTES = 1 << 30
"""Free memory at the top of the heap kept for later allocations, up to this size."""

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def keep_freed_memory() -> bool:
    """Set the C allocator as the module docstring says (glibc's ``mallopt``); True when
    it was set, False where there is no ``mallopt`` (macOS, Windows): nothing changes."""
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, TypeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, MMAP_BYTES)) and \
        bool(mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES))
