"""Smoke test of ``python -m bench.speed``: every section runs on tiny sizes and
writes its JSON. Timings are recorded, never asserted."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("rich")

from bench import speed  # noqa: E402


def test_speed_benchmark_smoke(tmp_path, capsys):
    out = tmp_path / "speed.json"
    argv = [
        "--sections", "tensor,orthogonal,tree,depth,first_params",  # engine: its own test below
        "--shape", "32x48", "--dists", "normal,truncated_normal",
        "--orthogonal-n", "16",
        "--tree-layers", "2", "--tree-width", "32",
        "--depths", "2", "--depth-width", "8", "--depth-batch", "4", "--unrolled-max-depth", "0",
        "--first-params-depths", "3", "--first-params-width", "8",
        "--no-flax-tree",
        "--repeats", "1", "--warmup", "1", "--orthogonal-repeats", "1", "--tree-repeats", "1",
        "--depth-repeats", "1",
        "--rng", "philox",
        "--no-torch",
        "--out", str(out),
    ]
    assert speed.main(argv) == 0
    results = json.loads(out.read_text())
    assert {"machine", "settings", "cases", "tensor_ratios", "orthogonal_ratios", "tree_ratios", "depth",
            "first_params"} <= set(results)
    machine = results["machine"]
    assert machine["logical_cpus"] >= 1 and machine["jax"] and machine["cpu_model"]
    cases = results["cases"]
    assert all("error" not in c for c in cases), [c for c in cases if "error" in c]
    assert {c["section"] for c in cases} == {"tensor", "orthogonal", "tree"}
    for c in cases:
        assert c["min_ms"] > 0 and c["median_ms"] >= c["min_ms"] and c["bytes"] > 0 and c["gb_per_s"] > 0
    names = {(c["group"], c["name"]) for c in cases}
    assert ("dense 32x48 / normal", "jinit[philox]") in names
    assert ("dense 32x48 / truncated_normal", "jax.nn") in names
    ratios = {(r["group"], r["rng"]) for r in results["tensor_ratios"]}
    assert ratios == {("dense 32x48 / normal", "philox"), ("dense 32x48 / truncated_normal", "philox")}
    assert all("vs_jax_nn" in r for r in results["tensor_ratios"])
    assert [(d["model"], d["depth"]) for d in results["depth"]] == [("scanned", 2)]
    assert all(d["final_loss_finite"] for d in results["depth"])
    (first,) = results["first_params"]
    assert first["depth"] == 3 and all(first[m] > 0 for m in speed.FIRST_PARAMS_METHODS)
    assert first["speedup_vs_jit"] > 0
    assert "jinit speed-up" in capsys.readouterr().out


def test_engine_section_smoke(tmp_path, capsys):
    """The engine section in its smallest mode: the expected rows, finite positive rates, and the
    engine and the hand-written loop training the same models (equal final losses)."""
    import math

    out = tmp_path / "engine.json"
    argv = ["--sections", "engine", "--engine-depth", "2", "--engine-width", "8", "--engine-steps", "2",
            "--engine-models", "1", "2", "--engine-repeats", "1", "--no-torch", "--out", str(out)]
    assert speed.main(argv) == 0
    results = json.loads(out.read_text())
    throughput, batching = results["engine_throughput"], results["engine_batching"]
    assert [(r["arch"], r["scheme"], r["models"], r["steps"]) for r in throughput] == [
        ("mlp", "he_normal", 1, 10), ("resmlp", "fixup", 1, 10)]
    for r in throughput:
        assert "error" not in r, r
        for key in ("engine_steps_per_s", "hand_steps_per_s", "engine_over_hand"):
            assert math.isfinite(r[key]) and r[key] > 0, (key, r)
        assert r["engine_compile_s"] >= 0 and r["hand_compile_s"] >= 0  # ~0 from the tests' compilation cache
        assert r["engine_final_loss"] == pytest.approx(r["hand_final_loss"], rel=1e-3)
    assert [(r["arch"], r["models"], r["steps"]) for r in batching] == [("mlp", 1, 2), ("mlp", 2, 2)]
    for r in batching:
        assert "error" not in r, r
        for key in ("model_steps_per_s", "speedup_vs_1", "first_call_s", "final_train_loss"):
            assert math.isfinite(r[key]) and r[key] > 0, (key, r)
        assert r["compile_s"] >= 0
    assert batching[0]["speedup_vs_1"] == 1.0
    printed = capsys.readouterr().out
    assert "hand-written jit + optax loop" in printed and "Models per compiled program" in printed


def test_bad_arguments_are_reported():
    assert speed.main(["--sizes", "tensor,bogus", "--no-torch"]) == 2
    assert speed.main(["--rng", "mt19937", "--no-torch"]) == 2
    assert speed.main(["--dists", "cauchy", "--no-torch"]) == 2
    assert speed.main(["--sections", "engine", "--engine-parts", "batching,sharding", "--no-torch"]) == 2


def test_sizes_is_a_deprecated_alias_of_sections(tmp_path, monkeypatch):
    """``--sizes`` still chooses the sections, with a warning; the JSON is written to a
    temporary file in the same folder, then moved into place with os.replace."""
    import os
    import warnings

    from bench.speed import cli

    args = speed.build_parser().parse_args(["--sections", "depth"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cli.selected_sections(args) == ["depth"]
    replaced = []
    real_replace = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (replaced.append((src, dst)), real_replace(src, dst)))
    out = tmp_path / "speed.json"
    argv = ["--sizes", "tensor", "--shape", "8x8", "--dists", "normal", "--rng", "jax", "--repeats", "1",
            "--warmup", "1", "--no-torch", "--out", str(out)]
    with pytest.warns(FutureWarning, match="--sizes is deprecated; use --sections"):
        assert speed.main(argv) == 0
    results = json.loads(out.read_text())
    assert {c["section"] for c in results["cases"]} == {"tensor"} and "depth" not in results
    assert results["settings"]["sizes"] == results["settings"]["sections"] == "tensor"
    ((src, dst),) = replaced
    assert os.path.dirname(src) == str(tmp_path) and src != dst and dst == str(out)
    assert os.listdir(tmp_path) == ["speed.json"]


def test_json_write_failure_keeps_the_old_file(tmp_path, monkeypatch):
    import os

    from bench.speed import cli

    out = tmp_path / "speed.json"
    out.write_text('{"old": 1}')

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        cli.write_json(str(out), {"new": 2})
    assert out.read_text() == '{"old": 1}' and os.listdir(tmp_path) == ["speed.json"]
