"""Reading speed of a large session file: 30,000 dyads x 30 sessions x 2 roles (1.8M rows).

Compares, in one run (medians of ``--repeats`` runs):

- before: the previous reader (pandas' python engine with ``sep=None`` sniffing, then a pass
  over text columns for blank cells), as apim read CSV files up to commit 7672ea0;
- after: :func:`apim.data.io.read_table` (delimiter/encoding sniffed on a 64 KB sample, then
  the C reader; identifiers read as text), alone and with a column subset;
- the whole ``SessionData.from_long`` (read + validate + sort);
- peers: plain ``pandas.read_csv`` (C engine), ``pyarrow.csv.read_csv``, and Parquet via
  pyarrow.

Run: ``python benchmarks/read_speed.py [--dyads 30000] [--repeats 3]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's apim


def make_file(folder: Path, n_dyads: int, n_sessions: int = 30, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    d, s = n_dyads, n_sessions
    dyad, session, role = np.meshgrid(np.arange(1, d + 1), np.arange(1, s + 1), [0, 1],
                                      indexing="ij")
    n = dyad.size
    level = np.repeat(rng.normal(0, 0.7, size=(d * 2)), s).reshape(d, 2, s).transpose(
        0, 2, 1).ravel()
    x = np.round(5 + level + rng.normal(0, 0.5, n), 3)
    y = np.round(4.5 + 0.4 * (x - 5) + rng.normal(0, 0.6, n), 3)
    x[rng.random(n) < 0.03] = np.nan
    frame = pd.DataFrame({
        "dyad": dyad.ravel(), "session": session.ravel(),
        "role": np.where(role.ravel() == 0, "patient", "therapist"),
        "therapist": (dyad.ravel() - 1) // 8 + 1,
        "treatment": np.where(dyad.ravel() % 2 == 0, "CBT", "AFT"),
        "alliance": x, "outcome": y,
    })
    path = folder / "large.csv"
    frame.to_csv(path, index=False)
    frame.to_parquet(folder / "large.parquet", index=False)
    return path


def before(path: Path) -> pd.DataFrame:
    """The reader up to commit 7672ea0 (python engine, sniffed delimiter, blank pass)."""
    frame = pd.read_csv(path, sep=None, engine="python")
    for column in frame.columns:
        values = frame[column]
        if values.dtype == object or pd.api.types.is_string_dtype(values):
            blank = values.astype(str).str.strip().eq("") & values.notna()
            if blank.any():
                frame[column] = values.mask(blank)
    return frame


def timed(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    times, value = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        value = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dyads", type=int, default=30_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--before-repeats", type=int, default=1)
    args = parser.parse_args()

    import pyarrow.csv as pacsv

    from apim.data.io import read_table
    from apim.data.session import SessionData

    with tempfile.TemporaryDirectory() as tmp:
        path = make_file(Path(tmp), args.dyads)
        ids = ("dyad", "session", "role", "therapist")
        size = os.path.getsize(path) / 1e6
        rows = [
            ("before: python engine, sniffed", args.before_repeats, lambda: before(path)),
            ("after: apim read_table", args.repeats,
             lambda: read_table(path, identifiers=ids)),
            ("after: apim read_table, 5 of 7 columns", args.repeats,
             lambda: read_table(path, identifiers=ids[:3], columns=["alliance", "outcome"])),
            ("after: SessionData.from_long (read+validate)", args.repeats,
             lambda: SessionData.from_long(path, dyad="dyad", session="session", role="role",
                                           therapist="therapist")),
            ("peer: pandas.read_csv (C engine)", args.repeats, lambda: pd.read_csv(path)),
            ("peer: pyarrow.csv.read_csv", args.repeats,
             lambda: pacsv.read_csv(path).to_pandas()),
            ("peer: parquet via pyarrow", args.repeats,
             lambda: pd.read_parquet(Path(tmp) / "large.parquet")),
        ]
        print(f"file: {args.dyads} dyads x 30 sessions x 2 roles = {2 * 30 * args.dyads} rows, "
              f"{size:.0f} MB CSV; medians of {args.repeats} runs "
              f"({args.before_repeats} for 'before')")
        for name, repeats, fn in rows:
            seconds, value = timed(fn, repeats)
            n = len(value.frame) if hasattr(value, "frame") else len(value)  # type: ignore
            print(f"  {name:48s} {seconds:7.2f} s   ({n} rows)")


if __name__ == "__main__":
    main()
