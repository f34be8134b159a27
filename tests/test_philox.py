"""Philox4x32-10 (jinit.philox): known answers, an independent reference
implementation, the float conversions, and statistical quality."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special, stats as sstats

import jinit
from jinit import philox
from tests import stats

# Random123's published known-answer vectors (the library's tests/kat_vectors,
# as copied into DEShawResearch/Random123-Boost libs/random/test/test_philox.cpp,
# commit 916db91): (rounds, counter[4], key[2], expected[4]).
KAT = [
    (10, (0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    (10, (0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        10,
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
    (7, (0, 0, 0, 0), (0, 0), (0x5F6FB709, 0x0D893F64, 0x4F121F81, 0x4F730A48)),
    (7, (0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x5207DDC2, 0x45165E59, 0x4D8EE751, 0x8C52F662)),
    (
        7,
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0x4DFCCABA, 0x190A87F0, 0xC47362BA, 0xB6B5242A),
    ),
]

MULHILO = {"wide": philox.mulhilo_wide, "limbs": philox.mulhilo_limbs}


# ---------------------------------------------------------------------------
# An independent reference: numpy uint64 products, written from the paper.


def ref_philox4x32(ctr, key, rounds=10):
    """Philox4x32 on numpy uint32 arrays (products in uint64)."""
    m0, m1 = np.uint64(0xD2511F53), np.uint64(0xCD9E8D57)
    mask = np.uint64(0xFFFFFFFF)
    c = [np.asarray(x, np.uint64) for x in ctr]
    k0, k1 = (np.uint64(int(k)) for k in key)
    for r in range(rounds):
        p0 = m0 * c[0]
        p1 = m1 * c[2]
        c = [(p1 >> np.uint64(32)) ^ c[1] ^ k0, p1 & mask, (p0 >> np.uint64(32)) ^ c[3] ^ k1, p0 & mask]
        k0 = (k0 + np.uint64(0x9E3779B9)) & mask
        k1 = (k1 + np.uint64(0xBB67AE85)) & mask
    return [x.astype(np.uint32) for x in c]


def ref_bits(key_pair, shape, word=0):
    n = math.prod(shape)
    i = np.arange(n, dtype=np.uint64)
    lo, hi = (i & np.uint64(0xFFFFFFFF)), (i >> np.uint64(32))
    z = np.zeros(n, np.uint64)
    return ref_philox4x32((lo, hi, z, z), key_pair)[word].reshape(shape)


# The samplers are plain traceable functions; jit them as the initializers do
# (eagerly each of the ~300 element-wise ops would be dispatched on its own).
P_BITS = jax.jit(philox.bits, static_argnums=(1, 2))
P_UNIFORM = jax.jit(philox.uniform, static_argnums=(1, 2))
P_NORMAL = jax.jit(philox.normal, static_argnums=(1, 2))
P_TRUNC = jax.jit(philox.truncated_normal, static_argnums=(1, 2, 3, 4))


def key_pair(key):
    return tuple(int(x) for x in np.asarray(jax.random.key_data(key)))


# ---------------------------------------------------------------------------
# Known answers and the reference.


@pytest.mark.parametrize("impl", sorted(MULHILO))
@pytest.mark.parametrize("rounds, ctr, key, want", KAT)
def test_known_answer_vectors(monkeypatch, impl, rounds, ctr, key, want):
    monkeypatch.setattr(philox, "mulhilo", MULHILO[impl])
    got = jax.jit(lambda: philox.philox4x32(ctr, key, rounds))()
    assert tuple(int(w) for w in got) == want


@pytest.mark.parametrize("rounds, ctr, key, want", KAT)
def test_reference_implementation_matches_known_answers(rounds, ctr, key, want):
    got = ref_philox4x32([np.uint32(c) for c in ctr], key, rounds)
    assert tuple(int(w) for w in got) == want


def test_mulhilo_exact():
    rng = np.random.default_rng(0)
    a = np.concatenate(
        [rng.integers(0, 2**32, 5000, dtype=np.uint64), np.array([0, 1, 2**16, 2**32 - 1], np.uint64)]
    )
    for m in (philox.PHILOX_M0, philox.PHILOX_M1, 0xFFFFFFFF):
        prod = a * np.uint64(m)
        for name, fn in MULHILO.items():
            hi, lo = jax.jit(lambda x: fn(x, m))(jnp.asarray(a.astype(np.uint32)))
            assert np.array_equal(np.asarray(hi), (prod >> np.uint64(32)).astype(np.uint32)), name
            assert np.array_equal(np.asarray(lo), (prod & np.uint64(0xFFFFFFFF)).astype(np.uint32)), name


@pytest.mark.parametrize("shape", [(1,), (7, 13), (2, 3, 5, 4), (1000,)])
def test_stream_matches_reference(shape):
    key = jax.random.key(42)
    (w0, w1, w2, w3) = P_BITS(key, shape, 4)
    for j, w in enumerate((w0, w1, w2, w3)):
        np.testing.assert_array_equal(np.asarray(w), ref_bits(key_pair(key), shape, j))


def test_stream_matches_jax_builtin_philox4x32():
    """JAX >= 0.10 ships its own Philox4x32-10 (another implementation, with the
    counter as (index_hi, index_lo, 0, 0) and 64-bit output = word0 << 32 | word1)."""
    try:
        key = jax.random.key(7, impl="philox4x32")
    except Exception:  # pragma: no cover - older JAX
        pytest.skip("this JAX has no philox4x32 key implementation")
    with jax.enable_x64(True):
        theirs = np.asarray(jax.random.bits(key, (64, 33), jnp.uint64))
    data = tuple(int(x) for x in np.asarray(jax.random.key_data(key)))
    idx = jax.lax.iota(jnp.uint32, 64 * 33).reshape(64, 33)
    w0, w1, _, _ = philox.philox4x32((0, idx, 0, 0), data)
    ours = (np.asarray(w0).astype(np.uint64) << np.uint64(32)) | np.asarray(w1).astype(np.uint64)
    np.testing.assert_array_equal(ours, theirs)


def test_counters_beyond_2_32_elements():
    shape = (2**20, 2**13)  # 2**33 elements; only a corner is computed
    lo, hi = jax.jit(lambda: [c[-2:, -3:] for c in philox.counters(shape)])()
    for r in range(2):
        for c in range(3):
            i = (shape[0] - 2 + r) * shape[1] + shape[1] - 3 + c
            assert (int(hi[r, c]), int(lo[r, c])) == (i >> 32, i & 0xFFFFFFFF)
    # A three-axis shape whose strides exceed 2**32.
    shape = (3, 2**31, 5)
    lo, hi = jax.jit(lambda: [c[2, -1, -2:] for c in philox.counters(shape)])()
    for c in range(2):
        i = 2 * shape[1] * shape[2] + (shape[1] - 1) * shape[2] + 3 + c
        assert (int(hi[c]), int(lo[c])) == (i >> 32, i & 0xFFFFFFFF)


def test_bits_of_huge_arrays_use_the_high_counter_word():
    key = jax.random.key(5)
    shape = (2**17, 2**16)
    got = jax.jit(lambda k: philox.bits(k, shape)[0][-1, -4:])(key)
    i = np.arange(2**33 - 4, 2**33, dtype=np.uint64)
    z = np.zeros(4, np.uint64)
    want = ref_philox4x32((i & np.uint64(0xFFFFFFFF), i >> np.uint64(32), z, z), key_pair(key))[0]
    np.testing.assert_array_equal(np.asarray(got), want)


def test_axis_too_long_is_rejected():
    with pytest.raises(ValueError, match="2\\*\\*32"):
        philox.counters((2**32,))


def test_key_words():
    key = jax.random.key(123)
    k0, k1 = philox.key_words(key)
    assert (int(k0), int(k1)) == key_pair(key)
    raw = jax.random.PRNGKey(123)
    assert tuple(int(k) for k in philox.key_words(raw)) == key_pair(key)
    rbg = jax.random.key(123, impl="rbg")
    words = tuple(int(k) for k in philox.key_words(rbg))
    assert len(words) == 2 and words != key_pair(key)
    # Deterministic, and different rbg keys give different Philox keys.
    assert words == tuple(int(k) for k in philox.key_words(jax.random.key(123, impl="rbg")))
    assert words != tuple(int(k) for k in philox.key_words(jax.random.key(124, impl="rbg")))


# ---------------------------------------------------------------------------
# Float conversions, against float64 references computed from the same bits.


def test_uniform_is_the_24_high_bits():
    key, shape = jax.random.key(1), (300, 7)
    u = np.asarray(P_UNIFORM(key, shape))
    w = ref_bits(key_pair(key), shape)
    np.testing.assert_array_equal(u, (w >> 8).astype(np.float32) * np.float32(2.0**-24))
    assert u.dtype == np.float32 and u.min() >= 0 and u.max() < 1


def test_normal_matches_float64_inverse_cdf():
    key, shape = jax.random.key(2), (200_000,)
    z = np.asarray(P_NORMAL(key, shape)).astype(np.float64)
    w = ref_bits(key_pair(key), shape).astype(np.uint64)
    m = w & np.uint64(0x7FFFFFFF)
    q = (m.astype(np.float64) + 0.5) * 2.0**-32
    want = -special.ndtri(q) * np.where(w >> np.uint64(31), -1.0, 1.0)
    np.testing.assert_allclose(z, want, rtol=6e-7, atol=1e-7)


def test_ndtri_lower_accuracy():
    q = np.concatenate([np.geomspace(2.0**-126, 0.5, 200_001), np.linspace(1e-3, 0.5, 100_001)])
    q = q.astype(np.float32)
    for far in (False, True):
        qq = q if far else q[q >= 2.0**-33]
        got = np.asarray(jax.jit(lambda v: philox.ndtri_lower(v, far_tail=far))(qq)).astype(np.float64)
        want = -special.ndtri(qq.astype(np.float64))
        rel = np.abs(got - want) / np.maximum(want, 1e-300)
        big = want > 1e-3
        assert rel[big].max() < 4e-7, (far, rel[big].max())
        assert np.abs(got - want)[~big].max() < 1e-9


def test_normal_tails_are_symmetric_and_bounded():
    # The extreme words: m = 0 gives the largest |z|; the top bit flips the sign.
    words = jnp.asarray([0x00000000, 0x80000000, 0x7FFFFFFF, 0xFFFFFFFF], jnp.uint32)
    m = words & jnp.uint32(0x7FFFFFFF)
    q = (m.astype(jnp.float32) + 0.5) * jnp.float32(2.0**-32)
    mag = philox.ndtri_lower(q)
    assert float(mag[0]) == pytest.approx(philox.MAX_ABS_NORMAL, rel=1e-6)
    assert float(mag[2]) < 1e-6
    z = P_NORMAL(jax.random.key(0), (1_000_000,))
    assert float(jnp.abs(z).max()) <= philox.MAX_ABS_NORMAL * (1 + 1e-6)
    assert philox.MAX_ABS_NORMAL == pytest.approx(-special.ndtri(2.0**-33), rel=1e-12)


TRUNC_BOUNDS = [(-2.0, 2.0), (-1.0, 3.0), (0.5, 1.5), (5.0, 6.0), (-8.0, -7.5), (-3.0, 10.0), (-0.1, 0.1)]


@pytest.mark.parametrize("lower, upper", TRUNC_BOUNDS)
def test_truncated_normal_matches_float64_inverse_cdf(lower, upper):
    key, shape = jax.random.key(3), (50_000,)
    z = np.asarray(P_TRUNC(key, lower, upper, shape)).astype(np.float64)
    assert z.min() > lower and z.max() < upper
    w = ref_bits(key_pair(key), shape).astype(np.uint64)
    u = ((w >> np.uint64(1)).astype(np.float64) + 0.5) * 2.0**-31
    want = sstats.truncnorm(lower, upper).ppf(u)
    np.testing.assert_allclose(z, want, rtol=3e-6, atol=3e-6 * max(1.0, abs(lower), abs(upper)))


@pytest.mark.parametrize("lower, upper", TRUNC_BOUNDS)
def test_truncated_normal_distribution(lower, upper):
    z = P_TRUNC(jax.random.key(4), lower, upper, (200_000,))
    stats.assert_ks(z, stats.truncnorm_cdf(0.0, 1.0, lower, upper))
    dist = sstats.truncnorm(lower, upper)
    stats.assert_mean_var(z, dist.mean(), dist.var())


def test_truncated_normal_rejects_bad_bounds():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="lower < upper"):
        philox.truncated_normal(key, 1.0, 1.0, (3,))
    with pytest.raises(ValueError, match="float64"):
        philox.truncated_normal(key, -40.0, -39.0, (3,))


# ---------------------------------------------------------------------------
# Statistical quality.

N = 1 << 20


def test_normal_distribution():
    z = P_NORMAL(jax.random.key(10), (N,))
    stats.assert_mean_var(z, 0.0, 1.0)
    stats.assert_ks(z, "norm")
    x = np.asarray(z, np.float64)
    # Higher moments: skewness 0 and kurtosis 3, each within 5 standard errors.
    assert abs(sstats.skew(x)) < 5 * math.sqrt(6 / N)
    assert abs(sstats.kurtosis(x)) < 5 * math.sqrt(24 / N)


def test_uniform_distribution():
    u = P_UNIFORM(jax.random.key(11), (N,))
    stats.assert_mean_var(u, 0.5, 1 / 12)
    stats.assert_ks(u, "uniform")
    # Chi-square over 1024 equal bins.
    counts = np.bincount((np.asarray(u) * 1024).astype(int), minlength=1024)
    assert sstats.chisquare(counts).pvalue > 1e-4


def test_every_bit_is_balanced():
    (w,) = P_BITS(jax.random.key(12), (N,))
    w = np.asarray(w)
    freq = np.array([((w >> b) & 1).mean() for b in range(32)])
    assert np.abs(freq - 0.5).max() < 5 * 0.5 / math.sqrt(N)


@pytest.mark.parametrize("lag", [1, 2, 3, 4, 5, 8, 64, 1024])
def test_no_lag_correlation(lag):
    z = np.asarray(P_NORMAL(jax.random.key(13), (N,)), np.float64)
    r = np.corrcoef(z[:-lag], z[lag:])[0, 1]
    assert abs(r) < 5 / math.sqrt(N - lag)


def test_no_correlation_between_rows_and_columns():
    z = np.asarray(P_NORMAL(jax.random.key(14), (1024, 1024)), np.float64)
    for a, b in ((z[:-1], z[1:]), (z[:, :-1], z[:, 1:])):
        r = np.corrcoef(a.ravel(), b.ravel())[0, 1]
        assert abs(r) < 5 / math.sqrt(a.size)


def _derived_keys():
    base = jax.random.key(0)
    return {
        "split": list(jax.random.split(base, 6)),
        "fold_in": [jax.random.fold_in(base, i) for i in range(6)],
        "seeds": [jax.random.key(i) for i in range(6)],  # adjacent raw seeds: (0, 0), (0, 1), ...
    }


@pytest.mark.parametrize("family", ["split", "fold_in", "seeds"])
def test_streams_of_derived_keys_are_independent(family):
    n = 1 << 18
    keys = _derived_keys()[family]
    zs = np.stack([np.asarray(P_NORMAL(k, (n,)), np.float64) for k in keys])
    corr = np.corrcoef(zs)
    off = corr[~np.eye(len(keys), dtype=bool)]
    assert np.abs(off).max() < 5 / math.sqrt(n)
    # Joint uniformity of (u_a, u_b) for the first two keys: chi-square on a 32x32 grid.
    ua = np.asarray(P_UNIFORM(keys[0], (n,)))
    ub = np.asarray(P_UNIFORM(keys[1], (n,)))
    grid = (ua * 32).astype(int) * 32 + (ub * 32).astype(int)
    assert sstats.chisquare(np.bincount(grid, minlength=1024)).pvalue > 1e-4
    # Each stream alone is standard normal.
    for z in zs[:2]:
        stats.assert_ks(z, "norm")


def test_same_key_same_values_different_keys_differ():
    a = P_NORMAL(jax.random.key(1), (64,))
    b = P_NORMAL(jax.random.key(1), (64,))
    c = P_NORMAL(jax.random.key(2), (64,))
    assert bool((a == b).all()) and not bool((a == c).any())


# ---------------------------------------------------------------------------
# Determinism and dtypes through the initializers.


def test_eager_equals_jit_and_runs_repeat():
    init = jinit.he_normal(generator="philox")
    key, shape = jax.random.key(9), (33, 65)
    eager = init(key, shape)
    jitted = jax.jit(lambda k: init(k, shape))(key)
    direct = P_NORMAL(key, shape) * math.sqrt(2 / 33)
    np.testing.assert_array_equal(np.asarray(eager), np.asarray(jitted))
    np.testing.assert_array_equal(np.asarray(eager), np.asarray(init(key, shape)))
    np.testing.assert_allclose(np.asarray(eager), np.asarray(direct), rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize(
    "make",
    [
        lambda: jinit.normal(0.5, generator="philox"),
        lambda: jinit.uniform(-1.0, 1.0, generator="philox"),
        lambda: jinit.truncated_normal(1.0, generator="philox"),
    ],
)
def test_low_precision_dtypes_are_rounded_float32_samples(make, dtype):
    init = make()
    key, shape = jax.random.key(21), (256, 128)
    x = init(key, shape, dtype)
    assert x.dtype == dtype
    got = np.asarray(x.astype(jnp.float32))
    want = np.asarray(init(key, shape, jnp.float32).astype(dtype).astype(jnp.float32))
    # Equal, except where rounding landed on an open bound and the initializer
    # moved the value one step inside.
    differ = got != want
    assert differ.mean() < 0.01
    step = np.abs(np.asarray(jnp.nextafter(jnp.asarray(want, dtype), jnp.asarray(0, dtype)).astype(jnp.float32)) - want)
    np.testing.assert_array_equal(np.abs(got - want)[differ], step[differ])


def test_float64_uses_53_bits():
    with jax.enable_x64(True):
        key = jax.random.key(8)
        u = np.asarray(P_UNIFORM(key, (100_000,), jnp.float64))
        z = np.asarray(P_NORMAL(key, (100_000,), jnp.float64))
        t = np.asarray(P_TRUNC(key, -2.0, 2.0, (100_000,), jnp.float64))
        w = jinit.normal(generator="philox")(key, (1000,), jnp.float64)
    assert u.dtype == z.dtype == t.dtype == np.float64 and w.dtype == np.float64
    # Not float32 values in disguise: most carry bits beyond float32's 24.
    assert np.mean(u.astype(np.float32).astype(np.float64) != u) > 0.99
    assert np.mean(z.astype(np.float32).astype(np.float64) != z) > 0.99
    assert u.min() >= 0 and u.max() < 1 and -2 < t.min() and t.max() < 2
    stats.assert_ks(u, "uniform")
    stats.assert_ks(z, "norm")
    stats.assert_ks(t, stats.truncnorm_cdf(0.0, 1.0, -2.0, 2.0))


def test_rejects_other_dtypes():
    with pytest.raises(TypeError):
        philox.normal(jax.random.key(0), (3,), jnp.bfloat16)
