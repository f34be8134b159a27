"""``python -m bench.device_check --tiny``: every step runs and the summary names each one.
Figures are recorded, never asserted."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from bench import device_check

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STEPS = ("environment", "speed_tensor", "speed_orthogonal", "speed_tree", "speed_engine", "scaling", "bench",
         "speed_first_params")


def test_budgets_fit_the_total():
    steps = device_check.plan("out", tiny=False, accelerator=True)
    assert ("environment",) + tuple(s.name for s in steps) == STEPS
    assert device_check._BUDGETS["environment"] + sum(s.budget_s for s in steps) == device_check.TOTAL_S
    assert all(s.budget_s > 0 for s in device_check.plan("out", tiny=True, accelerator=False))


def test_a_failing_or_slow_step_is_recorded(tmp_path):
    (tmp_path / "logs").mkdir()
    fail = device_check.Step("boom", "fails", ("-c", "import sys; print('bad input'); sys.exit(3)"), "x.json", 30)
    slow = device_check.Step("slow", "sleeps", ("-c", "import time; time.sleep(60)"), "y.json", 1)
    quiet = device_check.Step("quiet", "writes nothing", ("-c", "pass"), "z.json", 30)
    failed, stopped, missing = (device_check.run_step(s, str(tmp_path), s.budget_s) for s in (fail, slow, quiet))
    assert failed["status"] == "failed" and "exit status 3" in failed["error"] and "bad input" in failed["error"]
    assert stopped["status"] == "timed out" and stopped["seconds"] < 30
    assert missing["status"] == "failed" and "no z.json" in missing["error"]


@pytest.mark.parametrize("tiny,accelerator", [(False, True), (False, False), (True, False)])
def test_every_step_command_is_valid(tiny, accelerator):
    """Each step's command line parses with its own CLI (and the benchmark's resolves to a
    valid BenchConfig), so no step rots even when only some run in the test below."""
    from bench import cli
    from bench.speed import cli as speed_cli

    for step in device_check.plan("out", tiny=tiny, accelerator=accelerator):
        if step.argv[:2] == ("-m", "bench.speed"):
            speed_cli.build_parser().parse_args(list(step.argv[2:]))
        elif step.argv[:2] == ("-m", "bench"):
            parser = cli.build_parser()
            config, _ = cli.resolve_config(parser.parse_args(list(step.argv[2:])), parser)
            assert config.steps >= 1
        else:
            raise AssertionError(f"unexpected step command {step.argv}")


@pytest.mark.slow
def test_tiny_device_check_writes_every_file(tmp_path):
    """A real tiny run of the steps that train (the others' commands are checked above and their
    sections by tests/test_speed_smoke.py)."""
    out = tmp_path / "check"
    only = ("speed_engine", "scaling", "bench")
    done = subprocess.run([sys.executable, "-m", "bench.device_check", "--tiny", "--only", ",".join(only), "--out",
                           str(out)], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    for path in ("README.md", "steps.json", "environment.json", "speed/engine.json", "scaling.json",
                 "bench/results.json", "bench/summary.md"):
        assert (out / path).is_file(), path
    readme = (out / "README.md").read_text()
    for step in ("environment",) + only:
        assert f"| {step} |" in readme and f"logs/{step}.log" in readme, step
    records = json.loads((out / "steps.json").read_text())
    assert [r["step"] for r in records] == ["environment", *only] and all(r["status"] == "ok" for r in records)
    scaling = json.loads((out / "scaling.json").read_text())
    assert [r["models"] for r in scaling["engine_batching"]] == [1, 2]


def test_only_names_valid_steps(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        device_check.main(["--tiny", "--only", "bench,warp", "--out", str(tmp_path / "never")])
    assert exc.value.code == 2 and "valid steps are speed_tensor" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()


def test_summary_names_failed_steps_and_missing_figures(tmp_path):
    (tmp_path / "scaling.json").write_text(json.dumps({"engine_batching": [
        {"arch": "mlp", "depth": 2, "width": 8, "steps": 2, "models": 1, "model_steps_per_s": 50.0,
         "speedup_vs_1": 1.0, "compile_s": 1.0, "first_call_s": 1.5},
        {"arch": "mlp", "depth": 2, "width": 8, "steps": 2, "models": 256, "error": "XlaRuntimeError: out | of memory"}]}))
    records = [
        {"step": "scaling", "what": "models per program", "status": "ok", "seconds": 3.0, "budget_s": 65,
         "output": "scaling.json", "command": "python -m bench.speed --sections engine"},
        {"step": "bench", "what": "the benchmark", "status": "timed out", "seconds": 110.0, "budget_s": 110,
         "output": "bench/results.json", "command": "python -m bench", "error": "stopped after its budget of 110 s"},
    ]
    text = device_check.summary(str(tmp_path), records, 113.0, tiny=False)
    assert "1 of 2 steps ok" in text and "- bench: stopped after its budget of 110 s" in text
    assert "| 256 | XlaRuntimeError: out \\| of memory |" in text and "| 1 | 50 | 1.00x |" in text
    assert "No figure: the step timed out" in text and "Source: `scaling.json`" in text
