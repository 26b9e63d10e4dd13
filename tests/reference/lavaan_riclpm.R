# RI-CLPM reference for apim's dynamic APIM with initial = "free": lavaan, ML, wide format.
#
# Usage: Rscript lavaan_riclpm.R data.csv out.csv
# data.csv: columns dyad, then v<k>_<t> for variables k = 1..K and waves t = 1..T
# (NA = missing; fitted with missing = "ml", full information).
# The model is written so that it is the dynamic model of apim (issue 22):
#   one random intercept RI<k> per variable loading 1 at every wave (covariances free);
#   within components w<k>_<t> =~ 1*v<k>_<t>, the observed residual variances fixed at 0;
#   lagged coefficients w<k>_<t> ~ p<k>_<j> * w<j>_<t-1> equal over waves (p<k>_<j> is
#   Phi[to = k, from = j]); innovation (residual) covariances of the w at waves 2..T equal
#   over waves (s<k>_<l>); the first wave's within covariance free; random intercepts
#   uncorrelated with it; one mean m<k> per variable, equal over waves.
# Optional dyad-level covariates c1, c2, ... (columns of data.csv): every random intercept
# regressed on them, RI<k> ~ g<k>_<a>*c<a> (fixed.x: the likelihood is conditional on
# them), so the means are m<k> + sum_a g<k>_<a> c<a> (apim's covariates of the means) and
# the RI covariances are residual ones (Sigma_B).
# Standard errors from the observed information (information = "observed").
suppressMessages(library(lavaan))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
covs <- grep("^c[0-9]+$", names(d), value = TRUE)
vars <- setdiff(names(d), c("dyad", covs))
K <- max(as.integer(sub("^v([0-9]+)_.*$", "\\1", vars)))
T <- max(as.integer(sub("^v[0-9]+_([0-9]+)$", "\\1", vars)))
v <- function(k, t) sprintf("v%d_%d", k, t)
w <- function(k, t) sprintf("w%d_%d", k, t)
lines <- character(0)
for (k in 1:K) {
  lines <- c(lines, sprintf("RI%d =~ %s", k, paste0("1*", v(k, 1:T), collapse = " + ")))
  for (l in k:K) lines <- c(lines, sprintf("RI%d ~~ RI%d", k, l))
  for (a in seq_along(covs)) lines <- c(lines, sprintf("RI%d ~ g%d_%d*%s", k, k, a, covs[a]))
}
for (t in 1:T) for (k in 1:K) {
  lines <- c(lines, sprintf("%s =~ 1*%s", w(k, t), v(k, t)),
             sprintf("%s ~~ 0*%s", v(k, t), v(k, t)),
             sprintf("%s ~ m%d*1", v(k, t), k))
}
for (k in 1:K) for (l in k:K) lines <- c(lines, sprintf("%s ~~ %s", w(k, 1), w(l, 1)))
for (t in 2:T) for (k in 1:K) {
  lines <- c(lines, sprintf("%s ~ %s", w(k, t),
                            paste(sprintf("p%d_%d*%s", k, 1:K, w(1:K, t - 1)), collapse = " + ")))
  for (l in k:K) lines <- c(lines, sprintf("%s ~~ s%d_%d*%s", w(k, t), k, l, w(l, t)))
}
model <- paste(lines, collapse = "\n")
timing <- system.time(
  fit <- lavaan(model, data = d, estimator = "ML", missing = "ml", information = "observed")
)
pe <- parameterEstimates(fit)
pe <- pe[pe$label != "" & !duplicated(pe$label), c("label", "est", "se")]
ri <- parameterEstimates(fit)
ri <- ri[ri$op == "~~" & grepl("^RI", ri$lhs) & grepl("^RI", ri$rhs), ]
ri <- data.frame(label = paste0("b", sub("RI", "", ri$lhs), "_", sub("RI", "", ri$rhs)),
                 est = ri$est, se = ri$se)
stats <- data.frame(label = c("logLik", "converged", "seconds", "cpu_seconds", "version"),
                    est = c(as.numeric(logLik(fit)), as.numeric(lavInspect(fit, "converged")),
                            timing[["elapsed"]], timing[["user.self"]] + timing[["sys.self"]],
                            NA),
                    se = c(NA, NA, NA, NA, NA))
stats$label[5] <- paste0("version ", as.character(packageVersion("lavaan")))
write.csv(rbind(pe, ri, stats), args[2], row.names = FALSE)
