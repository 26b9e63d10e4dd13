"""Writing researchers' files safely: never overwrite, never inject.

One way to do each thing, used by ``batch``, ``convert``, ``simulate``, ``power``,
``report`` and the exports:

- :func:`write_atomic` / :func:`atomic_path`: a temporary file created exclusively
  (:func:`tempfile.mkstemp`, ``O_EXCL``) beside the target, named after the target and the
  run (``.NAME.RUN.XXXXXXXX.tmp``), then renamed over the target; a failed write removes
  its own temporary file and nothing else.
- :func:`check_new_output`: an output that exists is refused without ``force``, and an
  output that is (or links to) one of the inputs is refused always (:func:`same_file`
  compares resolved paths and the files' identities, so ``./d.csv``, ``sub/../d.csv`` and a
  symbolic link all count as ``d.csv``).
- :func:`neutralise`, :func:`neutral_frame`, :func:`write_csv`: text cells that a spreadsheet
  would run as a formula (first character ``=``, ``+``, ``-``, ``@``, tab or carriage
  return, as OWASP describes for CSV injection) get a leading ``'``; numbers, and text
  that is a plain number such as ``-0.5``, stay as they are.
- :class:`FolderLock`: one run at a time writes into an output folder; a second run is
  refused with the lock file and the first run's process id.

Examples
--------
>>> import os, tempfile
>>> folder = tempfile.mkdtemp()
>>> path = os.path.join(folder, "t.csv")
>>> write_atomic(path, "a\\n1\\n")
>>> check_new_output(path, "OUT")
Traceback (most recent call last):
...
apim.errors.OutputExistsError: OUT ...t.csv already exists; give --force to replace it, ...
>>> neutralise("=1+1"), neutralise("-0.5"), neutralise("@SUM(A1)"), neutralise(-2)
("'=1+1", '-0.5', "'@SUM(A1)", -2)
>>> sorted(os.listdir(folder))
['t.csv']
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import socket
import sys
import tempfile
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from apim.errors import DataWarning, OutputExistsError, SpecError

__all__ = ["RUN", "write_atomic", "atomic_path", "same_file", "check_new_output",
           "refuse_inputs", "neutralise", "neutral_frame", "write_csv", "FolderLock",
           "remove_temporary", "LOCK_NAME"]

RUN = f"{os.getpid()}-{secrets.token_hex(3)}"
"""This process's run tag: part of the name of every temporary file it creates."""

LOCK_NAME = ".apim.lock"
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_TAG = re.compile(r"^[0-9]+-[0-9a-f]+$")


def _temporary(path: Path, run: str) -> tuple[int, str]:
    """An exclusively created temporary file beside ``path``, with the permissions a file
    the user made would have (``mkstemp`` makes it private: 0600, which would leave a
    report unreadable to the rest of a lab's group)."""
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{run}.",
                                    suffix=".tmp")
    os.chmod(name, 0o666 & ~_umask())
    return handle, name


def _umask() -> int:
    """The process's umask, read without changing it where the system tells it (Linux);
    elsewhere set and restored at once."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str], run: str | None = None) -> Iterator[Path]:
    """A temporary path to write in place of ``path``; renamed to ``path`` when the block
    ends without an error, removed when it raises.

    For writers that take a file name (Excel, SPSS, Stata, Parquet, figures). The file is
    created exclusively in the target folder (so the rename is atomic) under a per-run name.

    Examples
    --------
    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "x.txt")
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> open(target).read()
    'done'
    """
    path = Path(path)
    handle, name = _temporary(path, run or RUN)
    os.close(handle)
    try:
        yield Path(name)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def write_atomic(path: str | os.PathLike[str], data: str | bytes,
                 run: str | None = None) -> None:
    """Write ``data`` to ``path`` through an exclusively created temporary file and a
    rename, so a reader (or a killed run) never sees half a file; the folder is created
    if needed. ``run`` tags the temporary file's name (default: this process's
    :data:`RUN`).

    Examples
    --------
    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "sub", "x.json")
    >>> write_atomic(target, '{"a": 1}')
    >>> open(target).read()
    '{"a": 1}'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode("utf-8") if isinstance(data, str) else data
    handle, name = _temporary(path, run or RUN)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(raw)
            out.flush()
            os.fsync(out.fileno())
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def remove_temporary(folder: str | os.PathLike[str], run: str) -> int:
    """Remove the temporary files run ``run`` left in ``folder`` (a killed run's); other
    runs' files are kept. Returns how many were removed.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> for name in (".a.csv.11-ab.x1.tmp", ".a.csv.12-cd.x2.tmp"):
    ...     _ = (folder / name).write_text("")
    >>> remove_temporary(folder, "11-ab"), sorted(p.name for p in folder.iterdir())
    (1, ['.a.csv.12-cd.x2.tmp'])
    """
    if not _TAG.match(run):
        return 0
    removed = 0
    for tmp in Path(folder).glob(f".*.{run}.*.tmp"):
        tmp.unlink(missing_ok=True)
        removed += 1
    return removed


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """Whether ``a`` and ``b`` name the same file: the same resolved path (links and
    ``..`` followed, case folded where the file system does), or the same file on disk
    (hard links).

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> open(os.path.join(folder, "d.csv"), "w").close()
    >>> same_file(os.path.join(folder, "d.csv"), os.path.join(folder, "x", "..", "d.csv"))
    True
    >>> same_file(os.path.join(folder, "d.csv"), os.path.join(folder, "e.csv"))
    False
    """
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    try:
        if pa.exists() and pb.exists():
            return os.path.samefile(pa, pb)
    except OSError:
        pass
    ra, rb = os.path.normcase(pa.resolve()), os.path.normcase(pb.resolve())
    return ra == rb


