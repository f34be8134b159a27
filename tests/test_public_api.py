"""The public surface of ``jinit`` is pinned: adding or removing a name is a deliberate change."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import jinit

PUBLIC = sorted(
    """
    ACTIVATIONS Audit AuditRow Initializer LSUVLayer Layout LeafSpec PARAMETRIC_SCHEMES ParametricScheme
    RESIDUAL_OUTPUTS Rule SCHEMES Scheme SchemeNotApplicable Structure
    SignalReport audit calculate_gain compute_fans constant critical_bias critical_normal critical_orthogonal
    critical_sigma_w delta_orthogonal dirac fixup_rules flax_rules gain_for gain_normal gain_orthogonal
    generators get_activation get_default_rng get_scheme glorot_normal glorot_standard glorot_uniform
    gpt2_rules haiku_rules he_normal he_uniform identity init jacobian_spectrum kaiming_normal kaiming_uniform
    keras_rules lecun_normal lecun_uniform linen_layouts lsuv match_rules model_layouts normal
    normal_nonzero_mean ones orthogonal plot_signal_propagation register_parametric_scheme register_scheme reinit rezero_rules
    scheme_names set_default_rng signal_propagation skipinit_rules sparse sparse_capped sparse_fraction
    torch_rules tree_paths truncated_normal truncated_normal_std uniform uniform_large uniform_small
    variance_scaling xavier_normal xavier_uniform zero_hadamard zeros
    """.split()
)


def test_public_names_are_pinned():
    assert sorted(jinit.__all__) == PUBLIC
    assert len(set(jinit.__all__)) == len(jinit.__all__)
    for name in PUBLIC:
        assert getattr(jinit, name) is not None


def test_docs_helpers_are_not_public():
    for name in ("markdown_table", "centre_index", "MODES", "DISTRIBUTIONS"):
        assert name not in jinit.__all__ and not hasattr(jinit, name), name


def test_one_version_source():
    assert importlib.metadata.version("jinit") == jinit.__version__


def test_import_jinit_does_not_import_linen_until_needed():
    code = (
        "import sys, jinit; before = 'flax.linen' in sys.modules; jinit.lsuv; "
        "print(before, 'flax.linen' in sys.modules, jinit.signal_propagation.__module__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True", "jinit.diagnostics"]
