"""One registry of named initialization schemes, shared by the benchmark CLI,
the docs, the notebooks and the tests.

A :class:`Scheme` turns an activation name into the kernel initializer for a
layer followed by that activation (most schemes ignore it; gain- and
criticality-based ones need it). Bias initializers default to zeros. Every
kernel is a public factory of the scheme's family module (``"orthogonal"``:
:func:`jinit.gain_orthogonal`, ``"critical"``: :func:`jinit.meanfield.critical_orthogonal`,
``"sparse"``: :func:`jinit.sparse_capped`, ...); activation names are those of
:mod:`jinit.activations` (``ACTIVATIONS`` and ``get_activation`` are re-exported here).

Example:
  >>> import jinit
  >>> scheme = jinit.get_scheme("he_normal")
  >>> init = scheme.kernel_init("relu")
  >>> init.__name__
  'he_normal'
"""

from __future__ import annotations

import functools
import importlib
import itertools
import math
import re
from collections.abc import Callable, Mapping
from typing import Any
from dataclasses import dataclass, field
from types import MappingProxyType

from jinit import basic, gain, meanfield, structured, tree, variance
from jinit._core import Initializer, check_choice
from jinit.activations import ACTIVATIONS, get_activation

__all__ = [
    "Scheme",
    "Structure",
    "SchemeNotApplicable",
    "FEATURES",
    "register_scheme",
    "get_scheme",
    "scheme_names",
    "markdown_table",
    "SCHEMES",
    "ACTIVATIONS",
    "get_activation",
    "Param",
    "ParametricScheme",
    "PARAMETRIC_SCHEMES",
    "register_parametric_scheme",
    "parametric_scheme",
    "parametric_arguments",
    "expand_scheme_grid",
    "split_scheme_list",
]


def _zeros(activation: str) -> Initializer:
    return basic.zeros()


FEATURES = ("residual", "gates", "norm", "conv", "attention")
"""Features a :class:`Structure` may declare (and a :class:`Scheme` may require or exclude)."""


class SchemeNotApplicable(ValueError):
    """The scheme does not apply to this network (the message says why)."""


