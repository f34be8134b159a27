r"""One probe of a forward pass, for flax.linen, flax.nnx and Equinox models.

:func:`jinit.data_dependent.lsuv` and :mod:`jinit.diagnostics` both need, for one
batch, every layer the forward pass calls and each call's output, in execution
order. :func:`build` finds them and :meth:`Probe.recorder` compiles a forward pass
that reports them:

* the layers are the modules of ``layer_types`` (or matching a predicate) that are
  *called*, wherever they are: nested modules, ``nn.scan`` / ``nnx.scan`` /
  ``jax.lax.scan`` bodies over stacked parameters, ``jax.vmap`` (Equinox models run
  under it), remat;
* each call sends ``reduce(output)`` to the host through an ordered
  :func:`jax.debug.callback`. Under ``jax.vmap`` the callback would otherwise fire
  once per example; a :func:`jax.custom_batching.custom_vmap` rule hands it the
  whole batch instead, so one call of a layer is one event whatever the batching;
* a stacked kernel (leading layer axes, one slice per layer) is called once per
  slice. Each such call also reports a fingerprint of the kernel slice it used,
  :math:`(\sum_i w_i h_i, \|w \odot h\|)` with fixed pseudo-random weights
  :math:`h`, matched on the host against every slice's: call :math:`t` is assumed
  to be slice :math:`t` and checked, so a reversed or permuted scan is attributed
  correctly or raises, never silently mislabelled;
* optionally the residual stream: the input and output of residual blocks (module
  calls whose output is their input plus something, read from the call's jaxpr, or
  modules named by pattern).

How each framework is instrumented, without touching the user's objects:

* linen: :func:`flax.linen.intercept_methods` around ``apply``;
* nnx: the layers (and, for the stream, the other modules) of a clone get a
  per-module subclass (``obj.__class__``) whose ``__call__`` reports; the class is
  part of the graph definition, so the objects ``nnx.scan`` / ``nnx.vmap`` rebuild
  inside their bodies report too;
* Equinox: models are pytrees, so each layer is replaced by a small wrapper module
  (attribute reads pass through), which ``jax.lax.scan`` slices like the layer.

Example:
  >>> import jax, jax.numpy as jnp, flax.linen as nn
  >>> from jinit import _probe
  >>> model = nn.Sequential([nn.Dense(8), nn.relu, nn.Dense(2)])
  >>> x = jnp.ones((4, 3))
  >>> probe = _probe.build("demo", model.apply, model.init(jax.random.key(0), x), x,
  ...                      layers=_probe.types_of("linen", (nn.Dense,)))
  >>> [site.kernel for site in probe.sites]
  ['params/layers_0/kernel', 'params/layers_2/kernel']
  >>> _, events = probe.recorder(lambda y: jnp.asarray(y.shape))(probe.kernels(), x)
  >>> [(e.kind, e.index, e.value.tolist()) for e in events]
  [('layer', 0, [4, 8]), ('layer', 1, [4, 2])]
"""

from __future__ import annotations

import contextlib
import contextvars
import fnmatch
import functools
import math
from collections import Counter
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.custom_batching import custom_vmap
from jax.extend import core as jex_core

from jinit.layout import Layout, LeafSpec

__all__ = ["Probe", "Site", "Event", "build", "framework", "types_of", "is_jitted"]


# ---------------------------------------------------------------------------
# What a model is


def framework(obj: Any) -> str | None:
    """``"nnx"``, ``"equinox"``, ``"linen"`` (a linen Module), ``"apply"`` (a plain
    callable, read as a linen apply function) or ``None``.

    Example:
      >>> import flax.linen as nn
      >>> from jinit._probe import framework
      >>> framework(nn.Dense(3)), framework(nn.Dense(3).apply), framework(3)
      ('linen', 'apply', None)
    """
    mro = [c.__module__ or "" for c in type(obj).__mro__]
    if any(m.startswith("flax.nnx") for m in mro):
        return "nnx"
    if any(m.startswith("equinox") for m in mro):
        return "equinox"
    if isinstance(obj, nn.Module):
        return "linen"
    return "apply" if callable(obj) else None


def is_jitted(fn: Any) -> bool:
    """Whether ``fn`` is a ``jax.jit``-compiled function (its cached trace hides its layers).

    Example:
      >>> import jax
      >>> from jinit._probe import is_jitted
      >>> is_jitted(jax.jit(abs)), is_jitted(abs)
      (True, False)
    """
    return isinstance(fn, jax.stages.Wrapped) or (hasattr(fn, "lower") and hasattr(fn, "trace"))


def types_of(fw: str, types: tuple[type, ...]) -> Callable[[Any], bool]:
    """A layer predicate ``isinstance(module, types)``, checked to be classes of ``fw``'s modules."""
    base = _module_base(fw)
    if not isinstance(types, tuple) or not types or not all(isinstance(t, type) and issubclass(t, base) for t in types):
        raise TypeError(f"layer_types must be a non-empty tuple of {_FW_NAME[fw]} Module classes, got {types!r}.")
    return lambda m: isinstance(m, types)


