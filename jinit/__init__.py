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
ZerO), :mod:`jinit.tree` (whole-model rules: GPT-2, Fixup, ReZero),
:mod:`jinit.data_dependent` (LSUV), :mod:`jinit.meanfield` (criticality),
:mod:`jinit.diagnostics` (signal propagation, Jacobian spectra),
:mod:`jinit.rng` / :mod:`jinit.philox` (generators) and :mod:`jinit.registry`
(named schemes).
"""

from jinit import (
    auditing,
    basic,
    data_dependent,
    layout,
    models,
    porting,
    diagnostics,
    gain,
    meanfield,
    philox,
    registry,
    rng,
    structured,
    tree,
    variance,
)
from jinit._core import Initializer
from jinit.basic import *  # noqa: F403
from jinit.data_dependent import LSUVLayer, lsuv
from jinit.diagnostics import SignalReport, jacobian_spectrum, plot_signal_propagation, signal_propagation
from jinit.gain import *  # noqa: F403
from jinit.meanfield import critical_bias, critical_normal, critical_orthogonal, critical_sigma_w
from jinit.registry import *  # noqa: F403
from jinit.rng import generators, get_default_rng, set_default_rng
from jinit.structured import *  # noqa: F403
from jinit.auditing import Audit, AuditRow, audit
from jinit.layout import Layout, LeafSpec
from jinit.models import linen_layouts, model_layouts
from jinit.porting import flax_rules, haiku_rules, keras_rules, torch_rules
from jinit.tree import (
    RESIDUAL_OUTPUTS,
    Rule,
    fixup_rules,
    gpt2_rules,
    init,
    match_rules,
    reinit,
    rezero_rules,
    skipinit_rules,
    tree_paths,
)
from jinit.variance import *  # noqa: F403

__version__ = "0.2.0"

__all__ = (
    ["Initializer", "generators", "get_default_rng", "set_default_rng"]
    + basic.__all__
    + variance.__all__
    + gain.__all__
    + structured.__all__
    + ["init", "reinit", "Rule", "LeafSpec", "Layout", "tree_paths", "match_rules", "RESIDUAL_OUTPUTS"]
    + ["linen_layouts", "model_layouts", "audit", "Audit", "AuditRow"]
    + ["gpt2_rules", "fixup_rules", "rezero_rules", "skipinit_rules"]
    + ["torch_rules", "keras_rules", "flax_rules", "haiku_rules"]
    + ["lsuv", "LSUVLayer"]
    + ["critical_normal", "critical_orthogonal", "critical_bias", "critical_sigma_w"]
    + ["signal_propagation", "jacobian_spectrum", "plot_signal_propagation", "SignalReport"]
    + registry.__all__
)
