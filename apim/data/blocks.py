"""Read a long data file in blocks of whole dyads, for fits that never hold all rows.

A Parquet file is read by record batches (:mod:`pyarrow`), a CSV or TSV file by chunks of
rows (:func:`pandas.read_csv`); only the columns asked for. The rows of the last dyad of a
chunk are held back and joined to the next chunk, so a dyad is never split between blocks
as long as its rows are together in the file (sorted by dyad, or grouped). That is
checked: a dyad whose rows appear in two blocks is an error naming it and the rows, read
in :func:`dyad_blocks` at the end of the file. A last block of fewer than a quarter of
``block_rows`` rows is joined to the one before, so no block is tiny.

Examples
--------
>>> import tempfile, os, pandas as pd
>>> folder = tempfile.mkdtemp()
>>> path = os.path.join(folder, "sessions.csv")
>>> pd.DataFrame({"dyad": [1, 1, 1, 1, 2, 2, 3, 3], "y": range(8)}).to_csv(path, index=False)
>>> [(start, block["dyad"].tolist()) for block, start in dyad_blocks(path, "dyad",
...                                                                   block_rows=3)]
[(1, [1, 1, 1, 1]), (5, [2, 2]), (7, [3, 3])]
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from apim.errors import DataError, UnsupportedFileError

__all__ = ["dyad_blocks", "BLOCK_ROWS", "Partition", "parquet_partitions", "partition_frame",
           "check_together"]

BLOCK_ROWS = 250_000
"""Default rows per block (about 25 MB of model arrays for a seed-size APIM). Blocks
this small keep a block's arrays (each under glibc's 32 MB limit for fresh mappings)
in memory the process reuses, instead of new pages the kernel must map and zero for
every block: at 1,000,000 rows a 6-million-row file cost 3 s more in the kernel."""


def _chunks(path: Path, columns: Sequence[str] | None, rows: int, sep: str | None,
            decimal: str | None, encoding: str | None) -> Iterator[pd.DataFrame]:
    suffix = path.suffix.lower()
    if not path.is_file():
        raise UnsupportedFileError(f"file {str(path)!r} does not exist")
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise UnsupportedFileError("reading .parquet files needs the package 'pyarrow'; "
                                       "install it with: pip install 'apim[io]'") from None
        try:
            handle = pq.ParquetFile(path)
            names = handle.schema_arrow.names
            missing = [c for c in columns or () if c not in names]
            if missing:
                raise DataError(f"column {missing[0]!r} is not in {str(path)!r}; its "
                                f"columns are {', '.join(names[:20])}")
            for batch in handle.iter_batches(batch_size=rows, columns=list(columns or names)):
                yield batch.to_pandas()
        except DataError:
            raise
        except Exception as error:  # ArrowInvalid and friends
            raise UnsupportedFileError(
                f"file {str(path)!r} is not a readable Parquet file "
                f"({' '.join(str(error).split())[:120]}); re-write it, or export it as CSV"
            ) from None
        return
    if suffix not in (".csv", ".tsv", ".txt"):
        raise UnsupportedFileError(f"reading {str(path)!r} in blocks needs a .parquet, .csv "
                                   f"or .tsv file, not {suffix!r}; convert it with apim "
                                   "convert")
    try:
        reader = pd.read_csv(path, sep=sep or ("\t" if suffix == ".tsv" else ","),
                             decimal=decimal or ".", encoding=encoding or "utf-8-sig",
                             usecols=list(columns) if columns else None, chunksize=rows)
        yield from reader
    except ValueError as error:  # usecols naming a column that is not there
        raise DataError(f"{str(path)!r}: {' '.join(str(error).split())[:200]}") from None
    except UnicodeDecodeError:
        raise DataError(f"{str(path)!r} is not UTF-8 text; give its encoding (e.g. "
                        "--encoding cp1252)") from None


def dyad_blocks(path: str | Path, dyad: str, columns: Sequence[str] | None = None,
                block_rows: int = BLOCK_ROWS, sep: str | None = None,
                decimal: str | None = None, encoding: str | None = None
                ) -> Iterator[tuple[pd.DataFrame, int]]:
    """The rows of ``path`` in blocks of whole dyads, with the file row number (1-based,
    the header not counted) of each block's first row.

    Parameters
    ----------
    path : str or Path
        A ``.parquet``, ``.csv`` or ``.tsv`` file in long layout whose rows of a dyad are
        together.
    dyad : str
        The dyad column.
    columns : sequence of str, optional
        The columns to read (default all).
    block_rows : int
        Rows read at a time; a block holds about this many rows (more when a dyad
        reaches past the end of a chunk).
    sep, decimal, encoding : str, optional
        For text files (default ``,`` (tab for ``.tsv``), ``.`` and UTF-8).

    Raises
    ------
    DataError
        For a missing column, or a dyad whose rows are not together in the file (named,
        with the rows where it appears); raised after the last block, so the work done on
        the blocks before must be discarded (the fits do so).
    UnsupportedFileError
        For an unreadable file or a format that cannot be read in blocks.
    """
    if block_rows < 1:
        raise DataError(f"block_rows={block_rows} must be a positive number of rows")
    if columns is not None and dyad not in columns:
        columns = [dyad, *columns]
    seen: list[np.ndarray] = []
    starts: list[int] = []
    held: tuple[pd.DataFrame, int] | None = None
    carry: pd.DataFrame | None = None
    at = 1  # file row number of the next chunk's first row
    carry_start = 1
    for chunk in _chunks(Path(path), columns, block_rows, sep, decimal, encoding):
        if dyad not in chunk.columns:
            raise DataError(f"column {dyad!r} (the dyad) is not in {str(path)!r}")
        start = carry_start if carry is not None else at
        frame = chunk if carry is None else pd.concat([carry, chunk], ignore_index=True)
        at += len(chunk)
        ids = frame[dyad].to_numpy()
        same = ids == ids[-1]
        change = np.flatnonzero(~same)
        if not len(change):  # one dyad so far: all of it carried on
            carry, carry_start = frame, start
            continue
        cut = int(change[-1]) + 1
        body = frame.iloc[:cut].reset_index(drop=True)
        carry, carry_start = frame.iloc[cut:].reset_index(drop=True), start + cut
        if held is not None:
            seen.append(pd.unique(held[0][dyad].to_numpy()))
            starts.append(held[1])
            yield held
        held = (body, start)
    if carry is not None and len(carry):
        if held is not None and len(carry) < block_rows // 4:
            held = (pd.concat([held[0], carry], ignore_index=True), held[1])
        else:
            if held is not None:
                seen.append(pd.unique(held[0][dyad].to_numpy()))
                starts.append(held[1])
                yield held
            held = (carry.reset_index(drop=True), carry_start)
    if held is not None:
        seen.append(pd.unique(held[0][dyad].to_numpy()))
        starts.append(held[1])
        yield held
    _check_together(seen, starts, dyad, path)


def _check_together(seen: list[np.ndarray], starts: list[int], dyad: str,
                    path: str | Path) -> None:
    """Refuse a dyad that appears in two blocks (its rows are not together in the file)."""
    if len(seen) < 2:
        return
    ids = pd.Series(np.concatenate(seen))
    block = np.repeat(np.arange(len(seen)), [len(s) for s in seen])
    twice = ids.duplicated(keep=False).to_numpy()
    if not twice.any():
        return
    first = ids[twice].iloc[0]
    where = [starts[b] for b in block[twice & (ids == first).to_numpy()]]
    raise DataError(f"dyad {first!r} (column {dyad!r}) has rows in two places of "
                    f"{str(path)!r} (blocks starting at rows {where[0]:,} and {where[1]:,}); "
                    "reading in blocks needs each dyad's rows together: sort the file by "
                    "the dyad column, or fit without --out-of-core")


@dataclass(frozen=True)
class Partition:
    """Row groups ``[start, stop)`` of a Parquet file: the unit of work of a worker.

    Its rows are whole dyads (:func:`partition_frame`): the rows at its start that belong
    to a dyad begun in the row group before are left to the partition before, and its
    last dyad is completed from the row groups after.
    """

    path: str
    start: int
    stop: int


def parquet_partitions(path: str | Path, rows: int = BLOCK_ROWS) -> list[Partition]:
    """The partitions of a Parquet file: consecutive row groups of about ``rows`` rows.

    Raises
    ------
    UnsupportedFileError
        For a file that is not Parquet (or a missing pyarrow).
    """
    handle = _parquet(Path(path))
    meta = handle.metadata
    parts, start, size = [], 0, 0
    for g in range(meta.num_row_groups):
        size += meta.row_group(g).num_rows
        if size >= rows:
            parts.append(Partition(str(path), start, g + 1))
            start, size = g + 1, 0
    if start < meta.num_row_groups:
        parts.append(Partition(str(path), start, meta.num_row_groups))
    return parts


def _parquet(path: Path) -> Any:
    if path.suffix.lower() != ".parquet":
        raise UnsupportedFileError(f"{str(path)!r}: a Dask fit reads a Parquet file "
                                   "(partitioned by its row groups); convert it with apim "
                                   "convert")
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UnsupportedFileError("reading .parquet files needs the package 'pyarrow'; "
                                   "install it with: pip install 'apim[io]'") from None
    if not path.is_file():
        raise UnsupportedFileError(f"file {str(path)!r} does not exist")
    return pq.ParquetFile(path)


def partition_frame(part: Partition, dyad: str, columns: Sequence[str]
                    ) -> tuple[pd.DataFrame, int]:
    """The rows of ``part`` as whole dyads, and the file row number of the first.

    Raises
    ------
    DataError
        For a missing column.
    """
    handle = _parquet(Path(part.path))
    meta = handle.metadata
    names = handle.schema_arrow.names
    wanted = list(dict.fromkeys([dyad, *columns]))
    missing = [c for c in wanted if c not in names]
    if missing:
        raise DataError(f"column {missing[0]!r} is not in {part.path!r}; its columns are "
                        f"{', '.join(names[:20])}")
    first_row = 1 + sum(meta.row_group(g).num_rows for g in range(part.start))
    frame = handle.read_row_groups(list(range(part.start, part.stop)),
                                   columns=wanted).to_pandas()
    if part.start > 0:  # rows of a dyad begun before belong to the partition before
        before = handle.read_row_group(part.start - 1, columns=[dyad]).column(0)
        ids = frame[dyad].to_numpy()
        lead = int(np.argmax(ids != before[len(before) - 1].as_py())) if len(ids) and \
            (ids != before[len(before) - 1].as_py()).any() else len(ids)
        frame = frame.iloc[lead:].reset_index(drop=True)
        first_row += lead
    g = part.stop
    while len(frame) and g < meta.num_row_groups:  # complete the last dyad
        last = frame[dyad].iloc[-1]
        nxt = handle.read_row_group(g, columns=wanted).to_pandas()
        same = (nxt[dyad] == last).to_numpy()
        take = int(np.argmin(same)) if not same.all() else len(nxt)
        if take:
            frame = pd.concat([frame, nxt.iloc[:take]], ignore_index=True)
        if take < len(nxt):
            break
        g += 1
    return frame, first_row


def check_together(seen: list[np.ndarray], starts: list[int], dyad: str,
                   path: str | Path) -> None:
    """Refuse a dyad whose rows lie in two blocks or partitions (``seen``: the dyad ids
    of each, ``starts``: their first file rows)."""
    _check_together(seen, starts, dyad, path)
