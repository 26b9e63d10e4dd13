# Two-level SEM reference for apim's latent (multivariate) APIM: lavaan, ML, complete data.
#
# Usage: Rscript lavaan_latent.R data.csv out.csv
# data.csv: columns dyad, session, xP, xT, yP, yT (one row per dyad x session, no missing).
# The model is saturated at both levels: at each level yP and yT are regressed on xP and xT
# (actor and partner effects per role), with covariances of the two predictors and of the
# two residuals. lavaan's between-level intercepts are the outcome means minus the
# regression on the predictor means; the implied means are written as "mean" rows.
# Standard errors from the observed information (information = "observed").
suppressMessages(library(lavaan))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
model <- '
level: 1
  yP ~ xP + xT
  yT ~ xP + xT
  yP ~~ yT
  xP ~~ xT
level: 2
  yP ~ xP + xT
  yT ~ xP + xT
  yP ~~ yT
  xP ~~ xT
'
timing <- system.time(
  fit <- sem(model, data = d, cluster = "dyad", estimator = "ML", information = "observed")
)
seconds <- timing[["elapsed"]]
cpu <- timing[["user.self"]] + timing[["sys.self"]]
pe <- parameterEstimates(fit)
pe <- pe[pe$op %in% c("~", "~~", "~1"), c("lhs", "op", "rhs", "level", "est", "se")]
implied <- lavInspect(fit, "implied")$dyad$mean
means <- data.frame(lhs = names(implied), op = "mean", rhs = "", level = 2,
                    est = as.numeric(implied), se = NA)
stats <- data.frame(lhs = c("logLik", "converged", "seconds", "cpu_seconds", "version"),
                    op = "stat",
                    rhs = c("", "", "", "", as.character(packageVersion("lavaan"))), level = 0,
                    est = c(as.numeric(logLik(fit)), as.numeric(lavInspect(fit, "converged")),
                            seconds, cpu, NA),
                    se = NA)
out <- rbind(pe, means, stats)
write.csv(out, args[2], row.names = FALSE)
