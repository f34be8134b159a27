"""Tests of jinit.data_dependent.lsuv on flax.linen, flax.nnx and Equinox models."""

from __future__ import annotations

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from flax import nnx

import jinit
from tests.nets import Pair
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
WIDTH, DEPTH = 32, 12  # widths shared with the nnx/Equinox tests: orthogonal compiles once per shape
X = jnp.asarray(np.random.default_rng(0).standard_normal((128, 16)) * 3.0, jnp.float32)


class MLP(nn.Module):
    depth: int = DEPTH
    width: int = WIDTH
    act: str = "tanh"

    @nn.compact
    def __call__(self, x):
        for _ in range(self.depth - 1):
            x = getattr(jax.nn, self.act)(nn.Dense(self.width)(x))
        return nn.Dense(4)(x)


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
        return nn.Dense(4)(x)


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
def test_lsuv_unit_variance_deep_mlp(act):
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


def test_lsuv_jitted_apply_is_an_error():
    """A jitted apply function would hide its layers (an empty report, nothing normalized)."""
    model = MLP(depth=3)
    params = _params(model, X)
    with pytest.raises(TypeError, match=r"lsuv: model is a jax.jit-compiled function.*Pass the un-jitted "
                                        r"model.apply, or the Module itself"):
        lsuv(KEY, jax.jit(model.apply), params, X)


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
    with pytest.raises(TypeError, match="lsuv: model must be a flax.linen Module, an apply function .*, a "
                                        "flax.nnx Module or an equinox Module, got str"):
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


# --- flax.nnx and Equinox models, attention, stacked layers ----------------------------------

XS = jnp.asarray(np.random.default_rng(3).standard_normal((16, 6, 16)), jnp.float32)  # (batch, tokens, features)


def _scaled_orthonormal(m, tol=1e-5):
    """``m`` (2-D) has orthogonal columns (tall) or rows (wide) of one common norm."""
    m = np.asarray(m, np.float64)
    g = m.T @ m if m.shape[0] >= m.shape[1] else m @ m.T
    np.testing.assert_allclose(g, g[0, 0] * np.eye(len(g)), atol=tol * g[0, 0])


def _unit(variances, tol=0.1):
    assert all(abs(v - 1) < tol for v in variances), variances


class NnxMLP(nnx.Module):
    def __init__(self, rngs, width=32, depth=4):
        sizes = [16] + [width] * depth
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes, sizes[1:])])

    def __call__(self, x):
        for layer in self.layers:
            x = jnp.tanh(layer(x))
        return x


def test_lsuv_nnx_mlp_returns_a_new_model_and_leaves_the_input():
    model = NnxMLP(nnx.Rngs(0))
    before = [np.asarray(layer.kernel[...]) for layer in model.layers]
    new, report = lsuv(KEY, model, X)
    assert [r.path for r in report] == [f"layers/{i}/kernel" for i in range(4)]
    assert type(new) is NnxMLP and type(new.layers[0]) is nnx.Linear
    for layer, k in zip(model.layers, before):  # the input model is untouched
        np.testing.assert_array_equal(layer.kernel[...], k)
    h, variances = np.asarray(X, np.float64), []
    for layer in new.layers:  # the pre-activations, by hand
        z = h @ np.asarray(layer.kernel[...], np.float64) + np.asarray(layer.bias[...], np.float64)
        variances.append(z.var())
        h = np.tanh(z)
    _unit(variances)
    _scaled_orthonormal(new.layers[2].kernel[...])


class NnxAttention(nnx.Module):
    def __init__(self, rngs):
        self.inp = nnx.Linear(16, 32, rngs=rngs)
        self.att = nnx.MultiHeadAttention(num_heads=4, in_features=32, qkv_features=32, decode=False, rngs=rngs)
        self.out = nnx.Linear(32, 4, rngs=rngs)

    def __call__(self, x):
        return self.out(self.att(self.inp(x)))


def test_lsuv_nnx_attention_projections():
    """query/key/value/out are LinearGeneral with kernels (32, 4, 8) and (4, 8, 32): pre-initialized
    as the flattened (32, 32) maps Flax hands the initializer (an orthogonal draw of the 3-D shape
    would not be orthogonal as a (32, 32) map), then normalized like any layer."""
    model = NnxAttention(nnx.Rngs(1))
    new, report = lsuv(KEY, model, XS)
    names = ["inp", "att/query", "att/key", "att/value", "att/out", "out"]
    assert [r.path for r in report] == [f"{n}/kernel" for n in names]
    att = new.att
    h = new.inp(XS)
    q, k, v = att.query(h), att.key(h), att.value(h)
    o = nnx.dot_product_attention(q, k, v)
    variances = [h.var(), q.var(), k.var(), v.var(), att.out(o).var(), new(XS).var()]
    _unit([float(x) for x in variances])
    _scaled_orthonormal(np.asarray(att.query.kernel[...]).reshape(32, 32))
    _scaled_orthonormal(np.asarray(att.out.kernel[...]).reshape(32, 32))


