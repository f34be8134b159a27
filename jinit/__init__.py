"""jinit: neural-network weight initializers for JAX and Flax.

Per-tensor initializers follow the :class:`jax.nn.initializers.Initializer`
protocol, ``init(key, shape, dtype=jnp.float32, out_sharding=None)``, and are
built by factories, so they pass straight in as ``kernel_init=`` / ``bias_init=``:

  >>> import jax, jinit
  >>> import flax.linen as nn
  >>> layer = nn.Dense(64, kernel_init=jinit.he_normal(), bias_init=jinit.zeros())
  >>> params = layer.init(jax.random.key(0), jax.numpy.ones((1, 32)))
  >>> params["params"]["kernel"].shape
  (32, 64)

Families, one module each: :mod:`jinit.basic` (fills, fixed-scale
distributions), :mod:`jinit.variance` (LeCun, Glorot, He), :mod:`jinit.gain`,
:mod:`jinit.structured` (orthogonal, delta-orthogonal, identity/dirac, sparse,
ZerO), :mod:`jinit.meanfield` (criticality), :mod:`jinit.rng` /
:mod:`jinit.philox` (generators) and :mod:`jinit.registry` (named schemes).
Whole models: :mod:`jinit.tree` (:func:`init`, :func:`reinit`, recipes),
:mod:`jinit.layout` and :mod:`jinit.models` (how a layer calls its
initializers), :mod:`jinit.auditing`, :mod:`jinit.porting` (other frameworks'
defaults), :mod:`jinit.data_dependent` (LSUV) and :mod:`jinit.diagnostics`
(signal propagation, Jacobian spectra). The last two import Flax's linen and
are loaded on first use, so ``import jinit`` stays light.
"""

__version__ = "0.3.0"

from jinit import (
    activations as activations,
    auditing as auditing,
    basic as basic,
    gain as gain,
    layout as layout,
    meanfield as meanfield,
    models as models,
    philox as philox,
    porting as porting,
    registry as registry,
    rng as rng,
    structured as structured,
    tree as tree,
    variance as variance,
)
from jinit._core import Initializer as Initializer
from jinit.activations import ACTIVATIONS as ACTIVATIONS, get_activation as get_activation
from jinit.auditing import Audit as Audit, AuditRow as AuditRow, audit as audit
from jinit.basic import (
    constant as constant,
    normal as normal,
    normal_nonzero_mean as normal_nonzero_mean,
    ones as ones,
    truncated_normal as truncated_normal,
    truncated_normal_std as truncated_normal_std,
    uniform as uniform,
    uniform_large as uniform_large,
    uniform_small as uniform_small,
    zeros as zeros,
)
from jinit.gain import calculate_gain as calculate_gain, gain_for as gain_for
from jinit.layout import Layout as Layout, LeafSpec as LeafSpec
from jinit.meanfield import (
    critical_bias as critical_bias,
    critical_normal as critical_normal,
    critical_orthogonal as critical_orthogonal,
    critical_sigma_w as critical_sigma_w,
)
from jinit.models import linen_layouts as linen_layouts, model_layouts as model_layouts
from jinit.porting import (
    flax_rules as flax_rules,
    haiku_rules as haiku_rules,
    keras_rules as keras_rules,
    torch_rules as torch_rules,
)
from jinit.registry import (
    PARAMETRIC_SCHEMES as PARAMETRIC_SCHEMES,
    ParametricScheme as ParametricScheme,
    SCHEMES as SCHEMES,
    Scheme as Scheme,
    SchemeNotApplicable as SchemeNotApplicable,
    Structure as Structure,
    get_scheme as get_scheme,
    register_parametric_scheme as register_parametric_scheme,
    register_scheme as register_scheme,
    scheme_names as scheme_names,
)
from jinit.rng import generators as generators, get_default_rng as get_default_rng, set_default_rng as set_default_rng
from jinit.structured import (
    delta_orthogonal as delta_orthogonal,
    dirac as dirac,
    gain_orthogonal as gain_orthogonal,
    identity as identity,
    orthogonal as orthogonal,
    sparse as sparse,
    sparse_capped as sparse_capped,
    sparse_fraction as sparse_fraction,
    zero_hadamard as zero_hadamard,
)
from jinit.tree import (
    RESIDUAL_OUTPUTS as RESIDUAL_OUTPUTS,
    Rule as Rule,
    fixup_rules as fixup_rules,
    gpt2_rules as gpt2_rules,
    init as init,
    match_rules as match_rules,
    reinit as reinit,
    rezero_rules as rezero_rules,
    skipinit_rules as skipinit_rules,
    tree_paths as tree_paths,
)
from jinit.variance import (
    compute_fans as compute_fans,
    gain_normal as gain_normal,
    glorot_normal as glorot_normal,
    glorot_standard as glorot_standard,
    glorot_uniform as glorot_uniform,
    he_normal as he_normal,
    he_uniform as he_uniform,
    kaiming_normal as kaiming_normal,
    kaiming_uniform as kaiming_uniform,
    lecun_normal as lecun_normal,
    lecun_uniform as lecun_uniform,
    variance_scaling as variance_scaling,
    xavier_normal as xavier_normal,
    xavier_uniform as xavier_uniform,
)

# Loaded on first use (they import flax.linen): name -> module.
_LAZY = {
    "data_dependent": None,
    "diagnostics": None,
    "kernel_shaping": None,
    "parametrization": None,
    "spectra": None,
    "lsuv": "data_dependent",
    "LSUVLayer": "data_dependent",
    "signal_propagation": "diagnostics",
    "jacobian_spectrum": "diagnostics",
    "plot_signal_propagation": "diagnostics",
    "SignalReport": "diagnostics",
}


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module 'jinit' has no attribute {name!r}")
    import importlib

    module = importlib.import_module(f"jinit.{_LAZY[name] or name}")
    value = module if _LAZY[name] is None else getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    # per-tensor initializers
    "Initializer",
    "zeros", "ones", "constant", "normal", "uniform", "truncated_normal", "truncated_normal_std",
    "uniform_small", "uniform_large", "normal_nonzero_mean",
    "variance_scaling", "compute_fans", "glorot_normal", "glorot_uniform", "glorot_standard",
    "xavier_normal", "xavier_uniform", "he_normal", "he_uniform", "kaiming_normal", "kaiming_uniform",
    "lecun_normal", "lecun_uniform", "gain_normal",
    "calculate_gain", "gain_for",
    "orthogonal", "gain_orthogonal", "delta_orthogonal", "identity", "dirac", "sparse", "sparse_capped",
    "sparse_fraction", "zero_hadamard",
    "critical_normal", "critical_orthogonal", "critical_bias", "critical_sigma_w",
    "generators", "get_default_rng", "set_default_rng",
    # named schemes
    "Scheme", "Structure", "SchemeNotApplicable", "SCHEMES", "register_scheme", "get_scheme", "scheme_names", "ACTIVATIONS", "get_activation",
    "ParametricScheme", "PARAMETRIC_SCHEMES", "register_parametric_scheme",
    # whole models
    "init", "reinit", "Rule", "LeafSpec", "Layout", "tree_paths", "match_rules", "linen_layouts", "model_layouts",
    "RESIDUAL_OUTPUTS", "gpt2_rules", "fixup_rules", "rezero_rules", "skipinit_rules",
    "torch_rules", "keras_rules", "flax_rules", "haiku_rules",
    "audit", "Audit", "AuditRow",
    "lsuv", "LSUVLayer", "signal_propagation", "jacobian_spectrum", "plot_signal_propagation", "SignalReport",
]
