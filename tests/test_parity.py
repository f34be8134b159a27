"""Parity with the peers' initializer APIs (jax.nn.initializers, torch.nn.init,
Keras, Haiku): complex dtypes, the factories' ``dtype=`` keyword, array-valued
constants, integer and bool dtypes for the deterministic fills, and the error
for a factory passed where an initializer belongs. (torch's ``nonlinearity=``
is cross-checked in test_torch_crosscheck.py.)"""

from __future__ import annotations

import inspect
import math
import re

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P
from scipy import stats as scipy_stats

import jinit
from tests import stats

KEY = jax.random.key(0)
OTHER_KEY = jax.random.key(1)


def raises(exc, *fragments):
    """pytest.raises(exc) whose message contains every fragment (literally)."""
    pattern = "".join(f"(?=.*{re.escape(f)})" for f in fragments)
    return pytest.raises(exc, match=re.compile(pattern, re.DOTALL))


# ----------------------------------------------------------------------------- the factories

NOT_FACTORIES = {"compute_fans", "truncated_normal_std", "complex_truncated_normal_std", "centre_index"}


def _public_factories() -> dict:
    """Every initializer factory: the callables of the modules' __all__ (less the
    helpers above) and meanfield's three, so that a new factory is covered by default."""
    found = {}
    for module in (jinit.basic, jinit.variance, jinit.structured):
        for name in module.__all__:
            obj = getattr(module, name)
            if callable(obj) and name not in NOT_FACTORIES:
                found[name] = obj
    found["critical_normal"] = jinit.meanfield.critical_normal
    found["critical_orthogonal"] = jinit.meanfield.critical_orthogonal
    found["critical_bias"] = jinit.meanfield.critical_bias
    return found


FACTORIES = _public_factories()
REQUIRED_ARGS = {"variance_scaling": (1.0, "fan_in", "normal"), "sparse_fraction": (0.5,), "critical_normal": ("relu",),
                 "critical_orthogonal": ("relu",), "gain_normal": ("relu",), "gain_orthogonal": ("relu",)}
SHAPE_FOR = {"delta_orthogonal": (3, 8, 8), "dirac": (3, 8, 8)}
DEFAULT_SHAPE = (16, 8)


def build(name, **kwargs):
    return FACTORIES[name](*REQUIRED_ARGS.get(name, ()), **kwargs)


def test_factory_list_is_complete():
    expected = {"zeros", "ones", "constant", "normal", "uniform", "truncated_normal", "variance_scaling",
                "glorot_normal", "glorot_uniform", "he_normal", "he_uniform", "lecun_normal", "lecun_uniform",
                "orthogonal", "delta_orthogonal", "identity", "dirac", "sparse", "sparse_fraction", "zero_hadamard",
                "critical_normal", "critical_bias",
                # the registry schemes' own kernels
                "uniform_small", "uniform_large", "normal_nonzero_mean", "glorot_standard", "gain_normal",
                "gain_orthogonal", "sparse_capped", "critical_orthogonal"}
    assert expected <= set(FACTORIES)
    assert {"xavier_normal", "kaiming_uniform"} <= set(FACTORIES)  # the aliases


# ----------------------------------------------------------------------------- 6. an uncalled factory


def _message(factory):
    name = factory.__name__
    return f"jinit.{name} is a factory, not an initializer", f"pass jinit.{name}(", "(note the call)", "nn.Dense(4, "


REGISTRY_FACTORIES = sorted(n for n in jinit.scheme_names() if n in FACTORIES)


def test_registry_names_factories():
    """The schemes that share a factory's name (he_normal, orthogonal, ...) are all covered below."""
    assert {"he_normal", "glorot_uniform", "orthogonal", "zero_hadamard", "zeros", "sparse"} <= set(REGISTRY_FACTORIES)


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_uncalled_factory_in_linen_dense(name):
    factory = FACTORIES[name]
    with raises(TypeError, *_message(factory)):
        nn.Dense(4, kernel_init=factory).init(KEY, jnp.ones((1, 3)))
    with raises(TypeError, *_message(factory)):
        nn.Dense(4, bias_init=factory).init(KEY, jnp.ones((1, 3)))


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_uncalled_factory_in_nnx_linear(name):
    factory = FACTORIES[name]
    with raises(TypeError, *_message(factory)):
        nnx.Linear(3, 4, kernel_init=factory, rngs=nnx.Rngs(0))


