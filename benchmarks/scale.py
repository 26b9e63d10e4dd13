"""Scale benchmark (issue 24): this checkout ("after") side by side with another checkout
("before", default /work/main) in one run, and the out-of-core and Dask fits.

(p) preparation: ``SessionData.from_long``, ``build_design`` and the engine fit, time and
    peak RSS, at 30,000 and 100,000 dyads x 30 sessions (seed design), before and after;
(c) the whole ``apim fit`` command on the seed-design CSV (241 dyads) before and after and
    ``Rscript benchmarks/whole_command.R`` (nlme), medians of several runs; the import
    time of ``scipy.special`` the command no longer pays;
(h) the whole command on a 100,000-dyad CSV, before and after (time, peak RSS);
(o) the out-of-core fit: 1,000,000 dyads x 30 sessions (60 million rows) from Parquet,
    here and on a local Dask cluster of 2 worker processes (time, peak RSS of every
    process), and equality with the in-memory fit at 100,000 dyads.

Every timed job runs in its own process (``/usr/bin/time`` for peak RSS). Writes its
sections of ``benchmarks/RESULTS.md``.

Usage: ``python benchmarks/scale.py [--before /work/main] [--only prep,command,big,ooc]
[--reps 3] [--dyads 1000000]``
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
AFTER = HERE.parent
sys.path[:0] = [str(HERE), str(AFTER)]

from results_file import write_section  # noqa: E402
from seed_data import seed_design  # noqa: E402

PREP = """
import json, resource, sys, time
sys.path.insert(0, {here!r})
from seed_data import seed_design
d = seed_design({n}, 30, seed=2)
d = d.assign(x=d["aw"] + d["ab"])[["dyad", "session", "role", "x", "y"]]
from apim import APIMSpec, SessionData
from apim.engine.mixed.estimate import estimate_mixed
from apim.model.design import build_design
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out = {{"base_mb": rss()}}
t = time.perf_counter()
data = SessionData.from_long(d, dyad="dyad", session="session", role="role", roles=(0, 1))
out["from_long"] = time.perf_counter() - t
del d
t = time.perf_counter()
design = build_design(data, APIMSpec("y", ("x",)))
out["build_design"] = time.perf_counter() - t
out["design_mb"] = rss()
t = time.perf_counter()
fit = estimate_mixed(design.model, "REML")
out["fit"] = time.perf_counter() - t
out["peak_mb"] = rss()
out["loglik"] = fit.loglik
print(json.dumps(out))
"""

OOC = """
import json, resource, sys, time
import apim
from apim.model.out_of_core import fit_out_of_core
t = time.perf_counter()
r = fit_out_of_core({path!r}, apim.APIMSpec("y", ("x",)), dyad="dyad", session="session",
                    role="role", roles=("0", "1"), scheduler={scheduler!r},
                    workers=None if {scheduler!r} else {workers!r})
seconds = time.perf_counter() - t
out = {{"seconds": seconds, "client_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        / 1024, "children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "loglik": r.statistics.loglik, "coef": r.coef.tolist(),
        "blocks": r.n_blocks, "evaluations": r.engine.n_evaluations,
        "fit_seconds": r.engine.fit_seconds, "n_obs": r.statistics.n_obs,
        "converged": r.statistics.converged}}
if {scheduler!r}:
    from dask.distributed import Client
    with Client({scheduler!r}) as c:
        out["worker_mb"] = sorted(c.run(lambda: resource.getrusage(
            resource.RUSAGE_SELF).ru_maxrss / 1024).values())
print(json.dumps(out))
"""

IN_MEMORY = """
import json, sys
import pandas as pd
import apim
d = pd.read_parquet({path!r})
data = apim.SessionData.from_long(d, dyad="dyad", session="session", role="role",
                                  roles=(0, 1))
del d
r = apim.fit(data, apim.APIMSpec("y", ("x",)))
print(json.dumps({{"loglik": r.statistics.loglik, "coef": r.coef.tolist(),
                  "se": r.engine.se.tolist()}}))
"""


BYTECODE = Path(tempfile.mkdtemp(prefix="scale-pycache-"))
atexit.register(shutil.rmtree, BYTECODE, ignore_errors=True)
"""Where every timed process reads and writes its compiled modules (``PYTHONPYCACHEPREFIX``):
the trees are not written to, and a checkout's modules are compiled once, as an installed
package's are, not on every run (with ``PYTHONDONTWRITEBYTECODE`` set, ``apim fit`` would
compile apim's ~80 modules each time: 0.3 s of the seed command)."""


