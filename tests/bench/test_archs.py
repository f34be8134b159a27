"""The benchmark's architectures: shapes, ``check``, scanned stacks, and what each
whole-model scheme sets, slice by stacked slice."""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit
from bench.archs import ARCHS, NetSpec, get_arch
from bench.archs.cnn import image_shape
from bench.archs.transformer import tokens_shape
from tests.stats import assert_mean, assert_var

DEPTH, WIDTH, N_IN, N_OUT = 3, 32, 64, 10  # digits: 8 x 8 images, 10 classes

# Schemes that do not apply to an architecture (Scheme.requires / excludes); every
# other registered scheme must initialize it.
NOT_APPLICABLE = {
    "mlp": {"fixup", "rezero", "skipinit", "gpt2", "zero", "delta_orthogonal", "dirac"},
    "resmlp": {"delta_orthogonal", "dirac"},
    "resmlp_ln": {"fixup", "delta_orthogonal", "dirac"},
    "cnn": {"fixup", "rezero", "skipinit", "gpt2", "zero"},
    "transformer": {"fixup", "rezero", "skipinit", "delta_orthogonal", "dirac"},
    "transformer_causal": {"fixup", "rezero", "skipinit", "delta_orthogonal", "dirac"},
}


def spec(arch: str, activation: str = "relu", **kw) -> NetSpec:
    return NetSpec(arch, kw.pop("depth", DEPTH), kw.pop("width", WIDTH), activation, kw.pop("n_in", N_IN),
                   kw.pop("n_out", N_OUT), **kw)


# The (scheme, activation) pairs each test below initializes concretely; the first
# is the one whose outputs and stats are checked. One jitted program per
# architecture draws them all and runs the forward passes (one compile instead of
# one per operation).
CONCRETE = {
    "mlp": [("he_normal", "relu")],
    "resmlp": [("he_normal", "relu"), ("fixup", "relu"), ("rezero", "relu"), ("skipinit", "relu"), ("zero", "relu"),
               ("gpt2", "relu")],
    "resmlp_ln": [("he_normal", "relu")],
    "cnn": [("he_normal", "relu"), ("delta_orthogonal", "tanh"), ("dirac", "relu")],
    "transformer": [("gpt2", "relu")],
    "transformer_causal": [("he_normal", "relu")],
}


def digits_batch(n: int = 8) -> np.ndarray:
    return np.random.default_rng(1).uniform(size=(n, N_IN)).astype(np.float32)


@functools.cache
def _built(arch: str) -> tuple[dict, tuple]:
    """``({(scheme, activation): params}, forward)``, ``forward``: the outputs, the collected
    outputs and stats, and the grad norms of a gradient of all ones (per layer, readout)."""
    a, s = get_arch(arch), spec(arch)
    rules = [jinit.get_scheme(name).rules(a.structure(spec(arch, act))) for name, act in CONCRETE[arch]]

    # Compiled without backend optimizations: these programs run once, compiling dominates.
    @functools.partial(jax.jit, compiler_options={"xla_backend_optimization_level": 0})
    def build(key, x):
        drawn = [jinit.init(a.module(s), r, key, x[:1])["params"] for r in rules]
        collected, stats = a.module(s, collect=True).apply({"params": drawn[0]}, x)
        ones = jax.tree.map(jnp.ones_like, drawn[0])  # grad_norms must pick each layer's kernels
        norms = (a.grad_norms(s, ones), a.readout_grad_norm(ones))
        return drawn, (a.module(s).apply({"params": drawn[0]}, x), collected, stats, *norms)

    drawn, forward = build(jax.random.key(0), digits_batch())
    return dict(zip(CONCRETE[arch], drawn)), forward


def params(arch: str, scheme: str, activation: str = "relu") -> dict:
    """Parameters of ``arch`` (depth 3, width 32, digits inputs) initialized by ``scheme``
    with the rules for ``activation`` (the module itself is the relu one: same parameters)."""
    return _built(arch)[0][scheme, activation]


def test_every_architecture_is_registered():
    assert set(ARCHS) == set(NOT_APPLICABLE)
    assert all(a.name == name and a.summary for name, a in ARCHS.items())


