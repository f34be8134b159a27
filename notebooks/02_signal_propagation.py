# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Signal propagation through a 50-layer MLP
#
# Why does the initializer matter? Push a batch through a deep, plain MLP (no normalization,
# no residuals) and watch, layer by layer, the **activations** going forward and the
# **gradients** coming back. For a layer $h_\ell = x_{\ell-1} W_\ell$, $x_\ell = \phi(h_\ell)$,
# with i.i.d. zero-mean weights of variance $\sigma^2$ and width $n$,
#
# $$\mathrm{Var}(h_\ell) = n\sigma^2\,\mathbb E[\phi(h_{\ell-1})^2],\qquad
#   \mathrm{Var}\Big(\frac{\partial L}{\partial h_{\ell-1}}\Big) = n\sigma^2\,
#   \mathbb E[\phi'(h_{\ell-1})^2]\,\mathrm{Var}\Big(\frac{\partial L}{\partial h_\ell}\Big).$$
#
# For ReLU $\mathbb E[\phi(h)^2] = \mathrm{Var}(h)/2$, so the forward factor per layer is
# $n\sigma^2/2$: He ($\sigma^2 = 2/n$) keeps it at 1, Glorot/LeCun ($1/n$ for a square layer)
# halve it every layer ($2^{-50} \approx 10^{-15}$ after 50 layers), and $\mathcal N(0,1)$
# multiplies it by $n/2 = 32$ (overflow). For tanh, $\mathcal N(0,1)$ pushes the
# pre-activations to $\pm 8$: the units **saturate** at ±1.
#
# The five schemes come from the registry (`jinit.get_scheme(name).kernel_init(activation)`;
# `orthogonal` gets the gain $\sqrt 2$ for ReLU and `gain_for(tanh)` for tanh from there).

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
from functools import partial

DEPTH, WIDTH, BATCH = 50, 64, 256
NAMES = [n for n in ("zeros", "normal", "glorot_normal", "he_normal", "orthogonal") if n in jinit.SCHEMES]
ACTIVATIONS = ("relu", "tanh")

def kernels(name, activation, key):
    init = jinit.get_scheme(name).kernel_init(activation)  # built once: compiled once
    return jnp.stack([init(k, (WIDTH, WIDTH)) for k in jax.random.split(key, DEPTH)])

@partial(jax.jit, static_argnames="activation")
def propagate(Ws, x, v, activation):
    """Per-layer pre-activations h, activations x and gradients dL/dh, dL/dW
    for the loss L = <h_L, v> (a fixed random readout of the last layer)."""
    phi = jinit.get_activation(activation)

    def loss(Ws, probes):
        def layer(x, inputs):
            W, probe = inputs
            h = x @ W + probe  # the zero probe's gradient is dL/dh
            return phi(h), (h, phi(h))
        _, (hs, xs) = jax.lax.scan(layer, x, (Ws, probes))
        return jnp.sum(hs[-1] * v), (hs, xs)

    probes = jnp.zeros((DEPTH,) + x.shape)
    (gW, gh), (hs, xs) = jax.grad(loss, argnums=(0, 1), has_aux=True)(Ws, probes)
    return hs, xs, gh, gW

kx, kv, kw = jax.random.split(jax.random.key(0), 3)
x0 = jax.random.normal(kx, (BATCH, WIDTH))
v = jax.random.normal(kv, (BATCH, WIDTH))
runs = {}
for activation in ACTIVATIONS:
    for name in NAMES:
        hs, xs, gh, gW = (np.asarray(a, np.float64)  # float64: no overflow in the statistics
                          for a in propagate(kernels(name, activation, kw), x0, v, activation))
        runs[name, activation] = {
            "act_std": xs.std(axis=(1, 2)),
            "grad_h_std": gh.std(axis=(1, 2)),
            "grad_W_rms": np.sqrt(np.mean(gW ** 2, axis=(1, 2))),
            "saturated": np.mean(np.abs(xs) > 0.99, axis=(1, 2)),
            "xs": xs[[0, 4, 24, 49]],
        }
print("ran", len(runs), "configurations")

# %% [markdown]
# ## Activations forward, gradients backward
#
# Top: the standard deviation of the activations $x_\ell$ at each layer. Middle: the std of
# the backpropagated gradient $\partial L/\partial h_\ell$ (it starts at 1 at the top, layer
# 50, and travels down). Bottom: the RMS of the weight gradient
# $\partial L/\partial W_\ell = x_{\ell-1}^\top\,\partial L/\partial h_\ell$, what the
# optimizer sees. Log scale; `zeros` is exactly 0 everywhere and cannot appear on it, and
# values that overflowed float32 (inf) are cut off.

