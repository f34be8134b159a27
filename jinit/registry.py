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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from jinit import basic, meanfield, structured, variance
from jinit._core import Initializer, check_choice
from jinit.activations import ACTIVATIONS, get_activation

__all__ = [
    "Scheme",
    "register_scheme",
    "get_scheme",
    "scheme_names",
    "markdown_table",
    "SCHEMES",
    "ACTIVATIONS",
    "get_activation",
]


def _zeros(activation: str) -> Initializer:
    return basic.zeros()


@dataclass(frozen=True)
class Scheme:
    """A named initialization scheme.

    Attributes:
      name: registry key.
      kernel: ``activation name -> Initializer`` for kernels.
      formula: the definition, in plain text.
      description: when to use it, or what goes wrong with it.
      reference: the paper or source.
      family: ``"basic"``, ``"variance"``, ``"structured"``, ``"data_dependent"``
        or ``"meanfield"``.
      bias: ``activation name -> Initializer`` for biases (zeros by default).
      writeup: whether the common write-ups name this scheme.
      model_level: whether the scheme also needs a whole-model step after the
        per-tensor init (e.g. LSUV).
    """

    name: str
    kernel: Callable[[str], Initializer]
    formula: str
    description: str
    reference: str
    family: str
    bias: Callable[[str], Initializer] = field(default=_zeros)
    writeup: bool = False
    model_level: bool = False

    def kernel_init(self, activation: str = "relu") -> Initializer:
        get_activation(activation)
        return self.kernel(activation)

    def bias_init(self, activation: str = "relu") -> Initializer:
        get_activation(activation)
        return self.bias(activation)


_SCHEMES: dict[str, Scheme] = {}
SCHEMES: Mapping[str, Scheme] = MappingProxyType(_SCHEMES)


def register_scheme(scheme: Scheme) -> Scheme:
    """Adds a scheme to the registry (names are unique) and returns it."""
    if scheme.name in _SCHEMES:
        raise ValueError(f"register_scheme: a scheme named {scheme.name!r} exists already.")
    _SCHEMES[scheme.name] = scheme
    return scheme


def get_scheme(name: str) -> Scheme:
    """The scheme registered under ``name``; ``ValueError`` listing the valid names otherwise."""
    return _SCHEMES[check_choice(None, "scheme", name, _SCHEMES)]


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
        "Mishkin & Matas 2016, Algorithm 1", "data_dependent", model_level=True,
    ),
)

for _scheme in _BUILTIN:
    register_scheme(_scheme)
del _scheme
