"""What every benchmark architecture shares: per-layer statistics and safe norms."""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["SATURATION", "safe_std", "safe_norm", "layer_stats", "stacked_norms", "leaf", "scanned"]

# Fraction of units "saturated" (derivative ~ 0) per bounded activation, as in
# Glorot & Bengio 2010 (sigmoid near 0 or 1, tanh near +-1). Unbounded
# activations have no saturation statistic (null in results.json).
SATURATION: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": lambda a: jnp.abs(a) > 0.99,
    "sigmoid": lambda a: (a < 0.01) | (a > 0.99),
}


def safe_std(a: jax.Array) -> jax.Array:
    """Std over all entries without overflowing on huge (exploding) activations."""
    a = a.astype(jnp.float32)
    s = jnp.max(jnp.abs(a))
    s_safe = jnp.where(s > 0, s, 1.0)
    return jnp.where(s > 0, jnp.std(a / s_safe) * s, 0.0)


def safe_norm(g: jax.Array) -> jax.Array:
    """Frobenius norm without overflow."""
    s = jnp.max(jnp.abs(g))
    s_safe = jnp.where(s > 0, s, 1.0)
    return jnp.where(s > 0, jnp.sqrt(jnp.sum(jnp.square(g / s_safe))) * s, 0.0)


def layer_stats(activation: str, a: jax.Array) -> jax.Array:
    """``[std, mean, saturated fraction]`` of one layer's output (NaN saturation
    for activations without a saturation statistic)."""
    sat = SATURATION.get(activation)
    saturation = jnp.mean(sat(a)) if sat is not None else jnp.float32(jnp.nan)
    return jnp.stack([safe_std(a), jnp.mean(a).astype(jnp.float32), saturation.astype(jnp.float32)])


def leaf(tree, path: str) -> jax.Array:
    """The leaf of a nested dict at a ``"a/b/c"`` path."""
    for part in path.split("/"):
        tree = tree[part]
    return tree


def stacked_norms(*leaves: jax.Array) -> jax.Array:
    """Per-layer norm of layer-stacked leaves (leading axis = layer), the leaves of one
    layer combined: ``sqrt(sum_k |g_k[l]|^2)``."""
    return jnp.sqrt(sum(jnp.square(jax.vmap(safe_norm)(g)) for g in leaves))


def scanned(layer: type[nn.Module], length: int) -> type[nn.Module]:
    """``layer`` stacked ``length`` times under one ``nn.scan``: parameters get a leading
    layer axis, each layer its own init key (``split_rngs``), and the compiled program
    does not grow with ``length``."""
    return nn.scan(layer, variable_axes={"params": 0}, split_rngs={"params": True}, length=length)
