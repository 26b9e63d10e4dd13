# Test of distinguishability on the Kashy diary couples (Kenny, Kashy & Cook, 2006), ML:
# distinguishable two-intercept APIM (role-specific intercepts and effects, correlated role
# random intercepts, role-specific residual variances and the same-day correlation) against
# the indistinguishable APIM (one intercept and pooled effects, the two members' random
# intercepts with equal variances and a free covariance, pdCompSymm, equal residual
# variances and the same-day correlation). Satisfaction on conflict, split into the
# person mean (centred on the mean of the person means: per role in the distinguishable
# model, over both roles in the indistinguishable one) and the deviation from it; the
# partner's parts are the other member's same-day deviation and person mean.
#
# Usage: Rscript kashy_distinguishability.R kashy_person_period_pairwise.csv out.csv
suppressPackageStartupMessages(library(nlme))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1])
d$pm <- ave(d$conflict_A, d$dyadid, d$person, FUN = function(v) mean(v, na.rm = TRUE))
key <- paste(d$dyadid, d$person)
partner_key <- paste(d$dyadid, 3 - d$person)
pm_of <- tapply(d$pm, key, function(v) v[1])
d$pm_P <- as.numeric(pm_of[partner_key])
d$aW <- d$conflict_A - d$pm
d$pW <- d$conflict_P - d$pm_P
first <- !duplicated(key)
role_centre <- tapply(d$pm[first], d$person[first], mean, na.rm = TRUE)
pooled_centre <- mean(d$pm[first], na.rm = TRUE)
d$aB_role <- d$pm - role_centre[as.character(d$person)]
d$pB_role <- d$pm_P - role_centre[as.character(3 - d$person)]
d$aB <- d$pm - pooled_centre
d$pB <- d$pm_P - pooled_centre
d <- d[!is.na(d$satisf_A) & !is.na(d$aW) & !is.na(d$pW), ]
d <- d[order(d$dyadid, d$Day, d$person), ]
d$obsid <- d$Day + 14 * (d$dyadid - 1)
ctrl <- lmeControl(maxIter = 500, msMaxIter = 500, tolerance = 1e-10, niterEM = 100,
                   msMaxEval = 2000)
full <- lme(satisf_A ~ 0 + man + woman + man:aW + woman:aW + man:pW + woman:pW
            + man:aB_role + woman:aB_role + man:pB_role + woman:pB_role,
            random = list(dyadid = pdSymm(~ 0 + man + woman)),
            correlation = corCompSymm(form = ~ 1 | dyadid / obsid),
            weights = varIdent(form = ~ 1 | person), data = d, method = "ML",
            control = ctrl)
reduced <- lme(satisf_A ~ aW + pW + aB + pB,
               random = list(dyadid = pdCompSymm(~ 0 + man + woman)),
               correlation = corCompSymm(form = ~ 1 | dyadid / obsid),
               data = d, method = "ML", control = ctrl)
test <- anova(reduced, full)
ll_full <- as.numeric(logLik(full))
ll_reduced <- as.numeric(logLik(reduced))
k_full <- attr(logLik(full), "df")
k_reduced <- attr(logLik(reduced), "df")
chi2 <- 2 * (ll_full - ll_reduced)
rows <- data.frame(
  kind = c("loglik_full", "loglik_reduced", "df_full", "df_reduced", "chi2", "df", "p",
           "n_obs"),
  name = "",
  value = c(ll_full, ll_reduced, k_full, k_reduced, chi2, k_full - k_reduced,
            pchisq(chi2, k_full - k_reduced, lower.tail = FALSE), nrow(d)))
se <- sqrt(diag(vcov(reduced)))
rows <- rbind(rows,
              data.frame(kind = "fixed_reduced", name = names(fixef(reduced)),
                         value = unname(fixef(reduced))),
              data.frame(kind = "se_reduced", name = names(se), value = unname(se)))
vc <- as.numeric(VarCorr(reduced)[, "StdDev"][1])
g <- as.matrix(pdMatrix(reduced$modelStruct$reStruct$dyadid)) * reduced$sigma^2
rows <- rbind(rows, data.frame(
  kind = "var_reduced", name = c("dyad_sd", "dyad_cor", "residual_sd", "residual_cor"),
  value = c(sqrt(g[1, 1]), g[1, 2] / g[1, 1], reduced$sigma,
            coef(reduced$modelStruct$corStruct, unconstrained = FALSE))))
write.csv(rows, args[2], row.names = FALSE)
