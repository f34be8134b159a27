"""PNG figures of a results.json (matplotlib, Agg backend: no display needed).

One panel per group (arch, activation, depth, width). Every figure but the
last shows each scheme at its own best learning rate (:func:`bench.selection.select`).

* ``loss_curves.png``: full-train-split loss vs step, mean over seeds (band:
  min..max); log scale. A diverged seed's curve stops at divergence (its mark: x).
* ``activation_std.png``: per-hidden-layer std of the activations at init, log
  scale: flat = healthy, falling = vanishing, rising = exploding.
* ``grad_norm.png``: per-layer gradient norm of the kernels at init.
* ``accuracy.png``: test accuracy per scheme (mean ± CI95 over seeds), in rank
  order (test loss for regression tasks).
* ``saturation.png`` (tanh / sigmoid only): fraction of saturated units per layer
  at init (dashed) and after training (solid), as in Glorot & Bengio 2010.
* ``lr_sensitivity.png``: mean final validation loss vs learning rate for every
  scheme; x at the top: some seed diverged at that lr; circle: the best lr.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import defaultdict

import numpy as np

from bench.report import group_title
from bench.selection import by_group, group_key, lr_score, select

__all__ = [
    "plot_accuracy",
    "plot_all",
    "plot_loss_curves",
    "plot_lr_sensitivity",
    "plot_per_layer",
    "plot_saturation",
]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _integer_ticks(ax) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _runs_by_lr(results: dict) -> dict[tuple, dict[float, list[dict]]]:
    """``{(arch, activation, depth, width, scheme): {lr: [runs]}}``."""
    cells: dict[tuple, dict[float, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in results.get("runs", []):
        cells[(*group_key(r), r["scheme"])][r["lr"]].append(r)
    return cells


def _best_runs(results: dict) -> dict[tuple, dict[str, list[dict]]]:
    """``{group: {scheme: its runs at its best lr}}``, groups and schemes in selection (rank) order."""
    cells = _runs_by_lr(results)
    out: dict[tuple, dict[str, list[dict]]] = {}
    for e in select(results):
        out.setdefault(group_key(e), {})[e["scheme"]] = cells[(*group_key(e), e["scheme"])][e["best_lr"]]
    return out


def _styles(results: dict) -> dict[str, dict]:
    plt = _plt()
    names = list(dict.fromkeys(r["scheme"] for r in results.get("runs", [])))
    cmap = plt.get_cmap("tab20") if len(names) > 10 else plt.get_cmap("tab10")
    dashes = ["-", "--", ":", "-."]
    return {
        n: {"color": cmap(i % cmap.N), "linestyle": dashes[(i // cmap.N) % len(dashes)]}
        for i, n in enumerate(names)
    }


def _panels(n: int, width: float = 5.5, height: float = 4.0):
    plt = _plt()
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols + 2.6, height * rows), squeeze=False)
    flat = list(axes.ravel())
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def _save(fig, path: str) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return path


def _finish(fig, path: str, styles: dict, labels: dict | None = None) -> str:
    """Adds the figure-wide scheme legend and saves."""
    from matplotlib.lines import Line2D

    labels = labels or {}
    handles = [Line2D([], [], lw=2, **s) for s in styles.values()]
    fig.legend(handles, [labels.get(n, n) for n in styles], loc="center left", bbox_to_anchor=(1.0, 0.5),
               title="scheme", fontsize=9, frameon=False)
    return _save(fig, path)


def _vals(xs) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in xs], dtype=float)


def _quiet(fn, *args, **kw):
    """``fn`` with all-NaN slices allowed (a diverged seed leaves NaNs behind)."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return fn(*args, **kw)


def _loss_cap(results: dict, runs: list[dict]) -> float | None:
    """Top of an informative loss axis: 10x the chance-level loss (ln K for K
    classes) or, for regression, 10x the median loss at step 0. Exploding
    starts (1e15) would otherwise squash the curves that train."""
    k = results.get("config", {}).get("dataset_info", {}).get("n_classes") or 0
    if k >= 2:
        return 10 * math.log(k)
    starts = [r["loss_curve"][0][1] for r in runs if r["loss_curve"] and r["loss_curve"][0][1]]
    return 10 * float(np.median(starts)) if starts else None


