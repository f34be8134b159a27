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
    ANY_KIND,
    FLOAT_COMPLEX,
    Initializer,
    check_dtype,
    check_key,
    check_real,
    check_representable,
    check_shape,
    complex_normal,
    factory,
    random_initializer,
    renamed,
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
    "uniform_small",
    "uniform_large",
    "normal_nonzero_mean",
]


@factory(role="bias_init")
def constant(value=0.0, *, dtype=None) -> Initializer:
    r"""Fills every entry with ``value``, a scalar or an array broadcast to the shape.

    .. math:: W_{ij} = c \quad\text{or}\quad W = \mathrm{broadcast}(C, \text{shape})

    Constant kernels are a trap: every unit of a layer computes the same function
    and receives the same gradient, so the units stay identical forever (the
    *symmetry problem*); with ``value = 0`` and ReLU nothing learns at all past
    the first layer. Constant init is right for biases, LayerNorm scales (1) and
    residual gates (0, see ReZero), not for kernels.

    An array ``value`` (numpy or jax, as ``jax.nn.initializers.constant``, Keras'
    and Haiku's ``Constant`` accept) is broadcast to the requested shape with
    NumPy's rules, e.g. a per-channel ``(out,)`` vector for an ``(in, out)`` kernel;
    a shape it does not broadcast to is a ``ValueError`` naming both shapes.

    Every dtype is allowed (float, complex, integer, bool), since a fill is exact;
    a value the dtype cannot hold (0.5 or 300 in int8, 2 in bool) is a ``ValueError``
    rather than a silent truncation or wrap-around.

    Args:
      value: the fill value: a finite real scalar, or a numeric array.
      dtype: default dtype of the returned initializer (None: float32).

    Example:
      >>> import jax, jinit, numpy as np
      >>> jinit.constant(0.5)(jax.random.key(0), (2, 3))
      Array([[0.5, 0.5, 0.5],
             [0.5, 0.5, 0.5]], dtype=float32)
      >>> jinit.constant(np.array([1, 2, 3]), dtype="int8")(jax.random.key(0), (2, 3))
      Array([[1, 2, 3],
             [1, 2, 3]], dtype=int8)
    """
    return _fill("constant", value, dtype)


def _check_fill_value(name: str, value):
    if isinstance(value, jax.core.Tracer):
        return value
    if isinstance(value, (np.ndarray, jax.Array)) and np.ndim(value) > 0:
        if np.dtype(value.dtype).kind not in "biufc":
            raise TypeError(f"{name}: value must be a real scalar or a numeric array, got an array of dtype {value.dtype}.")
        if not np.all(np.isfinite(np.asarray(value))):
            raise ValueError(f"{name}: value must be finite, got an array of shape {tuple(value.shape)} with non-finite entries.")
        return value
    if isinstance(value, (list, tuple)):
        raise TypeError(f"{name}: value must be a real scalar or a numpy/jax array, got {value!r} (wrap it in np.asarray).")
    return check_real(name, "value", value)


def _fill(name: str, value, dtype=None) -> Initializer:
    value = _check_fill_value(name, value)
    default = check_dtype(name, dtype, ANY_KIND)
    if dtype is not None:
        check_representable(name, "value", value, default)

    def init(key, shape, dtype=default, out_sharding=None) -> jax.Array:
        check_key(name, key)
        shape = check_shape(name, shape)
        dtype = check_dtype(name, dtype, ANY_KIND, default)
        check_representable(name, "value", value, dtype)
        try:
            broadcastable = np.broadcast_shapes(np.shape(value), shape) == shape
        except ValueError:
            broadcastable = False
        if not broadcastable:
            raise ValueError(
                f"{name}: value of shape {np.shape(value)} is not broadcastable to the requested shape {shape}."
            )
        return shard(lambda _: jnp.full(shape, value, dtype), key, out_sharding, name)

    init.__name__ = init.__qualname__ = name
    return init


@factory(role="bias_init")
def zeros(*, dtype=None) -> Initializer:
    r"""All zeros: :math:`W = 0`. The right default for biases; for kernels it
    makes every unit identical (see :func:`constant`).

    Args:
      dtype: default dtype of the returned initializer (None: float32); any dtype.

    Example:
      >>> import jax, jinit
      >>> jinit.zeros()(jax.random.key(0), (3,))
      Array([0., 0., 0.], dtype=float32)
    """
    return _fill("zeros", 0.0, dtype)