_FW_NAME = {"linen": "flax.linen", "apply": "flax.linen", "nnx": "flax.nnx", "equinox": "equinox"}


def _module_base(fw: str) -> type:
    if fw == "nnx":
        from flax import nnx

        return nnx.Module
    if fw == "equinox":
        import equinox as eqx

        return eqx.Module
    return nn.Module


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray)) or hasattr(x, "aval")


def _is_float(x: Any) -> bool:
    return _is_array(x) and jnp.issubdtype(jnp.result_type(x), jnp.inexact)


# ---------------------------------------------------------------------------
# Reporting a value from inside the traced forward pass


def _emit(meta: tuple, y: jax.Array, fp: jax.Array) -> jax.Array:
    """Identity on ``y`` that sends ``reduce(y)`` and ``fp`` to ``sink`` (ordered).

    Under ``jax.vmap`` a plain callback fires once per example; the custom_vmap rule
    re-enters with the batched value instead, so the host sees one event per call.
    """
    tag, reduce, sink = meta

    @custom_vmap
    def report(y, fp):
        jax.debug.callback(functools.partial(sink, tag), fp, reduce(y), ordered=True)
        return y

    @report.def_vmap
    def _batched(axis_size, in_batched, y, fp):
        if not in_batched[0]:
            y = jnp.broadcast_to(y, (axis_size, *y.shape))
        return _emit(meta, y, fp), True

    return report(y, fp)


@functools.partial(jax.custom_jvp, nondiff_argnums=(0,))
def _tap(meta: tuple, y: jax.Array, fp: jax.Array) -> jax.Array:
    return _emit(meta, y, fp)


@_tap.defjvp
def _tap_jvp(meta, primals, tangents):
    # The report runs on primal values only, so gradients never differentiate it.
    y, fp = primals
    return _tap(meta, y, fp), tangents[0]


def _hash_weights(n: int, xp=jnp):
    """Fixed weights in [-1/2, 1/2): Knuth's multiplicative hash of the index, top 24 bits
    (exact in float32, identical in numpy and XLA)."""
    i = xp.arange(n, dtype=xp.uint32) * xp.uint32(2654435761)
    return (i >> xp.uint32(8)).astype(xp.float32) * xp.float32(2.0**-24) - xp.float32(0.5)


def _fingerprint(w: jax.Array) -> jax.Array:
    """``[sum(w * h), ||w * h||]`` of one kernel slice, in float32."""
    t = jnp.ravel(jax.lax.stop_gradient(w)).astype(jnp.float32) * _hash_weights(math.prod(w.shape))
    return jnp.stack([jnp.sum(t), jnp.sqrt(jnp.sum(t * t))])


def _slice_fingerprints(w: jax.Array, stack_axes: tuple[int, ...]) -> jax.Array:
    """``(slices, 2)`` fingerprints of every slice of a stacked kernel (C order over the stack axes)."""
    lead = jnp.moveaxis(w, stack_axes, tuple(range(len(stack_axes))))
    flat = lead.reshape((-1, math.prod(lead.shape[len(stack_axes):]))).astype(jnp.float32)
    t = flat * _hash_weights(flat.shape[1])
    return jnp.stack([jnp.sum(t, axis=1), jnp.sqrt(jnp.sum(t * t, axis=1))], axis=1)


# ---------------------------------------------------------------------------
# Residual blocks: is a module call's output its input plus something?

# Ops through which the input still reaches the output additively: a sum with a branch,
# a rectification after it (post-activation ResNets, Fixup), casts, scalar gains.
_COMBINE = {"add", "add_any", "sub", "max", "min"}
_UNARY = {"convert_element_type", "copy", "copy_p", "reduce_precision"}


def _sub_jaxpr(eqn) -> Any:
    """The inner jaxpr of a call-like equation (jit, custom_jvp/vjp, remat) with the same arity."""
    for value in eqn.params.values():
        inner = getattr(value, "jaxpr", value)
        if isinstance(inner, jex_core.Jaxpr) and len(inner.invars) == len(eqn.invars) \
                and len(inner.outvars) == len(eqn.outvars):
            return inner
    return None


def _operands(eqn, var) -> list:
    """The operands of ``eqn`` through which ``var`` (one of its outputs) can carry the input."""
    name = eqn.primitive.name
    if name in _COMBINE:
        return list(eqn.invars)
    if name in _UNARY:
        return [eqn.invars[0]]
    if name == "mul" and len(eqn.invars) == 2:
        sizes = [math.prod(getattr(v.aval, "shape", ())) for v in eqn.invars]
        return [v for v, other in zip(eqn.invars, sizes[::-1]) if other == 1]
    inner = _sub_jaxpr(eqn)
    if inner is None:
        return []
    k = eqn.outvars.index(var)
    return [eqn.invars[i] for i in range(len(eqn.invars)) if _reaches(inner, inner.outvars[k], inner.invars[i])]


