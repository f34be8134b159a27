"""Parametric schemes (``meanfield(sigma_w2=..., sigma_b2=...)``, ``critical(q_star=...)``): names,
errors, and the distribution of every parameter on real networks (a scanned MLP, the bench's
scanned CNN), per stacked slice."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit
from jinit import meanfield
from jinit.registry import ISOMETRIC_Q_STAR, parametric_arguments, split_scheme_list
from tests.stats import assert_mean, assert_var

KEY = jax.random.key(0)


# --- names -------------------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", [
    "meanfield(sigma_w2=1.5,sigma_b2=0.05)", " meanfield( sigma_b2 = 0.05 , sigma_w2 = 1.50 ) ",
    "meanfield(sigma_w2=1.5000000000001,sigma_b2=5e-2,weights=gaussian)",
])
def test_spellings_of_one_scheme_are_one_scheme(spelling):
    scheme = jinit.get_scheme(spelling)
    assert scheme.name == "meanfield(sigma_w2=1.5,sigma_b2=0.05)"
    assert scheme is jinit.get_scheme("meanfield(sigma_w2=1.5,sigma_b2=0.05)")  # built once
    assert "meanfield(sigma_w2=1.5,sigma_b2=0.05)" not in jinit.SCHEMES  # never registered


def test_defaults_are_dropped_and_arguments_parsed():
    assert jinit.get_scheme("meanfield(sigma_w2=2,sigma_b2=0)").name == "meanfield(sigma_w2=2)"
    assert jinit.get_scheme("critical(q_star=0.01,weights=orthogonal)").name == "critical(q_star=0.01)"
    assert parametric_arguments("critical(q_star=0.5,weights=delta)") == ("critical", {"q_star": 0.5, "weights": "delta"})
    assert parametric_arguments("critical") is None
    assert jinit.get_scheme("critical").name == "critical"  # the plain scheme keeps its name
    assert split_scheme_list("he_normal, meanfield(sigma_w2=2,sigma_b2=0.05),critical(q_star=1) ,") == [
        "he_normal", "meanfield(sigma_w2=2,sigma_b2=0.05)", "critical(q_star=1)"]


@pytest.mark.parametrize("name, message", [
    ("meanfield(sigma_w=1)", r"meanfield: unknown argument\(s\) 'sigma_w'; valid arguments are sigma_w2, sigma_b2, weights"),
    ("meanfield(sigma_b2=0.05)", r"meanfield: missing argument 'sigma_w2'"),
    ("meanfield(sigma_w2=0)", r"meanfield: invalid sigma_w2='0'; expected a finite number > 0"),
    ("meanfield(sigma_w2=1,sigma_b2=-1)", r"meanfield: invalid sigma_b2='-1'; expected a finite number >= 0"),
    ("meanfield(sigma_w2=nan)", r"meanfield: invalid sigma_w2='nan'"),
    ("meanfield(sigma_w2=abc)", r"meanfield: invalid sigma_w2='abc'"),
    ("meanfield(sigma_w2=1,weights=haar)", r"meanfield: invalid weights='haar'; valid choices are 'gaussian', 'orthogonal', 'delta'"),
    ("meanfield(1.5)", r"meanfield: argument '1.5' .* is not arg=value; signature meanfield\(sigma_w2, sigma_b2=0.0"),
    ("meanfield(sigma_w2=1,sigma_w2=2)", r"meanfield: argument 'sigma_w2' given twice"),
    ("he(scale=2)", r"unknown parametric scheme 'he'; valid choices are 'meanfield', 'critical'"),
    ("meanfield(sigma_w2=1", r"invalid parametric scheme 'meanfield\(sigma_w2=1'; write family\(arg=value, ...\)"),
    ("kaiming", r"unknown scheme 'kaiming'; valid choices are .*'he_normal'.*or a parametric scheme: meanfield\(sigma_w2"),
])
def test_bad_names_say_what_is_wrong(name, message):
    with pytest.raises(ValueError, match=message):
        jinit.get_scheme(name)


def test_a_family_name_is_registered_once():
    family = jinit.PARAMETRIC_SCHEMES["meanfield"]
    with pytest.raises(ValueError, match="the name 'meanfield' is taken"):
        jinit.register_parametric_scheme(family)


# --- distributions -----------------------------------------------------------------------------


@pytest.mark.parametrize("sigma_w2, sigma_b2", [(1.0, 0.05), (3.0, 0.0), (1.76, 0.5)])
def test_meanfield_gaussian_every_layer(sigma_w2, sigma_b2):
    s = jinit.get_scheme(f"meanfield(sigma_w2={sigma_w2},sigma_b2={sigma_b2})")
    for activation in ("tanh", "linear"):  # hidden layers and readout alike
        w = s.kernel_init(activation)(KEY, (256, 512))
        assert_mean(w, 0.0)
        assert_var(w, sigma_w2 / 256)
        b = s.bias_init(activation)(KEY, (100_000,))
        if sigma_b2:
            assert_var(b, sigma_b2)
        else:
            assert float(jnp.abs(b).max()) == 0.0
    conv = s.kernel_init("tanh")(KEY, (3, 3, 16, 64))  # fan_in = 3 * 3 * 16
    assert_var(conv, sigma_w2 / 144)


def test_meanfield_orthogonal_is_scaled_orthogonal():
    w = jinit.get_scheme("meanfield(sigma_w2=2.25,weights=orthogonal)").kernel_init("tanh")(KEY, (64, 64))
    np.testing.assert_allclose(np.asarray(w).T @ np.asarray(w), 2.25 * np.eye(64), atol=1e-4)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
def test_critical_at_small_q_star_is_isometric_bit_for_bit(activation):
    family, plain = jinit.get_scheme(f"critical(q_star={ISOMETRIC_Q_STAR})"), jinit.get_scheme("isometric")
    for act in (activation, "linear"):
        for shape in ((64, 64), (32, 10)):
            assert jnp.array_equal(family.kernel_init(act)(KEY, shape), plain.kernel_init(act)(KEY, shape))
        assert jnp.array_equal(family.bias_init(act)(KEY, (64,)), plain.bias_init(act)(KEY, (64,)))


def test_critical_gaussian_sits_on_the_critical_line():
    # REFERENCES: tanh at q* = 0.5 -> (sigma_w^2, sigma_b^2) = (1.688, 0.038).
    s = jinit.get_scheme("critical(q_star=0.5,weights=gaussian)")
    w = s.kernel_init("tanh")(KEY, (512, 512))
    sw2 = float(np.var(np.asarray(w, np.float64))) * 512
    assert sw2 == pytest.approx(1.688, rel=0.02)  # 262144 draws: se 0.3 %
    sb2 = float(np.var(np.asarray(s.bias_init("tanh")(KEY, (200_000,)), np.float64)))
    assert sb2 == pytest.approx(0.038, rel=0.03)
    line = meanfield.critical_line("tanh", [0.5])
    mf = meanfield.analyze(float(line.sigma_w[0]), float(line.sigma_b[0]), "tanh")
    assert mf.chi1 == pytest.approx(1.0, abs=1e-9) and mf.q_star == pytest.approx(0.5, rel=1e-6)
    assert_var(w, float(line.sigma_w[0]) ** 2 / 512)


def test_critical_without_a_stable_point_names_the_scheme():
    s = jinit.get_scheme("critical(q_star=0.01)")
    with pytest.raises(jinit.SchemeNotApplicable, match=r"scheme 'critical\(q_star=0.01\)'.*unstable"):
        s.rules(jinit.Structure("gelu", readout="output"))
    with pytest.raises(ValueError, match=r"critical\(q_star=0.01\): the critical line of 'sigmoid' has no point"):
        s.kernel_init("sigmoid")


def test_delta_weights_need_conv_kernels():
    s = jinit.get_scheme("critical(q_star=0.01,weights=delta)")
    assert s.requires == frozenset({"conv"}) and s.model_level
    with pytest.raises(jinit.SchemeNotApplicable, match="needs a network with conv"):
        s.rules(jinit.Structure("tanh", readout="output"))


def test_on_a_scanned_mlp_every_layer_slice_has_the_distribution():
    import flax.linen as nn

    class Layer(nn.Module):
        @nn.compact
        def __call__(self, h, _):
            return jnp.tanh(nn.Dense(128, name="fc")(h)), None

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = jnp.tanh(nn.Dense(128, name="input")(x))
            h, _ = nn.scan(Layer, variable_axes={"params": 0}, split_rngs={"params": True}, length=6)(name="stack")(h, None)
            return nn.Dense(10, name="output")(h)

    s = jinit.get_scheme("meanfield(sigma_w2=2.5,sigma_b2=0.1)")
    rules = s.rules(jinit.Structure("tanh", readout="output"))
    p = jinit.init(Net(), rules, KEY, jnp.ones((1, 64)))["params"]
    assert p["stack"]["fc"]["kernel"].shape == (6, 128, 128)
    for w, b in zip(p["stack"]["fc"]["kernel"], p["stack"]["fc"]["bias"]):  # per stacked slice
        assert_var(w, 2.5 / 128)
        assert_var(b, 0.1, z=6)
    assert_var(p["input"]["kernel"], 2.5 / 64)
    assert_var(p["output"]["kernel"], 2.5 / 128)
    # Slices differ (each layer its own key), as with kernel_init= at construction.
    assert not jnp.array_equal(p["stack"]["fc"]["kernel"][0], p["stack"]["fc"]["kernel"][1])


def test_numbers_round_to_what_the_name_spells():
    s = jinit.PARAMETRIC_SCHEMES["meanfield"]
    name, values = s.canonical(sigma_w2=math.pi)
    assert name == "meanfield(sigma_w2=3.14159265359)" and values["sigma_w2"] == 3.14159265359


def test_value_lists_expand_to_a_grid_of_canonical_names():
    from jinit.registry import expand_scheme_grid

    assert expand_scheme_grid("meanfield(sigma_w2=1|2.0|1,sigma_b2=0.05|0)") == [
        "meanfield(sigma_w2=1,sigma_b2=0.05)", "meanfield(sigma_w2=1)",
        "meanfield(sigma_w2=2,sigma_b2=0.05)", "meanfield(sigma_w2=2)"]
    assert expand_scheme_grid("critical(q_star=0.01,weights=delta|gaussian)") == [
        "critical(q_star=0.01,weights=delta)", "critical(q_star=0.01,weights=gaussian)"]
    assert expand_scheme_grid("he_normal") == ["he_normal"]
    with pytest.raises(ValueError, match="an empty value"):
        expand_scheme_grid("meanfield(sigma_w2=1||2)")
    with pytest.raises(ValueError, match="meanfield: invalid sigma_w2='x'"):
        expand_scheme_grid("meanfield(sigma_w2=1|x)")
