# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 03 · Convergence: a small benchmark sweep from Python
#
# Notebook 02 showed what the initializer does to the signal at step 0; this one shows what
# it does to **training**. The `bench` package (`python -m bench`) trains a deep MLP (the
# hidden stack runs under `flax.linen.scan`, all seeds at once under `jax.vmap`) under each
# scheme of the registry, on sklearn's bundled 8×8 digits, and writes `results.json`,
# a ranked `summary.md` and plots.
#
# Its command line is also a Python function, `bench.cli.main(argv) -> exit status`, which
# is how this notebook runs a small sweep: a 20-hidden-layer ReLU MLP of width 32, SGD with
# momentum 0.9 (lr 0.01), 200 steps of batch 128, 2 seeds, for a few schemes. The ReLU
# forward factor per layer is $n\,\mathrm{Var}(W)/2$ (notebook 02), so after 20 layers
# Glorot (= LeCun for square layers) shrinks the signal by $2^{-10}$ and $\mathcal N(0,1)$ blows it up by $16^{20}$.

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

import jinit

plt.rcParams.update({"figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3})
print("jax", jax.__version__, "| backend:", jax.default_backend(), "| jinit", jinit.__version__)

# %%
import json
import pathlib
import tempfile

from bench.cli import main as bench_main

WANTED = ("zeros", "normal", "glorot_normal", "he_normal", "orthogonal", "critical")
schemes = [s for s in WANTED if s in jinit.SCHEMES]  # whatever this jinit registers
out = pathlib.Path(tempfile.mkdtemp(prefix="jinit-bench-"))
argv = ["--schemes", ",".join(schemes), "--activation", "relu", "--depth", "20", "--width", "32",
        "--steps", "200", "--seeds", "2", "--eval-every", "20", "--devices", "1", "--no-plots", "--out", str(out)]
print("python -m bench " + " ".join(argv))
status = bench_main(argv)
assert status == 0, status
results = json.loads((out / "results.json").read_text())

# %% [markdown]
# ## Loss curves
#
# `results.json` holds one record per (scheme, activation, depth, seed) with the loss on the
# whole training split every `eval_every` steps (`loss_curve`: `[step, loss]` pairs, `null`
# once the run diverged), the test accuracy, and per-layer statistics at initialization.
# Mean over seeds, band min..max; schemes whose every seed diverged (NaN/inf loss) are
# listed in the corner instead. For ReLU, `critical` and `orthogonal` are the same init
# (orthogonal with $\sigma_w = \sqrt 2$), so their curves coincide.

# %%
from collections import defaultdict

curves = defaultdict(list)
for run in results["runs"]:
    curves[run["scheme"]].append(run)
cfg = results["config"]
steps = np.unique(np.r_[np.arange(0, cfg["steps"], cfg["eval_every"]), cfg["steps"]])

def loss_matrix(runs):
    # (seeds, logged steps) array of the whole-split training loss; NaN after divergence.
    ys = np.full((len(runs), len(steps)), np.nan)
    for i, run in enumerate(runs):
        for step, loss in run["loss_curve"]:
            ys[i, np.searchsorted(steps, step)] = np.nan if loss is None else loss
    return ys

fig, axes = plt.subplots(1, 2, figsize=(13, 4.2), gridspec_kw={"width_ratios": [3, 2]})
ax = axes[0]
notes = []
for i, name in enumerate(schemes):
    ys = loss_matrix(curves[name])
    diverged = sum(r["diverged"] for r in curves[name])
    if diverged == len(ys):  # nothing left to average: say where it went instead
        first = ys[:, 0][np.isfinite(ys[:, 0])]
        notes.append(f"{name}: diverged (initial loss {first.mean():.2g})" if first.size else f"{name}: diverged")
        continue
    ok = ~np.isnan(ys).all(axis=0)
    label = name + (f" ({diverged} of {len(ys)} seeds diverged)" if diverged else "")
    ax.plot(steps[ok], np.nanmean(ys[:, ok], 0), color=f"C{i}", lw=2, label=label)
    ax.fill_between(steps[ok], np.nanmin(ys[:, ok], 0), np.nanmax(ys[:, ok], 0), color=f"C{i}", alpha=0.2)
if notes:
    ax.text(0.98, 0.97, "\n".join(notes), transform=ax.transAxes, ha="right", va="top", fontsize=8, color="k")
ax.axhline(np.log(10), color="gray", ls=":", lw=1); ax.text(2, np.log(10) * 1.05, "chance: ln 10", fontsize=8)
ax.set_yscale("log"); ax.set_xlabel("step"); ax.set_ylabel("train loss (whole split)")
ax.set_title(f"ReLU MLP, depth {cfg['depths'][0]}, width {cfg['width']}: training loss")
ax.legend(fontsize=8)

ax = axes[1]
acc = {n: [r["test_accuracy"] for r in curves[n] if r["test_accuracy"] is not None] for n in schemes}
order = sorted(schemes, key=lambda n: -np.mean(acc[n]) if acc[n] else 1)
ax.barh(order, [100 * np.mean(acc[n]) if acc[n] else 0 for n in order],
        xerr=[100 * np.std(acc[n]) if acc[n] else 0 for n in order],
        color=[f"C{schemes.index(n)}" for n in order])
ax.invert_yaxis(); ax.set_xlabel("test accuracy % (mean ± std over seeds; 0 = diverged)")
ax.axvline(10, color="gray", ls=":", lw=1)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The ranked table
#
# `summary.md` ranks the schemes (fewest diverged seeds, then lowest final training loss,
# then test accuracy) and records the settings and the machine; it is what
# `python -m bench` prints at the end. The last column, the std of the last hidden layer's
# output at initialization, predicts the ranking: order 1 trains, tiny (vanishing) or huge
# (exploding) does not.

# %%
summary = (out / "summary.md").read_text()
display(Markdown(summary.split("\n## ", 1)[1].split("\n", 1)[1]))  # the table of the one group
env = results["env"]
print(f"machine: {env['platform']}, backend {env['backend']} ({env['device_kind']}, "
      f"{env['device_count']} device(s)); jax {env['jax']}, flax {env['flax']}")
print("timing (s):", {k: round(v, 1) for k, v in results["timing"].items()})

# %% [markdown]
# ## The full benchmark, on a CPU, GPU or TPU
#
# From the repository root:
#
# ```bash
# python -m bench                       # every registered scheme, ReLU and tanh, depth 20, 3 seeds
# python -m bench --list                # schemes and presets
# python -m bench --preset he2015       # 30-layer ReLU: He trains, Glorot stalls (He et al. 2015, Fig. 3)
# python -m bench --preset glorot2010   # tanh/sigmoid saturation (Glorot & Bengio 2010)
# python -m bench --preset depth        # tanh depth 10..200: critical vs off-critical (Schoenholz et al. 2017)
# python -m bench --schemes he_normal,glorot_normal --depth 10,50,100 --width 256 --steps 2000
# python -m bench --replot --out results/<timestamp>    # re-render summary.md and the PNGs
# ```
#
# Every run writes `results/<timestamp>/` (override with `--out`); re-running the same command
# with the same `--out` resumes an interrupted run. **On a GPU or TPU** install the matching
# JAX first — `pip install -U "jax[cuda12]"` (NVIDIA) or `pip install -U "jax[tpu]"` — then run
# the same commands: the code is unchanged, `results.json` records the backend and devices,
# and with several devices the minibatch is sharded across them (`--devices N` to use fewer).
# Raise `--width`, `--depth`, `--steps` and `--seeds` there: the defaults are sized for a
# 2-core CPU. The presets:

# %%
from bench.presets import PRESETS

display(Markdown("\n".join(["| preset | what it runs | source |", "|---|---|---|"]
                            + [f"| `{p.name}` | {p.summary} | {p.source} |" for p in PRESETS.values()])))
