"""Generates the notebooks in this folder from the cell sources below.

The notebooks are code: edit this file, not the ``.ipynb`` files, then run

    python notebooks/build.py              # rewrite every notebook (no outputs)
    python notebooks/build.py --execute    # ... and run each one, printing its time
    python notebooks/build.py --execute --keep /tmp/executed 02   # keep executed copies

Committed notebooks carry no outputs (CI executes them: tests/test_notebooks.py);
tests/test_docs.py checks that they equal what this script writes.
"""

from __future__ import annotations

import argparse
import pathlib
import sys
import textwrap
import time

import nbformat

HERE = pathlib.Path(__file__).resolve().parent
NOTEBOOKS: dict[str, list] = {}


def md(text: str):
    return nbformat.v4.new_markdown_cell(textwrap.dedent(text).strip("\n"))


def code(text: str):
    return nbformat.v4.new_code_cell(textwrap.dedent(text).strip("\n"))


def notebook(name: str):
    def register(fn):
        NOTEBOOKS[name] = fn
        return fn

    return register


SETUP = code(
    """
    import jax
    import jax.numpy as jnp
    import matplotlib.pyplot as plt
    import numpy as np
    from IPython.display import Markdown, display

    import jinit

    plt.rcParams.update({"figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3})
    print("jax", jax.__version__, "| backend:", jax.default_backend(), "| jinit", jinit.__version__)
    """
)


