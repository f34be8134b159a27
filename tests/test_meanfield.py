"""Mean-field theory (jinit.meanfield): known critical points, closed forms, Monte Carlo."""

import importlib.util
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit
from jinit import _quadrature
from jinit import meanfield as mf
from tests import stats


def _relu_q_star(sw, sb):
    return sb**2 / (1 - sw**2 / 2)


def _relu_kernel(c):
    """E[relu(u1) relu(u2)] / q for unit-variance... scaled: the arccos kernel of degree 1."""
    th = np.arccos(np.clip(c, -1, 1))
    return (np.sin(th) + (np.pi - th) * np.cos(th)) / (2 * np.pi)


# --- critical points ---------------------------------------------------------------------------


def test_known_critical_sigma_w():
    assert mf.critical_sigma_w("relu") == pytest.approx(math.sqrt(2), abs=1e-12)
    assert mf.critical_sigma_w(jax.nn.relu, 0.0) == pytest.approx(math.sqrt(2), abs=1e-12)
    assert mf.critical_sigma_w("tanh") == pytest.approx(1.0, abs=1e-12)
    assert mf.critical_sigma_w("linear") == pytest.approx(1.0, abs=1e-12)
    assert mf.critical_sigma_w("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01**2)), abs=1e-12)


@pytest.mark.parametrize("q_star", [0.05, 0.2, 0.5, 1.0, 2.0, 5.0])
def test_chi1_is_one_on_the_critical_line(q_star):
    line = mf.critical_line("tanh", [q_star])
    sw, sb = float(line.sigma_w[0]), float(line.sigma_b[0])
    assert mf.chi1(sw, sb, "tanh") == pytest.approx(1.0, abs=1e-8)
    assert mf.fixed_point(sw, sb, "tanh") == pytest.approx(q_star, rel=1e-8)
    assert mf.analyze(sw, sb, "tanh").phase == "critical" or abs(mf.chi1(sw, sb, "tanh") - 1) < 1e-8


def test_tanh_critical_line_matches_references():
    # REFERENCES.md, "Mean-field": q* -> (sigma_w^2, sigma_b^2) ~ (1.094, 1.3e-4), (1.688, 0.038), (2.153, 0.151).
    line = mf.critical_line("tanh", [0.05, 0.5, 1.0])
    sw2, sb2 = line.sigma_w**2, line.sigma_b**2
    assert [round(float(x), 3) for x in sw2] == [1.094, 1.688, 2.153]
    assert round(float(sb2[0]), 5) == 1.3e-4
    assert [round(float(x), 3) for x in sb2[1:]] == [0.038, 0.151]


def test_critical_line_drops_negative_bias_variance_and_relu_is_a_point():
    line = mf.critical_line("relu", [0.1, 1.0, 10.0])
    np.testing.assert_allclose(line.sigma_w, math.sqrt(2), rtol=1e-14)
    np.testing.assert_allclose(line.sigma_b, 0.0, atol=1e-7)
    # sigmoid: sigma_b^2 = q - E[phi^2]/E[phi'^2] < 0 for small q*, those points are dropped.
    sig = mf.critical_line("sigmoid", [0.01, 1.0, 100.0])
    assert list(sig.q_star) == [100.0]


@pytest.mark.parametrize("sigma_b", [0.05, 0.3, 1.0])
def test_critical_sigma_w_with_bias(sigma_b):
    sw = mf.critical_sigma_w("tanh", sigma_b)
    assert mf.chi1(sw, sigma_b, "tanh") == pytest.approx(1.0, abs=1e-9)
    q = mf.fixed_point(sw, sigma_b, "tanh")
    line = mf.critical_line("tanh", [q])
    assert float(line.sigma_b[0]) == pytest.approx(sigma_b, rel=1e-7)
    assert float(line.sigma_w[0]) == pytest.approx(sw, rel=1e-9)


def test_critical_sigma_w_domain_errors():
    with pytest.raises(ValueError, match="relu-like activations are critical only at sigma_b = 0"):
        mf.critical_sigma_w("relu", 0.1)
    with pytest.raises(ValueError, match="unstable fixed points"):
        mf.critical_sigma_w("gelu", 0.3)
    sw = mf.critical_sigma_w("gelu", 0.6)  # above gelu's threshold (~0.416): a stable critical point
    assert mf.chi1(sw, 0.6, "gelu") == pytest.approx(1.0, abs=1e-9)


# --- the variance map --------------------------------------------------------------------------


@pytest.mark.parametrize("sw,sb", [(1.0, 0.5), (1.3, 0.1), (0.5, 2.0)])
def test_relu_closed_forms(sw, sb):
    q = _relu_q_star(sw, sb)
    assert mf.fixed_point(sw, sb, "relu") == pytest.approx(q, rel=1e-13)
    assert mf.variance_map(q, sw, sb, jax.nn.relu) == pytest.approx(q, rel=1e-13)
    assert mf.chi1(sw, sb, "relu") == pytest.approx(sw**2 / 2, rel=1e-13)
    assert mf.xi_q(sw, sb, "relu") == pytest.approx(-1 / math.log(sw**2 / 2), rel=1e-11)
    assert mf.xi_c(sw, sb, "relu") == pytest.approx(-1 / math.log(sw**2 / 2), rel=1e-11)
    assert mf.correlation_fixed_point(sw, sb, "relu") == 1.0
    cs = np.array([-0.5, 0.0, 0.5, 0.9, 0.999, 0.99999])
    expected = (sw**2 * q * _relu_kernel(cs) + sb**2) / q
    np.testing.assert_allclose(mf.correlation_map(cs, sw, sb, "relu"), expected, rtol=1e-13, atol=1e-15)


def test_degenerate_fixed_points():
    # Every q is a fixed point: the starting variance is returned.
    assert mf.fixed_point(math.sqrt(2), 0.0, "relu", q0=3.0) == 3.0
    assert mf.fixed_point(1.0, 0.0, "linear", q0=0.25) == 0.25
    assert mf.xi_c(math.sqrt(2), 0.0, "relu") == math.inf
    assert mf.max_trainable_depth(math.sqrt(2), 0.0, "relu") == math.inf
    assert mf.xi_q(math.sqrt(2), 0.0, "relu") == math.inf
    # The signal dies out: q* = 0, quantities are the q -> 0+ limits.
    for sw in (0.5, 0.9):
        assert mf.fixed_point(sw, 0.0, "tanh") == 0.0
        assert mf.chi1(sw, 0.0, "tanh") == pytest.approx(sw**2, rel=1e-12)
        assert mf.xi_c(sw, 0.0, "tanh") == pytest.approx(-1 / math.log(sw**2), rel=1e-12)
        assert mf.correlation_map(0.3, sw, 0.0, "tanh") == pytest.approx(0.3, rel=1e-9)  # linear regime
    assert mf.fixed_point(1.0, 0.0, "relu") == 0.0
    assert mf.chi1(1.0, 0.0, "relu") == pytest.approx(0.5, rel=1e-12)
    assert mf.xi_c(1.0, 0.0, "tanh") == math.inf  # tanh's critical point at sigma_b = 0


def test_divergence_is_a_clear_error():
    with pytest.raises(ValueError, match=r"diverges \(q -> inf\)"):
        mf.fixed_point(1.5, 0.0, "relu")
    with pytest.raises(ValueError, match="diverges"):
        mf.fixed_point(math.sqrt(2), 0.1, "relu")  # q -> q + 0.01 every layer
    with pytest.raises(ValueError, match="diverges"):
        mf.chi1(2.0, 0.0, jax.nn.relu)


def test_xi_q_matches_the_paper_formula_with_phi_second_derivative():
    # Schoenholz et al. 2017, eq. 6: xi_q^-1 = -ln[chi_1 + sigma_w^2 E[phi''(sqrt(q*) z) phi(sqrt(q*) z)]].
    d2 = jax.vmap(jax.grad(jax.grad(jnp.tanh)))
    for sw, sb in [(1.5, 0.3), (0.9, 0.5), (2.5, 1.0)]:
        q = mf.fixed_point(sw, sb, "tanh")
        r = math.sqrt(q)
        term = _quadrature.expect(lambda z: d2(r * z) * jnp.tanh(r * z))
        expected = -1 / math.log(mf.chi1(sw, sb, "tanh") + sw**2 * term)
        assert mf.xi_q(sw, sb, "tanh") == pytest.approx(expected, rel=1e-10)


def test_kinked_activation_hard_tanh():
    # Kinks at +-1: detected, put at panel edges; V and V' against closed forms / finite differences.
    act = mf._Phi("test", jax.nn.hard_tanh)
    assert act.refine == (-1.0, 1.0)
    from scipy import special, stats as sstats

    q, sw, sb = 0.7, 1.3, 0.2
    a = 1 / math.sqrt(q)
    inside = special.erf(a / math.sqrt(2))
    e2 = q * (inside - 2 * a * sstats.norm.pdf(a)) + (1 - inside)
    assert mf.variance_map(q, sw, sb, jax.nn.hard_tanh) == pytest.approx(sw**2 * e2 + sb**2, rel=1e-13)
    qs = mf.fixed_point(sw, sb, jax.nn.hard_tanh)
    assert mf.chi1(sw, sb, jax.nn.hard_tanh) == pytest.approx(sw**2 * special.erf(1 / math.sqrt(2 * qs)), rel=1e-12)
    h = 1e-5 * qs
    slope = (mf.variance_map(qs + h, sw, sb, jax.nn.hard_tanh) - mf.variance_map(qs - h, sw, sb, jax.nn.hard_tanh)) / (2 * h)
    assert -1 / math.log(slope) == pytest.approx(mf.xi_q(sw, sb, jax.nn.hard_tanh), rel=1e-7)


# --- the correlation map, chi_c, xi_c ----------------------------------------------------------


@pytest.mark.parametrize("sw,sb", [(0.8, 0.1), (1.5, 0.3), (2.5, 0.3)])
def test_c_equal_one_is_a_fixed_point(sw, sb):
    assert mf.correlation_map(1.0, sw, sb, "tanh") == 1.0
    assert mf.correlation_map(1 - 1e-12, sw, sb, "tanh") == pytest.approx(1.0, abs=1e-11)


def test_chaotic_fixed_point_and_slope():
    sw, sb = 2.5, 0.3
    r = mf.analyze(sw, sb, "tanh")
    assert r.phase == "chaotic" and r.chi1 > 1 and 0 < r.c_star < 1
    assert mf.correlation_map(r.c_star, sw, sb, "tanh") == pytest.approx(r.c_star, abs=1e-12)
    h = 1e-4
    fd = (mf.correlation_map(r.c_star + h, sw, sb, "tanh") - mf.correlation_map(r.c_star - h, sw, sb, "tanh")) / (2 * h)
    assert fd == pytest.approx(r.chi_c, rel=1e-6)  # chi_c is the slope at c*
    assert r.chi_c < 1 and r.xi_c == pytest.approx(-1 / math.log(r.chi_c), rel=1e-12)
    assert r.max_trainable_depth == pytest.approx(6 * r.xi_c)
    # odd phi, sigma_b = 0, chaotic: c* = 0
    assert mf.correlation_fixed_point(3.0, 0.0, "tanh") == 0.0


def test_chi_c_and_xi_c_against_monte_carlo():
    """An independent estimate: sample (u1, u2) at (q*, c*) and average; 5 standard errors."""
    sw, sb = 2.5, 0.3
    r = mf.analyze(sw, sb, "tanh")
    n = 400_000
    z = np.random.default_rng(0).standard_normal((2, n))
    s = math.sqrt(1 - r.c_star**2)
    u1 = math.sqrt(r.q_star) * z[0]
    u2 = math.sqrt(r.q_star) * (r.c_star * z[0] + s * z[1])
    prod = sw**2 / np.cosh(u1) ** 2 / np.cosh(u2) ** 2
    chi_mc, se = prod.mean(), prod.std() / math.sqrt(n)
    assert abs(r.chi_c - chi_mc) <= 5 * se
    # xi_c = -1/ln chi_c; delta method: se_xi = se / (chi ln(chi)^2)
    xi_mc = -1 / math.log(chi_mc)
    assert abs(r.xi_c - xi_mc) <= 5 * se / (chi_mc * math.log(chi_mc) ** 2)
    # the fixed points themselves
    cmap = (sw**2 * np.tanh(u1) * np.tanh(u2) + sb**2) / r.q_star
    stats.assert_mean(cmap, r.c_star)
    stats.assert_mean(sw**2 * np.tanh(u1) ** 2 + sb**2, r.q_star)


def test_correlation_map_against_dblquad():
    from scipy import integrate

    sw, sb, c = 1.5, 0.3, 0.5
    q = mf.fixed_point(sw, sb, "tanh")
    s = math.sqrt(1 - c * c)

    def f(z2, z1):
        u1, u2 = math.sqrt(q) * z1, math.sqrt(q) * (c * z1 + s * z2)
        return math.tanh(u1) * math.tanh(u2) * math.exp(-(z1 * z1 + z2 * z2) / 2) / (2 * math.pi)

    e, err = integrate.dblquad(f, -8, 8, -8, 8, epsabs=1e-11, epsrel=1e-11)
    assert mf.correlation_map(c, sw, sb, "tanh") == pytest.approx((sw**2 * e + sb**2) / q, abs=1e-9)


def test_hard_tanh_chaotic_chi_c_against_monte_carlo():
    sw, sb = 2.0, 0.1
    r = mf.analyze(sw, sb, jax.nn.hard_tanh)
    assert r.phase == "chaotic"
    n = 400_000
    z = np.random.default_rng(1).standard_normal((2, n))
    u1 = math.sqrt(r.q_star) * z[0]
    u2 = math.sqrt(r.q_star) * (r.c_star * z[0] + math.sqrt(1 - r.c_star**2) * z[1])
    stats.assert_mean(sw**2 * ((np.abs(u1) < 1) & (np.abs(u2) < 1)), r.chi_c)
    stats.assert_mean((sw**2 * np.clip(u1, -1, 1) * np.clip(u2, -1, 1) + sb**2) / r.q_star, r.c_star)


def test_xi_c_grows_towards_criticality():
    sb = 0.05
    crit = mf.critical_sigma_w("tanh", sb)
    ordered = [mf.xi_c(crit - d, sb, "tanh") for d in (0.3, 0.1, 0.03, 0.01)]
    chaotic = [mf.xi_c(crit + d, sb, "tanh") for d in (0.5, 0.15, 0.03)]
    assert all(np.diff(ordered) > 0) and all(np.diff(chaotic) > 0), (ordered, chaotic)
    assert ordered[-1] > 20 and chaotic[-1] > 20
    assert mf.xi_c(crit, sb, "tanh") > 1e6 or mf.xi_c(crit, sb, "tanh") == math.inf
    assert mf.max_trainable_depth(crit - 0.3, sb, "tanh") == pytest.approx(6 * ordered[0])


# --- phase diagram -----------------------------------------------------------------------------


def test_phase_diagram():
    chi = mf.phase_diagram("relu", [0.5, 1.0, math.sqrt(2), 2.0], [0.0, 0.3])
    assert chi.shape == (2, 4)
    np.testing.assert_allclose(chi[0, :3], [0.125, 0.5, 1.0], rtol=1e-12)
    np.testing.assert_allclose(chi[1, :2], [0.125, 0.5], rtol=1e-12)
    assert np.all(np.isinf(chi[0, 3:])) and np.all(np.isinf(chi[1, 2:]))
    sw, sb = np.linspace(0.6, 2.4, 10), np.array([0.0, 0.2, 0.6])
    chi = mf.phase_diagram("tanh", sw, sb)
    for i, b in enumerate(sb):
        crit = mf.critical_sigma_w("tanh", b)
        np.testing.assert_array_equal(chi[i] > 1, sw > crit)
        assert chi[i, 4] == pytest.approx(mf.chi1(sw[4], b, "tanh"), rel=1e-10)


# --- inputs ------------------------------------------------------------------------------------


def test_bad_inputs():
    with pytest.raises(ValueError, match="sigma_w must be > 0"):
        mf.chi1(0.0, 0.1, "tanh")
    with pytest.raises(ValueError, match="sigma_w must be > 0"):
        mf.fixed_point(-1.0, 0.1, "tanh")
    with pytest.raises(ValueError, match="sigma_b must be >= 0"):
        mf.fixed_point(1.0, -0.1, "tanh")
    with pytest.raises(ValueError, match="sigma_b must be >= 0"):
        mf.critical_sigma_w("tanh", -0.1)
    with pytest.raises(TypeError, match="phi must be an activation"):
        mf.fixed_point(1.0, 0.1, 3.0)
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        mf.chi1(1.0, 0.1, "nope")
    with pytest.raises(ValueError, match="q must be > 0"):
        mf.variance_map(0.0, 1.0, 0.1, "tanh")
    with pytest.raises(ValueError, match="q must be > 0"):
        mf.variance_map(-1.0, 1.0, 0.1, "tanh")
    with pytest.raises(ValueError, match="q0 must be > 0"):
        mf.fixed_point(1.0, 0.1, "tanh", q0=0.0)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        mf.correlation_map(1.5, 1.0, 0.1, "tanh")
    with pytest.raises(TypeError, match="real scalar"):
        mf.chi1(True, 0.1, "tanh")
    with pytest.raises(ValueError, match="finite"):
        mf.chi1(math.nan, 0.1, "tanh")
    with pytest.raises(ValueError, match="q_star_values"):
        mf.critical_line("tanh", [0.5, 0.0])
    with pytest.raises(ValueError, match="sigma_w_grid"):
        mf.phase_diagram("tanh", [0.0, 1.0], [0.1])
    with pytest.raises(ValueError, match="breakpoints"):
        mf.chi1(1.0, 0.1, "tanh", breakpoints=[math.inf])


def test_numpy_activation_needs_jax_for_derivatives():
    # phi alone works for any numpy callable; phi' needs jax.grad.
    assert mf.variance_map(1.0, 1.0, 0.0, np.tanh) == pytest.approx(mf.variance_map(1.0, 1.0, 0.0, jnp.tanh), rel=1e-14)
    with pytest.raises(TypeError, match="jax.grad"):
        mf.chi1(1.0, 0.1, np.tanh)


# --- initializers ------------------------------------------------------------------------------


def test_critical_normal_and_bias():
    key = jax.random.key(0)
    w = mf.critical_normal("relu")(key, (400, 300))
    stats.assert_mean_var(w, 0.0, 2.0 / 400)
    sw = mf.critical_sigma_w("tanh", 0.3)
    init = mf.critical_normal(jnp.tanh, sigma_b=0.3)
    assert init.__name__ == "critical_normal"
    stats.assert_var(init(key, (3, 3, 32, 64)), sw**2 / (3 * 3 * 32))
    with pytest.raises(ValueError, match="critical_normal"):
        init(key, (16,))  # inherited fan validation
    np.testing.assert_array_equal(mf.critical_bias()(key, (5,)), np.zeros(5))
    stats.assert_mean_var(mf.critical_bias(0.3)(key, (100_000,)), 0.0, 0.09)
    with pytest.raises(ValueError, match="sigma_b"):
        mf.critical_bias(-1.0)
    import flax.linen as nn

    layer = nn.Dense(8, kernel_init=mf.critical_normal("tanh", 0.3), bias_init=mf.critical_bias(0.3))
    params = layer.init(key, jnp.ones((1, 4)))
    assert params["params"]["kernel"].shape == (4, 8)


def test_registry_scheme():
    scheme = jinit.get_scheme("critical")
    assert scheme.family == "meanfield"
    key = jax.random.key(1)
    for activation, sw in (("relu", math.sqrt(2)), ("tanh", 1.0)):
        w = scheme.kernel_init(activation)(key, (256, 256))
        if importlib.util.find_spec("jinit.structured") is not None:  # orthogonal, scaled by sigma_w
            np.testing.assert_allclose(np.asarray(w.T @ w), sw**2 * np.eye(256), atol=2e-5)
        else:
            stats.assert_var(w, sw**2 / 256)
        np.testing.assert_array_equal(scheme.bias_init(activation)(key, (4,)), np.zeros(4))
    with pytest.raises(ValueError, match="no sigma_w gives chi_1 = 1"):
        scheme.kernel_init("softplus")


# --- known values, independently -----------------------------------------------------------------


_Z, _W = np.polynomial.hermite_e.hermegauss(120)
_W = _W / _W.sum()


def _gh_q_chi1(sw2: float, sb2: float) -> tuple[float, float]:
    """(q*, chi_1) of tanh by plain Gauss-Hermite quadrature and iteration of the q map."""
    q = 1.0
    for _ in range(500):  # the q map contracts fast here (slope well below 1)
        q = sw2 * np.dot(_W, np.tanh(math.sqrt(q) * _Z) ** 2) + sb2
    return q, sw2 * np.dot(_W, (1 - np.tanh(math.sqrt(q) * _Z) ** 2) ** 2)


def _gh_xi_c(sw2: float, sb2: float) -> tuple[float, float]:
    """(chi_1, xi_c) of tanh by plain Gauss-Hermite quadrature and fixed-point iteration
    (Schoenholz et al. 2017, eqs. 3-9), independent of jinit.meanfield's machinery."""
    z, w = _Z, _W
    q, chi1 = _gh_q_chi1(sw2, sb2)
    if chi1 <= 1:  # ordered: c* = 1 and chi_c = chi_1
        return chi1, -1 / math.log(chi1)
    z1, z2 = np.meshgrid(z, z, indexing="ij")
    ww = np.outer(w, w)
    c = 0.5
    for _ in range(5000):
        u1, u2 = math.sqrt(q) * z1, math.sqrt(q) * (c * z1 + math.sqrt(1 - c * c) * z2)
        c = (sw2 * np.sum(ww * np.tanh(u1) * np.tanh(u2)) + sb2) / q
    chi_c = sw2 * np.sum(ww * (1 - np.tanh(u1) ** 2) * (1 - np.tanh(u2) ** 2))
    return chi1, -1 / math.log(chi_c)


@pytest.mark.parametrize("sw2", [1.0, 1.5, 2.0, 3.0, 4.0])
def test_xi_c_of_tanh_at_sigma_b2_005_against_quadrature(sw2):
    # The trainability phase diagram of Schoenholz et al. 2017 (Fig. 5/6) is drawn at sigma_b^2 = 0.05.
    sb = math.sqrt(0.05)
    _, want = _gh_xi_c(sw2, 0.05)
    assert mf.xi_c(math.sqrt(sw2), sb, "tanh") == pytest.approx(want, rel=1e-4)


def test_critical_sigma_w_of_tanh_at_sigma_b2_005_against_bisection():
    lo, hi = 1.0, 3.0  # chi_1(sigma_w^2) - 1 changes sign once in between
    for _ in range(25):  # 2 / 2^25 < 1e-7
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _gh_q_chi1(mid, 0.05)[1] < 1 else (lo, mid)
    assert mf.critical_sigma_w("tanh", math.sqrt(0.05)) ** 2 == pytest.approx((lo + hi) / 2, rel=1e-6)
