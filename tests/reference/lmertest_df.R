# Satterthwaite df from lmerTest for a model lme4 can fit: role-specific correlated random
# intercepts, independent equal-variance residuals (apim: residual = "independent").
# Usage: Rscript lmertest_df.R DATA.csv OUT.csv
suppressMessages(library(lmerTest))
args <- commandArgs(TRUE)
d <- read.csv(args[1]); d$P <- 1 - d$role; d$T <- d$role
m <- lmer(y ~ 0 + P + T + P:x + P:xp + T:x + T:xp + P:w + T:w + (0 + P + T | dyad), data = d,
          REML = TRUE, control = lmerControl(optimizer = "nloptwrap",
                                             optCtrl = list(xtol_abs = 1e-12, ftol_abs = 1e-14)))
s <- summary(m)$coefficients
write.csv(data.frame(name = rownames(s), estimate = s[, "Estimate"], se = s[, "Std. Error"],
                     df = s[, "df"]), args[2], row.names = FALSE)
