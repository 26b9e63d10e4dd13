"""Latent vs observed-mean between effects: bias and 95% CI coverage by simulation.

100 dyads, alliance ICC .3 (between SD sqrt(.3), within SD sqrt(.7) per role), outcome
built from the *latent* person means (``SimulationSpec(outcome_from="latent")``), true
actor/partner effects .15/.10 within and .50/.20 between for both roles. Scenarios:

- 5 sessions, no AR(1); 20 sessions, no AR(1);
- 5 sessions, phi = .4 (predictor and outcome residuals AR(1) with the same phi, so the
  whole session vector is a VAR(1) with phi I: the latent model is fitted with ``ar1=True``,
  the observed-mean APIM with ``residual="un-ar1"``);
- 10 sessions, 10% of single ratings missing at random: the latent model uses every
  rating; the observed-mean APIM drops sessions with a missing rating (listwise).

Each replicate fits the latent APIM (ML, z intervals) and the observed-mean APIM (REML,
Satterthwaite t intervals) to the same data. Writes its section of ``benchmarks/RESULTS.md``.
Usage: ``python benchmarks/latent_simulation.py [--replicates 500] [--n-jobs 2]``
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from results_file import write_section

from apim import APIMSpec, CovarianceSpec
from apim.model.latent import LatentAPIMSpec
from apim.model.registry import fit
from apim.parallel import run_jobs
from apim.simulation.simulate import SimulationSpec, simulate

TRUTH = {"actor.within": 0.15, "partner.within": 0.10, "actor.between": 0.50,
         "partner.between": 0.20}
BASE = dict(n_dyads=100, caseload=0, x_between_sd=(0.3 ** 0.5, 0.3 ** 0.5),
            x_within_sd=(0.7 ** 0.5, 0.7 ** 0.5), x_phi=0.0,
            actor_within=(0.15, 0.15), partner_within=(0.10, 0.10),
            actor_between=(0.50, 0.50), partner_between=(0.20, 0.20),
            outcome_from="latent")
SCENARIOS = {
    "5 sessions, no AR": (dict(n_sessions=5), False),
    "20 sessions, no AR": (dict(n_sessions=20), False),
    "5 sessions, phi .4": (dict(n_sessions=5, x_phi=0.4, residual_phi=0.4), True),
    "10 sessions, 10% missing": (dict(n_sessions=10, missing=0.1), False),
}


def replicate(job: tuple[str, int], seed: np.random.SeedSequence) -> dict[str, Any]:
    name, _ = job
    changes, ar1 = SCENARIOS[name]
    data = simulate(SimulationSpec(**{**BASE, **changes}), seed=seed)
    out: dict[str, Any] = {"scenario": name}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        latent = fit(data, LatentAPIMSpec("y", ("x",), ar1=ar1))
        residual = "un-ar1" if ar1 else "un"
        observed = fit(data, APIMSpec("y", ("x",),
                                      covariance=CovarianceSpec(residual=residual)))
    for label, result in (("latent", latent), ("observed", observed)):
        eff = result.effects
        for term in eff.index:
            parts = term.split(".")
            if len(parts) != 4:
                continue
            key = f"{parts[0]}.{parts[1]}.{parts[2]}"
            row = eff.loc[term]
            out[f"{label}|{key}|est"] = row["estimate"]
            out[f"{label}|{key}|lo"] = row["ci_low"]
            out[f"{label}|{key}|hi"] = row["ci_high"]
        out[f"{label}|seconds"] = result.statistics.fit_seconds
        out[f"{label}|converged"] = result.statistics.converged
    return out


def summarise(rows: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    table = []
    for name, part in frame.groupby("scenario", sort=False):
        for key, truth in TRUTH.items():
            for role in ("patient", "therapist"):
                record: dict[str, Any] = {"scenario": name, "effect": f"{role}.{key}",
                                          "true": truth}
                for label in ("observed", "latent"):
                    est = part[f"{label}|{role}.{key}|est"]
                    lo, hi = part[f"{label}|{role}.{key}|lo"], part[f"{label}|{role}.{key}|hi"]
                    record[f"{label} mean"] = est.mean()
                    record[f"{label} bias %"] = 100 * (est.mean() - truth) / truth
                    record[f"{label} MC SE %"] = 100 * est.std(ddof=1) / np.sqrt(len(est)) \
                        / truth
                    record[f"{label} median bias %"] = 100 * (est.median() - truth) / truth
                    record[f"{label} emp. SD"] = est.std(ddof=1)
                    record[f"{label} coverage"] = ((lo <= truth) & (truth <= hi)).mean()
                table.append(record)
    return pd.DataFrame(table)


def markdown(table: pd.DataFrame, n: dict[str, int], seconds: dict[str, float],
             wall: float) -> str:
    lines = ["## Latent vs observed-mean between effects (simulation)", "",
             __doc__.split("Writes")[0].strip().replace("\n\n", "\n\n"), "",
             "Bias in % of the true value with its Monte Carlo SE; median bias of the "
             "estimates; empirical SD; coverage of the 95% intervals.", "",
             "| scenario | effect | true | observed mean | bias % (MC SE) | median bias % "
             "| emp. SD | coverage | latent mean | bias % (MC SE) | median bias % | emp. SD "
             "| coverage |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples(index=False):
        v = list(r)
        cells = [f"{v[0]}", f"{v[1]}", f"{v[2]:.2f}"]
        for o in (3, 9):
            cells += [f"{v[o]:.3f}", f"{v[o + 1]:+.1f} ({v[o + 2]:.1f})", f"{v[o + 3]:+.1f}",
                      f"{v[o + 4]:.3f}", f"{v[o + 5]:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Replicates (converged both fits) and median fit seconds per scenario: "
              + "; ".join(f"{k}: {n[k]}, observed {seconds[k + '|observed']:.3f} s, latent "
                          f"{seconds[k + '|latent']:.3f} s" for k in n),
              f"Wall time {wall:.0f} s on 2 workers."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--replicates", type=int, default=500)
    parser.add_argument("--n-jobs", type=int, default=2)
    args = parser.parse_args()
    clock = time.perf_counter()
    rows: list[dict[str, Any]] = []
    failed: list[Any] = []
    for index, name in enumerate(SCENARIOS):  # one scenario at a time, results written
        jobs = [(name, i) for i in range(args.replicates)]
        outcomes = run_jobs(replicate, jobs, seed=20261125 + index, n_jobs=args.n_jobs,
                            desc=name, chunk_size=10, progress=False)
        failed += [o for o in outcomes if not o.ok]
        rows += [o.value for o in outcomes if o.ok and o.value["latent|converged"]
                 and o.value["observed|converged"]]
        frame = pd.DataFrame(rows)
        n = frame.groupby("scenario", sort=False).size().to_dict()
        seconds = {f"{k}|{label}": float(part[f"{label}|seconds"].median())
                   for k, part in frame.groupby("scenario", sort=False)
                   for label in ("observed", "latent")}
        text = markdown(summarise(rows), n, seconds, time.perf_counter() - clock)
        if failed:
            text += (f"\n{len(failed)} replicates failed: {failed[0].error_type}: "
                     f"{failed[0].error}\n")
        write_section("latent-simulation", text)
        print(f"{name}: done", flush=True)
    print(text)


if __name__ == "__main__":
    main()
