"""Latent between effects in the hardest scenario of issue 11 as the number of dyads grows.

5 sessions, AR(1) phi = .4 in predictor and outcome residuals, alliance ICC .3, outcome
built from the latent person means (the "5 sessions, phi .4" scenario of
``latent_simulation.py``), fitted by the latent APIM (ML, ``ar1=True``, z intervals) at
100, 200 and 400 dyads. A consistent estimator's finite-sample bias shrinks about as
1/n; the Monte Carlo SE of the bias says how far each row can be trusted. Also: the mean
of the reported SEs against the empirical SD, and how many fits ended at a boundary.
Writes its section of ``benchmarks/RESULTS.md``.
Usage: ``python benchmarks/latent_small_sample.py [--replicates 2000,1000,500] [--n-jobs 2]``
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from latent_simulation import BASE, SCENARIOS, TRUTH
from results_file import write_section

from apim.model.latent import LatentAPIMSpec
from apim.model.registry import fit
from apim.parallel import run_jobs
from apim.simulation.simulate import SimulationSpec, simulate

SCENARIO = "5 sessions, phi .4"
SIZES = (100, 200, 400)


def replicate(n_dyads: int, seed: np.random.SeedSequence) -> dict[str, Any]:
    changes, ar1 = SCENARIOS[SCENARIO]
    data = simulate(SimulationSpec(**{**BASE, **changes, "n_dyads": n_dyads}), seed=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = fit(data, LatentAPIMSpec("y", ("x",), ar1=ar1))
    eff = result.effects
    out: dict[str, Any] = {"converged": result.statistics.converged,
                           "boundary": bool(result.boundary)}
    for term in eff.index:
        parts = term.split(".")
        if len(parts) == 4:
            key = ".".join(parts[:3])
            out[f"{key}|est"], out[f"{key}|se"] = eff.loc[term, ["estimate", "se"]]
            out[f"{key}|lo"], out[f"{key}|hi"] = eff.loc[term, ["ci_low", "ci_high"]]
    return out


def summarise(n_dyads: int, frame: pd.DataFrame) -> list[str]:
    lines = []
    for key, truth in TRUTH.items():
        if "between" not in key:
            continue
        for role in ("patient", "therapist"):
            name = f"{role}.{key}"
            est, se = frame[f"{name}|est"], frame[f"{name}|se"]
            covered = (frame[f"{name}|lo"] <= truth) & (truth <= frame[f"{name}|hi"])
            bias = 100 * (est.mean() - truth) / truth
            mcse = 100 * est.std(ddof=1) / np.sqrt(len(est)) / truth
            lines.append(f"| {n_dyads} | {len(frame)} | {name} | {truth:.2f} | {bias:+.1f} "
                         f"({mcse:.1f}) | {100 * (est.median() - truth) / truth:+.1f} | "
                         f"{est.std(ddof=1):.3f} | {se.mean():.3f} | {se.median():.3f} | "
                         f"{covered.mean():.3f} | {frame['boundary'].mean():.3f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicates", default="2000,1000,500",
                        help="replicates at 100, 200 and 400 dyads")
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    counts = [int(r) for r in args.replicates.split(",")]
    clock = time.perf_counter()
    rows = ["| dyads | replicates | effect | true | bias % (MC SE) | median bias % "
            "| emp. SD | mean SE | median SE | coverage | boundary fits |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    for index, (n_dyads, reps) in enumerate(zip(SIZES, counts)):
        outcomes = run_jobs(replicate, [n_dyads] * reps, seed=20261126 + index,
                            n_jobs=args.n_jobs, desc=f"{n_dyads} dyads", chunk_size=10)
        frame = pd.DataFrame([o.value for o in outcomes if o.ok and o.value["converged"]])
        failed = sum(not o.ok for o in outcomes)
        rows += summarise(n_dyads, frame)
        text = "\n".join([
            "## Latent between effects with few sessions: bias as the sample grows", "",
            __doc__.split("Writes")[0].strip(), "", *rows, "",
            f"Failed or non-converged fits are left out ({failed} failed at {n_dyads} "
            f"dyads); wall time {time.perf_counter() - clock:.0f} s."])
        write_section("latent-small-sample", text)
        print(text, flush=True)


if __name__ == "__main__":
    main()
