"""The mixed models against closed forms and against R (lme4 + lmerTest for random effects, nlme for
the unstructured MMRM and the structured ones (Toeplitz, AR(1), compound symmetry, each also
heterogeneous), with their Satterthwaite df computed in R from nlme's apVar), on generated cohorts:
unilateral and bilateral, complete and with drop-out.

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
from hipanalytics.analysis.mixed import STRUCTURES, fit_lmm, lmm_data
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

R_SATTERTHWAITE = r"""
suppressMessages({library(lme4); library(lmerTest); library(nlme)})
# Satterthwaite df of each coefficient of a gls, computed here from nlme's own pieces:
# A = apVar, nlme's asymptotic covariance of the variance parameters (the correlation parameters:
# log((1 + r) / (1 - r)) per correlation for corSymm, the corStruct's unconstrained coefficients
# otherwise; log variance ratios; log sigma), and the gradient of var(beta_k) over them by central
# differences, each point a gls with the covariance structure fixed there (fixed_correlation(p): the
# correlation structure at correlation parameters p, fixed). df = 2 v^2 / (g' A g).
satterthwaite_gls <- function(f, form, d, ctl, fixed_correlation) {
  A <- f$apVar
  p0 <- attr(A, "Pars")
  vs <- f$modelStruct$varStruct
  nc <- length(coef(f$modelStruct$corStruct)); nv <- if (is.null(vs)) 0 else length(coef(vs))
  cov_beta <- function(p) {
    weights <- if (nv == 0) NULL else
      varIdent(form = ~ 1 | wf, fixed = setNames(as.list(exp(p[nc + 1:nv])), names(coef(vs, unconstrained = FALSE))))
    g <- gls(form, data = d, method = "REML", correlation = fixed_correlation(p[1:nc]), weights = weights,
             control = ctl)
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

# The primary analysis's design (trial.primary_analysis): a mean per window and arm, the baseline
# mean common to both arms; columns w2, w4, ... and d2, d4, ... (daily x window) beside `d`'s own.
mmrm_design <- function(d) {
  d$widx <- as.integer(factor(d$window)); d$wf <- factor(d$window)
  daily <- as.numeric(d$schedule == "daily")
  later <- sort(unique(d$window[d$window > 0]))
  X <- cbind(sapply(later, function(k) as.numeric(d$window == k)), sapply(later, function(k) daily * (d$window == k)))
  colnames(X) <- c(paste0("w", later), paste0("d", later))
  list(d = cbind(d, X), form = as.formula(paste("degrees ~", paste(colnames(X), collapse = " + "))))
}
"""

R_SCRIPT = R_SATTERTHWAITE + r"""
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
    design <- mmrm_design(d)
    d <- design$d; form <- design$form
    ctl <- list(tolerance = 1e-10, msTol = 1e-10, maxIter = 500, msMaxIter = 500)
    both <- max(tapply(d$side, d$patient_id, function(s) length(unique(s)))) > 1
    f <- if (both) lme(form, random = ~ 1 | patient_id, data = d, method = "REML",
                       correlation = corSymm(form = ~ widx | patient_id / side), weights = varIdent(form = ~ 1 | wf),
                       control = do.call(lmeControl, c(ctl, niterEM = 100)))
         else gls(form, data = d, method = "REML", correlation = corSymm(form = ~ widx | patient_id),
                  weights = varIdent(form = ~ 1 | wf), control = do.call(glsControl, ctl))
    b <- if (both) fixef(f) else coef(f)
    df <- if (both) NA else satterthwaite_gls(f, form, d, ctl, function(p)
      corSymm(value = tanh(p / 2), form = ~ widx | patient_id, fixed = TRUE))
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


def patient_windows(v: pd.DataFrame) -> pd.DataFrame:
    """The primary analysis's outcome: one value per patient and window, both hips averaged."""
    w = analysis_windows(v, 6)
    return (w.groupby(["patient_id", "window"], as_index=False)
            .agg(degrees=("degrees", "mean"), schedule=("schedule", "first")).assign(side="involved"))


@pytest.fixture(scope="module")
def cohort_data():
    return cohorts()


@pytest.fixture(scope="module")
def against_r(tmp_path_factory, cohort_data):
    executable = rscript()
    folder = tmp_path_factory.mktemp("r-cross-check")
    data = cohort_data
    paths = []
    for name, v in data.items():
        v.to_csv(folder / f"lmer-{name}.csv", index=False)
        patient_windows(v).to_csv(folder / f"mmrm-{name}.csv", index=False)
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
    # Satterthwaite df, computed in R from nlme's apVar (R_SCRIPT); one series per patient, both hips averaged
    assert fit.fixed_effects()["df"].to_numpy() == pytest.approx(fixed["df"].to_numpy(), rel=5e-3)
    assert primary.df == pytest.approx(fixed.loc[fixed["term"] == "d6", "df"].iloc[0], rel=5e-3)
    assert primary.covariance == "unstructured" and not primary.rejected


# -- covariance structures against nlme ---------------------------------------------------------------

STRUCTURES_R_SCRIPT = R_SATTERTHWAITE + r"""
# Every structured MMRM of mixed.STRUCTURES on each file: gls (one hip per patient; Satterthwaite df
# as above) or lme with a patient intercept (both hips). Toeplitz is corARMA(p = k - 1, q = 0), lags
# by window position; heterogeneous adds varIdent by window.
# nlme's optimiser: optim with a relative tolerance of 100 eps after the first iteration (nlminb's
# default stops ~1e-8 short in the log-likelihood); Nelder-Mead for corARMA, whose BFGS steps leave
# the stationary region. apVar's numerical Hessian with a relative step of 1e-4 (nlme's default,
# eps^(1/3) ~ 6e-6, moves heterogeneous Toeplitz's df by 1 %; 1e-4 and 1e-3 agree to 1e-3).
structure_correlation <- function(kind, k, both, value = NULL, fixed = FALSE) {
  series <- if (both) "patient_id / side" else "patient_id"
  g <- as.formula(paste(if (kind == "compound symmetry") "~ 1 |" else "~ pos |", series))
  if (is.null(value)) value <- if (kind == "toeplitz") rep(0, k - 1) else 0
  switch(kind,
         "toeplitz" = corARMA(value = value, p = k - 1, q = 0, form = g, fixed = fixed),
         "ar1" = corAR1(value = value, form = g, fixed = fixed),
         "compound symmetry" = corCompSymm(value = value, form = g, fixed = fixed))
}

args <- commandArgs(trailingOnly = TRUE)
structures <- strsplit(args[1], ",")[[1]]
out <- list()
for (path in args[-1]) {
  design <- mmrm_design(read.csv(path))
  d <- design$d; form <- design$form
  d$pos <- d$widx
  name <- basename(path)
  k <- nlevels(d$wf)
  both <- max(tapply(d$side, d$patient_id, function(s) length(unique(s)))) > 1
  for (structure in structures) {
    kind <- sub("heterogeneous ", "", structure)
    ctl <- list(tolerance = 1e-10, msTol = 1e-12, maxIter = 500, msMaxIter = 20000, opt = "optim", .relStep = 1e-4,
                optimMethod = if (kind == "toeplitz") "Nelder-Mead" else "BFGS")
    correlation <- structure_correlation(kind, k, both)
    weights <- if (startsWith(structure, "heterogeneous")) varIdent(form = ~ 1 | wf) else NULL
    f <- if (both) lme(form, random = ~ 1 | patient_id, data = d, method = "REML", correlation = correlation,
                       weights = weights, control = do.call(lmeControl, c(ctl, niterEM = 100)))
         else gls(form, data = d, method = "REML", correlation = correlation, weights = weights,
                  control = do.call(glsControl, ctl))
    b <- if (both) fixef(f) else coef(f)
    fitted <- f$modelStruct$corStruct
    fixed_correlation <- function(p) {  # the structure at unconstrained parameters p, fixed
      coef(fitted) <- p
      structure_correlation(kind, k, both, coef(fitted, unconstrained = FALSE), fixed = TRUE)
    }
    df <- if (both) NA else satterthwaite_gls(f, form, d, do.call(glsControl, ctl), fixed_correlation)
    value <- coef(fitted, unconstrained = FALSE)
    lag_corr <- switch(kind, "toeplitz" = ARMAacf(ar = value, lag.max = k - 1)[-1], "ar1" = value^(1:(k - 1)),
                       "compound symmetry" = rep(value, k - 1))
    ratio <- if (is.null(weights)) rep(1, k)
             else coef(f$modelStruct$varStruct, unconstrained = FALSE, allCoef = TRUE)[levels(d$wf)]
    row <- function(kind, term, estimate, se = NA, df = NA)
      data.frame(file = name, structure = structure, kind = kind, term = term, estimate = estimate, se = se, df = df)
    out[[paste(name, structure)]] <- rbind(
      row("fixed", names(b), b, sqrt(diag(vcov(f))), df),
      row("loglik", "", as.numeric(logLik(f))),
      row("sd", levels(d$wf), f$sigma * ratio),
      row("corr", paste("lag", 1:(k - 1)), lag_corr),
      row("tau", "", if (both) as.numeric(VarCorr(f)[1, "StdDev"]) else NA))
  }
}
write.csv(do.call(rbind, out), stdout(), row.names = FALSE)
"""

STRUCTURED = [s for s in STRUCTURES if s != "unstructured"]
STRUCTURE_COHORTS = ["unilateral-dropout", "bilateral-dropout"]


def structured_mmrm(visits: pd.DataFrame, structure: str, week: int = 6):
    """The primary analysis's MMRM (the design of :func:`primary_analysis`, and R's mmrm_design) with
    covariance ``structure`` over the windows."""
    w = analysis_windows(visits, week)
    later = [k for k in sorted(w["window"].unique()) if k > 0]
    daily = (w["schedule"] == "daily").to_numpy(dtype=float)
    columns = [np.ones(len(w))] + [(w["window"] == k).to_numpy(dtype=float) for k in later]
    columns += [daily * (w["window"] == k).to_numpy(dtype=float) for k in later]
    names = ["baseline mean"] + [f"week {k}" for k in later] + [f"daily x week {k}" for k in later]
    side = "side" if w.groupby("patient_id")["side"].nunique().max() > 1 else None
    return fit_lmm(lmm_data(w, np.column_stack(columns), names, y="degrees", subject="patient_id", side=side,
                            unstructured="window", structure=structure))


@pytest.fixture(scope="module")
def structures_against_r(tmp_path_factory, cohort_data):
    executable = rscript(("nlme",))
    folder = tmp_path_factory.mktemp("r-structures")
    paths = []
    for name in STRUCTURE_COHORTS:
        analysis_windows(cohort_data[name], 6).to_csv(folder / f"{name}.csv", index=False)
        paths.append(folder / f"{name}.csv")
    script = folder / "structures.R"
    script.write_text(STRUCTURES_R_SCRIPT)
    done = subprocess.run([executable, str(script), ",".join(STRUCTURED), *map(str, paths)], capture_output=True,
                          text=True, check=True)
    from io import StringIO

    fits = {(name, s): structured_mmrm(cohort_data[name], s) for name in STRUCTURE_COHORTS for s in STRUCTURED}
    return fits, pd.read_csv(StringIO(done.stdout))


@pytest.mark.parametrize("name", STRUCTURE_COHORTS)
@pytest.mark.parametrize("structure", STRUCTURED)
def test_structured_mmrm_matches_nlme(structures_against_r, name, structure):
    """One hip per patient: gls to 5 significant figures (nlme stops ~1e-10 short in the log-likelihood;
    ours is never lower); both hips: lme, whose optimiser stops up to ~2e-7 short, to 4."""
    fits, r = structures_against_r
    fit = fits[name, structure]
    r = r[(r["file"] == f"{name}.csv") & (r["structure"] == structure)]
    value = {kind: r.loc[r["kind"] == kind, "estimate"].to_numpy() for kind in ("loglik", "sd", "corr", "tau")}
    fixed = r[r["kind"] == "fixed"]
    assert fit.data.structure == structure and fit.converged and not fit.singular
    assert fit.loglik == pytest.approx(value["loglik"][0], abs=1e-6)
    assert fit.loglik >= value["loglik"][0] - 1e-9
    sd = np.sqrt(np.diag(fit.G))
    lag_corr = (fit.G / np.outer(sd, sd))[1:, 0]  # windows 2, 4, 6 with window 0: lags 1, 2, 3
    rel, corr_abs = (1e-5, 1e-5) if name.startswith("unilateral") else (1e-4, 5e-4)
    assert fit.beta == pytest.approx(fixed["estimate"].to_numpy(), rel=rel)
    assert np.sqrt(np.diag(fit.cov_beta)) == pytest.approx(fixed["se"].to_numpy(), rel=rel)
    assert sd == pytest.approx(value["sd"], rel=rel)
    assert lag_corr == pytest.approx(value["corr"], rel=rel, abs=corr_abs)
    if name.startswith("unilateral"):  # Satterthwaite df, computed in R from nlme's apVar
        assert fit.tau2 is None
        assert fit.fixed_effects()["df"].to_numpy() == pytest.approx(fixed["df"].to_numpy(), rel=2e-3)
    else:
        assert np.sqrt(fit.tau2) == pytest.approx(value["tau"][0], rel=rel)


@pytest.mark.parametrize("name", STRUCTURE_COHORTS)
@pytest.mark.parametrize("structure", STRUCTURED)
def test_structured_covariance_is_positive_definite_with_its_pattern(cohort_data, name, structure):
    fit = structured_mmrm(cohort_data[name], structure)
    G, k = fit.G, len(fit.data.windows)
    assert np.linalg.eigvalsh(G).min() > 0
    sd = np.sqrt(np.diag(G))
    corr = G / np.outer(sd, sd)
    lag = np.abs(np.subtract.outer(np.arange(k), np.arange(k)))
    lag_corr = np.array([corr[lag == j].mean() for j in range(k)])
    assert corr == pytest.approx(lag_corr[lag], abs=1e-12)  # every structure here is Toeplitz in its correlation
    heterogeneous = structure.startswith("heterogeneous")
    kind = structure.removeprefix("heterogeneous ")
    if kind == "ar1":
        assert lag_corr == pytest.approx(lag_corr[1] ** np.arange(k), abs=1e-12)
    if kind == "compound symmetry":
        assert lag_corr[1:] == pytest.approx(np.full(k - 1, lag_corr[1]), abs=1e-12)
    if not heterogeneous:
        assert sd == pytest.approx(np.full(k, np.sqrt(fit.sigma2)), rel=1e-12)
    n_correlation = {"toeplitz": k - 1, "ar1": 1, "compound symmetry": 1}[kind]
    assert fit.data.n_theta == n_correlation + (k - 1) * heterogeneous + name.startswith("bilateral")
    terms = fit.variance_components()["term"].tolist()
    expected = [f"sd(IR at week {w})" for w in fit.data.windows] if heterogeneous else ["sd(IR)"]
    expected += {"toeplitz": [f"corr(lag {j})" for j in range(1, k)], "ar1": ["corr(lag 1)"],
                 "compound symmetry": ["corr(compound symmetry)"]}[kind]
    expected += ["sd(patient, shared by both hips)"] if name.startswith("bilateral") else []
    assert terms == expected
    df = fit.fixed_effects()["df"]
    assert np.isfinite(df).all() and (df > 0).all()
    assert np.isfinite(fit.aic) and not fit.singular_reasons()


def test_toeplitz_from_partial_autocorrelations():
    """Durbin-Levinson: partial autocorrelations (phi, 0, 0) give AR(1)'s phi^lag, and any values in
    (-1, 1) a positive definite Toeplitz correlation matrix."""
    from scipy.linalg import toeplitz

    from hipanalytics.analysis.mixed import _durbin_levinson

    assert _durbin_levinson(np.array([0.7, 0, 0])) == pytest.approx(0.7 ** np.arange(1, 4))
    rng = np.random.default_rng(0)
    for _ in range(200):
        rho = _durbin_levinson(np.tanh(rng.normal(0, 2, 5)))
        assert np.linalg.eigvalsh(toeplitz(np.concatenate([[1], rho]))).min() > 0


def test_a_structure_needs_windows_and_a_known_name(cohort_data):
    w = analysis_windows(cohort_data["unilateral-dropout"], 6)
    X = np.ones((len(w), 1))
    with pytest.raises(ValueError, match="unknown covariance structure"):
        lmm_data(w, X, ["mean"], y="degrees", subject="patient_id", unstructured="window", structure="AR(1)")
    with pytest.raises(ValueError, match="needs the windows"):
        lmm_data(w, X, ["mean"], y="degrees", subject="patient_id", structure="ar1")
    plain = lmm_data(w, X, ["mean"], y="degrees", subject="patient_id", unstructured="window")
    assert plain.structure == "unstructured" and plain.unstructured and plain.mmrm
    ar1 = lmm_data(w, X, ["mean"], y="degrees", subject="patient_id", unstructured="window", structure="ar1")
    assert ar1.mmrm and not ar1.unstructured
