"""Bounded work: sizes computed before the work, refused beyond what the machine can do.

:func:`check_memory` compares an estimate of the memory a task needs with the memory
available now (``MemAvailable`` of ``/proc/meminfo`` on Linux, else free physical pages
from :func:`os.sysconf`) times :data:`SAFETY` (one half: the rest is left to the operating
system, other programs and the estimates' error). The estimates are deliberately
generous, so a refusal means the task could not finish, not that it would be tight.
Where the machine's memory cannot be read, nothing is refused on memory grounds.

Examples
--------
>>> check_memory(1000, "a small task")
>>> check_memory(10 ** 18, "simulating 10^16 rows")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
apim.errors.TooLargeError: simulating 10^16 rows needs about 1000 PB of memory; ...
>>> human_bytes(3.5e9)
'3.5 GB'
"""

from __future__ import annotations

import os

from apim.errors import TooLargeError

__all__ = ["available_memory", "check_memory", "human_bytes", "estimated_rows", "SAFETY"]

SAFETY = 0.5
"""Share of the available memory a task may plan to use."""


def available_memory() -> int | None:
    """Bytes of memory available to a new task now, or None if they cannot be read."""
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, ValueError, OSError):
        return None


def human_bytes(n: float) -> str:
    """``n`` bytes in a unit a person reads at a glance (decimal units)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.4g} PB"


def check_memory(need: float, what: str, advice: str = "") -> None:
    """Refuse ``what`` if it needs more than :data:`SAFETY` of the available memory.

    Parameters
    ----------
    need : float
        Estimated peak bytes of the task.
    what : str
        The task, as the message's subject ("simulating 10 dyads x 5 sessions").
    advice : str
        What to do instead (appended to the message).

    Raises
    ------
    TooLargeError
        Naming the memory needed and the memory available.
    """
    available = available_memory()
    if available is None or need <= SAFETY * available:
        return
    tail = f"; {advice}" if advice else ""
    raise TooLargeError(f"{what} needs about {human_bytes(need)} of memory; this machine "
                        f"has {human_bytes(available)} available (apim plans to use at "
                        f"most {SAFETY:.0%} of it){tail}")


def estimated_rows(path: str) -> int | None:
    """Rows of a Parquet file (its metadata) or of a text file (its size over the mean
    length of its first lines); None for other formats or an unreadable file."""
    from pathlib import Path

    p = Path(path)
    try:
        if p.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(p).metadata.num_rows)
        if p.suffix.lower() in (".csv", ".tsv", ".txt"):
            with open(p, "rb") as handle:
                head = handle.read(1 << 16)
            lines = head.count(b"\n")
            if lines < 2:
                return None
            return int(p.stat().st_size / (len(head) / lines))
    except Exception:  # the reader reports an unreadable file with its own message
        return None
    return None
