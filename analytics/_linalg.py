"""Batched nested least squares for many small regressions at once.

The ADF regressions of a rolling window (or of a batch of simulated series) all have the
same shape, so they are solved together through the Cholesky factor of the column-scaled
cross-product matrix of ``[X | y]``. The last row of that factor holds ``Q'y`` of the thin
QR decomposition of ``X``, which gives the residual sum of squares of *every* nested model
``y ~ X[:, :j]`` at once, and the t-value of the last regressor of each of them.

Forming ``X'X`` squares the condition number, so columns are centred (when the model has
an intercept; by Frisch-Waugh-Lovell this is exact) and scaled to unit norm, and any
regression whose scaled cross-product matrix is still poorly conditioned is refitted with
a Householder QR of ``X`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A regressor whose share of variance not explained by the earlier columns (the squared
# pivot of the scaled factor) is below this is collinear with them: the fit is singular.
_COLLINEAR = 1e-12
# Below this pivot, or above this loss of digits when centring, the cross-product route
# could lose more than ~1e-10 relative accuracy; such fits are redone from the data.
_ILL_CONDITIONED = 1e-5
_CANCELLATION = 1e4


@dataclass(frozen=True)
class NestedFit:
    """Nested OLS fits of ``y`` on the leading columns of ``X``, for a batch.

    proj : (B, m) components of ``y`` along the orthogonalised regressors (scaled units).
    resid : (B,) residual sum of squares of the full model (scaled units).
    yscale : (B,) squared norm of the (centred) ``y``; scaled SSR * yscale = SSR.
    pivots : (B, m) share of each scaled regressor not explained by the earlier ones
        (``1 - R^2``); the model with the first ``j`` columns has full rank iff
        ``pivots[:, :j] > _COLLINEAR``. Because the factor comes from an orthogonal
        transformation, the SSRs of the full-rank leading models are valid even when a
        later column is collinear.
    """

    proj: np.ndarray
    resid: np.ndarray
    yscale: np.ndarray
    pivots: np.ndarray

    def ssr(self, ncols: np.ndarray) -> np.ndarray:
        """Scaled SSR of the models using the first ``ncols`` regressors; (B, len(ncols))."""
        sq = self.proj**2
        tail = np.cumsum(sq[:, ::-1], axis=1)[:, ::-1]  # tail[:, j] = sum_{i >= j} proj_i^2
        tail = np.concatenate([tail, np.zeros((tail.shape[0], 1))], axis=1)
        return tail[:, np.atleast_1d(ncols)] + self.resid[:, None]

    def full_rank(self, ncols: np.ndarray) -> np.ndarray:
        """(B, len(ncols)): whether the model with the first ``ncols`` columns has full rank."""
        ok = np.cumprod(self.pivots > _COLLINEAR, axis=1).astype(bool)
        ok = np.concatenate([np.ones((ok.shape[0], 1), dtype=bool), ok], axis=1)
        return ok[:, np.atleast_1d(ncols)]

    def take(self, mask: np.ndarray) -> NestedFit:
        return NestedFit(proj=self.proj[mask], resid=self.resid[mask],
                         yscale=self.yscale[mask], pivots=self.pivots[mask])

    @staticmethod
    def concat(parts: list[tuple[np.ndarray, NestedFit]], size: int, m: int) -> NestedFit:
        proj = np.full((size, m), np.nan)
        resid = np.full(size, np.nan)
        yscale = np.full(size, np.nan)
        pivots = np.zeros((size, m))
        for rows, fit in parts:
            proj[rows] = fit.proj
            resid[rows] = fit.resid
            yscale[rows] = fit.yscale
            pivots[rows] = fit.pivots
        return NestedFit(proj=proj, resid=resid, yscale=yscale, pivots=pivots)


def factor_gram(gram: np.ndarray, raw_diag: np.ndarray | None = None) -> tuple[NestedFit,
                                                                               np.ndarray]:
    """Factor centred cross-product matrices ``gram`` (B, m+1, m+1), ``y`` last.

    Returns the fit and a mask of entries that must be refitted from the data because the
    cross-product route is not accurate enough for them (ill-conditioned, or centring
    cancelled more than ``_CANCELLATION`` of the raw sums given in ``raw_diag``).
    """
    b, c, _ = gram.shape
    m = c - 1
    diag = np.diagonal(gram, axis1=1, axis2=2).copy()
    zero = ~(diag > 0.0)
    refit = np.asarray(zero[:, :m].any(axis=1))
    if raw_diag is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            refit |= np.any(raw_diag > _CANCELLATION * diag, axis=1)
    scale = 1.0 / np.sqrt(np.where(zero, 1.0, diag))
    g = gram * scale[:, :, None] * scale[:, None, :]
    chol = np.zeros_like(g)
    ok = np.flatnonzero(~refit)
    try:
        chol[ok] = np.linalg.cholesky(g[ok])
    except np.linalg.LinAlgError:
        for i in ok:
            try:
                chol[i] = np.linalg.cholesky(g[i])
            except np.linalg.LinAlgError:
                refit[i] = True
    with np.errstate(invalid="ignore"):
        piv = np.diagonal(chol, axis1=1, axis2=2)[:, :m] ** 2
    refit |= ~np.all(piv > _ILL_CONDITIONED, axis=1)
    fit = NestedFit(
        proj=chol[:, m, :m].copy(),
        resid=chol[:, m, m] ** 2,
        yscale=np.where(zero[:, m], 0.0, diag[:, m]),
        pivots=np.nan_to_num(piv),
    )
    return fit, refit


def nested_fit(design: np.ndarray, y: np.ndarray, *, center: bool) -> NestedFit:
    """Nested fits from the data: design (B, T, m), y (B, T)."""
    z = np.concatenate([design, y[:, :, None]], axis=2)
    if center:
        z = z - z.mean(axis=1, keepdims=True)
    m = design.shape[2]
    gram = np.matmul(z.transpose(0, 2, 1), z)
    fit, refit = factor_gram(gram)
    if not refit.any():
        return fit
    idx = np.flatnonzero(refit)
    norms = np.sqrt(np.einsum("btk,btk->bk", z[idx], z[idx]))
    zero = norms == 0.0
    zs = z[idx] / np.where(zero, 1.0, norms)[:, None, :]
    # Householder QR works on the data itself; its factor stays orthogonal even when a
    # column is collinear, so leading full-rank models keep valid SSRs.
    r_raw = np.asarray(np.linalg.qr(zs, mode="r"))
    d = np.diagonal(r_raw, axis1=1, axis2=2)
    r = r_raw * np.where(d < 0, -1.0, 1.0)[:, :, None]
    redo = NestedFit(
        proj=r[:, m, :m].copy(),
        resid=r[:, m, m] ** 2,
        yscale=norms[:, m] ** 2,
        pivots=np.where(zero[:, :m], 0.0, d[:, :m] ** 2),
    )
    keep = np.flatnonzero(~refit)
    return NestedFit.concat([(keep, fit.take(~refit)), (idx, redo)], design.shape[0], m)
