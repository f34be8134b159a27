"""What every benchmark architecture shares: per-layer statistics and safe norms."""

from __future__ import annotations

import functools
from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

__all__ = ["SATURATION", "safe_std", "safe_norm", "layer_stats", "stacked_norms", "leaf", "scanned",
           "SHAPED_ACTIVATIONS", "activation_fn", "check_activation", "gain_activation", "shaped_reason"]

# Shaped activations (jinit.kernel_shaping): transforms of a base activation whose parameters
# depend on the network's depth. ``tat_leaky_relu``: TAT (Zhang et al. 2022), eta = 0.9;
# ``dks_<name>``: DKS (Martens et al. 2021), zeta = 1.5, for the smooth activations below. The
# weights of a shaped network go with gain 1 (variance 1 / fan_in), the transform carries the gain.
DKS_BASES = ("tanh", "sigmoid", "softplus", "gelu", "silu")
SHAPED_ACTIVATIONS: tuple[str, ...] = ("tat_leaky_relu", *(f"dks_{n}" for n in DKS_BASES))

# Fraction of units "saturated" (derivative ~ 0) per bounded activation, as in
# Glorot & Bengio 2010 (sigmoid near 0 or 1, tanh near +-1). Unbounded
# activations have no saturation statistic (null in results.json).
SATURATION: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": lambda a: jnp.abs(a) > 0.99,
    "sigmoid": lambda a: (a < 0.01) | (a > 0.99),
}


def check_activation(name: str) -> str:
    """``name`` if it is a plain (``jinit.ACTIVATIONS``) or shaped activation, else a ``ValueError`` listing both."""
    import jinit
    from jinit._core import check_choice

    return check_choice(None, "activation", name, (*jinit.ACTIVATIONS, *SHAPED_ACTIVATIONS))


@functools.lru_cache(maxsize=64)
def activation_fn(name: str, depth: int) -> Callable[[jax.Array], jax.Array]:
    """The activation ``name`` of a network of ``depth`` nonlinear layers: a plain one from
    ``jinit.get_activation``, a shaped one solved for ``depth`` (cached: solved once per pair)."""
    import jinit

    if name == "tat_leaky_relu":
        return jinit.kernel_shaping.tat_leaky_relu(depth)
    if name.startswith("dks_") and name in SHAPED_ACTIVATIONS:
        return jinit.kernel_shaping.dks_activation(name[len("dks_"):], depth)
    return jinit.get_activation(check_activation(name))


def gain_activation(name: str) -> str:
    """The activation whose gain the weights need: ``"linear"`` for shaped ones (variance
    1 / fan_in: DKS and TAT put the gain into the transformed activation), else ``name``."""
    return "linear" if name in SHAPED_ACTIVATIONS else name


def shaped_reason(arch: str, activation: str) -> str | None:
    """Why ``arch`` cannot run the shaped ``activation`` (None for plain activations)."""
    if activation in SHAPED_ACTIVATIONS:
        return (f"{arch}: shaped activation {activation!r} is solved for a plain chain of nonlinear layers; "
                f"only the mlp architecture supports it (use a plain activation such as 'relu' here)")
    return None


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
