"""Variance-scaling initializers: exact fans, the variance formulas on dense and
conv layouts, distribution shapes (KS), bounds, the scheme registry, and
cross-checks against jax.nn.initializers.

Every formula test also checks its own power: the same sample must *fail* the
variance check against the plausible wrong formulas (1/fan_in for Glorot, no
(1+a^2) for leaky He, fan_in for fan_out, fan_avg for fan_geo_avg, gain for gain^2,
uncorrected truncation), so a wrong implementation cannot pass.

Compilation dominates the cost (one per initializer, shape and dtype), so samples
are drawn once per (case, layout) and shared by the checks.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax._src.nn.initializers import _compute_fans as jax_compute_fans
from scipy import stats as scipy_stats

import jinit
from tests import stats

KEY = jax.random.key(42)
TRUNC_STD = scipy_stats.truncnorm(-2, 2).std()

# Layouts (jinit's default in_axis=-2, out_axis=-1) with hand-computed fans.
# fan_in != fan_out everywhere and far enough apart that swapping modes is caught.
LAYOUTS = {
    "dense": ((128, 512), 128, 512),
    "conv1d": ((5, 16, 128), 5 * 16, 5 * 128),
    "conv2d": ((3, 3, 64, 128), 9 * 64, 9 * 128),
    "conv3d": ((3, 3, 3, 8, 64), 27 * 8, 27 * 64),
}
CONV = ("conv1d", "conv2d", "conv3d")


def fan_of(mode, fi, fo):
    return {"fan_in": fi, "fan_out": fo, "fan_avg": (fi + fo) / 2, "fan_geo_avg": math.sqrt(fi * fo)}[mode]


# ----------------------------------------------------------------------------- compute_fans (exact)


@pytest.mark.parametrize(
    "shape, kwargs, expected",
    [
        ((128, 512), {}, (128, 512)),
        ((7, 1), {}, (7, 1)),
        ((5, 32, 64), {}, (5 * 32, 5 * 64)),
        ((3, 3, 64, 128), {}, (3 * 3 * 64, 3 * 3 * 128)),
        ((3, 5, 7, 16, 32), {}, (3 * 5 * 7 * 16, 3 * 5 * 7 * 32)),
        ((128, 64, 3, 3), {"in_axis": 1, "out_axis": 0}, (64 * 9, 128 * 9)),  # torch OIHW
        ((64, 32, 5), {"in_axis": 1, "out_axis": 0}, (32 * 5, 64 * 5)),  # torch conv1d
        ((32, 16, 3, 3, 3), {"in_axis": 1, "out_axis": 0}, (16 * 27, 32 * 27)),  # torch conv3d
        ((512, 128), {"in_axis": 1, "out_axis": 0}, (128, 512)),  # torch Linear (out, in)
        ((4, 3, 3, 64, 128), {"batch_axis": 0}, (9 * 64, 9 * 128)),  # stacked layers
        ((4, 6, 64, 128), {"batch_axis": (0, 1)}, (64, 128)),
        ((8, 4, 16, 32), {"in_axis": (0, 1), "out_axis": -1}, (8 * 4 * 16, 32 * 16)),
        ((8, 12, 64), {"in_axis": -1, "out_axis": (0, 1)}, (64, 8 * 12)),  # attention out-projection
        ((64, 8, 12), {"in_axis": 0, "out_axis": (1, 2)}, (64, 96)),  # attention q/k/v
        ((2, 3, 5, 7), {"in_axis": (0, 2), "out_axis": (1,), "batch_axis": (3,)}, (10, 3)),
        ((3, 3, 64, 128), {"in_axis": -2, "out_axis": -1, "batch_axis": ()}, (576, 1152)),
    ],
)
def test_compute_fans_exact(shape, kwargs, expected):
    fans = jinit.compute_fans(shape, **kwargs)
    assert fans == expected
    assert all(isinstance(f, int) for f in fans)
    jf_in, jf_out = jax_compute_fans(shape, **kwargs)
    assert fans == (jf_in, jf_out)


def test_compute_fans_hwio_equals_transposed_oihw():
    for hwio in [(3, 3, 64, 128), (5, 32, 64), (3, 3, 3, 16, 32), (1, 1, 7, 9)]:
        rank = len(hwio)
        oihw = (hwio[-1], hwio[-2], *hwio[:-2])
        assert jinit.compute_fans(hwio) == jinit.compute_fans(oihw, in_axis=1, out_axis=0)
        assert rank == len(oihw)


def test_compute_fans_axis_order_and_negative_axes_are_equivalent():
    shape = (2, 3, 5, 7)
    assert jinit.compute_fans(shape, in_axis=(0, 2), out_axis=3) == jinit.compute_fans(
        shape, in_axis=(-2, -4), out_axis=-1
    )


# ----------------------------------------------------------------------------- named initializers


def glorot_var(g=1.0):
    return lambda fi, fo: g * g * 2.0 / (fi + fo)


def he_var(a=0.0, mode="fan_in"):
    return lambda fi, fo: 2.0 / ((1.0 + a * a) * (fi if mode == "fan_in" else fo))


# id -> (factory, kwargs, distribution, var(fi, fo), {wrong formula: var(fi, fo)}, layouts)
NAMED = {
    "glorot_normal": (
        jinit.glorot_normal, {}, "normal", glorot_var(),
        {"1/fan_in": lambda fi, fo: 1 / fi, "1/fan_out": lambda fi, fo: 1 / fo, "2/fan_in": lambda fi, fo: 2 / fi},
        ("dense", "conv2d"),
    ),
    "glorot_normal(gain=1.7)": (
        jinit.glorot_normal, {"gain": 1.7}, "normal", glorot_var(1.7),
        {"gain not squared": lambda fi, fo: 1.7 * 2 / (fi + fo), "no gain": glorot_var()},
        ("dense",),
    ),
    "glorot_uniform(gain=0.5)": (
        jinit.glorot_uniform, {"gain": 0.5}, "uniform", glorot_var(0.5),
        {"gain not squared": lambda fi, fo: 0.5 * 2 / (fi + fo), "1/(4 fan_in)": lambda fi, fo: 0.25 / fi},
        ("dense", "conv1d"),
    ),
    "he_normal": (
        jinit.he_normal, {}, "normal", he_var(),
        {"1/fan_in": lambda fi, fo: 1 / fi, "2/fan_out": he_var(0.0, "fan_out"), "glorot": glorot_var()},
        ("dense", "conv2d"),
    ),
    "he_normal(a=0.7, fan_out)": (
        jinit.kaiming_normal, {"negative_slope": 0.7, "mode": "fan_out"}, "normal", he_var(0.7, "fan_out"),
        {"fan_in": he_var(0.7), "slope ignored": he_var(0.0, "fan_out"),
         "2/((1+a) fan_out)": lambda fi, fo: 2 / (1.7 * fo)},
        ("dense", "conv2d"),
    ),
    "he_uniform(a=0.6)": (
        jinit.he_uniform, {"negative_slope": 0.6}, "uniform", he_var(0.6),
        {"fan_out": he_var(0.6, "fan_out"), "slope ignored": he_var(), "1/fan_in": lambda fi, fo: 1 / fi},
        ("dense", "conv1d"),
    ),
    "lecun_normal": (
        jinit.lecun_normal, {}, "normal", lambda fi, fo: 1 / fi,
        {"he": he_var(), "glorot": glorot_var(), "1/fan_out": lambda fi, fo: 1 / fo},
        ("dense", "conv3d"),
    ),
    "lecun_uniform": (
        jinit.lecun_uniform, {}, "uniform", lambda fi, fo: 1 / fi,
        {"he": he_var(), "glorot": glorot_var()},
        ("dense", "conv2d"),
    ),
}

# variance_scaling: every mode x distribution; truncated normal on a conv layout, the rest dense.
VS_SCALE = 1.7
VS_LAYOUT = {"normal": "dense", "uniform": "dense", "truncated_normal": "conv1d"}
VS = {f"variance_scaling({m},{d})": (m, d, VS_LAYOUT[d]) for m in jinit.variance.MODES for d in jinit.variance.DISTRIBUTIONS}


def _sample(case, layout):
    shape = LAYOUTS[layout][0]
    if case in NAMED:
        factory, kwargs = NAMED[case][:2]
        w = stats.draw(factory, shape=shape, seed=42, **kwargs)
    else:
        mode, dist, _ = VS[case]
        w = stats.draw(jinit.variance_scaling, VS_SCALE, mode, dist, shape=shape, seed=42)
    assert w.shape == shape and w.dtype == jnp.float32
    return np.asarray(w, np.float64)


def _check_distribution(x, dist, var):
    """Moments, KS and bounds of a zero-mean sample meant to have variance ``var``."""
    n = x.size
    stats.assert_mean_var(x, 0.0, var)
    std = math.sqrt(var)
    if dist == "normal":
        stats.assert_ks(x, stats.normal_cdf(0.0, std))
    elif dist == "uniform":
        bound = math.sqrt(3 * var)
        stats.assert_ks(x, stats.uniform_cdf(-bound, bound))
        assert -bound <= x.min() and x.max() < bound
        # The bound is attained: P(max|x| < (1 - 20/n) bound) = (1 - 20/n)^n < e^-20.
        assert np.abs(x).max() > (1 - 20 / n) * bound
    else:
        parent = std / TRUNC_STD
        stats.assert_ks(x, stats.truncnorm_cdf(0.0, parent, -2.0, 2.0))
        assert np.abs(x).max() < 2 * parent
        # P(|X| > c) = 20/n under the truncated normal: some sample lies beyond c.
        c = scipy_stats.truncnorm(-2, 2).ppf(1 - 10 / n)
        assert np.abs(x).max() > c * parent


def _check_power(x, var, wrong, fi, fo):
    for label, wrong_var in wrong.items():
        w = wrong_var(fi, fo)
        assert not math.isclose(w, var, rel_tol=0.1), f"wrong formula {label} is not a distinct hypothesis"
        assert stats.rejects(stats.assert_var, x, w), f"variance check would accept the wrong formula {label}"


@pytest.mark.parametrize(
    "case, layout",
    [pytest.param(c, lay, id=f"{c}-{lay}") for c, spec in NAMED.items() for lay in spec[5]],
)
def test_named_formula(case, layout):
    _, _, dist, var_fn, wrong, _ = NAMED[case]
    shape, fi, fo = LAYOUTS[layout]
    x = _sample(case, layout)
    var = var_fn(fi, fo)
    _check_distribution(x, dist, var)
    _check_power(x, var, wrong, fi, fo)


@pytest.mark.parametrize("case", list(VS))
def test_variance_scaling_formula(case):
    mode, dist, layout = VS[case]
    shape, fi, fo = LAYOUTS[layout]
    x = _sample(case, layout)
    var = VS_SCALE / fan_of(mode, fi, fo)
    _check_distribution(x, dist, var)
    wrong = {
        f"mode {m}": (lambda m: lambda a, b: VS_SCALE / fan_of(m, a, b))(m)
        for m in jinit.variance.MODES
        if not math.isclose(fan_of(m, fi, fo), fan_of(mode, fi, fo), rel_tol=0.1)
    }
    wrong["scale as std"] = lambda a, b: VS_SCALE**2 / fan_of(mode, a, b)
    if dist == "truncated_normal":
        wrong["no truncation correction"] = lambda a, b: var * TRUNC_STD**2
    _check_power(x, var, wrong, fi, fo)


@pytest.mark.parametrize(
    "rng, dist", [(g, d) for g in jinit.generators() if g != "jax" for d in jinit.variance.DISTRIBUTIONS]
)
def test_variance_scaling_other_generators(rng, dist):
    """Registered generators other than "jax" (which every other test uses)."""
    shape, fi, fo = LAYOUTS["dense"]
    x = stats.draw(jinit.variance_scaling, VS_SCALE, "fan_avg", dist, generator=rng, shape=shape)
    x = np.asarray(x, np.float64)
    var = VS_SCALE / fan_of("fan_avg", fi, fo)
    _check_distribution(x, dist, var)
    _check_power(x, var, {"fan_in": lambda a, b: VS_SCALE / a}, fi, fo)


def test_aliases():
    assert jinit.xavier_normal is jinit.glorot_normal
    assert jinit.xavier_uniform is jinit.glorot_uniform
    assert jinit.kaiming_normal is jinit.he_normal
    assert jinit.kaiming_uniform is jinit.he_uniform


def test_named_are_variance_scaling():
    """Same key, same values: glorot/he/lecun are variance_scaling with the paper's scale."""
    shape = LAYOUTS["dense"][0]
    pairs = [("glorot_uniform(gain=0.5)", jinit.variance_scaling(0.25, "fan_avg", "uniform"))]
    for case, vs in pairs:
        np.testing.assert_allclose(_sample(case, "dense"), np.asarray(vs(KEY, shape), np.float64), rtol=1e-6)


