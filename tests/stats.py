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


# Helpers added for low-precision outputs and for checking that a check has power.


def unit_roundoff(dtype) -> float:
    """Half the machine epsilon of ``dtype``: the largest relative error of one rounding."""
    import ml_dtypes

    return float(ml_dtypes.finfo(dtype).eps) / 2


def assert_var_rounded(x, var: float, dtype, z: float = Z) -> None:
    """``assert_var`` for samples rounded once to ``dtype``.

    Rounding changes each x^2 by at most a factor (1 +- u)^2 (u the unit roundoff)
    plus, for subnormals, an absolute 2|x|·tiny, and the squared mean by no more;
    twice that deterministic bound is added to the statistical tolerance.
    """
    import ml_dtypes

    xf = _flat(x)
    u = unit_roundoff(dtype)
    tiny = float(ml_dtypes.finfo(dtype).smallest_subnormal)
    d = xf - xf.mean()
    m2, m4 = np.mean(d**2), np.mean(d**4)
    se = np.sqrt(max(m4 - m2**2, 0.0) / xf.size)
    slack = 2 * ((2 * u + u * u) * np.mean(xf**2) + 2 * tiny * np.mean(np.abs(xf)) + tiny**2)
    assert abs(m2 - var) <= z * se + slack + 1e-12 * max(var, 1.0), (
        f"variance {m2:.6g} != {var:.6g} (se {se:.3g}, rounding slack {slack:.3g}, n {xf.size})"
    )


def rejects(check, *args, **kwargs) -> bool:
    """True if ``check(*args, **kwargs)`` raises AssertionError: used to show that a
    statistical check would catch a wrong formula."""
    try:
        check(*args, **kwargs)
    except AssertionError:
        return True
    return False


_DRAWS: dict = {}


def draw(factory, *args, shape, dtype="float32", seed: int = 0, **kwargs):
    """``factory(*args, **kwargs)(jax.random.key(seed), shape, dtype)``, memoized for the
    test session: every new (initializer, shape, dtype) costs an XLA compilation, so
    tests that check the same draw share it. Returns the (immutable) jax array."""
    import jax

    cache_key = (factory.__module__, factory.__qualname__, args, tuple(sorted(kwargs.items())), tuple(shape),
                 jax.numpy.dtype(dtype).name, seed)
    if cache_key not in _DRAWS:
        _DRAWS[cache_key] = factory(*args, **kwargs)(jax.random.key(seed), tuple(shape), dtype)
    return _DRAWS[cache_key]
