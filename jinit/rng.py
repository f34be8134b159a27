"""Random-number generators that initializers draw from.

Every random initializer takes ``generator=None | "jax" | "philox" | <registered name>``
(formerly ``rng=``, still accepted with a ``DeprecationWarning`` for one release);
the name is resolved when the initializer is built (``None`` means the default
set with :func:`set_default_rng`, initially ``"jax"``), so an initializer never
changes behaviour after construction.

Generators
----------
``"jax"`` (the default)
    :mod:`jax.random` semantics: ``normal``/``uniform``/``truncated_normal``
    return exactly what ``jax.random.normal`` etc. return for the same key,
    shape and dtype, so jinit's results can be compared one to one with
    ``jax.nn.initializers`` and hand-written JAX code. For threefry keys (the
    default key type) with ``jax_threefry_partitionable`` on (JAX's default), the
    threefry2x32 rounds are emitted unrolled, as one fused element-wise loop,
    instead of JAX's CPU lowering (a rolled ``while`` loop that makes a pass
    through memory per group of rounds). The bits are identical to
    ``jax.random.bits`` (the tests check this bit for bit), the floats come
    from JAX's own ``jax.random`` code, and on a CPU it is 3.4-5x faster. Other key
    implementations (rbg, unsafe_rbg, philox4x32) and
    ``jax_threefry_partitionable=False`` use :mod:`jax.random` unchanged.

``"philox"``
    Random123's Philox4x32-10 in jinit's own float conversion (see
    :mod:`jinit.philox`): values are a pure function of (key, shape, dtype) that
    jinit defines, so they do not change with JAX versions or JAX flags; known
    answers checked against the published Random123 vectors; normals by an
    inverse CDF resolving tails to :math:`|z| \\approx 6.34` (jax.random: 5.4);
    on a CPU as fast as ``"jax"`` for uniforms and 5-20 % faster for normals
    (its inverse CDF is cheaper than JAX's ``erf_inv``).

Both are sharding-invariant: each value depends on (key, global index) only,
so ``out_sharding`` changes where values are computed, never what they are.

Why the default stays ``"jax"``: with the fused lowering it is within 5-20 % of
philox's speed (see ``docs/speed.md``), and it keeps the property users rely on when
porting or comparing, that ``jinit.normal(1.0)`` and ``jax.random.normal`` give
the same numbers for the same key. Pick philox per initializer
(``jinit.he_normal(generator="philox")``) or globally (``jinit.set_default_rng("philox")``)
for values that stay fixed across JAX upgrades and flags, or for its longer,
symmetric normal tails.

Example:
  >>> import jax, jinit
  >>> key = jax.random.key(0)
  >>> a = jinit.normal()(key, (3,))
  >>> bool((a == jax.random.normal(key, (3,))).all())
  True
  >>> jinit.generators()
  ('jax', 'philox')
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from jinit import philox as _philox
from jinit._core import check_choice

__all__ = ["Generator", "register_generator", "generators", "set_default_rng", "get_default_rng"]


@dataclass(frozen=True)
class Generator:
    """A source of standard samples, in a given float dtype and shape.

    Attributes:
      name: the name users pass as ``generator=``.
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
    """Names accepted as ``generator=``."""
    return tuple(_GENERATORS)


def resolve(initializer: str, generator: str | None) -> Generator:
    """The generator named ``generator`` (``None``: the default), checked for ``initializer``."""
    name = _DEFAULT[0] if generator is None else generator
    return _GENERATORS[check_choice(initializer, "generator", name, _GENERATORS)]


def set_default_rng(name: str) -> None:
    """Sets the generator used by initializers built afterwards with ``generator=None``."""
    _DEFAULT[0] = resolve("set_default_rng", name).name


def get_default_rng() -> str:
    """The name of the generator that initializers built with ``generator=None`` use."""
    return _DEFAULT[0]


# ---------------------------------------------------------------------------
# "jax": jax.random, with threefry2x32 emitted as one fused loop.

_U32 = jnp.uint32
_THREEFRY_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_THREEFRY_PARITY = 0x1BD11BDA


def _rotl(x, r: int):
    return (x << _U32(r)) | (x >> _U32(32 - r))


