r"""Data-dependent initialization: LSUV (layer-sequential unit variance).

:func:`lsuv` (Mishkin & Matas, 2016, "All you need is a good init", ICLR,
Algorithm 1) starts from orthonormal kernels and then, layer by layer in
forward order, divides each kernel by the standard deviation of that layer's
output on one batch until the output variance is 1:

.. math:: W_l \leftarrow W_l / \sqrt{\mathrm{Var}(x_l W_l + b_l)}
          \quad \text{until} \quad |\mathrm{Var} - 1| < \text{tol}
          \ \text{or}\ \text{max\_iter rescalings},

where the variance is over every element of the layer's output (batch and
features, the paper's "output blob") and the output is the layer's
pre-activation (the ``nn.Dense``/``nn.Conv`` call's result).

How layers are found. The model runs under :func:`flax.linen.intercept_methods`:
every call of a Flax linen ``nn.Dense`` or ``nn.Conv`` (``layer_types``)
reports its output variance through an ordered :func:`jax.debug.callback`.
That sees layers wherever they are, including inside ``nn.scan``, ``nn.remat``
and nested modules, where ``capture_intermediates`` silently records nothing
unless the scan lists ``"intermediates"`` in ``variable_axes``. Each layer's
kernel is ``params["params"][*module.path]["kernel"]`` (or without the leading
``"params"`` if ``params`` is already the inner dict).

Stacked layers. A layer inside ``nn.scan(..., variable_axes={"params": 0})`` has a
kernel with a leading layer axis, ``(L, in, out)``, and is called ``L`` times per
forward pass: call ``t`` is slice ``t`` (a forward scan). Each slice is pre-
initialized with its own key and rescaled as a separate layer. A non-stacked
layer called several times (shared weights) is rescaled for its first call only.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from jinit._core import Initializer, check_key, check_real
from jinit.structured import orthogonal
from jinit.tree import path_hash

__all__ = ["lsuv", "LSUVLayer"]


@dataclass(frozen=True)
class LSUVLayer:
    """What :func:`lsuv` did to one layer.

    Attributes:
      path: the kernel's ``/``-joined path, e.g. ``"params/Dense_0/kernel"``.
      index: the slice of a stacked (scanned) kernel, or ``None``.
      var_before: output variance after the pre-init, before rescaling.
      var_after: output variance after the last rescaling.
      iterations: number of rescalings (0 if it was already within ``tol``).
      converged: ``abs(var_after - target_var) < tol``.
    """

    path: str
    index: int | None
    var_before: float
    var_after: float
    iterations: int
    converged: bool

    @property
    def name(self) -> str:
        return self.path if self.index is None else f"{self.path}[{self.index}]"


@dataclass
class _Layer:
    module_path: tuple[str, ...]
    kernel_path: tuple[str, ...]
    stacked: bool
    length: int  # number of slices (1 if not stacked)


def _lookup(tree: Any, path: tuple[str, ...]) -> Any:
    node = tree
    for k in path:
        if not isinstance(node, Mapping) or k not in node:
            return None
        node = node[k]
    return node


def _replace(tree: Any, new: dict[tuple[str, ...], Any]) -> Any:
    """``tree`` with the leaves at the given dict-key paths replaced."""

    def visit(path, leaf):
        keys = tuple(str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path)
        return new.get(keys, leaf)

    return jax.tree_util.tree_map_with_path(visit, tree)


def _check_batch(batch: Any) -> None:
    leaves = jax.tree.leaves(batch)
    if not leaves:
        raise ValueError("lsuv: batch is empty; pass the model's input batch (an array or a pytree of arrays).")
    arrays = [np.asarray(x) for x in leaves]
    for x in arrays:
        if x.dtype.kind in "fc" and not np.isfinite(x).all():
            bad = int(x.size - np.isfinite(x).sum())
            raise ValueError(
                f"lsuv: batch contains {bad} NaN or infinite value(s) (in an array of shape {x.shape}); "
                "the output variances would be NaN. Clean the batch first."
            )
    if any(x.ndim == 0 or x.shape[0] < 2 for x in arrays):
        raise ValueError(
            f"lsuv: needs a batch of at least 2 examples along axis 0, got shapes {[x.shape for x in arrays]}."
        )
    if all((x == x[:1]).all() for x in arrays):
        raise ValueError(
            "lsuv: every example in the batch is identical (constant inputs), so layer statistics "
            "would describe one input, not the data; pass a batch of real, varied examples."
        )


def lsuv(
    key: Any,
    model: nn.Module | Callable[[Any, Any], Any],
    params: Any,
    batch: Any,
    tol: float = 0.1,
    max_iter: int = 10,
    *,
    pre_init: Initializer | None = orthogonal(),
    target_var: float = 1.0,
    layer_types: tuple[type, ...] = (nn.Dense, nn.Conv),
    apply_kwargs: Mapping[str, Any] | None = None,
) -> tuple[Any, list[LSUVLayer]]:
    r"""Layer-sequential unit-variance initialization (Mishkin & Matas, 2016).

    1. Pre-initialization: every ``nn.Dense``/``nn.Conv`` kernel the forward pass
       uses is redrawn with ``pre_init`` (default :func:`jinit.structured.orthogonal`,
       the paper's orthonormal init), each with key
       ``fold_in(key, path_hash(kernel path))`` (slice ``t`` of a stacked kernel:
       ``split(that, L)[t]``). Biases and all other parameters are kept.
    2. Then for each layer in forward order:
       :math:`W \leftarrow W\sqrt{v^*/v}` with :math:`v` the variance of the
       layer's output on ``batch``, repeated until :math:`|v - v^*| <` ``tol`` or
       ``max_iter`` rescalings (then a ``RuntimeWarning``), :math:`v^* = 1`.

    Each forward pass is one jit-compiled program (compiled once) that reports
    every layer's output variance; the rescaling of one kernel is jitted too.

    Args:
      key: PRNG key for the pre-initialization.
      model: a ``flax.linen.Module`` (called as ``model.apply(params, batch,
        **apply_kwargs)``) or a function ``apply_fn(params, batch)`` that calls
        linen modules (not already ``jax.jit``-ed: a cached trace would bypass the
        layer interception).
      params: the variables, ``{"params": ...}`` as ``model.init`` returns them
        (or the inner params dict if ``apply_fn`` wraps it).
      batch: one input batch (array or pytree), at least 2 distinct examples.
      tol: tolerance on the output variance, > 0 (paper: 0.1).
      max_iter: maximum number of rescalings per layer, >= 1 (paper: 10).
      pre_init: kernel initializer for step 1 (default ``orthogonal()``), or
        ``None`` to keep the given kernels (e.g. already orthogonal ones).
      target_var: :math:`v^* > 0`.
      layer_types: linen module classes whose ``__call__`` output is normalized.
      apply_kwargs: extra keyword arguments for ``model.apply`` (e.g.
        ``{"train": False}`` or ``{"mutable": ["batch_stats"]}``).

    Returns:
      ``(new_params, report)``: params of the same structure, and one
      :class:`LSUVLayer` per layer (per slice for stacked kernels) in forward order.

    Raises:
      ValueError: NaN/inf or identical examples in ``batch``; a layer whose
        output variance is 0 or not finite (it cannot be rescaled; no NaN
        parameters are ever returned); no layer found.

    Example:
      >>> import jax, jax.numpy as jnp, numpy as np, flax.linen as nn
      >>> from jinit.data_dependent import lsuv
      >>> dense = lambda n: nn.Dense(n, kernel_init=nn.initializers.zeros)  # lsuv redraws kernels
      >>> model = nn.Sequential([dense(64), nn.tanh, dense(64), nn.tanh, dense(10)])
      >>> x = jnp.asarray(np.random.default_rng(0).normal(size=(128, 16)), jnp.float32)
      >>> params = model.init(jax.random.key(1), x)
      >>> params, report = lsuv(jax.random.key(2), model, params, x)
      >>> [r.path for r in report]
      ['params/layers_0/kernel', 'params/layers_2/kernel', 'params/layers_4/kernel']
      >>> all(abs(r.var_after - 1) < 0.1 for r in report)
      True
    """
    key = check_key("lsuv", key)
    check_real("lsuv", "tol", tol, positive=True)
    check_real("lsuv", "target_var", target_var, positive=True)
    if isinstance(max_iter, bool) or not isinstance(max_iter, (numbers.Integral, np.integer)) or max_iter < 1:
        raise ValueError(f"lsuv: max_iter must be an int >= 1, got {max_iter!r}.")
    if not isinstance(layer_types, tuple) or not layer_types or not all(
        isinstance(t, type) and issubclass(t, nn.Module) for t in layer_types
    ):
        raise TypeError(
            f"lsuv: layer_types must be a non-empty tuple of flax.linen Module classes, got {layer_types!r}."
        )
    kwargs = dict(apply_kwargs or {})
    if isinstance(model, nn.Module):
        module = model

        def apply_fn(p, b):
            return module.apply(p, b, **kwargs)

    elif callable(model):
        if kwargs:
            raise TypeError("lsuv: apply_kwargs is only used when model is a flax.linen Module.")
        apply_fn = model
    else:
        raise TypeError(
            f"lsuv: model must be a flax.linen Module or an apply function (params, batch) -> output, "
            f"got {type(model).__name__}."
        )
    if pre_init is not None and not callable(pre_init):
        raise TypeError(
            f"lsuv: pre_init must be an initializer init(key, shape, dtype) or None (keep the kernels), "
            f"got {pre_init!r}."
        )
    _check_batch(batch)
    tol, target_var, max_iter = float(tol), float(target_var), int(max_iter)

    def is_layer(context) -> bool:
        return context.method_name == "__call__" and isinstance(context.module, layer_types)

    # 1. Discover the layers (trace only): module path -> kernel shape inside the call.
    seen: dict[tuple[str, ...], tuple[int, ...]] = {}

    def discover(next_fun, args, kw, context):
        out = next_fun(*args, **kw)
        if is_layer(context) and context.module.path not in seen:
            kernel = context.module.get_variable("params", "kernel")
            if kernel is not None:
                seen[tuple(context.module.path)] = tuple(kernel.shape)
        return out

    def traced(p, b):
        with nn.intercept_methods(discover):
            return apply_fn(p, b)

    jax.eval_shape(traced, params, batch)
    if not seen:
        raise ValueError(
            f"lsuv: the forward pass called no {', '.join(t.__name__ for t in layer_types)} layer. "
            "Pass the linen Module (or an un-jitted apply function that calls it), or set layer_types."
        )

    layers: list[_Layer] = []
    for mpath, inner in seen.items():
        kpath = None
        for candidate in (("params", *mpath, "kernel"), (*mpath, "kernel")):
            if _lookup(params, candidate) is not None:
                kpath = candidate
                break
        if kpath is None:
            raise ValueError(f"lsuv: no kernel for layer {'/'.join(mpath)!r} in params (looked for "
                             f"params/{'/'.join(mpath)}/kernel).")
        full = tuple(np.shape(_lookup(params, kpath)))
        if full == inner:
            layers.append(_Layer(mpath, kpath, False, 1))
        elif full[1:] == inner:
            layers.append(_Layer(mpath, kpath, True, full[0]))
        else:
            raise ValueError(
                f"lsuv: kernel {'/'.join(kpath)!r} has shape {full} but the layer uses {inner}; only "
                "kernels stacked on a leading axis (nn.scan with variable_axes={'params': 0}) are supported."
            )
    layer_id = {layer.module_path: i for i, layer in enumerate(layers)}

    # 2. Pre-initialize.
    kernels: dict[tuple[str, ...], jax.Array] = {}
    for layer in layers:
        w = _lookup(params, layer.kernel_path)
        if pre_init is None:
            kernels[layer.kernel_path] = jnp.asarray(w)
            continue
        k = jax.random.fold_in(key, jnp.asarray(path_hash("/".join(layer.kernel_path)), jnp.uint32))
        if layer.stacked:
            keys = jax.random.split(k, layer.length)
            new = jnp.stack([pre_init(keys[t], w.shape[1:], w.dtype) for t in range(layer.length)])
        else:
            new = pre_init(k, w.shape, w.dtype)
        if tuple(new.shape) != tuple(w.shape):
            raise ValueError(
                f"lsuv: pre_init returned shape {tuple(new.shape)} for {'/'.join(layer.kernel_path)!r}, "
                f"expected {tuple(w.shape)}."
            )
        kernels[layer.kernel_path] = jnp.asarray(new, w.dtype)

    # 3. One compiled forward pass reporting (layer id, variance) per layer call, in order.
    records: list[tuple[int, float]] = []

    def sink(i, v):
        records.append((int(i), float(v)))

    def report_var(next_fun, args, kw, context):
        out = next_fun(*args, **kw)
        if is_layer(context) and tuple(context.module.path) in layer_id:
            y = jnp.asarray(out, jnp.float32)
            var = jnp.mean(jnp.square(y - jnp.mean(y)))
            jax.debug.callback(sink, layer_id[tuple(context.module.path)], var, ordered=True)
        return out

    @jax.jit
    def forward(p, ks, b):
        with nn.intercept_methods(report_var):
            apply_fn(_replace(p, ks), b)

    def measure() -> list[tuple[int, float]]:
        records.clear()
        forward(params, kernels, batch)
        jax.effects_barrier()
        return list(records)

    @jax.jit
    def rescale(w, factor):
        return (w.astype(jnp.float32) * factor).astype(w.dtype)

    @jax.jit
    def rescale_slice(w, index, factor):
        return w.at[index].set((w[index].astype(jnp.float32) * factor).astype(w.dtype))

    first = measure()
    units: list[tuple[int, int, int]] = []  # (position in the records, layer id, slice), forward order
    calls = [0] * len(layers)
    for pos, (i, _) in enumerate(first):
        t = calls[i]
        calls[i] += 1
        if layers[i].stacked or t == 0:
            units.append((pos, i, t))
    for i, layer in enumerate(layers):
        if layer.stacked and calls[i] != layer.length:
            raise ValueError(
                f"lsuv: stacked kernel {'/'.join(layer.kernel_path)!r} has {layer.length} slices but the "
                f"layer was called {calls[i]} times per forward pass."
            )

    report: list[LSUVLayer] = []
    stats = first
    for pos, i, t in units:
        layer = layers[i]
        name = "/".join(layer.kernel_path) + (f"[{t}]" if layer.stacked else "")
        v = stats[pos][1]
        before, iters = v, 0
        while True:
            if not math.isfinite(v):
                raise ValueError(f"lsuv: the output variance of layer {name!r} is {v} on this batch; "
                                 "no parameters were changed.")
            if v <= 0.0:
                raise ValueError(
                    f"lsuv: the output of layer {name!r} has variance 0 on this batch (constant output: "
                    "inputs that are all zero or identical, or all units dead), so it cannot be rescaled "
                    f"to variance {target_var}."
                )
            if abs(v - target_var) < tol or iters == max_iter:
                break
            w, factor = kernels[layer.kernel_path], np.float32(math.sqrt(target_var / v))
            if layer.stacked:
                kernels[layer.kernel_path] = rescale_slice(w, np.int32(t), factor)
            else:
                kernels[layer.kernel_path] = rescale(w, factor)
            iters += 1
            stats = measure()
            v = stats[pos][1]
        report.append(LSUVLayer("/".join(layer.kernel_path), t if layer.stacked else None, before, v, iters,
                                abs(v - target_var) < tol))

    failed = [r.name for r in report if not r.converged]
    if failed:
        warnings.warn(
            f"lsuv: {len(failed)} layer(s) did not reach |Var - {target_var}| < {tol} in {max_iter} "
            f"rescalings: {', '.join(failed)}.",
            RuntimeWarning,
            stacklevel=2,
        )
    return _replace(params, kernels), report
