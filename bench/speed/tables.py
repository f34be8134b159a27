"""The rich tables ``python -m bench.speed`` prints from its results."""

from __future__ import annotations

from bench.speed.first_params import FIRST_PARAMS_METHODS

__all__ = ["print_tables"]


def _fmt_ms(x: float | None) -> str:
    return "-" if x is None else (f"{x:,.1f}" if x >= 10 else f"{x:.2f}")


def _case_table(recs: list[dict], title: str):
    from rich.markup import escape
    from rich.table import Table

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
    return t


def _tensor_ratio_table(rows: list[dict]):
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="jinit speed-up: other's min time / jinit's (>1: jinit faster)")
    for col in ("case", "rng", "jinit ms", "jax.nn", "torch alloc", "torch in place", "fill/jinit"):
        t.add_column(col, justify="left" if col in ("case", "rng") else "right", no_wrap=col == "case")
    for r in rows:
        t.add_row(
            escape(r["group"]), r["rng"], _fmt_ms(r["jinit_ms"]),
            *(f"{r[k]:.2f}x" if k in r else "-" for k in ("vs_jax_nn", "vs_torch_alloc", "vs_torch_inplace")),
            f"{r['fill_fraction']:.2f}" if "fill_fraction" in r else "-",
        )
    return t


def _orthogonal_ratio_table(rows: list[dict]):
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="Orthogonal: jinit / LAPACK QR, and speed-ups")
    for col in ("who", "jinit ms", "first call ms", "jinit / QR", "vs jax.nn", "vs torch"):
        t.add_column(col, justify="left" if col == "who" else "right")
    for r in rows:
        t.add_row(
            escape(r["name"]), _fmt_ms(r["jinit_ms"]),
            _fmt_ms(r["first_call_ms"]) if r.get("first_call_ms") is not None else "-",
            *(f"{r[k]:.2f}" if k in r else "-" for k in ("over_qr", "vs_jax_nn", "vs_torch")),
        )
    return t


def _tree_ratio_table(rows: list[dict]):
    from rich.markup import escape
    from rich.table import Table

    t = Table(title="Large tree: seconds, and speed-ups (>1: jinit faster)")
    for col in ("who", "seconds", "vs jax.nn", "vs torch"):
        t.add_column(col, justify="left" if col == "who" else "right")
    for r in rows:
        t.add_row(
            escape(r["name"]), f"{r['seconds']:.2f}",
            *(f"{r[k]:.2f}x" if k in r else "-" for k in ("vs_jax_nn", "vs_torch")),
        )
    return t


def _first_params_table(rows: list[dict]):
    from rich.table import Table

    t = Table(title="Time to first parameters (fresh process, seconds; unrolled MLP)")
    for col in ("depth", *FIRST_PARAMS_METHODS, "jit / jinit.init"):
        t.add_column(col, justify="right")
    for r in rows:
        cells = [f"{r[m]:.2f}" if r.get(m) is not None else "-" for m in FIRST_PARAMS_METHODS]
        ratio = f"{r['speedup_vs_jit']:.1f}x" if "speedup_vs_jit" in r else "-"
        t.add_row(str(r["depth"]), *cells, ratio)
    return t


def _depth_table(rows: list[dict]):
    from rich.table import Table

    t = Table(title="Compile and step time vs depth")
    for col in ("model", "depth", "params", "init compile s", "step compile s", "step min ms", "step median ms"):
        t.add_column(col, justify="left" if col == "model" else "right")
    for r in rows:
        t.add_row(
            r["model"], str(r["depth"]), f"{r['params']:,}", f"{r['init_compile_s']:.2f}",
            f"{r['step_compile_s']:.2f}", _fmt_ms(r["step_min_ms"]), _fmt_ms(r["step_median_ms"]),
        )
    return t


def _engine_throughput_table(rows: list[dict]):
    from rich.table import Table

    t = Table(title="Engine.train vs a hand-written jit + optax loop (optimizer steps/s, compile excluded; the "
                    "engine's whole call, evaluations included)")
    for col in ("arch", "scheme", "models", "steps", "engine steps/s", "hand steps/s", "engine / hand",
                "compile s engine / hand", "final loss engine / hand"):
        t.add_column(col, justify="left" if col in ("arch", "scheme") else "right")
    for r in rows:
        if "error" in r:
            t.add_row(r["arch"], r["scheme"], str(r["models"]), str(r["steps"]), "error", r["error"][:40], "", "", "")
            continue
        t.add_row(
            r["arch"], r["scheme"], str(r["models"]), str(r["steps"]), f"{r['engine_steps_per_s']:,.0f}",
            f"{r['hand_steps_per_s']:,.0f}", f"{r['engine_over_hand']:.2f}x",
            f"{r['engine_compile_s']:.2f} / {r['hand_compile_s']:.2f}",
            f"{_fmt_loss(r['engine_final_loss'])} / {_fmt_loss(r['hand_final_loss'])}",
        )
    return t


def _fmt_loss(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def _engine_batching_table(rows: list[dict]):
    from rich.table import Table

    first = rows[0]
    t = Table(title=f"Models per compiled program: Engine.train on {first['arch']} depth {first['depth']} width "
                    f"{first['width']}, {first['steps']} steps (model-steps/s, compile excluded)")
    for col in ("models", "model-steps/s", "vs 1 model", "compile s", "first call s"):
        t.add_column(col, justify="right")
    for r in rows:
        if "error" in r:
            t.add_row(str(r["models"]), "error", r["error"][:40], "", "")
            continue
        speedup = f"{r['speedup_vs_1']:.2f}x" if "speedup_vs_1" in r else "-"
        t.add_row(str(r["models"]), f"{r['model_steps_per_s']:,.0f}", speedup, f"{r['compile_s']:.2f}",
                  f"{r['first_call_s']:.2f}")
    return t


# (results key, table builder), in the order they are printed, after the per-case tables.
_SUMMARIES = (
    ("tensor_ratios", _tensor_ratio_table),
    ("orthogonal_ratios", _orthogonal_ratio_table),
    ("tree_ratios", _tree_ratio_table),
    ("first_params", _first_params_table),
    ("depth", _depth_table),
    ("engine_throughput", _engine_throughput_table),
    ("engine_batching", _engine_batching_table),
)


def print_tables(console, results: dict) -> None:
    """The per-case tables of the tensor, orthogonal and tree sections, then the summaries."""
    for section, title in (("tensor", "Tensors"), ("orthogonal", "Orthogonal"), ("tree", "Large tree")):
        recs = [r for r in results["cases"] if r["section"] == section]
        if recs:
            console.print(_case_table(recs, title))
    for key, table in _SUMMARIES:
        if results.get(key):
            console.print(table(results[key]))
