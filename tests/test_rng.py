"""Generator registry and the "jax" generator's fused threefry lowering."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit
from jinit import rng

JAX = rng.resolve("test", "jax")
PHILOX = rng.resolve("test", "philox")

# Random123 known answers for threefry2x32-20 (kat_vectors, as in
# DEShawResearch/Random123-Boost libs/random/test/test_threefry.cpp, commit 916db91):
# counter[2], key[2] -> output[2].
THREEFRY_KAT = [
    ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x243F6A88, 0x85A308D3), (0x13198A2E, 0x03707344), (0xC4923A9C, 0x483DF7A0)),
]


@pytest.fixture
def restore_default():
    before = jinit.get_default_rng()
    yield
    jinit.set_default_rng(before)


def test_registry(restore_default):
    assert jinit.generators() == ("jax", "philox")
    assert jinit.get_default_rng() == "jax"
    jinit.set_default_rng("philox")
    assert jinit.get_default_rng() == "philox"
    # Resolved at construction: an initializer built now keeps philox.
    init = jinit.normal()
    jinit.set_default_rng("jax")
    key = jax.random.key(0)
    np.testing.assert_array_equal(
        np.asarray(init(key, (8,))), np.asarray(jinit.normal(generator="philox")(key, (8,)))
    )
    with pytest.raises(ValueError, match="valid choices are 'jax', 'philox'"):
        jinit.set_default_rng("mt19937")
    with pytest.raises(ValueError, match="he_normal: invalid generator='numpy'"):
        jinit.he_normal(generator="numpy")
    assert all(rng.resolve("x", name).description for name in jinit.generators())


@pytest.mark.parametrize("ctr, key, want", THREEFRY_KAT)
def test_threefry_known_answers(ctr, key, want):
    got = jax.jit(lambda: rng.threefry2x32(key, ctr))()
    assert tuple(int(w) for w in got) == want


@pytest.mark.parametrize(
    "shape, width",
    [((), 32), ((1,), 32), ((5,), 32), ((7, 13), 32), ((3, 1, 5), 32), ((7, 13), 8), ((7, 13), 16)],
)
def test_fused_bits_equal_jax_random_bits(shape, width):
    key = jax.random.key(11)
    dtype = {8: jnp.uint8, 16: jnp.uint16, 32: jnp.uint32}[width]
    fast = jax.jit(lambda k: jax.random.bits(rng.fused_threefry_key(k), shape, dtype))(key)
    np.testing.assert_array_equal(np.asarray(fast), np.asarray(jax.random.bits(key, shape, dtype)))


def test_fused_64_bit_values_equal_jax_random():
    with jax.enable_x64(True):
        key = jax.random.key(12)
        for fn in (
            lambda k: jax.random.bits(k, (9, 4), jnp.uint64),
            lambda k: jax.random.uniform(k, (9, 4), jnp.float64),
            lambda k: jax.random.normal(k, (9, 4), jnp.float64),
        ):
            fast = jax.jit(lambda k: fn(rng.fused_threefry_key(k)))(key)
            np.testing.assert_array_equal(np.asarray(fast), np.asarray(fn(key)))


def test_fused_bits_of_huge_arrays():
    """2**33 elements: the counter's high word is used as JAX does (only a corner
    is computed; JAX's own lowering would materialize 32 GiB here)."""
    key = jax.random.key(13)
    shape = (2**17, 2**16)
    got = jax.jit(lambda k: jax.random.bits(rng.fused_threefry_key(k), shape)[-1, -3:])(key)
    data = [int(x) for x in np.asarray(jax.random.key_data(key))]
    for j in range(3):
        i = 2**33 - 3 + j
        b1, b2 = rng.threefry2x32(data, (i >> 32, i & 0xFFFFFFFF))
        assert int(got[j]) == int(b1) ^ int(b2)


@pytest.mark.parametrize("shape, dtype", [((33, 65), jnp.float32), ((3, 5, 2, 1), jnp.bfloat16)])
def test_jax_generator_equals_jax_random(shape, dtype):
    key = jax.random.key(3)
    pairs = [
        (lambda k: JAX.normal(k, shape, dtype), lambda k: jax.random.normal(k, shape, dtype)),
        (lambda k: JAX.uniform(k, shape, dtype), lambda k: jax.random.uniform(k, shape, dtype)),
        (
            lambda k: JAX.truncated_normal(k, -0.5, 3.0, shape, dtype),
            lambda k: jax.random.truncated_normal(k, -0.5, 3.0, shape, dtype),
        ),
    ]
    for ours, theirs in pairs:
        np.testing.assert_array_equal(
            np.asarray(jax.jit(ours)(key)), np.asarray(jax.jit(theirs)(key))
        )


