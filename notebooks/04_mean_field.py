# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Mean-field theory: order, chaos and the depth a network can train at
#
# For a wide fully connected layer $h^{\ell+1} = W^{\ell+1}\phi(h^\ell) + b^{\ell+1}$ with
# $W_{ij} \sim \mathcal N(0, \sigma_w^2/n)$ and $b_i \sim \mathcal N(0, \sigma_b^2)$, the
# pre-activation variance $q$ of one input and the correlation $c$ of two inputs evolve by
# deterministic maps (Poole et al. 2016; Schoenholz et al. 2017):
#
# $$q^{\ell+1} = \sigma_w^2\,\mathbb E_z\big[\phi(\sqrt{q^\ell}z)^2\big] + \sigma_b^2,\qquad
#   c^{\ell+1} = \frac{\sigma_w^2\,\mathbb E[\phi(u_1)\phi(u_2)] + \sigma_b^2}{q^*}.$$
#
# At the variance fixed point $q^*$,
#
# $$\chi_1 = \sigma_w^2\,\mathbb E\big[\phi'(\sqrt{q^*}z)^2\big]$$
#
# is the slope of the correlation map at $c = 1$ and the mean squared singular value of a
# layer's Jacobian. $\chi_1 < 1$: the **ordered** phase (all inputs become alike, gradients
# vanish); $\chi_1 > 1$: the **chaotic** phase (nearby inputs decorrelate, gradients explode);
# $\chi_1 = 1$: the **critical line** (edge of chaos). Correlations relax to their fixed point
# $c^*$ over
#
# $$\xi_c = -1/\ln\chi_c,\qquad \chi_c = \sigma_w^2\,\mathbb E[\phi'(u_1)\phi'(u_2)]\big|_{c^*},$$
#
# layers, and Schoenholz et al. found that random networks train only when their depth
# $L \lesssim 6\,\xi_c$. Everything here is computed by `jinit.meanfield` (Gauss-Legendre
# quadrature in float64).

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
import jinit.meanfield as mf

PHI, SIGMA_B = "tanh", 0.05
sw_crit = mf.critical_sigma_w(PHI, SIGMA_B)
print(f"tanh, sigma_b = {SIGMA_B}: critical sigma_w = {sw_crit:.4f}")
for sw in (0.8, sw_crit, 2.0):
    r = mf.analyze(sw, SIGMA_B, PHI)
    print(f"  sigma_w = {sw:.3f}: {r.phase:8s} q* = {r.q_star:.3f}  chi_1 = {r.chi1:.3f}  "
          f"c* = {r.c_star:.3f}  xi_c = {r.xi_c:.3g}  6 xi_c = {r.max_trainable_depth:.3g}")

# %% [markdown]
# ## The χ₁ phase diagram for tanh
#
# `mf.phase_diagram(phi, sigma_w_grid, sigma_b_grid)` evaluates $\chi_1$ over a grid (colour,
# log scale: blue ordered, red chaotic). The black contour $\chi_1 = 1$ is the critical line;
# the dashed curve is the same line computed directly from its parameterisation by $q^*$
# (`mf.critical_line`: $\sigma_w^2 = 1/\mathbb E[\phi'(\sqrt{q^*}z)^2]$,
# $\sigma_b^2 = q^* - \sigma_w^2\,\mathbb E[\phi(\sqrt{q^*}z)^2]$). At $\sigma_b = 0$ the
# critical point of tanh is $\sigma_w = 1$ (LeCun init); the popular gain 5/3 is chaotic.

# %%
from matplotlib.colors import TwoSlopeNorm

sw_grid = np.linspace(0.5, 4.0, 36)
sb_grid = np.linspace(0.0, 1.0, 21)
chi = mf.phase_diagram(PHI, sw_grid, sb_grid)
line = mf.critical_line(PHI, np.logspace(-4, 1, 60))

fig, ax = plt.subplots(figsize=(7.5, 4.5))
im = ax.pcolormesh(sw_grid, sb_grid, np.log(chi), cmap="coolwarm", norm=TwoSlopeNorm(0.0), shading="auto")
fig.colorbar(im, ax=ax, label="ln chi_1")
ax.contour(sw_grid, sb_grid, chi, levels=[1.0], colors="k", linewidths=2)
keep = line.sigma_b <= sb_grid[-1]
ax.plot(line.sigma_w[keep], line.sigma_b[keep], "w--", lw=1.5, label="critical_line (q* parameterisation)")
for sw, label in ((1.0, "LeCun / critical at b=0"), (5 / 3, "gain 5/3"), (jinit.gain_for(jnp.tanh), "gain_for(tanh)")):
    ax.plot(sw, 0.0, "o", ms=8, clip_on=False, label=f"{label}: sigma_w = {sw:.3f}")
