# Time R fits of the benchmark models; print one CSV line per engine:
#   engine,model,median_seconds,loglik,coefficients(;-separated)
# Usage: Rscript fit_r.R DATA.csv MODEL(a|b) REPS ENGINE...
suppressMessages({library(nlme)})
args <- commandArgs(TRUE)
d <- read.csv(args[1]); model <- args[2]; reps <- as.integer(args[3]); engines <- args[-(1:3)]
d$P <- 1 - d$role; d$T <- d$role; d$rolef <- factor(d$role, levels = c(0, 1))
d$ds <- factor(paste(d$dyad, d$session))
fx <- y ~ 0 + P + T + P:aw + P:pw + P:ab + P:pb + T:aw + T:pw + T:ab + T:pb
re <- if (model == "a") ~ 0 + P + T else ~ 0 + P + T + P:aw + T:aw + P:pw + T:pw
fits <- list(
  nlme = function() lme(fx, random = list(dyad = pdSymm(re)),
                        correlation = corCompSymm(form = ~ 1 | dyad/session),
                        weights = varIdent(form = ~ 1 | rolef), data = d, method = "REML",
                        control = lmeControl(maxIter = 200, msMaxIter = 200)),
  glmmTMB = function() {
    f <- if (model == "a") y ~ 0 + P + T + P:aw + P:pw + P:ab + P:pb + T:aw + T:pw + T:ab +
      T:pb + us(0 + P + T | dyad) + us(0 + P + T | ds) else
      y ~ 0 + P + T + P:aw + P:pw + P:ab + P:pb + T:aw + T:pw + T:ab + T:pb +
      us(0 + P + T + P:aw + T:aw + P:pw + T:pw | dyad) + us(0 + P + T | ds)
    glmmTMB::glmmTMB(f, dispformula = ~ 0, data = d, REML = TRUE)
  },
  lme4 = function() {
    f <- if (model == "a") y ~ 0 + P + T + P:aw + P:pw + P:ab + P:pb + T:aw + T:pw + T:ab +
      T:pb + (0 + P + T | dyad) else
      y ~ 0 + P + T + P:aw + P:pw + P:ab + P:pb + T:aw + T:pw + T:ab + T:pb +
      (0 + P + T + P:aw + T:aw + P:pw + T:pw | dyad)
    lme4::lmer(f, data = d, REML = TRUE)
  })
for (engine in engines) {
  times <- numeric(reps)
  for (i in seq_len(reps)) times[i] <- system.time(m <- fits[[engine]]())[["elapsed"]]
  beta <- if (engine == "nlme") fixef(m) else if (engine == "lme4") lme4::fixef(m) else
    glmmTMB::fixef(m)$cond
  cat(sprintf("%s,%s,%.4f,%.6f,%s\n", engine, model, median(times), as.numeric(logLik(m)),
              paste(sprintf("%.8f", beta), collapse = ";")))
}