@pytest.mark.parametrize("name", REGISTRY_FACTORIES)
def test_registry_scheme_factory_uncalled_vs_called(name):
    factory = getattr(jinit, name)
    # conv-only schemes (delta_orthogonal, dirac) on a conv layer, the others on a Dense
    conv = "conv" in jinit.get_scheme(name).requires
    layer = (lambda init: nn.Conv(16, (3, 3), kernel_init=init)) if conv else (lambda init: nn.Dense(4, kernel_init=init))
    x = jnp.ones((1, 5, 5, 16)) if conv else jnp.ones((1, 16))
    with raises(TypeError, *_message(factory)):
        layer(factory).init(KEY, x)
    init = jinit.get_scheme(name).kernel_init("relu")  # the scheme hands out an initializer
    params = layer(init).init(KEY, x)
    assert params["params"]["kernel"].shape == ((3, 3, 16, 16) if conv else (16, 4))


def test_uncalled_factory_messages():
    with raises(TypeError, "pass jinit.he_normal() (note the call), e.g. nn.Dense(4, kernel_init=jinit.he_normal())"):
        jinit.he_normal(KEY, (3, 4), jnp.float32)
    with raises(TypeError, "e.g. nn.Dense(4, bias_init=jinit.zeros())"):
        jinit.zeros(KEY, (3,))
    # Factories with required arguments say so with an ellipsis.
    with raises(TypeError, "pass jinit.variance_scaling(...) (note the call)"):
        jinit.variance_scaling(KEY, (3, 4))
    # A raw uint32 key, as jax.random.PRNGKey makes, is recognised too; inside jit as well.
    with raises(TypeError, "jinit.orthogonal is a factory"):
        jinit.orthogonal(jax.random.PRNGKey(0), (3, 4), jnp.float32)
    with raises(TypeError, "jinit.lecun_normal is a factory"):
        jax.jit(lambda k: nn.Dense(4, kernel_init=jinit.lecun_normal).init(k, jnp.ones((1, 3))))(KEY)


def test_uint32_pair_is_still_a_constant():
    """A lone uint32 array of shape (2,) is a valid constant, not mistaken for a key."""
    value = np.array([1, 2], np.uint32)
    w = jinit.constant(value)(KEY, (3, 2), jnp.uint32)
    np.testing.assert_array_equal(w, np.broadcast_to(value, (3, 2)))


# ----------------------------------------------------------------------------- 2. dtype=


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_dtype_keyword_is_the_default_dtype(name):
    param = inspect.signature(FACTORIES[name]).parameters["dtype"]
    assert param.kind is inspect.Parameter.KEYWORD_ONLY and param.default is None
    shape = SHAPE_FOR.get(name, DEFAULT_SHAPE)
    plain = build(name)
    bf16 = build(name, dtype=jnp.bfloat16)
    w = bf16(KEY, shape)
    assert w.dtype == jnp.bfloat16
    np.testing.assert_array_equal(w, plain(KEY, shape, jnp.bfloat16))
    np.testing.assert_array_equal(bf16(KEY, shape, None), w)  # None means "the default"
    # An explicit dtype wins over the default.
    w32 = bf16(KEY, shape, jnp.float32)
    assert w32.dtype == jnp.float32
    np.testing.assert_array_equal(w32, plain(KEY, shape))
    assert build(name, dtype=None)(KEY, shape).dtype == jnp.float32


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_dtype_keyword_checked_at_factory_time(name):
    init_name = "zeros" if name == "critical_bias" else build(name).__name__
    where = "critical_bias" if name == "critical_bias" else init_name
    with raises(TypeError, f"{where}: dtype 'floaty' is not a dtype"):
        build(name, dtype="floaty")
    with raises(TypeError, f"{where}: dtype float64 needs jax.config.update('jax_enable_x64', True)"):
        build(name, dtype=jnp.float64)


RANDOM = ["normal", "uniform", "truncated_normal", "variance_scaling", "he_normal", "glorot_uniform", "lecun_normal",
          "orthogonal", "delta_orthogonal", "sparse", "sparse_fraction", "critical_normal"]


