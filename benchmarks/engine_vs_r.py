"""Speed benchmark: apim against nlme, glmmTMB, lme4 and statsmodels, in one run.

(a) the seed design: 241 dyads x 30 sessions x 2 roles, role-specific random intercepts
    (unstructured), role-specific residual variances and same-session correlation;
(b) the same with role-specific random actor and partner slopes (6 x 6 unstructured G);
(c) (a) with dyads nested in therapists (4 dyads each) and therapist intercepts;
(d) (a) with AR(1) residuals within person instead of the same-session correlation;
(e) Bolger & Laurenceau's dyadic diary data (100 couples x 21 days), model (a);
(f) ``UN x AR(1)`` residuals (apim only; nlme cannot fit them) with 0, 3 and 10% of single
    ratings missing;
(g) the whole command: ``apim fit`` on a seed-size CSV against an Rscript doing the same
    job (read, within/between split, partner columns, nlme, print); ``import apim``;
(h) apim's time and peak memory from 1,000 to 100,000 dyads x 30 sessions.

nlme and glmmTMB fit the same model (glmmTMB: residuals as a dyad:session random effect with
the dispersion fixed at zero); lme4 and statsmodels MixedLM fit their nearest model (the
same random effects, independent equal-variance residuals). Times are medians of several
runs of the fit alone (data already in memory). Writes its section of
``benchmarks/RESULTS.md``.

Usage: ``python benchmarks/engine_vs_r.py [--reps 3] [--sizes 1000,10000,...]``
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
sys.path[:0] = [str(HERE), str(HERE.parent)]  # this checkout's apim, also in subprocesses
os.environ["PYTHONPATH"] = os.pathsep.join(
    [str(HERE.parent), *filter(None, [os.environ.get("PYTHONPATH")])])

from results_file import write_section  # noqa: E402
from seed_data import seed_design  # noqa: E402

PREDICTORS = ["aw", "pw", "ab", "pb"]


def engine_model(d, slopes: bool, residual: str = "un", therapist: bool = False):
    from apim.engine import Diagonal, MixedModel, Residual, Unstructured

    p, t = 1 - d["role"].to_numpy(float), d["role"].to_numpy(float)
    X = np.column_stack([p, t] + [p * d[c] for c in PREDICTORS] + [t * d[c] for c in PREDICTORS])
    cols = [p, t] + ([p * d["aw"], t * d["aw"], p * d["pw"], t * d["pw"]] if slopes else [])
    Z = np.column_stack(cols).astype(float)
    return MixedModel(y=d["y"].to_numpy(), X=X, dyad=d["dyad"].to_numpy(),
                      role=d["role"].to_numpy(), session=d["session"].to_numpy(), Z=Z,
                      random=Unstructured(Z.shape[1]), residual=Residual.named(residual),
                      therapist=d["therapist"].to_numpy() if therapist else None,
                      therapist_random=Diagonal(1) if therapist else None)


def bolger_laurenceau():
    """The couples' diary data stacked to one row per person and day (female = role 0),
    with the book's within/between split of work stressors as actor/partner columns."""
    import pandas as pd

    root = Path(os.environ.get("APIM_SHARED_DATA", "/work/shared/data"))
    wide = pd.read_csv(root / "bolger_laurenceau_ch8_dyads" / "BLdyads_long.csv")
    parts = []
    for role, me, other in ((0, "f", "m"), (1, "m", "f")):
        parts.append(pd.DataFrame({
            "dyad": wide["coupleid"], "session": wide["time"] + 1, "role": role,
            "aw": wide[f"{me}_wrkstrsc_w"], "pw": wide[f"{other}_wrkstrsc_w"],
            "ab": wide[f"{me}_wrkstrsc_b"], "pb": wide[f"{other}_wrkstrsc_b"],
            "y": wide[f"{me}_reldis"]}))
    return pd.concat(parts).sort_values(["dyad", "session", "role"]).reset_index(drop=True)


def time_apim(d, slopes: bool, reps: int, residual: str = "un",
              therapist: bool = False) -> dict:
    from apim.engine.mixed.estimate import estimate_mixed as fit

    model = engine_model(d, slopes, residual, therapist)
    times, result = [], None
    for _ in range(reps):
        start = time.perf_counter()
        result = fit(model, "REML")
        times.append(time.perf_counter() - start)
    return {"engine": "apim", "seconds": float(np.median(times)), "loglik": result.loglik,
            "coef": result.coef.to_numpy(), "se": result.se.to_numpy(),
            "converged": result.converged, "evaluations": result.n_evaluations}


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
from apim.engine.mixed.estimate import estimate_mixed as fit
d = seed_design({n}, 30, seed=2)
model = engine_model(d, False)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
start, cpu = time.perf_counter(), time.process_time()
r = fit(model, "REML")
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({{"seconds": seconds, "cpu": cpu, "rss_mb": peak, "before_mb": before,
                  "converged": r.converged, "evaluations": r.n_evaluations}}))
