"""Tests of jinit.data_dependent.lsuv."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jinit import basic
from jinit.data_dependent import LSUVLayer, lsuv
from jinit.tree import reinit

KEY = jax.random.key(0)


def _params(model, x, seed=0, bias_std=0.0):
    """Random variables of the model's shapes, drawn with numpy: jitting a 20-layer
    ``model.init`` costs seconds of XLA compilation, ``eval_shape`` nothing."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(model.init, KEY, x)

    def fill(path, s):
        std = bias_std if path[-1].key == "bias" else 1.0 / np.sqrt(s.shape[-2])
        return jnp.asarray(rng.standard_normal(s.shape) * std, s.dtype)

    return jax.tree_util.tree_map_with_path(fill, shapes)
WIDTH, DEPTH = 64, 20
X = jnp.asarray(np.random.default_rng(0).standard_normal((128, 16)) * 3.0, jnp.float32)


class MLP(nn.Module):
    depth: int = DEPTH
    width: int = WIDTH
    act: str = "tanh"

    @nn.compact
    def __call__(self, x):
        for _ in range(self.depth - 1):
            x = getattr(jax.nn, self.act)(nn.Dense(self.width)(x))
        return nn.Dense(10)(x)


class Block(nn.Module):
    width: int
    act: str

    @nn.compact
    def __call__(self, x, _):
        return getattr(jax.nn, self.act)(nn.Dense(self.width)(x)), None


class ScanMLP(nn.Module):
    """The benchmark's layout: first and last layers plain, hidden layers stacked by nn.scan."""

    depth: int = DEPTH
    width: int = WIDTH
    act: str = "tanh"

    @nn.compact
    def __call__(self, x):
        x = getattr(jax.nn, self.act)(nn.Dense(self.width)(x))
        scan = nn.scan(Block, variable_axes={"params": 0}, split_rngs={"params": True}, length=self.depth - 2)
        x, _ = scan(self.width, self.act)(x, None)
        return nn.Dense(10)(x)


def _pre_activations(model, params, x):
    """Every Dense output of the forward pass, recomputed by hand (unrolling the scan)."""
    p = params["params"]
    act = getattr(jax.nn, model.act)
    layers = []
    if isinstance(model, ScanMLP):
        layers.append(p["Dense_0"])
        stacked = p["ScanBlock_0"]["Dense_0"]
        layers += [{"kernel": stacked["kernel"][t], "bias": stacked["bias"][t]} for t in range(model.depth - 2)]
        layers.append(p["Dense_1"])
    else:
        layers = [p[f"Dense_{i}"] for i in range(model.depth)]
    outs, h = [], np.asarray(x, np.float64)
    for i, layer in enumerate(layers):
        z = h @ np.asarray(layer["kernel"], np.float64) + np.asarray(layer["bias"], np.float64)
        outs.append(z)
        h = np.asarray(act(z)) if i < len(layers) - 1 else z
    return outs


def _check(model, params, tol=0.1):
    init = _params(model, X) if params is None else params
    new, report = lsuv(jax.random.key(1), model, init, X, tol=tol)
    assert len(report) == model.depth and all(isinstance(r, LSUVLayer) for r in report)
    assert all(r.converged and abs(r.var_after - 1) < tol for r in report)
    variances = [z.var() for z in _pre_activations(model, new, X)]
    np.testing.assert_allclose(variances, 1.0, atol=tol)
    return init, new, report


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_lsuv_unit_variance_20_layer_mlp(act):
    model = MLP(act=act)
    init, new, report = _check(model, None)
    assert [r.path for r in report] == [f"params/Dense_{i}/kernel" for i in range(DEPTH)]
    assert all(r.index is None for r in report)
    # without LSUV the signal is far from unit variance somewhere
    assert max(abs(z.var() - 1) for z in _pre_activations(model, init, X)) > 0.3
    # kernels are rescaled orthogonal matrices; biases untouched
    k = np.asarray(new["params"]["Dense_5"]["kernel"], np.float64)
    g = k.T @ k
    np.testing.assert_allclose(g, g[0, 0] * np.eye(WIDTH), atol=1e-5 * g[0, 0])
    np.testing.assert_array_equal(new["params"]["Dense_5"]["bias"], init["params"]["Dense_5"]["bias"])