@factory(role="bias_init")
def ones(*, dtype=None) -> Initializer:
    r"""All ones: :math:`W = 1`. For normalization scales; not for kernels.

    Args:
      dtype: default dtype of the returned initializer (None: float32); any dtype.

    Example:
      >>> import jax, jinit
      >>> jinit.ones()(jax.random.key(0), (2,))
      Array([1., 1.], dtype=float32)
    """
    return _fill("ones", 1.0, dtype)


@renamed(rng="generator")
@factory
def normal(stddev: float = 1.0, mean: float = 0.0, *, generator: str | None = None, dtype=None) -> Initializer:
    r"""Gaussian weights :math:`W_{ij} \sim \mathcal N(\mu, \sigma^2)`.

    With the defaults this is the write-ups' "mean-zero random" N(0, 1) init;
    with ``mean != 0`` their "non-zero-mean random" init. Neither scales with the
    layer width: a layer with ``n`` inputs multiplies the activation variance by
    about :math:`n\sigma^2`, and a non-zero mean adds a rank-one component that
    makes all units move together.

    Note the argument order differs from ``torch.nn.init.normal_(mean, std)``;
    pass keywords.

    Complex dtypes (complex64, complex128) give the circularly-symmetric complex
    normal of ``jax.nn.initializers.normal``: :math:`W = \mu + \sigma Z`,
    :math:`\mathbb E|W - \mu|^2 = \sigma^2`, real and imaginary parts i.i.d.
    :math:`\mathcal N(0, \sigma^2/2)`.

    Args:
      stddev: :math:`\sigma \ge 0`.
      mean: :math:`\mu`.
      generator: generator name, ``"jax"`` or ``"philox"`` (see :mod:`jinit.rng`).
      dtype: default dtype of the returned initializer (None: float32); floating or complex.

    Example:
      >>> import jax, jinit
      >>> w = jinit.normal(stddev=0.1, mean=1.0)(jax.random.key(0), (256, 256))
      >>> print(f"{w.mean():.2f} {w.std():.2f}")
      1.00 0.10
      >>> z = jinit.normal(0.1, dtype="complex64")(jax.random.key(0), (256, 256))
      >>> print(z.dtype, f"{(abs(z) ** 2).mean():.3f} {z.real.var():.4f}")
      complex64 0.010 0.0050
    """
    check_real("normal", "stddev", stddev, nonnegative=True)
    check_real("normal", "mean", mean)
    gen = _rng.resolve("normal", generator)

    def body(key, shape, dtype):
        if jnp.issubdtype(dtype, jnp.complexfloating):
            z = complex_normal(gen, key, shape, dtype)
        else:
            z = gen.normal(key, shape, dtype)
        return z * jnp.asarray(stddev, dtype) + jnp.asarray(mean, dtype)

    return random_initializer("normal", body, dtype=dtype, kinds=FLOAT_COMPLEX)


@renamed(rng="generator")
@factory
def uniform(low: float = -1.0, high: float = 1.0, *, generator: str | None = None, dtype=None) -> Initializer:
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
      generator: generator name, ``"jax"`` or ``"philox"`` (see :mod:`jinit.rng`).
      dtype: default dtype of the returned initializer (None: float32); floating.

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
    gen = _rng.resolve("uniform", generator)

    def body(key, shape, dtype):
        lo, hi = jnp.asarray(low, dtype), jnp.asarray(high, dtype)
        u = gen.uniform(key, shape, dtype)
        # Rounding of lo + u*(hi-lo) can land on hi; keep the interval half-open
        # (open_bounds does it again after a cast to float16/bfloat16).
        return jnp.minimum(lo + u * (hi - lo), jnp.nextafter(hi, lo))

    return random_initializer("uniform", body, open_bounds=lambda shape: (None, high), dtype=dtype)


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


