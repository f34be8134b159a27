"""The scheme registry (jinit.registry) and the activation table (jinit.activations):
module structure, re-exports, and that every scheme's kernel is its family's named factory."""

from __future__ import annotations

import ast
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit
from jinit import activations, basic, meanfield, registry, structured, variance

KEY = jax.random.key(0)
SHAPE = (24, 16)


def _jinit_imports(module) -> set[str]:
    """The jinit modules ``module`` imports, anywhere in its source."""
    found = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jinit"):
            parts = node.module.split(".")
            found |= {parts[1]} if len(parts) > 1 else {alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[1] for a in node.names if a.name.startswith("jinit.")}
    return found


def test_no_import_cycle_between_registry_and_meanfield():
    assert "meanfield" in _jinit_imports(registry) and "activations" in _jinit_imports(registry)
    assert "registry" not in _jinit_imports(meanfield)
    assert not _jinit_imports(activations) & {"registry", "meanfield", "basic", "variance", "structured"}
    for module in (basic, variance, structured, meanfield, activations):
        assert "registry" not in _jinit_imports(module), module.__name__


def test_registry_imports_only_at_the_top_and_has_no_fallback():
    source = inspect.getsource(registry)
    tree = ast.parse(source)
    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    every = [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert every == top
    first_other = next(i for i, n in enumerate(tree.body[1:], 1) if not isinstance(n, (ast.Import, ast.ImportFrom)))
    assert all(tree.body.index(n) < first_other for n in top)
    assert "ImportError" not in source
    assert "without jinit.structured" not in jinit.registry.markdown_table()


def test_activation_table_is_reexported():
    assert registry.ACTIVATIONS is activations.ACTIVATIONS is jinit.ACTIVATIONS
    assert registry.get_activation is activations.get_activation is jinit.get_activation
    assert jinit.get_activation("tanh") is jnp.tanh


NAMED = {
    "zeros": basic.zeros,
    "normal": basic.normal,
    "uniform_small": basic.uniform_small,
    "uniform_large": basic.uniform_large,
    "normal_nonzero_mean": basic.normal_nonzero_mean,
    "glorot_standard": variance.glorot_standard,
    "glorot_normal": variance.glorot_normal,
    "glorot_uniform": variance.glorot_uniform,
    "he_normal": variance.he_normal,
    "he_uniform": variance.he_uniform,
    "lecun_normal": variance.lecun_normal,
    "lecun_uniform": variance.lecun_uniform,
    "sparse": structured.sparse_capped,
    "zero_hadamard": structured.zero_hadamard,
    "lsuv": structured.orthogonal,
}
BY_ACTIVATION = {
    "gain_normal": variance.gain_normal,
    "orthogonal": structured.gain_orthogonal,
    "critical": meanfield.critical_orthogonal,
}
# Schemes whose kernel is a factory at a derived argument: name -> activation -> initializer.
DERIVED = {"isometric": lambda act: meanfield.critical_orthogonal(act, registry._critical_point("isometric", act, registry.ISOMETRIC_Q_STAR)[1])}


# Whole-model schemes: their parameters come from rules built from the network's
# Structure (tested on the benchmark's architectures in tests/bench/test_archs.py).
MODEL = {"fixup", "rezero", "skipinit", "gpt2", "zero", "delta_orthogonal", "dirac"}


def test_every_scheme_names_its_factory():
    assert set(NAMED) | set(BY_ACTIVATION) | set(DERIVED) | MODEL == set(jinit.scheme_names())
    assert {n for n, s in jinit.SCHEMES.items() if s.model_rules is not None} == MODEL
    for name, factory in BY_ACTIVATION.items():
        assert jinit.get_scheme(name).kernel is factory


@pytest.mark.parametrize("name", sorted(NAMED) + sorted(BY_ACTIVATION) + sorted(DERIVED))
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_scheme_kernel_is_the_factory_bit_for_bit(name, activation):
    scheme = jinit.get_scheme(name)
    theirs = NAMED[name]() if name in NAMED else {**BY_ACTIVATION, **DERIVED}[name](activation)
    np.testing.assert_array_equal(scheme.kernel_init(activation)(KEY, SHAPE), theirs(KEY, SHAPE))


def test_gain_factories_take_names_or_callables():
    for factory in (variance.gain_normal, structured.gain_orthogonal, meanfield.critical_orthogonal):
        np.testing.assert_array_equal(factory("tanh")(KEY, SHAPE), factory(jnp.tanh)(KEY, SHAPE))
    with pytest.raises(ValueError, match="gain_normal: unknown activation 'swish'; valid choices are 'relu'"):
        variance.gain_normal("swish")
    with pytest.raises(TypeError, match="gain_orthogonal: phi must be an activation"):
        structured.gain_orthogonal(3.0)


def test_orthogonal_scheme_is_gain_scaled_and_says_so():
    """The scheme named "orthogonal" is jinit.gain_orthogonal, not jinit.orthogonal (scale 1)."""
    relu = jinit.get_scheme("orthogonal").kernel_init("relu")(KEY, SHAPE)
    plain = jinit.orthogonal()(KEY, SHAPE)
    np.testing.assert_allclose(relu, np.sqrt(2.0) * np.asarray(plain), rtol=1e-6, atol=1e-7)
    description = jinit.get_scheme("orthogonal").description
    assert "jinit.gain_orthogonal" in description and "jinit.orthogonal()" in description


def test_critical_scheme_is_critical_orthogonal():
    w = jinit.get_scheme("critical").kernel_init("relu")(KEY, SHAPE)
    expected = jinit.orthogonal(scale=meanfield.critical_sigma_w("relu"))(KEY, SHAPE)
    np.testing.assert_array_equal(w, expected)
    with pytest.raises(ValueError, match="critical_sigma_w: no sigma_w gives chi_1 = 1"):
        jinit.get_scheme("critical").kernel_init("gelu")


RESIDUAL = dict(readout="output", blocks=4, branch_layers=("*fc1/kernel", "*fc2/kernel"), gates="*gate")


def test_structure_validates_its_parts():
    with pytest.raises(ValueError, match="unknown feature.*'recurrent'.*valid features are residual"):
        jinit.Structure("relu", {"recurrent"})
    with pytest.raises(ValueError, match="feature 'residual' needs blocks and branch_layers"):
        jinit.Structure("relu", {"residual"})
    with pytest.raises(ValueError, match="feature 'conv' needs conv_kernels"):
        jinit.Structure("relu", {"conv"})
    with pytest.raises(ValueError, match="unknown activation"):
        jinit.Structure("swish")
    s = jinit.Structure("relu", {"residual", "gates"}, **RESIDUAL)
    assert s.residual_outputs == ("*fc2/kernel",) and s.gates == ("*gate",)


def test_schemes_say_why_they_do_not_apply():
    mlp = jinit.Structure("relu", readout="output")
    with pytest.raises(jinit.SchemeNotApplicable, match="'fixup' needs a network with residual"):
        jinit.get_scheme("fixup").rules(mlp)
    normed = jinit.Structure("relu", {"residual", "gates", "norm"}, **RESIDUAL)
    assert "without norm" in jinit.get_scheme("fixup").unavailable(normed)
    assert jinit.get_scheme("rezero").unavailable(normed) is None
    assert jinit.get_scheme("he_normal").unavailable(mlp) is None
    with pytest.raises(jinit.SchemeNotApplicable, match="critical"):  # no critical point for gelu at sigma_b = 0
        jinit.get_scheme("critical").rules(jinit.Structure("gelu", readout="output"))


@pytest.mark.parametrize("prefix", ["", "params/"])
def test_per_tensor_rules_give_the_readout_its_linear_init(prefix):
    """The readout of a per-tensor scheme uses kernel("linear"): gain 1, not the activation's."""
    tree = {"hidden": {"kernel": jnp.zeros((64, 64)), "bias": jnp.ones(64)},
            "output": {"kernel": jnp.zeros((64, 64)), "bias": jnp.ones(64)}}
    tree = {"params": tree} if prefix else tree
    rules = jinit.get_scheme("orthogonal").rules(jinit.Structure("tanh", readout="output"))
    out = jinit.reinit(KEY, tree, rules)
    p = out["params"] if prefix else out
    gain = jinit.gain_for(jnp.tanh)
    np.testing.assert_allclose(p["hidden"]["kernel"].T @ p["hidden"]["kernel"], gain**2 * np.eye(64), atol=1e-4)
    np.testing.assert_allclose(p["output"]["kernel"].T @ p["output"]["kernel"], np.eye(64), atol=1e-4)
    assert float(jnp.abs(p["hidden"]["bias"]).max()) == 0 and float(jnp.abs(p["output"]["bias"]).max()) == 0


def test_factories_with_constants_can_be_built_inside_jit():
    """critical's sigma_w is solved when the factory is built, which may happen while tracing."""
    eager = meanfield.critical_orthogonal("tanh")(KEY, SHAPE)
    traced = jax.jit(lambda k: meanfield.critical_orthogonal("tanh")(k, SHAPE))(KEY)
    np.testing.assert_allclose(traced, eager, rtol=1e-6, atol=1e-7)
