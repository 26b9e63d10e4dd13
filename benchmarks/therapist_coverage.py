"""Variance shares: bias and coverage of the parametric-bootstrap intervals.

``--replicates`` data sets (default 200) of a three-level design (``--therapists`` x 4
dyads x 8 sessions; therapist SD 0.4, person SDs (0.6, 0.5), session SDs (0.5, 0.4), the
same therapist effect on both members' ratings) are simulated with
:func:`apim.simulation.simulate.simulate`; each gets :func:`apim.analyses.therapist.
variance_shares` with ``--boot`` parametric-bootstrap replicates. Reported per role and
level: the true share, the mean estimate (and its Monte Carlo SE), the coverage of the
95% percentile interval and how often the therapist variance was estimated at zero.

Writes its section of ``benchmarks/RESULTS.md``. Usage:
``python benchmarks/therapist_coverage.py [--replicates 200] [--boot 200] [--n-jobs 2]``
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd
from results_file import write_section

from apim.analyses.therapist import variance_shares
from apim.parallel import run_jobs
from apim.simulation.simulate import SimulationSpec, simulate


def design(therapists: int) -> SimulationSpec:
    return SimulationSpec(n_dyads=4 * therapists, n_sessions=8, caseload=4,
                          x_therapist_sd=0.4, x_between_sd=(0.6, 0.5),
                          x_within_sd=(0.5, 0.4), x_phi=0.0)


def truth(spec: SimulationSpec) -> np.ndarray:
    out = []
    for r in range(2):
        parts = np.array([spec.x_therapist_sd ** 2, spec.x_between_sd[r] ** 2,
                          spec.x_within_sd[r] ** 2])
        out += list(parts / parts.sum())
    return np.array(out)


def one(job: tuple[SimulationSpec, int], seed: np.random.SeedSequence) -> np.ndarray:
    spec, boot = job
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        table = variance_shares(simulate(spec, seed=seed), ["x"], ci="bootstrap",
                                n_boot=boot, seed=int(seed.generate_state(1)[0])).table
    return table[["share", "ci_low", "ci_high", "boundary"]].to_numpy(float)


def markdown(table: pd.DataFrame) -> str:
    """A pipe table (three decimals)."""
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
             for row in table.itertuples(index=False)]
    lines = ["| " + " | ".join(table.columns) + " |",
             "|" + "---|" * len(table.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in cells])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--replicates", type=int, default=200)
    parser.add_argument("--boot", type=int, default=200)
    parser.add_argument("--therapists", type=int, nargs="+", default=[20, 40])
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    sections = []
    for n_ther in args.therapists:
        spec = design(n_ther)
        clock = time.perf_counter()
        outcomes = run_jobs(one, [(spec, args.boot)] * args.replicates, seed=20071,
                            n_jobs=args.n_jobs, desc=f"{n_ther} therapists")
        seconds = time.perf_counter() - clock
        values = np.array([o.value for o in outcomes if o.ok])
        true = truth(spec)
        share, low, high, boundary = (values[:, :, k] for k in range(4))
        table = pd.DataFrame({
            "role": ["patient"] * 3 + ["therapist"] * 3,
            "level": ["therapist", "dyad", "session"] * 2,
            "true share": true, "mean estimate": share.mean(axis=0),
            "MC SE": share.std(axis=0, ddof=1) / np.sqrt(len(values)),
            "coverage": ((low <= true) & (true <= high)).mean(axis=0),
            "at zero": boundary.mean(axis=0)})
        sections.append(
            f"## {n_ther} therapists x 4 dyads x 8 sessions\n\n"
            f"{len(values)} replicates ({args.replicates - len(values)} failed), "
            f"{args.boot} bootstrap refits each, {seconds:.0f} s with {args.n_jobs} "
            f"workers.\n\n{markdown(table)}\n")
    text = ("# Therapist variance shares: bias and bootstrap coverage\n\n"
            "Made by `python benchmarks/therapist_coverage.py "
            f"--replicates {args.replicates} --boot {args.boot}`.\n\n" + "\n".join(sections))
    write_section("therapist-coverage", text)
    print(text)


if __name__ == "__main__":
    main()