# %%
layers = np.arange(1, DEPTH + 1)
ROWS = (("act_std", "std of activations x"), ("grad_h_std", "std of dL/dh"), ("grad_W_rms", "RMS of dL/dW"))
fig, axes = plt.subplots(3, 2, figsize=(12, 10), sharex=True)
for j, activation in enumerate(ACTIVATIONS):
    for i, (key, label) in enumerate(ROWS):
        ax = axes[i, j]
        for c, name in enumerate(NAMES):
            y = runs[name, activation][key]
            if np.all(y == 0):
                continue  # zeros: nothing to draw on a log scale
            ax.plot(layers, np.where(np.isfinite(y) & (y > 0), y, np.nan), label=name, lw=2, color=f"C{c}")
        ax.set_yscale("log")
        ax.set_title(f"{activation}: {label}")
for ax in axes[-1]:
    ax.set_xlabel("layer")
axes[0, 0].legend(fontsize=9, title="(zeros: exactly 0)", title_fontsize=8)
fig.tight_layout()
plt.show()

for activation in ACTIVATIONS:
    print(activation)
    for name in NAMES:
        r = runs[name, activation]
        print(f"  {name:14s} std x: layer 1 {r['act_std'][0]:8.2g}, layer 50 {r['act_std'][-1]:8.2g} | "
              f"std dL/dh: layer 1 {r['grad_h_std'][0]:8.2g} | RMS dL/dW: layer 1 {r['grad_W_rms'][0]:8.2g}, "
              f"layer 50 {r['grad_W_rms'][-1]:8.2g}")

# %% [markdown]
# What the curves show:
#
# * **Vanishing** (Glorot with ReLU): the activations shrink by $\sqrt 2$ per layer (to
#   ~$10^{-9}$ at layer 50) and the backpropagated gradient shrinks the same way on its way
#   down; the weight gradient, the product of the two, is uniformly tiny (~$10^{-7}$) at
#   every layer: the whole network barely moves. With tanh, Glorot slowly drifts into tanh's
#   linear regime and the gradient vanishes mildly toward the input.
# * **Exploding** ($\mathcal N(0,1)$ with ReLU): a factor $\sqrt{n/2} = \sqrt{32}$ per
#   layer, ~$10^{37}$ at layer 50, at the edge of float32 (the gaps in the bottom-left panel
#   are overflows to inf).
# * **Preserved**: with ReLU, He and `orthogonal` (gain $\sqrt 2$) keep all three curves
#   flat (He up to the random drift of a finite width-64 product of 50 layers). With tanh,
#   both keep the *activations* flat, but at these scales ($\sigma_w^2 = 2$, and
#   `gain_for(tanh)`$^2 \approx 2.5$ for orthogonal) tanh is in its chaotic phase: the
#   gradients grow toward the input, by one to two orders of magnitude over 50 layers.
#   Notebook 04 finds tanh's critical point: $\sigma_w = 1$ at $\sigma_b = 0$.
# * **Symmetry** (zeros): every activation and every weight gradient is exactly 0 (no curve
#   at all): nothing can ever learn. Below: a *non-zero* constant is no better.
# * **Saturation** ($\mathcal N(0,1)$ with tanh): the activations' std stays near 1 — not
#   because the signal is healthy but because most units sit at ±1 — while the gradient
#   explodes on its way down (the *chaotic* phase of notebook 04):

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.6))
for name in NAMES:
    axes[0].plot(layers, runs[name, "tanh"]["saturated"], label=name, lw=2)
axes[0].set_title("tanh: fraction of units with |tanh(h)| > 0.99")
axes[0].set_xlabel("layer"); axes[0].set_ylim(-0.02, 1.02); axes[0].legend(fontsize=8)

bins = np.linspace(-1, 1, 61)
for name, ls in (("normal", "-"), ("glorot_normal", "--")):
    for k, (layer, color) in enumerate(zip((1, 5, 25, 50), ("C0", "C1", "C2", "C3"))):
        axes[1].hist(runs[name, "tanh"]["xs"][k].ravel(), bins=bins, density=True, histtype="step",
                     ls=ls, color=color, lw=1.5, label=f"{name}, layer {layer}")
axes[1].set_yscale("log"); axes[1].set_xlabel("tanh activation")
axes[1].set_title("tanh activations at layers 1, 5, 25, 50")
axes[1].legend(fontsize=7, ncol=2)
fig.tight_layout()
plt.show()

# %% [markdown]
# With $\mathcal N(0,1)$ the activations pile up at ±1 from the first layer on (solid): the
# derivative $\tanh'(h) = 1 - \tanh^2(h)$ is ~0 there, so gradient signal only passes through
# the few unsaturated units (and is then multiplied by the huge weights: the gradient curve
# above is erratic). With Glorot (dashed) the distribution narrows slowly with depth toward 0,
# the linear regime of tanh.

