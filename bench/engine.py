"""The training engine: every run of one network structure in one compiled program.

A *structure* is (architecture, activation, depth, width): everything that fixes
the compiled code. Its *models* are (scheme, learning rate, seed) triples. For a
structure the engine

1. initializes every (scheme, seed) with ``jinit.init`` and the scheme's rules for
   the architecture's :class:`jinit.Structure` (all schemes in one compiled program,
   vmapped over seeds; a scheme that does not apply is reported, not trained), then
   runs data-dependent post-init steps (LSUV) per seed;
2. trains the models in chunks of ``batch_models``: parameters, optimizer state,
   learning rate and data key carry a leading model axis, and ``eval_every``
   optimizer steps run inside ``lax.fori_loop``, vmapped over models. The learning
   rate is a per-model value: updates are those of the optimizer at lr 1, times
   the model's lr (optax's SGD, momentum and Adam are linear in the lr, so this is
   the same arithmetic). Step ``t`` of seed ``s`` draws its minibatch with
   ``fold_in(data_key_s, t)``: every scheme and lr sees the same data order, so
   runs with the same seed are paired;
3. evaluates loss and accuracy on the whole train, validation and test splits at
   step 0 and every ``eval_every`` steps (the only host syncs), and per-layer
   statistics at init and after training;
4. marks a model ``diverged`` at the first step whose minibatch loss (or an
   evaluation loss) is not finite.

Devices: with several devices the model axis is sharded over a 1-D mesh
``("models",)`` (a chunk is padded to a multiple of the device count); a chunk
with fewer models than devices shards the minibatch instead (mesh ``("data",)``).
Results equal single-device ones up to float rounding in the reductions. A
multi-process launch (``jax.distributed.initialize()`` before :func:`bench.run`,
one process per host) runs unchanged: the mesh spans every process's devices,
each process supplies the shards of its own devices, results are gathered to
every process, and only process 0 writes files.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

import jinit
from bench.archs import NetSpec, get_arch
from bench.config import BenchConfig
from bench.data import Dataset
from bench.parametrize import scale_leaves

__all__ = ["Job", "Initialized", "Engine", "make_optimizer", "loss_and_metrics", "init_keys"]

STATS_BATCH = 512
EVAL_CHUNK = 2048
METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy", "test_loss", "test_accuracy")


@dataclass(frozen=True)
class Job:
    """One model to train."""

    scheme: str
    lr: float
    seed: int


@dataclass
class Initialized:
    """The initial parameters of every (scheme, seed) of one structure under one parametrization."""

    spec: NetSpec
    seeds: list[int]
    parametrization: str = "standard"
    scaling: Any = None  # bench.parametrize.Scaling
    params: dict[str, Any] = field(default_factory=dict)  # scheme -> params, leading seed axis
    skipped: dict[str, str] = field(default_factory=dict)  # scheme -> reason
    reports: dict[str, list] = field(default_factory=dict)  # scheme -> per-seed post-init digest
    seconds: float = 0.0


def make_optimizer(name: str, lr: float = 1.0) -> optax.GradientTransformation:
    """The optimizer ``name`` of :data:`bench.config.OPTIMIZERS` at learning rate ``lr``."""
    if name == "sgd":
        return optax.sgd(lr)
    if name == "momentum":
        return optax.sgd(lr, momentum=0.9)
    if name == "adam":
        return optax.adam(lr)
    raise ValueError(f"unknown optimizer {name!r}; valid optimizers are sgd, momentum, adam.")


def loss_and_metrics(outputs: jax.Array, y: jax.Array, task: str) -> tuple[jax.Array, jax.Array]:
    """Per-example (loss, correct): softmax cross-entropy and argmax hit for
    classification; mean squared error and NaN for regression."""
    if task == "classification":
        loss = optax.softmax_cross_entropy_with_integer_labels(outputs.astype(jnp.float32), y)
        return loss, (jnp.argmax(outputs, axis=-1) == y).astype(jnp.float32)
    loss = jnp.mean(jnp.square(outputs.astype(jnp.float32) - y), axis=-1)
    return loss, jnp.full(loss.shape, jnp.nan, jnp.float32)


def init_keys(seeds: Sequence[int]) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(init, data, post-init) keys per seed: ``split(key(seed), 3)``. The same for
    every scheme, learning rate and architecture."""
    split = jax.vmap(lambda k: jax.random.split(k, 3))(jnp.stack([jax.random.key(int(s)) for s in seeds]))
    return split[:, 0], split[:, 1], split[:, 2]


