"""Linear mixed models by REML, with the inference lme4 and lmerTest give.

The model is ``y = X beta + Z b + S s + e`` for each subject (patient): ``b`` the subject's random
intercept and slope (covariance ``G``), ``s`` a random intercept for each side within the subject
when both hips are measured (variance ``tau2``: the two hips of one patient share the patient's
effects and differ by their own), and ``e`` the residual (variance ``sigma2``). The choice of a
side-within-patient intercept, rather than treating the two hips as independent patients or
averaging them, keeps every visit value and lets the two hips of a patient be correlated, as they
are (documented in the cohort report's methods).

Fitting follows lme4 (Bates et al., J Stat Softw 2015;67(1)): the residual variance is profiled
out and the relative covariance factor ``theta`` (Cholesky of ``G / sigma2``, and ``tau / sigma``)
is optimised on the profiled REML (or ML) deviance, with non-negative diagonal. The covariance of
the fixed effects is ``(X' V^-1 X)^-1`` at the estimates (lme4's ``vcov``, not the joint observed
information), and tests of fixed effects and contrasts use t with Satterthwaite's degrees of
freedom computed as lmerTest does (Kuznetsova et al., J Stat Softw 2017;82(13)): ``df = 2 (L C L')^2
/ (g' A g)``, ``g`` the gradient of ``L C L'`` in the variance parameters ``(theta, sigma)`` and
``A`` twice the inverse Hessian of the REML deviance there. ``tests/analysis/test_mixed.py``
checks estimates, standard errors, variance components and degrees of freedom against R.

With ``unstructured=`` (a column of visit-window codes) the model is instead a mixed model for
repeated measures (MMRM; Mallinckrodt et al., Drug Inf J 2008;42:303-319): each hip's values over
the windows have an unstructured covariance ``U`` (a variance per window and a correlation per pair),
and when some patients have both hips measured, the two hips share a patient intercept (variance
``tau2``) on top. ``U = sigma2 L L'`` with ``L`` lower triangular and ``L[0, 0] = 1``, so sigma2 is
the first window's variance and profiles out as above. R's ``nlme::gls(correlation = corSymm,
weights = varIdent)`` fits the same unilateral model (the cross-check test compares them).

``structure=`` pre-specifies a structured ``U`` instead, for a trial whose primary analysis falls
back in a fixed order when the unstructured one cannot be estimated (Mallinckrodt et al. 2008;
names as SAS PROC MIXED's ``TYPE=``). With ``k`` windows, ``U = sigma2 D R D``: ``R`` a correlation
matrix, ``D`` the diagonal of each window's SD over the first window's (``D = I`` for a homogeneous
structure, where sigma2 is the common variance; otherwise sigma2 is the first window's variance and
the ``k - 1`` ratios are parameters, sign-free as lme4's theta), so sigma2 profiles out as above, and
the patient intercept shared by two hips adds to any structure. Lags count window *positions*
(consecutive windows are lag 1, whatever their codes), as SAS and R's ``mmrm`` do with equally spaced
visits; the analysis windows are equally spaced. Parameters of ``U`` (sigma2 included):

- ``"unstructured"`` (``UN``): ``k (k + 1) / 2``.
- ``"toeplitz"`` (``TOEP``): a correlation per lag, ``k``; ``"heterogeneous toeplitz"`` (``TOEPH``):
  ``2k - 1``. The lag correlations come from partial autocorrelations ``tanh(x)`` in (-1, 1) by
  Durbin-Levinson, which spans every positive definite Toeplitz correlation matrix (nlme's
  ``corARMA(p = k - 1)`` is the same model).
- ``"ar1"`` (``AR(1)``): correlation ``rho^lag``, ``rho = tanh(x)``, 2; ``"heterogeneous ar1"``
  (``ARH(1)``): ``k + 1``.
- ``"compound symmetry"`` (``CS``): one correlation ``rho`` in ``(-1 / (k - 1), 1)`` (a logistic
  map), 2; ``"heterogeneous compound symmetry"`` (``CSH``): ``k + 1``.

``theta`` is then the correlation parameters ``x``, the SD ratios and ``tau / sigma``; every value
gives a positive definite ``U``, so the optimisation is unconstrained.
``nlme::gls`` (``lme`` with a patient intercept for two hips) with ``corARMA(p = k - 1, q = 0)``,
``corAR1`` or ``corCompSymm`` over window positions, and ``varIdent`` by window when heterogeneous,
fits the same models (the cross-check tests compare estimates, SEs, variance parameters, the REML
log-likelihood and, for one hip, Satterthwaite's df).

A fit is *singular* when a variance is estimated at (near) zero, a correlation at (near) +/-1, or
``G`` is not positive definite: the model is then over-specified for the data, and its notes say
so (lme4 says "boundary (singular) fit").
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import HipAnalyticsError

__all__ = ["STRUCTURES", "LMMData", "LMMFit", "lmm_data", "fit_lmm"]

_LOG2PI = np.log(2 * np.pi)

#: The covariance structures over visit windows (``lmm_data(..., structure=)``), see the module doc.
STRUCTURES = ("unstructured", "toeplitz", "heterogeneous toeplitz", "ar1", "heterogeneous ar1",
              "compound symmetry", "heterogeneous compound symmetry")


@dataclass
class LMMData:
    """A model's data, padded per subject: ``y`` (N, m), ``X`` (N, m, p), ``Z`` (N, m, q), ``S`` (N, m, s)
    side indicators (s = 0 without sides), ``mask`` (N, m) of real rows; for an MMRM, ``W`` (N, m, k)
    window indicators and the covariance ``structure`` over the windows (one of :data:`STRUCTURES`)."""

    y: np.ndarray
    X: np.ndarray
    Z: np.ndarray
    S: np.ndarray
    mask: np.ndarray
    names: list[str]
    re_names: list[str]
    subjects: np.ndarray
    W: np.ndarray | None = None
    windows: list | None = None
    structure: str | None = None

    @property
    def mmrm(self) -> bool:
        """Whether the covariance is over visit windows (MMRM, any structure) rather than random effects."""
        return self.W is not None

    @property
    def unstructured(self) -> bool:
        """Whether the covariance is unstructured over windows (an MMRM with ``structure="unstructured"``)."""
        return self.mmrm and self.structure == "unstructured"

    @property
    def shared_patient(self) -> bool:
        """Whether the model has a variance shared by the hips of one patient (random effects: a
        side-within-patient intercept; MMRM: a patient intercept over both hips)."""
        if self.S.shape[2] == 0:
            return False
        if not self.mmrm:
            return True
        return bool((self.S.any(axis=1).sum(axis=1) > 1).any())

    @property
    def n_theta(self) -> int:
        if self.mmrm:
            return _n_window_parameters(self.structure, self.W.shape[2]) + int(self.shared_patient)
        q = self.Z.shape[2]
        return q * (q + 1) // 2 + int(self.shared_patient)

    @property
    def n(self) -> int:
        return int(self.mask.sum())

    @property
    def p(self) -> int:
        return self.X.shape[2]


def lmm_data(frame: pd.DataFrame, X: np.ndarray, names: list[str], *, y: str, subject: str,
             random: list[str] | None = None, side: str | None = None,
             unstructured: str | None = None, structure: str = "unstructured") -> LMMData:
    """Pad a long table and its fixed-effects design into per-subject arrays.

    Parameters
    ----------
    frame : DataFrame
        One row per observation; rows of a subject need not be adjacent.
    X : ndarray (n, p)
        The fixed-effects design, row for row with ``frame``.
    random : list of str
        Columns of ``frame`` with random slopes (besides the intercept), e.g. ``["weeks"]``;
        ``[]`` for a random intercept only.
    side : str, optional
        Column naming the side: adds a random intercept per side within subject (lme4's
        ``(1 | subject:side)``; for a subject measured on one side it adds to the subject's own).
        With ``unstructured``, each side is its own series and the sides of a subject share a
        subject intercept.
    unstructured : str, optional
        Column of visit-window codes: a covariance over the windows of each series (unstructured
        unless ``structure`` says otherwise) instead of random effects (an MMRM); ``random`` must
        then be empty. A series has at most one value per window.
    structure : str
        With ``unstructured``, the covariance over the windows: one of :data:`STRUCTURES` (see the
        module doc). Toeplitz and AR(1) lags count window positions in the sorted window codes
        (windows 0, 2, 4, 6: weeks 2 and 4 are lag 1 apart, weeks 0 and 6 lag 3), not code
        differences.
    """
    random = [] if random is None else list(random)
    if unstructured is not None and random:
        raise ValueError("an unstructured covariance takes no random slopes")
    if structure not in STRUCTURES:
        raise ValueError(f"unknown covariance structure {structure!r}: one of {', '.join(STRUCTURES)}")
    if unstructured is None and structure != "unstructured":
        raise ValueError("a covariance structure over windows needs the windows (unstructured=)")
    codes, subjects = pd.factorize(frame[subject], sort=True)
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=len(subjects))
    N, m, p = len(subjects), int(counts.max()), X.shape[1]
    position = np.empty(len(frame), dtype=int)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    position[order] = np.arange(len(frame)) - np.repeat(starts, counts)
    rows, cols = codes, position
    yy = np.zeros((N, m))
    XX = np.zeros((N, m, p))
    ZZ = np.zeros((N, m, 0 if unstructured else 1 + len(random)))
    mask = np.zeros((N, m), dtype=bool)
    yy[rows, cols] = frame[y].to_numpy(dtype=float)
    XX[rows, cols] = X
    if unstructured is None:
        ZZ[rows, cols, 0] = 1.0
        for k, column in enumerate(random, start=1):
            ZZ[rows, cols, k] = frame[column].to_numpy(dtype=float)
    mask[rows, cols] = True
    if side is not None:  # every (subject, side) its own intercept, as lme4's (1 | subject:side)
        sides = pd.Index(sorted(frame[side].unique()))
        SS = np.zeros((N, m, len(sides)))
        SS[rows, cols, sides.get_indexer(frame[side])] = 1.0
    elif unstructured is not None:  # one series per subject
        SS = np.zeros((N, m, 1))
        SS[rows, cols, 0] = 1.0
    else:
        SS = np.zeros((N, m, 0))
    WW, windows = None, None
    if unstructured is not None:
        windows = sorted(frame[unstructured].unique())
        WW = np.zeros((N, m, len(windows)))
        WW[rows, cols, pd.Index(windows).get_indexer(frame[unstructured])] = 1.0
        series = frame[[subject, unstructured] + ([side] if side else [])]
        if series.duplicated().any():
            raise ValueError("an unstructured covariance needs at most one value per series and window")
        if structure != "unstructured" and len(windows) < 2:
            raise ValueError(f"a {structure} covariance needs at least two windows")
    re_names = [] if unstructured is not None else ["(Intercept)", *random]
    return LMMData(yy, XX, ZZ, SS, mask, list(names), re_names, np.asarray(subjects), WW, windows,
                   structure if unstructured is not None else None)


@dataclass
class LMMFit:
    """A fitted model; :meth:`test` gives any linear combination of the fixed effects."""

    data: LMMData = field(repr=False)
    reml: bool
    theta: np.ndarray
    sigma2: float
    beta: np.ndarray
    cov_beta: np.ndarray
    loglik: float
    converged: bool
    notes: list[str]

    @property
    def names(self) -> list[str]:
        return self.data.names

    @property
    def q(self) -> int:
        return self.data.Z.shape[2]

    @property
    def G(self) -> np.ndarray:
        """Covariance of the subject's random effects (intercept, slopes); for an MMRM, the covariance
        ``U`` of one series over the windows."""
        if self.data.mmrm:
            lam = _window_factor(self.theta, self.data)
        else:
            lam = _lambda(self.theta, self.q)
        return self.sigma2 * lam @ lam.T

    @property
    def tau2(self) -> float | None:
        """Variance of the side-within-subject intercept (random effects) or of the patient intercept
        shared by both hips (MMRM); None when the model has none."""
        return self.sigma2 * self.theta[-1] ** 2 if self.data.shared_patient else None

    @property
    def singular(self) -> bool:
        return bool(self.singular_reasons())

    def singular_reasons(self) -> list[str]:
        """Why the fit is singular, in words (empty when it is not)."""
        reasons = []
        G = self.G
        sd = np.sqrt(np.clip(np.diag(G), 0, None))
        if self.data.mmrm:
            if np.linalg.eigvalsh(G).min() <= 1e-8 * np.trace(G):
                reasons.append("the covariance over the visit windows is not positive definite")
            if self.tau2 is not None and self.tau2 < 1e-8 * self.sigma2:
                reasons.append("the variance shared by the two hips of a patient is estimated at zero")
            return reasons
        for name, s in zip(self.data.re_names, sd):
            if s < 1e-4 * np.sqrt(self.sigma2) + 1e-8:
                reasons.append(f"the variance of the random {name.lower()} is estimated at zero")
        for i in range(self.q):
            for j in range(i):
                if sd[i] > 0 and sd[j] > 0 and abs(G[i, j] / (sd[i] * sd[j])) > 0.999:
                    reasons.append(f"the correlation of the random {self.data.re_names[j].lower()} and "
                                   f"{self.data.re_names[i].lower()} is estimated at "
                                   f"{G[i, j] / (sd[i] * sd[j]):+.3f}")
        if self.q > 1 and np.linalg.eigvalsh(G).min() <= 1e-10 * max(np.trace(G), 1e-12) and not reasons:
            reasons.append("the random-effects covariance is not positive definite")
        if self.tau2 is not None and self.tau2 < 1e-8 * self.sigma2:
            reasons.append("the side-within-patient variance is estimated at zero")
        return reasons

    @property
    def aic(self) -> float:
        k = self.data.p + len(self.theta) + 1
        return -2 * self.loglik + 2 * k

    def variance_components(self) -> pd.DataFrame:
        """Standard deviations and the correlation of the random effects, and the residual SD (MMRM:
        the SD at each window, or ``sd(IR)`` common to all for a homogeneous structure; the
        correlation of each pair of windows (unstructured), at each lag (``corr(lag 1)``, ...:
        Toeplitz), at lag 1 (AR(1)) or ``corr(compound symmetry)``; and the SD shared by the hips of a
        patient)."""
        G = self.G
        sd = np.sqrt(np.clip(np.diag(G), 0, None))
        if self.data.mmrm:
            labels = [f"week {w}" for w in self.data.windows]
            kind, heterogeneous = _structure(self.data.structure)
            corr = G / np.outer(sd, sd)
            if kind == "unstructured" or heterogeneous:
                rows = [{"term": f"sd(IR at {label})", "estimate": s} for label, s in zip(labels, sd)]
            else:
                rows = [{"term": "sd(IR)", "estimate": sd[0]}]
            if kind == "unstructured":
                rows += [{"term": f"corr({labels[j]}, {labels[i]})", "estimate": corr[i, j]}
                         for i in range(len(labels)) for j in range(i)]
            elif kind == "compound symmetry":
                rows.append({"term": "corr(compound symmetry)", "estimate": corr[1, 0]})
            else:
                lags = range(1, len(labels) if kind == "toeplitz" else 2)
                rows += [{"term": f"corr(lag {lag})", "estimate": corr[lag, 0]} for lag in lags]
            if self.tau2 is not None:
                rows.append({"term": "sd(patient, shared by both hips)", "estimate": np.sqrt(self.tau2)})
            return pd.DataFrame(rows)
        rows = [{"term": f"sd({name} | patient)", "estimate": s} for name, s in zip(self.data.re_names, sd)]
        for i in range(self.q):
            for j in range(i):
                corr = G[i, j] / (sd[i] * sd[j]) if sd[i] > 0 and sd[j] > 0 else np.nan
                rows.append({"term": f"corr({self.data.re_names[j]}, {self.data.re_names[i]} | patient)",
                             "estimate": corr})
        if self.tau2 is not None:
            rows.append({"term": "sd((Intercept) | side within patient)", "estimate": np.sqrt(self.tau2)})
        rows.append({"term": "sd(residual)", "estimate": np.sqrt(self.sigma2)})
        return pd.DataFrame(rows)

    def test(self, L) -> dict:
        """Estimate, SE, Satterthwaite df, t, p and 95 % CI of the combination ``L' beta``."""
        from scipy import stats

        L = np.asarray(L, dtype=float)
        estimate = float(L @ self.beta)
        var = float(L @ self.cov_beta @ L)
        se = np.sqrt(var)
        df = self.satterthwaite(L)
        t = estimate / se if se > 0 else np.nan
        p = 2 * stats.t.sf(abs(t), df) if np.isfinite(df) else np.nan
        half = stats.t.ppf(0.975, df) * se if np.isfinite(df) else np.nan
        return {"estimate": estimate, "std_error": se, "df": df, "t": t, "p_value": p,
                "ci_low": estimate - half, "ci_high": estimate + half}

    def fixed_effects(self) -> pd.DataFrame:
        """One row per fixed effect: estimate, SE, Satterthwaite df, t, p, 95 % CI."""
        rows = []
        for k, name in enumerate(self.names):
            L = np.zeros(self.data.p)
            L[k] = 1
            rows.append({"term": name, **self.test(L)})
        return pd.DataFrame(rows)

    # -- Satterthwaite ----------------------------------------------------------------------

    def satterthwaite(self, L) -> float:
        """Satterthwaite's degrees of freedom of ``L' beta`` (lmerTest's method)."""
        if not hasattr(self, "_A"):
            self._varpar = np.concatenate([self.theta, [np.sqrt(self.sigma2)]])
            hessian = _hessian(lambda v: _deviance_full(self.data, v, reml=True), self._varpar)
            try:
                self._A = 2 * np.linalg.inv(hessian)
            except np.linalg.LinAlgError:
                self._A = np.full_like(hessian, np.nan)
            self._grads = _jacobian_cov(self.data, self._varpar)  # (k, p, p): dC/dvarpar_k
        L = np.asarray(L, dtype=float)
        var = float(L @ self.cov_beta @ L)
        g = np.array([L @ dC @ L for dC in self._grads])
        denominator = float(g @ self._A @ g)
        if not np.isfinite(denominator) or denominator <= 0:
            return np.nan
        return 2 * var ** 2 / denominator


def _lambda(theta: np.ndarray, q: int) -> np.ndarray:
    lam = np.zeros((q, q))
    lam[np.tril_indices(q)] = theta[: q * (q + 1) // 2]
    return lam


def _un_factor(theta: np.ndarray, k: int) -> np.ndarray:
    """The unstructured covariance's factor: lower triangular, ``L[0, 0] = 1``."""
    lam = np.zeros((k, k))
    lam[np.tril_indices(k)] = np.concatenate([[1.0], theta[: k * (k + 1) // 2 - 1]])
    return lam


def _structure(structure: str) -> tuple[str, bool]:
    """A structure's correlation pattern (unstructured, toeplitz, ar1, compound symmetry) and whether
    its variance differs by window."""
    kind = structure.removeprefix("heterogeneous ")
    return kind, kind != structure


def _n_correlation(kind: str, k: int) -> int:
    """The number of correlation parameters of a pattern over ``k`` windows (unstructured: all of the
    factor but its first entry)."""
    return {"unstructured": k * (k + 1) // 2 - 1, "toeplitz": k - 1}.get(kind, 1)


def _n_window_parameters(structure: str, k: int) -> int:
    """The number of parameters of ``U / sigma2`` (theta, without the shared patient intercept)."""
    kind, heterogeneous = _structure(structure)
    return _n_correlation(kind, k) + (k - 1) * heterogeneous


def _durbin_levinson(partial: np.ndarray) -> np.ndarray:
    """Autocorrelations at lags 1..p of the stationary AR(p) with partial autocorrelations ``partial``
    (each in (-1, 1)): the Durbin-Levinson recursion run backwards."""
    rho, phi = np.zeros(len(partial)), np.zeros(0)
    for j, pj in enumerate(partial):
        innovation = 1 - phi @ rho[:j]  # the order-j prediction error variance
        rho[j] = phi @ rho[:j][::-1] + pj * innovation
        phi = np.concatenate([phi - pj * phi[::-1], [pj]])
    return rho


def _window_factor(theta: np.ndarray, data: LMMData) -> np.ndarray:
    """A factor ``F`` of the covariance over the windows over sigma2, ``U / sigma2 = F F'``."""
    k = data.W.shape[2]
    kind, heterogeneous = _structure(data.structure)
    if kind == "unstructured":
        return _un_factor(theta, k)
    x = theta[: _n_correlation(kind, k)]
    if kind == "ar1":
        lag_corr = np.tanh(x[0]) ** np.arange(1, k)
    elif kind == "toeplitz":
        lag_corr = _durbin_levinson(np.tanh(x))
    else:  # compound symmetry: rho in (-1 / (k - 1), 1)
        lag_corr = np.full(k - 1, (k / (1 + np.exp(-x[0])) - 1) / (k - 1))
    lags = np.abs(np.subtract.outer(np.arange(k), np.arange(k)))
    R = np.concatenate([[1.0], lag_corr])[lags]
    sd = np.ones(k)
    if heterogeneous:
        sd[1:] = theta[len(x): len(x) + k - 1]
    return sd[:, None] * np.linalg.cholesky(R)


def _v0(data: LMMData, theta: np.ndarray) -> np.ndarray:
    """The covariance of each subject's values over sigma2 (identity on padding rows)."""
    m = data.mask
    if data.mmrm:
        WL = data.W @ _window_factor(theta, data)
        same_series = data.S @ data.S.transpose(0, 2, 1)
        V = (WL @ WL.transpose(0, 2, 1)) * same_series
        if data.shared_patient:
            V = V + theta[-1] ** 2
        V = V * (m[:, :, None] & m[:, None, :])
        diagonal = np.arange(V.shape[1])
        V[:, diagonal, diagonal] += ~m  # padding rows: identity, no part in the likelihood
        return V
    lam = _lambda(theta, data.Z.shape[2])
    ZL = data.Z @ lam
    V = ZL @ ZL.transpose(0, 2, 1)
    if data.S.shape[2]:
        V = V + theta[-1] ** 2 * (data.S @ data.S.transpose(0, 2, 1))
    V = V * (m[:, :, None] & m[:, None, :])
    return V + np.eye(V.shape[1])[None]


def _solve_parts(data: LMMData, theta: np.ndarray):
    """The log-determinant of V0 (see :func:`_v0`) and V0^-1 X, V0^-1 y."""
    V = _v0(data, theta)
    chol = np.linalg.cholesky(V)
    logdet = 2 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum()
    Vinv_X = np.linalg.solve(V, data.X)
    Vinv_y = np.linalg.solve(V, data.y[:, :, None])[:, :, 0]
    return logdet, Vinv_X, Vinv_y


def _gls(data: LMMData, theta: np.ndarray):
    logdet, Vinv_X, Vinv_y = _solve_parts(data, theta)
    XtVX = np.einsum("nmp,nmk->pk", data.X, Vinv_X)
    XtVy = np.einsum("nmp,nm->p", data.X, Vinv_y)
    beta = np.linalg.solve(XtVX, XtVy)
    r = data.y - np.einsum("nmp,p->nm", data.X, beta)
    rVr = float(np.einsum("nm,nm->", r, Vinv_y - np.einsum("nmp,p->nm", Vinv_X, beta)))
    return logdet, XtVX, beta, rVr


def _profiled(data: LMMData, theta: np.ndarray, reml: bool) -> float:
    """The deviance with sigma profiled out (what the optimiser minimises)."""
    try:
        logdet, XtVX, _, rVr = _gls(data, theta)
    except np.linalg.LinAlgError:
        return np.inf
    n, p = data.n, data.p
    if reml:
        sign, logdet_x = np.linalg.slogdet(XtVX)
        dof = n - p
        return float(logdet + logdet_x + dof * (1 + np.log(2 * np.pi * rVr / dof)))
    return float(logdet + n * (1 + np.log(2 * np.pi * rVr / n)))


def _deviance_full(data: LMMData, varpar: np.ndarray, *, reml: bool) -> float:
    """-2 log-likelihood at (theta, sigma) (REML or ML), not profiled."""
    theta, sigma = varpar[:-1], varpar[-1]
    logdet0, XtVX0, _, rVr0 = _gls(data, theta)
    n, p = data.n, data.p
    s2 = sigma ** 2
    dev = logdet0 + n * np.log(s2) + rVr0 / s2
    if reml:
        dev += np.linalg.slogdet(XtVX0 / s2)[1] + (n - p) * _LOG2PI
    else:
        dev += n * _LOG2PI
    return float(dev)


def _hessian(f, x: np.ndarray) -> np.ndarray:
    """Central-difference Hessian with Richardson extrapolation (two step sizes)."""
    def once(h):
        k = len(x)
        H = np.zeros((k, k))
        f0 = f(x)
        for i in range(k):
            ei = np.zeros(k)
            ei[i] = h[i]
            H[i, i] = (f(x + ei) - 2 * f0 + f(x - ei)) / h[i] ** 2
            for j in range(i):
                ej = np.zeros(k)
                ej[j] = h[j]
                H[i, j] = H[j, i] = (f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej) + f(x - ei - ej)) / (
                    4 * h[i] * h[j])
        return H

    h = 1e-3 * np.maximum(np.abs(x), 0.1)
    return (4 * once(h / 2) - once(h)) / 3


def _jacobian_cov(data: LMMData, varpar: np.ndarray) -> np.ndarray:
    """d/dvarpar_k of C = (X' V^-1 X)^-1 (central differences with Richardson extrapolation)."""
    def cov(v):
        _, XtVX0, _, _ = _gls(data, v[:-1])
        return v[-1] ** 2 * np.linalg.inv(XtVX0)

    grads = []
    for k in range(len(varpar)):
        h = 1e-4 * max(abs(varpar[k]), 0.1)

        def diff(step):
            e = np.zeros(len(varpar))
            e[k] = step
            return (cov(varpar + e) - cov(varpar - e)) / (2 * step)

        grads.append((4 * diff(h / 2) - diff(h)) / 3)
    return np.array(grads)


def _starts(data: LMMData) -> tuple[list[np.ndarray], list[int]]:
    """Starting values of theta for the optimiser, and the positions of the (non-negative) diagonal."""
    if data.unstructured:
        k = data.W.shape[2]
        diag = [i * (i + 1) // 2 + i - 1 for i in range(1, k)]
        starts = []
        for rho in (0.6, 0.2):
            factor = np.linalg.cholesky((1 - rho) * np.eye(k) + rho)
            start = factor[np.tril_indices(k)][1:]
            starts.append(np.concatenate([start, [0.5]]) if data.shared_patient else start)
    elif data.mmrm:  # correlation rho (Toeplitz: AR(1)'s, partial autocorrelations beyond lag 1 zero), equal SDs
        k = data.W.shape[2]
        kind, heterogeneous = _structure(data.structure)
        nc = _n_correlation(kind, k)
        diag = list(range(nc, data.n_theta - data.shared_patient))  # the SD ratios
        starts = []
        for rho in (0.6, 0.2):
            cs = kind == "compound symmetry"
            x = np.log((1 + (k - 1) * rho) / ((k - 1) * (1 - rho))) if cs else np.arctanh(rho)
            starts.append(np.concatenate([[x], np.zeros(nc - 1), np.ones(len(diag)),
                                          [0.5] * data.shared_patient]))
    else:
        q = data.Z.shape[2]
        diag = [i * (i + 1) // 2 + i for i in range(q)]
        starts = []
        for scale in (1.0, 0.3):
            start = np.zeros(data.n_theta)
            start[diag] = scale
            if data.shared_patient:
                start[-1] = scale
            starts.append(start)
    if data.shared_patient:
        diag = [*diag, data.n_theta - 1]
    return starts, diag


def _canonical(theta: np.ndarray, data: LMMData, diag: list[int]) -> np.ndarray:
    """The same covariance with a non-negative diagonal in the factor (each column with a negative
    diagonal mirrored), as lme4 reports it."""
    theta = theta.copy()
    if data.unstructured:
        k = data.W.shape[2]
        lam = _un_factor(theta, k)
        lam = lam * np.where(np.diag(lam) < 0, -1.0, 1.0)[None, :]
        theta[: k * (k + 1) // 2 - 1] = lam[np.tril_indices(k)][1:]
    elif data.mmrm:  # a window's SD ratio enters squared
        theta[diag] = np.abs(theta[diag])
    else:
        q = data.Z.shape[2]
        lam = _lambda(theta, q)
        lam = lam * np.where(np.diag(lam) < 0, -1.0, 1.0)[None, :]
        theta[: q * (q + 1) // 2] = lam[np.tril_indices(q)]
    if data.shared_patient:
        theta[-1] = abs(theta[-1])
    return theta


def fit_lmm(data: LMMData, *, reml: bool = True) -> LMMFit:
    """Fit by (RE)ML: optimise the relative covariance factor on the profiled deviance.

    Raises
    ------
    HipAnalyticsError
        When the fixed-effects design is rank deficient (e.g. one arm only).
    """
    from scipy import optimize

    X2 = data.X[data.mask]
    if np.linalg.matrix_rank(X2) < data.p:
        raise HipAnalyticsError("the mixed model's fixed effects cannot all be estimated from these data "
                                "(a group or time point without observations)")
    starts, diag = _starts(data)

    def objective(theta):
        return _profiled(data, theta, reml)

    # Unconstrained: the covariance depends on the factor only through L L' (and tau through tau^2),
    # so a negative diagonal is as good as its mirror, and a zero variance is reachable. (Bounds on
    # the diagonal, as lme4 sets them, left L-BFGS-B short of the optimum of unstructured models.)
    best = None
    with np.errstate(invalid="ignore", over="ignore"):  # a trial step may make V singular: deviance inf
        for start in starts:
            candidate = optimize.minimize(objective, start, method="BFGS", options={"gtol": 1e-7, "maxiter": 5000})
            if data.n_theta <= 4:  # a simplex polish finds lme4's optimum where the gradient method stops short
                polished = optimize.minimize(objective, candidate.x, method="Nelder-Mead",
                                             options={"xatol": 1e-9, "fatol": 1e-11, "maxiter": 4000})
                if polished.fun < candidate.fun:
                    candidate = polished
            if best is None or candidate.fun < best.fun - 1e-9:
                best = candidate
    theta = _canonical(np.array(best.x, dtype=float), data, diag)
    logdet, XtVX, beta, rVr = _gls(data, theta)
    dof = data.n - data.p if reml else data.n
    sigma2 = rVr / dof
    cov_beta = sigma2 * np.linalg.inv(XtVX)
    loglik = -0.5 * _deviance_full(data, np.concatenate([theta, [np.sqrt(sigma2)]]), reml=reml)
    notes = []
    with np.errstate(invalid="ignore", over="ignore"):
        gradient = optimize.approx_fprime(theta, objective, 1e-7)
    converged = bool(best.success) or bool(np.all(np.abs(gradient) < 1e-3))
    if not converged:  # lme4's check (checkConv): the gradient scaled by the Hessian, i.e. the Newton step,
        # which stays meaningful where a large deviance makes the finite-difference gradient noisy
        with np.errstate(invalid="ignore", over="ignore"):
            try:
                step = np.linalg.solve(_hessian(objective, theta), gradient)
                converged = bool(np.all(np.isfinite(step)) and np.abs(step).max() < 2e-3)
            except np.linalg.LinAlgError:
                pass
    if not converged:
        notes.append(f"the optimiser stopped without converging ({best.message})")
    fit = LMMFit(data, reml, theta, float(sigma2), beta, cov_beta, float(loglik), converged, notes)
    fit.notes += [f"singular fit: {r}" for r in fit.singular_reasons()]
    return fit
