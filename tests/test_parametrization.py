"""Tests of jinit.parametrization: the µP / NTK / Depth-µP tables, the optax transform,
coordinate checks, and nnx / Equinox models."""

from __future__ import annotations

import math

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

import jinit
from jinit import parametrization as P
from jinit.layout import Layout

IN, OUT, BASE, WIDE = 3, 2, 8, 32  # m = 4
X = jnp.ones((2, IN))


def mlp(width: int) -> nn.Module:
    return nn.Sequential([nn.Dense(width), nn.relu, nn.Dense(width), nn.relu, nn.Dense(OUT)])


def shapes(width: int):
    return jax.eval_shape(mlp(width).init, jax.random.key(0), X)


B, T = shapes(BASE), shapes(WIDE)
K0, B0, K2, B2, K4, B4 = (f"params/layers_{i}/{n}" for i in (0, 2, 4) for n in ("kernel", "bias"))

# ---------------------------------------------------------------------------
# shapes and roles


def test_base_shapes_multipliers():
    m = P.base_shapes(B, T)
    assert (m[K0].m_in, m[K0].m_out, m[K0].fan_in, m[K0].base_fan_in) == (1.0, 4.0, IN, IN)
    assert (m[K2].m_in, m[K2].m_out, m[K2].ninf) == (4.0, 4.0, 2)
    assert (m[K4].m_in, m[K4].m_out, m[K4].ninf) == (4.0, 1.0, 1)
    assert (m[B0].m_out, m[B0].fan_in, m[B4].m_out) == (4.0, None, 1.0)
    assert m[K2].infinite == (True, True) and m[K4].infinite == (True, False)


def test_roles_from_growth_and_rules():
    expected = {B0: "bias", K0: "input", B2: "bias", K2: "hidden", B4: "bias", K4: "output"}
    assert P.roles(T, base=B) == expected
    # target == base: the width dims come from delta (mup's set_base_shapes(delta=))
    assert P.roles(B, base=B, delta=T) == expected
    over = P.roles(T, base=B, rules=[("*layers_2/kernel", "residual_output")])
    assert over[K2] == "residual_output" and over[K4] == "output"


def test_roles_errors_name_the_parameter():
    with pytest.raises(ValueError, match="layers_0/kernel"):
        P.roles(T)  # kernels need base= or a rule
    with pytest.raises(ValueError, match="expected one of"):
        P.roles(T, base=B, rules=[("*kernel", "weights")])
    with pytest.raises(ValueError, match="different parameters"):
        P.base_shapes({"a": jnp.zeros(3)}, {"b": jnp.zeros(3)})


# ---------------------------------------------------------------------------
# the tables, factor by factor (m = 4)

LR = {
    ("standard", "sgd"): {K0: 1, B0: 1, K2: 1, B2: 1, K4: 1, B4: 1},
    ("standard", "adam"): {K0: 1, B0: 1, K2: 1, B2: 1, K4: 1, B4: 1},
    ("ntk", "sgd"): {K0: 1, B0: 1, K2: 1 / 4, B2: 1, K4: 1 / 4, B4: 1},
    ("ntk", "adam"): {K0: 1, B0: 1, K2: 1 / 2, B2: 1, K4: 1 / 2, B4: 1},
    # MuSGD: vector-like x width_mult (input: m_out, biases: m, readout: m_in), matrix-like / (m_in/m_out)
    ("mup", "sgd"): {K0: 4, B0: 4, K2: 1, B2: 4, K4: 4, B4: 1},
    # MuAdam: matrix-like / width_mult (fan-in), everything else x 1
    ("mup", "adam"): {K0: 1, B0: 1, K2: 1 / 4, B2: 1, K4: 1, B4: 1},
}


@pytest.mark.parametrize("name,opt", sorted(LR))
def test_lr_factors_exact(name, opt):
    assert P.PARAMETRIZATIONS[name].lr_factors(opt, B, T) == {p: float(f) for p, f in LR[(name, opt)].items()}
    # at the base every factor is 1
    assert set(P.PARAMETRIZATIONS[name].lr_factors(opt, B, B, delta=T).values()) == {1.0}


def test_multipliers_exact():
    assert P.mup.multipliers(B, T) == {K4: 0.25}
    assert P.standard.multipliers(B, T) == {} and P.ntk.multipliers(B, T) == {}
    assert P.mup.multipliers(B, B, delta=T) == {}


INIT = {  # (parametrization) -> path -> description of the rule
    "standard": {K0: "input: var 1/fan_in", K2: "hidden: var 2/fan_in", K4: "output: var 2/fan_in"},
    "ntk": {K0: "input: var 1/fan_in", K2: "hidden: var 2/fan_in", K4: "output: var 2/fan_in"},
    "mup": {K0: "input: var 1/fan_in", K2: "hidden: var 2/fan_in", K4: "output: var 8/fan_in"},
}


