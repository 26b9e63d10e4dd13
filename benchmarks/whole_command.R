# The job `apim fit` does, in R: read the CSV, split the predictor into within- and
# between-person parts (person mean; role mean of the person means), build the partner
# columns, fit the distinguishable APIM with nlme (random role intercepts, role-specific
# residual variances and same-session correlation, REML) and print the summary.
# Usage: Rscript whole_command.R DATA.csv   (columns dyad, session, role, x, y)
suppressMessages(library(nlme))
d <- read.csv(commandArgs(TRUE)[1])
d$pm <- ave(d$x, d$dyad, d$role)
person <- unique(d[, c("dyad", "role", "pm")])
role_mean <- tapply(person$pm, person$role, mean)
d$ab <- d$pm - role_mean[as.character(d$role)]
d$aw <- d$x - d$pm
partner <- data.frame(dyad = d$dyad, session = d$session, role = 1 - d$role, pw = d$aw,
                      pb = d$ab)
d <- merge(d, partner, by = c("dyad", "session", "role"))
d$P <- 1 - d$role; d$T <- d$role; d$rolef <- factor(d$role, levels = c(0, 1))
m <- lme(y ~ 0 + P + T + P:aw + P:pw + P:ab + P:pb + T:aw + T:pw + T:ab + T:pb,
         random = list(dyad = pdSymm(~ 0 + P + T)),
         correlation = corCompSymm(form = ~ 1 | dyad/session),
         weights = varIdent(form = ~ 1 | rolef), data = d, method = "REML",
         control = lmeControl(maxIter = 200, msMaxIter = 200))
print(summary(m))
