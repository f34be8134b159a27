"""--parametrization in the benchmark: the factors are jinit.parametrization's, the engine's
training step is the hand-written µP step, the base is the standard parametrization,
schemes that break µP's width rule are skipped with the reason, and transfer is analysed."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import jinit
from bench.archs import NetSpec, get_arch
from bench.config import BenchConfig, ConfigError
from bench.data import load_dataset, with_validation
from bench.engine import Engine, Job, loss_and_metrics
from bench.parametrize import scaling, width_rule_violation
from bench.transfer import sweeps, transfer_markdown
from jinit import parametrization as P

TEACHER = "teacher:n_train=256,n_test=64,dim=8,classes=3"


def _config(**kw):
    base = dict(archs=("resmlp",), widths=(8, 32), depths=(2,), optimizer="adam", lrs=(0.01,), steps=6, batch_size=16,
                seeds=1, eval_every=3, dataset=TEACHER, devices=1, parametrizations=("standard", "mup", "depth_mup"))
    return BenchConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def data():
    return with_validation(load_dataset(TEACHER), 0.2)


def _spec(arch="resmlp", depth=2, width=32):
    return NetSpec(arch, depth, width, "relu", 8, 3)


@pytest.mark.parametrize("optimizer", ["adam", "momentum", "sgd"])
def test_factors_are_those_of_the_library_on_the_same_shapes(optimizer):
    spec, base = _spec(depth=6, width=32), _spec(depth=2, width=8)
    module, x = get_arch("resmlp").module(spec), jnp.zeros((1, 8))
    shapes = lambda s: jax.eval_shape(get_arch("resmlp").module(s).init, jax.random.key(0), x)
    layouts = lambda s: jinit.linen_layouts(get_arch("resmlp").module(s), x)
    kw = dict(rules=[("*gate", "norm")], layouts=layouts(spec), base_layouts=layouts(base))
    column = "adam" if optimizer == "adam" else "sgd"
    for name in ("mup", "depth_mup", "ntk"):
        s = scaling(name, spec, (8, 2), optimizer)
        want = P.PARAMETRIZATIONS[name].lr_factors(column, shapes(base), shapes(spec), **kw)
        assert s.lr_factors == {k.removeprefix("params/"): v for k, v in want.items()}
        mults = P.PARAMETRIZATIONS[name].multipliers(shapes(base), shapes(spec), **kw)
        assert s.multipliers == {k.removeprefix("params/"): v for k, v in mults.items()}
    del module


def test_the_tables_entries_on_a_residual_mlp():
    # width 8 -> 32 (m = 4), depth 2 -> 8 blocks (sqrt(L0/L) = 1/2), Adam.
    s = scaling("depth_mup", _spec(depth=8, width=32), (8, 2), "adam")
    assert s.roles["blocks/fc1/kernel"] == "hidden" and s.roles["blocks/fc2/kernel"] == "residual_output"
    assert s.roles["input/kernel"] == "input" and s.roles["output/kernel"] == "output"
    assert s.lr_factors["blocks/fc1/kernel"] == pytest.approx(1 / 4 * 1 / 2)  # 1/m_in x sqrt(L0/L)
    assert s.lr_factors["input/kernel"] == 1.0 and s.lr_factors["output/kernel"] == 1.0
    assert s.multipliers == {"output/kernel": 0.25, "blocks/fc2/kernel": 0.5}
    assert s.init_scale == {"output/kernel": 2.0}  # sqrt(m_in): readout variance s / base_fan_in
    sgd = scaling("mup", _spec(width=32), (8, 2), "momentum")
    assert sgd.lr_factors["input/kernel"] == 4.0 and sgd.lr_factors["output/kernel"] == 4.0  # m_out, m_in
    assert sgd.lr_factors["blocks/fc1/kernel"] == 1.0 and sgd.lr_factors["input/bias"] == 4.0
    assert scaling("standard", _spec(width=32), (8, 2), "adam").identity
    assert scaling("mup", _spec(width=8), (8, 2), "adam").identity  # the base is the standard parametrization


def test_what_an_architecture_cannot_express_is_an_error():
    with pytest.raises(ValueError, match="residual branches.*has none"):
        scaling("depth_mup", _spec("mlp"), (8, 2), "adam")
    with pytest.raises(ValueError, match="head dimension changes from 8 .* to 16"):
        scaling("mup", NetSpec("transformer", 1, 32, "relu", 64, 10), (8, 1), "adam")


def test_training_is_the_hand_written_mup_step(data):
    """Engine.train under mup = optax.chain(adam, mup.scale_updates) on the model called with
    apply_multipliers, from the scheme's init with the readout scaled by sqrt(m_in)."""
    config = _config(parametrizations=("mup",), widths=(8, 32), steps=6, eval_every=6)
    engine = Engine(data, config)
    spec = engine.spec("resmlp", "relu", 2, 32)
    init = engine.initialize(spec, ["he_normal"], [0], "mup")
    standard = engine.initialize(spec, ["he_normal"], [0], "standard")
    readout = lambda i: np.asarray(i.params["he_normal"]["output"]["kernel"])
    np.testing.assert_allclose(readout(init), 2.0 * readout(standard), rtol=1e-6)
    rec = engine.train(init, [Job("he_normal", 0.01, 0)])[0]

    module, x0 = get_arch("resmlp").module(spec), jnp.zeros((1, 8))
    shapes = lambda w: jax.eval_shape(get_arch("resmlp").module(_spec(width=w)).init, jax.random.key(0), x0)
    tx = P.mup.optimizer("adam", shapes(8), shapes(32), 0.01, rules=[("*gate", "norm")])
    mults = P.mup.multipliers(shapes(8), shapes(32), rules=[("*gate", "norm")])
    variables = {"params": jax.tree.map(lambda a: a[0], init.params["he_normal"])}
    data_key = jax.random.split(jax.random.key(0), 3)[1]
    xt, yt = jnp.asarray(data.x_train), jnp.asarray(data.y_train)

    def loss(v, xb, yb):
        return jnp.mean(loss_and_metrics(module.apply(P.apply_multipliers(v, mults), xb), yb, "classification")[0])

    state = tx.init(variables)
    for i in range(6):
        idx = jax.random.randint(jax.random.fold_in(data_key, i), (16,), 0, len(xt))
        grads = jax.grad(loss)(variables, xt[idx], yt[idx])
        updates, state = tx.update(grads, state, variables)
        variables = optax.apply_updates(variables, updates)
    assert rec["final_train_loss"] == pytest.approx(float(loss(variables, xt, yt)), rel=1e-4)


