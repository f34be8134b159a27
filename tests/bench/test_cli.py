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
TINY = ["--dataset", TEACHER, "--depth", "3", "--width", "16", "--steps", "20", "--eval-every", "5",
        "--batch-size", "32", "--seeds", "2", "--lr", "0.05", "--devices", "1"]
PNGS = ("loss_curves.png", "activation_std.png", "grad_norm.png", "accuracy.png")


def _check_schema(results: dict, depth: int) -> None:
    assert results["format"] == "jinit-bench/1"
    cfg, env = results["config"], results["env"]
    for key in ("schemes", "activations", "depths", "width", "optimizer", "lr", "steps", "batch_size", "seeds",
                "dataset", "eval_every", "target_loss", "dataset_info", "settings_hash"):
        assert key in cfg, key
    assert isinstance(env["jax"], str) and isinstance(env["backend"], str) and isinstance(env["devices"], list)
    assert results["runs"]
    for run in results["runs"]:
        for key, kind in (("scheme", str), ("activation", str), ("depth", int), ("width", int), ("seed", int),
                          ("optimizer", str), ("lr", float), ("steps", int), ("diverged", bool),
                          ("loss_curve", list), ("init_stats", dict)):
            assert isinstance(run[key], kind), (key, run[key])
        for key in ("final_train_loss", "test_accuracy"):
            assert run[key] is None or isinstance(run[key], float)
        assert run["steps_to_target"] is None or isinstance(run["steps_to_target"], int)
        assert all(len(p) == 2 and isinstance(p[0], int) and (p[1] is None or isinstance(p[1], float))
                   for p in run["loss_curve"])
        assert run["loss_curve"][0][0] == 0 and run["loss_curve"][-1][0] == run["steps"] or run["diverged"]
        stats = run["init_stats"]
        assert len(stats["activation_std"]) == depth and len(stats["grad_norm"]) == depth


def _read(out):
    with open(os.path.join(out, "results.json")) as f:
        return json.load(f)


def test_end_to_end_tiny(tmp_path, capsys):
    out = str(tmp_path / "run")
    rc = cli.main(TINY + ["--schemes", "he_normal,zeros", "--activation", "relu,tanh", "--out", out])
    assert rc == 0
    results = _read(out)
    _check_schema(results, depth=3)
    assert len(results["runs"]) == 2 * 2 * 2  # schemes x activations x seeds
    assert {r["scheme"] for r in results["runs"]} == {"he_normal", "zeros"}
    summary = open(os.path.join(out, "summary.md")).read()
    assert "## relu, depth 3" in summary and "## tanh, depth 3" in summary and "he_normal" in summary
    for png in PNGS + ("saturation.png",):  # saturation: tanh has a saturation statistic
        assert os.path.getsize(os.path.join(out, png)) > 1000, png
    printed = capsys.readouterr().out
    assert "he_normal" in printed and "compile" in printed
    # re-render only
    os.remove(os.path.join(out, "accuracy.png"))
    assert cli.main(["--replot", "--out", out]) == 0
    assert os.path.exists(os.path.join(out, "accuracy.png"))


def test_interrupt_then_resume(tmp_path, monkeypatch, capsys):
    """Ctrl-C after the first configuration: exit 130, valid files, resume skips it."""
    from bench.train import Trainer

    out = str(tmp_path / "run")
    args = TINY + ["--schemes", "he_normal,glorot_normal,lecun_normal", "--activation", "relu", "--out", out]
    real_run = Trainer.run
    calls = []

    def flaky_run(self, *a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_run(self, *a, **kw)

    monkeypatch.setattr(Trainer, "run", flaky_run)
    assert cli.main(args) == cli.EXIT_INTERRUPTED
    assert "resume with" in capsys.readouterr().out
    first = _read(out)
    assert {r["scheme"] for r in first["runs"]} == {"he_normal"}
    assert os.path.exists(os.path.join(out, "summary.md"))

    monkeypatch.setattr(Trainer, "run", real_run)
    assert cli.main(args) == 0
    assert "resuming: 1 of 3" in capsys.readouterr().out
    done = _read(out)
    assert sorted(r["scheme"] for r in done["runs"]) == sorted(["glorot_normal", "he_normal", "lecun_normal"] * 2)
    # the finished configuration was kept as it was, not trained again
    assert [r for r in done["runs"] if r["scheme"] == "he_normal"] == first["runs"]

    # other settings in the same --out: refused, nothing changed
    before = open(os.path.join(out, "results.json")).read()
    with pytest.raises(SystemExit) as exc:
        cli.main(args[:-2] + ["--lr", "0.01", "--out", out])
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
                                                    "--activation", "relu,tanh", "--out", out]
    # A runner started in the background (`cmd &` in a script) ignores SIGINT, and its children
    # inherit that: restore the default so that Python turns the signal into KeyboardInterrupt.
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    path = os.path.join(out, "results.json")
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if os.path.exists(path) and _read(path[: -len("/results.json")])["runs"]:
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
    _check_schema(results, depth=3)
    assert len({r["config_hash"] for r in results["runs"]}) < 12  # stopped early

    from bench.data import load_dataset
    from bench.train import Trainer, TrainSettings

    first = results["runs"][0]
    settings = TrainSettings("momentum", 0.05, 200, 32, 50, 0.5)
    single = Trainer(load_dataset(TEACHER), settings, n_devices=1)
    ref = single.run(jinit.get_scheme(first["scheme"]), first["activation"], 3, 16, [0, 1]).runs[0]
    np.testing.assert_allclose([v for _, v in first["loss_curve"]], [v for _, v in ref["loss_curve"]], rtol=1e-4)


BAD = [
    (["--schemes", "he_normal,nope"], "valid schemes are"),
    (["--activation", "relu,swoosh"], "valid activations are"),
    (["--dataset", "no/such/place"], "unknown dataset"),
    (["--preset", "nope"], "valid presets are"),
    (["--optimizer", "rmsprop"], "valid optimizers are"),
    (["--depth", "0"], "--depth"),
    (["--depth", "3,x"], "--depth"),
    (["--steps", "0"], "--steps"),
    (["--lr", "-1"], "--lr"),
    (["--width", "abc"], "invalid int value"),
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
    for name in list(jinit.SCHEMES) + list(PRESETS):
        assert name in text, name
    for flag in ("--preset", "--schemes", "--depth", "--width", "--activation", "--optimizer", "--lr", "--steps",
                 "--batch-size", "--seeds", "--dataset", "--eval-every", "--target-loss", "--out"):
        assert flag in text, flag
    for p in PRESETS.values():
        assert p.source.split(",")[0] in " ".join(text.split())


def test_presets_resolve_against_the_registry():
    registered = list(jinit.SCHEMES)
    schemes, _ = resolve_schemes(PRESETS["default"], registered)
    assert schemes == registered  # the default runs every registered scheme
    schemes, notes = resolve_schemes(PRESETS["default"], registered + ["lsuv"], model_level=["lsuv"], lsuv_ok=False)
    assert "lsuv" not in schemes and any("lsuv" in n for n in notes)
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
    rc = cli.main(["--dataset", folder, "--schemes", "he_normal", "--activation", "tanh", "--depth", "2",
                   "--width", "8", "--steps", "4", "--eval-every", "2", "--batch-size", "8", "--seeds", "1",
                   "--lr", "0.05", "--devices", "1", "--out", out])
    assert rc == 0
    info = _read(out)["config"]["dataset_info"]
    assert info["name"] == "cifar-10-batches-py" and info["n_train"] == 40 and info["n_test"] == 10
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
