"""Parameter recovery and power-analysis timing on the seed design.

1. Recovery: ``--replicates`` (default 1,000) data sets of the seed design (241 dyads x 30
   sessions, :class:`apim.simulation.simulate.SimulationSpec` defaults), each fitted by REML and ML,
   without AR(1) (unstructured residuals, rho 0.3) and with AR(1) (within-person AR(1),
   phi 0.3, fitted with ``residual="ar1"``): bias, RMSE and 95% CI coverage of every fixed
   effect (t intervals, Satterthwaite df) and variance parameter (Wald intervals on the
   natural scale).
2. Power timing: a 1,000-replicate power analysis of the seed design with 1 and 2 workers.

Writes its sections of ``benchmarks/RESULTS.md``. Usage:
``python benchmarks/simulation_study.py [--replicates 1000] [--n-jobs 2]``
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from results_file import write_section  # noqa: E402

from apim import APIMSpec, CovarianceSpec  # noqa: E402
from apim.simulation.power import power  # noqa: E402
from apim.simulation.simulate import SimulationSpec, simulate, true_effects  # noqa: E402

SCENARIOS = {
    "no AR(1)": (SimulationSpec(), "un"),
    "AR(1)": (SimulationSpec(residual_cor=0.0, residual_phi=0.3), "ar1"),
}


def true_variance(truth: SimulationSpec, residual: str) -> dict[str, float]:
    out = {"dyad sd(patient)": truth.intercept_sd[0], "dyad sd(therapist)": truth.intercept_sd[1],
           "dyad cor(patient,therapist)": truth.intercept_cor,
           "residual sd(patient)": truth.residual_sd[0],
           "residual sd(therapist)": truth.residual_sd[1]}
    if residual == "un":
        out["residual cor(patient,therapist)"] = truth.residual_cor
    else:
        out["residual AR(1) phi"] = truth.residual_phi
    return out


def replicate(args: tuple[str, str, np.random.SeedSequence]) -> list[dict]:
    from apim.model.registry import fit

    scenario, method, seed = args
    truth, residual = SCENARIOS[scenario]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = APIMSpec("y", ("x",), covariance=CovarianceSpec(residual=residual),
                        method=method)
        result = fit(simulate(truth, seed), spec)
    rows = []
    expected = true_effects(truth)
    for name, row in result.effects.iterrows():
        rows.append({"scenario": scenario, "method": method, "kind": "fixed",
                     "parameter": name, "truth": expected[name], "estimate": row["estimate"],
                     "covered": row["ci_low"] <= expected[name] <= row["ci_high"],
                     "converged": result.engine.converged})
    for name, value in true_variance(truth, residual).items():
        est, se = result.variance.loc[name, ["estimate", "se"]]
        rows.append({"scenario": scenario, "method": method, "kind": "variance",
                     "parameter": name, "truth": value, "estimate": est,
                     "covered": abs(est - value) <= 1.959964 * se,
                     "converged": result.engine.converged})
    return rows


def recovery(replicates: int, n_jobs: int) -> pd.DataFrame:
    from joblib import Parallel, delayed
    from tqdm.auto import tqdm

    jobs = []
    for k, (scenario, method) in enumerate([(s, m) for s in SCENARIOS for m in ("REML", "ML")]):
        seeds = np.random.SeedSequence([2016, k]).spawn(replicates)
        jobs += [(scenario, method, seed) for seed in seeds]
    rows = []
    runner = Parallel(n_jobs=n_jobs, return_as="generator", batch_size=8)
    for part in tqdm(runner(delayed(replicate)(j) for j in jobs), total=len(jobs),
                     desc="recovery"):
        rows += part
    return pd.DataFrame(rows)


def summarise(raw: pd.DataFrame) -> pd.DataFrame:
    def stats(group: pd.DataFrame) -> pd.Series:
        err = group["estimate"] - group["truth"]
        return pd.Series({"truth": group["truth"].iloc[0], "bias": err.mean(),
                          "mcse_bias": err.std() / np.sqrt(len(err)),
                          "rmse": np.sqrt((err ** 2).mean()),
                          "coverage": group["covered"].mean(), "n": len(group)})

    return raw.groupby(["scenario", "method", "kind", "parameter"], sort=False).apply(
        stats, include_groups=False).reset_index()


def power_timing(replicates: int) -> list[str]:
    lines = ["| workers | seconds | power |", "|---|---|---|"]
    for workers in (1, 2):
        start = time.perf_counter()
        result = power(SimulationSpec(partner_within=(0.05, 0.05)), APIMSpec("y", ("x",)),
                       "patient.partner.within", replicates=replicates, seed=1,
                       n_jobs=workers, progress=False)
        seconds = time.perf_counter() - start
        lines.append(f"| {workers} | {seconds:.1f} | {result.table['power'].iloc[0]:.3f} |")
        print(lines[-1], flush=True)
    return lines


def replicate_breakdown(n: int = 30) -> list[str]:
    """Median milliseconds per phase of one power replicate (serial, this process)."""
    from apim.engine.mixed.estimate import estimate_mixed as fit_engine
    from apim.inference.wald import wald_test
    from apim.model.design import build_design
    from apim.model.result import APIMResult

    truth, spec = SimulationSpec(partner_within=(0.05, 0.05)), APIMSpec("y", ("x",))
    times: dict[str, list[float]] = {"simulate": [], "design": [], "fit": [], "test": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for seed in np.random.SeedSequence(1).spawn(n):
            clock = time.perf_counter()
            data = simulate(truth, seed)
            times["simulate"].append(time.perf_counter() - clock)
            clock = time.perf_counter()
            design = build_design(data, spec)
            times["design"].append(time.perf_counter() - clock)
            clock = time.perf_counter()
            engine = fit_engine(design.model, spec.method)
            times["fit"].append(time.perf_counter() - clock)
            clock = time.perf_counter()
            wald_test(APIMResult(design=design, engine=engine, df="satterthwaite"),
                      "patient.partner.within = 0")
            times["test"].append(time.perf_counter() - clock)
    cells = " | ".join(f"{1000 * np.median(v):.0f}" for v in times.values())
    total = 1000 * np.median(np.sum([v for v in times.values()], axis=0))
    return ["| phase | " + " | ".join(times) + " | total |",
            "|---" * (len(times) + 2) + "|", f"| ms (median of {n}) | {cells} | {total:.0f} |"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=1000)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--skip-recovery", action="store_true")
    args = parser.parse_args()
    if not args.skip_recovery:
        start = time.perf_counter()
        raw = recovery(args.replicates, args.n_jobs)
        minutes = (time.perf_counter() - start) / 60
        table = summarise(raw)
        fixed = table[table["kind"] == "fixed"]
        sd_y = 0.6  # residual SD of the reference role: the scale for "bias in SD units"
        lines = [
            "# Parameter recovery (seed design)\n",
            f"{args.replicates} replicates per scenario and method, 241 dyads x 30 sessions; "
            f"{minutes:.1f} minutes with {args.n_jobs} workers; "
            f"{int((~raw['converged']).sum())} non-converged fits.\n",
            f"Fixed effects: coverage {fixed['coverage'].min():.3f}-"
            f"{fixed['coverage'].max():.3f}; largest |bias| {fixed['bias'].abs().max():.4f} "
            f"({fixed['bias'].abs().max() / sd_y:.4f} residual SDs).\n",
            "| scenario | method | kind | parameter | truth | bias | MCSE | RMSE | coverage |",
            "|---|---|---|---|---|---|---|---|---|"]
        for _, r in table.iterrows():
            lines.append(f"| {r['scenario']} | {r['method']} | {r['kind']} | {r['parameter']} "
                         f"| {r['truth']:.3f} | {r['bias']:+.4f} | {r['mcse_bias']:.4f} "
                         f"| {r['rmse']:.4f} | {r['coverage']:.3f} |")
        write_section("recovery", "\n".join(lines))
        print("\n".join(lines[:3]))
    lines = ["# Power analysis time (seed design, 1,000 replicates)\n",
             "`power(SimulationSpec(partner_within=(0.05, 0.05)), APIMSpec('y', ('x',)), "
             "'patient.partner.within', replicates=1000)`: simulate, fit and test each "
             "replicate.\n"] + power_timing(1000) + [
             "\nOne replicate, serially (median of 30):\n"] + replicate_breakdown()
    write_section("power", "\n".join(lines))


if __name__ == "__main__":
    main()
