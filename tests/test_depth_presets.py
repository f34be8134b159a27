"""The ``isometric`` scheme (orthogonal weights on the tanh critical line at q* = 0.01) and the
``depth1000`` / ``depth-limits`` benchmark presets."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import bench
import jinit
from jinit import meanfield
from jinit.registry import ISOMETRIC_Q_STAR

KEY = jax.random.key(0)
# The tanh critical point with fixed point q* = 0.01, as the scheme's formula states it.
TANH_SIGMA_W, TANH_SIGMA_B = 1.00981, 0.00112


def test_isometric_tanh_point_is_critical_with_the_claimed_fixed_point():
    line = meanfield.critical_line("tanh", [ISOMETRIC_Q_STAR])
    sigma_w, sigma_b = float(line.sigma_w[0]), float(line.sigma_b[0])
    assert ISOMETRIC_Q_STAR == 0.01
    assert sigma_w == pytest.approx(TANH_SIGMA_W, abs=5e-6) and sigma_b == pytest.approx(TANH_SIGMA_B, abs=5e-6)
    mf = meanfield.analyze(sigma_w, sigma_b, "tanh")
    assert mf.chi1 == pytest.approx(1.0, abs=1e-9)
    assert mf.q_star == pytest.approx(ISOMETRIC_Q_STAR, rel=1e-9)
    assert meanfield.critical_sigma_w("tanh", sigma_b) == pytest.approx(sigma_w, rel=1e-9)
    # q* is stable (V'(q*) < 1): the variance relaxes to it over xi_q ~ 51 layers.
    assert 40 < mf.xi_q < 60
    # Jacobian spectrum spread with orthogonal weights: L (sigma_w^4 E[tanh'^4] - 1) ~ 0.7 at L = 1000.
    z, w = np.polynomial.hermite_e.hermegauss(80)
    d2 = (1 - np.tanh(math.sqrt(ISOMETRIC_Q_STAR) * z) ** 2) ** 2
    assert sigma_w**2 * np.sum(w * d2) / np.sum(w) == pytest.approx(1.0, abs=1e-9)
    assert 1000 * (sigma_w**4 * np.sum(w * d2**2) / np.sum(w) - 1) == pytest.approx(0.73, abs=0.01)


def test_isometric_kernel_and_bias_have_the_intended_scale():
    scheme = jinit.get_scheme("isometric")
    assert scheme.family == "meanfield"
    w = scheme.kernel_init("tanh")(KEY, (64, 64))
    np.testing.assert_allclose(w.T @ w, TANH_SIGMA_W**2 * np.eye(64), atol=1e-4)
    b = scheme.bias_init("tanh")(KEY, (200_000,))
    assert float(jnp.abs(b.mean())) < 1e-5 and float(b.std()) == pytest.approx(TANH_SIGMA_B, rel=0.01)
    # The readout (kernel("linear")): sigma_w = 1, sigma_b = 0.
    r = scheme.kernel_init("linear")(KEY, (64, 10))
    np.testing.assert_allclose(r.T @ r, np.eye(10), atol=1e-5)
    assert float(jnp.abs(scheme.bias_init("linear")(KEY, (10,))).max()) == 0.0
    # Relu's critical line is the single point (sqrt 2, 0): He-orthogonal, zero biases.
    v = scheme.kernel_init("relu")(KEY, (64, 64))
    np.testing.assert_allclose(v.T @ v, 2 * np.eye(64), atol=1e-4)
    assert float(jnp.abs(scheme.bias_init("relu")(KEY, (8,))).max()) == 0.0
    with pytest.raises(ValueError, match="isometric: the critical line of 'sigmoid' has no point"):
        scheme.kernel_init("sigmoid")


def test_depth_presets_build_valid_configs():
    deep = bench.BenchConfig.from_preset("depth1000")
    assert deep.schemes == ("isometric",) and deep.depths == (1000,) and deep.activations == ("tanh",)
    assert deep.archs == ("mlp",) and deep.optimizer == "adam" and len(deep.lrs) == 3
    limits = bench.BenchConfig.from_preset("depth-limits")
    assert {"he_normal", "glorot_normal", "lecun_normal", "critical", "isometric"} <= set(limits.schemes)
    assert limits.depths == (10, 30, 100, 300, 1000) and limits.optimizer == "adam"


def test_depth1000_runs_end_to_end_when_shrunk(tmp_path):
    config = bench.BenchConfig.from_preset("depth1000", depths=(4,), lrs=(3e-5, 1e-4), steps=10, seeds=1,
                                           eval_every=5)
    results = bench.run(config, out_dir=str(tmp_path), plots=False)
    assert len(results.runs) == len(config.lrs) and not results.skipped
    assert all(r["scheme"] == "isometric" and not r["diverged"] and math.isfinite(r["final_val_loss"])
               for r in results.runs)
    assert [s["scheme"] for s in results.selection] == ["isometric"]
    assert (tmp_path / "summary.md").exists()
