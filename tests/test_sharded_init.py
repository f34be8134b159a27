"""Sharded initialization (conftest forces 8 virtual CPU devices).

* Values are a function of (key, shape, dtype) only: bit-identical for 1, 2, 4
  and 8 devices, for row, column and 2-D shardings, eagerly and under jit, with
  both generators.
* Each device materializes only its shard: the compiled program's memory
  analysis shows per-device output = total / 8 and (almost) no temporaries, for
  single initializers and for ``jax.jit(model.init, out_shardings=...)`` of a
  Flax model.
* orthogonal honours ``out_sharding`` with identical values: the matrix needs
  all of the Gaussian draw, so every device computes all of it (temporaries of
  a few times the full matrix per device) and keeps its shard. Inside a user's
  ``jax.jit(..., out_shardings=...)`` XLA may partition the matrix products of
  ``method="householder"``, which changes float32 rounding only.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

import jinit
from jinit.structured import orthogonal

assert jax.device_count() >= 8, "conftest.py should force 8 CPU devices"

KEY = jax.random.key(2024)
SHAPE = (32, 48)
GENERATORS = ("jax", "philox")


def mesh_1d(n: int):
    return jax.make_mesh((n,), ("x",), devices=jax.devices()[:n])


MESH_2D = jax.make_mesh((2, 4), ("x", "y"))

# Every initializer on these; he_normal also on 1, 2 and 4 devices.
PLACEMENTS = [
    (mesh_1d(8), P("x", None)),
    (mesh_1d(8), P(None, "x")),
    (MESH_2D, P("x", "y")),
]
DEVICE_COUNTS = [
    (mesh_1d(1), P("x", None)),
    (mesh_1d(2), P("x", None)),
    (mesh_1d(4), P(None, "x")),
    (MESH_2D, P("y", None)),
]


def initializers(rng: str):
    return {
        "normal": jinit.normal(0.5, generator=rng),
        "uniform": jinit.uniform(-0.3, 0.7, generator=rng),
        "truncated_normal": jinit.truncated_normal(1.0, lower=-1.5, upper=2.5, generator=rng),
        "he_normal": jinit.he_normal(generator=rng),
    }


def _shard_slices(x: jax.Array, full: np.ndarray):
    for shard in x.addressable_shards:
        np.testing.assert_array_equal(np.asarray(shard.data), full[shard.index])


@pytest.mark.parametrize("rng", GENERATORS)
def test_values_do_not_depend_on_sharding_or_device_count(rng):
    for name, init in initializers(rng).items():
        ref = np.asarray(init(KEY, SHAPE))
        placements = PLACEMENTS + (DEVICE_COUNTS if name == "he_normal" else [])
        for mesh, spec in placements:
            sharding = NamedSharding(mesh, spec)
            x = init(KEY, SHAPE, out_sharding=sharding)
            assert x.sharding.is_equivalent_to(sharding, 2), (name, spec)
            np.testing.assert_array_equal(np.asarray(x), ref, err_msg=f"{name} {mesh.shape} {spec}")
            _shard_slices(x, ref)


@pytest.mark.parametrize("rng", GENERATORS)
def test_eager_jit_and_jit_with_out_shardings_agree(rng):
    sharding = NamedSharding(mesh_1d(8), P("x", None))
    for name in ("he_normal", "truncated_normal", "uniform"):
        init = initializers(rng)[name]
        ref = np.asarray(init(KEY, SHAPE))
        np.testing.assert_array_equal(np.asarray(jax.jit(lambda k: init(k, SHAPE))(KEY)), ref)
        y = jax.jit(lambda k: init(k, SHAPE), out_shardings=sharding)(KEY)
        np.testing.assert_array_equal(np.asarray(y), ref, err_msg=name)
        with jax.set_mesh(mesh_1d(8)):
            z = init(KEY, SHAPE, out_sharding=P("x", None))
        np.testing.assert_array_equal(np.asarray(z), ref, err_msg=name)


@pytest.mark.parametrize("rng", GENERATORS)
def test_conv_kernels_and_low_precision(rng):
    shape = (3, 3, 16, 32)
    for dtype in (jnp.float32, jnp.bfloat16):
        init = jinit.he_normal(generator=rng)
        ref = np.asarray(init(KEY, shape, dtype).astype(jnp.float32))
        for spec in (P(None, None, None, "x"), P(None, None, "x", None)):
            x = init(KEY, shape, dtype, out_sharding=NamedSharding(mesh_1d(8), spec))
            assert x.dtype == dtype
            np.testing.assert_array_equal(np.asarray(x.astype(jnp.float32)), ref)


def _per_device_bytes(compiled):
    ma = compiled.memory_analysis()
    return ma.output_size_in_bytes, ma.temp_size_in_bytes


@pytest.mark.parametrize("rng", GENERATORS)
def test_single_leaf_materializes_only_its_shard(rng):
    shape = (2048, 2048)
    total = 2048 * 2048 * 4
    sharding = NamedSharding(mesh_1d(8), P("x", None))
    lecun_truncated = jinit.variance_scaling(1.0, "fan_in", "truncated_normal", generator=rng)
    inits = {**initializers(rng), "lecun_truncated": lecun_truncated}
    for name, init in inits.items():
        compiled = jax.jit(lambda k: init(k, shape), out_shardings=sharding).lower(KEY).compile()
        out, temp = _per_device_bytes(compiled)
        assert out == total // 8, name
        assert temp <= 64 * 1024, (name, temp)


class WideMLP(nn.Module):
    """Three 2048x2048 layers (16 MiB each in float32), jinit initializers."""

    rng: str

    @nn.compact
    def __call__(self, x):
        x = nn.Dense(2048, kernel_init=jinit.he_normal(generator=self.rng), bias_init=jinit.zeros())(x)
        x = nn.relu(x)
        x = nn.Dense(2048, kernel_init=jinit.glorot_uniform(generator=self.rng), bias_init=jinit.zeros())(x)
        x = nn.tanh(x)
        kernel = jinit.variance_scaling(1.0, "fan_in", "truncated_normal", generator=self.rng)
        return nn.Dense(2048, kernel_init=kernel, bias_init=jinit.normal(0.01, generator=self.rng))(x)


@pytest.mark.parametrize("rng", GENERATORS)
def test_flax_model_init_is_sharded_per_device(rng):
    model = WideMLP(rng)
    x = jnp.ones((1, 2048), jnp.float32)
    mesh = mesh_1d(8)
    abstract = jax.eval_shape(model.init, KEY, x)
    shardings = jax.tree.map(
        lambda a: NamedSharding(mesh, P("x", None) if a.ndim == 2 else P()), abstract
    )
    total = sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(abstract))
    kernels = sum(a.size * a.dtype.itemsize for a in jax.tree.leaves(abstract) if a.ndim == 2)
    assert kernels > 0.99 * total

    init = jax.jit(model.init, out_shardings=shardings)
    out, temp = _per_device_bytes(init.lower(KEY, x).compile())
    # Per device: its 1/8 of every kernel plus the replicated biases; the
    # temporaries (the forward pass on one example) are small.
    assert out <= kernels / 8 + (total - kernels) + 1024
    assert out + temp <= 1.5 * total / 8 + (1 << 20), (out, temp, total)

    sharded = init(KEY, x)
    reference = jax.jit(model.init)(KEY, x)
    for a, b in zip(jax.tree.leaves(sharded), jax.tree.leaves(reference)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
        if a.ndim == 2:
            assert {s.data.shape for s in a.addressable_shards} == {(2048 // 8, 2048)}


@pytest.mark.parametrize("rng", GENERATORS)
def test_orthogonal_honours_out_sharding(rng):
    init = orthogonal(generator=rng)
    for shape in ((64, 32), (32, 64), (3, 3, 4, 8)):
        ref = np.asarray(init(KEY, shape))
        spec = P(*([None] * (len(shape) - 1) + ["x"]))
        x = init(KEY, shape, out_sharding=NamedSharding(mesh_1d(8), spec))
        np.testing.assert_array_equal(np.asarray(x), ref)
        _shard_slices(x, ref)


@pytest.mark.parametrize("method,most", [("householder", 6), ("qr", 4)])
def test_orthogonal_memory_behaviour(method, most):
    """Documents the cost: per-device output is the shard, but each device
    computes from the whole Gaussian matrix (temporaries of the order of the
    full matrix: the draw, the reflectors and Q, or LAPACK's QR workspace)."""
    shape = (256, 256)
    total = 256 * 256 * 4
    sharding = NamedSharding(mesh_1d(8), P("x", None))
    compiled = jax.jit(lambda k: orthogonal(method=method)(k, shape), out_shardings=sharding).lower(KEY).compile()
    out, temp = _per_device_bytes(compiled)
    assert out == total // 8
    assert total <= temp <= most * total


@pytest.mark.parametrize("method", ["householder", "qr"])
def test_orthogonal_inside_sharded_jit(method):
    """In a jitted function with sharded outputs (a sharded ``model.init``) the
    values equal the unsharded ones: bit for bit with "qr" (LAPACK runs whole),
    to float32 rounding with "householder" (XLA may split its matrix products)."""
    init = orthogonal(method=method)
    for shape, spec in (((256, 128), P("x", None)), ((128, 256), P(None, "x"))):
        ref = np.asarray(init(KEY, shape))
        out = jax.jit(lambda k: init(k, shape), out_shardings=NamedSharding(mesh_1d(8), spec))(KEY)
        if method == "qr":
            np.testing.assert_array_equal(np.asarray(out), ref)
        else:
            np.testing.assert_allclose(np.asarray(out), ref, rtol=0, atol=8 * np.finfo(np.float32).eps)