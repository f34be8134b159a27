r"""Re-initializing whole parameter trees by path rules, and depth-aware recipes.

:func:`reinit` applies an ordered list of ``(pattern, initializer)`` rules to a
parameter tree (a Flax linen variables dict, an ``nnx.State`` or any pytree of
arrays), matching each leaf's ``/``-joined path:

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
``"params/Dense_0/kernel"`` for linen, ``"layers/0/kernel"`` for an
``nnx.State``. A trailing ``.value`` attribute (how ``nnx.Variable`` and
``nn.Partitioned`` boxes flatten) is dropped, so a boxed parameter has the same
path as a plain one. :func:`tree_paths` lists them.

Patterns. A rule's pattern is one of

* a glob string, matched against the **whole** path with
  :func:`fnmatch.fnmatchcase` (case-sensitive). ``*`` also matches ``/``, so
  ``"*kernel"`` matches every kernel at any depth and ``"*/Dense_0/*"`` every
  parameter of any module named ``Dense_0``; ``?`` and ``[seq]`` work as usual;
* a string starting with ``"re:"``: the rest is a regular expression searched
  anywhere in the path (:func:`re.search`; anchor it with ``^``/``$``);
* a compiled :class:`re.Pattern`, also searched.

The **first** matching rule wins; a rule whose initializer is ``None`` keeps the
matching leaves as they are (to exempt them from later rules). Leaves no rule
matches are returned unchanged. Only floating-point array leaves are
candidates: integer, boolean and PRNG-key leaves (step counters, nnx RNG
state) are always kept.

Keys. Each re-initialized leaf gets ``jax.random.fold_in(key, h(path))``, ``h``
the first 32 bits of the BLAKE2b digest of the path's UTF-8 bytes. The hash is
stable across processes and Python versions (unlike ``hash()``, which is
salted), and a leaf's values depend only on the key, its path, shape and dtype:
adding, removing or reordering other parameters does not change them.

dtypes and shardings. Each initializer is called with the leaf's shape and
dtype, and with ``out_sharding=leaf.sharding`` when that is a
:class:`~jax.sharding.NamedSharding`, so a sharded model stays sharded (jinit's
initializers produce the same values whatever the sharding).
"""

from __future__ import annotations

import fnmatch
import hashlib
import math
import numbers
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding

from jinit import basic, variance
from jinit._core import Initializer, check_key, check_real

__all__ = [
    "reinit",
    "tree_paths",
    "match_rules",
    "path_hash",
    "gpt2_rules",
    "fixup_rules",
    "rezero_rules",
    "skipinit_rules",
]

Rule = tuple[Any, Initializer | None]
Rules = Sequence[Rule] | Mapping[Any, Initializer | None]


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


def _path_str(path: tuple) -> str:
    if path and isinstance(path[-1], jax.tree_util.GetAttrKey) and path[-1].name == "value":
        path = path[:-1]
    return "/".join(_key_str(k) for k in path)


