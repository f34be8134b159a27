"""Small models shared by several test files."""

from __future__ import annotations

import jax.numpy as jnp
from flax import nnx


class Pair(nnx.Module):
    def __init__(self, rngs):
        self.a = nnx.Linear(16, 16, rngs=rngs)
        self.b = nnx.Linear(16, 16, rngs=rngs)

    def __call__(self, x):
        return jnp.tanh(self.b(jnp.tanh(self.a(x))))