def _reaches(jaxpr, out, target) -> bool:
    """Whether ``out`` is ``target`` plus branches (see ``_COMBINE``), searched backwards."""
    producers = {v: e for e in jaxpr.eqns for v in e.outvars}
    todo, seen = [out], set()
    while todo:
        v = todo.pop()
        if v is target:
            return True
        if isinstance(v, jex_core.Literal) or v in seen or v not in producers:
            continue
        seen.add(v)
        todo.extend(_operands(producers[v], v))
    return False


def is_residual(closed_jaxpr) -> bool:
    """Whether the first output of a jaxpr is its first input plus branches.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jinit._probe import is_residual
      >>> x = jnp.ones((2, 3))
      >>> is_residual(jax.make_jaxpr(lambda x: jax.nn.relu(x + jnp.tanh(x)))(x))
      True
      >>> is_residual(jax.make_jaxpr(lambda x: 2 * jnp.tanh(x))(x))
      False
    """
    jaxpr = closed_jaxpr.jaxpr
    if not jaxpr.invars or not jaxpr.outvars:
        return False
    x, y = jaxpr.invars[0], jaxpr.outvars[0]
    if getattr(x.aval, "shape", None) != getattr(y.aval, "shape", None) or y is x:
        return False
    return _reaches(jaxpr, y, x)


# ---------------------------------------------------------------------------
# The trace-time session the instrumented modules talk to


@dataclass
class _Candidate:
    """A module called with an array: a possible residual block (discovery)."""

    parents: tuple
    residual: bool = False
    same_shape: bool = False
    layers: int = 0


def _first(out: Any) -> tuple[Any, Callable[[Any], Any]]:
    """The stream value of a block's output (the array, or the carry of ``(carry, y)``)."""
    if _is_array(out):
        return out, lambda v: v
    if isinstance(out, tuple) and out and _is_array(out[0]):
        return out[0], lambda v: (v, *out[1:])
    return None, lambda v: out


class _Session:
    """Active while a forward pass is traced. ``mode="discover"`` collects the layers
    (and block candidates); ``mode="record"`` inserts the reporting taps."""

    def __init__(self, mode: str, *, blocks: Any = None, sites=None, block_ids=None, meta=None):
        self.mode, self.blocks, self.sites, self.block_ids, self.meta = mode, blocks, sites, block_ids, meta
        self.checking = False
        self.stack: list = []
        self.seen: dict[Hashable, tuple] = {}
        self.candidates: dict[Hashable, _Candidate] = {}

    def layer(self, key: Hashable, kernel: Any, y: Any, info: Callable[[], Any] | None) -> Any:
        if self.checking or not _is_float(y):
            return y
        if self.mode == "discover":
            if key not in self.seen:
                self.seen[key] = (tuple(np.shape(kernel)), info() if info else None)
            for b in self.stack:
                self.candidates[b].layers += 1
            return y
        site = self.sites.get(key)
        if site is None:
            return y
        index, stacked = site
        fp = _fingerprint(kernel) if stacked else jnp.zeros((2,), jnp.float32)
        return _tap((("layer", index), *self.meta), y, fp)

    def block(self, key: Hashable, call: Callable, args: tuple, check: Callable[[Any], Any]) -> Any:
        if self.checking:
            return call(*args)
        if self.mode == "discover":
            return self._discover_block(key, call, args, check)
        index = self.block_ids.get(key)
        if index is None or not _is_float(args[0]):
            return call(*args)
        zero = jnp.zeros((2,), jnp.float32)
        x = _tap((("enter", index), *self.meta), args[0], zero)
        y, rebuild = _first(call(x, *args[1:]))
        return rebuild(_tap((("exit", index), *self.meta), y, zero) if _is_float(y) else y)

    def _discover_block(self, key, call, args, check):
        cand = self.candidates.get(key)
        if cand is None:
            cand = self.candidates[key] = _Candidate(tuple(self.stack))
            if self.blocks == "auto":
                cand.residual = self._residual(check, args[0])
        self.stack.append(key)
        try:
            out = call(*args)
        finally:
            self.stack.pop()
        y, _ = _first(out)
        cand.same_shape = y is not None and np.shape(y) == np.shape(args[0])
        return out

    def _residual(self, check, x) -> bool:
        # The check traces the module once more on its own; nested modules pass through.
        self.checking = True
        try:
            return is_residual(check(x))
        except Exception:  # a module that cannot be traced alone is simply not a stream block
            return False
        finally:
            self.checking = False


_ACTIVE: contextvars.ContextVar[_Session | None] = contextvars.ContextVar("jinit_probe", default=None)


@contextlib.contextmanager
def _active(session: _Session):
    token = _ACTIVE.set(session)
    try:
        yield session
    finally:
        _ACTIVE.reset(token)


