# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 05 · Beyond one tensor: tree rules (GPT-2, Fixup, ReZero) and LSUV
#
# A per-tensor initializer sees only a shape. Some recipes need to know **where** a
# parameter sits in the model (GPT-2 scales the projections that write into the residual
# stream by the depth; Fixup zeroes the last layer of every residual branch) or need **data**
# (LSUV rescales each layer until its outputs on a real batch have unit variance).
# `jinit.tree.reinit(key, params, rules)` applies `(pattern, initializer)` rules to a
# parameter tree by path (first match wins), and `jinit.data_dependent.lsuv` runs LSUV.
#
# The model: a residual MLP without normalization on the digits data,
# $x_{k+1} = x_k + \alpha_k\, W^{\text{proj}}_k\,\mathrm{relu}(W^{\text{fc}}_k x_k)$, 8 blocks
# of 2 branches each (so $2L = 16$ residual additions, GPT-2's count for $L = 8$ layers),
# width 64, hidden width 128, with GPT-2's parameter names `c_fc`, `c_proj`.

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
import flax.linen as nn
from sklearn.datasets import load_digits

from jinit.tree import fixup_rules, gpt2_rules, match_rules, reinit, rezero_rules, tree_paths

X_np, y_np = load_digits(return_X_y=True)
X = jnp.asarray((X_np - X_np.mean(0)) / (X_np.std(0) + 1e-6), jnp.float32)
y = jnp.asarray(y_np)
WIDTH, N_LAYERS = 64, 8
PLACEHOLDER = jinit.zeros()  # every recipe below redraws all kernels; init only builds the tree

class Branch(nn.Module):
    width: int

    @nn.compact
    def __call__(self, x):
        alpha = self.param("alpha", jinit.ones(), ())  # the residual gate (ReZero / SkipInit)
        h = jax.nn.relu(nn.Dense(2 * self.width, name="c_fc", kernel_init=PLACEHOLDER)(x))
        return alpha * nn.Dense(self.width, name="c_proj", kernel_init=PLACEHOLDER)(h)

class ResMLP(nn.Module):
    width: int = WIDTH
    n_layers: int = N_LAYERS

    @nn.compact
    def __call__(self, x):
        x = nn.Dense(self.width, name="embed", kernel_init=PLACEHOLDER)(x)
        stream = [x]
        for i in range(self.n_layers):
            for j in range(2):
                x = x + Branch(self.width, name=f"h_{i}_branch_{j}")(x)
                stream.append(x)
        return nn.Dense(10, name="head", kernel_init=PLACEHOLDER)(x), stream

model = ResMLP()
params = model.init(jax.random.key(0), X[:2])
paths = tree_paths(params)
print(len(paths), "leaves, e.g.", paths[:3], "...", paths[-2:])

# %% [markdown]
# ## Four recipes as rule lists
#
# * **He everywhere** — `[("*kernel", he_normal()), ("*bias", zeros())]`: He preserves the
#   second moment through each branch, so each branch adds about twice the variance of its
#   input (its ReLU input is $x$, not a ReLU output) and the stream's variance grows
#   geometrically, about $\times 3$ per residual addition: $3^{2L}$ after $2L$ of them.
# * **GPT-2** (`gpt2_rules(L, std)`): kernels $\mathcal N(0, \sigma^2)$, the residual
#   projections `c_proj` $\mathcal N(0, \sigma^2/2L)$, biases 0. GPT-2 uses $\sigma = 0.02$
#   at width 768; here $\sigma = 1/\sqrt{64}$ (LeCun for width 64).
# * **Fixup** (`fixup_rules(2L, ["*c_fc/kernel", "*c_proj/kernel"], classifier="*head/*")`):
#   the last layer of each branch and the classifier are 0, the other branch layers He
#   scaled by $(2L)^{-1/(2m-2)}$ with $m = 2$ layers per branch, other kernels He.
# * **ReZero / SkipInit** (`rezero_rules("*alpha")` then He): the gates $\alpha_k = 0$.
#
# `match_rules(params, rules)` shows which rule each leaf gets, before anything is drawn:

