"""Initializer speed benchmark: ``python -m bench.speed``.

Times, in one process and one run (so that every ratio compares numbers taken
under the same conditions):

1. **Tensors** (4096x4096 dense, 3x3x512x512 conv; ``--quick``: 512x512 and
   3x3x64x64), three distributions at He scale:

   ========== ============================== ==================================== ===========================
   dist       jinit (``rng="jax"``/philox)   jax.nn.initializers (jitted)         torch.nn.init
   ========== ============================== ==================================== ===========================
   normal     ``he_normal()``                ``variance_scaling(2, fan_in, normal)`` ``kaiming_normal_``
   uniform    ``he_uniform()``               ``variance_scaling(2, fan_in, uniform)`` ``kaiming_uniform_``
   truncated  ``variance_scaling(2, fan_in,  ``he_normal()`` (truncated)          ``trunc_normal_(std, -2std, 2std)``
              truncated_normal)``
   ========== ============================== ==================================== ===========================

   next to a plain fill (``jnp.full`` / ``torch.empty().fill_``: the memory
   bandwidth limit, allocation included) and the raw bits
   (``jax.random.bits`` with JAX's lowering and with jinit's fused one, philox). jinit is called as users call it (eagerly; it
   compiles its sampler once per shape), ``jax.nn`` initializers under
   ``jax.jit`` (their fastest form). torch is timed twice: "alloc" =
   ``torch.empty`` + ``init_`` (a new tensor, like jinit and JAX, which return new
   arrays) and "in place" = ``init_`` on a tensor allocated (and touched) before.
2. **Orthogonal** (4096x4096; ``--quick``: 128): jinit (``method="householder"``
   and ``"qr"``; also its first call, compilation included), ``jax.nn.initializers.orthogonal``
   (jitted), the LAPACK QR alone (``jnp.linalg.qr`` of a prepared Gaussian
   matrix, jitted), ``torch.nn.init.orthogonal_`` and ``torch.linalg.qr``.
3. **A 1B-parameter tree**: 16 layers of 8192x8192 + bias (1.07e9 parameters,
   4.3 GB in float32; ``--quick``: 4 x 256), initialized leaf by leaf (each leaf
   freed before the next, so memory stays at one leaf) with jinit, jax.nn and
   torch, plus jinit through ``jax.jit(flax_model.init)`` as one program.
4. **Depth**: compile time and training-step time of the benchmark's scanned
   MLP (:mod:`bench.model`, ``nn.scan`` over the hidden layers) at depth 10, 100,
   1000, and the compile time of the same network unrolled (one ``Dense`` per
   layer) up to ``--unrolled-max-depth``.

Every case is warmed up (compilation excluded), then the cases of a section are
run round-robin ``--repeats`` times; min and median wall-clock times are
reported (``block_until_ready`` on JAX results; torch on the CPU is synchronous),
and the JSON also has the minimum process CPU time (all threads: XLA runs a
large loop on every core, torch's generators run on one), which moves less than
wall time on a shared machine.
GB/s is bytes written / min time. Results go to a rich table and, with
``--out``, to JSON together with the machine description (CPU model, cores,
memory, load average, library versions, XLA flags).

Timings vary with the machine's load; the JSON records the load average at
start and end. No test asserts on timings.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["main", "machine_info", "TRUNC_STD"]

# std of N(0, 1) truncated to (-2, 2): the variance correction of truncated variance scaling.
TRUNC_STD = 0.87962566103423978


# ---------------------------------------------------------------------------
# Environment


def machine_info(with_torch: bool = True) -> dict:
    """CPU model, core count, memory, load, and the versions that matter."""
    import jax
    import jaxlib
    import numpy as np

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_model": platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
        "jax": jax.__version__,
        "jaxlib": jaxlib.__version__,
        "numpy": np.__version__,
        "backend": jax.default_backend(),
        "devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    info["cpu_model"] = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal"):
                    info["memory_gib"] = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        import flax

        info["flax"] = flax.__version__
    except ImportError:
        pass
    torch = _torch() if with_torch else None
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


_TORCH: list = []


def _torch():
    if not _TORCH:
        try:
            import torch

            _TORCH.append(torch)
        except ImportError:
            _TORCH.append(None)
    return _TORCH[0]


# ---------------------------------------------------------------------------
# Timing


def _block(x) -> None:
    import jax

    if x is None:
        return
    leaves = jax.tree.leaves(x)
    if leaves and isinstance(leaves[0], jax.Array):
        jax.block_until_ready(x)


@dataclass
class Case:
    """One timed contender. ``fn()`` returns its result (blocked on, then freed)."""

    section: str
    group: str  # what is compared, e.g. "dense 4096x4096 / normal"
    name: str  # who, e.g. "jinit[philox]"
    fn: Callable[[], Any]
    nbytes: int = 0
    meta: dict = field(default_factory=dict)
    warm: Callable[[], Any] | None = None  # warm-up (compilation) if cheaper than fn
    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)
    error: str | None = None
    last_cpu: float = field(default=0.0, repr=False)
    first: float | None = None  # the first warm-up call: compilation included

    def call(self) -> float:
        c0 = time.process_time()
        t0 = time.perf_counter()
        out = self.fn()
        _block(out)
        dt = time.perf_counter() - t0
        self.last_cpu = time.process_time() - c0
        del out
        return dt

    def record(self) -> dict:
        rec = {"section": self.section, "group": self.group, "name": self.name, **self.meta}
        if self.error is not None:
            rec["error"] = self.error
            return rec
        tmin = min(self.times)
        rec.update(
            min_ms=round(tmin * 1e3, 3),
            median_ms=round(statistics.median(self.times) * 1e3, 3),
            repeats=len(self.times),
            times_ms=[round(t * 1e3, 3) for t in self.times],
            cpu_min_ms=round(min(self.cpu_times) * 1e3, 3),
        )
        if self.first is not None:
            rec["first_call_ms"] = round(self.first * 1e3, 3)
        if self.nbytes:
            rec["bytes"] = self.nbytes
            rec["gb_per_s"] = float(f"{self.nbytes / tmin / 1e9:.4g}")
        return rec


def run_cases(cases: Sequence[Case], repeats: int, warmup: int, progress: Callable[[str], None]) -> None:
    """Warm every case up, then run them round-robin ``repeats`` times."""
    for case in cases:
        try:
            for i in range(warmup):
                t0 = time.perf_counter()
                if case.warm is not None:
                    _block(case.warm())
                else:
                    case.call()
                if i == 0:
                    case.first = time.perf_counter() - t0
        except Exception as err:  # e.g. out of memory on a small machine
            case.error = f"{type(err).__name__}: {err}".splitlines()[0][:300]
            progress(f"  {case.group} / {case.name}: {case.error}")
    for r in range(repeats):
        for case in cases:
            if case.error is None:
                case.times.append(case.call())
                case.cpu_times.append(case.last_cpu)
                gc.collect()
        progress(f"  {cases[0].section}: round {r + 1}/{repeats} done")


# ---------------------------------------------------------------------------
# 1. Tensors


def _fans_hwio(shape: tuple[int, ...]) -> int:
    return math.prod(shape[:-1])  # fan_in of an (..., in, out) kernel


def _torch_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """HWIO (jax) -> OIHW (torch), same fans."""
    if len(shape) == 2:
        return (shape[1], shape[0])
    return (shape[-1], shape[-2], *shape[:-2])


def tensor_cases(
    label: str,
    shape: tuple[int, ...],
    rngs: Sequence[str],
    with_torch: bool,
    dists: Sequence[str] = ("normal", "uniform", "truncated_normal"),
) -> list[Case]:
    import jax
    import jax.numpy as jnp

    import jinit
    from jinit import philox
    from jinit.rng import fused_threefry_key

    key = jax.random.key(0)
    nbytes = math.prod(shape) * 4
    std = math.sqrt(2.0 / _fans_hwio(shape))
    tshape = _torch_shape(shape)
    jnn = jax.nn.initializers
    cases: list[Case] = []

    def add(group, name, fn, **meta):
        cases.append(Case("tensor", f"{label} / {group}", name, fn, nbytes, {"shape": list(shape), "dist": group, **meta}))

    fill = jax.jit(lambda: jnp.full(shape, 1.0, jnp.float32))
    add("fill", "jnp.full", fill, kind="baseline")
    bits = jax.jit(lambda k: jax.random.bits(k, shape))
    add("bits", "jax.random.bits", lambda: bits(key), kind="baseline")
    fbits = jax.jit(lambda k: jax.random.bits(fused_threefry_key(k), shape))
    add("bits", "jax.random.bits, fused (jinit)", lambda: fbits(key), kind="baseline")
    pbits = jax.jit(lambda k: philox.bits(k, shape)[0])
    add("bits", "philox.bits", lambda: pbits(key), kind="baseline")

    all_dists = {
        "normal": (
            lambda r: jinit.he_normal(rng=r),
            jnn.variance_scaling(2.0, "fan_in", "normal"),
            lambda t, w: t.nn.init.kaiming_normal_(w, nonlinearity="relu"),
        ),
        "uniform": (
            lambda r: jinit.he_uniform(rng=r),
            jnn.variance_scaling(2.0, "fan_in", "uniform"),
            lambda t, w: t.nn.init.kaiming_uniform_(w, nonlinearity="relu"),
        ),
        "truncated_normal": (
            lambda r: jinit.variance_scaling(2.0, "fan_in", "truncated_normal", rng=r),
            jnn.he_normal(),
            lambda t, w: t.nn.init.trunc_normal_(
                w, std=std / TRUNC_STD, a=-2 * std / TRUNC_STD, b=2 * std / TRUNC_STD
            ),
        ),
    }
    torch = _torch() if with_torch else None
    if torch is not None:
        add("fill", "torch empty+fill_", lambda: torch.empty(tshape).fill_(1.0), kind="baseline")
    for dist, (make_jinit, jax_init, torch_init) in all_dists.items():
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


# ---------------------------------------------------------------------------
# 2. Orthogonal


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
            init = orthogonal(method=method, rng=r)
            add(f"jinit {method} [{r}]", lambda init=init: init(key, shape), kind="jinit", rng=r, method=method)
    jorth = jax.jit(lambda k: jax.nn.initializers.orthogonal()(k, shape))
    add("jax.nn", lambda: jorth(key), kind="jax.nn")
    z = jax.random.normal(key, shape, jnp.float32)
    qr = jax.jit(lambda a: jnp.linalg.qr(a)[0])
    add("jnp.linalg.qr (LAPACK)", lambda: qr(z), kind="qr")
    torch = _torch() if with_torch else None
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


# ---------------------------------------------------------------------------
# 3. Large tree


def tree_cases(layers: int, width: int, rngs: Sequence[str], with_torch: bool, with_flax: bool) -> list[Case]:
    import jax
    import jax.numpy as jnp

    import jinit

    key = jax.random.key(0)
    params = layers * (width * width + width)
    nbytes = params * 4
    group = f"tree {layers} x ({width}x{width} + bias) = {params / 1e6:,.1f}M params"
    cases: list[Case] = []

    def add(name, fn, warm=None, **meta):
        meta = {"layers": layers, "width": width, "params": params, **meta}
        cases.append(Case("tree", group, name, fn, nbytes, meta, warm=warm))

    def leafwise(kernel_init, bias_init):
        def leaf(i):
            k = jax.random.fold_in(key, i)
            return kernel_init(k, (width, width)), bias_init(k, (width,))

        def run():
            for i in range(layers):
                jax.block_until_ready(leaf(i))  # freed before the next leaf

        return run, lambda: leaf(0)

    for r in rngs:
        run, warm = leafwise(jinit.he_normal(rng=r), jinit.zeros())
        add(f"jinit[{r}] leaf by leaf", run, warm, kind="jinit", rng=r)
    jk = jax.jit(lambda k: jax.nn.initializers.variance_scaling(2.0, "fan_in", "normal")(k, (width, width)))
    jb = jax.jit(lambda k: jax.nn.initializers.zeros(k, (width,)))
    run, warm = leafwise(lambda k, s: jk(k), lambda k, s: jb(k))
    add("jax.nn leaf by leaf", run, warm, kind="jax.nn")
    torch = _torch() if with_torch else None
    if torch is not None:

        def torch_tree():
            for _ in range(layers):
                w = torch.nn.init.kaiming_normal_(torch.empty(width, width), nonlinearity="relu")
                b = torch.zeros(width)
                del w, b

        add("torch leaf by leaf", torch_tree, lambda: None, kind="torch")
    if with_flax:
        import flax.linen as nn

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

        add(
            "jinit[jax] jax.jit(model.init)", lambda: compiled[0](key, x), compile_init,
            kind="jinit_flax", rng="jax",
        )
    return cases


# ---------------------------------------------------------------------------
# 4. Compile time and step time vs depth


def _scanned_mlp_factory():
    """The benchmark's scanned MLP from :mod:`bench.model` (imported lazily)."""
    from bench import model as bm

    import jinit

    scheme = jinit.get_scheme("he_normal")

    def build(depth, width, n_in, n_out, unrolled=False):
        spec = bm.ModelSpec(depth=depth, width=width, activation="relu", n_in=n_in, n_out=n_out)
        if unrolled:
            k, b, ok, ob = bm.scheme_inits(scheme, "relu")
            return bm.UnrolledMLP(depth, width, n_out, "relu", k, b, ok, ob)
        return bm.build_model(spec, scheme)

    return build


