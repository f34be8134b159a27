r"""Reading layouts from the models people write: Flax linen, Flax nnx and Equinox.

A bare parameter tree cannot tell a stacked ``(L, in, out)`` kernel from a 1-D
convolution, nor an Equinox ``(out, in)`` weight from a Flax ``(in, out)``
kernel. Layers can: this module asks them.

* :func:`model_layouts` reads an ``nnx.Module`` or an ``equinox.Module``: every
  leaf of a layer it knows gets a :class:`~jinit.layout.Layout` from the layer's
  own attributes (``in_features``, ``kernel_size``, ...), compared with the stored
  shape to find stacked axes (``nnx.vmap`` / ``eqx.filter_vmap`` stacks).
* :func:`linen_layouts` reads a ``flax.linen`` module by tracing its ``init``
  abstractly and recording, for every ``self.param`` call, the shape Flax hands
  the initializer.
* :func:`jinit.init <init>` initializes a linen module with rules, substituting
  each matched parameter's initializer inside Flax's own ``init``: same key, same
  per-layer shape (``nn.scan`` slices included), same boxes.

Limit: under :func:`jinit.init <init>` the rule's initializer is called with the shape the
module hands to ``self.param``'s init function. Among Flax's layers only ``DenseGeneral``
reshapes inside that function (jinit knows it); a third-party module whose init function
reshapes before calling its own initializer cannot be seen into: state its layout with a
:class:`~jinit.layout.LeafSpec` in the rule.

Known layers: linen ``Dense``, ``DenseGeneral`` (so ``MultiHeadDotProductAttention``),
``Conv``, ``Embed`` and every module that passes its initializer the shape it
stores; nnx ``Linear``, ``LinearGeneral``, ``Conv``, ``ConvTranspose``, ``Einsum``,
``Embed``, ``MultiHeadAttention``, ``LayerNorm``, ``RMSNorm``, ``BatchNorm``,
``GroupNorm``; Equinox ``Linear``, ``Conv*``, ``ConvTranspose*``, ``Embedding``,
``MultiheadAttention``, ``LayerNorm``, ``RMSNorm``, ``GroupNorm``.
"""

from __future__ import annotations

import contextlib
import contextvars
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

from jinit.layout import Layout, stacked_axes

__all__ = ["Unknown", "model_layouts", "linen_layouts", "framework_of"]


@dataclass(frozen=True)
class Unknown:
    """A leaf whose layout could not be read; ``reason`` says why and how to state it."""

    shape: tuple[int, ...]
    reason: str

    def describe(self) -> str:
        return f"unknown: {self.reason}"


def framework_of(model: Any) -> str | None:
    """``"nnx"``, ``"equinox"``, ``"linen"`` or ``None`` (a plain pytree)."""
    cls_modules = [c.__module__ for c in type(model).__mro__]
    if any(m.startswith("flax.nnx") for m in cls_modules):
        return "nnx"
    if any(m.startswith("equinox") for m in cls_modules):
        return "equinox"
    if any(m.startswith("flax.linen") for m in cls_modules):
        return "linen"
    return None


def _slice_layout(path: str, stored: tuple, one: tuple, init_shape: tuple, source: str, *,
                  canonical=None, perm=None, role=None, fan_in=None) -> Layout | Unknown:
    """The layout of a stored leaf whose unstacked shape the layer says is ``one``."""
    stored, one = tuple(int(d) for d in stored), tuple(int(d) for d in one)
    if stored == one:
        return Layout(stored, init_shape, (), canonical, perm, source, role, fan_in)
    options = stacked_axes(stored, one)
    k = len(stored) - len(one)
    if not options:
        return Unknown(stored, f"{source} says one layer's {path.rsplit('/', 1)[-1]} has shape {one}, "
                               f"but the stored leaf {path!r} has shape {stored}")
    if len(options) > 1:
        return Unknown(stored, (
            f"{path!r} of shape {stored} holds {source} slices of shape {one}, and the stacked "
            f"axes could be any of {options}; state them in the rule: "
            f"(pattern, initializer, jinit.LeafSpec(stack_axes={tuple(range(k))}))"))
    return Layout(stored, init_shape, options[0], canonical, perm, source, role, fan_in)


# ---------------------------------------------------------------------------
# nnx