def _patterns(value: Any) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class Structure:
    """The parts of a network that a whole-model scheme needs, named by rule patterns
    (glob, ``re:`` or ``role:`` patterns as in :class:`jinit.Rule`).

    Per-tensor schemes only need the activation and the readout; whole-model schemes
    (Fixup, ReZero, GPT-2, ZerO, delta-orthogonal, ...) need the residual branches,
    gates or conv kernels, and declare the :data:`FEATURES` they require.

    Attributes:
      activation: the hidden layers' activation (a name of ``jinit.ACTIVATIONS``).
      features: what the network has: ``"residual"`` (blocks ``x + g f(x)``),
        ``"gates"`` (a learnable scalar ``g`` per block), ``"norm"`` (normalization
        layers), ``"conv"``, ``"attention"``.
      readout: path of the output layer (its ``kernel`` and ``bias`` follow), e.g. ``"output"``
        (matched with or without a leading ``params/``).
      blocks: number of residual blocks :math:`L`.
      branch_layers: one pattern per weight layer of a residual branch, in forward
        order, each matching that layer in every block (``L`` layer slices).
      residual_outputs: patterns of the projections that write into the residual
        stream (default: the last branch layer); ``residual_per_block`` of them per block.
      gates: pattern(s) of the residual gates.
      conv_kernels: pattern(s) of the convolution kernels.

    Example:
      >>> import jinit
      >>> s = jinit.Structure("relu", {"residual", "gates"}, readout="output", blocks=8,
      ...                     branch_layers=("*fc1/kernel", "*fc2/kernel"), gates="*gate")
      >>> [r.what for r in jinit.get_scheme("fixup").rules(s)][:3]
      ['last layer of each branch', 'classifier', 'classifier']
    """

    activation: str = "relu"
    features: frozenset = frozenset()
    readout: str | None = None
    blocks: int = 0
    branch_layers: tuple = ()
    residual_outputs: tuple = ()
    residual_per_block: int = 1
    gates: tuple = ()
    conv_kernels: tuple = ()

    def __post_init__(self):
        get_activation(self.activation)
        set_ = object.__setattr__
        set_(self, "features", frozenset(self.features))
        for name in ("branch_layers", "residual_outputs", "gates", "conv_kernels"):
            set_(self, name, _patterns(getattr(self, name)))
        unknown = sorted(self.features - set(FEATURES))
        if unknown:
            raise ValueError(f"Structure: unknown feature(s) {unknown}; valid features are {', '.join(FEATURES)}.")
        needs = {"residual": ("blocks", "branch_layers"), "gates": ("gates",), "conv": ("conv_kernels",)}
        for feature, attrs in needs.items():
            missing = [a for a in attrs if feature in self.features and not getattr(self, a)]
            if missing:
                raise ValueError(f"Structure: feature {feature!r} needs {' and '.join(missing)} (got none).")
        if "residual" in self.features and not self.residual_outputs:
            set_(self, "residual_outputs", self.branch_layers[-1:])

    def readout_patterns(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(kernel patterns, bias patterns)`` of the readout (empty without one)."""
        if self.readout is None:
            return (), ()
        # The path with or without the "params/" collection prefix of a variables dict.
        path = "re:^(params/)?" + re.escape(self.readout)
        return (path + "/kernel$",), (path + "/bias$",)


@dataclass(frozen=True)
class Scheme:
    """A named initialization scheme.

    A per-tensor scheme gives every kernel ``kernel(activation)`` (the readout
    ``kernel("linear")`` when the scheme accepts it) and every bias
    ``bias(activation)``; :meth:`rules` turns that into rules for :func:`jinit.init` /
    :func:`jinit.reinit`. A whole-model scheme (``model_rules``) builds its rules
    from the network's :class:`Structure` instead; a data-dependent one adds a
    ``post_init`` step run on a batch after initialization (LSUV).

    Attributes:
      name: registry key.
      kernel: ``activation name -> Initializer`` for kernels.
      formula: the definition, in plain text.
      description: when to use it, or what goes wrong with it.
      reference: the paper or source.
      family: ``"basic"``, ``"variance"``, ``"structured"``, ``"data_dependent"``,
        ``"meanfield"`` or ``"model"``.
      bias: ``activation name -> Initializer`` for biases (zeros by default).
      writeup: whether the common write-ups name this scheme.
      model_rules: ``Structure -> list of rules`` for whole-model schemes (None: per-tensor).
      post_init: ``(key, module, variables, batch) -> (variables, report)``, run after
        initialization (flax.linen), or None.
      requires: :data:`FEATURES` the network must have.
      excludes: :data:`FEATURES` the network must not have.
    """

    name: str
    kernel: Callable[[str], Initializer]
    formula: str
    description: str
    reference: str
    family: str
    bias: Callable[[str], Initializer] = field(default=_zeros)
    writeup: bool = False
    model_rules: Callable[[Structure], list] | None = None
    post_init: Callable[..., tuple[Any, Any]] | None = None
    requires: frozenset = frozenset()
    excludes: frozenset = frozenset()

    @property
    def model_level(self) -> bool:
        """Whether the scheme needs the whole model (rules from its structure, or a data step)."""
        return self.model_rules is not None or self.post_init is not None

    def kernel_init(self, activation: str = "relu") -> Initializer:
        get_activation(activation)
        return self.kernel(activation)

    def bias_init(self, activation: str = "relu") -> Initializer:
        get_activation(activation)
        return self.bias(activation)

    def unavailable(self, structure: Structure) -> str | None:
        """Why the scheme does not apply to ``structure`` (None when it does)."""
        missing = sorted(self.requires - structure.features)
        if missing:
            return f"scheme {self.name!r} needs a network with {' and '.join(missing)} (this one has none)."
        present = sorted(self.excludes & structure.features)
        if present:
            return f"scheme {self.name!r} is for networks without {' and '.join(present)}."
        return None

    def rules(self, structure: Structure) -> list:
        """Rules initializing a whole network of this ``structure`` with this scheme.

        Raises:
          SchemeNotApplicable: the scheme does not apply to the structure, or its
            initializers reject the activation.
        """
        reason = self.unavailable(structure)
        if reason:
            raise SchemeNotApplicable(reason)
        try:
            if self.model_rules is not None:
                return list(self.model_rules(structure))
            return _per_tensor_rules(self, structure)
        except (ValueError, TypeError, NotImplementedError) as err:
            raise SchemeNotApplicable(f"scheme {self.name!r}: {type(err).__name__}: {err}") from err


def _readout_inits(scheme: Scheme, activation: str) -> tuple[Initializer, Initializer]:
    """The readout is linear: ``kernel("linear")`` if the scheme takes it, else the activation's."""
    try:
        return scheme.kernel_init("linear"), scheme.bias_init("linear")
    except (ValueError, TypeError, NotImplementedError):
        return scheme.kernel_init(activation), scheme.bias_init(activation)


Rule = tree.Rule
# By role (a layer's kernels, Equinox/nnx weights included) or, in a bare tree, by Flax's names.
_KERNELS = ("role:kernel", "role:attention_out", "*kernel")
_BIASES = ("role:bias", "*bias")
# Normalization scales and biases keep their layer's init (the "*bias" above would match them).
_NORMS = Rule(("role:norm_bias", "role:scale"), None, required=False, what="normalization parameters (kept)")


def _per_tensor_rules(scheme: Scheme, s: Structure) -> list:
    kernel, bias = scheme.kernel_init(s.activation), scheme.bias_init(s.activation)
    rules = []
    out_kernel, out_bias = s.readout_patterns()
    if out_kernel:
        k, b = _readout_inits(scheme, s.activation)
        rules += [Rule(out_kernel[0], k, what="readout kernel"), Rule(out_bias[0], b, required=False, what="readout bias")]
    return rules + [_NORMS, Rule(_KERNELS, kernel, what="kernels"), Rule(_BIASES, bias, required=False, what="biases")]


_SCHEMES: dict[str, Scheme] = {}
SCHEMES: Mapping[str, Scheme] = MappingProxyType(_SCHEMES)


def register_scheme(scheme: Scheme) -> Scheme:
    """Adds a scheme to the registry (names are unique) and returns it."""
    if scheme.name in _SCHEMES:
        raise ValueError(f"register_scheme: a scheme named {scheme.name!r} exists already.")
    _SCHEMES[scheme.name] = scheme
    return scheme


def get_scheme(name: str) -> Scheme:
    """The scheme registered under ``name``, or the parametric scheme ``family(arg=value, ...)``
    (:data:`PARAMETRIC_SCHEMES`, e.g. ``"meanfield(sigma_w2=1.5,sigma_b2=0.05)"``); ``ValueError``
    listing the valid names otherwise."""
    if isinstance(name, str) and "(" in name:
        return parametric_scheme(name)
    if isinstance(name, str) and name in _SCHEMES:
        return _SCHEMES[name]
    families = ", ".join(f.signature for f in _PARAMETRIC.values())
    raise ValueError(f"unknown scheme {name!r}; valid choices are {', '.join(map(repr, _SCHEMES))}, or a parametric "
                     f"scheme: {families}.")


def scheme_names() -> tuple[str, ...]:
    """Names of all registered schemes, in registration order."""
    return tuple(_SCHEMES)


def markdown_table(names: tuple[str, ...] | None = None) -> str:
    """The schemes as a Markdown table (name, formula, use, reference), for the docs.

    The README's table is this function's output; a test keeps them in sync.
    """
    rows = ["| scheme | definition | when to use / what goes wrong | source |", "|---|---|---|---|"]
    for name in names or scheme_names():
        s = get_scheme(name)
        cells = (f"`{s.name}`", f"`{s.formula}`", s.description, s.reference)
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)


