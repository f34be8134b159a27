"""Gaussian expectations of arbitrary functions, accurate at kinks.

E[f(z)], z ~ N(0, 1), is computed with composite Gauss-Legendre quadrature on
panels of width 1/4 covering [-10, 10] (the mass outside is below 2e-23). Panel
edges sit at every multiple of 1/4, so piecewise-smooth functions whose kinks lie
there (relu, leaky relu, elu, selu and hard tanh at 0 or +-1, relu6 at 6) are
integrated to float64 rounding; extra kinks can be passed as ``breakpoints``.
Plain Gauss-Hermite quadrature converges only algebraically at a kink.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

HALF_WIDTH = 10.0
PANEL = 0.25
ORDER = 16


@functools.lru_cache(maxsize=64)
def gauss_nodes(breakpoints: tuple[float, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Nodes z and weights w with sum(w * f(z)) ~= E[f(z)], z ~ N(0, 1)."""
    edges = np.arange(-HALF_WIDTH, HALF_WIDTH + PANEL / 2, PANEL)
    extra = [b for b in breakpoints if -HALF_WIDTH < b < HALF_WIDTH]
    edges = np.unique(np.concatenate([edges, np.asarray(extra, dtype=np.float64)]))
    x, w = np.polynomial.legendre.leggauss(ORDER)
    lo, hi = edges[:-1, None], edges[1:, None]
    z = (lo + hi) / 2 + (hi - lo) / 2 * x
    wz = (hi - lo) / 2 * w * np.exp(-0.5 * z**2) / np.sqrt(2 * np.pi)
    return z.ravel(), wz.ravel()


def evaluate(fn: Callable, z: np.ndarray) -> np.ndarray:
    """fn(z) in float64 where fn allows it (jax functions run with x64 enabled).

    Evaluated eagerly even when called while a ``jit`` is being traced (e.g. a
    gain computed inside ``model.init``): the quadrature is a constant.
    """
    with jax.enable_x64(True), jax.ensure_compile_time_eval():
        y = fn(jnp.asarray(z, dtype=jnp.float64))
    return np.asarray(y, dtype=np.float64)


def expect(fn: Callable, breakpoints: Sequence[float] = ()) -> float:
    """E[fn(z)] for z ~ N(0, 1)."""
    z, w = gauss_nodes(tuple(float(b) for b in breakpoints))
    return float(np.dot(w, evaluate(fn, z)))


# --- Scaled and bivariate Gaussian expectations (used by jinit.meanfield) ------------------------
#
# Mean-field theory needs E[f(u)] for u ~ N(0, q) and E[f(u1) g(u2)] for a correlated pair. A kink
# of f at u = b sits at z = b / sqrt(q), off the fixed grid of panel edges, so these nodes take the
# kinks in *activation* units and add them as panel edges. DEFAULT_KINKS covers the piecewise
# activations of jax.nn: relu/leaky relu/elu/selu (0), hard tanh (+-1), hard sigmoid/swish (+-3),
# relu6 (0, 6); extra kinks (and jumps of a derivative) can be passed by the caller.

DEFAULT_KINKS = (-6.0, -3.0, -1.0, 0.0, 1.0, 3.0, 6.0)
_GRID = np.arange(-HALF_WIDTH, HALF_WIDTH + PANEL / 2, PANEL)
# Below this sqrt(1 - c^2) a smoothed kink is treated as a kink: the error is O(1 - c^2) < 1e-14.
_SMOOTH_KINK_MIN = 1e-7
# Above this variance the u-space resolution edges _RESOLUTION are added (see scaled_nodes).
RESOLVE_ABOVE_Q = 4.0
_RESOLUTION = np.array([0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0])


@functools.lru_cache(maxsize=1)
def _legendre() -> tuple[np.ndarray, np.ndarray]:
    return np.polynomial.legendre.leggauss(ORDER)


@functools.lru_cache(maxsize=1)
def _grid_nodes() -> tuple[np.ndarray, np.ndarray]:
    z, w = gauss_nodes(())
    return z.reshape(-1, ORDER), w.reshape(-1, ORDER)


