r"""Fills and fixed-scale distributions: the oldest initialization schemes.

These are the schemes common write-ups start from: zero (or constant) init,
N(0, 1), "small" and "large" range uniform, and normal with a non-zero mean.
None of them looks at the layer's size, which is why deep networks initialized
with them vanish or explode (see :mod:`jinit.variance` for the fix).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from jinit import rng as _rng
from jinit._core import (
    Initializer,
    check_key,
    check_real,
    check_shape,
    random_initializer,
    shard,
)

__all__ = [
    "zeros",
    "ones",
    "constant",
    "normal",
    "uniform",
    "truncated_normal",
    "truncated_normal_std",
]


def constant(value: float = 0.0) -> Initializer:
    r"""Fills every entry with ``value``.

    .. math:: W_{ij} = c

    Constant kernels are a trap: every unit of a layer computes the same function
    and receives the same gradient, so the units stay identical forever (the
    *symmetry problem*); with ``value = 0`` and ReLU nothing learns at all past
    the first layer. Constant init is right for biases, LayerNorm scales (1) and
    residual gates (0, see ReZero), not for kernels.

    Integer and boolean dtypes are allowed here, since a fill is exact in them.

    Args:
      value: the fill value (a real scalar).

    Example:
      >>> import jax, jinit
      >>> jinit.constant(0.5)(jax.random.key(0), (2, 3))
      Array([[0.5, 0.5, 0.5],
             [0.5, 0.5, 0.5]], dtype=float32)
    """
    return _fill("constant", value)


def _fill(name: str, value: float) -> Initializer:
    check_real(name, "value", value)

    def init(key, shape, dtype=jnp.float32, out_sharding=None) -> jax.Array:
        check_key(name, key)
        shape = check_shape(name, shape)
        dtype = jnp.dtype(jnp.float32 if dtype is None else dtype)
        return shard(lambda _: jnp.full(shape, value, dtype), key, out_sharding, name)

    init.__name__ = init.__qualname__ = name
    return init


def zeros() -> Initializer:
    r"""All zeros: :math:`W = 0`. The right default for biases; for kernels it
    makes every unit identical (see :func:`constant`).

    Example:
      >>> import jax, jinit
      >>> jinit.zeros()(jax.random.key(0), (3,))
      Array([0., 0., 0.], dtype=float32)
    """
    return _fill("zeros", 0.0)


def ones() -> Initializer:
    r"""All ones: :math:`W = 1`. For normalization scales; not for kernels.

    Example:
      >>> import jax, jinit
      >>> jinit.ones()(jax.random.key(0), (2,))
      Array([1., 1.], dtype=float32)
    """
    return _fill("ones", 1.0)


def normal(stddev: float = 1.0, mean: float = 0.0, *, rng: str | None = None) -> Initializer:
    r"""Gaussian weights :math:`W_{ij} \sim \mathcal N(\mu, \sigma^2)`.

    With the defaults this is the write-ups' "mean-zero random" N(0, 1) init;
    with ``mean != 0`` their "non-zero-mean random" init. Neither scales with the
    layer width: a layer with ``n`` inputs multiplies the activation variance by
    about :math:`n\sigma^2`, and a non-zero mean adds a rank-one component that
    makes all units move together.

    Note the argument order differs from ``torch.nn.init.normal_(mean, std)``;
    pass keywords.

    Args:
      stddev: :math:`\sigma \ge 0`.
      mean: :math:`\mu`.
      rng: generator name (see :mod:`jinit.rng`).

    Example:
      >>> import jax, jinit
      >>> w = jinit.normal(stddev=0.1, mean=1.0)(jax.random.key(0), (256, 256))
      >>> print(f"{w.mean():.2f} {w.std():.2f}")
      1.00 0.10
    """
    check_real("normal", "stddev", stddev, nonnegative=True)
    check_real("normal", "mean", mean)
    gen = _rng.resolve("normal", rng)

    def body(key, shape, dtype):
        return gen.normal(key, shape, dtype) * jnp.asarray(stddev, dtype) + jnp.asarray(mean, dtype)

    return random_initializer("normal", body)


def uniform(low: float = -1.0, high: float = 1.0, *, rng: str | None = None) -> Initializer:
    r"""Uniform weights :math:`W_{ij} \sim U[\text{low}, \text{high})`.

    Mean :math:`(a+b)/2`, variance :math:`(b-a)^2/12`. ``uniform(-0.01, 0.01)``
    and ``uniform(-1, 1)`` are the write-ups' "small range" and "large range"
    schemes.

    Unlike ``jax.nn.initializers.uniform(scale)``, which samples U[0, scale)
    (all weights positive), this takes both bounds explicitly, as
    ``torch.nn.init.uniform_(a, b)`` does.

    Args:
      low: lower bound ``a``.
      high: upper bound ``b > a``.
      rng: generator name (see :mod:`jinit.rng`).

    Example:
      >>> import jax, jinit
      >>> w = jinit.uniform(-0.5, 0.5)(jax.random.key(0), (1000,))
      >>> bool(w.min() >= -0.5) and bool(w.max() < 0.5)
      True
    """
    check_real("uniform", "low", low)
    check_real("uniform", "high", high)
    if not isinstance(low, jax.core.Tracer) and not isinstance(high, jax.core.Tracer):
        if not float(low) < float(high):
            raise ValueError(f"uniform: low must be < high, got low={low}, high={high}.")
    gen = _rng.resolve("uniform", rng)

    def body(key, shape, dtype):
        lo, hi = jnp.asarray(low, dtype), jnp.asarray(high, dtype)
        u = gen.uniform(key, shape, dtype)
        # Rounding of lo + u*(hi-lo) can land on hi; keep the interval half-open
        # (open_bounds does it again after a cast to float16/bfloat16).
        return jnp.minimum(lo + u * (hi - lo), jnp.nextafter(hi, lo))

    return random_initializer("uniform", body, open_bounds=lambda shape: (None, high))


def _std_normal_pdf(x: float) -> float:
    return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi) if math.isfinite(x) else 0.0


def _std_normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def truncated_normal_std(lower: float = -2.0, upper: float = 2.0) -> float:
    r"""Standard deviation of N(0, 1) conditioned on ``lower < x < upper``.

    .. math:: \sigma_t^2 = 1 + \frac{a\varphi(a) - b\varphi(b)}{Z}
                 - \Big(\frac{\varphi(a) - \varphi(b)}{Z}\Big)^2,
              \quad Z = \Phi(b) - \Phi(a).

    Example:
      >>> import jinit
      >>> round(jinit.truncated_normal_std(-2.0, 2.0), 8)
      0.87962566
    """
    a, b = float(lower), float(upper)
    z = _std_normal_cdf(b) - _std_normal_cdf(a)
    pa, pb = _std_normal_pdf(a), _std_normal_pdf(b)
    ta = a * pa if math.isfinite(a) else 0.0
    tb = b * pb if math.isfinite(b) else 0.0
    return math.sqrt(1.0 + (ta - tb) / z - ((pa - pb) / z) ** 2)


def truncated_normal(
    stddev: float = 1.0,
    mean: float = 0.0,
    lower: float = -2.0,
    upper: float = 2.0,
    *,
    rng: str | None = None,
) -> Initializer:
    r"""Truncated Gaussian: :math:`W = \mu + \sigma X`, :math:`X \sim \mathcal N(0,1)`
    conditioned on ``lower < X < upper``.

    ``stddev`` is the standard deviation of the **parent** normal, and
    ``lower``/``upper`` are in units of it (this is ``jax.nn.initializers.truncated_normal``'s
    convention). The result's standard deviation is therefore smaller:
    ``stddev * truncated_normal_std(lower, upper)``, e.g. 0.8796·stddev for the
    default ±2. To get an exact target variance use
    ``variance_scaling(..., distribution="truncated_normal")``, which corrects for it.

    ``torch.nn.init.trunc_normal_(mean, std, a, b)`` differs: ``a``/``b`` are
    **absolute** values (default ±2, i.e. about ±0.04σ for std 0.02 would be a no-op
    truncation), and it too applies no variance correction. The equivalent here is
    ``truncated_normal(std, mean, (a - mean)/std, (b - mean)/std)``.

    Args:
      stddev: parent standard deviation :math:`\sigma \ge 0`.
      mean: :math:`\mu`.
      lower: lower bound in parent-stddev units.
      upper: upper bound in parent-stddev units, ``> lower``.
      rng: generator name (see :mod:`jinit.rng`).

    Example:
      >>> import jax, jinit
      >>> w = jinit.truncated_normal(stddev=1.0)(jax.random.key(0), (100_000,))
      >>> bool(abs(w).max() < 2.0), f"{w.std():.2f}"
      (True, '0.88')
    """
    check_real("truncated_normal", "stddev", stddev, nonnegative=True)
    check_real("truncated_normal", "mean", mean)
    check_real("truncated_normal", "lower", lower)
    check_real("truncated_normal", "upper", upper)
    if not float(lower) < float(upper):
        raise ValueError(
            f"truncated_normal: lower must be < upper, got lower={lower}, upper={upper}."
        )
    gen = _rng.resolve("truncated_normal", rng)

    def body(key, shape, dtype):
        x = gen.truncated_normal(key, lower, upper, shape, dtype)
        return x * jnp.asarray(stddev, dtype) + jnp.asarray(mean, dtype)

    def open_bounds(shape):
        if not float(stddev) > 0:
            return None, None
        return float(mean) + float(lower) * float(stddev), float(mean) + float(upper) * float(stddev)

    return random_initializer("truncated_normal", body, open_bounds=open_bounds)

