"""The scanned MLP (bench/archs/mlp.py): agreement with unrolled forwards, per-layer
init through jinit.init, per-layer statistics that do not overflow."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit
from bench.archs import NetSpec, get_arch
from bench.archs.mlp import MLP, UnrolledMLP
from tests.bench.helpers import from_unrolled, to_unrolled, unrolled_apply
from tests.stats import assert_var

ARCH = get_arch("mlp")


def _init(spec: NetSpec, scheme: str, x) -> dict:
    rules = jinit.get_scheme(scheme).rules(ARCH.structure(spec))
    return jax.jit(lambda k: jinit.init(ARCH.module(spec), rules, k, x)["params"])(jax.random.key(0))


@pytest.mark.parametrize("activation,depth", [("relu", 1), ("tanh", 3), ("sigmoid", 5)])
def test_scan_and_unrolled_forward_agree(activation, depth):
    spec = NetSpec("mlp", depth, 16, activation, 8, 3)
    x = jax.random.normal(jax.random.key(1), (32, 8))
    params = _init(spec, "glorot_normal", x)
    out = jax.jit(ARCH.module(spec).apply)({"params": params}, x)
    ref = unrolled_apply(params, x, activation, depth)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    unrolled = UnrolledMLP(depth, 16, 3, activation)  # the layer-by-layer module, with converted params
    np.testing.assert_allclose(unrolled.apply({"params": to_unrolled(params, depth)}, x), ref, rtol=1e-5, atol=1e-6)
    jax.tree.map(np.testing.assert_array_equal, from_unrolled(to_unrolled(params, depth), depth), params)


def test_stacked_kernel_is_initialized_per_layer():
    seen = []
    he = jinit.he_normal()

    def spy(key, shape, dtype=jnp.float32):
        seen.append(tuple(shape))
        return he(key, shape, dtype)

    width, depth = 256, 5
    spec = NetSpec("mlp", depth, width, "relu", 8, 3)
    rules = [("*hidden/dense/kernel", spy), ("*kernel", jinit.he_normal())]
    params = jinit.init(ARCH.module(spec), rules, jax.random.key(0), jnp.zeros((1, 8)))["params"]
    stack = params["hidden"]["dense"]["kernel"]
    assert stack.shape == (depth - 1, width, width)
    assert (width, width) in seen and (depth - 1, width, width) not in seen  # the unstacked shape
    for w in stack:  # each slice has He statistics for its own fan_in
        assert_var(w, 2.0 / width)
    assert not np.allclose(stack[0], stack[1])  # independent keys per layer
    assert_var(params["input"]["dense"]["kernel"], 2.0 / 8)


def test_readout_gets_the_linear_gain():
    """Per-tensor schemes give the (linear) readout kernel_init("linear"): gain 1 for orthogonal."""
    spec = NetSpec("mlp", 3, 64, "relu", 8, 64)
    p = _init(spec, "orthogonal", jnp.zeros((1, 8)))
    np.testing.assert_allclose(p["output"]["kernel"].T @ p["output"]["kernel"], np.eye(64), atol=1e-4)
    w = p["hidden"]["dense"]["kernel"][0]
    np.testing.assert_allclose(w.T @ w, 2 * np.eye(64), atol=1e-4)  # hidden: gain sqrt(2) for ReLU


def _stats(spec: NetSpec, scheme: str, x):
    params = _init(spec, scheme, x)
    _, stats = jax.jit(MLP(spec.depth, spec.width, spec.n_out, spec.activation, collect=True).apply)(
        {"params": params}, x)
    return np.asarray(stats)


def test_layer_statistics():
    x = jax.random.normal(jax.random.key(1), (64, 8))
    saturated = _stats(NetSpec("mlp", 4, 32, "tanh", 8, 3), "normal", x)
    assert saturated.shape == (4, 3) and saturated[:, 2].min() > 0.3  # N(0, 1) saturates tanh
    assert _stats(NetSpec("mlp", 4, 32, "tanh", 8, 3), "zeros", x)[:, 0].max() == 0
    assert np.all(np.isnan(_stats(NetSpec("mlp", 2, 8, "relu", 8, 3), "he_normal", x)[:, 2]))  # none for relu


def test_exploding_activations_do_not_overflow_the_statistics():
    std = _stats(NetSpec("mlp", 30, 64, "relu", 8, 3), "normal", jax.random.normal(jax.random.key(1), (64, 8)))[:, 0]
    assert np.all(np.isfinite(std)) and std[-1] > 1e20  # its variance would overflow float32