# %%
he = [jinit.Rule("*kernel", jinit.he_normal()), jinit.Rule("*bias", jinit.zeros())]
RECIPES = {
    "he everywhere": he,
    "gpt2": gpt2_rules(N_LAYERS, stddev=WIDTH ** -0.5),
    "fixup": fixup_rules(2 * N_LAYERS, ["*c_fc/kernel", "*c_proj/kernel"], classifier="*head/*"),
    "rezero": rezero_rules("*alpha") + he,
}
rows = ["| leaf | " + " | ".join(RECIPES) + " |", "|---|" + "---|" * len(RECIPES)]
matched = {name: match_rules(params, rules) for name, rules in RECIPES.items()}
for path in [p for p in paths if "h_0_branch_0" in p or "h_" not in p]:
    cells = []
    for name, rules in RECIPES.items():
        i = matched[name][path]
        cells.append("kept" if i is None else f"`{rules[i].pattern}` → {getattr(rules[i].init, '__name__', 'init')}")
    rows.append(f"| `{path}` | " + " | ".join(cells) + " |")
display(Markdown("\n".join(rows) + "\n\n(the other blocks match like `h_0_branch_0`)"))

inits = {name: reinit(jax.random.key(1), params, rules) for name, rules in RECIPES.items()}

# %% [markdown]
# ## The residual stream at initialization
#
# The std of $x_k$ after each residual addition, on the whole digits set. He everywhere
# explodes (about $\sqrt 3$ per branch); GPT-2's $1/\sqrt{2L}$ keeps the growth bounded whatever
# the depth; Fixup and ReZero start every block as the identity, so the stream is flat.

# %%
apply = jax.jit(model.apply)
fig, ax = plt.subplots(figsize=(7.5, 3.6))
for name, p in inits.items():
    _, stream = apply(p, X)
    ax.plot([float(s.std()) for s in stream], "o-", ms=3, lw=2, label=name)
ax.set_yscale("log"); ax.set_xlabel("residual additions (0 = after the embedding)")
ax.set_ylabel("std of the residual stream"); ax.legend(); ax.set_title(f"{2 * N_LAYERS} residual branches at init")
plt.show()

# %% [markdown]
# ## Training
#
# The four inits train the same network (Adam, lr 1e-3, 200 steps of batch 64). Their
# parameter trees have the same structure, so they are stacked and trained together under
# `jax.vmap`: one compilation.

# %%
import optax

opt = optax.adam(1e-3)

def loss_fn(p, xb, yb):
    return optax.softmax_cross_entropy_with_integer_labels(model.apply(p, xb)[0], yb).mean()

def train(p, key, steps=200, batch=64, loss=loss_fn):
    def step(carry, k):
        p, s = carry
        idx = jax.random.randint(k, (batch,), 0, X.shape[0])
        loss_value, g = jax.value_and_grad(loss)(p, X[idx], y[idx])
        u, s = opt.update(g, s, p)
        return (optax.apply_updates(p, u), s), loss_value
    (p, _), losses = jax.lax.scan(step, (p, opt.init(p)), jax.random.split(key, steps))
    return p, losses

names = list(inits)
stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *inits.values())
trained, losses = jax.jit(jax.vmap(train, in_axes=(0, None)))(stacked, jax.random.key(2))
losses = np.asarray(losses)

fig, ax = plt.subplots(figsize=(7.5, 3.6))
smooth = lambda v: np.convolve(v, np.ones(10) / 10, mode="valid")
for i, name in enumerate(names):
    ax.plot(smooth(losses[i]), lw=2, label=f"{name}: final {np.mean(losses[i, -20:]):.3g}")
ax.set_yscale("log"); ax.set_xlabel("step"); ax.set_ylabel("minibatch loss (10-step mean)")
ax.legend(); ax.set_title("residual MLP on digits")
plt.show()