def run_env(tree: Path) -> dict[str, str]:
    """The environment of a timed process: ``tree``'s apim first, bytecode cached."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**env, "PYTHONPATH": str(tree), "PYTHONPYCACHEPREFIX": str(BYTECODE)}


CPU: dict[tuple[str, ...], float] = {}
"""CPU seconds (user + system, with the processes it waited for) of each timed command."""


def timed(command: list[str], tree: Path) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and stdout of ``command`` run in ``tree`` (its apim
    first on the path: ``python -c`` and ``-m`` put the working directory first); its
    CPU seconds go to :data:`CPU`."""
    env = run_env(tree)
    start = time.perf_counter()
    out = subprocess.run(["/usr/bin/time", "-f", "%U %S %M", *command], capture_output=True,
                         text=True, env=env, cwd=tree)
    seconds = time.perf_counter() - start
    if out.returncode:
        raise RuntimeError(f"{command}: {out.stderr[-2000:]}")
    user, system, peak = out.stderr.strip().splitlines()[-1].split()
    CPU[tuple(command)] = float(user) + float(system)
    return seconds, int(peak) / 1024, out.stdout


def check_trees(trees: dict[str, Path]) -> None:
    """Each label imports its own checkout's apim."""
    for label, tree in trees.items():
        where = timed([sys.executable, "-c", "import apim; print(apim.__file__)"], tree)[2]
        if not where.strip().startswith(str(tree.resolve())):
            raise RuntimeError(f"{label}: apim comes from {where.strip()}, not {tree}")


def prep(trees: dict[str, Path], sizes: list[int], reps: int) -> list[dict]:
    rows = []
    for n in sizes:
        for _ in range(reps if n < 100_000 else 1):
            for label, tree in trees.items():  # interleaved: the same conditions
                _, _, out = timed([sys.executable, "-c",
                                   PREP.format(here=str(HERE), n=n)], tree)
                rows.append({"tree": label, "dyads": n, **json.loads(out)})
                print("prep", rows[-1], flush=True)
    return rows


def command(trees: dict[str, Path], tmp: Path, reps: int) -> dict:
    d = seed_design(241, 30, seed=1)
    path = tmp / "seed.csv"
    d.assign(x=d["aw"] + d["ab"])[["dyad", "session", "role", "x", "y"]].to_csv(path,
                                                                              index=False)
    argv = [sys.executable, "-m", "apim", "fit", str(path), "--dyad", "dyad", "--session",
            "session", "--role", "role", "--roles", "0,1", "--outcome", "y", "--predictor",
            "x", "--random", "intercepts", "--residual", "un"]
    times: dict[str, list[float]] = {k: [] for k in [*trees, "R", "python"]}
    cpu: dict[str, list[float]] = {k: [] for k in times}
    printed = {label: timed(argv, tree)[2] for label, tree in trees.items()}  # untimed:
    # compiles the modules into BYTECODE; the printed summaries must be byte-identical
    timed([sys.executable, "-c", "import numpy, pandas"], AFTER)
    load_start = os.getloadavg()[0]
    runs = {"python": [sys.executable, "-c", "import numpy, pandas"],
            "R": ["Rscript", str(HERE / "whole_command.R"), str(path)]}
    for _ in range(reps):
        for label, tree in trees.items():
            times[label].append(timed(argv, tree)[0])
            cpu[label].append(CPU[tuple(argv)])
        for label in ("python", "R"):
            if label == "R" and not shutil.which("Rscript"):
                continue
            times[label].append(timed(runs[label], AFTER)[0])
            cpu[label].append(CPU[tuple(runs[label])])
    out: dict = {k: float(np.median(v)) for k, v in times.items() if v}
    out["cpu"] = {k: float(np.median(v)) for k, v in cpu.items() if v}
    out["load"] = (load_start, os.getloadavg()[0])
    out["identical"] = len(set(printed.values())) == 1
    for _ in range(2):  # the second: scipy's modules compiled into BYTECODE by the first
        profile = subprocess.run([sys.executable, "-X", "importtime", "-c",
                                  "import scipy.special"], capture_output=True, text=True,
                                 env=run_env(AFTER), cwd=AFTER)
    out["scipy_special_s"] = int(profile.stderr.splitlines()[-1].split("|")[1]) / 1e6
    print("command", out, flush=True)
    return out


