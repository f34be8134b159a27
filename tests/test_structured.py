"""Tests of jinit.structured: exact structure where it is exact, statistics elsewhere."""

from __future__ import annotations

import functools
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg
import scipy.special
import scipy.stats
from flax import nnx
from jax import lax
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

from jinit import rng as jinit_rng
from jinit import structured as jinit_structured
from jinit.structured import (
    centre_index,
    delta_orthogonal,
    dirac,
    identity,
    orthogonal,
    sparse,
    sparse_capped,
    sparse_fraction,
    zero_hadamard,
)
from tests import stats

KEY = jax.random.key(0)


def _matrix(w, column_axis=-1):
    w = np.asarray(w, np.float64)
    w = np.moveaxis(w, column_axis, -1)
    return w.reshape(-1, w.shape[-1])


def _assert_orthonormal(a, scale=1.0, atol=1e-5):
    rows, cols = a.shape
    g = a.T @ a if rows >= cols else a @ a.T
    np.testing.assert_allclose(g, scale**2 * np.eye(min(rows, cols)), atol=atol * max(scale**2, 1))


# ---------------------------------------------------------------------------
# orthogonal


@pytest.mark.parametrize(
    "shape,column_axis",
    [((100, 30), -1), ((30, 100), -1), ((3, 3, 16, 32), -1), ((5, 7, 2), 0), ((4, 50, 3), 1), ((1, 17), -1)],
)
@pytest.mark.parametrize("method", ["householder", "qr"])
def test_orthogonal_is_orthonormal(shape, column_axis, method):
    w = orthogonal(column_axis=column_axis, method=method)(KEY, shape)
    assert w.shape == shape and w.dtype == jnp.float32
    _assert_orthonormal(_matrix(w, column_axis))


def test_orthogonal_scale():
    w = orthogonal(scale=math.sqrt(2))(KEY, (40, 24))
    _assert_orthonormal(_matrix(w), scale=math.sqrt(2))


@pytest.mark.parametrize("shape,column_axis", [((4, 6), -1), ((5, 3, 2), 1)])
def test_orthogonal_qr_matches_jax(shape, column_axis):
    ours = orthogonal(0.7, column_axis, method="qr")(KEY, shape)
    theirs = jax.nn.initializers.orthogonal(0.7, column_axis)(KEY, shape)
    np.testing.assert_array_equal(ours, theirs)


def _sphere_coordinate_cdf(n):
    """CDF of one coordinate of a uniform point on the unit sphere in R^n:
    x^2 ~ Beta(1/2, (n-1)/2), symmetric sign."""

    def cdf(x):
        x = np.asarray(x)
        return 0.5 + 0.5 * np.sign(x) * scipy.special.betainc(0.5, (n - 1) / 2, x**2)

    return cdf


@functools.lru_cache
def _many(shape, method="householder", n=4000, seed=42):
    init = orthogonal(method=method)
    keys = jax.random.split(jax.random.key(seed), n)
    return np.asarray(jax.vmap(lambda k: init(k, shape))(keys), np.float64)


@pytest.mark.parametrize("method", ["householder", "qr"])
@pytest.mark.parametrize("shape", [(5, 5), (7, 3), (3, 7)])
def test_orthogonal_is_haar(shape, method):
    """Every entry of a Haar matrix is a coordinate of a uniform unit vector of
    length max(rows, cols) (a column of a tall matrix, a row of a wide one).
    Without the sign fix LAPACK's QR makes Q[0, 0] always negative: the KS test
    and the mean of the diagonal catch that."""
    qs = _many(shape, method)
    cdf = _sphere_coordinate_cdf(max(shape))
    for i, j in [(0, 0), (1, 1), (2, 0), (0, 2), (2, 2)]:
        stats.assert_ks(qs[:, i, j], cdf)
        stats.assert_mean(qs[:, i, j], 0.0)
    # sqrt(n) * entry has unit variance.
    stats.assert_var(qs[:, 0, 0] * math.sqrt(max(shape)), 1.0)


