r"""Mean-field theory of signal propagation in deep random networks, and critical initialization.

A fully connected layer :math:`h^{l+1} = W^{l+1}\phi(h^l) + b^{l+1}` with
:math:`W_{ij}\sim\mathcal N(0, \sigma_w^2/n)` and :math:`b_i\sim\mathcal N(0, \sigma_b^2)` maps, in the
infinite-width limit (Poole et al. 2016, "Exponential expressivity in deep neural networks through
transient chaos"; Schoenholz et al. 2017, "Deep Information Propagation"), the pre-activation
variance :math:`q` of one input and the correlation :math:`c` of two inputs by

.. math::

    q^{l+1} = \mathcal V(q^l) = \sigma_w^2\,\mathbb E_z[\phi(\sqrt{q^l} z)^2] + \sigma_b^2, \qquad
    c^{l+1} = \frac{\sigma_w^2\,\mathbb E[\phi(u_1)\phi(u_2)] + \sigma_b^2}{q^*},

with :math:`z\sim\mathcal N(0,1)` and :math:`(u_1, u_2)` Gaussian with variances :math:`q^*` and
correlation :math:`c^l`. With the fixed point :math:`q^*` of the first map,

* :math:`\chi_1 = \sigma_w^2\,\mathbb E[\phi'(\sqrt{q^*}z)^2]` is the slope of the correlation map
  at :math:`c = 1` and the mean squared singular value of a layer's Jacobian: :math:`\chi_1 < 1` is
  the *ordered* phase (correlations go to 1, gradients vanish), :math:`\chi_1 > 1` the *chaotic*
  phase (nearby inputs decorrelate, gradients explode), :math:`\chi_1 = 1` the *critical line* (the
  edge of chaos);
* :math:`\chi_c = \sigma_w^2\,\mathbb E[\phi'(u_1)\phi'(u_2)]` at the stable fixed point :math:`c^*`
  of the correlation map is its slope there (:math:`\chi_c = \chi_1` when :math:`c^* = 1`);
* the depth scales (Schoenholz et al. 2017, eqs. 6 and 9) are

  .. math::

      \xi_q^{-1} = -\ln\Big[\chi_1 + \sigma_w^2\,\mathbb E\big[\phi''(\sqrt{q^*}z)\,\phi(\sqrt{q^*}z)\big]\Big],
      \qquad \xi_c^{-1} = -\ln \chi_c,

  the number of layers over which :math:`q` and :math:`c` relax to their fixed points;
  :math:`\xi_c` diverges on the critical line, and random networks train only when their depth is
  below about :math:`6\,\xi_c` (:func:`max_trainable_depth`). The argument of :math:`\xi_q`'s
  logarithm is :math:`\mathcal V'(q^*)`; it is computed as
  :math:`\sigma_w^2\,\mathbb E[z\,\phi\,\phi'(\sqrt{q^*}z)]/\sqrt{q^*}` (Gaussian integration by
  parts), which needs no second derivative and stays exact for kinked :math:`\phi` (hard tanh's
  :math:`\phi''` has Dirac masses that autodiff would miss).

Every function takes the standard deviations ``sigma_w`` (:math:`\sigma_w > 0`) and ``sigma_b``
(:math:`\sigma_b \ge 0`) and any activation: a callable ``R -> R`` applied elementwise (written with
``jax.numpy`` / ``jax.nn`` where a derivative is needed: :math:`\phi'` is ``jax.grad`` of it) or a
name from :data:`jinit.activations.ACTIVATIONS`. Expectations use composite Gauss-Legendre quadrature
in float64 (:mod:`jinit._quadrature`) with panel edges at the kinks of :math:`\phi` (``0``,
``+-1``, ``+-3``, ``6`` by default; pass others as ``breakpoints``), so relu-like activations are
integrated to rounding, and the two-dimensional expectations refine around the smoothed kinks that
appear when :math:`c` is close to 1. Results are accurate to about 1e-13 relative.

Degenerate cases, as defined here:

* :math:`q^* = 0` (e.g. tanh or relu with :math:`\sigma_b = 0` in the ordered phase: the signal
  dies out) is reported by :func:`fixed_point` as ``0.0``; everything evaluated "at :math:`q^*`"
  then is the limit :math:`q \to 0^+` (computed at :math:`q = 10^{-30}`): tanh at
  :math:`\sigma_b = 0` has :math:`\chi_1 = \sigma_w^2`, so its critical point is :math:`\sigma_w = 1`.
* When every :math:`q` is a fixed point (relu at :math:`\sigma_w^2 = 2, \sigma_b = 0`, or linear at
  :math:`\sigma_w = 1, \sigma_b = 0`: the map is the identity) the fixed point reached is the
  starting variance ``q0``, which is returned.
* When the variance grows without bound (relu with :math:`\sigma_w^2 > 2`, or
  :math:`\sigma_w^2 = 2` and :math:`\sigma_b > 0`) there is no fixed point and a ``ValueError`` says
  so; :func:`phase_diagram` marks those points ``inf``.
* A phase is "critical" when :math:`|\chi_1 - 1| \le` ``CRITICAL_TOL`` (1e-12); depth scales are
  then ``math.inf``.

Example:
  >>> import jax, jinit.meanfield as mf
  >>> round(mf.critical_sigma_w("relu"), 6), round(mf.critical_sigma_w("tanh"), 6)
  (1.414214, 1.0)
  >>> mf.analyze(1.5, 0.05, "tanh").phase
  'chaotic'
"""

from __future__ import annotations

import functools
import math
import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jinit import _quadrature, basic, structured, variance
from jinit._core import FLOAT_COMPLEX, Initializer, check_dtype, check_real, factory, renamed
from jinit.activations import resolve_activation

__all__ = [
    "variance_map",
    "fixed_point",
    "chi1",
    "correlation_map",
    "correlation_fixed_point",
    "chi_c",
    "xi_q",
    "xi_c",
    "max_trainable_depth",
    "analyze",
    "MeanField",
    "critical_line",
    "CriticalLine",
    "critical_sigma_w",
    "phase_diagram",
    "critical_normal",
    "critical_orthogonal",
    "critical_bias",
    "CRITICAL_TOL",
    "TRAINABLE_DEPTH_FACTOR",
]