class _Sink:
    """Host side of the callbacks: ``(tag, fingerprint, value)`` in arrival (= execution) order."""

    def __init__(self):
        self.raw: list[tuple] = []

    def __call__(self, tag, fp, value):
        self.raw.append((tag, np.asarray(fp), jax.tree.map(np.asarray, value)))

    def take(self) -> list[tuple]:
        raw, self.raw = self.raw, []
        return raw


# ---------------------------------------------------------------------------
# Framework adapters: state, a forward pass with kernels substituted, rebuilding


def _key_str(k: Any) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(k, attr):
            return str(getattr(k, attr))
    return str(k)


def _keys(path: tuple) -> tuple[str, ...]:
    keys = tuple(_key_str(k) for k in path)
    return keys[:-1] if keys and keys[-1] == "value" else keys  # boxed (Partitioned) leaves


def _replace(tree: Any, new: Mapping[tuple[str, ...], Any]) -> Any:
    """``tree`` with the leaves at the given key paths replaced."""
    if not new:
        return tree
    return jax.tree_util.tree_map_with_path(lambda p, leaf: new.get(_keys(p), leaf), tree)


def _lookup(tree: Any, path: tuple[str, ...]) -> Any:
    for k in path:
        if not isinstance(tree, Mapping) or k not in tree:
            return None
        tree = tree[k]
    return nn.meta.unbox(tree)


class _Linen:
    framework = "linen"

    def __init__(self, apply_fn: Callable, variables: Any, is_layer: Callable[[Any], bool]):
        self.apply_fn, self.variables, self.is_layer = apply_fn, variables, is_layer
        self.paths: dict[str, tuple[str, ...]] = {}

    def state(self) -> Any:
        return self.variables

    def apply(self, state: Any, kernels: Mapping[str, Any], batch: Any) -> Any:
        v = _replace(state, {self.paths[p]: k for p, k in kernels.items()})
        with nn.intercept_methods(self._intercept):
            return self.apply_fn(v, batch)

    def _intercept(self, next_fun, args, kwargs, context):
        session, mdl = _ACTIVE.get(), context.module
        if session is None or context.method_name != "__call__" or mdl.scope is None:
            return next_fun(*args, **kwargs)
        key = tuple(mdl.path)
        if self.is_layer(mdl) and mdl.has_variable("params", "kernel"):
            kernel = nn.meta.unbox(mdl.get_variable("params", "kernel"))
            return session.layer(key, kernel, next_fun(*args, **kwargs), lambda: _linen_init_shape(mdl, kernel))
        if key and args and _is_array(args[0]):
            return session.block(key, lambda *a: next_fun(*a, **kwargs), args,
                                 lambda x: _linen_jaxpr(mdl, x, args[1:], kwargs))
        return next_fun(*args, **kwargs)

    def site(self, key: tuple, where: str) -> tuple[str, str, Any]:
        """(kernel path, module name, stored kernel) of the layer at module path ``key``."""
        for path in (("params", *key, "kernel"), (*key, "kernel")):
            stored = _lookup(self.variables, path)
            if stored is not None:
                self.paths["/".join(path)] = path
                return "/".join(path), "/".join(key), stored
        raise ValueError(f"{where}: no kernel for layer {'/'.join(key)!r} in params (looked for "
                         f"params/{'/'.join(key)}/kernel).")

    def default_layout(self, key: tuple, shape: tuple, stack: tuple, init_shape: tuple) -> Layout:
        """The (flattened, for DenseGeneral) per-layer shape Flax hands its initializer."""
        call_shape = tuple(shape[len(stack):])
        canonical = call_shape if tuple(init_shape) != call_shape else None
        return Layout(shape, tuple(init_shape), stack, canonical=canonical, source="linen layer")

    def rebuild(self, kernels: Mapping[str, Any]) -> Any:
        return _replace(self.variables, {self.paths[p]: k for p, k in kernels.items()})


def _linen_init_shape(mdl: Any, kernel: Any) -> tuple:
    from jinit.models import linen_init_shape

    return linen_init_shape(mdl, "kernel", tuple(np.shape(kernel)))[0]


def _linen_jaxpr(mdl: Any, x: Any, rest: tuple, kwargs: dict) -> Any:
    # An unbound clone with the module's own variables: calling the bound module twice would
    # shift linen's automatic submodule names. Every collection is mutable (batch statistics in
    # training mode) and every rng stream the model was given is provided (dropout); the output
    # comes first in the jaxpr either way.
    clone, variables = mdl.clone(parent=None), mdl.variables
    rngs = {name: jax.random.key(0) for name in getattr(mdl.scope, "rngs", {}) or {}}
    return jax.make_jaxpr(lambda a: clone.apply(variables, a, *rest, rngs=rngs, mutable=True, **kwargs))(x)


def _node(root: Any, path: tuple) -> Any:
    for k in path:
        root = root[k] if isinstance(k, int) or isinstance(root, Mapping) else getattr(root, k)
    return root


