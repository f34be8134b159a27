"""``mlp``: a plain deep MLP whose hidden stack runs under ``nn.scan``.

For ``depth = L`` and ``width = n``::

    x --Dense(n_in -> n)--> phi --[Dense(n -> n) -> phi] x (L - 1)--> Dense(n -> n_out) --> outputs
         "input/dense"              "hidden/dense", one nn.scan        "output"

``depth`` counts the hidden layers (Dense + activation); the ``L - 1`` square ones
share one compiled body under :func:`flax.linen.scan` (parameters stacked along a
leading layer axis; each layer's initializer is called with one layer's shape and
its own key). The output layer is linear. :class:`UnrolledMLP` is the same network
with one named ``Dense`` per layer, for tools that walk layers one by one and for
timing the scanned stack against it (``bench.speed``).
"""

from __future__ import annotations

from collections.abc import Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

import jinit
from bench.archs import Arch, NetSpec
from bench.archs.common import activation_fn, gain_activation, layer_stats, safe_norm, scanned, stacked_norms

__all__ = ["HiddenLayer", "MLP", "UnrolledMLP", "ARCH"]


class HiddenLayer(nn.Module):
    """``phi(h @ W + b)``; the second output is its (std, mean, saturation) when ``collect``."""

    width: int
    activation: str
    kernel_init: Callable = jinit.lecun_normal()
    bias_init: Callable = jinit.zeros()
    collect: bool = False
    net_depth: int = 1  # the network's number of nonlinear layers: shaped activations depend on it

    @nn.compact
    def __call__(self, h, _=None):
        z = nn.Dense(self.width, kernel_init=self.kernel_init, bias_init=self.bias_init, name="dense")(h)
        a = activation_fn(self.activation, self.net_depth)(z)
        return a, (layer_stats(self.activation, a) if self.collect else None)


class _MLPFields(nn.Module):
    """The fields shared by :class:`MLP` and :class:`UnrolledMLP`."""

    depth: int
    width: int
    n_out: int
    activation: str
    kernel_init: Callable = jinit.lecun_normal()
    bias_init: Callable = jinit.zeros()
    out_kernel_init: Callable = jinit.lecun_normal()
    out_bias_init: Callable = jinit.zeros()


class MLP(_MLPFields):
    """The scanned MLP (module docstring). With ``collect`` returns ``(outputs, stats)``,
    ``stats`` of shape ``(depth, 3)``."""

    collect: bool = False

    @nn.compact
    def __call__(self, x):
        layer = dict(width=self.width, activation=self.activation, kernel_init=self.kernel_init,
                     bias_init=self.bias_init, collect=self.collect, net_depth=self.depth)
        h, s0 = HiddenLayer(**layer, name="input")(x)
        stats = [s0[None]] if self.collect else []
        if self.depth > 1:
            h, s = scanned(HiddenLayer, self.depth - 1)(**layer, name="hidden")(h, None)
            stats += [s] if self.collect else []
        out = nn.Dense(self.n_out, kernel_init=self.out_kernel_init, bias_init=self.out_bias_init, name="output")(h)
        return (out, jnp.concatenate(stats, axis=0)) if self.collect else out


class UnrolledMLP(_MLPFields):
    """The same network with one ``Dense`` per layer (``layer_0`` ... ``layer_{depth-1}``,
    ``output``) and no scan; each hidden layer's output is sown into ``"intermediates"``."""

    @nn.compact
    def __call__(self, x):
        phi = activation_fn(self.activation, self.depth)
        h = x
        for i in range(self.depth):
            h = phi(nn.Dense(self.width, kernel_init=self.kernel_init, bias_init=self.bias_init, name=f"layer_{i}")(h))
            self.sow("intermediates", f"layer_{i}", h)
        return nn.Dense(self.n_out, kernel_init=self.out_kernel_init, bias_init=self.out_bias_init, name="output")(h)


class MLPArch(Arch):
    name = "mlp"
    summary = "plain MLP: Dense + activation per hidden layer, no skips, no normalization (stack under nn.scan)"

    def check(self, spec: NetSpec) -> str | None:
        try:  # a shaped activation may have no solution at this depth (e.g. TAT's eta when shallow)
            activation_fn(spec.activation, spec.depth)
        except ValueError as err:
            return str(err)
        return None

    def module(self, spec: NetSpec, *, collect: bool = False) -> MLP:
        return MLP(spec.depth, spec.width, spec.n_out, spec.activation, collect=collect)

    def structure(self, spec: NetSpec) -> jinit.Structure:
        # Shaped activations (DKS / TAT) carry their gain: the weights get variance 1 / fan_in.
        return jinit.Structure(gain_activation(spec.activation), readout="output")

    def grad_norms(self, spec: NetSpec, grads) -> jax.Array:
        norms = [safe_norm(grads["input"]["dense"]["kernel"])[None]]
        if spec.depth > 1:
            norms.append(stacked_norms(grads["hidden"]["dense"]["kernel"]))
        return jnp.concatenate(norms)


ARCH = MLPArch()
