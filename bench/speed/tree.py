"""Section ``tree``: a 1B-parameter tree (16 layers of 8192x8192 + bias), initialized leaf by
leaf with jinit, jax.nn and torch, and with jinit through ``jax.jit(flax_model.init)``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from bench.speed.harness import Case, Context, run_section, torch_module

__all__ = ["tree_cases", "tree_ratios", "run"]


def _leafwise(key, layers: int, width: int, kernel_init, bias_init) -> tuple[Callable, Callable]:
    """(the whole tree leaf by leaf, each layer freed before the next; its first layer, the warm-up)."""
    import jax

    def leaf(i):
        k = jax.random.fold_in(key, i)
        return kernel_init(k, (width, width)), bias_init(k, (width,))

    def run():
        for i in range(layers):
            jax.block_until_ready(leaf(i))  # freed before the next leaf

    return run, lambda: leaf(0)


def _torch_tree(torch, layers: int, width: int) -> Callable:
    def torch_tree():
        for _ in range(layers):
            w = torch.nn.init.kaiming_normal_(torch.empty(width, width), nonlinearity="relu")
            b = torch.zeros(width)
            del w, b

    return torch_tree


def _flax_init(key, layers: int, width: int) -> tuple[Callable, Callable]:
    """(the compiled ``jax.jit(model.init)`` of the stack, called; its compilation, the warm-up)."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    import jinit

    class Stack(nn.Module):
        @nn.compact
        def __call__(self, x):
            for _ in range(layers):
                x = nn.Dense(width, kernel_init=jinit.he_normal(), bias_init=jinit.zeros())(x)
            return x

    x = jnp.ones((1, width), jnp.float32)
    compiled: list = []

    def compile_init():
        compiled.append(jax.jit(Stack().init).lower(key, x).compile())

    return (lambda: compiled[0](key, x)), compile_init


def tree_cases(layers: int, width: int, rngs: Sequence[str], with_torch: bool, with_flax: bool) -> list[Case]:
    import jax

    import jinit

    key = jax.random.key(0)
    params = layers * (width * width + width)
    nbytes = params * 4
    group = f"tree {layers} x ({width}x{width} + bias) = {params / 1e6:,.1f}M params"
    cases: list[Case] = []

    def add(name, fn, warm=None, **meta):
        meta = {"layers": layers, "width": width, "params": params, **meta}
        cases.append(Case("tree", group, name, fn, nbytes, meta, warm=warm))

    for r in rngs:
        run, warm = _leafwise(key, layers, width, jinit.he_normal(generator=r), jinit.zeros())
        add(f"jinit[{r}] leaf by leaf", run, warm, kind="jinit", rng=r)
    jk = jax.jit(lambda k: jax.nn.initializers.variance_scaling(2.0, "fan_in", "normal")(k, (width, width)))
    jb = jax.jit(lambda k: jax.nn.initializers.zeros(k, (width,)))
    run, warm = _leafwise(key, layers, width, lambda k, s: jk(k), lambda k, s: jb(k))
    add("jax.nn leaf by leaf", run, warm, kind="jax.nn")
    torch = torch_module() if with_torch else None
    if torch is not None:
        add("torch leaf by leaf", _torch_tree(torch, layers, width), lambda: None, kind="torch")
    if with_flax:
        run, warm = _flax_init(key, layers, width)
        add("jinit[jax] jax.jit(model.init)", run, warm, kind="jinit_flax", rng="jax")
    return cases


def tree_ratios(records: list[dict]) -> list[dict]:
    """Per jinit contender: seconds, and speed-ups over torch and jax.nn (leaf by leaf)."""
    by = {r["name"]: r for r in records if "min_ms" in r}
    out = []
    for name, r in by.items():
        if not r.get("kind", "").startswith("jinit"):
            continue
        row = {"name": name, "seconds": round(r["min_ms"] / 1e3, 3)}
        for other, key in (("torch leaf by leaf", "vs_torch"), ("jax.nn leaf by leaf", "vs_jax_nn")):
            if other in by:
                row[key] = round(by[other]["min_ms"] / r["min_ms"], 3)
        out.append(row)
    return out


def run(ctx: Context) -> dict:
    layers = ctx.args.tree_layers or (4 if ctx.args.quick else 16)
    width = ctx.args.tree_width or (256 if ctx.args.quick else 8192)
    ctx.progress(f"tree: {layers} layers of {width}x{width}")
    cases = tree_cases(layers, width, ctx.rngs, ctx.with_torch, not ctx.args.no_flax_tree)
    records = run_section(cases, ctx.args.tree_repeats, 1, ctx.progress)
    return {"cases": records, "tree_ratios": tree_ratios(records)}