CRITICAL_TOL = 1e-12
"""|chi - 1| at or below this counts as critical (depth scales are then infinite)."""
TRAINABLE_DEPTH_FACTOR = 6.0
"""Schoenholz et al. 2017: networks deeper than about 6 xi_c do not train."""
Q_LIMIT = 1e-30
"""Variance at which the q -> 0+ limits are evaluated when q* = 0."""
_Q_MIN, _Q_MAX = 1e-280, 1e200
_SCAN = 1e8
_CHUNK = 1 << 16
_KINK_EPS, _KINK_TOL = 1e-6, 1e-3


# --- activations -------------------------------------------------------------------------------


@functools.lru_cache(maxsize=128)
def _compiled(fn: Callable, derivative: bool) -> Callable:
    g = jax.vmap(jax.grad(fn)) if derivative else fn
    return jax.jit(g)


def _compile(fn: Callable, derivative: bool) -> Callable:
    try:
        return _compiled(fn, derivative)
    except TypeError:  # unhashable callable
        return jax.jit(jax.vmap(jax.grad(fn)) if derivative else fn)


def _detect_kinks(fn: Callable) -> tuple[float, ...]:
    """Which of the default kink locations really are kinks (a jump of phi, phi' or phi'')."""
    b = np.asarray(_quadrature.DEFAULT_KINKS)
    try:
        with jax.enable_x64(True):
            x = jnp.asarray(np.concatenate([b - _KINK_EPS, b + _KINK_EPS]))
            probe = jax.jit(lambda x: (fn(x), jax.vmap(jax.grad(fn))(x), jax.vmap(jax.grad(jax.grad(fn)))(x)))
            values = [np.asarray(v, dtype=np.float64).reshape(-1) for v in probe(x)]
    except Exception:  # not differentiable by jax: refine around every default kink
        return tuple(float(x) for x in b)
    jump = np.zeros(b.size, dtype=bool)
    for v in values:
        if v.size != 2 * b.size:
            return tuple(float(x) for x in b)
        left, right = v[: b.size], v[b.size :]
        with np.errstate(invalid="ignore"):
            jump |= ~(np.abs(right - left) <= _KINK_TOL * (1 + np.abs(left) + np.abs(right)))
    return tuple(float(x) for x in b[jump])


@functools.lru_cache(maxsize=128)
def _cached_kinks(fn: Callable) -> tuple[float, ...]:
    return _detect_kinks(fn)


class _Phi:
    """An activation with float64, chunked, jit-compiled evaluation of phi and phi'."""

    def __init__(self, where: str, phi: Any, breakpoints: Sequence[float] = ()):
        phi = resolve_activation(where, phi)
        extra = []
        items = (breakpoints,) if isinstance(breakpoints, numbers.Real) else breakpoints
        for x in items:
            if isinstance(x, bool) or not isinstance(x, numbers.Real) or not math.isfinite(x):
                raise ValueError(f"{where}: breakpoints must be finite real numbers, got {breakpoints!r}.")
            extra.append(float(x))
        self.fn, self.where = phi, where
        self.kinks = tuple(sorted(set(_quadrature.DEFAULT_KINKS) | set(extra)))
        try:
            detected = _cached_kinks(phi)
        except TypeError:
            detected = _detect_kinks(phi)
        self.refine = tuple(sorted(set(detected) | set(extra)))

    def _run(self, derivative: bool, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, dtype=np.float64)
        flat = u.reshape(-1)
        n = flat.size
        size = _CHUNK if n > _CHUNK else max(1024, 1 << max(n - 1, 1).bit_length())
        flat = np.concatenate([flat, np.zeros((-n) % size)])
        out = []
        # Constants of a factory (q*, a critical sigma_w) are computed when it is built,
        # which may happen while a caller traces a jitted function: evaluate eagerly.
        with jax.enable_x64(True), jax.ensure_compile_time_eval():
            try:
                g = _compile(self.fn, derivative)
                for i in range(0, flat.size, size):
                    out.append(np.asarray(g(jnp.asarray(flat[i : i + size])), dtype=np.float64))
            except Exception as err:
                if derivative:
                    raise TypeError(
                        f"{self.where}: phi' is computed with jax.grad, so phi must be written with "
                        f"jax.numpy / jax.nn and map a scalar to a scalar; jax.grad({self.fn!r}) failed: {err}"
                    ) from err
                out = [_quadrature.evaluate(self.fn, flat)]  # e.g. a numpy function
        y = np.concatenate([np.asarray(o, dtype=np.float64).reshape(-1) for o in out])
        if y.size != flat.size:
            raise ValueError(f"{self.where}: phi must act elementwise (same output shape as input).")
        return y[:n].reshape(u.shape)

    def f(self, u):
        return self._run(False, u)

    def df(self, u):
        return self._run(True, u)


def _std(where: str, name: str, value: Any, *, positive: bool) -> float:
    """A standard deviation (sigma_w, sigma_b) or variance (q) argument, as a float."""
    return float(check_real(where, name, value, positive=positive, nonnegative=not positive))


