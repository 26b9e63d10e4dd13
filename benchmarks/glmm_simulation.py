"""Laplace against adaptive quadrature with few sessions per dyad (issue 21's simulation).

Binary APIM, 200 dyads x 5 sessions x 2 roles (logit): role intercepts, actor and partner
effects at the within and between level per role, the dyad's two random intercepts with
SDs 1.5 and 1.2 and correlation 0.5. Each replicate is fitted by Laplace (``nagq = 1``)
and by quadrature with 7 points per dimension; reported per parameter: bias, relative
bias, RMSE and 95% CI coverage of the fixed effects, and the variance components' bias.
Writes its section of ``benchmarks/RESULTS.md``.

Usage: ``python benchmarks/glmm_simulation.py [--reps 200] [--seed 1]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

from results_file import write_section  # noqa: E402

from apim.engine.glmm import GLMMModel, fit_glmm  # noqa: E402

NAMES = ["patient", "therapist", "patient_aw", "therapist_aw", "patient_pw", "therapist_pw",
         "patient_ab", "therapist_ab", "patient_pb", "therapist_pb"]
BETA = np.array([-0.5, -0.3, 0.5, 0.4, 0.3, 0.2, 0.6, 0.5, 0.3, 0.2])
SD, COR = np.array([1.5, 1.2]), 0.5


def replicate(rng: np.random.Generator, n: int = 200, sessions: int = 5) -> GLMMModel:
    dyad = np.repeat(np.arange(n), 2 * sessions)
    role = np.tile([0, 1], n * sessions)
    within = rng.normal(size=(n * sessions, 2))
    between = rng.normal(scale=0.7, size=(n, 2))
    parts = {"aw": within.ravel(), "pw": within[:, ::-1].ravel(),
             "ab": between[dyad, role], "pb": between[dyad, 1 - role]}
    columns = {"patient": 1.0 - role, "therapist": role.astype(float)}
    for key, values in parts.items():
        columns[f"patient_{key}"] = values * (1 - role)
        columns[f"therapist_{key}"] = values * role
    X = np.column_stack([columns[c] for c in NAMES])
    G = np.outer(SD, SD) * np.array([[1.0, COR], [COR, 1.0]])
    u = rng.normal(size=(n, 2)) @ np.linalg.cholesky(G).T
    y = (rng.logistic(size=len(dyad)) < X @ BETA + u[dyad, role]).astype(int)
    return GLMMModel(category=y, X=X, dyad=dyad, role=role)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    truth = np.concatenate([BETA, SD, [COR]])
    records = []
    started = time.time()
    load = os.getloadavg()[0]
    for r in range(args.reps):
        model = replicate(rng)
        for nagq in (1, 7):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                fit = fit_glmm(replace(model, nagq=nagq))
            se = np.sqrt(np.diag(fit.cov_natural))
            records.append({"rep": r, "nagq": nagq, "converged": fit.converged,
                            **{f"est{j}": v for j, v in enumerate(fit.natural)},
                            **{f"se{j}": v for j, v in enumerate(se)}})
        load = max(load, os.getloadavg()[0])
    frame = pd.DataFrame(records)
    names = NAMES + ["sd(patient)", "sd(therapist)", "cor"]
    rows = []
    for nagq, part in frame.groupby("nagq"):
        for j, name in enumerate(names):
            est, se = part[f"est{j}"].to_numpy(), part[f"se{j}"].to_numpy()
            bias = est.mean() - truth[j]
            cover = np.mean(np.abs(est - truth[j]) <= 1.959964 * se) if j < len(BETA) \
                else np.nan
            rows.append({"method": "Laplace" if nagq == 1 else f"AGQ {nagq}",
                         "parameter": name, "truth": truth[j], "bias": bias,
                         "relative bias": bias / truth[j],
                         "MCSE": est.std(ddof=1) / np.sqrt(len(est)),
                         "RMSE": np.sqrt(np.mean((est - truth[j]) ** 2)), "coverage": cover})
    table = pd.DataFrame(rows)
    minutes = (time.time() - started) / 60
    failed = int((~frame["converged"]).sum())
    lines = ["# Generalized APIM: Laplace against quadrature with 5 sessions per dyad", "",
             f"`python benchmarks/glmm_simulation.py --reps {args.reps} --seed {args.seed}` "
             f"on {time.strftime('%Y-%m-%d', time.gmtime())}: {args.reps} replicates of 200 "
             "dyads x 5 sessions x 2 roles (binary, logit; random-intercept SDs 1.5 and 1.2, "
             f"correlation 0.5), each fitted both ways; {minutes:.1f} minutes on a shared "
             f"machine (load up to {load:.1f}); {failed} fits not converged. Coverage of "
             f"the 95% Wald CIs of the fixed effects has a Monte Carlo SE of about "
             f"{np.sqrt(0.95 * 0.05 / args.reps):.3f}.", "",
             "| method | parameter | truth | bias | relative bias | MCSE | RMSE | coverage |",
             "|---|---|---|---|---|---|---|---|"]
    for row in table.itertuples(index=False):
        cover = "" if np.isnan(row.coverage) else f"{row.coverage:.3f}"
        lines.append(f"| {row.method} | {row.parameter} | {row.truth:.2f} | {row.bias:+.4f} | "
                     f"{row[4]:+.1%} | {row.MCSE:.4f} | {row.RMSE:.4f} | {cover} |")
    text = "\n".join(lines)
    print(text)
    write_section("glmm-simulation", text)


if __name__ == "__main__":
    main()