def test_axes_arguments_are_used():
    """in_axis/out_axis/batch_axis move the fans: the OIHW layout gets the HWIO variance."""
    oihw = (128, 64, 3, 3)
    w = jinit.he_normal(in_axis=1, out_axis=0)(KEY, oihw)
    stats.assert_var(w, 2.0 / (64 * 9))
    assert stats.rejects(stats.assert_var, w, 2.0 / (3 * 3))  # default axes would give fan_in = 3*3
    stacked = (4, 128, 512)
    w = jinit.glorot_uniform(batch_axis=0)(KEY, stacked)
    stats.assert_var(w, 2.0 / (128 + 512))
    assert stats.rejects(stats.assert_var, w, 2.0 / (4 * 128 + 4 * 512))


def test_scale_zero_gives_zeros():
    for dist in ("uniform", "truncated_normal"):  # bounded: the open-bound clamp must not move 0
        w = jinit.variance_scaling(0.0, "fan_in", dist)(KEY, (8, 4))
        np.testing.assert_array_equal(w, np.zeros((8, 4), np.float32))


# ----------------------------------------------------------------------------- jax.nn.initializers


JAX_NAMED = [
    ("glorot_normal", jax.nn.initializers.glorot_normal, "truncated_normal", glorot_var()),
    ("glorot_uniform", jax.nn.initializers.glorot_uniform, "uniform", glorot_var()),
    ("he_normal", jax.nn.initializers.he_normal, "truncated_normal", he_var()),
    ("he_uniform", jax.nn.initializers.he_uniform, "uniform", he_var()),
    ("lecun_normal", jax.nn.initializers.lecun_normal, "truncated_normal", lambda fi, fo: 1 / fi),
    ("lecun_uniform", jax.nn.initializers.lecun_uniform, "uniform", lambda fi, fo: 1 / fi),
]