# Kernel entries per layer (one row of ``stats``) at depth 3, width n = 32: what
# ``grad_norms`` sums over, so a gradient of all ones has norm sqrt(entries).
_KERNEL_ENTRIES = {
    "mlp": [N_IN * WIDTH, WIDTH**2, WIDTH**2],
    "resmlp": [2 * WIDTH**2] * DEPTH,
    "resmlp_ln": [2 * WIDTH**2] * DEPTH,
    "cnn": [9 * WIDTH, 9 * WIDTH**2, 9 * WIDTH**2],
    "transformer": [8 * WIDTH**2] * DEPTH,  # q, k, v, out: n x n; fc1, fc2: n x 2n
    "transformer_causal": [8 * WIDTH**2] * DEPTH,
}


@pytest.mark.parametrize("arch", list(NOT_APPLICABLE))
def test_outputs_stats_and_grad_norms(arch):
    out, collected, stats, norms, readout = _built(arch)[1]
    assert out.shape == (8, N_OUT) and stats.shape == (DEPTH, 3) and norms.shape == (DEPTH,)
    np.testing.assert_allclose(collected, out, rtol=1e-5, atol=1e-6)
    assert np.isfinite(out).all() and np.isfinite(stats[:, :2]).all() and (np.asarray(stats[:, 0]) > 0).all()
    assert np.isnan(stats[:, 2]).all()  # relu: no saturation statistic
    np.testing.assert_allclose(norms, np.sqrt(_KERNEL_ENTRIES[arch]), rtol=1e-6)
    np.testing.assert_allclose(readout, np.sqrt(WIDTH * N_OUT), rtol=1e-6)


@pytest.mark.parametrize("arch", list(NOT_APPLICABLE))
def test_program_size_does_not_grow_with_depth(arch):
    a = get_arch(arch)

    def n_eqns(depth):
        s = spec(arch, depth=depth)
        x = jax.ShapeDtypeStruct((2, N_IN), jnp.float32)
        p = jax.eval_shape(lambda x: a.module(s).init(jax.random.key(0), x), x)
        return len(jax.make_jaxpr(lambda p, x: a.module(s).apply(p, x))(p, x).eqns)

    assert n_eqns(2) == n_eqns(7)


def test_check_reasons():
    for arch in ("cnn", "transformer", "transformer_causal"):
        for n_in in (10, 32, 48 * 3 + 1):
            reason = get_arch(arch).check(spec(arch, n_in=n_in))
            assert isinstance(reason, str) and f"n_in = {n_in}" in reason
        assert get_arch(arch).check(spec(arch)) is None
        assert get_arch(arch).check(spec(arch, n_in=3072)) is None
    for arch in ("mlp", "resmlp", "resmlp_ln"):
        assert get_arch(arch).check(spec(arch, n_in=10)) is None
    assert "attention heads" in get_arch("transformer").check(spec("transformer", width=50))  # 3 heads
    assert image_shape(64) == (8, 1) and image_shape(3072) == (32, 3) and image_shape(48) == (4, 3)
    assert tokens_shape(64) == (8, 8) and tokens_shape(3072) == (32, 96) and tokens_shape(32) is None


@pytest.mark.parametrize("arch", ["cnn", "transformer", "transformer_causal"])
def test_cifar_shaped_inputs(arch):
    s, a = spec(arch, n_in=3072), get_arch(arch)
    x = jax.ShapeDtypeStruct((2, 3072), jnp.float32)
    p = jax.eval_shape(lambda x: a.module(s).init(jax.random.key(0), x), x)
    out, stats = jax.eval_shape(lambda p, x: a.module(s, collect=True).apply(p, x), p, x)
    assert out.shape == (2, N_OUT) and stats.shape == (DEPTH, 3)
    if arch == "cnn":
        assert p["params"]["input"]["kernel"].shape == (3, 3, 3, WIDTH)
    else:
        assert p["params"]["embed"]["kernel"].shape == (96, WIDTH) and p["params"]["pos"].shape == (32, WIDTH)


@pytest.mark.parametrize("arch", list(NOT_APPLICABLE))
def test_every_scheme_initializes_or_does_not_apply(arch):
    """Rules and jinit.init (traced abstractly: rule matching, layouts, slice counts and
    the initializers' shape checks all run) for every registered scheme."""
    s, a = spec(arch), get_arch(arch)
    x = np.zeros((1, N_IN), np.float32)
    expected = jax.tree.map(lambda t: t.shape, jax.eval_shape(lambda: a.module(s).init(jax.random.key(0), x)))
    not_applicable = set()
    for name in jinit.scheme_names():
        try:
            rules = jinit.get_scheme(name).rules(a.structure(s))
        except jinit.SchemeNotApplicable:
            not_applicable.add(name)
            continue
        got = jax.eval_shape(lambda k, rules=rules: jinit.init(a.module(s), rules, k, x), jax.random.key(0))
        assert jax.tree.map(lambda t: t.shape, got) == expected, name
    assert not_applicable == NOT_APPLICABLE[arch]


