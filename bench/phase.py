"""Trainability phase diagrams: a parametric scheme swept over one argument and depth.

A run whose schemes are one parametric family (``meanfield(sigma_w2=..., sigma_b2=0.05)``,
see :data:`jinit.PARAMETRIC_SCHEMES`) at several values of one argument, trained at several
depths, is a *phase diagram*: per (value, depth) cell the final training loss and accuracy at the
cell's best learning rate (by the mean over seeds of the final training loss, ties to the smaller
lr; a seed that diverged makes an lr worse than any loss). :func:`diagrams` finds them,
:func:`phase_markdown` is the ``summary.md`` section and :func:`plot_phase` the figure
``phase_diagram.png``: heat maps of both, depth against the swept value.

For ``meanfield`` swept over ``sigma_w2`` the mean-field prediction is drawn over it
(Schoenholz et al. 2017, "Deep information propagation", Fig. 5 / 6): signals that distinguish
inputs survive about :math:`\\xi_c` layers (:func:`jinit.meanfield.xi_c`), and networks deeper
than about :math:`6\\xi_c` do not train; :math:`\\xi_c` diverges at the critical
:math:`\\sigma_w^2` (:math:`\\chi_1 = 1`).
"""

from __future__ import annotations

import functools
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from bench.selection import best_lr, lr_score

__all__ = ["TRAINED_ACCURACY", "XI_FACTOR", "diagrams", "predicted_depth", "phase_markdown", "plot_phase"]

TRAINED_ACCURACY = 0.5
"""A cell *trains* when the mean final training accuracy at its best lr reaches this (digits: chance 0.1)."""

XI_FACTOR = 6.0
"""Schoenholz et al. (2017): networks train up to about 6 xi_c layers."""


def _swept(runs: Sequence[Mapping]) -> dict[tuple, dict]:
    """Runs of parametric schemes grouped by everything but the swept argument and the depth."""
    import jinit

    groups: dict = defaultdict(lambda: defaultdict(list))
    for r in runs:
        parsed = jinit.registry.parametric_arguments(r["scheme"])
        if parsed is not None:
            key = (r["arch"], r["activation"], r["width"], r.get("parametrization", "standard"), parsed[0])
            groups[key][tuple(sorted(parsed[1].items()))].append(r)
    return groups


def _one_argument(by_args: Mapping[tuple, list]) -> str | None:
    """The one argument whose value differs across ``by_args`` (None when not exactly one does)."""
    args = [dict(a) for a in by_args]
    varying = [k for k in args[0] if len({a[k] for a in args}) > 1]
    return varying[0] if len(varying) == 1 and isinstance(args[0][varying[0]], float) else None


def _cell(runs: Sequence[Mapping]) -> dict:
    """The best lr of one (value, depth) cell by the final training loss, and its means."""
    by_lr: dict = defaultdict(list)
    for r in runs:
        by_lr[r["lr"]].append(r)
    lr = best_lr(by_lr, "final_train_loss")
    failed = lr_score(by_lr[lr], "final_train_loss")[0] > 0
    chosen = by_lr[lr]
    loss = None if failed else float(np.mean([r["final_train_loss"] for r in chosen]))
    acc = None if failed else float(np.mean([r["final_train_accuracy"] for r in chosen]))
    return {"lr": lr, "train_loss": loss, "train_accuracy": acc, "seeds": len(chosen), "failed": failed}