def _nnx_specs(layer: Any) -> dict[str, tuple]:
    """name -> (one-slice shape, init shape, canonical, perm, role, fan_in) for a known nnx layer."""
    from flax import nnx

    cls = type(layer)
    if isinstance(layer, nnx.Linear):
        fi, fo = int(layer.in_features), int(layer.out_features)
        return {"kernel": ((fi, fo), (fi, fo), None, None, "kernel", fi), "bias": ((fo,), (fo,), None, None, "bias", fi)}
    if isinstance(layer, nnx.LinearGeneral):
        batch = tuple(int(v) for v in layer.batch_axis.values())
        ins, outs = tuple(layer.in_features), tuple(layer.out_features)
        kernel = batch + ins + outs
        fan_in = math.prod(batch) * math.prod(ins)
        flat = (fan_in, math.prod(outs))
        return {"kernel": (kernel, flat, kernel, None, "kernel", fan_in),
                "bias": (batch + outs, (math.prod(batch + outs),), batch + outs, None, "bias", fan_in)}
    if isinstance(layer, (nnx.Conv, nnx.ConvTranspose, nnx.Einsum)):
        kshape = tuple(int(d) for d in layer.kernel_shape)
        fan_in = math.prod(kshape[:-1])
        specs = {"kernel": (kshape, kshape, None, None, "kernel", fan_in)}
        bias = getattr(layer, "bias", None)
        if _nnx_value(bias) is not None and not isinstance(layer, nnx.Einsum):
            fo = int(layer.out_features)
            specs["bias"] = ((fo,), (fo,), None, None, "bias", fan_in)
        elif isinstance(layer, nnx.Einsum) and getattr(layer, "bias_shape", None) is not None:
            bshape = tuple(int(d) for d in layer.bias_shape)
            specs["bias"] = (bshape, bshape, None, None, "bias", fan_in)
        return specs
    if isinstance(layer, nnx.Embed):
        shape = (int(layer.num_embeddings), int(layer.features))
        return {"embedding": (shape, shape, None, None, "embedding", None)}
    if isinstance(layer, (nnx.LayerNorm, nnx.RMSNorm, nnx.BatchNorm, nnx.GroupNorm)):
        n = (int(layer.num_features),)
        return {"scale": (n, n, None, None, "scale", None), "bias": (n, n, None, None, "norm_bias", None)}
    del cls
    return {}


def _nnx_value(var: Any) -> Any:
    """The array inside an ``nnx.Variable`` (``None`` for absent ones)."""
    if var is None:
        return None
    getter = getattr(var, "get_value", None)
    return getter() if callable(getter) else getattr(var, "value", None)


def _nnx_layouts(model: Any) -> dict[str, Layout | Unknown]:
    from flax import nnx

    out: dict[str, Layout | Unknown] = {}
    attention_outs = set()
    for path, node in nnx.iter_graph(model):
        if isinstance(node, nnx.MultiHeadAttention):
            attention_outs.add(tuple(path) + ("out",))
    for path, node in nnx.iter_graph(model):
        if not isinstance(node, nnx.Module):
            continue
        source = f"nnx.{type(node).__name__}"
        for name, (one, init_shape, canonical, perm, role, fan_in) in _nnx_specs(node).items():
            value = _nnx_value(getattr(node, name, None))
            if value is None or not hasattr(value, "shape"):
                continue
            if role == "kernel" and tuple(path) in attention_outs:
                role = "attention_out"
            p = "/".join(str(k) for k in (*path, name))
            out[p] = _slice_layout(p, value.shape, one, init_shape, source, canonical=canonical, perm=perm,
                                   role=role, fan_in=fan_in)
    return out


# ---------------------------------------------------------------------------
# Equinox


def _eqx_specs(layer: Any) -> dict[str, tuple]:
    import equinox as eqx

    if isinstance(layer, eqx.nn.Linear):
        fi = 1 if layer.in_features == "scalar" else int(layer.in_features)
        fo = 1 if layer.out_features == "scalar" else int(layer.out_features)
        return {"weight": ((fo, fi), (fi, fo), None, (1, 0), "kernel", fi),
                "bias": ((fo,), (fo,), None, None, "bias", fi)}
    if isinstance(layer, (eqx.nn.Conv, eqx.nn.ConvTranspose)):
        k = tuple(int(d) for d in layer.kernel_size)
        cin, cout = int(layer.in_channels) // int(layer.groups), int(layer.out_channels)
        n = len(k)
        fan_in = cin * math.prod(k)
        return {"weight": ((cout, cin) + k, k + (cin, cout), None, (n + 1, n) + tuple(range(n)), "kernel", fan_in),
                "bias": ((cout,) + (1,) * n, (cout,), (cout,) + (1,) * n, None, "bias", fan_in)}
    if isinstance(layer, eqx.nn.Embedding):
        shape = (int(layer.num_embeddings), int(layer.embedding_size))
        return {"weight": (shape, shape, None, None, "embedding", None)}
    if isinstance(layer, (eqx.nn.LayerNorm, eqx.nn.RMSNorm)):
        shape = (layer.shape,) if isinstance(layer.shape, int) else tuple(layer.shape)
        return {"weight": (shape, shape, None, None, "scale", None),
                "bias": (shape, shape, None, None, "norm_bias", None)}
    if isinstance(layer, eqx.nn.GroupNorm):
        c = (int(layer.channels),)
        return {"weight": (c, c, None, None, "scale", None), "bias": (c, c, None, None, "norm_bias", None)}
    return {}


