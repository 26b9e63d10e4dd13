"""Time of a generalized-APIM power run (issue 21: power to detect a partner effect on
rupture occurrence).

Binary events, 100 dyads x 10 sessions (logit; intercepts -1.5, actor within -0.8,
between -0.6 and -0.3, random-intercept SDs 0.8 and correlation 0.4), the patient's
partner within effect 0 (the test's level) and -0.5 (power); every replicate simulated
by :func:`apim.simulation.simulate.simulate`, fitted by the binary APIM (Laplace) and
z-tested by :func:`apim.simulation.power.power`, with 1 and 2 joblib workers. Writes
its section of ``benchmarks/RESULTS.md``.

Usage: ``python benchmarks/glmm_power.py [--reps 100] [--seed 1]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from results_file import write_section  # noqa: E402

from apim.model.generalized_spec import GeneralizedAPIMSpec  # noqa: E402
from apim.simulation.power import power  # noqa: E402
from apim.simulation.simulate import SimulationSpec  # noqa: E402

TRUTH = SimulationSpec(
    n_dyads=100, n_sessions=10, caseload=0, family="binomial", intercept=(-1.5, -1.5),
    actor_within=(-0.8, -0.8), partner_within=(-0.5, -0.5), actor_between=(-0.6, -0.6),
    partner_between=(-0.3, -0.3), intercept_sd=(0.8, 0.8), intercept_cor=0.4)
GRID = {"partner_within": [(0.0, -0.5), (-0.5, -0.5)]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    analysis = GeneralizedAPIMSpec("y", ("x",), nagq=1)
    rows = []
    for n_jobs in (1, 2):
        load = os.getloadavg()[0]
        started = time.perf_counter()
        result = power(TRUTH, analysis, "patient.partner.within", grid=GRID,
                       replicates=args.reps, seed=args.seed, n_jobs=n_jobs, progress=False)
        seconds = time.perf_counter() - started
        load = max(load, os.getloadavg()[0])
        table = result.table
        fits = int(table["replicates"].sum() + table["failed"].sum()
                   + table["not_converged"].sum())
        rows.append((n_jobs, seconds, fits, load, table))
        print(n_jobs, f"{seconds:.1f} s", table.to_string(index=False))
    lines = ["# Generalized APIM power", "",
             f"`python benchmarks/glmm_power.py --reps {args.reps} --seed {args.seed}` on "
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: `power()` of the "
             "patient's partner within effect on a binary event (rupture occurrence), "
             "100 dyads x 10 sessions x 2 roles, logit, analysis "
             "`GeneralizedAPIMSpec('y', ('x',), nagq=1)` (Laplace), z test at alpha 0.05; "
             f"{args.reps} replicates at each of two effects (0: the level; -0.5: the "
             "power). One run per setting on a shared 2-core machine (other engineers' "
             "jobs running; load average as measured at the start and end of each run), "
             "so the times are not those of a quiet machine.", "",
             "| n_jobs | replicates | seconds | s per replicate | load | rejection rate at 0 "
             "(MCSE) | power at -0.5 (MCSE) | failed | not converged |",
             "|---|---|---|---|---|---|---|---|---|"]
    for n_jobs, seconds, fits, load, table in rows:
        null, alt = table.iloc[0], table.iloc[1]
        lines.append(f"| {n_jobs} | {fits} | {seconds:.1f} | {seconds / fits:.2f} | "
                     f"{load:.1f} | {null['power']:.3f} ({null['mcse']:.3f}) | "
                     f"{alt['power']:.3f} ({alt['mcse']:.3f}) | "
                     f"{int(table['failed'].sum())} | {int(table['not_converged'].sum())} |")
    same = rows[0][4].equals(rows[1][4])
    lines += ["", f"The two runs give {'the same' if same else 'DIFFERENT'} tables (seeds "
              "spawned per replicate); the mean estimates at -0.5: "
              f"{rows[0][4]['mean_estimate'].iloc[1]:.3f}, at 0: "
              f"{rows[0][4]['mean_estimate'].iloc[0]:.3f}. Load average as measured at "
              "the start and end of each run; a run in between may have met more."]
    write_section("glmm-power", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
