"""Multiple imputation of repeated measures: multivariate normal data augmentation, Rubin's rules.

The values of one patient over the analysis windows, ``Y`` (n patients by k windows, NaN where
missing), follow a multivariate normal regression ``Y = X B + E``, rows of ``E`` ~ N(0, Sigma)
(``X``: intercept, arm and any baseline covariates; ``B`` a coefficient per window, so each window
has its own mean per arm, as in the MMRM; ``Sigma`` unstructured). Imputations are drawn by data
augmentation (Tanner & Wong, JASA 1987; Schafer, *Analysis of Incomplete Multivariate Data*, 1997,
ch. 5-6): alternately, the missing values of each patient from their normal distribution given the
patient's observed values (I-step), and ``Sigma`` and ``B`` from their posterior given the completed
data under the non-informative prior ``|Sigma|^-(k+1)/2`` (P-step: ``Sigma ~ inverse Wishart(n - p,
S)``, ``vec(B) ~ N(vec(B_hat), Sigma (x) (X'X)^-1)``). Every missing value is drawn given *every*
observed value of its patient, earlier and later windows alike, so intermittent missingness is
imputed properly (a single sequential pass over the windows is not: it imputes an earlier window
without the later observed ones). The chain runs ``burn_in`` iterations, then one imputation is
kept every ``thin`` iterations.

Jump to reference (Carpenter, Roger & Kenward, J Biopharm Stat 2013;23:1352-1371): for the
patients given in ``reference``, the values missing after their last observed window are drawn with
the *reference* arm's mean (``X_reference``) for those windows, conditionally on the deviation of
their observed values from their own arm's mean: after drop-out they are assumed to lose the
advantage of their arm. Values missing between observed ones stay missing at random.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ..errors import HipAnalyticsError

__all__ = ["impute_mvn", "rubin"]


def impute_mvn(Y: np.ndarray, X: np.ndarray, *, imputations: int = 20, seed: int = 0, burn_in: int = 200,
               thin: int = 20, reference: np.ndarray | None = None,
               X_reference: np.ndarray | None = None) -> np.ndarray:
    """Draw ``imputations`` completed copies of ``Y`` (see the module doc).

    Parameters
    ----------
    Y : ndarray (n, k)
        Values with NaN for missing; each row needs at least one value.
    X : ndarray (n, p)
        The design of the mean (first column the intercept); complete.
    reference : ndarray (n,) of bool, optional
        Patients whose values after their last observed window are imputed jump-to-reference.
    X_reference : ndarray (n, p), optional
        Their design under the reference arm (``X`` with the arm column set to the reference).

    Returns
    -------
    ndarray (imputations, n, k)
        Observed values unchanged, missing ones drawn.

    Examples
    --------
    >>> rng = np.random.default_rng(1)
    >>> Y = rng.multivariate_normal([20, 25], [[16, 12], [12, 16]], 200)
    >>> Y[:60, 1] = np.nan
    >>> done = impute_mvn(Y, np.ones((200, 1)), imputations=3, seed=2)
    >>> done.shape, bool(np.isnan(done).any()), bool((done[:, 60:] == Y[60:]).all())
    ((3, 200, 2), False, True)
    """
    Y = np.asarray(Y, dtype=float)
    X = np.asarray(X, dtype=float)
    n, k = Y.shape
    p = X.shape[1]
    missing = np.isnan(Y)
    if missing.all(axis=1).any():
        raise HipAnalyticsError("multiple imputation: a patient without any observed value cannot be imputed")
    if n - p < k:
        raise HipAnalyticsError(f"multiple imputation: {n} patients are too few for {k} windows and {p} mean terms "
                                f"(needs at least {k + p})")
    seen = (~missing).sum(axis=0)
    if (seen < 2).any():
        raise HipAnalyticsError("multiple imputation: a window has fewer than 2 observed values")
    rng = np.random.default_rng(seed)
    XtX_inv = np.linalg.inv(X.T @ X)
    chol_x = np.linalg.cholesky(XtX_inv)
    # start: each column's observed mean; the first P-step then sees a full matrix
    filled = np.where(missing, np.nanmean(Y, axis=0), Y)
    after_last = np.zeros_like(missing)
    if reference is not None:
        last = k - 1 - np.argmax(~missing[:, ::-1], axis=1)
        after_last = (np.arange(k) > last[:, None]) & np.asarray(reference, dtype=bool)[:, None]
    out = np.empty((imputations, n, k))
    kept = 0
    for step in range(burn_in + thin * imputations):
        B_hat = XtX_inv @ X.T @ filled
        resid = filled - X @ B_hat
        sigma = stats.invwishart.rvs(df=n - p, scale=resid.T @ resid, random_state=rng)
        sigma = np.atleast_2d(sigma)
        B = B_hat + chol_x @ rng.standard_normal((p, k)) @ np.linalg.cholesky(sigma).T
        mean = X @ B
        filled = _draw_missing(Y, missing, mean, mean, sigma, rng)
        if step >= burn_in and (step - burn_in + 1) % thin == 0:
            out[kept] = (filled if not after_last.any() else
                         _draw_missing(Y, missing, mean, np.where(after_last, X_reference @ B, mean), sigma, rng))
            kept += 1
    return out


def _draw_missing(Y: np.ndarray, missing: np.ndarray, mean: np.ndarray, target: np.ndarray, sigma: np.ndarray,
                  rng: np.random.Generator) -> np.ndarray:
    """Each patient's missing values from N(target_m + S_mo S_oo^-1 (y_o - mean_o), S_mm - S_mo S_oo^-1 S_om)."""
    out = Y.copy()
    patterns, which = np.unique(missing, axis=0, return_inverse=True)
    for j, m in enumerate(patterns):
        if not m.any():
            continue
        rows = np.flatnonzero(which == j)
        o = ~m
        mu = target[np.ix_(rows, m)]
        cov = sigma[np.ix_(m, m)]
        if o.any():
            A = np.linalg.solve(sigma[np.ix_(o, o)], sigma[np.ix_(o, m)])
            mu = mu + (Y[np.ix_(rows, o)] - mean[np.ix_(rows, o)]) @ A
            cov = cov - sigma[np.ix_(m, o)] @ A
        L = np.linalg.cholesky(cov + 1e-10 * np.eye(len(cov)))
        out[np.ix_(rows, m)] = mu + rng.standard_normal((len(rows), int(m.sum()))) @ L.T
    return out