def _fixed(factory: Callable[[], Initializer]) -> Callable[[str], Initializer]:
    """A kernel that does not depend on the activation: ``factory()`` for every one."""
    return lambda activation: factory()


def _lsuv_step(key: Any, module: Any, variables: Any, batch: Any) -> tuple[Any, Any]:
    """LSUV on the initialized linen model; the scheme's orthogonal kernels are the pre-init."""
    data_dependent = importlib.import_module("jinit.data_dependent")  # loads flax: only when the step runs
    return data_dependent.lsuv(key, module, variables, batch, pre_init=None)


def _biases() -> list:
    return [_NORMS, Rule(_BIASES, basic.zeros(), required=False, what="biases")]


def _readout(s: Structure, init: Initializer) -> list:
    kernel, bias = s.readout_patterns()
    if not kernel:
        return []
    return [Rule(kernel[0], init, what="readout kernel"), Rule(bias[0], basic.zeros(), required=False, what="readout bias")]


def _fixup(s: Structure) -> list:
    kernel, bias = s.readout_patterns()
    rules = tree.fixup_rules(s.blocks, s.branch_layers, kernel + bias or None, others=_KERNELS,
                             scale=gain.gain_for(get_activation(s.activation)) ** 2, multipliers=s.gates or None)
    return rules + _biases()


def _gated(kernel: Callable[[str], Initializer], gate: Callable[[Structure], float]) -> Callable[[Structure], list]:
    """Rules of a gated residual scheme: ``kernel(activation)`` everywhere, the readout
    ``kernel("linear")``, biases 0 and every gate ``gate(structure)``."""

    def rules(s: Structure) -> list:
        value = gate(s)
        gates = Rule(s.gates, basic.zeros() if value == 0 else basic.constant(value), expect=s.blocks,
                     what="residual gates")
        return [gates] + _readout(s, kernel("linear")) + [Rule(_KERNELS, kernel(s.activation), what="kernels")] \
            + _biases()

    return rules


def _gpt2(s: Structure) -> list:
    return tree.gpt2_rules(s.blocks, 0.02, s.residual_outputs, residual_per_block=s.residual_per_block)


def _zero(s: Structure) -> list:
    return [Rule(s.residual_outputs, basic.zeros(), expect=s.blocks * s.residual_per_block,
                 what="residual output projections"),
            Rule(_KERNELS, structured.zero_hadamard(), what="kernels")] + _biases()


def _conv(conv: Callable[[str], Initializer], dense: Callable[[str], Initializer]) -> Callable[[Structure], list]:
    def rules(s: Structure) -> list:
        return ([Rule(s.conv_kernels, conv(s.activation), what="conv kernels")] + _readout(s, dense("linear"))
                + [Rule(_KERNELS, dense(s.activation), required=False, what="dense kernels")] + _biases())

    return rules


def _delta(activation: str) -> Initializer:
    return structured.delta_orthogonal(gain.gain_for(get_activation(activation)))


ISOMETRIC_Q_STAR = 0.01
"""The fixed-point variance of the ``"isometric"`` scheme: about ``1/sqrt(8 L)`` for ``L = 1000`` layers."""


@functools.lru_cache(maxsize=256)
def _critical_point(where: str, activation: str, q_star: float) -> tuple[float, float]:
    """``(sigma_w, sigma_b)`` of the critical point (chi_1 = 1) whose fixed point is ``q_star``
    (:func:`jinit.meanfield.critical_line`); ValueError where the critical line has none, or where
    that point is not the stable one :func:`jinit.meanfield.critical_sigma_w` finds at its sigma_b."""
    line = meanfield.critical_line(activation, [q_star])
    if not line.sigma_b.size:
        raise ValueError(
            f"{where}: the critical line of {activation!r} has no point with q* = {q_star:g} "
            "(sigma_b^2 = q* - sigma_w^2 E[phi(sqrt(q*) z)^2] < 0 there)."
        )
    sigma_b = float(line.sigma_b[0])
    try:
        sigma_w = meanfield.critical_sigma_w(activation, sigma_b)
    except ValueError as err:  # that point is unstable, or the line has no stable point there
        raise ValueError(f"{where}: {err}") from err
    if not math.isclose(sigma_w, float(line.sigma_w[0]), rel_tol=1e-6):
        raise ValueError(
            f"{where}: at sigma_b = {sigma_b:.4g} the stable critical point of {activation!r} has sigma_w = {sigma_w:.6g}, "
            f"not the point with q* = {q_star:g} (sigma_w = {float(line.sigma_w[0]):.6g}): that fixed point is "
            "not the one a deep network settles at; choose another q_star."
        )
    return sigma_w, sigma_b


