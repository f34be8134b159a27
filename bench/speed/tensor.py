"""Section ``tensor``: one dense and one conv kernel, three distributions at He scale, jinit
against ``jax.nn.initializers`` and ``torch.nn.init``, next to a plain fill and the raw bits."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from bench.speed.harness import Case, Context, run_section, torch_module

__all__ = ["tensor_cases", "tensor_ratios", "shapes", "run"]

DISTS = ("normal", "uniform", "truncated_normal")


def _fans_hwio(shape: tuple[int, ...]) -> int:
    return math.prod(shape[:-1])  # fan_in of an (..., in, out) kernel


def _torch_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """HWIO (jax) -> OIHW (torch), same fans."""
    if len(shape) == 2:
        return (shape[1], shape[0])
    return (shape[-1], shape[-2], *shape[:-2])


def _contenders(std: float) -> dict[str, tuple[Callable, Callable, Callable]]:
    """Per distribution: (jinit factory of generator, jax.nn initializer, torch init of (torch, tensor))."""
    import jax

    import jinit

    jnn = jax.nn.initializers
    trunc = jinit.truncated_normal_std(-2.0, 2.0)  # std of N(0, 1) truncated to (-2, 2)
    return {
        "normal": (
            lambda r: jinit.he_normal(generator=r),
            jnn.variance_scaling(2.0, "fan_in", "normal"),
            lambda t, w: t.nn.init.kaiming_normal_(w, nonlinearity="relu"),
        ),
        "uniform": (
            lambda r: jinit.he_uniform(generator=r),
            jnn.variance_scaling(2.0, "fan_in", "uniform"),
            lambda t, w: t.nn.init.kaiming_uniform_(w, nonlinearity="relu"),
        ),
        "truncated_normal": (
            lambda r: jinit.variance_scaling(2.0, "fan_in", "truncated_normal", generator=r),
            jnn.he_normal(),
            lambda t, w: t.nn.init.trunc_normal_(w, std=std / trunc, a=-2 * std / trunc, b=2 * std / trunc),
        ),
    }


def _baselines(add, key, shape, tshape, torch) -> None:
    import jax
    import jax.numpy as jnp

    from jinit import philox
    from jinit.rng import fused_threefry_key

    fill = jax.jit(lambda: jnp.full(shape, 1.0, jnp.float32))
    add("fill", "jnp.full", fill, kind="baseline")
    bits = jax.jit(lambda k: jax.random.bits(k, shape))
    add("bits", "jax.random.bits", lambda: bits(key), kind="baseline")
    fbits = jax.jit(lambda k: jax.random.bits(fused_threefry_key(k), shape))
    add("bits", "jax.random.bits, fused (jinit)", lambda: fbits(key), kind="baseline")
    pbits = jax.jit(lambda k: philox.bits(k, shape)[0])
    add("bits", "philox.bits", lambda: pbits(key), kind="baseline")
    if torch is not None:
        add("fill", "torch empty+fill_", lambda: torch.empty(tshape).fill_(1.0), kind="baseline")


def tensor_cases(
    label: str,
    shape: tuple[int, ...],
    rngs: Sequence[str],
    with_torch: bool,
    dists: Sequence[str] = DISTS,
) -> list[Case]:
    import jax

    key = jax.random.key(0)
    nbytes = math.prod(shape) * 4
    tshape = _torch_shape(shape)
    torch = torch_module() if with_torch else None
    cases: list[Case] = []

    def add(group, name, fn, **meta):
        cases.append(Case("tensor", f"{label} / {group}", name, fn, nbytes, {"shape": list(shape), "dist": group, **meta}))

    _baselines(add, key, shape, tshape, torch)
    for dist, (make_jinit, jax_init, torch_init) in _contenders(math.sqrt(2.0 / _fans_hwio(shape))).items():
        if dist not in dists:
            continue
        for r in rngs:
            init = make_jinit(r)
            add(dist, f"jinit[{r}]", lambda init=init: init(key, shape), kind="jinit", rng=r)
        jitted = jax.jit(lambda k, f=jax_init: f(k, shape))
        add(dist, "jax.nn", lambda f=jitted: f(key), kind="jax.nn")
        if torch is not None:
            add(dist, "torch alloc", lambda f=torch_init: f(torch, torch.empty(tshape)), kind="torch")
            buf = torch.empty(tshape).fill_(0.0)
            add(dist, "torch in place", lambda f=torch_init, b=buf: f(torch, b), kind="torch_inplace")
    return cases


def tensor_ratios(records: list[dict], rngs: Sequence[str]) -> list[dict]:
    """Per (shape, distribution): speed-ups of jinit over jax.nn and torch, and fill/jinit."""
    by = {(r["group"], r["name"]): r for r in records if "min_ms" in r}
    out = []
    groups = sorted({r["group"] for r in records if r.get("kind") == "jinit"})
    for group in groups:
        label = group.rsplit(" / ", 1)[0]
        fill = by.get((f"{label} / fill", "jnp.full"))
        for r in rngs:
            j = by.get((group, f"jinit[{r}]"))
            if j is None:
                continue
            row = {"group": group, "rng": r, "jinit_ms": j["min_ms"]}
            for other, key in (("jax.nn", "vs_jax_nn"), ("torch alloc", "vs_torch_alloc"), ("torch in place", "vs_torch_inplace")):
                o = by.get((group, other))
                if o is not None:
                    row[key] = round(o["min_ms"] / j["min_ms"], 3)
            if fill is not None:
                row["fill_fraction"] = round(fill["min_ms"] / j["min_ms"], 3)
            out.append(row)
    return out


def shapes(args) -> list[tuple[str, tuple[int, ...]]]:
    """The (label, shape) pairs to time: ``--shape``, else the defaults (``--quick``: small)."""
    if args.shape:
        out = []
        for text in args.shape:
            dims = tuple(int(d) for d in text.lower().split("x"))
            kind = "dense" if len(dims) == 2 else "conv"
            out.append((f"{kind} {text.lower()}", dims))
        return out
    if args.quick:
        return [("dense 512x512", (512, 512)), ("conv 3x3x64x64", (3, 3, 64, 64))]
    return [("dense 4096x4096", (4096, 4096)), ("conv 3x3x512x512", (3, 3, 512, 512))]


def run(ctx: Context) -> dict:
    records: list[dict] = []
    for label, shape in shapes(ctx.args):
        ctx.progress(f"tensors: {label}")
        cases = tensor_cases(label, shape, ctx.rngs, ctx.with_torch, ctx.dists)
        records += run_section(cases, ctx.args.repeats, ctx.args.warmup, ctx.progress)
    return {"cases": records, "tensor_ratios": tensor_ratios(records, ctx.rngs)}