def rubin(estimates, variances, df_complete: float) -> dict:
    """Pool one estimate over imputations by Rubin's rules, with the Barnard-Rubin degrees of freedom
    (Biometrika 1999;86:948-955).

    Examples
    --------
    >>> r = rubin([1.0, 1.2, 0.8], [0.04, 0.04, 0.04], 50)
    >>> round(r["estimate"], 6), round(r["std_error"] ** 2, 6)
    (1.0, 0.093333)
    """
    q, u = np.asarray(estimates, dtype=float), np.asarray(variances, dtype=float)
    m = len(q)
    b = q.var(ddof=1) if m > 1 else 0.0
    total = u.mean() + (1 + 1 / m) * b
    lam = (1 + 1 / m) * b / total if total > 0 else 0.0
    df_obs = (df_complete + 1) / (df_complete + 3) * df_complete * (1 - lam)
    df = 1 / (1 / ((m - 1) / lam ** 2) + 1 / df_obs) if lam > 0 else df_obs
    se = float(np.sqrt(total))
    estimate = float(q.mean())
    half = stats.t.ppf(0.975, df) * se
    return {"estimate": estimate, "std_error": se, "df": float(df), "ci_low": estimate - half,
            "ci_high": estimate + half, "p_value": float(2 * stats.t.sf(abs(estimate / se), df)) if se > 0 else np.nan}