def _isometric_kernel(activation: str) -> Initializer:
    return meanfield.critical_orthogonal(activation, _critical_point("isometric", activation, ISOMETRIC_Q_STAR)[1])


def _isometric_bias(activation: str) -> Initializer:
    return meanfield.critical_bias(_critical_point("isometric", activation, ISOMETRIC_Q_STAR)[1])


_MODEL_SCHEMES = (
    Scheme(
        "fixup", _fixed(variance.he_normal),
        "last layer of each residual branch and the readout = 0; other branch layers N(0, g^2/fan_in) "
        "L^(-1/(m-1)); other kernels N(0, g^2/fan_in), g = gain of phi; gates 1",
        "Every block starts as the identity and the branches' scale shrinks with depth: deep residual nets train "
        "without normalization.",
        "Zhang, Dauphin & Ma 2019, Sec. 3 (jinit.fixup_rules)", "model",
        model_rules=_fixup, requires=frozenset({"residual"}), excludes=frozenset({"norm"}),
    ),
    Scheme(
        "rezero", _fixed(variance.glorot_uniform),
        "residual gates alpha = 0 (x + alpha f(x)); kernels Glorot uniform; biases 0",
        "Every block starts as the identity; the gates learn how much of each branch to let in. ReZero's "
        "transformers keep Xavier-initialized weights.",
        "Bachlechner et al. 2021 (jinit.rezero_rules)", "model",
        model_rules=_gated(lambda a: variance.glorot_uniform(), lambda s: 0.0), requires=frozenset({"gates"}),
    ),
    Scheme(
        "skipinit", variance.gain_normal,
        "residual gates alpha = 0 (x + alpha f(x)); kernels N(0, g^2/fan_in) (He for ReLU), readout N(0, 1/fan_in); "
        "biases 0",
        "The same zero gate as ReZero with the He-initialized branches of De & Smith's normalization-free ResNets.",
        "De & Smith 2020, Sec. 4 (jinit.rezero_rules)", "model",
        model_rules=_gated(variance.gain_normal, lambda s: 0.0), requires=frozenset({"gates"}),
    ),
    Scheme(
        "gpt2", _fixed(basic.normal),
        "N(0, 0.02^2) everywhere; residual output projections N(0, (0.02/sqrt(N))^2), N = number of residual "
        "writes (2 per transformer block: 0.02/sqrt(2 n_layer)); biases 0",
        "GPT-2's fixed-scale recipe: the residual stream's variance stays O(1) after all additions.",
        "Radford et al. 2019, Sec. 2.3 (jinit.gpt2_rules)", "model",
        model_rules=_gpt2, requires=frozenset({"residual"}),
    ),
    Scheme(
        "zero", _fixed(structured.zero_hadamard),
        "ZerO for residual nets: residual output projections = 0, every other kernel identity / Hadamard "
        "(jinit.zero_hadamard); biases 0",
        "Deterministic and zero-heavy: every block starts as the identity and the stem and readout as "
        "(partial) identities or Hadamard transforms.",
        "Zhao et al. 2022, Algorithms 1-2", "model",
        model_rules=_zero, requires=frozenset({"residual"}), excludes=frozenset({"conv"}),
    ),
    Scheme(
        "delta_orthogonal", _delta,
        "conv kernels: zero except the spatial centre = g H, H orthogonal, g = gain of phi; dense kernels "
        "g Q (readout Q); biases 0",
        "Each conv is an isometry of the channel vector at every position: deep vanilla CNNs keep their "
        "signal (dynamical isometry for tanh at criticality).",
        "Xiao et al. 2018, Algorithm 1", "model",
        model_rules=_conv(_delta, structured.gain_orthogonal), requires=frozenset({"conv"}),
    ),
    Scheme(
        "dirac", _fixed(structured.dirac),
        "conv kernels: the identity (Dirac delta) map of min(in, out) channels, 0 elsewhere; dense kernels "
        "N(0, g^2/fan_in) (readout N(0, 1/fan_in)); biases 0",
        "Every conv starts as the identity on the channels it keeps; channels beyond the input's start at 0.",
        "torch.nn.init.dirac_; Zagoruyko & Komodakis 2017 (DiracNets)", "model",
        model_rules=_conv(lambda a: structured.dirac(), variance.gain_normal), requires=frozenset({"conv"}),
    ),
)


