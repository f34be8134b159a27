"""Every argument error fires with a message naming the initializer, the argument
and, where there is a finite set, the valid choices."""

from __future__ import annotations

import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import PartitionSpec as P

import jinit

KEY = jax.random.key(0)


def raises(exc, *fragments):
    """pytest.raises(exc) whose message contains every fragment (literally)."""
    pattern = "".join(f"(?=.*{re.escape(f)})" for f in fragments)
    return pytest.raises(exc, match=re.compile(pattern, re.DOTALL))


MODES_MSG = "valid choices are 'fan_in', 'fan_out', 'fan_avg', 'fan_geo_avg'"
DISTS_MSG = "valid choices are 'normal', 'truncated_normal', 'uniform'"


# ----------------------------------------------------------------------------- choices


@pytest.mark.parametrize("mode", ["fan_sum", "FAN_IN", "", None, 1])
def test_unknown_mode(mode):
    with raises(ValueError, "variance_scaling: invalid mode=", repr(mode), MODES_MSG):
        jinit.variance_scaling(1.0, mode, "normal")


@pytest.mark.parametrize("factory", [jinit.he_normal, jinit.he_uniform])
@pytest.mark.parametrize("mode", ["fan_avg", "fan_geo_avg", "in"])
def test_unknown_mode_he(factory, mode):
    with raises(ValueError, f"{factory.__name__}: invalid mode={mode!r}", "valid choices are 'fan_in', 'fan_out'"):
        factory(mode=mode)


@pytest.mark.parametrize("dist", ["gaussian", "Normal", "truncated", None])
def test_unknown_distribution(dist):
    with raises(ValueError, "variance_scaling: invalid distribution=", repr(dist), DISTS_MSG):
        jinit.variance_scaling(1.0, "fan_in", dist)


@pytest.mark.parametrize("name", ["swish", "Relu", "gelu", "", None])
def test_unknown_nonlinearity(name):
    with raises(ValueError, "calculate_gain: invalid nonlinearity=", repr(name), "valid choices are", "'leaky_relu'",
                "'conv_transpose3d'", "'selu'"):
        jinit.calculate_gain(name)


@pytest.mark.parametrize("param", ["0.2", [0.1], math.nan, math.inf, True])
def test_leaky_relu_param_not_a_number(param):
    with raises(ValueError, "calculate_gain: param for leaky_relu must be a finite real number", repr(param)):
        jinit.calculate_gain("leaky_relu", param)


@pytest.mark.parametrize("name", ["relu", "tanh", "linear", "selu"])
def test_param_given_for_non_leaky(name):
    with raises(ValueError, "calculate_gain: param is only used with 'leaky_relu'", "param=0.1", repr(name)):
        jinit.calculate_gain(name, 0.1)


def test_unknown_generator():
    with raises(ValueError, "normal: invalid generator='nope'", "valid choices are", "'jax'"):
        jinit.normal(generator="nope")
    with raises(ValueError, "he_normal: invalid generator='nope'", "'jax'"):
        jinit.he_normal(generator="nope")


# ----------------------------------------------------------------------------- scalar hyper-parameters


@pytest.mark.parametrize(
    "make, initializer, argument",
    [
        (lambda v: jinit.variance_scaling(v, "fan_in", "normal"), "variance_scaling", "scale"),
        (lambda v: jinit.normal(stddev=v), "normal", "stddev"),
        (lambda v: jinit.truncated_normal(stddev=v), "truncated_normal", "stddev"),
        (lambda v: jinit.glorot_normal(gain=v), "glorot_normal", "gain"),
        (lambda v: jinit.glorot_uniform(gain=v), "glorot_uniform", "gain"),
    ],
    ids=["scale", "normal.stddev", "truncated_normal.stddev", "glorot_normal.gain", "glorot_uniform.gain"],
)
@pytest.mark.parametrize("value", [-1.0, -1e-9, math.nan, math.inf, -math.inf])
def test_negative_or_nonfinite_scale(make, initializer, argument, value):
    expected = "must be finite" if not math.isfinite(value) else "must be >= 0"
    with raises(ValueError, f"{initializer}: {argument} {expected}"):
        make(value)


@pytest.mark.parametrize(
    "make, initializer, argument",
    [
        (lambda v: jinit.normal(mean=v), "normal", "mean"),
        (lambda v: jinit.uniform(low=v), "uniform", "low"),
        (lambda v: jinit.truncated_normal(lower=v), "truncated_normal", "lower"),
        (lambda v: jinit.he_normal(negative_slope=v), "he_normal", "negative_slope"),
        (lambda v: jinit.variance_scaling(v, "fan_in", "normal"), "variance_scaling", "scale"),
    ],
    ids=["mean", "low", "lower", "negative_slope", "scale"],
)
@pytest.mark.parametrize("value", ["1.0", None, [1.0], True, np.ones(2)])
def test_non_real_hyperparameter(make, initializer, argument, value):
    with raises(TypeError, f"{initializer}: {argument} must be a"):
        make(value)


