"""Gains: calculate_gain's table and gain_for's quadrature against closed forms
and scipy.integrate.quad references."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special

import jinit

SQRT2PI = math.sqrt(2 * math.pi)


def phi(z):
    return math.exp(-z * z / 2) / SQRT2PI


def Phi(z):
    return float(special.ndtr(z))


def quad_second_moment(f, kinks=()):
    """E[f(z)^2], z ~ N(0, 1), with scipy's adaptive quadrature, split at kinks."""
    g = lambda t: f(t) ** 2 * phi(t)  # noqa: E731
    edges = [-np.inf, *sorted(kinks), np.inf]
    return sum(integrate.quad(g, a, b, epsabs=1e-14, epsrel=1e-13, limit=200)[0] for a, b in zip(edges, edges[1:]))


# ----------------------------------------------------------------------------- calculate_gain


@pytest.mark.parametrize(
    "name, expected",
    [
        ("linear", 1.0),
        ("conv1d", 1.0),
        ("conv2d", 1.0),
        ("conv3d", 1.0),
        ("conv_transpose1d", 1.0),
        ("conv_transpose2d", 1.0),
        ("conv_transpose3d", 1.0),
        ("sigmoid", 1.0),
        ("tanh", 5.0 / 3.0),
        ("relu", math.sqrt(2.0)),
        ("leaky_relu", math.sqrt(2.0 / (1 + 0.01**2))),
        ("selu", 0.75),
    ],
)
def test_calculate_gain_table(name, expected):
    assert jinit.calculate_gain(name) == pytest.approx(expected, rel=1e-15)


def test_calculate_gain_covers_every_nonlinearity():
    assert set(jinit.gain.NONLINEARITIES) == {
        "linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d", "conv_transpose3d",
        "sigmoid", "tanh", "relu", "leaky_relu", "selu",
    }


@pytest.mark.parametrize("a", [0, 0.0, 0.01, 0.2, 1.0, 3.5, -0.3, np.float64(0.1), np.float32(0.25)])
def test_calculate_gain_leaky_relu_param(a):
    assert jinit.calculate_gain("leaky_relu", a) == pytest.approx(math.sqrt(2.0 / (1 + float(a) ** 2)), rel=1e-15)


def test_calculate_gain_leaky_relu_default_slope():
    assert jinit.calculate_gain("leaky_relu") == jinit.calculate_gain("leaky_relu", 0.01)
    assert jinit.calculate_gain("leaky_relu", None) == jinit.calculate_gain("leaky_relu", 0.01)
    assert jinit.calculate_gain("leaky_relu", 0) == jinit.calculate_gain("relu")


# ----------------------------------------------------------------------------- gain_for: closed forms


def test_gain_for_relu():
    assert jinit.gain_for(jax.nn.relu) == pytest.approx(math.sqrt(2.0), abs=1e-12)
    assert jinit.gain_for(lambda z: np.maximum(z, 0.0)) == pytest.approx(math.sqrt(2.0), abs=1e-12)


def test_gain_for_identity():
    assert jinit.gain_for(lambda z: z) == pytest.approx(1.0, abs=1e-12)
    assert jinit.gain_for(jinit.get_activation("linear")) == pytest.approx(1.0, abs=1e-12)


def test_gain_for_selu_is_one():
    """SELU's constants were chosen so that E[selu(z)^2] = 1 for z ~ N(0, 1)."""
    assert jinit.gain_for(jax.nn.selu) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize("a", [0.0, 0.01, 0.1, 0.2, 0.5, 1.0])
def test_gain_for_leaky_relu(a):
    g = jinit.gain_for(lambda z: jax.nn.leaky_relu(z, negative_slope=a))
    assert g == pytest.approx(math.sqrt(2.0 / (1 + a * a)), rel=1e-12)
    # Same as the table.
    assert g == pytest.approx(jinit.calculate_gain("leaky_relu", a), rel=1e-12)


def test_gain_for_hard_tanh():
    """E[clip(z, -1, 1)^2] = 1 - 2 phi(1)."""
    expected = 1.0 / math.sqrt(1.0 - 2.0 * phi(1.0))
    assert jinit.gain_for(lambda z: jnp.clip(z, -1.0, 1.0)) == pytest.approx(expected, rel=1e-12)
    assert jinit.gain_for(jax.nn.hard_tanh) == pytest.approx(expected, rel=1e-12)


def test_gain_for_relu6():
    """E[min(max(z, 0), 6)^2] = ((2 Phi(6) - 1) - 12 phi(6)) / 2 + 36 (1 - Phi(6))."""
    second = ((2 * Phi(6.0) - 1) - 12 * phi(6.0)) / 2 + 36 * float(special.ndtr(-6.0))
    assert jinit.gain_for(jax.nn.relu6) == pytest.approx(1 / math.sqrt(second), rel=1e-12)