def depth_records(depths: Sequence[int], width: int, batch: int, repeats: int, unrolled_max: int, progress) -> list[dict]:
    import jax
    import jax.numpy as jnp
    import optax

    build = _scanned_mlp_factory()
    n_in, n_out = 64, 10
    key = jax.random.key(0)
    x = jax.random.normal(jax.random.key(1), (batch, n_in))
    y = jax.random.randint(jax.random.key(2), (batch,), 0, n_out)
    opt = optax.sgd(1e-3)
    out = []
    variants = [(d, False) for d in depths] + [(d, True) for d in depths if d <= unrolled_max]
    for depth, unrolled in variants:
        model = build(depth, width, n_in, n_out, unrolled)

        def loss_fn(p, model=model):
            logits = model.apply({"params": p}, x)
            return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

        def step(p, s, loss_fn=loss_fn):
            loss, g = jax.value_and_grad(loss_fn)(p)
            updates, s = opt.update(g, s, p)
            return optax.apply_updates(p, updates), s, loss

        t0 = time.perf_counter()
        init_c = jax.jit(model.init).lower(key, x).compile()
        t_init_compile = time.perf_counter() - t0
        params = init_c(key, x)["params"]
        state = opt.init(params)
        t0 = time.perf_counter()
        step_c = jax.jit(step, donate_argnums=(0, 1)).lower(params, state).compile()
        t_step_compile = time.perf_counter() - t0
        params, state, loss = step_c(params, state)
        jax.block_until_ready(loss)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            params, state, loss = step_c(params, state)
            jax.block_until_ready(loss)
            times.append(time.perf_counter() - t0)
        n_params = sum(a.size for a in jax.tree.leaves(params))
        rec = {
            "section": "depth",
            "depth": depth,
            "model": "unrolled" if unrolled else "scanned",
            "width": width,
            "batch": batch,
            "params": int(n_params),
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


# ---------------------------------------------------------------------------
# 5. Time to first parameters: jinit.init vs jax.jit(module.init), each in a fresh process

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


# ---------------------------------------------------------------------------
# Command line


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.speed",
        description="Time jinit's initializers against jax.nn.initializers and torch.nn.init.",
    )
    p.add_argument("--repeats", type=int, default=7, help="timed rounds per tensor case (default 7)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per case first (default 2)")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run in seconds")
    p.add_argument(
        "--sizes",
        default="tensor,orthogonal,tree,depth,first_params",
        help="comma-separated sections to run: tensor, orthogonal, tree, depth, first_params (default all)",
    )
    p.add_argument(
        "--shape", action="append", metavar="AxB[xC..]",
        help="tensor shape(s) to time instead of the defaults (repeatable), e.g. --shape 2048x2048",
    )
    p.add_argument(
        "--dists", default="normal,uniform,truncated_normal",
        help="distributions of the tensor section (default normal,uniform,truncated_normal)",
    )
    p.add_argument("--rng", default="jax,philox", help="jinit generators to time (default jax,philox)")
    p.add_argument("--out", metavar="FILE.json", help="write every measurement to this JSON file")
    p.add_argument("--no-torch", action="store_true", help="skip torch even if installed")
    p.add_argument("--orthogonal-n", type=int, help="orthogonal matrix size (default 4096; quick 128)")
    p.add_argument("--orthogonal-repeats", type=int, default=3, help="rounds for the orthogonal section")
    p.add_argument("--tree-layers", type=int, help="layers of the large tree (default 16; quick 4)")
    p.add_argument("--tree-width", type=int, help="width of the large tree (default 8192; quick 256)")
    p.add_argument("--tree-repeats", type=int, default=2, help="rounds for the tree section")
    p.add_argument("--no-flax-tree", action="store_true", help="skip jax.jit(model.init) of the tree")
    p.add_argument("--depths", type=int, nargs="+", help="depths (default 10 100 1000; quick 2 3)")
    p.add_argument("--first-params-depths", type=int, nargs="+",
                   help="unrolled MLP depths for time to first parameters (default 50 200 1000; quick 2 4)")
    p.add_argument("--first-params-width", type=int, help="their width (default 512; quick 8)")
    p.add_argument("--first-params-max-jit-depth", type=int, default=1000,
                   help="skip jax.jit(module.init) above this depth (its compile time grows with depth)")
    p.add_argument("--depth-width", type=int, help="width of the depth MLP (default 256; quick 8)")
    p.add_argument("--depth-batch", type=int, default=128, help="batch of the training step")
    p.add_argument("--depth-repeats", type=int, default=20, help="timed training steps per depth")
    p.add_argument(
        "--unrolled-max-depth", type=int, default=100,
        help="also compile the unrolled network up to this depth (default 100)",
    )
    return p