def diagrams(results: Mapping) -> list[dict]:
    """One entry per phase diagram of ``results`` (a parametric family swept over one argument at
    two or more values and two or more depths): ``arch, activation, width, parametrization,
    family, argument`` (the swept one), ``fixed`` (the other arguments), ``values``, ``depths``,
    ``cells`` ({(value, depth): :func:`_cell`})."""
    out = []
    for (arch, act, width, par, family), by_args in sorted(_swept(results["runs"]).items()):
        argument = _one_argument(by_args) if len(by_args) > 1 else None
        if argument is None:
            continue
        cells: dict = defaultdict(list)
        for args, runs in by_args.items():
            for r in runs:
                cells[(dict(args)[argument], r["depth"])].append(r)
        values = sorted({v for v, _ in cells})
        depths = sorted({d for _, d in cells})
        if len(depths) < 2:
            continue
        fixed = {k: v for k, v in dict(next(iter(by_args))).items() if k != argument}
        out.append({"arch": arch, "activation": act, "width": width, "parametrization": par, "family": family,
                    "argument": argument, "fixed": fixed, "values": values, "depths": depths,
                    "cells": {k: _cell(v) for k, v in cells.items()}})
    return out


def predicted_depth(d: Mapping, values: Sequence[float]) -> np.ndarray | None:
    """``XI_FACTOR * xi_c`` at each ``sigma_w2`` of ``values`` (inf at criticality) for a ``meanfield``
    sweep over ``sigma_w2``; None when the diagram is not one (or the activation has no mean field)."""
    import jinit

    if d["family"] != "meanfield" or d["argument"] != "sigma_w2" or d["activation"] not in jinit.ACTIVATIONS:
        return None
    return np.array([XI_FACTOR * _xi_c(d["activation"], d["fixed"]["sigma_b2"], float(v)) for v in values])


@functools.lru_cache(maxsize=4096)
def _xi_c(activation: str, sigma_b2: float, sigma_w2: float) -> float:
    """Cached: in the chaotic phase each value solves for the correlation fixed point (~0.5 s)."""
    from jinit import meanfield

    try:
        return meanfield.xi_c(math.sqrt(sigma_w2), math.sqrt(sigma_b2), activation)
    except ValueError:  # no fixed point (the variance diverges): nothing propagates
        return math.nan


def _trained_depth(d: Mapping, value: float) -> int | None:
    """The deepest depth at which the cell trains, every shallower one training too (None: not the first)."""
    deepest = None
    for depth in d["depths"]:
        c = d["cells"].get((value, depth))
        if c is None or c["train_accuracy"] is None or c["train_accuracy"] < TRAINED_ACCURACY:
            break
        deepest = depth
    return deepest


def _title(d: Mapping) -> str:
    fixed = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in d["fixed"].items())
    return f"{d['arch']}, {d['activation']}, width {d['width']}, {d['family']}({fixed}), {d['parametrization']}"


def phase_markdown(results: Mapping) -> list[str]:
    """The ``summary.md`` section: per diagram the final training accuracy per (depth, value) and,
    per value, the deepest depth that trains next to the prediction 6 xi_c where there is one."""
    lines: list[str] = []
    for d in diagrams(results):
        if not lines:
            lines += ["## Trainability phase diagrams", "",
                      f"Final training accuracy (mean over seeds) at each cell's best lr by final training loss; "
                      f"`fail`: a seed diverged at every lr. A cell trains at accuracy >= {TRAINED_ACCURACY:g}; "
                      f"`trains to`: the deepest depth up to which every depth trains. `{XI_FACTOR:g} xi_c`: the "
                      "depth up to which Schoenholz et al. (2017) predict training (mean-field theory).", ""]
        arg = d["argument"]
        pred = predicted_depth(d, d["values"])
        lines += [f"### {_title(d)}", "",
                  "| depth | " + " | ".join(f"{arg}={v:g}" for v in d["values"]) + " |",
                  "|---|" + "---|" * len(d["values"])]
        for depth in d["depths"]:
            cells = [d["cells"].get((v, depth)) for v in d["values"]]
            lines.append(f"| {depth} | " + " | ".join(
                "" if c is None else ("fail" if c["failed"] else f"{c['train_accuracy']:.2f}") for c in cells) + " |")
        lines.append("| trains to | " + " | ".join(str(_trained_depth(d, v) or "-") for v in d["values"]) + " |")
        if pred is not None:
            lines.append(f"| {XI_FACTOR:g} xi_c | " + " | ".join("inf" if not np.isfinite(p) and not np.isnan(p) else
                                                                  ("n/a" if np.isnan(p) else f"{p:.0f}") for p in pred)
                         + " |")
        lines.append("")
    return lines