"""


def scaling(sizes: list[int], reps: int) -> list[dict]:
    rows = []
    for n in sizes:
        runs = []
        for _ in range(reps if n < 100_000 else 1):  # the largest once: minutes, GBs
            out = subprocess.run([sys.executable, "-c", SCALING.format(here=str(HERE), n=n)],
                                 capture_output=True, text=True, check=True)
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        rows.append({"dyads": n, "rows": n * 60, "runs": len(runs),
                     **{k: float(np.median([r[k] for r in runs]))
                        for k in ("seconds", "cpu", "rss_mb", "before_mb", "evaluations")},
                     "converged": all(r["converged"] for r in runs)})
        print(f"scaling {n}: {rows[-1]}", flush=True)
    return rows


def un_ar1_missing(reps: int) -> list[dict]:
    """UN x AR(1) on the seed design (phi = 0.3) with single ratings missing at random."""
    from dataclasses import replace

    from apim.engine.mixed.estimate import estimate_mixed as fit
    from apim.engine.mixed.likelihood import evaluate
    from apim.engine.mixed.model import Prepared
    from apim.engine.threads import one_blas_thread
    from tests.oracles.dense_residual import cross_products  # the dense oracle (tests/oracles)

    full = seed_design(241, 30, seed=3, phi=0.3)
    rows = []
    for share in (0.0, 0.03, 0.10):
        keep = np.random.default_rng(4).random(len(full)) >= share
        model = engine_model(full[keep], False, "un-ar1")
        times, result = [], fit(model, "REML")  # warm-up (imports, first use of memory)
        for _ in range(reps):
            start = time.perf_counter()
            result = fit(model, "REML")
            times.append(time.perf_counter() - start)
        prep = Prepared.of(model)  # the model in its own units: result.theta applies
        dense = replace(prep, products=cross_products(model.residual, prep.layout, prep.raw,
                                                      model.q, dense=True))

        @one_blas_thread
        def per_evaluation(prepared, adjoint=False, theta=result.theta, model=model, n=10):
            evaluate(model, prepared, theta, True, adjoint=adjoint)  # builds the caches
            start = time.perf_counter()
            for _ in range(n):
                evaluate(model, prepared, theta, True, adjoint=adjoint)
            return (time.perf_counter() - start) / n

        rows.append({"missing": share, "rows": int(keep.sum()),
                     "seconds": float(np.median(times)), "loglik": result.loglik,
                     "evaluations": result.n_evaluations, "converged": result.converged,
                     "evaluation_ms": 1e3 * per_evaluation(prep),
                     "adjoint_ms": 1e3 * per_evaluation(prep, adjoint=True),
                     "dense_ms": 1e3 * per_evaluation(dense)})
        print("un-ar1", rows[-1], flush=True)
    return rows


def median_wall(command: list[str], reps: int) -> float:
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        subprocess.run(command, capture_output=True, text=True, check=True)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def whole_command(tmp: Path, reps: int) -> dict:
    """``apim fit`` on a seed-size CSV vs Rscript doing the same job; import time."""
    d = seed_design(241, 30, seed=1)
    path = tmp / "seed_command.csv"
    d.assign(x=d["aw"] + d["ab"])[["dyad", "session", "role", "x", "y"]].to_csv(path,
                                                                              index=False)
    apim_cmd = [sys.executable, "-m", "apim", "fit", str(path), "--dyad", "dyad",
                "--session", "session", "--role", "role", "--roles", "0,1", "--outcome", "y",
                "--predictor", "x", "--random", "intercepts", "--residual", "un"]
    big = tmp / "big_command.csv"  # 30,000 dyads: the large-file case
    d = seed_design(30_000, 30, seed=2)
    d.assign(x=d["aw"] + d["ab"])[["dyad", "session", "role", "x", "y"]].to_csv(big,
                                                                             index=False)
    del d
    out = {"apim": median_wall(apim_cmd, max(5, reps)),
           "apim_big": median_wall([*apim_cmd[:4], str(big), *apim_cmd[5:]], reps),
           "big_mb": big.stat().st_size / 2 ** 20,
           "python": median_wall([sys.executable, "-c", "pass"], max(5, reps)),
           "import": median_wall([sys.executable, "-c", "import apim"], max(5, reps))}
    if shutil.which("Rscript"):
        out["R"] = median_wall(["Rscript", str(HERE / "whole_command.R"), str(path)], reps)
        out["R_start"] = median_wall(["Rscript", "-e", "suppressMessages(library(nlme))"],
                                     reps)
    profile = subprocess.run([sys.executable, "-X", "importtime", "-c", "import apim"],
                             capture_output=True, text=True).stderr.splitlines()
    out["importtime_us"] = int(profile[-1].split("|")[1])
    heavy = subprocess.run([sys.executable, "-c", "import sys, apim; print(','.join(m for m in "
                            "('scipy.stats', 'scipy.optimize', 'statsmodels', 'linearmodels', "
                            "'matplotlib', 'dask') if m in sys.modules))"],
                           capture_output=True, text=True).stdout.strip()
    out["heavy"] = heavy or "none"
    print("command", out, flush=True)
    return out


NOTES = """Notes
- Same model: apim, nlme and glmmTMB (residuals as an unstructured dyad:session random
  effect with the dispersion fixed at zero, REML). glmmTMB may warn of "false convergence"
  with a zero dispersion; its estimates still agree (last column).
