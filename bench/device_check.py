"""``python -m bench.device_check --out DIR [--tiny]``: every figure the README reports, measured
on this machine, in one folder.

One prepared run for a machine that is lent for a few minutes (one GPU: under 8 minutes in all).
Each step is a command run in its own process group with a time budget: a step that fails, or
runs past its budget (it is stopped: SIGTERM, then SIGKILL), is recorded with its error in the
summary and the next step runs, so one failure does not lose the rest. Budgets add up to
:data:`TOTAL_S`; time a step leaves unused goes to the later ones.

==================  ===========================  ============================================
step                output (in DIR)              command
==================  ===========================  ============================================
environment         environment.json             :func:`bench.env.environment`
speed_tensor        speed/tensor.json            ``python -m bench.speed --sections tensor``
speed_orthogonal    speed/orthogonal.json        ``... --sections orthogonal``
speed_tree          speed/tree.json              ``... --sections tree``
speed_engine        speed/engine.json            ``... --sections engine --engine-parts throughput``
scaling             scaling.json                 ``... --sections engine --engine-parts batching``
                                                 (models per program 1 to 256 on GPU/TPU, to 64 on CPU)
bench               bench/ (results.json, ...)   ``python -m bench`` (the default preset)
speed_first_params  speed/first_params.json      ``... --sections first_params``
==================  ===========================  ============================================

Then ``DIR/README.md``: the device and versions, each step's status, seconds and command, and
each figure as a table with its source file; ``DIR/steps.json`` has the steps' records and
``DIR/logs/<step>.log`` each step's output. On accelerators torch is left out of the speed
sections (its initializers run on the CPU). ``--tiny`` shrinks every step (tiny shapes, a few
steps, a ``quick``-like benchmark on one structure) so that the whole check runs on a CPU in a
minute or two (each step still starts a Python process and compiles its programs): the tests
run it, so it does not rot. Exit status: 0 when every step succeeded, else 1.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Step", "plan", "run_step", "main", "TOTAL_S"]

TOTAL_S = 450  # the budgets' sum: 7.5 minutes, under 8 with the summary
GRACE_S = 10  # after SIGTERM (the benchmark then saves its files), before SIGKILL
ENV_CODE = ("import json, sys; from bench.env import environment; "
            "json.dump(environment(), open(sys.argv[1], 'w'), indent=1)")


@dataclass(frozen=True)
class Step:
    """One step: ``argv`` (after the Python interpreter) writes ``output`` (relative to DIR)
    within ``budget_s`` seconds."""

    name: str
    what: str
    argv: tuple[str, ...]
    output: str
    budget_s: float


def _speed(section: str, out: str, *extra: str) -> tuple[str, ...]:
    return ("-m", "bench.speed", "--sections", section, "--out", out, *extra)


def plan(out: str, tiny: bool, accelerator: bool) -> list[Step]:
    """The steps after ``environment`` (see the module docstring), sized for the backend."""
    speed = os.path.join(out, "speed")
    no_torch = ("--no-torch",) if tiny or accelerator else ()
    models = ("1", "2") if tiny else ("1", "4", "16", "64") + (("256",) if accelerator else ())
    engine_size = (("--engine-depth", "2", "--engine-width", "8", "--engine-steps", "2", "--engine-repeats", "1")
                   if tiny else ("--engine-steps", "200" if accelerator else "40"))
    t = _TINY if tiny else {}
    budgets = _TINY_BUDGETS if tiny else _BUDGETS
    steps = [
        ("speed_tensor", "initializer speed: dense and conv kernels",
         _speed("tensor", os.path.join(speed, "tensor.json"), *no_torch, *t.get("tensor", ())), "speed/tensor.json"),
        ("speed_orthogonal", "orthogonal initializer speed",
         _speed("orthogonal", os.path.join(speed, "orthogonal.json"), *no_torch, *t.get("orthogonal", ())),
         "speed/orthogonal.json"),
        ("speed_tree", "1B-parameter tree, leaf by leaf",
         _speed("tree", os.path.join(speed, "tree.json"), *no_torch, *t.get("tree", ())), "speed/tree.json"),
        ("speed_engine", "training engine against a hand-written loop",
         _speed("engine", os.path.join(speed, "engine.json"), "--engine-parts", "throughput", *engine_size),
         "speed/engine.json"),
        ("scaling", "models per compiled program",
         _speed("engine", os.path.join(out, "scaling.json"), "--engine-parts", "batching", "--engine-models", *models,
                *engine_size), "scaling.json"),
        ("bench", "the training benchmark (default preset)",
         ("-m", "bench", "--out", os.path.join(out, "bench"), *t.get("bench", ())), "bench/results.json"),
        ("speed_first_params", "time to first parameters (fresh processes)",
         _speed("first_params", os.path.join(speed, "first_params.json"), *t.get("first_params",
                ("--first-params-max-jit-depth", "200"))), "speed/first_params.json"),
    ]
    return [Step(name, what, argv, output, budgets[name]) for name, what, argv, output in steps]


# Seconds per step; they add up to TOTAL_S. --tiny's are only caps (a tiny step takes seconds).
_BUDGETS = {"environment": 15, "speed_tensor": 35, "speed_orthogonal": 35, "speed_tree": 30, "speed_engine": 65,
            "scaling": 65, "bench": 110, "speed_first_params": 95}
_TINY_BUDGETS = {"environment": 30, "speed_tensor": 30, "speed_orthogonal": 30, "speed_tree": 30,
                 "speed_engine": 60, "scaling": 40, "bench": 50, "speed_first_params": 40}


# The options of --tiny per command: tiny shapes, one round, a few training steps, one structure.
_TINY = {
    "tensor": ("--shape", "64x64", "--dists", "normal", "--rng", "jax", "--repeats", "1", "--warmup", "1"),
    "orthogonal": ("--orthogonal-n", "16", "--orthogonal-repeats", "1", "--rng", "jax"),
    "tree": ("--tree-layers", "2", "--tree-width", "32", "--tree-repeats", "1", "--no-flax-tree", "--rng", "jax"),
    "bench": ("--preset", "quick", "--arch", "mlp", "--schemes", "he_normal,glorot_normal", "--seeds", "1",
              "--lr", "0.02", "--steps", "4", "--eval-every", "2", "--no-plots"),
    "first_params": ("--first-params-depths", "2", "--first-params-width", "8"),
}


def _environment_step(out: str, tiny: bool) -> Step:
    budget = (_TINY_BUDGETS if tiny else _BUDGETS)["environment"]
    return Step("environment", "device, backend and versions", ("-c", ENV_CODE, os.path.join(out, "environment.json")),
                "environment.json", budget)


# --------------------------------------------------------------------------- running


def _child_env() -> dict[str, str]:
    """The environment of a step: this one, with the repository on ``PYTHONPATH`` so the
    children import this ``bench`` wherever they start, and (unless set) JAX's GPU memory
    preallocation off: ``first_params`` starts processes of its own, which would find 75% of
    the GPU taken by their parent."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([root, *filter(None, [env.get("PYTHONPATH")])])
    env.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    return env


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the step's process group (the benchmark saves its files on it), then after at
    most :data:`GRACE_S` s SIGKILL to what is left of it: the group, because some steps start
    processes of their own."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=GRACE_S)
        except subprocess.TimeoutExpired:
            pass
    proc.wait()


