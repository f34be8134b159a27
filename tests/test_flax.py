"""jinit initializers as kernel_init / bias_init in Flax (linen and nnx), initialized
under jit, with the intended statistics."""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

import jinit
from tests import stats


def _arr(v):
    return np.asarray(v[...] if isinstance(v, nnx.Variable) else v, np.float64)


# ----------------------------------------------------------------------------- linen


def test_linen_dense_he_normal_under_jit():
    layer = nn.Dense(512, kernel_init=jinit.he_normal(), bias_init=jinit.constant(0.1))
    params = jax.jit(layer.init)(jax.random.key(0), jnp.ones((1, 256)))["params"]
    k, b = _arr(params["kernel"]), _arr(params["bias"])
    assert k.shape == (256, 512) and params["kernel"].dtype == jnp.float32
    stats.assert_mean_var(k, 0.0, 2.0 / 256)
    stats.assert_ks(k, stats.normal_cdf(0.0, math.sqrt(2.0 / 256)))
    assert stats.rejects(stats.assert_var, k, 2.0 / 512)  # fan_in is the input width
    np.testing.assert_array_equal(b, np.full(512, 0.1, np.float32))


def test_linen_conv2d_kernel_fan_in_is_kh_kw_cin():
    layer = nn.Conv(features=128, kernel_size=(3, 3), kernel_init=jinit.he_normal(), bias_init=jinit.zeros())
    params = jax.jit(layer.init)(jax.random.key(1), jnp.ones((1, 8, 8, 64)))["params"]
    k = _arr(params["kernel"])
    assert k.shape == (3, 3, 64, 128)  # HWIO
    stats.assert_mean_var(k, 0.0, 2.0 / (3 * 3 * 64))
    assert stats.rejects(stats.assert_var, k, 2.0 / 64)
    np.testing.assert_array_equal(_arr(params["bias"]), np.zeros(128))


def test_linen_conv1d_glorot_uniform_with_gain():
    g = jinit.calculate_gain("tanh")
    layer = nn.Conv(features=64, kernel_size=(5,), kernel_init=jinit.glorot_uniform(gain=g), bias_init=jinit.ones())
    params = jax.jit(layer.init)(jax.random.key(2), jnp.ones((1, 20, 32)))["params"]
    k = _arr(params["kernel"])
    assert k.shape == (5, 32, 64)
    var = g * g * 2.0 / (5 * 32 + 5 * 64)
    stats.assert_mean_var(k, 0.0, var)
    bound = math.sqrt(3 * var)
    assert np.abs(k).max() <= bound
    np.testing.assert_array_equal(_arr(params["bias"]), np.ones(64))


def test_linen_param_dtype_is_passed_through():
    layer = nn.Dense(256, kernel_init=jinit.lecun_normal(), bias_init=jinit.zeros(), param_dtype=jnp.bfloat16)
    params = jax.jit(layer.init)(jax.random.key(3), jnp.ones((1, 128)))["params"]
    assert params["kernel"].dtype == jnp.bfloat16 and params["bias"].dtype == jnp.bfloat16
    stats.assert_var_rounded(_arr(params["kernel"].astype(jnp.float32)), 1.0 / 128, jnp.bfloat16)


def test_linen_registry_scheme():
    scheme = jinit.get_scheme("gain_normal")
    layer = nn.Dense(384, kernel_init=scheme.kernel_init("tanh"), bias_init=scheme.bias_init("tanh"))
    params = jax.jit(layer.init)(jax.random.key(4), jnp.ones((1, 192)))["params"]
    g = jinit.gain_for(jnp.tanh)
    stats.assert_var(_arr(params["kernel"]), g * g / 192)
    np.testing.assert_array_equal(_arr(params["bias"]), np.zeros(384))


def test_linen_init_jit_matches_eager():
    layer = nn.Dense(32, kernel_init=jinit.he_uniform(), bias_init=jinit.zeros())
    x = jnp.ones((1, 16))
    jitted = jax.jit(layer.init)(jax.random.key(5), x)
    eager = layer.init(jax.random.key(5), x)
    np.testing.assert_array_equal(jitted["params"]["kernel"], eager["params"]["kernel"])
    np.testing.assert_array_equal(jitted["params"]["bias"], np.zeros(32, np.float32))


# ----------------------------------------------------------------------------- nnx


def test_nnx_linear_under_nnx_jit():
    @nnx.jit
    def make():
        return nnx.Linear(256, 512, kernel_init=jinit.glorot_normal(), bias_init=jinit.constant(-0.5), rngs=nnx.Rngs(0))

    m = make()
    k = _arr(m.kernel)
    assert k.shape == (256, 512)
    stats.assert_mean_var(k, 0.0, 2.0 / (256 + 512))
    stats.assert_ks(k, stats.normal_cdf(0.0, math.sqrt(2.0 / 768)))
    assert stats.rejects(stats.assert_var, k, 1.0 / 256)
    np.testing.assert_array_equal(_arr(m.bias), np.full(512, -0.5))


def test_nnx_conv_under_jax_jit():
    def build():
        conv = nnx.Conv(64, 128, kernel_size=(3, 3), kernel_init=jinit.he_normal(), bias_init=jinit.constant(0.1),
                        rngs=nnx.Rngs(1))
        return nnx.state(conv)

    state = jax.jit(build)()
    k = _arr(state["kernel"])
    assert k.shape == (3, 3, 64, 128)
    stats.assert_mean_var(k, 0.0, 2.0 / 576)
    assert stats.rejects(stats.assert_var, k, 2.0 / 1152)
    np.testing.assert_array_equal(_arr(state["bias"]), np.full(128, 0.1, np.float32))


def test_nnx_conv3d_he_uniform_fan_out():
    @nnx.jit
    def make():
        return nnx.Conv(8, 32, kernel_size=(3, 3, 3), kernel_init=jinit.he_uniform(mode="fan_out"),
                        bias_init=jinit.zeros(), rngs=nnx.Rngs(2))

    k = _arr(make().kernel)
    assert k.shape == (3, 3, 3, 8, 32)
    var = 2.0 / (27 * 32)
    stats.assert_mean_var(k, 0.0, var)
    assert -math.sqrt(3 * var) <= k.min() and k.max() < math.sqrt(3 * var)
    assert stats.rejects(stats.assert_var, k, 2.0 / (27 * 8))


def test_nnx_jit_equals_eager():
    def make():
        return nnx.Linear(16, 24, kernel_init=jinit.lecun_uniform(), rngs=nnx.Rngs(3))

    eager = _arr(make().kernel)
    np.testing.assert_array_equal(_arr(nnx.jit(make)().kernel), eager)
