"""The mixed models against closed forms and against R (lme4 + lmerTest for random effects, nlme for
the unstructured MMRM, with its Satterthwaite df computed in R from nlme's apVar), on generated
cohorts: unilateral and bilateral, complete and with drop-out.

R is an optional system package (Debian ``r-base-core r-cran-lme4 r-cran-lmertest``): locally its
tests skip loudly without it; in CI (.ci/run installs it) a missing R fails them.
"""

from __future__ import annotations

import subprocess
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from hipanalytics.analysis.cohort import ConvergenceWarning, cohort_visits, mixed_model
from hipanalytics.analysis.mixed import fit_lmm, lmm_data
from hipanalytics.analysis.trial import analysis_windows, primary_analysis
from hipanalytics.synthetic import Assumptions, generate_clinic
from tests.system import rscript

# -- closed forms, no R needed ------------------------------------------------------------------


def balanced_one_way(seed=0, subjects=12, per=4):
    rng = np.random.default_rng(seed)
    b = rng.normal(0, 3, subjects)
    rows = [(f"S{i:02d}", b[i] + 10 + rng.normal(0, 1.5)) for i in range(subjects) for _ in range(per)]
    return pd.DataFrame(rows, columns=["subject", "y"])


def test_balanced_random_intercept_equals_the_anova_estimators():
    d = balanced_one_way()
    a, n = d["subject"].nunique(), 4
    means = d.groupby("subject")["y"].mean()
    msb = n * ((means - d["y"].mean()) ** 2).sum() / (a - 1)
    msw = ((d["y"] - d["subject"].map(means)) ** 2).sum() / (a * (n - 1))
    fit = fit_lmm(lmm_data(d, np.ones((len(d), 1)), ["mean"], y="y", subject="subject", random=[]))
    assert fit.sigma2 == pytest.approx(msw, rel=1e-6)
    assert fit.G[0, 0] == pytest.approx((msb - msw) / n, rel=1e-5)
    test = fit.test([1.0])
    assert test["estimate"] == pytest.approx(d["y"].mean())
    assert test["std_error"] == pytest.approx(np.sqrt(msb / (a * n)), rel=1e-5)
    assert test["df"] == pytest.approx(a - 1, rel=1e-3)  # Satterthwaite is exact here: the between-subject df