def panel_nodes(breakpoints) -> tuple[np.ndarray, np.ndarray]:
    """Rows of Gauss-Legendre nodes for E[f(z)], z ~ N(0, 1), one row per row of ``breakpoints``.

    ``breakpoints`` has shape ``(m, k)`` (or ``(k,)`` for one row): extra panel edges of each row, in
    z units, on top of the fixed edges at multiples of 1/4 in [-10, 10] (values outside are ignored).
    Returns ``z, w`` of shape ``(m, n)``, ``n = (80 + 2k) * 16``, with ``sum(w[i] * f(z[i])) ~=
    E[f(z)]``, exact to rounding for ``f`` smooth between the edges of row ``i``: the fixed panels
    that hold a breakpoint get zero weight and are replaced by their pieces (empty pieces have zero
    weight, so every row has the same number of nodes).
    """
    b = np.asarray(breakpoints, dtype=np.float64)
    b = b.reshape(1, -1) if b.ndim == 1 else b
    b = np.nan_to_num(b, nan=HALF_WIDTH, posinf=HALF_WIDTH, neginf=HALF_WIDTH)
    b = np.sort(np.clip(b, -2 * HALF_WIDTH, 2 * HALF_WIDTH), axis=1)
    m, k = b.shape
    gz, gw = _grid_nodes()
    npanel = gz.shape[0]
    inside = (b > -HALF_WIDTH) & (b < HALF_WIDTH)
    idx = np.clip(np.floor((b + HALF_WIDTH) / PANEL).astype(np.int64), 0, npanel - 1)
    idx = np.where(inside, idx, npanel)  # npanel: outside every panel
    b = np.where(inside, b, HALF_WIDTH)
    lo = np.where(inside, _GRID[np.minimum(idx, npanel - 1)], HALF_WIDTH)
    hi = np.where(inside, _GRID[np.minimum(idx, npanel - 1) + 1], HALF_WIDTH)
    # Piece left of breakpoint j starts at the previous breakpoint when that lies in the same panel;
    # the piece right of j is kept only for the last breakpoint of its panel.
    same_prev = np.zeros_like(inside)
    same_prev[:, 1:] = inside[:, 1:] & (idx[:, 1:] == idx[:, :-1])
    same_next = np.zeros_like(inside)
    same_next[:, :-1] = same_prev[:, 1:]
    prev = np.concatenate([np.full((m, 1), -HALF_WIDTH), b[:, :-1]], axis=1)
    left_lo = np.where(same_prev, prev, lo)
    right_hi = np.where(same_next, b, hi)
    plo = np.concatenate([left_lo, b], axis=1)[:, :, None]
    phi = np.concatenate([b, right_hi], axis=1)[:, :, None]
    x, wl = _legendre()
    half = (phi - plo) / 2
    pz = (plo + phi) / 2 + half * x
    pw = half * wl * np.exp(-0.5 * pz**2) / np.sqrt(2 * np.pi)
    w = np.broadcast_to(gw, (m, npanel, ORDER)).copy()
    rows = np.broadcast_to(np.arange(m)[:, None], idx.shape)
    w[rows[inside], idx[inside]] = 0.0
    z = np.concatenate([np.broadcast_to(gz.reshape(1, -1), (m, gz.size)), pz.reshape(m, -1)], axis=1)
    w = np.concatenate([w.reshape(m, -1), pw.reshape(m, -1)], axis=1)
    return z, w


def _with_resolution(kinks, q_max: float) -> np.ndarray:
    k = np.asarray(tuple(kinks), dtype=np.float64)
    if q_max > RESOLVE_ABOVE_Q:
        k = np.union1d(k, np.concatenate([-_RESOLUTION, _RESOLUTION]))
    return k


def scaled_nodes(q, kinks=DEFAULT_KINKS) -> tuple[np.ndarray, np.ndarray]:
    """Nodes ``u`` and weights ``w`` with ``sum(w[i] * f(u[i])) ~= E[f(u)]``, u ~ N(0, q[i]).

    ``q`` is a 1-D array of positive variances; ``kinks`` are kink locations of ``f`` in u units.
    When some ``q > RESOLVE_ABOVE_Q`` panel edges are also put at u = +-(1/4 ... 8), so that the
    O(1) feature scale of an activation is resolved when the 1/4-wide z panels are wide in u.
    """
    q = np.asarray(q, dtype=np.float64).reshape(-1)
    s = np.sqrt(q)[:, None]
    k = _with_resolution(kinks, float(q.max()) if q.size else 0.0)
    z, w = panel_nodes(k[None, :] / s if k.size else np.zeros((q.size, 0)))
    return s * z, w


def bivariate_nodes(q: float, c: float, kinks=DEFAULT_KINKS, refine=None):
    """Nodes for E[f(u1) g(u2)], (u1, u2) Gaussian, variances q, correlation c.

    Returns ``u1, w1`` (shape ``(n1,)``) and ``u2, w2`` (shape ``(n1, n2)``) with

        E[f(u1) g(u2)] ~= sum_i w1[i] f(u1[i]) sum_j w2[i, j] g(u2[i, j]).

    u1 = sqrt(q) z1, u2 = sqrt(q) (c z1 + s z2), s = sqrt(1 - c^2). The inner integral over z2 has
    its own panel edges per outer node, at the kinks of g; the outer one has edges at the kinks of f
    and, where s is small, graded edges around z1 = b / (c sqrt(q)) for the kinks b in ``refine``
    (default: all ``kinks``): there the inner integral is a kink of g smoothed over a width s / |c|
    (edges at s/|c| * 2^j, j >= -3, up to the 1/4 grid). Kinks and jumps of f and g (and of their
    first two derivatives) must be among ``kinks`` (u units) for full accuracy.
    """
    q, c = float(q), float(c)
    rq = np.sqrt(q)
    k = _with_resolution(kinks, q)
    r = np.asarray(tuple(kinks if refine is None else refine), dtype=np.float64)
    s = float(np.sqrt(max(0.0, (1.0 - c) * (1.0 + c))))
    outer = [k / rq]
    if s > 0 and abs(c) > 0 and s < PANEL * abs(c) and r.size:
        centres = r / (c * rq)
        centres = centres[np.abs(centres) < HALF_WIDTH]
        outer.append(centres)
        width = s / abs(c)
        if s >= _SMOOTH_KINK_MIN and centres.size:
            steps = width * 2.0 ** np.arange(-3, int(np.ceil(np.log2(PANEL / width))) + 1)
            offsets = np.concatenate([-steps, steps])
            outer.append((centres[:, None] + offsets[None, :]).ravel())
    z1, w1 = panel_nodes(np.concatenate(outer))
    keep = w1[0] > 0
    z1, w1 = z1[0][keep], w1[0][keep]
    u1 = rq * z1
    if s == 0.0:
        return u1, w1, c * u1[:, None], np.ones((u1.size, 1))
    z2, w2 = panel_nodes((k[None, :] / rq - c * z1[:, None]) / s)
    return u1, w1, rq * (c * z1[:, None] + s * z2), w2
