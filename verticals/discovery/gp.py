"""Gaussian-process regression for the small data sets formulation work usually has (tens to a few thousand
molecules): scikit-learn's `GaussianProcessRegressor` with

    k(x, x') = a * MinMax(Morgan counts) + b * RBF(scaled RDKit descriptors) + noise,

MinMax being the count version of Tanimoto similarity, sum(min) / sum(max). Amplitudes, the length scale and the
noise come from the marginal likelihood on the training molecules (no validation or test data is used), and the
predictive standard deviation is the uncertainty the conformal intervals are normalised by.

A fitted GP is stored as its training inputs, targets and kernel hyperparameters; loading re-solves the one
Cholesky factorisation (`optimizer=None`), so a reloaded model predicts exactly what the saved one did.
"""
from __future__ import annotations

import warnings
from collections import OrderedDict

import numpy as np
from sklearn.gaussian_process import GaussianProcessRegressor
from sklearn.gaussian_process.kernels import RBF, ConstantKernel, Kernel, WhiteKernel

_K_CACHE: "OrderedDict[tuple, np.ndarray]" = OrderedDict()


def minmax_similarity(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """sum(min(a, b)) / sum(max(a, b)) for non-negative count vectors, via the L1 distance:
    min + max = a + b and max - min = |a - b|. Two empty vectors count as identical."""
    from scipy.spatial.distance import cdist

    A, B = np.asarray(A, np.float64), np.asarray(B, np.float64)
    sa, sb = A.sum(1)[:, None], B.sum(1)[None, :]
    l1 = cdist(A, B, "cityblock")
    num, den = sa + sb - l1, sa + sb + l1
    return np.divide(num, den, out=np.ones_like(num), where=den > 0)


def _cached_minmax(X: np.ndarray, Y: np.ndarray | None) -> np.ndarray:
    # The optimiser re-evaluates the kernel on the same training block ~100 times (and clones the kernel each
    # time, so a per-instance cache would not survive): the MinMax block has no hyperparameters, compute it once.
    if Y is not None:
        return minmax_similarity(X, Y)
    key = (X.__array_interface__["data"][0], X.shape, float(X.sum()), float((X * np.arange(1, X.shape[1] + 1)).sum()))
    if key not in _K_CACHE:
        _K_CACHE[key] = minmax_similarity(X, X)
        while len(_K_CACHE) > 2:
            _K_CACHE.popitem(last=False)
    return _K_CACHE[key]


class MinMaxOn(Kernel):
    """MinMax similarity on the first `stop` columns (the Morgan counts); no hyperparameters."""

    def __init__(self, stop: int):
        self.stop = stop

    def __call__(self, X, Y=None, eval_gradient=False):
        X = np.atleast_2d(X)[:, : self.stop]
        K = _cached_minmax(np.ascontiguousarray(X), None if Y is None else np.atleast_2d(Y)[:, : self.stop])
        if eval_gradient:
            if Y is not None:
                raise ValueError("gradient can only be evaluated when Y is None")
            return K, np.empty((K.shape[0], K.shape[0], 0))
        return K

    def diag(self, X):
        return np.ones(np.atleast_2d(X).shape[0])

    def is_stationary(self):
        return False


class RBFOn(RBF):
    """scikit-learn's RBF on the columns from `start` on (the scaled descriptors)."""

    def __init__(self, start: int, length_scale=1.0, length_scale_bounds=(1e-2, 1e5)):
        super().__init__(length_scale=length_scale, length_scale_bounds=length_scale_bounds)
        self.start = start

    def __call__(self, X, Y=None, eval_gradient=False):
        X = np.atleast_2d(X)[:, self.start:]
        Y = None if Y is None else np.atleast_2d(Y)[:, self.start:]
        return super().__call__(X, Y, eval_gradient)

    def diag(self, X):
        return np.ones(np.atleast_2d(X).shape[0])


def make_kernel(n_counts: int, n_dense: int):
    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * MinMaxOn(n_counts)
    if n_dense:
        # descriptors are CDF-scaled to [-0.5, 0.5]: start at a length scale of sqrt(#descriptors) / 2
        kernel = kernel + ConstantKernel(1.0, (1e-3, 1e3)) * RBFOn(n_counts, length_scale=max(1.0, np.sqrt(n_dense) / 2))
    return kernel + WhiteKernel(0.1, (1e-5, 1e1))


class TanimotoGP:
    """One target. `fit(X, y)` with X = [Morgan counts | scaled dense features]; `predict(X) -> (mean, std)`."""

    def __init__(self, n_counts: int, seed: int = 0, restarts: int | None = None):
        self.n_counts, self.seed, self.restarts = int(n_counts), int(seed), restarts
        self.theta: list[float] | None = None
        self._gpr = None

    def fit(self, X: np.ndarray, y: np.ndarray, theta: list[float] | None = None) -> "TanimotoGP":
        X = np.asarray(X, np.float32).astype(np.float64)  # float32 first: what is saved reproduces exactly
        y = np.asarray(y, np.float64)
        kernel = make_kernel(self.n_counts, X.shape[1] - self.n_counts)
        if theta is not None:  # a saved model: its hyperparameters, one factorisation
            gpr = GaussianProcessRegressor(kernel.clone_with_theta(np.asarray(theta)), optimizer=None, normalize_y=True)
        else:
            restarts = self.restarts if self.restarts is not None else (3 if len(y) < 300 else 0)
            gpr = GaussianProcessRegressor(kernel, normalize_y=True, n_restarts_optimizer=restarts,
                                           random_state=self.seed)
        with warnings.catch_warnings():
            # a bound reached (e.g. the noise floor) is reported by sklearn as a ConvergenceWarning: not an error
            warnings.simplefilter("ignore")
            gpr.fit(X, y)
        self._gpr = gpr
        self.theta = [float(v) for v in gpr.kernel_.theta]
        self.X_train, self.y_train = X.astype(np.float32), y
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        X = np.asarray(X, np.float32).astype(np.float64)
        mean, std = self._gpr.predict(X, return_std=True)
        return np.asarray(mean), np.asarray(std)

    def hyperparameters(self) -> dict[str, float]:
        return {name: round(float(np.exp(v)), 5) for name, v in
                zip([h.name for h in self._gpr.kernel_.hyperparameters], self.theta)}