def _compile(lowered, opt_level: int) -> Any:
    """Compiles; on CPU at XLA backend optimization level ``opt_level`` (level 1
    compiles these matmul-bound programs ~25% faster and they run as fast; level 0
    for run-once init programs), falling back to the defaults."""
    if jax.default_backend() == "cpu":
        try:
            return lowered.compile({"xla_backend_optimization_level": opt_level})
        except Exception:  # an XLA without this option
            pass
    return lowered.compile()


def _global(x: Any, sharding: NamedSharding) -> jax.Array:
    """``x`` (a host value, the same in every process) as an array with ``sharding``.
    In a multi-process run (``jax.distributed.initialize()``) each process supplies
    the shards of its own devices."""
    if jax.process_count() == 1:
        return jax.device_put(x, sharding)
    x = np.asarray(x)
    return jax.make_array_from_callback(x.shape, sharding, lambda index: x[index])


def _host(x: Any) -> Any:
    """``x`` on the host; gathered from every process in a multi-process run."""
    if jax.process_count() == 1:
        return jax.device_get(x)
    from jax.experimental import multihost_utils

    return multihost_utils.process_allgather(x, tiled=True)


def _finite(x) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


def _stack(trees: list) -> Any:
    return jax.tree.map(lambda *a: jnp.stack(a), *trees)


def _take(tree: Any, idx) -> Any:
    return jax.tree.map(lambda a: a[idx], tree)


