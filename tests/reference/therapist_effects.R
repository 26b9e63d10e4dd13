# Therapist effects in nlme, the reference for tests/analyses/test_therapist.py.
#
# Usage: Rscript therapist_effects.R DATA.csv OUT.csv VARIABLES PREDICTOR OUTCOME
#   DATA: long data with columns dyad, therapist, session, role and the variables
#   VARIABLES: comma-separated variables whose variance shares are wanted
# For each variable and role: lme(y ~ 1, random = ~ 1 | therapist/dyad, REML): the
# variances at the therapist, dyad and session levels and their shares, and logLik.
# For each predictor role x outcome role: dyad means of the outcome regressed on the dyad
# mean of the predictor minus its therapist (caseload) mean and the therapist mean centred
# on the mean of the therapist means, lme(..., random = ~ 1 | therapist, REML); the
# contextual effect (therapist - within) with its SE from vcov().
suppressPackageStartupMessages(library(nlme))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
variables <- strsplit(args[3], ",")[[1]]
predictor <- args[4]
outcome <- args[5]
roles <- sort(unique(as.character(d$role)))
out <- list()
add <- function(model, quantity, estimate, se = NA) {
  out[[length(out) + 1]] <<- data.frame(model = model, quantity = quantity,
                                        estimate = estimate, se = se)
}
ctrl <- lmeControl(maxIter = 500, msMaxIter = 500, niterEM = 100, tolerance = 1e-10,
                   msTol = 1e-12)
# nlminb stops with "false convergence" when a variance is (near) zero; then the same
# likelihood is maximised with optim (BFGS) instead
fit_lme <- function(formula, data) {
  tryCatch(lme(formula, random = ~ 1 | therapist / dyad, data = data, method = "REML",
               control = ctrl),
           error = function(e) lme(formula, random = ~ 1 | therapist / dyad, data = data,
                                   method = "REML", control = modifyList(ctrl, list(opt = "optim"))))
}
fit_ther <- function(formula, data) {
  tryCatch(lme(formula, random = ~ 1 | therapist, data = data, method = "REML",
               control = ctrl),
           error = function(e) lme(formula, random = ~ 1 | therapist, data = data,
                                   method = "REML", control = modifyList(ctrl, list(opt = "optim"))))
}
for (v in variables) for (r in roles) {
  s <- d[d$role == r & !is.na(d[[v]]), ]
  s$y <- s[[v]]
  s$therapist <- factor(s$therapist)
  s$dyad <- factor(s$dyad)
  m <- fit_lme(y ~ 1, s)
  vc <- as.numeric(VarCorr(m)[c(2, 4, 5), "Variance"])
  name <- paste("shares", v, r, sep = ":")
  add(name, "therapist", vc[1]); add(name, "dyad", vc[2]); add(name, "session", vc[3])
  add(name, "share:therapist", vc[1] / sum(vc)); add(name, "share:dyad", vc[2] / sum(vc))
  add(name, "share:session", vc[3] / sum(vc)); add(name, "logLik", as.numeric(logLik(m)))
}
dyad_means <- function(column, r) {
  s <- d[d$role == r & !is.na(d[[column]]), ]
  a <- aggregate(s[[column]], list(dyad = s$dyad), mean)
  names(a)[2] <- "value"
  a
}
ther <- unique(d[, c("dyad", "therapist")])
for (pr in roles) for (or in roles) {
  x <- dyad_means(predictor, pr); names(x)[2] <- "x"
  y <- dyad_means(outcome, or); names(y)[2] <- "y"
  f <- merge(merge(x, y, by = "dyad"), ther, by = "dyad")
  tm <- ave(f$x, f$therapist)
  centre <- mean(tapply(f$x, f$therapist, mean))
  f$within <- f$x - tm
  f$between <- tm - centre
  f$therapist <- factor(f$therapist)
  m <- fit_ther(y ~ within + between, f)
  b <- fixef(m); V <- vcov(m)
  L <- rbind(c(0, 1, 0), c(0, 0, 1), c(0, -1, 1))
  est <- as.numeric(L %*% b); se <- sqrt(diag(L %*% V %*% t(L)))
  name <- paste("association", pr, or, sep = ":")
  add(name, "within_therapist", est[1], se[1]); add(name, "therapist", est[2], se[2])
  add(name, "contextual", est[3], se[3]); add(name, "logLik", as.numeric(logLik(m)))
}
write.csv(do.call(rbind, out), args[2], row.names = FALSE)