def plot_phase(results: Mapping, path: str) -> str | None:
    """``phase_diagram.png``: per diagram a row of two heat maps (final training loss, log colour;
    final training accuracy) of depth against the swept value, with ``6 xi_c`` drawn over them for
    a ``meanfield`` sweep of ``sigma_w2``. None when the results have no diagram."""
    ds = diagrams(results)
    if not ds:
        return None
    from bench.plots import _plt, _save

    plt = _plt()
    fig, axes = plt.subplots(len(ds), 2, figsize=(13, 4.6 * len(ds)), squeeze=False)
    for row, d in zip(axes, ds):
        for ax, key in zip(row, ("train_loss", "train_accuracy")):
            _heat_map(fig, ax, d, key)
        row[0].set_title(f"final training loss: {_title(d)}", fontsize=9)
        row[1].set_title("final training accuracy (white: no cell; dark: failed)", fontsize=9)
    fig.suptitle("Trainability phase diagram: each cell at its best lr by final training loss"
                 + (f" (dashed: {XI_FACTOR:g} xi_c, Schoenholz et al. 2017)" if any(
                     predicted_depth(d, d["values"]) is not None for d in ds) else ""))
    return _save(fig, path)


def _edges(x: Sequence[float], log: bool) -> np.ndarray:
    """Cell edges around the centres ``x`` (geometric midpoints on a log axis)."""
    a = np.log(np.asarray(x, float)) if log else np.asarray(x, float)
    mid = (a[1:] + a[:-1]) / 2
    e = np.concatenate([[a[0] - (mid[0] - a[0])], mid, [a[-1] + (a[-1] - mid[-1])]])
    return np.exp(e) if log else e


def _heat_map(fig, ax, d: Mapping, key: str) -> None:
    from matplotlib.colors import LogNorm

    values, depths = d["values"], d["depths"]
    z = np.full((len(depths), len(values)), np.nan)
    for (v, depth), c in d["cells"].items():
        if c[key] is not None:
            z[depths.index(depth), values.index(v)] = c[key]
        else:  # failed: drawn as the worst colour
            z[depths.index(depth), values.index(v)] = -1.0
    log_y = depths[-1] / depths[0] > 8
    x_edges, y_edges = _edges(values, False), _edges(depths, log_y)
    if key == "train_loss":
        ok = z[z > 0]
        worst = np.nanmax(ok) if ok.size else 1.0
        z = np.where(z < 0, worst, z)
        mesh = ax.pcolormesh(x_edges, y_edges, np.ma.masked_invalid(z), cmap="viridis_r",
                             norm=LogNorm(vmin=max(np.nanmin(z), 1e-4), vmax=max(worst, 1e-3)))
    else:
        z = np.where(z < 0, 0.0, z)
        mesh = ax.pcolormesh(x_edges, y_edges, np.ma.masked_invalid(z), cmap="viridis", vmin=0, vmax=1)
    fig.colorbar(mesh, ax=ax)
    fine = np.union1d(np.linspace(values[0], values[-1], 25), values)  # xi_c is slow in the chaotic phase
    pred = predicted_depth(d, fine)
    if pred is not None:
        ax.plot(fine, np.clip(pred, y_edges[0], y_edges[-1]), "w--", lw=2, label=f"{XI_FACTOR:g} xi_c")
        ax.legend(loc="upper right", fontsize=8)
    if log_y:
        ax.set_yscale("log")
        ax.set_yticks(depths, [str(x) for x in depths])
        ax.minorticks_off()
    ax.set_ylim(y_edges[0], y_edges[-1])
    ax.set_xlabel(d["argument"])
    ax.set_ylabel("depth")