def _fmt_ms(x: float | None) -> str:
    return "-" if x is None else (f"{x:,.1f}" if x >= 10 else f"{x:.2f}")


def _print_tables(console, results: dict) -> None:
    from rich.markup import escape
    from rich.table import Table

    for section, title in (("tensor", "Tensors"), ("orthogonal", "Orthogonal"), ("tree", "Large tree")):
        recs = [r for r in results["cases"] if r["section"] == section]
        if not recs:
            continue
        t = Table(title=title, show_lines=False)
        for col in ("case", "who", "min ms", "median ms", "GB/s", "CPU ms"):
            t.add_column(col, justify="left" if col in ("case", "who") else "right")
        last = None
        for r in recs:
            group = r["group"] if r["group"] != last else ""
            last = r["group"]
            if "error" in r:
                t.add_row(escape(group), escape(r["name"]), "error", escape(r["error"][:40]), "", "")
            else:
                gbps = f"{r['gb_per_s']:.2f}" if "gb_per_s" in r else "-"
                t.add_row(
                    escape(group), escape(r["name"]), _fmt_ms(r["min_ms"]), _fmt_ms(r["median_ms"]), gbps,
                    _fmt_ms(r["cpu_min_ms"]),
                )
        console.print(t)
    if results.get("tensor_ratios"):
        t = Table(title="jinit speed-up: other's min time / jinit's (>1: jinit faster)")
        for col in ("case", "rng", "jinit ms", "jax.nn", "torch alloc", "torch in place", "fill/jinit"):
            t.add_column(col, justify="left" if col in ("case", "rng") else "right", no_wrap=col == "case")
        for r in results["tensor_ratios"]:
            t.add_row(
                escape(r["group"]), r["rng"], _fmt_ms(r["jinit_ms"]),
                *(f"{r[k]:.2f}x" if k in r else "-" for k in ("vs_jax_nn", "vs_torch_alloc", "vs_torch_inplace")),
                f"{r['fill_fraction']:.2f}" if "fill_fraction" in r else "-",
            )
        console.print(t)
    if results.get("orthogonal_ratios"):
        t = Table(title="Orthogonal: jinit / LAPACK QR, and speed-ups")
        for col in ("who", "jinit ms", "first call ms", "jinit / QR", "vs jax.nn", "vs torch"):
            t.add_column(col, justify="left" if col == "who" else "right")
        for r in results["orthogonal_ratios"]:
            t.add_row(
                escape(r["name"]), _fmt_ms(r["jinit_ms"]),
                _fmt_ms(r["first_call_ms"]) if r.get("first_call_ms") is not None else "-",
                *(f"{r[k]:.2f}" if k in r else "-" for k in ("over_qr", "vs_jax_nn", "vs_torch")),
            )
        console.print(t)
    if results.get("tree_ratios"):
        t = Table(title="Large tree: seconds, and speed-ups (>1: jinit faster)")
        for col in ("who", "seconds", "vs jax.nn", "vs torch"):
            t.add_column(col, justify="left" if col == "who" else "right")
        for r in results["tree_ratios"]:
            t.add_row(
                escape(r["name"]), f"{r['seconds']:.2f}",
                *(f"{r[k]:.2f}x" if k in r else "-" for k in ("vs_jax_nn", "vs_torch")),
            )
        console.print(t)
    if results.get("first_params"):
        t = Table(title="Time to first parameters (fresh process, seconds; unrolled MLP)")
        for col in ("depth", *FIRST_PARAMS_METHODS, "jit / jinit.init"):
            t.add_column(col, justify="right")
        for r in results["first_params"]:
            cells = [f"{r[m]:.2f}" if r.get(m) is not None else "-" for m in FIRST_PARAMS_METHODS]
            ratio = f"{r['speedup_vs_jit']:.1f}x" if "speedup_vs_jit" in r else "-"
            t.add_row(str(r["depth"]), *cells, ratio)
        console.print(t)
    if results.get("depth"):
        t = Table(title="Compile and step time vs depth")
        for col in ("model", "depth", "params", "init compile s", "step compile s", "step min ms", "step median ms"):
            t.add_column(col, justify="left" if col == "model" else "right")
        for r in results["depth"]:
            t.add_row(
                r["model"], str(r["depth"]), f"{r['params']:,}", f"{r['init_compile_s']:.2f}",
                f"{r['step_compile_s']:.2f}", _fmt_ms(r["step_min_ms"]), _fmt_ms(r["step_median_ms"]),
            )
        console.print(t)


