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
# it does to **training**. The `bench` package (`python -m bench`) trains deep networks (the
# hidden stacks run under `flax.linen.scan`; every scheme, learning rate and seed of a network
# structure in one compiled program under `jax.vmap`) under each scheme of the registry, on
# sklearn's bundled 8×8 digits, and writes `results.json`, a ranked `summary.md` and plots.
#
# Its Python API is `bench.run(bench.BenchConfig(...), out_dir) -> Results`. This notebook runs
# a small sweep: a 20-hidden-layer ReLU MLP of width 32, SGD with momentum 0.9 at three
# learning rates, 200 steps of batch 128, 2 seeds, for a few schemes. Each scheme is then
# compared **at its own best learning rate**, chosen on a validation split carved from the
# training data. The ReLU forward factor per layer is $n\,\mathrm{Var}(W)/2$ (notebook 02), so
# after 20 layers Glorot (= LeCun for square layers) shrinks the signal by $2^{-10}$ and
# $\mathcal N(0,1)$ blows it up by $16^{20}$.

# %%
import jax
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

import jinit

plt.rcParams.update({"figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3})
print("jax", jax.__version__, "| backend:", jax.default_backend(), "| jinit", jinit.__version__)

# %%
import tempfile

import bench

WANTED = ("zeros", "normal", "glorot_normal", "he_normal", "orthogonal", "critical")
config = bench.BenchConfig(schemes=tuple(s for s in WANTED if s in jinit.SCHEMES), archs=("mlp",),
                           activations=("relu",), depths=(20,), widths=(32,), lrs=(0.003, 0.01, 0.03), steps=200,
                           seeds=2, eval_every=20, devices=1)
results = bench.run(config, tempfile.mkdtemp(prefix="jinit-bench-"), plots=False)
print(f"{len(results.runs)} runs, {results.timing['wall_s']:.0f} s")

# %% [markdown]
# ## Each scheme at its best learning rate
#
# `results.selection` has one entry per scheme: the learning rate with the lowest mean final
# validation loss over the seeds (a diverged seed counts as worst), and at that learning rate
# the validation loss and test accuracy with a 95% confidence interval over seeds. The left
# panel is the whole grid (`lr_sensitivity.png` of `python -m bench`): a scheme that trains
# on one learning rate only is fragile. The right panel is the training loss at the best lr.

# %%
from collections import defaultdict

by = defaultdict(list)
for run in results.runs:
    by[(run["scheme"], run["lr"])].append(run)
best = {e["scheme"]: e for e in results.selection}
fig, axes = plt.subplots(1, 2, figsize=(13, 4.2))
for i, name in enumerate(config.schemes):
    vals = [np.mean([r["final_val_loss"] if r["final_val_loss"] is not None else np.nan for r in by[(name, lr)]])
            for lr in config.lrs]
    axes[0].plot(config.lrs, vals, "o-", color=f"C{i}", label=name)
    runs = by[(name, best[name]["best_lr"])]
    curve = np.array([[np.nan if v is None else v for _, v in r["loss_curve"]] for r in runs])
    steps = [s for s, _ in runs[0]["loss_curve"]]
    if np.isfinite(curve).any():
        axes[1].plot(steps, np.nanmean(curve, 0), color=f"C{i}", lw=2, label=f"{name} (lr {best[name]['best_lr']})")
for ax in axes:
    ax.set_yscale("log")
    ax.axhline(np.log(10), color="gray", ls=":", lw=1)
axes[0].set_xscale("log"); axes[0].set_xlabel("learning rate"); axes[0].set_ylabel("final validation loss")
axes[0].set_title("validation loss vs lr (missing point: diverged)")
axes[1].set_xlabel("step"); axes[1].set_ylabel("train loss (whole split)"); axes[1].set_title("at the best lr")
axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## The ranked table
#
# `summary.md` ranks the schemes at their best learning rates (fewest diverged seeds, then
# lowest mean validation loss), with 95% confidence intervals over seeds and a paired t-test
# against the best scheme (the seeds share their data order, so seed-by-seed differences are
# paired): `≈` marks a scheme that is not significantly different from the best. With 2 seeds
# few differences are significant: raise `seeds` for real conclusions. The last column, the
# std of the last hidden layer's output at initialization, predicts the ranking: order 1
# trains, tiny (vanishing) or huge (exploding) does not.

# %%
summary = (__import__("pathlib").Path(results.out_dir) / "summary.md").read_text()
display(Markdown(summary.split("\n## ", 1)[1].split("\n", 1)[1].split("\n## ")[0]))  # the one group's table
env = results.data["env"]
print(f"machine: {env['platform']}, backend {env['backend']} ({env['device_kind']}, "
      f"{env['device_count']} device(s)); jax {env['jax']}, flax {env['flax']}")

# %% [markdown]
# ## The full benchmark, on a CPU, GPU or TPU
#
# From the repository root:
#
# ```bash
# python -m bench                       # every scheme; mlp and resmlp; ReLU and tanh; an lr grid
# python -m bench --list                # schemes, architectures and presets
# python -m bench --preset he2015       # 30-layer ReLU: He trains, Glorot stalls (He et al. 2015, Fig. 3)
# python -m bench --preset glorot2010   # tanh/sigmoid saturation (Glorot & Bengio 2010)
# python -m bench --preset depth        # tanh depth 10..200: critical vs off-critical (Schoenholz et al. 2017)
# python -m bench --arch resmlp,transformer --schemes he_normal,fixup,rezero,gpt2 --lr 0.003,0.01,0.03
# python -m bench --schemes he_normal,glorot_normal --depth 10,50,100 --width 256 --steps 2000
# python -m bench --replot --out results/<timestamp>    # re-render summary.md and the PNGs
# ```
#
# Every run writes `results/<timestamp>/` (override with `--out`); re-running the same command
# with the same `--out` resumes an interrupted run. **On a GPU or TPU** install the matching
# JAX first — `pip install -U "jax[cuda12]"` (NVIDIA) or `pip install -U "jax[tpu]"` — then run
# the same commands: the code is unchanged, `results.json` records the backend and devices,
# and with several devices the models (or, with fewer models than devices, the minibatch) are
# sharded across them (`--devices N` to use fewer).
# Raise `--width`, `--depth`, `--steps` and `--seeds` there: the defaults are sized for a
# 2-core CPU. The presets:

# %%
from bench.presets import PRESETS

display(Markdown("\n".join(["| preset | what it runs | source |", "|---|---|---|"]
                            + [f"| `{p.name}` | {p.summary} | {p.source} |" for p in PRESETS.values()])))