@pytest.mark.parametrize("value", ["1.0", None, [1.0], True, np.array(["a", "b"])])
def test_constant_value_not_a_number_or_numeric_array(value):
    """An array is a valid constant (broadcast to the shape); anything else non-numeric is not."""
    with raises(TypeError, "constant: value must be a real scalar"):
        jinit.constant(value)


def test_nonfinite_mean_and_bounds():
    with raises(ValueError, "normal: mean must be finite"):
        jinit.normal(mean=math.nan)
    with raises(ValueError, "uniform: high must be finite"):
        jinit.uniform(high=math.inf)
    with raises(ValueError, "truncated_normal: upper must be finite"):
        jinit.truncated_normal(upper=math.inf)


@pytest.mark.parametrize("low, high", [(1.0, 1.0), (2.0, 1.0), (0.0, -1e-9)])
def test_uniform_low_not_below_high(low, high):
    with raises(ValueError, "uniform: low must be < high", f"low={low}", f"high={high}"):
        jinit.uniform(low, high)


@pytest.mark.parametrize("lower, upper", [(2.0, -2.0), (0.0, 0.0), (1.0, 0.5)])
def test_truncated_normal_lower_not_below_upper(lower, upper):
    with raises(ValueError, "truncated_normal: lower must be < upper", f"lower={lower}", f"upper={upper}"):
        jinit.truncated_normal(lower=lower, upper=upper)


# ----------------------------------------------------------------------------- shapes and axes


@pytest.mark.parametrize(
    "factory", [jinit.he_normal, jinit.he_uniform, jinit.glorot_normal, jinit.glorot_uniform, jinit.lecun_normal]
)
@pytest.mark.parametrize("shape", [(64,), ()])
def test_fan_initializer_on_bias_shape(factory, shape):
    name = factory.__name__
    with raises(ValueError, f"{name}: in_axis=-2 is out of range for a rank-{len(shape)} shape",
                "For a bias or other 1-D parameter use zeros()"):
        factory()(KEY, shape)


@pytest.mark.parametrize(
    "kwargs, argument",
    [({"in_axis": 4}, "in_axis=4"), ({"out_axis": -5}, "out_axis=-5"), ({"batch_axis": (0, 7)}, "batch_axis=(0, 7)"),
     ({"in_axis": (0, 9)}, "in_axis=(0, 9)")],
)
def test_out_of_range_axis(kwargs, argument):
    shape = (3, 3, 16, 32)
    with raises(ValueError, f"he_normal: {argument} is out of range for a rank-4 shape (3, 3, 16, 32)"):
        jinit.he_normal(**kwargs)(KEY, shape)
    with raises(ValueError, f"compute_fans: {argument} is out of range"):
        jinit.compute_fans(shape, **kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"in_axis": 0, "out_axis": 0},
        {"in_axis": -1, "out_axis": 3},
        {"in_axis": 2, "out_axis": 3, "batch_axis": 2},
        {"in_axis": (0, 1), "out_axis": (1, 2)},
        {"in_axis": (2, 2)},
    ],
)
def test_overlapping_axes(kwargs):
    shape = (3, 3, 16, 32)
    with raises(ValueError, "variance_scaling: in_axis=", "must name distinct axes of shape (3, 3, 16, 32)"):
        jinit.variance_scaling(1.0, "fan_in", "normal", **kwargs)(KEY, shape)
    with raises(ValueError, "compute_fans:", "must name distinct axes"):
        jinit.compute_fans(shape, **kwargs)


@pytest.mark.parametrize("axis", [1.0, "0", None, True])
def test_non_int_axis(axis):
    with raises(TypeError, "compute_fans: in_axis must be an int or a sequence of ints"):
        jinit.compute_fans((3, 4), in_axis=axis)


@pytest.mark.parametrize("shape", [(3, -1), (3.0, 4), ("3", 4), (True, 2), -2, None, 2.5])
@pytest.mark.parametrize("init", [jinit.he_normal(), jinit.normal(), jinit.zeros()], ids=["he_normal", "normal", "zeros"])
def test_bad_shape(init, shape):
    with raises(TypeError, f"{init.__name__}: shape must be a sequence of non-negative ints", repr(shape)):
        init(KEY, shape)


# ----------------------------------------------------------------------------- keys


@pytest.mark.parametrize(
    "init",
    [jinit.he_normal(), jinit.normal(), jinit.uniform(), jinit.truncated_normal(), jinit.zeros(), jinit.ones(),
     jinit.constant(1.0), jinit.variance_scaling(1.0, "fan_avg", "uniform")],
    ids=lambda i: i.__name__,
)
@pytest.mark.parametrize(
    "key_like",
    [(3, 4), 0, 1.5, None, np.zeros(2, np.float32), jnp.zeros((2, 2), jnp.uint32), "key"],
    ids=["shape-tuple", "int", "float", "None", "float-array", "uint32-2d", "str"],
)
def test_non_key_first_argument(init, key_like):
    with raises(TypeError, f"{init.__name__}: key must be a PRNG key made by jax.random.key(seed)",
                "did you swap key and shape?"):
        init(key_like, (3, 4))