def _eqx_known(x: Any) -> bool:
    import equinox as eqx

    return isinstance(x, (eqx.nn.Linear, eqx.nn.Conv, eqx.nn.ConvTranspose, eqx.nn.Embedding,
                          eqx.nn.LayerNorm, eqx.nn.RMSNorm, eqx.nn.GroupNorm))


def _eqx_layouts(model: Any) -> dict[str, Layout | Unknown]:
    import equinox as eqx

    from jinit.tree import path_string

    attention_outs = set()
    for path, node in jax.tree_util.tree_flatten_with_path(
        model, is_leaf=lambda x: isinstance(x, eqx.nn.MultiheadAttention)
    )[0]:
        if isinstance(node, eqx.nn.MultiheadAttention):
            attention_outs.add(path_string(path) + "/output_proj")
    out: dict[str, Layout | Unknown] = {}
    for path, node in jax.tree_util.tree_flatten_with_path(model, is_leaf=_eqx_known)[0]:
        if not _eqx_known(node):
            continue
        prefix = path_string(path)
        source = f"eqx.nn.{type(node).__name__}"
        for name, (one, init_shape, canonical, perm, role, fan_in) in _eqx_specs(node).items():
            value = getattr(node, name, None)
            if value is None or not hasattr(value, "shape"):
                continue
            if role == "kernel" and prefix in attention_outs:
                role = "attention_out"
            p = f"{prefix}/{name}" if prefix else name
            out[p] = _slice_layout(p, value.shape, one, init_shape, source, canonical=canonical, perm=perm,
                                   role=role, fan_in=fan_in)
    return out


def model_layouts(model: Any) -> dict[str, Layout | Unknown]:
    """``{path: Layout}`` for every parameter of a known layer of an nnx or Equinox model.

    Paths are those of :func:`jinit.tree.tree_paths` on the model (``"layers/0/kernel"``
    for nnx, ``"layers/0/weight"`` for Equinox). Leaves of layers jinit does not know
    are absent (they are read as plain Flax-layout tensors). An :class:`Unknown`
    marks a leaf whose stacked axes are ambiguous or whose shape contradicts its layer.

    Example:
      >>> import jax, equinox as eqx
      >>> from jinit.models import model_layouts
      >>> mlp = eqx.nn.MLP(4, 2, 8, 1, key=jax.random.key(0))
      >>> layout = model_layouts(mlp)["layers/0/weight"]
      >>> layout.shape, layout.init_shape, layout.source
      ((8, 4), (4, 8), 'eqx.nn.Linear')
    """
    framework = framework_of(model)
    if framework == "nnx":
        return _nnx_layouts(model)
    if framework == "equinox":
        return _eqx_layouts(model)
    raise TypeError(
        f"model_layouts: expected an nnx.Module or an equinox.Module, got {type(model).__name__}; "
        "for a flax.linen module use jinit.models.linen_layouts(module, *example_inputs)."
    )


# ---------------------------------------------------------------------------
# linen: the shape Flax hands each initializer, read inside Module.param


def _prod(shape) -> int:
    return int(math.prod(int(d) for d in shape))


def _LINEN_NORMS() -> tuple[type, ...]:
    import flax.linen as nn

    return (nn.LayerNorm, nn.RMSNorm, nn.BatchNorm, nn.GroupNorm)


def linen_kernel_fan_in(module: Any) -> int | None:
    """The fan-in of ``module``'s kernel as its initializer sees it (for fan-dependent biases)."""
    if module.scope is None or not module.scope.has_variable("params", "kernel"):
        return None
    kernel = module.scope.get_variable("params", "kernel")
    shape = tuple(np.shape(getattr(kernel, "value", kernel)))
    init_shape, _ = linen_init_shape(module, "kernel", shape)
    return _prod(init_shape[:-1]) if len(init_shape) >= 2 else None


def linen_role(module: Any, name: str) -> str | None:
    """The role of parameter ``name`` of a linen ``module`` (see :class:`~jinit.layout.Layout`)."""
    import flax.linen as nn

    role = {"kernel": "kernel", "bias": "bias", "embedding": "embedding", "scale": "scale"}.get(name)
    if role == "kernel" and module.name == "out" and isinstance(module.parent, nn.MultiHeadDotProductAttention):
        return "attention_out"
    if role == "bias" and isinstance(module, _LINEN_NORMS()):
        return "norm_bias"
    return role