def _is_float_array(x: Any) -> bool:
    dtype = getattr(x, "dtype", None)
    if dtype is None or not hasattr(x, "shape"):
        return False
    try:
        return bool(jnp.issubdtype(dtype, jnp.floating))
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
    return [_path_str(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]


class _Rule:
    __slots__ = ("index", "pattern", "init", "_match")

    def __init__(self, index: int, pattern: Any, init: Any, where: str):
        label = f"{where}: rule {index} ({pattern!r}, {init!r})"
        if isinstance(pattern, re.Pattern):
            self._match = lambda path, rx=pattern: rx.search(path) is not None
        elif isinstance(pattern, str):
            if pattern.startswith("re:"):
                try:
                    rx = re.compile(pattern[3:])
                except re.error as err:
                    raise ValueError(f"{label}: invalid regular expression {pattern[3:]!r}: {err}.") from err
                self._match = lambda path, rx=rx: rx.search(path) is not None
            else:
                self._match = lambda path, glob=pattern: fnmatch.fnmatchcase(path, glob)
        else:
            raise TypeError(
                f"{label}: pattern must be a glob string, a 're:'-prefixed regex string or a "
                f"compiled re.Pattern, got {type(pattern).__name__}."
            )
        if init is not None and not callable(init):
            raise TypeError(
                f"{label}: initializer must be callable, init(key, shape, dtype), e.g. "
                f"jinit.he_normal() (note the call), or None to keep matching leaves; "
                f"got {type(init).__name__}."
            )
        self.index, self.pattern, self.init = index, pattern, init

    def matches(self, path: str) -> bool:
        return self._match(path)


def _compile_rules(rules: Any, where: str) -> list[_Rule]:
    if isinstance(rules, Mapping):
        items = list(rules.items())
    elif isinstance(rules, (str, bytes)) or not isinstance(rules, Iterable):
        raise TypeError(
            f"{where}: rules must be a sequence of (pattern, initializer) pairs or an ordered "
            f"mapping pattern -> initializer, got {type(rules).__name__}."
        )
    else:
        items = list(rules)
    compiled = []
    for i, item in enumerate(items):
        if isinstance(rules, Mapping):
            pattern, init = item
        else:
            if isinstance(item, (str, bytes)) or not isinstance(item, Sequence) or len(item) != 2:
                raise TypeError(f"{where}: rule {i} must be a (pattern, initializer) pair, got {item!r}.")
            pattern, init = item
        compiled.append(_Rule(i, pattern, init, where))
    return compiled


def _first_match(rules: list[_Rule], path: str) -> _Rule | None:
    for rule in rules:
        if rule.matches(path):
            return rule
    return None


def match_rules(params: Any, rules: Rules) -> dict[str, int | None]:
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
    out: dict[str, int | None] = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        p = _path_str(path)
        rule = _first_match(compiled, p) if _is_float_array(leaf) else None
        out[p] = None if rule is None else rule.index
    return out


def reinit(key: Any, params: Any, rules: Rules) -> Any:
    """Re-initializes the leaves of ``params`` selected by path rules.

    See the module docstring for paths, patterns, keys, dtypes and shardings.

    Args:
      key: a PRNG key.
      params: a pytree of arrays: linen variables (``{"params": ...}``), an
        ``nnx.State`` (from ``nnx.state(model)`` or ``nnx.split``; put the result
        back with ``nnx.update(model, new_state)``), or any nested dict/list.
      rules: ``(pattern, initializer)`` pairs, in priority order, or an ordered
        mapping ``{pattern: initializer}``. The initializer is any
        ``init(key, shape, dtype)`` (jinit's, ``jax.nn.initializers``', Flax's)
        or ``None`` to keep matching leaves unchanged.

    Returns:
      A tree of the same structure, with matched leaves replaced.

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

    def visit(path, leaf):
        if not _is_float_array(leaf):
            return leaf
        p = _path_str(path)
        rule = _first_match(compiled, p)
        if rule is None or rule.init is None:
            return leaf
        leaf_key = jax.random.fold_in(key, jnp.asarray(path_hash(p), jnp.uint32))
        shape, dtype = tuple(leaf.shape), leaf.dtype
        sharding = getattr(leaf, "sharding", None)
        try:
            if isinstance(sharding, NamedSharding):
                new = rule.init(leaf_key, shape, dtype, out_sharding=sharding)
            else:
                new = rule.init(leaf_key, shape, dtype)
        except (TypeError, ValueError) as err:
            raise type(err)(
                f"reinit: rule {rule.index} ({rule.pattern!r}) failed on {p!r} "
                f"(shape {shape}, dtype {dtype}): {err}"
            ) from err
        if tuple(np.shape(new)) != shape:
            raise ValueError(
                f"reinit: rule {rule.index} ({rule.pattern!r}) returned shape {tuple(np.shape(new))} "
                f"for {p!r}, expected {shape}."
            )
        new = jnp.asarray(new)
        return new if new.dtype == dtype else new.astype(dtype)

    return jax.tree_util.tree_map_with_path(visit, params)


# ---------------------------------------------------------------------------
# Recipes


def _check_count(where: str, argument: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (numbers.Integral, np.integer)) or int(value) < 1:
        raise ValueError(f"{where}: {argument} must be an int >= 1, got {value!r}.")
    return int(value)


def _patterns(where: str, argument: str, value: Any, *, allow_none: bool = False) -> tuple:
    if value is None and allow_none:
        return ()
    if isinstance(value, (str, re.Pattern)):
        return (value,)
    if isinstance(value, Sequence) and value and all(isinstance(v, (str, re.Pattern)) for v in value):
        return tuple(value)
    raise TypeError(
        f"{where}: {argument} must be a pattern (glob string, 're:' regex or re.Pattern) or a "
        f"non-empty sequence of them, got {value!r}."
    )


def gpt2_rules(
    n_layers: int,
    std: float = 0.02,
    residual_pattern: str | Sequence[str] = ("*c_proj/kernel",),
    *,
    rng: str | None = None,
) -> list[Rule]:
    r"""GPT-2's initialization as :func:`reinit` rules (Radford et al., 2019,
    "Language Models are Unsupervised Multitask Learners", Sec. 2.3; as written
    in nanoGPT's ``GPT._init_weights``).

    * residual output projections (``residual_pattern``: the attention and MLP
      projections that write into the residual stream, ``c_proj`` in GPT-2's
      naming): :math:`\mathcal N\big(0, (\sigma/\sqrt{2 n_\text{layer}})^2\big)`,
      so the residual stream's variance stays :math:`O(1)` after the
      :math:`2 n_\text{layer}` additions;
    * all biases (``"*bias"``, LayerNorm's too): 0;
    * every other kernel and embedding table (``"*kernel"``, ``"*embedding"``):
      :math:`\mathcal N(0, \sigma^2)`, :math:`\sigma = 0.02`.

    LayerNorm scales are left as they are (1 in Flax).

    Args:
      n_layers: the number of transformer blocks :math:`n_\text{layer} \ge 1`.
      std: :math:`\sigma`.
      residual_pattern: pattern or patterns of the residual output projections
        (default ``"*c_proj/kernel"``; e.g. ``"*attn/out/kernel"`` for other
        naming schemes).
      rng: generator name (see :mod:`jinit.rng`).

    Example:
      >>> from jinit.tree import gpt2_rules
      >>> [pattern for pattern, _ in gpt2_rules(12)]
      ['*c_proj/kernel', '*bias', '*kernel', '*embedding']
    """
    n_layers = _check_count("gpt2_rules", "n_layers", n_layers)
    check_real("gpt2_rules", "std", std, nonnegative=True)
    residual = _patterns("gpt2_rules", "residual_pattern", residual_pattern)
    res_std = float(std) / math.sqrt(2 * n_layers)
    rules: list[Rule] = [(p, basic.normal(stddev=res_std, rng=rng)) for p in residual]
    rules += [
        ("*bias", basic.zeros()),
        ("*kernel", basic.normal(stddev=std, rng=rng)),
        ("*embedding", basic.normal(stddev=std, rng=rng)),
    ]
    return rules


def fixup_rules(
    num_branches: int,
    branch_layers: Sequence[str],
    classifier: str | Sequence[str] | None = None,
    *,
    others: str | None = "*kernel",
    scale: float = 2.0,
    scalar_biases: str | Sequence[str] | None = None,
    multipliers: str | Sequence[str] | None = None,
    rng: str | None = None,
) -> list[Rule]:
    r"""Fixup initialization as :func:`reinit` rules (Zhang, Dauphin & Ma, 2019,
    "Fixup Initialization: Residual Learning Without Normalization", Sec. 3):

    1. the last weight layer of every residual branch and the classifier
       are initialized to 0;
    2. the other weight layers of the branches get He init scaled by
       :math:`L^{-1/(2m-2)}`:

       .. math:: W \sim \mathcal N\Big(0,\ \frac{s}{\text{fan\_in}}\, L^{-2/(2m-2)}\Big),

       with :math:`L` branches of :math:`m` layers each (:math:`s = 2` for ReLU);
    3. every other kernel (``others``, default ``"*kernel"``: the stem, shortcut
       projections) gets plain He init :math:`\mathcal N(0, s/\text{fan\_in})`;
    4. Fixup's scalar biases are 0 and its scalar multipliers 1 (give their
       patterns to have them set).

    At init every branch outputs 0, so each block is the identity and the
    network is its skip path followed by a zero classifier.

    Args:
      num_branches: :math:`L \ge 1`, the number of residual branches.
      branch_layers: the :math:`m \ge 1` patterns of a branch's weight layers in
        forward order, each matching that layer's kernel in every branch, e.g.
        ``("*block_*/Dense_0/kernel", "*block_*/Dense_1/kernel")``. The last is
        zeroed; with :math:`m = 1` nothing is scaled.
      classifier: pattern(s) of the classifier's parameters (kernel and bias),
        all set to 0; ``None`` to leave it.
      others: pattern for the remaining kernels to He-initialize, or ``None``.
      scale: :math:`s`, the He variance scale of the activation (2 for ReLU;
        ``jinit.gain_for(phi) ** 2`` in general).
      scalar_biases: pattern(s) of Fixup's scalar biases (set to 0).
      multipliers: pattern(s) of Fixup's scalar multipliers (set to 1).
      rng: generator name (see :mod:`jinit.rng`).

    Example:
      >>> from jinit.tree import fixup_rules
      >>> rules = fixup_rules(8, ["*Dense_0/kernel", "*Dense_1/kernel"], "*head/*")
      >>> [pattern for pattern, _ in rules]
      ['*Dense_1/kernel', '*head/*', '*Dense_0/kernel', '*kernel']
    """
    L = _check_count("fixup_rules", "num_branches", num_branches)
    if isinstance(branch_layers, (str, re.Pattern)):
        branch_layers = (branch_layers,)
    layers = _patterns("fixup_rules", "branch_layers", branch_layers)
    heads = _patterns("fixup_rules", "classifier", classifier, allow_none=True)
    zero_bias = _patterns("fixup_rules", "scalar_biases", scalar_biases, allow_none=True)
    ones = _patterns("fixup_rules", "multipliers", multipliers, allow_none=True)
    if others is not None:
        _patterns("fixup_rules", "others", others)
    check_real("fixup_rules", "scale", scale, positive=True)
    m = len(layers)
    rules: list[Rule] = [(layers[-1], basic.zeros())]
    rules += [(p, basic.zeros()) for p in heads + zero_bias]
    rules += [(p, basic.ones()) for p in ones]
    if m > 1:
        branch_scale = float(scale) * L ** (-2.0 / (2 * m - 2))
        branch_init = variance.variance_scaling(branch_scale, "fan_in", "normal", rng=rng, name="fixup")
        rules += [(p, branch_init) for p in layers[:-1]]
    if others is not None:
        rules.append((others, variance.variance_scaling(float(scale), "fan_in", "normal", rng=rng, name="fixup")))
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
    their init).

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
    return [(p, basic.zeros()) for p in _patterns("rezero_rules", "gate_pattern", gate_pattern)]


skipinit_rules = rezero_rules
