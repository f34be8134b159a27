"""Kernel shaping (jinit.kernel_shaping): local maps, TAT for leaky ReLU, DKS, and the bench's
shaped activations. Reference values come from google-deepmind/dks's tests
(tests/test_activation_transform.py), not from this implementation."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit
import jinit.kernel_shaping as ks

C_GRID = (-1.0, -0.6, 0.0, 0.5, 0.999, 1.0)


def _dks_leaky_relu_cmap(c, a):
    # dks's form (dks/base/activation_transform.py, _leaky_relu_cmap), kept as written there so
    # that the rearranged closed form of jinit is checked against it.
    return ((1 - a) ** 2 * (np.sqrt(1 - c**2) + (np.pi - np.arccos(c)) * c) / np.pi + 2 * a * c) / (1 + a**2)


def _resnet101_subnet_max(x, r, shortcut_weight=0.6):
    # The subnetwork maximizing function of the modified ResNet-101 that dks's tests pin their
    # parameters on (tests/test_activation_transform.py, _subnet_max_func): 3 nonlinear layers
    # per residual branch, blocks (3, 4, 23, 3), a nonlinear shortcut in each group's first block.
    branch_alone = r(r(r(x)))
    for blocks in (3, 4, 23, 3):
        for j in range(blocks):
            shortcut = r(x) if j == 0 else x
            x = shortcut_weight**2 * shortcut + (1.0 - shortcut_weight**2) * r(r(r(x)))
    return max(r(x), branch_alone)


# --- local maps ------------------------------------------------------------------------------------


@pytest.mark.parametrize("phi", ["tanh", "softplus", "gelu"])
def test_c_map_is_one_at_one_and_q_map_matches_gauss_hermite(phi):
    assert ks.c_map(1.0, phi) == pytest.approx(1.0, abs=1e-12)
    # An independent rule (Gauss-Hermite, probabilists' weight) for these smooth activations.
    z, w = np.polynomial.hermite_e.hermegauss(120)
    f = np.asarray(jinit.get_activation(phi)(jnp.asarray(z, dtype=jnp.float32)), dtype=np.float64)
    for q in (0.5, 1.0, 3.0):
        fq = np.asarray(jinit.get_activation(phi)(jnp.asarray(np.sqrt(q) * z, dtype=jnp.float32)), dtype=np.float64)
        assert ks.q_map(q, phi) == pytest.approx(np.dot(w, fq**2) / np.sqrt(2 * np.pi), rel=1e-6)
    assert ks.c_map(0.0, phi) == pytest.approx((np.dot(w, f) / np.sqrt(2 * np.pi)) ** 2 / ks.q_map(1.0, phi), abs=1e-6)


def test_relu_maps_are_the_arc_cosine_kernel():
    assert ks.q_map(2.0, "relu") == pytest.approx(1.0, abs=1e-14)
    assert ks.c_map(0.0, "relu") == pytest.approx(1 / np.pi, abs=1e-14)
    assert ks.c_map_slope(0.0, "relu") == pytest.approx(0.5, abs=1e-14)  # 2 E[1{z>0}]^2


def test_c_map_slope_is_the_derivative_of_c_map():
    for phi, c in (("tanh", 0.6), ("softplus", 0.0)):
        h = 1e-5
        fd = (ks.c_map(c + h, phi) - ks.c_map(c - h, phi)) / (2 * h)
        assert ks.c_map_slope(c, phi) == pytest.approx(fd, rel=1e-7)


def test_q_map_slope_is_the_derivative_of_q_map():
    for phi in ("tanh", "softplus", "gelu"):
        h = 1e-5
        fd = (ks.q_map(1 + h, phi) - ks.q_map(1 - h, phi)) / (2 * h)
        assert ks.q_map_slope(phi) == pytest.approx(fd, rel=1e-7)


def test_c_map_accepts_arrays():
    out = ks.c_map(np.array([[0.0, 1.0]]), "tanh")
    assert out.shape == (1, 2) and out[0, 0] == pytest.approx(0.0, abs=1e-14) and out[0, 1] == pytest.approx(1.0)


@pytest.mark.parametrize("a", [0.0, 0.3, 0.7, 1.0])
def test_leaky_relu_closed_form_matches_dks_form_and_quadrature(a):
    cs = np.array(C_GRID)
    closed = ks.leaky_relu_c_map(cs, a)
    np.testing.assert_allclose(closed, _dks_leaky_relu_cmap(cs, a), rtol=0, atol=1e-14)
    phi = functools.partial(jax.nn.leaky_relu, negative_slope=a)
    np.testing.assert_allclose(ks.c_map(cs, phi), closed, rtol=0, atol=1e-10)


# --- TAT for leaky ReLU ------------------------------------------------------------------------------


def _independent_tat_slope(depth, eta):
    """Plain bisection on dks's closed form: C_a^(depth)(0) decreases in a on [0, 1]."""
    def c0(a):
        c = 0.0
        for _ in range(depth):
            c = _dks_leaky_relu_cmap(c, a)
        return c

    lo, hi = 0.0, 1.0
    for _ in range(100):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if c0(mid) > eta else (lo, mid)
    return (lo + hi) / 2, c0