@pytest.mark.parametrize("method", ["householder", "qr"])
def test_orthogonal_haar_joint_moments(method):
    """Fourth-order joint moments of Haar O(n) (Weingarten calculus; e.g. Collins &
    Sniady 2006): E[Q11^2 Q22^2] = (n+1)/((n-1)n(n+2)), E[Q11 Q12 Q21 Q22] =
    -1/((n-1)n(n+2)), and E[(tr Q)^2] = 1. Marginals alone would not see a
    sampler that gets the dependence between entries wrong."""
    n = 5
    qs = _many((n, n), method)
    stats.assert_mean(qs[:, 0, 0] ** 2 * qs[:, 1, 1] ** 2, (n + 1) / ((n - 1) * n * (n + 2)))
    stats.assert_mean(qs[:, 0, 0] * qs[:, 0, 1] * qs[:, 1, 0] * qs[:, 1, 1], -1 / ((n - 1) * n * (n + 2)))
    stats.assert_mean(np.trace(qs, axis1=1, axis2=2) ** 2, 1.0)


@pytest.mark.parametrize("shape", [(5, 5), (7, 3)])
def test_orthogonal_methods_same_distribution(shape):
    """Two-sample KS tests between the methods (independent keys) on non-linear
    functionals of the whole matrix: the trace of the top square block, the
    largest eigenvalue of its symmetric part, and a corner entry."""
    a, b = _many(shape, "householder", seed=1), _many(shape, "qr", seed=2)
    for x, y in zip(_haar_statistics(a, min(shape)), _haar_statistics(b, min(shape))):
        assert scipy.stats.ks_2samp(x, y).pvalue > stats.KS_ALPHA


def _haar_statistics(q, k):
    top = q[:, :k, :k]
    return (np.trace(top, axis1=1, axis2=2), np.linalg.eigvalsh(top + np.swapaxes(top, 1, 2))[:, -1], q[:, -1, 0])


