"""``python -m bench`` end to end: outputs, schema, resume, interruption, bad flags."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import jinit
from bench import cli
from bench.presets import PRESETS, PresetError, resolve_schemes

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TEACHER = "teacher:n_train=256,n_test=64,dim=8,classes=3"
TINY = ["--dataset", TEACHER, "--arch", "mlp", "--depth", "3", "--width", "16", "--steps", "20", "--eval-every", "5",
        "--batch-size", "32", "--seeds", "2", "--lr", "0.02,0.05", "--devices", "1"]
PNGS = ("loss_curves.png", "activation_std.png", "grad_norm.png", "accuracy.png", "lr_sensitivity.png")


def _check_schema(results: dict) -> None:
    from bench.results import RUN_KEYS

    assert results["format"] == "jinit-bench/2"
    cfg, env = results["config"], results["env"]
    for key in ("schemes", "archs", "activations", "depths", "widths", "parametrizations", "optimizer", "lrs", "steps", "batch_size",
                "seeds", "dataset", "val_fraction", "eval_every", "target_loss", "dataset_info", "settings_hash"):
        assert key in cfg, key
    assert isinstance(env["jax"], str) and isinstance(env["backend"], str) and isinstance(env["devices"], list)
    assert results["runs"]
    for run in results["runs"]:
        assert set(RUN_KEYS) <= set(run), set(RUN_KEYS) - set(run)
        for key, kind in (("arch", str), ("scheme", str), ("activation", str), ("depth", int), ("width", int),
                          ("seed", int), ("optimizer", str), ("lr", float), ("steps", int), ("diverged", bool),
                          ("loss_curve", list), ("init_stats", dict)):
            assert isinstance(run[key], kind), (key, run[key])
        for key in ("final_train_loss", "final_val_loss", "test_accuracy", "best_val_loss", "last_k_val_loss"):
            assert run[key] is None or isinstance(run[key], float)
        assert all(len(p) == 2 and isinstance(p[0], int) and (p[1] is None or isinstance(p[1], float))
                   for p in run["loss_curve"] + run["val_loss_curve"])
        assert run["loss_curve"][0][0] == 0 and run["loss_curve"][-1][0] == run["steps"] or run["diverged"]
        stats = run["init_stats"]
        assert len(stats["activation_std"]) == run["depth"] and len(stats["grad_norm"]) == run["depth"]
    for entry in results["selection"]:
        for key in ("arch", "activation", "depth", "width", "scheme", "best_lr", "val_loss_mean",
                    "test_accuracy_mean", "test_accuracy_ci95", "final_train_loss_mean"):
            assert key in entry, key
        assert entry["best_lr"] in cfg["lrs"]


def _read(out):
    with open(os.path.join(out, "results.json")) as f:
        return json.load(f)


def test_end_to_end_tiny(tmp_path, capsys):
    out = str(tmp_path / "run")
    rc = cli.main(TINY + ["--arch", "mlp,resmlp", "--schemes", "he_normal,zeros,fixup", "--activation", "tanh",
                          "--out", out])
    assert rc == 0
    results = _read(out)
    _check_schema(results)
    # mlp: 2 schemes (fixup needs a residual net); resmlp: 3; x 2 lrs x 2 seeds
    assert len(results["runs"]) == (2 + 3) * 2 * 2
    assert {(s["arch"], s["scheme"]) for s in results["skipped"]} == {("mlp", "fixup")}
    assert len(results["selection"]) == 2 + 3
    summary = open(os.path.join(out, "summary.md")).read()
    assert "## mlp, tanh, depth 3, width 16" in summary and "## resmlp, tanh, depth 3, width 16" in summary
    assert "Skipped" in summary and "fixup" in summary
    for png in PNGS + ("saturation.png",):  # saturation: tanh has a saturation statistic
        assert os.path.getsize(os.path.join(out, png)) > 1000, png
    printed = capsys.readouterr().out
    assert "he_normal" in printed and "compiling" in printed and "best lr" in printed
    os.remove(os.path.join(out, "accuracy.png"))  # re-render only
    assert cli.main(["--replot", "--out", out]) == 0
    assert os.path.exists(os.path.join(out, "accuracy.png"))


def test_cli_and_python_api_give_the_same_results(tmp_path, capsys):
    import bench

    args = TINY + ["--schemes", "he_normal,glorot_normal", "--activation", "relu", "--no-plots"]
    assert cli.main(args + ["--out", str(tmp_path / "cli")]) == 0
    config = bench.BenchConfig(schemes=("he_normal", "glorot_normal"), archs=("mlp",), activations=("relu",),
                               depths=(3,), widths=(16,), steps=20, eval_every=5, batch_size=32, seeds=2,
                               lrs=(0.02, 0.05), dataset=TEACHER, devices=1)
    api = bench.run(config, str(tmp_path / "api"), plots=False)
    from_cli = _read(str(tmp_path / "cli"))
    assert from_cli["config"]["settings_hash"] == api.data["config"]["settings_hash"]
    assert [r["loss_curve"] for r in from_cli["runs"]] == [r["loss_curve"] for r in api.runs]
    assert from_cli["selection"] == api.selection


def test_interrupt_then_resume(tmp_path, monkeypatch, capsys):
    """Ctrl-C during the second chunk: exit 130, valid files, resume trains only the rest."""
    from bench.engine import Engine

    out = str(tmp_path / "run")
    args = TINY + ["--schemes", "he_normal,glorot_normal,lecun_normal", "--activation", "relu",
                   "--batch-models", "4", "--out", out]
    real_train = Engine.train
    calls = []

    def flaky_train(self, *a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_train(self, *a, **kw)

    monkeypatch.setattr(Engine, "train", flaky_train)
    assert cli.main(args) == cli.EXIT_INTERRUPTED
    assert "resume with" in capsys.readouterr().out
    first = _read(out)
    assert len(first["runs"]) == 4 and os.path.exists(os.path.join(out, "summary.md"))

    monkeypatch.setattr(Engine, "train", real_train)
    assert cli.main(args) == 0
    assert "resuming: 4 run(s)" in capsys.readouterr().out
    done = _read(out)
    assert len(done["runs"]) == 3 * 2 * 2 and len({r["run_hash"] for r in done["runs"]}) == 12
    kept = {r["run_hash"]: r for r in done["runs"]}
    assert all(kept[r["run_hash"]] == r for r in first["runs"])  # finished runs kept as they were

    # the lr grid and the seeds may grow on resume: only the new runs are trained
    assert cli.main([a if a != "0.02,0.05" else "0.02,0.05,0.1" for a in args]) == 0
    assert "resuming: 12 run(s)" in capsys.readouterr().out
    assert len(_read(out)["runs"]) == 18

    # other settings in the same --out: refused, nothing changed
    before = open(os.path.join(out, "results.json")).read()
    with pytest.raises(SystemExit) as exc:
        cli.main(args[:-2] + ["--steps", "30", "--out", out])
    assert exc.value.code == 2
    assert "different settings" in capsys.readouterr().err
    assert open(os.path.join(out, "results.json")).read() == before

    # results of another jinit version: refused too, naming the versions
    from bench.results import settings_hash

    old = json.loads(before)
    old["config"]["versions"]["jinit"] = "0.0.1"
    old["config"]["settings_hash"] = settings_hash(old["config"])
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(old, f)
    with pytest.raises(SystemExit) as exc:
        cli.main(args)
    assert exc.value.code == 2
    assert "'jinit': '0.0.1'" in capsys.readouterr().err


def test_sigint_in_a_sharded_subprocess(tmp_path):
    """A real SIGINT to ``python -m bench`` running on 4 forced CPU devices: exit
    130 and a valid results.json, whose numbers equal a single-device run."""
    out = str(tmp_path / "run")
    env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4", JAX_PLATFORMS="cpu")
    schemes = "he_normal,glorot_normal,lecun_normal,zeros,normal,uniform_small"
    tiny = [a for a in TINY if a not in ("--devices", "1")]  # all 4 devices
    cmd = [sys.executable, "-m", "bench"] + tiny + ["--steps", "200", "--eval-every", "50", "--schemes", schemes,
                                                    "--activation", "relu,tanh", "--batch-models", "8", "--out", out]
    # A runner started in the background (`cmd &` in a script) ignores SIGINT, and its children
    # inherit that: restore the default so that Python turns the signal into KeyboardInterrupt.
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    path = os.path.join(out, "results.json")
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if os.path.exists(path) and _read(out)["runs"]:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, output
    assert "resume with" in output
    results = _read(out)
    assert results["env"]["devices_used"] == 4 and results["env"]["device_count"] == 4
    _check_schema(results)
    assert len(results["runs"]) < 6 * 2 * 2 * 2  # stopped early

    from bench.config import BenchConfig
    from bench.data import load_dataset, with_validation
    from bench.engine import Engine, Job

    first = results["runs"][0]
    config = BenchConfig(archs=("mlp",), widths=(16,), lrs=(0.02, 0.05), steps=200, eval_every=50, batch_size=32,
                         seeds=2, dataset=TEACHER, devices=1)
    single = Engine(with_validation(load_dataset(TEACHER), 0.2), config)
    init = single.initialize(single.spec("mlp", first["activation"], 3), [first["scheme"]], [0, 1])
    ref = single.train(init, [Job(first["scheme"], first["lr"], first["seed"])])[0]
    np.testing.assert_allclose([v for _, v in first["loss_curve"]], [v for _, v in ref["loss_curve"]], rtol=1e-4)


BAD = [
    (["--schemes", "he_normal,nope"], "valid choices are"),
    (["--activation", "relu,swoosh"], "valid activations are"),
    (["--dataset", "no/such/place"], "unknown dataset"),
    (["--preset", "nope"], "valid presets are"),
    (["--optimizer", "rmsprop"], "valid optimizers are"),
    (["--depth", "0"], "--depth"),
    (["--depth", "3,x"], "--depth"),
    (["--steps", "0"], "--steps"),
    (["--arch", "mlp,convnext"], "valid architectures are"),
    (["--lr", "0.1,abc"], "--lr"),
    (["--val-fraction", "1.5"], "--val-fraction"),
    (["--lr", "-1"], "--lr"),
    (["--width", "abc"], "--width: expected int values"),
    (["--parametrization", "mupp"], "--parametrization: unknown parametrization"),
    (["--devices", "999"], "--devices"),
]


@pytest.mark.parametrize("argv,message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_flags_exit_2_and_write_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exc:
        cli.main(argv + ["--out", str(out)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert message in err
    if "valid schemes" in message:
        assert all(name in err for name in jinit.SCHEMES)
    assert not out.exists()


def test_bad_dataset_file_exits_2(tmp_path, capsys):
    bad = tmp_path / "data.npz"
    bad.write_bytes(b"garbage")
    with pytest.raises(SystemExit) as exc:
        cli.main(["--dataset", str(bad), "--out", str(tmp_path / "never")])
    assert exc.value.code == 2 and "not a readable .npz" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_help_lists_schemes_presets_and_flags(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    from bench.archs import ARCHS

    for name in list(jinit.SCHEMES) + list(PRESETS) + list(ARCHS):
        assert name in text, name
    for flag in ("--preset", "--schemes", "--arch", "--depth", "--width", "--activation", "--optimizer", "--lr",
                 "--steps", "--batch-size", "--seeds", "--dataset", "--val-fraction", "--eval-every", "--target-loss",
                 "--batch-models", "--out"):
        assert flag in text, flag
    for p in PRESETS.values():
        assert p.source.split(",")[0] in " ".join(text.split())


def test_presets_resolve_against_the_registry():
    registered = list(jinit.SCHEMES)
    schemes, _ = resolve_schemes(PRESETS["default"], registered)
    assert schemes == registered  # the default runs every registered scheme
    with pytest.raises(PresetError, match="critical"):
        resolve_schemes(PRESETS["critical"], [s for s in registered if s != "critical"])
    schemes, notes = resolve_schemes(PRESETS["depth"], [s for s in registered if s not in ("critical", "orthogonal")])
    assert "critical" not in schemes and any("not registered" in n for n in notes)
    he, _ = resolve_schemes(PRESETS["he2015"], registered)
    assert {"he_normal", "glorot_normal"} <= set(he)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def test_atomic_write_text_modes(tmp_path, umask_022):
    """Written files get 0o666 less the umask, as with open(): 0644 under umask 022."""
    from bench.results import atomic_write_text

    path = tmp_path / "results.json"
    path.write_text("old")
    os.chmod(path, 0o600)
    atomic_write_text(str(path), "{}\n")
    assert path.read_text() == "{}\n" and (os.stat(path).st_mode & 0o777) == 0o644
    os.umask(0o027)
    atomic_write_text(str(path), "[]\n")
    assert path.read_text() == "[]\n" and (os.stat(path).st_mode & 0o777) == 0o640
    assert os.listdir(tmp_path) == ["results.json"]  # no temporary file left


def test_cifar10_end_to_end_files_readable(tmp_path, capsys, umask_022):
    """A tiny run on a fake CIFAR-10 folder; every file written is mode 0644."""
    from tests.bench.test_data import write_cifar

    folder = str(tmp_path / "cifar-10-batches-py")
    write_cifar(folder, n_train=8, n_test=10)
    out = str(tmp_path / "run")
    rc = cli.main(["--dataset", folder, "--arch", "mlp", "--schemes", "he_normal", "--activation", "tanh",
                   "--depth", "2", "--width", "8", "--steps", "4", "--eval-every", "2", "--batch-size", "8",
                   "--seeds", "1", "--lr", "0.05", "--devices", "1", "--val-fraction", "0.25", "--out", out])
    assert rc == 0
    info = _read(out)["config"]["dataset_info"]
    assert info["name"] == "cifar-10-batches-py" and info["n_train"] == 30 and info["n_val"] == 10
    assert info["n_test"] == 10
    assert info["n_features"] == 3072 and info["n_classes"] == 10 and info["image_shape"] == [32, 32, 3]
    written = sorted(os.listdir(out))
    assert {"results.json", "summary.md", *PNGS, "saturation.png"} <= set(written), written
    assert {name: oct(os.stat(os.path.join(out, name)).st_mode & 0o777) for name in written} == {
        name: "0o644" for name in written
    }


def test_missing_cifar_batch_exits_2(tmp_path, capsys):
    from tests.bench.test_data import write_cifar

    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)
    (folder / "test_batch").unlink()
    with pytest.raises(SystemExit) as exc:
        cli.main(["--dataset", str(folder), "--out", str(tmp_path / "never")])
    assert exc.value.code == 2 and "missing test_batch" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()