def big_command(trees: dict[str, Path], tmp: Path, n: int, reps: int) -> list[dict]:
    """The whole ``apim fit`` on an ``n``-dyad CSV, in memory (once per tree) and
    ``--out-of-core`` (``reps`` times per tree, interleaved), and once with one process
    (``--workers 1``); one row per command with the median wall and CPU seconds."""
    d = seed_design(n, 30, seed=2)
    path = tmp / "big.csv"
    d.assign(x=d["aw"] + d["ab"])[["dyad", "session", "role", "x", "y"]].to_csv(path,
                                                                              index=False)
    del d
    argv = [sys.executable, "-m", "apim", "fit", str(path), "--dyad", "dyad", "--session",
            "session", "--role", "role", "--roles", "0,1", "--outcome", "y", "--predictor",
            "x"]
    runs = [(f"{label} --out-of-core", tree, [*argv, "--out-of-core"], rep)
            for rep in range(reps) for label, tree in trees.items()]
    runs += [("after --out-of-core --workers 1", AFTER, [*argv, "--out-of-core", "--workers",
                                                      "1"], 0)]
    runs += [(label, tree, argv, 0) for label, tree in trees.items()]
    found: dict[str, list[dict]] = {}
    for label, tree, command, _ in runs:
        load = os.getloadavg()[0]
        seconds, mb, _ = timed(command, tree)
        found.setdefault(label, []).append({"seconds": seconds, "peak_mb": mb,
                                            "cpu": CPU[tuple(command)], "load": load})
        print("big", label, found[label][-1], flush=True)
    return [{"tree": label, "dyads": n, "runs": len(r),
             **{k: float(np.median([x[k] for x in r])) for k in r[0]},
             "load_range": (min(x["load"] for x in r), max(x["load"] for x in r))}
            for label, r in found.items()]


