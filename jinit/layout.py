r"""How a stored parameter relates to the shape its initializer is called with.

A layer does not always hand its initializer the shape it stores:

* ``nn.scan`` / ``nn.vmap`` / ``nnx.vmap`` / ``eqx.filter_vmap`` stack ``L`` layers
  into one leaf ``(L, in, out)``; each layer's initializer saw ``(in, out)`` with
  its own key;
* Flax's ``DenseGeneral`` (and so ``MultiHeadDotProductAttention``) and nnx's
  ``LinearGeneral`` store ``(in, heads, head_dim)`` but call the initializer with
  the flattened ``(in, heads * head_dim)`` and reshape;
* Equinox and PyTorch store ``(out, in, *kernel)``, while every JAX initializer
  reads fans from ``(*kernel, in, out)``.

A :class:`Layout` records this for one leaf, and :func:`draw` produces the leaf
the way the layer would have: for every stacked slice an independent key, the
initializer called with :attr:`Layout.init_shape`, the result reshaped and
transposed into the stored order. A fan-based initializer called on the stored
shape instead would count the layer axis as receptive field (a std
:math:`\sqrt{L}` times too small) or read ``out`` as ``in``.

Example:
  >>> import jax, jinit
  >>> from jinit.layout import Layout, draw
  >>> stacked = Layout(shape=(8, 256, 256), init_shape=(256, 256), stack_axes=(0,))
  >>> w = draw(jinit.he_normal(), jax.random.key(0), stacked, "float32")
  >>> print(f"{float(w[3].std()) * 16:.2f}")  # sqrt(2/256) * 16 = sqrt(2)
  1.41
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding

from jinit._core import check_choice, check_int

__all__ = ["Layout", "LeafSpec", "draw", "is_elementwise", "stacked_axes"]

Shape = tuple[int, ...]


@dataclass(frozen=True)
class Layout:
    """How one stored leaf is built from calls of its initializer.

    Attributes:
      shape: the stored shape of the whole leaf.
      init_shape: the shape the initializer is called with, for one slice (the
        shape Flax passes: ``(in, out)`` for a dense kernel, ``(*kernel, in, out)``
        for a convolution, the flattened 2-D map for ``DenseGeneral``).
      stack_axes: the axes of ``shape`` that index independent slices (stacked
        layers), in order; empty for an ordinary leaf.
      canonical: the initializer's output is reshaped to this (default
        ``init_shape``) ...
      perm: ... and then transposed with this permutation (default none) to give
        one stored slice.
      source: what read the layout: a layer class (``"nnx.Linear"``,
        ``"eqx.nn.Conv2d"``, ``"linen.DenseGeneral"``), ``"rule"`` (stated in a
        rule) or ``"tree"`` (the leaf alone, read as a Flax tensor).
      role: what the leaf is in its layer, when a layer says so: ``"kernel"``,
        ``"bias"``, ``"embedding"``, ``"scale"`` (a normalization's scale),
        ``"norm_bias"`` (a normalization's bias), ``"attention_out"`` (the output
        projection of an attention layer) or ``None``.
      fan_in: the fan-in of the layer's kernel (for fan-dependent bias
        initializers such as PyTorch's default), when known.
    """

    shape: Shape
    init_shape: Shape
    stack_axes: tuple[int, ...] = ()
    canonical: Shape | None = None
    perm: tuple[int, ...] | None = None
    source: str = "tree"
    role: str | None = None
    fan_in: int | None = field(default=None, compare=False)

    def __post_init__(self):
        shape, stack = tuple(self.shape), tuple(self.stack_axes)
        if sorted(set(stack)) != sorted(stack) or any(not 0 <= a < len(shape) for a in stack):
            raise ValueError(f"Layout: stack_axes={stack} are not distinct axes of shape {shape}.")
        slice_shape = self.slice_shape
        canonical = self.init_shape if self.canonical is None else self.canonical
        if math.prod(canonical) != math.prod(self.init_shape):
            raise ValueError(f"Layout: cannot reshape init_shape {self.init_shape} to {canonical}.")
        permuted = canonical if self.perm is None else tuple(canonical[p] for p in self.perm)
        if tuple(permuted) != slice_shape:
            raise ValueError(
                f"Layout: init_shape {self.init_shape} (reshaped to {canonical}, permuted by {self.perm}) "
                f"does not give the slice shape {slice_shape} of stored shape {shape}."
            )

    @property
    def stack_shape(self) -> Shape:
        return tuple(self.shape[a] for a in self.stack_axes)

    @property
    def slice_shape(self) -> Shape:
        return tuple(d for i, d in enumerate(self.shape) if i not in self.stack_axes)

    @property
    def slices(self) -> int:
        return math.prod(self.stack_shape)

    @property
    def trivial(self) -> bool:
        """True when the initializer is called once with the stored shape."""
        return not self.stack_axes and tuple(self.init_shape) == tuple(self.shape) and self.perm is None

    def describe(self) -> str:
        """One line for tables: e.g. ``"nnx.Linear, 8 stacked on axis 0, init (256, 256)"``."""
        parts = [self.source]
        if self.stack_axes:
            parts.append(f"{self.slices} stacked on axis {', '.join(map(str, self.stack_axes))}")
        if not self.trivial:
            parts.append(f"init {tuple(self.init_shape)}")
        return ", ".join(parts)


def stacked_axes(shape: Sequence[int], slice_shape: Sequence[int]) -> list[tuple[int, ...]]:
    """Every way to remove axes from ``shape`` to leave ``slice_shape``, as the removed axes.

    Example:
      >>> from jinit.layout import stacked_axes
      >>> stacked_axes((8, 256, 128), (256, 128))
      [(0,)]
      >>> stacked_axes((4, 4, 4), (4, 4))
      [(0,), (1,), (2,)]
    """
    shape, slice_shape = tuple(shape), tuple(slice_shape)
    k = len(shape) - len(slice_shape)
    if k < 0:
        return []
    import itertools

    found = []
    for removed in itertools.combinations(range(len(shape)), k):
        if tuple(d for i, d in enumerate(shape) if i not in removed) == slice_shape:
            found.append(removed)
    return found


def _check_axes(value: Any) -> tuple[int, ...]:
    items = (value,) if isinstance(value, (int, np.integer)) else tuple(value)
    if any(isinstance(a, bool) or not isinstance(a, (int, np.integer)) or a < 0 for a in items):
        raise TypeError(f"LeafSpec: stack_axes must be a non-negative int or a sequence of them, got {value!r}.")
    return tuple(int(a) for a in items)


@dataclass(frozen=True)
class LeafSpec:
    """A layout stated by the user, for leaves whose layout the tree cannot tell.

    Give it as the third element of a rule: ``(pattern, initializer, LeafSpec(...))``.

    Attributes:
      stack_axes: axes of stacked layers (``0`` for ``nn.scan`` /
        ``nnx.vmap`` / ``eqx.filter_vmap`` stacks; ``()`` for none).
      order: ``"flax"`` (one slice is ``(*spatial, in, out)``, as JAX/Flax store it)
        or ``"torch"`` (one slice is ``(out, in, *spatial)``, as PyTorch and
        Equinox store it: the initializer is called with ``(*spatial, in, out)``
        and the result transposed).
      in_dims: for a Flax-order slice of rank > 2 that is a ``DenseGeneral``-style
        map rather than a convolution: the number of leading input axes. The
        initializer is then called with the flattened 2-D shape
        ``(prod(in axes), prod(out axes))``, as Flax does.

    Example:
      >>> import jax, jinit
      >>> from jinit.layout import LeafSpec
      >>> spec = LeafSpec(stack_axes=0, order="torch")
      >>> spec.resolve((4, 64, 32), "w").init_shape  # 4 stacked (out=64, in=32) weights
      (32, 64)
    """

    stack_axes: int | tuple[int, ...] = ()
    order: str = "flax"
    in_dims: int | None = None

    def __post_init__(self):
        object.__setattr__(self, "stack_axes", _check_axes(self.stack_axes))
        check_choice("LeafSpec", "order", self.order, ("flax", "torch"))
        if self.in_dims is not None:
            check_int("LeafSpec", "in_dims", self.in_dims, 1)
        if self.in_dims is not None and self.order == "torch":
            raise ValueError("LeafSpec: in_dims applies to order='flax' only.")

    def resolve(self, shape: Sequence[int], path: str) -> Layout:
        """The :class:`Layout` of a leaf of this ``shape`` (``path`` for messages)."""
        shape = tuple(int(d) for d in shape)
        if any(a >= len(shape) for a in self.stack_axes):
            raise ValueError(f"LeafSpec(stack_axes={self.stack_axes}) does not fit leaf {path!r} of shape {shape}.")
        one = tuple(d for i, d in enumerate(shape) if i not in self.stack_axes)
        if self.order == "torch":
            if len(one) < 2:
                raise ValueError(f"LeafSpec(order='torch') needs a slice of rank >= 2 for {path!r}, got {one}.")
            init_shape = one[2:] + (one[1], one[0])
            n = len(one) - 2
            perm = (n + 1, n) + tuple(range(n))
            return Layout(shape, init_shape, self.stack_axes, perm=perm, source="rule")
        if self.in_dims is not None:
            if not 0 < self.in_dims < len(one):
                raise ValueError(f"LeafSpec(in_dims={self.in_dims}) does not fit the slice {one} of {path!r}.")
            init_shape = (math.prod(one[: self.in_dims]), math.prod(one[self.in_dims:]))
            return Layout(shape, init_shape, self.stack_axes, canonical=one, source="rule")
        return Layout(shape, one, self.stack_axes, source="rule")


# Initializers whose values are i.i.d. per element with a law that does not
# depend on the shape: any layout gives the same distribution, so they never
# need one. Recognized by (module prefix, qualified name).
_ELEMENTWISE = {
    ("jinit", "zeros"), ("jinit", "ones"), ("jinit", "constant"), ("jinit", "normal"),
    ("jinit", "uniform"), ("jinit", "truncated_normal"),
    ("jax", "zeros"), ("jax", "ones"), ("jax", "constant.<locals>.init"), ("jax", "normal.<locals>.init"),
    ("jax", "uniform.<locals>.init"), ("jax", "truncated_normal.<locals>.init"),
}


def is_elementwise(init: Any) -> bool:
    """Whether ``init``'s values are i.i.d. with a shape-independent law (fills, normal,
    uniform, truncated normal from jinit or ``jax.nn.initializers``), so the layout of
    the leaf does not matter.

    Example:
      >>> import jinit
      >>> from jinit.layout import is_elementwise
      >>> is_elementwise(jinit.zeros()), is_elementwise(jinit.he_normal())
      (True, False)
    """
    module = (getattr(init, "__module__", None) or "").split(".")[0]
    return (module, getattr(init, "__qualname__", None)) in _ELEMENTWISE or (
        module == "jinit" and getattr(init, "__name__", None) in {n for m, n in _ELEMENTWISE if m == "jinit"}
    )


def _one(init, key, layout: Layout, dtype) -> jax.Array:
    x = jnp.asarray(init(key, tuple(layout.init_shape), dtype))
    if tuple(x.shape) != tuple(layout.init_shape):
        raise ValueError(f"the initializer returned shape {tuple(x.shape)} for shape {tuple(layout.init_shape)}")
    if layout.canonical is not None:
        x = x.reshape(layout.canonical)
    if layout.perm is not None:
        x = jnp.transpose(x, layout.perm)
    return x


def draw(init: Any, key: Any, layout: Layout, dtype: Any, out_sharding: Any = None) -> jax.Array:
    """One leaf of ``layout.shape`` drawn the way its layer would draw it.

    A trivial layout is one call ``init(key, shape, dtype)`` (with ``out_sharding``
    passed on). A stacked leaf gets ``jax.random.split(key, slices)``: slice ``t``
    (in C order over the stacked axes) is ``init(keys[t], init_shape, dtype)``,
    reshaped and transposed into the stored layout; the slices are drawn under
    ``jax.vmap`` and then moved to their stacked axes.

    Example:
      >>> import jax, jinit
      >>> from jinit.layout import Layout, draw
      >>> torch_weight = Layout((3, 2), init_shape=(2, 3), perm=(1, 0), source="eqx.nn.Linear")
      >>> draw(jinit.identity(), jax.random.key(0), torch_weight, "float32")
      Array([[1., 0.],
             [0., 1.],
             [0., 0.]], dtype=float32)
    """
    if layout.trivial:
        if isinstance(out_sharding, NamedSharding):
            return jnp.asarray(init(key, tuple(layout.shape), dtype, out_sharding=out_sharding))
        return jnp.asarray(init(key, tuple(layout.shape), dtype))
    if not layout.stack_axes:
        out = _one(init, key, layout, dtype)
    else:
        keys = jax.random.split(key, layout.slices)
        flat = jax.vmap(lambda k: _one(init, k, layout, dtype))(keys)
        stacked = flat.reshape(layout.stack_shape + layout.slice_shape)
        out = jnp.moveaxis(stacked, tuple(range(len(layout.stack_axes))), layout.stack_axes)
    if isinstance(out_sharding, NamedSharding):
        out = jax.device_put(out, out_sharding)
    return out