ax.text(0.7, 0.8, "ordered\n(chi_1 < 1)", fontsize=11); ax.text(2.8, 0.3, "chaotic\n(chi_1 > 1)", fontsize=11)
ax.set_xlabel("sigma_w"); ax.set_ylabel("sigma_b"); ax.set_title("tanh: chi_1 over (sigma_w, sigma_b)")
ax.legend(fontsize=7, loc="upper right")
plt.show()

# %% [markdown]
# ## Depth scales
#
# $\xi_q$ (how fast the variance settles) stays short everywhere; $\xi_c$ (how fast two inputs
# forget how similar they were) diverges at the critical $\sigma_w$. Left: both as functions
# of $\sigma_w$ at $\sigma_b = 0.05$. Right: a check against a real random network (width
# 1024): the distance of the correlation of two inputs from its fixed point, $|c^\ell - c^*|$,
# decays like $\chi_c^{\ell} = e^{-\ell/\xi_c}$ (dashed: the mean-field slope) until it
# reaches the finite-width noise floor $\sim 1/\sqrt n$.

# %%
TRAIN_SW = [0.7, 1.0, round(sw_crit, 4), 1.5, 2.0, 3.0, 4.0]
curve_sw = sorted(set(TRAIN_SW) | {0.85, 1.07, 1.25, 2.5})
analyses = {sw: mf.analyze(sw, SIGMA_B, PHI) for sw in curve_sw}
xi_c = np.array([analyses[sw].xi_c for sw in curve_sw])
xi_q = np.array([analyses[sw].xi_q for sw in curve_sw])

# Simulation: two inputs with correlation 0.5 through one random tanh net of width 1024.
N, DEPTH_SIM = 1024, 25
unit = jinit.lecun_normal()  # N(0, 1/n); sigma_w * unit = variance_scaling(sigma_w**2, "fan_in", "normal")
bias = jinit.normal(stddev=SIGMA_B)
u = jax.random.normal(jax.random.key(0), (2, N))
x_in = jnp.stack([u[0], 0.5 * u[0] + np.sqrt(0.75) * u[1]])
sims = {}
for sw in (0.85, 1.5, 3.0):
    r = analyses[sw]
    h = x_in * np.sqrt(r.q_star)  # start at the variance fixed point
    cs = []
    for l, k in enumerate(jax.random.split(jax.random.key(1), DEPTH_SIM)):
        kw, kb = jax.random.split(k)
        h = jnp.tanh(h) @ (sw * unit(kw, (N, N))) + bias(kb, (N,))
        cs.append(float(h[0] @ h[1] / jnp.sqrt((h[0] @ h[0]) * (h[1] @ h[1]))))
    sims[sw] = np.abs(np.array(cs) - r.c_star)

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
ax = axes[0]
ax.semilogy(curve_sw, np.minimum(xi_c, 1e4), "o-", label="xi_c (correlations)")
ax.semilogy(curve_sw, np.minimum(xi_q, 1e4), "s-", label="xi_q (variance)")
ax.axvline(sw_crit, color="k", ls=":", label=f"critical sigma_w = {sw_crit:.3f}")
ax.set_xlabel("sigma_w"); ax.set_ylabel("layers"); ax.set_title(f"depth scales, tanh, sigma_b = {SIGMA_B}")
ax.legend(fontsize=8)
ax = axes[1]
layers = np.arange(1, DEPTH_SIM + 1)
for i, (sw, d) in enumerate(sims.items()):
    r = analyses[sw]
    ax.semilogy(layers, d, "o-", ms=3, color=f"C{i}", label=f"sigma_w = {sw} ({r.phase}), xi_c = {r.xi_c:.1f}")
    ax.semilogy(layers, d[0] * np.exp(-(layers - 1) / r.xi_c), "--", color=f"C{i}")
ax.axhline(1 / np.sqrt(N), color="gray", lw=1); ax.text(1, 1.15 / np.sqrt(N), "1/sqrt(width)", fontsize=8)
ax.set_ylim(1e-3, 1.5); ax.set_xlabel("layer"); ax.set_ylabel("|c - c*|")
ax.set_title("correlation of two inputs: simulation vs e^(-l/xi_c)")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## Does the network train where $L < 6\,\xi_c$?
#
# Short training runs on the bundled digits data (sklearn's 8×8 digits, 1797 images): a
# tanh MLP of width 32 and depth $L$ (input layer 64→32, then $L-1$ layers 32→32, a linear
# readout), weights $\sigma_w\cdot$`lecun_normal` $= \mathcal N(0, \sigma_w^2/n)$ and biases
# `normal(stddev=0.05)`, Adam for 200 steps of batch 64. All 28 (σ_w, depth) pairs train
# together under one `jax.vmap` (a net of depth $L$ uses the first $L$ layers of a 48-layer
# stack; the rest pass their input through), so there is a single compilation. Colour: training accuracy after the run
# (chance is 0.1). Lines: $\xi_c$ and $6\,\xi_c$ from the cell above.