def _tail(path: str, lines: int = 3) -> str:
    try:
        with open(path, errors="replace") as f:
            text = [line.strip() for line in f.read().splitlines() if line.strip()]
    except OSError:
        return ""
    return " | ".join(text[-lines:])[-400:]


def run_step(step: Step, out: str, budget_s: float) -> dict[str, Any]:
    """Runs ``step`` with at most ``budget_s`` seconds; its record: status (``ok``, ``failed`` or
    ``timed out``), seconds, the error (the log's last lines) and the command."""
    log = os.path.join(out, "logs", f"{step.name}.log")
    command = [sys.executable, *step.argv]
    rec: dict[str, Any] = {"step": step.name, "what": step.what, "output": step.output, "budget_s": round(budget_s),
                           "command": "python " + shlex.join(step.argv)}
    t0 = time.perf_counter()
    with open(log, "w") as f:
        proc = subprocess.Popen(command, stdout=f, stderr=subprocess.STDOUT, env=_child_env(), start_new_session=True)
        try:
            rc = proc.wait(timeout=budget_s)
        except subprocess.TimeoutExpired:
            _stop(proc)
            rc = None
        except BaseException:  # Ctrl-C: the step runs in its own session, so stop it here
            _stop(proc)
            raise
    rec["seconds"] = round(time.perf_counter() - t0, 1)
    if rc is None:
        rec.update(status="timed out", error=f"stopped after its budget of {budget_s:.0f} s; {_tail(log)}")
    elif rc != 0:
        rec.update(status="failed", error=f"exit status {rc}: {_tail(log)}")
    elif not os.path.exists(os.path.join(out, step.output)):
        rec.update(status="failed", error=f"exit status 0 but no {step.output}")
    else:
        rec["status"] = "ok"
    return rec


