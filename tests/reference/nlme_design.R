# Fit an lme (or gls) to given design columns and write the long CSV of nlme_fit.R.
# Columns x_* are the fixed effects (no intercept added), z_* the dyad random effects
# (unstructured); y, dyad, session, role (0/1) and therapist identify the rows.
# Usage: Rscript nlme_design.R DATA.csv OUT.csv NAME RESIDUAL(un|cs|ar1) THERAPIST(0|1) METHOD
suppressMessages(library(nlme))
args <- commandArgs(TRUE)
d <- read.csv(args[1]); name <- args[3]; residual <- args[4]
therapist <- args[5] == "1"; method <- args[6]
d <- d[order(d$therapist, d$dyad, d$session, d$role), ]
d$rolef <- factor(d$role, levels = c(0, 1))
xs <- grep("^x_", names(d), value = TRUE); zs <- grep("^z_", names(d), value = TRUE)
fx <- as.formula(paste("y ~ 0 +", paste(xs, collapse = " + ")))
rz <- as.formula(paste("~ 0 +", paste(zs, collapse = " + ")))
ctrl <- lmeControl(maxIter = 500, msMaxIter = 1000, niterEM = 50, tolerance = 1e-10,
                   msTol = 1e-14)
cor <- switch(residual,
  un = , cs = if (therapist) corCompSymm(form = ~ 1 | therapist/dyad/session) else
    corCompSymm(form = ~ 1 | dyad/session),
  ar1 = if (therapist) corAR1(form = ~ session | therapist/dyad/rolef) else
    corAR1(form = ~ session | dyad/rolef))
w <- if (residual == "cs") NULL else varIdent(form = ~ 1 | rolef)
random <- if (therapist) list(therapist = ~ 1, dyad = pdSymm(rz)) else list(dyad = pdSymm(rz))
m <- lme(fx, random = random, correlation = cor, weights = w, data = d, method = method,
         control = ctrl)
rows <- list()
add <- function(kind, nm, value)
  rows[[length(rows) + 1]] <<- data.frame(model = name, kind = kind, name = nm, value = value)
add("loglik", "", as.numeric(logLik(m)))
add("fixed", names(fixef(m)), unname(fixef(m)))
add("se", names(fixef(m)), sqrt(diag(vcov(m))))
add("df", names(fixef(m)), unname(m$fixDF$X))
ms <- m$modelStruct
ratio <- if (is.null(ms$varStruct)) c("0" = 1, "1" = 1) else
  coef(ms$varStruct, unconstrained = FALSE, allCoef = TRUE)
add("var", "sigma0", m$sigma * ratio[["0"]]); add("var", "sigma1", m$sigma * ratio[["1"]])
k <- if (inherits(ms$corStruct, c("corAR1", "corARMA"))) "phi" else "rho"
add("var", k, coef(ms$corStruct, unconstrained = FALSE)[[1]])
mats <- pdMatrix(ms$reStruct)
for (level in names(mats)) {
  g <- mats[[level]] * m$sigma^2; sd <- sqrt(diag(g))
  for (i in seq_along(sd)) {
    add("var", sprintf("%s.sd.%d", level, i), sd[i])
    for (j in seq_len(i - 1))
      add("var", sprintf("%s.cor.%d.%d", level, j, i), g[i, j] / (sd[i] * sd[j]))
  }
}
write.csv(do.call(rbind, rows), args[2], row.names = FALSE)
