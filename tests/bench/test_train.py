"""The training engine: vmapped seeds, sharding, divergence, LSUV, skipping."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jinit
from bench.data import load_dataset
from bench.model import build_model, loss_and_metrics
from bench.results import jsonify
from bench.train import SchemeUnavailable, Trainer, TrainSettings

TEACHER = "teacher:n_train=256,n_test=64,dim=8,classes=3"
SETTINGS = TrainSettings(optimizer="momentum", lr=0.05, steps=20, batch_size=32, eval_every=5, target_loss=0.9)


@pytest.fixture(scope="module")
def data():
    return load_dataset(TEACHER)


@pytest.fixture(scope="module")
def single(data):
    return Trainer(data, SETTINGS, n_devices=1)


def _curve(run):
    return np.array([v for _, v in run["loss_curve"]], dtype=float)


def test_vmapped_seeds_equal_separate_runs(single):
    he = jinit.get_scheme("he_normal")
    both = single.run(he, "relu", 3, 16, [0, 1]).runs
    alone = single.run(he, "relu", 3, 16, [1]).runs
    assert [r["seed"] for r in both] == [0, 1]
    np.testing.assert_allclose(_curve(both[1]), _curve(alone[0]), rtol=2e-5)
    np.testing.assert_allclose(both[1]["init_stats"]["activation_std"], alone[0]["init_stats"]["activation_std"], rtol=1e-5)
    assert both[1]["test_accuracy"] == pytest.approx(alone[0]["test_accuracy"], abs=1e-6)
    assert not np.allclose(_curve(both[0]), _curve(both[1]))  # seeds differ


def test_sharded_batch_equals_single_device(data, single):
    """4 of the virtual CPU devices of the test session (tests/conftest.py)."""
    if jax.device_count() < 4:
        pytest.skip("needs 4 devices (XLA_FLAGS=--xla_force_host_platform_device_count=4)")
    sharded = Trainer(data, SETTINGS, n_devices=4)
    assert sharded.n_devices == 4 and sharded.mesh is not None
    scheme = jinit.get_scheme("glorot_uniform")
    a = sharded.run(scheme, "relu", 3, 16, [0, 1]).runs
    b = single.run(scheme, "relu", 3, 16, [0, 1]).runs
    for ra, rb in zip(a, b):
        np.testing.assert_allclose(_curve(ra), _curve(rb), rtol=1e-4)
        assert ra["test_accuracy"] == pytest.approx(rb["test_accuracy"], abs=1e-6)


def test_final_train_loss_is_on_the_whole_training_split(data, single):
    result = single.run(jinit.get_scheme("lecun_normal"), "relu", 3, 16, [0])
    params = jax.tree.map(lambda a: a[0], result.params)
    model = build_model(single.spec("relu", 3, 16))
    loss, correct = loss_and_metrics(model.apply({"params": params}, jnp.asarray(data.x_train)), jnp.asarray(data.y_train), data.task)
    run = result.runs[0]
    assert run["final_train_loss"] == pytest.approx(float(loss.mean()), rel=1e-5)
    assert run["final_train_accuracy"] == pytest.approx(float(correct.mean()), abs=1e-6)
    assert [s for s, _ in run["loss_curve"]] == [0, 5, 10, 15, 20]
    reached = [s for s, v in run["loss_curve"] if v <= SETTINGS.target_loss]
    assert run["steps_to_target"] == (reached[0] if reached else None)


def test_divergence_is_recorded_not_raised(data):
    wild = Trainer(data, TrainSettings(optimizer="sgd", lr=1e4, steps=20, batch_size=32, eval_every=5), n_devices=1)
    result = wild.run(jinit.get_scheme("normal"), "relu", 3, 16, [0, 1])
    for run in result.runs:
        assert run["diverged"] is True
        assert run["final_train_loss"] is None and run["test_accuracy"] is None
        assert run["diverged_step"] is not None and run["diverged_step"] <= 20
        assert run["steps_to_target"] is None
    text = json.dumps(jsonify(result.runs), allow_nan=False)  # valid JSON: no NaN / Infinity
    assert "NaN" not in text and "Infinity" not in text


def test_regression_task():
    data = load_dataset("teacher:n_train=128,n_test=32,dim=4,classes=0,outputs=2")
    run = Trainer(data, SETTINGS, n_devices=1).run(jinit.get_scheme("lecun_normal"), "tanh", 2, 8, [0]).runs[0]
    assert run["test_accuracy"] is None and run["final_train_loss"] is not None
    assert run["final_train_loss"] < run["loss_curve"][0][1]


def test_scheme_that_cannot_initialize_an_mlp_is_skipped(single):
    def conv_only(key, shape, dtype=jnp.float32):
        if len(shape) < 3:
            raise ValueError(f"conv_only: needs a conv kernel, got shape {shape}")
        return jnp.zeros(shape, dtype)

    scheme = jinit.Scheme("conv_only", lambda a: conv_only, "f", "d", "r", "test")
    with pytest.raises(SchemeUnavailable, match="needs a conv kernel"):
        single.prepare(scheme, "relu", 3, 16, [0])


def test_model_level_scheme_runs_lsuv(single):
    pytest.importorskip("jinit.data_dependent")
    scheme = jinit.Scheme("lsuv_test", lambda a: jinit.lecun_normal(), "f", "d", "r", "data_dependent",
                          model_level=True)
    run = single.run(scheme, "relu", 3, 16, [0]).runs[0]
    report = run["lsuv"]
    assert report["layers"] == 4  # 3 hidden layers (one a 2-slice stack) + the output layer
    assert report["converged_layers"] == 4
    assert all(abs(v - 1) < 0.1 for v in report["var_after"])
    json.dumps(run, allow_nan=False)
