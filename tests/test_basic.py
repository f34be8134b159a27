"""Fills and fixed-scale distributions of jinit.basic: exact values, moments,
distribution shape (KS), bounds, and agreement with jax.random."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats as scipy_stats

import jinit
from tests import stats

KEY = jax.random.key(0)
GENERATORS = jinit.generators()

# Dense (in, out) and HWIO conv shapes (1-D and 2-D convolutions).
SHAPES = {
    "dense": (256, 384),
    "conv1d": (5, 32, 64),
    "conv2d": (3, 3, 64, 128),
    "dense_wide": (64, 1024),
}  # (the 3-D conv layout is exercised in test_variance: rank-5 shapes compile slowly)


# ----------------------------------------------------------------------------- fills


FILL_FACTORIES = {"zeros": (jinit.zeros, 0.0), "ones": (jinit.ones, 1.0), "constant(-2.5)": (lambda: jinit.constant(-2.5), -2.5),
                  "constant(-3)": (lambda: jinit.constant(-3), -3.0), "constant()": (jinit.constant, 0.0)}
def _representable(value, dtype) -> bool:
    """Whether ``dtype`` holds ``value`` exactly (floats round, which is fine for a fill)."""
    if jnp.issubdtype(dtype, jnp.floating):
        return True
    if dtype == jnp.bool_:
        return value in (0, 1)
    info = jnp.iinfo(dtype)
    return value == round(value) and info.min <= value <= info.max


FILL_DTYPES = {"float32": jnp.float32, "float16": jnp.float16, "bfloat16": jnp.bfloat16, "int32": jnp.int32,
               "int8": jnp.int8, "uint8": jnp.uint8, "bool": jnp.bool_}


@pytest.mark.parametrize(
    "fill, dtype",
    [
        pytest.param(f, d, id=f"{f}-{d}")
        for f in FILL_FACTORIES
        for d in FILL_DTYPES
        if _representable(FILL_FACTORIES[f][1], FILL_DTYPES[d])
    ],
)
def test_fill_values_any_dtype(fill, dtype):
    factory, value = FILL_FACTORIES[fill]
    dt = jnp.dtype(FILL_DTYPES[dtype])
    w = factory()(KEY, (4, 3, 2), dt)
    assert w.shape == (4, 3, 2)
    assert w.dtype == dt
    np.testing.assert_array_equal(np.asarray(w), np.full((4, 3, 2), value, dtype=dt))


@pytest.mark.parametrize(
    "value, dtype",
    [(-2.5, jnp.int32), (0.5, jnp.int8), (300, jnp.int8), (-3, jnp.uint8), (-2.5, jnp.uint8), (2, jnp.bool_),
     (-1, jnp.bool_)],
)
def test_fill_value_not_representable_in_dtype(value, dtype):
    """No silent truncation (-2.5 -> -2), wrap-around (-3 -> 253) or bool coercion (2 -> True)."""
    name = jnp.dtype(dtype).name
    with pytest.raises(ValueError, match=rf"constant: value={value!r} cannot be represented in dtype {name}"):
        jinit.constant(value)(KEY, (2,), dtype)
    with pytest.raises(ValueError, match=rf"constant: value={value!r} cannot be represented in dtype {name}"):
        jinit.constant(value, dtype=dtype)  # a default dtype is checked at factory time


def test_fill_default_dtype_and_names():
    for factory, name in [(jinit.zeros, "zeros"), (jinit.ones, "ones"), (lambda: jinit.constant(3), "constant")]:
        init = factory()
        assert init.__name__ == name
        w = init(KEY, (2, 5))
        assert w.dtype == jnp.float32
        w_none = init(KEY, (2, 5), None)
        assert w_none.dtype == jnp.float32
    np.testing.assert_array_equal(jinit.constant(7)(KEY, (3,), jnp.int32), np.array([7, 7, 7], np.int32))


def test_fills_accept_raw_keys_and_scalar_shapes():
    np.testing.assert_array_equal(jinit.ones()(jax.random.PRNGKey(3), ()), np.float32(1))
    np.testing.assert_array_equal(jinit.zeros()(KEY, 3), np.zeros(3, np.float32))


# ----------------------------------------------------------------------------- normal


def _cases(params):
    """(rng, *params, shape) cases. Each parameter tuple is paired with one layout,
    cycling through all of them (a new shape costs a compilation, so the grid is
    not a full product); generators other than the default "jax" get the first
    two (a dense and a conv layout)."""
    layouts = list(SHAPES.items())
    out = []
    for rng in GENERATORS:
        for i, p in enumerate(params if rng == "jax" else params[:2]):
            name, shape = layouts[i % len(layouts)]
            out.append(pytest.param(rng, *p, shape, id=f"{rng}-{p}-{name}"))
    return out


@pytest.mark.parametrize("rng, stddev, mean, shape", _cases([(0.1, 0.3), (0.02, 0.0), (1.0, 0.0), (0.05, -0.02)]))
def test_normal_moments_and_shape(rng, stddev, mean, shape):
    w = jinit.normal(stddev=stddev, mean=mean, generator=rng)(KEY, shape)
    assert w.shape == shape and w.dtype == jnp.float32
    stats.assert_mean_var(w, mean, stddev**2)
    stats.assert_ks(w, stats.normal_cdf(mean, stddev))
    # Power: the moment checks reject the stddev (not variance) and a dropped mean.
    assert stats.rejects(stats.assert_var, w, 1.2 * stddev**2)
    if mean != 0:
        assert stats.rejects(stats.assert_mean, w, 0.0)


def test_normal_defaults_are_standard():
    w = jinit.normal()(KEY, SHAPES["dense"])
    stats.assert_mean_var(w, 0.0, 1.0)
    stats.assert_ks(w, "norm")


def test_normal_zero_stddev_is_the_mean():
    np.testing.assert_array_equal(jinit.normal(0.0, mean=0.25)(KEY, (7, 3)), np.full((7, 3), 0.25, np.float32))


def test_jax_generator_equals_jax_random():
    """generator="jax" draws exactly what jax.random draws for the same key."""
    shape = (64, 48)
    np.testing.assert_array_equal(jinit.normal(generator="jax")(KEY, shape), jax.random.normal(KEY, shape))
    u = jinit.uniform(0.0, 1.0, generator="jax")(KEY, shape)
    np.testing.assert_array_equal(u, jax.random.uniform(KEY, shape))
    # (truncated normal: see test_variance's comparison with jax.nn.initializers.)


def test_raw_uint32_key_gives_the_same_values_as_typed_key():
    shape = (16, 8)
    init = jinit.he_normal()
    np.testing.assert_array_equal(init(jax.random.PRNGKey(5), shape), init(jax.random.key(5), shape))


# ----------------------------------------------------------------------------- uniform


@pytest.mark.parametrize("rng, low, high, shape", _cases([(0.5, 3.0), (-0.01, 0.01), (-1.0, 1.0), (-7.0, -2.0)]))
def test_uniform_moments_bounds_and_shape(rng, low, high, shape):
    w = jinit.uniform(low, high, generator=rng)(KEY, shape)
    assert w.shape == shape and w.dtype == jnp.float32
    x = np.asarray(w, np.float64)
    assert x.min() >= low and x.max() < high
    stats.assert_mean_var(x, (low + high) / 2, (high - low) ** 2 / 12)
    stats.assert_ks(x, stats.uniform_cdf(low, high))
    # Power: the variance check rejects the half-width squared / 3 of a one-sided U[0, high-low).
    assert stats.rejects(stats.assert_var, x, (high - low) ** 2 / 3)


def test_uniform_defaults_and_not_jax_one_sided_convention():
    w = np.asarray(jinit.uniform()(KEY, SHAPES["dense"]))
    assert w.min() >= -1.0 and w.max() < 1.0
    assert (w < 0).mean() > 0.45  # both signs, unlike jax.nn.initializers.uniform
    stats.assert_mean_var(w, 0.0, 1.0 / 3.0)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
@pytest.mark.parametrize("low, high", [(-1.0, 1.0), (-4.0, 2.0)])
def test_uniform_half_open_in_every_dtype(dtype, low, high):
    """Rounding to a low-precision dtype must not land a sample on ``high``."""
    w = jinit.uniform(low, high)(KEY, (1 << 20,), dtype)
    assert w.dtype == jnp.dtype(dtype)
    x = np.asarray(w.astype(jnp.float32), np.float64)
    assert x.min() >= low
    assert x.max() < high
    stats.assert_mean(x, (low + high) / 2)
    stats.assert_var_rounded(x, (high - low) ** 2 / 12, dtype)


# ----------------------------------------------------------------------------- truncated normal


def test_truncated_normal_std_matches_scipy():
    assert jinit.truncated_normal_std(-2.0, 2.0) == pytest.approx(scipy_stats.truncnorm(-2, 2).std(), abs=1e-12)
    assert jinit.truncated_normal_std(-2.0, 2.0) == pytest.approx(0.87962566103423978, abs=1e-15)
    assert jinit.truncated_normal_std() == jinit.truncated_normal_std(-2.0, 2.0)


@pytest.mark.parametrize(
    "lower, upper",
    [(-2.0, 2.0), (-1.0, 1.0), (-3.0, 0.5), (0.0, 2.0), (-0.1, 0.1), (1.0, 4.0), (-math.inf, 1.0), (-1.5, math.inf)],
)
def test_truncated_normal_std_bounds_match_scipy(lower, upper):
    assert jinit.truncated_normal_std(lower, upper) == pytest.approx(
        scipy_stats.truncnorm(lower, upper).std(), rel=1e-9, abs=1e-12
    )


def test_truncated_normal_std_without_truncation_is_one():
    assert jinit.truncated_normal_std(-math.inf, math.inf) == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize(
    "rng, stddev, mean, lower, upper, shape",
    _cases([(0.5, 1.0, -1.0, 3.0), (0.02, 0.0, -2.0, 2.0), (1.0, 0.0, -2.0, 2.0), (2.0, -1.0, 0.0, 1.5)]),
)
def test_truncated_normal_moments_bounds_and_shape(rng, stddev, mean, lower, upper, shape):
    """``stddev`` is the parent's, bounds are in parent-stddev units."""
    w = jinit.truncated_normal(stddev, mean, lower, upper, generator=rng)(KEY, shape)
    assert w.shape == shape and w.dtype == jnp.float32
    x = np.asarray(w, np.float64)
    lo, hi = mean + lower * stddev, mean + upper * stddev
    assert x.min() > lo and x.max() < hi
    ref = scipy_stats.truncnorm(lower, upper, loc=mean, scale=stddev)
    stats.assert_mean_var(x, ref.mean(), ref.var())
    assert ref.std() == pytest.approx(stddev * jinit.truncated_normal_std(lower, upper), rel=1e-9)
    stats.assert_ks(x, stats.truncnorm_cdf(mean, stddev, lower, upper))