def linen_init_shape(module: Any, name: str, shape: tuple) -> tuple[tuple, str | None]:
    """(shape passed to the user's initializer, role) for parameter ``name`` of ``module``
    whose per-call value has ``shape``: Flax's own flattening for ``DenseGeneral``."""
    import flax.linen as nn

    shape = tuple(int(d) for d in shape)
    role = linen_role(module, name)
    if isinstance(module, nn.DenseGeneral):
        n_batch = len(tuple(module.batch_dims) if not isinstance(module.batch_dims, int) else (module.batch_dims,))
        features = module.features if not isinstance(module.features, int) else (module.features,)
        n_features = len(tuple(features))
        if name == "kernel":
            n_axis = len(shape) - n_batch - n_features
            return (_prod(shape[: n_batch + n_axis]), _prod(shape[n_batch + n_axis:])), role
        if name == "bias":
            return (_prod(shape),), role
    return shape, role


_ACTIVE: contextvars.ContextVar[Callable | None] = contextvars.ContextVar("jinit_linen_param", default=None)
_PATCH_LOCK = threading.Lock()
_PATCHED = False


def _install_param_hook() -> None:
    """Wraps ``flax.linen.Module.param`` once; the wrapper does nothing unless a jinit
    context is active (so other code using Flax is unaffected)."""
    global _PATCHED
    import flax.linen as nn

    with _PATCH_LOCK:
        if _PATCHED:
            return
        original = nn.Module.param

        def param(self, name, init_fn, *init_args, unbox=True, **init_kwargs):
            hook = _ACTIVE.get()
            if hook is None or self.scope is None or self.scope.has_variable("params", name):
                return original(self, name, init_fn, *init_args, unbox=unbox, **init_kwargs)
            init_fn = hook(self, name, init_fn)
            return original(self, name, init_fn, *init_args, unbox=unbox, **init_kwargs)

        param.__doc__ = original.__doc__
        param.__wrapped__ = original
        nn.Module.param = param
        _PATCHED = True


@contextlib.contextmanager
def param_hook(hook: Callable[[Any, str, Callable], Callable]):
    """While active, every linen ``self.param(name, init_fn, ...)`` uses
    ``hook(module, name, init_fn)`` as its init function."""
    _install_param_hook()
    token = _ACTIVE.set(hook)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def param_path(module: Any, name: str) -> str:
    return "/".join(("params", *map(str, module.scope.path), name))


@dataclass
class _Seen:
    module: str
    call_shape: tuple
    init_shape: tuple
    role: str | None
    fan_in: int | None


def linen_layouts(module: Any, *args: Any, **kwargs: Any) -> dict[str, Layout | Unknown]:
    """``{path: Layout}`` for every parameter of a linen module, read by tracing
    ``module.init`` abstractly on the example inputs (nothing is computed).

    Paths are ``"params/..."`` as in :func:`jinit.tree.tree_paths` of the variables.
    A parameter created inside ``nn.scan`` / ``nn.vmap`` gets the stacked axes by
    comparing the per-layer shape Flax passed with the stored one.

    Example:
      >>> import jax, jax.numpy as jnp, flax.linen as nn
      >>> from jinit.models import linen_layouts
      >>> attention = nn.MultiHeadDotProductAttention(num_heads=4, qkv_features=64)
      >>> layouts = linen_layouts(attention, jnp.ones((1, 5, 32)))
      >>> layouts["params/query/kernel"].init_shape, layouts["params/out/kernel"].init_shape
      ((32, 64), (64, 32))
    """
    seen: dict[str, _Seen] = {}

    def hook(mdl, name, init_fn):
        def record(rng, *a, **kw):
            value = init_fn(rng, *a, **kw)
            shape = tuple(np.shape(getattr(value, "value", value)))
            init_shape, role = linen_init_shape(mdl, name, shape)
            fan_in = linen_kernel_fan_in(mdl) if role == "bias" else None
            seen[param_path(mdl, name)] = _Seen(type(mdl).__name__, shape, init_shape, role, fan_in)
            return value

        return record

    with param_hook(hook):
        variables = jax.eval_shape(lambda k: module.init(k, *args, **kwargs), jax.random.key(0))
    from jinit.tree import leaves_with_paths

    out: dict[str, Layout | Unknown] = {}
    for path, leaf in leaves_with_paths(variables):
        if path not in seen:
            continue
        s = seen[path]
        source = f"linen.{s.module}"
        canonical = s.call_shape if s.init_shape != s.call_shape else None
        out[path] = _slice_layout(path, leaf.shape, s.call_shape, s.init_shape, source, canonical=canonical,
                                  role=s.role, fan_in=s.fan_in)
    return out