# The built-in schemes, in the order the docs and the benchmark list them. Each
# kernel is a public factory of its family module: ``_fixed(f)`` for a factory
# without arguments, ``f`` itself for one that takes the activation's name.
# Not registered: delta_orthogonal (a 2-D kernel would just be orthogonal) and
# identity (every square hidden layer the identity: no diversity between units),
# which are not sensible kernels for the benchmark's dense MLP.
_BUILTIN = (
    Scheme(
        "zeros", _fixed(basic.zeros), "W = 0",
        "All units identical (symmetry never breaks); with ReLU no gradient reaches the weights.",
        "Write-ups' zero init", "basic", writeup=True,
    ),
    Scheme(
        "normal", _fixed(basic.normal), "W ~ N(0, 1)",
        "Ignores width: activations grow by ~sqrt(n) per layer (tanh saturates, ReLU explodes).",
        "Write-ups' mean-zero random init", "basic", writeup=True,
    ),
    Scheme(
        "uniform_small", _fixed(basic.uniform_small), "W ~ U[-0.01, 0.01)",
        "Too small for deep nets: the signal shrinks by ~0.006*sqrt(n) per layer and vanishes.",
        "Write-ups' small-range uniform init", "basic", writeup=True,
    ),
    Scheme(
        "uniform_large", _fixed(basic.uniform_large), "W ~ U[-1, 1)",
        "Too large: Var = 1/3 per weight, activations explode or saturate with depth.",
        "Write-ups' large-range uniform init", "basic", writeup=True,
    ),
    Scheme(
        "normal_nonzero_mean", _fixed(basic.normal_nonzero_mean), "W ~ N(0.1, 0.1^2)",
        "A non-zero mean adds a rank-one component: all units move together and the mean explodes with width.",
        "Write-ups' non-zero-mean random init", "basic", writeup=True,
    ),
    Scheme(
        "glorot_standard", _fixed(variance.glorot_standard), "W ~ U[-1/sqrt(fan_in), 1/sqrt(fan_in))",
        "The 'standard' heuristic Glorot & Bengio compare against: Var = 1/(3 fan_in), shrinks the signal.",
        "Glorot & Bengio 2010, eq. 1", "variance",
    ),
    Scheme(
        "glorot_normal", _fixed(variance.glorot_normal), "W ~ N(0, 2/(fan_in + fan_out))",
        "Balances forward and backward variance for linear/tanh units.",
        "Glorot & Bengio 2010", "variance", writeup=True,
    ),
    Scheme(
        "glorot_uniform", _fixed(variance.glorot_uniform), "W ~ U[+-sqrt(6/(fan_in + fan_out))]",
        "Glorot's 'normalized initialization'; Keras' default.",
        "Glorot & Bengio 2010, eq. 16", "variance", writeup=True,
    ),
    Scheme(
        "he_normal", _fixed(variance.he_normal), "W ~ N(0, 2/fan_in)",
        "Preserves the forward second moment through ReLU; the default for ReLU nets.",
        "He et al. 2015, eq. 10", "variance", writeup=True,
    ),
    Scheme(
        "he_uniform", _fixed(variance.he_uniform), "W ~ U[+-sqrt(6/fan_in)]",
        "He variance with a bounded distribution.",
        "He et al. 2015", "variance", writeup=True,
    ),
    Scheme(
        "lecun_normal", _fixed(variance.lecun_normal), "W ~ N(0, 1/fan_in)",
        "Unit forward variance for linear units; the SELU recipe; Flax's default (truncated there).",
        "LeCun et al. 1998", "variance", writeup=True,
    ),
    Scheme(
        "lecun_uniform", _fixed(variance.lecun_uniform), "W ~ U[+-sqrt(3/fan_in)]",
        "LeCun variance with a bounded distribution.",
        "LeCun et al. 1998", "variance",
    ),
    Scheme(
        "gain_normal", variance.gain_normal, "W ~ N(0, g^2/fan_in), g = 1/sqrt(E[phi(z)^2])",
        "Exact second-moment preservation for any activation (He for ReLU, ~1.59^2 for tanh).",
        "jinit.gain_for; generalizes He et al. 2015", "variance",
    ),
    Scheme(
        "critical", meanfield.critical_orthogonal,
        "W = sigma_w Q, Q Haar orthogonal, b = 0; "
        "sigma_w: chi_1 = sigma_w^2 E[phi'(sqrt(q*) z)^2] = 1 at sigma_b = 0",
        "Edge of chaos: correlations propagate over unbounded depth (xi_c = inf); tanh sigma_w = 1, relu sqrt(2). "
        "Orthogonal weights also give tanh dynamical isometry. Raises for activations with no critical point at "
        "sigma_b = 0 (gelu, silu, softplus: use jinit.meanfield.critical_normal(phi, sigma_b)).",
        "Schoenholz et al. 2017; Pennington et al. 2017", "meanfield",
    ),
    Scheme(
        "isometric", _isometric_kernel,
        "W = sigma_w Q, Q Haar orthogonal, b ~ N(0, sigma_b^2); (sigma_w, sigma_b) the critical point "
        "(chi_1 = 1) with fixed point q* = 0.01: sigma_w^2 = 1/E[phi'(sqrt(q*) z)^2], "
        "sigma_b^2 = q* - sigma_w^2 E[phi(sqrt(q*) z)^2] (tanh: sigma_w = 1.00981, sigma_b = 0.00112)",
        "Dynamical isometry for very deep vanilla nets: on the critical line with a small q* > 0 the variance "
        "settles at a stable q* and, with orthogonal weights, the spread of the squared singular values of "
        "the input-output Jacobian grows like L (sigma_w^4 E[phi'^4] - 1), 7e-4 per tanh layer at q* = 0.01 "
        "(about 0.7 at L = 1000). Trains a 1000-layer tanh MLP (preset depth1000). Relu: the He-orthogonal "
        "point (sigma_w = sqrt 2, sigma_b = 0); raises where the critical line has no stable point with q* = 0.01 "
        "(gelu, silu: unstable there; sigmoid, softplus: none).",
        "Pennington, Schoenholz & Ganguli 2017, Sec. 2-3; critical line: Poole et al. 2016", "meanfield",
        bias=_isometric_bias,
    ),
    Scheme(
        "orthogonal", structured.gain_orthogonal,
        "W = g Q, Q Haar orthogonal (Householder reflectors drawn from N(0,1), sign-corrected: the law of "
        "the sign-corrected QR of N(0,1)), g = 1/sqrt(E[phi(z)^2])",
        "All singular values equal g: the linear map preserves norms exactly and g restores the second "
        "moment through phi (sqrt 2 for ReLU); deep linear nets then learn in depth-independent time. "
        "Kernel jinit.gain_orthogonal(phi); jinit.orthogonal() alone has g = 1.",
        "Saxe et al. 2014; sampler Stewart 1980, Mezzadri 2007; gain as jinit.gain_for", "structured",
    ),
    Scheme(
        "sparse", _fixed(structured.sparse_capped),
        "k = min(15, fan_in) non-zero incoming weights per unit, W_ij ~ N(0, 1); all others 0",
        "Martens' init for deep tanh/logistic nets trained with Hessian-free optimization: width-independent "
        "scale. Not variance-preserving: Var(out) ~ 15 E[x^2] per layer, so ReLU/linear stacks explode "
        "(x7.5 per ReLU layer) and tanh units saturate.",
        "Martens 2010, Sec. 5", "structured",
    ),
    Scheme(
        "zero_hadamard", _fixed(structured.zero_hadamard),
        "W = I (partial identity) if fan_out <= fan_in, else W_ij = (-1)^popcount(i&j) / 2^(k/2), "
        "k = ceil(log2 fan_out)",
        "ZerO: deterministic, only zeros, ones and +-2^(-k/2); square hidden layers start as the identity "
        "and expanding layers as a Hadamard transform, so the net starts near a (rectified) linear map; "
        "designed for residual nets.",
        "Zhao et al. 2022, Algorithm 1", "structured",
    ),
    Scheme(
        "lsuv", _fixed(structured.orthogonal),
        "W = orthogonal Q; then per layer in forward order W <- W / sqrt(Var(out)) on one batch until "
        "|Var(out) - 1| < 0.1 (at most 10 rescalings)",
        "Data-dependent unit pre-activation variance for any activation; model-level: run "
        "jinit.data_dependent.lsuv after init. Relies on one batch's statistics; dead or constant layers "
        "cannot be rescaled (ValueError).",
        "Mishkin & Matas 2016, Algorithm 1", "data_dependent", post_init=_lsuv_step,
    ),
)

