"""PNG figures of a results.json (matplotlib, Agg backend: no display needed).

* ``loss_curves.png``: full-train-split loss vs step, mean over seeds (band:
  min..max), one panel per (activation, depth); log scale. A diverged seed's
  curve stops at divergence (its mark: x).
* ``activation_std.png``: per-hidden-layer std of the activations at init, log
  scale: flat = healthy, falling = vanishing, rising = exploding.
* ``grad_norm.png``: per-layer gradient norm of the kernels at init.
* ``accuracy.png``: final test accuracy per scheme (mean ± std), best first
  (final train loss for regression tasks).
* ``saturation.png`` (tanh / sigmoid only): fraction of saturated units per layer
  at init (dashed) and after training (solid), as in Glorot & Bengio 2010.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import defaultdict

import numpy as np

__all__ = ["plot_all"]


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def MaxNLocator(**kw):
    from matplotlib.ticker import MaxNLocator as _MaxNLocator

    return _MaxNLocator(**kw)


def _groups(results: dict) -> dict[tuple[str, int], dict[str, list[dict]]]:
    groups: dict[tuple[str, int], dict[str, list[dict]]] = defaultdict(lambda: defaultdict(list))
    for r in results.get("runs", []):
        groups[(r["activation"], r["depth"])][r["scheme"]].append(r)
    return dict(sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0])))


def _styles(results: dict) -> dict[str, dict]:
    plt = _plt()
    names = list(dict.fromkeys(r["scheme"] for r in results.get("runs", [])))
    cmap = plt.get_cmap("tab20") if len(names) > 10 else plt.get_cmap("tab10")
    n_colors = cmap.N
    dashes = ["-", "--", ":", "-."]
    return {
        n: {"color": cmap(i % n_colors), "linestyle": dashes[(i // n_colors) % len(dashes)]}
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


def _finish(fig, axes, path: str, styles: dict, names: list[str], labels: dict | None = None) -> str:
    from matplotlib.lines import Line2D

    labels = labels or {}
    handles = [Line2D([], [], lw=2, **styles[n]) for n in names]
    fig.legend(handles, [labels.get(n, n) for n in names], loc="center left", bbox_to_anchor=(1.0, 0.5), title="scheme", fontsize=9,
               frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return path


def _vals(xs) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in xs], dtype=float)


def plot_loss_curves(results: dict, path: str) -> str:
    groups, styles = _groups(results), _styles(results)
    fig, axes = _panels(len(groups))
    for ax, ((act, depth), by_scheme) in zip(axes, groups.items()):
        for scheme, runs in by_scheme.items():
            steps = [p[0] for p in runs[0]["loss_curve"]]
            curves = np.full((len(runs), len(steps)), np.nan)
            for i, r in enumerate(runs):
                v = _vals([p[1] for p in r["loss_curve"]])[: len(steps)]
                curves[i, : len(v)] = v
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = np.nanmean(curves, axis=0)
                lo, hi = np.nanmin(curves, axis=0), np.nanmax(curves, axis=0)
            ax.plot(steps, mean, lw=1.6, **styles[scheme])
            ax.fill_between(steps, lo, hi, color=styles[scheme]["color"], alpha=0.12, lw=0)
            for r in runs:
                if r["diverged"]:
                    finite = [(s, v) for s, v in r["loss_curve"] if v is not None]
                    if finite:
                        ax.plot([finite[-1][0]], [finite[-1][1]], marker="x", ms=8, color=styles[scheme]["color"])
        ax.set_yscale("log")
        _clip_loss_axis(ax, by_scheme, results)
        ax.set_title(f"{act}, depth {depth}")
        ax.set_xlabel("step")
        ax.set_ylabel("train loss (whole training split)")
        target = results.get("config", {}).get("target_loss")
        if target:
            ax.axhline(target, color="0.5", lw=0.8, ls=":")
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle("Training loss by initialization scheme (mean over seeds, band = min..max, x = diverged)")
    return _finish(fig, axes, path, styles, list(styles))


def _clip_loss_axis(ax, by_scheme: dict, results: dict) -> None:
    """Keeps the informative range: exploding starts (1e15) would squash the
    curves that train. The top is 10x the chance-level loss (ln K for K
    classes) or, for regression, 10x the median loss at step 0."""
    finite = [v for runs in by_scheme.values() for r in runs for _, v in r["loss_curve"] if v is not None and v > 0]
    if not finite:
        return
    info = results.get("config", {}).get("dataset_info", {})
    k = info.get("n_classes") or 0
    if k >= 2:
        top = 10 * math.log(k)
    else:
        starts = [r["loss_curve"][0][1] for runs in by_scheme.values() for r in runs if r["loss_curve"][0][1]]
        top = 10 * float(np.median(starts)) if starts else max(finite)
    top = min(top, max(finite) * 1.5)
    bottom = min(finite) / 1.5
    if top > bottom:
        ax.set_ylim(bottom, top)
        if max(finite) > top:
            ax.text(0.99, 0.98, "clipped: higher losses off the top", transform=ax.transAxes, ha="right",
                    va="top", fontsize=7, color="0.4")


def _per_layer(results: dict, path: str, key: str, ylabel: str, title: str, log: bool = True) -> str:
    groups, styles = _groups(results), _styles(results)
    fig, axes = _panels(len(groups))
    labels = {}
    for ax, ((act, depth), by_scheme) in zip(axes, groups.items()):
        for scheme, runs in by_scheme.items():
            rows = [_vals(r["init_stats"][key]) for r in runs if r.get("init_stats") and r["init_stats"].get(key)]
            if not rows:
                continue
            arr = np.vstack(rows)
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                # geometric mean over seeds: these quantities span many decades
                mean = np.exp(np.nanmean(np.log(np.where(arr > 0, arr, np.nan)), axis=0)) if log else np.nanmean(arr, axis=0)
            layers = np.arange(1, arr.shape[1] + 1)
            if log and np.all(arr[np.isfinite(arr)] == 0):
                labels[scheme] = f"{scheme} (all 0)"
                continue
            ax.plot(layers, mean, lw=1.6, marker="o" if arr.shape[1] <= 40 else None, ms=3, **styles[scheme])
        if log:
            ax.set_yscale("log")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{act}, depth {depth}")
        ax.set_xlabel("hidden layer")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="major", alpha=0.3)
    fig.suptitle(title)
    return _finish(fig, axes, path, styles, list(styles), labels)


def plot_accuracy(results: dict, path: str) -> str:
    plt = _plt()
    groups, styles = _groups(results), _styles(results)
    regression = results.get("config", {}).get("dataset_info", {}).get("task") == "regression"
    n_max = max((len(v) for v in groups.values()), default=1)
    fig, axes = _panels(len(groups), width=5.5, height=max(3.0, 0.32 * n_max + 1.2))
    for ax, ((act, depth), by_scheme) in zip(axes, groups.items()):
        rows = []
        for scheme, runs in by_scheme.items():
            key = "final_train_loss" if regression else "test_accuracy"
            v = _vals([r[key] for r in runs])
            finite = v[np.isfinite(v)]
            div = sum(r["diverged"] for r in runs)
            m = float(finite.mean()) if finite.size else np.nan
            s = float(finite.std()) if finite.size else 0.0
            rows.append((scheme, m if regression else 100 * m, s if regression else 100 * s, div, len(runs)))
        rows.sort(key=lambda r: (np.isnan(r[1]), r[1] if regression else -r[1]))
        y = np.arange(len(rows))
        ax.barh(y, [0 if np.isnan(r[1]) else r[1] for r in rows], xerr=[r[2] for r in rows],
                color=[styles[r[0]]["color"] for r in rows], alpha=0.85, capsize=2)
        ax.set_yticks(y, [r[0] for r in rows], fontsize=8)
        ax.invert_yaxis()
        for yi, r in zip(y, rows):
            label = f"diverged {r[3]}/{r[4]}" if r[3] else ("" if np.isnan(r[1]) else f"{r[1]:.3g}" if regression else f"{r[1]:.1f}%")
            x = 0 if np.isnan(r[1]) else r[1] + r[2]
            ax.text(x, yi, "  " + label, va="center", fontsize=7)
        if regression:
            ax.set_xlabel("final train loss (MSE)")
        else:
            ax.set_xlabel("test accuracy (%)")
            ax.set_xlim(0, 112)
            chance = 100.0 / max(results.get("config", {}).get("dataset_info", {}).get("n_classes", 10), 1)
            ax.axvline(chance, color="0.5", lw=0.8, ls=":")
        ax.set_title(f"{act}, depth {depth}")
        ax.grid(True, axis="x", alpha=0.3)
    fig.suptitle("Final " + ("train loss" if regression else "test accuracy (dotted: chance)") + " by scheme, mean ± std over seeds")
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def plot_saturation(results: dict, path: str) -> str | None:
    groups, styles = _groups(results), _styles(results)
    sat_groups = {
        k: v for k, v in groups.items()
        if any(r.get("init_stats", {}).get("saturation") for runs in v.values() for r in runs)
    }
    if not sat_groups:
        return None
    fig, axes = _panels(len(sat_groups))
    for ax, ((act, depth), by_scheme) in zip(axes, sat_groups.items()):
        for scheme, runs in by_scheme.items():
            for stage, ls in (("init_stats", "--"), ("final_stats", "-")):
                rows = [_vals(r[stage]["saturation"]) for r in runs if r.get(stage) and r[stage].get("saturation")]
                if not rows:
                    continue
                arr = np.vstack(rows)
                with np.errstate(all="ignore"), warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)
                    mean = np.nanmean(arr, axis=0)
                layers = np.arange(1, arr.shape[1] + 1)
                ax.plot(layers, 100 * mean, lw=1.6, color=styles[scheme]["color"], ls=ls,
                        marker="o" if arr.shape[1] <= 40 else None, ms=3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(f"{act}, depth {depth}")
        ax.set_xlabel("hidden layer")
        ax.set_ylabel("saturated units (%)")
        ax.set_ylim(-3, 103)
        ax.grid(True, alpha=0.3)
    fig.suptitle("Saturation per layer (|tanh| > 0.99, sigmoid < 0.01 or > 0.99): dashed at init, solid after training")
    return _finish(fig, axes, path, {k: {**v, "linestyle": "-"} for k, v in styles.items()}, list(styles))


def plot_all(results: dict, out_dir: str) -> list[str]:
    """Writes every figure for ``results`` into ``out_dir``; returns the paths."""
    if not results.get("runs"):
        return []
    paths = [
        plot_loss_curves(results, os.path.join(out_dir, "loss_curves.png")),
        _per_layer(results, os.path.join(out_dir, "activation_std.png"), "activation_std",
                   "std of the layer's output at init (log)",
                   "Per-layer activation std at initialization (falling: vanishing, rising: exploding)"),
        _per_layer(results, os.path.join(out_dir, "grad_norm.png"), "grad_norm",
                   "||dLoss/dW|| at init (log)", "Per-layer gradient norm of the kernels at initialization"),
        plot_accuracy(results, os.path.join(out_dir, "accuracy.png")),
    ]
    sat = plot_saturation(results, os.path.join(out_dir, "saturation.png"))
    if sat:
        paths.append(sat)
    return paths
