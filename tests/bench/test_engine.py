"""The training engine: batched models equal one-by-one training, paired seeds,
sharding of the model axis, divergence, skipping, post-init steps, regression."""

import json

import jax

import jinit
import jax.numpy as jnp
import numpy as np
import pytest

from bench.archs import get_arch
from bench.config import BenchConfig
from bench.data import load_dataset, with_validation
from bench.engine import Engine, Job, loss_and_metrics
from bench.results import jsonify

TEACHER = "teacher:n_train=256,n_test=64,dim=8,classes=3"
CONFIG = BenchConfig(archs=("mlp",), widths=(16,), optimizer="momentum", lrs=(0.02, 0.05), steps=20, batch_size=32,
                     seeds=2, eval_every=5, target_loss=0.9, dataset=TEACHER, devices=1)


@pytest.fixture(scope="module")
def data():
    return with_validation(load_dataset(TEACHER), CONFIG.val_fraction)


@pytest.fixture(scope="module")
def engine(data):
    return Engine(data, CONFIG)


@pytest.fixture(scope="module")
def init(engine):
    return engine.initialize(engine.spec("mlp", "relu", 3), ["he_normal", "glorot_uniform", "normal"], [0, 1])


@pytest.fixture(scope="module")
def batched(engine, init):
    jobs = [Job(s, lr, seed) for s in ("he_normal", "glorot_uniform") for lr in CONFIG.lrs for seed in (0, 1)]
    return jobs, engine.train(init, jobs)


def _curve(run, key="loss_curve"):
    return np.array([v for _, v in run[key]], dtype=float)


def test_batched_models_equal_one_by_one(engine, init, batched):
    jobs, records = batched
    for job, rec in zip(jobs[::3], records[::3]):
        alone = engine.train(init, [job])[0]
        assert (alone["scheme"], alone["lr"], alone["seed"]) == (job.scheme, job.lr, job.seed)
        np.testing.assert_allclose(_curve(rec), _curve(alone), rtol=2e-5)
        np.testing.assert_allclose(_curve(rec, "val_loss_curve"), _curve(alone, "val_loss_curve"), rtol=2e-5)
        assert rec["test_accuracy"] == pytest.approx(alone["test_accuracy"], abs=1e-6)


def test_a_short_chunk_padded_reuses_the_program(engine, init, batched):
    jobs, records = batched  # 8 models: their programs are compiled
    programs = len(engine._programs)
    short = engine.train(init, jobs[:3], pad_to=len(jobs))
    assert len(engine._programs) == programs and len(short) == 3
    for a, b in zip(short, records[:3]):
        np.testing.assert_allclose(_curve(a), _curve(b), rtol=2e-5)


def test_the_lr_is_per_model_and_seeds_are_paired(batched):
    jobs, records = batched
    by = {(r["scheme"], r["lr"], r["seed"]): r for r in records}
    a, b = by[("he_normal", 0.02, 0)], by[("he_normal", 0.05, 0)]
    assert a["init_stats"] == b["init_stats"]  # same init for every lr of a seed
    assert a["loss_curve"][0] == b["loss_curve"][0]
    assert not np.allclose(_curve(a)[1:], _curve(b)[1:])  # different learning rates
    assert by[("he_normal", 0.02, 1)]["init_stats"] != a["init_stats"]  # seeds differ


def test_records_match_a_direct_evaluation(data, engine, init):
    """final losses are on the whole splits: recompute them from the returned state's init."""
    record = engine.train(init, [Job("he_normal", 0.02, 0)])[0]
    assert [s for s, _ in record["loss_curve"]] == [0, 5, 10, 15, 20]
    params = jax.tree.map(lambda a: a[0], init.params["he_normal"])
    module = get_arch("mlp").module(engine.spec("mlp", "relu", 3))
    loss, _ = loss_and_metrics(module.apply({"params": params}, jnp.asarray(data.x_val)), jnp.asarray(data.y_val),
                               data.task)
    assert record["val_loss_curve"][0][1] == pytest.approx(float(loss.mean()), rel=1e-5)
    reached = [s for s, v in record["loss_curve"] if v <= CONFIG.target_loss]
    assert record["steps_to_target"] == (reached[0] if reached else None)
    alive = [v for _, v in record["val_loss_curve"]]
    assert record["best_val_loss"] == pytest.approx(min(alive))
    assert record["last_k_val_loss"] == pytest.approx(np.mean(alive[-CONFIG.last_k:]))