def test_gain_for_shifted_relu_with_breakpoints():
    """E[(z - c)_+^2] = (1 + c^2)(1 - Phi(c)) - c phi(c); the kink at c = 0.3 is given."""
    c = 0.3
    second = (1 + c * c) * float(special.ndtr(-c)) - c * phi(c)
    g = jinit.gain_for(lambda z: jnp.maximum(z - c, 0.0), breakpoints=[c])
    assert g == pytest.approx(1 / math.sqrt(second), rel=1e-12)


@pytest.mark.parametrize(
    "fn, expected",
    [
        (lambda z: 2.0 * z, 0.5),
        (lambda z: -z, 1.0),
        (lambda z: z**2, 1 / math.sqrt(3.0)),  # E[z^4] = 3
        (lambda z: z**3, 1 / math.sqrt(15.0)),  # E[z^6] = 15
        (np.abs, 1.0),
        (lambda z: jnp.ones_like(z) * 0.5, 2.0),
        (lambda z: jnp.exp(z / 2), math.exp(-0.25)),  # E[e^z] = e^(1/2)
        (jnp.sign, 1.0),
    ],
    ids=["2z", "-z", "z^2", "z^3", "abs", "const", "exp(z/2)", "sign"],
)
def test_gain_for_user_functions(fn, expected):
    assert jinit.gain_for(fn) == pytest.approx(expected, rel=1e-10)


# ----------------------------------------------------------------------------- gain_for: quadrature references


def _gelu_tanh(z):
    return 0.5 * z * (1 + math.tanh(math.sqrt(2 / math.pi) * (z + 0.044715 * z**3)))


def _softplus(z):
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


REFERENCES = {
    # name: (jax function, pure-python float64 reference, kinks)
    "gelu(tanh approx)": (jax.nn.gelu, _gelu_tanh, ()),
    "gelu(exact)": (functools.partial(jax.nn.gelu, approximate=False), lambda z: z * Phi(z), ()),
    "silu": (jax.nn.silu, lambda z: z * special.expit(z), ()),
    "tanh": (jnp.tanh, math.tanh, ()),
    "sigmoid": (jax.nn.sigmoid, special.expit, ()),
    "elu": (jax.nn.elu, lambda z: z if z > 0 else math.expm1(z), (0.0,)),
    "softplus": (jax.nn.softplus, _softplus, ()),
    "selu": (
        jax.nn.selu,
        lambda z: 1.0507009873554804934193349852946 * (z if z > 0 else 1.6732632423543772848170429916717 * math.expm1(z)),
        (0.0,),
    ),
}


@pytest.mark.parametrize("name", list(REFERENCES))
def test_gain_for_matches_scipy_quad(name):
    fn, ref, kinks = REFERENCES[name]
    expected = 1.0 / math.sqrt(quad_second_moment(ref, kinks))
    assert jinit.gain_for(fn) == pytest.approx(expected, abs=1e-8)


def test_gain_for_known_values():
    """The values quoted in the docs (1/sqrt(E[phi(z)^2]) at q = 1)."""
    assert jinit.gain_for(jax.nn.gelu) == pytest.approx(1.534, abs=5e-4)
    assert jinit.gain_for(jax.nn.silu) == pytest.approx(1.677, abs=5e-4)
    assert jinit.gain_for(jnp.tanh) == pytest.approx(1.593, abs=5e-4)


# ----------------------------------------------------------------------------- gain_for: errors


@pytest.mark.parametrize(
    "fn",
    [lambda z: 0.0 * z, lambda z: jnp.zeros_like(z), lambda z: np.zeros_like(z)],
    ids=["0*z", "jnp.zeros", "np.zeros"],
)
def test_gain_for_zero_second_moment(fn):
    with pytest.raises(ValueError, match=r"gain_for: E\[fn\(z\)\^2\] = 0\.0.*finite, positive second moment"):
        jinit.gain_for(fn)


@pytest.mark.parametrize(
    "fn",
    [
        lambda z: jnp.exp(z**2),
        lambda z: jnp.exp(z**2 / 4),  # E[exp(z^2/2)] diverges (flat integrand)
        lambda z: jnp.full_like(z, jnp.inf),
        lambda z: z * jnp.inf,
        lambda z: jnp.log(z),  # nan for z < 0
    ],
    ids=["exp(z^2)", "exp(z^2/4)", "inf", "z*inf", "log"],
)
def test_gain_for_infinite_second_moment(fn):
    with pytest.raises(ValueError, match=r"gain_for: E\[fn\(z\)\^2\] = (inf|nan).*finite, positive second moment"):
        jinit.gain_for(fn)


@pytest.mark.parametrize("fn", ["relu", 1.0, None, [jax.nn.relu]])
def test_gain_for_non_callable(fn):
    with pytest.raises(TypeError, match=r"gain_for: fn must be a callable activation"):
        jinit.gain_for(fn)
