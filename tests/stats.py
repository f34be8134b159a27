"""Statistical assertions whose tolerances follow from the sample size.

Each check allows ``Z`` standard errors, with the standard error computed from
the sample itself (so heavy- and light-tailed distributions get the right
width). With Z = 5 a correct implementation fails a check with probability
below 6e-7; keys are fixed, so every run is deterministic anyway.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as _scipy_stats

Z = 5.0
KS_ALPHA = 1e-4


def _flat(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64).ravel()


def assert_mean(x, mean: float, z: float = Z) -> None:
    x = _flat(x)
    se = x.std() / np.sqrt(x.size)
    assert abs(x.mean() - mean) <= z * se + 1e-12, f"mean {x.mean():.6g} != {mean:.6g} (se {se:.3g})"


def assert_var(x, var: float, z: float = Z) -> None:
    """Sample variance against ``var``; se = sqrt((m4 - m2^2) / n)."""
    x = _flat(x)
    d = x - x.mean()
    m2, m4 = np.mean(d**2), np.mean(d**4)
    se = np.sqrt(max(m4 - m2**2, 0.0) / x.size)
    assert abs(m2 - var) <= z * se + 1e-12 * max(var, 1.0), (
        f"variance {m2:.6g} != {var:.6g} (se {se:.3g}, n {x.size})"
    )


def assert_mean_var(x, mean: float, var: float, z: float = Z) -> None:
    assert_mean(x, mean, z)
    assert_var(x, var, z)


def assert_ks(x, cdf, alpha: float = KS_ALPHA) -> None:
    """Kolmogorov-Smirnov test of the sample against a CDF (callable or scipy name)."""
    x = _flat(x)
    result = _scipy_stats.kstest(x, cdf)
    assert result.pvalue > alpha, f"KS statistic {result.statistic:.4g}, p = {result.pvalue:.3g}"


def normal_cdf(mean: float, std: float):
    return _scipy_stats.norm(loc=mean, scale=std).cdf


def uniform_cdf(low: float, high: float):
    return _scipy_stats.uniform(loc=low, scale=high - low).cdf


def truncnorm_cdf(mean: float, std: float, lower: float, upper: float):
    """Parent N(mean, std^2) truncated to (lower, upper) in parent-std units."""
    return _scipy_stats.truncnorm(lower, upper, loc=mean, scale=std).cdf