@pytest.mark.parametrize("name", sorted(INIT))
def test_init_rules_exact(name):
    rules = P.PARAMETRIZATIONS[name].init_rules(B, T, "relu")
    got = {r.pattern[4:-1].replace("\\", ""): r.what for r in rules}
    assert {p: got[p] for p in INIT[name]} == INIT[name]
    assert got[B0] == got[B2] == got[B4] == "bias: 0"


def test_init_variances_on_the_model():
    module = mlp(256)
    base = shapes(64)
    target = jax.eval_shape(module.init, jax.random.key(0), X)
    v = jinit.init(module, P.mup.init_rules(base, target, "relu"), jax.random.key(0), X)["params"]
    assert abs(float(v["layers_0"]["kernel"].var()) * IN - 1) < 0.1  # 1/fan_in
    assert abs(float(v["layers_2"]["kernel"].var()) * 256 / 2 - 1) < 0.05  # 2/fan_in
    assert abs(float(v["layers_4"]["kernel"].var()) * 64 / 2 - 1) < 0.15  # 2/base_fan_in = 2*m/fan_in
    assert float(jnp.abs(v["layers_2"]["bias"]).sum()) == 0.0
    zero = P.mup.init_rules(base, target, "relu", readout_zero_init=True)
    assert float(jnp.abs(jinit.init(module, zero, jax.random.key(0), X)["params"]["layers_4"]["kernel"]).sum()) == 0


# ---------------------------------------------------------------------------
# the optax transform: one step by hand


def _grads(tree):
    leaves = jax.tree.leaves(tree)
    vals = [jnp.full(l.shape, 0.5 + i, l.dtype) for i, l in enumerate(leaves)]
    return jax.tree.unflatten(jax.tree.structure(tree), vals)


@pytest.mark.parametrize("opt", ["sgd", "adam"])
def test_one_step_updates(opt):
    params = jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), T)
    g = _grads(params)
    lr = 0.1
    tx = P.mup.optimizer(opt, B, T, learning_rate=lr)
    chained = optax.chain(optax.sgd(lr) if opt == "sgd" else optax.adam(lr), P.mup.scale_updates(opt, B, T))
    for t in (tx, chained):
        u, _ = jax.jit(t.update)(g, t.init(params), params)
        for p, leaf in jinit.tree.leaves_with_paths(u):
            grad = dict(jinit.tree.leaves_with_paths(g))[p]
            f = LR[("mup", opt)][p]
            # SGD: -lr f g; Adam's first step: -lr f g / (|g| + eps) = -lr f sign(g) (up to eps)
            want = -lr * f * (grad if opt == "sgd" else grad / (jnp.abs(grad) + 1e-8))
            # float32 bias correction of Adam: 1 - 0.999 is not exact
            np.testing.assert_allclose(np.asarray(leaf), np.asarray(want), rtol=1e-6 if opt == "sgd" else 2e-5, err_msg=p)


def test_scale_updates_unknown_path_is_an_error():
    tx = P.mup.scale_updates("sgd", B, T)
    with pytest.raises(KeyError, match="no learning-rate factor"):
        tx.update({"other": jnp.ones(2)}, tx.init(None))


def test_apply_multipliers_is_mureadout():
    params = jax.tree.map(lambda s: jnp.ones(s.shape, s.dtype), T)["params"]
    mults = {p[7:]: c for p, c in P.mup.multipliers(B, T).items()}
    out = mlp(WIDE).apply({"params": P.apply_multipliers(params, mults)}, X)
    h = nn.relu(nn.relu(X @ params["layers_0"]["kernel"] + 1) @ params["layers_2"]["kernel"] + 1)
    np.testing.assert_allclose(out, (h / 4) @ params["layers_4"]["kernel"] + 1, rtol=1e-6)  # (x/m) W + b
    with pytest.raises(KeyError):
        P.apply_multipliers(params, {"nope": 2.0})


# ---------------------------------------------------------------------------
# Depth-µP


def _stacked(width: int, depth: int):
    tree = {"embed": {"kernel": jnp.zeros((IN, width))},
            "blocks": {"fc2": {"kernel": jnp.zeros((depth, width, width))}},
            "head": {"kernel": jnp.zeros((width, OUT))}}
    lay = {"blocks/fc2/kernel": Layout((depth, width, width), (width, width), (0,), role="kernel")}
    return tree, lay


