"""Porting rule sets reproduce the source frameworks' defaults, on models of every framework."""

from __future__ import annotations

import math

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from scipy import stats as sps

import jinit
from jinit.porting import fan_in_uniform_bias, flax_rules, haiku_rules, keras_rules, torch_rules
from tests import stats

KEY = jax.random.key(0)


def _same_law(a, b):
    result = sps.ks_2samp(np.ravel(a), np.ravel(b))
    assert result.pvalue > 1e-4, f"KS {result.statistic:.4g}, p {result.pvalue:.3g}"


def test_torch_rules_match_torch_linear_and_conv():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    ported = jinit.reinit(KEY, nnx.Linear(300, 200, rngs=nnx.Rngs(0)), torch_rules())
    reference = torch.nn.Linear(300, 200)
    _same_law(ported.kernel[...], reference.weight.detach().numpy())
    _same_law(ported.bias[...], reference.bias.detach().numpy())
    conv = jinit.reinit(KEY, eqx.nn.Conv2d(16, 64, 3, key=KEY), torch_rules())
    reference = torch.nn.Conv2d(16, 64, 3)
    _same_law(conv.weight, reference.weight.detach().numpy())
    _same_law(conv.bias, reference.bias.detach().numpy())


def test_torch_bias_bound_is_the_kernels_fan_in_on_every_framework():
    bound = 1 / math.sqrt(3 * 3 * 8)
    variables = jinit.init(nn.Conv(32, (3, 3)), torch_rules(), KEY, jnp.ones((1, 5, 5, 8)))["params"]
    for bias in (variables["bias"], jinit.reinit(KEY, eqx.nn.Conv2d(8, 32, 3, key=KEY), torch_rules()).bias):
        b = np.ravel(bias)
        assert np.abs(b).max() < bound and np.abs(b).max() > 0.8 * bound
        stats.assert_var(b, bound**2 / 3)
    stats.assert_var(variables["kernel"], 1 / (3 * 72))  # U(+-1/sqrt(72)): Var = 1/(3 fan_in)
    params = nn.Dense(4).init(KEY, jnp.ones((1, 6)))
    with pytest.raises(ValueError, match="fan_in_uniform_bias needs the fan-in of the layer's kernel"):
        jinit.reinit(KEY, params, torch_rules())
    with pytest.raises(TypeError, match="depends on the layer's kernel"):
        fan_in_uniform_bias()(KEY, (3,))
    layouts = jinit.linen_layouts(nn.Dense(4), jnp.ones((1, 6)))
    with_layouts = jinit.reinit(KEY, params, torch_rules(), layouts=layouts)
    assert np.abs(with_layouts["params"]["bias"]).max() < 1 / math.sqrt(6)


def test_flax_rules_equal_flax_defaults_in_law():
    x = jnp.ones((1, 256))
    ported = jinit.init(nn.Dense(256), flax_rules(), KEY, x)["params"]["kernel"]
    default = nn.Dense(256).init(jax.random.key(1), x)["params"]["kernel"]
    _same_law(ported, default)
    embed = jinit.reinit(KEY, nnx.Embed(500, 64, rngs=nnx.Rngs(0)), flax_rules()).embedding[...]
    _same_law(embed, nnx.Embed(500, 64, rngs=nnx.Rngs(1)).embedding[...])
    stats.assert_var(embed, 1 / 64)


def test_keras_and_haiku_rules():
    net = eqx.nn.MLP(200, 10, 300, 1, key=KEY)
    keras = jinit.reinit(KEY, net, keras_rules())
    stats.assert_var(keras.layers[0].weight, 2 / (200 + 300))
    assert not np.asarray(keras.layers[0].bias).any()
    haiku = jinit.reinit(KEY, net, haiku_rules())
    w = np.asarray(haiku.layers[0].weight)
    stats.assert_var(w, 0.87962566103423978**2 / 200)
    assert np.abs(w).max() <= 2 / math.sqrt(200)
    norm = jinit.reinit(KEY, eqx.nn.LayerNorm(8), keras_rules(), allow_unmatched=True)
    np.testing.assert_array_equal(norm.weight, 1.0)
