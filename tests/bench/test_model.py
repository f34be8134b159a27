"""The scanned MLP: agreement with unrolled forwards, per-layer init, compile size."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit
from bench.model import ModelSpec, UnrolledMLP, build_model, layer_statistics
from tests.bench.helpers import from_unrolled, to_unrolled, unrolled_apply
from tests.stats import assert_var


@pytest.mark.parametrize("activation,depth", [("relu", 1), ("tanh", 3), ("sigmoid", 5)])
def test_scan_and_unrolled_forward_agree(activation, depth):
    spec = ModelSpec(depth, 16, activation, 8, 3)
    model = build_model(spec, jinit.get_scheme("glorot_normal"))
    x = jax.random.normal(jax.random.key(1), (32, 8))
    params = jax.jit(model.init)(jax.random.key(0), x)["params"]
    out = jax.jit(model.apply)({"params": params}, x)
    ref = unrolled_apply(params, x, activation, depth)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    # the layer-by-layer Flax module, with converted params
    unrolled = UnrolledMLP(depth, 16, 3, activation)
    np.testing.assert_allclose(unrolled.apply({"params": to_unrolled(params, depth)}, x), ref, rtol=1e-5, atol=1e-6)
    back = from_unrolled(to_unrolled(params, depth), depth)
    jax.tree.map(np.testing.assert_array_equal, back, params)


def test_stacked_kernel_is_initialized_per_layer():
    seen = []
    he = jinit.he_normal()

    def spy(key, shape, dtype=jnp.float32):
        seen.append(tuple(shape))
        return he(key, shape, dtype)

    width, depth = 256, 5
    scheme = jinit.Scheme("spy", lambda a: spy, "f", "d", "r", "test")
    model = build_model(ModelSpec(depth, width, "relu", 8, 3), scheme)
    params = model.init(jax.random.key(0), jnp.zeros((1, 8)))["params"]
    stack = params["hidden"]["dense"]["kernel"]
    assert stack.shape == (depth - 1, width, width)
    assert (width, width) in seen and (depth - 1, width, width) not in seen  # the unstacked shape
    for w in stack:  # each slice has He statistics for its own fan_in
        assert_var(w, 2.0 / width)
    assert not np.allclose(stack[0], stack[1])  # independent keys per layer
    assert_var(params["input"]["dense"]["kernel"], 2.0 / 8)


def test_compiled_program_size_does_not_grow_with_depth():
    """The hidden stack is one scan: the traced program of a 1,000-layer MLP has
    the same number of equations as a 10-layer one (so compile time is flat)."""

    def n_eqns(depth):
        model = build_model(ModelSpec(depth, 8, "tanh", 4, 2))
        params = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, 4)))["params"])

        def loss(p, x):
            return jnp.sum(model.apply({"params": p}, x))

        jaxpr = jax.make_jaxpr(jax.grad(loss))(params, jnp.zeros((2, 4)))
        return len(str(jaxpr).splitlines())

    assert n_eqns(10) == n_eqns(1000)


def test_layer_statistics():
    spec = ModelSpec(4, 32, "tanh", 8, 3)
    x = jax.random.normal(jax.random.key(1), (64, 8))
    y = jnp.arange(64) % 3
    stats_fn = jax.jit(layer_statistics(spec))
    for name, check in (("normal", lambda s: min(s["saturation"]) > 0.3), ("zeros", lambda s: max(s["activation_std"]) == 0)):
        model = build_model(spec, jinit.get_scheme(name))
        params = jax.jit(model.init)(jax.random.key(0), x)["params"]
        s = jax.device_get(stats_fn(params, x, y))
        assert all(len(s[k]) == 4 for k in ("activation_std", "activation_mean", "saturation", "grad_norm"))
        assert check(s), (name, s)
    relu = jax.jit(layer_statistics(ModelSpec(2, 8, "relu", 8, 3)))
    model = build_model(ModelSpec(2, 8, "relu", 8, 3))
    s = relu(jax.jit(model.init)(jax.random.key(0), x)["params"], x, y)
    assert np.all(np.isnan(s["saturation"]))  # no saturation statistic for relu


def test_exploding_activations_do_not_overflow_the_statistics():
    spec = ModelSpec(30, 64, "relu", 8, 3)
    model = build_model(spec, jinit.get_scheme("normal"))  # std grows ~ sqrt(32) per layer
    x = jax.random.normal(jax.random.key(1), (64, 8))
    params = jax.jit(model.init)(jax.random.key(0), x)["params"]
    s = jax.jit(layer_statistics(spec))(params, x, jnp.zeros(64, jnp.int32))
    std = np.asarray(s["activation_std"])
    assert np.all(np.isfinite(std)) and std[-1] > 1e20  # its variance would overflow float32
