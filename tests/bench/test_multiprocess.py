"""A multi-host launch on one machine: two processes joined by ``jax.distributed``,
two CPU devices each, run the benchmark unchanged; the model axis is sharded over
the four devices, only process 0 writes, and the numbers equal a one-process run."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

import bench

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CONFIG = bench.BenchConfig(schemes=("he_normal", "glorot_normal"), archs=("mlp",), activations=("relu",), depths=(3,),
                           widths=(16,), lrs=(0.02, 0.05), steps=20, eval_every=5, batch_size=32, seeds=2,
                           dataset="teacher:n_train=256,n_test=64,dim=8,classes=3")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_processes_equal_one(tmp_path):
    out, port = str(tmp_path / "mp"), str(_free_port())
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    env["PYTHONPATH"] = ROOT
    procs = [subprocess.Popen([sys.executable, os.path.join(ROOT, "tests", "bench", "mp_worker.py"), str(i), port, out],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for i in range(2)]
    logs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    assert all("2 processes, 4 devices, 8 runs" in log for log in logs), logs
    with open(os.path.join(out, "results.json")) as f:
        multi = json.load(f)
    assert multi["env"]["devices_used"] == 4
    single = bench.run(CONFIG.replace(devices=1), str(tmp_path / "single"), plots=False)
    assert len(multi["runs"]) == len(single.runs) == 8
    for a, b in zip(multi["runs"], single.runs):
        assert (a["scheme"], a["lr"], a["seed"]) == (b["scheme"], b["lr"], b["seed"])
        np.testing.assert_allclose([v for _, v in a["loss_curve"]], [v for _, v in b["loss_curve"]], rtol=1e-4)
    assert [e["best_lr"] for e in multi["selection"]] == [e["best_lr"] for e in single.selection]
