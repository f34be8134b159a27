"""Cross-checks with torch.nn.init (optional: skipped without torch).

torch stores weights (out, in, *kernel) (OIHW); jinit is given the same tensor
layout with in_axis=1, out_axis=0, and the HWIO transpose with the defaults. Both
must give torch's fans, variance and bounds, and both libraries' samples must
pass the same statistical checks.
"""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest
from scipy import stats as scipy_stats

import jinit
from tests import stats

torch = pytest.importorskip("torch")
tinit = torch.nn.init

KEY = jax.random.key(7)

# torch layouts (out, in, *kernel): Linear, Conv1d, Conv2d, Conv3d.
TORCH_SHAPES = {
    "linear": (384, 128),
    "conv1d": (128, 16, 5),
    "conv2d": (128, 64, 3, 3),
    "conv3d": (64, 8, 3, 3, 3),
}


def to_hwio(shape):
    """(out, in, *k) -> (*k, in, out)."""
    return (*shape[2:], shape[1], shape[0])


def torch_fans(shape):
    return tinit._calculate_fan_in_and_fan_out(torch.empty(shape))


def torch_sample(fn, shape, seed=0, **kwargs):
    t = torch.empty(shape, dtype=torch.float32)
    g = torch.Generator().manual_seed(seed)
    fn(t, generator=g, **kwargs)
    return t.numpy().astype(np.float64)


@pytest.mark.parametrize("layout", list(TORCH_SHAPES))
def test_fans_match_torch(layout):
    shape = TORCH_SHAPES[layout]
    fans = torch_fans(shape)
    assert jinit.compute_fans(shape, in_axis=1, out_axis=0) == fans
    assert jinit.compute_fans(to_hwio(shape)) == fans


# (layout, a, mode): every layout, several slopes, both modes; torch's default nonlinearity is leaky_relu.
KAIMING_CASES = [
    ("linear", 0.0, "fan_in"),
    ("conv2d", 0.0, "fan_out"),
    ("conv1d", 0.3, "fan_in"),
    ("conv3d", math.sqrt(5), "fan_in"),  # torch's Linear/Conv default a
]