@pytest.mark.parametrize("name", RANDOM)
def test_dtype_keyword_rejects_integers_for_random_factories(name):
    with raises(TypeError, "dtype must be a floating type (float16, bfloat16, float32, float64)", "got int32"):
        build(name, dtype=jnp.int32)


def _takes_dtype(fn) -> bool:
    try:
        return "dtype" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def test_every_jax_factory_with_dtype_has_it_in_jinit():
    """jax.nn.initializers' factories that take dtype= (constant, normal, variance_scaling,
    orthogonal, ...): the jinit factory of the same name takes it too."""
    jax_factories = {n for n in dir(jax.nn.initializers)
                     if not n.startswith("_") and n not in ("zeros", "ones") and _takes_dtype(getattr(jax.nn.initializers, n))}
    shared = jax_factories & set(FACTORIES)
    assert {"constant", "normal", "uniform", "truncated_normal", "variance_scaling", "he_normal", "glorot_normal",
            "lecun_uniform", "orthogonal", "delta_orthogonal"} <= shared
    for name in shared:
        assert _takes_dtype(FACTORIES[name]), name


@pytest.mark.parametrize("name", ["normal", "truncated_normal", "variance_scaling", "he_uniform", "constant"])
def test_dtype_keyword_as_in_jax(name):
    args = {"variance_scaling": (1.0, "fan_in", "normal"), "constant": (0.5,)}.get(name, ())
    theirs = getattr(jax.nn.initializers, name)(*args, dtype=jnp.bfloat16)
    ours = getattr(jinit, name)(*args, dtype=jnp.bfloat16)
    for dtype in (None, jnp.float16):
        expected = jnp.bfloat16 if dtype is None else dtype
        call = (KEY, (8, 8)) if dtype is None else (KEY, (8, 8), dtype)
        assert theirs(*call).dtype == ours(*call).dtype == expected


# ----------------------------------------------------------------------------- 3. array-valued constant

CONSTANT_CASES = [
    (np.arange(3.0), (2, 3), jnp.float32),
    (jnp.arange(4.0).reshape(4, 1), (4, 3), jnp.float32),
    (np.array([[1, -2, 3]]), (2, 3), jnp.int32),
    (np.linspace(-1, 1, 6).reshape(2, 3), (2, 3), jnp.bfloat16),
    (np.array([0.5, 1.5]), (3, 3, 2), jnp.float16),
    (np.float32(2.5), (2, 2), jnp.float32),
]


@pytest.mark.parametrize("value, shape, dtype", CONSTANT_CASES)
def test_array_constant_matches_jax(value, shape, dtype):
    w = jinit.constant(value)(KEY, shape, dtype)
    expected = np.broadcast_to(np.asarray(value), shape).astype(jnp.dtype(dtype))
    assert w.shape == shape and w.dtype == jnp.dtype(dtype)
    np.testing.assert_array_equal(w, expected)
    np.testing.assert_array_equal(w, jax.nn.initializers.constant(value)(KEY, shape, dtype))


def test_array_constant_default_dtype_and_sharding():
    value = np.arange(8, dtype=np.int64)
    assert jinit.constant(value)(KEY, (2, 8)).dtype == jnp.float32  # the initializer's dtype, not the value's
    np.testing.assert_array_equal(jinit.constant(value, dtype=jnp.int8)(KEY, (2, 8)), np.tile(value, (2, 1)))
    sharding = NamedSharding(jax.make_mesh((8,), ("a",)), P(None, "a"))
    w = jinit.constant(value)(KEY, (4, 8), out_sharding=sharding)
    assert w.sharding == sharding
    np.testing.assert_array_equal(w, np.tile(value, (4, 1)).astype(np.float32))


@pytest.mark.parametrize("value_shape, shape", [((3,), (3, 4)), ((2, 3), (3,)), ((4, 2), (4, 3)), ((2, 1, 3), (1, 3))])
def test_array_constant_not_broadcastable(value_shape, shape):
    with raises(ValueError, f"constant: value of shape {value_shape} is not broadcastable to the requested shape {shape}"):
        jinit.constant(np.ones(value_shape))(KEY, shape)


