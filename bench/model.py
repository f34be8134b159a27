"""The benchmarked network: a plain MLP whose hidden stack runs under ``nn.scan``.

Architecture, for ``depth = L`` and ``width = n``::

    x --Dense(n_in -> n)--> phi --[Dense(n -> n) -> phi] x (L - 1)--> Dense(n -> n_out) --> logits
         "input" layer             "hidden" stack, one nn.scan         "output" layer

``depth`` is the number of **hidden layers** (each a Dense followed by the
activation ``phi``): the first maps the inputs to ``width``, the other ``L - 1``
are ``width x width`` and share one compiled body under :func:`flax.linen.scan`,
so compile time does not grow with depth. The network has ``L + 1`` weight
matrices; the last is linear (the logits, or the regression outputs).

Every kernel and bias comes from a :class:`jinit.Scheme`: hidden layers use
``scheme.kernel_init(activation)`` / ``scheme.bias_init(activation)``, the
output layer ``scheme.kernel_init("linear")`` (falling back to the activation's
if the scheme does not take ``"linear"``). Under ``nn.scan`` the parameters are
stacked along a leading layer axis (``kernel``: ``(L - 1, n, n)``), but each
layer's initializer is called with the unstacked ``(n, n)`` shape and its own
key, so fans and per-layer statistics are those of a single layer.

:class:`UnrolledMLP` is the same network with one named ``Dense`` per layer and
no scan, for tools that walk a model layer by layer and for timing the scanned
stack against it (``bench.speed``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

import jinit

__all__ = [
    "ModelSpec",
    "MLP",
    "UnrolledMLP",
    "build_model",
    "scheme_inits",
    "loss_and_metrics",
    "layer_statistics",
    "SATURATION",
]

# Fraction of units "saturated" (derivative ~ 0) per bounded activation, as in
# Glorot & Bengio 2010 (sigmoid near 0 or 1, tanh near +-1). Unbounded
# activations have no saturation statistic (null in results.json).
SATURATION: dict[str, Callable[[jax.Array], jax.Array]] = {
    "tanh": lambda a: jnp.abs(a) > 0.99,
    "sigmoid": lambda a: (a < 0.01) | (a > 0.99),
}


@dataclass(frozen=True)
class ModelSpec:
    """Everything that fixes the network's structure (and so its compiled code)."""

    depth: int
    width: int
    activation: str
    n_in: int
    n_out: int
    task: str = "classification"

    def __post_init__(self):
        if self.depth < 1 or self.width < 1:
            raise ValueError(f"depth and width must be >= 1, got depth={self.depth}, width={self.width}.")
        jinit.get_activation(self.activation)


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


def _layer_stats(activation: str, a: jax.Array) -> jax.Array:
    sat = SATURATION.get(activation)
    saturation = jnp.mean(sat(a)) if sat is not None else jnp.float32(jnp.nan)
    return jnp.stack([safe_std(a), jnp.mean(a), saturation.astype(jnp.float32)])


class HiddenLayer(nn.Module):
    """``phi(h @ W + b)``; with ``collect`` also returns (std, mean, saturation) of its output."""

    width: int
    activation: str
    kernel_init: Callable
    bias_init: Callable
    collect: bool = False

    @nn.compact
    def __call__(self, h, _=None):
        z = nn.Dense(self.width, kernel_init=self.kernel_init, bias_init=self.bias_init, name="dense")(h)
        a = jinit.get_activation(self.activation)(z)
        return a, (_layer_stats(self.activation, a) if self.collect else None)


class MLP(nn.Module):
    """The benchmark's MLP (see the module docstring). ``collect=True`` makes
    ``__call__`` return ``(outputs, stats)`` with ``stats`` of shape
    ``(depth, 3)``: per hidden layer the std, mean and saturated fraction of its
    output."""

    depth: int
    width: int
    n_out: int
    activation: str
    kernel_init: Callable
    bias_init: Callable
    out_kernel_init: Callable
    out_bias_init: Callable
    collect: bool = False

    @nn.compact
    def __call__(self, x):
        layer = dict(width=self.width, activation=self.activation, kernel_init=self.kernel_init,
                     bias_init=self.bias_init, collect=self.collect)
        h, s0 = HiddenLayer(**layer, name="input")(x)
        stats = [s0[None]] if self.collect else []
        if self.depth > 1:
            Stack = nn.scan(
                HiddenLayer,
                variable_axes={"params": 0},
                split_rngs={"params": True},
                length=self.depth - 1,
            )
            h, s = Stack(**layer, name="hidden")(h, None)
            if self.collect:
                stats.append(s)
        out = nn.Dense(self.n_out, kernel_init=self.out_kernel_init, bias_init=self.out_bias_init, name="output")(h)
        if self.collect:
            return out, jnp.concatenate(stats, axis=0)
        return out


