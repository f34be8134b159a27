"""Activation functions by name.

The one table of named activations, shared by the scheme registry
(:mod:`jinit.registry`: a scheme's kernel for a layer followed by that
activation), the mean-field functions (:mod:`jinit.meanfield`, which take a name
or a callable), the gain-based factories and the benchmark.

Example:
  >>> import jinit.activations as act
  >>> act.get_activation("relu")(-1.0), act.get_activation("linear")(2.0)
  (Array(0., dtype=float32, weak_type=True), 2.0)
  >>> list(act.ACTIVATIONS)[:3]
  ['relu', 'tanh', 'sigmoid']
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import jax
import jax.numpy as jnp

from jinit._core import check_choice

__all__ = ["ACTIVATIONS", "get_activation", "resolve_activation"]

ACTIVATIONS: Mapping[str, Callable] = MappingProxyType(
    {
        "relu": jax.nn.relu,
        "tanh": jnp.tanh,
        "sigmoid": jax.nn.sigmoid,
        "gelu": jax.nn.gelu,
        "silu": jax.nn.silu,
        "selu": jax.nn.selu,
        "elu": jax.nn.elu,
        "leaky_relu": jax.nn.leaky_relu,
        "softplus": jax.nn.softplus,
        "linear": lambda x: x,
    }
)
"""Activation name -> elementwise function ``R -> R`` (``jax.nn`` / ``jax.numpy``)."""


def get_activation(name: str) -> Callable:
    """The activation function registered under ``name``; ``ValueError`` listing the valid names otherwise.

    Example:
      >>> from jinit.activations import get_activation
      >>> get_activation("tanh").__name__
      'tanh'
    """
    return ACTIVATIONS[check_choice(None, "activation", name, ACTIVATIONS)]


def resolve_activation(where: str, phi: Any) -> Callable:
    """``phi`` as a function: a registered name (see :data:`ACTIVATIONS`) is looked up,
    a callable ``R -> R`` applied elementwise is returned as it is. Errors name ``where``.

    Example:
      >>> import jax
      >>> from jinit.activations import resolve_activation
      >>> resolve_activation("gain_for", "relu") is resolve_activation("gain_for", jax.nn.relu)
      True
    """
    if isinstance(phi, str):
        try:
            return get_activation(phi)
        except ValueError as err:
            raise ValueError(f"{where}: {err} phi may also be a callable R -> R.") from None
    if not callable(phi):
        raise TypeError(
            f"{where}: phi must be an activation, a callable R -> R applied elementwise "
            f"(e.g. jax.nn.relu, jnp.tanh) or a registered name such as 'tanh'; got {phi!r}."
        )
    return phi
