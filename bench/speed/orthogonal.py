"""Section ``orthogonal``: jinit's orthogonal initializer (Householder and QR) against
``jax.nn.initializers.orthogonal``, the LAPACK QR alone, and torch."""

from __future__ import annotations

from collections.abc import Sequence

from bench.speed.harness import Case, Context, run_section, torch_module

__all__ = ["orthogonal_cases", "orthogonal_ratios", "run"]


def orthogonal_cases(n: int, rngs: Sequence[str], with_torch: bool) -> list[Case]:
    import jax
    import jax.numpy as jnp

    from jinit.structured import orthogonal

    key = jax.random.key(0)
    shape = (n, n)
    nbytes = n * n * 4
    cases: list[Case] = []

    def add(name, fn, **meta):
        cases.append(Case("orthogonal", f"orthogonal {n}x{n}", name, fn, nbytes, {"n": n, **meta}))

    for r in rngs:
        for method in ("householder", "qr"):
            init = orthogonal(method=method, generator=r)
            add(f"jinit {method} [{r}]", lambda init=init: init(key, shape), kind="jinit", rng=r, method=method)
    jorth = jax.jit(lambda k: jax.nn.initializers.orthogonal()(k, shape))
    add("jax.nn", lambda: jorth(key), kind="jax.nn")
    z = jax.random.normal(key, shape, jnp.float32)
    qr = jax.jit(lambda a: jnp.linalg.qr(a)[0])
    add("jnp.linalg.qr (LAPACK)", lambda: qr(z), kind="qr")
    torch = torch_module() if with_torch else None
    if torch is not None:
        add("torch alloc", lambda: torch.nn.init.orthogonal_(torch.empty(shape)), kind="torch")
        zt = torch.from_numpy(jax.device_get(z).copy())
        add("torch.linalg.qr", lambda: torch.linalg.qr(zt)[0], kind="torch_qr")
    return cases


def orthogonal_ratios(records: list[dict]) -> list[dict]:
    by = {r["name"]: r for r in records if "min_ms" in r}
    qr = by.get("jnp.linalg.qr (LAPACK)")
    out = []
    for name, r in by.items():
        if r.get("kind") != "jinit":
            continue
        row = {"name": name, "jinit_ms": r["min_ms"], "first_call_ms": r.get("first_call_ms")}
        if qr:
            row["over_qr"] = round(r["min_ms"] / qr["min_ms"], 3)
        for other, key in (("jax.nn", "vs_jax_nn"), ("torch alloc", "vs_torch")):
            if other in by:
                row[key] = round(by[other]["min_ms"] / r["min_ms"], 3)
        out.append(row)
    return out


def run(ctx: Context) -> dict:
    n = ctx.args.orthogonal_n or (128 if ctx.args.quick else 4096)
    ctx.progress(f"orthogonal {n}x{n}")
    cases = orthogonal_cases(n, ctx.rngs, ctx.with_torch)
    records = run_section(cases, ctx.args.orthogonal_repeats, 1, ctx.progress)
    return {"cases": records, "orthogonal_ratios": orthogonal_ratios(records)}