def _read_json(path: str) -> dict | None:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def run_all(out: str, tiny: bool, say=print, only: Sequence[str] | None = None) -> list[dict]:
    """Every step in order (``only``: those named, after ``environment``); a step's budget is
    its own plus what earlier steps left unused."""
    os.makedirs(os.path.join(out, "logs"), exist_ok=True)
    first = _environment_step(out, tiny)
    records = [run_step(first, out, first.budget_s)]
    say(_line(records[-1]))
    env = _read_json(os.path.join(out, "environment.json")) or {}
    planned, t0 = first.budget_s, time.perf_counter() - records[-1]["seconds"]
    for step in plan(out, tiny, env.get("backend", "cpu") != "cpu"):
        if only is not None and step.name not in only:
            continue
        slack = max(0.0, planned - (time.perf_counter() - t0))
        records.append(run_step(step, out, step.budget_s + slack))
        planned += step.budget_s
        say(_line(records[-1]))
    return records


def _line(rec: dict) -> str:
    return f"{rec['step']}: {rec['status']} in {rec['seconds']} s" + (f" ({rec['error']})" if "error" in rec else "")


# --------------------------------------------------------------------------- summary


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    def cell(c: Any) -> str:
        return "-" if c is None else str(c).replace("|", "\\|")  # a "|" in an error would split the cell

    return lines + ["| " + " | ".join(cell(c) for c in row) + " |" for row in rows]


def _x(value: float | None, digits: int = 2) -> str | None:
    return None if value is None else f"{value:.{digits}f}x"


def _n(value: float | None, fmt: str = ",.0f") -> str | None:
    return None if value is None else format(value, fmt)


def _tensor(data: dict) -> list[str]:
    rows = [(r["group"], r["rng"], r["jinit_ms"], _x(r.get("vs_jax_nn")), _x(r.get("vs_torch_alloc")),
             _n(r.get("fill_fraction"), ".2f")) for r in data.get("tensor_ratios", [])]
    return _table(("case", "rng", "jinit ms", "vs jax.nn", "vs torch (alloc)", "fill / jinit"), rows)


def _orthogonal(data: dict) -> list[str]:
    rows = [(r["name"], r["jinit_ms"], r.get("first_call_ms"), _n(r.get("over_qr"), ".2f"), _x(r.get("vs_jax_nn")),
             _x(r.get("vs_torch"))) for r in data.get("orthogonal_ratios", [])]
    return _table(("who", "ms", "first call ms", "/ LAPACK QR", "vs jax.nn", "vs torch"), rows)


def _tree(data: dict) -> list[str]:
    rows = [(r["name"], r["seconds"], _x(r.get("vs_jax_nn")), _x(r.get("vs_torch")))
            for r in data.get("tree_ratios", [])]
    return _table(("who", "seconds", "vs jax.nn", "vs torch"), rows)


