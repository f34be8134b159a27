"""Property-based tests (hypothesis) over shapes, axes, dtypes and initializers,
plus determinism across processes and low-precision statistics.

Every new (initializer, shape, dtype) compiles, so examples are few
(max_examples 30) and each example checks, besides the eager call, one of jit,
vmap and jit(vmap), which costs one more compilation.
"""

from __future__ import annotations

import hashlib
import math
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from scipy import stats as scipy_stats

import jinit
from tests import stats

DTYPES = (jnp.float32, jnp.float16, jnp.bfloat16)
FAN_FACTORIES = {
    "he_normal": lambda **ax: jinit.he_normal(**ax),
    "he_uniform(a=0.1,fan_out)": lambda **ax: jinit.he_uniform(0.1, "fan_out", **ax),
    "glorot_normal": lambda **ax: jinit.glorot_normal(**ax),
    "lecun_uniform": lambda **ax: jinit.lecun_uniform(**ax),
    "variance_scaling(fan_geo_avg,truncated_normal)": lambda **ax: jinit.variance_scaling(
        0.7, "fan_geo_avg", "truncated_normal", **ax
    ),
}
PLAIN_FACTORIES = {
    "normal": lambda: jinit.normal(0.5, 0.1),
    "uniform": lambda: jinit.uniform(-0.3, 0.7),
    "truncated_normal": lambda: jinit.truncated_normal(0.5, 0.2, -1.0, 2.0),
}

SETTINGS = settings(
    max_examples=30, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow], database=None
)


@st.composite
def cases(draw):
    """(label, initializer, shape, dtype): rank 2-4 shapes with dims 1-4, random
    distinct in/out axes for fan-based initializers."""
    shape = tuple(draw(st.lists(st.integers(1, 4), min_size=2, max_size=4)))
    dtype = draw(st.sampled_from(DTYPES))
    kind = draw(st.sampled_from(sorted(FAN_FACTORIES) + sorted(PLAIN_FACTORIES)))
    if kind in PLAIN_FACTORIES:
        return kind, PLAIN_FACTORIES[kind](), shape, dtype
    rank = len(shape)
    axes = draw(st.permutations(range(rank)))
    in_axis, out_axis = axes[0], axes[1]
    if draw(st.booleans()):  # negative spelling of the same axes
        in_axis -= rank
    batch = tuple(axes[2:3]) if rank > 2 and draw(st.booleans()) else ()
    init = FAN_FACTORIES[kind](in_axis=in_axis, out_axis=out_axis, batch_axis=batch)
    return f"{kind}(in={in_axis},out={out_axis},batch={batch})", init, shape, dtype


@SETTINGS
@given(case=cases(), how=st.sampled_from(["jit", "vmap", "jit(vmap)"]))
# Each mode at least once, whatever hypothesis draws.
@example(case=("he_normal(in=0,out=2)", jinit.he_normal(in_axis=0, out_axis=2), (3, 1, 4), jnp.bfloat16), how="jit")
@example(case=("uniform", PLAIN_FACTORIES["uniform"](), (2, 5), jnp.float16), how="vmap")
@example(
    case=("variance_scaling(fan_geo_avg,truncated_normal)", FAN_FACTORIES["variance_scaling(fan_geo_avg,truncated_normal)"](),
          (2, 2, 3, 1), jnp.float32),
    how="jit(vmap)",
)
def test_init_properties(case, how):
    """Shape, dtype, finite, deterministic, keys matter; and one of: jit equals
    eager bit for bit, vmap over keys equals per-key calls, or both at once (one
    extra compilation per example)."""
    label, init, shape, dtype = case
    key, other = jax.random.key(3), jax.random.key(4)
    keys = jax.random.split(jax.random.key(5), 3)

    w = init(key, shape, dtype)
    assert w.shape == shape, label
    assert w.dtype == jnp.dtype(dtype), label
    assert np.all(np.isfinite(np.asarray(w, np.float32))), label
    # Deterministic: same key, bit-identical.
    np.testing.assert_array_equal(np.asarray(init(key, shape, dtype)), np.asarray(w))
    # Different keys differ (a handful of values cannot all collide).
    if math.prod(shape) >= 4:
        assert not np.array_equal(np.asarray(init(other, shape, dtype)), np.asarray(w)), label

    if how == "jit":
        w_jit = jax.jit(lambda k: init(k, shape, dtype))(key)
        assert w_jit.dtype == jnp.dtype(dtype)
        np.testing.assert_array_equal(np.asarray(w_jit), np.asarray(w), err_msg=f"{label}: jit != eager")
        return
    batched = jax.vmap(lambda k: init(k, shape, dtype))
    w_vmap = (batched if how == "vmap" else jax.jit(batched))(keys)
    assert w_vmap.shape == (3, *shape) and w_vmap.dtype == jnp.dtype(dtype)
    per_key = np.stack([np.asarray(init(k, shape, dtype)) for k in keys])
    np.testing.assert_array_equal(np.asarray(w_vmap), per_key, err_msg=f"{label}: {how} != per-key calls")