for _scheme in _BUILTIN + _MODEL_SCHEMES:
    register_scheme(_scheme)
del _scheme


# --- parametric schemes ------------------------------------------------------------------------
#
# A parametric scheme is a scheme with numbers in its name: ``get_scheme("meanfield(sigma_w2=1.5,
# sigma_b2=0.05)")`` builds it on demand, so a benchmark can sweep a scheme's parameters (the
# trainability phase diagram sweeps sigma_w^2). The name is canonicalized (arguments in declared
# order, defaults dropped, numbers to 12 significant digits), and the scheme is built from the
# canonical name: one name, one distribution.

_CALL = re.compile(r"^\s*([A-Za-z_]\w*)\s*\((.*)\)\s*$", re.DOTALL)


@dataclass(frozen=True)
class Param:
    """One argument of a :class:`ParametricScheme`: a number (``> 0`` when ``positive``, else
    ``>= 0``) or, with ``choices``, one of those names. ``default=None``: required."""

    doc: str
    default: Any = None
    choices: tuple[str, ...] = ()
    positive: bool = False


@dataclass(frozen=True)
class ParametricScheme:
    """A family of schemes named ``name(arg=value, ...)``; :meth:`scheme` builds one.

    Attributes:
      name: the family's name (the part before the parenthesis).
      params: argument name -> :class:`Param`, in canonical order.
      build: ``(canonical name, **arguments) -> Scheme``.
      summary: one line for listings.
    """

    name: str
    params: Mapping[str, Param]
    build: Callable[..., Scheme]
    summary: str

    @property
    def signature(self) -> str:
        """``name(arg, arg=default, ...)`` for messages and listings."""
        args = [k if p.default is None else f"{k}={p.default}" for k, p in self.params.items()]
        return f"{self.name}({', '.join(args)})"

    def _value(self, arg: str, text: Any) -> Any:
        p = self.params[arg]
        if p.choices:
            return check_choice(self.name, arg, str(text).strip(), p.choices)
        try:
            x = float(text)
        except (TypeError, ValueError):
            x = math.nan
        if not math.isfinite(x) or x < 0 or (p.positive and x == 0):
            raise ValueError(f"{self.name}: invalid {arg}={text!r}; expected a finite number "
                             f"{'> 0' if p.positive else '>= 0'} ({p.doc}).")
        return float(f"{x:.12g}")  # the value the canonical name spells

    def canonical(self, **args: Any) -> tuple[str, dict]:
        """``(canonical name, complete arguments)``; ValueError naming a bad argument."""
        unknown = sorted(set(args) - set(self.params))
        if unknown:
            raise ValueError(f"{self.name}: unknown argument(s) {', '.join(map(repr, unknown))}; valid arguments are "
                             f"{', '.join(self.params)} (signature {self.signature}).")
        values = {}
        for arg, p in self.params.items():
            if arg not in args and p.default is None:
                raise ValueError(f"{self.name}: missing argument {arg!r} ({p.doc}); signature {self.signature}.")
            values[arg] = self._value(arg, args.get(arg, p.default))
        shown = [f"{k}={v:.12g}" if isinstance(v, float) else f"{k}={v}"
                 for k, v in values.items() if self.params[k].default is None or v != self._value(k, self.params[k].default)]
        return f"{self.name}({','.join(shown)})", values

    def scheme(self, **args: Any) -> Scheme:
        """The scheme of these arguments (values as numbers or strings)."""
        name, values = self.canonical(**args)
        return _build_parametric(self.name, name, tuple(values.items()))