def refuse_inputs(path: str | os.PathLike[str], inputs: Iterable[str | os.PathLike[str]],
                  option: str, what: str = "the input") -> None:
    """Refuse (always, ``--force`` or not) to write ``path`` when it is one of ``inputs``.

    Raises
    ------
    SpecError
        Naming the option, the output and the input it would replace.
    """
    for source in inputs:
        if source is not None and same_file(path, source):
            raise SpecError(f"{option} {os.fspath(path)}: is the same file as {what} "
                            f"{os.fspath(source)}; apim never writes over its input: write "
                            "elsewhere")


def check_new_output(path: str | os.PathLike[str], option: str, *, force: bool = False,
                     inputs: Iterable[str | os.PathLike[str]] = ()) -> None:
    """Check that writing ``path`` destroys nothing: it must not be one of ``inputs`` (even
    with ``force``) nor a folder, and must not exist unless ``force``.

    Raises
    ------
    OutputExistsError
        The file exists and ``force`` is false.
    SpecError
        It is an input or a folder, or its folder does not exist.
    """
    refuse_inputs(path, inputs, option)
    target = Path(path)
    if not target.parent.is_dir():
        raise SpecError(f"{option}: cannot use {os.fspath(path)!r}: the folder "
                        f"{os.fspath(target.parent)!r} does not exist; create it or write "
                        "elsewhere")
    if target.is_dir():
        raise SpecError(f"{option} {os.fspath(path)}: is a folder; give a file name")
    if target.exists() or target.is_symlink():
        if not force:
            raise OutputExistsError(f"{option} {os.fspath(path)} already exists; give "
                                    "--force to replace it, or write elsewhere")
        if target.is_symlink():  # replace the link, never the file it points to
            return


def neutralise(value: Any) -> Any:
    """``value`` with a leading ``'`` if it is text a spreadsheet would run as a formula
    (first character ``=``, ``+``, ``-``, ``@``, tab or carriage return); text that is a
    plain number and everything else unchanged."""
    if isinstance(value, str) and value.startswith(_FORMULA_START) \
            and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value


def neutral_frame(frame: pd.DataFrame, what: str = "") -> pd.DataFrame:
    """``frame`` with every text cell and column name :func:`neutralise`-d (a copy when
    anything changed); a :class:`~apim.errors.DataWarning` says how many cells and where,
    so the change is never silent. Numeric columns are untouched."""
    changed: dict[str, int] = {}
    out = frame
    names = [neutralise(c) for c in frame.columns]
    renamed = sum(a != b for a, b in zip(names, frame.columns))
    for column in frame.columns:
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series.dtype) or pd.api.types.is_bool_dtype(
                series.dtype) or pd.api.types.is_datetime64_any_dtype(series.dtype):
            continue
        values = series.astype(object)
        fixed = values.map(neutralise)
        count = int((fixed.ne(values) & values.notna()).sum())
        if count:
            if out is frame:
                out = frame.copy()
            out[column] = fixed
            changed[str(column)] = count
    if renamed:
        if out is frame:
            out = frame.copy()
        out.columns = names
    if changed or renamed:
        where = ", ".join(f"{n} in column {c!r}" for c, n in list(changed.items())[:3])
        parts = [p for p in (where, f"{renamed} column name(s)" if renamed else "") if p]
        warnings.warn(f"{what + ': ' if what else ''}text beginning with =, +, -, @, tab or "
                      f"carriage return was prefixed with ' so that spreadsheets show it "
                      f"as text instead of running it as a formula ({'; '.join(parts)})",
                      DataWarning, stacklevel=2)
    return out