def test_sharded_model_axis_equals_single_device(data, batched):
    if jax.device_count() < 4:
        pytest.skip("needs 4 devices (XLA_FLAGS=--xla_force_host_platform_device_count=4, set by conftest.py)")
    sharded = Engine(data, CONFIG.replace(devices=4))
    init = sharded.initialize(sharded.spec("mlp", "relu", 3), ["he_normal", "glorot_uniform"], [0, 1])
    jobs, records = batched
    for a, b in zip(sharded.train(init, jobs), records):  # 8 models over 4 devices
        np.testing.assert_allclose(_curve(a), _curve(b), rtol=1e-4)
    few = sharded.train(init, jobs[:2])  # fewer models than devices: the batch is sharded instead
    for a, b in zip(few, records[:2]):
        np.testing.assert_allclose(_curve(a), _curve(b), rtol=1e-4)


def test_divergence_is_recorded_not_raised(engine, init):
    jobs = [Job("normal", 1e4, 0), Job("normal", 1e4, 1), Job("he_normal", 0.02, 0)] + [Job("normal", 1e4, 0)] * 5
    runs = engine.train(init, jobs)  # 8 models: the compiled program of the batched test
    assert not runs[2]["diverged"]  # a diverging model does not disturb the others
    for run in runs[:2]:
        assert run["diverged"] is True
        assert run["final_train_loss"] is None and run["test_accuracy"] is None and run["final_val_loss"] is None
        assert run["diverged_step"] is not None and run["diverged_step"] <= 20
        assert run["steps_to_target"] is None and run["last_k_val_loss"] is None
    text = json.dumps(jsonify(run), allow_nan=False)  # valid JSON: no NaN / Infinity
    assert "NaN" not in text and "Infinity" not in text


def test_regression_task():
    data = with_validation(load_dataset("teacher:n_train=128,n_test=32,dim=4,classes=0,outputs=2"), 0.2)
    eng = Engine(data, CONFIG)
    init = eng.initialize(eng.spec("mlp", "tanh", 2), ["lecun_normal"], [0])
    run = eng.train(init, [Job("lecun_normal", 0.05, 0)])[0]
    assert run["test_accuracy"] is None and run["final_train_loss"] is not None
    assert run["final_train_loss"] < run["loss_curve"][0][1]


def test_inapplicable_schemes_are_skipped_with_the_reason(engine):
    init = engine.initialize(engine.spec("mlp", "relu", 3), ["fixup", "delta_orthogonal", "he_normal"], [0])
    assert set(init.params) == {"he_normal"}
    assert "residual" in init.skipped["fixup"] and "conv" in init.skipped["delta_orthogonal"]


def test_architecture_check_skips_every_scheme(engine):
    init = engine.initialize(engine.spec("cnn", "relu", 2), ["he_normal"], [0])  # 8 features: not an image
    assert not init.params and "he_normal" in init.skipped


def test_post_init_step_runs_lsuv(engine):
    init = engine.initialize(engine.spec("mlp", "relu", 3), ["lsuv"], [0])
    run = engine.train(init, [Job("lsuv", 0.02, 0)])[0]
    report = run["post_init"]
    assert report["layers"] == 4  # 3 hidden layers (one a 2-slice stack) + the output layer
    assert report["converged_layers"] == 4
    assert all(abs(v - 1) < 0.1 for v in report["var_after"])
    json.dumps(run, allow_nan=False)


@pytest.mark.slow
def test_every_architecture_end_to_end(tmp_path):
    """Each architecture family trains through bench.run on 4x4 'images' (16 features); the
    variants (resmlp_ln, transformer_causal) differ by one flag, covered in test_archs.py."""
    import bench

    ARCHS = {n: a for n, a in bench.archs.ARCHS.items() if n in ("mlp", "resmlp", "cnn", "transformer")}
    config = bench.BenchConfig(schemes=("he_normal", "fixup", "gpt2", "delta_orthogonal"), archs=tuple(ARCHS),
                               activations=("relu",), depths=(2,), widths=(16,), lrs=(0.01,), steps=4,
                               eval_every=2, batch_size=16, seeds=1, devices=1,
                               dataset="teacher:n_train=96,n_test=32,dim=16,classes=3")
    results = bench.run(config, str(tmp_path), plots=False)
    trained = {(r["arch"], r["scheme"]) for r in results.runs}
    expected = {(a, s) for a in ARCHS for s in config.schemes
                if jinit.get_scheme(s).unavailable(ARCHS[a].structure(bench.archs.NetSpec(a, 2, 16, "relu", 16, 3)))
                is None}
    assert trained == expected
    assert {(s["arch"], s["scheme"]) for s in results.skipped} == {(a, s) for a in ARCHS for s in config.schemes} - expected
    assert all(r["loss_curve"][0][1] is not None and len(r["init_stats"]["activation_std"]) == 2 for r in results.runs)
    assert len(results.selection) == len(expected)
