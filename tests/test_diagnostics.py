"""Signal-propagation diagnostics (jinit.diagnostics)."""

import importlib.util
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit
from jinit import diagnostics
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
        return jax.nn.relu(nn.Dense(16, kernel_init=jinit.he_normal(), name="dense")(h)), None


class Scanned(nn.Module):
    axes: tuple = (("params", 0),)

    @nn.compact
    def __call__(self, x):
        h = nn.Dense(16, name="inp")(x)
        stack = nn.scan(Block, variable_axes=dict(self.axes), split_rngs={"params": True}, length=5)
        h, _ = stack(name="stack")(h, None)
        shared = nn.Dense(16, name="shared")
        return shared(jax.nn.relu(shared(h)))


def _manual(params, x, loss):
    """Per-layer outputs and kernel-gradient norms of Scanned, computed by hand."""
    def forward(p):
        outs = [x @ p["inp"]["kernel"] + p["inp"]["bias"]]
        h = outs[-1]
        for layer in range(5):
            outs.append(h @ p["stack"]["dense"]["kernel"][layer] + p["stack"]["dense"]["bias"][layer])
            h = jax.nn.relu(outs[-1])
        for _ in range(2):
            outs.append(h @ p["shared"]["kernel"] + p["shared"]["bias"])
            h = jax.nn.relu(outs[-1])
        return loss(outs[-1]), outs

    g, outs = jax.jit(jax.grad(forward, has_aux=True))(params)
    gn = [np.linalg.norm(g["inp"]["kernel"])]
    gn += [np.linalg.norm(g["stack"]["dense"]["kernel"][i]) for i in range(5)]
    gn += [np.linalg.norm(g["shared"]["kernel"])] * 2
    return [np.asarray(o) for o in outs], np.array(gn)


@pytest.mark.parametrize("axes", [(("params", 0),), (("params", 0), ("intermediates", 0))],
                         ids=["scan-drops-intermediates", "scan-stacks-intermediates"])
def test_scan_and_shared_layers(axes):
    model = Scanned(axes)
    x = jax.random.normal(jax.random.key(2), (32, 7))
    variables = jax.jit(model.init)(jax.random.key(0), x)
    loss = lambda y: jnp.sum(jnp.sin(y))  # noqa: E731
    r = signal_propagation(model.apply, variables, x, loss_fn=loss)
    names = ("inp",) + tuple(f"stack/dense[{i}]" for i in range(5)) + ("shared#0", "shared#1")
    assert r.layers == names
    outs, gnorm = _manual(variables["params"], x, loss)
    np.testing.assert_allclose(r.act_std, [o.astype(np.float64).std() for o in outs], rtol=1e-5)
    np.testing.assert_allclose(r.act_mean, [o.astype(np.float64).mean() for o in outs], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(r.grad_norm, gnorm, rtol=1e-4)
    if "intermediates" in dict(axes):  # the params tree alone works too
        r2 = signal_propagation(model.apply, variables["params"], x, loss_fn=loss)
        np.testing.assert_array_equal(r2.act_std, r.act_std)


def test_report_str_and_plot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = _report(jinit.normal(), depth=8, width=32)
    text = str(r)
    assert text.startswith("verdict: ") and "Dense_7" in text
    ax = plot_signal_propagation(r)
    assert len(ax.get_lines()) == 2 and ax.get_yscale() == "log"
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

    class NoKernel(nn.Module):
        @nn.compact
        def __call__(self, x):
            return x * self.param("scale", nn.initializers.ones, (4,))

    nk = NoKernel()
    with pytest.raises(ValueError, match="no layer with a 'kernel'"):
        signal_propagation(nk.apply, nk.init(jax.random.key(0), x), x)
    assert isinstance(signal_propagation(model.apply, v, x), SignalReport)


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