def _engine(data: dict) -> list[str]:
    rows = [(r["arch"], r["scheme"], r["models"], r["steps"], r.get("error") or _n(r["engine_steps_per_s"]),
             _n(r.get("hand_steps_per_s")), _x(r.get("engine_over_hand")), _n(r.get("engine_compile_s"), ".1f"),
             _n(r.get("hand_compile_s"), ".1f"), _n(r.get("engine_final_loss"), ".4g"),
             _n(r.get("hand_final_loss"), ".4g")) for r in data.get("engine_throughput", [])]
    first = (data.get("engine_throughput") or [{}])[0]
    return ([f"Depth {first.get('depth')}, width {first.get('width')}, batch {first.get('batch')}; optimizer "
             "steps/s, compile excluded; the engine's time is its whole call (evaluations included).", ""]
            + _table(("arch", "scheme", "models", "steps", "engine steps/s", "hand-written steps/s", "engine / hand",
                      "engine compile s", "hand compile s", "final loss engine", "final loss hand"), rows))


def _scaling(data: dict) -> list[str]:
    rows = [(r["models"], r.get("error") or _n(r["model_steps_per_s"]), _x(r.get("speedup_vs_1")),
             _n(r.get("compile_s"), ".1f"), _n(r.get("first_call_s"), ".1f")) for r in data.get("engine_batching", [])]
    first = (data.get("engine_batching") or [{}])[0]
    return ([f"Engine.train on {first.get('arch')} depth {first.get('depth')}, width {first.get('width')}, "
             f"{first.get('steps')} steps per call (evaluations included), compile excluded.", ""]
            + _table(("models per program", "model-steps/s", "vs 1 model", "compile s", "first call s"), rows))


def _first_params(data: dict) -> list[str]:
    methods = ("jinit.init", "jax.jit(module.init)", "module.init (eager)")
    rows = [(r["depth"], r["width"], *(r.get(m) for m in methods), _x(r.get("speedup_vs_jit"), 1))
            for r in data.get("first_params", [])]
    return _table(("depth", "width", *(f"{m} s" for m in methods), "jit / jinit.init"), rows)


def _bench(data: dict) -> list[str]:
    """Timing, and each scheme's final training loss at its best lr per (arch, activation, depth)."""
    tm, cfg = data.get("timing", {}), data.get("config", {})
    groups: dict[str, dict[str, str]] = {}
    for e in data.get("selection", []):
        cell = _n(e.get("final_train_loss_mean"), ".3g") or "-"
        if e.get("diverged"):
            cell += f" ({e['diverged']}/{e.get('seeds')} diverged)"
        groups.setdefault(f"{e['arch']} {e['activation']} d{e['depth']}", {})[e["scheme"]] = cell
    schemes = list(dict.fromkeys(s for g in groups.values() for s in g))
    head = [f"{len(data.get('runs', []))} runs ({cfg.get('steps')} steps, width {cfg.get('width')}, "
            f"{cfg.get('seeds')} seeds), {len(data.get('skipped', []))} skipped; {_n(tm.get('wall_s'), '.1f')} s wall, "
            f"{_n(tm.get('compile_s'), '.1f')} s compiling, {_n(tm.get('train_s'), '.1f')} s training. Final training "
            "loss (mean over seeds) at each scheme's best lr; ranked tables in bench/summary.md.", ""]
    return head + _table(("scheme", *groups), [(s, *(g.get(s) for g in groups.values())) for s in schemes])


# Per step with a figure: (title, reader of its output).
_FIGURES = {
    "speed_tensor": ("Initializer speed (jinit against jax.nn and torch; min of the rounds)", _tensor),
    "speed_orthogonal": ("Orthogonal initializer", _orthogonal),
    "speed_tree": ("Large tree, leaf by leaf", _tree),
    "speed_engine": ("Training engine against a hand-written loop", _engine),
    "scaling": ("Models per compiled program", _scaling),
    "bench": ("Training benchmark (default preset)", _bench),
    "speed_first_params": ("Time to first parameters (fresh process)", _first_params),
}


