r"""Initializing whole models by path rules, and depth-aware recipes.

Two entry points apply an ordered list of rules ``(pattern, initializer)`` to a
model's parameters:

* :func:`init` initializes a ``flax.linen`` module (like ``module.init``), drawing
  every selected parameter from the rule's initializer **as if it had been passed
  at construction** (``kernel_init=`` etc.): Flax's own key and per-layer shape;
* :func:`reinit` re-initializes an ``nnx.Module``, an ``equinox.Module`` or a bare
  parameter tree (linen variables, ``nnx.State``, nested dicts), reading each leaf's
  layout from its layer (see :mod:`jinit.models` and :mod:`jinit.layout`).

  >>> import jax, jax.numpy as jnp, flax.linen as nn
  >>> from jinit import basic, variance
  >>> from jinit.tree import reinit
  >>> model = nn.Sequential([nn.Dense(8), nn.relu, nn.Dense(2)])
  >>> params = model.init(jax.random.key(0), jnp.ones((1, 4)))
  >>> rules = [("*/layers_2/*", basic.zeros()), ("*kernel", variance.he_normal())]
  >>> new = reinit(jax.random.key(1), params, rules)
  >>> float(jnp.abs(new["params"]["layers_2"]["kernel"]).sum())
  0.0

Paths. A leaf's path joins its pytree keys with ``/``: dict keys and attribute
names as they are, sequence indices as decimal numbers, e.g.
``"params/Dense_0/kernel"`` for linen, ``"layers/0/kernel"`` for nnx,
``"layers/0/weight"`` for Equinox. A trailing ``.value`` attribute (how
``nnx.Variable`` and ``nn.Partitioned`` boxes flatten) is dropped, so a boxed
parameter has the same path as a plain one. :func:`tree_paths` lists them.

Patterns. A rule's pattern is one of

* a glob string, matched against the **whole** path with
  :func:`fnmatch.fnmatchcase` (case-sensitive). ``*`` also matches ``/``, so
  ``"*kernel"`` matches every kernel at any depth and ``"*/Dense_0/*"`` every
  parameter of any module named ``Dense_0``; ``?`` and ``[seq]`` work as usual;
* a string starting with ``"re:"``: the rest is a regular expression searched
  anywhere in the path (:func:`re.search`; anchor it with ``^``/``$``);
* a compiled :class:`re.Pattern`, also searched;
* ``"role:<role>"``: a leaf whose layer gives it that role (:data:`ROLES`), e.g.
  ``"role:kernel"`` (an Equinox ``Linear.weight`` is a kernel, a ``LayerNorm.weight``
  is not) or ``"role:attention_out"`` (attention output projections);
* a tuple of these: any of them.

The **first** matching rule wins; a rule whose initializer is ``None`` keeps the
matching leaves as they are (to exempt them from later rules). Leaves no rule
matches are returned unchanged. Only floating-point array leaves are candidates.
**A rule that matches no leaf is an error** (a typo such as ``"*kernal"``, a glob
without its leading ``*``, a regex without ``re:``), with hints; pass
``allow_unmatched=True`` to allow it.

Layouts. A fan-based or structured initializer must see the shape the layer
would have passed it. Leaves of known layers of nnx and Equinox models, and
every linen parameter under :func:`init`, are read from their layer: stacked
layers one slice at a time (independent keys), ``DenseGeneral`` maps flattened,
``(out, in)`` weights read as ``(in, out)``. In a bare tree a leaf of rank >= 3
under such an initializer is ambiguous (a convolution? ``L`` stacked layers?) and
raises, unless the rule states it with a :class:`~jinit.layout.LeafSpec` or
``layouts=`` is given. Elementwise initializers (fills, normal, uniform,
truncated normal) need no layout.

Keys. Under :func:`reinit` each re-initialized leaf gets
``jax.random.fold_in(key, h(path))``, ``h`` the first 32 bits of the BLAKE2b
digest of the path's UTF-8 bytes (stacked slices then split that key). The hash
is stable across processes and Python versions (unlike ``hash()``, which is
salted), and a leaf's values depend only on the key, its path, shape and dtype:
adding, removing or reordering other parameters does not change them. Under
:func:`init` each parameter gets the key Flax gives it, so values equal those of
a model built with the rules' initializers.

dtypes and shardings. Each initializer is called with the leaf's dtype, and
with ``out_sharding=leaf.sharding`` when that is a
:class:`~jax.sharding.NamedSharding` (stacked leaves are drawn and then placed),
so a sharded model stays sharded.
"""

from __future__ import annotations

import difflib
import fnmatch
import functools
import hashlib
import inspect
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding

from jinit import basic, variance
from jinit._core import Initializer, check_choice, check_int, check_key, check_real, renamed
from jinit.layout import Layout, LeafSpec, draw, is_elementwise
from jinit.models import (
    Unknown,
    framework_of,
    linen_init_shape,
    linen_kernel_fan_in,
    linen_role,
    model_layouts,
    param_hook,
    param_path,
)

