"""Where the time of a power analysis goes: one replicate by phase, and workers.

Seed design (``SimulationSpec(partner_within=(0.05, 0.05))``, ``APIMSpec("y", ("x",))``,
hypothesis ``patient.partner.within``):

1. one replicate, serially, by phase (median over ``--phase-reps`` replicates): simulate,
   check and build the design, the engine fit, the Wald test; wall and CPU time;
2. the start-up of joblib workers (two trivial jobs on two workers);
3. ``power(..., replicates=R)`` with 1 and 2 workers (``--replicates``, default 200):
   wall time and the summed time of the jobs inside the workers (when the sum grows with
   two workers, the cores were shared with other work).

Run: ``python benchmarks/power_speed.py [--replicates 200] [--phase-reps 30]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import warnings
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # this checkout's apim

from apim.engine.fit import fit as fit_engine  # noqa: E402
from apim.inference.wald import wald_test  # noqa: E402
from apim.model.checks import check_design  # noqa: E402
from apim.model.design import build_design  # noqa: E402
from apim.model.fit import fit  # noqa: E402
from apim.model.spec import APIMSpec  # noqa: E402
from apim.parallel import run_jobs  # noqa: E402
from apim.simulation.power import _replicate  # noqa: E402
from apim.simulation.simulate import SimulationSpec, simulate  # noqa: E402

TRUTH = SimulationSpec(partner_within=(0.05, 0.05))
ANALYSIS = APIMSpec("y", ("x",))
HYPOTHESIS = "patient.partner.within = 0"


def phases(reps: int) -> dict[str, tuple[float, float]]:
    """Median (wall ms, CPU ms) per phase of one replicate."""
    rows: dict[str, list[tuple[float, float]]] = {}

    def clock(name: str, func):  # type: ignore[no-untyped-def]
        wall, cpu = time.perf_counter(), time.process_time()
        value = func()
        rows.setdefault(name, []).append(((time.perf_counter() - wall) * 1000,
                                          (time.process_time() - cpu) * 1000))
        return value

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in np.random.SeedSequence(11).spawn(reps):
            data = clock("simulate", lambda seed=seed: simulate(TRUTH, seed))
            clock("check", lambda data=data: check_design(data, ANALYSIS))
            design = clock("design", lambda data=data: build_design(data, ANALYSIS))
            clock("engine fit", lambda design=design: fit_engine(design.model))
            result = clock("apim.fit (all of it)", lambda data=data: fit(data, ANALYSIS))
            clock("Wald test", lambda result=result: wald_test(result, HYPOTHESIS))
    return {k: (statistics.median(w for w, _ in v), statistics.median(c for _, c in v))
            for k, v in rows.items()}


def _pid(_: int) -> int:
    return os.getpid()


def startup() -> float:
    """Seconds for two trivial jobs on two fresh workers."""
    clock = time.perf_counter()
    run_jobs(_pid, [0, 1], n_jobs=2, progress=False)
    return time.perf_counter() - clock


def workers(replicates: int, n_jobs: int) -> tuple[float, float]:
    """Wall seconds and summed job seconds of ``replicates`` replicates."""
    seeds = np.random.SeedSequence(0).spawn(replicates)
    func = partial(_replicate, analysis=ANALYSIS, hypothesis=HYPOTHESIS)
    clock = time.perf_counter()
    out = run_jobs(func, [(TRUTH, s) for s in seeds], n_jobs=n_jobs, progress=False)
    return time.perf_counter() - clock, sum(o.seconds for o in out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--phase-reps", type=int, default=30)
    args = parser.parse_args()
    print(f"load average at the start: {os.getloadavg()[0]:.1f}\n")
    print("| phase | wall ms | CPU ms |\n|---|---|---|")
    for name, (wall, cpu) in phases(args.phase_reps).items():
        print(f"| {name} | {wall:.1f} | {cpu:.1f} |")
    print(f"\nworker start-up (2 workers, 2 trivial jobs): {startup():.2f} s\n")
    print("| workers | replicates | wall s | sum of job s |\n|---|---|---|---|")
    for n_jobs in (1, 2):
        wall, busy = workers(args.replicates, n_jobs)
        print(f"| {n_jobs} | {args.replicates} | {wall:.1f} | {busy:.1f} |")


if __name__ == "__main__":
    main()