@pytest.mark.parametrize("name, jax_factory, jax_dist, var_fn", JAX_NAMED, ids=[j[0] for j in JAX_NAMED])
def test_same_variance_as_jax_named(name, jax_factory, jax_dist, var_fn):
    shape, fi, fo = LAYOUTS["dense"]
    var = var_fn(fi, fo)
    ours = np.asarray(stats.draw(getattr(jinit, name), shape=shape, seed=42), np.float64)
    theirs = np.asarray(jax_factory()(KEY, shape), np.float64)
    # Both samples have the formula's variance.
    stats.assert_var(ours, var)
    stats.assert_var(theirs, var)
    _check_distribution(theirs, jax_dist, var)
    if jax_dist == "truncated_normal":
        # Design decision: ours is a plain normal of the same variance, JAX's is truncated at 2 parent sigma.
        parent = math.sqrt(var) / TRUNC_STD
        assert (np.abs(ours) >= 2 * parent).mean() > 0.01  # P(|Z| > 2/0.88) = 2.3%
        assert stats.rejects(stats.assert_ks, ours, stats.truncnorm_cdf(0.0, parent, -2.0, 2.0))
    else:
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6 * math.sqrt(var))


@pytest.mark.parametrize("mode", jinit.variance.MODES)
@pytest.mark.parametrize(
    "shape, in_axis, out_axis, batch_axis",
    [
        ((3, 3, 64, 128), -2, -1, ()),
        ((128, 64, 3, 3), 1, 0, ()),
        ((4, 64, 8, 12), 1, (2, 3), 0),
        ((5, 32, 64), -2, -1, ()),
    ],
)
def test_same_analytic_variance_as_jax(mode, shape, in_axis, out_axis, batch_axis):
    """The variance each library implies: jinit's formula with jinit's fans equals
    JAX's scale/denominator with JAX's fans."""
    fi, fo = jinit.compute_fans(shape, in_axis, out_axis, batch_axis)
    jfi, jfo = jax_compute_fans(shape, in_axis, out_axis, batch_axis)
    assert (fi, fo) == (jfi, jfo)
    jax_den = {"fan_in": jfi, "fan_out": jfo, "fan_avg": (jfi + jfo) / 2, "fan_geo_avg": (jfi * jfo) ** 0.5}[mode]
    assert VS_SCALE / fan_of(mode, fi, fo) == pytest.approx(VS_SCALE / jax_den, rel=1e-15)