def parquet_file(path: Path, n: int, slopes: bool = False) -> None:
    """Seed-design data of ``n`` dyads written 20,000 dyads at a time (never all in memory);
    ``slopes``: with random actor and partner slopes (``seed_design(..., slopes=True)``)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    writer = None
    for k, lo in enumerate(range(0, n, 20_000)):
        d = seed_design(min(20_000, n - lo), 30, seed=100 + k, slopes=slopes)
        d["dyad"] += lo
        table = pa.Table.from_pandas(d.assign(x=d["aw"] + d["ab"])[
            ["dyad", "session", "role", "x", "y"]], preserve_index=False)
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    assert writer is not None
    writer.close()


def out_of_core(tmp: Path, n: int, equal_at: int) -> dict:
    out: dict = {}
    small = tmp / "equal.parquet"
    parquet_file(small, equal_at)
    ours = json.loads(timed([sys.executable, "-c", OOC.format(path=str(small), scheduler=None,
                                                               workers=None)], AFTER)[2])
    whole = json.loads(timed([sys.executable, "-c", IN_MEMORY.format(path=str(small))],
                             AFTER)[2])
    out["equal"] = {"dyads": equal_at, "loglik_diff": abs(ours["loglik"] - whole["loglik"]),
                    "coef_diff": float(np.max(np.abs(np.subtract(ours["coef"],
                                                                 whole["coef"])))),
                    "coef_diff_se": float(np.max(np.abs(np.subtract(ours["coef"],
                                                                    whole["coef"]))
                                                 / np.array(whole["se"])))}
    print("equal", out["equal"], flush=True)
    big = tmp / "big.parquet"
    parquet_file(big, n)
    out["file_mb"] = big.stat().st_size / 1e6
    out["start_load"] = os.getloadavg()[0]
    command = [sys.executable, "-c", OOC.format(path=str(big), scheduler=None, workers=None)]
    seconds, mb, text = timed(command, AFTER)
    out["local"] = {**json.loads(text), "wall": seconds, "peak_mb": mb,
                    "cpu": CPU[tuple(command)], "load": os.getloadavg()[0]}
    print("local", out["local"], flush=True)
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=None, memory_limit=0) as cluster:
        seconds, mb, text = timed([sys.executable, "-c", OOC.format(
            path=str(big), scheduler=cluster.scheduler_address, workers=None)], AFTER)
    out["dask"] = {**json.loads(text), "wall": seconds, "peak_mb": mb,
                   "load": os.getloadavg()[0]}
    print("dask", out["dask"], flush=True)
    return out


def header(args: argparse.Namespace, before: Path) -> str:
    commit = subprocess.run(["git", "-C", str(before), "log", "-1", "--format=%h"],
                            capture_output=True, text=True).stdout.strip()
    mine = subprocess.run(["git", "-C", str(AFTER), "log", "-1", "--format=%h"],
                          capture_output=True, text=True).stdout.strip()
    load = os.getloadavg()[0]
    return (f"Run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python "
            f"benchmarks/scale.py`; before = {before} ({commit}), after = this checkout "
            f"({mine}). Load average at the start: {load:.1f} (2 cores; other jobs slow the "
            "absolute times); before and after ran interleaved, in the same conditions.\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="/work/main")
    parser.add_argument("--only", default="prep,command,big,ooc")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--dyads", type=int, default=1_000_000)
    parser.add_argument("--sizes", default="30000,100000")
    parser.add_argument("--equal-at", type=int, default=100_000)
    parser.add_argument("--big", type=int, default=100_000)
    args = parser.parse_args()
    parts = set(args.only.split(","))
    before = Path(args.before)
    trees = {"before": before, "after": AFTER}
    check_trees(trees)
    head = header(args, before)
    with tempfile.TemporaryDirectory() as folder:
        tmp = Path(folder)
        if "prep" in parts:
            rows = prep(trees, [int(s) for s in args.sizes.split(",")], args.reps)
            lines = ["# Scale (issue 24): preparation before and after\n", head,
                     "Seed design x 30 sessions, `SessionData.from_long` on the generated "
                     "frame, `build_design`, `estimate_mixed` (REML); each run its own "
                     "process; medians over runs.\n",
                     "| dyads | tree | from_long s | build_design s | fit s | RSS after "
                     "design MB | peak RSS MB | logLik |", "|---|---|---|---|---|---|---|---|"]
            for n in sorted({r["dyads"] for r in rows}):
                for label in trees:
                    mine = [r for r in rows if r["dyads"] == n and r["tree"] == label]
                    med = {k: float(np.median([r[k] for r in mine])) for k in
                           ("from_long", "build_design", "fit", "design_mb", "peak_mb")}
                    lines.append(f"| {n:,} | {label} | {med['from_long']:.2f} | "
                                 f"{med['build_design']:.2f} | {med['fit']:.2f} | "
                                 f"{med['design_mb']:.0f} | {med['peak_mb']:.0f} | "
                                 f"{mine[0]['loglik']:.4f} |")
            write_section("scale-prep", "\n".join(lines))
        if "command" in parts:
            c = command(trees, tmp, max(5, args.reps))
            lines = ["# Scale (issue 24): the whole command on the seed design\n", head,
                     "`apim fit seed.csv ... --random intercepts --residual un` (241 dyads "
                     "x 30 sessions) against `Rscript benchmarks/whole_command.R seed.csv`; "
                     f"{max(5, args.reps)} runs each, interleaved; medians of the wall "
                     "time and of the CPU time (user + system). Load average (1 min) at "
                     f"the start and end of the runs: {c['load'][0]:.1f}, "
                     f"{c['load'][1]:.1f}. The printed summaries of before and after are "
                     f"{'byte-identical' if c['identical'] else 'DIFFERENT'}.\n",
                     "| what | median wall s | median CPU s |", "|---|---|---|"]
            lines += [f"| `apim fit` before | {c['before']:.3f} | {c['cpu']['before']:.3f} |",
                      f"| `apim fit` after | {c['after']:.3f} | {c['cpu']['after']:.3f} |"]
            if "R" in c:
                lines += [f"| Rscript + nlme | {c['R']:.3f} | {c['cpu']['R']:.3f} |",
                          f"| ratio R / after (before) | {c['R'] / c['after']:.1f}x "
                          f"({c['R'] / c['before']:.1f}x) | "
                          f"{c['cpu']['R'] / c['cpu']['after']:.1f}x "
                          f"({c['cpu']['R'] / c['cpu']['before']:.1f}x) |"]
            lines += [f"| floor: `python -c 'import numpy, pandas'` | {c['python']:.3f} | "
                      f"{c['cpu']['python']:.3f} |",
                      f"| apim's own share after (before): minus the floor | "
                      f"{c['after'] - c['python']:.3f} ({c['before'] - c['python']:.3f}) | "
                      f"{c['cpu']['after'] - c['cpu']['python']:.3f} "
                      f"({c['cpu']['before'] - c['cpu']['python']:.3f}) |",
                      f"| `import scipy.special` alone (-X importtime) | "
                      f"{c['scipy_special_s']:.3f} | |"]
            write_section("scale-command", "\n".join(lines))
        if "big" in parts:
            rows = big_command(trees, tmp, args.big, args.reps)
            lines = ["# Scale (issue 24): the whole command on 100,000 dyads (CSV)\n", head,
                     f"`apim fit big.csv ...` ({args.big:,} dyads x 30 sessions, "
                     f"{args.big * 60:,} rows): in memory once per tree, `--out-of-core` "
                     "(blocks of the default size, a worker process per core) several times "
                     "per tree, interleaved; medians of wall time, CPU time (user + system, "
                     "with the worker processes) and peak RSS of the largest process "
                     "(/usr/bin/time; with --out-of-core the main process and each worker "
                     "hold about this much); load average (1 min) at the start of the "
                     "runs.\n",
                     "| command (tree) | runs | wall s | CPU s | peak RSS MB | load |",
                     "|---|---|---|---|---|---|"]
            lines += [f"| {r['tree']} | {r['runs']} | {r['seconds']:.1f} | {r['cpu']:.1f} | "
                      f"{r['peak_mb']:.0f} | {r['load_range'][0]:.1f}-{r['load_range'][1]:.1f}"
                      " |" for r in rows]
            write_section("scale-big", "\n".join(lines))
        if "ooc" in parts:
            o = out_of_core(tmp, args.dyads, args.equal_at)
            e = o["equal"]
            lines = ["# Scale (issue 24): one fit of a million dyads, out of core\n", head,
                     f"Random-intercept APIM (REML, residuals un) of {args.dyads:,} dyads x "
                     f"30 sessions ({args.dyads * 60:,} rows) from a Parquet file of "
                     f"{o['file_mb']:.0f} MB, read in blocks of the default size; once "
                     "each.\n",
                     "| where | wall s | load at start, end | fit from statistics s | "
                     "evaluations | peak RSS MB |", "|---|---|---|---|---|---|"]
            loads = {"local": (o["start_load"], o["local"]["load"]),
                     "dask": (o["local"]["load"], o["dask"]["load"])}
            for key, label in (("local", "`fit_out_of_core` (as `apim fit --out-of-core`: "
                                "this process reads, 2 worker processes build)"),
                               ("dask", "LocalCluster, 2 worker processes")):
                r = o[key]
                rss = f"{r['client_mb']:.0f} (main)"
                if "worker_mb" in r:
                    rss += f"; workers {', '.join(f'{w:.0f}' for w in r['worker_mb'])}"
                else:
                    rss += f"; largest worker {r['children_mb']:.0f}"
                lines.append(f"| {label} | {r['wall']:.1f} | {loads[key][0]:.1f}, "
                             f"{loads[key][1]:.1f} | {r['fit_seconds']:.2f} | "
                             f"{r['evaluations']} | {rss} |")
            rows = args.dyads * 60 / 1e6
            lines += ["", f"CPU time of the local fit (user + system, the main process and "
                      f"its workers): {o['local']['cpu']:.0f} s, {o['local']['cpu'] / rows:.2f} "
                      "s per million rows (less sensitive to the machine's load than the "
                      "wall time)."]
            diff = np.max(np.abs(np.subtract(o["local"]["coef"], o["dask"]["coef"])))
            lines += ["", f"Dask against local: |logLik difference| "
                      f"{abs(o['local']['loglik'] - o['dask']['loglik']):.1e}, largest "
                      f"|coefficient difference| {diff:.1e}.",
                      f"Out of core against in memory at {e['dyads']:,} dyads: |logLik "
                      f"difference| {e['loglik_diff']:.1e}, largest |coefficient difference| "
                      f"{e['coef_diff']:.1e} ({e['coef_diff_se']:.1e} SEs)."]
            write_section("scale-ooc", "\n".join(lines))


if __name__ == "__main__":
    main()