_NNX_CLASSES: dict[tuple, type] = {}


def _nnx_class(base: type, key: tuple, layer: bool) -> type:
    """A subclass of ``base`` whose ``__call__`` reports to the active session (one per module)."""
    cached = _NNX_CLASSES.get((base, key, layer))
    if cached is not None:
        return cached

    def __call__(self, *args, **kwargs):
        session = _ACTIVE.get()
        if session is None:
            return base.__call__(self, *args, **kwargs)
        if layer:
            return session.layer(key, self.kernel.get_value(), base.__call__(self, *args, **kwargs), None)
        if args and _is_array(args[0]):
            return session.block(key, lambda *a: base.__call__(self, *a, **kwargs), args,
                                 lambda x: _nnx_jaxpr(self, base, x, args[1:], kwargs))
        return base.__call__(self, *args, **kwargs)

    cls = type(base.__name__, (base,), {"__call__": __call__, "__module__": base.__module__,
                                        "__qualname__": base.__qualname__})
    _NNX_CLASSES[(base, key, layer)] = cls
    return cls


def _nnx_jaxpr(module: Any, base: type, x: Any, rest: tuple, kwargs: dict) -> Any:
    from flax import nnx

    graphdef, state = nnx.split(module)  # traced on a copy: the call may update its state
    return jax.make_jaxpr(lambda a, s: base.__call__(nnx.merge(graphdef, s), a, *rest, **kwargs))(x, state)


class _NNX:
    framework = "nnx"

    def __init__(self, model: Any, is_layer: Callable, blocks: bool, call: Callable):
        from flax import nnx

        self.model, self.call = model, call
        work = nnx.clone(model)
        self.layers: dict[tuple, Any] = {}
        for path, node in list(nnx.iter_graph(work)):
            if not isinstance(node, nnx.Module):
                continue
            path = tuple(path)
            layer = is_layer(node) and isinstance(getattr(node, "kernel", None), nnx.Variable)
            if layer:
                self.layers[path] = node
            if layer or (blocks and path):
                node.__class__ = _nnx_class(type(node), path, layer)
        self.graphdef, self._state = nnx.split(work)
        self.paths: dict[str, tuple] = {}

    def state(self) -> Any:
        return self._state

    def apply(self, state: Any, kernels: Mapping[str, Any], batch: Any) -> Any:
        from flax import nnx

        # Substituted in the state, not on the merged objects: under jax.grad the merged
        # Variables belong to an outer trace and may not be mutated.
        state = _replace(state, {(*map(str, self.paths[p]), "kernel"): k for p, k in kernels.items()})
        return self.call(nnx.merge(self.graphdef, state), batch)

    def site(self, key: tuple, where: str) -> tuple[str, str, Any]:
        path = "/".join(map(str, (*key, "kernel")))
        self.paths[path] = key
        return path, "/".join(map(str, key)), self.layers[key].kernel.get_value()

    def default_layout(self, key: tuple, shape: tuple, stack: tuple) -> Layout | None:
        """Flax order: the initializer gets one slice, flattened to 2-D for LinearGeneral."""
        from flax import nnx

        layer = self.layers[key]
        in_dims = None
        if isinstance(layer, nnx.LinearGeneral):
            in_dims = len(tuple(layer.batch_axis)) + len(tuple(layer.in_features))
        return LeafSpec(stack, "flax", in_dims).resolve(shape, "/".join(map(str, key)))

    def rebuild(self, kernels: Mapping[str, Any]) -> Any:
        from flax import nnx

        new = nnx.clone(self.model)
        for p, k in kernels.items():
            _node(new, self.paths[p]).kernel.set_value(k)
        return new


def _keypath_get(root: Any, path: tuple) -> Any:
    """The node at a jax key path (attribute, sequence index or dict key entries)."""
    for k in path:
        if isinstance(k, jax.tree_util.GetAttrKey):
            root = getattr(root, k.name)
        elif isinstance(k, jax.tree_util.SequenceKey):
            root = root[k.idx]
        else:
            root = root[getattr(k, "key", k)]
    return root


_TAP_CLASS: list[type] = []


def _tap_class() -> type:
    """The Equinox wrapper module (defined on first use: equinox is optional)."""
    if _TAP_CLASS:
        return _TAP_CLASS[0]
    import equinox as eqx

    class Tap(eqx.Module):
        inner: Any
        site: str = eqx.field(static=True)
        layer: bool = eqx.field(static=True)

        def __call__(self, *args, **kwargs):
            session = _ACTIVE.get()
            if session is None:
                return self.inner(*args, **kwargs)
            if self.layer:
                return session.layer(self.site, self.inner.weight, self.inner(*args, **kwargs), None)
            if args and _is_array(args[0]):
                return session.block(self.site, lambda *a: self.inner(*a, **kwargs), args,
                                     lambda x: jax.make_jaxpr(lambda a: self.inner(a, *args[1:], **kwargs))(x))
            return self.inner(*args, **kwargs)

        def __getattr__(self, name):
            # The model's own code may read the layer's attributes (weight, in_features, ...).
            if name.startswith("__") or name in ("inner", "site", "layer"):
                raise AttributeError(name)
            return getattr(self.inner, name)

    _TAP_CLASS.append(Tap)
    return Tap


