"""Engine benchmark: apim against nlme, glmmTMB, lme4 and statsmodels, in one run.

(a) the seed design: 241 dyads x 30 sessions x 2 roles, role-specific random intercepts
    (unstructured), role-specific residual variances and same-session correlation;
(b) the same with role-specific random actor and partner slopes (6 x 6 unstructured G);
(c) apim's time and peak memory from 1,000 to 100,000 dyads x 30 sessions.

nlme and glmmTMB fit the same model (glmmTMB: residuals as a dyad:session random effect with
the dispersion fixed at zero); lme4 and statsmodels MixedLM fit their nearest model (the
same random effects, independent equal-variance residuals). Times are medians of several
runs of the fit alone (data already in memory). Writes its section of
``benchmarks/RESULTS.md``.

Usage: ``python benchmarks/engine_vs_r.py [--reps 3] [--sizes 1000,3000,...]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from results_file import write_section  # noqa: E402
from seed_data import seed_design  # noqa: E402

PREDICTORS = ["aw", "pw", "ab", "pb"]


def engine_model(d, slopes: bool):
    from apim.engine import MixedModel, Residual, Unstructured

    p, t = 1 - d["role"].to_numpy(float), d["role"].to_numpy(float)
    X = np.column_stack([p, t] + [p * d[c] for c in PREDICTORS] + [t * d[c] for c in PREDICTORS])
    cols = [p, t] + ([p * d["aw"], t * d["aw"], p * d["pw"], t * d["pw"]] if slopes else [])
    Z = np.column_stack(cols).astype(float)
    return MixedModel(y=d["y"].to_numpy(), X=X, dyad=d["dyad"].to_numpy(),
                      role=d["role"].to_numpy(), session=d["session"].to_numpy(), Z=Z,
                      random=Unstructured(Z.shape[1]), residual=Residual.named("un"))


def time_apim(d, slopes: bool, reps: int) -> dict:
    from apim.engine.fit import fit

    model = engine_model(d, slopes)
    times, result = [], None
    for _ in range(reps):
        start = time.perf_counter()
        result = fit(model, "REML")
        times.append(time.perf_counter() - start)
    return {"engine": "apim", "seconds": float(np.median(times)), "loglik": result.loglik,
            "coef": result.coef.to_numpy(), "se": result.se.to_numpy(),
            "converged": result.converged}


def time_statsmodels(d, slopes: bool, reps: int) -> dict:
    import statsmodels.formula.api as smf

    d = d.assign(P=1 - d["role"], T=d["role"])
    terms = " + ".join([f"P:{c}" for c in PREDICTORS] + [f"T:{c}" for c in PREDICTORS])
    re = "0 + P + T" + (" + P:aw + T:aw + P:pw + T:pw" if slopes else "")
    times, fitted = [], None
    for _ in range(reps):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fitted = smf.mixedlm(f"y ~ 0 + P + T + {terms}", d, groups=d["dyad"],
                                 re_formula=re).fit(reml=True)
        times.append(time.perf_counter() - start)
    return {"engine": "statsmodels MixedLM (nearest)", "seconds": float(np.median(times)),
            "loglik": float(fitted.llf), "coef": fitted.fe_params.to_numpy()[:10],
            "converged": bool(fitted.converged)}


def time_r(path: Path, model: str, reps: int, engines: list[str]) -> list[dict]:
    if shutil.which("Rscript") is None:
        return []
    out = subprocess.run(["Rscript", str(HERE / "fit_r.R"), str(path), model, str(reps),
                          *engines], capture_output=True, text=True, check=True)
    rows = []
    for line in out.stdout.strip().splitlines():
        engine, _, seconds, loglik, coef = line.split(",")
        label = {"nlme": "nlme::lme", "glmmTMB": "glmmTMB",
                 "lme4": "lme4::lmer (nearest)"}[engine]
        rows.append({"engine": label, "seconds": float(seconds), "loglik": float(loglik),
                     "coef": np.array([float(c) for c in coef.split(";")])})
    return rows


SCALING = """
import json, resource, sys, time
sys.path.insert(0, {here!r})
from seed_data import seed_design
from engine_vs_r import engine_model
from apim.engine.fit import fit
d = seed_design({n}, 30, seed=2)
model = engine_model(d, False)
start = time.perf_counter()
r = fit(model, "REML")
seconds = time.perf_counter() - start
print(json.dumps({{"seconds": seconds, "rss_mb": resource.getrusage(resource.RUSAGE_SELF)
                  .ru_maxrss / 1024, "converged": r.converged}}))