def test_at_the_base_every_parametrization_is_standard_and_records_say_which(data, tmp_path):
    import bench

    res = bench.run(_config(widths=(8,), schemes=("he_normal",)), out_dir=str(tmp_path), plots=False)
    by = {r["parametrization"]: r["loss_curve"] for r in res.runs}
    assert set(by) == {"standard", "mup", "depth_mup"}
    assert by["mup"] == by["standard"] == by["depth_mup"]
    assert not res.data.get("scalings")  # nothing was scaled


def test_inapplicable_schemes_are_skipped_with_the_reason(data):
    engine = Engine(data, _config())
    schemes = ["he_normal", "glorot_normal", "lsuv"]
    for width in (8, 64):
        init = engine.initialize(engine.spec("resmlp", "relu", 2, width), schemes, [0], "mup")
        if width == 8:  # the base: every parametrization is the standard one, nothing to skip
            assert not init.skipped and set(init.params) == set(schemes)
            continue
        assert "input/kernel (input) changes by x0." in init.skipped["glorot_normal"]
        assert "sets each layer's scale from data" in init.skipped["lsuv"]
        assert set(init.params) == {"he_normal"}
    init = engine.initialize(engine.spec("mlp", "relu", 2, 8), schemes, [0], "depth_mup")
    assert set(init.skipped) == set(schemes) and "has none" in init.skipped["he_normal"]


@pytest.mark.slow
def test_width_transfer_on_a_small_problem(tmp_path):
    """µP's claim on digits, small: a pre-LN residual MLP at widths 16 and 256, Adam, lrs 2^-12 .. 2^-4 in
    steps of 4x, 40 steps. By final training loss the best lr moves by one grid step under µP and by two
    under the standard parametrization (measured margins >= 20% between neighbouring lrs, far above
    float noise). Also: what the run records and draws."""
    import bench

    config = bench.BenchConfig(schemes=("he_normal",), archs=("resmlp_ln",), depths=(2,), widths=(16, 256),
                               parametrizations=("standard", "mup"), optimizer="adam",
                               lrs=tuple(2.0**k for k in (-12, -10, -8, -6, -4)), steps=40, eval_every=20, seeds=1)
    res = bench.run(config, out_dir=str(tmp_path), plots=True)
    moves = {e["parametrization"]: e["moves"] for e in sweeps(res.data, "width")}
    assert moves["mup"] <= 1 < moves["standard"]
    assert [(s["width"], s["multipliers"]) for s in res.data["scalings"]] == [(256, {"output/kernel": 0.0625})]
    summary = open(tmp_path / "summary.md").read()
    assert "resmlp_ln, relu, depth 2, width 256, mup" in summary and "Learning-rate transfer across width" in summary
    assert (tmp_path / "lr_transfer_width.png").exists() and not (tmp_path / "lr_transfer_depth.png").exists()


