# Reference fits of the generalized APIM (tests/model/test_generalized_r.py).
# Usage: Rscript glmm_reference.R [data.csv] [out.csv]
# (defaults: glmm_sim_data.csv -> glmm_reference.csv beside this script)
#  - glmmTMB, binary y, logit and probit: the exact Laplace approximation over the dyad's
#    two correlated random intercepts (us(0 + patient + therapist | dyad));
#  - ordinal::clmm, ordinal k (logit), one scalar random intercept per dyad (a model clmm
#    can express: nAGQ = 25 adaptive quadrature), thresholds shared by the roles.
#  With a `clinician` column (dyads nested in therapists: glmm_therapist_data.csv ->
#  glmm_therapist_reference.csv) the glmmTMB models add a therapist intercept shared by
#  both members, (1 | clinician), and report its SD (sd.clinician); no clmm fit.
# Output: one row per quantity: model, name, estimate, se.
suppressPackageStartupMessages({library(glmmTMB); library(ordinal)})
args <- commandArgs(trailingOnly = TRUE)
here <- tryCatch(dirname(normalizePath(sub("--file=", "", grep("--file=", commandArgs(), value = TRUE)))),
                 error = function(e) ".")
data_path <- if (length(args) >= 1) args[1] else file.path(here, "glmm_sim_data.csv")
out_path <- if (length(args) >= 2) args[2] else file.path(here, "glmm_reference.csv")
d <- read.csv(data_path)
d$dyad <- factor(d$dyad)
nested <- "clinician" %in% names(d)
rows <- list()
add <- function(model, name, estimate, se = NA) {
  rows[[length(rows) + 1]] <<- data.frame(model = model, name = name, estimate = estimate, se = se)
}
form <- y ~ 0 + patient + therapist + patient_actor + patient_partner + therapist_actor +
  therapist_partner + (0 + patient + therapist | dyad)
if (nested) {
  d$clinician <- factor(d$clinician)
  form <- update(form, . ~ . + (1 | clinician))
}
ctl <- glmmTMBControl(optCtrl = list(iter.max = 1000, eval.max = 1000, rel.tol = 1e-14))
for (link in c("logit", "probit")) {
  fit <- glmmTMB(form, data = d, family = binomial(link = link), control = ctl)
  model <- paste0("glmmTMB_", link)
  add(model, "logLik", as.numeric(logLik(fit)))
  b <- fixef(fit)$cond
  se <- sqrt(diag(vcov(fit)$cond))
  for (n in names(b)) add(model, n, b[[n]], se[[n]])
  if (nested) add(model, "sd.clinician", attr(VarCorr(fit)$cond$clinician, "stddev")[1])
  vc <- VarCorr(fit)$cond$dyad
  add(model, "sd.patient", attr(vc, "stddev")[1])
  add(model, "sd.therapist", attr(vc, "stddev")[2])
  add(model, "cor", attr(vc, "correlation")[1, 2])
}
if (nested) {
  write.csv(do.call(rbind, rows), out_path, row.names = FALSE)
  quit(save = "no")
}
d$k <- factor(d$k, ordered = TRUE)
cf <- clmm(k ~ patient_actor + patient_partner + therapist_actor + therapist_partner +
             therapist + (1 | dyad), data = d, link = "logit", nAGQ = 25)
add("clmm_logit", "logLik", as.numeric(logLik(cf)))
s <- summary(cf)$coefficients
for (n in rownames(s)) add("clmm_logit", n, s[n, "Estimate"], s[n, "Std. Error"])
add("clmm_logit", "sd.dyad", attr(VarCorr(cf)$dyad, "stddev")[1])
write.csv(do.call(rbind, rows), out_path, row.names = FALSE)