@pytest.mark.parametrize("depth", [20, 50, 100])
def test_tat_slope_matches_an_independent_root_and_hits_eta(depth):
    eta = 0.9
    a = ks.tat_leaky_relu_slope(depth, eta)
    ref, c0 = _independent_tat_slope(depth, eta)
    assert 0.0 < a < 1.0 and a == pytest.approx(ref, abs=1e-12)
    assert c0(a) == pytest.approx(eta, abs=1e-12)
    assert ks.network_c_map(0.0, lambda c: ks.leaky_relu_c_map(c, a), depth) == pytest.approx(eta, abs=1e-12)


def test_tat_slope_grows_with_depth():
    # Deeper networks compose more layers, so each must be more linear for the same eta.
    slopes = [ks.tat_leaky_relu_slope(d) for d in (20, 50, 100)]
    assert slopes == sorted(slopes)


def test_tat_activation_is_normalized_and_has_the_closed_form_c_map():
    phi = ks.tat_leaky_relu(20)
    a = phi.keywords["negative_slope"]
    assert ks.q_map(1.0, phi) == pytest.approx(1.0, abs=1e-12)
    assert phi.keywords["scale"] == pytest.approx(math.sqrt(2 / (1 + a * a)))
    # The transformed activation's own C map (quadrature) is the closed form the solver composes.
    cs = np.array([0.0, 0.5, 0.95])
    np.testing.assert_allclose(ks.c_map(cs, phi), ks.leaky_relu_c_map(cs, a), rtol=0, atol=1e-10)


def test_tat_matches_dks_reference_parameters():
    # dks tests/test_activation_transform.py: TAT, c_val_0_target=0.75, their ResNet-101.
    # dks stops its bisection at |value - target| < 1e-8, hence the tolerance.
    a = ks.tat_leaky_relu_slope(eta=0.75, subnet_max=_resnet101_subnet_max)
    assert a == pytest.approx(0.6291800290346146, abs=1e-7)
    assert math.sqrt(2 / (1 + a * a)) == pytest.approx(1.196996549778802, abs=1e-7)


def test_tat_matches_dks_reference_values():
    # dks tests/test_activation_transform.py: transformed leaky relu at +-0.6, eta=0.95.
    phi = ks.tat_leaky_relu(eta=0.95, subnet_max=_resnet101_subnet_max)
    assert float(phi(0.6)) == pytest.approx(0.7954047194402861, abs=1e-6)
    assert float(phi(-0.6)) == pytest.approx(-0.2955187511683813, abs=1e-6)