@pytest.mark.parametrize("act", ["tanh", "relu"])
def test_lsuv_scanned_layers(act):
    model = ScanMLP(act=act)
    _, new, report = _check(model, None)
    assert [r.name for r in report] == (
        ["params/Dense_0/kernel"]
        + [f"params/ScanBlock_0/Dense_0/kernel[{t}]" for t in range(DEPTH - 2)]
        + ["params/Dense_1/kernel"]
    )
    assert new["params"]["ScanBlock_0"]["Dense_0"]["kernel"].shape == (DEPTH - 2, WIDTH, WIDTH)


def test_lsuv_with_biases_iterates_and_apply_fn_form():
    model = MLP(depth=6, act="tanh")
    params = _params(model, X, bias_std=0.3)
    new, report = lsuv(jax.random.key(1), lambda p, b: model.apply(p, b), params, X, tol=0.02)
    assert any(r.iterations > 1 for r in report)
    np.testing.assert_allclose([z.var() for z in _pre_activations(model, new, X)], 1.0, atol=0.02)
    # the Module form gives the same result
    same, _ = lsuv(jax.random.key(1), model, params, X, tol=0.02)
    jax.tree.map(np.testing.assert_array_equal, same, new)
    # max_iter reached: reported and warned, never NaN
    with pytest.warns(RuntimeWarning, match=r"lsuv: \d+ layer\(s\) did not reach"):
        _, short = lsuv(jax.random.key(1), model, params, X, tol=1e-6, max_iter=1)
    assert any(not r.converged for r in short) and all(r.iterations == 1 for r in short)


def test_lsuv_conv_and_pre_init_none():
    class CNN(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = nn.relu(nn.Conv(8, (3, 3))(x))
            x = nn.relu(nn.Conv(8, (3, 3))(x))
            return nn.Dense(4)(x.reshape(x.shape[0], -1))

    x = jnp.asarray(np.random.default_rng(1).standard_normal((16, 6, 6, 3)), jnp.float32)
    model = CNN()
    params = _params(model, x)
    new, report = lsuv(KEY, model, params, x, pre_init=None)
    assert [r.path for r in report] == ["params/Conv_0/kernel", "params/Conv_1/kernel", "params/Dense_0/kernel"]
    assert all(r.converged for r in report)
    # pre_init=None keeps the kernels' directions: only a positive scale changed
    k0, k1 = np.asarray(params["params"]["Conv_0"]["kernel"]), np.asarray(new["params"]["Conv_0"]["kernel"])
    ratio = k1 / k0
    np.testing.assert_allclose(ratio, ratio.flat[0], rtol=1e-5)


def test_lsuv_bad_inputs():
    model = MLP(depth=3)
    params = _params(model, X)
    with pytest.raises(ValueError, match=r"lsuv: batch contains 1 NaN or infinite value"):
        lsuv(KEY, model, params, X.at[3, 4].set(jnp.nan))
    with pytest.raises(ValueError, match="lsuv: every example in the batch is identical"):
        lsuv(KEY, model, params, jnp.ones((32, 16)))
    with pytest.raises(ValueError, match="lsuv: needs a batch of at least 2 examples"):
        lsuv(KEY, model, params, X[:1])
    with pytest.raises(ValueError, match="lsuv: tol must be > 0"):
        lsuv(KEY, model, params, X, tol=0.0)
    with pytest.raises(ValueError, match="lsuv: max_iter must be an int >= 1, got 0"):
        lsuv(KEY, model, params, X, max_iter=0)
    with pytest.raises(TypeError, match="lsuv: model must be a flax.linen Module or an apply function"):
        lsuv(KEY, "mlp", params, X)
    with pytest.raises(TypeError, match="lsuv: pre_init must be an initializer"):
        lsuv(KEY, model, params, X, pre_init="orthogonal")
    with pytest.raises(TypeError, match="lsuv: layer_types must be a non-empty tuple"):
        lsuv(KEY, model, params, X, layer_types=nn.Dense)
    with pytest.raises(ValueError, match="lsuv: the forward pass called no Conv layer"):
        lsuv(KEY, model, params, X, layer_types=(nn.Conv,))
    with pytest.raises(TypeError, match="lsuv: key must be a PRNG key"):
        lsuv(0, model, params, X)


def test_lsuv_dead_layer_raises_and_never_returns_nan():
    model = MLP(depth=3, act="relu")
    params = _params(model, X)
    # a huge negative bias kills every ReLU after the first layer: Dense_1 outputs its (zero) bias
    dead = reinit(KEY, params, [("params/Dense_0/bias", basic.constant(-1e4))])
    with pytest.raises(ValueError, match=r"lsuv: the output of layer 'params/Dense_1/kernel' has variance 0"):
        lsuv(KEY, model, dead, X)
