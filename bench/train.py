"""The training engine: every seed of a configuration in one compiled program.

One *configuration* is (scheme, activation, depth, width) trained with fixed
settings for ``K`` seeds. For it the engine

1. initializes the MLP once per seed with the scheme's initializers
   (``jax.vmap`` over seeds; outside the training program, so that every scheme
   with the same network structure reuses one compiled training program),
   runs LSUV for model-level schemes, and measures per-layer statistics at init;
2. trains all seeds at once: ``train_chunk`` runs ``eval_every`` optimizer
   steps inside ``lax.fori_loop``, vmapped over seeds (params, optimizer state
   and data keys carry a leading seed axis). Step ``t`` of seed ``s`` draws its
   minibatch uniformly with replacement from the training split (kept on the
   device) with ``fold_in(data_key_s, t)``, so the data order does not depend
   on the chunking, on the scheme or on the number of devices;
3. evaluates the loss on the **whole** training split (and loss/accuracy on the
   test split) at step 0 and every ``eval_every`` steps: the only host syncs;
4. detects divergence: the first step whose minibatch loss (or an evaluation
   loss) is NaN/inf marks the seed ``diverged``; training goes on for the other
   seeds, and stops early if every seed diverged.

With more than one device the minibatch (and the evaluation chunks) are
sharded along the batch axis over a 1-D mesh ``("data",)`` with
:class:`jax.sharding.NamedSharding`; parameters and data are replicated. The
result equals the single-device one up to float rounding in the reductions.

Seed ``s`` uses ``jax.random.key(s)``, split into an init key and a data key;
both are the same for every scheme, so schemes are compared on the same
minibatches.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jinit
from jinit._core import check_choice
from bench.data import Dataset
from bench.model import (
    MLP,
    ModelSpec,
    build_model,
    layer_statistics,
    loss_and_metrics,
    scheme_inits,
)
from jinit.data_dependent import lsuv

__all__ = [
    "OPTIMIZERS",
    "DEFAULT_LR",
    "TrainSettings",
    "Trainer",
    "SchemeUnavailable",
    "make_optimizer",
]

OPTIMIZERS = {
    "sgd": "plain SGD",
    "momentum": "SGD with momentum 0.9 (heavy ball, optax.sgd(lr, momentum=0.9))",
    "adam": "Adam (optax.adam: b1=0.9, b2=0.999, eps=1e-8)",
}
DEFAULT_LR = {"sgd": 0.01, "momentum": 0.01, "adam": 0.001}
STATS_BATCH = 512
EVAL_CHUNK = 4096


class SchemeUnavailable(Exception):
    """The scheme cannot initialize this network (the message says why); the
    configuration is skipped, not failed."""


def make_optimizer(name: str, lr: float) -> optax.GradientTransformation:
    check_choice(None, "optimizer", name, tuple(OPTIMIZERS))
    if name == "sgd":
        return optax.sgd(lr)
    if name == "momentum":
        return optax.sgd(lr, momentum=0.9)
    return optax.adam(lr)


@dataclass(frozen=True)
class TrainSettings:
    """Training hyper-parameters shared by every configuration of a run."""

    optimizer: str = "momentum"
    lr: float = 0.01
    steps: int = 300
    batch_size: int = 128
    eval_every: int = 25
    target_loss: float | None = 0.5
    lsuv_tol: float = 0.1
    lsuv_max_iter: int = 10

    def eval_steps(self) -> list[int]:
        """Steps at which the full-train loss is logged: 0, eval_every, ..., steps."""
        pts = list(range(0, self.steps, self.eval_every)) + [self.steps]
        return sorted(set(pts))

    def asdict(self) -> dict:
        return asdict(self)


def _finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass
class _Compiled:
    fn: Any
    seconds: float


@dataclass
class Prepared:
    """An initialized configuration, ready for :meth:`Trainer.run`."""

    scheme: str
    spec: ModelSpec
    seeds: list[int]
    params: Any
    data_keys: jax.Array
    lsuv_reports: list | None
    seconds: float


@dataclass
class ConfigResult:
    """Per-seed run records, timing and final parameters of one configuration."""

    runs: list[dict]
    timing: dict = field(default_factory=dict)
    params: Any = None  # final parameters, leading seed axis


# Process-wide caches of compiled programs (see Trainer._compile / init_params).
_PROGRAMS: dict[tuple, _Compiled] = {}
_INIT_PROGRAMS: dict[tuple, Any] = {}
_LOCK = threading.Lock()


def _compile_lowered(lowered, cpu_options: dict) -> Any:
    """Compiles with ``cpu_options`` on the CPU backend (falling back to the
    defaults if this XLA rejects them); with the defaults elsewhere."""
    if jax.default_backend() == "cpu":
        try:
            return lowered.compile(cpu_options)
        except Exception:  # an XLA without these options
            pass
    return lowered.compile()


class Trainer:
    """Trains configurations on one dataset with one set of settings.

    Compiled programs are cached per network structure (activation, depth,
    width) and number of seeds: the first scheme pays the compile, every other
    scheme with the same structure reuses it. ``timing`` accumulates compile and
    run seconds.
    """

    def __init__(self, dataset: Dataset, settings: TrainSettings, n_devices: int | None = None):
        self.dataset = dataset
        self.settings = settings
        self.tx = make_optimizer(settings.optimizer, settings.lr)
        devices = jax.devices()
        n = len(devices) if n_devices is None else n_devices
        if not 1 <= n <= len(devices):
            raise ValueError(f"n_devices={n_devices}: this host has {len(devices)} device(s).")
        self.notes: list[str] = []
        if n > 1 and settings.batch_size % n:
            self.notes.append(
                f"batch size {settings.batch_size} is not divisible by {n} devices: running on 1 device."
            )
            n = 1
        self.n_devices = n
        self.mesh = Mesh(np.array(devices[:n]), ("data",)) if n > 1 else None
        self.timing = {"compile_train_s": 0.0, "compile_other_s": 0.0, "run_s": 0.0, "init_s": 0.0}
        self._device_ids = tuple(d.id for d in devices[:n])
        self._run_compile_s = 0.0

        d = dataset
        self.x_train = self._replicate(jnp.asarray(d.x_train))
        self.y_train = self._replicate(jnp.asarray(d.y_train))
        self.train_eval = self._eval_arrays(d.x_train, d.y_train)
        self.test_eval = self._eval_arrays(d.x_test, d.y_test)
        k = min(STATS_BATCH, len(d.x_train))
        self.stats_batch = (self._replicate(jnp.asarray(d.x_train[:k])), self._replicate(jnp.asarray(d.y_train[:k])))

    # ------------------------------------------------------------------ placement

    def _replicate(self, x):
        if self.mesh is None:
            return x
        return jax.device_put(x, NamedSharding(self.mesh, P()))

    def _constrain_batch(self, x):
        """Shards the leading (example) axis over the mesh; identity on 1 device."""
        if self.mesh is None:
            return x
        return jax.lax.with_sharding_constraint(x, NamedSharding(self.mesh, P("data")))

    def _eval_arrays(self, x: np.ndarray, y: np.ndarray):
        """Pads to whole chunks (a multiple of the device count) with a mask."""
        n = len(x)
        chunk = min(EVAL_CHUNK, n)
        chunk = -(-chunk // self.n_devices) * self.n_devices
        n_chunks = -(-n // chunk)
        pad = n_chunks * chunk - n
        xp = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
        yp = np.concatenate([y, np.zeros((pad,) + y.shape[1:], y.dtype)])
        mask = np.concatenate([np.ones(n, bool), np.zeros(pad, bool)])
        arrays = (
            xp.reshape((n_chunks, chunk) + x.shape[1:]),
            yp.reshape((n_chunks, chunk) + y.shape[1:]),
            mask.reshape(n_chunks, chunk),
        )
        return tuple(self._replicate(jnp.asarray(a)) for a in arrays)

    # ------------------------------------------------------------------ programs

    def spec(self, activation: str, depth: int, width: int) -> ModelSpec:
        d = self.dataset
        return ModelSpec(depth, width, activation, d.n_features, d.n_out, d.task)

    def _compile(self, kind: str, key: tuple, jitted, *args) -> Any:
        """AOT-compiles ``jitted`` for ``args`` once per ``key``; times it.

        On CPU, XLA's LLVM backend runs at optimization level 1: it compiles
        these programs about 25% faster and they run as fast (their time goes
        to matrix-multiply library calls, not to generated loops).
        """
        leaves, treedef = jax.tree.flatten(args)
        signature = (treedef, tuple((np.shape(a), str(a.dtype), getattr(a, "sharding", None)) for a in leaves))
        st = self.settings  # only what the compiled code depends on (steps etc. are run-time arguments)
        cache_key = (kind, key, st.optimizer, st.lr, st.batch_size, self._device_ids, signature)
        hit = _PROGRAMS.get(cache_key)
        if hit is None:
            t0 = time.perf_counter()
            lowered = jitted.lower(*args)
            fn = _compile_lowered(lowered, {"xla_backend_optimization_level": 1})
            hit = _PROGRAMS[cache_key] = _Compiled(fn, time.perf_counter() - t0)
            self.timing["compile_train_s" if kind == "train" else "compile_other_s"] += hit.seconds
            self._run_compile_s += hit.seconds
        return hit.fn

    def _train_chunk_fn(self, spec: ModelSpec) -> Callable:
        model = build_model(spec)
        tx, batch, task = self.tx, self.settings.batch_size, spec.task
        constrain = self._constrain_batch

        def one_seed(state, start, stop, x, y):
            n = x.shape[0]

            def mean_loss(params, xb, yb):
                loss, _ = loss_and_metrics(model.apply({"params": params}, xb), yb, task)
                return jnp.mean(loss)

            def step(i, st):
                idx = jax.random.randint(jax.random.fold_in(st["key"], i), (batch,), 0, n)
                xb, yb = constrain(x[idx]), constrain(y[idx])
                loss, grads = jax.value_and_grad(mean_loss)(st["params"], xb, yb)
                updates, opt = tx.update(grads, st["opt"], st["params"])
                params = optax.apply_updates(st["params"], updates)
                bad = jnp.where((st["bad"] < 0) & ~jnp.isfinite(loss), i, st["bad"])
                return {"params": params, "opt": opt, "key": st["key"], "bad": bad}

            return jax.lax.fori_loop(start, stop, step, state)

        return jax.jit(jax.vmap(one_seed, in_axes=(0, None, None, None, None)), donate_argnums=0)

    def _evaluate_fn(self, spec: ModelSpec) -> Callable:
        model = build_model(spec)
        constrain = self._constrain_batch

        def split_metrics(params, xs, ys, ms):
            def body(acc, chunk):
                xc, yc, mc = chunk
                out = model.apply({"params": params}, constrain(xc))
                loss, correct = loss_and_metrics(out, constrain(yc), spec.task)
                mc = constrain(mc)
                return (acc[0] + jnp.sum(jnp.where(mc, loss, 0.0)), acc[1] + jnp.sum(jnp.where(mc, correct, 0.0))), None

            (sl, sc), _ = jax.lax.scan(body, (jnp.float32(0), jnp.float32(0)), (xs, ys, ms))
            n = jnp.sum(ms)
            return sl / n, sc / n

        def one_seed(params, train, test):
            tl, ta = split_metrics(params, *train)
            vl, va = split_metrics(params, *test)
            return jnp.stack([tl, ta, vl, va])

        return jax.jit(jax.vmap(one_seed, in_axes=(0, None, None)))

    def _stats_fn(self, spec: ModelSpec) -> Callable:
        return jax.jit(jax.vmap(layer_statistics(spec), in_axes=(0, None, None)))

    def _opt_init_fn(self) -> Callable:
        return jax.jit(jax.vmap(self.tx.init))

    # ------------------------------------------------------------------ init

    def init_params(self, scheme: jinit.Scheme, spec: ModelSpec, keys: jax.Array) -> Any:
        """Per-seed params (leading seed axis) from ``scheme``'s initializers.

        Each scheme needs its own program. On CPU it is compiled with XLA's
        backend optimizations off (it runs once, and random-number kernels are
        slow to optimize). The init program is traced with a linear activation
        (initialization never depends on the forward pass), so that schemes
        whose initializers ignore the activation produce identical StableHLO
        for every activation, and identical programs are compiled once.
        """
        try:
            inits = scheme_inits(scheme, spec.activation)
        except Exception as err:  # the scheme rejects the activation
            raise SchemeUnavailable(f"{type(err).__name__}: {err}") from err
        model = MLP(spec.depth, spec.width, spec.n_out, "linear", *inits)
        x0 = jnp.zeros((1, spec.n_in), jnp.float32)
        jitted = jax.jit(jax.vmap(lambda k: model.init(k, x0)["params"]))
        try:
            lowered = jitted.lower(keys)
        except Exception as err:  # e.g. a conv-only initializer given a 2-D kernel
            raise SchemeUnavailable(f"{type(err).__name__}: {err}") from err
        digest = hashlib.sha256(lowered.as_text().encode()).hexdigest()
        cache_key = (digest, jax.default_backend())
        with _LOCK:
            compiled = _INIT_PROGRAMS.get(cache_key)
        if compiled is None:
            compiled = _compile_lowered(lowered, {"xla_backend_optimization_level": 0})
            with _LOCK:
                _INIT_PROGRAMS[cache_key] = compiled
        try:
            return compiled(keys)
        except Exception as err:
            raise SchemeUnavailable(f"{type(err).__name__}: {err}") from err

    def apply_lsuv(self, spec: ModelSpec, params: Any, keys: jax.Array) -> tuple[Any, list[dict]]:
        """LSUV (Mishkin & Matas 2016) per seed on one training batch (the first
        512 examples) through ``jinit.data_dependent.lsuv`` on the scanned MLP
        itself (it rescales each slice of the stacked kernel as its own layer).
        The scheme's per-tensor init is the pre-initialization (``pre_init=None``
        keeps it); every Dense, the output layer included, is normalized to unit
        output variance."""
        model = build_model(spec)
        batch = jnp.asarray(self.dataset.x_train[: min(STATS_BATCH, len(self.dataset.x_train))])
        s = self.settings
        kwargs = {"tol": s.lsuv_tol, "max_iter": s.lsuv_max_iter, "pre_init": None}
        out, reports = [], []
        for i in range(keys.shape[0]):
            p = {"params": jax.tree.map(lambda a, i=i: a[i], params)}
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    p, layers = lsuv(keys[i], model, p, batch, **kwargs)
                except Exception as err:
                    raise SchemeUnavailable(f"lsuv failed: {type(err).__name__}: {err}") from err
            out.append(p["params"])
            reports.append(_lsuv_summary(layers, [str(w.message) for w in caught]))
        return jax.tree.map(lambda *a: jnp.stack(a), *out), reports

    # ------------------------------------------------------------------ run

    def prepare(self, scheme: jinit.Scheme, activation: str, depth: int, width: int, seeds: Sequence[int]) -> Prepared:
        """Initializes every seed of a configuration (and runs LSUV for
        model-level schemes). Thread-safe: the CLI prepares the next
        configuration while the current one trains. Raises
        :class:`SchemeUnavailable` if the scheme cannot initialize this network."""
        spec = self.spec(activation, depth, width)
        t0 = time.perf_counter()
        base = jnp.stack([jax.random.key(int(seed)) for seed in seeds])
        split = jax.vmap(lambda k: jax.random.split(k, 3))(base)
        init_keys, data_keys, lsuv_keys = split[:, 0], split[:, 1], split[:, 2]
        params = self.init_params(scheme, spec, init_keys)
        lsuv_reports = None
        if scheme.model_level:
            params, lsuv_reports = self.apply_lsuv(spec, params, lsuv_keys)
        params = jax.block_until_ready(params)
        seconds = time.perf_counter() - t0
        self.timing["init_s"] += seconds
        return Prepared(scheme.name, spec, list(seeds), params, data_keys, lsuv_reports, seconds)

    def run(
        self,
        scheme: jinit.Scheme | Prepared,
        activation: str | None = None,
        depth: int | None = None,
        width: int | None = None,
        seeds: Sequence[int] | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ConfigResult:
        """Trains every seed of one configuration; returns one record per seed.

        Pass either ``(scheme, activation, depth, width, seeds)`` or the
        :class:`Prepared` result of :meth:`prepare`. Raises
        :class:`SchemeUnavailable` if the scheme cannot initialize this network.
        ``progress(n)`` is called with the number of steps just done.
        """
        prep = scheme if isinstance(scheme, Prepared) else self.prepare(scheme, activation, depth, width, seeds)
        spec, seeds, s = prep.spec, prep.seeds, self.settings
        S = len(seeds)
        t_start = time.perf_counter()
        self._run_compile_s = 0.0

        params = self._replicate(prep.params)
        stats_fn = self._compile("stats", (spec, S), self._stats_fn(spec), params, *self.stats_batch)
        init_stats = jax.device_get(stats_fn(params, *self.stats_batch))

        opt_init = self._compile("opt_init", (spec, S), self._opt_init_fn(), params)
        state = {
            "params": params,
            "opt": opt_init(params),
            "key": self._replicate(prep.data_keys),
            "bad": self._replicate(jnp.full((S,), -1, jnp.int32)),
        }
        evaluate = self._compile("eval", (spec, S), self._evaluate_fn(spec), params, self.train_eval, self.test_eval)
        start, stop = jnp.int32(0), jnp.int32(min(s.eval_every, s.steps))
        train = self._compile("train", (spec, S), self._train_chunk_fn(spec), state, start, stop,
                              self.x_train, self.y_train)

        points = s.eval_steps()
        curves: list[tuple[int, np.ndarray]] = [(0, np.asarray(evaluate(state["params"], self.train_eval, self.test_eval)))]
        done = 0
        for a, b in zip(points[:-1], points[1:]):
            state = train(state, jnp.int32(a), jnp.int32(b), self.x_train, self.y_train)
            metrics = np.asarray(evaluate(state["params"], self.train_eval, self.test_eval))  # host sync
            curves.append((b, metrics))
            if progress is not None:
                progress(b - a)
            done = b
            bad = np.asarray(state["bad"])
            dead = (bad >= 0) | ~np.all(np.isfinite(np.stack([m[:, 0] for _, m in curves])), axis=0)
            if dead.all():
                break
        if progress is not None and done < s.steps:
            progress(s.steps - done)
        final_stats = jax.device_get(stats_fn(state["params"], *self.stats_batch))
        bad = np.asarray(state["bad"])

        elapsed = time.perf_counter() - t_start
        self.timing["run_s"] += elapsed - self._run_compile_s

        runs = []
        for i, seed in enumerate(seeds):
            train_loss = [(step, m[i, 0]) for step, m in curves]
            nonfinite = [step for step, loss in train_loss if not math.isfinite(float(loss))]
            bad_steps = ([int(bad[i])] if bad[i] >= 0 else []) + nonfinite
            diverged = bool(bad_steps)
            div_step = min(bad_steps) if diverged else None
            last = curves[-1][1][i]
            reached = [step for step, loss in train_loss if math.isfinite(float(loss)) and s.target_loss is not None
                       and float(loss) <= s.target_loss and (div_step is None or step <= div_step)]
            run = {
                "scheme": prep.scheme,
                "activation": spec.activation,
                "depth": spec.depth,
                "width": spec.width,
                "seed": int(seed),
                "optimizer": s.optimizer,
                "lr": s.lr,
                "steps": s.steps,
                "batch_size": s.batch_size,
                "dataset": self.dataset.name,
                "final_train_loss": None if diverged else _finite(last[0]),
                "final_train_accuracy": None if diverged else _finite(last[1]),
                "test_loss": None if diverged else _finite(last[2]),
                "test_accuracy": None if diverged else _finite(last[3]),
                "steps_to_target": reached[0] if reached else None,
                "diverged": diverged,
                "diverged_step": div_step,
                "loss_curve": [[step, _finite(loss)] for step, loss in train_loss],
                "test_accuracy_curve": [[step, _finite(m[i, 3])] for step, m in curves],
                "init_stats": _stats_record(init_stats, i),
                "final_stats": _stats_record(final_stats, i),
                "time_s": round((elapsed + prep.seconds) / S, 4),
            }
            if prep.lsuv_reports is not None:
                run["lsuv"] = prep.lsuv_reports[i]
            runs.append(run)
        return ConfigResult(runs, {"seconds": elapsed + prep.seconds, "compile_s": self._run_compile_s,
                                   "init_s": prep.seconds}, state["params"])


def _stats_record(stats: dict, i: int) -> dict:
    def vec(name):
        return [_finite(v) for v in np.asarray(stats[name][i]).ravel()]

    sat = vec("saturation")
    return {
        "activation_std": vec("activation_std"),
        "activation_mean": vec("activation_mean"),
        "saturation": sat if any(v is not None for v in sat) else None,
        "grad_norm": vec("grad_norm"),
        "output_grad_norm": _finite(stats["output_grad_norm"][i]),
        "loss": _finite(stats["loss"][i]),
    }


def _lsuv_summary(layers: list, messages: list[str]) -> dict:
    """A JSON-able digest of lsuv's per-layer report."""

    def field_list(name):
        return [_finite(getattr(r, name)) if name.startswith("var") else getattr(r, name) for r in layers]

    return {
        "layers": len(layers),
        "converged_layers": int(sum(bool(getattr(r, "converged", False)) for r in layers)),
        "iterations": field_list("iterations"),
        "var_before": field_list("var_before"),
        "var_after": field_list("var_after"),
        "warnings": messages,
    }
