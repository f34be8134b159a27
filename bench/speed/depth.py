"""Section ``depth``: compile time and training-step time of the benchmark's scanned MLP
(:class:`bench.archs.mlp.MLP`, ``nn.scan`` over the hidden layers) against depth, and the
compile time of the same network unrolled (:class:`bench.archs.mlp.UnrolledMLP`, one ``Dense``
per layer) up to ``--unrolled-max-depth``. Both are initialized with ``he_normal``'s rules
through ``jinit.init``, under ``jax.jit``."""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

from bench.speed.harness import Context

__all__ = ["depth_records", "run"]


def _network(depth: int, width: int, n_in: int, n_out: int, unrolled: bool):
    """(module, rules): the benchmark's scanned ``mlp`` (:mod:`bench.archs.mlp`), or the same
    network unrolled, with ReLU; ``rules`` are ``he_normal``'s for the architecture's structure."""
    import jinit
    from bench.archs import NetSpec, get_arch
    from bench.archs.mlp import UnrolledMLP

    spec = NetSpec("mlp", depth, width, "relu", n_in, n_out)
    arch = get_arch("mlp")
    rules = jinit.get_scheme("he_normal").rules(arch.structure(spec))
    module = UnrolledMLP(depth, width, n_out, "relu") if unrolled else arch.module(spec)
    return module, rules


def _compile(model, rules, key, x, y, opt):
    """(init compile seconds, the compiled SGD step, its compile seconds, initial params, opt state).

    The init program is ``jax.jit`` of ``jinit.init(model, rules, key, x)``, as the training
    engine initializes."""
    import jax
    import optax

    import jinit

    def loss_fn(p):
        logits = model.apply({"params": p}, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def step(p, s):
        loss, g = jax.value_and_grad(loss_fn)(p)
        updates, s = opt.update(g, s, p)
        return optax.apply_updates(p, updates), s, loss

    t0 = time.perf_counter()
    init_c = jax.jit(lambda k, a: jinit.init(model, rules, k, a)).lower(key, x).compile()
    t_init_compile = time.perf_counter() - t0
    params = init_c(key, x)["params"]
    state = opt.init(params)
    t0 = time.perf_counter()
    step_c = jax.jit(step, donate_argnums=(0, 1)).lower(params, state).compile()
    t_step_compile = time.perf_counter() - t0
    return t_init_compile, step_c, t_step_compile, params, state


def _time_steps(step_c, params, state, repeats: int):
    """One untimed step, then ``repeats`` timed ones: (times, params, state, last loss)."""
    import jax

    params, state, loss = step_c(params, state)
    jax.block_until_ready(loss)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        params, state, loss = step_c(params, state)
        jax.block_until_ready(loss)
        times.append(time.perf_counter() - t0)
    return times, params, state, loss


def depth_records(depths: Sequence[int], width: int, batch: int, repeats: int, unrolled_max: int, progress) -> list[dict]:
    import jax
    import jax.numpy as jnp
    import optax

    n_in, n_out = 64, 10
    key = jax.random.key(0)
    x = jax.random.normal(jax.random.key(1), (batch, n_in))
    y = jax.random.randint(jax.random.key(2), (batch,), 0, n_out)
    opt = optax.sgd(1e-3)
    out = []
    variants = [(d, False) for d in depths] + [(d, True) for d in depths if d <= unrolled_max]
    for depth, unrolled in variants:
        model, rules = _network(depth, width, n_in, n_out, unrolled)
        t_init_compile, step_c, t_step_compile, params, state = _compile(model, rules, key, x, y, opt)
        times, params, state, loss = _time_steps(step_c, params, state, repeats)
        rec = {
            "section": "depth",
            "depth": depth,
            "model": "unrolled" if unrolled else "scanned",
            "width": width,
            "batch": batch,
            "params": int(sum(a.size for a in jax.tree.leaves(params))),
            "init_compile_s": round(t_init_compile, 3),
            "step_compile_s": round(t_step_compile, 3),
            "step_min_ms": round(min(times) * 1e3, 3),
            "step_median_ms": round(statistics.median(times) * 1e3, 3),
            "final_loss_finite": bool(jnp.isfinite(loss)),
        }
        out.append(rec)
        progress(
            f"  depth {depth} ({rec['model']}): compile init {t_init_compile:.2f}s, step {t_step_compile:.2f}s; "
            f"step {rec['step_min_ms']:.2f} ms"
        )
        del params, state
    return out


def run(ctx: Context) -> dict:
    args = ctx.args
    depths = args.depths or ([2, 3] if args.quick else [10, 100, 1000])
    width = args.depth_width or (8 if args.quick else 256)
    ctx.progress(f"depth: {depths}, width {width}")
    repeats = 3 if args.quick else args.depth_repeats
    return {"depth": depth_records(depths, width, args.depth_batch, repeats, args.unrolled_max_depth, ctx.progress)}
