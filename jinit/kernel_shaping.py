r"""Kernel shaping: activation transforms that make deep vanilla networks trainable.

Deep Kernel Shaping (DKS: Martens et al. 2021, "Rapid training of deep neural networks without
skip connections or normalization layers using Deep Kernel Shaping", arXiv:2110.01765) and
Tailored Activation Transformation (TAT: Zhang et al. 2022, "Deep Learning without Shortcuts:
Shaping the Kernel with Tailored Rectifiers", ICLR, arXiv:2203.08120) replace the activation
:math:`\phi` of a network without skip connections or normalization layers by a transformed one,

.. math::

    \hat\phi(x) = \gamma\,\big(\phi(\alpha x + \beta) + \delta\big),

whose parameters are chosen, from the network's depth, so that the network's kernel at
initialization stays far from degenerate. The reference implementation is
``dks/base/activation_transform.py`` of google-deepmind/dks (``get_transformed_activations``);
every condition, default and constant below follows it, and the tests check this module against
the parameter values that its test suite pins.

**The normalized convention** (of both papers and of dks). A layer is
:math:`h = W \hat\phi(x)` with weights of variance :math:`1/\text{fan\_in}` (Gaussian, or scaled
orthogonal / delta-orthogonal with gain 1: the transform carries the gain) and no bias, and the
inputs are scaled to :math:`q = \lVert x\rVert^2/n = 1`. For unit-variance inputs the *local maps*
of an activation are

.. math::

    Q(q) = \mathbb E_z[\phi(\sqrt q\,z)^2], \qquad
    C(c) = \frac{\mathbb E[\phi(u_1)\phi(u_2)]}{Q(1)},

with :math:`z \sim \mathcal N(0, 1)` and :math:`(u_1, u_2)` standard Gaussians of correlation
:math:`c`. Their derivatives are :math:`C'(c) = \mathbb E[\phi'(u_1)\phi'(u_2)]/Q(1)` (Price's
theorem) and :math:`Q'(1) = \mathbb E[z\,\phi(z)\,\phi'(z)]` (Gaussian integration by parts). A
chain of :math:`L` nonlinear layers has the composed C map :math:`C_f = C^{\circ L}`.

**The network enters through its subnetwork maximizing function** :math:`\mathcal M_{f,r}(x)` (TAT
appendix "Additional details and pseudocode for activation function transformations"; dks's
``subnet_max_func``): the maximum over the network's subnetworks of its kernel function with every
nonlinear layer's local map replaced by ``r``. For a plain MLP of depth :math:`L` it is
:math:`r^{\circ L}(x)` (:func:`mlp_subnet_max`); every solver here takes either ``depth`` (that
MLP) or ``subnet_max`` (any network, e.g. a ResNet).

* **TAT, leaky ReLU** (TAT's conditions for rectifiers, :math:`Q(q) = q` and
  :math:`C_f(0) = \eta`; dks ``_get_activations_params``, ``method="TAT"``): the negative slope
  :math:`\alpha` with :math:`\max_f C_f(0) = \eta`, i.e. :math:`\mathcal M_{f, C_\alpha}(0) = \eta`
  (default :math:`\eta = 0.9`, dks's ``c_val_0_target``), where :math:`C_\alpha` is the closed-form
  :func:`leaky_relu_c_map`; the output scale :math:`\sqrt{2/(1+\alpha^2)}` gives :math:`Q(q) = q`
  (leaky ReLU is homogeneous), and :math:`C'(1) = 1` holds for every :math:`\alpha`.
* **DKS** (DKS, "Summary of our method"; dks ``method="DKS"``): :math:`Q(1) = 1`
  (via :math:`\gamma`), :math:`C(0) = 0` (via :math:`\delta = -\mathbb E[\phi(\alpha z+\beta)]`),
  :math:`Q'(1) = 1` (dks's ``local_q_slope_target``) and :math:`C'(1) = \xi` with the local slope
  :math:`\xi` solving :math:`\mathcal M_{f, x \mapsto \xi x}(1) = \zeta`, the maximal slope
  :math:`\max_f C_f'(1)` of the network (default :math:`\zeta = 1.5`, dks's
  ``c_slope_1_target``); for an MLP :math:`\xi = \zeta^{1/L}`. The two remaining unknowns
  :math:`(\alpha, \beta)` are found with a root solver from dks's starting points.

Expectations use jinit's float64 Gauss-Legendre quadrature (:mod:`jinit._quadrature`, the same as
:mod:`jinit.meanfield`), accurate to about 1e-13 for smooth and piecewise-smooth activations.

Example:
  >>> import jinit.kernel_shaping as ks
  >>> round(ks.tat_leaky_relu_slope(depth=50), 6)
  0.430523
  >>> phi = ks.tat_leaky_relu(depth=50)
  >>> a = phi.keywords["negative_slope"]
  >>> round(ks.q_map(1.0, phi), 12), round(ks.network_c_map(0.0, lambda c: ks.leaky_relu_c_map(c, a), 50), 12)
  (1.0, 0.9)
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax.numpy as jnp
import numpy as np

from jinit import _quadrature, meanfield
from jinit._core import check_int, check_real

__all__ = [
    "q_map",
    "q_map_slope",
    "c_map",
    "c_map_slope",
    "c_map_fn",
    "leaky_relu_c_map",
    "network_c_map",
    "mlp_subnet_max",
    "tat_leaky_relu_slope",
    "tat_leaky_relu",
    "local_c_slope_target",
    "DKSParams",
    "dks_params",
    "dks_activation",
    "TAT_ETA",
    "DKS_ZETA",
    "DKS_Q_SLOPE",
]

TAT_ETA = 0.9
"""Default target of :math:`\\max_f C_f(0)` for TAT with leaky ReLU (dks ``c_val_0_target``)."""
DKS_ZETA = 1.5
"""Default target of :math:`\\max_f C_f'(1)` for DKS (dks ``c_slope_1_target``, the paper's zeta)."""
DKS_Q_SLOPE = 1.0
"""Default local :math:`Q'(1)` for DKS (dks ``local_q_slope_target``)."""

# dks's search over (input_scale, input_shift): these starting points first, then random ones
# drawn uniformly from these ranges with a fixed seed, 50 tries in all (dks
# _ALWAYS_TRY_VALUES, _SAMPLE_RANGE_LOW/HIGH, _RANDOM_SEED, num_tries). Same order, so that the
# root found is the one dks finds (the system has several: (alpha, -beta) for odd phi, ...).
_DKS_STARTS = tuple(itertools.product((1.0, 0.1), (0.0, 1.0, -1.0)))
_DKS_RANDOM_LOW, _DKS_RANDOM_HIGH = (0.0, -3.0), (2.0, 3.0)
_DKS_TRIES, _DKS_SEED = 50, 123
# A root counts when every residual is below this (the quadrature is good to ~1e-13).
_DKS_TOL = 1e-10
# Activations that DKS handles with a different parameterization in dks (relu: a fixed input
# shift; leaky relu: the slope is a parameter); for these TAT is the recommended transform.
_RELU_LIKE = ("relu", "leaky_relu", "linear")


# --- local maps under the normalized convention ------------------------------------------------


def q_map(q: float, phi, *, breakpoints: Sequence[float] = ()) -> float:
    r"""The local Q map :math:`Q(q) = \mathbb E_z[\phi(\sqrt q\,z)^2]` (weights of variance 1/fan_in, no bias).

    ``phi``: a name of :data:`jinit.ACTIVATIONS` or a callable ``R -> R`` (jax.numpy). This is
    :func:`jinit.meanfield.variance_map` at :math:`\sigma_w = 1, \sigma_b = 0`.

    Example:
      >>> import jinit.kernel_shaping as ks
      >>> ks.q_map(1.0, "relu")
      0.5
    """
    return meanfield.variance_map(q, 1.0, 0.0, phi, breakpoints=breakpoints)


def q_map_slope(phi, *, breakpoints: Sequence[float] = ()) -> float:
    r""":math:`Q'(1) = \mathbb E_z[z\,\phi(z)\,\phi'(z)]`, the slope of the local Q map at :math:`q = 1`.

    Differentiating :math:`\mathbb E[\phi(\sqrt q z)^2]` at :math:`q = 1` (dks
    ``_calc_q_slope_1``); :math:`\phi'` is ``jax.grad`` of ``phi``.

    Example:
      >>> import jinit.kernel_shaping as ks
      >>> round(ks.q_map_slope("relu"), 12)  # relu is homogeneous: Q(q) = q / 2
      0.5
    """
    act = meanfield._Phi("q_map_slope", phi, breakpoints)
    z, w = _quadrature.scaled_nodes(np.array([1.0]), act.kinks)
    return float(np.sum(w * z * act.f(z) * act.df(z)))


_check_c = meanfield._check_c  # a correlation (array) in [-1, 1], errors naming the function


def _moment(act, c: float, derivative: bool) -> float:
    """E[g(u1) g(u2)] for standard Gaussians of correlation c, g = phi or phi'."""
    if c == 0.0:  # independent: E[g]^2, a one-dimensional integral (as dks does at c = 0)
        z, w = _quadrature.scaled_nodes(np.array([1.0]), act.kinks)
        return float(np.sum(w * (act.df(z) if derivative else act.f(z)))) ** 2
    return meanfield._pair(act, 1.0, c, derivative)[int(derivative)]


def _local(where: str, c, phi, breakpoints, derivative: bool):
    act = meanfield._Phi(where, phi, breakpoints)
    cs = _check_c(where, c)
    q1 = float(meanfield._phi2(act, np.array([1.0]))[0])
    if not q1 > 0:
        raise ValueError(f"{where}: Q(1) = E[phi(z)^2] is {q1}, so the C map is undefined; phi must not vanish.")
    out = np.array([_moment(act, float(x), derivative) for x in cs.reshape(-1)])
    out = out.reshape(cs.shape) / q1
    return float(out) if out.ndim == 0 else out


def c_map(c, phi, *, breakpoints: Sequence[float] = ()):
    r"""The local C map :math:`C(c) = \mathbb E[\phi(u_1)\phi(u_2)] / Q(1)` for unit-variance inputs.

    ``c``: a correlation or an array of them in [-1, 1] (the result has its shape). This is the
    normalized convention of DKS / TAT (dks ``_calc_c_map``): inputs with :math:`q = 1`, weights
    of variance 1/fan_in, so :math:`C(1) = 1`. Unlike :func:`jinit.meanfield.correlation_map` it
    is evaluated at :math:`q = 1`, not at the fixed point of the variance map.

    Example:
      >>> import jinit.kernel_shaping as ks
      >>> print(f"{ks.c_map(0.0, 'relu'):.6f}")  # 1 / pi
      0.318310
    """
    return _local("c_map", c, phi, breakpoints, False)


def c_map_slope(c, phi, *, breakpoints: Sequence[float] = ()):
    r""":math:`C'(c) = \mathbb E[\phi'(u_1)\phi'(u_2)] / Q(1)`, the slope of :func:`c_map` (Price's theorem).

    Example:
      >>> import jinit.kernel_shaping as ks
      >>> round(ks.c_map_slope(1.0, "relu"), 12)  # relu's C map has slope 1 at c = 1
      1.0
    """
    return _local("c_map_slope", c, phi, breakpoints, True)


def c_map_fn(phi, *, breakpoints: Sequence[float] = ()) -> Callable[[float], float]:
    """``c -> c_map(c, phi)`` as a one-argument function (for :func:`network_c_map`, ``subnet_max``).

    Example:
      >>> import jinit.kernel_shaping as ks
      >>> round(ks.c_map_fn("tanh")(1.0), 12)
      1.0
    """
    return lambda c: c_map(c, phi, breakpoints=breakpoints)


def leaky_relu_c_map(c, negative_slope: float):
    r"""Closed-form local C map of a leaky ReLU with negative slope :math:`\alpha` (any output scale):

    .. math::

        C(c) = c + \frac{(1-\alpha)^2}{\pi (1+\alpha^2)}\Big(\sqrt{1-c^2} - c \arccos c\Big).

    This is dks's ``_leaky_relu_cmap``, :math:`\big((1-\alpha)^2(\sqrt{1-c^2} + (\pi - \arccos c)\,c)/\pi + 2\alpha c\big)/(1+\alpha^2)`, rearranged (TAT's leaky-ReLU C map; the arc-cosine kernel of Cho &
    Saul 2009 for :math:`\alpha = 0`). ``c`` may be an array; :math:`\alpha = 1` is the identity.

    Example:
      >>> import jinit.kernel_shaping as ks
      >>> print(f"{ks.leaky_relu_c_map(0.0, 0.0):.6f}")  # relu: 1 / pi
      0.318310
    """
    where = "leaky_relu_c_map"
    a = float(check_real(where, "negative_slope", negative_slope))
    cs = _check_c(where, c)
    # The clip only absorbs rounding (|c| <= 1 was checked): sqrt(1 - c^2) of 1 + 1e-16.
    cc = np.clip(cs, -1.0, 1.0)
    out = cc + (1 - a) ** 2 / (math.pi * (1 + a**2)) * (np.sqrt(1 - cc**2) - cc * np.arccos(cc))
    return float(out) if out.ndim == 0 else out


def network_c_map(c: float, local: Callable[[float], float], depth: int) -> float:
    r"""The C map :math:`C_f(c) = C^{\circ L}(c)` of a chain of ``depth`` = :math:`L` nonlinear layers.

    ``local`` is the local C map (:func:`c_map_fn`, or ``lambda c: leaky_relu_c_map(c, a)``).

    Example:
      >>> import jinit.kernel_shaping as ks
      >>> round(ks.network_c_map(0.0, lambda c: ks.leaky_relu_c_map(c, 1.0), 10), 12)  # linear
      0.0
    """
    depth = check_int("network_c_map", "depth", depth, 1)
    for _ in range(depth):
        c = local(c)
    return float(c)


def mlp_subnet_max(depth: int) -> Callable[[float, Callable[[float], float]], float]:
    r"""The subnetwork maximizing function :math:`\mathcal M_{f,r}(x) = r^{\circ L}(x)` of an MLP.

    A plain MLP of ``depth`` = :math:`L` nonlinear layers has one subnetwork per prefix of its
    layers; for the increasing maps ``r`` with :math:`r(x) \ge x` that the solvers pass (a C map
    at 0, a slope above 1) the whole network is the maximum (TAT appendix; dks
    ``subnet_max_func``, which the caller defines for its architecture).

    Example:
      >>> import jinit.kernel_shaping as ks
      >>> ks.mlp_subnet_max(3)(1.0, lambda y: 2.0 * y)  # the maximal slope of 3 layers of slope 2
      8.0
    """
    depth = check_int("mlp_subnet_max", "depth", depth, 1)

    def subnet_max(x: float, r: Callable[[float], float]) -> float:
        for _ in range(depth):
            x = r(x)
        return x

    return subnet_max


def _network(where: str, depth, subnet_max) -> Callable:
    """The subnet maximizing function from exactly one of ``depth`` and ``subnet_max``."""
    if (depth is None) == (subnet_max is None):
        raise ValueError(
            f"{where}: pass exactly one of depth (the number of nonlinear layers of a plain MLP) and "
            f"subnet_max (a function M(x, r) for another architecture); got depth={depth!r}, "
            f"subnet_max={subnet_max!r}."
        )
    if subnet_max is not None:
        if not callable(subnet_max):
            raise TypeError(f"{where}: subnet_max must be a callable M(x, r) -> float, got {subnet_max!r}.")
        return subnet_max
    return mlp_subnet_max(check_int(where, "depth", depth, 1))


# --- TAT for leaky ReLU --------------------------------------------------------------------------


def _scaled_leaky_relu(x, *, negative_slope: float, scale: float):
    return scale * jnp.where(x >= 0, x, negative_slope * x)


def tat_leaky_relu_slope(depth: int | None = None, eta: float = TAT_ETA, *, subnet_max=None) -> float:
    r"""TAT's leaky-ReLU negative slope :math:`\alpha`: the one with :math:`\max_f C_f(0) = \eta`.

    Solves :math:`\mathcal M_{f, C_\alpha}(0) = \eta` for :math:`\alpha \in [0, 1]`, with
    :math:`C_\alpha` the closed-form :func:`leaky_relu_c_map` (TAT; dks
    ``_get_activations_params`` and ``_compute_negative_slope_param``). For a plain MLP
    (``depth`` = :math:`L`) that is :math:`C_\alpha^{\circ L}(0) = \eta`. :math:`C_\alpha(0)` and its
    iterates decrease from the relu value at :math:`\alpha = 0` to 0 at :math:`\alpha = 1` (the
    identity), so the root is unique; it is bracketed on [0, 1] and found by Brent's method to
    rounding. ``eta`` must lie in (0, 1) and be at most what a relu network of that depth reaches,
    :math:`C_0^{\circ L}(0)`, which grows with depth: shallow networks need a smaller ``eta``.

    Example:
      >>> import jinit.kernel_shaping as ks
      >>> round(ks.tat_leaky_relu_slope(depth=20), 6)
      0.18138
    """
    from scipy.optimize import brentq

    where = "tat_leaky_relu_slope"
    m = _network(where, depth, subnet_max)
    eta = float(check_real(where, "eta", eta))
    if not 0.0 < eta < 1.0:
        raise ValueError(f"{where}: eta (the target max_f C_f(0)) must lie in (0, 1), got eta={eta}.")

    def c0(a: float) -> float:
        return float(m(0.0, lambda c: leaky_relu_c_map(min(max(c, -1.0), 1.0), a)))

    top = c0(0.0)
    where_net = f"at depth={depth}" if subnet_max is None else "by this subnet_max"
    if not top >= eta:
        raise ValueError(
            f"{where}: eta={eta} cannot be reached {where_net}: even relu (slope 0) gives "
            f"max_f C_f(0) = {top:.6g}. A shallow network cannot be made that nonlinear with leaky "
            f"ReLUs; use eta <= {top:.6g} or a deeper network."
        )
    if top == eta:
        return 0.0
    return float(brentq(lambda a: c0(a) - eta, 0.0, 1.0, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200))


def tat_leaky_relu(depth: int | None = None, eta: float = TAT_ETA, *, subnet_max=None) -> Callable:
    r"""TAT's transformed leaky ReLU :math:`\hat\phi(x) = \sqrt{2/(1+\alpha^2)}\;\mathrm{LReLU}_\alpha(x)`.

    :math:`\alpha` is :func:`tat_leaky_relu_slope` and the scale gives :math:`Q(1) = 1` (dks
    ``_get_activations_params``: ``output_scale = sqrt(2 / (1 + negative_slope**2))``). The
    weights go with variance 1/fan_in (scaled orthogonal, gain 1) and no bias. Returns a jax
    function (a ``functools.partial`` with ``negative_slope`` and ``scale`` keywords).

    Example:
      >>> import jinit.kernel_shaping as ks
      >>> phi = ks.tat_leaky_relu(depth=20)
      >>> round(phi.keywords["negative_slope"], 6), round(float(phi(1.0)), 6)
      (0.18138, 1.391509)
    """
    a = tat_leaky_relu_slope(depth, eta, subnet_max=subnet_max)
    return functools.partial(_scaled_leaky_relu, negative_slope=a, scale=math.sqrt(2.0 / (1.0 + a * a)))


# --- DKS ---------------------------------------------------------------------------------------------


class DKSParams(NamedTuple):
    r""":math:`\hat\phi(x) = \gamma(\phi(\alpha x + \beta) + \delta)`; dks names in parentheses."""

    alpha: float
    """input scale (``input_scale``)"""
    beta: float
    """input shift (``input_shift``)"""
    gamma: float
    """output scale (``output_scale``)"""
    delta: float
    """output shift (``output_shift``), applied before the output scale"""


def _increasing_root(fn: Callable[[float], float], target: float, lo: float, guess: float) -> float:
    """x > lo with fn(x) = target for an increasing fn with fn(lo) < target (bracketed by doubling steps)."""
    from scipy.optimize import brentq

    hi = guess
    for _ in range(200):
        if fn(hi) >= target:
            break
        lo, hi = hi, hi + 2 * (hi - lo)  # the bracket's width doubles
    return float(brentq(lambda x: fn(x) - target, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200))


def local_c_slope_target(zeta: float = DKS_ZETA, depth: int | None = None, *, subnet_max=None) -> float:
    r"""DKS's local :math:`C'(1) = \xi`: the root of :math:`\mathcal M_{f, x\mapsto \xi x}(1) = \zeta`.

    The maximal slope function of the network evaluated at the common local slope :math:`\xi`
    equals the target :math:`\zeta = \max_f C_f'(1)` (DKS "Summary of our method"; dks
    ``max_slope_func = lambda x: subnet_max_func(1.0, lambda y: x * y)`` and
    ``_compute_local_c_slope_1_target``). For a plain MLP, :math:`\xi = \zeta^{1/L}`.

    Example:
      >>> import jinit.kernel_shaping as ks
      >>> round(ks.local_c_slope_target(1.5, depth=10), 12) == round(1.5 ** 0.1, 12)
      True
    """
    where = "local_c_slope_target"
    m = _network(where, depth, subnet_max)
    zeta = float(check_real(where, "zeta", zeta))
    if not zeta > 1.0:
        raise ValueError(f"{where}: zeta (the target max_f C_f'(1)) must be > 1, got zeta={zeta}.")
    return _increasing_root(lambda x: float(m(1.0, lambda y: x * y)), zeta, 1.0, 1.1)


def _name(phi) -> str:
    return phi if isinstance(phi, str) else getattr(phi, "__name__", repr(phi))


def _dks_residuals(act, q_slope: float, c_slope: float):
    """(alpha, beta) -> ([Q'(1) - q_slope, C'(1) - c_slope], (gamma, delta)) of the transform."""
    refine = np.asarray(act.refine, dtype=np.float64)
    grid = _quadrature.gauss_nodes(())

    def residuals(p):
        a, b = float(p[0]), float(p[1])
        if not (math.isfinite(a) and math.isfinite(b)) or abs(a) < 1e-12:
            return np.array([1e6, 1e6]), (math.nan, math.nan)
        # Kinks of phi at u = k sit at z = (k - b) / a: panel edges there keep the quadrature exact.
        if refine.size:
            z, w = (v[0] for v in _quadrature.panel_nodes((refine - b) / a))
        else:
            z, w = grid
        u = a * z + b
        f, df = act.f(u), act.df(u)
        delta = -float(np.dot(w, f))  # C(0) = E[phi_hat]^2 / Q(1) = 0
        g = f + delta
        second = float(np.dot(w, g * g))
        if not (math.isfinite(second) and second > 0):
            return np.array([1e6, 1e6]), (math.nan, math.nan)
        gamma2 = 1.0 / second  # Q(1) = gamma^2 E[(phi + delta)^2] = 1
        q1_slope = gamma2 * a * float(np.dot(w, z * g * df))  # E[z phi_hat phi_hat']
        c1_slope = gamma2 * a * a * float(np.dot(w, df * df))  # E[phi_hat'^2] / Q(1)
        return np.array([q1_slope - q_slope, c1_slope - c_slope]), (math.sqrt(gamma2), delta)

    return residuals


def dks_params(
    phi,
    depth: int | None = None,
    zeta: float = DKS_ZETA,
    *,
    subnet_max=None,
    q_slope: float = DKS_Q_SLOPE,
    breakpoints: Sequence[float] = (),
) -> DKSParams:
    r"""DKS's :math:`(\alpha, \beta, \gamma, \delta)` for :math:`\hat\phi(x) = \gamma(\phi(\alpha x + \beta) + \delta)`.

    The four conditions of DKS (its "Summary of our method"; dks ``_get_activations_params``, ``method="DKS"``):

    * :math:`Q(1) = 1`: :math:`\gamma = 1/\sqrt{\mathbb E[(\phi(\alpha z+\beta) + \delta)^2]}`;
    * :math:`C(0) = 0`: :math:`\delta = -\mathbb E[\phi(\alpha z + \beta)]`;
    * :math:`Q'(1) = ` ``q_slope`` (1 in the paper);
    * :math:`C'(1) = \xi` = :func:`local_c_slope_target` (``zeta``, the network), so that
      :math:`\max_f C_f'(1) = \zeta`; for a plain MLP of ``depth`` :math:`L`,
      :math:`\xi = \zeta^{1/L}`.

    The last two are solved for :math:`(\alpha, \beta)` with ``scipy.optimize.root`` (hybrid
    Powell) from dks's starting points (dks ``_solve_for_activation_params``: scale in (1, 0.1),
    shift in (0, 1, -1), then random ones), :math:`\gamma, \delta` following in closed form. The
    system can have several roots (for odd :math:`\phi`, :math:`(\alpha, -\beta)` is one too); the
    search order is dks's, so the root is the one dks returns. ``phi`` is a name of
    :data:`jinit.ACTIVATIONS` or a jax callable; relu-like activations are not supported (dks
    re-parameterizes them; use :func:`tat_leaky_relu`). ``ValueError`` when no root is found.

    Example:
      >>> import jinit.kernel_shaping as ks
      >>> p = ks.dks_params("tanh", depth=10)
      >>> [round(v, 4) for v in p]
      [0.2967, 0.6528, 4.9646, -0.5425]
    """
    from scipy.optimize import root

    where = "dks_params"
    if isinstance(phi, str) and phi in _RELU_LIKE:
        raise ValueError(
            f"{where}: phi={phi!r} is not supported: DKS needs a smooth activation (e.g. 'tanh', "
            f"'softplus', 'gelu'); for relu-like networks use TAT, jinit.kernel_shaping.tat_leaky_relu."
        )
    m = _network(where, depth, subnet_max)
    zeta = float(check_real(where, "zeta", zeta))
    if not zeta > 1.0:
        raise ValueError(f"{where}: zeta (the target max_f C_f'(1)) must be > 1, got zeta={zeta}.")
    q_slope = float(check_real(where, "q_slope", q_slope, positive=True))
    act = meanfield._Phi(where, phi, breakpoints)
    xi = local_c_slope_target(zeta, subnet_max=m)
    residuals = _dks_residuals(act, q_slope, xi)
    rng = np.random.default_rng(_DKS_SEED)
    randoms = (tuple(rng.uniform(_DKS_RANDOM_LOW, _DKS_RANDOM_HIGH)) for _ in range(_DKS_TRIES - len(_DKS_STARTS)))
    for start in itertools.chain(_DKS_STARTS, randoms):
        sol = root(lambda p: residuals(p)[0], np.asarray(start, dtype=np.float64), method="hybr")
        r, (gamma, delta) = residuals(sol.x)
        if sol.success and np.all(np.abs(r) < _DKS_TOL):
            return DKSParams(float(sol.x[0]), float(sol.x[1]), gamma, delta)
    raise ValueError(
        f"{where}: found no (alpha, beta) for phi={_name(phi)!r} with Q'(1)={q_slope} and C'(1)={xi:.6g} "
        f"(zeta={zeta}) from {_DKS_TRIES} starting points. The activation may be too close to linear "
        f"or not smooth enough for these targets; try a smaller zeta, q_slope=1.0, or another activation."
    )


def _transformed(x, *, phi: Callable, alpha: float, beta: float, gamma: float, delta: float):
    return gamma * (phi(alpha * x + beta) + delta)


def dks_activation(
    phi,
    depth: int | None = None,
    zeta: float = DKS_ZETA,
    *,
    subnet_max=None,
    q_slope: float = DKS_Q_SLOPE,
    breakpoints: Sequence[float] = (),
) -> Callable:
    r"""The DKS-transformed activation :math:`\hat\phi(x) = \gamma(\phi(\alpha x + \beta) + \delta)`.

    Parameters from :func:`dks_params` (same arguments). Use it with weights of variance
    1/fan_in (scaled orthogonal, gain 1) and inputs with :math:`q = 1`. Returns a jax function
    (a ``functools.partial`` whose keywords are the parameters).

    Example:
      >>> import jinit.kernel_shaping as ks
      >>> phi = ks.dks_activation("softplus", depth=10)
      >>> round(ks.q_map(1.0, phi), 9), round(ks.c_map(0.0, phi), 9), round(ks.c_map_slope(1.0, phi) ** 10, 6)
      (1.0, 0.0, 1.5)
    """
    p = dks_params(phi, depth, zeta, subnet_max=subnet_max, q_slope=q_slope, breakpoints=breakpoints)
    fn = meanfield._Phi("dks_activation", phi, breakpoints).fn
    return functools.partial(_transformed, phi=fn, **p._asdict())