# %% [markdown]
# ## The same check for your own Flax model: `jinit.diagnostics`
#
# `signal_propagation(model.apply, params, batch)` runs one forward and backward pass and
# reports, for every layer that owns a kernel (also inside `nn.scan`), the std of its output
# and the norm of its kernel's gradient, with a verdict: *vanishing*, *exploding* or
# *healthy* (a factor of more than 10 between the first and the last layer).
# `plot_signal_propagation(report)` draws it. Here on a 50-layer ReLU MLP written with
# `nn.scan`, one report per scheme:

# %%
from collections.abc import Callable

import flax.linen as nn
from jinit.diagnostics import plot_signal_propagation, signal_propagation

class Layer(nn.Module):
    kernel_init: Callable

    @nn.compact
    def __call__(self, h, _):
        return jax.nn.relu(nn.Dense(WIDTH, use_bias=False, kernel_init=self.kernel_init)(h)), None

class ScanMLP(nn.Module):
    kernel_init: Callable

    @nn.compact
    def __call__(self, x):
        stack = nn.scan(Layer, variable_axes={"params": 0}, split_rngs={"params": True}, length=DEPTH)
        return stack(self.kernel_init, name="hidden")(x, None)[0]

reports = {}
for name in NAMES:
    model = ScanMLP(jinit.get_scheme(name).kernel_init("relu"))
    reports[name] = signal_propagation(model.apply, model.init(jax.random.key(0), x0), x0)
rows = ["| scheme | verdict | output std last/first | kernel-grad norm first/last |", "|---|---|---|---|"]
rows += [f"| `{n}` | **{r.verdict}** | {r.act_ratio:.3g} | {r.grad_ratio:.3g} |" for n, r in reports.items()]
display(Markdown("\n".join(rows)))
fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
for ax, name in zip(axes, ("glorot_normal", "he_normal")):
    plot_signal_propagation(reports[name], ax=ax)
    ax.set_title(f"{name}: " + ax.get_title(), fontsize=9)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Symmetry: constant kernels never break it
#
# Train a 4-layer tanh MLP (width 32) for 300 steps of gradient descent on a toy regression
# task, starting from zeros, from a *non-zero* constant (`jinit.constant(0.03)`), and from
# He/Glorot. Count the **distinct hidden units** — the numerical rank of each layer's
# activations over a batch. A constant init makes all units of a layer compute the same
# function, they receive the same gradient, and they stay identical forever: rank 1. With
# zeros the tanh net's hidden activations are exactly zero and so are all kernel gradients:
# rank 0.

# %%
import optax

SIZES = (8, 32, 32, 32, 1)
kd = jax.random.split(jax.random.key(1), 2)
X = jax.random.normal(kd[0], (256, SIZES[0]))
y = jnp.sin(X @ jax.random.normal(kd[1], (SIZES[0], 1)))

def init_params(init, key):
    keys = jax.random.split(key, len(SIZES) - 1)
    return [(init(k, (a, b)), jnp.zeros(b)) for k, a, b in zip(keys, SIZES[:-1], SIZES[1:])]

def hidden(params, x):
    out = []
    for W, b in params[:-1]:
        x = jnp.tanh(x @ W + b)
        out.append(x)
    return out, x @ params[-1][0] + params[-1][1]

opt = optax.sgd(0.05)

@jax.jit
def train(params):
    def step(carry, _):
        params, state = carry
        loss, g = jax.value_and_grad(lambda p: jnp.mean((hidden(p, X)[1] - y) ** 2))(params)
        updates, state = opt.update(g, state)
        return (optax.apply_updates(params, updates), state), loss
    (params, _), losses = jax.lax.scan(step, (params, opt.init(params)), None, length=300)
    return params, losses

inits = {"zeros": jinit.zeros(), "constant(0.03)": jinit.constant(0.03),
         "glorot_normal": jinit.glorot_normal(), "he_normal": jinit.he_normal()}
fig, ax = plt.subplots(figsize=(7, 3.4))
for name, init in inits.items():
    params, losses = train(init_params(init, jax.random.key(2)))
    hs, _ = hidden(params, X)
    ranks = [int(jnp.linalg.matrix_rank(h)) for h in hs]
    print(f"{name:14s} final loss {float(losses[-1]):.4f}   distinct units per hidden layer (rank): {ranks}")
    ax.plot(losses, label=name, lw=2)
ax.set_yscale("log"); ax.set_xlabel("step"); ax.set_ylabel("MSE"); ax.legend()
ax.set_title("Training a 4-layer tanh MLP: constant inits stay stuck in a rank-1 subspace")
plt.show()

# %% [markdown]
# The constant-initialised network trains only as well as a network with **one** unit per
# layer; zeros do not train at all except for the output bias. Random inits break the
# symmetry: every unit starts different and the rank is full (32).
#
# **Takeaway.** Scale the variance with the fan (He for ReLU, Glorot/LeCun or `gain_normal`
# for tanh, or orthogonal with the activation's gain) and never use a constant kernel.
# Notebook 04 makes "flat curves" precise: the order-to-chaos transition at $\chi_1 = 1$.
