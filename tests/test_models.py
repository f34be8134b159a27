"""Whole-model initialization as users meet it: scanned and vmapped stacks, GPT-2 with Flax's
own attention, a scanned ResNet, nnx and Equinox models. Every statistic is asserted per tensor
and per stacked slice, against the formula, with tolerances from the sample size."""

from __future__ import annotations

import math

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jinit
from jinit.layout import Layout, LeafSpec, draw, stacked_axes
from jinit.models import linen_layouts, model_layouts
from tests import stats

KEY = jax.random.key(0)


def _slices(x):
    """The stacked slices of a leaf stacked on axis 0."""
    return [np.asarray(x[i]) for i in range(x.shape[0])]


def _assert_independent(a, b):
    """Two slices drawn with independent keys: sample correlation within 5 standard errors of 0."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    r = np.corrcoef(a, b)[0, 1]
    assert abs(r) < 5 / math.sqrt(a.size), f"slices correlated: r = {r:.4f}"


# ---------------------------------------------------------------------------
# models


class ScanMLP(nn.Module):
    width: int = 256
    depth: int = 8
    kernel_init: object = nn.initializers.lecun_normal()

    @nn.compact
    def __call__(self, x):
        def body(mdl, h, _):
            return nn.relu(nn.Dense(self.width, kernel_init=self.kernel_init)(h)), None

        scan = nn.scan(body, variable_axes={"params": 0}, split_rngs={"params": True}, length=self.depth)
        return scan(self, x, None)[0]


class GPTBlock(nn.Module):
    width: int
    heads: int = 4

    @nn.compact
    def __call__(self, x):
        h = nn.LayerNorm(name="ln_1")(x)
        x = x + nn.MultiHeadDotProductAttention(num_heads=self.heads, name="attn")(h)
        h = nn.Dense(4 * self.width, name="c_fc")(nn.LayerNorm(name="ln_2")(x))
        return x + nn.Dense(self.width, name="c_proj")(nn.gelu(h))


class ScanGPTBlock(GPTBlock):
    def __call__(self, x, _):
        return super().__call__(x), None


class GPT(nn.Module):
    width: int = 64
    n_layers: int = 3
    scanned: bool = False

    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(50, self.width, name="wte")(tokens)
        if self.scanned:
            blocks = nn.scan(ScanGPTBlock, variable_axes={"params": 0}, split_rngs={"params": True},
                             length=self.n_layers)
            x = blocks(self.width, name="block")(x, None)[0]
        else:
            for i in range(self.n_layers):
                x = GPTBlock(self.width, name=f"h_{i}")(x)
        return nn.Dense(50, name="lm_head")(nn.LayerNorm(name="ln_f")(x))


class ResBlock(nn.Module):
    channels: int

    @nn.compact
    def __call__(self, x, _):
        h = nn.Conv(self.channels, (3, 3), name="conv1")(x)
        h = nn.Conv(self.channels, (3, 3), name="conv2")(nn.relu(h))
        return nn.relu(x + h), None


class ResNet(nn.Module):
    channels: int = 32
    blocks: int = 6

    @nn.compact
    def __call__(self, x):
        x = nn.Conv(self.channels, (3, 3), name="stem")(x)
        scan = nn.scan(ResBlock, variable_axes={"params": 0}, split_rngs={"params": True}, length=self.blocks)
        x = scan(self.channels, name="blocks")(x, None)[0]
        return nn.Dense(10, name="head")(x.mean(axis=(1, 2)))


def _tokens():
    return jnp.zeros((1, 8), jnp.int32)


# ---------------------------------------------------------------------------
# stacked layers


def test_scanned_stack_fans_per_layer_and_bit_identical_to_construction():
    x = jnp.ones((1, 256))
    params = jinit.init(ScanMLP(), [("*kernel", jinit.he_normal())], KEY, x)
    kernel = params["params"]["Dense_0"]["kernel"]
    assert kernel.shape == (8, 256, 256)
    for w in _slices(kernel):
        stats.assert_mean_var(w, 0.0, 2.0 / 256)
    _assert_independent(kernel[0], kernel[1])
    built = ScanMLP(kernel_init=jinit.he_normal()).init(KEY, x)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(built)):
        np.testing.assert_array_equal(a, b)
    # the signal survives the stack (with fan_in 8*256 it would shrink by 2e-4)
    z = jax.random.normal(jax.random.key(1), (512, 256))
    out = ScanMLP().apply(params, z)
    assert 0.5 < float(jnp.sqrt(jnp.mean(out**2))) < 2.0


def test_reinit_of_stacked_linen_params_needs_the_layout():
    x = jnp.ones((1, 256))
    params = ScanMLP().init(KEY, x)
    with pytest.raises(ValueError, match=r"cannot tell how he_normal should read 'params/Dense_0/kernel'.*LeafSpec"):
        jinit.reinit(KEY, params, [("*kernel", jinit.he_normal())])
    by_model = jinit.reinit(KEY, params, [("*kernel", jinit.he_normal())], layouts=linen_layouts(ScanMLP(), x))
    stated = jinit.reinit(KEY, params, [("*kernel", jinit.he_normal(), LeafSpec(stack_axes=0))])
    np.testing.assert_array_equal(by_model["params"]["Dense_0"]["kernel"], stated["params"]["Dense_0"]["kernel"])
    for w in _slices(stated["params"]["Dense_0"]["kernel"]):
        stats.assert_var(w, 2.0 / 256)


def _nnx_stack(n=8, width=128, features=None):
    @nnx.split_rngs(splits=n)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def make(rngs):
        return nnx.Linear(width, features or width, rngs=rngs)

    return make(nnx.Rngs(0))


def test_nnx_vmap_stack_per_slice_and_input_untouched():
    stack = _nnx_stack()
    before = np.asarray(stack.kernel[...])
    new = jinit.reinit(KEY, stack, [("*kernel", jinit.he_normal()), ("*bias", jinit.normal(0.1))])
    np.testing.assert_array_equal(stack.kernel[...], before)  # the given model is not changed
    kernel = new.kernel[...]
    assert kernel.shape == (8, 128, 128)
    for w in _slices(kernel):
        stats.assert_var(w, 2.0 / 128)
    _assert_independent(kernel[2], kernel[5])
    stats.assert_var(new.bias[...], 0.01)


@pytest.mark.parametrize("name", ["orthogonal", "identity", "zero_hadamard", "sparse"])
def test_structured_initializers_per_slice_on_stacks(name):
    stack = _nnx_stack(n=4, width=64, features=32 if name == "orthogonal" else 64)
    factory = {"orthogonal": jinit.orthogonal, "identity": jinit.identity,
               "zero_hadamard": jinit.zero_hadamard, "sparse": jinit.sparse}[name]
    kernel = np.asarray(jinit.reinit(KEY, stack, [("*kernel", factory())]).kernel[...])
    for w in kernel:
        if name == "orthogonal":  # (64, 32): orthonormal columns
            np.testing.assert_allclose(w.T @ w, np.eye(32), atol=2e-5)
        elif name == "identity":
            np.testing.assert_array_equal(w, np.eye(64))
        elif name == "zero_hadamard":
            np.testing.assert_array_equal(w, np.asarray(jinit.zero_hadamard()(KEY, (64, 64))))
        else:  # 15 non-zero incoming weights per unit (column)
            np.testing.assert_array_equal((w != 0).sum(axis=0), np.full(64, 15))
    if name in ("orthogonal", "sparse"):
        assert not np.array_equal(kernel[0], kernel[1])
        _assert_independent(kernel[0], kernel[1])


def test_equinox_filter_vmap_stack_orthogonal_per_slice():
    keys = jax.random.split(KEY, 5)
    stack = eqx.filter_vmap(lambda k: eqx.nn.Linear(48, 48, key=k))(keys)
    layout = model_layouts(stack)["weight"]
    assert layout.stack_axes == (0,) and layout.init_shape == (48, 48) and layout.perm == (1, 0)
    new = jinit.reinit(KEY, stack, [("role:kernel", jinit.orthogonal())])
    for w in np.asarray(new.weight):
        np.testing.assert_allclose(w @ w.T, np.eye(48), atol=2e-5)


def test_ambiguous_stack_axes_are_an_error_with_the_fix():
    stack = _nnx_stack(n=16, width=16)  # (16, 16, 16): any axis could be the stacked one
    with pytest.raises(ValueError, match=r"stacked axes could be any of .*LeafSpec\(stack_axes=\(0,\)\)"):
        jinit.reinit(KEY, stack, [("*kernel", jinit.he_normal())])
    new = jinit.reinit(KEY, stack, [("*kernel", jinit.he_normal(), LeafSpec(stack_axes=0))])
    stats.assert_var(new.kernel[...], 2.0 / 16)
    # elementwise initializers need no layout
    jinit.reinit(KEY, stack, [("*kernel", jinit.normal(0.1))])


# ---------------------------------------------------------------------------
# attention and DenseGeneral: Flax flattens the kernel before calling the initializer


def test_mha_query_fan_in_is_the_flattened_one():
    mha = nn.MultiHeadDotProductAttention(num_heads=4, qkv_features=256)
    x = jnp.ones((1, 5, 256))
    params = jinit.init(mha, [("*kernel", jinit.lecun_normal())], KEY, x)["params"]
    assert params["query"]["kernel"].shape == (256, 4, 64)
    stats.assert_var(params["query"]["kernel"], 1.0 / 256)  # fan_in 256, not 256 * 4
    stats.assert_var(params["out"]["kernel"], 1.0 / 256)  # (4, 64, 256) read as (256, 256)
    built = nn.MultiHeadDotProductAttention(num_heads=4, qkv_features=256, kernel_init=jinit.lecun_normal())
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(built.init(KEY, x)["params"])):
        np.testing.assert_array_equal(a, b)
    again = jinit.reinit(KEY, {"params": params}, [("*kernel", jinit.lecun_normal())],
                         layouts=linen_layouts(mha, x))
    stats.assert_var(again["params"]["key"]["kernel"], 1.0 / 256)


def test_nnx_attention_orthogonal_on_the_flattened_map():
    mha = nnx.MultiHeadAttention(num_heads=4, in_features=64, qkv_features=64, decode=False, rngs=nnx.Rngs(0))
    new = jinit.reinit(KEY, mha, [("*kernel", jinit.orthogonal())])
    q = np.asarray(new.query.kernel[...]).reshape(64, 64)
    np.testing.assert_allclose(q.T @ q, np.eye(64), atol=2e-5)
    layouts = model_layouts(mha)
    assert layouts["out/kernel"].role == "attention_out" and layouts["query/kernel"].role == "kernel"


# ---------------------------------------------------------------------------
# GPT-2 recipe with Flax's own attention, unrolled and scanned


@pytest.mark.parametrize("scanned", [False, True])
def test_gpt2_rules_with_flax_attention(scanned):
    n, width = 3, 64
    model = GPT(width=width, n_layers=n, scanned=scanned)
    params = jinit.init(model, jinit.gpt2_rules(n), KEY, _tokens())["params"]
    blocks = [params["block"]] if scanned else [params[f"h_{i}"] for i in range(n)]
    res_std = 0.02 / math.sqrt(2 * n)
    for block in blocks:
        for leaf in (block["attn"]["out"]["kernel"], block["c_proj"]["kernel"]):
            for w in (_slices(leaf) if scanned else [leaf]):
                stats.assert_mean_var(w, 0.0, res_std**2)
        for leaf in (block["attn"]["query"]["kernel"], block["c_fc"]["kernel"]):
            stats.assert_var(leaf, 0.02**2)
        assert not any(np.asarray(block[m]["bias"]).any() for m in ("c_fc", "c_proj"))
        np.testing.assert_array_equal(block["ln_1"]["scale"], 1.0)
    stats.assert_var(params["wte"]["embedding"], 0.02**2)


def test_gpt2_rules_refuse_a_model_whose_mlp_projection_they_cannot_find():
    class Block(nn.Module):
        @nn.compact
        def __call__(self, x):
            x = x + nn.MultiHeadDotProductAttention(num_heads=2, name="attn")(x)
            return x + nn.Dense(32, name="mlp_out")(nn.gelu(nn.Dense(64, name="mlp_in")(x)))

    class Net(nn.Module):
        @nn.compact
        def __call__(self, x):
            return Block(name="b1")(Block(name="b0")(x))

    x = jnp.ones((1, 4, 32))
    with pytest.raises(ValueError, match=r"residual output projections\) set 2 layer slice\(s\), expected 4"):
        jinit.init(Net(), jinit.gpt2_rules(2), KEY, x)
    rules = jinit.gpt2_rules(2, residual_pattern=("role:attention_out", "*mlp_out/kernel"))
    params = jinit.init(Net(), rules, KEY, x)["params"]
    stats.assert_var(params["b1"]["mlp_out"]["kernel"], 0.02**2 / 4)


def test_gpt2_rules_on_equinox_and_nnx_attention():
    mha = eqx.nn.MultiheadAttention(num_heads=2, query_size=32, key=KEY)
    new = jinit.reinit(KEY, mha, jinit.gpt2_rules(1, residual_per_block=1))
    # one residual write in all (N = 1): the projection keeps sigma; the rule found it by role,
    # or it would have raised (it must set exactly one slice)
    stats.assert_var(new.output_proj.weight, 0.02**2)
    stats.assert_var(new.query_proj.weight, 0.02**2)
    nmha = nnx.MultiHeadAttention(num_heads=2, in_features=32, decode=False, rngs=nnx.Rngs(0))
    new = jinit.reinit(KEY, nmha, jinit.gpt2_rules(1, residual_per_block=1))
    stats.assert_var(new.out.kernel[...], 0.02**2)
    rules = jinit.gpt2_rules(4, residual_per_block=1)  # 4 writes: sigma / 2
    assert rules[0].init(KEY, (64, 64)).std() == pytest.approx(0.01, rel=0.05)


# ---------------------------------------------------------------------------
# Fixup on a ResNet whose blocks are scanned


def test_fixup_on_scanned_resnet():
    L, c = 6, 32
    x = jnp.ones((1, 8, 8, 3))
    rules = jinit.fixup_rules(L, ["*conv1/kernel", "*conv2/kernel"], "*head/*")
    params = jinit.init(ResNet(channels=c, blocks=L), rules, KEY, x)["params"]
    conv1 = params["blocks"]["conv1"]["kernel"]
    assert conv1.shape == (L, 3, 3, c, c)
    for w in _slices(conv1):  # He / L for m = 2, fan_in of one layer: 9 * c
        stats.assert_mean_var(w, 0.0, 2.0 / (9 * c) / L)
    assert not np.asarray(params["blocks"]["conv2"]["kernel"]).any()
    assert not np.asarray(params["head"]["kernel"]).any()
    stats.assert_var(params["stem"]["kernel"], 2.0 / 27)
    with pytest.raises(ValueError, match=r"last layer of each branch\) set 6 layer slice\(s\), expected 5"):
        jinit.init(ResNet(channels=c, blocks=L), jinit.fixup_rules(5, ["*conv1/kernel", "*conv2/kernel"]), KEY, x)


# ---------------------------------------------------------------------------
# Equinox stores (out, in, *kernel)


def test_equinox_mlp_and_conv_fans():
    mlp = eqx.nn.MLP(64, 10, 256, 2, key=KEY)
    new = jinit.reinit(KEY, mlp, [("role:kernel", jinit.he_normal()), ("role:bias", jinit.zeros())])
    for layer in new.layers:
        stats.assert_var(layer.weight, 2.0 / layer.in_features)
        assert not np.asarray(layer.bias).any()
    conv = eqx.nn.Conv2d(16, 64, 3, key=KEY)
    new = jinit.reinit(KEY, conv, [("*weight", jinit.he_normal())])
    stats.assert_var(new.weight, 2.0 / (16 * 9))
    fan_out = jinit.reinit(KEY, conv, [("*weight", jinit.he_normal(mode="fan_out"))])
    stats.assert_var(fan_out.weight, 2.0 / (64 * 9))
    # dirac through the (out, in, kh, kw) layout is still the identity map
    same = eqx.nn.Conv2d(8, 8, 3, padding=1, key=KEY)
    ident = jinit.reinit(KEY, same, [("*weight", jinit.dirac()), ("*bias", jinit.zeros())])
    z = jax.random.normal(KEY, (8, 5, 5))
    np.testing.assert_allclose(ident(z), z, atol=1e-6)


def test_layernorm_weight_is_not_a_kernel():
    class Net(eqx.Module):
        norm: eqx.nn.LayerNorm
        fc: eqx.nn.Linear

    net = Net(eqx.nn.LayerNorm(16), eqx.nn.Linear(16, 16, key=KEY))
    new = jinit.reinit(KEY, net, [("role:kernel", jinit.zeros())])
    np.testing.assert_array_equal(new.norm.weight, 1.0)
    assert not np.asarray(new.fc.weight).any()


# ---------------------------------------------------------------------------
# rules that match nothing, uncalled factories


def test_rules_that_match_nothing_are_errors_with_hints():
    params = nn.Dense(4).init(KEY, jnp.ones((1, 3)))
    with pytest.raises(ValueError, match=r"'\*kernal'\) matches no floating-point parameter.*'kernel'"):
        jinit.reinit(KEY, params, [("*kernal", jinit.zeros())])
    with pytest.raises(ValueError, match=r"did you mean '\*kernel'"):
        jinit.reinit(KEY, params, [("kernel", jinit.zeros())])
    with pytest.raises(ValueError, match=r"write 're:.\*ker.\*'"):
        jinit.reinit(KEY, params, [(".*ker.*", jinit.zeros())])
    kept = jinit.reinit(KEY, params, [("*kernal", jinit.zeros())], allow_unmatched=True)
    np.testing.assert_array_equal(kept["params"]["kernel"], params["params"]["kernel"])
    with pytest.raises(ValueError, match="matches no floating-point parameter"):
        jinit.init(nn.Dense(4), [("*kernal", jinit.zeros())], KEY, jnp.ones((1, 3)))
    with pytest.raises(ValueError, match="invalid role='weights'; valid choices are 'kernel'"):
        jinit.reinit(KEY, params, [("role:weights", jinit.zeros())])


def test_uncalled_factory_in_a_rule():
    params = nn.Dense(4).init(KEY, jnp.ones((1, 3)))
    with pytest.raises(TypeError, match=r"a factory: call it, jinit.he_normal\(\)"):
        jinit.reinit(KEY, params, [("*kernel", jinit.he_normal)])


def test_init_keeps_partitioning_boxes_and_works_under_jit():
    layer = nn.Dense(8, kernel_init=nn.with_partitioning(nn.initializers.lecun_normal(), (None, "model")))
    x = jnp.ones((1, 4))
    variables = jax.jit(lambda k: jinit.init(layer, [("*kernel", jinit.orthogonal())], k, x))(KEY)
    box = variables["params"]["kernel"]
    assert isinstance(box, nn.Partitioned) and box.names == (None, "model")
    eager = jinit.init(layer, [("*kernel", jinit.orthogonal())], KEY, x)
    np.testing.assert_allclose(box.value, eager["params"]["kernel"].value, atol=1e-6)
    w = np.asarray(box.value)
    np.testing.assert_allclose(w @ w.T, np.eye(4), atol=1e-5)


def test_init_rejects_non_linen():
    with pytest.raises(TypeError, match="jinit.reinit"):
        jinit.init(eqx.nn.Linear(2, 2, key=KEY), [], KEY)
    with pytest.raises(TypeError, match="linen modules hold no parameters"):
        jinit.reinit(KEY, nn.Dense(2), [])


# ---------------------------------------------------------------------------
# layout primitives


def test_stacked_axes_and_layout_validation():
    assert stacked_axes((8, 3, 4), (3, 4)) == [(0,)]
    assert stacked_axes((3, 8, 4), (3, 4)) == [(1,)]
    assert stacked_axes((3, 4), (5,)) == []
    with pytest.raises(ValueError, match="does not give the slice shape"):
        Layout((4, 3), (4, 3), perm=(1, 0))
    layout = Layout((3, 5, 4), (3, 4), stack_axes=(1,))
    w = draw(jinit.he_normal(), KEY, layout, jnp.float32)
    assert w.shape == (3, 5, 4)
    for i in range(5):
        assert not np.array_equal(w[:, i], w[:, (i + 1) % 5])
    np.testing.assert_array_equal(w[:, 2], jinit.he_normal()(jax.random.split(KEY, 5)[2], (3, 4)))


def test_leafspec_torch_order_matches_transposed_flax():
    spec = LeafSpec(order="torch")
    layout = spec.resolve((64, 16, 3, 3), "w")
    assert layout.init_shape == (3, 3, 16, 64)
    w = draw(jinit.he_normal(), KEY, layout, jnp.float32)
    np.testing.assert_array_equal(w, jnp.transpose(jinit.he_normal()(KEY, (3, 3, 16, 64)), (3, 2, 0, 1)))
    with pytest.raises(ValueError, match="invalid order='oi'; valid choices are 'flax', 'torch'"):
        LeafSpec(order="oi")


# ---------------------------------------------------------------------------
# convolution stacks and sharded models


class ConvLayer(nn.Module):
    @nn.compact
    def __call__(self, x, _):
        return jnp.tanh(nn.Conv(16, (3, 3))(x)), None


class ConvStack(nn.Module):
    layers: int = 3

    @nn.compact
    def __call__(self, x):
        scan = nn.scan(ConvLayer, variable_axes={"params": 0}, split_rngs={"params": True}, length=self.layers)
        return scan(name="stack")(nn.Conv(16, (3, 3), name="stem")(x), None)[0]


def test_delta_orthogonal_and_dirac_per_slice_of_a_scanned_conv_stack():
    x = jnp.ones((1, 6, 6, 3))
    params = jinit.init(ConvStack(), [("*stem*", None), ("*kernel", jinit.delta_orthogonal()),
                                      ("*bias", jinit.zeros())], KEY, x)["params"]
    kernel = np.asarray(params["stack"]["Conv_0"]["kernel"])
    assert kernel.shape == (3, 3, 3, 16, 16)
    for w in kernel:
        centre = w[1, 1]
        np.testing.assert_allclose(centre.T @ centre, np.eye(16), atol=2e-5)
        assert not np.delete(w.reshape(9, 16, 16), 4, axis=0).any()
    _assert_independent(kernel[0, 1, 1], kernel[1, 1, 1])
    ident = jinit.init(ConvStack(), [("*stem*", None), ("*kernel", jinit.dirac())], KEY, x)["params"]
    np.testing.assert_array_equal(ident["stack"]["Conv_0"]["kernel"][2, 1, 1], np.eye(16))


def test_sharded_init_and_reinit_keep_shardings_and_values():
    mesh = jax.make_mesh((4, 2), ("data", "model"))
    layer = nn.Dense(64, kernel_init=nn.with_partitioning(nn.initializers.lecun_normal(), ("data", "model")))
    x = jnp.ones((1, 32))
    rules = [("*kernel", jinit.he_normal())]
    abstract = jax.eval_shape(lambda k: jinit.init(layer, rules, k, x), KEY)
    shardings = nn.get_sharding(abstract, mesh)
    sharded = jax.jit(lambda k: jinit.init(layer, rules, k, x), out_shardings=shardings)(KEY)
    kernel = sharded["params"]["kernel"].value
    assert kernel.sharding.spec == jax.sharding.PartitionSpec("data", "model")
    np.testing.assert_array_equal(kernel, jinit.init(layer, rules, KEY, x)["params"]["kernel"].value)
    # a sharded stacked leaf: drawn per slice, then placed
    stack = {"kernel": jnp.zeros((4, 32, 32))}
    placed = jax.device_put(stack, {"kernel": jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("data"))})
    spec_rule = [("*kernel", jinit.he_normal(), LeafSpec(stack_axes=0))]
    new = jinit.reinit(KEY, placed, spec_rule)
    assert new["kernel"].sharding == placed["kernel"].sharding
    np.testing.assert_array_equal(new["kernel"], jinit.reinit(KEY, stack, spec_rule)["kernel"])