def _device_lines(env: dict) -> list[str]:
    devices = env.get("devices") or []
    rows = [("backend", env.get("backend")), ("devices", f"{len(devices)} x {env.get('device_kind')}"),
            ("CPU", f"{env.get('cpu_model')} ({env.get('logical_cpus')} logical CPUs, {env.get('memory_gib')} GiB)"),
            ("platform", env.get("platform")), ("XLA_FLAGS", env.get("xla_flags") or "(none)")]
    rows += [(k, env[k]) for k in ("jax", "jaxlib", "flax", "optax", "numpy", "jinit", "python") if k in env]
    return _table(("", "value"), rows) + ["", "Source: environment.json (`bench.env.environment()`)."]


def _figure(out: str, rec: dict) -> list[str]:
    title, reader = _FIGURES[rec["step"]]
    lines = [f"### {rec['step']}: {title}", "", f"Source: `{rec['output']}`.", ""]
    data = _read_json(os.path.join(out, rec["output"]))
    if data is None:
        return lines + [f"No figure: the step {rec['status']}" + (f" ({rec['error']})." if "error" in rec else "."), ""]
    try:
        return lines + reader(data) + [""]
    except Exception as err:  # a partial file: the summary still gets written
        return lines + [f"Could not read the figure: {type(err).__name__}: {err}", ""]


def summary(out: str, records: list[dict], seconds: float, tiny: bool) -> str:
    """The text of ``DIR/README.md``."""
    env = _read_json(os.path.join(out, "environment.json")) or {}
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = ["# Device check", "", f"`python -m bench.device_check{' --tiny' if tiny else ''}`, {when}: "
             f"{sum(r['status'] == 'ok' for r in records)} of {len(records)} steps ok in {seconds:.0f} s"
             + (" (tiny sizes: a smoke run, not figures to report)." if tiny else "."), "", "## Device", ""]
    lines += _device_lines(env) + ["", "## Steps", ""]
    lines += _table(("step", "what", "status", "seconds (budget)", "output", "log"),
                    [(r["step"], r["what"], r["status"], f"{r['seconds']} ({r['budget_s']})", f"`{r['output']}`",
                      f"`logs/{r['step']}.log`") for r in records])
    errors = [f"- {r['step']}: {r['error']}" for r in records if "error" in r]
    lines += ([""] + errors if errors else []) + ["", "## Figures", ""]
    for rec in records:
        if rec["step"] in _FIGURES:
            lines += _figure(out, rec)
    lines += ["## Commands", ""] + [f"- {r['step']}: `{r['command']}`" for r in records]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- command line


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.device_check",
                                description="Measure every figure the README reports on this machine, into one folder "
                                            "(DIR/README.md summarizes them).")
    p.add_argument("--out", required=True, metavar="DIR", help="the folder to write into (created)")
    p.add_argument("--tiny", action="store_true", help="tiny sizes: every step in seconds on a CPU (a smoke run)")
    p.add_argument("--only", metavar="STEP[,STEP...]", help="run only these steps (after environment); default: all")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Runs every step and writes ``DIR/README.md``; exit status 0 when every step succeeded, 1 otherwise."""
    from bench.results import atomic_write_text

    parser = build_parser()
    args = parser.parse_args(argv)
    only = None
    if args.only is not None:
        names = [s.name for s in plan(args.out, args.tiny, False)]
        only = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in only if n not in names]
        if unknown or not only:
            parser.error(f"--only: unknown step(s) {', '.join(unknown) or '(none given)'}; valid steps are "
                         f"{', '.join(names)}.")
    t0 = time.perf_counter()
    records = run_all(args.out, args.tiny, only=only)
    path = os.path.join(args.out, "README.md")
    atomic_write_text(path, summary(args.out, records, time.perf_counter() - t0, args.tiny))
    with open(os.path.join(args.out, "steps.json"), "w") as f:
        json.dump(records, f, indent=1)
    print(f"wrote {path}")
    return 0 if all(r["status"] == "ok" for r in records) else 1


if __name__ == "__main__":
    sys.exit(main())