def test_width_rule_check_on_real_inits():
    s = scaling("mup", _spec(width=128), (8, 2), "adam")
    arch, x = get_arch("resmlp"), jnp.zeros((1, 8))

    def params(scheme, width):
        spec = _spec(width=width)
        rules = jinit.get_scheme(scheme).rules(arch.structure(spec))
        return jinit.init(arch.module(spec), rules, jax.random.key(1), x)["params"]

    for ok in ("he_normal", "lecun_uniform", "skipinit"):
        assert width_rule_violation(s, ok, params(ok, 8), params(ok, 128)) is None, ok
    # Glorot (and ReZero, Glorot + zero gates): fan average; ZerO: partial identities / Hadamard, variance
    # 1/fan_out in an 8 -> 128 input layer, as orthogonal's orthonormal rows; normal: N(0, 1) at any fan-in.
    for bad in ("glorot_normal", "rezero", "zero_hadamard", "orthogonal", "normal"):
        assert width_rule_violation(s, bad, params(bad, 8), params(bad, 128)), bad


def _runs(par, best_by_width, grid=(0.001, 0.002, 0.004, 0.008), fail=()):
    runs = []
    for w, best in best_by_width.items():
        for lr in grid:
            runs.append({"arch": "resmlp", "activation": "relu", "scheme": "he_normal", "parametrization": par,
                         "depth": 2, "width": w, "lr": lr, "seed": 0, "diverged": w in fail,
                         "final_val_loss": None if w in fail else 0.1 + abs(math.log2(lr / best)),
                         "final_train_loss": None if w in fail else 0.05 + abs(math.log2(lr / 0.004))})
    return runs


def test_transfer_counts_grid_steps_and_all_failed_sizes():
    runs = _runs("mup", {32: 0.004, 64: 0.004, 128: 0.002}) + _runs("standard", {32: 0.008, 64: 0.002, 128: 0.001},
                                                                    ) + _runs("ntk", {32: 0.004, 64: 0.002, 128: 0.0},
                                                                              fail=(128,))
    got = {e["parametrization"]: e for e in sweeps({"runs": runs}, "width", "final_val_loss")}
    assert got["mup"]["moves"] == 1 and got["standard"]["moves"] == 3
    assert got["ntk"]["best_lr"][128] is None and got["ntk"]["failed"] == [128] and got["ntk"]["moves"] == 1
    text = "\n".join(transfer_markdown({"runs": runs}))
    by_val = text[text.index("By final validation loss:"):]
    assert "| resmlp | he_normal | standard | 2 | 0.008* | 0.002 | 0.001* | 3 |" in by_val
    assert "| resmlp | he_normal | ntk | 2 | 0.004 | 0.002 | all fail | 1 |" in by_val
    assert {e["moves"] for e in sweeps({"runs": runs}, "width")} == {0}  # the training loss's best lr: 0.004
    assert sweeps({"runs": runs}, "depth") == []
    with pytest.raises(ValueError, match="metric must be one of final_train_loss, final_val_loss"):
        sweeps({"runs": runs}, "width", "test_loss")
    with pytest.raises(ValueError, match="swept must be 'width' or 'depth'"):
        sweeps({"runs": runs}, "heads")


def test_config_validates_the_new_fields():
    with pytest.raises(ConfigError, match="parametrizations: unknown parametrization.*'mupp'.*standard, ntk, mup"):
        BenchConfig(parametrizations=("mupp",))
    with pytest.raises(ConfigError, match="widths: expected integers >= 1"):
        BenchConfig(widths=(0,))
    with pytest.raises(ConfigError, match="base_width"):
        BenchConfig(base_width=-1)
    assert BenchConfig(widths=(64, 16), depths=(8, 2)).base == (16, 2)
    assert BenchConfig(widths=(64, 16), base_width=32).base == (32, 20)


def test_transfer_figure_across_depth_names_curves_above_the_axis(tmp_path):
    from bench.transfer import plot_transfer

    runs = []
    for par in ("standard", "depth_mup"):
        for depth in (2, 8, 32):
            for lr in (0.001, 0.002, 0.004):
                loss = 1e6 if (par, depth) == ("standard", 32) else 0.1 + abs(math.log2(lr / 0.002))
                runs.append({"arch": "resmlp", "activation": "relu", "scheme": "he_normal", "parametrization": par,
                             "depth": depth, "width": 128, "lr": lr, "seed": 0, "diverged": False,
                             "final_train_loss": loss, "final_val_loss": loss})
    results = {"runs": runs}
    assert plot_transfer(results, str(tmp_path / "w.png"), "width") is None  # one width: no width sweep
    path = plot_transfer(results, str(tmp_path / "d.png"), "depth")
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
    got = {e["parametrization"]: e for e in sweeps(results, "depth")}
    assert got["depth_mup"]["moves"] == 0 and got["standard"]["best_lr"][32] == 0.001  # a meaningless 'best'
