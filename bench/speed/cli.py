"""The command line of ``python -m bench.speed``: arguments, the run, the JSON."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Sequence
from typing import Any

from bench.env import environment, load_average
from bench.speed import depth, engine, first_params, orthogonal, tensor, tree
from bench.speed.harness import Context, torch_module
from bench.speed.tables import print_tables

__all__ = ["main", "build_parser", "machine_info", "write_json", "SECTIONS"]

# The sections, in the order they run.
SECTIONS = {
    "tensor": tensor.run,
    "orthogonal": orthogonal.run,
    "tree": tree.run,
    "depth": depth.run,
    "engine": engine.run,
    "first_params": first_params.run,
}
DEFAULT_SECTIONS = ",".join(SECTIONS)


def machine_info(with_torch: bool = True) -> dict:
    """CPU model, core count, memory, load, and the versions that matter (:func:`bench.env.environment`)."""
    return environment(torch=torch_module() if with_torch else None)


def _add_section_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--sections",
        help=f"comma-separated sections to run: {', '.join(SECTIONS)} (default all)",
    )
    p.add_argument("--sizes", help="deprecated alias of --sections")
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


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.speed",
        description="Time jinit's initializers against jax.nn.initializers and torch.nn.init.",
    )
    p.add_argument("--repeats", type=int, default=7, help="timed rounds per tensor case (default 7)")
    p.add_argument("--warmup", type=int, default=2, help="untimed calls per case first (default 2)")
    p.add_argument("--quick", action="store_true", help="small sizes: a smoke run in seconds")
    _add_section_arguments(p)
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
    _add_engine_arguments(p)
    return p


def _add_engine_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--engine-parts", default="throughput,batching", metavar="A,B",
                   help="parts of the engine section: throughput (against a hand-written loop), batching "
                        "(models per program); default both")
    p.add_argument("--engine-models", type=int, nargs="+", metavar="N",
                   help="models per compiled program for the engine's batching table "
                        "(default 1 4 16 64, plus 256 on GPU/TPU; quick 1 4)")
    p.add_argument("--engine-compare-models", type=int, nargs="+", metavar="N",
                   help="models per chunk for the engine against the hand-written loop (default 1)")
    p.add_argument("--engine-steps", type=int, metavar="N",
                   help="optimizer steps per Engine.train call of the batching table, 5x that against the "
                        "hand-written loop (default 40; quick 10)")
    p.add_argument("--engine-depth", type=int, metavar="L", help="depth of the engine section's networks "
                                                                  "(default 20; quick 3)")
    p.add_argument("--engine-width", type=int, metavar="N", help="their width (default 64; quick 16)")
    p.add_argument("--engine-repeats", type=int, default=3, metavar="R",
                   help="timed calls per engine measurement, the least kept; fewer once 3 s were spent (default 3)")


def selected_sections(args: argparse.Namespace) -> list[str]:
    """The sections ``--sections`` names (or the deprecated ``--sizes``, with a warning).

    Both attributes of ``args`` are set to the resolved text, so the settings in the JSON
    keep their ``sizes`` key."""
    if args.sizes is not None:
        warnings.warn("--sizes is deprecated; use --sections", FutureWarning, stacklevel=2)
        if args.sections is None:
            args.sections = args.sizes
    if args.sections is None:
        args.sections = DEFAULT_SECTIONS
    args.sizes = args.sections
    return [s.strip() for s in args.sections.split(",") if s.strip()]


def _split(text: str) -> list[str]:
    return [x.strip() for x in text.split(",") if x.strip()]


def _context(args: argparse.Namespace, console) -> tuple[list[str], Context] | None:
    """The sections to run and the context of every section; None (after saying why) if the
    arguments are invalid."""
    sections = selected_sections(args)
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        console.print(f"[red]unknown sections: {', '.join(sorted(unknown))}[/red]")
        return None
    rngs, dists = _split(args.rng), _split(args.dists)
    bad = set(dists) - set(tensor.DISTS)
    if bad:
        console.print(f"[red]unknown distributions: {', '.join(sorted(bad))}[/red]")
        return None
    bad = set(_split(args.engine_parts)) - set(engine.PARTS)
    if bad:
        console.print(f"[red]unknown engine parts: {', '.join(sorted(bad))}; valid: {', '.join(engine.PARTS)}[/red]")
        return None

    import jinit

    for r in rngs:
        if r not in jinit.generators():
            console.print(f"[red]unknown rng {r!r}; valid: {', '.join(jinit.generators())}[/red]")
            return None
    with_torch = not args.no_torch and torch_module() is not None
    if with_torch:
        torch_module().manual_seed(0)

    def progress(msg: str) -> None:
        console.print(f"[dim]{msg}[/dim]")

    return sections, Context(args, rngs, dists, with_torch, progress)


def _start(argv: Sequence[str] | None, ctx: Context, console) -> dict[str, Any]:
    """The results' header (command, machine, load, settings), announced on the console."""
    results: dict[str, Any] = {
        "command": " ".join(["python -m bench.speed", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine_info(ctx.with_torch),
        "load_average_start": load_average(),
        "settings": vars(ctx.args),
        "cases": [],
    }
    machine = results["machine"]
    console.print(
        f"[bold]bench.speed[/bold] on {machine['cpu_model']} "
        f"({machine['logical_cpus']} CPUs), jax {machine['jax']}"
        + (f", torch {machine.get('torch')}" if ctx.with_torch else ", without torch")
        + f"; load average {results['load_average_start']}"
    )
    return results


def write_json(path: str, results: dict) -> None:
    """Writes ``results`` to ``path`` atomically: a temporary file in the same folder, then
    ``os.replace``, so an interrupted write never leaves a truncated file."""
    from bench.results import atomic_write_text

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    atomic_write_text(path, json.dumps(results, indent=1, default=str))


def main(argv: Sequence[str] | None = None) -> int:
    from rich.console import Console

    args = build_parser().parse_args(argv)
    console = Console(width=None if sys.stdout.isatty() else 150)
    chosen = _context(args, console)
    if chosen is None:
        return 2
    sections, ctx = chosen
    results = _start(argv, ctx, console)
    t_start = time.perf_counter()
    for name, run in SECTIONS.items():
        if name in sections:
            out = run(ctx)
            results["cases"].extend(out.pop("cases", []))
            results.update(out)
    results["load_average_end"] = load_average()
    results["total_seconds"] = round(time.perf_counter() - t_start, 1)
    print_tables(console, results)
    console.print(
        f"load average at start {results['load_average_start']}, at end {results['load_average_end']}; "
        f"{results['total_seconds']} s"
    )
    if args.out:
        write_json(args.out, results)
        console.print(f"wrote {args.out}")
    return 0
