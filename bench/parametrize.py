"""A parametrization (:mod:`jinit.parametrization`) applied to a benchmark network.

``--parametrization standard|ntk|mup|depth_mup`` changes three things relative to
the *base* network (``BenchConfig.base``: the smallest width and depth of the run
unless set), per parameter, read from the base, the target and a wider copy of the
target (which dimensions are widths) with :func:`jinit.parametrization.base_shapes`:

1. **init**: the scheme initializes the network as usual, then each parameter is
   multiplied by ``init_scale`` (µP: the readout kernel by :math:`\\sqrt{m_\\text{in}}`,
   what ``mup.set_base_shapes`` does to any model's ``MuReadout``; 1 elsewhere). µP
   assumes that the scheme's kernels have variance :math:`\\propto 1/\\text{fan\\_in}`
   (input layers: constant in width); :func:`width_rule_violation` checks that on the
   scheme's actual init at the base and the target width, and a scheme that breaks it
   (Glorot's fan-average, ZerO's partial identities, orthogonal
   matrices wider than tall, whose variance is 1/fan_out) is *skipped with the reason*, not
   run under a parametrization it does not satisfy;
2. **learning rates**: each parameter's update is multiplied by its factor
   (:meth:`jinit.parametrization.Parametrization.lr_factors`; SGD and momentum use the
   SGD column, Adam the Adam column);
3. **forward multipliers**: the loss, evaluations and statistics call the network on
   the parameters with the multiplied leaves scaled
   (:func:`jinit.parametrization.apply_multipliers`: µP's readout :math:`1/m_\\text{in}`,
   depth-µP's residual branches :math:`\\sqrt{L_0/L}`).

``standard`` changes nothing: the benchmark's usual runs. At the base every
parametrization equals the standard one.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import jinit
from bench.archs import NetSpec, get_arch

__all__ = ["Scaling", "scaling", "optimizer_column", "width_rule_violation", "scale_leaves"]

# Kernels whose init variance µP prescribes, and how it must scale with the fan-in
# multiplier m_in (the scheme's init, before init_scale): input layers constant,
# the others 1/m_in.
_KERNEL_ROLES = ("input", "hidden", "residual_output", "output")
# A scheme's variance ratio may differ from the rule's by this factor before it is
# called a violation: far above the sampling error of a variance estimated from the
# >= 320 entries of the benchmark's smallest kernel (relative s.e. sqrt(2/320) = 8%),
# far below the smallest violation of a real scheme at a width ratio >= 2 (Glorot's
# input layer at 32 -> 64 inputs: (64 + 32) / (64 + 64) = 0.75 is *not* caught; at
# the ratios a width sweep uses, 32 -> 512: 0.17, it is).
WIDTH_RULE_TOLERANCE = 1.5


@dataclass(frozen=True)
class Scaling:
    """What one parametrization does to one network (paths relative to ``params``)."""

    name: str
    base: tuple[int, int]  # (width, depth) of the base network
    roles: dict[str, str] = field(default_factory=dict)
    lr_factors: dict[str, float] = field(default_factory=dict)
    multipliers: dict[str, float] = field(default_factory=dict)
    init_scale: dict[str, float] = field(default_factory=dict)
    m_in: dict[str, float] = field(default_factory=dict)  # per kernel, its fan-in multiplier

    @property
    def identity(self) -> bool:
        """Whether it changes nothing (``standard``, or any parametrization at the base)."""
        return not self.multipliers and not self.init_scale and all(f == 1.0 for f in self.lr_factors.values())

    def record(self) -> dict:
        """A JSON-able digest (what ``results.json`` keeps per structure)."""
        return {"parametrization": self.name, "base_width": self.base[0], "base_depth": self.base[1],
                "roles": self.roles, "lr_factors": self.lr_factors, "multipliers": self.multipliers,
                "init_scale": self.init_scale}


def optimizer_column(optimizer: str) -> str:
    """The learning-rate column of the parametrization tables for a benchmark optimizer."""
    return "adam" if optimizer == "adam" else "sgd"


def _strip(d: dict[str, Any]) -> dict[str, Any]:
    return {k.split("/", 1)[1]: v for k, v in d.items()}


def _shapes(spec: NetSpec) -> tuple[Any, dict]:
    module = get_arch(spec.arch).module(spec)
    x = jnp.zeros((1, spec.n_in), jnp.float32)
    return jax.eval_shape(module.init, jax.random.key(0), x), jinit.linen_layouts(module, x)


def scaling(name: str, spec: NetSpec, base: tuple[int, int], optimizer: str) -> Scaling:
    """The :class:`Scaling` of parametrization ``name`` for the network ``spec``
    relative to the base ``(width, depth)``. Raises ``ValueError`` (with the reason)
    where the architecture cannot express the parametrization."""
    from jinit import parametrization as P

    arch = get_arch(spec.arch)
    base_spec = dataclasses.replace(spec, width=base[0], depth=base[1])
    reason = arch.parametrization_issue(spec, base_spec) if name != "standard" else None
    if name == "depth_mup" and "residual" not in arch.structure(spec).features:
        reason = "depth-muP scales residual branches with depth, and this network has none (use resmlp, " \
                 "resmlp_ln or transformer)."
    if reason:
        raise ValueError(f"parametrization {name!r} on {spec.arch}: {reason}")
    # A wider copy of the target tells which dimensions are widths even when the
    # target has the base's width (then every width factor is 1 anyway).
    delta_spec = dataclasses.replace(spec, width=4 * max(spec.width, base[0]))
    (target, t_lay), (base_tree, b_lay), (delta, d_lay) = _shapes(spec), _shapes(base_spec), _shapes(delta_spec)
    p = P.PARAMETRIZATIONS[name]
    kw = dict(rules=arch.roles(spec), layouts=t_lay, base_layouts=b_lay, delta=delta, delta_layouts=d_lay)
    mults = P.base_shapes(base_tree, target, layouts=t_lay, base_layouts=b_lay, delta=delta, delta_layouts=d_lay)
    roles = P.roles(target, base=base_tree, **kw)
    lr = p.lr_factors(optimizer_column(optimizer), base_tree, target, **kw)
    forward = p.multipliers(base_tree, target, **kw)
    # µP's readout: init variance s/base_fan_in = the scheme's s/fan_in times m_in
    # (mup's MuReadout._rescale_parameters multiplies the weight by sqrt(m_in)).
    init_scale = {path: math.sqrt(mults[path].m_in) for path, role in roles.items()
                  if role == "output" and p.kind == "mup" and mults[path].m_in != 1.0}
    m_in = {path: mults[path].m_in for path, role in roles.items() if role in _KERNEL_ROLES}
    return Scaling(name, tuple(base), _strip(roles), _strip(lr), _strip(forward), _strip(init_scale), _strip(m_in))


def scale_leaves(params: Any, factors: dict[str, float]) -> Any:
    """``params`` with the leaf at each path of ``factors`` multiplied by it."""
    if not factors:
        return params
    from jinit.parametrization import apply_multipliers

    return apply_multipliers(params, factors)


def width_rule_violation(s: Scaling, scheme: str, base_params: Any, params: Any) -> str | None:
    """Why ``scheme``'s init breaks the width rule the parametrization assumes (None if it
    does not): per kernel, the ratio of its mean square at the target width (``params``,
    before ``init_scale``) to that at the base width (``base_params``) must be 1 for
    input layers and :math:`1/m_\\text{in}` for the others, within
    :data:`WIDTH_RULE_TOLERANCE`; an all-zero kernel at both widths passes."""
    from jinit.tree import leaves_with_paths

    base = dict(leaves_with_paths(base_params))
    for path, leaf in leaves_with_paths(params):
        role = s.roles.get(path)
        if role not in _KERNEL_ROLES or s.m_in.get(path, 1.0) == 1.0 and role != "input":
            continue
        t, b = float(np.mean(np.square(leaf))), float(np.mean(np.square(base[path])))
        if t == 0.0 and b == 0.0:
            continue
        want = 1.0 if role == "input" else 1.0 / s.m_in[path]
        got = t / b if b > 0 else math.inf
        if not (want / WIDTH_RULE_TOLERANCE <= got <= want * WIDTH_RULE_TOLERANCE):
            return (f"scheme {scheme!r} does not scale as {s.name} assumes: the init variance of {path} ({role}) "
                    f"changes by x{got:.3g} from the base width {s.base[0]} to this width, where {s.name} needs "
                    f"x{want:.3g} (variance proportional to 1/fan_in; input layers constant). Use a fan-in scheme "
                    "(he_*, lecun_*, gain_normal, ...) or --parametrization standard.")
    return None