def threefry2x32(key, count):
    """Threefry2x32-20 (Salmon et al. 2011), fully unrolled: the same function as
    JAX's ``threefry2x32_p`` (Random123's known answers, rotation constants
    13 15 26 6 / 17 29 16 24, key parity 0x1BD11BDA), written so that XLA fuses
    it with its consumers. ``key`` and ``count`` are pairs of uint32 arrays.

    Example (a Random123 known-answer vector, also in JAX's tests):
      >>> out = threefry2x32((0x13198a2e, 0x03707344), (0x243f6a88, 0x85a308d3))
      >>> [f"{int(w):08x}" for w in out]
      ['c4923a9c', '483df7a0']
    """
    k0, k1 = (jnp.asarray(k, _U32) for k in key)
    ks = (k0, k1, k0 ^ k1 ^ _U32(_THREEFRY_PARITY))
    x0 = jnp.asarray(count[0], _U32) + ks[0]
    x1 = jnp.asarray(count[1], _U32) + ks[1]
    for i in range(5):
        for r in _THREEFRY_ROTATIONS[i % 2]:
            x0 = x0 + x1
            x1 = _rotl(x1, r) ^ x0
        x0 = x0 + ks[(i + 1) % 3]
        x1 = x1 + ks[(i + 2) % 3] + _U32(i + 1)
    return x0, x1


def _fused_random_bits(key_data, bit_width: int, shape) -> jax.Array:
    """``jax.random.bits`` of a threefry key under ``jax_threefry_partitionable``:
    threefry2x32(key, (index_hi, index_lo)), the two words xor-ed (8/16/32 bits)
    or concatenated (64 bits)."""
    shape = tuple(shape)
    if math.prod(shape) > 2**64:
        raise NotImplementedError("random bits array of size exceeding 2 ** 64")
    if shape:
        lo, hi = _philox.counters(shape)
        hi = jnp.zeros(shape, _U32) if isinstance(hi, int) else hi
    else:
        lo = hi = jnp.zeros((), _U32)
    b1, b2 = threefry2x32((key_data[0], key_data[1]), (hi, lo))
    if bit_width == 64:
        return (b1.astype(jnp.uint64) << jnp.uint64(32)) | b2.astype(jnp.uint64)
    bits = b1 ^ b2
    if bit_width == 32:
        return bits
    return bits.astype({8: jnp.uint8, 16: jnp.uint16}[bit_width])


def _make_fused_impl():
    try:
        from jax.extend import random as jex_random

        base = jex_random.threefry_prng_impl
        return jex_random.define_prng_impl(
            key_shape=(2,),
            seed=base.seed,
            split=base.split,
            fold_in=base.fold_in,
            random_bits=_fused_random_bits,
            name="jinit_threefry2x32_fused",
            tag="jtf",
        )
    except Exception:  # pragma: no cover - JAX without jax.extend.random
        return None


_FUSED_IMPL = _make_fused_impl()


def fused_threefry_key(key):
    """Rewraps a threefry key (typed or raw ``uint32[2]``) in an implementation
    whose ``random_bits`` is the fused :func:`threefry2x32`, so that
    ``jax.random.*`` on it computes bit-identical values faster. Keys of other
    implementations, or a JAX with ``jax_threefry_partitionable`` off, come back
    unchanged."""
    if _FUSED_IMPL is None or not jax.config.jax_threefry_partitionable:
        return key
    if jax.dtypes.issubdtype(key.dtype, jax.dtypes.prng_key):
        if str(jax.random.key_impl(key)) != "threefry2x32":
            return key
        data = jax.random.key_data(key)
    elif key.dtype == np.uint32 and key.shape == (2,):
        data = key
    else:
        return key
    return jax.random.wrap_key_data(data, impl=_FUSED_IMPL)


def _jax_truncated_normal(key, lower, upper, shape, dtype):
    return jax.random.truncated_normal(
        fused_threefry_key(key), jnp.asarray(lower, dtype), jnp.asarray(upper, dtype), shape, dtype
    )


register_generator(
    Generator(
        name="jax",
        normal=lambda key, shape, dtype: jax.random.normal(fused_threefry_key(key), shape, dtype),
        uniform=lambda key, shape, dtype: jax.random.uniform(fused_threefry_key(key), shape, dtype),
        truncated_normal=_jax_truncated_normal,
        description=(
            "jax.random with the key's implementation (threefry2x32 by default, "
            "emitted as one fused loop): values identical to jax.random."
        ),
    )
)

register_generator(
    Generator(
        name="philox",
        normal=_philox.normal,
        uniform=_philox.uniform,
        truncated_normal=_philox.truncated_normal,
        description=(
            "Random123 Philox4x32-10 with inverse-CDF normals (jinit.philox): "
            "values fixed by jinit, fastest on CPU."
        ),
    )
)