@pytest.mark.parametrize("case", list(VS))
def test_variance_scaling_matches_jax_samples(case):
    """Same key, same generator (generator="jax"): jinit's variance_scaling gives JAX's values
    (to rounding of the scale factor) for every mode and distribution."""
    mode, dist, layout = VS[case]
    shape, fi, fo = LAYOUTS[layout]
    ours = _sample(case, layout)
    theirs = np.asarray(jax.nn.initializers.variance_scaling(VS_SCALE, mode, dist)(KEY, shape), np.float64)
    var = VS_SCALE / fan_of(mode, fi, fo)
    stats.assert_var(theirs, var)
    if jinit.get_default_rng() == "jax":
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6 * math.sqrt(var))


# ----------------------------------------------------------------------------- the scheme registry


SCHEME_SHAPE = (128, 512)

# Formulas whose variance is known: formula text -> (mean, var(fi, fo), distribution).
KNOWN_FORMULAS = {
    "W = 0": (0.0, lambda fi, fo: 0.0, "const"),
    "W ~ N(0, 1)": (0.0, lambda fi, fo: 1.0, "normal"),
    "W ~ U[-0.01, 0.01)": (0.0, lambda fi, fo: 0.02**2 / 12, "uniform"),
    "W ~ U[-1, 1)": (0.0, lambda fi, fo: 4 / 12, "uniform"),
    "W ~ N(0.1, 0.1^2)": (0.1, lambda fi, fo: 0.01, "normal"),
    "W ~ U[-1/sqrt(fan_in), 1/sqrt(fan_in))": (0.0, lambda fi, fo: 1 / (3 * fi), "uniform"),
    "W ~ N(0, 2/(fan_in + fan_out))": (0.0, glorot_var(), "normal"),
    "W ~ U[+-sqrt(6/(fan_in + fan_out))]": (0.0, glorot_var(), "uniform"),
    "W ~ N(0, 2/fan_in)": (0.0, he_var(), "normal"),
    "W ~ U[+-sqrt(6/fan_in)]": (0.0, he_var(), "uniform"),
    "W ~ N(0, 1/fan_in)": (0.0, lambda fi, fo: 1 / fi, "normal"),
    "W ~ U[+-sqrt(3/fan_in)]": (0.0, lambda fi, fo: 1 / fi, "uniform"),
}
CORE_SCHEMES = (
    "zeros", "normal", "uniform_small", "uniform_large", "normal_nonzero_mean", "glorot_standard",
    "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform",
)
ALL_SCHEMES = jinit.scheme_names()