def test_raw_keys_and_other_implementations():
    raw = jax.random.PRNGKey(4)
    assert rng.fused_threefry_key(raw).dtype != raw.dtype  # rewrapped as a typed key
    np.testing.assert_array_equal(
        np.asarray(jax.jit(lambda k: JAX.normal(k, (6, 5), jnp.float32))(raw)),
        np.asarray(jax.random.normal(raw, (6, 5))),
    )
    for impl in ("rbg", "unsafe_rbg"):
        key = jax.random.key(4, impl=impl)
        assert rng.fused_threefry_key(key) is key
        np.testing.assert_array_equal(
            np.asarray(jax.jit(lambda k: JAX.normal(k, (6, 5), jnp.float32))(key)),
            np.asarray(jax.random.normal(key, (6, 5))),
        )


def test_without_partitionable_threefry_jax_random_is_used_unchanged():
    key = jax.random.key(5)
    with jax.threefry_partitionable(False):
        assert rng.fused_threefry_key(key) is key
        ours = jax.jit(lambda k: JAX.normal(k, (40, 3), jnp.float32))(key)
        theirs = jax.random.normal(key, (40, 3))
        init = jinit.normal()(key, (40, 3))
    np.testing.assert_array_equal(np.asarray(ours), np.asarray(theirs))
    np.testing.assert_array_equal(np.asarray(init), np.asarray(theirs))
    # and the partitionable values differ (the setting is honoured, not cached)
    assert not np.array_equal(np.asarray(jinit.normal()(key, (40, 3))), np.asarray(theirs))


def test_initializers_equal_jax_nn_initializers():
    key, shape = jax.random.key(6), (48, 80)
    jnn = jax.nn.initializers
    pairs = [
        (jinit.variance_scaling(2.0, "fan_in", "normal"), jnn.variance_scaling(2.0, "fan_in", "normal")),
        (jinit.variance_scaling(1.0, "fan_avg", "uniform"), jnn.glorot_uniform()),
        (jinit.variance_scaling(2.0, "fan_in", "truncated_normal"), jnn.he_normal()),
        (jinit.normal(0.02), jnn.normal(0.02)),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(
            np.asarray(ours(key, shape)), np.asarray(theirs(key, shape)), rtol=2e-7, atol=0
        )


def test_philox_and_jax_differ_but_agree_in_distribution():
    key, shape = jax.random.key(7), (256, 256)
    a = jinit.he_normal(generator="jax")(key, shape)
    b = jinit.he_normal(generator="philox")(key, shape)
    assert not bool((a == b).any())
    assert float(a.std()) == pytest.approx(float(b.std()), rel=0.02)


def test_fused_lowering_is_one_loop_without_while():
    """The point of the fused lowering: no while loop, one fusion writing the output."""
    key = jax.random.key(0)
    hlo = (
        jax.jit(lambda k: JAX.normal(k, (64, 64), jnp.float32)).lower(key).compile().as_text()
    )
    assert " while(" not in hlo
    entry = hlo[hlo.index("ENTRY") :]
    assert entry.count(" fusion(") == 1


def test_deprecated_aliases_warn_and_give_identical_values():
    """rng= (now generator=) and gpt2_rules' std= (now stddev=) still work for one
    release: a DeprecationWarning naming the new argument, the same values; both at once
    is a TypeError."""
    key, shape = jax.random.key(0), (16, 8)
    pairs = [
        (jinit.normal, (0.5,)), (jinit.he_normal, ()), (jinit.variance_scaling, (1.0, "fan_in", "uniform")),
        (jinit.orthogonal, ()), (jinit.sparse, (3,)), (jinit.meanfield.critical_normal, ("tanh",)),
        (jinit.meanfield.critical_bias, (0.1,)),
    ]
    for factory, args in pairs:
        with pytest.warns(DeprecationWarning, match=f"{factory.__name__}: rng= is deprecated.*pass generator="):
            old = factory(*args, rng="philox")
        new = factory(*args, generator="philox")
        np.testing.assert_array_equal(old(key, shape), new(key, shape))
        with pytest.raises(TypeError, match="got both generator= and its deprecated alias rng="):
            factory(*args, rng="philox", generator="philox")
    with pytest.warns(DeprecationWarning, match="gpt2_rules: std= is deprecated.*pass stddev="):
        old_rules = jinit.gpt2_rules(4, std=0.05, generator="philox")
    with pytest.warns(DeprecationWarning, match="gpt2_rules: rng= is deprecated"):
        old_rng = jinit.gpt2_rules(4, stddev=0.05, rng="philox")
    with pytest.warns(DeprecationWarning, match="fixup_rules: rng= is deprecated"):
        old_fixup = jinit.fixup_rules(4, ["*a", "*b"], rng="philox")
    new_rules = jinit.gpt2_rules(4, stddev=0.05, generator="philox")
    new_fixup = jinit.fixup_rules(4, ["*a", "*b"], generator="philox")
    for olds, news in ((old_rules, new_rules), (old_rng, new_rules), (old_fixup, new_fixup)):
        for a, b in zip(olds, news, strict=True):
            assert a.pattern == b.pattern
            np.testing.assert_array_equal(a.init(key, shape), b.init(key, shape))
    with pytest.raises(TypeError, match="gpt2_rules: got both stddev= and its deprecated alias std="):
        jinit.gpt2_rules(4, std=0.05, stddev=0.05)
