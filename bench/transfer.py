"""Learning-rate transfer across width and depth: does the best lr of the base model stay best?

For a run with several widths (or depths), every (arch, activation, scheme,
parametrization) and fixed depth (width) is a *sweep*: its best learning rate at
each width (depth), by the mean over seeds of a final loss: the training loss
(``metric="final_train_loss"``, what µP is about: the optimization's best lr, as
the papers' figures plot it) or the validation loss (``"final_val_loss"``, the
benchmark's selection of :func:`bench.selection.best_lr`); a seed that diverged
makes an lr worse than any loss, ties go to the smaller lr.
:func:`sweeps` lists them with how far the best lr moves, in steps of the lr grid
(``moves`` = largest minus smallest grid index of the best lrs; 0 = the same lr at
every size). A best lr at which a seed diverged is not a choice at all (every lr
failed): such sizes are ``None`` and the sweep's ``moves`` counts only the others,
with ``failed`` listing them. The claim of µP (Yang et al. 2022, Tensor Programs V)
is that under ``mup`` the best lr moves by at most about one grid step over the
whole width range (depth-µP: depth range) while under ``standard`` it moves more.

:func:`transfer_markdown` is the table of ``summary.md``; :func:`plot_transfer`
the figure µP papers show: validation loss against lr, one curve per size, one
panel per parametrization.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from bench.selection import best_lr, lr_score

__all__ = ["METRICS", "sweeps", "transfer_markdown", "plot_transfer"]

METRICS = {"final_train_loss": "final training loss", "final_val_loss": "final validation loss"}

_AXES = {"width": "depth", "depth": "width"}  # swept -> held fixed


def _cells(runs: Sequence[Mapping], swept: str) -> dict[tuple, dict[int, dict[float, list]]]:
    """``{(arch, activation, scheme, parametrization, fixed): {size: {lr: [runs]}}}``."""
    out: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in runs:
        key = (r["arch"], r["activation"], r["scheme"], r.get("parametrization", "standard"), r[_AXES[swept]])
        out[key][r[swept]][r["lr"]].append(r)
    return out


def _best(by_lr: Mapping[float, list], metric: str) -> float | None:
    """The lr of the lowest score (ties to the smaller), None when a seed failed at every lr."""
    lr = best_lr(by_lr, metric)
    return None if lr_score(by_lr[lr], metric)[0] else lr


def sweeps(results: Mapping, swept: str = "width", metric: str = "final_train_loss") -> list[dict]:
    """One entry per sweep over ``swept`` (``"width"`` or ``"depth"``) with at least two sizes:
    ``arch, activation, scheme, parametrization``, the fixed dimension, ``sizes``, ``best_lr``
    (per size, None where every lr failed), ``grid`` (the lrs run), ``moves`` (grid steps
    between the extreme best lrs), ``failed`` (sizes where every lr failed)."""
    if swept not in _AXES:
        raise ValueError(f"sweeps: swept must be 'width' or 'depth', got {swept!r}.")
    if metric not in METRICS:
        raise ValueError(f"sweeps: metric must be one of {', '.join(METRICS)}, got {metric!r}.")
    out = []
    for (arch, act, scheme, par, fixed), by_size in sorted(_cells(results["runs"], swept).items()):
        grid = sorted({lr for by_lr in by_size.values() for lr in by_lr})
        if len(by_size) < 2 or len(grid) < 2:  # no sweep, or no choice of lr to transfer
            continue
        best = {size: _best(by_size[size], metric) for size in sorted(by_size)}
        failed = [size for size, lr in best.items() if lr is None]
        chosen = [grid.index(lr) for lr in best.values() if lr is not None]
        out.append({"arch": arch, "activation": act, "scheme": scheme, "parametrization": par,
                    _AXES[swept]: fixed, "swept": swept, "sizes": sorted(by_size), "best_lr": best, "grid": grid,
                    "metric": metric, "moves": (max(chosen) - min(chosen)) if chosen else None, "failed": failed})
    return out


def _fmt_lr(lr: float | None) -> str:
    if lr is None:
        return "all fail"
    exp = math.log2(lr)
    return f"2^{exp:.0f}" if abs(exp - round(exp)) < 1e-9 else f"{lr:.3g}"


def transfer_markdown(results: Mapping) -> list[str]:
    """The ``summary.md`` section: per sweep and metric, the best lr at each size and how far it moves."""
    lines: list[str] = []
    for swept in ("width", "depth"):
        if not sweeps(results, swept):
            continue
        fixed = _AXES[swept]
        lines += [f"## Learning-rate transfer across {swept}", "",
                  f"Best lr at each {swept} by the mean over seeds of the final training loss (what µP predicts to "
                  "stay put) and of the final validation loss (the benchmark's selection); `all fail`: a seed "
                  "diverged at every lr; `moves`: grid steps between the smallest and the largest best lr (0: the "
                  "same lr at every size); `*`: at an end of the lr grid, where the best lr may lie beyond it (then "
                  "`moves` is a lower bound).", ""]
        for metric, label in METRICS.items():
            entries = sweeps(results, swept, metric)
            sizes = sorted({x for e in entries for x in e["sizes"]})
            lines += [f"By {label}:", "",
                      f"| arch | scheme | parametrization | {fixed} | " + " | ".join(f"{swept} {x}" for x in sizes)
                      + " | moves |", "|" + "---|" * (len(sizes) + 5)]
            for e in entries:
                # a best lr at an end of the grid may lie beyond it: marked, and `moves` is then a lower bound
                cells = [(_fmt_lr(e["best_lr"][x]) + ("*" if e["best_lr"][x] in (e["grid"][0], e["grid"][-1]) else ""))
                         if x in e["best_lr"] else "" for x in sizes]
                moves = "n/a" if e["moves"] is None else str(e["moves"])
                lines.append(f"| {e['arch']} | {e['scheme']} | {e['parametrization']} | {e[fixed]} | "
                             + " | ".join(cells) + f" | {moves} |")
            lines.append("")
    return lines


def _curve(by_lr: Mapping[float, list], metric: str) -> tuple[list[float], np.ndarray]:
    lrs = sorted(by_lr)
    scores = [lr_score(by_lr[lr], metric) for lr in lrs]
    return lrs, np.array([np.nan if f else m for f, m in scores])


def plot_transfer(results: Mapping, path: str, swept: str = "width", metric: str = "final_train_loss") -> str | None:
    """``lr_transfer_<swept>.png``: per (arch, activation, scheme, fixed size) a row, per
    parametrization a panel; ``metric`` (mean over seeds) against lr (log-log), one curve per
    size (darker = larger), a circle on each size's best lr; a gap where a seed diverged.
    None when the results have no sweep over ``swept``."""
    entries = sweeps(results, swept, metric)
    if not entries:
        return None
    from bench.plots import _plt, _save

    plt = _plt()
    rows = sorted({(e["arch"], e["activation"], e["scheme"], e[_AXES[swept]]) for e in entries})
    pars = sorted({e["parametrization"] for e in entries}, key=lambda p: (p != "standard", p))
    fig, axes = plt.subplots(len(rows), len(pars), figsize=(5.2 * len(pars) + 1.5, 3.9 * len(rows)), squeeze=False)
    cells = _cells(results["runs"], swept)
    sizes = sorted({x for e in entries for x in e["sizes"]})
    cmap = plt.get_cmap("viridis")
    colors = {x: cmap(0.9 * (1 - i / max(1, len(sizes) - 1))) for i, x in enumerate(sizes)}
    for i, (arch, act, scheme, fixed) in enumerate(rows):
        for j, par in enumerate(pars):
            _transfer_panel(axes[i][j], cells.get((arch, act, scheme, par, fixed), {}), metric, colors, swept)
            axes[i][j].set_title(f"{par}: {arch}, {act}, {scheme}, {_AXES[swept]} {fixed}", fontsize=10)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, title=swept)
    fig.suptitle(f"Learning-rate transfer across {swept}: {METRICS[metric]} vs lr, one curve per {swept} "
                 "(circle: best lr; a gap: a seed diverged)")
    return _save(fig, path)


def _transfer_panel(ax, by_size: Mapping[int, Mapping], metric: str, colors: Mapping, swept: str) -> None:
    curves = {size: _curve(by_lr, metric) for size, by_lr in sorted(by_size.items())}
    finite = [m for _, means in curves.values() for m in means if np.isfinite(m)]
    # The axis shows the useful range; a size whose whole curve lies above it is named instead.
    top = min(max(finite) * 1.3, 30 * min(finite) + 3) if finite else None
    above = []
    for size, (lrs, means) in curves.items():
        ax.plot(lrs, means, marker="o", ms=3, lw=1.4, color=colors[size], label=f"{swept} {size}")
        lr = _best(by_size[size], metric)
        if lr is not None:
            ax.plot([lr], [means[lrs.index(lr)]], ls="none", marker="o", ms=11, mfc="none", mew=1.4,
                    color=colors[size])
        if top is not None and np.nanmin(np.where(np.isfinite(means), means, np.inf)) > top:
            above.append(f"{swept} {size}")
    ax.set_xscale("log", base=2)
    if finite:
        ax.set_yscale("log")
        ax.set_ylim(min(finite) / 1.3, top)
    if above:
        ax.text(0.03, 0.97, f"{', '.join(above)}: above {top:.3g} at every lr", transform=ax.transAxes,
                va="top", fontsize=8, color="0.3")
    ax.set_xlabel("learning rate")
    ax.set_ylabel(f"{METRICS[metric]} (mean over seeds)")
    ax.grid(True, which="major", alpha=0.3)
