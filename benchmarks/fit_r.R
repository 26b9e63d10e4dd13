# Time R fits of the benchmark models; print one CSV line per engine:
#   engine,model,median_seconds,loglik,coefficients(;-separated)
# Usage: Rscript fit_r.R DATA.csv MODEL REPS ENGINE...
# MODEL: a (random role intercepts), b (plus random actor and partner slopes),
#        t (a plus therapist intercepts), r (a with AR(1) instead of the same-session
#        correlation)
suppressMessages({library(nlme)})
args <- commandArgs(TRUE)
d <- read.csv(args[1]); model <- args[2]; reps <- as.integer(args[3]); engines <- args[-(1:3)]
d$P <- 1 - d$role; d$T <- d$role; d$rolef <- factor(d$role, levels = c(0, 1))
d$ds <- factor(paste(d$dyad, d$session))
fx <- y ~ 0 + P + T + P:aw + P:pw + P:ab + P:pb + T:aw + T:pw + T:ab + T:pb
re <- if (model == "b") ~ 0 + P + T + P:aw + T:aw + P:pw + T:pw else ~ 0 + P + T
random <- if (model == "t") list(therapist = ~ 1, dyad = pdSymm(re)) else
  list(dyad = pdSymm(re))
corr <- switch(model, t = corCompSymm(form = ~ 1 | therapist/dyad/session),
               r = corAR1(form = ~ session | dyad/rolef),
               corCompSymm(form = ~ 1 | dyad/session))
fixed <- "0 + P + T + P:aw + P:pw + P:ab + P:pb + T:aw + T:pw + T:ab + T:pb"
re_text <- if (model == "b") "0 + P + T + P:aw + T:aw + P:pw + T:pw" else "0 + P + T"
th_text <- if (model == "t") " + (1 | therapist)" else ""
fits <- list(
  nlme = function() lme(fx, random = random, correlation = corr,
                        weights = varIdent(form = ~ 1 | rolef), data = d, method = "REML",
                        control = lmeControl(maxIter = 200, msMaxIter = 200)),
  glmmTMB = function() {
    f <- as.formula(paste0("y ~ ", fixed, " + us(", re_text, " | dyad) + us(0 + P + T | ds)",
                           th_text))
    glmmTMB::glmmTMB(f, dispformula = ~ 0, data = d, REML = TRUE)
  },
  lme4 = function() {
    f <- as.formula(paste0("y ~ ", fixed, " + (", re_text, " | dyad)", th_text))
    lme4::lmer(f, data = d, REML = TRUE)
  })
for (engine in engines) {
  if (!requireNamespace(engine, quietly = TRUE)) next  # not installed: left out
  times <- numeric(reps)
  for (i in seq_len(reps)) times[i] <- system.time(m <- fits[[engine]]())[["elapsed"]]
  beta <- if (engine == "nlme") fixef(m) else if (engine == "lme4") lme4::fixef(m) else
    glmmTMB::fixef(m)$cond
  cat(sprintf("%s,%s,%.4f,%.6f,%s\n", engine, model, median(times), as.numeric(logLik(m)),
              paste(sprintf("%.8f", beta), collapse = ";")))
}
