"""Section ``first_params``: time to first parameters of the benchmark's unrolled Flax MLP
(:class:`bench.archs.mlp.UnrolledMLP`), ``jinit.init`` against ``jax.jit(module.init)`` and
eager ``module.init``, each in a fresh process."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.speed.harness import Context

__all__ = ["FIRST_PARAMS_METHODS", "time_first_params", "first_params_records", "run"]

FIRST_PARAMS_METHODS = ("jinit.init", "jax.jit(module.init)", "module.init (eager)")
N_OUT = 10  # the readout's width (digits' classes)


def time_first_params(method: str, depth: int, width: int) -> float:
    """Seconds from nothing compiled to the parameters of the benchmark's unrolled ReLU MLP
    (:class:`bench.archs.mlp.UnrolledMLP`: ``depth`` Dense layers of ``width`` units on
    ``width`` inputs, then a 10-way readout; He-normal kernels, zero biases), by ``method``.
    ``jinit.init`` applies ``he_normal``'s rules for the ``mlp`` structure; the other two
    methods get the same initializers as the layers' ``kernel_init`` / ``bias_init``. Run it in
    a fresh process: compiled programs are cached per process, and the point is the first call."""
    import jax
    import jax.numpy as jnp

    import jinit
    from bench.archs import NetSpec, get_arch
    from bench.archs.mlp import UnrolledMLP

    spec = NetSpec("mlp", depth, width, "relu", width, N_OUT)
    he, zeros = jinit.he_normal(), jinit.zeros()
    x, key = jnp.ones((1, width)), jax.random.key(0)
    t0 = time.perf_counter()
    if method == "jinit.init":
        rules = jinit.get_scheme("he_normal").rules(get_arch("mlp").structure(spec))
        out = jinit.init(UnrolledMLP(depth, width, N_OUT, "relu"), rules, key, x)
    else:
        module = UnrolledMLP(depth, width, N_OUT, "relu", he, zeros, he, zeros)
        out = jax.jit(module.init)(key, x) if method == "jax.jit(module.init)" else module.init(key, x)
    jax.block_until_ready(out)
    return time.perf_counter() - t0


def first_params_records(depths: Sequence[int], width: int, max_jit_depth: int, progress) -> list[dict]:
    import subprocess

    out = []
    for depth in depths:
        rec: dict[str, Any] = {"section": "first_params", "depth": depth, "width": width}
        for method in FIRST_PARAMS_METHODS:
            if method == "jax.jit(module.init)" and depth > max_jit_depth:
                continue
            code = f"from bench.speed import time_first_params; print(time_first_params({method!r}, {depth}, {width}))"
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
            if done.returncode != 0:
                rec[method] = None
                progress(f"  {method} at depth {depth} failed: {done.stderr.strip().splitlines()[-1:]}")
                continue
            rec[method] = round(float(done.stdout.strip().splitlines()[-1]), 3)
            progress(f"  depth {depth}: {method} {rec[method]:.2f} s")
        jit_s, ours = rec.get("jax.jit(module.init)"), rec.get("jinit.init")
        if jit_s and ours:
            rec["speedup_vs_jit"] = round(jit_s / ours, 2)
        out.append(rec)
    return out


def run(ctx: Context) -> dict:
    args = ctx.args
    depths = args.first_params_depths or ([2, 4] if args.quick else [50, 200, 1000])
    width = args.first_params_width or (8 if args.quick else 512)
    ctx.progress(f"time to first parameters: unrolled MLPs of depth {depths}, width {width}")
    return {"first_params": first_params_records(depths, width, args.first_params_max_jit_depth, ctx.progress)}