def test_saturated_mmrm_on_complete_data_is_ols_with_the_pooled_covariance():
    rng = np.random.default_rng(3)
    n, k = 30, 3
    cov = np.array([[9, 6, 5], [6, 10, 7], [5, 7, 12]], dtype=float)
    arm = np.repeat([0, 1], n // 2)
    values = rng.multivariate_normal([20, 22, 24], cov, n) + arm[:, None] * np.array([0, 1, 2])
    d = pd.DataFrame([(f"P{i}", w, arm[i], values[i, w]) for i in range(n) for w in range(k)],
                     columns=["patient", "window", "arm", "y"])
    X = np.column_stack([(d["window"] == w) * (d["arm"] == a) for a in (0, 1) for w in range(k)]).astype(float)
    fit = fit_lmm(lmm_data(d, X, [f"a{a}w{w}" for a in (0, 1) for w in range(k)], y="y", subject="patient",
                           unstructured="window"))
    cell_means = [values[arm == a, w].mean() for a in (0, 1) for w in range(k)]
    assert fit.beta == pytest.approx(cell_means, rel=1e-6)
    residuals = values - np.array([values[arm == a].mean(axis=0) for a in arm])
    pooled = residuals.T @ residuals / (n - 2)  # REML: n minus the two arms' means per window
    assert fit.G == pytest.approx(pooled, rel=1e-4)


def test_a_singular_random_slope_is_reported_and_the_fallback_says_the_ci_is_too_narrow():
    rng = np.random.default_rng(1)
    rows = []
    for i in range(20):  # every patient gains exactly 1 degree a week: no slope variance at all
        base = rng.normal(20, 4)
        rows += [(f"P{i:02d}", "left", w, "daily" if i % 2 else "three-per-week", base + w + rng.normal(0, 1))
                 for w in range(0, 8, 2)]
    d = pd.DataFrame(rows, columns=["patient_id", "side", "weeks", "schedule", "degrees"])
    with pytest.warns(ConvergenceWarning, match="random intercept only"):
        table = mixed_model(d)
    assert table["random_effects"].iloc[0] == "intercept"
    note = table["note"].iloc[0]
    assert "singular fit" in note and "too narrow" in note
    # the model that was fitted is clean, and says so
    assert not table["singular"].iloc[0] and table["converged"].all()


# -- against R ------------------------------------------------------------------------------------

R_SCRIPT = r"""
suppressMessages({library(lme4); library(lmerTest); library(nlme)})
# Satterthwaite df of each coefficient of an unstructured gls, computed here from nlme's own pieces:
# A = apVar, nlme's asymptotic covariance of the variance parameters (log((1 + r) / (1 - r)) per
# correlation, log variance ratios, log sigma), and the gradient of var(beta_k) over them by central
# differences, each point a gls with the covariance structure fixed there. df = 2 v^2 / (g' A g).
satterthwaite_gls <- function(f, form, d, ctl) {
  A <- f$apVar
  p0 <- attr(A, "Pars")
  nc <- length(coef(f$modelStruct$corStruct)); nv <- length(coef(f$modelStruct$varStruct))
  levels <- names(coef(f$modelStruct$varStruct, unconstrained = FALSE))
  cov_beta <- function(p) {
    g <- gls(form, data = d, method = "REML",
             correlation = corSymm(value = tanh(p[1:nc] / 2), form = ~ widx | patient_id, fixed = TRUE),
             weights = varIdent(form = ~ 1 | wf, fixed = setNames(as.list(exp(p[nc + 1:nv])), levels)), control = ctl)
    vcov(g) / g$sigma^2 * exp(2 * p[length(p)])
  }
  stopifnot(max(abs(cov_beta(p0) - vcov(f))) < 1e-8)
  h <- 1e-4
  steps <- lapply(seq_along(p0), function(k) {
    e <- replace(numeric(length(p0)), k, h)
    (diag(cov_beta(p0 + e)) - diag(cov_beta(p0 - e))) / (2 * h)
  })
  G <- do.call(cbind, steps)  # rows: coefficients, columns: variance parameters
  2 * diag(vcov(f))^2 / rowSums((G %*% A) * G)
}

args <- commandArgs(trailingOnly = TRUE)
out <- list()
for (path in args) {
  d <- read.csv(path)
  name <- basename(path)
  if (startsWith(name, "lmer")) {
    d$schedule <- relevel(factor(d$schedule), ref = "three-per-week")
    both <- max(tapply(d$side, d$patient_id, function(s) length(unique(s)))) > 1
    f <- if (both) lmer(degrees ~ schedule * weeks + (weeks | patient_id) + (1 | patient_id:side), data = d,
                        REML = TRUE, control = lmerControl(optimizer = "bobyqa"))
         else lmer(degrees ~ schedule * weeks + (weeks | patient_id), data = d, REML = TRUE,
                   control = lmerControl(optimizer = "bobyqa"))
    s <- summary(f)$coefficients
    vc <- as.data.frame(VarCorr(f))
    out[[name]] <- rbind(
      data.frame(file = name, kind = "fixed", term = rownames(s), estimate = s[, 1], se = s[, 2], df = s[, 3]),
      data.frame(file = name, kind = "vc", term = paste(vc$grp, vc$var1, vc$var2), estimate = vc$sdcor, se = NA,
                 df = NA),
      data.frame(file = name, kind = "singular", term = "", estimate = as.numeric(isSingular(f)), se = NA, df = NA))
  } else {
    d$widx <- as.integer(factor(d$window)); d$wf <- factor(d$window)
    daily <- as.numeric(d$schedule == "daily")
    later <- sort(unique(d$window[d$window > 0]))
    X <- cbind(sapply(later, function(k) as.numeric(d$window == k)), sapply(later, function(k) daily * (d$window == k)))
    colnames(X) <- c(paste0("w", later), paste0("d", later))
    d <- cbind(d, X)
    form <- as.formula(paste("degrees ~", paste(colnames(X), collapse = " + ")))
    ctl <- list(tolerance = 1e-10, msTol = 1e-10, maxIter = 500, msMaxIter = 500)
    both <- max(tapply(d$side, d$patient_id, function(s) length(unique(s)))) > 1
    f <- if (both) lme(form, random = ~ 1 | patient_id, data = d, method = "REML",
                       correlation = corSymm(form = ~ widx | patient_id / side), weights = varIdent(form = ~ 1 | wf),
                       control = do.call(lmeControl, c(ctl, niterEM = 100)))
         else gls(form, data = d, method = "REML", correlation = corSymm(form = ~ widx | patient_id),
                  weights = varIdent(form = ~ 1 | wf), control = do.call(glsControl, ctl))
    b <- if (both) fixef(f) else coef(f)
    df <- if (both) NA else satterthwaite_gls(f, form, d, ctl)
    out[[name]] <- rbind(
      data.frame(file = name, kind = "fixed", term = names(b), estimate = b, se = sqrt(diag(vcov(f))), df = df),
      data.frame(file = name, kind = "loglik", term = "", estimate = as.numeric(logLik(f)), se = NA, df = NA))
  }
}
write.csv(do.call(rbind, out), stdout(), row.names = FALSE)
"""


def cohorts() -> dict[str, pd.DataFrame]:
    """Visit tables of generated cohorts: unilateral and bilateral, complete and with drop-out."""
    complete = Assumptions(gain_sd=4.0, dropout_base=0, dropout_pain=0, dropout_no_progress=0,
                           dropout_no_progress_daily=0, weeks_min=8, weeks_max=8)
    dropout = replace(complete, dropout_base=0.05, dropout_pain=0.2, dropout_no_progress=0.2,
                      dropout_no_progress_daily=0.3, weeks_min=8, weeks_max=12)
    out = {}
    for label, assumptions, seed in (("complete", complete, 11), ("dropout", dropout, 12)):
        c = generate_clinic(60, seed=seed, assumptions=assumptions)
        v = cohort_visits(c["measurements"], c["patients"], c["programs"])
        both = set(c["patients"].loc[c["patients"]["involved_side"] == "both", "patient_id"])
        assert both, "the bilateral cohort needs patients with both hips involved"
        out[f"unilateral-{label}"] = v[~v["patient_id"].isin(both)].reset_index(drop=True)
        out[f"bilateral-{label}"] = v
    return out


@pytest.fixture(scope="module")
def against_r(tmp_path_factory):
    executable = rscript()
    folder = tmp_path_factory.mktemp("r-cross-check")
    data = cohorts()
    paths = []
    for name, v in data.items():
        v.to_csv(folder / f"lmer-{name}.csv", index=False)
        analysis_windows(v, 6).to_csv(folder / f"mmrm-{name}.csv", index=False)
        paths += [folder / f"lmer-{name}.csv", folder / f"mmrm-{name}.csv"]
    script = folder / "fit.R"
    script.write_text(R_SCRIPT)
    done = subprocess.run([executable, str(script), *map(str, paths)], capture_output=True, text=True, check=True)
    from io import StringIO

    return data, pd.read_csv(StringIO(done.stdout))


COHORTS = ["unilateral-complete", "unilateral-dropout", "bilateral-complete", "bilateral-dropout"]
R_FIXED = {"(Intercept)": "(Intercept)", "scheduledaily": "schedule=daily", "weeks": "weeks",
           "scheduledaily:weeks": "weeks x schedule=daily"}


@pytest.mark.parametrize("name", COHORTS)
def test_random_slope_model_matches_lme4_and_lmertest(against_r, name):
    data, r = against_r
    r = r[r["file"] == f"lmer-{name}.csv"]
    ours = mixed_model(data[name], random_slope=True)
    assert not ours["singular"].iloc[0] and ours["random_effects"].iloc[0].startswith("intercept + slope")
    assert r.loc[r["kind"] == "singular", "estimate"].iloc[0] == 0
    fixed = r[r["kind"] == "fixed"].assign(term=lambda t: t["term"].map(R_FIXED)).set_index("term")
    mine = ours[ours["effect"] == "fixed"].set_index("term").loc[fixed.index]
    assert mine["estimate"].to_numpy() == pytest.approx(fixed["estimate"].to_numpy(), rel=1e-4, abs=1e-4)
    assert mine["std_error"].to_numpy() == pytest.approx(fixed["se"].to_numpy(), rel=1e-3)
    assert mine["df"].to_numpy() == pytest.approx(fixed["df"].to_numpy(), rel=2e-2)
    vc = r[r["kind"] == "vc"]["estimate"].to_numpy()
    sd = ours[ours["effect"] == "random"].set_index("term")["estimate"]
    wanted = [sd["sd((Intercept) | patient)"], sd["sd(weeks | patient)"], sd["corr((Intercept), weeks | patient)"],
              sd["sd(residual)"]]
    if name.startswith("bilateral"):  # R lists patient_id:side first
        wanted = [sd["sd((Intercept) | side within patient)"], *wanted]
    assert np.array(wanted) == pytest.approx(vc, rel=5e-3, abs=5e-3)


@pytest.mark.parametrize("name", COHORTS)
def test_primary_mmrm_matches_nlme(against_r, name):
    data, r = against_r
    r = r[r["file"] == f"mmrm-{name}.csv"]
    primary = primary_analysis(data[name], 6)
    fit = primary.fit
    assert fit.data.unstructured and fit.converged
    assert fit.loglik == pytest.approx(r.loc[r["kind"] == "loglik", "estimate"].iloc[0], abs=1e-4)
    fixed = r[r["kind"] == "fixed"]
    assert fit.beta == pytest.approx(fixed["estimate"].to_numpy(), rel=1e-4, abs=1e-4)
    assert np.sqrt(np.diag(fit.cov_beta)) == pytest.approx(fixed["se"].to_numpy(), rel=1e-3)
    assert primary.estimate == pytest.approx(fixed.loc[fixed["term"] == "d6", "estimate"].iloc[0], abs=1e-4)
    if name.startswith("unilateral"):  # Satterthwaite df, computed in R from nlme's apVar (R_SCRIPT)
        assert fit.fixed_effects()["df"].to_numpy() == pytest.approx(fixed["df"].to_numpy(), rel=5e-3)
        assert primary.df == pytest.approx(fixed.loc[fixed["term"] == "d6", "df"].iloc[0], rel=5e-3)