def test_truncated_normal_stddev_is_the_parents_not_corrected():
    w = jinit.truncated_normal(stddev=1.0)(KEY, (1 << 17,))
    stats.assert_var(w, jinit.truncated_normal_std(-2, 2) ** 2)
    assert stats.rejects(stats.assert_var, w, 1.0)  # the corrected (variance_scaling) convention
    assert float(jnp.abs(w).max()) < 2.0


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
@pytest.mark.parametrize("stddev, mean", [(1.0, 0.0), (0.3, 0.5)])
def test_truncated_normal_open_bounds_in_every_dtype(dtype, stddev, mean):
    w = jinit.truncated_normal(stddev, mean)(KEY, (1 << 20,), dtype)
    assert w.dtype == jnp.dtype(dtype)
    x = np.asarray(w.astype(jnp.float32), np.float64)
    lo = np.float64(np.asarray(jnp.asarray(mean - 2 * stddev, dtype).astype(jnp.float32)))
    hi = np.float64(np.asarray(jnp.asarray(mean + 2 * stddev, dtype).astype(jnp.float32)))
    assert x.min() > lo and x.max() < hi
    ref = scipy_stats.truncnorm(-2, 2, loc=mean, scale=stddev)
    stats.assert_mean(x, ref.mean())
    stats.assert_var_rounded(x, ref.var(), dtype)


def test_truncated_normal_zero_stddev_is_the_mean():
    np.testing.assert_array_equal(
        jinit.truncated_normal(0.0, mean=-1.5)(KEY, (4, 4)), np.full((4, 4), -1.5, np.float32)
    )


# ----------------------------------------------------------------------------- shapes and dtypes


@pytest.mark.parametrize(
    "init",
    [jinit.normal(), jinit.uniform(), jinit.truncated_normal(), jinit.zeros(), jinit.constant(2.0)],
    ids=["normal", "uniform", "truncated_normal", "zeros", "constant"],
)
@pytest.mark.parametrize("shape", [(0,), (3, 0), (0, 4, 5), (), (7,)])
def test_degenerate_shapes(init, shape):
    w = init(KEY, shape)
    assert w.shape == shape and w.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(w)))


def test_float64_with_x64():
    with jax.enable_x64(True):
        w = jinit.he_uniform()(jax.random.key(1), (256, 128), jnp.float64)
        assert w.dtype == jnp.float64 and w.shape == (256, 128)
        stats.assert_var(w, 2.0 / 256)
        assert float(jnp.abs(w).max()) < math.sqrt(6.0 / 256)
