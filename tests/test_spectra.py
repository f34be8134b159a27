"""Jacobian spectra (jinit.spectra): free-probability moments, closed forms, finite-width measurement."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit
from jinit import meanfield as mf
from jinit import spectra as sp


def _fuss_catalan(L: int, k: int) -> float:
    """k-th moment of the Fuss-Catalan law of order L: binom((L+1)k, k) / (Lk + 1)."""
    return math.comb((L + 1) * k, k) / (L * k + 1)


# --- closed forms ------------------------------------------------------------------------------


@pytest.mark.parametrize("L", [1, 2, 3, 8])
def test_deep_linear_gaussian_moments_are_fuss_catalan(L):
    # J = W_L ... W_1 with N(0, 1/N) entries: JJ^T has the Fuss-Catalan moments.
    th = sp.jacobian_moments(L, "linear", weights="gaussian", n_moments=5)
    want = [_fuss_catalan(L, k) for k in range(1, 6)]
    np.testing.assert_allclose(th.moments, want, rtol=1e-12)
    assert th.mean == pytest.approx(1.0, rel=1e-14) and th.variance == pytest.approx(L, rel=1e-12)


def test_sigma_w_scales_the_spectrum():
    # W -> sigma_w W multiplies JJ^T by sigma_w^(2L): m_k -> sigma_w^(2Lk) m_k.
    L, s = 5, 1.1
    th = sp.jacobian_moments(L, "linear", sigma_w=s, n_moments=3)
    want = [s ** (2 * L * k) * _fuss_catalan(L, k) for k in (1, 2, 3)]
    np.testing.assert_allclose(th.moments, want, rtol=1e-12)
    assert th.chi == pytest.approx(s**2)
    assert math.isnan(th.q_star)  # the variance diverges, but a linear network's J does not depend on it


@pytest.mark.parametrize("L", [1, 7, 50])
def test_paper_values_at_criticality(L):
    # Pennington et al. 2017: variance of the spectrum of JJ^T at chi = 1.
    g = dict(weights="gaussian")
    o = dict(weights="orthogonal")
    assert sp.jacobian_moments(L, "linear", **g).variance == pytest.approx(L, rel=1e-12)
    assert sp.jacobian_moments(L, "linear", **o).variance == 0.0  # exact isometry
    assert sp.jacobian_moments(L, "linear", **o, n_moments=4).moments == pytest.approx([1, 1, 1, 1], rel=1e-12)
    relu_g = sp.jacobian_moments(L, "relu", **g)
    assert relu_g.sigma_w == pytest.approx(math.sqrt(2)) and relu_g.mean == pytest.approx(1.0, rel=1e-12)
    assert relu_g.variance == pytest.approx(2 * L, rel=1e-10)
    assert sp.jacobian_moments(L, "relu", **o).variance == pytest.approx(L, rel=1e-10)


CASES = [
    ("linear", "gaussian", {}),
    ("relu", "orthogonal", {}),
    ("tanh", "gaussian", {"q_star": 0.5}),
    ("tanh", "orthogonal", {"q_star": 2.0}),
    ("tanh", "gaussian", {"sigma_w": 1.3, "sigma_b": 0.1}),  # chaotic: chi > 1
    ("tanh", "orthogonal", {"sigma_w": 0.9, "sigma_b": 0.3}),  # ordered: chi < 1
    ("relu", "gaussian", {"sigma_w": 1.2}),  # ordered, q* -> 0
    (jax.nn.gelu, "orthogonal", {"sigma_w": 1.1, "sigma_b": 0.2}),  # any activation
]


@pytest.mark.parametrize("phi, weights, kw", CASES)
def test_mean_and_variance_closed_form(phi, weights, kw):
    # m1 = chi^L and m2 - m1^2 = L m1^2 (mu2/mu1^2 - 1 - s1), off criticality too; the series
    # (all moments through S-transforms) and the closed form are independent computations.
    L = 6
    th = sp.jacobian_moments(L, phi, weights=weights, n_moments=3, **kw)
    mu = sp.derivative_moments(phi, th.q_star, 2)
    s1 = sp.weight_s_transform(weights, th.sigma_w, 2)[1] * th.sigma_w**2
    chi = mf.chi1(th.sigma_w, th.sigma_b, phi, q0=th.q_star if th.q_star > 0 else 1.0)
    assert th.chi == pytest.approx(chi, rel=1e-9)
    assert th.mean == pytest.approx(chi**L, rel=1e-9)
    closed = L * th.mean**2 * (mu[1] / mu[0] ** 2 - 1 - s1)
    assert th.variance == pytest.approx(closed, rel=1e-9, abs=1e-13)
    assert th.moments[1] - th.moments[0] ** 2 == pytest.approx(th.variance, rel=1e-9, abs=1e-12)


def test_tanh_orthogonal_approaches_isometry_as_q_star_vanishes():
    # tanh'(h)^2 = 1 - 2h^2 + 7h^4/3 + ...: mu1 = 1 - 2q + 7q^2, mu2 = 1 - 4q + 26q^2 + O(q^3),
    # so mu2/mu1^2 - 1 = 8q^2 + O(q^3): orthogonal variance ~ 8 L q*^2 -> 0; Gaussian -> L.
    L = 10
    qs = [0.3, 0.1, 0.01, 1e-3]
    var_o = [sp.jacobian_moments(L, "tanh", weights="orthogonal", q_star=q).variance for q in qs]
    assert all(a > b > 0 for a, b in zip(var_o, var_o[1:]))
    assert var_o[-1] / (8 * L * qs[-1] ** 2) == pytest.approx(1.0, rel=0.01)
    var_g = sp.jacobian_moments(L, "tanh", weights="gaussian", q_star=qs[-1]).variance
    assert var_g == pytest.approx(L, rel=0.01)
    # At sigma_b = 0 the fixed point is q* = 0 (the q -> 0+ limit): the linear network.
    th = sp.jacobian_moments(L, "tanh", weights="orthogonal")
    assert th.q_star == 0.0 and th.sigma_w == pytest.approx(1.0) and th.variance == pytest.approx(0.0, abs=1e-12)


def test_derivative_moments_of_sin():
    # phi = sin: E[cos^2(sqrt(q) z)] = (1 + e^{-2q}) / 2, E[cos^4] = 3/8 + e^{-2q}/2 + e^{-8q}/8.
    q = 0.7
    mu = sp.derivative_moments(jnp.sin, q, 2)
    want = [(1 + math.exp(-2 * q)) / 2, 3 / 8 + math.exp(-2 * q) / 2 + math.exp(-8 * q) / 8]
    np.testing.assert_allclose(mu, want, rtol=1e-12)


def test_weight_s_transform():
    # Marchenko-Pastur (ratio 1) S(z) = 1 / (sigma_w^2 (1 + z)); orthogonal: the constant 1 / sigma_w^2.
    np.testing.assert_allclose(sp.weight_s_transform("gaussian", 2.0, 4), [0.25, -0.25, 0.25, -0.25])
    np.testing.assert_allclose(sp.weight_s_transform("orthogonal", 0.5, 3), [4.0, 0.0, 0.0])


# --- density of the deep linear Gaussian case ---------------------------------------------------


def test_linear_gaussian_density_is_marchenko_pastur_at_depth_one():
    x = np.array([0.1, 0.5, 1.0, 2.0, 3.9])
    np.testing.assert_allclose(sp.linear_gaussian_density(x, 1), np.sqrt((4 - x) / x) / (2 * np.pi), rtol=1e-10)


@pytest.mark.parametrize("L, sigma_w", [(2, 1.0), (4, 1.05)])
def test_linear_gaussian_density_has_the_theory_moments(L, sigma_w):
    # Integrate rho over its support (0, edge]: with x = edge u^(L+1) the x^(-L/(L+1)) singularity at 0
    # cancels; the sqrt edge at u = 1 limits Gauss-Legendre to about 1e-5 here.
    edge = sigma_w ** (2 * L) * (L + 1) ** (L + 1) / L**L
    t, w = np.polynomial.legendre.leggauss(400)
    u, w = (t + 1) / 2, w / 2
    x = edge * u ** (L + 1)
    dens = sp.linear_gaussian_density(x, L, sigma_w) * edge * (L + 1) * u**L
    th = sp.jacobian_moments(L, "linear", sigma_w=sigma_w, n_moments=3)
    assert np.dot(w, dens) == pytest.approx(1.0, abs=1e-4)
    for k in (1, 2, 3):
        assert np.dot(w, dens * x**k) == pytest.approx(th.moments[k - 1], rel=1e-4)
    assert np.all(sp.linear_gaussian_density([-1.0, edge * 1.01], L, sigma_w) == 0.0)


# --- errors ------------------------------------------------------------------------------------


def test_bad_weights_raise_a_clear_error():
    for fn in (
        lambda: sp.jacobian_moments(4, "tanh", weights="uniform"),
        lambda: sp.measure_jacobian_moments(4, "tanh", weights="uniform"),
        lambda: sp.weight_s_transform("uniform", 1.0, 2),
    ):
        with pytest.raises(ValueError, match=r"weights='uniform' is not supported; valid choices are 'gaussian', 'orthogonal'"):
            fn()
    with pytest.raises(ValueError, match="^jacobian_moments: weights="):
        sp.jacobian_moments(4, "tanh", weights="uniform")


@pytest.mark.parametrize(
    "kw, match",
    [
        ({"depth": 0}, "jacobian_moments: depth must be an integer >= 1, got 0"),
        ({"depth": 2.5}, "jacobian_moments: depth must be an integer >= 1, got 2.5"),
        ({"n_moments": 1}, "jacobian_moments: n_moments must be an integer >= 2, got 1"),
        ({"sigma_w": 1.0, "q_star": 0.5}, r"q_star=0.5 is not a fixed point of the variance map"),
        ({"q_star": 0.5, "sigma_b": 0.1}, "sigma_b must be None"),
        ({"phi": "gelu", "sigma_w": 2.0}, "diverges"),  # no fixed point, and gelu's law depends on q
    ],
)
def test_bad_arguments(kw, match):
    args = {"depth": 3, "phi": "tanh", **kw}
    with pytest.raises(ValueError, match=match):
        sp.jacobian_moments(args.pop("depth"), args.pop("phi"), **args)


def test_lazy_submodule():
    assert jinit.spectra is sp


# --- measurement at finite width ---------------------------------------------------------------

# Finite networks against the theory. Each measured moment is a mean over n independent networks;
# its error has two parts: sampling, measured by its standard error s.e. (with n = 6 networks,
# Student's t with 5 degrees of freedom exceeds 5 with probability < 0.5%), and the finite-width
# shift, of relative order L / N: E[m2] of a product of L real Ginibre matrices exceeds L + 1 by
# O(L^2 / N), and one network's |J u|^2 is close to log-normal with a log-variance of about
# 5 L / N for relu (Hanin & Nica 2019), so a few networks typically sit ~2.5 L / N below the mean.
# Tolerance: 5 s.e. + 3 (L / N) |theory|.
WIDTH, SAMPLES, DEPTHS = 128, 6, (2, 8)


def _close(measured, se, theory, L):
    return abs(measured - theory) <= 5 * se + 3 * (L / WIDTH) * abs(theory)


@pytest.mark.parametrize(
    "phi, weights, kw",
    [
        ("linear", "gaussian", {}),
        ("linear", "orthogonal", {}),
        ("relu", "gaussian", {}),
        ("tanh", "orthogonal", {"q_star": 0.5}),
    ],
)
def test_measured_moments_match_theory(phi, weights, kw):
    m = sp.measure_jacobian_moments(
        DEPTHS, phi, width=WIDTH, weights=weights, n_samples=SAMPLES, n_moments=3, key=jax.random.key(7), **kw
    )
    assert m.eigenvalues.shape == (len(DEPTHS), SAMPLES, WIDTH)
    for i, L in enumerate(m.depths):
        th = sp.jacobian_moments(L, phi, weights=weights, n_moments=3, **kw)
        assert (m.sigma_w, m.q_star) == (th.sigma_w, th.q_star)
        if th.variance == 0:  # orthogonal linear: every singular value is 1, up to float32 rounding
            np.testing.assert_allclose(m.eigenvalues[i], 1.0, atol=1e-5)
            continue
        assert _close(m.moments[i, 0], m.stderr[i, 0], th.mean, L), (L, m.moments[i], th.moments)
        assert _close(m.variance[i], m.variance_stderr[i], th.variance, L), (L, m.variance[i], th.variance)
        # The third moment is dominated by the largest singular values; the bias is O(3 L / N).
        assert abs(m.moments[i, 2] - th.moments[2]) <= 5 * m.stderr[i, 2] + 6 * (L / WIDTH) * th.moments[2]


def test_measured_spectrum_is_that_of_jacfwd():
    # The accumulated product D_l W_l^T ... D_1 W_1^T is the Jacobian jax.jacfwd computes for the
    # network x -> phi(... phi(x W_1 + b_1) ...) with the same kernels and biases.
    N, L = 128, 3  # the width of the other measurements: nothing new to compile
    W, b, x0 = sp._draw(jax.random.key(3), "gaussian", 1.2, 0.1, 0.4, jnp.tanh, N, L, 2)

    def net(x):
        for l in range(L):
            x = jnp.tanh(x @ W[0, l] + b[0, l])
        return x

    ours = sp._spectra(W, b, x0, jnp.tanh, (L,))  # (S, 1, N)
    assert ours.shape == (2, 1, N)
    s = np.linalg.svd(np.asarray(jax.jacfwd(net)(x0[0]), dtype=np.float64), compute_uv=False)
    np.testing.assert_allclose(np.sort(ours[0, 0])[::-1], s**2, rtol=1e-4, atol=1e-6)


# --- reproduction ------------------------------------------------------------------------------


def test_repro_quick(tmp_path, capsys):
    from bench.repro import REPRODUCTIONS, get
    from bench.repro.__main__ import main

    assert REPRODUCTIONS["jacobian"][0] == "jacobian"
    with pytest.raises(ValueError, match="unknown reproduction 'jacobians'; valid reproductions are jacobian"):
        get("jacobians")
    assert main(["jacobian", "--quick", "--out", str(tmp_path)]) == 0  # python -m bench.repro jacobian --quick
    paths = capsys.readouterr().out.split()
    assert [p.rsplit("/", 1)[-1] for p in paths] == ["jacobian.png", "jacobian.md"]
    with open(paths[1]) as f:
        text = f.read()
    assert text.count("\n| ") == 2 * (1 + 6)  # two depths: header + one row per configuration
    assert "relu, Gaussian | 2L |" in text
    with open(paths[0], "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