def _eqx_wrap(node: Any, path: tuple, is_layer: Callable, blocks: bool, root: bool = True) -> Any:
    """``node`` with every layer (and, for ``blocks``, every other submodule) wrapped in a Tap."""
    import equinox as eqx

    from jinit.tree import path_string

    if is_layer(node):
        return _tap_class()(node, path_string(path), True)
    flat, treedef = jax.tree_util.tree_flatten_with_path(
        node, is_leaf=lambda x: x is not node and isinstance(x, eqx.Module))
    leaves = [_eqx_wrap(leaf, path + p, is_layer, blocks, False) if isinstance(leaf, eqx.Module) else leaf
              for p, leaf in flat]
    node = jax.tree_util.tree_unflatten(treedef, leaves)
    return node if root or not blocks else _tap_class()(node, path_string(path), False)


class _Eqx:
    framework = "equinox"

    def __init__(self, model: Any, is_layer: Callable, blocks: bool, call: Callable):
        import equinox as eqx

        from jinit.tree import path_string

        self.model, self.is_layer, self.blocks, self.call = model, is_layer, blocks, call
        self.dynamic, self.static = eqx.partition(model, eqx.is_array)
        flat = jax.tree_util.tree_flatten_with_path(model, is_leaf=is_layer)[0]
        self.layers = {path_string(p): (p, leaf) for p, leaf in flat if is_layer(leaf)}
        self.paths: dict[str, tuple] = {}

    def state(self) -> Any:
        return self.dynamic

    def _with(self, model: Any, kernels: Mapping[str, Any]) -> Any:
        import equinox as eqx

        if not kernels:
            return model
        where = lambda m: [_keypath_get(m, self.paths[p]).weight for p in kernels]  # noqa: E731
        return eqx.tree_at(where, model, list(kernels.values()))

    def apply(self, state: Any, kernels: Mapping[str, Any], batch: Any) -> Any:
        import equinox as eqx

        model = self._with(eqx.combine(state, self.static), kernels)
        return self.call(_eqx_wrap(model, (), self.is_layer, self.blocks), batch)

    def site(self, key: str, where: str) -> tuple[str, str, Any]:
        path, layer = self.layers[key]
        kernel = f"{key}/weight" if key else "weight"
        self.paths[kernel] = path
        return kernel, key, layer.weight

    def default_layout(self, key: str, shape: tuple, stack: tuple) -> Layout | None:
        """Equinox's Linear and Conv store (out, in, *kernel): drawn as (*kernel, in, out), transposed."""
        import equinox as eqx

        if not isinstance(self.layers[key][1], (eqx.nn.Linear, eqx.nn.Conv)):
            return None
        return LeafSpec(stack, "torch").resolve(shape, key)

    def rebuild(self, kernels: Mapping[str, Any]) -> Any:
        return self._with(self.model, kernels)


# ---------------------------------------------------------------------------
# The probe


@dataclass(frozen=True)
class Site:
    """One layer's kernel as the forward pass uses it.

    Attributes:
      key: the adapter's key of the layer module.
      module: the module's ``/``-joined path (``"Dense_0"``, ``"layers/0"``).
      kernel: the kernel's path (``"params/Dense_0/kernel"``, ``"layers/0/kernel"``,
        ``"layers/0/weight"``).
      shape: the stored kernel shape.
      call_shape: the kernel shape one call sees (one slice of a stacked kernel).
      stack_axes: the stored axes that index stacked layers (empty if not stacked).
      layout: how the layer's initializer draws one slice, or ``None`` when unknown.
    """

    key: Hashable
    module: str
    kernel: str
    shape: tuple[int, ...]
    call_shape: tuple[int, ...]
    stack_axes: tuple[int, ...]
    layout: Layout | None = field(default=None, compare=False)

    @property
    def slices(self) -> int:
        return math.prod(self.shape[a] for a in self.stack_axes)


@dataclass(frozen=True)
class Event:
    """One report of the forward pass: ``kind`` ``"layer"`` (``index`` into ``Probe.sites``,
    ``slice`` of a stacked kernel or ``None``), ``"enter"`` or ``"exit"`` (``index`` into
    ``Probe.blocks``; the block's input or output); ``value`` is ``reduce(output)``."""

    kind: str
    index: int
    slice: int | None
    value: Any