@pytest.mark.parametrize("shape", [(5, 5), (7, 3)])
def test_orthogonal_same_distribution_as_torch(shape):
    """Two-sample KS tests against ``torch.nn.init.orthogonal_`` (QR of a Gaussian
    with the sign fix) on functionals of the whole matrix."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    theirs = np.stack([torch.nn.init.orthogonal_(torch.empty(shape)).double().numpy() for _ in range(4000)])
    ours = _many(shape, "householder", seed=3)
    for a, b in zip(_haar_statistics(ours, min(shape)), _haar_statistics(theirs, min(shape))):
        assert scipy.stats.ks_2samp(a, b).pvalue > stats.KS_ALPHA


def test_orthogonal_haar_determinant_signs():
    """Haar on O(n): det = +1 and -1 with probability 1/2 each."""
    for method in ("householder", "qr"):
        dets = np.linalg.det(_many((5, 5), method))
        np.testing.assert_allclose(np.abs(dets), 1.0, atol=1e-5)
        stats.assert_mean(np.sign(dets), 0.0)


def _reflectors(shape, seed=0):
    z = jax.random.normal(jax.random.key(seed), shape, jnp.float64 if jax.config.x64_enabled else jnp.float32)
    return z, *jinit_structured._stewart_reflectors(z)


@pytest.mark.parametrize("shape", [(9, 9), (12, 5), (1, 1), (40, 33)])
def test_stewart_reflectors_follow_lapack_larfg(shape):
    """Reflector j maps column j of z (from the diagonal down) to beta_j e_1 with
    beta_j = -sign(z_jj) ||x|| (LAPACK larfg), is orthogonal (tau = 2 / ||v||^2),
    and the returned sign is sign(beta_j) = sign(diag R)."""
    z, v, tau, signs = (np.asarray(a, np.float64) for a in _reflectors(shape))
    m, k = shape
    np.testing.assert_array_equal(np.triu(v, 1), 0)
    np.testing.assert_array_equal(np.diagonal(v), 1)
    np.testing.assert_allclose(tau, 2 / np.sum(v * v, axis=0), rtol=1e-5)
    for j in range(k):
        x = z[j:, j]
        h = np.eye(m - j) - tau[j] * np.outer(v[j:, j], v[j:, j])
        beta = -np.sign(x[0]) * np.linalg.norm(x)
        np.testing.assert_allclose(h @ x, beta * np.eye(m - j)[0], atol=1e-5 * np.linalg.norm(x))
        assert signs[j] == np.sign(beta)


@pytest.mark.parametrize(
    "shape,block",
    [((1, 1), 1), ((9, 9), 1), ((9, 9), 4), ((12, 5), 2), ((12, 5), 512), ((40, 33), 8), ((40, 33), 512)],
)
def test_householder_product_blocked_equals_lapack_and_explicit(shape, block):
    """The blocked compact-WY product equals LAPACK's orgqr
    (lax.linalg.householder_product) and the product of the reflectors
    multiplied out one by one in float64."""
    _, v, tau, _ = _reflectors(shape)
    ours = np.asarray(jax.jit(jinit_structured._householder_product, static_argnums=2)(v, tau, block), np.float64)
    np.testing.assert_allclose(ours, lax.linalg.householder_product(v, tau), atol=2e-6)
    m, k = shape
    vv, tt = np.asarray(v, np.float64), np.asarray(tau, np.float64)
    q = np.eye(m)[:, :k]
    for j in reversed(range(k)):
        q = q - tt[j] * np.outer(vv[:, j], vv[:, j] @ q)
    np.testing.assert_allclose(ours, q, atol=2e-6)


def test_orthogonal_householder_large_is_orthonormal():
    """A matrix large enough to take several blocks of the accumulation."""
    w = orthogonal(method="householder")(KEY, (1300, 1100))
    _assert_orthonormal(np.asarray(w), atol=2e-5)


def test_orthogonal_sharded_equals_unsharded():
    mesh = jax.make_mesh((4, 2), ("a", "b"))
    init = orthogonal(1.3)
    for shape, spec in [((64, 32), P("a", "b")), ((16, 128), P(None, "a")), ((3, 3, 8, 16), P(None, None, "b", "a"))]:
        sharding = NamedSharding(mesh, spec)
        sharded = init(KEY, shape, out_sharding=sharding)
        assert sharded.sharding == sharding
        np.testing.assert_array_equal(sharded, init(KEY, shape))


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float16])
def test_orthogonal_low_precision(dtype):
    w = orthogonal()(KEY, (64, 48), dtype)
    assert w.dtype == dtype
    ref = orthogonal()(KEY, (64, 48))
    np.testing.assert_array_equal(w, ref.astype(dtype))
    _assert_orthonormal(_matrix(w), atol=2e-2)


def test_orthogonal_jit_matches_eager_and_empty():
    init = orthogonal()
    np.testing.assert_array_equal(jax.jit(lambda k: init(k, (8, 5)))(KEY), init(KEY, (8, 5)))
    assert init(KEY, (0, 5)).shape == (0, 5)


def test_orthogonal_errors():
    with pytest.raises(ValueError, match=r"orthogonal: needs .*rank >= 2.*\(7,\)"):
        orthogonal()(KEY, (7,))
    with pytest.raises(ValueError, match=r"orthogonal: column_axis=2 is out of range.*valid values are -2 \.\. 1"):
        orthogonal(column_axis=2)(KEY, (3, 4))
    with pytest.raises(TypeError, match="orthogonal: column_axis must be an int"):
        orthogonal(column_axis=1.0)
    with pytest.raises(ValueError, match="orthogonal: scale must be >= 0"):
        orthogonal(scale=-1.0)
    with pytest.raises(ValueError, match=r"orthogonal: invalid generator='nope'; valid choices are 'jax'"):
        orthogonal(generator="nope")
    with pytest.raises(ValueError, match=r"orthogonal: invalid method='svd'; valid choices are 'householder', 'qr'"):
        orthogonal(method="svd")
    with pytest.raises(TypeError, match="orthogonal: key must be a PRNG key"):
        orthogonal()((3, 4), KEY)
    with pytest.raises(TypeError, match="orthogonal: dtype must be a floating type"):
        orthogonal()(KEY, (3, 4), jnp.int32)


# ---------------------------------------------------------------------------
# delta_orthogonal


@pytest.mark.parametrize("shape", [(4, 4, 8), (3, 3, 16, 32), (2, 4, 6, 6), (3, 3, 3, 4, 4)])
def test_delta_orthogonal_structure(shape):
    w = np.array(delta_orthogonal(scale=1.5)(KEY, shape))
    centre = tuple((k - 1) // 2 for k in shape[:-2])
    h = w[centre]
    np.testing.assert_allclose(h @ h.T, 1.5**2 * np.eye(shape[-2]), atol=1e-5)
    if len(shape) == 4:
        qr = delta_orthogonal(scale=1.5, method="qr")(KEY, shape)
        np.testing.assert_array_equal(qr, jax.nn.initializers.delta_orthogonal(1.5)(KEY, shape))
    w[centre] = 0
    assert not w.any()


@pytest.mark.parametrize("kernel", [(3, 3), (2, 4)])
def test_delta_orthogonal_conv_preserves_norm(kernel):
    conv = nn.Conv(16, kernel, padding="SAME", use_bias=False, kernel_init=delta_orthogonal())
    x = _x((2, 9, 9, 8))
    y, _ = jax.jit(conv.init_with_output)(KEY, x)
    assert y.shape == (2, 9, 9, 16)
    np.testing.assert_allclose(
        np.linalg.norm(np.asarray(y), axis=-1), np.linalg.norm(np.asarray(x), axis=-1), rtol=1e-5
    )
    np.testing.assert_allclose(np.linalg.norm(y), np.linalg.norm(x), rtol=1e-5)


def test_delta_orthogonal_sharded_and_errors():
    mesh = jax.make_mesh((8,), ("a",))
    sharding = NamedSharding(mesh, P(None, None, None, "a"))
    init = delta_orthogonal()
    np.testing.assert_array_equal(init(KEY, (3, 3, 8, 16), out_sharding=sharding), init(KEY, (3, 3, 8, 16)))
    with pytest.raises(ValueError, match=r"delta_orthogonal: needs in <= out .*in=8, out=4"):
        init(KEY, (3, 3, 8, 4))
    with pytest.raises(ValueError, match=r"delta_orthogonal: needs a conv kernel.*use orthogonal\(\)"):
        init(KEY, (8, 8))
    with pytest.raises(ValueError, match="delta_orthogonal: scale must be >= 0"):
        delta_orthogonal(-0.5)
    with pytest.raises(ValueError, match=r"delta_orthogonal: invalid method='QR'; valid choices are"):
        delta_orthogonal(method="QR")


# ---------------------------------------------------------------------------
# identity / dirac


def test_centre_index():
    assert [centre_index(k) for k in range(1, 7)] == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (5, 3)])
def test_identity_dense_partial_identity(shape):
    w = identity(scale=0.5)(KEY, shape)
    np.testing.assert_array_equal(w, 0.5 * np.eye(*shape, dtype=np.float32))


def test_identity_conv_is_dirac_and_deterministic():
    a = identity()(KEY, (3, 3, 4, 6))
    np.testing.assert_array_equal(a, dirac()(KEY, (3, 3, 4, 6)))
    np.testing.assert_array_equal(a, identity()(jax.random.key(99), (3, 3, 4, 6)))
    assert identity()(KEY, (3, 3), jnp.bfloat16).dtype == jnp.bfloat16


def _x(shape):
    # numpy inputs: jax.random.normal compiles a program per shape, slowly for rank 5.
    return jnp.asarray(np.random.default_rng(7).standard_normal(shape), jnp.float32)


@pytest.mark.parametrize(
    "kernel,groups",
    [((3, 3), 1), ((2, 2), 1), ((4,), 1), ((3, 2, 3), 1), ((3, 3), 4)],
)
def test_dirac_linen_conv_is_identity(kernel, groups):
    spatial = (7,) * len(kernel)
    x = _x((2, *spatial, 8))
    conv = nn.Conv(8, kernel, padding="SAME", feature_group_count=groups, kernel_init=dirac(groups))
    y, _ = jax.jit(conv.init_with_output)(KEY, x)
    np.testing.assert_array_equal(y, x)


@pytest.mark.parametrize("kernel,groups", [((2, 4), 1), ((3,), 2)])
def test_dirac_nnx_conv_is_identity(kernel, groups):
    conv = nnx.Conv(
        6, 6, kernel, padding="SAME", feature_group_count=groups, kernel_init=dirac(groups), rngs=nnx.Rngs(0)
    )
    x = _x((3, *(6,) * len(kernel), 6))
    np.testing.assert_array_equal(conv(x), x)


def test_dirac_partial_channels():
    """out > in: extra outputs are zero; out < in: extra inputs are dropped."""
    w = np.asarray(dirac()(KEY, (3, 3, 2, 4)))
    assert w.sum() == 2 and w[1, 1, 0, 0] == 1 and w[1, 1, 1, 1] == 1
    w = np.asarray(dirac()(KEY, (3, 4, 3)))
    assert w.sum() == 3 and all(w[1, i, i] == 1 for i in range(3))


def test_dirac_matches_torch_for_odd_kernels():
    torch = pytest.importorskip("torch")
    for oihw, groups in [((8, 4, 3, 3), 2), ((6, 6, 5), 1), ((4, 2, 3, 3, 3), 2), ((6, 3, 3, 3), 3)]:
        t = torch.empty(oihw)
        torch.nn.init.dirac_(t, groups)
        hwio = np.moveaxis(t.numpy(), (0, 1), (-1, -2))
        np.testing.assert_array_equal(dirac(groups)(KEY, hwio.shape), hwio)


def test_dirac_errors():
    with pytest.raises(ValueError, match=r"dirac: out=6 .* must be divisible by groups=4"):
        dirac(4)(KEY, (3, 3, 2, 6))
    with pytest.raises(ValueError, match=r"dirac: needs a conv kernel .*use identity\(\)"):
        dirac()(KEY, (4, 4))
    with pytest.raises(ValueError, match="dirac: groups must be an int >= 1, got 0"):
        dirac(0)
    with pytest.raises(TypeError, match="dirac: groups must be an int >= 1, got 1.5"):
        dirac(1.5)
    with pytest.raises(TypeError, match="dirac: key must be a PRNG key"):
        dirac()(0, (3, 3, 2, 2))
    with pytest.raises(ValueError, match=r"identity: needs .*rank >= 2"):
        identity()(KEY, (5,))


# ---------------------------------------------------------------------------
# sparse (Martens) and sparse_fraction (torch)


@pytest.mark.parametrize("shape,k", [((64, 40), 15), ((3, 3, 4, 10), 7), ((15, 5), 15)])
def test_sparse_exact_count_per_output(shape, k):
    w = np.asarray(sparse(num_nonzero=k)(KEY, shape))
    counts = (w.reshape(-1, shape[-1]) != 0).sum(axis=0)
    np.testing.assert_array_equal(counts, k)


def test_sparse_values_and_positions():
    fan_in, fan_out, k, std = 50, 4000, 15, 0.5
    w = np.asarray(sparse(k, std)(KEY, (fan_in, fan_out)), np.float64)
    stats.assert_ks(w[w != 0], stats.normal_cdf(0.0, std))
    # each incoming position is chosen with probability k / fan_in, independently of its index
    chosen = (w != 0).astype(np.float64)
    for row in (0, 1, fan_in // 2, fan_in - 1):
        stats.assert_mean(chosen[row], k / fan_in)
    stats.assert_mean(chosen.mean(axis=1), k / fan_in)


def test_sparse_sharded_low_precision_and_errors():
    mesh = jax.make_mesh((8,), ("a",))
    init = sparse(5)
    np.testing.assert_array_equal(
        init(KEY, (32, 16), out_sharding=NamedSharding(mesh, P(None, "a"))), init(KEY, (32, 16))
    )
    w16 = init(KEY, (32, 16), jnp.bfloat16)
    np.testing.assert_array_equal(w16, init(KEY, (32, 16)).astype(jnp.bfloat16))
    with pytest.raises(ValueError, match=r"sparse: num_nonzero=15 is larger than fan_in=10 .*valid: 1 \.\. 10"):
        sparse()(KEY, (10, 4))
    with pytest.raises(ValueError, match="sparse: num_nonzero must be an int >= 1, got 0"):
        sparse(0)
    with pytest.raises(TypeError, match="sparse: num_nonzero must be an int >= 1"):
        sparse(2.5)
    with pytest.raises(ValueError, match="sparse: stddev must be >= 0"):
        sparse(3, -1.0)
    with pytest.raises(ValueError, match=r"sparse: needs .*rank >= 2"):
        sparse(3)(KEY, (10,))
    assert sparse()(KEY, (0, 4)).shape == (0, 4)


@pytest.mark.parametrize("shape,k", [((64, 40), 15), ((10, 4), 10), ((3, 3, 1, 5), 9), ((1, 3), 1)])
def test_sparse_capped_is_sparse_with_k_at_most_fan_in(shape, k):
    """jinit.sparse_capped(15) (the "sparse" scheme's kernel) is sparse(min(15, fan_in)): dense below 15 inputs."""
    init = sparse_capped()
    np.testing.assert_array_equal(init(KEY, shape), sparse(k)(KEY, shape))
    assert init.__name__ == "sparse"
    counts = (np.asarray(init(KEY, shape)).reshape(-1, shape[-1]) != 0).sum(axis=0)
    np.testing.assert_array_equal(counts, k)
    with pytest.raises(ValueError, match="sparse_capped: num_nonzero must be an int >= 1, got 0"):
        sparse_capped(0)
    with pytest.raises(ValueError, match=r"sparse: needs .*rank >= 2"):
        init(KEY, (10,))


@pytest.mark.parametrize(
    "shape,sparsity,zeros",
    [((6, 10), 0.1, 1), ((3, 50), 0.14, 8), ((4, 9), 0.0, 0), ((4, 9), 1.0, 9)],  # 0.14 * 50 = 7.000000000000001
)
def test_sparse_fraction_zeros_per_row(shape, sparsity, zeros):
    w = np.asarray(sparse_fraction(sparsity)(KEY, shape))
    np.testing.assert_array_equal((w == 0).sum(axis=1), zeros)


def test_sparse_fraction_matches_torch_semantics():
    """torch zeroes per column of its (out, in) weight; the transpose has our zero counts per row."""
    torch = pytest.importorskip("torch")
    for n_in, n_out, s in [(6, 10, 0.7), (12, 5, 0.3), (3, 8, 0.5)]:
        t = torch.nn.init.sparse_(torch.empty(n_out, n_in), s).numpy()
        ours = np.asarray(sparse_fraction(s)(KEY, (n_in, n_out)))
        np.testing.assert_array_equal((t.T == 0).sum(axis=1), (ours == 0).sum(axis=1))


def test_sparse_fraction_values_and_errors():
    w = np.asarray(sparse_fraction(0.25, stddev=0.02)(KEY, (400, 200)), np.float64)
    stats.assert_ks(w[w != 0], stats.normal_cdf(0.0, 0.02))
    stats.assert_mean((w == 0).mean(axis=0), 0.25)  # zeros spread evenly over outputs
    with pytest.raises(ValueError, match=r"sparse_fraction: sparsity must be in \[0, 1\], got 1.5"):
        sparse_fraction(1.5)
    with pytest.raises(ValueError, match="sparse_fraction: sparsity must be >= 0"):
        sparse_fraction(-0.1)
    with pytest.raises(ValueError, match=r"sparse_fraction: needs a 2-D \(in, out\) kernel"):
        sparse_fraction(0.5)(KEY, (3, 3, 4, 4))


# ---------------------------------------------------------------------------
# ZerO


def _zero_reference(n_in, n_out):
    """Algorithm 1 of Zhao et al. in the paper's (out, in) layout, transposed."""
    m, n = n_out, n_in
    if m <= n:
        w = np.eye(m, n)
    else:
        k = math.ceil(math.log2(m))
        p = 2**k
        w = np.eye(m, p) @ (scipy.linalg.hadamard(p) / 2 ** (k / 2)) @ np.eye(p, n)
    return w.T


@pytest.mark.parametrize("shape", [(4, 4), (6, 3), (3, 6), (5, 12), (16, 64), (100, 129), (784, 128), (128, 784)])
def test_zero_hadamard_matches_algorithm_1(shape):
    w = zero_hadamard()(KEY, shape)
    np.testing.assert_allclose(w, _zero_reference(*shape), rtol=1e-7, atol=0)


@pytest.mark.parametrize("shape", [(3, 6), (5, 12), (10, 100), (64, 128)])
def test_zero_hadamard_expanding_properties(shape):
    n_in, n_out = shape
    w = np.asarray(zero_hadamard()(KEY, shape), np.float64)
    k = math.ceil(math.log2(n_out))
    np.testing.assert_allclose(np.abs(w), 2 ** (-k / 2), rtol=1e-7)
    assert np.linalg.matrix_rank(w) == n_in  # x -> x @ W is injective
    if n_out == 2**k:  # full Hadamard rows: orthonormal
        np.testing.assert_allclose(w @ w.T, np.eye(n_in), atol=1e-6)


def test_zero_hadamard_deterministic():
    init = zero_hadamard()
    shapes = [(7, 20), (20, 7), (3, 3, 5, 9)]
    for shape in shapes:
        a = np.asarray(init(KEY, shape))
        others = (init(jax.random.key(123), shape), jax.jit(lambda k, s=shape: init(k, s))(KEY), zero_hadamard()(KEY, shape))
        for other in others:
            assert np.asarray(other).tobytes() == a.tobytes()
    w = np.array(init(KEY, (3, 3, 5, 9)))
    np.testing.assert_array_equal(w[1, 1], init(KEY, (5, 9)))
    w[1, 1] = 0
    assert not w.any()


def test_zero_hadamard_conv_square_is_identity():
    conv = nn.Conv(8, (3, 3), padding="SAME", kernel_init=zero_hadamard())
    x = _x((2, 6, 6, 8))
    y, _ = jax.jit(conv.init_with_output)(KEY, x)
    np.testing.assert_array_equal(y, x)


def test_zero_hadamard_errors():
    with pytest.raises(ValueError, match=r"zero_hadamard: needs .*rank >= 2"):
        zero_hadamard()(KEY, (8,))
    with pytest.raises(TypeError, match="zero_hadamard: key must be a PRNG key"):
        zero_hadamard()(None, (8, 8))


@pytest.mark.parametrize("rng", jinit_rng.generators())
def test_every_generator(rng):
    """The structure does not depend on the generator (e.g. the philox one)."""
    _assert_orthonormal(_matrix(orthogonal(generator=rng)(KEY, (24, 10))))
    np.testing.assert_array_equal((np.asarray(sparse(4, generator=rng)(KEY, (12, 6))) != 0).sum(axis=0), 4)
