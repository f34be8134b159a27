"""``bench.run(config, out_dir) -> Results``: a whole benchmark run.

For every structure (architecture x activation x depth x width x parametrization) of a
:class:`~bench.config.BenchConfig` it initializes all (scheme, seed) pairs,
trains every (scheme, learning rate, seed) in chunks of ``batch_models`` models
(:mod:`bench.engine`), and saves ``results.json`` after every chunk, so a run
that is interrupted (Ctrl-C, SIGTERM, a kill) keeps everything it finished and
the same call with the same ``out_dir`` resumes it. The next structure is
initialized in a background thread while the current one trains. At the end the
best learning rate of each scheme is selected on the validation split
(:mod:`bench.selection`), and ``summary.md`` and the plots are written.

Example:
  >>> import bench
  >>> config = bench.BenchConfig.from_preset("quick", schemes=("he_normal",), archs=("mlp",), steps=10)
  >>> results = bench.run(config, out_dir=None, plots=False)  # doctest: +SKIP
  >>> results.selection[0]["best_lr"]  # doctest: +SKIP
"""

from __future__ import annotations

import datetime as _dt
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from bench.config import BenchConfig

__all__ = ["run", "Results", "Event", "plan", "chunks", "default_batch_models", "render"]

# Models per compiled program on CPU when batch_models is not set. Measured on a
# 2-core CPU, the mlp half of the default run (162 models; training seconds, compile
# excluded): 1 per program 25.1 s, 9: 18.2 s, 27: 22.1 s, 81: 22.1 s; more models per
# program do not help a CPU (no idle units to fill) beyond amortizing per-call costs.
# Accelerators train a whole structure in one program.
CPU_BATCH_MODELS = 9


@dataclass
class Event:
    """A progress event: ``kind`` is ``"start"``, ``"structure"``, ``"progress"``,
    ``"chunk"`` or ``"skipped"``; ``done``/``total`` count optimizer steps of all models."""

    kind: str
    message: str
    done: int = 0
    total: int = 0
    data: dict = field(default_factory=dict)


@dataclass
class Results:
    """What :func:`run` produced (``data`` is the content of ``results.json``)."""

    out_dir: str
    data: dict
    files: list[str] = field(default_factory=list)
    interrupted: bool = False

    @property
    def runs(self) -> list[dict]:
        return self.data["runs"]

    @property
    def selection(self) -> list[dict]:
        return self.data.get("selection", [])

    @property
    def skipped(self) -> list[dict]:
        return self.data["skipped"]

    @property
    def timing(self) -> dict:
        return self.data.get("timing", {})


def default_batch_models(config: BenchConfig, arch: str | None = None) -> int | None:
    """``config.batch_models``, else on CPU the architecture's ``cpu_models_per_program`` or
    :data:`CPU_BATCH_MODELS`, and all models elsewhere (None)."""
    import jax

    if config.batch_models is not None:
        return config.batch_models
    if jax.default_backend() != "cpu":
        return None
    from bench.archs import get_arch

    per_arch = get_arch(arch).cpu_models_per_program if arch is not None else None
    return per_arch or CPU_BATCH_MODELS