# --------------------------------------------------------------------------- 01
@notebook("01_quickstart")
def quickstart():
    return [
        md(
            r"""
            # 01 · Quickstart: jinit in Flax, every scheme at a glance

            An initializer in JAX is a function `init(key, shape, dtype) -> Array`. jinit builds them
            with factories (`jinit.he_normal()`, `jinit.glorot_uniform(gain=...)`, ...), so they drop
            into any Flax layer as `kernel_init=` / `bias_init=`. This notebook shows

            1. jinit in **flax.linen** and **flax.nnx**, and the named schemes of the registry;
            2. a histogram of **every registered scheme** next to its formula;
            3. the difference between a **truncated** and a **plain** normal of the *same variance*.
            """
        ),
        SETUP,
        md(
            r"""
            ## 1. As `kernel_init` in flax.linen

            A dense kernel in Flax has shape `(in, out)`, so `fan_in = in`. He init draws
            $W \sim \mathcal N(0, 2/\text{fan\_in})$: below, $\mathrm{Var}(W)\cdot\text{fan\_in} \approx 2$.
            A convolution kernel is `(*spatial, in, out)` (HWIO) and its fan includes the receptive
            field: `fan_in = 3·3·in` for a 3×3 kernel.
            """
        ),
        code(
            """
            import flax.linen as nn

            dense = nn.Dense(256, kernel_init=jinit.he_normal(), bias_init=jinit.zeros())
            params = dense.init(jax.random.key(0), jnp.ones((1, 512)))["params"]
            w = params["kernel"]
            print("dense kernel", w.shape, " Var(W)*fan_in =", round(float(w.var() * 512), 3))

            conv = nn.Conv(64, (3, 3), kernel_init=jinit.he_normal())
            k = conv.init(jax.random.key(1), jnp.ones((1, 8, 8, 32)))["params"]["kernel"]
            fan_in, fan_out = jinit.compute_fans(k.shape)
            print("conv kernel ", k.shape, " fans", (fan_in, fan_out), " Var(W)*fan_in =", round(float(k.var() * fan_in), 3))
            """
        ),
        md(
            r"""
            ### Choosing by name: the scheme registry

            `jinit.SCHEMES` names every scheme; the benchmark, the docs, these notebooks and the tests
            all read it. `get_scheme(name).kernel_init(activation)` returns the initializer for a layer
            followed by `activation` (gain- and criticality-based schemes depend on it; most ignore it).
            A model parameterised by a scheme name:
            """
        ),
        code(
            """
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
            """
        ),
        md(
            r"""
            With unit-variance inputs, He (and `gain_normal`, which equals He for ReLU) keeps
            $\mathbb E[x^2]$ at the input's scale after 10 ReLU layers, while LeCun and Glorot (the same for a square layer) halve it
            every layer (ReLU zeroes half of each pre-activation's second moment), to about $2^{-10}$.
            """
        ),
        md(
            r"""
            ## 1b. The same in flax.nnx

            `nnx.Linear` and `nnx.Conv` take the same initializers; the random key comes from
            `nnx.Rngs`.
            """
        ),
        code(
            """
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
            """
        ),
        md(
            r"""
            ## 2. Every scheme next to its formula

            Below, each registered scheme (`jinit.SCHEMES`, in registration order) samples a
            `(fan_in, fan_out) = (512, 128)` kernel for a ReLU layer; the histogram shows the
            weights (in units of $1/\sqrt{\text{fan\_in}}$, so LeCun's $\mathcal N(0, 1/\text{fan\_in})$
            has unit spread), titled with the formula from the registry and the measured mean and
            variance. Things to notice:

            * `zeros` is a single spike: every unit is identical (the symmetry problem);
            * `normal`, `uniform_large` are far wider than $1/\sqrt{\text{fan\_in}}$ and
              `uniform_small` far narrower: they ignore the layer width;
            * `normal_nonzero_mean` is shifted off zero;
            * Glorot uses $\mathrm{Var} = 2/(\text{fan\_in}+\text{fan\_out})$ = 1/320 here, He
              $2/\text{fan\_in}$ = 1/256, LeCun $1/\text{fan\_in}$ = 1/512;
            * structured schemes (orthogonal, identity, sparse, ZerO, ...), when registered, are not
              i.i.d.: look at their spikes and gaps.

            The full table:
            """
        ),
        code("display(Markdown(jinit.markdown_table()))"),
        code(
            """
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
                title = f"{name}  {shape}\\n" + "\\n".join(textwrap.wrap(scheme.formula, 44))
                ax.set_title(title, fontsize=8)
                ax.text(0.02, 0.97, f"mean {w.mean():.2g}\\nVar·fan_in {w.var() * fan_in:.3g}",
                        transform=ax.transAxes, va="top", fontsize=7,
                        bbox=dict(fc="white", alpha=0.7, lw=0))
                ax.tick_params(labelsize=7)
            for ax in axes.flat[len(names):]:
                ax.axis("off")
            fig.supxlabel("w · sqrt(fan_in)")
            fig.tight_layout()
            plt.show()
            """
        ),
        md(
            r"""
            ## 3. Truncated vs plain normal at equal variance

            `jinit.lecun_normal()` is a **plain** Gaussian, $\mathcal N(0, 1/n)$, as in the papers and
            `torch.nn.init`. `jax.nn.initializers.lecun_normal()` (and Flax's default kernel init, and
            Keras' `LecunNormal`) sample a normal **truncated at ±2σ** whose parent σ is divided by the
            std of the truncated standard normal,

            $$\sigma_t^2 = 1 + \frac{a\varphi(a) - b\varphi(b)}{Z} - \Big(\frac{\varphi(a)-\varphi(b)}{Z}\Big)^2,
            \quad Z = \Phi(b)-\Phi(a),\qquad \sigma_t(-2, 2) = 0.8796\ldots$$

            so that the variance is the same, $1/n$. `jinit.variance_scaling(1, "fan_in", "truncated_normal")`
            reproduces JAX's. Forgetting the correction — `jinit.truncated_normal(stddev=1/√n)` — gives a
            variance 0.77× too small, which compounds over depth ($0.77^{L}$ for $L$ layers).
            """
        ),
        code(
            """
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

            rows = ["| init | Var·n | excess kurtosis | max \\\\|w\\\\|·√n | P(\\\\|w\\\\|·√n > 2) |", "|---|---|---|---|---|"]
            for label, v in samples.items():
                var = v.var()
                kurt = np.mean((v - v.mean()) ** 4) / var**2 - 3
                rows.append(f"| {label} | {var:.3f} | {kurt:+.2f} | {np.abs(v).max():.2f} | {np.mean(np.abs(v) > 2):.4f} |")
            display(Markdown("\\n".join(rows)))

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
            """
        ),
        md(
            r"""
            **Reading the table.** The plain and the corrected truncated normal have the same
            variance (1.000) but different shapes: the truncated one has *negative* excess kurtosis
            (lighter tails, like the uniform at −1.2) and a hard maximum at $2/0.8796 = 2.27$. The
            uncorrected truncation silently loses 23 % of the variance. For training deep nets the
            variance is what matters to first order (see notebook 02); the tails matter for
            outlier-sensitive settings (large widths, low-precision training).
            """
        ),
    ]