class UnrolledMLP(nn.Module):
    """The same network with one ``Dense`` per layer (``layer_0`` ...
    ``layer_{depth-1}``, ``output``) and no scan. Each hidden layer's output
    is sown into the ``"intermediates"`` collection."""

    depth: int
    width: int
    n_out: int
    activation: str
    kernel_init: Callable = jinit.lecun_normal()
    bias_init: Callable = jinit.zeros()
    out_kernel_init: Callable = jinit.lecun_normal()
    out_bias_init: Callable = jinit.zeros()

    @nn.compact
    def __call__(self, x):
        phi = jinit.get_activation(self.activation)
        h = x
        for i in range(self.depth):
            h = phi(nn.Dense(self.width, kernel_init=self.kernel_init, bias_init=self.bias_init, name=f"layer_{i}")(h))
            self.sow("intermediates", f"layer_{i}", h)
        return nn.Dense(self.n_out, kernel_init=self.out_kernel_init, bias_init=self.out_bias_init, name="output")(h)


def scheme_inits(scheme: jinit.Scheme, activation: str) -> tuple[Callable, Callable, Callable, Callable]:
    """(kernel, bias, output kernel, output bias) initializers of ``scheme``."""
    kernel, bias = scheme.kernel_init(activation), scheme.bias_init(activation)
    try:
        out_kernel, out_bias = scheme.kernel_init("linear"), scheme.bias_init("linear")
    except (ValueError, TypeError, NotImplementedError):
        out_kernel, out_bias = kernel, bias
    return kernel, bias, out_kernel, out_bias


def build_model(spec: ModelSpec, scheme: jinit.Scheme | None = None, *, collect: bool = False) -> MLP:
    """The MLP for ``spec`` with ``scheme``'s initializers (LeCun normal when
    None: the structure alone is enough for ``apply``)."""
    if scheme is None:
        inits = (jinit.lecun_normal(), jinit.zeros(), jinit.lecun_normal(), jinit.zeros())
    else:
        inits = scheme_inits(scheme, spec.activation)
    return MLP(spec.depth, spec.width, spec.n_out, spec.activation, *inits, collect=collect)


def loss_and_metrics(outputs: jax.Array, y: jax.Array, task: str) -> tuple[jax.Array, jax.Array]:
    """Per-example (loss, correct): softmax cross-entropy and argmax hit for
    classification; mean squared error and NaN for regression."""
    if task == "classification":
        loss = optax.softmax_cross_entropy_with_integer_labels(outputs.astype(jnp.float32), y)
        correct = (jnp.argmax(outputs, axis=-1) == y).astype(jnp.float32)
        return loss, correct
    loss = jnp.mean(jnp.square(outputs.astype(jnp.float32) - y), axis=-1)
    return loss, jnp.full(loss.shape, jnp.nan, jnp.float32)


def layer_statistics(spec: ModelSpec) -> Callable:
    """``f(params, x, y) -> dict`` of per-hidden-layer statistics on one batch:
    ``activation_std``, ``activation_mean``, ``saturation`` (fraction of
    saturated units, NaN for unbounded activations) and ``grad_norm`` (Frobenius
    norm of d loss / d kernel), each of length ``depth``, plus ``loss``."""
    model = build_model(spec, collect=True)

    def f(params, x, y):
        def loss_fn(p):
            out, stats = model.apply({"params": p}, x)
            loss, _ = loss_and_metrics(out, y, spec.task)
            return jnp.mean(loss), stats

        (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        norms = [safe_norm(grads["input"]["dense"]["kernel"])[None]]
        if spec.depth > 1:
            norms.append(jax.vmap(safe_norm)(grads["hidden"]["dense"]["kernel"]))
        return {
            "activation_std": stats[:, 0],
            "activation_mean": stats[:, 1],
            "saturation": stats[:, 2],
            "grad_norm": jnp.concatenate(norms),
            "output_grad_norm": safe_norm(grads["output"]["kernel"]),
            "loss": loss,
        }

    return f