def test_random_network_follows_the_predicted_c_map():
    # Two orthogonal unit-q inputs through wide random MLPs (weights of variance 1/fan_in): their
    # cosine similarity after L layers is C_f(0) = eta up to finite-width effects: a spread of
    # O(sqrt(L / width)) per network (halved by averaging 4) and a bias of O(L / width).
    depth, width, nets = 20, 512, 4
    phi = ks.tat_leaky_relu(depth)
    rng = np.random.default_rng(0)
    x = np.broadcast_to(np.eye(2, width) * math.sqrt(width), (nets, 2, width))
    for _ in range(depth):
        w = rng.standard_normal((nets, width, width)) / math.sqrt(width)
        x = np.asarray(phi(jnp.asarray(x @ w, dtype=jnp.float32)), dtype=np.float64)
    cos = np.mean(x[:, 0] * x[:, 1], axis=1) / np.sqrt(np.mean(x[:, 0] ** 2, axis=1) * np.mean(x[:, 1] ** 2, axis=1))
    assert float(np.mean(cos)) == pytest.approx(ks.TAT_ETA, abs=0.04)


# --- DKS ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("phi", ["tanh", "softplus"])
@pytest.mark.parametrize("depth", [10, 100])
def test_dks_conditions_hold(phi, depth):
    zeta = 1.5
    hat = ks.dks_activation(phi, depth, zeta)
    assert ks.q_map(1.0, hat) == pytest.approx(1.0, abs=1e-6)
    assert ks.c_map(0.0, hat) == pytest.approx(0.0, abs=1e-6)
    assert ks.q_map_slope(hat) == pytest.approx(1.0, abs=1e-6)
    # C(1) = 1, so by the chain rule the network's C_f'(1) is the local slope to the power L.
    assert ks.c_map_slope(1.0, hat) ** depth == pytest.approx(zeta, abs=1e-6)


def test_dks_matches_dks_reference_parameters():
    # dks tests/test_activation_transform.py: DKS, c_slope_1_target=1.2, their ResNet-101.
    reference = {
        "softplus": (0.18761008168267976, 0.40688063442262007, 8.878672543665223, -0.9213466151411376),
        "tanh": (0.07461073057540868, 0.5566915199964182, 18.002635964442558, -0.5034378768692127),
        "gelu": (0.07036271496383567, 0.2586837248593587, 20.249573305194307, -0.15758328114374964),
    }
    for name, ref in reference.items():
        p = ks.dks_params(name, zeta=1.2, subnet_max=_resnet101_subnet_max)
        # rtol: dks stops its search for the local slope at |value - target| < 1e-8.
        np.testing.assert_allclose(p, ref, rtol=1e-6, err_msg=name)


def test_dks_matches_dks_reference_values():
    # dks tests/test_activation_transform.py: transformed activations at +-0.6 with
    # c_slope_1_target=12 and local_q_slope_target=0.97.
    reference = {
        "softplus": (0.5205088334781294, -0.6970897398761904),
        "tanh": (0.6910746968773931, -0.5122335409369118),
    }
    for name, (pos, neg) in reference.items():
        hat = ks.dks_activation(name, zeta=12.0, q_slope=0.97, subnet_max=_resnet101_subnet_max)
        assert float(hat(0.6)) == pytest.approx(pos, abs=1e-6) and float(hat(-0.6)) == pytest.approx(neg, abs=1e-6)


def test_local_slope_target_of_an_mlp_is_the_root():
    for depth in (1, 7, 100):
        assert ks.local_c_slope_target(1.5, depth) == pytest.approx(1.5 ** (1 / depth), rel=1e-14)


def test_defaults_are_dks_defaults():
    # dks _get_activations_params: c_slope_1_target 1.5, local_q_slope_target 1.0, c_val_0_target 0.9.
    assert (ks.DKS_ZETA, ks.DKS_Q_SLOPE, ks.TAT_ETA) == (1.5, 1.0, 0.9)


