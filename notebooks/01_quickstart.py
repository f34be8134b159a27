# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 01 · Quickstart: jinit in Flax, every scheme at a glance
#
# An initializer in JAX is a function `init(key, shape, dtype) -> Array`. jinit builds them
# with factories (`jinit.he_normal()`, `jinit.glorot_uniform(gain=...)`, ...), so they drop
# into any Flax layer as `kernel_init=` / `bias_init=`. This notebook shows
#
# 1. jinit in **flax.linen** and **flax.nnx**, and the named schemes of the registry;
# 2. a histogram of **every registered scheme** next to its formula;
# 3. the difference between a **truncated** and a **plain** normal of the *same variance*.

# %%
import jax
import jax.numpy as jnp
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

import jinit

plt.rcParams.update({"figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3})
print("jax", jax.__version__, "| backend:", jax.default_backend(), "| jinit", jinit.__version__)

# %% [markdown]
# ## 1. As `kernel_init` in flax.linen
#
# A dense kernel in Flax has shape `(in, out)`, so `fan_in = in`. He init draws
# $W \sim \mathcal N(0, 2/\text{fan\_in})$: below, $\mathrm{Var}(W)\cdot\text{fan\_in} \approx 2$.
# A convolution kernel is `(*spatial, in, out)` (HWIO) and its fan includes the receptive
# field: `fan_in = 3·3·in` for a 3×3 kernel.

# %%
import flax.linen as nn

dense = nn.Dense(256, kernel_init=jinit.he_normal(), bias_init=jinit.zeros())
params = dense.init(jax.random.key(0), jnp.ones((1, 512)))["params"]
w = params["kernel"]
print("dense kernel", w.shape, " Var(W)*fan_in =", round(float(w.var() * 512), 3))

conv = nn.Conv(64, (3, 3), kernel_init=jinit.he_normal())
k = conv.init(jax.random.key(1), jnp.ones((1, 8, 8, 32)))["params"]["kernel"]
fan_in, fan_out = jinit.compute_fans(k.shape)
print("conv kernel ", k.shape, " fans", (fan_in, fan_out), " Var(W)*fan_in =", round(float(k.var() * fan_in), 3))

# %% [markdown]
# ### Choosing by name: the scheme registry
#
# `jinit.SCHEMES` names every scheme; the benchmark, the docs, these notebooks and the tests
# all read it. `get_scheme(name).kernel_init(activation)` returns the initializer for a layer
# followed by `activation` (gain- and criticality-based schemes depend on it; most ignore it).
# A model parameterised by a scheme name:

# %%
from collections.abc import Callable

class MLP(nn.Module):
    kernel_init: Callable
    width: int = 64
    depth: int = 10

    @nn.compact
    def __call__(self, x):
        for _ in range(self.depth):
            x = jax.nn.relu(nn.Dense(self.width, kernel_init=self.kernel_init,
                                     bias_init=jinit.zeros())(x))
        return x

x = jax.random.normal(jax.random.key(2), (256, 64))
for name in ("lecun_normal", "glorot_uniform", "he_normal", "gain_normal"):
    # Build the initializer once, outside jit (gain_normal computes its gain here).
    model = MLP(kernel_init=jinit.get_scheme(name).kernel_init("relu"))
    p = jax.jit(model.init)(jax.random.key(3), x)  # one compilation for the whole model
    print(f"{name:15s} 10 ReLU layers: E[x^2] of the output = {float(jnp.mean(model.apply(p, x) ** 2)):.3f}")

# %% [markdown]
# With unit-variance inputs, He (and `gain_normal`, which equals He for ReLU) keeps
# $\mathbb E[x^2]$ at the input's scale after 10 ReLU layers, while LeCun and Glorot (the same for a square layer) halve it
# every layer (ReLU zeroes half of each pre-activation's second moment), to about $2^{-10}$.

# %% [markdown]
# ## 1b. The same in flax.nnx
#
# `nnx.Linear` and `nnx.Conv` take the same initializers; the random key comes from
# `nnx.Rngs`.

# %%
from flax import nnx

class NnxMLP(nnx.Module):
    def __init__(self, din, dhidden, dout, *, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(din, dhidden, kernel_init=jinit.he_uniform(),
                                 bias_init=jinit.zeros(), rngs=rngs)
        self.out = nnx.Linear(dhidden, dout, kernel_init=jinit.glorot_normal(), rngs=rngs)

    def __call__(self, x):
        return self.out(jax.nn.relu(self.hidden(x)))

m = NnxMLP(64, 128, 10, rngs=nnx.Rngs(0))
bound = (6 / 64) ** 0.5
print("hidden kernel", m.hidden.kernel.shape,
      "max |W| =", round(float(abs(m.hidden.kernel[...]).max()), 4), "<= sqrt(6/fan_in) =", round(bound, 4))
print("output", m(x).shape)

# %% [markdown]
# ## 2. Every scheme next to its formula
#
# Below, each registered scheme (`jinit.SCHEMES`, in registration order) samples a
# `(fan_in, fan_out) = (512, 128)` kernel for a ReLU layer; the histogram shows the
# weights (in units of $1/\sqrt{\text{fan\_in}}$, so LeCun's $\mathcal N(0, 1/\text{fan\_in})$
# has unit spread), titled with the formula from the registry and the measured mean and
# variance. Things to notice:
#
# * `zeros` is a single spike: every unit is identical (the symmetry problem);
# * `normal`, `uniform_large` are far wider than $1/\sqrt{\text{fan\_in}}$ and
#   `uniform_small` far narrower: they ignore the layer width;
# * `normal_nonzero_mean` is shifted off zero;
# * Glorot uses $\mathrm{Var} = 2/(\text{fan\_in}+\text{fan\_out})$ = 1/320 here, He
#   $2/\text{fan\_in}$ = 1/256, LeCun $1/\text{fan\_in}$ = 1/512;
# * structured schemes (orthogonal, identity, sparse, ZerO, ...), when registered, are not
#   i.i.d.: look at their spikes and gaps.
#
# The full table:

# %%
display(Markdown(jinit.registry.markdown_table()))

# %%
import textwrap

SHAPE = (512, 128)
names = jinit.scheme_names()
cols = 4
rows = -(-len(names) // cols)
fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 2.9 * rows))
for ax, name in zip(axes.flat, names):
    scheme = jinit.get_scheme(name)
    shape = SHAPE
    try:
        w = scheme.kernel_init("relu")(jax.random.key(0), shape)
    except Exception:  # e.g. a scheme that needs a conv kernel
        shape = (3, 3, 64, 64)
        w = scheme.kernel_init("relu")(jax.random.key(0), shape)
    fan_in, _ = jinit.compute_fans(shape)
    v = np.asarray(w, np.float64).ravel() * np.sqrt(fan_in)
    if np.ptp(v) == 0:
        ax.axvline(v[0], lw=4, color="C3")
        ax.set_xlim(v[0] - 1, v[0] + 1)
    else:
        ax.hist(v, bins=80, density=True, color="C0", log=np.mean(v == 0) > 0.3)
    title = f"{name}  {shape}\n" + "\n".join(textwrap.wrap(scheme.formula, 44))
    ax.set_title(title, fontsize=8)
    ax.text(0.02, 0.97, f"mean {w.mean():.2g}\nVar·fan_in {w.var() * fan_in:.3g}",
            transform=ax.transAxes, va="top", fontsize=7,
            bbox=dict(fc="white", alpha=0.7, lw=0))
    ax.tick_params(labelsize=7)
for ax in axes.flat[len(names):]:
    ax.axis("off")
fig.supxlabel("w · sqrt(fan_in)")
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 3. Truncated vs plain normal at equal variance
#
# `jinit.lecun_normal()` is a **plain** Gaussian, $\mathcal N(0, 1/n)$, as in the papers and
# `torch.nn.init`. `jax.nn.initializers.lecun_normal()` (and Flax's default kernel init, and
# Keras' `LecunNormal`) sample a normal **truncated at ±2σ** whose parent σ is divided by the
# std of the truncated standard normal,
#
# $$\sigma_t^2 = 1 + \frac{a\varphi(a) - b\varphi(b)}{Z} - \Big(\frac{\varphi(a)-\varphi(b)}{Z}\Big)^2,
# \quad Z = \Phi(b)-\Phi(a),\qquad \sigma_t(-2, 2) = 0.8796\ldots$$
#
# so that the variance is the same, $1/n$. `jinit.variance_scaling(1, "fan_in", "truncated_normal")`
# reproduces JAX's. Forgetting the correction — `jinit.truncated_normal(stddev=1/√n)` — gives a
# variance 0.77× too small, which compounds over depth ($0.77^{L}$ for $L$ layers).

# %%
n = 256
key = jax.random.key(4)
shape = (n, 4096)  # 1M weights, fan_in = n
inits = {
    "plain normal  jinit.lecun_normal()": jinit.lecun_normal(),
    "truncated, corrected  variance_scaling(1, fan_in, truncated_normal)":
        jinit.variance_scaling(1.0, "fan_in", "truncated_normal"),
    "truncated, uncorrected  truncated_normal(stddev=1/sqrt(n))": jinit.truncated_normal(stddev=n ** -0.5),
    "uniform  jinit.lecun_uniform()": jinit.lecun_uniform(),
}
samples = {label: np.asarray(init(key, shape)).ravel() * np.sqrt(n) for label, init in inits.items()}

jax_w = np.asarray(jax.nn.initializers.lecun_normal()(key, shape)).ravel() * np.sqrt(n)
print("jax.nn.initializers.lecun_normal == jinit truncated (corrected):",
      np.allclose(jax_w, samples[list(inits)[1]], rtol=1e-5, atol=1e-6))

rows = ["| init | Var·n | excess kurtosis | max \\|w\\|·√n | P(\\|w\\|·√n > 2) |", "|---|---|---|---|---|"]
for label, v in samples.items():
    var = v.var()
    kurt = np.mean((v - v.mean()) ** 4) / var**2 - 3
    rows.append(f"| {label} | {var:.3f} | {kurt:+.2f} | {np.abs(v).max():.2f} | {np.mean(np.abs(v) > 2):.4f} |")
display(Markdown("\n".join(rows)))

fig, ax = plt.subplots(figsize=(9, 4))
bins = np.linspace(-5, 5, 201)
for label, v in samples.items():
    ax.hist(v, bins=bins, density=True, histtype="step", lw=1.5, label=label.split("  ")[0])
z = np.linspace(-5, 5, 400)
ax.plot(z, np.exp(-z**2 / 2) / np.sqrt(2 * np.pi), "k:", lw=1, label="N(0, 1) density")
ax.set_yscale("log"); ax.set_ylim(1e-5, 1)
ax.set_xlabel("w · sqrt(fan_in)"); ax.set_ylabel("density (log)")
ax.set_title("Same variance 1/n: the truncated normal has no tails beyond ±2σ/0.88 = ±2.27")
ax.legend(fontsize=8, loc="lower center")
plt.show()

# %% [markdown]
# **Reading the table.** The plain and the corrected truncated normal have the same
# variance (1.000) but different shapes: the truncated one has *negative* excess kurtosis
# (lighter tails, like the uniform at −1.2) and a hard maximum at $2/0.8796 = 2.27$. The
# uncorrected truncation silently loses 23 % of the variance. For training deep nets the
# variance is what matters to first order (see notebook 02); the tails matter for
# outlier-sensitive settings (large widths, low-precision training).