@functools.cache
def _scheme_sample(name, activation="relu", shape=SCHEME_SHAPE):
    init = jinit.get_scheme(name).kernel_init(activation)
    return init, init(KEY, shape)


def test_core_schemes_have_known_formulas():
    for name in CORE_SCHEMES:
        assert jinit.get_scheme(name).formula in KNOWN_FORMULAS, name


CONV_SHAPE = (3, 3, 128, 128)  # conv-only schemes' kernels (HWIO)


@pytest.mark.parametrize("name", ALL_SCHEMES)
def test_every_scheme_deterministic_shape_dtype_finite(name):
    scheme = jinit.get_scheme(name)
    assert scheme.name == name and scheme.formula and scheme.reference
    shape = CONV_SHAPE if "conv" in scheme.requires else SCHEME_SHAPE
    init, w = _scheme_sample(name, shape=shape)
    assert w.shape == shape and w.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(w)))
    np.testing.assert_array_equal(init(KEY, shape), w)  # (some schemes ignore the key: ZerO, identity)
    b = scheme.bias_init("relu")(KEY, (shape[-1],))
    assert b.shape == (shape[-1],) and np.all(np.isfinite(np.asarray(b)))


@pytest.mark.parametrize("name", [n for n in ALL_SCHEMES if jinit.get_scheme(n).formula in KNOWN_FORMULAS])
def test_scheme_formula(name):
    mean, var_fn, dist = KNOWN_FORMULAS[jinit.get_scheme(name).formula]
    fi, fo = SCHEME_SHAPE
    var = var_fn(fi, fo)
    _, w = _scheme_sample(name)
    x = np.asarray(w, np.float64)
    if dist == "const":
        np.testing.assert_array_equal(x, np.full(SCHEME_SHAPE, mean))
        return
    stats.assert_mean_var(x, mean, var)
    std = math.sqrt(var)
    if dist == "normal":
        stats.assert_ks(x, stats.normal_cdf(mean, std))
    else:
        b = math.sqrt(3 * var)
        stats.assert_ks(x, stats.uniform_cdf(mean - b, mean + b))
        assert x.min() >= mean - b and x.max() < mean + b


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu"])
def test_gain_normal_scheme(activation):
    """gain_normal: N(0, g^2/fan_in) with g = 1/sqrt(E[phi(z)^2])."""
    phi = jinit.get_activation(activation)
    ref_g2 = 1.0 / _second_moment_quad(lambda t: float(phi(np.float32(t))))
    if activation == "relu":
        assert ref_g2 == pytest.approx(2.0, rel=1e-6)
    _, w = _scheme_sample("gain_normal", activation)
    fi = SCHEME_SHAPE[0]
    stats.assert_var(w, ref_g2 / fi)
    stats.assert_ks(w, stats.normal_cdf(0.0, math.sqrt(ref_g2 / fi)))
    if abs(ref_g2 - 1.0) > 0.2:
        assert stats.rejects(stats.assert_var, w, 1.0 / fi)


def _second_moment_quad(f):
    """E[f(z)^2], z ~ N(0, 1), by scipy's adaptive quadrature (split at the kink 0)."""
    from scipy import integrate

    g = lambda t: f(t) ** 2 * math.exp(-t * t / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    return integrate.quad(g, -np.inf, 0)[0] + integrate.quad(g, 0, np.inf)[0]


def test_gain_normal_gain_is_finite_for_every_activation():
    for activation in jinit.ACTIVATIONS:
        init = jinit.get_scheme("gain_normal").kernel_init(activation)
        assert init.__name__ == "gain_normal"
        g = jinit.gain_for(jinit.get_activation(activation))
        assert math.isfinite(g) and 0.5 < g < 3.0
