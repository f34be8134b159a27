r"""Parametrizations: how init variance, learning rate and forward multipliers scale with width and depth.

A *parametrization* fixes, for every kind of parameter, how its initial variance,
its learning rate and (sometimes) a forward multiplier change when the model is
made wider (or deeper) than a tuned **base** model, so that hyper-parameters tuned
on the base transfer to the **target**. Everything here is stated *relative to the
base*: at ``target == base`` every factor is exactly 1 and every parametrization
is the standard one.

Width multipliers. :func:`base_shapes` compares each parameter's base and target
shapes (as :func:`mup.set_base_shapes` does: a dimension is "infinite" when it
differs between base and target) and reads, through the layer's layout, the
fan-in multiplier :math:`m_\text{in}` and the fan-out multiplier :math:`m_\text{out}`
(stacked layer axes excluded). A kernel whose fan-out alone grows is **input**-like,
one whose fans both grow is **hidden**, one whose fan-in alone grows is
**output**-like (the readout): that is how mup classifies parameters, and it is the
default of :func:`roles`.

Tables (:math:`s` = the activation's variance scale ``gain**2``; "var" the init
variance of a kernel entry; biases start at 0 and normalization scales at 1 in
every parametrization, which is width-independent as µP requires; embeddings
:math:`\mathcal N(0, 1)`). Learning-rate factors multiply the base learning rate.

| parametrization | role | init var | SGD lr | Adam lr | forward mult |
|---|---|---|---|---|---|
| standard | input | 1/fan_in | 1 | 1 | 1 |
| standard | hidden, output | s/fan_in | 1 | 1 | 1 |
| ntk | input, bias, norm | as standard | 1 | 1 | 1 |
| ntk | hidden, output | s/fan_in | 1/m_in | 1/√m_in | 1 |
| mup | input | 1/fan_in | m_out | 1 | 1 |
| mup | bias, norm | (0, 1) | m | 1 | 1 |
| mup | hidden | s/fan_in | m_out/m_in | 1/m_in | 1 |
| mup | output | s/base_fan_in | m_in | 1 | 1/m_in |
| depth_mup | hidden (extra) | as mup | as mup | √(L₀/L) | 1 |
| depth_mup | residual_output | as hidden | as hidden | √(L₀/L) | √(L₀/L) |

(``m`` of a bias or normalization scale is its one dimension's multiplier; ``L₀``
and ``L`` the base's and target's numbers of residual blocks.)

Sources, checked against microsoft/mup (the reference implementation):

* **mup**: Tensor Programs V (Yang et al. 2022, arXiv:2203.03466), Table 3 states
  µP *without* multipliers (output init var :math:`1/\text{fan\_in}^2`, SGD and Adam
  output lr :math:`\eta/\text{fan\_in}`); mup implements the equivalent form of its
  Table 8 with a readout multiplier, which is what is implemented here:
  ``mup/layer.py: MuReadout.forward`` computes ``Linear(output_mult * x / width_mult)``
  with ``width_mult`` the fan-in multiplier (so the weight alone is scaled, not the
  bias), and ``MuReadout._rescale_parameters`` (called by ``mup/shape.py:
  set_base_shapes(rescale_params=True)``) multiplies the readout weight by
  :math:`\sqrt{m}`, making its init variance
  :math:`m\cdot s/\text{fan\_in} = s/\text{base\_fan\_in}`, constant in width (zero init is the recommended
  alternative, ``readout_zero_init``). The effective readout :math:`W/m` then has
  variance :math:`\propto 1/\text{fan\_in}^2`, Table 3's. ``mup/optim.py: MuAdam``
  divides the lr of "matrix-like" parameters (two infinite dims: hidden) by
  ``infshape.width_mult()`` (the fan-in multiplier) and leaves vector-like ones
  (input weights, biases, norm scales, **and the readout weight**) alone.
  ``MuSGD`` multiplies the lr of vector-like parameters (one infinite dim: input
  weights by :math:`m_\text{out}`, biases and scales by their :math:`m`, the readout
  weight by :math:`m_\text{in}`) and divides that of matrix-like ones by
  ``fanin_fanout_mult_ratio()`` :math:`= m_\text{in}/m_\text{out}`. With the
  readout multiplier, SGD on :math:`W` at lr :math:`\eta m` is SGD on the effective
  :math:`W/m` at lr :math:`\eta/m`, and Adam on :math:`W` at lr :math:`\eta` is Adam
  on :math:`W/m` at lr :math:`\eta/m` (up to Adam's ``eps``): Table 3's output row.
  Differences between the paper's Table 3 and mup: none in the effective
  dynamics; the biases of ordinary layers are rescaled by mup
  (``rescale_linear_bias``) only because torch's bias init shrinks with fan-in; a
  zero bias (Flax's default, used here) needs no rescaling. The hidden SGD factor
  is 1 only when fan-in and fan-out grow alike (Table 3 assumes that; mup uses the
  ratio, as done here). Weight decay: the factor multiplies the whole update of the
  inner optimizer, so a decoupled decay inside it is scaled too (mup's
  ``decoupled_wd=False`` scales the decay coefficient the opposite way to keep the
  product fixed; use a decay applied after :meth:`Parametrization.scale_updates`
  for mup's ``decoupled_wd=True``).
* **ntk**: the NTK parametrization (Jacot et al. 2018; abc-form in Tensor
  Programs IV, Yang & Hu 2021, arXiv:2011.14522) :math:`W = w/\sqrt{\text{fan\_in}}`,
  :math:`w \sim \mathcal N(0, s)`, written in the standard form used here: SGD
  on :math:`w` at lr :math:`\eta` is SGD on :math:`W` at lr :math:`\eta/\text{fan\_in}`
  (exact), Adam on :math:`w` is Adam on :math:`W` at lr :math:`\eta/\sqrt{\text{fan\_in}}`
  (exact up to ``eps``); relative to the base: :math:`1/m_\text{in}`, :math:`1/\sqrt{m_\text{in}}`.
  Layers with a fixed fan-in (input) and biases keep lr factor 1.
* **depth_mup**: Depth-µP (Yang et al. 2023, Tensor Programs VI,
  arXiv:2310.02244, block depth 1; Bordelon et al. 2023, arXiv:2309.16620):
  µP in width, and every residual branch multiplied by :math:`1/\sqrt L`; with SGD
  the learning rate is unchanged in :math:`L` (the multiplier already scales the
  branch gradients by :math:`1/\sqrt L`), with Adam (whose update ignores the
  gradient's scale) the lr of the weights inside the blocks scales as :math:`1/\sqrt L`.
  Implemented relative to the base depth :math:`L_0`: the ``residual_output``
  kernel (the last layer of a branch; the factor applies to its weight, not its
  bias, so it equals a branch multiplier when that layer has no bias) gets the
  forward multiplier :math:`\sqrt{L_0/L}`, and under Adam every ``hidden`` and
  ``residual_output`` parameter (in a residual net: the block weights) gets an extra
  lr factor :math:`\sqrt{L_0/L}`; biases and norm scales are left at their µP factors
  (TP-VI does not give them a separate depth factor at block depth 1). ``L`` is
  counted as the number of ``residual_output`` layer slices (a stacked leaf of
  ``L`` layers counts ``L``), or given with ``depth=(L0, L)``. At init, with
  unit-second-moment branches, the stream's second moment after :math:`L` blocks
  is then :math:`(1 + 1/L)^L \to e` instead of :math:`2^L`.

Forward multipliers. :func:`apply_multipliers` returns the parameters with each
multiplied weight scaled, ``W -> c W``: call the model on those *inside* the loss,
so that the trained parameter is ``W`` and the layer computes ``x (c W)``. This is
not an approximation but the definition of a forward multiplier on the weight
(``MuReadout`` is exactly ``x (W/m) + b``), for every optimizer, since the
gradient is taken with respect to ``W`` through the scaling. (Absorbing ``c`` into
the parameter instead, training :math:`W' = cW` directly, is equivalent only with
init variance :math:`\times c^2` and lr :math:`\times c^2` under SGD, lr
:math:`\times c` under Adam up to ``eps``.)

Coordinate check. :func:`coord_check` trains a family of widths for a few steps and
fits, per layer and step, the log-log slope of the mean :math:`|\text{activation}|`
(and of the change since init) against width. Expected: under ``mup`` every slope
is :math:`\approx 0` at every step, with two exceptions *at init*: the readout
(slope :math:`-1/2`: :math:`\sum_{i\le n} x_i W_i/m` with constant-variance
:math:`W` is :math:`\Theta(n^{1/2}/n)`; 0 output with zero init) and attention logits
when scaled :math:`1/\sqrt d` instead of µP's :math:`1/d`; after one step the
readout's slope is 0 as well. Under ``standard`` with Adam the change of the hidden
pre-activations after one step grows like width (slope :math:`\approx +1`: every
entry of :math:`\Delta W` is :math:`\Theta(\eta)` and :math:`n` of them correlate),
and so does the readout's. Measured on a 2-hidden-layer ReLU MLP (widths 32-256, 4
seeds, Adam lr 0.01): µP change slopes after one step 0.02 / 0.02 / 0.01 (input,
hidden, readout), readout at init -0.54; standard: 0.01 / 0.90 / 1.30.

Example:
  >>> import jax, jax.numpy as jnp, flax.linen as nn, jinit
  >>> from jinit import parametrization as P
  >>> mlp = lambda w: nn.Sequential([nn.Dense(w), nn.relu, nn.Dense(w), nn.relu, nn.Dense(1)])
  >>> x = jnp.ones((2, 3))
  >>> shapes = lambda w: jax.eval_shape(mlp(w).init, jax.random.key(0), x)
  >>> base, target = shapes(8), shapes(32)
  >>> P.roles(target, base=base)["params/layers_2/kernel"]
  'hidden'
  >>> P.mup.lr_factors("adam", base, target)["params/layers_2/kernel"]
  0.25
  >>> P.mup.multipliers(base, target)
  {'params/layers_4/kernel': 0.25}
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit import basic, variance
from jinit.layout import Layout
from jinit.models import Unknown, framework_of, model_layouts
from jinit.tree import RESIDUAL_OUTPUTS, Rule, _compile_rules, _is_float_array, _tree_of, leaves_with_paths

__all__ = [
    "ROLES",
    "Multipliers",
    "Parametrization",
    "PARAMETRIZATIONS",
    "standard",
    "ntk",
    "mup",
    "depth_mup",
    "base_shapes",
    "roles",
    "apply_multipliers",
    "coord_check",
    "CoordCheck",
    "plot_coord_check",
]

ROLES = ("input", "hidden", "output", "bias", "norm", "residual_output")
"""The kinds of parameter a parametrization distinguishes."""

_OPTIMIZERS = ("sgd", "adam")


# ---------------------------------------------------------------------------
# Shapes and multipliers


@dataclass(frozen=True)
class Multipliers:
    """How one parameter grew from the base model to the target.

    Attributes:
      shape, base_shape: the stored shapes (target, base).
      infinite: per stored axis, whether it differs between base and target (mup's
        "infinite" dims, ``mup.infshape.zip_infshape`` with ``fin_if_same=True``).
      fan_in, base_fan_in: one layer's fan-in (receptive field x input channels;
        stacked layer axes excluded), ``None`` for a vector.
      m_in: fan-in multiplier ``fan_in / base_fan_in`` (1 for a vector).
      m_out: fan-out multiplier (output channels; for a vector, its length's multiplier).
      slices, base_slices: number of stacked layer slices (1 if not stacked).
      layer_role: the role the layer gives the leaf (``"kernel"``, ``"bias"``, ...), if known.
      grew_in, grew_out: whether fan-in / fan-out is a width dimension (differs between
        base and target, or base and ``delta`` when given).
    """

    shape: tuple[int, ...]
    base_shape: tuple[int, ...]
    infinite: tuple[bool, ...]
    fan_in: int | None
    base_fan_in: int | None
    m_in: float
    m_out: float
    slices: int = 1
    base_slices: int = 1
    layer_role: str | None = field(default=None, compare=False)
    grew_in: bool = False
    grew_out: bool = False

    @property
    def ninf(self) -> int:
        """Number of width dimensions among (fan-in, fan-out), as mup counts them."""
        return int(self.grew_in) + int(self.grew_out)


def _name_role(path: str) -> str | None:
    last = path.rsplit("/", 1)[-1]
    return {"kernel": "kernel", "bias": "bias", "embedding": "embedding", "scale": "scale"}.get(last)


def _layouts(model: Any, layouts: Mapping[str, Any] | None) -> dict[str, Any]:
    found = model_layouts(model) if framework_of(model) in ("nnx", "equinox") else {}
    if framework_of(model) == "linen":
        raise TypeError("got a flax.linen Module, which holds no parameters: pass its variables (or "
                        "jax.eval_shape(module.init, key, x)) and layouts=jinit.linen_layouts(module, x).")
    if layouts:
        found.update(layouts)
    return found


def _leaves(model: Any) -> dict[str, Any]:
    tree = _tree_of(model)[0]
    return {p: leaf for p, leaf in leaves_with_paths(tree) if _is_float_array(leaf)}


def _fans(path: str, shape: tuple[int, ...], layout: Any) -> tuple[int | None, int, int, str | None]:
    """(fan_in or None for a vector, fan_out or length, stacked slices, layer role)."""
    if isinstance(layout, Layout):
        init = tuple(layout.init_shape)
        if len(init) >= 2:
            return math.prod(init[:-1]), int(init[-1]), layout.slices, layout.role
        return None, math.prod(init), layout.slices, layout.role
    if isinstance(layout, Unknown):
        raise ValueError(f"cannot read the layout of {path!r}: {layout.reason}.")
    # A bare Flax-layout leaf: (*receptive, in, out); a vector is a bias / scale.
    if len(shape) >= 2:
        return math.prod(shape[:-1]), int(shape[-1]), 1, _name_role(path)
    return None, math.prod(shape), 1, _name_role(path)


def base_shapes(base: Any, target: Any, *, layouts: Mapping[str, Any] | None = None,
                base_layouts: Mapping[str, Any] | None = None, delta: Any = None,
                delta_layouts: Mapping[str, Any] | None = None) -> dict[str, Multipliers]:
    r"""Per parameter, how it grew from ``base`` to ``target`` (mup's ``set_base_shapes``).

    ``base`` and ``target`` are models (nnx, Equinox) or parameter trees (linen
    variables, ``nnx.State``, dicts) of arrays or ``jax.ShapeDtypeStruct`` (e.g.
    ``jax.eval_shape(module.init, key, x)``); they must have the same paths. Fans
    come from each leaf's layout (read from nnx / Equinox layers, or
    ``layouts=`` / ``base_layouts=``, e.g. :func:`jinit.linen_layouts`); without one
    a leaf is read in Flax order ``(*receptive, in, out)``:
    :math:`m_\text{in} = \text{fan\_in}/\text{base\_fan\_in}`,
    :math:`m_\text{out} = \text{out}/\text{base\_out}`. Give layouts for stacked
    (``nn.scan``) leaves, whose layer axis must not count as fan-in.

    ``delta`` (mup's ``set_base_shapes(..., delta=)``): a third model of another width,
    used only to decide which dimensions are width dimensions (those differing
    between ``base`` and ``delta``), so that roles are defined even when ``target``
    has the base's shape. The multipliers are still ``target`` over ``base``;
    :attr:`Multipliers.grew_in` / :attr:`Multipliers.grew_out` say which fans are width.

    Example:
      >>> import jax.numpy as jnp
      >>> from jinit.parametrization import base_shapes
      >>> b = {"w": jnp.zeros((3, 8)), "v": jnp.zeros((8, 8)), "o": jnp.zeros((8, 1))}
      >>> t = {"w": jnp.zeros((3, 32)), "v": jnp.zeros((32, 32)), "o": jnp.zeros((32, 1))}
      >>> {p: (m.m_in, m.m_out) for p, m in base_shapes(b, t).items()}
      {'o': (4.0, 1.0), 'v': (4.0, 4.0), 'w': (1.0, 4.0)}
    """
    b_leaves, t_leaves = _leaves(base), _leaves(target)
    if set(b_leaves) != set(t_leaves):
        only_t = sorted(set(t_leaves) - set(b_leaves))
        only_b = sorted(set(b_leaves) - set(t_leaves))
        raise ValueError(f"base_shapes: base and target have different parameters: only in target {only_t[:5]}, "
                         f"only in base {only_b[:5]}.")
    b_lay = _layouts(base, base_layouts if base_layouts is not None else layouts)
    t_lay = _layouts(target, layouts)
    d_leaves = _leaves(delta) if delta is not None else t_leaves
    d_lay = _layouts(delta, delta_layouts) if delta is not None else t_lay
    if set(d_leaves) != set(t_leaves):
        raise ValueError("base_shapes: delta and target have different parameters.")
    out: dict[str, Multipliers] = {}
    for p, leaf in t_leaves.items():
        shape, bshape = tuple(int(d) for d in leaf.shape), tuple(int(d) for d in b_leaves[p].shape)
        dshape = tuple(int(d) for d in d_leaves[p].shape)
        if not len(shape) == len(bshape) == len(dshape):
            raise ValueError(f"base_shapes: {p!r} has rank {len(shape)} in the target and {len(bshape)} in the base.")
        fi, fo, n, role = _fans(p, shape, t_lay.get(p))
        bfi, bfo, bn, _ = _fans(p, bshape, b_lay.get(p))
        dfi, dfo, _, _ = _fans(p, dshape, d_lay.get(p))
        m_in = 1.0 if fi is None else fi / bfi
        out[p] = Multipliers(shape, bshape, tuple(a != b for a, b in zip(dshape, bshape)), fi, bfi,
                             float(m_in), float(fo / bfo), n, bn, role,
                             grew_in=fi is not None and dfi != bfi, grew_out=dfo != bfo)
    return out


# ---------------------------------------------------------------------------
# Roles


def _default_role(path: str, m: Multipliers) -> str | None:
    layer = m.layer_role or _name_role(path)
    if layer == "bias":
        return "bias"
    if layer in ("scale", "norm_bias"):
        return "norm"
    if layer == "embedding":
        return "input"
    if m.fan_in is None:  # a vector of unknown kind
        return "bias" if path.endswith("bias") else None
    if layer not in ("kernel", "attention_out", None):
        return None
    grew_in, grew_out = m.grew_in, m.grew_out
    if grew_in and grew_out:
        if layer == "attention_out" or _compile_rules([(RESIDUAL_OUTPUTS, None)], "roles")[0].matches(path, layer):
            return "residual_output"
        return "hidden"
    if grew_out:
        return "input"
    if grew_in:
        return "output"
    return "hidden" if layer is not None else None  # nothing grew: every factor is 1


def _role_rules(rules: Any) -> list:
    if rules is None:
        return []
    if isinstance(rules, Mapping):
        rules = list(rules.items())
    compiled = _compile_rules([Rule(p, None) for p, _ in rules], "roles")
    out = []
    for c, (_, role) in zip(compiled, rules):
        if role not in ROLES:
            raise ValueError(f"roles: {c.label} gives role {role!r}; expected one of {ROLES}.")
        out.append((c, role))
    return out


def roles(params_or_model: Any, *, base: Any = None, rules: Any = None,
          layouts: Mapping[str, Any] | None = None, base_layouts: Mapping[str, Any] | None = None,
          delta: Any = None, delta_layouts: Mapping[str, Any] | None = None) -> dict[str, str]:
    """The role (one of :data:`ROLES`) of every floating-point parameter.

    ``rules`` (``(pattern, role)`` pairs or a mapping, patterns as in
    :func:`jinit.reinit`, the first match wins) override the defaults. The default
    comes from the layer (a bias is ``"bias"``, a normalization's scale and bias
    ``"norm"``, an embedding table ``"input"``) and, for kernels, from how they grew
    relative to ``base`` as mup decides: fan-out only ``"input"``, both
    ``"hidden"`` (``"residual_output"`` for attention output projections and the
    names of :data:`jinit.tree.RESIDUAL_OUTPUTS`), fan-in only ``"output"``. Without
    ``base`` a kernel needs a rule. A parameter left without a role is an error
    naming it.

    Example:
      >>> import jax.numpy as jnp
      >>> from jinit.parametrization import roles
      >>> p = {"kernel": jnp.zeros((4, 2)), "bias": jnp.zeros(2)}
      >>> roles(p, rules=[("kernel", "output")])
      {'bias': 'bias', 'kernel': 'output'}
    """
    compiled = _role_rules(rules)
    if base is not None:
        mults = base_shapes(base, params_or_model, layouts=layouts, base_layouts=base_layouts, delta=delta,
                            delta_layouts=delta_layouts)
    else:
        mults = {}
        lay = _layouts(params_or_model, layouts)
        for p, leaf in _leaves(params_or_model).items():
            shape = tuple(int(d) for d in leaf.shape)
            fi, fo, n, role = _fans(p, shape, lay.get(p))
            mults[p] = Multipliers(shape, shape, (False,) * len(shape), fi, fi, 1.0, 1.0, n, n, role)
    out: dict[str, str] = {}
    missing = []
    for p, m in mults.items():
        role = next((r for c, r in compiled if c.matches(p, m.layer_role)), None)
        if role is None:
            layer = m.layer_role or _name_role(p)
            if base is None and layer in ("kernel", "attention_out", None) and m.fan_in is not None:
                role = None
            else:
                role = _default_role(p, m)
        if role is None:
            missing.append(p)
        out[p] = role
    if missing:
        raise ValueError(
            f"roles: no role for {', '.join(map(repr, missing[:8]))}{' ...' if len(missing) > 8 else ''}; give "
            f"rules=[(pattern, role), ...] with a role among {ROLES}" +
            ("" if base is not None else ", or base= (the base model) to read kernels' roles from how they grew") + ".")
    return out


# ---------------------------------------------------------------------------
# Parametrizations


def _gain2(activation: Any) -> float:
    from jinit.gain import calculate_gain, gain_for

    if activation is None:
        return 1.0
    if isinstance(activation, (int, float)):
        return float(activation) ** 2
    if isinstance(activation, str):
        return float(calculate_gain(activation)) ** 2
    return float(gain_for(activation)) ** 2


def _exact(path: str) -> str:
    return "re:^" + re.escape(path) + "$"


@dataclass(frozen=True)
class Parametrization:
    """One parametrization: per role, the init variance, the learning-rate factor
    (SGD, Adam) and the forward multiplier, all relative to a base model (see the
    module's table). The objects :data:`standard`, :data:`ntk`, :data:`mup`,
    :data:`depth_mup` are the instances to use.

    Every method takes ``base`` and ``target`` (models or parameter trees, see
    :func:`base_shapes`) and the keywords ``rules`` (role overrides, see :func:`roles`),
    ``layouts`` / ``base_layouts`` (for linen trees) and, for ``depth_mup``,
    ``depth=(L0, L)``.
    """

    name: str
    kind: str  # "standard", "ntk", "mup"
    depth: bool = False
    description: str = ""

    # -- helpers
    def _table(self, base, target, rules=None, layouts=None, base_layouts=None, delta=None, delta_layouts=None):
        kw = dict(layouts=layouts, base_layouts=base_layouts, delta=delta, delta_layouts=delta_layouts)
        return base_shapes(base, target, **kw), roles(target, base=base, rules=rules, **kw)

    def _depth_ratio(self, mults, rl, depth) -> float:
        """sqrt(L0 / L)."""
        if not self.depth:
            return 1.0
        if depth is None:
            res = [p for p, r in rl.items() if r == "residual_output"]
            if not res:
                raise ValueError(f"{self.name}: no 'residual_output' parameter to count blocks with; give "
                                 "rules=[(pattern, 'residual_output')] or depth=(base_depth, depth).")
            L0 = sum(mults[p].base_slices for p in res)
            L = sum(mults[p].slices for p in res)
        else:
            L0, L = depth
            if int(L0) < 1 or int(L) < 1:
                raise ValueError(f"{self.name}: depth must be two positive block counts, got {depth!r}.")
        return math.sqrt(L0 / L)

    # -- init
    def init_rules(self, base: Any, target: Any, activation: Any = "relu", *, rules: Any = None,
                   layouts=None, base_layouts=None, delta=None, delta_layouts=None, readout_zero_init: bool = False,
                   distribution: str = "normal") -> list[Rule]:
        r"""Rules for :func:`jinit.init` / :func:`jinit.reinit` giving each parameter its init.

        Kernels: variance :math:`g/\text{fan\_in}` (``variance_scaling(g, "fan_in",
        distribution)``, one layer's fan-in), with :math:`g = 1` for ``input`` kernels
        (fed by data) and :math:`g = s` (``activation``'s gain squared: a name such
        as ``"relu"``, a callable, or a number taken as the gain) for the others;
        under ``mup``/``depth_mup`` the ``output`` kernel gets :math:`g\,m_\text{in}`,
        i.e. variance :math:`s/\text{base\_fan\_in}` (or 0 with ``readout_zero_init``).
        Embedding tables :math:`\mathcal N(0,1)`, biases 0, normalization scales 1
        and their biases 0. One rule per parameter (an exact-path regex).

        Example:
          >>> import jax.numpy as jnp
          >>> from jinit.parametrization import mup
          >>> b = {"h": {"kernel": jnp.zeros((8, 8))}, "o": {"kernel": jnp.zeros((8, 1))}}
          >>> t = {"h": {"kernel": jnp.zeros((32, 32))}, "o": {"kernel": jnp.zeros((32, 1))}}
          >>> [(r.pattern, r.what) for r in mup.init_rules(b, t, "relu")]
          [('re:^h/kernel$', 'hidden: var 2/fan_in'), ('re:^o/kernel$', 'output: var 8/fan_in')]
        """
        mults, rl = self._table(base, target, rules, layouts, base_layouts, delta, delta_layouts)
        s = _gain2(activation)
        out = []
        for p, role in rl.items():
            m = mults[p]
            layer = m.layer_role or _name_role(p)
            if role in ("bias", "norm"):
                fill = 1.0 if (role == "norm" and layer == "scale") else 0.0
                init = basic.ones() if fill else basic.zeros()
                what = f"{role}: {fill:g}"
            elif layer == "embedding":
                init, what = basic.normal(1.0), f"{role}: N(0, 1) embedding"
            elif m.fan_in is None:
                raise ValueError(f"{self.name}.init_rules: {p!r} is a vector but has role {role!r}.")
            else:
                g = 1.0 if role == "input" else s
                if role == "output" and self.kind == "mup":
                    if readout_zero_init:
                        out.append(Rule(_exact(p), basic.zeros(), what="output: 0"))
                        continue
                    g *= m.m_in
                init = variance.variance_scaling(g, "fan_in", distribution)
                what = f"{role}: var {g:g}/fan_in"
            out.append(Rule(_exact(p), init, what=what))
        return out

    # -- learning rates
    def lr_factors(self, optimizer: str, base: Any, target: Any, *, rules: Any = None, layouts=None,
                   base_layouts=None, delta=None, delta_layouts=None, depth: tuple[int, int] | None = None) -> dict[str, float]:
        """Per parameter path, the factor its learning rate is multiplied by (see the table).

        Example:
          >>> import jax.numpy as jnp
          >>> from jinit.parametrization import mup
          >>> b = {"i": {"kernel": jnp.zeros((3, 8))}, "o": {"kernel": jnp.zeros((8, 1))}}
          >>> t = {"i": {"kernel": jnp.zeros((3, 32))}, "o": {"kernel": jnp.zeros((32, 1))}}
          >>> mup.lr_factors("sgd", b, t)
          {'i/kernel': 4.0, 'o/kernel': 4.0}
        """
        if optimizer not in _OPTIMIZERS:
            raise ValueError(f"{self.name}: optimizer must be one of {_OPTIMIZERS}, got {optimizer!r}.")
        mults, rl = self._table(base, target, rules, layouts, base_layouts, delta, delta_layouts)
        d = self._depth_ratio(mults, rl, depth)
        out = {}
        for p, role in rl.items():
            m = mults[p]
            f = 1.0
            if self.kind == "ntk" and role in ("hidden", "output", "residual_output"):
                f = 1.0 / m.m_in if optimizer == "sgd" else 1.0 / math.sqrt(m.m_in)
            elif self.kind == "mup":
                if optimizer == "sgd":
                    if role == "input":
                        f = m.m_out
                    elif role in ("bias", "norm"):
                        f = m.m_out  # a vector's one width multiplier
                    elif role in ("hidden", "residual_output"):
                        f = m.m_out / m.m_in
                    elif role == "output":
                        f = m.m_in
                else:
                    if role in ("hidden", "residual_output"):
                        f = 1.0 / m.m_in
                    if self.depth and role in ("hidden", "residual_output"):
                        f *= d
            out[p] = float(f)
        return out

    def scale_updates(self, optimizer: str, base: Any, target: Any, **kwargs: Any):
        """An ``optax.GradientTransformation`` multiplying each parameter's update by its
        lr factor (:meth:`lr_factors`); chain it after the optimizer:
        ``optax.chain(optax.adam(lr), mup.scale_updates("adam", base, target))``.
        Both SGD's and Adam's updates are linear in the lr, so this is the per-parameter lr.
        Stateless and jit-able (the factors are Python floats looked up by path at trace time).

        Example:
          >>> import jax, jax.numpy as jnp, optax
          >>> from jinit.parametrization import mup
          >>> b = {"h": {"kernel": jnp.zeros((8, 8))}}
          >>> t = {"h": {"kernel": jnp.ones((32, 32))}}
          >>> tx = optax.chain(optax.sgd(1.0), mup.scale_updates("adam", b, t))
          >>> u, _ = jax.jit(tx.update)(t, tx.init(t))
          >>> float(u["h"]["kernel"][0, 0])
          -0.25
        """
        factors = self.lr_factors(optimizer, base, target, **kwargs)
        return scale_by_path(factors)

    def optimizer(self, optimizer: str, base: Any, target: Any, learning_rate: float, **kwargs: Any):
        """``optax.chain(optax.sgd|adam(learning_rate), self.scale_updates(...))``; ``kwargs``
        go to :meth:`lr_factors` (``rules``, ``layouts``, ``base_layouts``, ``depth``)."""
        import optax

        inner = optax.sgd(learning_rate) if optimizer == "sgd" else optax.adam(learning_rate)
        return optax.chain(inner, self.scale_updates(optimizer, base, target, **kwargs))

    # -- forward multipliers
    def multipliers(self, base: Any, target: Any, *, rules: Any = None, layouts=None, base_layouts=None,
                    delta=None, delta_layouts=None,
                    depth: tuple[int, int] | None = None) -> dict[str, float]:
        """``{path: c}`` for the weights the forward pass must scale (only those with
        ``c != 1``): ``mup``'s readout :math:`1/m_\\text{in}` and ``depth_mup``'s
        residual outputs :math:`\\sqrt{L_0/L}`. Apply with :func:`apply_multipliers`.

        Example:
          >>> import jax.numpy as jnp
          >>> from jinit.parametrization import mup, standard
          >>> b, t = {"o": {"kernel": jnp.zeros((8, 1))}}, {"o": {"kernel": jnp.zeros((32, 1))}}
          >>> mup.multipliers(b, t), standard.multipliers(b, t)
          ({'o/kernel': 0.25}, {})
        """
        mults, rl = self._table(base, target, rules, layouts, base_layouts, delta, delta_layouts)
        d = self._depth_ratio(mults, rl, depth)
        out = {}
        for p, role in rl.items():
            c = 1.0
            if self.kind == "mup" and role == "output":
                c = 1.0 / mults[p].m_in
            if self.depth and role == "residual_output":
                c *= d
            if c != 1.0:
                out[p] = float(c)
        return out


def scale_by_path(factors: Mapping[str, float]):
    """A stateless ``optax.GradientTransformation`` multiplying the update at each path by
    ``factors[path]`` (paths as :func:`jinit.tree_paths`); a path absent from ``factors`` is an error."""
    import optax

    factors = dict(factors)

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params
        leaves = dict(leaves_with_paths(updates))
        unknown = [p for p, u in leaves.items() if u is not None and _is_float_array(u) and p not in factors]
        if unknown:
            raise KeyError(f"scale_updates: no learning-rate factor for {unknown[:5]}; known: {sorted(factors)[:5]} ...")
        from jinit.tree import path_string

        def scale(path, u):
            f = factors.get(path_string(path), 1.0)
            return u if f == 1.0 or u is None else u * jnp.asarray(f, u.dtype)

        return jax.tree_util.tree_map_with_path(scale, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


def apply_multipliers(params: Any, multipliers: Mapping[str, float]) -> Any:
    """``params`` with the leaf at each path of ``multipliers`` scaled by its factor.

    Call it inside the loss, ``model.apply(apply_multipliers(params, mults), x)``, so
    the gradient is taken with respect to the unscaled parameter: a forward multiplier
    ``c`` on a weight ``W`` (the layer computes ``x (cW) + b``; for the readout this is
    ``MuReadout``'s ``(x/m) W + b``). Works on linen variables, dicts and ``nnx.State``;
    for an Equinox model, on the model itself. A path not in ``params`` is an error.

    Example:
      >>> import jax.numpy as jnp
      >>> from jinit.parametrization import apply_multipliers
      >>> apply_multipliers({"o": jnp.ones(2), "b": jnp.ones(2)}, {"o": 0.25})
      {'b': Array([1., 1.], dtype=float32), 'o': Array([0.25, 0.25], dtype=float32)}
    """
    from jinit.tree import path_string

    seen = set()

    def scale(path, leaf):
        p = path_string(path)
        if p in multipliers:
            seen.add(p)
            return leaf * jnp.asarray(multipliers[p], leaf.dtype)
        return leaf

    out = jax.tree_util.tree_map_with_path(scale, params)
    missing = set(multipliers) - seen
    if missing:
        raise KeyError(f"apply_multipliers: no parameter at {sorted(missing)}.")
    return out


standard = Parametrization("standard", "standard", description="standard parametrization (fan-in init, one lr)")
ntk = Parametrization("ntk", "ntk", description="NTK parametrization in standard form")
mup = Parametrization("mup", "mup", description="µP (Tensor Programs V), mup's MuReadout/MuSGD/MuAdam form")
depth_mup = Parametrization("depth_mup", "mup", depth=True,
                            description="Depth-µP (Tensor Programs VI, block depth 1): µP and 1/sqrt(L) branches")

PARAMETRIZATIONS: dict[str, Parametrization] = {p.name: p for p in (standard, ntk, mup, depth_mup)}
"""The parametrizations by name."""


# ---------------------------------------------------------------------------
# Coordinate check


@dataclass
class CoordCheck:
    """The result of :func:`coord_check`.

    Attributes:
      widths: the widths, ascending.
      layers: the layer names (linen module paths whose outputs were recorded).
      act: ``act[layer]`` an array ``(len(widths), steps + 1)`` of mean |activation|
        at steps 0..steps (step t: after t updates).
      delta: same shape, mean |activation(t) - activation(0)| (0 at step 0).
      slopes, delta_slopes: ``{layer: array (steps + 1,)}``, the least-squares slope of
        log(act) (log(delta)) against log(width) at each step (``nan`` where undefined).
    """

    widths: list[int]
    layers: list[str]
    act: dict[str, np.ndarray]
    delta: dict[str, np.ndarray]
    slopes: dict[str, np.ndarray]
    delta_slopes: dict[str, np.ndarray]


def _slope(widths, values) -> float:
    v = np.asarray(values, float)
    if np.any(~np.isfinite(v)) or np.any(v <= 0):
        return float("nan")
    return float(np.polyfit(np.log(widths), np.log(v), 1)[0])


def coord_check(make_model: Callable[[int], Any], widths: Sequence[int], batch: tuple[Any, Any], *,
                steps: int = 3, lr: float, parametrization: Parametrization | str,
                optimizer: str = "adam", key: Any, activation: Any = "relu", rules: Any = None,
                readout_zero_init: bool = False, seeds: int = 1) -> CoordCheck:
    r"""The coordinate check of Tensor Programs V (and mup's ``coord_check``) for a linen model.

    For each width, ``make_model(width)`` (a ``flax.linen`` module) is initialized with
    ``parametrization.init_rules`` relative to the smallest width, trained ``steps``
    steps of full-batch ``optimizer`` (``"sgd"`` / ``"adam"``, base lr ``lr``, scaled
    by ``parametrization``) on the mean squared error against ``batch = (x, y)``,
    forward multipliers applied, and every submodule's output recorded (linen's
    ``capture_intermediates``), averaged over ``seeds`` initializations
    (``jax.random.fold_in(key, seed)``; a scalar readout is one random draw per seed, so
    average a few). Role dimensions are read against the widest model (mup's ``delta``).
    Returned: per layer and step the mean
    :math:`|h|` and :math:`|h_t - h_0|` over the batch and coordinates, and their
    log-log slopes against width. Expected slopes (see the module docstring): under
    ``mup`` all :math:`\approx 0` (the readout at init :math:`-1/2`); under
    ``standard`` with Adam the hidden and readout changes after a step
    :math:`\approx +1`.

    Example:
      >>> import jax, jax.numpy as jnp, flax.linen as nn
      >>> from jinit.parametrization import coord_check
      >>> make = lambda w: nn.Sequential([nn.Dense(w), nn.relu, nn.Dense(w), nn.relu, nn.Dense(1)])
      >>> x = jax.random.normal(jax.random.key(0), (16, 4)); y = jnp.ones((16, 1))
      >>> r = coord_check(make, [32, 64, 128], (x, y), steps=1, lr=0.01, parametrization="mup",
      ...                 key=jax.random.key(1))
      >>> bool(abs(r.delta_slopes["layers_2"][1]) < 0.3)
      True
    """
    import optax

    from jinit.models import linen_layouts
    from jinit.tree import init as tree_init

    par = PARAMETRIZATIONS[parametrization] if isinstance(parametrization, str) else parametrization
    widths = sorted(int(w) for w in widths)
    if len(widths) < 2:
        raise ValueError("coord_check: give at least two widths.")
    x, y = batch
    base_model, delta_model = make_model(widths[0]), make_model(widths[-1])
    base_vars = jax.eval_shape(base_model.init, jax.random.key(0), x)
    base_lay = linen_layouts(base_model, x)
    delta_vars = {"params": jax.eval_shape(delta_model.init, jax.random.key(0), x)["params"]}
    delta_lay = linen_layouts(delta_model, x)
    acts: dict[str, list] = {}
    deltas: dict[str, list] = {}
    for w in widths:
        model = make_model(w)
        lay = linen_layouts(model, x)
        kw = dict(rules=rules, layouts=lay, base_layouts=base_lay, delta=delta_vars, delta_layouts=delta_lay)
        init_rules = par.init_rules({"params": base_vars["params"]},
                                    {"params": jax.eval_shape(model.init, jax.random.key(0), x)["params"]},
                                    activation, readout_zero_init=readout_zero_init, **kw)
        variables = jax.eval_shape(lambda k: tree_init(model, init_rules, k, x), key)
        shapes = {"params": variables["params"]}
        full_b = {"params": base_vars["params"]}
        mults = par.multipliers(full_b, shapes, **kw)
        mults = {p[len("params/"):]: c for p, c in mults.items()}
        factors = par.lr_factors(optimizer, full_b, shapes, **kw)
        factors = {p[len("params/"):]: f for p, f in factors.items()}
        inner = optax.sgd(lr) if optimizer == "sgd" else optax.adam(lr)
        tx = optax.chain(inner, scale_by_path(factors))

        def forward(p, mults=mults, model=model):
            out, state = model.apply({"params": apply_multipliers(p, mults)}, x, capture_intermediates=True)
            return out, state["intermediates"]

        def loss(p, forward=forward):
            out, _ = forward(p)
            return jnp.mean((out - y) ** 2)

        def trajectory(k, model=model, init_rules=init_rules, tx=tx, loss=loss, forward=forward):
            params = tree_init(model, init_rules, k, x)["params"]
            opt_state = tx.init(params)
            records = [forward(params)[1]]
            for _ in range(steps):
                g = jax.grad(loss)(params)
                u, opt_state = tx.update(g, opt_state, params)
                params = optax.apply_updates(params, u)
                records.append(forward(params)[1])
            return records

        run = jax.jit(trajectory)  # one compilation per width
        runs = [run(jax.random.fold_in(key, seed)) for seed in range(seeds)]
        records = []  # per step: {layer: array (seeds, ...)}
        for t in range(steps + 1):
            per_seed = [dict(leaves_with_paths(run_[t])) for run_ in runs]
            records.append({p.rsplit("/__call__", 1)[0]: np.stack([np.asarray(d[p]) for d in per_seed])
                            for p in per_seed[0] if not p.startswith("__call__")})
        a_sum = {n: np.asarray([np.mean(np.abs(r[n])) for r in records]) for n in records[0]}
        d_sum = {n: np.asarray([np.mean(np.abs(r[n] - records[0][n])) for r in records]) for n in records[0]}
        for name in a_sum:
            acts.setdefault(name, []).append(a_sum[name])
            deltas.setdefault(name, []).append(d_sum[name])
    layers = sorted(acts)
    act = {n: np.asarray(acts[n]) for n in layers}
    delta = {n: np.asarray(deltas[n]) for n in layers}
    slopes = {n: np.asarray([_slope(widths, act[n][:, t]) for t in range(steps + 1)]) for n in layers}
    dslopes = {n: np.asarray([_slope(widths, delta[n][:, t]) for t in range(steps + 1)]) for n in layers}
    return CoordCheck(widths, layers, act, delta, slopes, dslopes)


def plot_coord_check(result: CoordCheck, *, delta: bool = False, ax: Any = None):
    """Plot mean |activation| (or its change, ``delta=True``) against width, one line
    per layer and step, on log-log axes (needs matplotlib). Returns the axes.

    Example:
      >>> from jinit.parametrization import plot_coord_check  # doctest: +SKIP
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots()
    table = result.delta if delta else result.act
    slopes = result.delta_slopes if delta else result.slopes
    for name in result.layers:
        for t in range(table[name].shape[1]):
            if delta and t == 0:
                continue
            ax.plot(result.widths, table[name][:, t], marker="o",
                    label=f"{name} t={t} (slope {slopes[name][t]:.2f})")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("width")
    ax.set_ylabel("mean |Δ activation|" if delta else "mean |activation|")
    ax.legend(fontsize="x-small")
    return ax
