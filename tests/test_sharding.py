"""out_sharding (conftest forces 8 virtual CPU devices): the result carries the
requested sharding and its values are bit-identical to the unsharded call, eager
and under jax.jit, with a NamedSharding or a PartitionSpec inside jax.set_mesh.

A note on "the unsharded call": inside ``jax.set_mesh`` with Explicit axes (the
default of ``jax.make_mesh``) every program is compiled for 8 partitions, and XLA
may then fuse (and round) ``sample * std`` differently from a 1-device program,
also for plain ``jax.random.normal(k, s) * c``. Sharded values are therefore
compared with the unsharded call made in the same context.
"""

from __future__ import annotations

from contextlib import nullcontext

import jax
import numpy as np
import pytest
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import jinit

KEY = jax.random.key(11)
SHAPE = (16, 24)  # both dims divisible by 8

assert jax.device_count() >= 8, "conftest.py should force 8 CPU devices"
MESH = jax.make_mesh((8,), ("x",))
AUTO_MESH = jax.make_mesh((8,), ("x",), axis_types=(AxisType.Auto,))

# Built once: every new (initializer, shape, sharding) compiles.
RANDOM = {
    "normal": jinit.normal(0.5, 0.1),
    "uniform": jinit.uniform(-0.5, 0.25),
    "truncated_normal": jinit.truncated_normal(0.3),
    "variance_scaling(normal)": jinit.variance_scaling(1.3, "fan_geo_avg", "normal"),
    "variance_scaling(truncated_normal)": jinit.variance_scaling(0.7, "fan_avg", "truncated_normal"),
    "variance_scaling(uniform)": jinit.variance_scaling(2.0, "fan_out", "uniform"),
    "glorot_normal": jinit.glorot_normal(),
    "glorot_uniform": jinit.glorot_uniform(),
    "he_normal": jinit.he_normal(),
    "he_uniform": jinit.he_uniform(0.2),
    "lecun_normal": jinit.lecun_normal(),
    "lecun_uniform": jinit.lecun_uniform(),
}
FILLS = {"zeros": jinit.zeros(), "ones": jinit.ones(), "constant": jinit.constant(-3.0)}
ALL = {**RANDOM, **FILLS}
# These get every variant (eager/jit x NamedSharding/PartitionSpec x both specs);
# the others the NamedSharding ones.
FULL = ("he_uniform", "truncated_normal", "zeros")
SPECS = {"P(x,None)": P("x", None), "P(None,x)": P(None, "x")}


def _check(w, ref, mesh, spec):
    assert w.shape == ref.shape and w.dtype == ref.dtype
    assert isinstance(w.sharding, NamedSharding)
    assert w.sharding.is_equivalent_to(NamedSharding(mesh, spec), w.ndim), f"{w.sharding} is not {spec}"
    # Each device holds only its block.
    shard_shapes = {s.data.shape for s in w.addressable_shards}
    assert shard_shapes == {NamedSharding(mesh, spec).shard_shape(w.shape)}
    np.testing.assert_array_equal(np.asarray(w), np.asarray(ref))


@pytest.mark.parametrize(
    "name, spec",
    [pytest.param(n, SPECS[s], id=f"{n}-{s}") for n in ALL for s in SPECS if s == "P(x,None)" or n in FULL]
    + [pytest.param("uniform", SPECS["P(None,x)"], id="uniform-P(None,x)")],
)
def test_named_sharding(name, spec):
    init = ALL[name]
    ref = init(KEY, SHAPE)
    w = init(KEY, SHAPE, out_sharding=NamedSharding(MESH, spec))
    _check(w, ref, MESH, spec)


@pytest.mark.parametrize("name", FULL)
@pytest.mark.parametrize("spec", [P("x", None), P(None, "x")], ids=["P(x,None)", "P(None,x)"])
def test_named_sharding_under_jit(name, spec):
    init = ALL[name]
    ref = init(KEY, SHAPE)
    w = jax.jit(lambda k: init(k, SHAPE, out_sharding=NamedSharding(MESH, spec)))(KEY)
    _check(w, ref, MESH, spec)


@pytest.mark.parametrize(
    "name, spec, mesh",
    [pytest.param(n, SPECS[s], MESH, id=f"explicit-{s}-{n}") for n in FULL for s in SPECS]
    + [pytest.param("he_uniform", SPECS["P(None,x)"], AUTO_MESH, id="auto-P(None,x)-he_uniform")],
)
def test_partition_spec_under_set_mesh(name, spec, mesh):
    init = ALL[name]
    with jax.set_mesh(mesh):
        ref = init(KEY, SHAPE)
        w = init(KEY, SHAPE, out_sharding=spec)
        _check(w, ref, mesh, spec)
        # Under jit, in the same context: the sharding must survive the outer jit.
        wj = jax.jit(lambda k: init(k, SHAPE, out_sharding=spec))(KEY)
        _check(wj, ref, mesh, spec)


def test_sharding_does_not_change_values_across_specs():
    """On an Auto mesh the context does not matter: every sharding gives the
    values of the plain call outside any mesh."""
    init = RANDOM["he_normal"]
    ref = np.asarray(init(KEY, SHAPE))
    for spec in (P("x", None), P(None, "x")):
        with jax.set_mesh(AUTO_MESH):
            np.testing.assert_array_equal(np.asarray(init(KEY, SHAPE, out_sharding=spec)), ref)
        np.testing.assert_array_equal(
            np.asarray(init(KEY, SHAPE, out_sharding=NamedSharding(AUTO_MESH, spec))), ref
        )


def test_conv_kernel_sharded_over_output_channels():
    shape = (3, 3, 16, 32)
    spec = P(None, None, None, "x")
    init = jinit.he_normal()
    ref = init(KEY, shape)
    _check(init(KEY, shape, out_sharding=NamedSharding(MESH, spec)), ref, MESH, spec)


@pytest.mark.parametrize("ctx", [False, True], ids=["no-mesh", "set_mesh"])
def test_zero_size_and_fills_with_sharding(ctx):
    spec = P("x", None)
    with jax.set_mesh(MESH) if ctx else nullcontext():
        w = jinit.normal()(KEY, (8, 0), out_sharding=NamedSharding(MESH, spec))
        assert w.shape == (8, 0)
        z = jinit.constant(7)(KEY, (16, 8), jax.numpy.int32, out_sharding=NamedSharding(MESH, spec))
        assert z.dtype == jax.numpy.int32
        _check(z, np.full((16, 8), 7, np.int32), MESH, spec)


def test_named_sharding_under_jit_inside_set_mesh():
    init, spec = RANDOM["he_normal"], P(None, "x")
    with jax.set_mesh(MESH):
        ref = init(KEY, SHAPE)
        w = jax.jit(lambda k: init(k, SHAPE, out_sharding=NamedSharding(MESH, spec)))(KEY)
        _check(w, ref, MESH, spec)