def test_he_normal_per_stacked_slice():
    conv = params("cnn", "he_normal")
    assert_var(conv["input"]["kernel"], 2.0 / 9)
    stack = conv["hidden"]["conv"]["kernel"]
    assert stack.shape == (DEPTH - 1, 3, 3, WIDTH, WIDTH)
    for w in stack:  # fan_in = 3 * 3 * width, not (depth - 1) * 9 * width
        assert_var(w, 2.0 / (9 * WIDTH))
        assert_mean(w, 0.0)
    assert not np.allclose(stack[0], stack[1])
    res = params("resmlp", "he_normal")
    for name in ("fc1", "fc2"):
        for w in res["blocks"][name]["kernel"]:
            assert_var(w, 2.0 / WIDTH)
    assert not np.allclose(res["blocks"]["fc1"]["kernel"][0], res["blocks"]["fc1"]["kernel"][1])
    np.testing.assert_array_equal(res["blocks"]["gate"], np.ones(DEPTH))  # the module's default gate


def test_fixup_on_resmlp():
    p = params("resmlp", "fixup")
    blocks = p["blocks"]
    np.testing.assert_array_equal(blocks["fc2"]["kernel"], 0.0)
    np.testing.assert_array_equal(p["output"]["kernel"], 0.0)
    np.testing.assert_array_equal(p["output"]["bias"], 0.0)
    np.testing.assert_array_equal(blocks["gate"], np.ones(DEPTH))
    for w in blocks["fc1"]["kernel"]:  # m = 2 layers per branch: std x L^(-1/(2m-2)) = L^(-1/2)
        assert_var(w, 2.0 / WIDTH / DEPTH)
    assert_var(p["input"]["kernel"], 2.0 / N_IN)
    for b in (blocks["fc1"]["bias"], blocks["fc2"]["bias"], p["input"]["bias"]):
        np.testing.assert_array_equal(b, 0.0)


def test_fixup_does_not_apply_to_normalized_nets():
    with pytest.raises(jinit.SchemeNotApplicable, match="norm"):
        jinit.get_scheme("fixup").rules(get_arch("resmlp_ln").structure(spec("resmlp_ln")))


@jax.jit
def _resmlp_and_skip_path(p, x):
    """The resmlp's outputs, and the readout applied to the stem alone."""
    out = get_arch("resmlp").module(spec("resmlp")).apply({"params": p}, x)
    stem = nn.relu(nn.Dense(WIDTH).apply({"params": p["input"]}, x))
    return out, nn.Dense(N_OUT).apply({"params": p["output"]}, stem)


@pytest.mark.parametrize("scheme", ["rezero", "skipinit"])
def test_zero_gates_make_the_blocks_identities(scheme):
    p = params("resmlp", scheme)
    np.testing.assert_array_equal(p["blocks"]["gate"], np.zeros(DEPTH))
    assert (np.abs(p["blocks"]["fc2"]["kernel"]).max(axis=(1, 2)) > 0).all()  # the branches themselves are not 0
    out, skip_path = _resmlp_and_skip_path(p, digits_batch())
    np.testing.assert_array_equal(out, skip_path)


def test_gpt2_on_transformer():
    p = params("transformer", "gpt2")
    blocks = p["blocks"]
    residual = 0.02 / np.sqrt(2 * DEPTH)
    for w in (*blocks["attn"]["out"]["kernel"], *blocks["mlp"]["fc2"]["kernel"]):
        assert_var(w, residual**2)
    for name in ("query", "key", "value"):
        for w in blocks["attn"][name]["kernel"]:
            assert_var(w, 0.02**2)
    for w in blocks["mlp"]["fc1"]["kernel"]:
        assert_var(w, 0.02**2)
    for w in (p["embed"]["kernel"], p["output"]["kernel"], p["pos"]):
        assert_var(w, 0.02**2)
    for leaf in (blocks["attn"]["out"]["bias"], blocks["mlp"]["fc1"]["bias"], p["output"]["bias"]):
        np.testing.assert_array_equal(leaf, 0.0)
    np.testing.assert_array_equal(blocks["ln1"]["scale"], 1.0)