def _clip_log_axis(ax, values: list[float], cap: float | None, headroom: float = 1.5) -> None:
    """Log y limits around the positive ``values``, at most ``cap`` at the top."""
    finite = [v for v in values if v is not None and math.isfinite(v) and v > 0]
    if not finite:
        return
    top = max(finite) * headroom if cap is None else min(cap, max(finite) * headroom)
    bottom = min(finite) / 1.5
    if top > bottom:
        ax.set_ylim(bottom, top)
        if max(finite) > top:
            ax.text(0.99, 0.02, "clipped: higher losses off the top", transform=ax.transAxes, ha="right",
                    va="bottom", fontsize=7, color="0.4")


def _loss_panel(ax, runs: list[dict], style: dict) -> None:
    """Mean train-loss curve of ``runs`` (band min..max), x at each divergence."""
    steps = [p[0] for p in runs[0]["loss_curve"]]
    curves = np.full((len(runs), len(steps)), np.nan)
    for i, r in enumerate(runs):
        v = _vals([p[1] for p in r["loss_curve"]])[: len(steps)]
        curves[i, : len(v)] = v
    ax.plot(steps, _quiet(np.nanmean, curves, axis=0), lw=1.6, **style)
    ax.fill_between(steps, _quiet(np.nanmin, curves, axis=0), _quiet(np.nanmax, curves, axis=0),
                    color=style["color"], alpha=0.12, lw=0)
    for r in runs:
        finite = [(s, v) for s, v in r["loss_curve"] if v is not None]
        if r["diverged"] and finite:
            ax.plot([finite[-1][0]], [finite[-1][1]], marker="x", ms=8, color=style["color"])


def plot_loss_curves(results: dict, path: str) -> str:
    """``loss_curves.png``: train loss vs step of each scheme at its best lr."""
    groups, styles = _best_runs(results), _styles(results)
    target = results.get("config", {}).get("target_loss")
    fig, axes = _panels(len(groups))
    for ax, (key, by_scheme) in zip(axes, groups.items()):
        for scheme, runs in by_scheme.items():
            _loss_panel(ax, runs, styles[scheme])
        ax.set_yscale("log")
        all_runs = [r for runs in by_scheme.values() for r in runs]
        _clip_log_axis(ax, [v for r in all_runs for _, v in r["loss_curve"]], _loss_cap(results, all_runs))
        ax.set_title(group_title(key))
        ax.set_xlabel("step")
        ax.set_ylabel("train loss (whole training split)")
        if target:
            ax.axhline(target, color="0.5", lw=0.8, ls=":")
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle("Training loss, each scheme at its best lr (mean over seeds, band = min..max, x = diverged)")
    return _finish(fig, path, styles)


def plot_per_layer(results: dict, path: str, key: str, ylabel: str, title: str) -> str:
    """Per-layer ``init_stats[key]`` of each scheme at its best lr: geometric
    mean over seeds, log scale (these quantities span many decades)."""
    groups, styles = _best_runs(results), _styles(results)
    fig, axes = _panels(len(groups))
    labels = {}
    for ax, (gkey, by_scheme) in zip(axes, groups.items()):
        for scheme, runs in by_scheme.items():
            rows = [_vals(r["init_stats"][key]) for r in runs if r.get("init_stats") and r["init_stats"].get(key)]
            if not rows:
                continue
            arr = np.vstack(rows)
            if np.all(arr[np.isfinite(arr)] == 0):
                labels[scheme] = f"{scheme} (all 0)"
                continue
            mean = _quiet(lambda a: np.exp(np.nanmean(np.log(np.where(a > 0, a, np.nan)), axis=0)), arr)
            ax.plot(np.arange(1, arr.shape[1] + 1), mean, lw=1.6, marker="o" if arr.shape[1] <= 40 else None,
                    ms=3, **styles[scheme])
        ax.set_yscale("log")
        _integer_ticks(ax)
        ax.set_title(group_title(gkey))
        ax.set_xlabel("hidden layer")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(title)
    return _finish(fig, path, styles, labels)


def _bar_label(e: dict, value: float | None, regression: bool) -> str:
    if e["diverged"]:
        return f"diverged {e['diverged']}/{e['seeds']}, lr {e['best_lr']:.3g}"
    if value is None:
        return ""
    return f"{value:.3g} (lr {e['best_lr']:.3g})" if regression else f"{value:.1f}% (lr {e['best_lr']:.3g})"