__all__ = [
    "Rule",
    "ROLES",
    "init",
    "reinit",
    "tree_paths",
    "match_rules",
    "path_hash",
    "gpt2_rules",
    "fixup_rules",
    "rezero_rules",
    "skipinit_rules",
    "RESIDUAL_OUTPUTS",
]

ROLES = ("kernel", "bias", "embedding", "scale", "norm_bias", "attention_out")
"""Roles a layer can give its leaves, matched by ``"role:NAME"`` patterns."""


def path_hash(path: str) -> int:
    """The stable 32-bit hash of a path used to derive its key (BLAKE2b, first 4 bytes, big-endian).

    Example:
      >>> from jinit.tree import path_hash
      >>> path_hash("params/Dense_0/kernel") == path_hash("params/Dense_0/kernel")
      True
    """
    return int.from_bytes(hashlib.blake2b(path.encode("utf-8"), digest_size=4).digest(), "big")


def _key_str(k: Any) -> str:
    if isinstance(k, jax.tree_util.DictKey):
        return str(k.key)
    if isinstance(k, jax.tree_util.GetAttrKey):
        return k.name
    if isinstance(k, jax.tree_util.SequenceKey):
        return str(k.idx)
    if isinstance(k, jax.tree_util.FlattenedIndexKey):
        return str(k.key)
    return str(k)


def path_string(path: tuple) -> str:
    """A pytree key path as a ``/``-joined string, without a trailing ``.value``."""
    if path and isinstance(path[-1], jax.tree_util.GetAttrKey) and path[-1].name == "value":
        path = path[:-1]
    return "/".join(_key_str(k) for k in path)


def leaves_with_paths(tree: Any) -> list[tuple[str, Any]]:
    """``[(path string, leaf)]`` in flattening order."""
    return [(path_string(p), leaf) for p, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]]