class Engine:
    """Initializes and trains the models of one dataset under one :class:`BenchConfig`.

    Compiled programs are cached per (structure, number of models): chunks of the
    same size reuse them. ``timing`` accumulates compile, init and run seconds.
    """

    def __init__(self, dataset: Dataset, config: BenchConfig):
        if dataset.x_val is None:
            raise ValueError("Engine: the dataset has no validation split; use bench.data.with_validation.")
        self.dataset, self.config = dataset, config
        devices = jax.devices()
        self.n_devices = len(devices) if config.devices is None else config.devices
        if not 1 <= self.n_devices <= len(devices):
            raise ValueError(f"devices={config.devices}: this host has {len(devices)} device(s).")
        self.devices = devices[: self.n_devices]
        self.timing = {"init_s": 0.0, "compile_s": 0.0, "train_s": 0.0}
        self._programs: dict[tuple, Any] = {}
        self._scalings: dict[tuple, Any] = {}
        # Several processes (a multi-host launch): every array is global, the model axis
        # is always the one sharded, and the data are replicated on that mesh.
        self.multi_process = jax.process_count() > 1
        d = dataset
        put = self._replicated if self.multi_process else jnp.asarray
        self.x_train, self.y_train = put(d.x_train), put(d.y_train)
        self.splits = tuple(tuple(put(a) for a in self._chunks(x, y))
                            for x, y in ((d.x_train, d.y_train), (d.x_val, d.y_val), (d.x_test, d.y_test)))
        k = min(STATS_BATCH, len(d.x_train))
        self.stats_batch = (put(d.x_train[:k]), put(d.y_train[:k]))

    def _replicated(self, x: np.ndarray) -> jax.Array:
        return _global(x, NamedSharding(Mesh(np.array(self.devices), ("models",)), P()))

    def spec(self, arch: str, activation: str, depth: int, width: int | None = None) -> NetSpec:
        """The network of this dataset (``width`` None: the config's first width)."""
        d = self.dataset
        return NetSpec(arch, depth, width or self.config.widths[0], activation, d.n_features, d.n_out, d.task)

    def scaling(self, spec: NetSpec, parametrization: str):
        """The :class:`bench.parametrize.Scaling` of ``parametrization`` on ``spec`` (cached)."""
        from bench.parametrize import scaling

        key = (spec, parametrization)
        if key not in self._scalings:
            self._scalings[key] = scaling(parametrization, spec, self.config.base, self.config.optimizer)
        return self._scalings[key]

    def _chunks(self, x: np.ndarray, y: np.ndarray):
        """Pads a split to whole chunks of a multiple of the device count, with a mask."""
        n = len(x)
        chunk = -(-min(EVAL_CHUNK, n) // self.n_devices) * self.n_devices
        n_chunks = -(-n // chunk)
        pad = n_chunks * chunk - n
        xp = np.concatenate([x, np.zeros((pad,) + x.shape[1:], x.dtype)])
        yp = np.concatenate([y, np.zeros((pad,) + y.shape[1:], y.dtype)])
        mask = np.concatenate([np.ones(n, bool), np.zeros(pad, bool)])
        return tuple(a.reshape((n_chunks, chunk) + a.shape[1:]) for a in (xp, yp, mask))

    # ------------------------------------------------------------------ initialization

    def initialize(self, spec: NetSpec, schemes: Sequence[str], seeds: Sequence[int],
                   parametrization: str = "standard") -> Initialized:
        """Initial parameters of every applicable scheme and seed (see the module docstring)
        under ``parametrization`` (see :mod:`bench.parametrize`)."""
        t0 = time.perf_counter()
        out = Initialized(spec, list(seeds), parametrization)
        arch = get_arch(spec.arch)
        reason = arch.check(spec)
        if not reason:
            try:
                out.scaling = self.scaling(spec, parametrization)
            except ValueError as err:
                reason = str(err)
        if reason:
            out.skipped = dict.fromkeys(schemes, reason)
            return out
        keys, _, post_keys = init_keys(seeds)
        fns = {}
        for name in schemes:
            try:
                fn = self._init_fn(spec, name)
                jax.eval_shape(fn, keys)  # traces: a scheme whose initializers reject a shape fails here
            except Exception as err:
                out.skipped[name] = _reason(err)
                continue
            fns[name] = fn
        if fns:
            program = _compile(jax.jit(lambda k: {n: f(k) for n, f in fns.items()}).lower(keys), 0)
            out.params = program(keys)
        module = arch.module(spec)
        for name in list(out.params):
            self._post_init(out, name, module, post_keys)
        if not out.scaling.identity:
            self._check_width_rule(out, keys)
        if out.scaling.init_scale:
            for name in out.params:
                out.params[name] = jax.vmap(lambda p: scale_leaves(p, out.scaling.init_scale))(out.params[name])
        jax.block_until_ready(out.params)
        out.seconds = time.perf_counter() - t0
        self.timing["init_s"] += out.seconds
        return out

    def _init_fn(self, spec: NetSpec, scheme: str) -> Callable:
        """``keys -> params`` of ``scheme`` on ``spec``, vmapped over seeds."""
        arch = get_arch(spec.arch)
        module, rules = arch.module(spec), jinit.get_scheme(scheme).rules(arch.structure(spec))
        x0 = jnp.zeros((1, spec.n_in), jnp.float32)
        return jax.vmap(lambda k: jinit.init(module, rules, k, x0)["params"])

    def _check_width_rule(self, out: Initialized, keys) -> None:
        """Skips the schemes whose init does not scale as the parametrization assumes
        (:func:`bench.parametrize.width_rule_violation`), comparing seed 0 at the base."""
        from bench.parametrize import width_rule_violation

        s, spec = out.scaling, out.spec
        base = dataclasses.replace(spec, width=s.base[0], depth=s.base[1])
        for name in list(out.params):
            base_params = jax.jit(self._init_fn(base, name))(keys[:1])
            reason = width_rule_violation(s, name, _take(base_params, 0), _take(out.params[name], 0))
            if reason:
                out.skipped[name] = reason
                del out.params[name]

    def _post_init(self, out: Initialized, name: str, module, keys) -> None:
        step = jinit.get_scheme(name).post_init
        if step is None:
            return
        if not out.scaling.identity:
            out.skipped[name] = (f"a data-dependent step ({name}) sets each layer's scale from data at this width, "
                                 f"replacing the width scaling of the parametrization {out.parametrization!r}; "
                                 "run it with --parametrization standard.")
            del out.params[name]
            return
        batch = self.stats_batch[0]
        params, reports = [], []
        for i in range(len(out.seeds)):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                try:
                    variables, report = step(keys[i], module, {"params": _take(out.params[name], i)}, batch)
                except Exception as err:
                    out.skipped[name] = f"post-init step failed: {_reason(err)}"
                    del out.params[name]
                    return
            params.append(variables["params"])
            reports.append(_report_digest(report, [str(w.message) for w in caught]))
        out.params[name], out.reports[name] = _stack(params), reports

    # ------------------------------------------------------------------ programs

    def _mesh(self, n_models: int) -> tuple[Mesh | None, str | None]:
        if self.n_devices == 1:
            return None, None
        axis = "models" if n_models >= self.n_devices or self.multi_process else "data"
        return Mesh(np.array(self.devices), (axis,)), axis

    def _program(self, kind: str, init: Initialized, n_models: int, build: Callable, *args) -> Any:
        key = (kind, init.spec, init.parametrization, n_models, self.config.optimizer, self.config.batch_size)
        if key not in self._programs:
            t0 = time.perf_counter()
            self._programs[key] = _compile(build(init.spec, init.scaling, n_models).lower(*args), 1)
            self.timing["compile_s"] += time.perf_counter() - t0
        return self._programs[key]

    def _constrain(self, mesh, axis):
        def constrain(x):
            if axis != "data":
                return x
            return jax.lax.with_sharding_constraint(x, NamedSharding(mesh, P("data")))

        return constrain

    def _optimizer(self, scaling) -> optax.GradientTransformation:
        """The optimizer at lr 1, each parameter's update times its parametrization factor."""
        tx = make_optimizer(self.config.optimizer)
        if scaling is None or all(f == 1.0 for f in scaling.lr_factors.values()):
            return tx
        from jinit.parametrization import scale_by_path

        return optax.chain(tx, scale_by_path(scaling.lr_factors))

    def _train_fn(self, spec: NetSpec, scaling, n_models: int):
        module, tx = get_arch(spec.arch).module(spec), self._optimizer(scaling)
        batch, n = self.config.batch_size, len(self.dataset.x_train)
        constrain = self._constrain(*self._mesh(n_models))
        forward = _forward(scaling)

        def one_model(state, lr, start, stop, x, y):
            def mean_loss(params, xb, yb):
                return jnp.mean(loss_and_metrics(module.apply({"params": forward(params)}, xb), yb, spec.task)[0])

            def step(i, st):
                key = jax.random.wrap_key_data(st["key"])
                idx = jax.random.randint(jax.random.fold_in(key, i), (batch,), 0, n)
                loss, grads = jax.value_and_grad(mean_loss)(st["params"], constrain(x[idx]), constrain(y[idx]))
                updates, opt = tx.update(grads, st["opt"], st["params"])
                params = optax.apply_updates(st["params"], jax.tree.map(lambda u: lr * u, updates))
                bad = jnp.where((st["bad"] < 0) & ~jnp.isfinite(loss), i, st["bad"])
                return {"params": params, "opt": opt, "key": st["key"], "bad": bad}

            return jax.lax.fori_loop(start, stop, step, state)

        return jax.jit(jax.vmap(one_model, in_axes=(0, 0, None, None, None, None)), donate_argnums=0)

    def _eval_fn(self, spec: NetSpec, scaling, n_models: int):
        module = get_arch(spec.arch).module(spec)
        constrain = self._constrain(*self._mesh(n_models))
        forward = _forward(scaling)

        def split_metrics(params, xs, ys, ms):
            def body(acc, chunk):
                xc, yc, mc = (constrain(a) for a in chunk)
                loss, correct = loss_and_metrics(module.apply({"params": forward(params)}, xc), yc, spec.task)
                return (acc[0] + jnp.sum(jnp.where(mc, loss, 0.0)), acc[1] + jnp.sum(jnp.where(mc, correct, 0.0))), None

            (sl, sc), _ = jax.lax.scan(body, (jnp.float32(0), jnp.float32(0)), (xs, ys, ms))
            return sl / jnp.sum(ms), sc / jnp.sum(ms)

        def one_model(params, splits):
            return jnp.stack([m for split in splits for m in split_metrics(params, *split)])

        return jax.jit(jax.vmap(one_model, in_axes=(0, None)))

    def _stats_fn(self, spec: NetSpec, scaling, n_models: int):
        arch = get_arch(spec.arch)
        module = arch.module(spec, collect=True)
        forward = _forward(scaling)

        def one_model(params, x, y):
            def loss_fn(p):
                out, stats = module.apply({"params": forward(p)}, x)
                return jnp.mean(loss_and_metrics(out, y, spec.task)[0]), stats

            (loss, stats), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
            return {"activation_std": stats[:, 0], "activation_mean": stats[:, 1], "saturation": stats[:, 2],
                    "grad_norm": arch.grad_norms(spec, grads), "output_grad_norm": arch.readout_grad_norm(grads),
                    "loss": loss}

        return jax.jit(jax.vmap(one_model, in_axes=(0, None, None)))

    # ------------------------------------------------------------------ training

    def _place(self, tree: Any, n_models: int) -> Any:
        mesh, axis = self._mesh(n_models)
        if mesh is None:
            return tree
        # The model axis is split over the devices; with fewer models than devices
        # the models are replicated and each step's minibatch is split instead.
        sharding = NamedSharding(mesh, P("models") if axis == "models" else P())
        return jax.tree.map(lambda a: _global(a, sharding), tree)

    def train(self, init: Initialized, jobs: Sequence[Job], progress: Callable[[int], None] | None = None,
              pad_to: int | None = None) -> list[dict]:
        """Trains ``jobs`` (schemes of ``init``) in one chunk; one record per job. The chunk is
        padded (repeating its last job; those results are dropped) to ``pad_to`` models, so that
        chunks of different lengths reuse one compiled program, and to a multiple of the devices."""
        jobs = list(jobs)
        n_models = max(len(jobs), pad_to or 0)
        if n_models >= self.n_devices or self.multi_process:
            n_models = -(-n_models // self.n_devices) * self.n_devices
        padded = jobs + [jobs[-1]] * (n_models - len(jobs))
        t0, c0 = time.perf_counter(), self.timing["compile_s"]
        seed_index = {s: i for i, s in enumerate(init.seeds)}
        _, data_keys, _ = init_keys(init.seeds)
        params = _stack([_take(init.params[j.scheme], seed_index[j.seed]) for j in padded])
        lr = jnp.asarray([j.lr for j in padded], jnp.float32)
        keys = jax.random.key_data(jnp.stack([data_keys[seed_index[j.seed]] for j in padded]))
        tx = self._optimizer(init.scaling)
        state = {"params": params, "opt": jax.vmap(tx.init)(params), "key": keys,
                 "bad": jnp.full((n_models,), -1, jnp.int32)}
        state, lr = self._place(state, n_models), self._place(lr, n_models)
        curves, stats, state = self._loop(init, n_models, state, lr, progress)
        seconds = time.perf_counter() - t0
        self.timing["train_s"] += seconds - (self.timing["compile_s"] - c0)
        per_model = (seconds + init.seconds * len(jobs) / max(1, len(init.params) * len(init.seeds))) / len(jobs)
        bad = np.asarray(_host(state["bad"]))
        return [self._record(init, job, i, curves, stats, int(bad[i]), per_model) for i, job in enumerate(jobs)]

    def _loop(self, init: Initialized, n_models: int, state, lr, progress):
        cfg = self.config
        xb, yb = self.stats_batch
        stats_fn = self._program("stats", init, n_models, self._stats_fn, state["params"], xb, yb)
        evaluate = self._program("eval", init, n_models, self._eval_fn, state["params"], self.splits)
        a0, b0 = jnp.int32(0), jnp.int32(min(cfg.eval_every, cfg.steps))
        train = self._program("train", init, n_models, self._train_fn, state, lr, a0, b0, self.x_train, self.y_train)
        init_stats = _host(stats_fn(state["params"], xb, yb))
        points = cfg.eval_steps()
        curves = [(0, np.asarray(_host(evaluate(state["params"], self.splits))))]
        for a, b in zip(points[:-1], points[1:]):
            state = train(state, lr, jnp.int32(a), jnp.int32(b), self.x_train, self.y_train)
            curves.append((b, np.asarray(_host(evaluate(state["params"], self.splits)))))  # host sync
            if progress is not None:
                progress(b - a)
            losses = np.stack([m[:, 0] for _, m in curves])
            if ((np.asarray(_host(state["bad"])) >= 0) | ~np.all(np.isfinite(losses), axis=0)).all():
                if progress is not None:
                    progress(cfg.steps - b)
                break
        final_stats = _host(stats_fn(state["params"], xb, yb))
        return curves, (init_stats, final_stats), state

    def _record(self, init: Initialized, job: Job, i: int, curves, stats, bad: int, seconds: float) -> dict:
        cfg, spec = self.config, init.spec
        col = {name: k for k, name in enumerate(METRICS)}
        series = {name: [(step, float(m[i, k])) for step, m in curves] for name, k in col.items()}
        nonfinite = [s for s, v in series["train_loss"] + series["val_loss"] if not math.isfinite(v)]
        bad_steps = ([bad] if bad >= 0 else []) + nonfinite
        div = min(bad_steps) if bad_steps else None
        alive = [(s, v) for s, v in series["val_loss"] if div is None or s < div]
        last = {name: None if div is not None else _finite(series[name][-1][1]) for name in METRICS}
        reached = [s for s, v in series["train_loss"] if cfg.target_loss is not None and math.isfinite(v)
                   and v <= cfg.target_loss and (div is None or s < div)]
        record = {
            "arch": spec.arch, "scheme": job.scheme, "activation": spec.activation, "depth": spec.depth,
            "width": spec.width, "parametrization": init.parametrization, "lr": job.lr, "seed": job.seed, "optimizer": cfg.optimizer, "steps": cfg.steps,
            "batch_size": cfg.batch_size, "dataset": self.dataset.name,
            "final_train_loss": last["train_loss"], "final_train_accuracy": last["train_accuracy"],
            "final_val_loss": last["val_loss"], "final_val_accuracy": last["val_accuracy"],
            "test_loss": last["test_loss"], "test_accuracy": last["test_accuracy"],
            "best_val_loss": min((v for _, v in alive), default=None),
            "last_k_val_loss": None if div is not None else float(np.mean([v for _, v in alive[-cfg.last_k:]])),
            "steps_to_target": reached[0] if reached else None, "diverged": div is not None, "diverged_step": div,
            "loss_curve": [[s, _finite(v)] for s, v in series["train_loss"]],
            "val_loss_curve": [[s, _finite(v)] for s, v in series["val_loss"]],
            "test_accuracy_curve": [[s, _finite(v)] for s, v in series["test_accuracy"]],
            "init_stats": _stats_record(stats[0], i), "final_stats": _stats_record(stats[1], i),
            "time_s": round(seconds, 4),
        }
        if job.scheme in init.reports:
            record["post_init"] = init.reports[job.scheme][init.seeds.index(job.seed)]
        return record


def _forward(scaling) -> Callable:
    """``params -> params`` with the parametrization's forward multipliers applied (the
    network is called on these; the gradient is taken with respect to the stored ones)."""
    mults = {} if scaling is None else scaling.multipliers
    return lambda params: scale_leaves(params, mults)


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__


def _stats_record(stats: dict, i: int) -> dict:
    def vec(name):
        return [_finite(v) for v in np.asarray(stats[name][i]).ravel()]

    sat = vec("saturation")
    return {"activation_std": vec("activation_std"), "activation_mean": vec("activation_mean"),
            "saturation": sat if any(v is not None for v in sat) else None, "grad_norm": vec("grad_norm"),
            "output_grad_norm": _finite(stats["output_grad_norm"][i]), "loss": _finite(stats["loss"][i])}


def _report_digest(report: Any, messages: list[str]) -> dict:
    """A JSON-able digest of a post-init report (LSUV's per-layer list)."""
    layers = list(report) if isinstance(report, (list, tuple)) else []
    return {
        "layers": len(layers),
        "converged_layers": int(sum(bool(getattr(r, "converged", False)) for r in layers)),
        "var_after": [_finite(getattr(r, "var_after", float("nan"))) for r in layers],
        "warnings": messages,
    }
