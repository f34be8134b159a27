"""The ranked summary of a results.json: ``summary.md`` and the console tables.

Both print the same cells, built by :func:`tables` from
:func:`bench.selection.select`: one table per group (arch, activation, depth,
width), each scheme at its own best learning rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

from bench.selection import SIGNIFICANCE, by_group, group_key, select

__all__ = ["TABLE_HEADER", "Table", "fmt", "group_title", "summary_markdown", "table_cells", "tables"]

TABLE_HEADER = [
    "#", "scheme", "best lr", "val loss (mean ± CI95)", "test acc % (mean ± CI95)", "final train loss",
    "last-k val loss", "steps to target (reached/seeds)", "lr robustness", "diverged", "vs best",
    "init act std (last layer)",
]


@dataclass
class Table:
    """One group's ranked table: cells are strings, ready to print."""

    title: str
    header: list[str]
    rows: list[list[str]]
    notes: list[str] = field(default_factory=list)


def fmt(x: float | None, digits: int = 3) -> str:
    """``digits`` significant digits; ``-`` for missing, ``inf`` for infinite."""
    if x is None:
        return "-"
    if not math.isfinite(x):
        return "inf"
    return f"{x:.{digits}g}"


def group_title(key: tuple) -> str:
    """``mlp, relu, depth 20, width 64`` for the group key (arch, activation, depth, width,
    parametrization); the parametrization is named when it is not the standard one."""
    arch, activation, depth, width, par = key
    return f"{arch}, {activation}, depth {depth}, width {width}" + ("" if par == "standard" else f", {par}")


def _interval(mean: float | None, half: float | None, fmt_one=fmt) -> str:
    """``mean ± half``; just the mean when the interval needs 2 seeds."""
    if mean is None:
        return "-"
    if half is None:
        return fmt_one(mean)
    return f"{fmt_one(mean)} ± {fmt_one(half)}"


def _percent(x: float) -> str:
    return f"{100 * x:.1f}"


def _vs_best(e: Mapping) -> str:
    """Blank for rank 1; ``≈`` (p >= 0.05), ``worse``/``better`` (p < 0.05, sign of
    the paired difference), ``n/a`` when fewer than 2 seeds pair up."""
    if e["rank"] == 1:
        return ""
    if e["significant"] is None:
        return "n/a"
    if not e["significant"]:
        return "≈"
    return "worse" if e["delta_vs_best"] > 0 else "better"


def table_cells(e: Mapping, target: float | None) -> list[str]:
    """The cells of one selection entry's row, in :data:`TABLE_HEADER` order."""
    n = e["seeds"]
    if target is None:
        reached = "-"
    elif e["reached"]:
        reached = f"{e['steps_to_target_mean']:.0f} ({e['reached']}/{n})"
    else:
        reached = f"never (0/{n})"
    return [
        str(e["rank"]), e["scheme"], fmt(e["best_lr"]),
        _interval(e["val_loss_mean"], e["val_loss_ci95"]),
        _interval(e["test_accuracy_mean"], e["test_accuracy_ci95"], _percent),
        fmt(e["final_train_loss_mean"]), fmt(e["last_k_val_loss_mean"]), reached,
        f"{len(e['lrs_trained'])}/{len(e['lrs'])}",
        f"{e['diverged']}/{n}" if e["diverged"] else "0",
        _vs_best(e), fmt(e["init_std_last"]),
    ]


def _edge_note(entries: list[Mapping]) -> list[str]:
    """Schemes whose best lr is an end of a grid of 3+ lrs: the optimum may lie outside it."""
    parts = []
    for end, side in ((0, "smallest"), (-1, "largest")):
        names = [e["scheme"] for e in entries if len(e["lrs"]) > 2 and e["best_lr"] == e["lrs"][end]]
        if names:
            parts.append(f"{side} lr for {', '.join(names)}")
    if not parts:
        return []
    return ["best lr at the edge of the grid (" + "; ".join(parts) + "): the optimum may lie outside it."]


def tables(results: Mapping) -> list[Table]:
    """One ranked :class:`Table` per group of ``results``, in :func:`select` order."""
    target = results.get("config", {}).get("target_loss")
    return [
        Table(group_title(key), list(TABLE_HEADER), [table_cells(e, target) for e in entries], _edge_note(entries))
        for key, entries in by_group(select(results)).items()
    ]