def test_array_constant_bad_values():
    with raises(ValueError, "constant: value must be finite", "shape (2,)"):
        jinit.constant(np.array([1.0, np.nan]))
    with raises(ValueError, "constant: value (an array of shape (2,)) cannot be represented in dtype int32"):
        jinit.constant(np.array([1.0, 0.5]))(KEY, (2,), jnp.int32)
    with raises(ValueError, "constant: value (an array of shape (2,)) has non-zero imaginary parts"):
        jinit.constant(np.array([1.0, 1j]))(KEY, (2,))
    np.testing.assert_array_equal(jinit.constant(np.array([1.0, 1j]))(KEY, (2,), jnp.complex64), [1.0, 1j])


# ----------------------------------------------------------------------------- 4. integer and bool dtypes

EXACT_DTYPES = [jnp.int32, jnp.int8, jnp.uint8, jnp.bool_]


@pytest.mark.parametrize("dtype", EXACT_DTYPES, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize(
    "make, shape",
    [(jinit.identity, (3, 5)), (jinit.identity, (3, 3, 4, 4)), (lambda: jinit.dirac(2), (3, 2, 4)),
     (jinit.zero_hadamard, (5, 3)), (jinit.zero_hadamard, (3, 3, 4, 4)), (jinit.ones, (2, 3))],
    ids=["identity", "identity-conv", "dirac-groups", "zero_hadamard", "zero_hadamard-conv", "ones"],
)
def test_deterministic_fills_exact_in_integer_and_bool(make, shape, dtype):
    w = make()(KEY, shape, dtype)
    assert w.dtype == jnp.dtype(dtype)
    reference = np.asarray(make()(KEY, shape))  # float32 values, all 0 or 1 here
    np.testing.assert_array_equal(w, reference.astype(jnp.dtype(dtype)))
    assert set(np.unique(reference)) <= {0.0, 1.0} and reference.sum() > 0


def test_scaled_identity_in_integers():
    np.testing.assert_array_equal(jinit.identity(3)(KEY, (2, 3), jnp.int8), 3 * np.eye(2, 3, dtype=np.int8))
    np.testing.assert_array_equal(jinit.dirac(scale=-2, dtype=jnp.int32)(KEY, (1, 2, 2)), [[[-2, 0], [0, -2]]])


@pytest.mark.parametrize(
    "make, dtype, fragment",
    [(lambda: jinit.identity(0.5), jnp.int32, "identity: scale=0.5 cannot be represented in dtype int32"),
     (lambda: jinit.identity(2.0), jnp.bool_, "identity: scale=2.0 cannot be represented in dtype bool"),
     (lambda: jinit.identity(-1.0), jnp.uint8, "identity: scale=-1.0 cannot be represented in dtype uint8"),
     (lambda: jinit.dirac(scale=200), jnp.int8, "dirac: scale=200 cannot be represented in dtype int8")],
)
def test_scale_not_representable(make, dtype, fragment):
    shape = (3, 4, 4)
    with raises(ValueError, fragment, "valid values are"):
        make()(KEY, shape, dtype)


def test_scale_not_representable_at_factory_time():
    with raises(ValueError, "identity: scale=0.5 cannot be represented in dtype int32"):
        jinit.identity(0.5, dtype=jnp.int32)


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.bool_], ids=["int32", "bool"])
@pytest.mark.parametrize("shape", [(2, 4), (3, 3, 3, 5)])
def test_zero_hadamard_expanding_needs_floats(shape, dtype):
    with raises(ValueError, f"zero_hadamard: dtype {jnp.dtype(dtype).name} cannot represent the entries +-2^(-k/2)",
                f"out={shape[-1]} > in={shape[-2]}", "Use a floating dtype"):
        jinit.zero_hadamard()(KEY, shape, dtype)


@pytest.mark.parametrize("name", ["orthogonal", "delta_orthogonal", "sparse", "lecun_uniform", "critical_normal"])
def test_random_initializers_still_reject_integers(name):
    init = build(name)
    with raises(TypeError, f"{init.__name__}: dtype must be a floating type", "got int8",
                "random weights cannot be represented in it"):
        init(KEY, SHAPE_FOR.get(name, DEFAULT_SHAPE), jnp.int8)


# ----------------------------------------------------------------------------- 5. nonlinearity= (no torch needed)


def test_he_nonlinearity_default_keeps_negative_slope():
    shape = (64, 32)
    for a in (0.0, 0.3):
        for factory in (jinit.he_normal, jinit.he_uniform):
            np.testing.assert_array_equal(factory(a, nonlinearity="leaky_relu")(KEY, shape), factory(a)(KEY, shape))
    # relu = leaky_relu with slope 0 (the scales differ by an ulp of float64, not in float32)
    np.testing.assert_allclose(jinit.he_normal(nonlinearity="relu")(KEY, shape), jinit.he_normal()(KEY, shape),
                               rtol=1e-6)


