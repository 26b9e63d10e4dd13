"""Out-of-core random slopes (issue 24): the per-dyad store's fit against the in-memory fit.

A Parquet file of the seed design with random actor and partner slopes (``seed_design(...,
slopes=True)``, ``x`` = within + between part, 30 sessions) is fitted with random slopes
(REML, residuals un, ``q = 6``) by ``fit_out_of_core`` (blocks of the default 250,000 rows,
workers) and in memory (``apim.fit`` of the file read with pandas), each in its own
process under ``/usr/bin/time``: wall and CPU seconds (user + system, worker processes
included), peak RSS of the main process and of its largest child, and the store's size.
Writes the ``scale-ooc-slopes`` section of ``benchmarks/RESULTS.md``.

Usage: ``python benchmarks/slopes_scale.py [--dyads 100000] [--reps 1]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT)]

from results_file import write_section  # noqa: E402
from scale import parquet_file  # noqa: E402

SPEC = 'apim.APIMSpec("y", ("x",), covariance=apim.CovarianceSpec(random="slopes"))'

OUT_OF_CORE = """
import json, resource, time
import apim
from apim.model.out_of_core import fit_out_of_core
t = time.perf_counter()
r = fit_out_of_core({path!r}, {spec}, dyad="dyad", session="session", role="role",
                    roles=("0", "1"))
print(json.dumps({{"seconds": time.perf_counter() - t,
                  "children_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
                  / 1024, "loglik": r.statistics.loglik, "coef": r.coef.tolist(),
                  "se": r.effects["se"].tolist(), "blocks": r.n_blocks,
                  "evaluations": r.engine.n_evaluations, "fit_seconds": r.engine.fit_seconds,
                  "converged": r.statistics.converged, "boundary": list(r.boundary)}}))
"""

IN_MEMORY = """
import json, time
import pandas as pd
import apim
t = time.perf_counter()
d = pd.read_parquet({path!r})
data = apim.SessionData.from_long(d, dyad="dyad", session="session", role="role",
                                  roles=(0, 1))
del d
r = apim.fit(data, {spec})
print(json.dumps({{"seconds": time.perf_counter() - t, "loglik": r.statistics.loglik,
                  "coef": r.coef.tolist(), "se": r.effects["se"].tolist(),
                  "evaluations": r.engine.n_evaluations,
                  "converged": r.statistics.converged, "boundary": list(r.boundary)}}))
"""

STORE = """
import json
import pandas as pd
import apim
from apim.engine.mixed.dyad_store import DyadStore
from apim.model.design import build_design
d = pd.read_parquet({path!r}).iloc[:60_000]
data = apim.SessionData.from_long(d, dyad="dyad", session="session", role="role",
                                  roles=(0, 1))
