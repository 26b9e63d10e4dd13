# Timing peer of benchmarks/glmm_speed.py: the seed-size binary APIM in lme4::glmer (nAGQ = 1)
# and glmmTMB (Laplace), the dyad's two correlated random intercepts; with a `clinician`
# column (dyads nested in therapists) glmmTMB alone with (1 | clinician) added.
# Usage: Rscript glmm_fit_r.R data.csv reps
# Prints one line per engine: engine,median_seconds,logLik
suppressPackageStartupMessages({library(lme4); library(glmmTMB)})
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
reps <- as.integer(args[2])
d$dyad <- factor(d$dyad)
nested <- "clinician" %in% names(d)
terms <- setdiff(names(d), c("dyad", "role", "y", "clinician"))
fixed <- paste("y ~ 0 +", paste(terms, collapse = " + "))
form <- as.formula(paste(fixed, "+ (0 + patient + therapist | dyad)"))
time_it <- function(f) {
  f()  # warm-up
  times <- replicate(reps, system.time(fit <- f())[["elapsed"]])
  list(time = median(times), fit = f())
}
if (nested) {
  d$clinician <- factor(d$clinician)
  form <- as.formula(paste(fixed, "+ (1 | clinician) + (0 + patient + therapist | dyad)"))
  t <- time_it(function() glmmTMB(form, data = d, family = binomial))
  cat(sprintf("glmmTMB therapist level,%.4f,%.8f\n", t$time, as.numeric(logLik(t$fit))))
  quit(save = "no")
}
g <- time_it(function() glmer(form, data = d, family = binomial, nAGQ = 1))
cat(sprintf("glmer,%.4f,%.8f\n", g$time, as.numeric(logLik(g$fit))))
t <- time_it(function() glmmTMB(form, data = d, family = binomial))
cat(sprintf("glmmTMB,%.4f,%.8f\n", t$time, as.numeric(logLik(t$fit))))
