"""``python -m bench``: train deep MLPs under every initialization scheme and compare.

Everything the command line accepts is validated before anything is written;
invalid input exits with status 2 and a message listing the valid values. A
finished configuration (all seeds of one scheme x activation x depth) is saved
at once, so an interrupted run (Ctrl-C, SIGTERM, a kill) leaves valid files and
re-running the same command with the same ``--out`` resumes where it stopped.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import shlex
import signal
import sys
import textwrap
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from bench.presets import DEFAULTS, PRESETS, PresetError, resolve_schemes

__all__ = ["main", "build_parser"]

EXIT_INTERRUPTED = 130
MODEL_VERSION = "mlp-scan/1"


# --------------------------------------------------------------------------- parser


def _registry():
    import jinit

    return jinit


def _epilog() -> str:
    jinit = _registry()
    from bench.train import OPTIMIZERS

    width = 100
    out = ["schemes (jinit's registry; --schemes takes names separated by commas, or 'all'):"]
    for name, s in jinit.SCHEMES.items():
        tag = " [model-level: runs jinit.data_dependent.lsuv after the per-tensor init]" if s.model_level else ""
        out.append(textwrap.fill(f"{name}: {s.formula}. {s.description}{tag}", width,
                                 initial_indent="  ", subsequent_indent="      "))
    out.append("")
    out.append("activations: " + ", ".join(jinit.ACTIVATIONS))
    out.append("optimizers: " + "; ".join(f"{k} = {v}" for k, v in OPTIMIZERS.items()))
    out.append("")
    out.append("presets (--preset NAME; flags given explicitly override the preset):")
    for p in PRESETS.values():
        out.append(textwrap.fill(f"{p.name}: {p.summary}.", width, initial_indent="  ", subsequent_indent="      "))
        out.append(textwrap.fill(f"source: {p.source}", width, initial_indent="      ", subsequent_indent="      "))
    out.append("")
    out.append(textwrap.fill(
        "Outputs (--out DIR): results.json (every run: config, environment, per-seed curves and per-layer "
        "statistics; NaN/inf are written as null), summary.md (ranked table, mean ± std over seeds), and "
        "loss_curves.png, activation_std.png, grad_norm.png, accuracy.png (+ saturation.png for tanh/sigmoid). "
        "Re-running with the same --out skips finished configurations. Exit status: 0 done, 2 invalid "
        "arguments, 130 interrupted (files stay valid; re-run to resume).", width))
    out.append("")
    out.append("examples:")
    out.append("  python -m bench                                   # every scheme, default settings")
    out.append("  python -m bench --preset he2015                   # reproduce He et al. 2015, Fig. 3")
    out.append("  python -m bench --schemes he_normal,glorot_normal --depth 10,50 --activation relu")
    out.append("  python -m bench --dataset ~/data/fashion-mnist --width 256 --steps 2000")
    out.append("  python -m bench --replot --out results/20250101-120000")
    return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    d = DEFAULTS
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=textwrap.fill(
            "Train deep MLPs under each initialization scheme of jinit and compare how they train: a ranked "
            "table, results.json and plots. Defaults (no flags): every registered scheme, ReLU and tanh MLPs "
            "with 20 hidden layers of width 64, SGD + momentum, 300 steps, 3 seeds, digits data.", 100
        ),
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--preset", metavar="NAME",
                   help=f"start from a named configuration ({', '.join(PRESETS)}; see below). Default: 'default'.")
    p.add_argument("--schemes", metavar="A,B,...",
                   help="initialization schemes to compare, comma-separated, or 'all' (default: all registered).")
    p.add_argument("--depth", metavar="L[,L...]",
                   help=f"number of hidden layers (Dense + activation; the first maps the input to --width, the "
                        f"other L-1 are width x width and run under nn.scan; a linear output layer follows). "
                        f"Several values run each (default {','.join(map(str, d['depths']))}).")
    p.add_argument("--width", type=int, metavar="N", help=f"units per hidden layer (default {d['width']}).")
    p.add_argument("--activation", metavar="NAME[,NAME...]",
                   help=f"activation(s) of the hidden layers, e.g. relu|tanh|sigmoid|gelu (default "
                        f"{','.join(d['activations'])}).")
    p.add_argument("--optimizer", metavar="NAME",
                   help=f"sgd | momentum (SGD, momentum 0.9) | adam (default {d['optimizer']}).")
    p.add_argument("--lr", type=float, metavar="LR",
                   help=f"learning rate (default {d['lr']}; with --optimizer and no --lr: sgd/momentum 0.01, "
                        "adam 0.001; presets may set their own).")
    p.add_argument("--steps", type=int, metavar="N", help=f"optimizer steps per run (default {d['steps']}).")
    p.add_argument("--batch-size", type=int, metavar="B",
                   help=f"minibatch size; minibatches are drawn uniformly with replacement (default {d['batch_size']}).")
    p.add_argument("--seeds", type=int, metavar="K",
                   help=f"seeds per configuration, 0..K-1, trained together with vmap (default {d['seeds']}).")
    p.add_argument("--dataset", metavar="digits|teacher|PATH",
                   help="digits (sklearn's 8x8 digits, bundled; default), teacher[:key=value,...] (synthetic "
                        "teacher-student task; keys n_train, n_test, dim, classes (0 = regression), outputs, "
                        "hidden, layers, noise, seed), a directory of MNIST-format IDX files (gzip or not), an "
                        "extracted CIFAR-10 cifar-10-batches-py directory (the official python pickles), or an "
                        ".npz with x_train, y_train, x_test, y_test.")
    p.add_argument("--eval-every", type=int, metavar="N",
                   help=f"log the loss on the whole training split every N steps (default {d['eval_every']}); "
                        "the only host syncs during training.")
    p.add_argument("--target-loss", type=float, metavar="X",
                   help=f"steps_to_target = first logged step with train loss <= X (default {d['target_loss']}).")
    p.add_argument("--out", metavar="DIR",
                   help="output directory (default results/<timestamp>); an existing one is resumed.")
    p.add_argument("--devices", type=int, metavar="N",
                   help="use the first N devices (default: all); with N > 1 the batch is sharded across them.")
    p.add_argument("--replot", action="store_true",
                   help="only re-render summary.md and the plots from DIR/results.json (needs --out).")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots.")
    p.add_argument("--list", action="store_true", help="list the schemes and presets and exit.")
    return p


# --------------------------------------------------------------------------- config


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _ints(parser, flag: str, value: str) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in _split(value))
    except ValueError:
        parser.error(f"{flag}: expected integers separated by commas, got {value!r}.")
    if not out or any(v < 1 for v in out):
        parser.error(f"{flag}: values must be integers >= 1, got {value!r}.")
    return out


def resolve_config(args: argparse.Namespace, parser: argparse.ArgumentParser) -> tuple[dict, list[str]]:
    """Preset < explicit flags; validates everything (parser.error -> exit 2)."""
    jinit = _registry()
    from bench.train import DEFAULT_LR, OPTIMIZERS

    name = args.preset or "default"
    if name not in PRESETS:
        parser.error(f"unknown preset {name!r}; valid presets are {', '.join(PRESETS)}.")
    preset = PRESETS[name]
    cfg = dict(preset.settings())
    notes: list[str] = []

    registered = list(jinit.SCHEMES)

    if args.schemes is not None:
        wanted = _split(args.schemes)
        if wanted == ["all"]:
            wanted = registered
        unknown = [s for s in wanted if s not in jinit.SCHEMES]
        if unknown or not wanted:
            parser.error(
                f"unknown scheme(s) {', '.join(map(repr, unknown)) or '(none given)'}; valid schemes are "
                f"{', '.join(registered)} (or 'all')."
            )
        schemes = list(dict.fromkeys(wanted))
    else:
        try:
            schemes, preset_notes = resolve_schemes(preset, registered)
        except PresetError as err:
            parser.error(str(err))
        notes += preset_notes
    cfg["schemes"] = schemes

    if args.activation is not None:
        acts = _split(args.activation)
        unknown = [a for a in acts if a not in jinit.ACTIVATIONS]
        if unknown or not acts:
            parser.error(
                f"unknown activation(s) {', '.join(map(repr, unknown)) or '(none given)'}; valid activations are "
                f"{', '.join(jinit.ACTIVATIONS)}."
            )
        cfg["activations"] = tuple(dict.fromkeys(acts))
    if args.depth is not None:
        cfg["depths"] = tuple(dict.fromkeys(_ints(parser, "--depth", args.depth)))
    if args.optimizer is not None:
        if args.optimizer not in OPTIMIZERS:
            parser.error(f"unknown optimizer {args.optimizer!r}; valid optimizers are {', '.join(OPTIMIZERS)}.")
        cfg["optimizer"] = args.optimizer
        if args.lr is None and "lr" not in preset.values:
            cfg["lr"] = DEFAULT_LR[args.optimizer]
    for flag, key in (("width", "width"), ("steps", "steps"), ("batch_size", "batch_size"), ("seeds", "seeds"),
                      ("eval_every", "eval_every")):
        value = getattr(args, flag)
        if value is not None:
            if value < 1:
                parser.error(f"--{flag.replace('_', '-')} must be >= 1, got {value}.")
            cfg[key] = value
    if args.lr is not None:
        if not (args.lr > 0 and args.lr < float("inf")):
            parser.error(f"--lr must be a positive finite number, got {args.lr}.")
        cfg["lr"] = args.lr
    if args.target_loss is not None:
        if args.target_loss != args.target_loss:
            parser.error("--target-loss must be a number.")
        cfg["target_loss"] = args.target_loss
    if args.dataset is not None:
        cfg["dataset"] = args.dataset
    cfg["eval_every"] = min(cfg["eval_every"], cfg["steps"])
    cfg["activations"] = list(cfg["activations"])
    cfg["depths"] = list(cfg["depths"])
    cfg["preset"] = name
    cfg["preset_source"] = preset.source
    cfg["momentum"] = 0.9 if cfg["optimizer"] == "momentum" else None
    cfg["model"] = MODEL_VERSION
    cfg["data_order"] = "minibatches uniform with replacement, key fold_in(split(key(seed))[1], step)"
    return cfg, notes


# --------------------------------------------------------------------------- output


def _print_tables(console, results: dict) -> None:
    from rich.table import Table

    from bench.results import TABLE_HEADER, rank_groups, table_cells

    target = results["config"].get("target_loss")
    for (act, depth), rows in rank_groups(results).items():
        table = Table(title=f"{act}, depth {depth} (mean ± std over seeds)", title_justify="left")
        for i, h in enumerate(TABLE_HEADER):
            table.add_column(h, justify="left" if i == 1 else "right", no_wrap=i == 1)
        for row in rows:
            table.add_row(*table_cells(row, target))
        console.print(table)


def render(out_dir: str, results: dict, plots: bool = True, console=None) -> list[str]:
    """Writes summary.md (and the plots) of ``results`` into ``out_dir``."""
    from bench.results import SUMMARY, atomic_write_text, summary_markdown

    atomic_write_text(os.path.join(out_dir, SUMMARY), summary_markdown(results))
    written = [os.path.join(out_dir, SUMMARY)]
    if plots and results.get("runs"):
        from bench.plots import plot_all

        written += plot_all(results, out_dir)
    return written


def _resume_command(out_dir: str) -> str:
    argv = list(sys.argv[1:])
    if "--out" not in argv and not any(a.startswith("--out=") for a in argv):
        argv += ["--out", out_dir]
    return "python -m bench " + " ".join(shlex.quote(a) for a in argv)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)

    from rich.console import Console

    console = Console(highlight=False)
    if not console.is_terminal:  # logs and CI: wide enough for the ranked table on one line per row
        console = Console(highlight=False, width=160)

    if args.list:
        jinit = _registry()
        for n, s in jinit.SCHEMES.items():
            console.print(f"[bold]{n}[/bold] ({s.family}{', model-level' if s.model_level else ''}): {s.formula}")
        console.print()
        for p in PRESETS.values():
            console.print(f"[bold]{p.name}[/bold]: {p.summary}. Source: {p.source}")
        return 0

    if args.replot:
        from bench.results import ResultsError, ResultStore

        if not args.out:
            parser.error("--replot needs --out DIR (a directory holding results.json).")
        try:
            results = ResultStore.read(args.out)
        except ResultsError as err:
            parser.error(str(err))
        if results is None:
            parser.error(f"--replot: {os.path.join(args.out, 'results.json')} does not exist.")
        for path in render(args.out, results, plots=not args.no_plots):
            console.print(f"wrote {path}")
        _print_tables(console, results)
        return 0

    cfg, notes = resolve_config(args, parser)

    # Dataset and output directory are checked before anything is written.
    from bench.data import DataError, load_dataset

    try:
        dataset = load_dataset(cfg["dataset"])
    except DataError as err:
        parser.error(f"--dataset: {err}")
    cfg["dataset_info"] = dataset.describe()

    from bench.results import ResultsError, ResultStore, config_hash, settings_hash

    # The library versions change the numbers too (an initializer's sampler may
    # change between jinit versions): results are only resumed under the same ones.
    import jax

    cfg["versions"] = {"jinit": _registry().__version__, "jax": jax.__version__}
    cfg["settings_hash"] = settings_hash(cfg)
    out_dir = args.out or os.path.join("results", _dt.datetime.now().strftime("%Y%m%d-%H%M%S"))
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        parser.error(f"--out {out_dir}: exists and is not a directory.")
    try:
        existing = ResultStore.read(out_dir)
        if existing is not None:
            ResultStore.check_resumable(existing, cfg)
    except ResultsError as err:
        parser.error(f"--out {out_dir}: {err}")

    from bench.train import SchemeUnavailable, Trainer, TrainSettings

    n_avail = jax.device_count()
    if args.devices is not None and not 1 <= args.devices <= n_avail:
        parser.error(f"--devices {args.devices}: this host has {n_avail} device(s) ({jax.default_backend()}).")
    cfg["devices"] = args.devices
    jinit = _registry()

    settings = TrainSettings(cfg["optimizer"], cfg["lr"], cfg["steps"], cfg["batch_size"], cfg["eval_every"],
                             cfg["target_loss"])
    trainer = Trainer(dataset, settings, args.devices)
    notes += trainer.notes

    from bench.env import environment

    store = ResultStore(out_dir, cfg, environment(devices_used=trainer.n_devices))
    if existing is not None:
        store.adopt(existing)
    seeds = list(range(cfg["seeds"]))
    todo, done_before = [], 0
    for depth in cfg["depths"]:
        for act in cfg["activations"]:
            for scheme in cfg["schemes"]:
                chash = config_hash(cfg["settings_hash"], scheme, act, depth)
                if store.done(chash):
                    done_before += 1
                else:
                    todo.append((scheme, act, depth, chash))

    t0 = time.perf_counter()
    store.data["timing"] = trainer.timing
    store.save()  # the directory and a valid results.json exist from here on

    for note in notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    total = len(todo) + done_before
    console.print(
        f"jinit benchmark: {len(cfg['schemes'])} scheme(s) x {len(cfg['activations'])} activation(s) x "
        f"{len(cfg['depths'])} depth(s), {cfg['seeds']} seed(s) each, on {dataset.name} "
        f"({jax.default_backend()}, {trainer.n_devices} device(s)) -> {out_dir}"
    )
    if done_before:
        console.print(f"resuming: {done_before} of {total} configuration(s) already in {store.path}")

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    old_term = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread
        old_term = None
    interrupted = False
    progress = Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("steps"),
        TimeElapsedColumn(), TimeRemainingColumn(), console=console, disable=not console.is_terminal,
        transient=True,
    )
    # The next configuration is initialized (compiled, LSUV) in a background
    # thread while the current one trains.
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="bench-init")

    def prepare(item):
        scheme, act, depth, _ = item
        return trainer.prepare(jinit.get_scheme(scheme), act, depth, cfg["width"], seeds)

    try:
        with progress:
            task = progress.add_task("starting", total=len(todo) * cfg["steps"])
            pending = pool.submit(prepare, todo[0]) if todo else None
            for i, item in enumerate(todo):
                scheme, act, depth, chash = item
                n = done_before + i + 1
                progress.update(task, description=f"[{n}/{total}] {act} depth {depth} {scheme}")
                t_wait = time.perf_counter()
                try:
                    prepared = pending.result()
                except SchemeUnavailable as err:
                    prepared, reason = None, str(err)
                trainer.timing["wait_init_s"] = trainer.timing.get("wait_init_s", 0.0) + time.perf_counter() - t_wait
                pending = pool.submit(prepare, todo[i + 1]) if i + 1 < len(todo) else None
                if prepared is None:
                    store.skip(scheme, act, depth, reason)
                    store.save()
                    progress.advance(task, cfg["steps"])
                    console.print(f"[yellow]skipped[/yellow] {scheme} ({act}, depth {depth}): {reason}")
                    continue
                result = trainer.run(prepared, progress=lambda k: progress.advance(task, k))
                store.add(result.runs, chash)
                store.data["timing"] = {**trainer.timing, "wall_s": time.perf_counter() - t0}
                store.save()
                console.print(_run_line(n, total, scheme, act, depth, result))
    except KeyboardInterrupt:
        interrupted = True
    finally:
        pool.shutdown(wait=not interrupted, cancel_futures=True)
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)

    store.data["timing"] = {**trainer.timing, "wall_s": time.perf_counter() - t0}
    if interrupted:
        store.save()
        render(out_dir, store.data, plots=False)
        finished = len({r["config_hash"] for r in store.data["runs"]})
        console.print(
            f"\n[red]interrupted[/red]: {finished} of {total} configuration(s) saved in {store.path} "
            f"(valid JSON; summary.md updated, plots skipped).\nresume with: {_resume_command(out_dir)}"
        )
        return EXIT_INTERRUPTED

    store.save()
    t_plot = time.perf_counter()
    written = render(out_dir, store.data, plots=not args.no_plots)
    plot_s = time.perf_counter() - t_plot
    console.print()
    _print_tables(console, store.data)
    tm = trainer.timing
    console.print(
        f"time: {time.perf_counter() - t0:.1f} s wall = compiling training programs {tm['compile_train_s']:.1f} s "
        f"+ eval/stats programs {tm['compile_other_s']:.1f} s + training {tm['run_s']:.1f} s + summary/plots "
        f"{plot_s:.1f} s + waiting for initialization {tm.get('wait_init_s', 0):.1f} s; initialization (compile and "
        f"run, LSUV) took {tm['init_s']:.1f} s in a background thread, overlapped with training"
    )
    console.print("wrote " + ", ".join([store.path] + written))
    return 0


def _run_line(i: int, total: int, scheme: str, act: str, depth: int, result) -> str:
    runs = result.runs
    div = sum(r["diverged"] for r in runs)
    losses = [r["final_train_loss"] for r in runs if r["final_train_loss"] is not None]
    accs = [r["test_accuracy"] for r in runs if r["test_accuracy"] is not None]
    parts = [f"[{i}/{total}] {act} depth {depth} {scheme}:"]
    if losses:
        parts.append(f"train loss {sum(losses) / len(losses):.3g}")
    if accs:
        parts.append(f"test acc {100 * sum(accs) / len(accs):.1f}%")
    if div:
        parts.append(f"diverged {div}/{len(runs)}")
    parts.append(f"({result.timing['seconds']:.1f} s)")
    return " ".join(parts)
