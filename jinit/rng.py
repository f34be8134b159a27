"""Random-number generators that initializers draw from.

Every random initializer takes ``rng=None | "jax" | <registered name>``; the
name is resolved when the initializer is built (``None`` means the default set
with :func:`set_default_rng`, initially ``"jax"``), so an initializer never
changes behaviour after construction.

``"jax"`` draws with :mod:`jax.random` using the key's own implementation
(threefry2x32 unless the key says otherwise), so its values equal those of
``jax.random.normal`` etc. for the same key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp

__all__ = ["Generator", "register_generator", "generators", "set_default_rng", "get_default_rng"]


@dataclass(frozen=True)
class Generator:
    """A source of standard samples, in a given float dtype and shape.

    Attributes:
      name: the name users pass as ``rng=``.
      normal: ``(key, shape, dtype) -> N(0, 1)`` samples.
      uniform: ``(key, shape, dtype) -> U[0, 1)`` samples.
      truncated_normal: ``(key, lower, upper, shape, dtype)`` -> N(0, 1)
        conditioned on ``lower < x < upper`` (bounds in standard units).
      description: one line for the docs.
    """

    name: str
    normal: Callable
    uniform: Callable
    truncated_normal: Callable
    description: str = ""


_GENERATORS: dict[str, Generator] = {}
_DEFAULT = ["jax"]


def register_generator(gen: Generator) -> Generator:
    _GENERATORS[gen.name] = gen
    return gen


def generators() -> tuple[str, ...]:
    """Names accepted as ``rng=``."""
    return tuple(_GENERATORS)


def resolve(initializer: str, rng: str | None) -> Generator:
    name = _DEFAULT[0] if rng is None else rng
    if not isinstance(name, str) or name not in _GENERATORS:
        valid = ", ".join(repr(n) for n in _GENERATORS)
        raise ValueError(f"{initializer}: invalid rng={rng!r}; valid choices are {valid}.")
    return _GENERATORS[name]


def set_default_rng(name: str) -> None:
    """Sets the generator used by initializers built afterwards with ``rng=None``."""
    _DEFAULT[0] = resolve("set_default_rng", name).name


def get_default_rng() -> str:
    return _DEFAULT[0]


register_generator(
    Generator(
        name="jax",
        normal=lambda key, shape, dtype: jax.random.normal(key, shape, dtype),
        uniform=lambda key, shape, dtype: jax.random.uniform(key, shape, dtype),
        truncated_normal=lambda key, lower, upper, shape, dtype: jax.random.truncated_normal(
            key, jnp.asarray(lower, dtype), jnp.asarray(upper, dtype), shape, dtype
        ),
        description="jax.random with the key's implementation (threefry2x32 by default).",
    )
)