class Probe:
    """The layers (and residual blocks) of one model's forward pass; see :func:`build`."""

    def __init__(self, adapter: Any, where: str):
        self.adapter, self.where = adapter, where
        self.framework = adapter.framework
        self.sites: list[Site] = []
        self.blocks: list[tuple[Hashable, str]] = []

    def kernels(self) -> dict[str, jax.Array]:
        """The stored kernels, by kernel path."""
        return {s.kernel: jnp.asarray(self._stored[s.kernel]) for s in self.sites}

    def rebuild(self, kernels: Mapping[str, Any]) -> Any:
        """The params (linen) or a new model (nnx, Equinox) with these kernels."""
        return self.adapter.rebuild(kernels)

    def discover(self, batch: Any, blocks: Any, layouts: Callable[[], Mapping] | None) -> None:
        session = _Session("discover", blocks=blocks)
        with _active(session):
            jax.eval_shape(lambda st, b: self.adapter.apply(st, {}, b), self.adapter.state(), batch)
        self._stored: dict[str, Any] = {}
        known = layouts() if layouts is not None else {}
        for key, (call_shape, init_shape) in session.seen.items():
            kernel, module, stored = self.adapter.site(key, self.where)
            self._stored[kernel] = stored
            self.sites.append(self._site(key, module, kernel, np.shape(stored), call_shape, init_shape,
                                         known.get(kernel)))
        self.blocks = _select_blocks(session.candidates, blocks, self.where)

    def _site(self, key, module, kernel, shape, call_shape, init_shape, known) -> Site:
        shape, k = tuple(shape), len(shape) - len(call_shape)
        if isinstance(known, Layout) and tuple(known.slice_shape) == call_shape:
            return Site(key, module, kernel, shape, call_shape, tuple(known.stack_axes), known)
        if k < 0 or shape[k:] != call_shape:
            raise ValueError(
                f"{self.where}: kernel {kernel!r} has shape {shape} but the layer uses {call_shape}; only "
                "kernels stacked on leading axes (nn.scan / nnx.vmap / eqx.filter_vmap stacks) are supported.")
        # Stacked on the leading axes (the layout reader may have found them ambiguous, e.g.
        # 16 layers of 16 x 16); the fingerprints check every call against this assumption.
        stack = tuple(range(k))
        if self.framework == "linen":
            layout = self.adapter.default_layout(key, shape, stack, init_shape)
        else:
            layout = self.adapter.default_layout(key, shape, stack)
        return Site(key, module, kernel, shape, call_shape, stack, layout)

    def recorder(self, reduce: Callable[[jax.Array], Any], fn: Callable[[Callable, dict], Any] | None = None,
                 prepare: Callable[[Any], dict] | None = None) -> Callable:
        """A compiled ``run(args, batch) -> (fn(apply, kernels), events)``.

        ``kernels = prepare(args)`` (default: ``args`` are the kernels, by kernel path), computed
        inside the program; ``apply(kernels)`` is the forward pass on ``batch`` with those kernels;
        every layer call (and block input/output) sends ``reduce(value)`` to the host. Without
        ``fn`` only the forward pass runs (``None`` is returned).
        """
        sink = _Sink()
        sites = {s.key: (i, bool(s.stack_axes)) for i, s in enumerate(self.sites)}
        block_ids = {key: i for i, (key, _) in enumerate(self.blocks)}

        def traced(state, args, batch):
            kernels = prepare(args) if prepare is not None else args
            with _active(_Session("record", sites=sites, block_ids=block_ids, meta=(reduce, sink))):
                apply = lambda ks: self.adapter.apply(state, ks, batch)  # noqa: E731
                out = fn(apply, kernels) if fn is not None else jax.tree.map(lambda _: None, apply(kernels))
            fps = {s.kernel: _slice_fingerprints(kernels[s.kernel], s.stack_axes) for s in self.sites if s.stack_axes}
            return out, fps

        compiled = jax.jit(traced)

        def run(args, batch):
            sink.take()
            out, fps = compiled(self.adapter.state(), args, batch)
            jax.block_until_ready(out)
            jax.effects_barrier()
            return out, self._events(sink.take(), jax.device_get(fps))

        return run

    def _events(self, raw: list[tuple], fps: Mapping[str, np.ndarray]) -> list[Event]:
        calls: Counter = Counter()
        events = []
        for (kind, index), fp, value in raw:
            piece = None
            if kind == "layer" and self.sites[index].stack_axes:
                piece = self._slice(self.sites[index], calls[index], fp, fps[self.sites[index].kernel])
                calls[index] += 1
            events.append(Event(kind, index, piece, value))
        return events

    def _slice(self, site: Site, call: int, fp: np.ndarray, table: np.ndarray) -> int:
        """The slice a call of a stacked layer used: call ``t`` is assumed to be slice ``t`` and checked."""
        if fp.shape != (2,):
            raise ValueError(
                f"{self.where}: the stacked layer {site.module!r} ({site.slices} slices of {site.kernel!r}) "
                "was called under jax.vmap across its slices (an ensemble), so one call covers several "
                "layers; per-layer statistics need the layers called one after another (a scan or a loop).")
        tol = 1e-4 * np.maximum(table[:, 1], fp[1]) + 1e-30
        close = np.abs(table[:, 0] - fp[0]) <= tol
        assumed = call % site.slices
        if close[assumed]:
            return assumed
        hits = np.flatnonzero(close)
        if len(hits) == 1:
            return int(hits[0])
        raise ValueError(
            f"{self.where}: cannot tell which slice of the stacked kernel {site.kernel!r} call {call} of layer "
            f"{site.module!r} used: the kernel it saw matches {len(hits)} of the {site.slices} slices. "
            "Layers must use the stored slices themselves (not transformed copies).")