# %%
import optax
from sklearn.datasets import load_digits

X, y = load_digits(return_X_y=True)
X = jnp.asarray((X - X.mean(0)) / (X.std(0) + 1e-6), jnp.float32)
y = jnp.asarray(y)
WIDTH, STEPS, BATCH, DEPTHS = 32, 200, 64, (6, 12, 24, 48)
MAX_DEPTH = max(DEPTHS)
opt = optax.adam(2e-3)

def init_params(key):
    # Unit-scale weights for the deepest net; a net of depth L uses its first L layers.
    k = jax.random.split(key, 4)
    W = jnp.stack([unit(kk, (WIDTH, WIDTH)) for kk in jax.random.split(k[0], MAX_DEPTH - 1)])
    return {"W0": unit(k[1], (X.shape[1], WIDTH)), "W": W,
            "b": jinit.normal()(k[2], (MAX_DEPTH, WIDTH)), "R": unit(k[3], (WIDTH, 10))}

def forward(p, sw, depth, x):
    def layer(h, inputs):
        w, b, index = inputs  # layers past `depth` pass h through unchanged
        return jnp.where(index < depth, jnp.tanh(h) @ (sw * w) + SIGMA_B * b, h), None
    h0 = x @ (sw * p["W0"]) + SIGMA_B * p["b"][0]
    h, _ = jax.lax.scan(layer, h0, (p["W"], p["b"][1:], jnp.arange(1, MAX_DEPTH)))
    return jnp.tanh(h) @ p["R"]

def train(p, sw, depth, key):
    loss = lambda p, xb, yb: optax.softmax_cross_entropy_with_integer_labels(forward(p, sw, depth, xb), yb).mean()
    def step(carry, k):
        p, s = carry
        idx = jax.random.randint(k, (BATCH,), 0, X.shape[0])
        u, s = opt.update(jax.grad(loss)(p, X[idx], y[idx]), s, p)
        return (optax.apply_updates(p, u), s), None
    (p, _), _ = jax.lax.scan(step, (p, opt.init(p)), jax.random.split(key, STEPS))
    return jnp.mean(jnp.argmax(forward(p, sw, depth, X), -1) == y)

# Every (sigma_w, depth) pair trains at once: one vmap, one compilation.
SW, D = np.meshgrid(TRAIN_SW, DEPTHS)
train_all = jax.jit(jax.vmap(train, in_axes=(None, 0, 0, None)))
acc = np.asarray(train_all(init_params(jax.random.key(0)), jnp.asarray(SW.ravel(), jnp.float32),
                           jnp.asarray(D.ravel()), jax.random.key(1))).reshape(SW.shape)
for d, row in zip(DEPTHS, acc):
    print(f"depth {d:3d}: " + "  ".join(f"{sw:.2f}:{a:.2f}" for sw, a in zip(TRAIN_SW, row)))

# %%
fig, ax = plt.subplots(figsize=(8, 4.5))
sc = ax.scatter(SW.ravel(), D.ravel(), c=acc.ravel(), s=160, marker="s", edgecolors="k", linewidths=0.5, cmap="viridis", vmin=0.1, vmax=1.0)
fig.colorbar(sc, ax=ax, label=f"training accuracy after {STEPS} steps")
ax.plot(curve_sw, np.minimum(6 * xi_c, 1e4), "r-", lw=2, label="6 xi_c (Schoenholz et al.)")
ax.plot(curve_sw, np.minimum(xi_c, 1e4), "r--", lw=1.5, label="xi_c")
ax.set_yscale("log", base=2); ax.set_yticks(DEPTHS, [str(d) for d in DEPTHS])
ax.set_ylim(DEPTHS[0] / 1.6, DEPTHS[-1] * 1.6)
ax.set_xlabel("sigma_w"); ax.set_ylabel("depth L")
ax.set_title(f"tanh MLP, width {WIDTH}, sigma_b = {SIGMA_B}: trainability vs depth scale")
ax.legend(fontsize=8, loc="upper right")
plt.show()

# %% [markdown]
# **Reading it.** The trainable region has the shape of $\xi_c$: deepest around the critical
# $\sigma_w$, shrinking on both sides — in the ordered phase (small $\sigma_w$, every input
# is mapped to nearly the same output) and in the chaotic one (large $\sigma_w$, inputs are
# scrambled). Away from criticality the edge between trained and untrained cells sits near
# the $6\,\xi_c$ line (within a factor of about 2; one short run per cell is noisy). Only
# near criticality do the 48-layer nets start to train, and only partly: the theory allows
# any depth there ($\xi_c = \infty$), but 200 steps of a width-32 net are far from the
# paper's setting (long training, widths of hundreds, $L/n \ll 1$). To test $6\,\xi_c$ at
# scale, run the benchmark (notebook 03) with more depth, width and steps on a GPU.