store = DyadStore.of(build_design(data, {spec}).model)
print(json.dumps({{"per_dyad": store.nbytes / store.n_dyads}}))
"""


def timed(script: str) -> dict:
    """Run ``script`` in its own process: its JSON output, wall, CPU (user + system, with
    children) seconds and peak RSS (MB) of the main process."""
    env = {**os.environ, "PYTHONPATH": str(ROOT),
           "PYTHONPYCACHEPREFIX": str(Path(tempfile.gettempdir()) / "slopes-scale-pyc")}
    with tempfile.NamedTemporaryFile("r", suffix=".time") as stats:
        done = subprocess.run(["/usr/bin/time", "-o", stats.name, "-f", "%e %U %S %M",
                               sys.executable, "-c", script], env=env, capture_output=True,
                              text=True)
        if done.returncode:
            raise RuntimeError(done.stderr[-2000:])
        wall, user, system, kb = stats.read().split()[-4:]
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "wall": float(wall),
            "cpu": float(user) + float(system), "peak_mb": int(kb) / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dyads", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=1)
    args = parser.parse_args()
    n = args.dyads
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "slopes.parquet"
        parquet_file(path, n, slopes=True)
        size_mb = path.stat().st_size / 1e6
        store = timed(STORE.format(path=str(path), spec=SPEC))
        runs: dict[str, list[dict]] = {"out of core": [], "in memory": []}
        for _ in range(args.reps):  # interleaved, the same conditions for both
            for label, script in (("out of core", OUT_OF_CORE), ("in memory", IN_MEMORY)):
                load = os.getloadavg()[0]
                runs[label].append({**timed(script.format(path=str(path), spec=SPEC)),
                                    "load": load})
                print(label, {k: v for k, v in runs[label][-1].items()
                              if k not in ("coef", "se")}, flush=True)
    ooc, mem = runs["out of core"][0], runs["in memory"][0]
    med = {label: {k: float(np.median([r[k] for r in rs]))
                   for k in ("wall", "cpu", "peak_mb", "load")} for label, rs in runs.items()}
    lines = [
        "# Scale (issue 24): random slopes out of core\n",
        f"Run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `python "
        f"benchmarks/slopes_scale.py --dyads {n} --reps {args.reps}` on the 2-core machine "
        "(load average at each start below: other jobs slow the wall times; CPU seconds "
        "are the steadier measure).\n",
        f"Seed design with random actor and partner slopes (SD 0.15), {n:,} dyads x 30 "
        f"sessions ({2 * 30 * n:,} rows) from a Parquet file of {size_mb:.0f} MB; "
        "random intercepts and actor and partner slopes per role (q = 6, a 6 x 6 G), "
        "REML, residuals un. Out of core: `fit_out_of_core` (blocks of the default "
        "250,000 rows, this process reads, 2 worker processes build the blocks' "
        "stores); in memory: "
        "`apim.fit` of the file read with pandas. Each in its own process under "
        "`/usr/bin/time`; medians of the runs.\n",
        "| fit | wall s | CPU s (with workers) | peak RSS MB (main) | load at start |",
        "|---|---|---|---|---|"]
    for label in runs:
        m = med[label]
        extra = ""
        if label == "out of core":
            extra = f" (largest worker {max(r['children_mb'] for r in runs[label]):.0f})"
        lines.append(f"| {label} | {m['wall']:.1f} | {m['cpu']:.1f} | "
                     f"{m['peak_mb']:.0f}{extra} | {m['load']:.1f} |")
    coef_diff = float(np.max(np.abs(np.subtract(ooc["coef"], mem["coef"]))))
    se_diff = float(np.max(np.abs(np.subtract(ooc["se"], mem["se"]))))
    cpu_ratio = med["out of core"]["cpu"] / med["in memory"]["cpu"]
    largest = max(med["out of core"]["peak_mb"],
                  max(r["children_mb"] for r in runs["out of core"]))
    lines += [
        "",
        f"Ratios out of core / in memory: CPU {cpu_ratio:.2f}, peak RSS of the largest "
        f"process {largest / med['in memory']['peak_mb']:.2f}.",
        f"The per-dyad store: {store['per_dyad']:.0f} bytes a dyad "
        f"({store['per_dyad'] * n / 1e6:.0f} MB for these {n:,} dyads); the fit from it: "
        f"{ooc['fit_seconds']:.1f} s wall, {ooc['evaluations']} evaluations "
        f"(in memory: {mem['evaluations']}); {ooc['blocks']} blocks.",
        f"Out of core against in memory: |logLik difference| "
        f"{abs(ooc['loglik'] - mem['loglik']):.1e} (logLik {mem['loglik']:.1f}), largest "
        f"|coefficient difference| {coef_diff:.1e}, largest |SE difference| {se_diff:.1e}; "
        f"converged {ooc['converged']} and {mem['converged']}, boundary "
        f"{bool(ooc['boundary'])} and {bool(mem['boundary'])}.",
    ]
    write_section("scale-ooc-slopes", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