# %% [markdown]
# **Reading it.** He everywhere starts with a residual stream of std $\sim 10^4$ and logits
# to match: the loss starts huge and training crawls. GPT-2's depth scaling, Fixup and ReZero
# all start near the identity map and train fast — without any normalization layer.
#
# ## LSUV: layer-sequential unit variance
#
# LSUV (Mishkin & Matas 2016) needs a batch: start from orthonormal kernels, then for each
# layer in forward order rescale its kernel until the layer's output has unit variance on
# the batch,
#
# $$W_\ell \leftarrow W_\ell / \sqrt{\mathrm{Var}(x_{\ell-1} W_\ell + b_\ell)}\quad\text{until}\quad
#   |\mathrm{Var} - 1| < \text{tol}\ (0.1)\ \text{or } 10 \text{ rescalings}.$$
#
# `jinit.data_dependent.lsuv(key, model, params, batch)` finds the `nn.Dense`/`nn.Conv`
# layers by intercepting their calls (so it works inside `nn.scan` and nested modules too)
# and returns `(params, report)`. Here: a plain 20-layer ReLU MLP of width 64 (no
# residuals), compared with its orthogonal pre-init (gain 1: the signal halves its second
# moment at every ReLU) and with He.

# %%
from jinit.data_dependent import lsuv
from jinit.diagnostics import signal_propagation
from jinit.structured import orthogonal

class DeepMLP(nn.Module):
    depth: int = 20
    width: int = WIDTH

    @nn.compact
    def __call__(self, x):
        for _ in range(self.depth):
            x = jax.nn.relu(nn.Dense(self.width, kernel_init=PLACEHOLDER)(x))
        return nn.Dense(10, kernel_init=PLACEHOLDER)(x)

deep = DeepMLP()
batch = X[:256]
base = deep.init(jax.random.key(3), batch)
variants = {
    "orthogonal (gain 1)": reinit(jax.random.key(4), base, [("*kernel", orthogonal())]),
    "he_normal": reinit(jax.random.key(4), base, [("*kernel", jinit.he_normal())]),
}
variants["LSUV"], report = lsuv(jax.random.key(4), deep, base, batch, tol=0.1, max_iter=10)
print(f"LSUV: {len(report)} layers, {sum(r.iterations for r in report)} rescalings in all, "
      f"all converged: {all(r.converged for r in report)}")
for r in report[:3] + report[-2:]:
    print(f"  {r.path:28s} var before {r.var_before:8.4f} -> after {r.var_after:.4f} ({r.iterations} rescalings)")

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 3.8))
for name, p in variants.items():
    rep = signal_propagation(deep.apply, p, batch)
    axes[0].plot(np.arange(1, len(rep.layers) + 1), rep.act_std, "o-", ms=3, lw=2,
                 label=f"{name}: {rep.verdict}")
axes[0].set_yscale("log"); axes[0].set_xlabel("layer"); axes[0].set_ylabel("std of the layer's output")
axes[0].set_title("at init (jinit.diagnostics.signal_propagation)"); axes[0].legend(fontsize=8)

names = list(variants)
stacked = jax.tree.map(lambda *leaves: jnp.stack(leaves), *variants.values())
deep_loss = lambda p, xb, yb: optax.softmax_cross_entropy_with_integer_labels(deep.apply(p, xb), yb).mean()

train_deep = lambda p, key: train(p, key, loss=deep_loss)[1]  # the training loop defined above

deep_losses = np.asarray(jax.jit(jax.vmap(train_deep, in_axes=(0, None)))(stacked, jax.random.key(5)))
for i, name in enumerate(names):
    axes[1].plot(smooth(deep_losses[i]), lw=2, label=f"{name}: final {np.mean(deep_losses[i, -20:]):.3g}")
axes[1].set_yscale("log"); axes[1].set_xlabel("step"); axes[1].set_ylabel("minibatch loss (10-step mean)")
axes[1].set_title("20-layer ReLU MLP, Adam"); axes[1].legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# LSUV lands every layer's output at unit variance by construction (left: flat at 1), from a
# pre-init that on its own vanishes; He gets there analytically for ReLU. LSUV's value is
# that it needs no derivation: it works for any activation and layer type, at the cost of a
# few forward passes on real data. For architectures where a recipe exists (GPT-2-style
# scaling, Fixup, ReZero, He), the tree rules above give the same effect without data.