def test_lsuv_linen_attention_projections():
    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            h = nn.MultiHeadDotProductAttention(num_heads=4, name="att")(nn.Dense(32)(x))
            return nn.Dense(4)(h)

    model = Net()
    params = model.init(KEY, XS)
    new, report = lsuv(jax.random.key(1), model, params, XS)
    names = ["Dense_0", "att/query", "att/key", "att/value", "att/out", "Dense_1"]
    assert [r.path for r in report] == [f"params/{n}/kernel" for n in names]
    # per-layer outputs from Flax's own capture, independent of lsuv's interception
    _, state = model.apply(new, XS, capture_intermediates=True, mutable=["intermediates"])
    inter = state["intermediates"]
    outs = [inter["Dense_0"]["__call__"][0]]
    outs += [inter["att"][n]["__call__"][0] for n in ("query", "key", "value", "out")]
    _unit([float(y.var()) for y in outs + [inter["Dense_1"]["__call__"][0]]])
    _scaled_orthonormal(np.asarray(new["params"]["att"]["key"]["kernel"]).reshape(32, 32))


def test_lsuv_equinox_mlp():
    mlp = eqx.nn.MLP(16, 4, 32, depth=3, activation=jnp.tanh, key=jax.random.key(2))
    new, report = lsuv(KEY, mlp, X)
    assert [r.path for r in report] == [f"layers/{i}/weight" for i in range(4)]
    assert all(r.converged for r in report)

    @eqx.filter_jit
    def pre_activations(net, h):
        out = []
        for layer in net.layers:
            out.append(jax.vmap(layer)(h))
            h = jnp.tanh(out[-1])
        return out

    _unit([float(z.var()) for z in pre_activations(new, X)])
    _scaled_orthonormal(new.layers[0].weight)  # (32, 16): drawn (16, 32) and transposed
    np.testing.assert_array_equal(mlp.layers[0].bias, new.layers[0].bias)


class EqxCNN(eqx.Module):
    c1: eqx.nn.Conv2d
    c2: eqx.nn.Conv2d
    fc: eqx.nn.Linear

    def __init__(self, key):
        k1, k2, k3 = jax.random.split(key, 3)
        self.c1 = eqx.nn.Conv2d(3, 8, 3, padding=1, key=k1)
        self.c2 = eqx.nn.Conv2d(8, 8, 3, padding=1, key=k2)
        self.fc = eqx.nn.Linear(8 * 4 * 4, 4, key=k3)

    def __call__(self, x):
        x = jax.nn.relu(self.c1(x))
        return self.fc(jax.nn.relu(self.c2(x)).reshape(-1))


def test_lsuv_equinox_conv2d_uses_oihw_fans():
    """Equinox stores conv weights as (out, in, kh, kw): the pre-init is drawn as (kh, kw, in, out)
    and transposed, so a fan-based pre-init sees fan_in = 3 * 3 * 3 = 27 (not 8 * 3 * 3 = 72)."""
    images = jnp.asarray(np.random.default_rng(4).standard_normal((16, 3, 4, 4)), jnp.float32)
    cnn = EqxCNN(jax.random.key(0))
    new, report = lsuv(KEY, cnn, images, pre_init=jinit.lecun_normal())
    assert [r.path for r in report] == ["c1/weight", "c2/weight", "fc/weight"]
    # lecun: Var(out) = Var(in) = 1 on interior pixels, 4/9 or 6/9 of it at the zero-padded border
    # (mean over 4x4 pixels: 0.69); read as HWIO, fan_in = 72 would give 0.26
    assert 0.5 < report[0].var_before < 0.95, report[0]

    @eqx.filter_jit
    def pre_activations(net, x):
        z1 = jax.vmap(net.c1)(x)
        z2 = jax.vmap(net.c2)(jax.nn.relu(z1))
        return z1, z2, jax.vmap(net.fc)(jax.nn.relu(z2).reshape(len(x), -1))

    _unit([float(z.var()) for z in pre_activations(new, images)])


class NnxStack(nnx.Module):
    """Sixteen Pair blocks created with nnx.vmap (kernels (16, 16, 16): which axis is the layer
    axis cannot be read from the shape) and run with nnx.scan."""

    def __init__(self, rngs, reverse=False):
        self.reverse = reverse

        @nnx.split_rngs(splits=16)
        @nnx.vmap(in_axes=(0,), out_axes=0)
        def create(rngs):
            return Pair(rngs)

        self.blocks = create(rngs)

    def __call__(self, x):
        @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry, reverse=self.reverse)
        def step(h, block):
            return block(h)

        return step(x, self.blocks)


def test_lsuv_nnx_scan_stack_per_slice_in_execution_order():
    """A reversed nnx.scan runs slice 15 first: each call is matched to the slice it used."""
    model = NnxStack(nnx.Rngs(0), reverse=True)
    new, report = lsuv(KEY, model, X)
    order = range(15, -1, -1)
    assert [r.name for r in report] == [f"blocks/{n}/kernel[{t}]" for t in order for n in "ab"]
    a, b = new.blocks.a, new.blocks.b
    assert a.kernel[...].shape == (16, 16, 16)
    h, variances = np.asarray(X, np.float64), []
    for t in order:
        for layer in (a, b):
            z = h @ np.asarray(layer.kernel[...][t], np.float64) + np.asarray(layer.bias[...][t], np.float64)
            variances.append(z.var())
            h = np.tanh(z)
    _unit(variances)
    for t in (0, 15):  # each slice drawn as its own (16, 16) orthogonal matrix
        _scaled_orthonormal(a.kernel[...][t])