def test_depth_mup_factors():
    (b, bl), (t, tl) = _stacked(BASE, 2), _stacked(WIDE, 8)  # m = 4, L0/L = 1/4
    kw = dict(layouts=tl, base_layouts=bl)
    assert P.roles(t, base=b, **kw)["blocks/fc2/kernel"] == "residual_output"  # *fc2/kernel
    assert P.depth_mup.multipliers(b, t, **kw) == {"blocks/fc2/kernel": 0.5, "head/kernel": 0.25}
    assert P.depth_mup.lr_factors("adam", b, t, **kw) == {
        "blocks/fc2/kernel": 1 / 8, "embed/kernel": 1.0, "head/kernel": 1.0}  # 1/m * sqrt(L0/L)
    assert P.depth_mup.lr_factors("sgd", b, t, **kw) == P.mup.lr_factors("sgd", b, t, **kw)
    assert P.depth_mup.multipliers(b, t, depth=(4, 4), **kw) == {"head/kernel": 0.25}
    with pytest.raises(ValueError, match="residual_output"):
        P.depth_mup.multipliers(b, t, rules=[("*fc2/kernel", "hidden")], **kw)


# ---------------------------------------------------------------------------
# coordinate check


def test_coord_check_slopes():
    x = jax.random.normal(jax.random.key(0), (32, 8))
    y = jnp.ones((32, 1))
    make = lambda w: nn.Sequential([nn.Dense(w), nn.relu, nn.Dense(w), nn.relu, nn.Dense(1)])
    kw = dict(steps=1, lr=0.01, optimizer="adam", key=jax.random.key(1), seeds=3)
    mu = P.coord_check(make, [32, 128], (x, y), parametrization="mup", **kw)
    sp = P.coord_check(make, [32, 128], (x, y), parametrization=P.standard, **kw)
    assert mu.layers == ["layers_0", "layers_2", "layers_4"]  # relu is not a module
    for layer in ("layers_0", "layers_2", "layers_4"):
        assert abs(mu.delta_slopes[layer][1]) < 0.2, (layer, mu.delta_slopes[layer])
    for layer in ("layers_0", "layers_2"):
        assert abs(mu.slopes[layer][0]) < 0.1 and abs(mu.slopes[layer][1]) < 0.2
    assert -0.9 < mu.slopes["layers_4"][0] < -0.2  # the µP readout at init: n^(-1/2)
    assert sp.delta_slopes["layers_2"][1] > 0.6 and sp.delta_slopes["layers_4"][1] > 0.6  # standard + Adam


# ---------------------------------------------------------------------------
# nnx and Equinox


class NnxMLP(nnx.Module):
    def __init__(self, width: int, rngs: nnx.Rngs):
        self.inp = nnx.Linear(IN, width, rngs=rngs)
        self.hid = nnx.Linear(width, width, rngs=rngs)
        self.norm = nnx.LayerNorm(width, rngs=rngs)
        self.out = nnx.Linear(width, OUT, rngs=rngs)


def test_nnx_model():
    base = nnx.eval_shape(lambda: NnxMLP(BASE, nnx.Rngs(0)))
    model = NnxMLP(256, nnx.Rngs(0))
    r = P.roles(model, base=base)
    assert r == {"hid/bias": "bias", "hid/kernel": "hidden", "inp/bias": "bias", "inp/kernel": "input",
                 "norm/bias": "norm", "norm/scale": "norm", "out/bias": "bias", "out/kernel": "output"}
    new = jinit.reinit(jax.random.key(0), model, P.mup.init_rules(base, model, "relu"))
    assert abs(float(new.hid.kernel[...].var()) * 256 / 2 - 1) < 0.05
    assert abs(float(new.out.kernel[...].var()) * BASE / 2 - 1) < 0.3
    assert float(new.norm.scale[...].min()) == 1.0
    assert P.mup.lr_factors("adam", base, model)["hid/kernel"] == BASE / 256


def test_equinox_model():
    base = eqx.filter_eval_shape(eqx.nn.MLP, IN, OUT, BASE, 2, key=jax.random.key(0))
    model = eqx.nn.MLP(IN, OUT, 256, 2, key=jax.random.key(0))  # weights are (out, in)
    r = P.roles(model, base=base)
    assert {p: r[p] for p in ("layers/0/weight", "layers/1/weight", "layers/2/weight")} == {
        "layers/0/weight": "input", "layers/1/weight": "hidden", "layers/2/weight": "output"}
    new = jinit.reinit(jax.random.key(0), model, P.mup.init_rules(base, model, "relu"))
    assert abs(float(new.layers[1].weight.var()) * 256 / 2 - 1) < 0.05
    assert abs(float(new.layers[0].weight.var()) * IN - 1) < 0.15
    assert P.mup.multipliers(base, model) == {"layers/2/weight": BASE / 256}
    assert P.mup.lr_factors("sgd", base, model)["layers/0/weight"] == 256 / BASE