"""


def scaling(sizes: list[int], reps: int) -> list[dict]:
    rows = []
    for n in sizes:
        runs = []
        for _ in range(reps):
            out = subprocess.run([sys.executable, "-c", SCALING.format(here=str(HERE), n=n)],
                                 capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        rows.append({"dyads": n, "rows": n * 60,
                     "seconds": float(np.median([r["seconds"] for r in runs])),
                     "rss_mb": float(np.median([r["rss_mb"] for r in runs])),
                     "converged": all(r["converged"] for r in runs)})
        print(f"scaling {n}: {rows[-1]}", flush=True)
    return rows


NOTES = """Notes
- Same model: apim, nlme and glmmTMB (residuals as an unstructured dyad:session random
  effect with the dispersion fixed at zero, REML). glmmTMB may warn of "false convergence"
  with a zero dispersion; its estimates still agree (last column).
- Nearest model: lme4 and statsmodels cannot fit role-specific residual variances or the
  partners' residual correlation; they fit the same random effects with independent,
  equal-variance residuals, hence their different logLik.
- Peak RSS is that of the whole process, including the generated data frame."""


def machine() -> str:
    cpu = "unknown CPU"
    if Path("/proc/cpuinfo").exists():
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    r = subprocess.run(["Rscript", "-e", "cat(R.version.string, 'nlme', format(packageVersion("
                        "'nlme')), 'glmmTMB', format(packageVersion('glmmTMB')), 'lme4', "
                        "format(packageVersion('lme4')))"], capture_output=True, text=True
                       ).stdout if shutil.which("Rscript") else "R not installed"
    import scipy
    import statsmodels

    return (f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB; Python {platform.python_version()}, "
            f"numpy {np.__version__}, scipy {scipy.__version__}, statsmodels "
            f"{statsmodels.__version__}; {r}")


def table(rows: list[dict]) -> list[str]:
    apim_row = next(r for r in rows if r["engine"] == "apim")
    lines = ["| engine | median seconds | time / apim | logLik | max abs diff in fixed "
             "effects vs apim, in apim SEs |", "|---|---|---|---|---|"]
    for r in rows:
        diff = np.max(np.abs(r["coef"] - apim_row["coef"]) / apim_row["se"])
        ratio = r["seconds"] / apim_row["seconds"]
        lines.append(f"| {r['engine']} | {r['seconds']:.3f} | {ratio:.1f} "
                     f"| {r['loglik']:.4f} | {diff:.2e} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sizes", default="1000,3000,10000,30000,100000")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",") if s]
    sections = [f"# Engine benchmark\n\nMachine: {machine()}\n",
                f"Run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by "
                "`python benchmarks/engine_vs_r.py`; medians of "
                f"{args.reps} runs (apim: {max(5, args.reps)}).\n"]
    with tempfile.TemporaryDirectory() as tmp:
        for label, slopes, key in (("(a) seed design: random intercepts", False, "a"),
                                   ("(b) plus random actor and partner slopes", True, "b")):
            d = seed_design(241, 30, seed=1, slopes=slopes)
            path = Path(tmp) / f"{key}.csv"
            d.to_csv(path, index=False)
            rows = [time_apim(d, slopes, max(5, args.reps))]
            rows += time_r(path, key, args.reps, ["nlme", "glmmTMB", "lme4"])
            rows.append(time_statsmodels(d, slopes, args.reps))
            print(label, [(r["engine"], round(r["seconds"], 3)) for r in rows], flush=True)
            sections += [f"## {label}\n", "241 dyads x 30 sessions x 2 roles (14,460 rows), "
                         "REML.\n", *table(rows), ""]
    rows = scaling(sizes, args.reps)
    sections += ["## (c) scaling of apim, 30 sessions per dyad, model (a)\n",
                 "| dyads | rows | median seconds | seconds per 1,000 dyads | peak RSS (MB) |",
                 "|---|---|---|---|---|"]
    sections += [f"| {r['dyads']:,} | {r['rows']:,} | {r['seconds']:.2f} | "
                 f"{1000 * r['seconds'] / r['dyads']:.3f} | {r['rss_mb']:.0f} |" for r in rows]
    sections += ["", NOTES]
    text = "\n".join(sections)
    write_section("engine", text)
    print(text)


if __name__ == "__main__":
    main()