def main(argv: Sequence[str] | None = None) -> int:
    from rich.console import Console

    args = build_parser().parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 150)
    sections = {s.strip() for s in args.sizes.split(",") if s.strip()}
    unknown = sections - {"tensor", "orthogonal", "tree", "depth", "first_params"}
    if unknown:
        console.print(f"[red]unknown sections: {', '.join(sorted(unknown))}[/red]")
        return 2
    rngs = [r.strip() for r in args.rng.split(",") if r.strip()]
    dists = [d.strip() for d in args.dists.split(",") if d.strip()]
    bad = set(dists) - {"normal", "uniform", "truncated_normal"}
    if bad:
        console.print(f"[red]unknown distributions: {', '.join(sorted(bad))}[/red]")
        return 2

    import jinit

    for r in rngs:
        if r not in jinit.generators():
            console.print(f"[red]unknown rng {r!r}; valid: {', '.join(jinit.generators())}[/red]")
            return 2
    with_torch = not args.no_torch and _torch() is not None
    if with_torch:
        _torch().manual_seed(0)
    quick = args.quick

    def progress(msg: str) -> None:
        console.print(f"[dim]{msg}[/dim]")

    results: dict[str, Any] = {
        "command": " ".join(["python -m bench.speed", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine_info(with_torch),
        "load_average_start": load_average(),
        "settings": vars(args),
        "cases": [],
    }
    console.print(
        f"[bold]bench.speed[/bold] on {results['machine']['cpu_model']} "
        f"({results['machine']['logical_cpus']} CPUs), jax {results['machine']['jax']}"
        + (f", torch {results['machine'].get('torch')}" if with_torch else ", without torch")
        + f"; load average {results['load_average_start']}"
    )
    t_start = time.perf_counter()

    if "tensor" in sections:
        if args.shape:
            shapes = []
            for text in args.shape:
                dims = tuple(int(d) for d in text.lower().split("x"))
                kind = "dense" if len(dims) == 2 else "conv"
                shapes.append((f"{kind} {text.lower()}", dims))
        elif quick:
            shapes = [("dense 512x512", (512, 512)), ("conv 3x3x64x64", (3, 3, 64, 64))]
        else:
            shapes = [("dense 4096x4096", (4096, 4096)), ("conv 3x3x512x512", (3, 3, 512, 512))]
        for label, shape in shapes:
            progress(f"tensors: {label}")
            cases = tensor_cases(label, shape, rngs, with_torch, dists)
            run_cases(cases, args.repeats, args.warmup, progress)
            results["cases"].extend(c.record() for c in cases)
            del cases
            gc.collect()
        results["tensor_ratios"] = tensor_ratios([r for r in results["cases"] if r["section"] == "tensor"], rngs)

    if "orthogonal" in sections:
        n = args.orthogonal_n or (128 if quick else 4096)
        progress(f"orthogonal {n}x{n}")
        cases = orthogonal_cases(n, rngs, with_torch)
        run_cases(cases, args.orthogonal_repeats, 1, progress)
        recs = [c.record() for c in cases]
        results["cases"].extend(recs)
        results["orthogonal_ratios"] = orthogonal_ratios(recs)
        del cases
        gc.collect()

    if "tree" in sections:
        layers = args.tree_layers or (4 if quick else 16)
        width = args.tree_width or (256 if quick else 8192)
        progress(f"tree: {layers} layers of {width}x{width}")
        cases = tree_cases(layers, width, rngs, with_torch, not args.no_flax_tree)
        run_cases(cases, args.tree_repeats, 1, progress)
        recs = [c.record() for c in cases]
        results["cases"].extend(recs)
        by = {r["name"]: r for r in recs if "min_ms" in r}
        results["tree_ratios"] = [
            {
                "name": name,
                "seconds": round(r["min_ms"] / 1e3, 3),
                **({"vs_torch": round(by["torch leaf by leaf"]["min_ms"] / r["min_ms"], 3)} if "torch leaf by leaf" in by else {}),
                **({"vs_jax_nn": round(by["jax.nn leaf by leaf"]["min_ms"] / r["min_ms"], 3)} if "jax.nn leaf by leaf" in by else {}),
            }
            for name, r in by.items()
            if r.get("kind", "").startswith("jinit")
        ]
        del cases
        gc.collect()

    if "depth" in sections:
        depths = args.depths or ([2, 3] if quick else [10, 100, 1000])
        width = args.depth_width or (8 if quick else 256)
        progress(f"depth: {depths}, width {width}")
        results["depth"] = depth_records(
            depths, width, args.depth_batch, 3 if quick else args.depth_repeats, args.unrolled_max_depth, progress
        )

    if "first_params" in sections:
        depths = args.first_params_depths or ([2, 4] if quick else [50, 200, 1000])
        width = args.first_params_width or (8 if quick else 512)
        progress(f"time to first parameters: unrolled MLPs of depth {depths}, width {width}")
        results["first_params"] = first_params_records(depths, width, args.first_params_max_jit_depth, progress)

    results["load_average_end"] = load_average()
    results["total_seconds"] = round(time.perf_counter() - t_start, 1)
    _print_tables(console, results)
    console.print(
        f"load average at start {results['load_average_start']}, at end {results['load_average_end']}; "
        f"{results['total_seconds']} s"
    )
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1, default=str)
        console.print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