def chunks(jobs: list, size: int | None) -> list[list]:
    """``jobs`` in consecutive chunks of at most ``size`` (None: one chunk), as few as possible
    and all of the first one's length but the last (shorter; the runner pads it to that length,
    so that every chunk of a structure reuses one compiled program)."""
    if not jobs:
        return []
    n = 1 if size is None else -(-len(jobs) // size)
    per = -(-len(jobs) // n)
    return [jobs[i : i + per] for i in range(0, len(jobs), per)]


def plan(config: BenchConfig, done: set[str], settings: str) -> list[tuple[tuple, list]]:
    """``[((arch, activation, depth, width, parametrization), jobs to train), ...]``; runs in
    ``done`` are left out."""
    import itertools

    import jinit
    from bench.engine import Job
    from bench.results import run_hash

    schemes = config.schemes or tuple(jinit.SCHEMES)
    out = []
    for depth, width, arch, act, par in itertools.product(config.depths, config.widths, config.archs,
                                                          config.activations, config.parametrizations):
        structure = (arch, act, depth, width, par)
        jobs = [Job(s, lr, seed) for s in schemes for lr in config.lrs for seed in range(config.seeds)
                if run_hash(settings, structure, s, lr, seed) not in done]
        out.append((structure, jobs))
    return out


def _record_config(config: BenchConfig, dataset) -> dict:
    import jax

    import jinit
    from bench.presets import PRESETS
    from bench.results import settings_hash

    cfg = config.asdict()
    cfg.update(dataset_info=dataset.describe(), model="jinit-bench-archs/1",
               preset_source=PRESETS[config.preset].source if config.preset in PRESETS else None,
               momentum=0.9 if config.optimizer == "momentum" else None,
               data_order="minibatches uniform with replacement, key fold_in(split(key(seed), 3)[1], step)",
               versions={"jinit": jinit.__version__, "jax": jax.__version__})
    cfg["settings_hash"] = settings_hash(cfg)
    return cfg


def render(out_dir: str, data: dict, plots: bool = True) -> list[str]:
    """Writes summary.md (and the plots) of ``data`` into ``out_dir``; returns the paths."""
    from bench.report import summary_markdown
    from bench.results import SUMMARY, atomic_write_text

    path = os.path.join(out_dir, SUMMARY)
    atomic_write_text(path, summary_markdown(data))
    written = [path]
    if plots and data.get("runs"):
        from bench.plots import plot_all

        written += plot_all(data, out_dir)
    return written


def _open_store(config: BenchConfig, out_dir: str):
    from bench.data import load_dataset, with_validation
    from bench.engine import Engine
    from bench.env import environment
    from bench.results import ResultStore

    dataset = with_validation(load_dataset(config.dataset), config.val_fraction)
    cfg = _record_config(config, dataset)
    existing = ResultStore.read(out_dir)
    if existing is not None:
        ResultStore.check_resumable(existing, cfg)
    import jax

    engine = Engine(dataset, config)
    store = ResultStore(out_dir, cfg, environment(devices_used=engine.n_devices), writer=jax.process_index() == 0)
    if existing is not None:
        store.adopt(existing)
    return engine, store


def run(config: BenchConfig, out_dir: str | None = None, *, events: Callable[[Event], None] | None = None,
        plots: bool = True) -> Results:
    """Runs the benchmark of ``config`` into ``out_dir`` (default ``results/<timestamp>``);
    resumes the runs already in ``out_dir/results.json`` (same settings, else
    :class:`bench.results.ResultsError`). A KeyboardInterrupt (or SIGTERM turned into
    one by the CLI) stops it cleanly: the files stay valid, ``interrupted`` is True."""
    emit = events or (lambda e: None)
    out_dir = out_dir or os.path.join("results", _dt.datetime.now().strftime("%Y%m%d-%H%M%S"))
    engine, store = _open_store(config, out_dir)
    todo = [(s, j) for s, j in plan(config, store.done(), store.data["config"]["settings_hash"]) if j]
    total = sum(len(j) for _, j in todo) * config.steps
    resumed = len(store.data["runs"])
    emit(Event("start", (f"resuming: {resumed} run(s) already in {store.path}; " if resumed else "")
               + f"{total // config.steps} model(s) to train in {len(todo)} structure(s) on {engine.n_devices} "
               f"device(s) -> {out_dir}", 0, total, {"resumed": resumed, "devices": engine.n_devices}))
    t0 = time.perf_counter()
    store.save()  # the directory and a valid results.json exist from here on
    interrupted = False
    try:
        _train_all(engine, store, config, todo, emit, total)
    except KeyboardInterrupt:
        interrupted = True
    return _finish(engine, store, out_dir, t0, interrupted, plots)


def _train_all(engine, store, config: BenchConfig, todo: list, emit, total: int) -> None:
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-init")

    def prepare(item):
        (arch, act, depth, width, par), jobs = item
        return engine.initialize(engine.spec(arch, act, depth, width), list(dict.fromkeys(j.scheme for j in jobs)),
                                 range(config.seeds), par)

    done = 0
    try:
        pending = pool.submit(prepare, todo[0]) if todo else None
        for i, item in enumerate(todo):
            init = pending.result()
            pending = pool.submit(prepare, todo[i + 1]) if i + 1 < len(todo) else None
            size = default_batch_models(config, item[0][0])
            done = _train_structure(engine, store, item, init, size, emit, done, total)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


def _train_structure(engine, store, item, init, size, emit, done: int, total: int) -> int:
    from bench.results import run_hash

    structure, jobs = item
    arch, act, depth, width, par = structure
    where = _where(structure)
    steps, settings = engine.config.steps, store.data["config"]["settings_hash"]
    if init.scaling is not None and not init.scaling.identity:
        store.scaling(structure, init.scaling.record())
    for scheme, reason in init.skipped.items():
        store.skip({"arch": arch, "scheme": scheme, "activation": act, "depth": depth, "width": width,
                    "parametrization": par, "reason": reason})
        emit(Event("skipped", f"skipped {scheme} ({where}): {reason}"))
    runnable = [j for j in jobs if j.scheme in init.params]
    done += (len(jobs) - len(runnable)) * steps
    emit(Event("structure", f"{where}: {len(runnable)} model(s)", done, total))
    batches = chunks(runnable, size)
    for chunk in batches:
        start = done

        def progress(k: int, chunk=chunk) -> None:
            nonlocal start
            start += k * len(chunk)
            emit(Event("progress", "", start, total))

        records = engine.train(init, chunk, progress=progress, pad_to=len(batches[0]))
        for r in records:
            r["run_hash"] = run_hash(settings, structure, r["scheme"], r["lr"], r["seed"])
        store.add(records)
        store.data["timing"] = dict(engine.timing)
        store.save()
        done += len(chunk) * steps
        emit(Event("chunk", _chunk_line(where, records), done, total, {"records": records}))
    store.save()
    return done


def _where(structure: tuple) -> str:
    arch, act, depth, width, par = structure
    return f"{arch}, {act}, depth {depth}, width {width}" + ("" if par == "standard" else f", {par}")


def _chunk_line(where: str, records: list[dict]) -> str:
    schemes = list(dict.fromkeys(r["scheme"] for r in records))
    shown = ", ".join(schemes[:4]) + (f" +{len(schemes) - 4}" if len(schemes) > 4 else "")
    div = sum(r["diverged"] for r in records)
    return f"{where}: trained {len(records)} model(s) ({shown})" + (f", {div} diverged" if div else "")


def _finish(engine, store, out_dir: str, t0: float, interrupted: bool, plots: bool) -> Results:
    from bench.selection import select

    store.data["timing"] = {**engine.timing, "wall_s": time.perf_counter() - t0}
    store.data["selection"] = select(store.data)
    store.save()
    files = [store.path] + (render(out_dir, store.data, plots=plots and not interrupted) if store.writer else [])
    return Results(out_dir, store.data, files, interrupted)