def test_gpt2_on_resmlp_scales_by_the_number_of_residual_writes():
    """One residual write per block: N = depth, std 0.02 / sqrt(depth) (GPT-2's 1/sqrt(N))."""
    p = params("resmlp", "gpt2")
    for w in p["blocks"]["fc2"]["kernel"]:
        assert_var(w, 0.02**2 / DEPTH)
    for w in p["blocks"]["fc1"]["kernel"]:
        assert_var(w, 0.02**2)
    np.testing.assert_array_equal(p["blocks"]["gate"], 1.0)


def test_zero_on_resmlp():
    p = params("resmlp", "zero")
    np.testing.assert_array_equal(p["blocks"]["fc2"]["kernel"], 0.0)
    for w in p["blocks"]["fc1"]["kernel"]:
        np.testing.assert_array_equal(w, np.eye(WIDTH))
    np.testing.assert_array_equal(p["input"]["kernel"], np.eye(N_IN, WIDTH))  # shrinking: partial identity
    np.testing.assert_array_equal(p["output"]["kernel"], np.eye(WIDTH, N_OUT))


def _off_centre(kernel: np.ndarray) -> np.ndarray:
    mask = np.ones(kernel.shape[:2], bool)
    mask[1, 1] = False
    return kernel[mask]


def test_delta_orthogonal_on_cnn():
    p = params("cnn", "delta_orthogonal", "tanh")
    g = jinit.gain_for(jinit.get_activation("tanh"))
    for w in p["hidden"]["conv"]["kernel"]:
        w = np.asarray(w, np.float64)
        np.testing.assert_array_equal(_off_centre(w), 0.0)
        np.testing.assert_allclose(w[1, 1].T @ w[1, 1], g**2 * np.eye(WIDTH), atol=1e-5)
    stem = np.asarray(p["input"]["kernel"], np.float64)  # (3, 3, 1, width): one orthonormal row, times g
    np.testing.assert_array_equal(_off_centre(stem), 0.0)
    np.testing.assert_allclose(stem[1, 1] @ stem[1, 1].T, [[g**2]], rtol=1e-5)
    readout = np.asarray(p["output"]["kernel"], np.float64)  # orthogonal, gain 1 (linear)
    np.testing.assert_allclose(readout.T @ readout, np.eye(N_OUT), atol=1e-5)


def test_dirac_on_cnn():
    p = params("cnn", "dirac")
    for w in p["hidden"]["conv"]["kernel"]:
        np.testing.assert_array_equal(_off_centre(np.asarray(w)), 0.0)
        np.testing.assert_array_equal(w[1, 1], np.eye(WIDTH))
    stem = np.asarray(p["input"]["kernel"])
    np.testing.assert_array_equal(_off_centre(stem), 0.0)
    np.testing.assert_array_equal(stem[1, 1], np.eye(1, WIDTH))
    assert_var(p["output"]["kernel"], 1.0 / WIDTH)


def test_loop_friendly_conv_matches_lax_values_and_gradients():
    from jax import lax

    from bench.archs.cnn import loop_friendly_conv

    k1, k2, k3 = jax.random.split(jax.random.key(5), 3)
    x = jax.random.normal(k1, (4, 8, 8, 3))
    w = jax.random.normal(k2, (3, 3, 3, 5))
    dn = lax.conv_dimension_numbers(x.shape, w.shape, ("NHWC", "HWIO", "NHWC"))
    for padding, strides in (("SAME", (1, 1)), ([(1, 1), (1, 1)], (1, 1)), ("SAME", (2, 2)), ("VALID", (1, 1))):
        def loss(conv, x, w):
            y = conv(x, w, strides, padding, dimension_numbers=dn)
            return jnp.sum(jnp.tanh(y) * jax.random.normal(k3, y.shape))

        want = jax.value_and_grad(functools.partial(loss, lax.conv_general_dilated), argnums=(0, 1))(x, w)
        got = jax.value_and_grad(functools.partial(loss, loop_friendly_conv), argnums=(0, 1))(x, w)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # Inside the benchmark's CNN (nn.Conv(conv_general_dilated=...)): the same parameters as plain nn.Conv.
    a, s = get_arch("cnn"), spec("cnn")
    p = a.module(s).init(jax.random.key(0), digits_batch(2))["params"]
    assert p["hidden"]["conv"]["kernel"].shape == (DEPTH - 1, 3, 3, WIDTH, WIDTH) and p["input"]["kernel"].shape[:3] == (3, 3, 1)
