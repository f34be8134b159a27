"""``python -m bench``: a thin command line over :class:`bench.config.BenchConfig`
and :func:`bench.runner.run`.

Everything the command line accepts is validated (by ``BenchConfig``) before
anything is written; invalid input exits with status 2 and a message listing
the valid values. Every trained chunk of models is saved at once, so an
interrupted run (Ctrl-C, SIGTERM, a kill) leaves valid files and re-running the
same command with the same ``--out`` resumes where it stopped.
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

from bench.config import DEFAULT_LRS, PARAMETRIZATIONS
from bench.presets import PRESETS

__all__ = ["main", "build_parser"]

EXIT_INTERRUPTED = 130


# --------------------------------------------------------------------------- parser


def _registry():
    import jinit

    return jinit


def _epilog() -> str:
    jinit = _registry()
    from bench.archs import ARCHS
    from bench.config import OPTIMIZERS

    width = 100
    out = ["schemes (jinit's registry; --schemes takes names separated by commas, or 'all'):"]
    for name, s in jinit.SCHEMES.items():
        needs = f" [needs: {', '.join(sorted(s.requires))}]" if s.requires else ""
        tag = " [model-level]" + needs if s.model_level else ""
        out.append(textwrap.fill(f"{name}: {s.formula}. {s.description}{tag}", width,
                                 initial_indent="  ", subsequent_indent="      "))
    out.append("parametric schemes (--schemes 'meanfield(sigma_w2=1.5,sigma_b2=0.05)'; quote the parentheses):")
    for f in jinit.PARAMETRIC_SCHEMES.values():
        args = "; ".join(f"{k}: {p.doc}" + (f" (one of {', '.join(p.choices)})" if p.choices else "")
                         for k, p in f.params.items())
        out.append(textwrap.fill(f"{f.signature}: {f.summary}. {args}", width, initial_indent="  ",
                                 subsequent_indent="      "))
    out.append("")
    out.append("architectures (--arch):")
    for a in ARCHS.values():
        out.append(textwrap.fill(f"{a.name}: {a.summary}", width, initial_indent="  ", subsequent_indent="      "))
    out.append("")
    from bench.archs.common import SHAPED_ACTIVATIONS

    out.append("activations: " + ", ".join(jinit.ACTIVATIONS) + "; shaped for the network's depth (mlp only, "
               "jinit.kernel_shaping: TAT / DKS): " + ", ".join(SHAPED_ACTIVATIONS))
    out.append("optimizers: " + "; ".join(f"{k} = {v}" for k, v in OPTIMIZERS.items()))
    out.append("")
    out.append("presets (--preset NAME; flags given explicitly override the preset):")
    for p in PRESETS.values():
        out.append(textwrap.fill(f"{p.name}: {p.summary}.", width, initial_indent="  ", subsequent_indent="      "))
        out.append(textwrap.fill(f"source: {p.source}", width, initial_indent="      ", subsequent_indent="      "))
    out.append("")
    out.append(textwrap.fill(
        "Outputs (--out DIR): results.json (every run: config, environment, curves and per-layer statistics; "
        "the top-level 'selection' has each scheme at its best lr; NaN/inf are written as null), summary.md "
        "(ranked tables: mean with 95% CI over seeds, paired t-test against the best scheme), and "
        "lr_sensitivity.png, loss_curves.png, activation_std.png, grad_norm.png, accuracy.png (+ saturation.png "
        "for tanh/sigmoid; lr_transfer_width.png / lr_transfer_depth.png and a transfer table for sweeps over "
        "several widths / depths; phase_diagram.png and a table for a parametric scheme swept over one argument "
        "and several depths). Re-running with the same --out skips finished runs. Exit status: 0 done, 2 invalid "
        "arguments, 130 interrupted (files stay valid; re-run to resume).", width))
    out.append("")
    out.append("examples:")
    out.append("  python -m bench                                   # every scheme, default settings")
    out.append("  python -m bench --preset he2015                   # reproduce He et al. 2015, Fig. 3")
    out.append("  python -m bench --schemes he_normal,glorot_normal --depth 10,50 --activation relu")
    out.append("  python -m bench --arch resmlp,transformer --schemes he_normal,fixup,gpt2 --lr 0.003,0.01,0.03")
    out.append("  python -m bench --dataset ~/data/fashion-mnist --width 256 --steps 2000")
    out.append("  python -m bench --preset mup-width                 # best lr across widths: standard vs muP")
    out.append("  python -m bench --schemes he_normal --width 32,128 --parametrization standard,mup --optimizer adam")
    out.append("  python -m bench --preset trainability              # Schoenholz et al. 2017's phase diagram")
    out.append("  python -m bench --schemes 'meanfield(sigma_w2=1.5,sigma_b2=0.05),critical(q_star=0.01)' --activation tanh")
    out.append("  python -m bench --replot --out results/20250101-120000")
    return "\n".join(out)


def build_parser() -> argparse.ArgumentParser:
    from bench.config import BenchConfig

    d = BenchConfig.__dataclass_fields__
    default = {k: f.default for k, f in d.items()}
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=textwrap.fill(
            "Train deep networks under each initialization scheme of jinit, each scheme at its own best learning "
            "rate (chosen on a validation split), and compare: ranked tables with 95% confidence intervals over "
            "seeds, results.json and plots. Without flags: the 'default' preset (see below).", 100
        ),
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add = p.add_argument
    add("--preset", metavar="NAME", help=f"start from a named configuration ({', '.join(PRESETS)}). Default: 'default'.")
    add("--schemes", metavar="A,B,...", help="initialization schemes, comma-separated, or 'all' (default: all registered); parametric ones "
                                              "take arguments: meanfield(sigma_w2=1.5,sigma_b2=0.05), critical(q_star=0.01); a|b|... lists "
                                              "values to sweep: 'meanfield(sigma_w2=1|2|4,sigma_b2=0.05)'.")
    add("--arch", metavar="NAME[,NAME...]",
        help=f"architectures (default {','.join(default['archs'])}; see the list below).")
    add("--depth", metavar="L[,L...]", help=f"depths: hidden layers / residual blocks / conv layers / transformer "
                                             f"blocks (default {','.join(map(str, default['depths']))}).")
    add("--width", metavar="N[,N...]", help=f"units / channels / model dimension; several make a width sweep "
                                             f"(default {','.join(map(str, default['widths']))}).")
    add("--parametrization", metavar="NAME[,NAME...]",
        help="how init, learning rates and forward multipliers scale with width and depth relative to the base "
             "model (the smallest width and depth unless --base-width / --base-depth): "
             + "; ".join(f"{k}: {v}" for k, v in PARAMETRIZATIONS.items()) + f" (default standard).")
    add("--base-width", type=int, metavar="N", help="width of the base model of --parametrization (default: the smallest).")
    add("--base-depth", type=int, metavar="L", help="depth of the base model of --parametrization (default: the smallest).")
    add("--activation", metavar="NAME[,NAME...]",
        help=f"hidden activations, e.g. relu,tanh,sigmoid,gelu (default {','.join(default['activations'])}).")
    add("--optimizer", metavar="NAME", help=f"sgd | momentum (SGD, momentum 0.9) | adam (default {default['optimizer']}).")
    add("--lr", metavar="LR[,LR...]", help="the learning-rate grid; every (scheme, lr, seed) is trained and each "
                                          "scheme is reported at its best lr (default per optimizer: "
                                          + "; ".join(f"{k} {','.join(map(str, v))}" for k, v in DEFAULT_LRS.items()) + ").")
    add("--steps", type=int, metavar="N", help=f"optimizer steps per run (default {default['steps']}).")
    add("--batch-size", type=int, metavar="B", help=f"minibatch size, uniform with replacement (default {default['batch_size']}).")
    add("--seeds", type=int, metavar="K", help=f"seeds 0..K-1 per (scheme, lr) (default {default['seeds']}).")
    add("--dataset", metavar="digits|teacher|PATH",
        help="digits (sklearn's 8x8 digits, bundled; default), teacher[:key=value,...] (synthetic teacher-student "
             "task; keys n_train, n_test, dim, classes (0 = regression), outputs, hidden, layers, noise, seed), a "
             "directory of MNIST-format IDX files, an extracted CIFAR-10 cifar-10-batches-py directory (the official "
             "python pickles), or an .npz with x_train, y_train, x_test, y_test.")
    add("--val-fraction", type=float, metavar="F",
        help=f"fraction of the training split held out to choose learning rates (default {default['val_fraction']}).")
    add("--eval-every", type=int, metavar="N", help=f"evaluate on the whole splits every N steps (default {default['eval_every']}).")
    add("--target-loss", type=float, metavar="X",
        help=f"steps_to_target = first evaluated step with train loss <= X (default {default['target_loss']}).")
    add("--batch-models", type=int, metavar="N",
        help="models (scheme x lr x seed) trained together in one compiled program (default: all of a structure on "
             "GPU/TPU, a measured size on CPU).")
    add("--out", metavar="DIR", help="output directory (default results/<timestamp>); an existing one is resumed.")
    add("--devices", type=int, metavar="N", help="use the first N devices (default: all); the model axis (or the "
                                                  "batch, with fewer models than devices) is sharded across them.")
    add("--replot", action="store_true", help="only re-render summary.md and the plots from DIR/results.json (needs --out).")
    add("--no-plots", action="store_true", help="skip the PNG plots.")
    add("--list", action="store_true", help="list the schemes, architectures and presets and exit.")
    return p


# --------------------------------------------------------------------------- config


def _split(value: str) -> list[str]:
    return [v.strip() for v in value.split(",") if v.strip()]


def _numbers(parser, flag: str, value: str, kind):
    try:
        return tuple(kind(v) for v in _split(value))
    except ValueError:
        parser.error(f"{flag}: expected {kind.__name__} values separated by commas, got {value!r}.")


_FLAGS = {"base_width": "base_width", "base_depth": "base_depth", "steps": "steps", "batch_size": "batch_size", "seeds": "seeds", "dataset": "dataset",
          "val_fraction": "val_fraction", "eval_every": "eval_every", "target_loss": "target_loss",
          "batch_models": "batch_models", "devices": "devices", "optimizer": "optimizer"}


def resolve_config(args: argparse.Namespace, parser: argparse.ArgumentParser):
    """The :class:`BenchConfig` of the command line: the preset, then explicit flags;
    any invalid value exits with status 2 and names the valid ones."""
    from bench.config import ConfigError
    from bench.presets import preset_config, resolve_schemes

    name = args.preset or "default"
    try:
        config = preset_config(name)
        notes = resolve_schemes(PRESETS[name], _registry().SCHEMES)[1]
        changes = {key: getattr(args, flag) for flag, key in _FLAGS.items() if getattr(args, flag) is not None}
        if args.schemes is not None:
            reg = _registry().registry
            wanted = [n for item in reg.split_scheme_list(args.schemes) for n in reg.expand_scheme_grid(item)]
            changes["schemes"] = None if wanted == ["all"] else tuple(wanted)
        for flag, key in (("arch", "archs"), ("activation", "activations"), ("parametrization", "parametrizations")):
            if getattr(args, flag) is not None:
                changes[key] = tuple(_split(getattr(args, flag)))
        if args.depth is not None:
            changes["depths"] = _numbers(parser, "--depth", args.depth, int)
        if args.width is not None:
            changes["widths"] = _numbers(parser, "--width", args.width, int)
        if args.lr is not None:
            changes["lrs"] = _numbers(parser, "--lr", args.lr, float)
        elif args.optimizer is not None and "lrs" not in PRESETS[name].values:
            changes["lrs"] = DEFAULT_LRS.get(args.optimizer, config.lrs)
        return config.replace(**changes), notes
    except ConfigError as err:
        parser.error(f"{_FLAG_OF.get(err.field, '--' + err.field)}: {err.message}")


_FLAG_OF = {"archs": "--arch", "activations": "--activation", "depths": "--depth", "widths": "--width",
            "parametrizations": "--parametrization", "lrs": "--lr",
            **{key: "--" + flag.replace("_", "-") for flag, key in _FLAGS.items()}, "schemes": "--schemes",
            "preset": "--preset"}


# --------------------------------------------------------------------------- output


def _print_tables(console, results: dict) -> None:
    from rich.table import Table

    from bench.report import tables

    for t in tables(results):
        table = Table(title=t.title, title_justify="left")
        for i, h in enumerate(t.header):
            table.add_column(h, justify="left" if i == 1 else "right", no_wrap=i == 1)
        for row in t.rows:
            table.add_row(*row)
        console.print(table)
        for note in t.notes:
            console.print(f"  {note}")


def _resume_command(out_dir: str) -> str:
    argv = list(sys.argv[1:])
    if "--out" not in argv and not any(a.startswith("--out=") for a in argv):
        argv += ["--out", out_dir]
    return "python -m bench " + " ".join(shlex.quote(a) for a in argv)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _console():
    from rich.console import Console

    console = Console(highlight=False)
    # Logs and CI: wide enough for the ranked table on one line per row.
    return console if console.is_terminal else Console(highlight=False, width=190)


def _list(console) -> int:
    from bench.archs import ARCHS

    jinit = _registry()
    for n, s in jinit.SCHEMES.items():
        console.print(f"[bold]{n}[/bold] ({s.family}{', model-level' if s.model_level else ''}): {s.formula}")
    for f in jinit.PARAMETRIC_SCHEMES.values():
        console.print(f"[bold]{f.signature}[/bold] (parametric): {f.summary}")
    console.print()
    for a in ARCHS.values():
        console.print(f"[bold]{a.name}[/bold]: {a.summary}")
    console.print()
    for p in PRESETS.values():
        console.print(f"[bold]{p.name}[/bold]: {p.summary}. Source: {p.source}")
    return 0


def _replot(console, parser, args) -> int:
    from bench.results import ResultsError, ResultStore
    from bench.runner import render
    from bench.selection import select

    if not args.out:
        parser.error("--replot needs --out DIR (a directory holding results.json).")
    try:
        results = ResultStore.read(args.out)
    except ResultsError as err:
        parser.error(str(err))
    if results is None:
        parser.error(f"--replot: {os.path.join(args.out, 'results.json')} does not exist.")
    results["selection"] = select(results)
    for path in render(args.out, results, plots=not args.no_plots):
        console.print(f"wrote {path}")
    _print_tables(console, results)
    return 0


# --------------------------------------------------------------------------- main


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    console = _console()
    if args.list:
        return _list(console)
    if args.replot:
        return _replot(console, parser, args)
    config, notes = resolve_config(args, parser)
    out_dir = args.out or os.path.join("results", _dt.datetime.now().strftime("%Y%m%d-%H%M%S"))
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        parser.error(f"--out {out_dir}: exists and is not a directory.")
    import jax

    if args.devices is not None and not 1 <= args.devices <= jax.device_count():
        parser.error(f"--devices {args.devices}: this host has {jax.device_count()} device(s) ({jax.default_backend()}).")
    for note in notes:
        console.print(f"[yellow]note:[/yellow] {note}")
    return _run(console, parser, config, out_dir, not args.no_plots)


def _run(console, parser, config, out_dir: str, plots: bool) -> int:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from bench.data import DataError
    from bench.results import ResultsError
    from bench.runner import run

    progress = Progress(TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn(), TimeRemainingColumn(),
                        console=console, disable=not console.is_terminal, transient=True)
    task = progress.add_task("starting", total=1)

    def on_event(event) -> None:
        if event.total:
            progress.update(task, completed=event.done, total=event.total)
        if event.kind == "structure":
            progress.update(task, description=event.message)
        if event.kind in ("start", "chunk", "skipped"):
            # Messages carry scheme names and error texts: printed as plain text, never as markup.
            progress.console.print(event.message, style="yellow" if event.kind == "skipped" else None, markup=False)

    old_term = _install_sigterm()
    t0 = time.perf_counter()
    try:
        with progress:
            results = run(config, out_dir, events=on_event, plots=plots)
    except DataError as err:
        parser.error(f"--dataset: {err}")
    except ResultsError as err:
        parser.error(f"--out {out_dir}: {err}")
    finally:
        if old_term is not None:
            signal.signal(signal.SIGTERM, old_term)
    return _report(console, results, out_dir, time.perf_counter() - t0)


def _install_sigterm():
    """SIGTERM stops the run like Ctrl-C (files stay valid); returns the old handler."""
    old = signal.getsignal(signal.SIGTERM)
    try:
        signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # not the main thread
        return None
    return old


def _report(console, results, out_dir: str, wall: float) -> int:
    if results.interrupted:
        console.print(f"\n[red]interrupted[/red]: {len(results.runs)} run(s) saved in {results.files[0]} (valid JSON; "
                      f"summary.md updated, plots skipped).\nresume with: {_resume_command(out_dir)}")
        return EXIT_INTERRUPTED
    console.print()
    _print_tables(console, results.data)
    tm = results.timing
    console.print(f"time: {wall:.1f} s wall; compiling {tm.get('compile_s', 0):.1f} s, training {tm.get('train_s', 0):.1f} s, "
                  f"initialization {tm.get('init_s', 0):.1f} s (in a background thread, overlapped with training)")
    console.print("wrote " + ", ".join(results.files))
    return 0