_PARAMETRIC: dict[str, ParametricScheme] = {}
PARAMETRIC_SCHEMES: Mapping[str, ParametricScheme] = MappingProxyType(_PARAMETRIC)


def register_parametric_scheme(family: ParametricScheme) -> ParametricScheme:
    """Adds a parametric scheme family and returns it. Its name may also be a plain scheme's
    (``critical`` and ``critical(q_star=...)``): the parenthesis tells them apart."""
    if family.name in _PARAMETRIC:
        raise ValueError(f"register_parametric_scheme: the name {family.name!r} is taken.")
    _PARAMETRIC[family.name] = family
    return family


@functools.lru_cache(maxsize=1024)
def _build_parametric(family: str, name: str, values: tuple) -> Scheme:
    return _PARAMETRIC[family].build(name, **dict(values))


def _parse_call(text: str) -> tuple[ParametricScheme, dict[str, str]]:
    m = _CALL.match(text)
    if m is None:
        raise ValueError(f"invalid parametric scheme {text!r}; write family(arg=value, ...), e.g. "
                         "'meanfield(sigma_w2=1.5,sigma_b2=0.05)'.")
    family = _PARAMETRIC[check_choice(None, "parametric scheme", m.group(1), _PARAMETRIC)]
    args: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in m.group(2).split(","))):
        key, eq, value = (x.strip() for x in part.partition("="))
        if not eq or not key or not value:
            raise ValueError(f"{family.name}: argument {part!r} in {text!r} is not arg=value; signature "
                             f"{family.signature}.")
        if key in args:
            raise ValueError(f"{family.name}: argument {key!r} given twice in {text!r}.")
        args[key] = value
    return family, args


def parametric_scheme(text: str) -> Scheme:
    """The scheme named by ``text`` = ``family(arg=value, ...)`` (a :data:`PARAMETRIC_SCHEMES` family).

    Example:
      >>> import jinit
      >>> jinit.get_scheme("meanfield( sigma_b2=0.05, sigma_w2=1.50 )").name
      'meanfield(sigma_w2=1.5,sigma_b2=0.05)'
    """
    family, args = _parse_call(text)
    return family.scheme(**args)


def expand_scheme_grid(text: str) -> list[str]:
    """The canonical names of a parametric scheme with value lists, ``a|b|...`` for an argument
    (the product over every listed argument, in order); a name without lists as itself.

    Example:
      >>> expand_scheme_grid("meanfield(sigma_w2=1|2,sigma_b2=0.05)")
      ['meanfield(sigma_w2=1,sigma_b2=0.05)', 'meanfield(sigma_w2=2,sigma_b2=0.05)']
    """
    if "(" not in text or "|" not in text:
        return [text]
    family, args = _parse_call(text)
    keys = list(args)
    grids = [[v.strip() for v in args[k].split("|")] for k in keys]
    if any(not v for g in grids for v in g):
        raise ValueError(f"{family.name}: an empty value in a list a|b|... of {text!r}.")
    return list(dict.fromkeys(family.canonical(**dict(zip(keys, combo)))[0] for combo in itertools.product(*grids)))


def parametric_arguments(name: str) -> tuple[str, dict[str, Any]] | None:
    """``(family, complete arguments)`` of a parametric scheme's name, None for any other name.

    Example:
      >>> parametric_arguments("meanfield(sigma_w2=2)")
      ('meanfield', {'sigma_w2': 2.0, 'sigma_b2': 0.0, 'weights': 'gaussian'})
    """
    if "(" not in name:
        return None
    family, args = _parse_call(name)
    return family.name, family.canonical(**args)[1]


def split_scheme_list(text: str) -> list[str]:
    """Splits a comma-separated list of scheme names at the commas outside parentheses.

    Example:
      >>> split_scheme_list("he_normal, meanfield(sigma_w2=2,sigma_b2=0.05)")
      ['he_normal', 'meanfield(sigma_w2=2,sigma_b2=0.05)']
    """
    items, depth, cur = [], 0, []
    for ch in text:
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            items.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    items.append("".join(cur))
    return [x.strip() for x in items if x.strip()]