def _select_blocks(candidates: Mapping[Hashable, _Candidate], blocks: Any, where: str) -> list[tuple]:
    """The stream blocks: matches of the patterns, or (``"auto"``) the innermost residual calls
    that contain a layer."""
    name = {key: key if isinstance(key, str) else "/".join(map(str, key)) for key in candidates}
    if blocks is None:
        return []
    if blocks == "auto":
        chosen = {k for k, c in candidates.items() if c.residual and c.same_shape and c.layers}
        inner = [k for k in chosen if not any(k in candidates[o].parents for o in chosen if o != k)]
        return [(k, name[k]) for k in candidates if k in inner]
    chosen = []
    for pattern in blocks:
        hits = [k for k in candidates if fnmatch.fnmatchcase(name[k], pattern)]
        if not hits:
            raise ValueError(f"{where}: stream pattern {pattern!r} matches no module called with an array; "
                             f"modules called: {sorted(set(name.values()))}.")
        # "h_*" also matches "h_0/attn": a block's own submodules are not blocks.
        hits = [k for k in hits if not any(p in hits for p in candidates[k].parents)]
        bad = [name[k] for k in hits if not candidates[k].same_shape]
        if bad:
            raise ValueError(f"{where}: stream pattern {pattern!r} matches {bad}, whose output does not have "
                             "its input's shape, so it cannot be a residual block; name the blocks only.")
        chosen += [k for k in hits if k not in chosen]
    return [(k, name[k]) for k in candidates if k in chosen]


def build(where: str, model: Any, params: Any, batch: Any, *, layers: Callable[[Any], bool],
          blocks: Any = None, call: Callable | None = None, pre_init_layouts: bool = False,
          kinds: str = "kernel-owning") -> Probe:
    """A :class:`Probe` of ``model``'s forward pass on ``batch``.

    Args:
      where: the public function's name, for messages.
      model: a linen apply function (with ``params``), an ``nnx.Module`` or an ``equinox.Module``.
      params: the linen variables (ignored for nnx / Equinox).
      batch: the input batch.
      layers: predicate on module objects: which modules are layers.
      blocks: ``None`` (no stream), ``"auto"`` (residual blocks read from the jaxprs) or a
        sequence of ``fnmatch`` patterns of module paths.
      call: ``call(model, batch)`` for nnx / Equinox (default: ``model(batch)`` for nnx,
        ``jax.vmap(model)(batch)`` for Equinox).
      pre_init_layouts: read every kernel's initializer layout (nnx / Equinox, for pre-init).
      kinds: the layer kinds, for the message when none is called.

    Raises:
      ValueError: no layer is called.
    """
    fw = framework(model)
    want = blocks is not None
    if fw in ("linen", "apply"):
        adapter = _Linen(model, params, layers)
    elif fw == "nnx":
        adapter = _NNX(model, layers, want, call or (lambda m, b: m(b)))
    elif fw == "equinox":
        adapter = _Eqx(model, layers, want, call or (lambda m, b: jax.vmap(m)(b)))
    else:
        raise TypeError(f"{where}: cannot probe a {type(model).__name__}.")
    probe = Probe(adapter, where)
    layouts = None
    if pre_init_layouts and fw in ("nnx", "equinox"):
        from jinit.models import model_layouts

        layouts = functools.partial(model_layouts, model)
    probe.discover(batch, blocks, layouts)
    if not probe.sites:
        hint = (" (a jax.jit-compiled apply function hides its layers: pass the un-jitted model.apply "
                "or the Module)") if fw == "apply" else ""
        raise ValueError(f"{where}: the forward pass called no {kinds} layer{hint}.")
    return probe


def stream_patterns(where: str, stream: Any) -> Any:
    """Normalizes a ``stream=`` argument to ``None``, ``"auto"`` or a tuple of patterns."""
    if stream is None or stream == "auto":
        return "auto"
    if stream is False or (isinstance(stream, Sequence) and not isinstance(stream, str) and not stream):
        return None
    items = (stream,) if isinstance(stream, str) else tuple(stream) if isinstance(stream, Sequence) else None
    if items is None or not all(isinstance(p, str) and p for p in items):
        raise TypeError(f"{where}: stream must be None (detect residual blocks), False (none), or a pattern "
                        f"or sequence of patterns of block module paths (e.g. 'blocks/*'), got {stream!r}.")
    return items
