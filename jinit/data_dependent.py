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
pre-activation (the layer call's result).

Models: ``flax.linen`` (a Module or an apply function, with its params),
``flax.nnx`` and Equinox modules. Layers are found by *calling* the model once
(see :mod:`jinit._probe`): every call of a layer type (by default linen
``Dense``/``DenseGeneral``/``Conv``/``Einsum``, nnx ``Linear``/``LinearGeneral``/
``Conv``/``Einsum``, Equinox ``Linear``/``Conv``; so the query/key/value/output
projections of the attention layers too) reports its output variance through an
ordered :func:`jax.debug.callback`, wherever it is: nested modules, scans,
remat, ``jax.vmap``.

Stacked layers. A layer stacked by ``nn.scan`` / ``nnx.vmap`` / ``eqx.filter_vmap``
has a kernel with leading layer axes, ``(L, in, out)``, and is called ``L`` times
per forward pass, once per slice. Each slice is pre-initialized with its own key
and rescaled as a separate layer. A non-stacked layer called several times
(shared weights) is rescaled for its first call only.
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

from jinit import _probe
from jinit._core import Initializer, check_int, check_key, check_real
from jinit.layout import draw
from jinit.structured import orthogonal
from jinit.tree import path_hash

__all__ = ["lsuv", "LSUVLayer"]


@dataclass(frozen=True)
class LSUVLayer:
    """What :func:`lsuv` did to one layer.

    Attributes:
      path: the kernel's ``/``-joined path: ``"params/Dense_0/kernel"`` (linen),
        ``"layers/0/kernel"`` (nnx), ``"layers/0/weight"`` (Equinox).
      index: the slice of a stacked (scanned) kernel, or ``None``.
      var_before: output variance after the pre-init, before rescaling.
      var_after: output variance of the returned parameters.
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


def _default_types(fw: str) -> tuple[type, ...]:
    if fw == "nnx":
        from flax import nnx

        return (nnx.Linear, nnx.LinearGeneral, nnx.Conv, nnx.Einsum)
    if fw == "equinox":
        import equinox as eqx

        return (eqx.nn.Linear, eqx.nn.Conv)
    return (nn.Dense, nn.DenseGeneral, nn.Conv, nn.Einsum)


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


_ACCEPTED = ("a flax.linen Module, an apply function (params, batch) -> output, a flax.nnx Module or an "
             "equinox Module")


def _parse(model: Any, args: tuple, tol: Any, max_iter: Any) -> tuple[str, Any, Any, Any, Any]:
    """(framework, params, batch, tol, max_iter) from ``lsuv``'s positional arguments."""
    fw = _probe.framework(model)
    if fw is None:
        raise TypeError(f"lsuv: model must be {_ACCEPTED}, got {type(model).__name__}.")
    if fw == "apply" and _probe.is_jitted(model):
        raise TypeError("lsuv: model is a jax.jit-compiled function; its cached trace would bypass the layer "
                        "interception. Pass the un-jitted model.apply, or the Module itself.")
    names = ("params", "batch") if fw in ("linen", "apply") else ("batch",)
    form = f"lsuv(key, model, {', '.join(names)}, tol=..., max_iter=...)"
    if len(args) < len(names) or len(args) > len(names) + 2:
        raise TypeError(f"lsuv: a {_probe._FW_NAME[fw]} model is called as {form}; got {len(args)} "
                        "positional argument(s) after the model.")
    extra = args[len(names):]
    if extra and fw in ("nnx", "equinox") and not isinstance(extra[0], numbers.Real):
        raise TypeError(f"lsuv: an {fw} model carries its own parameters: call {form} (no params argument).")
    for name, given, default in zip(("tol", "max_iter"), (tol, max_iter), (0.1, 10)):
        if len(extra) > ("tol", "max_iter").index(name) and given != default:
            raise TypeError(f"lsuv: got {name} both positionally and by keyword.")
    tol = extra[0] if extra else tol
    max_iter = extra[1] if len(extra) > 1 else max_iter
    return fw, (args[0] if len(names) == 2 else None), args[len(names) - 1], tol, max_iter


def _check_settings(tol: Any, max_iter: Any, target_var: Any, pre_init: Any) -> None:
    check_real("lsuv", "tol", tol, positive=True)
    check_real("lsuv", "target_var", target_var, positive=True)
    check_int("lsuv", "max_iter", max_iter, 1)
    if pre_init is not None and not callable(pre_init):
        raise TypeError(
            f"lsuv: pre_init must be an initializer init(key, shape, dtype) or None (keep the kernels), "
            f"got {pre_init!r}."
        )


def _probe_of(fw, model, params, batch, layer_types, apply_kwargs, forward, pre_init) -> _probe.Probe:
    types = _default_types(fw) if layer_types is None else layer_types
    try:
        is_layer = _probe.types_of(fw, types)
    except TypeError as err:
        raise TypeError(f"lsuv: {err}") from None
    kwargs = dict(apply_kwargs or {})
    if fw == "apply" and kwargs:
        raise TypeError("lsuv: apply_kwargs is only used when model is a Module (linen, nnx or Equinox).")
    if forward is not None and (fw in ("linen", "apply") or kwargs):
        raise TypeError("lsuv: forward is for nnx / Equinox models, and replaces apply_kwargs.")
    if fw == "linen":
        module, model = model, lambda p, b: module.apply(p, b, **kwargs)
    call = forward
    if call is None and fw == "nnx":
        call = lambda m, b: m(b, **kwargs)  # noqa: E731
    elif call is None and fw == "equinox":
        call = lambda m, b: jax.vmap(lambda e: m(e, **kwargs))(b)  # noqa: E731
    kinds = ", ".join(t.__name__ for t in types)
    return _probe.build("lsuv", model, params, batch, layers=is_layer, call=call,
                        pre_init_layouts=pre_init is not None, kinds=kinds)


def _pre_initialize(key: jax.Array, probe: _probe.Probe, pre_init: Any) -> dict[str, jax.Array]:
    """Every kernel redrawn with ``pre_init`` the way its layer draws it (slice by slice for stacks)."""
    kernels = probe.kernels()
    if pre_init is None:
        return kernels
    for site in probe.sites:
        if site.layout is None:
            raise ValueError(
                f"lsuv: jinit does not know how {site.module!r} ({site.kernel!r}, shape {site.shape}) hands "
                "its initializer the kernel, so pre_init cannot be drawn for it; pass pre_init=None to keep "
                "the kernels as they are (e.g. initialize them first with jinit.tree.reinit).")
        w = kernels[site.kernel]
        k = jax.random.fold_in(key, jnp.asarray(path_hash(site.kernel), jnp.uint32))
        try:
            new = draw(pre_init, k, site.layout, w.dtype)
        except ValueError as err:
            raise ValueError(f"lsuv: pre_init for {site.kernel!r}: {err}.") from None
        if tuple(new.shape) != tuple(w.shape):
            raise ValueError(f"lsuv: pre_init returned shape {tuple(new.shape)} for {site.kernel!r}, "
                             f"expected {tuple(w.shape)}.")
        kernels[site.kernel] = jnp.asarray(new, w.dtype)
    return kernels


def _variance(y: jax.Array) -> jax.Array:
    y = y.astype(jnp.float32)
    return jnp.mean(jnp.square(y - jnp.mean(y)))


def _scaled(w: jax.Array, factor: jax.Array, stack_axes: tuple[int, ...]) -> jax.Array:
    """``w`` times its factor (one per slice of a stacked kernel), rounded once to ``w``'s dtype."""
    shape = [w.shape[a] if a in stack_axes else 1 for a in range(w.ndim)]
    return (w.astype(jnp.float32) * jnp.reshape(factor, shape)).astype(w.dtype)


def _measurer(probe: _probe.Probe, kernels: dict, batch: Any) -> tuple[Callable, Callable]:
    """``run(factors) -> events`` with every kernel times its factors, and ``final()``: the
    kernels of the last run. The factors are applied inside the compiled pass, so every
    measurement runs the same program (no per-layer rescaling programs, one rounding)."""
    axes = {s.kernel: s.stack_axes for s in probe.sites}

    def prepare(args):
        base, factors = args
        return {p: _scaled(w, factors[p], axes[p]) for p, w in base.items()}

    # The forward pass runs for its reports; the program returns the kernels it used.
    measure = probe.recorder(_variance, fn=lambda apply, ks: (apply(ks), ks)[1], prepare=prepare)
    last: list = []

    def run(factors):
        used, events = measure((kernels, jax.tree.map(np.float32, factors)), batch)
        last[:] = [used]
        return events

    return run, lambda: last[0]


Unit = tuple[int, "int | None"]  # (site index, slice of a stacked kernel or None)


def _units(events: list) -> list[Unit]:
    """The layers to normalize, in execution order of their first call."""
    units: list[Unit] = []
    for e in events:
        if e.kind == "layer" and (e.index, e.slice) not in units:
            units.append((e.index, e.slice))
    return units


def _var(events: list, unit: Unit) -> float:
    return next(float(e.value) for e in events if e.kind == "layer" and (e.index, e.slice) == unit)


def _check_slices(probe: _probe.Probe, events: list) -> None:
    for i, site in enumerate(probe.sites):
        if site.stack_axes:
            used = {e.slice for e in events if e.kind == "layer" and e.index == i}
            if len(used) != site.slices:
                raise ValueError(
                    f"lsuv: stacked kernel {site.kernel!r} has {site.slices} slices but the forward pass "
                    f"used {len(used)} of them; every slice must be called as its own layer.")


def _unit_name(probe: _probe.Probe, unit: Unit) -> str:
    site = probe.sites[unit[0]]
    return site.kernel if unit[1] is None else f"{site.kernel}[{unit[1]}]"


def _check_var(name: str, v: float, target_var: float) -> None:
    if not math.isfinite(v):
        raise ValueError(f"lsuv: the output variance of layer {name!r} is {v} on this batch; "
                         "no parameters were changed.")
    if v <= 0.0:
        raise ValueError(
            f"lsuv: the output of layer {name!r} has variance 0 on this batch (constant output: inputs "
            "that are all zero or identical, or all units dead), so it cannot be rescaled to variance "
            f"{target_var}."
        )


def _normalize(run: Callable, probe: _probe.Probe, tol: float, max_iter: int,
               target_var: float) -> tuple[dict, list, list]:
    """Algorithm 1's loop: each layer (slice) in forward order, rescaled until within ``tol``.

    ``run(factors)`` measures with every kernel times its factors (one per slice). Returns the
    final factors, ``(unit, var_before, iterations)`` rows and the last measurement.
    """
    factors = {s.kernel: np.ones([s.shape[a] for a in s.stack_axes], np.float64) for s in probe.sites}
    events = run(factors)
    _check_slices(probe, events)
    rows, done = [], set()
    while True:
        # The next layer in execution order of the latest pass (robust to any reordering).
        unit = next((u for u in _units(events) if u not in done), None)
        if unit is None:
            return factors, rows, events
        v = before = _var(events, unit)
        iters, site = 0, probe.sites[unit[0]]
        while True:
            _check_var(_unit_name(probe, unit), v, target_var)
            if abs(v - target_var) < tol or iters == max_iter:
                break
            index = () if unit[1] is None else np.unravel_index(unit[1], factors[site.kernel].shape)
            factors[site.kernel][index] *= math.sqrt(target_var / v)
            iters += 1
            events = run(factors)
            v = _var(events, unit)
        done.add(unit)
        rows.append((unit, before, iters))


def lsuv(
    key: Any,
    model: Any,
    *args: Any,
    tol: float = 0.1,
    max_iter: int = 10,
    pre_init: Initializer | None = orthogonal(),
    target_var: float = 1.0,
    layer_types: tuple[type, ...] | None = None,
    apply_kwargs: Mapping[str, Any] | None = None,
    forward: Callable[[Any, Any], Any] | None = None,
) -> tuple[Any, list[LSUVLayer]]:
    r"""Layer-sequential unit-variance initialization (Mishkin & Matas, 2016).

    Call forms (``tol`` and ``max_iter`` may also follow positionally):

    * ``lsuv(key, module_or_apply_fn, params, batch)`` for ``flax.linen``: returns
      ``(new_params, report)``;
    * ``lsuv(key, model, batch)`` for a ``flax.nnx`` or Equinox module: returns
      ``(new_model, report)``; ``model`` itself is not changed.

    1. Pre-initialization: every layer kernel the forward pass uses is redrawn with
       ``pre_init`` (default :func:`jinit.structured.orthogonal`, the paper's
       orthonormal init), with key ``fold_in(key, path_hash(kernel path))``, called
       with the shape the layer hands its own initializer (:mod:`jinit.layout`):
       one ``split(that key, L)[t]`` per slice ``t`` of a stacked kernel; the flattened
       ``(in, heads * head_dim)`` map of a ``DenseGeneral``/``LinearGeneral`` (attention
       projections); ``(*kernel, in, out)`` transposed to Equinox's ``(out, in, *kernel)``.
       Biases and all other parameters are kept.
    2. Then for each layer (each slice) in forward order:
       :math:`W \leftarrow W\sqrt{v^*/v}` with :math:`v` the variance of the
       layer's output on ``batch``, repeated until :math:`|v - v^*| <` ``tol`` or
       ``max_iter`` rescalings (then a ``RuntimeWarning``), :math:`v^* = 1`.

    Each forward pass is one jit-compiled program (compiled once) that reports every
    layer call's output variance in execution order; see :mod:`jinit._probe`.

    Args:
      key: PRNG key for the pre-initialization.
      model: a ``flax.linen.Module`` (called as ``model.apply(params, batch, **apply_kwargs)``),
        a function ``apply_fn(params, batch)`` that calls linen modules (not ``jax.jit``-ed: a
        cached trace would bypass the layer interception), an ``nnx.Module`` (called as
        ``model(batch, **apply_kwargs)``) or an ``equinox.Module`` (called per example,
        ``jax.vmap(model)(batch)``).
      *args: ``params, batch`` (linen) or ``batch`` (nnx, Equinox); ``params`` are the
        variables ``{"params": ...}`` as ``model.init`` returns them (or the inner params
        dict if ``apply_fn`` wraps it); ``batch`` is one input batch (array or pytree) of at
        least 2 distinct examples.
      tol: tolerance on the output variance, > 0 (paper: 0.1).
      max_iter: maximum number of rescalings per layer, >= 1 (paper: 10).
      pre_init: kernel initializer for step 1 (default ``orthogonal()``), or
        ``None`` to keep the given kernels (e.g. already orthogonal ones).
      target_var: :math:`v^* > 0`.
      layer_types: module classes (of the model's framework) whose call output is normalized;
        default as listed above.
      apply_kwargs: extra keyword arguments for the model call (e.g. ``{"train": False}`` or,
        linen, ``{"mutable": ["batch_stats"]}``).
      forward: nnx / Equinox only: ``forward(model, batch)`` runs the model on the batch
        (instead of the defaults above), e.g. ``lambda m, b: m(b)`` for an Equinox model
        that takes batches itself.

    Returns:
      ``(new_params or new_model, report)``: one :class:`LSUVLayer` per layer (per slice for
      stacked kernels) in forward order.

    Raises:
      ValueError: NaN/inf or identical examples in ``batch``; a layer whose output variance
        is 0 or not finite (it cannot be rescaled; no NaN parameters are ever returned); no
        layer found; a kernel whose initializer layout is unknown (with ``pre_init``).
      TypeError: a ``jax.jit``-compiled apply function; a model of another kind.

    Example:
      >>> import jax, jax.numpy as jnp, numpy as np, flax.linen as nn
      >>> from jinit.data_dependent import lsuv
      >>> dense = lambda n: nn.Dense(n, kernel_init=nn.initializers.zeros)  # lsuv redraws kernels
      >>> model = nn.Sequential([dense(32), nn.tanh, dense(32), nn.tanh, dense(4)])
      >>> x = jnp.asarray(np.random.default_rng(0).normal(size=(128, 16)), jnp.float32)
      >>> params = model.init(jax.random.key(1), x)
      >>> params, report = lsuv(jax.random.key(2), model, params, x)
      >>> [r.path for r in report]
      ['params/layers_0/kernel', 'params/layers_2/kernel', 'params/layers_4/kernel']
      >>> all(abs(r.var_after - 1) < 0.1 for r in report)
      True

      The same for an nnx model (Equinox alike), which comes back as a new model:

      >>> from flax import nnx
      >>> net = nnx.Sequential(nnx.Linear(16, 32, rngs=nnx.Rngs(0)), nnx.tanh, nnx.Linear(32, 4, rngs=nnx.Rngs(1)))
      >>> new, report = lsuv(jax.random.key(2), net, x)
      >>> [r.path for r in report], all(r.converged for r in report)
      (['layers/0/kernel', 'layers/2/kernel'], True)
    """
    fw, params, batch, tol, max_iter = _parse(model, args, tol, max_iter)
    key = check_key("lsuv", key)
    _check_settings(tol, max_iter, target_var, pre_init)
    _check_batch(batch)
    tol, target_var, max_iter = float(tol), float(target_var), int(max_iter)
    probe = _probe_of(fw, model, params, batch, layer_types, apply_kwargs, forward, pre_init)
    run, final = _measurer(probe, _pre_initialize(key, probe, pre_init), batch)
    _, rows, events = _normalize(run, probe, tol, max_iter, target_var)
    report = []
    for unit, before, iters in rows:
        # Read back from the final pass: later rescalings never change an earlier layer's input
        # in forward order, so this is the value reached, unless the order was not forward.
        after = _var(events, unit)
        report.append(LSUVLayer(probe.sites[unit[0]].kernel, unit[1], before, after, iters,
                                abs(after - target_var) < tol))
    failed = [r.name for r in report if not r.converged]
    if failed:
        warnings.warn(
            f"lsuv: {len(failed)} layer(s) did not reach |Var - {target_var}| < {tol} in {max_iter} "
            f"rescalings: {', '.join(failed)}.",
            RuntimeWarning,
            stacklevel=2,
        )
    return probe.rebuild(final()), report
