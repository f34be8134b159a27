"""Signal-propagation diagnostics (jinit.diagnostics) on flax.linen, flax.nnx and Equinox models."""

import importlib.util
import math

import equinox as eqx
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

import jinit
from tests.nets import Pair
from jinit import _probe, diagnostics
from jinit.diagnostics import SignalReport, jacobian_spectrum, plot_signal_propagation, signal_propagation


class MLP(nn.Module):
    """``depth`` Dense layers, relu between them, the last one linear."""

    depth: int
    width: int
    kernel_init: object
    activation: object = jax.nn.relu

    @nn.compact
    def __call__(self, x):
        for _ in range(self.depth - 1):
            x = self.activation(nn.Dense(self.width, kernel_init=self.kernel_init)(x))
        return nn.Dense(self.width, kernel_init=self.kernel_init)(x)


def _report(kernel_init, depth=50, width=256, seed=0, **kwargs):
    model = MLP(depth, width, kernel_init)
    x = jax.random.normal(jax.random.key(100 + seed), (128, width))
    return signal_propagation(model.apply, model.init(jax.random.key(seed), x), x, **kwargs)


# --- verdicts on a 50-layer MLP ----------------------------------------------------------------


def test_he_normal_relu_is_healthy():
    r = _report(jinit.he_normal())
    assert r.verdict == "healthy", str(r)
    assert len(r.layers) == 50 and r.layers[0] == "Dense_0" and r.layers[-1] == "Dense_49"
    assert 1 / 3 < r.act_ratio < 3 and 1 / 3 < r.grad_ratio < 3
    # first layer: h = x W with Var(W) = 2/n and unit-variance inputs -> std sqrt(2)
    assert r.act_std[0] == pytest.approx(math.sqrt(2), rel=0.05)
    assert np.all(np.isfinite(r.grad_norm)) and np.all(r.grad_norm > 0)


def test_standard_normal_relu_explodes():
    r = _report(jinit.normal(), width=128)
    assert r.verdict == "exploding"
    # a factor sqrt(n/2) = 8 per layer until float32 overflows
    finite = r.act_std[np.isfinite(r.act_std)]
    assert finite[1] / finite[0] == pytest.approx(8.0, rel=0.15)
    assert not np.all(np.isfinite(r.act_std))


def test_small_uniform_relu_vanishes():
    r = _report(jinit.uniform(-0.01, 0.01), width=128)
    assert r.verdict == "vanishing"
    # sqrt(n Var(W) / 2) = sqrt(128 * 0.0001 / 3 / 2) ~ 0.046 per layer
    assert r.act_std[1] / r.act_std[0] == pytest.approx(math.sqrt(128 * 1e-4 / 3 / 2), rel=0.15)
    assert r.act_ratio < 1e-10


def test_zero_init_vanishes():
    r = _report(jinit.zeros(), depth=5, width=16)
    assert r.verdict == "vanishing"
    assert np.all(r.act_std == 0)


def test_verdict_thresholds():
    v = diagnostics._verdict
    ones = np.ones(3)
    assert v(ones, ones, 9.9, 1.0, 10.0) == "healthy"
    assert v(ones, ones, 10.1, 1.0, 10.0) == "exploding"
    assert v(ones, ones, 1.0, 0.099, 10.0) == "vanishing"
    assert v(ones, ones, 0.05, 30.0, 10.0) == "exploding"  # the ratio further from 1 (log scale) decides
    assert v(ones, ones, 0.01, 30.0, 10.0) == "vanishing"
    assert v(ones, ones, 2.0, math.nan, 10.0) == "healthy"  # 0/0 gradients are ignored
    assert v(np.array([1.0, math.inf]), ones, math.inf, 1.0, 10.0) == "exploding"  # overflow
    assert v(np.array([0.0, 0.0]), ones, math.nan, 1.0, 10.0) == "vanishing"
    assert diagnostics.DEFAULT_THRESHOLD == 10.0
    # A tighter threshold turns the same He network's finite-width wobble into a verdict.
    assert _report(jinit.he_normal(), depth=10, width=32, threshold=1.0001).verdict != "healthy"


# --- scanned layers, shared layers, user loss --------------------------------------------------


