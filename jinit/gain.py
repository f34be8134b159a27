r"""Gains: how much to scale a unit-variance initializer for a given activation.

A gain :math:`g` multiplies the standard deviation of a LeCun-style
:math:`\mathcal N(0, 1/n)` init so that the second moment of pre-activations
is preserved through the nonlinearity: :math:`g^2\,\mathbb E[\phi(z)^2] = 1`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import numpy as np

from jinit import _quadrature
from jinit._core import check_choice

__all__ = ["calculate_gain", "gain_for", "NONLINEARITIES"]

NONLINEARITIES = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
    "tanh",
    "relu",
    "leaky_relu",
    "selu",
)


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    r"""The recommended gain for a nonlinearity, the table of ``torch.nn.init.calculate_gain``.

    | nonlinearity | gain |
    |---|---|
    | ``linear``, ``conv*``, ``sigmoid`` | 1 |
    | ``tanh`` | 5/3 |
    | ``relu`` | :math:`\sqrt 2` |
    | ``leaky_relu`` | :math:`\sqrt{2/(1+a^2)}`, ``a = param`` (default 0.01) |
    | ``selu`` | 3/4 |

    These are conventions, not all derived the same way: tanh's 5/3 and selu's
    3/4 are empirical choices (3/4 makes ``kaiming_*`` with ``nonlinearity="selu"``
    behave in PyTorch). For the gain that exactly preserves the second moment of
    any function use :func:`gain_for`.

    Example:
      >>> import jinit
      >>> round(jinit.calculate_gain("relu"), 6), round(jinit.calculate_gain("leaky_relu", 0.2), 6)
      (1.414214, 1.386750)
    """
    check_choice("calculate_gain", "nonlinearity", nonlinearity, NONLINEARITIES)
    if nonlinearity == "leaky_relu":
        if param is None:
            slope = 0.01
        elif isinstance(param, numbers.Real) and not isinstance(param, bool) and math.isfinite(param):
            slope = float(param)
        else:
            raise ValueError(f"calculate_gain: param for leaky_relu must be a finite real number, got {param!r}.")
        return math.sqrt(2.0 / (1.0 + slope**2))
    if param is not None:
        raise ValueError(f"calculate_gain: param is only used with 'leaky_relu', got param={param!r} for {nonlinearity!r}.")
    if nonlinearity == "tanh":
        return 5.0 / 3.0
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "selu":
        return 3.0 / 4.0
    return 1.0


def gain_for(fn: Callable, *, breakpoints: Sequence[float] = ()) -> float:
    r"""The gain that preserves the second moment through ``fn``:

    .. math:: g = 1 / \sqrt{\mathbb E_{z\sim\mathcal N(0,1)}[\phi(z)^2]}

    computed with composite Gauss-Legendre quadrature in float64, exact to
    rounding for piecewise-linear functions with kinks at multiples of 1/4 (relu,
    leaky relu, hard tanh); pass other kink locations as ``breakpoints``.
    Use it as ``variance_scaling(gain_for(fn) ** 2, "fan_in", "normal")``.

    Known values: relu :math:`\sqrt2`, identity 1, selu 1 (that is what its
    constants were chosen for), tanh 1.593, gelu 1.534, silu 1.677.

    Args:
      fn: a function ``R -> R`` applied elementwise (jax or numpy).
      breakpoints: extra kink locations of ``fn``.

    Example:
      >>> import jax, jinit
      >>> round(jinit.gain_for(jax.nn.relu), 6)
      1.414214
      >>> round(jinit.gain_for(jax.nn.selu), 3)
      1.0
    """
    if not callable(fn):
        raise TypeError(f"gain_for: fn must be a callable activation, got {fn!r}.")
    z, w = _quadrature.gauss_nodes(tuple(float(b) for b in breakpoints))
    terms = w * _quadrature.evaluate(lambda x: fn(x) ** 2, z)
    second_moment = float(np.sum(terms))
    # The integral is taken over [-10, 10]; if the outermost panels still carry
    # weight, E[fn(z)^2] diverges (e.g. exp(z^2)) or is not resolved there.
    edge = float(np.sum(np.abs(terms[np.abs(z) > _quadrature.HALF_WIDTH - _quadrature.PANEL])))
    if np.isfinite(second_moment) and second_moment > 0 and edge > 1e-9 * second_moment:
        second_moment = math.inf
    if not np.isfinite(second_moment) or second_moment <= 0:
        raise ValueError(
            f"gain_for: E[fn(z)^2] = {second_moment} for z ~ N(0, 1); the gain is defined only "
            "for functions with a finite, positive second moment."
        )
    return 1.0 / math.sqrt(second_moment)
