r"""An audit of a model's parameters at initialization, one row per parameter.

:func:`audit` reads each parameter's layout the way :func:`jinit.reinit` does
(from the layer for nnx and Equinox models, from ``layouts=`` for linen
variables, else from the leaf alone), and reports its shape, how the layout was
read, the fans its initializer sees, its mean and standard deviation (per
stacked slice: the range over slices), which rule sets it (when ``rules`` are
given) and flags for what usually means a silent mistake:

* ``zero`` / ``constant``: a kernel whose entries (in some slice) are all equal:
  its units compute the same function forever (fine only where a recipe means it:
  Fixup's last branch layers and classifier, ZerO's zero layers);
* ``fan-scaled bias``: a bias that a rule draws from a fan-based or structured
  initializer (a bias has no fans: the initializer reads its shape as a kernel);
* ``read as one tensor``: a leaf of rank >= 3 whose layout nothing states: if it
  stacks layers, a fan-based initializer counts the layer axis as receptive field;
* ``layout unknown``: the model's layer contradicts the leaf's shape, or its stacked
  axes are ambiguous;
* ``stream grows``: given ``stream_std`` (e.g. the residual stream's std per block
  from :func:`jinit.signal_propagation`), a residual stream whose variance grows
  with depth by more than ``growth`` (2x) from its first to its last block.

Example:
  >>> import jax, equinox as eqx, jinit
  >>> mlp = eqx.nn.MLP(16, 4, 32, 1, key=jax.random.key(0))
  >>> mlp = jinit.reinit(jax.random.key(1), mlp, [("role:kernel", jinit.zeros())])
  >>> report = jinit.audit(mlp)
  >>> [row.path for row in report.flagged]
  ['layers/0/weight', 'layers/1/weight']
  >>> report.rows[0].fans
  (16, 32)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from jinit.layout import Layout, is_elementwise
from jinit.models import Unknown
from jinit.tree import _compile_rules, _first_match, _is_float_array, _layouts_for, _tree_of, leaves_with_paths

__all__ = ["AuditRow", "Audit", "audit"]


@dataclass(frozen=True)
class AuditRow:
    """One parameter: see :func:`audit`."""

    path: str
    shape: tuple[int, ...]
    layout: str
    fans: tuple[int, int] | None
    mean: float
    std: float
    std_range: tuple[float, float] | None
    rule: str | None
    flags: tuple[str, ...]


@dataclass(frozen=True)
class Audit:
    """The rows of :func:`audit` and the model-level flags; ``str()`` is a table."""

    rows: tuple[AuditRow, ...]
    model_flags: tuple[str, ...] = ()

    @property
    def flagged(self) -> list[AuditRow]:
        return [row for row in self.rows if row.flags]

    def table(self) -> str:
        """A markdown table of every row, then the model-level flags."""
        head = "| path | shape | layout | fans | mean | std | rule | flags |\n|---|---|---|---|---|---|---|---|"
        lines = [head]
        for r in self.rows:
            std = f"{r.std:.4g}" if r.std_range is None else f"{r.std_range[0]:.4g}..{r.std_range[1]:.4g}"
            fans = "" if r.fans is None else f"{r.fans[0]}, {r.fans[1]}"
            lines.append(f"| {r.path} | {r.shape} | {r.layout} | {fans} | {r.mean:.3g} | {std} | "
                         f"{r.rule or ''} | {'; '.join(r.flags)} |")
        lines += [f"\n**{flag}**" for flag in self.model_flags]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    __repr__ = __str__


def _fans(layout: Layout | Unknown | None, shape: tuple) -> tuple[int, int] | None:
    if isinstance(layout, Layout):
        if layout.role not in (None, "kernel", "attention_out") or len(layout.init_shape) < 2:
            return None
        shape = tuple(layout.init_shape)
    elif len(shape) != 2 or shape[0] == 0:
        return None
    receptive = math.prod(shape[:-2])
    return shape[-2] * receptive, shape[-1] * receptive


def _slice_values(leaf: Any, layout: Any) -> list[np.ndarray]:
    x = np.asarray(leaf, dtype=np.float64) if not np.iscomplexobj(leaf) else np.abs(np.asarray(leaf))
    if isinstance(layout, Layout) and layout.stack_axes:
        moved = np.moveaxis(x, layout.stack_axes, tuple(range(len(layout.stack_axes))))
        return list(moved.reshape((layout.slices,) + layout.slice_shape))
    return [x]


def _is_kernel(path: str, layout: Any, shape: tuple) -> bool:
    if isinstance(layout, Layout) and layout.role is not None:
        return layout.role in ("kernel", "attention_out")
    return path.rsplit("/", 1)[-1] in ("kernel", "weight") and len(shape) >= 2


def _flags(path: str, shape: tuple, layout: Any, slices: list[np.ndarray], rule: Any) -> list[str]:
    flags = []
    if _is_kernel(path, layout, shape) and all(s.size > 1 for s in slices):
        if any(not s.any() for s in slices):
            flags.append("zero")
        elif any((s == s.flat[0]).all() for s in slices):
            flags.append("constant")
    is_bias = (layout.role == "bias") if isinstance(layout, Layout) else path.rsplit("/", 1)[-1] == "bias"
    init = None if rule is None else rule.rule.init
    if is_bias and init is not None and not is_elementwise(init) and not getattr(init, "layer_aware", False):
        flags.append("fan-scaled bias")
    if isinstance(layout, Unknown):
        flags.append(f"layout unknown: {layout.reason}")
    elif layout is None and len(shape) >= 3 and (rule is None or rule.rule.spec is None):
        flags.append("read as one tensor")
    return flags


def _row(path: str, leaf: Any, layout: Any, compiled: list | None) -> AuditRow:
    shape = tuple(int(d) for d in leaf.shape)
    rule = None
    if compiled is not None:
        rule = _first_match(compiled, path, layout.role if isinstance(layout, Layout) else None)
    slices = _slice_values(leaf, layout)
    stds = [float(s.std()) for s in slices]
    flat = np.concatenate([s.ravel() for s in slices]) if slices else np.zeros(0)
    shown_layout = layout.describe() if isinstance(layout, (Layout, Unknown)) else "tree"
    fans = _fans(layout, shape) if layout is not None or _is_kernel(path, layout, shape) else None
    return AuditRow(
        path=path, shape=shape, layout=shown_layout, fans=fans,
        mean=float(flat.mean()) if flat.size else math.nan, std=float(flat.std()) if flat.size else math.nan,
        std_range=(min(stds), max(stds)) if len(stds) > 1 else None,
        rule=None if rule is None else rule.short,
        flags=tuple(_flags(path, shape, layout, slices, rule)),
    )


def _stream_flags(stream_std: Sequence[float] | None, growth: float) -> tuple[str, ...]:
    if stream_std is None:
        return ()
    s = np.asarray(stream_std, dtype=np.float64)
    if s.ndim != 1 or s.size < 2:
        raise ValueError(f"audit: stream_std must be a sequence of >= 2 stds, one per block, got {stream_std!r}.")
    ratio = (s[-1] / s[0]) ** 2 if s[0] > 0 else math.inf
    if ratio > growth:
        return (f"stream grows: the residual stream's variance grows {ratio:.3g}x from the first block to "
                f"the last ({len(s)} blocks); scale the residual branches (gpt2_rules, fixup_rules, "
                "rezero_rules) or normalize.",)
    return ()


def audit(
    model: Any,
    *,
    rules: Any = None,
    layouts: Mapping[str, Any] | None = None,
    stream_std: Sequence[float] | None = None,
    growth: float = 2.0,
) -> Audit:
    """Per-parameter audit of a model (nnx, Equinox) or parameter tree (linen variables,
    ``nnx.State``): path, shape, layout read, fans, mean, std, rule and flags.

    Args:
      model: an ``nnx.Module``, an ``equinox.Module`` or a pytree of arrays.
      rules: the rules that initialized it (as given to :func:`jinit.init` /
        :func:`jinit.reinit`): each row then names the rule that set it.
      layouts: ``{path: Layout}`` for a bare tree (e.g.
        ``jinit.models.linen_layouts(module, *inputs)`` for linen variables).
      stream_std: the residual stream's std after each block (for example
        ``jinit.signal_propagation``'s stream statistics), to flag growth with depth.
      growth: the variance ratio (last / first block) above which the stream is flagged.

    Returns:
      An :class:`Audit`; ``print(audit(...))`` shows the table.
    """
    compiled = None if rules is None else _compile_rules(rules, "audit")
    read = _layouts_for(model, layouts, "audit")
    tree, _ = _tree_of(model)
    rows = tuple(_row(p, leaf, read.get(p), compiled) for p, leaf in leaves_with_paths(tree) if _is_float_array(leaf))
    return Audit(rows, _stream_flags(stream_std, float(growth)))
