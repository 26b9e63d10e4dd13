"""The therapist level of the latent APIM: speed on the seed-size design and a Monte Carlo
of the between effects with and without the therapist level.

Speed: 241 dyads in 60 therapists (59 x 4 + 1 x 5) x 30 sessions, the four variables of
one predictor and one outcome (:mod:`tests.latent_therapist_support`), ML; the two-level
and the three-level fit (``apim.fit`` with :class:`LatentAPIMSpec`, SEs included)
interleaved ``--repeats`` times, medians, likelihood evaluations (``iterations``), for
complete data, 10% single ratings missing, and AR(1) (phi = .3, complete data).

Monte Carlo: ``--replicates`` data sets of ``--therapists`` therapists x 4 dyads x 8
sessions, 10% ratings missing, true dyad-level (between) actor .5 / partner .2 and
therapist-level actor .3 / partner .2; for the between effects of both models: mean
estimate, bias, empirical SD, mean SE, 95% coverage.

Usage: ``python benchmarks/latent_therapist.py [--repeats 5] [--replicates 100]``
(prints markdown; ``--write`` also replaces its section of ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "oracles"))
sys.path.insert(0, str(ROOT))

from latent_therapist_support import simulate_three_level, to_session_data  # noqa: E402

from apim.model.latent import LatentAPIMSpec  # noqa: E402
from apim.model.registry import fit  # noqa: E402

TWO = LatentAPIMSpec("y", ("x",))
THREE = LatentAPIMSpec("y", ("x",), therapist_level=True)
BETWEEN = {"patient.actor.between.x": 0.5, "patient.partner.between.x": 0.2,
           "therapist.actor.between.x": 0.5, "therapist.partner.between.x": 0.2}


def _quiet_fit(data, spec):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit(data, spec)


def speed(repeats: int) -> list[str]:
    lines = ["| data | model | wall s (median) | ratio | fit.iterations | logLik |",
             "|---|---|---|---|---|---|"]
    for label, kwargs in (("complete", {}), ("10% missing", {"missing": 0.1}),
                          ("AR(1) .3, complete", {"phi": 0.3})):
        y, cl, oc, th = simulate_three_level(60, [4] * 59 + [5], 30, seed=1, **kwargs)
        data = to_session_data(y, cl, oc, th)
        ar1 = "phi" in kwargs
        specs = {"two-level": TWO.replace(ar1=ar1), "three-level": THREE.replace(ar1=ar1)}
        times: dict[str, list[float]] = {k: [] for k in specs}
        results = {}
        for _ in range(repeats):
            for name, spec in specs.items():
                clock = time.perf_counter()
                results[name] = _quiet_fit(data, spec)
                times[name].append(time.perf_counter() - clock)
        base = float(np.median(times["two-level"]))
        for name in specs:
            t = float(np.median(times[name]))
            f = results[name].fits["all"]
            lines.append(f"| {label} | {name} | {t:.3f} | {t / base:.1f}x | {f.iterations} | "
                         f"{f.loglik:.2f} |")
    return lines


def monte_carlo(replicates: int, therapists: int) -> list[str]:
    est = {k: {n: [] for n in BETWEEN} for k in ("two-level", "three-level")}
    se = {k: {n: [] for n in BETWEEN} for k in ("two-level", "three-level")}
    failed = 0
    clock = time.perf_counter()
    for r in range(replicates):
        y, cl, oc, th = simulate_three_level(therapists, 4, 8, seed=1000 + r, missing=0.1)
        data = to_session_data(y, cl, oc, th)
        for name, spec in (("two-level", TWO), ("three-level", THREE)):
            result = _quiet_fit(data, spec)
            if not result.statistics.converged:
                failed += 1
            eff = result.effects
            for n in BETWEEN:
                est[name][n].append(eff.loc[n, "estimate"])
                se[name][n].append(eff.loc[n, "se"])
    seconds = time.perf_counter() - clock
    lines = [f"{replicates} replicates of {therapists} therapists x 4 dyads x 8 sessions, "
             f"10% single ratings missing ({seconds:.0f} s, {failed} fits not converged):", "",
             "| effect | truth | model | mean | bias | bias % | emp. SD | mean SE | coverage |",
             "|---|---|---|---|---|---|---|---|---|"]
    for n, truth in BETWEEN.items():
        for name in ("three-level", "two-level"):
            e, s = np.array(est[name][n]), np.array(se[name][n])
            cover = np.mean(np.abs(e - truth) < 1.959964 * s)
            lines.append(f"| {n} | {truth} | {name} | {e.mean():.3f} | {e.mean() - truth:+.3f} "
                         f"| {100 * (e.mean() - truth) / truth:+.0f}% | {e.std(ddof=1):.3f} | "
                         f"{s.mean():.3f} | {cover:.2f} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--therapists", type=int, default=40)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    text = "\n".join(
        ["", "## Latent APIM with a therapist level", "",
         "Seed-size design, 241 dyads in 60 therapists x 30 sessions, ML, "
         f"{args.repeats} interleaved runs:", "", *speed(args.repeats), "",
         *monte_carlo(args.replicates, args.therapists), "",
         f"Load average while measuring: {os.getloadavg()[0]:.1f} (2 cores, shared).", ""])
    if args.write:
        from results_file import write_section

        write_section("latent-therapist", text)
    print(text)


if __name__ == "__main__":
    main()
