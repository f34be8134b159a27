r"""Spectrum of the input-output Jacobian of a deep random network: free-probability theory and measurement.

A depth-:math:`L` fully connected network of width :math:`N`,

.. math::

    h^l = W^l x^{l-1} + b^l, \qquad x^l = \phi(h^l), \qquad l = 1, \dots, L,

with :math:`W^l` either Gaussian, :math:`W_{ij}\sim\mathcal N(0, \sigma_w^2/N)`, or :math:`\sigma_w`
times a Haar orthogonal matrix, and :math:`b_i\sim\mathcal N(0,\sigma_b^2)`, has the input-output
Jacobian :math:`J = \partial x^L/\partial x^0 = \prod_{l=L}^{1} D^l W^l`, :math:`D^l = \operatorname{diag}\phi'(h^l)`. When every pre-activation sits at the mean-field fixed point
:math:`q^*` (:mod:`jinit.meanfield`), Pennington, Schoenholz & Ganguli (2017, "Resurrecting the
sigmoid in deep learning through dynamical isometry", NeurIPS) treat the factors as
asymptotically free as :math:`N\to\infty` and multiply their S-transforms:

.. math::

    S_{JJ^T}(z) = S_{D^2}(z)^L\, S_{WW^T}(z)^L,

where :math:`D^2` has the law of :math:`\phi'(\sqrt{q^*}\,\xi)^2`, :math:`\xi\sim\mathcal N(0,1)`,
with moments :math:`\mu_k = \mathbb E[\phi'(\sqrt{q^*}\xi)^{2k}]` (:func:`derivative_moments`), and
:math:`S_{WW^T}(z) = \sigma_w^{-2}(1+z)^{-1}` for Gaussian weights (Marchenko-Pastur, ratio 1),
:math:`\sigma_w^{-2}` for orthogonal ones (:func:`weight_s_transform`). Expanding
:math:`S_{WW^T}(z) = \sigma_w^{-2}(1 + s_1 z + \dots)` (:math:`s_1 = -1` Gaussian, :math:`0`
orthogonal) gives, with :math:`\chi = \sigma_w^2\mu_1` (:func:`jinit.meanfield.chi1`),

.. math::

    m_1 = \chi^L, \qquad
    \sigma^2_{JJ^T} = m_2 - m_1^2 = L\, m_1^2 \Big(\frac{\mu_2}{\mu_1^2} - 1 - s_1\Big),

the mean and variance of the spectral density of :math:`JJ^T` (the paper states the variance at
criticality, :math:`\chi = 1`, where :math:`\sigma^2_{JJ^T} = L(\mu_2/\mu_1^2 - 1 - s_1)`, and
lists the linear, relu and hard-tanh cases). The relation holds for any :math:`\chi`:
it is the first-order term of :math:`S_{JJ^T}`, since :math:`S(z) = m_1^{-1}(1 - z\,\sigma^2/m_1^2 + O(z^2))` for any law with mean :math:`m_1` and variance :math:`\sigma^2`. :func:`jacobian_moments`
computes every moment :math:`m_k = \int\lambda^k\rho_{JJ^T}(\lambda)\,d\lambda`, not only the first
two, by composing the power series (moments :math:`\to` S-transform :math:`\to` product
:math:`\to` moments); Pennington, Schoenholz & Ganguli (2018, "The emergence of spectral
universality in deep networks", AISTATS) use the same multiplicative structure for the full
spectrum. Variance at criticality (:math:`m_1 = 1`):

| activation | Gaussian weights | orthogonal weights |
|---|---|---|
| linear | :math:`L` | :math:`0` (every singular value is 1) |
| relu | :math:`2L` | :math:`L` |
| tanh | :math:`L\mu_2/\mu_1^2 \to L` | :math:`L(\mu_2/\mu_1^2 - 1) \approx 8Lq^{*2} \to 0` |

(tanh as :math:`q^*\to 0`: :math:`\tanh'(h)^2 = 1 - 2h^2 + \tfrac73 h^4 + \dots` gives
:math:`\mu_1 = 1 - 2q + 7q^2`, :math:`\mu_2 = 1 - 4q + 26q^2`, so
:math:`\mu_2/\mu_1^2 - 1 = 8q^2 + O(q^3)`.)

Only orthogonal weights and an activation that is linear near 0 (tanh at small :math:`q^*`) keep
the spread of the spectrum small at large depth: dynamical isometry. :func:`linear_gaussian_density`
is the density of the deep linear Gaussian case (the Fuss-Catalan law of a product of Ginibre
matrices); the general density needs the S-transform inverted at every :math:`\lambda` and is not
provided. :func:`measure_jacobian_moments` draws finite networks with :mod:`jinit`'s initializers
and measures the same moments, to compare with the theory.

Example:
  >>> import jinit.spectra as sp
  >>> th = sp.jacobian_moments(8, "relu", weights="gaussian")  # He init: sigma_w = sqrt(2)
  >>> round(th.mean, 12), round(th.variance, 12)
  (1.0, 16.0)
  >>> round(sp.jacobian_moments(8, "linear", weights="orthogonal").variance, 12)
  0.0
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit import _quadrature, basic, meanfield, structured, variance

__all__ = [
    "WEIGHTS",
    "JacobianMoments",
    "MeasuredMoments",
    "derivative_moments",
    "weight_s_transform",
    "jacobian_moments",
    "linear_gaussian_density",
    "measure_jacobian_moments",
]

WEIGHTS = ("gaussian", "orthogonal")
"""The weight distributions the theory covers."""

# A given q_star must satisfy |V(q*) - q*| <= this * q*: the theory assumes every layer sits at q*.
_FIXED_POINT_RTOL = 1e-6


# --- argument checks -------------------------------------------------------------------------


def _int(where: str, name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{where}: {name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _weights(where: str, weights: Any) -> str:
    if weights not in WEIGHTS:
        raise ValueError(
            f"{where}: weights={weights!r} is not supported; valid choices are "
            f"{', '.join(repr(w) for w in WEIGHTS)} (the theory needs the S-transform of W W^T)."
        )
    return weights


def _depths(where: str, depth: Any) -> tuple[int, ...]:
    items = (depth,) if isinstance(depth, numbers.Integral) else tuple(depth) if isinstance(depth, Sequence) else None
    if not items:
        raise ValueError(f"{where}: depth must be an integer >= 1 or a non-empty sequence of them, got {depth!r}.")
    return tuple(sorted({_int(where, "depth", d, 1) for d in items}))


# --- power series (coefficient arrays, index = power of z) -----------------------------------


def _mul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.convolve(a, b)[: len(a)]


def _pow(a: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros_like(a)
    out[0] = 1.0
    while n:  # binary powering: depth 10^4 costs 14 products
        if n & 1:
            out = _mul(out, a)
        a, n = _mul(a, a), n >> 1
    return out


def _inverse(f: np.ndarray) -> np.ndarray:
    """Compositional inverse g of f (f[0] = 0, f[1] != 0): f(g(z)) = z to the order of f."""
    n = len(f)
    g = np.zeros(n)
    g[1] = 1.0 / f[1]
    for k in range(2, n):
        # [z^k] f(g) = f_1 g_k + [z^k] sum_{j>=2} f_j g^j, where g_k does not enter the sum yet.
        p, acc = g.copy(), 0.0
        for j in range(2, k + 1):
            p = _mul(p, g)
            acc += f[j] * p[k]
        g[k] = -acc / f[1]
    return g


def _s_from_moments(m: np.ndarray) -> np.ndarray:
    r"""S-transform coefficients :math:`S(z) = \sum_{k<n} s_k z^k` of a law with moments m_1..m_n.

    :math:`M(z) = \sum_k m_k z^k`, :math:`S(z) = \frac{1+z}{z} M^{-1}(z)` (Voiculescu).
    """
    chi = _inverse(np.concatenate([[0.0], m]))[1:]  # M^{-1}(z) / z
    return chi + np.concatenate([[0.0], chi[:-1]])


def _moments_from_s(s: np.ndarray) -> np.ndarray:
    """Inverse of :func:`_s_from_moments`: m_1..m_n from S-transform coefficients s_0..s_{n-1}."""
    n = len(s)
    chi = _mul(s, (-1.0) ** np.arange(n))  # M^{-1}(z) / z = S(z) / (1 + z)
    return _inverse(np.concatenate([[0.0], chi]))[1:]


# --- theory ------------------------------------------------------------------------------------


def weight_s_transform(weights: str, sigma_w: float, n_terms: int) -> np.ndarray:
    r"""Coefficients :math:`s_0, \dots, s_{n-1}` of the S-transform of :math:`WW^T` at infinite width.

    Gaussian :math:`W_{ij}\sim\mathcal N(0,\sigma_w^2/N)`: :math:`WW^T` is Marchenko-Pastur with ratio
    1, :math:`S(z) = \sigma_w^{-2}/(1+z) = \sigma_w^{-2}(1 - z + z^2 - \dots)`, so :math:`s_1 = -1`
    in the normalization :math:`S = \sigma_w^{-2}(1 + s_1 z + \dots)` of Pennington et al. (2017).
    Orthogonal :math:`W = \sigma_w Q`: :math:`WW^T = \sigma_w^2 I`, :math:`S(z) = \sigma_w^{-2}`.

    Example:
      >>> from jinit.spectra import weight_s_transform
      >>> weight_s_transform("gaussian", 1.0, 3).tolist(), weight_s_transform("orthogonal", 2.0, 2).tolist()
      ([1.0, -1.0, 1.0], [0.25, 0.0])
    """
    where = "weight_s_transform"
    _weights(where, weights)
    n = _int(where, "n_terms", n_terms, 1)
    sigma_w = meanfield._std(where, "sigma_w", sigma_w, positive=True)
    s = (-1.0) ** np.arange(n) if weights == "gaussian" else np.eye(1, n)[0]
    return s / sigma_w**2


def derivative_moments(phi, q_star: float, n_moments: int = 2, *, breakpoints: Sequence[float] = ()) -> np.ndarray:
    r""":math:`\mu_k = \mathbb E[\phi'(\sqrt{q^*}\xi)^{2k}]`, :math:`\xi\sim\mathcal N(0,1)`, for :math:`k = 1..n`.

    The moments of the squared diagonal :math:`D^2` of a layer's Jacobian (Pennington et al. 2017,
    Sec. 2). Computed by :mod:`jinit._quadrature` (Gauss-Legendre panels with edges at the kinks
    of :math:`\phi`, float64) with :math:`\phi'` from ``jax.grad``, as in :mod:`jinit.meanfield`;
    ``q_star = 0`` is the limit :math:`q\to 0^+` (evaluated at :data:`jinit.meanfield.Q_LIMIT`).

    Example:
      >>> from jinit.spectra import derivative_moments
      >>> derivative_moments("relu", 1.0, 3).round(12).tolist()  # phi'^2 is 0 or 1 with probability 1/2
      [0.5, 0.5, 0.5]
    """
    where = "derivative_moments"
    act = meanfield._Phi(where, phi, breakpoints)
    q = meanfield._std(where, "q_star", q_star, positive=False)
    n = _int(where, "n_moments", n_moments, 1)
    return _mu(act, q, n)[0]


def _mu(act, q: float, n: int) -> tuple[np.ndarray, float]:
    """(mu_1..mu_n, Var[phi'^2]); the variance is integrated directly, free of cancellation."""
    u, w = _quadrature.scaled_nodes(np.array([q if q > 0 else meanfield.Q_LIMIT]), act.kinks)
    d2 = act.df(u[0]) ** 2
    mu = np.array([np.dot(w[0], d2**k) for k in range(1, n + 1)])
    # Centred on the weighted mean of the same rounding as sum(w): a constant phi'^2 gives exactly 0.
    centre = np.dot(w[0], d2) / np.dot(w[0], np.ones_like(d2))
    return mu, float(np.dot(w[0], (d2 - centre) ** 2))


@dataclass(frozen=True)
class JacobianMoments:
    r"""Moments of the spectrum of :math:`JJ^T` (infinite width), and the point they were computed at.

    ``moments[k - 1]`` is :math:`m_k = \frac1N\operatorname{tr}(JJ^T)^k`; ``mean`` is :math:`m_1`;
    ``variance`` is :math:`m_2 - m_1^2`, evaluated as :math:`L m_1^2(\operatorname{Var}[\phi'^2]/\mu_1^2 - s_1)` (the same quantity without the cancellation of :math:`m_2 - m_1^2`: exactly 0 for
    orthogonal linear networks, accurate for tanh at small :math:`q^*`); ``chi`` is
    :math:`\sigma_w^2\mu_1` (so ``mean == chi**depth``).
    """

    moments: np.ndarray
    variance: float
    depth: int
    weights: str
    sigma_w: float
    sigma_b: float
    q_star: float
    chi: float

    @property
    def mean(self) -> float:
        return float(self.moments[0])


def _resolve(where, phi, sigma_w, sigma_b, q_star, breakpoints):
    """(activation, sigma_w, sigma_b, q*): the operating point, critical unless sigma_w is given."""
    act = meanfield._Phi(where, phi, breakpoints)
    if sigma_w is None and q_star is not None:
        if sigma_b is not None:
            raise ValueError(
                f"{where}: with sigma_w=None and q_star={q_star!r}, (sigma_w, sigma_b) is the critical point "
                f"whose fixed point is q_star (jinit.meanfield.critical_line), so sigma_b must be None, got "
                f"sigma_b={sigma_b!r}; pass sigma_w as well to use a given sigma_b."
            )
        q = meanfield._std(where, "q_star", q_star, positive=True)
        line = meanfield.critical_line(act.fn, [q], breakpoints=breakpoints)
        if line.q_star.size == 0:
            raise ValueError(
                f"{where}: no critical point of phi={act.fn!r} has q_star={q:g} (it would need sigma_b^2 < 0); "
                "choose another q_star or pass sigma_w and sigma_b."
            )
        return act, float(line.sigma_w[0]), float(line.sigma_b[0]), q
    sigma_b = 0.0 if sigma_b is None else meanfield._std(where, "sigma_b", sigma_b, positive=False)
    if sigma_w is None:
        sigma_w = meanfield.critical_sigma_w(act.fn, sigma_b, breakpoints=breakpoints)
    sigma_w = meanfield._std(where, "sigma_w", sigma_w, positive=True)
    if q_star is None:
        try:
            return act, sigma_w, sigma_b, meanfield._q_star(where, act, sigma_w, sigma_b, 1.0)
        except ValueError:
            # No fixed point (the variance grows without bound). Positively homogeneous phi (linear,
            # relu, leaky relu) have a law of phi'(h)^2 that does not depend on q: q* is irrelevant.
            mu_1, mu_100 = _mu(act, 1.0, 2)[0], _mu(act, 100.0, 2)[0]
            if np.allclose(mu_1, mu_100, rtol=1e-12, atol=0):
                return act, sigma_w, sigma_b, math.nan
            raise
    q = meanfield._std(where, "q_star", q_star, positive=True)
    v = sigma_w**2 * meanfield._phi2(act, np.array([q]))[0] + sigma_b**2
    if not abs(v - q) <= _FIXED_POINT_RTOL * q:
        raise ValueError(
            f"{where}: q_star={q:g} is not a fixed point of the variance map at sigma_w={sigma_w:g}, "
            f"sigma_b={sigma_b:g} (V(q_star) = {v:.6g}); the theory assumes every layer sits at q*. "
            "Omit q_star (the fixed point reached from q0 = 1 is used), or omit sigma_w and sigma_b to "
            "take the critical point with this q_star."
        )
    return act, sigma_w, sigma_b, q


def jacobian_moments(
    depth: int,
    phi="linear",
    *,
    weights: str = "gaussian",
    sigma_w: float | None = None,
    sigma_b: float | None = None,
    q_star: float | None = None,
    n_moments: int = 2,
    breakpoints: Sequence[float] = (),
) -> JacobianMoments:
    r"""Moments :math:`m_1..m_n` of the spectrum of :math:`JJ^T` for a deep network at infinite width.

    Free multiplicative convolution of :math:`L` copies of :math:`D^2` and of :math:`WW^T`
    (Pennington, Schoenholz & Ganguli 2017, Sec. 2; see the module docstring):
    :math:`S_{JJ^T} = (S_{D^2}S_{WW^T})^L`, expanded as power series, so that

    .. math:: m_1 = \chi^L, \qquad m_2 - m_1^2 = L\,m_1^2\,(\mu_2/\mu_1^2 - 1 - s_1),

    and higher moments follow (deep linear Gaussian: the Fuss-Catalan numbers
    :math:`\binom{(L+1)k}{k}/(Lk+1)`).

    Args:
      depth: :math:`L \ge 1`, the number of layers (weight matrices and nonlinearities).
      phi: the activation: a name from :data:`jinit.activations.ACTIVATIONS` or a callable.
      weights: ``"gaussian"`` or ``"orthogonal"``.
      sigma_w, sigma_b: standard deviations (weights are :math:`\sigma_w^2/N` per entry). Default:
        the critical point, :math:`\sigma_w` = :func:`jinit.meanfield.critical_sigma_w`
        ``(phi, sigma_b)`` with ``sigma_b`` 0 if None; with ``q_star`` given and ``sigma_w=None``,
        the point of :func:`jinit.meanfield.critical_line` whose fixed point is ``q_star``
        (``sigma_b`` must then be None).
      q_star: the pre-activation variance every layer sits at. None: the fixed point reached from
        :math:`q_0 = 1` (:func:`jinit.meanfield.fixed_point`); else it must be a fixed point. When
        the variance has no fixed point but the law of :math:`\phi'(h)^2` does not depend on
        :math:`q` (linear, relu above :math:`\sigma_w = \sqrt2`), the result's ``q_star`` is nan.
      n_moments: how many moments, :math:`\ge 2`.
      breakpoints: extra kinks of ``phi`` for the quadrature (as in :mod:`jinit.meanfield`).

    Returns:
      :class:`JacobianMoments` (``.mean``, ``.variance``, ``.moments``, and the operating point).

    Example:
      >>> import jinit.spectra as sp
      >>> sp.jacobian_moments(2, "linear", n_moments=4).moments.round(9).tolist()  # Fuss-Catalan
      [1.0, 3.0, 12.0, 55.0]
      >>> th = sp.jacobian_moments(16, "tanh", weights="orthogonal", q_star=0.01)  # critical, q* = 0.01
      >>> round(th.sigma_w, 4), round(th.mean, 9), round(th.variance, 4)  # ~ 8 L q*^2 as q* -> 0
      (1.0098, 1.0, 0.0116)
    """
    where = "jacobian_moments"
    depth = _int(where, "depth", depth, 1)
    weights = _weights(where, weights)
    n = _int(where, "n_moments", n_moments, 2)
    act, sigma_w, sigma_b, q = _resolve(where, phi, sigma_w, sigma_b, q_star, breakpoints)
    mu, var_d2 = _mu(act, 1.0 if math.isnan(q) else q, n)
    if not (np.all(np.isfinite(mu)) and mu[0] > 0):
        raise ValueError(f"{where}: E[phi'(h)^2] = {mu[0]:g} at q*={q:g}; the theory needs it finite and > 0.")
    s_w = weight_s_transform(weights, sigma_w, n)
    s = _mul(_s_from_moments(mu), s_w)
    # Normalise by chi so that the series has s_0 = 1 (moments of chi^-1 JJ^T): no overflow in s^L.
    chi = sigma_w**2 * mu[0]
    m = _moments_from_s(_pow(s * chi, depth))
    with np.errstate(over="ignore"):
        m = m * chi ** (depth * np.arange(1.0, n + 1))
    s1 = s_w[1] * sigma_w**2  # S_WW^T = sigma_w^-2 (1 + s1 z + ...)
    var = depth * m[0] ** 2 * (var_d2 / mu[0] ** 2 - s1)
    return JacobianMoments(m, float(var), depth, weights, sigma_w, sigma_b, q, float(chi))


def linear_gaussian_density(x, depth: int, sigma_w: float = 1.0) -> np.ndarray:
    r"""Density of the spectrum of :math:`JJ^T` for a deep *linear* network with Gaussian weights.

    :math:`J = W^L\cdots W^1`, :math:`W_{ij}\sim\mathcal N(0, \sigma_w^2/N)`: at infinite width
    :math:`JJ^T/\sigma_w^{2L}` follows the Fuss-Catalan law of order :math:`L` (moments
    :math:`\binom{(L+1)k}{k}/(Lk+1)`; Penson & Zyczkowski 2011, "Product of Ginibre matrices:
    Fuss-Catalan and Raney distributions", Phys. Rev. E 83, 061118; Haagerup & Moller's
    parametrization), supported on :math:`(0, (L+1)^{L+1}/L^L]`:

    .. math::

        x(\varphi) = \frac{\sin^{L+1}((L+1)\varphi)}{\sin\varphi\,\sin^L(L\varphi)}, \qquad
        \rho(x(\varphi)) = \frac{\sin^2\varphi\,\sin^{L-1}(L\varphi)}{\pi\,\sin^L((L+1)\varphi)},
        \qquad 0 < \varphi < \frac{\pi}{L+1}.

    :math:`L = 1` is Marchenko-Pastur, :math:`\rho(x) = \sqrt{(4-x)/x}/(2\pi)`. :math:`x(\varphi)`
    decreases monotonically, so it is inverted by bisection (to float64 rounding). The density
    diverges as :math:`x^{-L/(L+1)}` at 0; it is 0 outside the support (and returned as ``inf`` at
    0). The spread of this law grows like its variance, :math:`L`: no dynamical isometry.

    Example:
      >>> from jinit.spectra import linear_gaussian_density
      >>> import numpy as np
      >>> print(np.round(linear_gaussian_density([1.0, 2.0], depth=1), 6))  # sqrt((4 - x) / x) / (2 pi)
      [0.275664 0.159155]
    """
    where = "linear_gaussian_density"
    L = _int(where, "depth", depth, 1)
    sigma_w = meanfield._std(where, "sigma_w", sigma_w, positive=True)
    scale = sigma_w ** (2 * L)
    x = np.asarray(x, dtype=np.float64) / scale
    edge = (L + 1) ** (L + 1) / L**L
    inside = (x > 0) & (x < edge)
    xi = np.where(inside, x, 1.0)
    lo, hi = np.zeros_like(xi), np.full_like(xi, math.pi / (L + 1))

    def x_of(p):
        return np.sin((L + 1) * p) ** (L + 1) / (np.sin(p) * np.sin(L * p) ** L)

    with np.errstate(divide="ignore", invalid="ignore"):
        for _ in range(64):  # bisection: the bracket shrinks to float64 rounding of pi / (L + 1)
            mid = 0.5 * (lo + hi)
            big = x_of(mid) > xi
            lo, hi = np.where(big, mid, lo), np.where(big, hi, mid)
        p = 0.5 * (lo + hi)
        rho = np.sin(p) ** 2 * np.sin(L * p) ** (L - 1) / (math.pi * np.sin((L + 1) * p) ** L)
    out = np.where(inside, rho, 0.0)
    out = np.where(x == 0, np.inf, out)
    return out / scale


# --- measurement at finite width -------------------------------------------------------------


@dataclass(frozen=True)
class MeasuredMoments:
    r"""Moments of the spectrum of :math:`JJ^T` measured on finite random networks.

    ``moments[i, k - 1]`` is the average over ``n_samples`` networks of
    :math:`\frac1N\sum_j\lambda_j^k` at ``depths[i]`` (:math:`\lambda_j` the squared singular values of
    :math:`J`), ``stderr`` its standard error (sample std / sqrt(n_samples)); ``variance[i]`` is the
    average over networks of the spectrum's variance :math:`m_2 - m_1^2` and ``variance_stderr`` its
    standard error; ``eigenvalues[i]`` holds every :math:`\lambda` (shape ``(n_samples, width)``), e.g.
    for a histogram. The point (:math:`\sigma_w, \sigma_b, q^*`) is the one the theory uses.
    """

    depths: tuple[int, ...]
    moments: np.ndarray
    stderr: np.ndarray
    variance: np.ndarray
    variance_stderr: np.ndarray
    eigenvalues: np.ndarray
    width: int
    weights: str
    sigma_w: float
    sigma_b: float
    q_star: float


@functools.lru_cache(maxsize=None)
def _unit_init(kind: str):
    """Unit-scale initializers, jitted once (a plain call re-traces): each compiles once per shape."""
    if kind == "gaussian":
        init = variance.variance_scaling(1.0, "fan_in", "normal")
    elif kind == "orthogonal":
        init = structured.orthogonal()  # Householder: on CPU faster than XLA's QR ("qr")
    else:
        init = basic.normal()
    return jax.jit(init, static_argnums=1)


def _draw(key, weights, sigma_w, sigma_b, q, fn, width, depth, n_samples):
    """Weights (S, L, N, N), biases (S, L, N) and inputs (S, N) from jinit's own initializers.

    ``sigma_w * variance_scaling(1, "fan_in", "normal")`` is ``variance_scaling(sigma_w**2, ...)``
    and ``sigma_w * orthogonal()`` is ``orthogonal(scale=sigma_w)``, sample for sample. One call per
    matrix, stacked on the host: every compiled shape depends on the width only.
    """
    kw, kb, kx = jax.random.split(key, 3)
    count = n_samples * depth
    w_init, b_init = _unit_init(weights), _unit_init("bias")
    # Inputs x0 = phi(sqrt(q*) z) give h^1 the variance sigma_w^2 E[phi^2] + sigma_b^2 = V(q*) = q*.
    z = math.sqrt(1.0 if math.isnan(q) else q) * jax.random.normal(kx, (n_samples, width))
    W, b, x0 = jax.device_get((  # one transfer at the end: the calls run asynchronously
        [w_init(k, (width, width)) for k in jax.random.split(kw, count)],
        [b_init(k, (width,)) for k in jax.random.split(kb, count)],
        fn(z),
    ))
    shape = (n_samples, depth, width)
    return sigma_w * np.stack(W).reshape(*shape, width), sigma_b * np.stack(b).reshape(shape), np.asarray(x0)


@functools.partial(jax.jit, static_argnums=4)
def _layer(x, J, w, b, fn):
    """One layer: x -> phi(x @ w + b) and J -> D w^T J, D = diag phi'(x @ w + b)."""
    x, d = jax.jvp(fn, (x @ w + b,), (jnp.ones_like(b),))  # phi elementwise: the tangent is phi'(h)
    return x, d[:, None] * (w.T @ J)


def _spectra(W, b, x0, fn, depths) -> np.ndarray:
    """Squared singular values (S, len(depths), N) of the Jacobians of the depth-d prefixes.

    Layers are applied as x @ W + b (the flax.linen Dense convention, kernel (in, out)), so a
    layer's Jacobian is D W^T and J_l = D_l W_l^T J_{l-1}: exactly what ``jax.jacfwd`` of the
    depth-l network gives, accumulated in one pass so that every depth up to L costs one network.
    One network and one layer at a time (float32): the two programs compiled, a layer and the SVD,
    depend on the width and the activation only, not on the depth or the number of samples.
    """
    out = []
    for i in range(x0.shape[0]):
        x, J = jnp.asarray(x0[i]), jnp.eye(x0.shape[-1], dtype=jnp.float32)
        for l in range(max(depths)):
            x, J = _layer(x, J, W[i, l], b[i, l], fn)
            if l + 1 in depths:
                out.append(jnp.linalg.svd(J, compute_uv=False))
    s = np.asarray(jax.device_get(out), dtype=np.float64)  # one wait, at the end
    return s.reshape(x0.shape[0], len(depths), x0.shape[-1]) ** 2


def measure_jacobian_moments(
    depth,
    phi="linear",
    *,
    width: int = 256,
    weights: str = "gaussian",
    sigma_w: float | None = None,
    sigma_b: float | None = None,
    q_star: float | None = None,
    n_samples: int = 4,
    n_moments: int = 2,
    key=None,
    breakpoints: Sequence[float] = (),
) -> MeasuredMoments:
    r"""Measured moments of the spectrum of :math:`JJ^T` for random networks of finite ``width``.

    Draws ``n_samples`` independent networks :math:`h^l = x^{l-1}W^l + b^l`, :math:`x^l = \phi(h^l)`
    of ``max(depth)`` layers, with :func:`jinit.variance_scaling` ``(sigma_w**2, "fan_in",
    "normal")`` or :func:`jinit.orthogonal` ``(scale=sigma_w)`` kernels and
    :math:`\mathcal N(0,\sigma_b^2)` biases, and one input each, :math:`x^0 = \phi(\sqrt{q^*}z)`,
    :math:`z\sim\mathcal N(0, I_N)`, so that the pre-activations start at the fixed point
    :math:`q^*`. The Jacobian :math:`\partial x^l/\partial x^0` of every prefix is accumulated
    exactly in float32 (the product :math:`\prod D^l W^{lT}`, what ``jax.jacfwd`` or
    :func:`jinit.jacobian_spectrum` returns for the same network), and its squared singular
    values are taken at each requested depth. The operating point (``sigma_w``, ``sigma_b``,
    ``q_star``) is resolved exactly as in :func:`jacobian_moments`, so the two compare directly.

    Finite width biases the moments: relative corrections of order :math:`L/N` to the variance
    (e.g. the second moment of a product of :math:`L` real Ginibre matrices exceeds
    :math:`L + 1` by a term of order :math:`L^2/N`); and the sample variance over networks shrinks
    only as ``1 / n_samples``. Compare with a tolerance of a few standard errors plus
    :math:`O(L/N)` of the value.

    Args:
      depth: an integer :math:`\ge 1`, or a sequence of them (one network of the largest depth
        serves every depth).
      width: :math:`N`, the width of every layer (and of the input).
      n_samples: independent networks (and inputs), :math:`\ge 2` for standard errors.
      key: a ``jax.random`` key (default ``jax.random.key(0)``).
      phi, weights, sigma_w, sigma_b, q_star, n_moments, breakpoints: as in :func:`jacobian_moments`.

    Example:
      >>> import jax, jinit.spectra as sp
      >>> m = sp.measure_jacobian_moments(4, "linear", width=64, weights="orthogonal", n_samples=2)
      >>> print(f"{m.moments[0, 0]:.4f} {m.variance[0]:.1e}")  # every singular value is 1
      1.0000 0.0e+00
    """
    where = "measure_jacobian_moments"
    depths = _depths(where, depth)
    weights = _weights(where, weights)
    width = _int(where, "width", width, 1)
    n_samples = _int(where, "n_samples", n_samples, 2)
    n = _int(where, "n_moments", n_moments, 2)
    act, sigma_w, sigma_b, q = _resolve(where, phi, sigma_w, sigma_b, q_star, breakpoints)
    fn = act.fn
    key = jax.random.key(0) if key is None else key
    L = max(depths)
    W, b, x0 = _draw(key, weights, sigma_w, sigma_b, q, fn, width, L, n_samples)
    lam = _spectra(W, b, x0, fn, depths)  # (S, D, N)
    per = np.stack([np.mean(lam**k, axis=-1) for k in range(1, n + 1)], axis=-1)  # (S, D, n)
    var = per[..., 1] - per[..., 0] ** 2
    se = np.std(per, axis=0, ddof=1) / math.sqrt(n_samples)
    return MeasuredMoments(
        depths, per.mean(axis=0), se, var.mean(axis=0), np.std(var, axis=0, ddof=1) / math.sqrt(n_samples),
        np.moveaxis(lam, 1, 0), width, weights, sigma_w, sigma_b, q,
    )