class Block(nn.Module):
    @nn.compact
    def __call__(self, h, _):
        h = jax.nn.relu(nn.Dense(16, kernel_init=jinit.he_normal(), name="a")(h))
        return jax.nn.relu(nn.Dense(16, kernel_init=jinit.he_normal(), name="b")(h)), None


class Scanned(nn.Module):
    axes: tuple = (("params", 0),)

    @nn.compact
    def __call__(self, x):
        h = nn.Dense(16, name="inp")(x)
        stack = nn.scan(Block, variable_axes=dict(self.axes), split_rngs={"params": True}, length=3)
        h, _ = stack(name="stack")(h, None)
        shared = nn.Dense(16, name="shared")
        return shared(jax.nn.relu(shared(h)))


def _manual(params, x, loss):
    """Per-layer outputs and kernel-gradient norms of Scanned, computed by hand."""
    def forward(p):
        outs = [x @ p["inp"]["kernel"] + p["inp"]["bias"]]
        h = outs[-1]
        for layer in range(3):
            for name in "ab":
                outs.append(h @ p["stack"][name]["kernel"][layer] + p["stack"][name]["bias"][layer])
                h = jax.nn.relu(outs[-1])
        for _ in range(2):
            outs.append(h @ p["shared"]["kernel"] + p["shared"]["bias"])
            h = jax.nn.relu(outs[-1])
        return loss(outs[-1]), outs

    g, outs = jax.jit(jax.grad(forward, has_aux=True))(params)
    gn = [np.linalg.norm(g["inp"]["kernel"])]
    gn += [np.linalg.norm(g["stack"][n]["kernel"][i]) for i in range(3) for n in "ab"]
    gn += [np.linalg.norm(g["shared"]["kernel"])] * 2
    return [np.asarray(o) for o in outs], np.array(gn)