def test_swapped_key_and_shape():
    with raises(TypeError, "he_normal: key must be a PRNG key", "got tuple (64, 32)", "did you swap key and shape?"):
        jinit.he_normal()((64, 32), KEY)


def test_batched_keys_are_not_a_key():
    keys = jax.random.split(KEY, 3)
    with raises(TypeError, "normal: key must be a PRNG key", "shape (3,)"):
        jinit.normal()(keys, (2, 2))


# ----------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.int8, jnp.uint8, jnp.bool_, "int32", np.int64])
@pytest.mark.parametrize(
    "init",
    [jinit.he_normal(), jinit.normal(), jinit.uniform(), jinit.truncated_normal(), jinit.glorot_uniform()],
    ids=lambda i: i.__name__,
)
def test_integer_dtype(init, dtype):
    with raises(TypeError, f"{init.__name__}: dtype must be a floating type (float16, bfloat16, float32, float64)"):
        init(KEY, (4, 4), dtype)


def test_not_a_dtype():
    with raises(TypeError, "normal: dtype 'floaty' is not a dtype"):
        jinit.normal()(KEY, (2,), "floaty")


@pytest.mark.parametrize("init", [jinit.he_normal(), jinit.normal(), jinit.uniform(), jinit.truncated_normal()],
                         ids=lambda i: i.__name__)
def test_float64_without_x64(init):
    assert not jax.config.jax_enable_x64
    with raises(TypeError, f"{init.__name__}: dtype float64 needs jax.config.update('jax_enable_x64', True)"):
        init(KEY, (4, 4), jnp.float64)


# ----------------------------------------------------------------------------- out_sharding


@pytest.mark.parametrize("bad", ["x", ("x", None), jax.devices()[0], 1, [None, "x"]],
                         ids=["str", "tuple", "device", "int", "list"])
@pytest.mark.parametrize("init", [jinit.he_normal(), jinit.normal(), jinit.zeros(), jinit.constant(2.0)],
                         ids=lambda i: i.__name__)
def test_bad_out_sharding_type(init, bad):
    with raises(TypeError, f"{init.__name__}: out_sharding must be a jax.sharding.NamedSharding, a PartitionSpec",
                "or None"):
        init(KEY, (8, 8), out_sharding=bad)


def test_partition_spec_without_mesh():
    with pytest.raises((ValueError, RuntimeError, TypeError)):
        jinit.normal()(KEY, (8, 8), out_sharding=P("x", None))


# ----------------------------------------------------------------------------- registry


@pytest.mark.parametrize("name", ["kaiming", "He_Normal", "", "xavier"])
def test_unknown_scheme(name):
    with raises(ValueError, f"unknown scheme {name!r}", "valid choices are", "he_normal", "glorot_uniform"):
        jinit.get_scheme(name)


@pytest.mark.parametrize("activation", ["swish", "ReLU", "mish"])
def test_unknown_activation(activation):
    scheme = jinit.get_scheme("gain_normal")
    with raises(ValueError, f"unknown activation {activation!r}", "valid choices are", "relu", "tanh"):
        scheme.kernel_init(activation)
    with raises(ValueError, f"unknown activation {activation!r}"):
        jinit.get_scheme("he_normal").kernel_init(activation)
    with raises(ValueError, f"unknown activation {activation!r}"):
        jinit.get_scheme("he_normal").bias_init(activation)
    with raises(ValueError, f"unknown activation {activation!r}"):
        jinit.get_activation(activation)


def test_duplicate_scheme_registration():
    with raises(ValueError, "register_scheme: a scheme named 'he_normal' exists already"):
        jinit.register_scheme(jinit.get_scheme("he_normal"))


# ----------------------------------------------------------------------------- the shared checks


def test_check_int_and_check_choice():
    """jinit._core's one integer check and one "valid choices" lookup."""
    from jinit._core import check_choice, check_int

    assert check_int("f", "n", np.int64(3), 1) == 3 and type(check_int("f", "n", np.int64(3), 1)) is int
    assert check_int("f", "axis", -2) == -2
    with raises(ValueError, "f: n must be an int >= 1, got 0."):
        check_int("f", "n", 0, 1)
    for bad in (1.5, True, "2", None):
        with raises(TypeError, f"f: n must be an int >= 1, got {bad!r}."):
            check_int("f", "n", bad, 1)
    with raises(TypeError, "f: axis must be an int, got 1.0."):
        check_int("f", "axis", 1.0)
    assert check_choice("f", "mode", "a", ("a", "b")) == "a"
    with raises(ValueError, "f: invalid mode='c'; valid choices are 'a', 'b'."):
        check_choice("f", "mode", "c", ("a", "b"))
    with raises(ValueError, "f: invalid mode=['a']; valid choices are 'a', 'b'."):
        check_choice("f", "mode", ["a"], {"a": 1, "b": 2})
    with raises(ValueError, "unknown scheme 'c'; valid choices are 'a', 'b'."):
        check_choice(None, "scheme", "c", {"a": 1, "b": 2})