@pytest.mark.parametrize("layout, a, mode", KAIMING_CASES, ids=[f"{c[0]}-a{c[1]:.2f}-{c[2]}" for c in KAIMING_CASES])
@pytest.mark.parametrize("dist", ["normal", "uniform"])
def test_kaiming_matches_torch(layout, a, mode, dist):
    shape = TORCH_SHAPES[layout]
    fan_in, fan_out = torch_fans(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    gain = tinit.calculate_gain("leaky_relu", a)
    var = gain**2 / fan  # torch: std = gain / sqrt(fan)
    assert var == pytest.approx(2.0 / ((1 + a * a) * fan), rel=1e-14)
    torch_fn = tinit.kaiming_normal_ if dist == "normal" else tinit.kaiming_uniform_
    ours_fn = jinit.he_normal if dist == "normal" else jinit.he_uniform
    theirs = torch_sample(torch_fn, shape, a=a, mode=mode, nonlinearity="leaky_relu")
    ours_oihw = np.asarray(ours_fn(a, mode, in_axis=1, out_axis=0)(KEY, shape), np.float64)
    samples = [theirs, ours_oihw]
    if layout == "conv2d":  # the HWIO transpose with default axes (one case: each draw compiles)
        samples.append(np.asarray(ours_fn(a, mode)(KEY, to_hwio(shape)), np.float64))
    for x in samples:
        stats.assert_mean_var(x, 0.0, var)
        if dist == "normal":  # torch's kaiming_normal_ is untruncated, like jinit's
            stats.assert_ks(x, stats.normal_cdf(0.0, math.sqrt(var)))
        else:
            bound = gain * math.sqrt(3.0 / fan)
            assert np.abs(x).max() <= bound * (1 + 1e-6)
            assert np.abs(x).max() > (1 - 20 / x.size) * bound
            stats.assert_ks(x, stats.uniform_cdf(-bound, bound))
    # Power: the slope and the mode matter.
    if a != 0:
        assert stats.rejects(stats.assert_var, ours_oihw, 2.0 / fan)
    other = fan_out if mode == "fan_in" else fan_in
    assert stats.rejects(stats.assert_var, ours_oihw, gain**2 / other)


# torch's nonlinearity= (gain = calculate_gain(nonlinearity, a), std = gain / sqrt(fan)); the leaky_relu
# default with a slope is covered above.
NONLINEARITY_CASES = [
    ("relu", "normal", "fan_in"), ("tanh", "normal", "fan_in"), ("linear", "normal", "fan_out"),
    ("sigmoid", "normal", "fan_in"), ("selu", "normal", "fan_in"), ("conv2d", "normal", "fan_in"),
    ("tanh", "uniform", "fan_out"), ("selu", "uniform", "fan_in"), ("relu", "uniform", "fan_in"),
]


@pytest.mark.parametrize("nonlinearity, dist, mode", NONLINEARITY_CASES, ids=["-".join(c) for c in NONLINEARITY_CASES])
def test_kaiming_nonlinearity_matches_torch(nonlinearity, dist, mode):
    shape = TORCH_SHAPES["conv2d"]
    fan_in, fan_out = torch_fans(shape)
    fan = fan_in if mode == "fan_in" else fan_out
    gain = tinit.calculate_gain(nonlinearity)
    assert jinit.calculate_gain(nonlinearity) == pytest.approx(gain, rel=1e-15)
    var = gain**2 / fan
    torch_fn = tinit.kaiming_normal_ if dist == "normal" else tinit.kaiming_uniform_
    ours_fn = jinit.kaiming_normal if dist == "normal" else jinit.kaiming_uniform
    theirs = torch_sample(torch_fn, shape, mode=mode, nonlinearity=nonlinearity)
    ours = np.asarray(ours_fn(mode=mode, in_axis=1, out_axis=0, nonlinearity=nonlinearity)(KEY, shape), np.float64)
    for x in (theirs, ours):
        stats.assert_mean_var(x, 0.0, var)
        if dist == "normal":
            stats.assert_ks(x, stats.normal_cdf(0.0, math.sqrt(var)))
        else:
            bound = gain * math.sqrt(3.0 / fan)
            assert np.abs(x).max() <= bound * (1 + 1e-6)
            stats.assert_ks(x, stats.uniform_cdf(-bound, bound))
    assert scipy_stats.ks_2samp(theirs.ravel(), ours.ravel()).pvalue > stats.KS_ALPHA
    if not math.isclose(gain**2, 2.0):  # power: the default (ReLU) variance would be caught
        assert stats.rejects(stats.assert_var, ours, 2.0 / fan)


XAVIER_CASES = [("linear", 1.0), ("conv2d", 5.0 / 3.0), ("conv1d", 0.5), ("conv3d", math.sqrt(2.0))]


@pytest.mark.parametrize("layout, gain", XAVIER_CASES, ids=[f"{c[0]}-g{c[1]:.2f}" for c in XAVIER_CASES])
@pytest.mark.parametrize("dist", ["normal", "uniform"])
def test_xavier_matches_torch(layout, gain, dist):
    shape = TORCH_SHAPES[layout]
    fan_in, fan_out = torch_fans(shape)
    var = gain**2 * 2.0 / (fan_in + fan_out)
    torch_fn = tinit.xavier_normal_ if dist == "normal" else tinit.xavier_uniform_
    ours_fn = jinit.xavier_normal if dist == "normal" else jinit.xavier_uniform
    theirs = torch_sample(torch_fn, shape, gain=gain)
    ours = np.asarray(ours_fn(gain, in_axis=1, out_axis=0)(KEY, shape), np.float64)
    for x in (theirs, ours):
        stats.assert_mean_var(x, 0.0, var)
        if dist == "uniform":
            bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
            assert np.abs(x).max() <= bound * (1 + 1e-6)
            stats.assert_ks(x, stats.uniform_cdf(-bound, bound))
        else:
            stats.assert_ks(x, stats.normal_cdf(0.0, math.sqrt(var)))


TRUNC_CASES = [
    # torch trunc_normal_(mean, std, a, b): absolute bounds, std of the parent
    (0.0, 1.0, -2.0, 2.0),
    (0.0, 0.02, -0.04, 0.04),  # the +-2 sigma a transformer user means
    (0.5, 0.2, 0.1, 1.0),
    (-1.0, 2.0, -2.0, 3.0),
]


@pytest.mark.parametrize("mean, std, a, b", TRUNC_CASES)
def test_trunc_normal_matches_torch(mean, std, a, b):
    shape = (256, 256)
    theirs = torch_sample(tinit.trunc_normal_, shape, mean=mean, std=std, a=a, b=b)
    lower, upper = (a - mean) / std, (b - mean) / std  # to parent-stddev units
    ours = np.asarray(jinit.truncated_normal(std, mean, lower, upper)(KEY, shape), np.float64)
    ref = scipy_stats.truncnorm(lower, upper, loc=mean, scale=std)
    for x in (theirs, ours):
        assert x.min() >= a and x.max() <= b
        stats.assert_mean_var(x, ref.mean(), ref.var())
        stats.assert_ks(x, stats.truncnorm_cdf(mean, std, lower, upper))
    assert ours.min() > a and ours.max() < b  # jinit's interval is open


def test_trunc_normal_defaults_differ_as_documented():
    """torch's default bounds +-2 are absolute: with std 0.02 they do not truncate;
    jinit's default +-2 are in stddev units. Same parent std, no correction, in both."""
    shape = (256, 256)
    theirs = torch_sample(tinit.trunc_normal_, shape, std=0.02)
    ours = np.asarray(jinit.truncated_normal(0.02)(KEY, shape), np.float64)
    stats.assert_var(theirs, 0.02**2)  # practically untruncated
    stats.assert_var(ours, (0.02 * jinit.truncated_normal_std(-2, 2)) ** 2)
    assert np.abs(ours).max() < 0.04 < np.abs(theirs).max()


NONLINEARITIES = [
    "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
    "sigmoid", "tanh", "relu", "leaky_relu", "selu",
]


@pytest.mark.parametrize("name", NONLINEARITIES)
def test_calculate_gain_matches_torch(name):
    assert jinit.calculate_gain(name) == pytest.approx(tinit.calculate_gain(name), rel=1e-15)


@pytest.mark.parametrize("param", [None, 0, 0.0, 0.01, 0.2, 1, 3.5, -0.3, math.sqrt(5)])
def test_calculate_gain_leaky_relu_matches_torch(param):
    assert jinit.calculate_gain("leaky_relu", param) == pytest.approx(
        tinit.calculate_gain("leaky_relu", param), rel=1e-15
    )


def test_same_nonlinearity_names_as_torch():
    import typing

    hints = typing.get_type_hints(tinit.kaiming_normal_)
    torch_names = set(typing.get_args(hints["nonlinearity"]))
    assert torch_names == set(jinit.gain.NONLINEARITIES)


@pytest.mark.parametrize("name", ["swish", "gelu"])
def test_unknown_nonlinearity_rejected_by_both(name):
    with pytest.raises(ValueError):
        tinit.calculate_gain(name)
    with pytest.raises(ValueError, match="calculate_gain: invalid nonlinearity"):
        jinit.calculate_gain(name)