def _is_float_array(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    if dtype is None or not hasattr(x, "shape"):
        return False
    try:
        return bool(jnp.issubdtype(dtype, jnp.inexact))
    except TypeError:  # extended dtypes such as PRNG keys
        return False


def tree_paths(params: Any) -> list[str]:
    """The ``/``-joined paths of all leaves of ``params``, in flattening order.

    Example:
      >>> import jax, jax.numpy as jnp, flax.linen as nn
      >>> from jinit.tree import tree_paths
      >>> tree_paths(nn.Dense(3).init(jax.random.key(0), jnp.ones((1, 2))))
      ['params/bias', 'params/kernel']
    """
    return [p for p, _ in leaves_with_paths(params)]


# ---------------------------------------------------------------------------
# Rules


@dataclass(frozen=True)
class Rule:
    """One rule: the leaves it selects, the initializer they get, and optionally
    their layout and how many layers it must set.

    Attributes:
      pattern: a glob string (matched against the whole path), ``"re:<regex>"``
        (searched), a compiled ``re.Pattern``, ``"role:<role>"`` (a leaf whose layer
        says it plays that role, one of :data:`ROLES`), or a tuple of these
        (alternatives: any of them).
      init: the initializer, ``init(key, shape, dtype)``, or ``None`` to keep the
        selected leaves as they are.
      spec: a :class:`~jinit.layout.LeafSpec` stating the selected leaves' layout
        where the model cannot tell it.
      expect: if set, the number of layer slices the rule must set (a stacked leaf
        of ``L`` layers counts ``L``); anything else is an error.
      required: a rule that selects no leaf is an error unless this is False.
      what: what the rule is for, used in messages (e.g. ``"residual output projections"``).
    """

    pattern: Any
    init: Initializer | None
    spec: LeafSpec | None = None
    expect: int | None = None
    required: bool = True
    what: str = ""


def _uncalled_factory(init: Any) -> bool:
    """jinit's factories (``jinit.he_normal``) passed where an initializer (``jinit.he_normal()``) belongs."""
    if getattr(init, "__jinit_factory__", False):
        return True
    if not (getattr(init, "__module__", "") or "").startswith("jinit") or not inspect.isfunction(init):
        return False
    try:
        first = next(iter(inspect.signature(init).parameters), None)
    except (TypeError, ValueError):
        return False
    return first is not None and first != "key"


class _Compiled:
    __slots__ = ("index", "rule", "label", "short", "_tests")

    def __init__(self, index: int, rule: Rule, where: str):
        self.index, self.rule = index, rule
        shown = rule.pattern
        if isinstance(shown, tuple) and len(shown) > 3:
            shown = f"({', '.join(map(repr, shown[:3]))}, ... {len(shown) - 3} more)"
        else:
            shown = repr(shown)
        self.label = f"{where}: rule {index} ({shown}{', ' + rule.what if rule.what else ''})"
        self.short = f"rule {index} ({rule.what or shown})"
        alternatives = rule.pattern if isinstance(rule.pattern, tuple) else (rule.pattern,)
        if not alternatives:
            raise TypeError(f"{self.label}: an empty tuple of patterns selects nothing.")
        self._tests = [self._test(p) for p in alternatives]
        init = rule.init
        if init is not None and (not callable(init) or _uncalled_factory(init)):
            name = getattr(init, "__name__", type(init).__name__)
            raise TypeError(
                f"{self.label}: initializer must be an initializer init(key, shape, dtype) or None to keep the "
                f"leaves; got {name!r}" + (f", a factory: call it, jinit.{name}()." if callable(init) else ".")
            )
        if rule.spec is not None and not isinstance(rule.spec, LeafSpec):
            raise TypeError(f"{self.label}: the third element must be a jinit.LeafSpec, got {rule.spec!r}.")

    def _test(self, pattern: Any):
        if isinstance(pattern, re.Pattern):
            return lambda path, role: pattern.search(path) is not None
        if not isinstance(pattern, str) or not pattern:
            raise TypeError(
                f"{self.label}: a pattern must be a non-empty glob string, 're:<regex>', 'role:<role>', a "
                f"compiled re.Pattern or a tuple of them, got {pattern!r}."
            )
        if pattern.startswith("re:"):
            try:
                rx = re.compile(pattern[3:])
            except re.error as err:
                raise ValueError(f"{self.label}: invalid regular expression {pattern[3:]!r}: {err}.") from err
            return lambda path, role: rx.search(path) is not None
        if pattern.startswith("role:"):
            check_choice(self.label, "role", pattern[5:], ROLES)
            return lambda path, role: role == pattern[5:]
        return lambda path, role: fnmatch.fnmatchcase(path, pattern)

    def matches(self, path: str, role: str | None = None) -> bool:
        return any(t(path, role) for t in self._tests)


def _rule_of(item: Any, i: int, where: str) -> Rule:
    if isinstance(item, Rule):
        return item
    if isinstance(item, (str, bytes)) or not isinstance(item, Sequence) or len(item) not in (2, 3):
        raise TypeError(
            f"{where}: rule {i} must be a (pattern, initializer) pair, a (pattern, initializer, "
            f"jinit.LeafSpec) triple or a jinit.Rule, got {item!r}."
        )
    return Rule(*item)


def _compile_rules(rules: Any, where: str) -> list[_Compiled]:
    if isinstance(rules, Mapping):
        items = [Rule(p, f) for p, f in rules.items()]
    elif isinstance(rules, (str, bytes)) or not isinstance(rules, Iterable):
        raise TypeError(
            f"{where}: rules must be a sequence of (pattern, initializer) pairs or an ordered "
            f"mapping pattern -> initializer, got {type(rules).__name__}."
        )
    else:
        items = [_rule_of(item, i, where) for i, item in enumerate(rules)]
    return [_Compiled(i, rule, where) for i, rule in enumerate(items)]


def _first_match(rules: list[_Compiled], path: str, role: str | None) -> _Compiled | None:
    for rule in rules:
        if rule.matches(path, role):
            return rule
    return None


def _select(rules: list[_Compiled], hits: dict[int, set], path: str, role: str | None) -> _Compiled | None:
    """The first rule matching ``path``; every matching rule (shadowed ones too) records the
    path in ``hits``, so that only a rule that matches no leaf at all counts as unmatched."""
    matching = [rule for rule in rules if rule.matches(path, role)]
    for rule in matching:
        hits.setdefault(rule.index, set()).add(path)
    return matching[0] if matching else None


def _role(layout: Any) -> str | None:
    return layout.role if isinstance(layout, Layout) else None


def match_rules(params: Any, rules: Any, *, layouts: Mapping[str, Any] | None = None) -> dict[str, int | None]:
    """Which rule :func:`reinit` would apply to each leaf: path -> rule index
    (``None`` for leaves no rule matches or that are not floating-point arrays).

    Example:
      >>> import jax, jax.numpy as jnp, flax.linen as nn
      >>> from jinit import basic
      >>> from jinit.tree import match_rules
      >>> params = nn.Dense(3).init(jax.random.key(0), jnp.ones((1, 2)))
      >>> match_rules(params, [("*bias", basic.zeros()), ("*", basic.ones())])
      {'params/bias': 0, 'params/kernel': 1}
    """
    compiled = _compile_rules(rules, "match_rules")
    layouts = _layouts_for(params, layouts, "match_rules")
    tree = _tree_of(params)[0]
    out: dict[str, int | None] = {}
    for p, leaf in leaves_with_paths(tree):
        rule = _first_match(compiled, p, _role(layouts.get(p))) if _is_float_array(leaf) else None
        out[p] = None if rule is None else rule.index
    return out


# ---------------------------------------------------------------------------
# Checks after a pass: rules that selected nothing, recipes that set the wrong number of layers


def _hint(pattern: Any, paths: list[str]) -> str:
    if isinstance(pattern, str) and not pattern.startswith(("re:", "role:")):
        if not pattern.startswith("*") and any(fnmatch.fnmatchcase(p, "*" + pattern) for p in paths):
            return f" A glob matches the whole path: did you mean {'*' + pattern!r}?"
        if any(c in pattern for c in "\\^$+(|") or ".*" in pattern:
            try:
                if any(re.search(pattern, p) for p in paths):
                    return f" This looks like a regular expression: write {'re:' + pattern!r}."
            except re.error:
                pass
        tail = pattern.rsplit("/", 1)[-1].strip("*")
        names = sorted({seg for p in paths for seg in p.split("/")})
        close = difflib.get_close_matches(tail, names, n=3, cutoff=0.7)
        if close:
            return f" Close names in the model: {', '.join(map(repr, close))}."
    return ""


def _check_hits(compiled: list[_Compiled], hits: dict[int, set], slices: dict[int, int], paths: list[str],
                allow_unmatched: bool) -> None:
    nothing = compiled and not any(hits.get(rule.index) for rule in compiled)
    for rule in compiled:
        if not hits.get(rule.index) and (rule.rule.required or nothing) and not allow_unmatched:
            alternatives = rule.rule.pattern if isinstance(rule.rule.pattern, tuple) else (rule.rule.pattern,)
            hint = "".join(_hint(p, paths) for p in alternatives)
            shown = ", ".join(paths[:8]) + (", ..." if len(paths) > 8 else "")
            raise ValueError(
                f"{rule.label} matches no floating-point parameter.{hint} Paths: {shown}. "
                "Fix the pattern (see jinit.tree_paths(params)), or pass allow_unmatched=True if "
                "that is intended."
            )
        expect = rule.rule.expect
        if expect is not None and slices.get(rule.index, 0) != expect:
            got = sorted(hits.get(rule.index, ()))
            raise ValueError(
                f"{rule.label} set {slices.get(rule.index, 0)} layer slice(s), expected {expect}; "
                f"it matched {got or 'nothing'}. Name the missing tensors with the recipe's pattern "
                "argument, or check the layer count you passed."
            )


# ---------------------------------------------------------------------------
# Drawing one leaf


def _layout_for(rule: _Compiled, path: str, shape: tuple, read: Any) -> Layout:
    init = rule.rule.init
    if rule.rule.spec is not None:
        try:
            return rule.rule.spec.resolve(shape, path)
        except ValueError as err:
            raise ValueError(f"{rule.label}: {err}") from err
    if isinstance(read, Layout):
        return read
    if is_elementwise(init) or (read is None and len(shape) <= 2):
        return Layout(shape, shape)
    name = getattr(init, "__name__", type(init).__name__)
    why = read.reason if isinstance(read, Unknown) else (
        f"a rank-{len(shape)} leaf may be a convolution kernel (*spatial, in, out), layers stacked by "
        "nn.scan / nnx.vmap ((L, ...): the fans must not count L), a DenseGeneral kernel (Flax flattens "
        "it to 2-D before calling the initializer) or a PyTorch/Equinox (out, in, ...) tensor"
    )
    raise ValueError(
        f"{rule.label}: cannot tell how {name} should read {path!r} of shape {shape}: {why}. Pass the model "
        "itself (jinit.init(module, rules, key, *inputs) for linen; reinit(key, model, rules) for nnx and "
        "Equinox), or layouts=jinit.models.linen_layouts(module, *inputs), or state it in the rule: "
        f"({rule.rule.pattern!r}, initializer, jinit.LeafSpec()) for one Flax tensor, "
        "LeafSpec(stack_axes=0) for stacked layers, LeafSpec(in_dims=1) for a DenseGeneral map, "
        "LeafSpec(order='torch') for (out, in, ...)."
    )


def _draw_leaf(rule: _Compiled, key: Any, path: str, leaf: Any, layout: Layout) -> jax.Array:
    shape, dtype = tuple(leaf.shape), leaf.dtype
    sharding = getattr(leaf, "sharding", None)
    init = rule.rule.init
    try:
        if getattr(init, "layer_aware", False):  # e.g. PyTorch's bias: U(+-1/sqrt(fan_in of the kernel))
            init = init.for_layout(layout)
        new = draw(init, key, layout, dtype, sharding if isinstance(sharding, NamedSharding) else None)
    except (TypeError, ValueError) as err:
        raise type(err)(
            f"{rule.label} failed on {path!r} (shape {shape}, dtype {dtype}, layout {layout.describe()}): {err}"
        ) from err
    if tuple(np.shape(new)) != shape:
        raise ValueError(f"{rule.label} returned shape {tuple(np.shape(new))} for {path!r}, expected {shape}.")
    new = jnp.asarray(new)
    return new if new.dtype == dtype else new.astype(dtype)


# ---------------------------------------------------------------------------
# reinit


def _tree_of(model: Any):
    """(tree of leaves, function rebuilding the model from a new tree)."""
    if framework_of(model) == "nnx":
        from flax import nnx

        graphdef, state = nnx.split(model)
        return state, lambda new: nnx.merge(graphdef, new)
    return model, lambda new: new


def _layouts_for(model: Any, layouts: Mapping[str, Any] | None, where: str) -> dict[str, Any]:
    framework = framework_of(model)
    if framework == "linen":
        raise TypeError(
            f"{where}: got a flax.linen Module; linen modules hold no parameters. Use "
            "jinit.init(module, rules, key, *inputs) to initialize it, or pass its variables with "
            "layouts=jinit.models.linen_layouts(module, *inputs)."
        )
    found = model_layouts(model) if framework in ("nnx", "equinox") else {}
    if layouts is not None:
        if not isinstance(layouts, Mapping):
            raise TypeError(f"{where}: layouts must be a mapping path -> jinit.layout.Layout, got {layouts!r}.")
        found.update(layouts)
    return found


def reinit(key: Any, model: Any, rules: Any, *, layouts: Mapping[str, Any] | None = None,
           allow_unmatched: bool = False) -> Any:
    """Re-initializes the leaves of a model or parameter tree selected by path rules.

    Every selected leaf gets the distribution its initializer would give had it been
    passed to the layer at construction: the layer's own per-slice shape (stacked
    layers one by one, ``DenseGeneral`` maps flattened, Equinox ``(out, in)``
    weights read as ``(in, out)``), read from the model (nnx, Equinox), from
    ``layouts``, or stated in the rule. A leaf whose layout cannot be known under an
    initializer that depends on it is an error, and so is a rule that selects nothing.

    Args:
      key: a PRNG key.
      model: an ``nnx.Module`` or ``equinox.Module`` (a new model is returned, the
        given one is not changed), or a pytree of arrays: linen variables
        (``{"params": ...}``), an ``nnx.State``, any nested dict/list.
      rules: rules in priority order (the first match wins): ``(pattern,
        initializer)`` pairs, ``(pattern, initializer, LeafSpec)`` triples,
        :class:`Rule` objects, or an ordered mapping ``{pattern: initializer}``.
        The initializer is any ``init(key, shape, dtype)`` (jinit's,
        ``jax.nn.initializers``', Flax's) or ``None`` to keep the selected leaves.
      layouts: ``{path: Layout}`` for leaves of a bare tree, e.g. from
        :func:`jinit.models.linen_layouts`; they override what the model says.
      allow_unmatched: do not raise for rules that select no leaf.

    Returns:
      The model (or tree) with the selected leaves replaced.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from jinit import basic
      >>> from jinit.tree import reinit
      >>> params = {"enc": {"kernel": jnp.ones((2, 2)), "bias": jnp.ones(2)}, "step": jnp.array(3)}
      >>> new = reinit(jax.random.key(0), params, {"re:bias$": basic.zeros(), "enc/*": None})
      >>> new["enc"]["bias"], bool((new["enc"]["kernel"] == 1).all())
      (Array([0., 0.], dtype=float32), True)
    """
    key = check_key("reinit", key)
    compiled = _compile_rules(rules, "reinit")
    read = _layouts_for(model, layouts, "reinit")
    tree, rebuild = _tree_of(model)
    hits: dict[int, set] = {}
    slices: dict[int, int] = {}
    paths: list[str] = []

    def visit(path, leaf):
        if not _is_float_array(leaf):
            return leaf
        p = path_string(path)
        paths.append(p)
        rule = _select(compiled, hits, p, _role(read.get(p)))
        if rule is None or rule.rule.init is None:
            return leaf
        layout = _layout_for(rule, p, tuple(leaf.shape), read.get(p))
        slices[rule.index] = slices.get(rule.index, 0) + layout.slices
        leaf_key = jax.random.fold_in(key, jnp.asarray(path_hash(p), jnp.uint32))
        return _draw_leaf(rule, leaf_key, p, leaf, layout)

    new = jax.tree_util.tree_map_with_path(visit, tree)
    _check_hits(compiled, hits, slices, paths, allow_unmatched)
    return rebuild(new)


# ---------------------------------------------------------------------------
# init: linen


def init(module: Any, rules: Any, key: Any, *args: Any, allow_unmatched: bool = False, **kwargs: Any) -> Any:
    """Initializes a ``flax.linen`` module like ``module.init(key, *args, **kwargs)``, but
    every parameter a rule selects is drawn from the rule's initializer exactly as if it
    had been the layer's initializer (``kernel_init=`` etc.).

    The substitution happens inside Flax's own ``init``: each selected parameter gets
    the key Flax gives it and the shape Flax passes to its initializer (one layer's
    shape under ``nn.scan`` / ``nn.vmap``, the flattened 2-D map for ``DenseGeneral``
    and ``MultiHeadDotProductAttention``), and boxes such as ``nn.with_partitioning``
    are kept. So the values are bit-identical to a model built with those
    initializers. Unselected parameters keep the module's own initializers. Works
    eagerly and under ``jax.jit``; ``"role:..."`` patterns see the layer's role
    (``role:attention_out`` is the output projection of ``MultiHeadDotProductAttention``).

    Args:
      module: a ``flax.linen.Module``.
      rules: as for :func:`reinit`.
      key: the PRNG key (or dict of keys) ``module.init`` takes.
      *args, **kwargs: passed to ``module.init``.
      allow_unmatched: do not raise for rules that select no parameter.

    Returns:
      The variables, with the same structure as ``module.init``'s.

    Example:
      >>> import jax, jax.numpy as jnp, flax.linen as nn, jinit
      >>> class Stack(nn.Module):  # 8 layers of width 256 under nn.scan: kernel (8, 256, 256)
      ...     @nn.compact
      ...     def __call__(self, x):
      ...         body = lambda mdl, h, _: (nn.relu(nn.Dense(256)(h)), None)
      ...         scan = nn.scan(body, variable_axes={"params": 0}, split_rngs={"params": True}, length=8)
      ...         return scan(self, x, None)[0]
      >>> params = jinit.init(Stack(), [("*kernel", jinit.he_normal())], jax.random.key(0), jnp.ones((1, 256)))
      >>> kernel = params["params"]["Dense_0"]["kernel"]
      >>> kernel.shape, round(float(kernel[5].std()) * 16, 1)  # sqrt(2 / 256) per layer: fan_in 256, not 8 * 256
      ((8, 256, 256), 1.4)
    """
    import flax.linen as nn

    if not isinstance(module, nn.Module):
        raise TypeError(
            f"init: module must be a flax.linen Module, got {type(module).__name__}; for nnx and Equinox, "
            "build the model and call jinit.reinit(key, model, rules)."
        )
    compiled = _compile_rules(rules, "init")
    hits: dict[int, set] = {}
    won: dict[str, tuple[int, int]] = {}
    with param_hook(functools.partial(_substitute, compiled, hits, won)):
        variables = module.init(key, *args, **kwargs)
    stored = dict(leaves_with_paths(variables))
    slices: dict[int, int] = {}
    for path, (index, size) in won.items():
        slices[index] = slices.get(index, 0) + int(np.size(stored[path])) // max(size, 1)
    paths = [p for p, leaf in stored.items() if _is_float_array(leaf)]
    _check_hits(compiled, hits, slices, paths, allow_unmatched)
    return variables


def _plain_initializer(init_fn: Any, args: tuple, kwargs: dict) -> bool:
    """Whether ``init_fn(rng, shape, dtype)`` is a plain jinit / ``jax.nn`` initializer, whose
    result is an unboxed array of that shape and dtype (so no abstract trace is needed)."""
    module = (getattr(init_fn, "__module__", "") or "").split(".")[0]
    return (module in ("jinit", "jax") and not hasattr(init_fn, "__wrapped__") and not kwargs and len(args) == 2
            and isinstance(args[0], (tuple, list)) and all(isinstance(d, (int, np.integer)) for d in args[0]))


def _substitute(compiled: list[_Compiled], hits: dict, won: dict, mdl: Any, name: str, init_fn: Any):
    """The init function Flax calls for parameter ``name`` of ``mdl`` under :func:`init`:
    the first matching rule's initializer at the shape Flax would pass ``init_fn``'s
    user initializer (boxes kept), else ``init_fn`` itself."""
    from flax.core import meta

    path = param_path(mdl, name)
    role = linen_role(mdl, name)
    rule = _select(compiled, hits, path, role)
    if rule is None or rule.rule.init is None:
        return init_fn

    def substitute(rng, *a, **kw):
        if _plain_initializer(init_fn, a, kw):
            abstract = jax.ShapeDtypeStruct(tuple(int(d) for d in a[0]), jnp.dtype(a[1] or jnp.float32))
        else:
            abstract = jax.eval_shape(lambda r: init_fn(r, *a, **kw), rng)
        boxed = isinstance(abstract, meta.AxisMetadata)
        inner = abstract.unbox() if boxed else abstract
        if not _is_float_array(inner):
            return init_fn(rng, *a, **kw)
        shape = tuple(inner.shape)
        init_shape, _ = linen_init_shape(mdl, name, shape)
        read = Layout(shape, init_shape, canonical=shape if init_shape != shape else None,
                      source=f"linen.{type(mdl).__name__}", role=role,
                      fan_in=linen_kernel_fan_in(mdl) if role == "bias" else None)
        won[path] = (rule.index, math.prod(shape))
        value = _draw_leaf(rule, rng, path, inner, _layout_for(rule, path, shape, read))
        return meta.replace_boxed(abstract, value) if boxed else value

    return substitute


# ---------------------------------------------------------------------------
# Recipes

RESIDUAL_OUTPUTS = (
    "role:attention_out",
    "*MultiHeadDotProductAttention_*/out/kernel",
    "*MultiHeadAttention_*/out/kernel",
    "*attn/out/kernel",
    "*attention/out/kernel",
    "*output_proj/weight",
    "*c_proj/kernel",
    "*c_proj/weight",
    "*out_proj/kernel",
    "*out_proj/weight",
    "*o_proj/kernel",
    "*o_proj/weight",
    "*wo/kernel",
    "*wo/weight",
    "*down_proj/kernel",
    "*down_proj/weight",
    "*fc2/kernel",
    "*fc2/weight",
)
"""Default patterns of the projections that write into a transformer's residual stream:
Flax's attention output (``MultiHeadDotProductAttention``'s and nnx ``MultiHeadAttention``'s
``out``, Equinox ``MultiheadAttention``'s ``output_proj``, by role or by name) and the
common names ``c_proj`` (GPT-2), ``out_proj``, ``o_proj``, ``wo``, ``down_proj``, ``fc2``,
as Flax kernels or PyTorch/Equinox weights."""


def _patterns(where: str, argument: str, value: Any, *, allow_none: bool = False) -> tuple:
    if value is None and allow_none:
        return ()
    if isinstance(value, (str, re.Pattern)):
        return (value,)
    if isinstance(value, Sequence) and value and all(isinstance(v, (str, re.Pattern)) for v in value):
        return tuple(value)
    raise TypeError(
        f"{where}: {argument} must be a pattern (glob string, 're:' regex, 'role:' role or re.Pattern) "
        f"or a non-empty sequence of them, got {value!r}."
    )


@renamed(rng="generator", std="stddev")
def gpt2_rules(
    n_layers: int,
    stddev: float = 0.02,
    residual_pattern: str | Sequence[str] = RESIDUAL_OUTPUTS,
    *,
    residual_per_block: int = 2,
    generator: str | None = None,
) -> list[Rule]:
    r"""GPT-2's initialization as rules for :func:`init` / :func:`reinit` (Radford et al.,
    2019, "Language Models are Unsupervised Multitask Learners", Sec. 2.3; as written in
    nanoGPT's ``GPT._init_weights``).

    * residual output projections (``residual_pattern``: the attention and MLP
      projections that write into the residual stream):
      :math:`\mathcal N\big(0, (\sigma/\sqrt{N})^2\big)` with :math:`N = k\, n_\text{layer}`
      the number of residual writes (:math:`k` = ``residual_per_block``, 2 in GPT-2:
      :math:`\sigma/\sqrt{2 n_\text{layer}}`), so the residual stream's variance stays
      :math:`O(1)` after the :math:`N` additions (the paper: "scale the weights of residual
      layers by :math:`1/\sqrt N` where :math:`N` is the number of residual layers");
    * all biases: 0;
    * every other kernel and embedding table: :math:`\mathcal N(0, \sigma^2)`, :math:`\sigma = 0.02`.

    LayerNorm scales are left as they are (1 in Flax). Kernels, biases and embeddings
    are found by the role their layer gives them (so Equinox ``weight`` leaves of
    ``Linear`` layers count as kernels and LayerNorm weights do not) or by the Flax
    names ``kernel``, ``bias``, ``embedding``.

    The residual rule must set exactly ``residual_per_block * n_layers`` layer slices
    (a stacked leaf of ``L`` layers counts ``L``): a model whose MLP output projection
    has a name the default patterns do not know is an error that says so, not a model
    with a 3.5x too large residual branch.

    Args:
      n_layers: the number of transformer blocks :math:`n_\text{layer} \ge 1`.
      stddev: :math:`\sigma` (formerly ``std=``, still accepted with a ``DeprecationWarning``).
      residual_pattern: pattern or patterns of the residual output projections
        (default :data:`RESIDUAL_OUTPUTS`).
      residual_per_block: residual projections per block (2: attention and MLP).
      generator: generator name, ``"jax"`` or ``"philox"`` (see :mod:`jinit.rng`; formerly ``rng=``).

    Example:
      >>> from jinit.tree import gpt2_rules
      >>> [rule.what for rule in gpt2_rules(12)]
      ['residual output projections', 'biases', 'kernels', 'embeddings']
    """
    n_layers = check_int("gpt2_rules", "n_layers", n_layers, 1)
    per_block = check_int("gpt2_rules", "residual_per_block", residual_per_block, 1)
    check_real("gpt2_rules", "stddev", stddev, nonnegative=True)
    residual = _patterns("gpt2_rules", "residual_pattern", residual_pattern)
    res_std = float(stddev) / math.sqrt(per_block * n_layers)  # 1/sqrt(number of residual writes)
    return [
        Rule(residual, basic.normal(stddev=res_std, generator=generator), expect=per_block * n_layers,
             what="residual output projections"),
        Rule(("role:bias", "role:norm_bias", "*bias"), basic.zeros(), required=False, what="biases"),
        Rule(("role:kernel", "*kernel"), basic.normal(stddev=stddev, generator=generator), what="kernels"),
        Rule(("role:embedding", "*embedding"), basic.normal(stddev=stddev, generator=generator), required=False,
             what="embeddings"),
    ]


@renamed(rng="generator")
def fixup_rules(
    num_branches: int,
    branch_layers: Sequence[str],
    classifier: str | Sequence[str] | None = None,
    *,
    others: str | Sequence[str] | None = ("role:kernel", "*kernel"),
    scale: float = 2.0,
    scalar_biases: str | Sequence[str] | None = None,
    multipliers: str | Sequence[str] | None = None,
    generator: str | None = None,
) -> list[Rule]:
    r"""Fixup initialization as rules for :func:`init` / :func:`reinit` (Zhang, Dauphin &
    Ma, 2019, "Fixup Initialization: Residual Learning Without Normalization", Sec. 3):

    1. the last weight layer of every residual branch and the classifier
       are initialized to 0;
    2. the other weight layers of the branches get He init scaled by
       :math:`L^{-1/(2m-2)}`:

       .. math:: W \sim \mathcal N\Big(0,\ \frac{s}{\text{fan\_in}}\, L^{-2/(2m-2)}\Big),

       with :math:`L` branches of :math:`m` layers each (:math:`s = 2` for ReLU);
    3. every other kernel (``others``: the stem, shortcut projections) gets plain He
       init :math:`\mathcal N(0, s/\text{fan\_in})`;
    4. Fixup's scalar biases are 0 and its scalar multipliers 1 (give their
       patterns to have them set).

    At init every branch outputs 0, so each block is the identity and the
    network is its skip path followed by a zero classifier. ``fan_in`` is one
    layer's (stacked branches under ``nn.scan`` are read slice by slice), and each
    branch-layer pattern must set exactly ``num_branches`` layer slices.

    Args:
      num_branches: :math:`L \ge 1`, the number of residual branches.
      branch_layers: the :math:`m \ge 1` patterns of a branch's weight layers in
        forward order, each matching that layer's kernel in every branch, e.g.
        ``("*block_*/Dense_0/kernel", "*block_*/Dense_1/kernel")``. The last is
        zeroed; with :math:`m = 1` nothing is scaled.
      classifier: pattern(s) of the classifier's parameters (kernel and bias),
        all set to 0; ``None`` to leave it.
      others: pattern(s) of the remaining kernels to He-initialize, or ``None``.
      scale: :math:`s`, the He variance scale of the activation (2 for ReLU;
        ``jinit.gain_for(phi) ** 2`` in general).
      scalar_biases: pattern(s) of Fixup's scalar biases (set to 0).
      multipliers: pattern(s) of Fixup's scalar multipliers (set to 1).
      generator: generator name, ``"jax"`` or ``"philox"`` (see :mod:`jinit.rng`; formerly ``rng=``).

    Example:
      >>> from jinit.tree import fixup_rules
      >>> rules = fixup_rules(8, ["*Dense_0/kernel", "*Dense_1/kernel"], "*head/*")
      >>> [rule.pattern for rule in rules]
      ['*Dense_1/kernel', '*head/*', '*Dense_0/kernel', ('role:kernel', '*kernel')]
    """
    L = check_int("fixup_rules", "num_branches", num_branches, 1)
    if isinstance(branch_layers, (str, re.Pattern)):
        branch_layers = (branch_layers,)
    layers = _patterns("fixup_rules", "branch_layers", branch_layers)
    heads = _patterns("fixup_rules", "classifier", classifier, allow_none=True)
    zero_bias = _patterns("fixup_rules", "scalar_biases", scalar_biases, allow_none=True)
    ones = _patterns("fixup_rules", "multipliers", multipliers, allow_none=True)
    rest = _patterns("fixup_rules", "others", others, allow_none=True)
    check_real("fixup_rules", "scale", scale, positive=True)
    m = len(layers)
    rules = [Rule(layers[-1], basic.zeros(), expect=L, what="last layer of each branch")]
    rules += [Rule(p, basic.zeros(), what="classifier") for p in heads]
    rules += [Rule(p, basic.zeros(), what="scalar biases") for p in zero_bias]
    rules += [Rule(p, basic.ones(), what="multipliers") for p in ones]
    if m > 1:
        branch_scale = float(scale) * L ** (-2.0 / (2 * m - 2))
        branch_init = variance.variance_scaling(branch_scale, "fan_in", "normal", generator=generator, name="fixup")
        rules += [Rule(p, branch_init, expect=L, what=f"branch layer {i}") for i, p in enumerate(layers[:-1])]
    if rest:
        he = variance.variance_scaling(float(scale), "fan_in", "normal", generator=generator, name="fixup")
        rules.append(Rule(rest if len(rest) > 1 else rest[0], he, required=False, what="other kernels"))
    return rules


def rezero_rules(gate_pattern: str | Sequence[str] = "*alpha") -> list[Rule]:
    r"""Zero the residual gates: ReZero (Bachlechner et al., 2021, "ReZero is All You
    Need: Fast Convergence at Large Depth") and SkipInit (De & Smith, 2020,
    "Batch Normalization Biases Residual Blocks Towards the Identity Function in
    Deep Networks").

    Both write a residual block as :math:`x + \alpha\, f(x)` with a learnable
    scalar :math:`\alpha` initialized to 0, so every block is the identity at
    init and the network trains at any depth without normalization. These rules
    set the parameters matching ``gate_pattern`` to 0 (the other parameters keep
    their init); a gate pattern that selects nothing is an error.

    Args:
      gate_pattern: pattern(s) of the gates (default ``"*alpha"``).

    Example:
      >>> import jax, jax.numpy as jnp, flax.linen as nn
      >>> from jinit.tree import reinit, rezero_rules
      >>> class ReZeroBlock(nn.Module):
      ...     @nn.compact
      ...     def __call__(self, x):
      ...         alpha = self.param("alpha", nn.initializers.ones, ())
      ...         return x + alpha * nn.Dense(x.shape[-1])(nn.relu(x))
      >>> x = jnp.arange(4.0).reshape(1, 4)
      >>> block = ReZeroBlock()
      >>> params = reinit(jax.random.key(1), block.init(jax.random.key(0), x), rezero_rules())
      >>> block.apply(params, x)
      Array([[0., 1., 2., 3.]], dtype=float32)
    """
    patterns = _patterns("rezero_rules", "gate_pattern", gate_pattern)
    return [Rule(patterns if len(patterns) > 1 else patterns[0], basic.zeros(), what="residual gates")]


skipinit_rules = rezero_rules