def plot_accuracy(results: dict, path: str) -> str:
    """``accuracy.png``: test accuracy (test loss for regression) at the best lr,
    mean ± CI95 over seeds, in rank order."""
    groups, styles = by_group(select(results)), _styles(results)
    info = results.get("config", {}).get("dataset_info", {})
    regression = info.get("task") == "regression"
    metric, scale = ("test_loss", 1.0) if regression else ("test_accuracy", 100.0)
    n_max = max((len(v) for v in groups.values()), default=1)
    fig, axes = _panels(len(groups), width=5.5, height=max(3.0, 0.32 * n_max + 1.2))
    for ax, (key, entries) in zip(axes, groups.items()):
        means = [None if e[f"{metric}_mean"] is None else scale * e[f"{metric}_mean"] for e in entries]
        halves = [scale * (e[f"{metric}_ci95"] or 0.0) for e in entries]
        y = np.arange(len(entries))
        ax.barh(y, [m or 0.0 for m in means], xerr=halves, color=[styles[e["scheme"]]["color"] for e in entries],
                alpha=0.85, capsize=2)
        ax.set_yticks(y, [e["scheme"] for e in entries], fontsize=8)
        ax.invert_yaxis()
        for yi, e, m, h in zip(y, entries, means, halves):
            ax.text((m or 0.0) + h, yi, "  " + _bar_label(e, m, regression), va="center", fontsize=7)
        if regression:
            ax.set_xlabel("test loss (MSE)")
        else:
            ax.set_xlabel("test accuracy (%)")
            ax.set_xlim(0, 125)
            ax.axvline(100.0 / max(info.get("n_classes", 10), 1), color="0.5", lw=0.8, ls=":")
        ax.set_title(group_title(key))
        ax.grid(True, axis="x", alpha=0.3)
    what = "test loss" if regression else "test accuracy (dotted: chance)"
    fig.suptitle(f"{what[0].upper()}{what[1:]} at each scheme's best lr, mean ± CI95 over seeds, in rank order")
    return _save(fig, path)


def plot_saturation(results: dict, path: str) -> str | None:
    """``saturation.png`` for the groups with a saturation statistic, None if none has one."""
    groups = {
        k: v for k, v in _best_runs(results).items()
        if any((r.get("init_stats") or {}).get("saturation") for runs in v.values() for r in runs)
    }
    if not groups:
        return None
    styles = {k: {**v, "linestyle": "-"} for k, v in _styles(results).items()}
    fig, axes = _panels(len(groups))
    for ax, (key, by_scheme) in zip(axes, groups.items()):
        for scheme, runs in by_scheme.items():
            for stage, ls in (("init_stats", "--"), ("final_stats", "-")):
                rows = [_vals(r[stage]["saturation"]) for r in runs if r.get(stage) and r[stage].get("saturation")]
                if not rows:
                    continue
                arr = np.vstack(rows)
                ax.plot(np.arange(1, arr.shape[1] + 1), 100 * _quiet(np.nanmean, arr, axis=0), lw=1.6,
                        color=styles[scheme]["color"], ls=ls, marker="o" if arr.shape[1] <= 40 else None, ms=3)
        _integer_ticks(ax)
        ax.set_title(group_title(key))
        ax.set_xlabel("hidden layer")
        ax.set_ylabel("saturated units (%)")
        ax.set_ylim(-3, 103)
        ax.grid(True, alpha=0.3)
    fig.suptitle("Saturation per layer at each scheme's best lr (|tanh| > 0.99, sigmoid < 0.01 or > 0.99): "
                 "dashed at init, solid after training")
    return _finish(fig, path, styles)


def _sensitivity_curve(by_lr: dict[float, list[dict]]) -> tuple[list[float], np.ndarray, list[float]]:
    """``(lrs, mean final val loss per lr (NaN where a seed failed), lrs where a seed failed)``;
    failed as in :func:`bench.selection.lr_score`: diverged or no final val loss."""
    lrs = sorted(by_lr)
    scores = [lr_score(by_lr[lr]) for lr in lrs]
    means = np.array([np.nan if f else m for f, m in scores])
    return lrs, means, [lr for lr, (f, _) in zip(lrs, scores) if f]


