"""Speed of the latent APIM on the seed design against lavaan's two-level SEM.

Seed design (241 dyads x 30 sessions, :class:`apim.simulation.simulate.SimulationSpec`
defaults, complete data, outcome from the latent means, no AR(1)): the latent APIM (ML) is
fitted ``--repeats`` times in this process (median wall time of ``apim.fit``) and lavaan
(``tests/reference/lavaan_latent.R``, ML, observed information) ``--repeats`` times
(median of the time ``sem()`` takes inside R, R start-up excluded). Estimates are
compared. Writes its section of ``benchmarks/RESULTS.md``.
Usage: ``python benchmarks/latent_speed.py [--repeats 5]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from results_file import write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "oracles"))

from latent_support import lavaan_effects, lavaan_stat, long_from_wide, run_lavaan, wide  # noqa: E402

from apim.model.latent import LatentAPIMSpec  # noqa: E402
from apim.model.registry import fit  # noqa: E402
from apim.simulation.simulate import SimulationSpec, simulate  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    table = wide(simulate(SimulationSpec(caseload=0, outcome_from="latent"), seed=1))
    data = long_from_wide(table)
    spec = LatentAPIMSpec("y", ("x",))
    ours, ours_cpu = [], []
    for _ in range(args.repeats):
        clock, cpu = time.perf_counter(), time.process_time()
        result = fit(data, spec)
        ours.append(time.perf_counter() - clock)
        ours_cpu.append(time.process_time() - cpu)
    theirs, theirs_cpu = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            reference = run_lavaan(table, Path(tmp) / "out.csv")
            theirs.append(lavaan_stat(reference, "seconds"))
            theirs_cpu.append(lavaan_stat(reference, "cpu_seconds"))
    ref = lavaan_effects(reference)
    eff = result.effects
    rel_est = max(abs(eff.loc[f"{k}.x", "estimate"] / v - 1) for k, v in ref["est"].items())
    rel_se = max(abs(eff.loc[f"{k}.x", "se"] / v - 1) for k, v in ref["se"].items())
    d_loglik = abs(result.loglik - lavaan_stat(reference, "logLik"))
    a, b = float(np.median(ours)), float(np.median(theirs))
    ac, bc = float(np.median(ours_cpu)), float(np.median(theirs_cpu))
    text = "\n".join([
        "", "## Latent APIM speed (seed design, complete data)", "",
        f"{data.n_dyads} dyads x 30 sessions x 4 variables ({len(table)} sessions), ML, "
        f"{args.repeats} runs each, medians:", "",
        "| | wall seconds | ratio | CPU seconds | ratio |", "|---|---|---|---|---|",
        f"| apim latent APIM (`apim.fit`, incl. SEs) | {a:.3f} | 1 | {ac:.3f} | 1 |",
        f"| lavaan 0.6 two-level SEM (`sem()` only) | {b:.3f} | {b / a:.1f}x | {bc:.3f} | "
        f"{bc / ac:.1f}x |", "",
        f"Load average while measuring: {os.getloadavg()[0]:.1f} (2 cores, shared).",
        f"Largest relative difference of the 8 actor/partner coefficients {rel_est:.1e}, "
        f"of their SEs {rel_se:.1e}; logLik difference {d_loglik:.1e}.", ""])
    write_section("latent-speed", text)
    print(text)


if __name__ == "__main__":
    main()