_WEIGHTS = ("gaussian", "orthogonal", "delta")
_WEIGHTS_DOC = ("the kernels: gaussian N(0, sigma_w^2/fan_in) (conv: fan_in = receptive field x in-channels), "
                "orthogonal sigma_w Q, or delta (conv kernels delta-orthogonal sigma_w H at the centre, dense "
                "kernels sigma_w Q)")


def _weights_init(weights: str, sigma_w: float, conv: bool = False) -> Initializer:
    """A kernel of standard deviation scale ``sigma_w`` (see :data:`_WEIGHTS_DOC`)."""
    if weights == "gaussian":
        return variance.variance_scaling(sigma_w**2, "fan_in", "normal", name="meanfield_normal")
    if weights == "delta" and conv:
        return structured.delta_orthogonal(sigma_w)
    return structured.orthogonal(scale=sigma_w)


def _sigma_rules(sigma: Callable[[str], tuple[float, float]], weights: str) -> Callable[[Structure], list]:
    """Rules of a (sigma_w, sigma_b) scheme on a network with conv kernels (weights = delta)."""

    def rules(s: Structure) -> list:
        (sw, sb), (sw_out, sb_out) = sigma(s.activation), sigma("linear")
        kernel, bias = s.readout_patterns()
        out = [Rule(kernel[0], _weights_init(weights, sw_out), what="readout kernel"),
               Rule(bias[0], meanfield.critical_bias(sb_out), required=False, what="readout bias")] if kernel else []
        return ([Rule(s.conv_kernels, _weights_init(weights, sw, conv=True), what="conv kernels")] + out
                + [_NORMS, Rule(_KERNELS, _weights_init(weights, sw), required=False, what="dense kernels"),
                   Rule(_BIASES, meanfield.critical_bias(sb), required=False, what="biases")])

    return rules


def _sigma_scheme(name: str, sigma: Callable[[str], tuple[float, float]], weights: str, formula: str,
                  description: str, reference: str) -> Scheme:
    """A scheme whose kernels have scale sigma_w and biases N(0, sigma_b^2), ``sigma(activation)``."""
    kernel = lambda a: _weights_init(weights, sigma(a)[0], conv=weights == "delta")  # noqa: E731
    bias = lambda a: meanfield.critical_bias(sigma(a)[1])  # noqa: E731
    if weights != "delta":
        return Scheme(name, kernel, formula, description, reference, "meanfield", bias=bias)
    return Scheme(name, kernel, formula, description, reference, "meanfield", bias=bias,
                  model_rules=_sigma_rules(sigma, weights), requires=frozenset({"conv"}))


def _meanfield_family(name: str, sigma_w2: float, sigma_b2: float, weights: str) -> Scheme:
    sigma = (math.sqrt(sigma_w2), math.sqrt(sigma_b2))
    return _sigma_scheme(
        name, lambda a: sigma, weights,
        f"every layer (the readout too): kernels {weights}, sigma_w^2 = {sigma_w2:g} (variance sigma_w^2/fan_in), "
        f"biases N(0, {sigma_b2:g})",
        "A point (sigma_w^2, sigma_b^2) of the mean-field phase diagram, for sweeps: ordered (chi_1 < 1), critical "
        "or chaotic (chi_1 > 1), with correlation depth xi_c (jinit.meanfield.analyze); networks deeper than about "
        "6 xi_c do not train.",
        "Schoenholz et al. 2017 (parametric: meanfield(sigma_w2, sigma_b2=0, weights=gaussian))",
    )


def _critical_family(name: str, q_star: float, weights: str) -> Scheme:
    return _sigma_scheme(
        name, lambda a: _critical_point(name, a, q_star), weights,
        f"kernels {weights} with (sigma_w, sigma_b) the critical point (chi_1 = 1) whose fixed point is "
        f"q* = {q_star:g}: sigma_w^2 = 1/E[phi'(sqrt(q*) z)^2], sigma_b^2 = q* - sigma_w^2 E[phi(sqrt(q*) z)^2]; "
        "the readout at the point of 'linear' (sigma_w = 1, sigma_b = 0)",
        "The critical line parameterised by q*: a small q* keeps a deep network near its linear regime "
        "(dynamical isometry with orthogonal or delta-orthogonal kernels); critical(q_star=0.01) is 'isometric'.",
        "Poole et al. 2016; Pennington et al. 2017; Xiao et al. 2018 (parametric: critical(q_star, "
        "weights=orthogonal))",
    )


for _family in (
    ParametricScheme(
        "meanfield",
        {"sigma_w2": Param("the kernels' variance times fan_in", positive=True),
         "sigma_b2": Param("the biases' variance", default=0.0),
         "weights": Param(_WEIGHTS_DOC, default="gaussian", choices=_WEIGHTS)},
        _meanfield_family,
        "every layer at a given (sigma_w^2, sigma_b^2): a point of the mean-field phase diagram",
    ),
    ParametricScheme(
        "critical",
        {"q_star": Param("the fixed point of the variance map on the critical line", positive=True),
         "weights": Param(_WEIGHTS_DOC, default="orthogonal", choices=_WEIGHTS)},
        _critical_family,
        "the critical point (chi_1 = 1) of the network's activation with fixed point q*",
    ),
):
    register_parametric_scheme(_family)
del _family