def _sensitivity_line(ax, e: dict, by_lr: dict[float, list[dict]], style: dict, row: float) -> list[float]:
    """Draws one scheme's curve, its x marks at height ``row`` (axes fraction)
    and the circle on its best lr; returns the finite means drawn."""
    lrs, means, failed = _sensitivity_curve(by_lr)
    top_row = ax.get_xaxis_transform()  # x in data, y in axes fraction
    ax.plot(lrs, means, lw=1.4, marker="o", ms=3, **style)
    if failed:  # an empty unclipped line would still stretch the layout to the figure's origin
        ax.plot(failed, [row] * len(failed), ls="none", marker="x", ms=7, color=style["color"], transform=top_row,
                clip_on=False)
    # the circle sits on the best lr's mean, or on its x when a seed diverged at every lr
    y, transform = (row, top_row) if e["best_lr"] in failed else (means[lrs.index(e["best_lr"])], ax.transData)
    ax.plot([e["best_lr"]], [y], ls="none", marker="o", ms=12, mfc="none", mew=1.5, color=style["color"],
            transform=transform, clip_on=False)
    return [float(m) for m in means if np.isfinite(m)]


def plot_lr_sensitivity(results: dict, path: str) -> str:
    """``lr_sensitivity.png``: per group, mean final validation loss over seeds vs
    lr (both log), one line per scheme; x at the top: some seed diverged at that
    lr (no mean drawn); circle: the scheme's best lr."""
    cells, styles = _runs_by_lr(results), _styles(results)
    groups = by_group(select(results))
    fig, axes = _panels(len(groups))
    for ax, (key, entries) in zip(axes, groups.items()):
        shown = []
        for i, e in enumerate(entries):
            # stagger the schemes' x marks so that coinciding ones stay visible
            shown += _sensitivity_line(ax, e, cells[(*key, e["scheme"])], styles[e["scheme"]], 0.96 - 0.025 * (i % 6))
        ax.set_xscale("log")
        if not shown:  # a log axis without positive data cannot place its ticks
            ax.text(0.5, 0.5, "a seed diverged at every lr", transform=ax.transAxes, ha="center", color="0.4")
            ax.set_yticks([])
        else:
            ax.set_yscale("log")
        group_runs = [r for e in entries for runs in cells[(*key, e["scheme"])].values() for r in runs]
        # headroom 4x: the x row at the top must not cover the highest means
        _clip_log_axis(ax, shown, _loss_cap(results, group_runs), headroom=4.0)
        ax.set_title(group_title(key))
        ax.set_xlabel("learning rate")
        ax.set_ylabel("final validation loss (mean over seeds)")
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle("Learning-rate sensitivity (x at the top: a seed diverged; circle: best lr on validation)")
    return _finish(fig, path, styles)


def plot_all(results: dict, out_dir: str) -> list[str]:
    """Writes every figure for ``results`` into ``out_dir``; returns the paths."""
    if not results.get("runs"):
        return []
    paths = [
        plot_loss_curves(results, os.path.join(out_dir, "loss_curves.png")),
        plot_per_layer(results, os.path.join(out_dir, "activation_std.png"), "activation_std",
                       "std of the layer's output at init (log)",
                       "Per-layer activation std at initialization (falling: vanishing, rising: exploding)"),
        plot_per_layer(results, os.path.join(out_dir, "grad_norm.png"), "grad_norm",
                       "||dLoss/dW|| at init (log)", "Per-layer gradient norm of the kernels at initialization"),
        plot_accuracy(results, os.path.join(out_dir, "accuracy.png")),
        plot_lr_sensitivity(results, os.path.join(out_dir, "lr_sensitivity.png")),
    ]
    from bench.phase import plot_phase
    from bench.transfer import plot_transfer

    extra = [plot_saturation(results, os.path.join(out_dir, "saturation.png")),
             plot_phase(results, os.path.join(out_dir, "phase_diagram.png"))]
    extra += [plot_transfer(results, os.path.join(out_dir, f"lr_transfer_{d}.png"), d) for d in ("width", "depth")]
    return paths + [p for p in extra if p]
