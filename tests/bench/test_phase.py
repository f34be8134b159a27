"""Phase diagrams of the benchmark (bench.phase), parametric schemes in the config and CLI, the
``trainability`` and ``deep-cnn`` presets, and parametric schemes on the benchmark's CNN."""

from __future__ import annotations

import math

import jax
import numpy as np
import pytest

import bench
import jinit
from bench import phase
from bench.archs import NetSpec, get_arch
from bench.cli import build_parser, resolve_config
from bench.config import BenchConfig, ConfigError
from tests.stats import assert_var

MF = "meanfield(sigma_w2={},sigma_b2=0.05)"


def _run(s2: float, depth: int, lr: float, loss: float | None, acc: float = 0.9, seed: int = 0) -> dict:
    failed = loss is None
    return {"arch": "mlp", "activation": "tanh", "width": 64, "parametrization": "standard", "scheme": MF.format(s2),
            "depth": depth, "lr": lr, "seed": seed, "final_train_loss": math.inf if failed else loss,
            "final_train_accuracy": 0.1 if failed else acc, "final_val_loss": math.inf if failed else loss,
            "diverged": failed}


def test_config_and_cli_take_parametric_schemes_in_canonical_spelling():
    c = BenchConfig(schemes=("meanfield(sigma_b2=0.05, sigma_w2=1.50)", "he_normal", "meanfield(sigma_w2=1.5,sigma_b2=5e-2)"))
    assert c.schemes == ("meanfield(sigma_w2=1.5,sigma_b2=0.05)", "he_normal")
    with pytest.raises(ConfigError, match=r"^schemes: meanfield: invalid weights='haar'"):
        BenchConfig(schemes=("meanfield(sigma_w2=1,weights=haar)",))
    with pytest.raises(ConfigError, match=r"^schemes: unknown scheme 'kaiming'"):
        BenchConfig(schemes=("kaiming",))
    parser = build_parser()
    args = parser.parse_args(["--schemes", "he_normal,meanfield(sigma_w2=2,sigma_b2=0.05),critical(q_star=0.01)"])
    assert resolve_config(args, parser)[0].schemes == ("he_normal", MF.format(2), "critical(q_star=0.01)")
    args = parser.parse_args(["--schemes", "meanfield(sigma_w2=1|2,sigma_b2=0.05),he_normal"])
    assert resolve_config(args, parser)[0].schemes == (MF.format(1), MF.format(2), "he_normal")


def test_diagram_cells_take_the_best_lr_by_training_loss():
    runs = [_run(1.0, 10, 1e-3, 0.5, 0.8), _run(1.0, 10, 1e-2, 0.2, 0.95),  # best: 1e-2
            _run(1.0, 40, 1e-3, 2.3, 0.1), _run(1.0, 40, 1e-2, None),  # a diverged lr is never chosen
            _run(2.0, 10, 1e-3, 0.1, 0.99), _run(2.0, 10, 1e-2, None),
            _run(2.0, 40, 1e-3, None), _run(2.0, 40, 1e-2, None),  # every lr failed
            {**_run(1.0, 10, 1e-2, 0.2), "scheme": "he_normal"}]  # not parametric: not in a diagram
    [d] = phase.diagrams({"runs": runs})
    assert (d["family"], d["argument"], d["values"], d["depths"]) == ("meanfield", "sigma_w2", [1.0, 2.0], [10, 40])
    assert d["fixed"] == {"sigma_b2": 0.05, "weights": "gaussian"}
    c = d["cells"]
    assert c[(1.0, 10)]["lr"] == 1e-2 and c[(1.0, 10)]["train_accuracy"] == 0.95
    assert c[(1.0, 40)]["lr"] == 1e-3 and not c[(1.0, 40)]["failed"]
    assert c[(2.0, 40)]["failed"] and c[(2.0, 40)]["train_accuracy"] is None
    assert phase._trained_depth(d, 1.0) == 10 and phase._trained_depth(d, 2.0) == 10
    table = "\n".join(phase.phase_markdown({"runs": runs}))
    assert "| 40 | 0.10 | fail |" in table and "| trains to | 10 | 10 |" in table


def test_no_diagram_without_a_single_swept_argument_and_two_depths():
    one_depth = [_run(1.0, 10, 1e-3, 0.5), _run(2.0, 10, 1e-3, 0.5)]
    assert phase.diagrams({"runs": one_depth}) == []
    two_args = [_run(1.0, 10, 1e-3, 0.5), {**_run(1.0, 40, 1e-3, 0.5), "scheme": "meanfield(sigma_w2=2,sigma_b2=0.1)"}]
    assert phase.diagrams({"runs": two_args}) == []
    assert phase.phase_markdown({"runs": two_args}) == [] and phase.plot_phase({"runs": two_args}, "x.png") is None