- Nearest model: lme4 and statsmodels cannot fit role-specific residual variances or the
  partners' residual correlation; they fit the same random effects with independent,
  equal-variance residuals, hence their different logLik.
- apim fits with one BLAS thread (``apim.engine.threads``, through threadpoolctl when it is
  installed); R and statsmodels run with their defaults.
- Peak RSS is that of the whole process, including the generated data frame ("before fit"
  is the peak before the fit started)."""
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


SCENARIOS = (  # key for fit_r.R, title, apim options, R engines, statsmodels?
    ("a", "(a) seed design: random intercepts", {}, ["nlme", "glmmTMB", "lme4"], True),
    ("b", "(b) plus random actor and partner slopes", {"slopes": True},
     ["nlme", "glmmTMB", "lme4"], True),
    ("t", "(c) therapist level: (a) with 4 dyads per therapist and therapist intercepts",
     {"therapist": True}, ["nlme", "glmmTMB"], False),
    ("r", "(d) AR(1) residuals within person (phi = 0.3), role-specific variances",
     {"residual": "ar1"}, ["nlme"], False),
    ("a", "(e) Bolger & Laurenceau (2013) couples' diaries, model (a)", {"bl": True},
     ["nlme", "glmmTMB", "lme4"], False),
)


def scenario_data(key: str, options: dict):
    if options.get("bl"):
        return bolger_laurenceau()
    return seed_design(241, 30, seed=1, slopes=options.get("slopes", False),
                       phi=0.3 if key == "r" else 0.0, caseload=4 if key == "t" else 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--sizes", default="1000,10000,30000,100000")
    parser.add_argument("--only", default="", help="comma-separated parts to run "
                        "(engines, un-ar1, command, scaling); default all")
    args = parser.parse_args()
    parts = set(args.only.split(",")) if args.only else {"engines", "un-ar1", "command",
                                                         "scaling"}
    sizes = [int(s) for s in args.sizes.split(",") if s]
    load = os.getloadavg()
    header = [f"# Speed benchmark\n\nMachine: {machine()}\n",
                f"Run on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by "
                f"`python benchmarks/engine_vs_r.py`; medians of {args.reps} runs (apim: "
                f"{max(5, args.reps)}). Load average at the start: {load[0]:.1f} (the "
                "machine was shared with other jobs; all engines ran in the same conditions, "
                "interleaved by scenario).\n"]
    summary: list[str] = []
    sections: list[str] = []

    def flush(key: str) -> None:  # each part is its own section of RESULTS.md
        write_section(f"speed-{key}", "\n".join(header + sections))
        print("\n".join(sections), flush=True)
        sections.clear()

    with tempfile.TemporaryDirectory() as tmp:
        for key, label, options, engines, with_sm in (SCENARIOS if "engines" in parts
                                                      else ()):
            d = scenario_data(key, options)
            path = Path(tmp) / f"{key}.csv"
            d.to_csv(path, index=False)
            apim_opts = {k: v for k, v in options.items() if k != "bl"}
            rows = [time_apim(d, apim_opts.pop("slopes", False), max(5, args.reps),
                              **apim_opts)]
            rows += time_r(path, key, args.reps, engines)
            if with_sm:
                rows.append(time_statsmodels(d, options.get("slopes", False), args.reps))
            print(label, [(r["engine"], round(r["seconds"], 3)) for r in rows], flush=True)
            n_dyads = d["dyad"].nunique()
            sections += [f"## {label}\n", f"{n_dyads} dyads, {len(d):,} rows, REML; apim: "
                         f"{rows[0]['evaluations']} likelihood evaluations.\n",
                         *table(rows), ""]
            nlme = next((r for r in rows if r["engine"] == "nlme::lme"), None)
            if nlme:
                ratio = nlme["seconds"] / rows[0]["seconds"]
                summary.append(f"| {label.split(')')[0]}) | {ratio:.0f}x |")
        if summary:
            sections += ["## nlme time / apim time\n", "| scenario | ratio |", "|---|---|",
                         *summary, "", NOTES]
            flush("engines")
        if "un-ar1" in parts:
            un = un_ar1_missing(max(5, args.reps))
            base = un[0]["seconds"]
            sections += ["## (f) UN x AR(1) with single ratings missing (apim only)\n",
                         "Seed design with AR(1) residuals (phi = 0.3), random role "
                         "intercepts, REML; ratings dropped at random. Time of one "
                         "likelihood evaluation with gradient at the estimate: the stencil "
                         "with the Schur-complement correction, its gradient by the "
                         "adjoint method (what the optimizer uses) and by forward "
                         "derivatives, against dense Cholesky factors for the incomplete "
                         "dyads (the oracle, the old path).\n",
                         "| missing | rows | median seconds | time / complete | evaluations | "
                         "logLik | evaluation ms (adjoint) | evaluation ms (forward) | "
                         "evaluation ms (dense) |",
                         "|---|---|---|---|---|---|---|---|---|"]
            for r in un:
                dense = f"{r['dense_ms']:.1f}" if r["missing"] else "(same)"
                sections.append(
                    f"| {100 * r['missing']:.0f}% | {r['rows']:,} | {r['seconds']:.3f} | "
                    f"{r['seconds'] / base:.2f} | {r['evaluations']} | {r['loglik']:.4f} | "
                    f"{r['adjoint_ms']:.2f} | {r['evaluation_ms']:.2f} | {dense} |")
            flush("un-ar1")
        if "command" in parts:
            c = whole_command(Path(tmp), args.reps)
            sections += ["## (g) the whole command and import time\n",
                         "`apim fit seed.csv --dyad dyad --session session --role role "
                         "--roles 0,1 --outcome y --predictor x --random intercepts "
                         "--residual un` (241 dyads x 30 sessions; read, split, fit, "
                         "print) against `Rscript benchmarks/whole_command.R seed.csv` "
                         "(the same job with nlme; same estimates).\n",
                         "| what | median seconds |", "|---|---|",
                         f"| `apim fit` | {c['apim']:.3f} |"]
            if "R" in c:
                sections += [f"| Rscript + nlme | {c['R']:.3f} |",
                             f"| ratio | {c['R'] / c['apim']:.1f}x |",
                             f"| (Rscript start + `library(nlme)`) | {c['R_start']:.3f} |"]
            sections += [f"| `apim fit` on 30,000 dyads x 30 sessions (1,800,000 rows, "
                         f"{c['big_mb']:.0f} MB CSV) | {c['apim_big']:.3f} |",
                         f"| `python -c 'import apim'` | {c['import']:.3f} |",
                         f"| `python -c 'pass'` | {c['python']:.3f} |",
                         "| `-X importtime` cumulative for apim | "
                         f"{c['importtime_us'] / 1e6:.3f} |",
                         "", f"Heavy modules loaded by `import apim`: {c['heavy']}."]
            flush("command")
    if "scaling" in parts:
        rows = scaling(sizes, args.reps)
        sections += ["## (h) scaling of apim, 30 sessions per dyad, model (a)\n",
                     "| dyads | rows | runs | median seconds | CPU seconds | seconds per 1,000 "
                     "dyads | evaluations | peak RSS before fit (MB) | peak RSS (MB) |",
                     "|---|---|---|---|---|---|---|---|---|"]
        sections += [f"| {r['dyads']:,} | {r['rows']:,} | {r['runs']} | {r['seconds']:.2f} | "
                     f"{r['cpu']:.2f} | "
                     f"{1000 * r['seconds'] / r['dyads']:.3f} | {r['evaluations']:.0f} | "
                     f"{r['before_mb']:.0f} | {r['rss_mb']:.0f} |" for r in rows]
        flush("scaling")


if __name__ == "__main__":
    main()