def _setup(results: Mapping) -> list[str]:
    """The bullet list of what was run and where."""
    cfg, env = results.get("config", {}), results.get("env", {})
    info = cfg.get("dataset_info", {})
    lrs = ", ".join(fmt(x) for x in cfg.get("lrs") or [])
    return [
        f"- dataset: `{info.get('name', cfg.get('dataset'))}` ({info.get('n_train', '?')} train / "
        f"{info.get('n_val', '?')} validation / {info.get('n_test', '?')} test, "
        f"{info.get('n_features', '?')} features, task {info.get('task', '?')})",
        f"- architectures {', '.join(map(str, cfg.get('archs') or ['?']))}; optimizer `{cfg.get('optimizer')}`, "
        f"lr grid [{lrs}], {cfg.get('steps')} steps of batch {cfg.get('batch_size')}, "
        f"{cfg.get('seeds')} seed(s) per (scheme, lr)",
        f"- backend `{env.get('backend')}`, {env.get('devices_used', 1)} device(s); jax {env.get('jax')}",
    ]


def _protocol(results: Mapping) -> list[str]:
    """How the numbers were chosen and what each column means, in prose."""
    cfg = results.get("config", {})
    target, last_k = cfg.get("target_loss"), cfg.get("last_k")
    threshold = target if target is not None else "half the initial one"
    return [
        "Protocol: every scheme is trained at every learning rate of the grid, with every seed. Its best lr is "
        "chosen on the validation split (held out from the training data): the lr with the fewest diverged seeds, "
        "then the lowest mean final validation loss over the other seeds (a diverged seed counts as worst; ties "
        "go to the smaller lr). All other numbers are at that best lr; the test split is reported there only, so "
        "it plays no part in the choice. Values are mean ± CI95, the half-width of the Student-t 95% interval "
        "over seeds (t_{0.975,n-1} s / sqrt(n)); a single seed has no interval.",
        "",
        "Ranked by: fewest diverged seeds, then lowest mean final validation loss, then highest test accuracy. "
        "`vs best`: paired t-test of the final validation loss against rank 1 over seeds (each at its best lr; "
        "seed s draws the same minibatches in every run, so runs with the same seed are pairs; seeds where "
        f"either diverged are left out): `≈` not significantly different (p >= {SIGNIFICANCE}), `worse` "
        f"significantly worse (p < {SIGNIFICANCE}), `better` significantly lower loss on the paired seeds "
        "(ranked lower for its diverged seeds), `n/a` fewer than 2 paired seeds.",
        "",
        f"`last-k val loss`: mean validation loss of the last {last_k} evaluations. `steps to target`: mean "
        f"first logged step with train loss <= {target} (seeds that reached it / all). `lr robustness`: lrs of "
        f"the grid on which the scheme trains (no seed diverged and mean final train loss <= {threshold}) / "
        "lrs run. `init act std (last layer)`: std of the last hidden layer's output at initialization (about 1 "
        "is healthy; tiny means vanishing, huge exploding).",
        "",
    ]


def _markdown_table(table: Table) -> list[str]:
    lines = [f"## {table.title}", "", "| " + " | ".join(table.header) + " |", "|" + "---|" * len(table.header)]
    lines += ["| " + " | ".join(row) + " |" for row in table.rows]
    return lines + [""] + [f"Note: {n}" for n in table.notes] + ([""] if table.notes else [])


def _skipped(results: Mapping) -> list[str]:
    skipped = results.get("skipped") or []
    if not skipped:
        return []
    lines = ["## Skipped", ""]
    lines += [
        f"- `{s['scheme']}` ({group_title(group_key(s))}): {s['reason']}"
        for s in skipped
    ]
    return lines + [""]


def _timing(results: Mapping) -> list[str]:
    numbers = {k: v for k, v in (results.get("timing") or {}).items() if isinstance(v, (int, float))}
    if not numbers:
        return []
    parts = ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in numbers.items())
    return [f"Timing of the last session: {parts}.", ""]


def summary_markdown(results: Mapping) -> str:
    """``summary.md``: setup, protocol, one ranked table per group, skipped configurations, timing."""
    cfg = results.get("config", {})
    lines = ["# jinit benchmark summary", ""]
    if cfg.get("preset"):
        source = f": {cfg['preset_source']}" if cfg.get("preset_source") else ""
        lines += [f"Preset `{cfg['preset']}`{source}.", ""]
    lines += _setup(results) + [""] + _protocol(results)
    for table in tables(results):
        lines += _markdown_table(table)
    from bench.phase import phase_markdown
    from bench.transfer import transfer_markdown

    lines += transfer_markdown(results) + phase_markdown(results)
    return "\n".join(lines + _skipped(results) + _timing(results))
