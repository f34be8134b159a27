"""Section ``first_params``: time to first parameters of an unrolled Flax MLP, ``jinit.init``
against ``jax.jit(module.init)`` and eager ``module.init``, each in a fresh process."""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.speed.harness import Context

__all__ = ["FIRST_PARAMS_METHODS", "time_first_params", "first_params_records", "run"]

FIRST_PARAMS_METHODS = ("jinit.init", "jax.jit(module.init)", "module.init (eager)")


def time_first_params(method: str, depth: int, width: int) -> float:
    """Seconds from nothing compiled to the parameters of an unrolled ``depth``-layer Flax MLP
    (He-normal kernels, zero biases), by ``method``. Run it in a fresh process: compiled
    programs are cached per process, and the point is the first call."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    import jinit

    init = jinit.he_normal() if method != "jinit.init" else None

    class MLP(nn.Module):
        @nn.compact
        def __call__(self, x):
            for _ in range(depth):
                x = nn.relu(nn.Dense(width, **({"kernel_init": init} if init else {}))(x))
            return x

    x, key = jnp.ones((1, width)), jax.random.key(0)
    t0 = time.perf_counter()
    if method == "jinit.init":
        out = jinit.init(MLP(), [("*kernel", jinit.he_normal()), ("*bias", jinit.zeros())], key, x)
    elif method == "jax.jit(module.init)":
        out = jax.jit(MLP().init)(key, x)
    else:
        out = MLP().init(key, x)
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
