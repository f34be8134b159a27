"""jinit: neural-network weight initializers for JAX and Flax.

Per-tensor initializers follow the :class:`jax.nn.initializers.Initializer`
protocol, ``init(key, shape, dtype=jnp.float32, out_sharding=None)``, and are
built by factories, so they pass straight in as ``kernel_init=`` / ``bias_init=``:

  >>> import jax, jinit
  >>> import flax.linen as nn
  >>> layer = nn.Dense(64, kernel_init=jinit.he_normal(), bias_init=jinit.zeros())
  >>> params = layer.init(jax.random.key(0), jax.numpy.ones((1, 32)))
  >>> params["params"]["kernel"].shape
  (32, 64)
"""

from jinit import basic, gain, registry, rng, variance
from jinit._core import Initializer
from jinit.basic import *  # noqa: F403
from jinit.gain import *  # noqa: F403
from jinit.registry import *  # noqa: F403
from jinit.rng import generators, get_default_rng, set_default_rng
from jinit.variance import *  # noqa: F403

__version__ = "0.1.0"

__all__ = (
    ["Initializer", "generators", "get_default_rng", "set_default_rng"]
    + basic.__all__
    + variance.__all__
    + gain.__all__
    + registry.__all__
)
