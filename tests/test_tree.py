"""Tests of jinit.tree: path rules, key stability, dtypes, shardings, nnx, recipes."""

from __future__ import annotations

import functools
import math
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jinit import basic, variance
from jinit.layout import LeafSpec
from jinit.structured import orthogonal
from jinit.tree import (
    fixup_rules,
    gpt2_rules,
    match_rules,
    path_hash,
    reinit,
    rezero_rules,
    skipinit_rules,
    tree_paths,
)
from tests import stats

KEY = jax.random.key(0)


def _inputs(shape, seed=0):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape), jnp.float32)


class MLP(nn.Module):
    widths: tuple = (8, 8, 4)

    @nn.compact
    def __call__(self, x):
        for w in self.widths:
            x = nn.relu(nn.Dense(w)(x))
        return x


def _fake_params(model, *args, seed=0):
    """Variables of the model's shapes filled with numpy normals: ``eval_shape``
    compiles nothing, while jitting ``model.init`` costs seconds per model."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(model.init, KEY, *args)
    return jax.tree.map(lambda s: jnp.asarray(rng.standard_normal(s.shape) * 0.1, s.dtype), shapes)


@functools.lru_cache
def _mlp_params(widths=(8, 8, 4)):
    return _fake_params(MLP(widths), jnp.ones((1, 6)))


# ---------------------------------------------------------------------------
# paths and matching


def test_paths_linen_and_nnx():
    assert tree_paths(_mlp_params((3,))) == ["params/Dense_0/bias", "params/Dense_0/kernel"]
    model = nnx.Sequential(nnx.Linear(2, 3, rngs=nnx.Rngs(0)), nnx.Linear(3, 1, rngs=nnx.Rngs(1)))
    assert tree_paths(nnx.state(model)) == ["layers/0/bias", "layers/0/kernel", "layers/1/bias", "layers/1/kernel"]
    boxed = nn.Dense(3, kernel_init=nn.with_partitioning(nn.initializers.lecun_normal(), (None, "x")))
    assert tree_paths(boxed.init(KEY, jnp.ones((1, 2)))) == ["params/bias", "params/kernel"]


def test_path_hash_is_stable():
    # Fixed values: BLAKE2b is the same in every process and Python version.
    assert path_hash("params/Dense_0/kernel") == 2043822242
    assert path_hash("layers/0/kernel") == 2632528724


def test_first_match_wins_and_pattern_kinds():
    params = _mlp_params()
    rules = [
        ("params/Dense_2/*", None),  # exempt the last layer from everything below
        ("re:Dense_[01]/bias$", basic.ones()),
        (re.compile(r"Dense_0/kernel"), basic.constant(2.0)),
        ("*kernel", basic.constant(3.0)),
        ("*", basic.constant(4.0)),
    ]
    assert match_rules(params, rules) == {
        "params/Dense_0/bias": 1,
        "params/Dense_0/kernel": 2,
        "params/Dense_1/bias": 1,
        "params/Dense_1/kernel": 3,
        "params/Dense_2/bias": 0,
        "params/Dense_2/kernel": 0,
    }
    new = reinit(KEY, params, rules)["params"]
    assert (new["Dense_0"]["bias"] == 1).all() and (new["Dense_1"]["bias"] == 1).all()
    assert (new["Dense_0"]["kernel"] == 2).all() and (new["Dense_1"]["kernel"] == 3).all()
    np.testing.assert_array_equal(new["Dense_2"]["kernel"], params["params"]["Dense_2"]["kernel"])
    # glob matches the whole path; '*' crosses '/'; regex searches
    assert match_rules(params, [("Dense_0/kernel", basic.zeros())])["params/Dense_0/kernel"] is None
    assert match_rules(params, [("re:Dense_0/kernel", basic.zeros())])["params/Dense_0/kernel"] == 0
    # an ordered mapping works like a list of pairs
    as_dict = reinit(KEY, params, {"*bias": basic.ones(), "*": basic.zeros()})["params"]
    assert (as_dict["Dense_1"]["bias"] == 1).all() and not as_dict["Dense_1"]["kernel"].any()


def test_unmatched_leaves_are_kept():
    params = _mlp_params()
    new = reinit(KEY, params, [("*Dense_1/kernel", basic.zeros())])
    for path, a, b in zip(tree_paths(params), jax.tree.leaves(params), jax.tree.leaves(new)):
        if path != "params/Dense_1/kernel":
            assert a is b


def test_leaf_key_is_fold_in_of_path_hash():
    params = _mlp_params()
    init = variance.he_normal()
    new = reinit(KEY, params, [("*kernel", init)])
    for name in ("Dense_0", "Dense_1", "Dense_2"):
        path = f"params/{name}/kernel"
        leaf = params["params"][name]["kernel"]
        expected = init(jax.random.fold_in(KEY, path_hash(path)), leaf.shape, leaf.dtype)
        np.testing.assert_array_equal(new["params"][name]["kernel"], expected)
    assert not np.array_equal(new["params"]["Dense_0"]["kernel"][:6, :8], new["params"]["Dense_1"]["kernel"][:6, :8])


def test_adding_a_layer_keeps_the_others():
    small, big = _mlp_params((8, 8)), _mlp_params((8, 8, 5))
    rules = [("*kernel", variance.he_normal()), ("*bias", basic.normal(0.1))]
    a, b = reinit(KEY, small, rules)["params"], reinit(KEY, big, rules)["params"]
    for name in ("Dense_0", "Dense_1"):
        for leaf in ("kernel", "bias"):
            np.testing.assert_array_equal(a[name][leaf], b[name][leaf])


def test_dtypes_kept_and_non_float_leaves_skipped():
    params = {
        "w": jnp.zeros((4, 3), jnp.bfloat16),
        "h": jnp.zeros((4, 3), jnp.float16),
        "step": jnp.zeros((), jnp.int32),
        "mask": jnp.ones((3,), bool),
        "rng": jax.random.key(5),
    }
    new = reinit(KEY, params, [("*", basic.ones())])
    assert new["w"].dtype == jnp.bfloat16 and (new["w"] == 1).all()
    assert new["h"].dtype == jnp.float16 and (new["h"] == 1).all()
    assert new["step"] is params["step"] and new["mask"] is params["mask"] and new["rng"] is params["rng"]


def test_shardings_kept_and_values_independent_of_them():
    mesh = jax.make_mesh((4, 2), ("a", "b"))
    params = {
        "dense": {"kernel": jnp.zeros((16, 32)), "bias": jnp.zeros(32)},
        "conv": {"kernel": jnp.zeros((3, 3, 8, 16))},
    }
    shardings = {
        "dense": {"kernel": NamedSharding(mesh, P("a", "b")), "bias": NamedSharding(mesh, P("b"))},
        "conv": {"kernel": NamedSharding(mesh, P(None, None, "b", "a"))},
    }
    sharded = jax.device_put(params, shardings)
    rules = [("*bias", basic.normal(0.1)), ("*", variance.he_normal(), LeafSpec())]
    new_sharded = reinit(KEY, sharded, rules)
    new_plain = reinit(KEY, params, rules)
    leaves = zip(jax.tree.leaves(new_sharded), jax.tree.leaves(shardings), jax.tree.leaves(new_plain))
    for leaf, sharding, plain in leaves:
        assert leaf.sharding == sharding
        np.testing.assert_array_equal(leaf, plain)


def test_nnx_state_roundtrip():
    class Net(nnx.Module):
        def __init__(self, rngs):
            self.fc1 = nnx.Linear(6, 16, rngs=rngs)
            self.bn = nnx.BatchNorm(16, rngs=rngs)
            self.drop = nnx.Dropout(0.1, rngs=rngs)
            self.fc2 = nnx.Linear(16, 3, rngs=rngs)

    model = Net(nnx.Rngs(0))
    rules = [("fc2/*", basic.zeros()), ("*kernel", orthogonal()), ("*", basic.constant(0.5))]
    state = nnx.state(model)
    new = reinit(KEY, state, rules)
    nnx.update(model, new)
    assert not model.fc2.kernel[...].any() and not model.fc2.bias[...].any()
    k = np.asarray(model.fc1.kernel[...])
    np.testing.assert_allclose(k @ k.T, np.eye(6), atol=1e-5)
    assert (model.bn.scale[...] == 0.5).all() and (model.bn.mean[...] == 0.5).all()
    assert isinstance(model.bn.mean, nnx.BatchStat)
    np.testing.assert_array_equal(model.fc1.bias[...], 0.5)
    # same values through nnx.split (params only), since paths are the same
    _, params, _ = nnx.split(Net(nnx.Rngs(1)), nnx.Param, ...)
    again = reinit(KEY, params, rules)
    np.testing.assert_array_equal(again["fc1"]["kernel"][...], k)


def test_reinit_errors_name_the_rule():
    params = _mlp_params()
    with pytest.raises(TypeError, match=r"reinit: rule 1 \('\*kernel'\): initializer must be an initializer"):
        reinit(KEY, params, [("*bias", basic.zeros()), ("*kernel", 3)])
    with pytest.raises(TypeError, match=r"reinit: rule 0 \(5\): a pattern must be a non-empty glob string"):
        reinit(KEY, params, [(5, basic.zeros())])
    with pytest.raises(ValueError, match=r"reinit: rule 0 .*invalid regular expression '\(unclosed'"):
        reinit(KEY, params, [("re:(unclosed", basic.zeros())])
    with pytest.raises(TypeError, match=r"reinit: rule 0 must be a \(pattern, initializer\) pair"):
        reinit(KEY, params, ["*kernel"])
    with pytest.raises(TypeError, match="reinit: rules must be a sequence of"):
        reinit(KEY, params, "*kernel")
    with pytest.raises(ValueError, match=r"reinit: rule 0 \('\*'\) failed on 'params/Dense_0/bias' \(shape \(8,\)"):
        reinit(KEY, params, [("*", variance.he_normal())])
    with pytest.raises(ValueError, match=r"reinit: rule 0 \('\*bias'\) returned shape \(2,\) for 'params/Dense_0/bias'"):
        reinit(KEY, params, [("*bias", lambda k, s, d: jnp.zeros(2, d))])
    with pytest.raises(TypeError, match="reinit: key must be a PRNG key"):
        reinit(params, KEY, [])


# ---------------------------------------------------------------------------
# recipes on a small residual MLP


class Block(nn.Module):
    width: int
    gate: bool = False

    @nn.compact
    def __call__(self, x):
        h = nn.Dense(self.width, name="fc1")(x)
        h = nn.Dense(self.width, name="fc2")(nn.relu(h))
        if self.gate:
            h = self.param("alpha", nn.initializers.ones, ()) * h
        return x + h


class ResMLP(nn.Module):
    width: int = 128
    depth: int = 4
    classes: int = 10
    gate: bool = False

    @nn.compact
    def __call__(self, x, features: bool = False):
        x = nn.Dense(self.width, name="stem")(x)
        for i in range(self.depth):
            x = Block(self.width, self.gate, name=f"block_{i}")(x)
        if features:
            return x
        return nn.Dense(self.classes, name="head")(x)


def _res_params(**kw):
    model = ResMLP(**kw)
    return model, _fake_params(model, jnp.ones((1, 32)))


@functools.partial(jax.jit, static_argnums=0)
def _outputs(model, params, x):
    """(features, logits) of the model and of its identity path head(stem(x))."""
    p = params["params"]
    stem = x @ p["stem"]["kernel"] + p["stem"]["bias"]
    logits = stem @ p["head"]["kernel"] + p["head"]["bias"]
    return model.apply(params, x, features=True), model.apply(params, x), stem, logits


def test_fixup_on_resmlp():
    L, width = 4, 128
    model, params = _res_params(width=width, depth=L)
    rules = fixup_rules(L, ["*block_*/fc1/kernel", "*block_*/fc2/kernel"], "*head/*", scalar_biases="*block_*/bias")
    new = reinit(KEY, params, rules)
    p = new["params"]
    for i in range(L):
        assert not p[f"block_{i}"]["fc2"]["kernel"].any()
    assert not p["head"]["kernel"].any() and not p["head"]["bias"].any()
    # m = 2: He variance times L^(-2/(2m-2)) = 1/L
    fc1 = np.concatenate([np.ravel(p[f"block_{i}"]["fc1"]["kernel"]) for i in range(L)])
    stats.assert_mean_var(fc1, 0.0, 2.0 / width / L)
    stats.assert_var(p["stem"]["kernel"], 2.0 / 32)
    # Fixup's biases start at 0; the stem's is not a branch parameter and is kept
    assert not any(p[f"block_{i}"][fc]["bias"].any() for i in range(L) for fc in ("fc1", "fc2"))
    np.testing.assert_array_equal(p["stem"]["bias"], params["params"]["stem"]["bias"])
    feats, out, stem, _ = _outputs(model, new, _inputs((16, 32)))
    np.testing.assert_array_equal(feats, stem)
    np.testing.assert_array_equal(out, np.zeros((16, 10), np.float32))


def test_fixup_exponent_three_layer_branches():
    L, width = 9, 200
    params = {f"b{i}": {f"l{j}": {"kernel": jnp.zeros((width, width))} for j in range(3)} for i in range(L)}
    params["stem"] = {"kernel": jnp.zeros((width, width))}
    rules = fixup_rules(L, ["*/l0/kernel", "*/l1/kernel", "*/l2/kernel"], scale=1.0, others=None)
    new = reinit(KEY, params, rules)
    scaled = np.concatenate([np.ravel(new[f"b{i}"][f"l{j}"]["kernel"]) for i in range(L) for j in (0, 1)])
    stats.assert_var(scaled, 1.0 / width * L ** (-2 / 4))  # L^(-1/(2m-2)) on the std, m = 3
    assert all(not new[f"b{i}"]["l2"]["kernel"].any() for i in range(L))
    assert new["stem"]["kernel"] is params["stem"]["kernel"]  # others=None
    # m = 1: only zeroing, no scaled layer
    assert [r.pattern for r in fixup_rules(3, "*/l0/kernel", others=None)] == ["*/l0/kernel"]
    # scalar biases and multipliers
    extra = fixup_rules(2, ["*a", "*b"], scalar_biases="*fixup_bias*", multipliers="*fixup_scale", others=None)
    tree = {f"{i}": {"a": jnp.ones((4, 4)), "b": jnp.ones((4, 4))} for i in range(2)}
    out = reinit(KEY, {**tree, "x_fixup_bias0": jnp.ones(()), "x_fixup_scale": jnp.zeros(())}, extra)
    assert float(out["x_fixup_bias0"]) == 0.0 and float(out["x_fixup_scale"]) == 1.0


def test_rezero_on_resmlp():
    model, params = _res_params(gate=True, depth=4)
    new = reinit(KEY, params, rezero_rules("*alpha"))
    assert all(float(new["params"][f"block_{i}"]["alpha"]) == 0.0 for i in range(4))
    feats, out, stem, logits = _outputs(model, new, _inputs((8, 32)))
    np.testing.assert_array_equal(feats, stem)
    np.testing.assert_allclose(out, logits, rtol=1e-6, atol=1e-6)
    assert skipinit_rules is rezero_rules


class GPTBlock(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x):
        x = x + nn.MultiHeadDotProductAttention(num_heads=4, name="attn")(nn.LayerNorm(name="ln_1")(x))
        h = nn.Dense(4 * self.width, name="c_fc")(nn.LayerNorm(name="ln_2")(x))
        return x + nn.Dense(self.width, name="c_proj")(nn.gelu(h))


class TinyGPT(nn.Module):
    width: int = 64
    n_layers: int = 3

    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(100, self.width, name="wte")(tokens)
        for i in range(self.n_layers):
            x = GPTBlock(self.width, name=f"h_{i}")(x)
        return nn.Dense(100, name="lm_head")(nn.LayerNorm(name="ln_f")(x))


def test_gpt2_rules_on_tiny_gpt():
    n = 3
    model = TinyGPT(n_layers=n)
    params = _fake_params(model, jnp.zeros((1, 4), jnp.int32))
    rules = gpt2_rules(n, residual_pattern=["*c_proj/kernel", "*attn/out/kernel"])
    new = reinit(KEY, params, rules)
    p = new["params"]
    res = np.concatenate(
        [np.ravel(p[f"h_{i}"]["c_proj"]["kernel"]) for i in range(n)]
        + [np.ravel(p[f"h_{i}"]["attn"]["out"]["kernel"]) for i in range(n)]
    )
    stats.assert_mean_var(res, 0.0, (0.02 / math.sqrt(2 * n)) ** 2)
    other = np.concatenate(
        [np.ravel(p[f"h_{i}"]["c_fc"]["kernel"]) for i in range(n)]
        + [np.ravel(p[f"h_{i}"]["attn"]["query"]["kernel"]) for i in range(n)]
        + [np.ravel(p["wte"]["embedding"]), np.ravel(p["lm_head"]["kernel"])]
    )
    stats.assert_mean_var(other, 0.0, 0.02**2)
    biases = [leaf for path, leaf in zip(tree_paths(new), jax.tree.leaves(new)) if path.endswith("bias")]
    assert biases and not any(np.asarray(b).any() for b in biases)
    np.testing.assert_array_equal(p["ln_f"]["scale"], params["params"]["ln_f"]["scale"])  # kept


def test_recipe_errors():
    with pytest.raises(ValueError, match="gpt2_rules: n_layers must be an int >= 1, got 0"):
        gpt2_rules(0)
    with pytest.raises(ValueError, match="gpt2_rules: stddev must be >= 0"):
        gpt2_rules(2, stddev=-1.0)
    with pytest.raises(TypeError, match="gpt2_rules: residual_pattern must be a pattern"):
        gpt2_rules(2, residual_pattern=3)
    with pytest.raises(ValueError, match="fixup_rules: num_branches must be an int >= 1"):
        fixup_rules(0, ["*a"])
    with pytest.raises(TypeError, match="fixup_rules: branch_layers must be a pattern"):
        fixup_rules(2, [])
    with pytest.raises(ValueError, match="fixup_rules: scale must be > 0"):
        fixup_rules(2, ["*a", "*b"], scale=0.0)
    with pytest.raises(TypeError, match="rezero_rules: gate_pattern must be a pattern"):
        rezero_rules(None)
