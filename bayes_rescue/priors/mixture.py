"""Normal mixtures fitted to draws by EM: how a posterior (or a MAP prediction) becomes a prior file.

The number of components is chosen by BIC (Schwarz 1978) over 1..``max_k``; the approximation is reported
as the Kolmogorov-Smirnov distance to the draws and the largest error of the 2.5/50/97.5% quantiles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

_HALF_LOG_2PI = 0.5 * np.log(2 * np.pi)


@dataclass(frozen=True)
class Mixture:
    """A 1-D normal mixture fitted by EM."""

    weights: np.ndarray
    means: np.ndarray
    sds: np.ndarray
    loglik: float

    def cdf(self, x):
        x = np.asarray(x, float)[..., None]
        return (self.weights * stats.norm.cdf(x, self.means, self.sds)).sum(-1)

    def bic(self, n: int) -> float:
        return -2 * self.loglik + (3 * len(self.weights) - 1) * np.log(n)


def fit_normal_mixture(x: np.ndarray, k: int, *, iters: int = 1000, tol: float = 1e-8) -> Mixture:
    """EM for a k-component 1-D normal mixture; deterministic start at quantiles of ``x``."""
    x = np.asarray(x, float)
    n = x.size
    means = np.quantile(x, (np.arange(k) + 0.5) / k)
    sds = np.full(k, x.std() / max(1, k))
    w = np.full(k, 1 / k)
    prev = -np.inf
    for _ in range(iters):
        zs = (x[:, None] - means) / sds
        logp = np.log(w) - 0.5 * zs * zs - np.log(sds) - _HALF_LOG_2PI
        m = logp.max(1, keepdims=True)
        ll = float((m[:, 0] + np.log(np.exp(logp - m).sum(1))).sum())
        r = np.exp(logp - m)
        r /= r.sum(1, keepdims=True)
        nk = r.sum(0)
        w = nk / n
        means = (r * x[:, None]).sum(0) / nk
        sds = np.sqrt(np.maximum((r * (x[:, None] - means) ** 2).sum(0) / nk, 1e-8))
        if ll - prev < tol * n:
            break
        prev = ll
    order = np.argsort(-w)
    return Mixture(w[order], means[order], sds[order], ll)


def approximate(draws: np.ndarray, *, max_k: int = 3) -> tuple[Mixture, dict[str, float]]:
    """Best mixture by BIC (1..max_k components) and its approximation error against the draws:
    Kolmogorov-Smirnov distance, and the largest absolute difference of the 2.5/50/97.5% quantiles."""
    fits = [fit_normal_mixture(draws, k) for k in range(1, max_k + 1)]
    best = min(fits, key=lambda f: f.bic(draws.size))
    ks = float(stats.kstest(draws, best.cdf).statistic)
    qs = np.quantile(draws, [0.025, 0.5, 0.975])
    grid = np.linspace(draws.min() - 1, draws.max() + 1, 20001)
    cdf = best.cdf(grid)
    mq = np.interp([0.025, 0.5, 0.975], cdf, grid)
    return best, {"ks": ks, "max_quantile_error": float(np.abs(mq - qs).max())}