@pytest.mark.parametrize("nonlinearity", ["tanh", "selu", "linear"])
def test_he_nonlinearity_variance(nonlinearity):
    shape = (512, 256)
    var = jinit.calculate_gain(nonlinearity) ** 2 / 512
    w = jinit.kaiming_normal(nonlinearity=nonlinearity)(KEY, shape)
    stats.assert_mean_var(w, 0.0, var)
    assert stats.rejects(stats.assert_var, w, 2.0 / 512)  # not the ReLU variance


def test_he_nonlinearity_errors():
    with raises(ValueError, "he_uniform: invalid nonlinearity='swish'", "valid choices are", "'leaky_relu'", "'selu'"):
        jinit.he_uniform(nonlinearity="swish")
    with raises(ValueError, "he_normal: negative_slope=0.2 is only used with nonlinearity='leaky_relu'",
                "nonlinearity='tanh'"):
        jinit.he_normal(0.2, nonlinearity="tanh")


# ----------------------------------------------------------------------------- 1. complex dtypes

C_SHAPE = (256, 512)  # fan_in 256, 131072 complex samples
C_SCALE = 2.0
C_VAR = C_SCALE / 256
TRUNC_C = jinit.variance.complex_truncated_normal_std(2.0)
JAX_TRUNC_C = 0.95311164380491208  # the constant jax.nn.initializers divides by


def _modulus_cdf(distribution):
    """CDF of |W|^2 / Var for each complex law (|Z|^2 ~ Exp(1) for the circular normal)."""
    if distribution == "normal":
        return scipy_stats.expon().cdf
    if distribution == "uniform":
        return scipy_stats.uniform(0.0, 2.0).cdf  # r^2 = 2u
    return lambda x: np.minimum((-np.expm1(-x * TRUNC_C**2)) / (-math.expm1(-4.0)), 1.0)


def _complex_draw(distribution, key=KEY, generator=None):
    w = jinit.variance_scaling(C_SCALE, "fan_in", distribution, generator=generator)(key, C_SHAPE, jnp.complex64)
    assert w.dtype == jnp.complex64 and w.shape == C_SHAPE
    return np.asarray(w, np.complex128)


@pytest.mark.parametrize("distribution", jinit.variance.DISTRIBUTIONS)
def test_complex_variance_scaling_moments_and_law(distribution):
    w = _complex_draw(distribution)
    power = np.abs(w) ** 2
    stats.assert_mean(power, C_VAR)  # E|W|^2 = scale / fan_in
    assert stats.rejects(stats.assert_mean, power, 1.02 * C_VAR)
    stats.assert_mean_var(w.real, 0.0, C_VAR / 2)  # the variance splits evenly
    stats.assert_mean_var(w.imag, 0.0, C_VAR / 2)
    stats.assert_mean(w.real * w.imag, 0.0)  # uncorrelated parts
    stats.assert_ks(power / C_VAR, _modulus_cdf(distribution))
    stats.assert_ks(np.angle(w), stats.uniform_cdf(-math.pi, math.pi))  # isotropic
    if distribution == "uniform":
        assert np.abs(w).max() <= math.sqrt(2 * C_VAR) * (1 + 1e-6)
    if distribution == "truncated_normal":
        assert np.abs(w).max() <= 2 * math.sqrt(C_VAR) / TRUNC_C * (1 + 1e-6)


def _ks2(a, b):
    for x, y in ((a.real, b.real), (a.imag, b.imag), (np.abs(a), np.abs(b))):
        assert scipy_stats.ks_2samp(x.ravel(), y.ravel()).pvalue > stats.KS_ALPHA


