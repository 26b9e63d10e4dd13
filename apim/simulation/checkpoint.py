"""Finished jobs of a long run kept in a folder, so that a rerun skips them.

A :class:`Checkpoint` belongs to one set of settings (anything JSON-ready that determines
the jobs' results): the folder's ``settings.json`` holds them with their SHA-256 digest,
and a folder that holds another run's settings is refused rather than mixed. Every
finished block of jobs is written to its own file, atomically (a temporary file in the
same folder, then renamed), so an interrupted run leaves only whole blocks behind.
Floats are stored as JSON numbers, which Python writes and reads back exactly.

Examples
--------
>>> import tempfile
>>> from apim.parallel import JobOutcome
>>> folder = tempfile.mkdtemp()
>>> store = Checkpoint(folder, {"seed": 1})
>>> store.save([JobOutcome(0, [0.01, 0.3, True]), JobOutcome(1, None, "FitError", "no")])
>>> sorted(Checkpoint(folder, {"seed": 1}).load())
[0, 1]
>>> Checkpoint(folder, {"seed": 2})
Traceback (most recent call last):
...
apim.errors.SpecError: checkpoint folder ... holds a run with other settings; ...
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from apim.errors import SpecError
from apim.files import write_atomic
from apim.parallel import JobOutcome

__all__ = ["Checkpoint"]

SETTINGS = "settings.json"


class Checkpoint:
    """The finished jobs of one run, stored in ``folder`` (created if needed)."""

    def __init__(self, folder: str | os.PathLike[str], settings: dict[str, Any]) -> None:
        self.folder = Path(folder)
        text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
        self.digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if self.folder.exists() and not self.folder.is_dir():
            raise SpecError(f"checkpoint {str(self.folder)!r} is a file, not a folder; give "
                            "a folder for the finished replicates")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SpecError(f"cannot create the checkpoint folder {str(self.folder)!r} "
                            f"({error.strerror or error}); give a folder you can write") from None
        stored = self.folder / SETTINGS
        if stored.exists():
            try:
                digest = json.loads(stored.read_text(encoding="utf-8")).get("digest")
            except (ValueError, AttributeError):
                digest = None
            if digest != self.digest:
                raise SpecError(f"checkpoint folder {str(self.folder)!r} holds a run with "
                                "other settings; give a new folder or empty this one")
        else:
            write_atomic(stored, json.dumps({"digest": self.digest, "settings": settings},
                                                 indent=1, sort_keys=True))

    def load(self) -> dict[int, JobOutcome[Any]]:
        """The finished jobs by index."""
        out: dict[int, JobOutcome[Any]] = {}
        for path in sorted(self.folder.glob("jobs-*.json")):
            try:
                block = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                continue  # not written by a finished save: run those jobs again
            if block.get("digest") != self.digest:
                continue
            for index, value, error_type, error in block["jobs"]:
                out[index] = JobOutcome(index, value, error_type, error)
        return out

    def save(self, outcomes: Sequence[JobOutcome[Any]]) -> None:
        """Store a block of finished jobs (atomically)."""
        if not outcomes:
            return
        first, last = outcomes[0].index, outcomes[-1].index
        jobs = [[o.index, o.value, o.error_type, o.error] for o in outcomes]
        write_atomic(self.folder / f"jobs-{first:08d}-{last:08d}.json",
                          json.dumps({"digest": self.digest, "jobs": jobs}))
