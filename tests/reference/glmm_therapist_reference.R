# Reference fits of the generalized APIM with a therapist level
# (tests/model/test_generalized_therapist.py).
# Usage: Rscript glmm_therapist_reference.R [data.csv] [out.csv]
# (defaults: glmm_therapist_data.csv -> glmm_therapist_reference.csv beside this script)
#  glmmTMB, binary y, logit and probit: the exact Laplace approximation over all random
#  effects: a therapist intercept shared by both members (1 | clinician) and the dyad's two
#  correlated intercepts us(0 + patient + therapist | dyad); dyads nested in clinicians.
# Output: one row per quantity: model, name, estimate, se.
suppressPackageStartupMessages(library(glmmTMB))
args <- commandArgs(trailingOnly = TRUE)
here <- tryCatch(dirname(normalizePath(sub("--file=", "", grep("--file=", commandArgs(), value = TRUE)))),
                 error = function(e) ".")
data_path <- if (length(args) >= 1) args[1] else file.path(here, "glmm_therapist_data.csv")
out_path <- if (length(args) >= 2) args[2] else file.path(here, "glmm_therapist_reference.csv")
d <- read.csv(data_path)
d$dyad <- factor(d$dyad)
d$clinician <- factor(d$clinician)
rows <- list()
add <- function(model, name, estimate, se = NA) {
  rows[[length(rows) + 1]] <<- data.frame(model = model, name = name, estimate = estimate, se = se)
}
form <- y ~ 0 + patient + therapist + patient_actor + patient_partner + therapist_actor +
  therapist_partner + (1 | clinician) + (0 + patient + therapist | dyad)
ctl <- glmmTMBControl(optCtrl = list(iter.max = 1000, eval.max = 1000, rel.tol = 1e-14))
for (link in c("logit", "probit")) {
  fit <- glmmTMB(form, data = d, family = binomial(link = link), control = ctl)
  model <- paste0("glmmTMB_", link)
  add(model, "logLik", as.numeric(logLik(fit)))
  b <- fixef(fit)$cond
  se <- sqrt(diag(vcov(fit)$cond))
  for (n in names(b)) add(model, n, b[[n]], se[[n]])
  vc <- VarCorr(fit)$cond
  add(model, "sd.clinician", attr(vc$clinician, "stddev")[1])
  add(model, "sd.patient", attr(vc$dyad, "stddev")[1])
  add(model, "sd.therapist", attr(vc$dyad, "stddev")[2])
  add(model, "cor", attr(vc$dyad, "correlation")[1, 2])
}
write.csv(do.call(rbind, rows), out_path, row.names = FALSE)