@settings(max_examples=30, deadline=None, derandomize=True, database=None)
@given(
    shape=st.lists(st.integers(0, 6), min_size=2, max_size=5).map(tuple),
    in_axis=st.integers(-5, 4),
    out_axis=st.integers(-5, 4),
)
def test_compute_fans_properties(shape, in_axis, out_axis):
    """Against JAX's _compute_fans and the product identity fan_in*fan_out = in*out*rf^2."""
    from jax._src.nn.initializers import _compute_fans as jax_compute_fans

    rank = len(shape)
    if not (-rank <= in_axis < rank and -rank <= out_axis < rank) or in_axis % rank == out_axis % rank:
        with pytest.raises(ValueError, match="compute_fans: "):
            jinit.compute_fans(shape, in_axis, out_axis)
        return
    fi, fo = jinit.compute_fans(shape, in_axis, out_axis)
    n_in, n_out = shape[in_axis], shape[out_axis]
    rf = math.prod(d for i, d in enumerate(shape) if i not in (in_axis % rank, out_axis % rank))
    assert (fi, fo) == (n_in * rf, n_out * rf)
    if math.prod(shape) > 0:
        assert (fi, fo) == tuple(int(f) for f in jax_compute_fans(shape, in_axis, out_axis))


# ----------------------------------------------------------------------------- across processes


HASH_SHAPE = (48, 32)
HASHED = {
    "he_normal": lambda: jinit.he_normal(),
    "uniform": lambda: jinit.uniform(-1.0, 1.0),
    "truncated_normal": lambda: jinit.truncated_normal(0.5),
}


def _digest(w) -> str:
    a = np.asarray(w)
    return hashlib.sha256(a.tobytes() + str(a.dtype).encode() + str(a.shape).encode()).hexdigest()


def test_determinism_across_processes():
    code = textwrap.dedent(
        f"""
        import hashlib, jax, numpy as np, jinit
        shape = {HASH_SHAPE!r}
        inits = {{"he_normal": jinit.he_normal(), "uniform": jinit.uniform(-1.0, 1.0),
                  "truncated_normal": jinit.truncated_normal(0.5)}}
        for name, init in inits.items():
            a = np.asarray(init(jax.random.key(2024), shape))
            print(name, hashlib.sha256(a.tobytes() + str(a.dtype).encode() + str(a.shape).encode()).hexdigest())
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    theirs = dict(line.split() for line in out.stdout.strip().splitlines())
    ours = {name: _digest(make()(jax.random.key(2024), HASH_SHAPE)) for name, make in HASHED.items()}
    assert theirs == ours


# ----------------------------------------------------------------------------- low precision


LOWP_SHAPE = (128, 512)
TRUNC_STD = scipy_stats.truncnorm(-2, 2).std()
LOWP = {
    # label: (factory, args, variance, bound or None)
    "he_normal": (jinit.he_normal, (), 2 / 128, None),
    "he_uniform": (jinit.he_uniform, (), 2 / 128, math.sqrt(6 / 128)),
    "variance_scaling(fan_avg,truncated_normal)": (
        jinit.variance_scaling, (1.0, "fan_avg", "truncated_normal"), 1 / 320, 2 * math.sqrt(1 / 320) / TRUNC_STD
    ),
    "normal(0.02)": (jinit.normal, (0.02,), 0.02**2, None),
}


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16], ids=["float16", "bfloat16"])
@pytest.mark.parametrize("label", list(LOWP))
def test_low_precision(label, dtype):
    factory, args, var, bound = LOWP[label]
    w = stats.draw(factory, *args, shape=LOWP_SHAPE, dtype=dtype, seed=42)
    assert w.dtype == jnp.dtype(dtype) and w.shape == LOWP_SHAPE
    x = np.asarray(w.astype(jnp.float32), np.float64)
    assert np.all(np.isfinite(x))
    stats.assert_mean(x, 0.0)
    stats.assert_var_rounded(x, var, dtype)
    # Sampled in float32 and rounded once: equal to the float32 draw cast to dtype,
    # except where rounding reached an open bound and was pulled one step inside.
    f32 = stats.draw(factory, *args, shape=LOWP_SHAPE, dtype=jnp.float32, seed=42)
    cast = np.asarray(f32.astype(dtype).astype(jnp.float32), np.float64)
    if bound is None:
        np.testing.assert_array_equal(x, cast)
    else:
        b = float(jnp.asarray(bound, dtype).astype(jnp.float32))
        differ = x != cast
        assert np.all(np.abs(cast[differ]) == b), label
        assert x.max() < b and x.max() < bound
        if "truncated" in label:  # open at both ends
            assert x.min() > -b and x.min() > -bound
        else:  # uniform: [-b, b)
            assert x.min() >= -b