def test_predicted_depth_is_six_xi_c():
    d = {"family": "meanfield", "argument": "sigma_w2", "activation": "tanh", "fixed": {"sigma_b2": 0.05}}
    pred = phase.predicted_depth(d, [1.0, 2.0, 4.0])
    # xi_c at sigma_b^2 = 0.05 (checked against Gauss-Hermite in tests/test_meanfield.py): 3.63, 25.21, 6.98.
    np.testing.assert_allclose(pred, 6 * np.array([3.63, 25.21, 6.98]), rtol=2e-3)
    assert phase.predicted_depth({**d, "family": "critical"}, [1.0]) is None
    assert phase.predicted_depth({**d, "activation": "dks_tanh"}, [1.0]) is None


def test_presets_build():
    t = BenchConfig.from_preset("trainability")
    assert len(t.schemes) == 9 and t.schemes[3] == MF.format(1.76) and t.activations == ("tanh",)
    assert t.depths[-1] >= 160 and t.archs == ("mlp",)
    c = BenchConfig.from_preset("deep-cnn")
    assert c.archs == ("cnn",) and c.activations == ("tanh",)
    families = {jinit.registry.parametric_arguments(s)[1]["weights"] for s in c.schemes}
    assert families == {"delta", "gaussian"}


def test_trainability_runs_end_to_end_when_shrunk(tmp_path):
    config = BenchConfig.from_preset("trainability", schemes=tuple(MF.format(s) for s in (1.0, 1.76, 4.0)),
                                     depths=(2, 4), widths=(16,), lrs=(1e-3,), steps=4, eval_every=2)
    results = bench.run(config, out_dir=str(tmp_path), plots=True)
    assert len(results.runs) == 6 and not results.skipped
    summary = (tmp_path / "summary.md").read_text()
    assert "## Trainability phase diagrams" in summary and "| 6 xi_c | 22 | inf | 42 |" in summary.replace("29470", "inf")
    assert (tmp_path / "phase_diagram.png").stat().st_size > 10_000


# --- parametric schemes on the benchmark's scanned CNN -------------------------------------------

DEPTH, WIDTH = 4, 32


def _cnn_params(scheme: str) -> dict:
    arch = get_arch("cnn")
    spec = NetSpec("cnn", DEPTH, WIDTH, "tanh", 64, 10)
    rules = jinit.get_scheme(scheme).rules(arch.structure(spec))
    return jinit.init(arch.module(spec), rules, jax.random.key(3), np.zeros((1, 64), np.float32))["params"]


def _off_centre(kernel: np.ndarray) -> np.ndarray:
    mask = np.ones(kernel.shape[:2], bool)
    mask[1, 1] = False
    return kernel[mask]


def test_critical_delta_on_the_cnn_per_stacked_slice():
    name = "critical(q_star=0.01,weights=delta)"
    sigma_w, sigma_b = jinit.registry._critical_point(name, "tanh", 0.01)
    assert sigma_w == pytest.approx(1.00981, abs=5e-6)
    p = _cnn_params(name)
    kernels, biases = p["hidden"]["conv"]["kernel"], p["hidden"]["conv"]["bias"]
    assert kernels.shape == (DEPTH - 1, 3, 3, WIDTH, WIDTH)
    for w, b in zip(kernels, biases):
        w = np.asarray(w, np.float64)
        np.testing.assert_array_equal(_off_centre(w), 0.0)
        np.testing.assert_allclose(w[1, 1].T @ w[1, 1], sigma_w**2 * np.eye(WIDTH), atol=1e-5)
        assert 0 < float(np.std(b)) < 10 * sigma_b  # N(0, sigma_b^2), 32 draws
    assert_var(np.asarray(biases), sigma_b**2)
    stem = np.asarray(p["input"]["kernel"], np.float64)
    np.testing.assert_array_equal(_off_centre(stem), 0.0)
    np.testing.assert_allclose(stem[1, 1] @ stem[1, 1].T, [[sigma_w**2]], rtol=1e-5)
    readout = np.asarray(p["output"]["kernel"], np.float64)  # the point of 'linear': orthogonal, sigma_b = 0
    np.testing.assert_allclose(readout.T @ readout, np.eye(10), atol=1e-5)
    assert float(np.abs(p["output"]["bias"]).max()) == 0.0


def test_critical_gaussian_on_the_cnn_per_stacked_slice():
    name = "critical(q_star=0.01,weights=gaussian)"
    sigma_w, sigma_b = jinit.registry._critical_point(name, "tanh", 0.01)
    p = _cnn_params(name)
    for w in p["hidden"]["conv"]["kernel"]:  # fan_in = 3 * 3 * WIDTH
        assert_var(w, sigma_w**2 / (9 * WIDTH))
    assert_var(p["input"]["kernel"], sigma_w**2 / 9, z=6)
    assert_var(p["hidden"]["conv"]["bias"], sigma_b**2)