def write_csv(frame: pd.DataFrame, path: str | os.PathLike[str], *, sep: str = ",",
              run: str | None = None, what: str = "") -> None:
    """Write ``frame`` as CSV (no index), cells neutralised, atomically.

    Rows end in ``\\n``; when a text cell holds a carriage return they end in ``\\r\\n``
    (RFC 4180), which makes the CSV writer quote that cell, so a carriage return can never
    start a new row (and a formula) in a spreadsheet.

    Examples
    --------
    >>> import os, tempfile, warnings
    >>> path = os.path.join(tempfile.mkdtemp(), "t.csv")
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     write_csv(pd.DataFrame({"id": ["=1+1", "a"], "x": [-0.5, 2.0]}), path)
    >>> print(open(path).read(), end="")
    id,x
    '=1+1,-0.5
    a,2.0
    """
    frame = neutral_frame(frame, what)
    text_cells = [frame[c] for c in frame.columns if not pd.api.types.is_numeric_dtype(
        frame[c].dtype)]
    cr = any("\r" in str(c) for c in frame.columns) or any(
        column.map(lambda v: isinstance(v, str) and "\r" in v).any() for column in text_cells)
    write_atomic(path, frame.to_csv(index=False, sep=sep,
                                    lineterminator="\r\n" if cr else "\n"), run=run)


@dataclass(frozen=True)
class _Holder:
    pid: int
    host: str
    run: str


def _read_holder(path: Path) -> _Holder | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        return _Holder(int(record["pid"]), str(record["host"]), str(record["run"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


class FolderLock:
    """An exclusive lock on an output folder (the file ``.apim.lock`` in it).

    Held with an operating-system lock on the open file (``fcntl.flock``; ``msvcrt`` on
    Windows), so a killed run releases it; the file records the holder's process id, host
    and run tag. A second run is refused at once with the lock file and the first run's
    process id. Taking over a lock a killed run left removes that run's temporary files.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with FolderLock(folder):
    ...     FolderLock(folder).acquire()
    Traceback (most recent call last):
    ...
    apim.errors.FolderInUseError: ... is in use by another apim run (process ...); ...
    """

    def __init__(self, folder: str | os.PathLike[str], run: str | None = None) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.run = run or RUN
        self._handle: int | None = None

    def acquire(self) -> FolderLock:
        from apim.errors import FolderInUseError

        for _ in range(5):
            handle = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if not _try_lock(handle):
                os.close(handle)
                holder = _read_holder(self.path)
                who = (f"process {holder.pid} on {holder.host}" if holder
                       else "process unknown")
                raise FolderInUseError(
                    f"{self.folder} is in use by another apim run ({who}); lock file "
                    f"{self.path}: wait for that run to finish, or write to another folder")
            try:  # the file may have been removed by its holder between open and lock
                same = os.path.samestat(os.fstat(handle), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:
                os.close(handle)
                continue
            previous = _read_holder(self.path)
            if previous is not None and previous.run != self.run:
                for folder in (self.folder, *[p for p in self.folder.iterdir() if p.is_dir()]):
                    remove_temporary(folder, previous.run)
            record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "run": self.run}).encode()
            os.ftruncate(handle, 0)
            os.lseek(handle, 0, os.SEEK_SET)
            os.write(handle, record)
            self._handle = handle
            return self
        raise SpecError(f"could not lock {self.folder}: its lock file keeps changing")

    def release(self) -> None:
        if self._handle is None:
            return
        with contextlib.suppress(OSError):
            self.path.unlink()
        _unlock(self._handle)
        os.close(self._handle)
        self._handle = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _try_lock(handle: int) -> bool:
    """Take the operating system's exclusive lock on ``handle`` without waiting."""
    if sys.platform == "win32":  # pragma: no cover
        import msvcrt

        try:
            msvcrt.locking(handle, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        warnings.warn(f"cannot lock {_name(handle)} (the file system has no locks: "
                      f"{error.strerror}); make sure no other apim run writes there",
                      DataWarning, stacklevel=3)
    return True


def _name(handle: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{handle}")
    except OSError:
        return "the output folder"


def _unlock(handle: int) -> None:
    if sys.platform == "win32":  # pragma: no cover
        import msvcrt

        with contextlib.suppress(OSError):
            msvcrt.locking(handle, msvcrt.LK_UNLCK, 1)
        return
    import fcntl

    with contextlib.suppress(OSError):
        fcntl.flock(handle, fcntl.LOCK_UN)
