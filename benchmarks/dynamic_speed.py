"""Speed of the dynamic APIM against lavaan's RI-CLPM (issue 22), side by side in one run.

(1) A balanced 10-session design (``--dyads`` dyads, K = 4, complete data): the dynamic
APIM with ``initial="free"`` (``apim.fit``, including the observed-information SEs) and
lavaan's RI-CLPM written as the same model (``tests/reference/lavaan_riclpm.R``, time of
``lavaan()`` inside R, start-up excluded), ``--repeats`` runs each, medians; the logLik
and Phi are compared. (2) The seed design (the bundled alliance data: 240 dyads, sessions
1-30, dropout and missing ratings), the dynamic APIM alone (lavaan's wide RI-CLPM has
120 observed variables there). Writes its section of ``benchmarks/RESULTS.md``.
Usage: ``python benchmarks/dynamic_speed.py [--repeats 3] [--dyads 100]``
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
from results_file import write_section

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "oracles"))

from dynamic_support import lavaan_wide, long_data, run_riclpm, simulate_grid  # noqa: E402

import apim  # noqa: E402


def timed(data, spec, repeats):
    times, result = [], None
    for _ in range(repeats):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            clock = time.perf_counter()
            result = apim.fit(data, spec)
            times.append(time.perf_counter() - clock)
    return float(np.median(times)), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dyads", type=int, default=100)
    args = parser.parse_args()
    y = simulate_grid(args.dyads, 10, seed=2210)
    ours, result = timed(long_data(y), apim.DynamicAPIMSpec("y", ("x",)), args.repeats)
    theirs = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            reference = run_riclpm(lavaan_wide(y), Path(tmp))
            theirs.append(float(reference.loc["seconds", "est"]))
    lavaan = float(np.median(theirs))
    phi_ref = np.array([[reference.loc[f"p{i + 1}_{j + 1}", "est"] for j in range(4)]
                        for i in range(4)])
    d_phi = float(np.max(np.abs(result.fit.phi - phi_ref)))
    d_loglik = abs(result.statistics.loglik - float(reference.loc["logLik", "est"]))
    seed_time, seed = timed(apim.load_alliance(),
                            apim.DynamicAPIMSpec("outcome", ("alliance",)), 1)
    text = "\n".join([
        "", "## Dynamic APIM speed (issue 22)", "",
        f"Balanced design: {args.dyads} dyads x 10 sessions x 4 variables, complete, "
        f"initial='free' (= the RI-CLPM), {args.repeats} runs each, medians of wall time:", "",
        "| | seconds | ratio |", "|---|---|---|",
        f"| apim dynamic APIM (`apim.fit`, incl. SEs) | {ours:.2f} | 1 |",
        f"| lavaan {reference.index[-1].split()[-1]} RI-CLPM (`lavaan()` only) | "
        f"{lavaan:.2f} | {lavaan / ours:.2f}x |", "",
        f"logLik difference {d_loglik:.1e}; largest |Phi difference| {d_phi:.1e}.", "",
        f"Seed design (bundled data, {seed.statistics.n_dyads} dyads, sessions 1-30, "
        f"{seed.statistics.n_obs} ratings): {seed_time:.1f} s for one fit (target: under 2 s; "
        f"{'met' if seed_time < 2 else 'not met'}). Balanced design: {lavaan / ours:.1f}x "
        f"lavaan (target: 20x; {'met' if lavaan / ours >= 20 else 'not met'}).", "",
        "The gradient is analytic (the adjoint of the Kalman filter, about two "
        "log-likelihoods per quasi-Newton step whatever the number of parameters); the "
        "observed information of the SEs is numerical: central differences of that "
        "gradient (2p gradients, p = 46-50 parameters), which is now most of a fit.", "",
        f"Load average while measuring: {os.getloadavg()[0]:.1f} (2 cores shared by four "
        "engineers' jobs: a loaded machine).", ""])
    write_section("dynamic-speed", text)
    print(text)


if __name__ == "__main__":
    main()