@pytest.mark.parametrize("distribution", jinit.variance.DISTRIBUTIONS)
def test_complex_variance_scaling_vs_jax(distribution):
    ours = _complex_draw(distribution)
    theirs = jax.nn.initializers.variance_scaling(C_SCALE, "fan_in", distribution)(OTHER_KEY, C_SHAPE, jnp.complex64)
    theirs = np.asarray(theirs, np.complex128)
    if distribution == "truncated_normal":
        # jax's constant is not the rms of the truncated law: its E|W|^2 is 1.0187 scale/n;
        # undone, the two laws are the same.
        ratio = (TRUNC_C / JAX_TRUNC_C) ** 2
        assert ratio == pytest.approx(1.018657, abs=1e-6)
        stats.assert_mean(np.abs(theirs) ** 2, ratio * C_VAR)
        assert stats.rejects(stats.assert_mean, np.abs(theirs) ** 2, C_VAR)
        theirs = theirs * (JAX_TRUNC_C / TRUNC_C)
    else:  # same key, same generator: the same values
        same_key = jax.nn.initializers.variance_scaling(C_SCALE, "fan_in", distribution)(KEY, C_SHAPE, jnp.complex64)
        np.testing.assert_allclose(ours, np.asarray(same_key, np.complex128), rtol=1e-5, atol=1e-7)
    _ks2(ours, theirs)


@pytest.mark.parametrize(
    "factory, var",
    [(jinit.glorot_normal, 2 / 384), (jinit.glorot_uniform, 2 / 384), (jinit.he_normal, 2 / 128),
     (jinit.he_uniform, 2 / 128), (jinit.lecun_normal, 1 / 128), (jinit.lecun_uniform, 1 / 128)],
    ids=lambda x: getattr(x, "__name__", ""),
)
def test_complex_variance_family(factory, var):
    w = np.asarray(factory()(KEY, (128, 256), jnp.complex64), np.complex128)
    stats.assert_mean(np.abs(w) ** 2, var)
    stats.assert_var(w.real, var / 2)
    stats.assert_var(w.imag, var / 2)


def test_complex_philox_generator():
    w = _complex_draw("normal", generator="philox")
    stats.assert_mean(np.abs(w) ** 2, C_VAR)
    stats.assert_ks(np.abs(w) ** 2 / C_VAR, _modulus_cdf("normal"))


def test_complex_normal_matches_jax():
    shape = (256, 256)
    w = np.asarray(jinit.normal(0.5, mean=1.0)(KEY, shape, jnp.complex64), np.complex128)
    stats.assert_mean(np.abs(w - 1.0) ** 2, 0.25)
    stats.assert_mean_var(w.real, 1.0, 0.125)
    stats.assert_mean_var(w.imag, 0.0, 0.125)
    stats.assert_ks(w.real, stats.normal_cdf(1.0, math.sqrt(0.125)))
    theirs = np.asarray(jax.nn.initializers.normal(0.5)(KEY, shape, jnp.complex64), np.complex128)
    np.testing.assert_allclose(w, theirs + 1.0, rtol=1e-6, atol=1e-6)
    other = np.asarray(jax.nn.initializers.normal(0.5)(OTHER_KEY, shape, jnp.complex64), np.complex128)
    _ks2(w - 1.0, other)


def test_complex128_needs_x64():
    with raises(TypeError, "normal: dtype complex128 needs jax.config.update('jax_enable_x64', True)"):
        jinit.normal()(KEY, (2, 2), jnp.complex128)
    with raises(TypeError, "he_normal: dtype complex128 needs jax.config.update('jax_enable_x64', True)"):
        jinit.he_normal(dtype=jnp.complex128)
    with jax.enable_x64(True):
        w = jinit.variance_scaling(1.0, "fan_in", "uniform")(KEY, (128, 256), jnp.complex128)
        assert w.dtype == jnp.complex128
        stats.assert_mean(np.abs(np.asarray(w)) ** 2, 1 / 128)
        theirs = jax.nn.initializers.variance_scaling(1.0, "fan_in", "uniform")(KEY, (128, 256), jnp.complex128)
        np.testing.assert_allclose(w, theirs, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    "name", ["uniform", "truncated_normal", "orthogonal", "delta_orthogonal", "sparse", "sparse_fraction", "identity",
             "dirac", "zero_hadamard"],
)
def test_complex_not_supported(name):
    init = build(name)
    with raises(TypeError, f"{name}: complex dtypes are not supported by {name}", "got complex64"):
        init(KEY, SHAPE_FOR.get(name, DEFAULT_SHAPE), jnp.complex64)
    with raises(TypeError, f"{name}: complex dtypes are not supported by {name}"):
        build(name, dtype=jnp.complex64)