# --- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: ks.tat_leaky_relu_slope(20, eta=1.0), r"tat_leaky_relu_slope: eta .*\(0, 1\), got eta=1.0"),
        (lambda: ks.tat_leaky_relu_slope(20, eta=-0.1), r"tat_leaky_relu_slope: eta .*got eta=-0.1"),
        (lambda: ks.tat_leaky_relu_slope(3), r"tat_leaky_relu_slope: eta=0.9 cannot be reached at depth=3.*deeper"),
        (lambda: ks.tat_leaky_relu_slope(0), r"tat_leaky_relu_slope: depth must be an int >= 1, got 0"),
        (lambda: ks.tat_leaky_relu_slope(), r"tat_leaky_relu_slope: pass exactly one of depth .* subnet_max"),
        (lambda: ks.dks_params("relu", 10), r"dks_params: phi='relu' is not supported.*tat_leaky_relu"),
        (lambda: ks.dks_params("tanh", 10, zeta=1.0), r"dks_params: zeta .* must be > 1, got zeta=1.0"),
        (lambda: ks.dks_params("swish", 10), r"unknown activation 'swish'; valid choices are 'relu'"),
        (lambda: ks.c_map(1.5, "tanh"), r"c_map: correlations c must lie in \[-1, 1\]"),
        (lambda: ks.leaky_relu_c_map(0.0, float("nan")), r"leaky_relu_c_map: negative_slope must be finite"),
    ],
)
def test_errors_name_function_argument_and_value(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_dks_reports_no_root():
    # A linear activation has C'(1) = 1 for every (alpha, beta): no root for zeta > 1.
    with pytest.raises(ValueError, match=r"dks_params: found no \(alpha, beta\) for phi='<lambda>'"):
        ks.dks_params(lambda x: 2.0 * x + 1.0, 10)


def test_lazy_submodule():
    assert jinit.kernel_shaping is ks


# --- benchmark integration ---------------------------------------------------------------------------


def test_bench_shaped_names_resolve_and_validate():
    from bench.archs import ARCHS, NetSpec
    from bench.archs.common import SHAPED_ACTIVATIONS, activation_fn, gain_activation

    assert {"tat_leaky_relu", "dks_tanh", "dks_softplus"} <= set(SHAPED_ACTIVATIONS)
    assert activation_fn("tat_leaky_relu", 50).keywords["negative_slope"] == ks.tat_leaky_relu_slope(50)
    assert activation_fn("dks_tanh", 10).keywords["alpha"] == ks.dks_params("tanh", 10).alpha
    assert activation_fn("relu", 10) is jinit.get_activation("relu")
    assert gain_activation("dks_tanh") == "linear" and gain_activation("relu") == "relu"
    spec = NetSpec("mlp", 10, 16, "dks_tanh", 8, 3)
    assert ARCHS["mlp"].check(spec) is None and ARCHS["mlp"].structure(spec).activation == "linear"
    assert "shaped activation 'dks_tanh'" in ARCHS["resmlp"].check(spec)
    assert "eta=0.9 cannot be reached" in ARCHS["mlp"].check(NetSpec("mlp", 3, 16, "tat_leaky_relu", 8, 3))
    with pytest.raises(ValueError, match="unknown activation 'dks_relu'; valid choices are .*'tat_leaky_relu'"):
        NetSpec("mlp", 10, 16, "dks_relu", 8, 3)


@pytest.mark.slow
def test_bench_trains_a_tat_mlp(tmp_path):
    import bench

    config = bench.BenchConfig(
        schemes=("orthogonal",), archs=("mlp",), activations=("tat_leaky_relu",), depths=(20,), widths=(16,),
        optimizer="adam", lrs=(0.003,), steps=40, eval_every=10, batch_size=32, seeds=1, devices=1,
        dataset="teacher:n_train=256,n_test=64,dim=8,classes=3",
    )
    result = bench.run(config, str(tmp_path), plots=False)
    assert not result.skipped and len(result.runs) == 1
    curve = [loss for _, loss in result.runs[0]["loss_curve"]]
    assert all(math.isfinite(v) for v in curve) and curve[-1] < 0.8 * curve[0]