# --------------------------------------------------------------------------- 02
@notebook("02_signal_propagation")
def signal_propagation():
    return [
        md(
            r"""
            # 02 · Signal propagation through a 50-layer MLP

            Why does the initializer matter? Push a batch through a deep, plain MLP (no normalization,
            no residuals) and watch, layer by layer, the **activations** going forward and the
            **gradients** coming back. For a layer $h_\ell = x_{\ell-1} W_\ell$, $x_\ell = \phi(h_\ell)$,
            with i.i.d. zero-mean weights of variance $\sigma^2$ and width $n$,

            $$\mathrm{Var}(h_\ell) = n\sigma^2\,\mathbb E[\phi(h_{\ell-1})^2],\qquad
              \mathrm{Var}\Big(\frac{\partial L}{\partial h_{\ell-1}}\Big) = n\sigma^2\,
              \mathbb E[\phi'(h_{\ell-1})^2]\,\mathrm{Var}\Big(\frac{\partial L}{\partial h_\ell}\Big).$$

            For ReLU $\mathbb E[\phi(h)^2] = \mathrm{Var}(h)/2$, so the forward factor per layer is
            $n\sigma^2/2$: He ($\sigma^2 = 2/n$) keeps it at 1, Glorot/LeCun ($1/n$ for a square layer)
            halve it every layer ($2^{-50} \approx 10^{-15}$ after 50 layers), and $\mathcal N(0,1)$
            multiplies it by $n/2 = 32$ (overflow). For tanh, $\mathcal N(0,1)$ pushes the
            pre-activations to $\pm 8$: the units **saturate** at ±1.

            The five schemes come from the registry (`jinit.get_scheme(name).kernel_init(activation)`;
            `orthogonal` gets the gain $\sqrt 2$ for ReLU and `gain_for(tanh)` for tanh from there).
            """
        ),
        SETUP,
        code(
            """
            from functools import partial

            DEPTH, WIDTH, BATCH = 50, 64, 256
            NAMES = [n for n in ("zeros", "normal", "glorot_normal", "he_normal", "orthogonal") if n in jinit.SCHEMES]
            ACTIVATIONS = ("relu", "tanh")

            def kernels(name, activation, key):
                init = jinit.get_scheme(name).kernel_init(activation)  # built once: compiled once
                return jnp.stack([init(k, (WIDTH, WIDTH)) for k in jax.random.split(key, DEPTH)])

            @partial(jax.jit, static_argnames="activation")
            def propagate(Ws, x, v, activation):
                \"\"\"Per-layer pre-activations h, activations x and gradients dL/dh, dL/dW
                for the loss L = <h_L, v> (a fixed random readout of the last layer).\"\"\"
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
            """
        ),
        md(
            r"""
            ## Activations forward, gradients backward

            Top: the standard deviation of the activations $x_\ell$ at each layer. Middle: the std of
            the backpropagated gradient $\partial L/\partial h_\ell$ (it starts at 1 at the top, layer
            50, and travels down). Bottom: the RMS of the weight gradient
            $\partial L/\partial W_\ell = x_{\ell-1}^\top\,\partial L/\partial h_\ell$, what the
            optimizer sees. Log scale; `zeros` is exactly 0 everywhere and cannot appear on it, and
            values that overflowed float32 (inf) are cut off.
            """
        ),
        code(
            """
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
            """
        ),
        md(
            r"""
            What the curves show:

            * **Vanishing** (Glorot with ReLU): the activations shrink by $\sqrt 2$ per layer (to
              ~$10^{-9}$ at layer 50) and the backpropagated gradient shrinks the same way on its way
              down; the weight gradient, the product of the two, is uniformly tiny (~$10^{-7}$) at
              every layer: the whole network barely moves. With tanh, Glorot slowly drifts into tanh's
              linear regime and the gradient vanishes mildly toward the input.
            * **Exploding** ($\mathcal N(0,1)$ with ReLU): a factor $\sqrt{n/2} = \sqrt{32}$ per
              layer, ~$10^{37}$ at layer 50, at the edge of float32 (the gaps in the bottom-left panel
              are overflows to inf).
            * **Preserved**: He with ReLU keeps all three curves flat (up to the random drift of a
              finite width-64 product of 50 layers), and so does `orthogonal` with the right gain, with
              less spread since all its singular values are equal. He's variance is too large for
              tanh: its gradients grow mildly toward the input.
            * **Symmetry** (zeros): every activation and every weight gradient is exactly 0 (no curve
              at all): nothing can ever learn. Below: a *non-zero* constant is no better.
            * **Saturation** ($\mathcal N(0,1)$ with tanh): the activations' std stays near 1 — not
              because the signal is healthy but because most units sit at ±1 — while the gradient
              explodes on its way down (the *chaotic* phase of notebook 04):
            """
        ),
        code(
            """
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
            """
        ),
        md(
            r"""
            With $\mathcal N(0,1)$ the activations pile up at ±1 from the first layer on (solid): the
            derivative $\tanh'(h) = 1 - \tanh^2(h)$ is ~0 there, so gradient signal only passes through
            the few unsaturated units (and is then multiplied by the huge weights: the gradient curve
            above is erratic). With Glorot (dashed) the distribution narrows slowly with depth toward 0,
            the linear regime of tanh.

            ## Symmetry: constant kernels never break it

            Train a 4-layer tanh MLP (width 32) for 300 steps of gradient descent on a toy regression
            task, starting from zeros, from a *non-zero* constant (`jinit.constant(0.03)`), and from
            He/Glorot. Count the **distinct hidden units** — the numerical rank of each layer's
            activations over a batch. A constant init makes all units of a layer compute the same
            function, they receive the same gradient, and they stay identical forever: rank 1. With
            zeros the tanh net's hidden activations are exactly zero and so are all kernel gradients:
            rank 0.
            """
        ),
        code(
            """
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
            """
        ),
        md(
            r"""
            The constant-initialised network trains only as well as a network with **one** unit per
            layer; zeros do not train at all except for the output bias. Random inits break the
            symmetry: every unit starts different and the rank is full (32).

            **Takeaway.** Scale the variance with the fan (He for ReLU, Glorot/LeCun or `gain_normal`
            for tanh, or orthogonal with the activation's gain) and never use a constant kernel.
            Notebook 04 makes "flat curves" precise: the order-to-chaos transition at $\chi_1 = 1$.
            """
        ),
    ]


def build(name: str) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.cells = NOTEBOOKS[name]()
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    # Stable cell ids keep the generated files byte-identical between runs.
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{name.split('_')[0]}-{i:02d}"
    nbformat.validate(nb)
    return nb


def render(name: str) -> str:
    return nbformat.writes(build(name)) + "\n"


def execute(path: pathlib.Path, keep: pathlib.Path | None) -> float:
    import nbclient

    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    nbclient.NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
    ).execute()
    elapsed = time.perf_counter() - start
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, keep / path.name)
    return elapsed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("only", nargs="*", help="notebook name prefixes, e.g. 01 03 (default: all)")
    parser.add_argument("--execute", action="store_true", help="run each notebook and report its time")
    parser.add_argument("--keep", type=pathlib.Path, help="with --execute: save executed copies here")
    args = parser.parse_args(argv)
    names = [n for n in NOTEBOOKS if not args.only or any(n.startswith(p) for p in args.only)]
    for name in names:
        path = HERE / f"{name}.ipynb"
        path.write_text(render(name), encoding="utf-8")
        print(f"wrote {path.relative_to(HERE.parent)}")
        if args.execute:
            print(f"  executed in {execute(path, args.keep):.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