def test_scan_and_shared_layers():
    model = Scanned()  # nn.scan without "intermediates" in variable_axes: Flax's capture would see nothing
    x = jax.random.normal(jax.random.key(2), (32, 7))
    variables = jax.jit(model.init)(jax.random.key(0), x)
    loss = lambda y: jnp.sum(jnp.sin(y))  # noqa: E731
    r = signal_propagation(model.apply, variables, x, loss_fn=loss)
    # execution order: the two layers of each scanned block interleave
    names = ("inp",) + tuple(f"stack/{n}[{i}]" for i in range(3) for n in "ab") + ("shared#0", "shared#1")
    assert r.layers == names
    outs, gnorm = _manual(variables["params"], x, loss)
    np.testing.assert_allclose(r.act_std, [o.astype(np.float64).std() for o in outs], rtol=1e-5)
    np.testing.assert_allclose(r.act_mean, [o.astype(np.float64).mean() for o in outs], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(r.grad_norm, gnorm, rtol=1e-4)


def test_report_str_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = _report(jinit.normal(), depth=8, width=32)
    text = str(r)
    assert text.startswith("verdict: ") and "Dense_7" in text
    ax = plot_signal_propagation(r)
    assert len(ax.get_lines()) == 2 and ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == [f"Dense_{i}" for i in range(8)]
    fig, own = plt.subplots()
    assert plot_signal_propagation(r, ax=own) is own
    plt.close("all")
    with pytest.raises(TypeError, match="SignalReport"):
        plot_signal_propagation({"verdict": "healthy"})


def test_bad_inputs():
    model = MLP(2, 4, jinit.he_normal())
    x = jnp.ones((3, 4))
    v = model.init(jax.random.key(0), x)
    with pytest.raises(TypeError, match="apply_fn must be callable"):
        signal_propagation(None, v, x)
    with pytest.raises(ValueError, match="threshold must be a number > 1"):
        signal_propagation(model.apply, v, x, threshold=0.5)
    with pytest.raises(TypeError, match="params must be"):
        signal_propagation(model.apply, [1, 2], x)
    with pytest.raises(TypeError, match="loss_fn must be callable"):
        signal_propagation(model.apply, v, x, loss_fn=3)
    with pytest.raises(TypeError, match="apply_fn is a jax.jit-compiled function.*Pass the un-jitted model.apply"):
        signal_propagation(jax.jit(model.apply), v, x)
    with pytest.raises(TypeError, match=r"a flax.nnx model is called as signal_propagation\(model, batch, ...\)"):
        signal_propagation(nnx.Linear(4, 4, rngs=nnx.Rngs(0)), v, x)
    with pytest.raises(TypeError, match="an nnx.Module|a flax.nnx Module or an equinox Module"):
        signal_propagation(3, v, x)
    with pytest.raises(ValueError, match="stream pattern 'blocks_\\*' matches no module called with an array"):
        signal_propagation(model.apply, v, x, stream="blocks_*")

    class NoKernel(nn.Module):
        @nn.compact
        def __call__(self, x):
            return x * self.param("scale", nn.initializers.ones, (4,))

    nk = NoKernel()
    with pytest.raises(ValueError, match="no layer with a 'kernel'"):
        signal_propagation(nk.apply, nk.init(jax.random.key(0), x), x)
    r = signal_propagation(model.apply, v, x)
    assert isinstance(r, SignalReport)
    # the params tree alone works too
    np.testing.assert_array_equal(signal_propagation(model.apply, v["params"], x).act_std, r.act_std)


# --- Jacobian spectrum -------------------------------------------------------------------------


class Linear(nn.Module):
    depth: int
    width: int
    kernel_init: object

    @nn.compact
    def __call__(self, x):
        for _ in range(self.depth):
            x = nn.Dense(self.width, use_bias=False, kernel_init=self.kernel_init)(x)
        return x


def _orthogonal():
    if importlib.util.find_spec("jinit.structured") is not None:
        from jinit.structured import orthogonal

        return orthogonal()

    def init(key, shape, dtype=jnp.float32):
        q, r = jnp.linalg.qr(jax.random.normal(key, shape))
        return (q * jnp.sign(jnp.diag(r))).astype(dtype)

    return init


def _spectrum(depth, kernel_init, width=64, seed=0):
    model = Linear(depth, width, kernel_init)
    x = jax.random.normal(jax.random.key(seed + 1), (width,))
    return jacobian_spectrum(model.apply, model.init(jax.random.key(seed), x), x)


def test_orthogonal_deep_linear_net_is_isometric():
    s = _spectrum(32, _orthogonal())
    assert s.shape == (64,)
    np.testing.assert_allclose(s, 1.0, atol=1e-4)


def test_gaussian_deep_linear_net_spread_grows_with_depth():
    # Var(W) = 1/n keeps the mean squared singular value at 1 but not the spread. The smallest
    # singular values fall below float32 resolution at depth 64, so measure log(s_1 / s_{n/4}).
    spreads = []
    for depth in (4, 16, 64):
        s = _spectrum(depth, jinit.lecun_normal())
        assert np.mean(s**2) == pytest.approx(1.0, abs=0.9)
        spreads.append(math.log(s[0] / s[len(s) // 4]))
    assert spreads[1] > 2 * spreads[0] and spreads[2] > 2 * spreads[1], spreads


def test_jacobian_spectrum_equals_svd_of_the_weight_product():
    model = Linear(3, 8, jinit.lecun_normal())
    x = jnp.ones(8)
    v = model.init(jax.random.key(3), x)
    ws = [v["params"][f"Dense_{i}"]["kernel"] for i in range(3)]
    expected = np.linalg.svd(np.asarray(ws[0] @ ws[1] @ ws[2], dtype=np.float64), compute_uv=False)
    np.testing.assert_allclose(jacobian_spectrum(model.apply, v, x), expected, rtol=1e-5, atol=1e-6)
    # a wide output (jacfwd) and a narrow one (jacrev) agree with the matrix rank
    wide = nn.Dense(12, use_bias=False)
    s = jacobian_spectrum(wide.apply, wide.init(jax.random.key(0), x), x)
    assert s.shape == (8,) and np.all(np.diff(s) <= 0)
    narrow = nn.Dense(3, use_bias=False)
    assert jacobian_spectrum(narrow.apply, narrow.init(jax.random.key(0), x), x).shape == (3,)
    with pytest.raises(TypeError, match="floating point"):
        jacobian_spectrum(model.apply, v, jnp.ones(8, dtype=jnp.int32))


# --- nnx and Equinox models: execution order of stacked layers ----------------------------------


class NnxStack(nnx.Module):
    """Three Pair blocks created with nnx.vmap (kernels (3, 16, 16)), run with nnx.scan."""

    def __init__(self, rngs):
        @nnx.split_rngs(splits=3)
        @nnx.vmap(in_axes=(0,), out_axes=0)
        def create(rngs):
            return Pair(rngs)

        self.blocks = create(rngs)
        self.head = nnx.Linear(16, 4, rngs=rngs)

    def __call__(self, x):
        @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
        def step(h, block):
            return block(h)

        return self.head(step(x, self.blocks))


def test_nnx_scan_stack_rows_in_execution_order():
    model = NnxStack(nnx.Rngs(0))
    x = jax.random.normal(jax.random.key(1), (32, 16))
    r = signal_propagation(model, x)
    assert r.layers == tuple(f"blocks/{n}[{t}]" for t in range(3) for n in "ab") + ("head",)
    assert r.basis == "layers"  # no residual block
    h, stds = x, []
    for t in range(3):
        for layer in (model.blocks.a, model.blocks.b):
            z = h @ layer.kernel[...][t] + layer.bias[...][t]
            stds.append(float(z.std()))
            h = jnp.tanh(z)
    stds.append(float(model.head(h).std()))
    np.testing.assert_allclose(r.act_std, stds, rtol=1e-4)
    assert np.all(r.grad_norm > 0)


class EqxStack(eqx.Module):
    """Four Linear layers stacked by eqx.filter_vmap and run with jax.lax.scan."""

    layers: eqx.nn.Linear
    head: eqx.nn.Linear

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        self.layers = eqx.filter_vmap(lambda k: eqx.nn.Linear(16, 16, key=k))(jax.random.split(k1, 4))
        self.head = eqx.nn.Linear(16, 4, key=k2)

    def __call__(self, x):
        params, static = eqx.partition(self.layers, eqx.is_array)

        def step(h, p):
            return jnp.tanh(eqx.combine(p, static)(h)), None

        return self.head(jax.lax.scan(step, x, params)[0])


def test_equinox_scan_stack_rows_in_execution_order():
    model = EqxStack(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (32, 16))
    r = signal_propagation(model, x)
    assert r.layers == ("layers[0]", "layers[1]", "layers[2]", "layers[3]", "head")
    h, stds = x, []
    for t in range(4):
        z = h @ model.layers.weight[t].T + model.layers.bias[t]
        stds.append(float(z.std()))
        h = jnp.tanh(z)
    stds.append(float(jax.vmap(model.head)(h).std()))
    np.testing.assert_allclose(r.act_std, stds, rtol=1e-4)


# --- residual networks: the verdict reads the residual stream -----------------------------------

D, HEADS, BLOCKS, T, VOCAB = 16, 2, 2, 4, 20


# GPT-2's init (Radford et al. 2019; jinit.gpt2_rules): every kernel and embedding N(0, 0.02^2),
# the projections that write into the residual stream N(0, (0.02 / sqrt(2 n_layer))^2), biases 0.
STD, RESIDUAL_STD = 0.02, 0.02 / math.sqrt(2 * BLOCKS)


class GPTBlock(nn.Module):
    @nn.compact
    def __call__(self, x):
        attn = nn.MultiHeadDotProductAttention(num_heads=HEADS, kernel_init=jinit.normal(STD),
                                               out_kernel_init=jinit.normal(RESIDUAL_STD), name="attn")
        x = x + attn(nn.LayerNorm(name="ln_1")(x))
        h = nn.gelu(nn.Dense(4 * D, kernel_init=jinit.normal(STD), name="c_fc")(nn.LayerNorm(name="ln_2")(x)))
        return x + nn.Dense(D, kernel_init=jinit.normal(RESIDUAL_STD), name="c_proj")(h)


class GPT(nn.Module):
    """A pre-LN GPT-2: token and position embeddings, blocks, final LayerNorm, tied output head."""

    @nn.compact
    def __call__(self, tokens):
        wte = nn.Embed(VOCAB, D, embedding_init=jinit.normal(STD), name="wte")
        h = wte(tokens) + self.param("wpe", jinit.normal(STD), (T, D))
        for i in range(BLOCKS):
            h = GPTBlock(name=f"h_{i}")(h)
        return wte.attend(nn.LayerNorm(name="ln_f")(h))


def test_gpt2_init_pre_ln_transformer_is_healthy():
    """GPT-2's init writes into the residual stream with std 0.02/sqrt(2n): the stream keeps its
    scale, while the last branch output is ~30x smaller than the first layer's (a layer-by-layer
    comparison calls that vanishing)."""
    tokens = jax.random.randint(jax.random.key(0), (16, T), 0, VOCAB)
    model = GPT()
    variables = jax.jit(model.init)(jax.random.key(1), tokens)
    r = signal_propagation(model.apply, variables, tokens)
    assert r.verdict == "healthy", str(r)
    assert r.basis == "stream" and r.stream == ("h_0", "h_1")
    # the stream: embeddings (std ~0.02 * sqrt(2)) plus small residual writes
    assert 0.02 < r.stream_std[0] < 0.04 and 0.9 < r.act_ratio < 1.2
    assert r.layers[0] == "h_0/attn/query" and r.layers[-1] == "h_1/c_proj"
    assert r.act_std[-1] / r.act_std[0] < 0.1  # heterogeneous branch outputs
    # judged layer by layer (stream=False), the same rows read as vanishing
    layer_ratios = (r.act_std[-1] / r.act_std[0], r.grad_norm[0] / r.grad_norm[-1])
    assert diagnostics._verdict(r.act_std, r.grad_norm, *layer_ratios, r.threshold) == "vanishing"
    # naming the blocks finds the same ones ("h_*" also matches h_0/attn, which is inside h_0)
    probe = _probe.build("test", model.apply, variables, tokens, layers=lambda m: True, blocks=("h_*",))
    assert [name for _, name in probe.blocks] == ["h_0", "h_1"]

    import matplotlib

    matplotlib.use("Agg")
    ax = plot_signal_propagation(r)
    assert len(ax.get_lines()) == 3 and ax.get_xticklabels()[0].get_text() == "h_0/attn/query"


class FixupBlock(nnx.Module):
    def __init__(self, rngs, scale):
        self.fc1 = nnx.Linear(32, 32, rngs=rngs, kernel_init=jinit.he_normal())
        self.fc2 = nnx.Linear(32, 32, rngs=rngs, kernel_init=jinit.zeros())  # Fixup: last layer 0
        self.fc1.kernel[...] = self.fc1.kernel[...] * scale

    def __call__(self, x):
        return jax.nn.relu(x + self.fc2(jax.nn.relu(self.fc1(x))))


class FixupMLP(nnx.Module):
    def __init__(self, rngs, blocks=8):
        self.stem = nnx.Linear(16, 32, rngs=rngs, kernel_init=jinit.he_normal())
        # Fixup's scale L^(-1/(2m-2)) for m = 2 layers per branch
        self.blocks = nnx.List([FixupBlock(rngs, blocks ** -0.5) for _ in range(blocks)])
        self.head = nnx.Linear(32, 4, rngs=rngs, kernel_init=jinit.he_normal())

    def __call__(self, x):
        h = self.stem(x)
        for block in self.blocks:
            h = block(h)
        return self.head(h)


def test_fixup_residual_mlp_is_healthy():
    x = jax.random.normal(jax.random.key(3), (64, 16))
    r = signal_propagation(FixupMLP(nnx.Rngs(0)), x)
    assert r.verdict == "healthy", str(r)
    assert r.stream == tuple(f"blocks/{i}" for i in range(8))
    # every branch outputs 0: after the first ReLU the stream is exactly constant
    np.testing.assert_allclose(r.stream_std[2:], r.stream_std[1], rtol=1e-6)
    assert np.all(r.act_std[2:-1:2] == 0) and np.all(r.act_std[1:-1:2] > 0)  # fc2 (zero) and fc1 rows
    assert math.isfinite(r.grad_ratio) and 0.5 < r.grad_ratio < 2


class ResBlock(eqx.Module):
    fc1: eqx.nn.Linear
    fc2: eqx.nn.Linear

    def __init__(self, key):
        k1, k2 = jax.random.split(key)
        he = lambda k: jax.random.normal(k, (32, 32)) * math.sqrt(2 / 32)  # noqa: E731
        self.fc1 = eqx.tree_at(lambda l: l.weight, eqx.nn.Linear(32, 32, key=k1), he(k1))
        self.fc2 = eqx.tree_at(lambda l: l.weight, eqx.nn.Linear(32, 32, key=k2), he(k2))

    def __call__(self, x, *, key=None):
        return x + self.fc2(jax.nn.relu(self.fc1(x)))


def test_unscaled_residual_mlp_explodes_by_its_stream():
    """He-initialized branches without Fixup's scaling double the stream's variance per block."""
    blocks = [ResBlock(k) for k in jax.random.split(jax.random.key(0), 10)]
    model = eqx.nn.Sequential([eqx.nn.Linear(16, 32, key=jax.random.key(1)), *blocks])
    r = signal_propagation(model, jax.random.normal(jax.random.key(3), (64, 16)))
    assert r.verdict == "exploding" and r.basis == "stream"
    assert r.stream == tuple(f"layers/{i}" for i in range(1, 11))
    assert r.act_ratio > 10


# --- Jacobian spectra: one example, three frameworks --------------------------------------------


def _three_frameworks(weights):
    """The same bias-free linear net x -> x W1 W2 W3 in linen, nnx and Equinox."""
    n = len(weights)
    linen = Linear(n, weights[0].shape[1], jinit.zeros())
    variables = {"params": {f"Dense_{i}": {"kernel": w} for i, w in enumerate(weights)}}
    layers = [nnx.Linear(*w.shape, use_bias=False, rngs=nnx.Rngs(0)) for w in weights]
    for layer, w in zip(layers, weights):
        layer.kernel[...] = w
    keys = jax.random.split(jax.random.key(0), n)
    eqx_layers = [eqx.tree_at(lambda l: l.weight, eqx.nn.Linear(*w.shape, use_bias=False, key=k), w.T)
                  for w, k in zip(weights, keys)]
    return (linen.apply, variables), nnx.Sequential(*layers), eqx.nn.Sequential(eqx_layers)


def test_jacobian_spectrum_agrees_across_frameworks():
    x = jax.random.normal(jax.random.key(1), (8,))
    ortho = [_orthogonal()(k, (8, 8)) for k in jax.random.split(jax.random.key(2), 3)]
    gauss = [jax.random.normal(k, (8, 8)) / math.sqrt(8) for k in jax.random.split(jax.random.key(3), 3)]
    for weights in (ortho, gauss):
        (apply, variables), net, eqx_net = _three_frameworks(weights)
        expected = jacobian_spectrum(apply, variables, x)
        np.testing.assert_allclose(jacobian_spectrum(net, x), expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(jacobian_spectrum(eqx_net, x), expected, rtol=1e-5, atol=1e-6)
    # orthogonal weights: dynamical isometry, every singular value 1, in every framework
    (apply, variables), net, eqx_net = _three_frameworks(ortho)
    np.testing.assert_allclose(jacobian_spectrum(eqx_net, x), 1.0, atol=1e-5)


def test_jacobian_spectrum_needs_one_example():
    model = MLP(2, 8, jinit.he_normal())
    batch = jax.random.normal(jax.random.key(0), (4, 8))
    v = model.init(jax.random.key(1), batch)
    with pytest.raises(ValueError, match=r"x of shape \(4, 8\) looks like a batch of 4 examples.*x\[0\].*"
                                         r"add_batch_axis=False"):
        jacobian_spectrum(model.apply, v, batch)
    assert jacobian_spectrum(model.apply, v, batch[0]).shape == (8,)
    # a sequence is one example: attention mixes its rows
    attention = nn.MultiHeadDotProductAttention(num_heads=2)
    seq = jax.random.normal(jax.random.key(2), (5, 8))
    params = jax.jit(attention.init)(jax.random.key(3), seq[None])
    assert jacobian_spectrum(attention.apply, params, seq).shape == (40,)
    # Equinox models take one example: a batch is rejected too
    mlp = eqx.nn.MLP(8, 8, 16, depth=1, key=jax.random.key(4))
    with pytest.raises(ValueError, match=r"does accept each of its 4 rows: x looks like a batch.*x\[0\]"):
        jacobian_spectrum(mlp, batch)
