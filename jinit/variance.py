r"""Variance-scaling initializers: LeCun, Glorot/Xavier, He/Kaiming.

All of them draw weights with zero mean and variance ``scale / fan``, where
``fan`` is computed from the kernel shape by :func:`compute_fans`. The variance
is exact for every distribution: the uniform bound is :math:`\sqrt{3\,\mathrm{Var}}`
and the truncated normal's parent stddev is divided by the std of the truncated
standard normal.

Layouts. jinit follows JAX/Flax: a dense kernel is ``(in, out)`` and a conv
kernel is ``(*spatial, in, out)`` (HWIO), so the defaults are ``in_axis=-2``,
``out_axis=-1`` and every other axis is receptive field:
``fan_in = in * prod(spatial)``, ``fan_out = out * prod(spatial)``.
PyTorch stores ``(out, in, *spatial)`` (OIHW); for a tensor in that layout pass
``in_axis=1, out_axis=0`` and the fans (and variances) equal
``torch.nn.init``'s.

``*_normal`` here are **plain** Gaussians, as in the papers and in
``torch.nn.init``; ``jax.nn.initializers.{glorot,he,lecun}_normal`` sample a
truncated normal of the same variance. Both have the same variance; for JAX's
exact behaviour use ``variance_scaling(scale, mode, "truncated_normal")``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax.numpy as jnp

from jinit import rng as _rng
from jinit._core import (
    FLOAT_COMPLEX,
    Initializer,
    check_choice,
    check_real,
    complex_normal,
    complex_polar,
    factory,
    random_initializer,
    renamed,
)
from jinit.basic import truncated_normal_std
from jinit.activations import resolve_activation
from jinit.gain import NONLINEARITIES, calculate_gain, gain_for

__all__ = [
    "compute_fans",
    "variance_scaling",
    "glorot_normal",
    "glorot_uniform",
    "xavier_normal",
    "xavier_uniform",
    "he_normal",
    "he_uniform",
    "kaiming_normal",
    "kaiming_uniform",
    "lecun_normal",
    "lecun_uniform",
    "glorot_standard",
    "gain_normal",
    "complex_truncated_normal_std",
    "MODES",
    "DISTRIBUTIONS",
]

MODES = ("fan_in", "fan_out", "fan_avg", "fan_geo_avg")
DISTRIBUTIONS = ("normal", "truncated_normal", "uniform")

Axes = int | Sequence[int]


def _axes(shape: tuple[int, ...], axes: Axes, argument: str, initializer: str) -> tuple[int, ...]:
    try:
        items = (axes,) if isinstance(axes, int) else tuple(axes)
    except TypeError:
        items = (axes,)  # not a sequence: rejected below with the message
    rank = len(shape)
    out = []
    for a in items:
        if not isinstance(a, int) or isinstance(a, bool):
            raise TypeError(f"{initializer}: {argument} must be an int or a sequence of ints, got {axes!r}.")
        if not -rank <= a < rank:
            raise ValueError(
                f"{initializer}: {argument}={axes!r} is out of range for a rank-{rank} shape "
                f"{shape}; fan-based initializers need a kernel of rank >= 2 such as (in, out) "
                f"or (*spatial, in, out). For a bias or other 1-D parameter use zeros(), "
                f"normal(...) or uniform(...), or pass in_axis/out_axis explicitly."
            )
        out.append(a % rank)
    return tuple(out)


def compute_fans(
    shape: Sequence[int],
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    *,
    initializer: str = "compute_fans",
) -> tuple[int, int]:
    r"""Returns ``(fan_in, fan_out)`` of a kernel of the given shape.

    .. math:: \text{fan\_in} = n_\text{in}\cdot r,\quad
              \text{fan\_out} = n_\text{out}\cdot r,\quad
              r = \frac{\prod \text{shape}}{n_\text{in}\, n_\text{out}\, n_\text{batch}}

    where :math:`n_\text{in}` (:math:`n_\text{out}`, :math:`n_\text{batch}`) is the
    product of the sizes along ``in_axis`` (``out_axis``, ``batch_axis``) and the
    remaining axes form the receptive field :math:`r`. Same semantics as JAX.

    Args:
      shape: the kernel shape.
      in_axis: axis or axes of the inputs (default ``-2``).
      out_axis: axis or axes of the outputs (default ``-1``).
      batch_axis: axes to ignore, e.g. stacked layers (default none).

    Example:
      >>> import jinit
      >>> jinit.compute_fans((3, 3, 64, 128))  # HWIO conv kernel
      (576, 1152)
      >>> jinit.compute_fans((128, 64, 3, 3), in_axis=1, out_axis=0)  # torch OIHW
      (576, 1152)
    """
    shape = tuple(int(d) for d in shape)
    ins = _axes(shape, in_axis, "in_axis", initializer)
    outs = _axes(shape, out_axis, "out_axis", initializer)
    batches = _axes(shape, batch_axis, "batch_axis", initializer)
    named = ins + outs + batches
    if len(set(named)) != len(named):
        raise ValueError(
            f"{initializer}: in_axis={in_axis!r}, out_axis={out_axis!r} and batch_axis="
            f"{batch_axis!r} must name distinct axes of shape {shape}."
        )
    receptive = math.prod(d for i, d in enumerate(shape) if i not in named)
    fan_in = math.prod(shape[i] for i in ins) * receptive
    fan_out = math.prod(shape[i] for i in outs) * receptive
    return fan_in, fan_out


def _fan(mode: str, fan_in: int, fan_out: int) -> float:
    if mode == "fan_in":
        return fan_in
    if mode == "fan_out":
        return fan_out
    if mode == "fan_avg":
        return (fan_in + fan_out) / 2
    return math.sqrt(fan_in * fan_out)


def complex_truncated_normal_std(upper: float = 2.0) -> float:
    r"""Root mean square :math:`\sqrt{\mathbb E|z|^2}` of a circular complex normal
    with :math:`\mathbb E|z|^2 = 1` conditioned on :math:`|z| < u`. :math:`|z|^2` is
    then Exp(1) truncated to :math:`u^2`, so

    .. math:: \mathbb E|z|^2 = 1 - \frac{u^2 e^{-u^2}}{1 - e^{-u^2}}.

    Example:
      >>> from jinit.variance import complex_truncated_normal_std
      >>> round(complex_truncated_normal_std(2.0), 8)
      0.96196183
    """
    a = float(upper) ** 2
    return math.sqrt(1.0 + a * math.exp(-a) / math.expm1(-a))


def _complex_sample(gen, key, shape, dtype, distribution: str):
    """Zero-mean isotropic complex samples with E|z|^2 = 1 (see variance_scaling)."""
    if distribution == "normal":
        return complex_normal(gen, key, shape, dtype)
    if distribution == "uniform":  # the unit disk scaled to radius sqrt(2): P(|z| < r) = r^2/2
        return complex_polar(gen, key, shape, dtype, lambda u: jnp.sqrt(2 * u))
    # |z|^2 ~ Exp(1) truncated to 4, by inverting its CDF, then rescaled to E|z|^2 = 1.
    c = complex_truncated_normal_std(2.0)
    return complex_polar(gen, key, shape, dtype, lambda u: jnp.sqrt(-jnp.log1p(u * math.expm1(-4.0))) / c)


@renamed(rng="generator")
@factory
def variance_scaling(
    scale: float,
    mode: str,
    distribution: str,
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    *,
    generator: str | None = None,
    name: str = "variance_scaling",
    dtype=None,
) -> Initializer:
    r"""Zero-mean weights with :math:`\mathrm{Var}(W) = \text{scale} / n` exactly.

    ``n`` by ``mode``: ``"fan_in"``, ``"fan_out"``, ``"fan_avg"`` =
    :math:`(\text{fan\_in} + \text{fan\_out})/2`, ``"fan_geo_avg"`` =
    :math:`\sqrt{\text{fan\_in}\cdot\text{fan\_out}}`.

    ``distribution``:

    * ``"normal"``: :math:`\mathcal N(0, s/n)`;
    * ``"truncated_normal"``: parent :math:`\mathcal N(0, \sigma^2)` truncated to
      :math:`\pm 2\sigma` with :math:`\sigma = \sqrt{s/n} / 0.8796\ldots`, so the
      result has variance exactly :math:`s/n`;
    * ``"uniform"``: :math:`U[-\sqrt{3s/n}, \sqrt{3s/n})`.

    Complex dtypes (complex64, complex128) get ``jax.nn.initializers``' isotropic
    complex laws (Trabelsi et al. 2018), with :math:`\mathbb E|W|^2 = s/n`
    exactly, real and imaginary parts of variance :math:`s/(2n)` each:

    * ``"normal"``: circular complex normal (``jax.random.normal``'s);
    * ``"uniform"``: uniform on the disk :math:`|W| < \sqrt{2s/n}`;
    * ``"truncated_normal"``: a circular complex normal conditioned on
      :math:`|Z| < 2` (:math:`\mathbb E|Z|^2 = 1` before truncation), scaled by
      :math:`\sqrt{s/n}` / :func:`complex_truncated_normal_std` ``(2) = 0.96196``.
      ``jax.nn.initializers`` divides by 0.95311 instead, so its complex
      truncated normal has :math:`\mathbb E|W|^2 = 1.0187\,s/n`; the shape of
      the law is the same, jinit's is 0.93 % narrower.

    Args:
      scale: :math:`s \ge 0`.
      mode: one of ``"fan_in"``, ``"fan_out"``, ``"fan_avg"``, ``"fan_geo_avg"``.
      distribution: one of ``"normal"``, ``"truncated_normal"``, ``"uniform"``.
      in_axis, out_axis, batch_axis: see :func:`compute_fans`.
      generator: generator name, ``"jax"`` or ``"philox"`` (see :mod:`jinit.rng`).
      dtype: default dtype of the returned initializer (None: float32); floating or complex.

    Example:
      >>> import jax, jinit
      >>> init = jinit.variance_scaling(2.0, "fan_in", "uniform")
      >>> w = init(jax.random.key(0), (512, 256))
      >>> print(f"{w.var() * 512:.2f}")  # scale
      2.00
      >>> z = init(jax.random.key(0), (512, 256), "complex64")
      >>> print(f"{(abs(z) ** 2).mean() * 512:.2f} {abs(z).max() <= (2 * 2 / 512) ** 0.5}")
      2.00 True
    """
    check_real(name, "scale", scale, nonnegative=True)
    check_choice(name, "mode", mode, MODES)
    check_choice(name, "distribution", distribution, DISTRIBUTIONS)
    gen = _rng.resolve(name, generator)
    trunc_std = truncated_normal_std(-2.0, 2.0)

    def validate(shape):
        compute_fans(shape, in_axis, out_axis, batch_axis, initializer=name)

    def std_of(shape):
        fan_in, fan_out = compute_fans(shape, in_axis, out_axis, batch_axis, initializer=name)
        # Python floats: the scale is computed in float64 once, then rounded.
        return math.sqrt(float(scale) / _fan(mode, fan_in, fan_out))

    def open_bounds(shape):
        std = std_of(shape)
        if distribution == "normal" or not std > 0:
            return None, None
        if distribution == "truncated_normal":
            return -2.0 * std / trunc_std, 2.0 * std / trunc_std
        return None, math.sqrt(3.0) * std

    def body(key, shape, dtype):
        std = std_of(shape)
        if jnp.issubdtype(dtype, jnp.complexfloating):
            return _complex_sample(gen, key, shape, dtype, distribution) * jnp.asarray(std, dtype)
        if distribution == "normal":
            return gen.normal(key, shape, dtype) * jnp.asarray(std, dtype)
        if distribution == "truncated_normal":
            x = gen.truncated_normal(key, -2.0, 2.0, shape, dtype)
            return x * jnp.asarray(std / trunc_std, dtype)
        u = gen.uniform(key, shape, dtype)
        bound = math.sqrt(3.0) * std
        return jnp.asarray(bound, dtype) * (2 * u - 1)

    return random_initializer(
        name, body, validate_shape=validate, open_bounds=open_bounds, dtype=dtype, kinds=FLOAT_COMPLEX
    )


@renamed(rng="generator")
@factory
def glorot_normal(
    gain: float = 1.0,
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    *,
    generator: str | None = None,
    dtype=None,
) -> Initializer:
    r"""Glorot/Xavier normal (Glorot & Bengio, 2010): :math:`W \sim \mathcal N\big(0,\ g^2 \tfrac{2}{n_\text{in} + n_\text{out}}\big)`.

    The variance keeps both forward activations and backward gradients at the
    same scale for linear (or tanh near 0) units. It is **not** :math:`1/n_\text{in}`
    (that is LeCun). ``gain`` multiplies the std, as in
    ``torch.nn.init.xavier_normal_(gain=...)``.

    Example:
      >>> import jax, jinit
      >>> w = jinit.glorot_normal()(jax.random.key(0), (300, 500))
      >>> print(f"{w.var() * (300 + 500) / 2:.2f}")
      1.00
    """
    check_real("glorot_normal", "gain", gain, nonnegative=True)
    return variance_scaling(
        float(gain) ** 2, "fan_avg", "normal", in_axis, out_axis, batch_axis, generator=generator, name="glorot_normal",
        dtype=dtype,
    )


@renamed(rng="generator")
@factory
def glorot_uniform(
    gain: float = 1.0,
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    *,
    generator: str | None = None,
    dtype=None,
) -> Initializer:
    r"""Glorot/Xavier uniform (Glorot & Bengio, 2010, eq. 16, "normalized initialization"):
    :math:`W \sim U\big[-g\sqrt{6/(n_\text{in} + n_\text{out})},\ g\sqrt{6/(n_\text{in} + n_\text{out})}\big)`,
    variance :math:`g^2\cdot 2/(n_\text{in} + n_\text{out})`.

    Example:
      >>> import jax, jinit
      >>> w = jinit.glorot_uniform()(jax.random.key(0), (100, 200))
      >>> bound = (6 / 300) ** 0.5
      >>> bool(abs(w).max() <= bound)
      True
    """
    check_real("glorot_uniform", "gain", gain, nonnegative=True)
    return variance_scaling(
        float(gain) ** 2, "fan_avg", "uniform", in_axis, out_axis, batch_axis, generator=generator,
        name="glorot_uniform", dtype=dtype,
    )


def _he(name, distribution, negative_slope, mode, in_axis, out_axis, batch_axis, nonlinearity, generator, dtype):
    check_real(name, "negative_slope", negative_slope)
    check_choice(name, "mode", mode, ("fan_in", "fan_out"))
    check_choice(name, "nonlinearity", nonlinearity, NONLINEARITIES)
    if nonlinearity == "leaky_relu":
        # calculate_gain's sqrt(2/(1+a^2)), squared without the rounding of a
        # square root, so that he_normal() stays variance_scaling(2.0, ...).
        scale = 2.0 / (1.0 + float(negative_slope) ** 2)
    elif float(negative_slope) != 0.0:
        raise ValueError(
            f"{name}: negative_slope={negative_slope!r} is only used with nonlinearity='leaky_relu', "
            f"got nonlinearity={nonlinearity!r}."
        )
    else:
        scale = calculate_gain(nonlinearity) ** 2
    return variance_scaling(
        scale, mode, distribution, in_axis, out_axis, batch_axis, generator=generator, name=name, dtype=dtype
    )


@renamed(rng="generator")
@factory
def he_normal(
    negative_slope: float = 0.0,
    mode: str = "fan_in",
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    *,
    nonlinearity: str = "leaky_relu",
    generator: str | None = None,
    dtype=None,
) -> Initializer:
    r"""He/Kaiming normal (He et al., 2015, eq. 10): :math:`W \sim \mathcal N\big(0,\ \tfrac{2}{(1+a^2)\,n}\big)`.

    ``a`` is the negative slope of the leaky ReLU that follows (0 for ReLU) and
    ``n`` is ``fan_in`` (preserves forward variance) or ``fan_out`` (preserves
    backward variance). Every weight is scaled the same way; the mean is 0 and
    the **standard deviation** is :math:`\sqrt{2/n}` for ReLU.

    ``nonlinearity`` is torch's: in general :math:`\mathrm{Var}(W) = g^2/n` with
    :math:`g` = :func:`jinit.calculate_gain` ``(nonlinearity, a)`` (``a`` only for
    ``"leaky_relu"``, the default, where :math:`g^2 = 2/(1+a^2)`; e.g. ``"tanh"``
    gives :math:`(5/3)^2/n`, ``"linear"`` LeCun's :math:`1/n`). Matches
    ``torch.nn.init.kaiming_normal_(a=a, mode=mode, nonlinearity=nonlinearity)``.

    Complex dtypes and ``dtype`` (the returned initializer's default) as in
    :func:`variance_scaling`.

    Example:
      >>> import jax, jinit
      >>> w = jinit.he_normal()(jax.random.key(0), (512, 512))
      >>> print(f"{w.var() * 512:.1f}")
      2.0
      >>> w = jinit.kaiming_normal(nonlinearity="tanh")(jax.random.key(0), (512, 512))
      >>> print(f"{w.var() * 512:.2f}")  # (5/3)^2
      2.78
    """
    return _he(
        "he_normal", "normal", negative_slope, mode, in_axis, out_axis, batch_axis, nonlinearity, generator, dtype
    )


@renamed(rng="generator")
@factory
def he_uniform(
    negative_slope: float = 0.0,
    mode: str = "fan_in",
    in_axis: Axes = -2,
    out_axis: Axes = -1,
    batch_axis: Axes = (),
    *,
    nonlinearity: str = "leaky_relu",
    generator: str | None = None,
    dtype=None,
) -> Initializer:
    r"""He/Kaiming uniform: :math:`W \sim U[-b, b)`, :math:`b = \sqrt{6 / ((1+a^2)\,n)}`,
    the uniform with the variance of :func:`he_normal`; with ``nonlinearity``
    :math:`b = g\sqrt{3/n}`, :math:`g` = :func:`jinit.calculate_gain` ``(nonlinearity, a)``.
    Matches ``torch.nn.init.kaiming_uniform_(a=a, mode=mode, nonlinearity=nonlinearity)``.

    Example:
      >>> import jax, jinit
      >>> w = jinit.he_uniform()(jax.random.key(0), (600, 10))
      >>> bool(abs(w).max() <= (6 / 600) ** 0.5)
      True
      >>> w = jinit.kaiming_uniform(nonlinearity="selu")(jax.random.key(0), (600, 10))
      >>> bool(abs(w).max() <= 0.75 * (3 / 600) ** 0.5)
      True
    """
    return _he(
        "he_uniform", "uniform", negative_slope, mode, in_axis, out_axis, batch_axis, nonlinearity, generator, dtype
    )


@renamed(rng="generator")
@factory
def lecun_normal(
    in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (), *, generator: str | None = None, dtype=None
) -> Initializer:
    r"""LeCun normal (LeCun et al., 1998): :math:`W \sim \mathcal N(0, 1/n_\text{in})`.
    The right scale for SELU networks (Klambauer et al., 2017) and for linear or
    tanh units when only the forward pass matters.

    Example:
      >>> import jax, jinit
      >>> w = jinit.lecun_normal()(jax.random.key(0), (400, 400))
      >>> print(f"{w.var() * 400:.1f}")
      1.0
    """
    return variance_scaling(
        1.0, "fan_in", "normal", in_axis, out_axis, batch_axis, generator=generator, name="lecun_normal", dtype=dtype
    )


@renamed(rng="generator")
@factory
def lecun_uniform(
    in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (), *, generator: str | None = None, dtype=None
) -> Initializer:
    r"""LeCun uniform: :math:`W \sim U[-\sqrt{3/n_\text{in}}, \sqrt{3/n_\text{in}})`, variance :math:`1/n_\text{in}`.

    Example:
      >>> import jax, jinit
      >>> w = jinit.lecun_uniform()(jax.random.key(0), (300, 40))
      >>> bool(abs(w).max() <= 0.1)
      True
    """
    return variance_scaling(
        1.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, generator=generator, name="lecun_uniform", dtype=dtype
    )


@renamed(rng="generator")
@factory
def glorot_standard(
    in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (), *, generator: str | None = None, dtype=None
) -> Initializer:
    r"""The "commonly used heuristic" Glorot & Bengio (2010, eq. 1) compare against:
    :math:`W \sim U[-1/\sqrt{n_\text{in}}, 1/\sqrt{n_\text{in}})`, variance :math:`1/(3 n_\text{in})`;
    the registry's ``"glorot_standard"`` scheme.

    A third of LeCun's variance: each layer shrinks the forward signal's variance
    by about 3 (for linear or tanh units near 0), which is the vanishing that
    Glorot's normalized initialization (:func:`glorot_uniform`) was designed to
    remove. It is ``variance_scaling(1/3, "fan_in", "uniform")``.

    Example:
      >>> import jax, jinit
      >>> w = jinit.glorot_standard()(jax.random.key(0), (400, 300))
      >>> bool(abs(w).max() < 1 / 400 ** 0.5), f"{w.var() * 3 * 400:.2f}"
      (True, '1.00')
    """
    return variance_scaling(
        1.0 / 3.0, "fan_in", "uniform", in_axis, out_axis, batch_axis, generator=generator, name="glorot_standard",
        dtype=dtype,
    )


@renamed(rng="generator")
@factory
def gain_normal(
    phi, in_axis: Axes = -2, out_axis: Axes = -1, batch_axis: Axes = (), *, generator: str | None = None, dtype=None
) -> Initializer:
    r"""Gaussian weights that preserve the second moment through the activation ``phi`` exactly:
    :math:`W \sim \mathcal N(0, g^2/n_\text{in})`, :math:`g` = :func:`jinit.gain_for` ``(phi)``
    :math:`= 1/\sqrt{\mathbb E_{z\sim\mathcal N(0,1)}[\phi(z)^2]}`; the registry's ``"gain_normal"`` scheme.

    The generalization of He et al. (2015, eq. 10) to any activation: for ReLU
    :math:`g^2 = 2` (He), for tanh :math:`g \approx 1.593` (not torch's 5/3), for
    SELU 1 (LeCun). Unlike :func:`he_normal` ``(nonlinearity=...)``, whose gains are
    torch's table, :math:`g` is computed from ``phi`` itself.

    Args:
      phi: the activation after the layer: a name from
        :data:`jinit.activations.ACTIVATIONS` or a callable ``R -> R``.
      in_axis, out_axis, batch_axis: see :func:`compute_fans`.
      generator: generator name, ``"jax"`` or ``"philox"`` (see :mod:`jinit.rng`).
      dtype: default dtype of the returned initializer (None: float32); floating or complex.

    Example:
      >>> import jax, jinit
      >>> w = jinit.gain_normal("tanh")(jax.random.key(0), (512, 512))
      >>> print(f"{w.var() * 512:.2f}")  # gain_for(tanh) ** 2
      2.53
    """
    scale = gain_for(resolve_activation("gain_normal", phi)) ** 2
    return variance_scaling(
        scale, "fan_in", "normal", in_axis, out_axis, batch_axis, generator=generator, name="gain_normal", dtype=dtype
    )


xavier_normal = glorot_normal
xavier_uniform = glorot_uniform
kaiming_normal = he_normal
kaiming_uniform = he_uniform