@renamed(rng="generator")
@factory
def truncated_normal(
    stddev: float = 1.0,
    mean: float = 0.0,
    lower: float = -2.0,
    upper: float = 2.0,
    *,
    generator: str | None = None,
    dtype=None,
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
      generator: generator name, ``"jax"`` or ``"philox"`` (see :mod:`jinit.rng`).
      dtype: default dtype of the returned initializer (None: float32); floating.

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
    gen = _rng.resolve("truncated_normal", generator)

    def body(key, shape, dtype):
        x = gen.truncated_normal(key, lower, upper, shape, dtype)
        return x * jnp.asarray(stddev, dtype) + jnp.asarray(mean, dtype)

    def open_bounds(shape):
        if not float(stddev) > 0:
            return None, None
        return float(mean) + float(lower) * float(stddev), float(mean) + float(upper) * float(stddev)

    return random_initializer("truncated_normal", body, open_bounds=open_bounds, dtype=dtype)



# ---------------------------------------------------------------------------
# The write-ups' fixed-scale schemes, as the registry names them.


@factory
def uniform_small(*, generator: str | None = None, dtype=None) -> Initializer:
    r"""The write-ups' "small range" uniform init: :math:`W_{ij} \sim U[-0.01, 0.01)`,
    i.e. :func:`uniform` ``(-0.01, 0.01)``; the registry's ``"uniform_small"`` scheme.

    Variance :math:`0.02^2/12 \approx 3.3\cdot 10^{-5}` whatever the width: a layer
    with :math:`n` inputs multiplies the activation's standard deviation by about
    :math:`0.0058\sqrt n` (0.13 at :math:`n = 512`), so in a deep net the signal and
    the gradients vanish (Glorot & Bengio, 2010, analyse the effect).

    Args:
      generator: generator name, ``"jax"`` or ``"philox"`` (see :mod:`jinit.rng`).
      dtype: default dtype of the returned initializer (None: float32); floating.

    Example:
      >>> import jax, jinit
      >>> w = jinit.uniform_small()(jax.random.key(0), (512, 512))
      >>> bool(abs(w).max() < 0.01), f"{w.var() * 1e5:.2f}"
      (True, '3.33')
    """
    return uniform(-0.01, 0.01, generator=generator, dtype=dtype)


@factory
def uniform_large(*, generator: str | None = None, dtype=None) -> Initializer:
    r"""The write-ups' "large range" uniform init: :math:`W_{ij} \sim U[-1, 1)`, i.e.
    :func:`uniform` ``(-1, 1)``; the registry's ``"uniform_large"`` scheme.

    Variance :math:`1/3` per weight whatever the width: a layer with :math:`n` inputs
    multiplies the activation's standard deviation by about :math:`\sqrt{n/3}`, so
    deep ReLU nets explode and tanh or sigmoid units saturate (Glorot & Bengio, 2010).

    Args:
      generator: generator name, ``"jax"`` or ``"philox"`` (see :mod:`jinit.rng`).
      dtype: default dtype of the returned initializer (None: float32); floating.

    Example:
      >>> import jax, jinit
      >>> w = jinit.uniform_large()(jax.random.key(0), (512, 512))
      >>> bool(abs(w).max() < 1.0), f"{w.var():.2f}"
      (True, '0.33')
    """
    return uniform(-1.0, 1.0, generator=generator, dtype=dtype)


@factory
def normal_nonzero_mean(*, generator: str | None = None, dtype=None) -> Initializer:
    r"""The write-ups' "non-zero-mean random" init: :math:`W_{ij} \sim \mathcal N(0.1, 0.1^2)`,
    i.e. :func:`normal` ``(stddev=0.1, mean=0.1)``; the registry's ``"normal_nonzero_mean"`` scheme.

    The mean adds the rank-one matrix :math:`0.1\,\mathbf 1\mathbf 1^\top`: every
    unit receives the same :math:`0.1\sum_i x_i`, so the units move together and the
    common component grows with the width :math:`n` (by :math:`0.1\,n` per layer for
    positive inputs), which is why weights are drawn with mean zero.

    Args:
      generator: generator name, ``"jax"`` or ``"philox"`` (see :mod:`jinit.rng`).
      dtype: default dtype of the returned initializer (None: float32); floating or complex.

    Example:
      >>> import jax, jinit
      >>> w = jinit.normal_nonzero_mean()(jax.random.key(0), (256, 256))
      >>> print(f"{w.mean():.2f} {w.std():.2f}")
      0.10 0.10
    """
    return normal(stddev=0.1, mean=0.1, generator=generator, dtype=dtype)