def _grid(where: str, name: str, values: Any, *, positive: bool) -> np.ndarray:
    try:
        a = np.asarray(values, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{where}: {name} must be a sequence of real numbers, got {values!r}.") from err
    if a.size == 0 or not np.all(np.isfinite(a)) or (np.any(a <= 0) if positive else np.any(a < 0)):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{where}: {name} must be a non-empty sequence of finite values {bound}, got {values!r}.")
    return a


# --- the variance map and its fixed point ------------------------------------------------------


def _phi2(act: _Phi, q: np.ndarray) -> np.ndarray:
    u, w = _quadrature.scaled_nodes(q, act.kinks)
    return np.sum(w * act.f(u) ** 2, axis=1)


def _solve_q(act: _Phi, sw2: np.ndarray, sb2: np.ndarray, q0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fixed points of q -> sw2 E[phi(sqrt(q) z)^2] + sb2 reached from q0, vectorised over rows.

    Returns (q_star, diverged). Brackets a sign change of h(q) = V(q) - q by scanning from q0 in
    factors of 1e8 (up while h > 0, down while h < 0), then refines it by Illinois regula falsi.
    Only |h| > 1e-12 q counts as a crossing: h is computed with a rounding error of about 1e-16 q,
    so a map that grows like q + const (relu at sigma_w^2 = 2, sigma_b > 0) must not be mistaken
    for one with a fixed point near 1e16, nor a map with V(q)/q -> 1 as q -> 0 for one with a
    fixed point at 1e-30.
    """
    m = sw2.size
    q_star = np.full(m, np.nan)
    diverged = np.zeros(m, dtype=bool)

    def h(q, rows):
        return sw2[rows] * _phi2(act, q) + sb2[rows] - q

    h0 = h(q0, np.arange(m))
    identity = np.abs(h0) <= CRITICAL_TOL * q0
    q_star[identity] = q0[identity]
    diverged |= ~np.isfinite(h0)
    lo, hi = np.where(h0 > 0, q0, np.nan), np.where(h0 < 0, q0, np.nan)
    hlo, hhi = np.where(h0 > 0, h0, np.nan), np.where(h0 < 0, h0, np.nan)
    up = np.isfinite(h0) & ~identity & (h0 > 0)
    down = np.isfinite(h0) & ~identity & (h0 < 0)
    while up.any():
        r = np.flatnonzero(up)
        qn = lo[r] * _SCAN
        too_big = qn > _Q_MAX
        hn = np.full(r.size, np.inf)
        if (~too_big).any():
            hn[~too_big] = h(qn[~too_big], r[~too_big])
        bad = ~np.isfinite(hn)
        diverged[r[bad]] = True
        found = ~bad & (hn <= -CRITICAL_TOL * qn)  # below rounding noise: a real crossing
        hi[r[found]], hhi[r[found]] = qn[found], hn[found]
        move = ~bad & ~found
        lo[r[move]], hlo[r[move]] = qn[move], hn[move]
        up[r[bad | found]] = False
    while down.any():
        r = np.flatnonzero(down)
        qn = hi[r] / _SCAN
        zero = qn < _Q_MIN
        q_star[r[zero]] = 0.0  # the variance decays to 0: V(q) < q all the way down
        hn = np.full(r.size, -np.inf)
        if (~zero).any():
            hn[~zero] = h(qn[~zero], r[~zero])
        found = ~zero & (hn >= CRITICAL_TOL * qn)
        lo[r[found]], hlo[r[found]] = qn[found], hn[found]
        move = ~zero & ~found
        hi[r[move]], hhi[r[move]] = qn[move], hn[move]
        down[r[zero | found]] = False
    active = np.isfinite(lo) & np.isfinite(hi) & ~diverged & np.isnan(q_star)
    side = np.zeros(m, dtype=np.int8)
    for _ in range(300):
        if not active.any():
            break
        r = np.flatnonzero(active)
        a, b, fa, fb = lo[r], hi[r], hlo[r], hhi[r]
        wide = b > 4 * a
        with np.errstate(invalid="ignore", divide="ignore"):
            x = np.where(wide, np.sqrt(a * b), (a * fb - b * fa) / (fb - fa))
        bad = ~((x > a) & (x < b))
        x[bad] = 0.5 * (a[bad] + b[bad])
        fx = h(x, r)
        if not np.all(np.isfinite(fx)):
            fx = np.where(np.isfinite(fx), fx, 0.0)
        pos = fx >= 0
        ill = ~wide & ~bad
        # Illinois: when the same end survives twice, halve its value.
        halve_hi = pos & ill & (side[r] == 1)
        halve_lo = ~pos & ill & (side[r] == -1)
        hhi[r[halve_hi]] *= 0.5
        hlo[r[halve_lo]] *= 0.5
        lo[r[pos]], hlo[r[pos]] = x[pos], fx[pos]
        hi[r[~pos]], hhi[r[~pos]] = x[~pos], fx[~pos]
        side[r] = np.where(ill, np.where(pos, 1, -1), 0)
        done = (fx == 0) | (hi[r] - lo[r] <= 4 * np.finfo(float).eps * hi[r])
        q_star[r[done]] = x[done]
        active[r[done]] = False
    rest = active
    q_star[rest] = 0.5 * (lo[rest] + hi[rest])
    return q_star, diverged


def _diverges(where: str, sigma_w: float, sigma_b: float, act: _Phi) -> ValueError:
    return ValueError(
        f"{where}: the variance map q -> sigma_w^2 E[phi(sqrt(q) z)^2] + sigma_b^2 diverges (q -> inf) "
        f"for sigma_w={sigma_w:g}, sigma_b={sigma_b:g}, phi={act.fn!r}: there is no fixed point q* "
        "(e.g. relu with sigma_w^2 > 2, or sigma_w^2 = 2 with sigma_b > 0). Use a smaller sigma_w, "
        "on or below the critical line (critical_sigma_w)."
    )


def _q_star(where, act, sigma_w, sigma_b, q0) -> float:
    q, div = _solve_q(act, np.array([sigma_w**2]), np.array([sigma_b**2]), np.array([q0]))
    if div[0]:
        raise _diverges(where, sigma_w, sigma_b, act)
    return float(q[0])


@dataclass(frozen=True)
class _Point:
    q_star: float
    q_eval: float  # q* or, when q* = 0, Q_LIMIT
    q_norm: float  # V(q_eval): the normaliser of the correlation map (= q* when q* > 0)
    chi1: float
    slope: float  # V'(q*)


def _point(where, act, sigma_w, sigma_b, q0) -> _Point:
    q_star = _q_star(where, act, sigma_w, sigma_b, q0)
    q = q_star if q_star > 0 else Q_LIMIT
    u, w = _quadrature.scaled_nodes(np.array([q]), act.kinks)
    u, w = u[0], w[0]
    f, df = act.f(u), act.df(u)
    sw2 = sigma_w**2
    q_norm = sw2 * np.dot(w, f * f) + sigma_b**2
    chi = sw2 * np.dot(w, df * df)
    slope = sw2 * np.dot(w, u * f * df) / q  # E[z phi phi'] / sqrt(q), z = u / sqrt(q)
    if not all(map(np.isfinite, (q_norm, chi, slope))):
        raise ValueError(f"{where}: phi or phi' is not finite at the fixed point q* = {q_star:g}.")
    return _Point(q_star, q, float(q_norm), float(chi), float(slope))


def _setup(where, phi, sigma_w, sigma_b, q0, breakpoints):
    act = _Phi(where, phi, breakpoints)
    sigma_w = _std(where, "sigma_w", sigma_w, positive=True)
    sigma_b = _std(where, "sigma_b", sigma_b, positive=False)
    q0 = _std(where, "q0", q0, positive=True)
    return act, sigma_w, sigma_b, q0


def variance_map(q: float, sigma_w: float, sigma_b: float, phi, *, breakpoints: Sequence[float] = ()) -> float:
    r"""One layer of the variance map :math:`\mathcal V(q) = \sigma_w^2\,\mathbb E_z[\phi(\sqrt q z)^2] + \sigma_b^2`.

    ``q`` is the pre-activation variance of the layer below (> 0; the :math:`q \to 0^+` limit is
    what :func:`fixed_point` reports as 0). ``sigma_w``, ``sigma_b`` are standard deviations.

    Example:
      >>> import jax, jinit.meanfield as mf
      >>> mf.variance_map(1.0, 2 ** 0.5, 0.0, jax.nn.relu)  # He init preserves q
      1.0
    """
    where = "variance_map"
    act, sigma_w, sigma_b, _ = _setup(where, phi, sigma_w, sigma_b, 1.0, breakpoints)
    q = _std(where, "q", q, positive=True)
    return float(sigma_w**2 * _phi2(act, np.array([q]))[0] + sigma_b**2)


def fixed_point(sigma_w: float, sigma_b: float, phi, q0: float = 1.0, *, breakpoints: Sequence[float] = ()) -> float:
    r"""The fixed point :math:`q^* = \mathcal V(q^*)` that iterating :func:`variance_map` from ``q0`` reaches.

    Found by bracketing a sign change of :math:`\mathcal V(q) - q` from ``q0`` and refining it to
    rounding (regula falsi); the result is a stable fixed point of a monotone map. Special cases:

    * ``0.0`` when the variance decays to zero (:math:`\mathcal V(q) < q` for all :math:`q>0`, e.g.
      tanh or relu with :math:`\sigma_b = 0` in the ordered phase);
    * ``q0`` itself when :math:`|\mathcal V(q_0) - q_0| \le 10^{-12} q_0`: in particular when every
      :math:`q` is a fixed point (relu with :math:`\sigma_w^2 = 2, \sigma_b = 0`);
    * ``ValueError`` when the variance grows without bound (relu with :math:`\sigma_w^2 > 2`).

    Example:
      >>> import jax, jinit.meanfield as mf
      >>> round(mf.fixed_point(1.0, 0.5, jax.nn.relu), 12)  # sigma_b^2 / (1 - sigma_w^2 / 2)
      0.5
      >>> mf.fixed_point(0.9, 0.0, "tanh"), mf.fixed_point(2 ** 0.5, 0.0, "relu", q0=3.0)
      (0.0, 3.0)
    """
    act, sigma_w, sigma_b, q0 = _setup("fixed_point", phi, sigma_w, sigma_b, q0, breakpoints)
    return _q_star("fixed_point", act, sigma_w, sigma_b, q0)


def chi1(sigma_w: float, sigma_b: float, phi, *, q0: float = 1.0, breakpoints: Sequence[float] = ()) -> float:
    r""":math:`\chi_1 = \sigma_w^2\,\mathbb E_z[\phi'(\sqrt{q^*}z)^2]` at the fixed point of :func:`fixed_point`.

    :math:`\chi_1 < 1`: ordered phase (vanishing gradients); :math:`> 1`: chaotic (exploding);
    :math:`= 1`: critical. With :math:`q^* = 0` this is the limit
    :math:`\sigma_w^2\,\phi'(0)^2` (one-sided derivatives averaged in square for relu-like :math:`\phi`).

    Example:
      >>> import jax, jinit.meanfield as mf
      >>> round(mf.chi1(2 ** 0.5, 0.0, jax.nn.relu), 12), round(mf.chi1(1.0, 0.0, "tanh"), 12)
      (1.0, 1.0)
    """
    act, sigma_w, sigma_b, q0 = _setup("chi1", phi, sigma_w, sigma_b, q0, breakpoints)
    return _point("chi1", act, sigma_w, sigma_b, q0).chi1


# --- the correlation map -----------------------------------------------------------------------


def _pair(act: _Phi, q: float, c: float, derivative: bool) -> tuple[float, float]:
    """(E[phi(u1) phi(u2)], E[phi'(u1) phi'(u2)]) for variances q and correlation c."""
    u1, w1, u2, w2 = _quadrature.bivariate_nodes(q, c, act.kinks, act.refine)
    m = float(np.dot(w1 * act.f(u1), np.sum(w2 * act.f(u2), axis=1)))
    d = float(np.dot(w1 * act.df(u1), np.sum(w2 * act.df(u2), axis=1))) if derivative else math.nan
    return m, d


def _cmap(act, p: _Point, sigma_w, sigma_b, c) -> float:
    if c == 1.0:
        return 1.0
    m, _ = _pair(act, p.q_eval, c, False)
    return (sigma_w**2 * m + sigma_b**2) / p.q_norm


def _c_star(where, act, p: _Point, sigma_w, sigma_b) -> tuple[float, float]:
    """(c*, chi_c). Ordered or critical: c* = 1, chi_c = chi_1. Chaotic: Newton from c = 0.

    The map is convex and increasing on [0, 1] (its Hermite/Mehler series has non-negative
    coefficients) with map(0) >= 0, map(1) = 1 and slope chi_1 > 1 at 1, so it has exactly one
    fixed point in [0, 1) and Newton's iterates from 0 increase monotonically to it.
    """
    if p.chi1 <= 1 + CRITICAL_TOL:
        return 1.0, p.chi1
    try:
        key = (act.fn, act.kinks, act.refine, p, sigma_w, sigma_b)
        hash(key)
    except TypeError:  # unhashable activation: no caching
        return _solve_c(where, act, p, sigma_w, sigma_b)
    if key not in _C_CACHE:
        if len(_C_CACHE) >= 256:
            _C_CACHE.pop(next(iter(_C_CACHE)))
        _C_CACHE[key] = _solve_c(where, act, p, sigma_w, sigma_b)
    return _C_CACHE[key]


_C_CACHE: dict = {}


def _solve_c(where, act, p: _Point, sigma_w, sigma_b) -> tuple[float, float]:
    sw2, sb2 = sigma_w**2, sigma_b**2
    c = 0.0
    for _ in range(200):
        m, d = _pair(act, p.q_eval, c, True)
        g = (sw2 * m + sb2) / p.q_norm - c
        slope = sw2 * d * p.q_eval / p.q_norm  # d map / dc (Price's theorem)
        if g <= 0 or slope >= 1:
            break
        step = g / (1 - slope)
        c = min(c + step, 1.0)
        if step <= 1e-15:
            break
    else:  # pragma: no cover - Newton from the left converges
        raise RuntimeError(f"{where}: the correlation fixed point did not converge.")
    if c < 1e-15:  # map(0) = 0 up to rounding (odd phi, sigma_b = 0)
        c = 0.0
    _, d = _pair(act, p.q_eval, c, True)
    return c, sw2 * d


def _check_c(where: str, c: Any) -> np.ndarray:
    try:
        a = np.asarray(c, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{where}: c must be a real number or array of them, got {c!r}.") from err
    if not np.all(np.isfinite(a)) or np.any(np.abs(a) > 1):
        raise ValueError(f"{where}: correlations c must lie in [-1, 1], got {c!r}.")
    return a


def correlation_map(c, sigma_w: float, sigma_b: float, phi, *, q0: float = 1.0, breakpoints: Sequence[float] = ()):
    r"""The correlation map :math:`c \mapsto (\sigma_w^2\,\mathbb E[\phi(u_1)\phi(u_2)] + \sigma_b^2)/q^*`.

    :math:`(u_1, u_2)` is Gaussian with variances :math:`q^*` (from :func:`fixed_point`) and
    correlation ``c`` (a scalar or array in [-1, 1]; the result has its shape). ``c = 1`` maps to 1.
    When :math:`q^* = 0` the map is its :math:`q \to 0^+` limit, normalised by
    :math:`\mathcal V(q)` (the next layer's variance, which equals :math:`q^*` at a fixed point).

    Example:
      >>> import jax, jinit.meanfield as mf
      >>> print(f"{mf.correlation_map(0.0, 2 ** 0.5, 0.0, jax.nn.relu):.6f}")  # 1 / pi
      0.318310
    """
    where = "correlation_map"
    act, sigma_w, sigma_b, q0 = _setup(where, phi, sigma_w, sigma_b, q0, breakpoints)
    cs = _check_c(where, c)
    p = _point(where, act, sigma_w, sigma_b, q0)
    out = np.array([_cmap(act, p, sigma_w, sigma_b, float(x)) for x in cs.reshape(-1)]).reshape(cs.shape)
    return float(out) if out.ndim == 0 else out


def correlation_fixed_point(
    sigma_w: float, sigma_b: float, phi, *, q0: float = 1.0, breakpoints: Sequence[float] = ()
) -> float:
    r"""The stable fixed point :math:`c^*` in [0, 1] of :func:`correlation_map`.

    :math:`c^* = 1` in the ordered phase and on the critical line (:math:`\chi_1 \le 1`); in the
    chaotic phase the unique :math:`c^* \in [0, 1)` (0 for odd :math:`\phi` with :math:`\sigma_b = 0`).

    Example:
      >>> import jinit.meanfield as mf
      >>> mf.correlation_fixed_point(1.0, 0.3, "tanh"), mf.correlation_fixed_point(3.0, 0.0, "tanh")
      (1.0, 0.0)
    """
    where = "correlation_fixed_point"
    act, sigma_w, sigma_b, q0 = _setup(where, phi, sigma_w, sigma_b, q0, breakpoints)
    p = _point(where, act, sigma_w, sigma_b, q0)
    return _c_star(where, act, p, sigma_w, sigma_b)[0]


def chi_c(sigma_w: float, sigma_b: float, phi, *, q0: float = 1.0, breakpoints: Sequence[float] = ()) -> float:
    r""":math:`\chi_c = \sigma_w^2\,\mathbb E[\phi'(u_1)\phi'(u_2)]` at :math:`(q^*, c^*)`: the slope of the
    correlation map at its stable fixed point (equal to :math:`\chi_1` when :math:`c^* = 1`).

    Example:
      >>> import jinit.meanfield as mf
      >>> round(mf.chi_c(0.8, 0.1, "tanh") - mf.chi1(0.8, 0.1, "tanh"), 15)  # ordered: c* = 1
      0.0
    """
    where = "chi_c"
    act, sigma_w, sigma_b, q0 = _setup(where, phi, sigma_w, sigma_b, q0, breakpoints)
    p = _point(where, act, sigma_w, sigma_b, q0)
    return _c_star(where, act, p, sigma_w, sigma_b)[1]


def _depth(chi: float) -> float:
    chi = abs(chi)
    if abs(chi - 1.0) <= CRITICAL_TOL:
        return math.inf
    if chi == 0.0:
        return 0.0
    return -1.0 / math.log(chi)


def xi_q(sigma_w: float, sigma_b: float, phi, *, q0: float = 1.0, breakpoints: Sequence[float] = ()) -> float:
    r"""Depth scale of the variance, :math:`\xi_q = -1/\ln \mathcal V'(q^*)` with
    :math:`\mathcal V'(q^*) = \chi_1 + \sigma_w^2\,\mathbb E[\phi''(\sqrt{q^*}z)\,\phi(\sqrt{q^*}z)]`
    (Schoenholz et al. 2017, eq. 6): :math:`|q^l - q^*| \sim e^{-l/\xi_q}`. ``math.inf`` when
    :math:`\mathcal V'(q^*) = 1` (e.g. every :math:`q` a fixed point). Finite on the critical line
    for tanh: the variance converges even where correlations do not.

    Example:
      >>> import jax, jinit.meanfield as mf
      >>> print(f"{mf.xi_q(1.0, 0.5, jax.nn.relu):.4f}")  # -1 / ln(sigma_w^2 / 2)
      1.4427
    """
    where = "xi_q"
    act, sigma_w, sigma_b, q0 = _setup(where, phi, sigma_w, sigma_b, q0, breakpoints)
    return _depth(_point(where, act, sigma_w, sigma_b, q0).slope)


def xi_c(sigma_w: float, sigma_b: float, phi, *, q0: float = 1.0, breakpoints: Sequence[float] = ()) -> float:
    r"""Depth scale of correlations, :math:`\xi_c = -1/\ln\chi_c` (Schoenholz et al. 2017, eq. 9):
    :math:`|c^l - c^*| \sim e^{-l/\xi_c}`. Diverges (``math.inf``) on the critical line.

    Example:
      >>> import jinit.meanfield as mf
      >>> mf.xi_c(1.0, 0.0, "tanh")
      inf
      >>> print(f"{mf.xi_c(0.5, 0.0, 'tanh'):.4f}")  # q* = 0: chi_c = sigma_w^2
      0.7213
    """
    where = "xi_c"
    act, sigma_w, sigma_b, q0 = _setup(where, phi, sigma_w, sigma_b, q0, breakpoints)
    p = _point(where, act, sigma_w, sigma_b, q0)
    return _depth(_c_star(where, act, p, sigma_w, sigma_b)[1])


def max_trainable_depth(
    sigma_w: float, sigma_b: float, phi, *, q0: float = 1.0, breakpoints: Sequence[float] = ()
) -> float:
    r"""About how deep a network with this initialization still trains: :math:`6\,\xi_c`.

    Schoenholz et al. 2017 (Fig. 5-6) find that networks train when their depth is below about
    :math:`6\,\xi_c` and fail beyond. ``math.inf`` at criticality (:math:`\chi_c = 1`).

    Example:
      >>> import jinit.meanfield as mf
      >>> mf.max_trainable_depth(1.0, 0.0, "tanh")
      inf
      >>> round(mf.max_trainable_depth(1.2, 0.3, "tanh"))
      43
    """
    where = "max_trainable_depth"
    act, sigma_w, sigma_b, q0 = _setup(where, phi, sigma_w, sigma_b, q0, breakpoints)
    p = _point(where, act, sigma_w, sigma_b, q0)
    return TRAINABLE_DEPTH_FACTOR * _depth(_c_star(where, act, p, sigma_w, sigma_b)[1])


@dataclass(frozen=True)
class MeanField:
    """Everything mean-field theory says about one initialization (see :func:`analyze`)."""

    sigma_w: float
    sigma_b: float
    q_star: float
    chi1: float
    c_star: float
    chi_c: float
    xi_q: float
    xi_c: float
    phase: str  # "ordered", "critical" or "chaotic"

    @property
    def max_trainable_depth(self) -> float:
        return TRAINABLE_DEPTH_FACTOR * self.xi_c


def analyze(sigma_w: float, sigma_b: float, phi, *, q0: float = 1.0, breakpoints: Sequence[float] = ()) -> MeanField:
    r"""All the mean-field quantities at once: :math:`q^*, \chi_1, c^*, \chi_c, \xi_q, \xi_c` and the phase.

    Example:
      >>> import jinit.meanfield as mf
      >>> r = mf.analyze(1.3, 0.1, "tanh")
      >>> r.phase, round(r.q_star, 4), round(r.chi1, 4), round(r.c_star, 4), round(r.xi_c, 2)
      ('chaotic', 0.4352, 1.045, 0.4939, 30.23)
    """
    where = "analyze"
    act, sigma_w, sigma_b, q0 = _setup(where, phi, sigma_w, sigma_b, q0, breakpoints)
    p = _point(where, act, sigma_w, sigma_b, q0)
    c, chi = _c_star(where, act, p, sigma_w, sigma_b)
    phase = "critical" if abs(p.chi1 - 1) <= CRITICAL_TOL else ("ordered" if p.chi1 < 1 else "chaotic")
    return MeanField(sigma_w, sigma_b, p.q_star, p.chi1, c, chi, _depth(p.slope), _depth(chi), phase)


# --- the critical line and the phase diagram ---------------------------------------------------


# Functional form: real (not stringified) annotations, which the API docs can resolve.
CriticalLine = NamedTuple("CriticalLine", [("q_star", np.ndarray), ("sigma_w", np.ndarray), ("sigma_b", np.ndarray)])
CriticalLine.__doc__ = """Points of the critical line ``chi_1 = 1``, one per admissible ``q*``: arrays ``q_star``,
``sigma_w``, ``sigma_b`` of equal length (a named tuple: ``q, sw, sb = critical_line(...)``)."""


def _line(act: _Phi, q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sigma_w^2, sigma_b^2, V'(q)) of the critical point whose fixed point is q (vectorised)."""
    u, w = _quadrature.scaled_nodes(q, act.kinks)
    f, df = act.f(u), act.df(u)
    sw2 = 1.0 / np.sum(w * df * df, axis=1)
    return sw2, q - sw2 * np.sum(w * f * f, axis=1), sw2 * np.sum(w * u * f * df, axis=1) / q


def critical_line(phi, q_star_values, *, breakpoints: Sequence[float] = ()) -> CriticalLine:
    r"""The critical line parameterised by the fixed point :math:`q^*` (Poole et al. 2016):

    .. math:: \sigma_w^2 = 1/\mathbb E[\phi'(\sqrt{q^*}z)^2], \qquad
              \sigma_b^2 = q^* - \sigma_w^2\,\mathbb E[\phi(\sqrt{q^*}z)^2],

    kept only where :math:`\sigma_b^2 \ge 0` (values above :math:`-10^{-12} q^*` are rounding and
    set to 0; relu's line is the single point :math:`(\sqrt2, 0)` for every :math:`q^*`).

    Args:
      phi: the activation.
      q_star_values: fixed-point variances, each > 0.

    Returns:
      :class:`CriticalLine` of arrays ``q_star, sigma_w, sigma_b`` (standard deviations).

    Example:
      >>> import jinit.meanfield as mf
      >>> line = mf.critical_line("tanh", [0.5, 1.0])
      >>> [(round(float(w * w), 3), round(float(b * b), 3)) for w, b in zip(line.sigma_w, line.sigma_b)]
      [(1.688, 0.038), (2.153, 0.151)]
    """
    act = _Phi("critical_line", phi, breakpoints)
    q = _grid("critical_line", "q_star_values", q_star_values, positive=True)
    sw2, sb2, _ = _line(act, q)
    keep = np.isfinite(sw2) & np.isfinite(sb2) & (sb2 >= -CRITICAL_TOL * q)
    return CriticalLine(q[keep], np.sqrt(sw2[keep]), np.sqrt(np.maximum(sb2[keep], 0.0)))


_LINE_GRID = 10.0 ** np.arange(-30.0, 60.25, 0.25)


def critical_sigma_w(phi, sigma_b: float = 0.0, *, breakpoints: Sequence[float] = ()) -> float:
    r"""The :math:`\sigma_w` with :math:`\chi_1(\sigma_w, \sigma_b) = 1` for a given :math:`\sigma_b`.

    Solved along the critical line: a root :math:`q^*` of
    :math:`s(q) = q - \mathbb E[\phi(\sqrt q z)^2]/\mathbb E[\phi'(\sqrt q z)^2] = \sigma_b^2`, found by
    scanning :math:`q` from :math:`10^{-30}` to :math:`10^{60}` and bisecting to rounding; then
    :math:`\sigma_w = 1/\sqrt{\mathbb E[\phi'(\sqrt{q^*}z)^2]}`. The first root (smallest
    :math:`q^*`) that is a *stable* fixed point of the variance map (:math:`\mathcal V'(q^*) \le 1`,
    so that the variance of a deep network actually settles there) is used. For
    :math:`\sigma_b = 0` and :math:`\phi(0) = 0` the root is :math:`q^* \to 0^+` and
    :math:`\sigma_w = 1/|\phi'(0)|` (tanh: 1; relu: :math:`\sqrt 2`, from one-sided derivatives),
    used when the variance decays to 0 (or stays put) from :math:`q_0 = 1` at that :math:`\sigma_w`.

    Domain: the :math:`\sigma_b \ge 0` that the stable part of the critical line reaches. Tanh (and
    other odd, bounded :math:`\phi`): every :math:`\sigma_b \ge 0`. Relu, leaky relu, linear: only
    :math:`\sigma_b = 0` (their line is the single point :math:`\sigma_w^2 = 1/\mathbb E[\phi'^2]`,
    where the variance diverges as soon as :math:`\sigma_b > 0`). Gelu: :math:`\sigma_b \gtrsim 0.416`;
    silu: :math:`\sigma_b \gtrsim 0.745` (their critical points at smaller :math:`q^*` are unstable:
    the variance runs away from them); softplus: none. Outside the domain: ``ValueError`` saying
    which case applies.

    Example:
      >>> import jinit.meanfield as mf
      >>> round(mf.critical_sigma_w("tanh", sigma_b=0.05), 4)
      1.1225
    """
    where = "critical_sigma_w"
    act = _Phi(where, phi, breakpoints)
    sigma_b = _std(where, "sigma_b", sigma_b, positive=False)
    try:
        return _critical_sigma_w_cached(act.fn, sigma_b, tuple(act.kinks), tuple(act.refine))
    except TypeError:  # unhashable activation
        return _critical_sigma_w(act, sigma_b)


@functools.lru_cache(maxsize=256)
def _critical_sigma_w_cached(fn, sigma_b, kinks, refine) -> float:
    act = _Phi("critical_sigma_w", fn)
    act.kinks, act.refine = kinks, refine
    return _critical_sigma_w(act, sigma_b)


def _critical_sigma_w(act: _Phi, sigma_b: float) -> float:
    where = "critical_sigma_w"
    sb2 = sigma_b**2
    if sigma_b == 0.0:
        sw2, b2, _ = _line(act, _LINE_GRID[:1])
        if np.isfinite(b2[0]) and abs(b2[0]) <= 1e-9 * _LINE_GRID[0]:
            # q* -> 0+: critical only if the variance really decays to 0 (or stays put) from q0 = 1.
            q, div = _solve_q(act, sw2, np.zeros(1), np.ones(1))
            if not div[0] and abs(_point(where, act, math.sqrt(sw2[0]), 0.0, 1.0).chi1 - 1) <= 1e-9:
                return float(math.sqrt(sw2[0]))
    sw2, b2, _ = _line(act, _LINE_GRID)
    ok = np.isfinite(sw2) & np.isfinite(b2)
    # Sign changes of s(q) - sigma_b^2 between grid points where it exceeds its rounding noise
    # (~1e-16 q): relu's s(q) is 0 +- noise, and gelu's approaches relu's at large q.
    d = b2 - sb2
    sig = np.flatnonzero(ok & (np.abs(d) > 1e-11 * _LINE_GRID))
    change = np.flatnonzero(np.sign(d[sig[:-1]]) != np.sign(d[sig[1:]]))
    unstable = []
    for j in change:
        a, b = _LINE_GRID[sig[j]], _LINE_GRID[sig[j + 1]]
        rising = d[sig[j]] < 0
        for _ in range(200):
            mid = math.sqrt(a * b) if b > 4 * a else 0.5 * (a + b)
            if not a < mid < b:
                break
            if (_line(act, np.array([mid]))[1][0] >= sb2) == rising:
                b = mid
            else:
                a = mid
        w2, _, slope = (x[0] for x in _line(act, np.array([b])))
        if slope <= 1 + 1e-9:  # a stable fixed point of the variance map
            return float(math.sqrt(w2))
        unstable.append(f"sigma_w={math.sqrt(w2):.4g} (q*={b:.3g})")
    if unstable:
        raise ValueError(
            f"{where}: at sigma_b={sigma_b:g} the critical points of phi={act.fn!r} ({', '.join(unstable)}) "
            "are unstable fixed points of the variance map (V'(q*) > 1): the variance moves away from "
            "them, so no initialization is critical there. Try a larger sigma_b."
        )
    lo, hi = (float(np.min(b2[ok])), float(np.max(b2[ok]))) if ok.any() else (math.nan, math.nan)
    raise ValueError(
        f"{where}: no sigma_w gives chi_1 = 1 at sigma_b={sigma_b:g} for phi={act.fn!r}: along the "
        f"critical line sigma_b^2 = q* - E[phi^2]/E[phi'^2] stays within [{lo:.3g}, {hi:.3g}] for q* "
        f"in [1e-30, 1e60] (relu-like activations are critical only at sigma_b = 0)."
    )


def phase_diagram(
    phi, sigma_w_grid, sigma_b_grid, *, q0: float = 1.0, breakpoints: Sequence[float] = ()
) -> np.ndarray:
    r""":math:`\chi_1` over a grid of :math:`(\sigma_w, \sigma_b)`, for drawing the ordered/chaotic phases.

    Returns an array of shape ``(len(sigma_b_grid), len(sigma_w_grid))`` (rows: :math:`\sigma_b`,
    as ``matplotlib.contour(sigma_w_grid, sigma_b_grid, chi)`` expects): :math:`< 1` ordered,
    :math:`> 1` chaotic; the contour at 1 is the critical line. Where the variance diverges (no
    fixed point, e.g. relu above :math:`\sigma_w = \sqrt 2`) the entry is ``inf``. The fixed points
    of the whole grid are solved together (vectorised), so a 50 x 50 grid takes seconds.

    Example:
      >>> import jinit.meanfield as mf
      >>> chi = mf.phase_diagram("relu", [1.0, 2 ** 0.5, 2.0], [0.0, 0.5])
      >>> chi.round(6).tolist()
      [[0.5, 1.0, inf], [0.5, inf, inf]]
    """
    where = "phase_diagram"
    act = _Phi(where, phi, breakpoints)
    sw = _grid(where, "sigma_w_grid", sigma_w_grid, positive=True)
    sb = _grid(where, "sigma_b_grid", sigma_b_grid, positive=False)
    q0 = _std(where, "q0", q0, positive=True)
    SW, SB = np.meshgrid(sw, sb)
    sw2, sb2 = SW.ravel() ** 2, SB.ravel() ** 2
    q, div = _solve_q(act, sw2, sb2, np.full(sw2.size, q0))
    chi = np.full(sw2.size, np.inf)
    ok = ~div
    if ok.any():
        qe = np.where(q[ok] > 0, q[ok], Q_LIMIT)
        u, w = _quadrature.scaled_nodes(qe, act.kinks)
        df = act.df(u)
        chi[ok] = sw2[ok] * np.sum(w * df * df, axis=1)
    return chi.reshape(SW.shape)


# --- initializers ------------------------------------------------------------------------------


@renamed(rng="generator")
@factory
def critical_normal(
    phi,
    sigma_b: float = 0.0,
    in_axis=-2,
    out_axis=-1,
    batch_axis=(),
    *,
    generator: str | None = None,
    dtype=None,
) -> Initializer:
    r"""Gaussian weights at the edge of chaos: :math:`W \sim \mathcal N(0, \sigma_w^2/n_\text{in})`,
    :math:`\sigma_w` = :func:`critical_sigma_w` ``(phi, sigma_b)``, so that :math:`\chi_1 = 1`.

    Pair it with :func:`critical_bias` ``(sigma_b)`` for the biases. Correlations then propagate over
    :math:`\xi_c = \infty` layers (Schoenholz et al. 2017): tanh gets :math:`\sigma_w = 1` at
    :math:`\sigma_b = 0` (:math:`1.1225` at :math:`\sigma_b = 0.05`), relu :math:`\sqrt 2` (He).
    Built on :func:`jinit.variance_scaling` (``mode="fan_in"``, ``distribution="normal"``); the axes,
    ``generator`` and ``dtype`` (the returned initializer's default dtype) mean the same as there.

    Example:
      >>> import jax, jinit.meanfield as mf
      >>> w = mf.critical_normal("relu")(jax.random.key(0), (512, 512))
      >>> print(f"{w.var() * 512:.1f}")
      2.0
    """
    sigma_w = critical_sigma_w(phi, sigma_b)
    return variance.variance_scaling(
        sigma_w**2, "fan_in", "normal", in_axis, out_axis, batch_axis, generator=generator, name="critical_normal",
        dtype=dtype,
    )


@renamed(rng="generator")
@factory
def critical_orthogonal(
    phi,
    sigma_b: float = 0.0,
    column_axis: int = -1,
    *,
    method: str = "householder",
    generator: str | None = None,
    dtype=None,
) -> Initializer:
    r"""Orthogonal weights at the edge of chaos: :math:`W = \sigma_w Q`, :math:`Q` Haar-distributed
    with orthonormal columns (:func:`jinit.orthogonal`), :math:`\sigma_w` = :func:`critical_sigma_w`
    ``(phi, sigma_b)``, so that :math:`\chi_1 = \sigma_w^2\,\mathbb E[\phi'(\sqrt{q^*}z)^2] = 1`.

    The registry scheme ``"critical"``'s kernel (with :math:`\sigma_b = 0`). Correlations propagate
    over :math:`\xi_c = \infty` layers (Schoenholz et al. 2017), as with :func:`critical_normal`;
    orthogonal rather than Gaussian weights also make the input-output Jacobian of a deep tanh
    network well conditioned, dynamical isometry (Pennington, Schoenholz & Ganguli 2017): tanh
    gets :math:`\sigma_w = 1` at :math:`\sigma_b = 0`, relu :math:`\sqrt 2`. Pair it with
    :func:`critical_bias` ``(sigma_b)``. Raises (``ValueError``) where :func:`critical_sigma_w` has
    no critical point, e.g. gelu, silu or softplus at :math:`\sigma_b = 0`.

    Args:
      phi: the activation: a name from :data:`jinit.activations.ACTIVATIONS` or a callable ``R -> R``.
      sigma_b: :math:`\sigma_b \ge 0`, the biases' standard deviation.
      column_axis, method: as in :func:`jinit.orthogonal`.
      generator: generator name, ``"jax"`` or ``"philox"`` (see :mod:`jinit.rng`).
      dtype: default dtype of the returned initializer (None: float32); floating.

    Example:
      >>> import jax, jax.numpy as jnp, jinit.meanfield as mf
      >>> w = mf.critical_orthogonal("tanh")(jax.random.key(0), (64, 64))
      >>> bool(jnp.allclose(w.T @ w, jnp.eye(64), atol=1e-5))  # sigma_w = 1 for tanh
      True
    """
    sigma_w = critical_sigma_w(resolve_activation("critical_orthogonal", phi), sigma_b)
    return structured.orthogonal(
        scale=sigma_w, column_axis=column_axis, method=method, generator=generator, dtype=dtype
    )


@renamed(rng="generator")
@factory(role="bias_init")
def critical_bias(sigma_b: float = 0.0, *, generator: str | None = None, dtype=None) -> Initializer:
    r"""Biases :math:`b \sim \mathcal N(0, \sigma_b^2)` matching :func:`critical_normal` (zeros when
    :math:`\sigma_b = 0`); ``dtype`` is the returned initializer's default dtype.

    Example:
      >>> import jax, jinit.meanfield as mf
      >>> mf.critical_bias()(jax.random.key(0), (3,))
      Array([0., 0., 0.], dtype=float32)
    """
    sigma_b = _std("critical_bias", "sigma_b", sigma_b, positive=False)
    if dtype is not None:
        check_dtype("critical_bias", dtype, FLOAT_COMPLEX)
    if sigma_b == 0.0:
        return basic.zeros(dtype=dtype)
    return basic.normal(stddev=sigma_b, generator=generator, dtype=dtype)
