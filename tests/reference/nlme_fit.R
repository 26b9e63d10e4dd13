# Fit the reference models of tests/oracles/nlme_support.py in nlme and write a long CSV:
#   model, kind (loglik | fixed | se | df | var), name, value
# Usage: Rscript nlme_fit.R DATA.csv OUT.csv [MODEL ...]
# Variance parameters are on the natural scale: residual SD per role (sigma0, sigma1),
# rho, phi, random-effect SDs and correlations in absolute units.
suppressMessages(library(nlme))
args <- commandArgs(TRUE)
d <- read.csv(args[1])
d <- d[order(d$therapist, d$dyad, d$session, d$role), ]
d$P <- 1 - d$role; d$T <- d$role; d$rolef <- factor(d$role, levels = c(0, 1))
d$ds <- factor(paste(d$dyad, d$session))
models <- if (length(args) > 2) args[-(1:2)] else
  c("ri_reml", "ri_ml", "slopes", "indist", "therapist", "ar1", "gls_un")
ctrl <- lmeControl(maxIter = 500, msMaxIter = 1000, niterEM = 50, tolerance = 1e-10,
                   msTol = 1e-14, msVerbose = FALSE)
gctrl <- glsControl(maxIter = 500, msMaxIter = 1000, tolerance = 1e-10, msTol = 1e-14)
fx <- y ~ 0 + P + T + P:x + P:xp + T:x + T:xp + P:w + T:w
cs <- corCompSymm(form = ~ 1 | dyad/session)
vi <- varIdent(form = ~ 1 | rolef)

fit_one <- function(name) {
  switch(name,
    ri_reml = lme(fx, random = list(dyad = pdSymm(~ 0 + P + T)), correlation = cs,
                  weights = vi, data = d, method = "REML", control = ctrl),
    ri_ml = lme(fx, random = list(dyad = pdSymm(~ 0 + P + T)), correlation = cs,
                weights = vi, data = d, method = "ML", control = ctrl),
    slopes = lme(fx, random = list(dyad = pdSymm(~ 0 + P + T + P:x + T:x)),
                 correlation = cs, weights = vi, data = d, method = "REML", control = ctrl),
    indist = lme(y ~ x + xp + w, random = ~ 1 | dyad, correlation = cs, data = d,
                 method = "REML", control = ctrl),
    therapist = lme(fx, random = list(therapist = ~ 1, dyad = pdSymm(~ 0 + P + T)),
                    correlation = corCompSymm(form = ~ 1 | therapist/dyad/session),
                    weights = vi, data = d, method = "REML", control = ctrl),
    ar1 = lme(fx, random = list(dyad = pdSymm(~ 0 + P + T)),
              correlation = corAR1(form = ~ session | dyad/rolef), weights = vi, data = d,
              method = "REML", control = ctrl),
    gls_un = gls(fx, correlation = corCompSymm(form = ~ 1 | ds), weights = vi, data = d,
                 method = "REML", control = gctrl))
}

rows <- list()
add <- function(model, kind, name, value)
  rows[[length(rows) + 1]] <<- data.frame(model = model, kind = kind, name = name,
                                          value = value)
for (name in models) {
  m <- fit_one(name)
  add(name, "loglik", "", as.numeric(logLik(m)))
  beta <- if (inherits(m, "gls")) coef(m) else fixef(m)
  add(name, "fixed", names(beta), unname(beta))
  add(name, "se", names(beta), sqrt(diag(vcov(m))))
  if (!inherits(m, "gls")) add(name, "df", names(beta), unname(m$fixDF$X))
  ms <- m$modelStruct
  ratio <- if (is.null(ms$varStruct)) c("0" = 1, "1" = 1) else
    coef(ms$varStruct, unconstrained = FALSE, allCoef = TRUE)
  add(name, "var", "sigma0", m$sigma * ratio[["0"]])
  add(name, "var", "sigma1", m$sigma * ratio[["1"]])
  if (!is.null(ms$corStruct)) {
    k <- if (inherits(ms$corStruct, c("corAR1", "corARMA"))) "phi" else "rho"
    add(name, "var", k, coef(ms$corStruct, unconstrained = FALSE)[[1]])
  }
  if (!inherits(m, "gls")) {
    mats <- pdMatrix(ms$reStruct)
    for (level in names(mats)) {
      g <- mats[[level]] * m$sigma^2
      sd <- sqrt(diag(g))
      for (i in seq_along(sd)) {
        add(name, "var", sprintf("%s.sd.%d", level, i), sd[i])
        for (j in seq_len(i - 1))
          add(name, "var", sprintf("%s.cor.%d.%d", level, j, i), g[i, j] / (sd[i] * sd[j]))
      }
    }
  }
}
write.csv(do.call(rbind, rows), args[2], row.names = FALSE)
