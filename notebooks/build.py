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
            * **Preserved**: with ReLU, He and `orthogonal` (gain $\sqrt 2$) keep all three curves
              flat (He up to the random drift of a finite width-64 product of 50 layers). With tanh,
              both keep the *activations* flat, but at these scales ($\sigma_w^2 = 2$, and
              `gain_for(tanh)`$^2 \approx 2.5$ for orthogonal) tanh is in its chaotic phase: the
              gradients grow toward the input, by one to two orders of magnitude over 50 layers.
              Notebook 04 finds tanh's critical point: $\sigma_w = 1$ at $\sigma_b = 0$.
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
            """
        ),
        md(
            r"""
            ## The same check for your own Flax model: `jinit.diagnostics`

            `signal_propagation(model.apply, params, batch)` runs one forward and backward pass and
            reports, for every layer that owns a kernel (also inside `nn.scan`), the std of its output
            and the norm of its kernel's gradient, with a verdict: *vanishing*, *exploding* or
            *healthy* (a factor of more than 10 between the first and the last layer).
            `plot_signal_propagation(report)` draws it. Here on a 50-layer ReLU MLP written with
            `nn.scan`, one report per scheme:
            """
        ),
        code(
            """
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
            display(Markdown("\\n".join(rows)))
            fig, axes = plt.subplots(1, 2, figsize=(12, 3.4))
            for ax, name in zip(axes, ("glorot_normal", "he_normal")):
                plot_signal_propagation(reports[name], ax=ax)
                ax.set_title(f"{name}: " + ax.get_title(), fontsize=9)
            fig.tight_layout()
            plt.show()
            """
        ),
        md(
            r"""
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


# --------------------------------------------------------------------------- 03
@notebook("03_convergence")
def convergence():
    return [
        md(
            r"""
            # 03 · Convergence: a small benchmark sweep from Python

            Notebook 02 showed what the initializer does to the signal at step 0; this one shows what
            it does to **training**. The `bench` package (`python -m bench`) trains a deep MLP (the
            hidden stack runs under `flax.linen.scan`, all seeds at once under `jax.vmap`) under each
            scheme of the registry, on sklearn's bundled 8×8 digits, and writes `results.json`,
            a ranked `summary.md` and plots.

            Its command line is also a Python function, `bench.cli.main(argv) -> exit status`, which
            is how this notebook runs a small sweep: a 20-hidden-layer ReLU MLP of width 32, SGD with
            momentum 0.9 (lr 0.01), 200 steps of batch 128, 2 seeds, for a few schemes. The ReLU
            forward factor per layer is $n\,\mathrm{Var}(W)/2$ (notebook 02), so after 20 layers
            Glorot (= LeCun for square layers) shrinks the signal by $2^{-10}$ and $\mathcal N(0,1)$ blows it up by $16^{20}$.
            """
        ),
        SETUP,
        code(
            """
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
            """
        ),
        md(
            r"""
            ## Loss curves

            `results.json` holds one record per (scheme, activation, depth, seed) with the loss on the
            whole training split every `eval_every` steps (`loss_curve`: `[step, loss]` pairs, `null`
            once the run diverged), the test accuracy, and per-layer statistics at initialization.
            Mean over seeds, band min..max; schemes whose every seed diverged (NaN/inf loss) are
            listed in the corner instead. For ReLU, `critical` and `orthogonal` are the same init
            (orthogonal with $\sigma_w = \sqrt 2$), so their curves coincide.
            """
        ),
        code(
            """
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
                ax.text(0.98, 0.97, "\\n".join(notes), transform=ax.transAxes, ha="right", va="top", fontsize=8, color="k")
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
            """
        ),
        md(
            r"""
            ## The ranked table

            `summary.md` ranks the schemes (fewest diverged seeds, then lowest final training loss,
            then test accuracy) and records the settings and the machine; it is what
            `python -m bench` prints at the end. The last column, the std of the last hidden layer's
            output at initialization, predicts the ranking: order 1 trains, tiny (vanishing) or huge
            (exploding) does not.
            """
        ),
        code(
            """
            summary = (out / "summary.md").read_text()
            display(Markdown(summary.split("\\n## ", 1)[1].split("\\n", 1)[1]))  # the table of the one group
            env = results["env"]
            print(f"machine: {env['platform']}, backend {env['backend']} ({env['device_kind']}, "
                  f"{env['device_count']} device(s)); jax {env['jax']}, flax {env['flax']}")
            print("timing (s):", {k: round(v, 1) for k, v in results["timing"].items()})
            """
        ),
        md(
            r"""
            ## The full benchmark, on a CPU, GPU or TPU

            From the repository root:

            ```bash
            python -m bench                       # every registered scheme, ReLU and tanh, depth 20, 3 seeds
            python -m bench --list                # schemes and presets
            python -m bench --preset he2015       # 30-layer ReLU: He trains, Glorot stalls (He et al. 2015, Fig. 3)
            python -m bench --preset glorot2010   # tanh/sigmoid saturation (Glorot & Bengio 2010)
            python -m bench --preset depth        # tanh depth 10..200: critical vs off-critical (Schoenholz et al. 2017)
            python -m bench --schemes he_normal,glorot_normal --depth 10,50,100 --width 256 --steps 2000
            python -m bench --replot --out results/<timestamp>    # re-render summary.md and the PNGs
            ```

            Every run writes `results/<timestamp>/` (override with `--out`); re-running the same command
            with the same `--out` resumes an interrupted run. **On a GPU or TPU** install the matching
            JAX first — `pip install -U "jax[cuda12]"` (NVIDIA) or `pip install -U "jax[tpu]"` — then run
            the same commands: the code is unchanged, `results.json` records the backend and devices,
            and with several devices the minibatch is sharded across them (`--devices N` to use fewer).
            Raise `--width`, `--depth`, `--steps` and `--seeds` there: the defaults are sized for a
            2-core CPU. The presets:
            """
        ),
        code(
            """
            from bench.presets import PRESETS

            display(Markdown("\\n".join(["| preset | what it runs | source |", "|---|---|---|"]
                                        + [f"| `{p.name}` | {p.summary} | {p.source} |" for p in PRESETS.values()])))
            """
        ),
    ]


# --------------------------------------------------------------------------- 04
@notebook("04_mean_field")
def mean_field():
    return [
        md(
            r"""
            # 04 · Mean-field theory: order, chaos and the depth a network can train at

            For a wide fully connected layer $h^{\ell+1} = W^{\ell+1}\phi(h^\ell) + b^{\ell+1}$ with
            $W_{ij} \sim \mathcal N(0, \sigma_w^2/n)$ and $b_i \sim \mathcal N(0, \sigma_b^2)$, the
            pre-activation variance $q$ of one input and the correlation $c$ of two inputs evolve by
            deterministic maps (Poole et al. 2016; Schoenholz et al. 2017):

            $$q^{\ell+1} = \sigma_w^2\,\mathbb E_z\big[\phi(\sqrt{q^\ell}z)^2\big] + \sigma_b^2,\qquad
              c^{\ell+1} = \frac{\sigma_w^2\,\mathbb E[\phi(u_1)\phi(u_2)] + \sigma_b^2}{q^*}.$$

            At the variance fixed point $q^*$,

            $$\chi_1 = \sigma_w^2\,\mathbb E\big[\phi'(\sqrt{q^*}z)^2\big]$$

            is the slope of the correlation map at $c = 1$ and the mean squared singular value of a
            layer's Jacobian. $\chi_1 < 1$: the **ordered** phase (all inputs become alike, gradients
            vanish); $\chi_1 > 1$: the **chaotic** phase (nearby inputs decorrelate, gradients explode);
            $\chi_1 = 1$: the **critical line** (edge of chaos). Correlations relax to their fixed point
            $c^*$ over

            $$\xi_c = -1/\ln\chi_c,\qquad \chi_c = \sigma_w^2\,\mathbb E[\phi'(u_1)\phi'(u_2)]\big|_{c^*},$$

            layers, and Schoenholz et al. found that random networks train only when their depth
            $L \lesssim 6\,\xi_c$. Everything here is computed by `jinit.meanfield` (Gauss-Legendre
            quadrature in float64).
            """
        ),
        SETUP,
        code(
            """
            import jinit.meanfield as mf

            PHI, SIGMA_B = "tanh", 0.05
            sw_crit = mf.critical_sigma_w(PHI, SIGMA_B)
            print(f"tanh, sigma_b = {SIGMA_B}: critical sigma_w = {sw_crit:.4f}")
            for sw in (0.8, sw_crit, 2.0):
                r = mf.analyze(sw, SIGMA_B, PHI)
                print(f"  sigma_w = {sw:.3f}: {r.phase:8s} q* = {r.q_star:.3f}  chi_1 = {r.chi1:.3f}  "
                      f"c* = {r.c_star:.3f}  xi_c = {r.xi_c:.3g}  6 xi_c = {r.max_trainable_depth:.3g}")
            """
        ),
        md(
            r"""
            ## The χ₁ phase diagram for tanh

            `mf.phase_diagram(phi, sigma_w_grid, sigma_b_grid)` evaluates $\chi_1$ over a grid (colour,
            log scale: blue ordered, red chaotic). The black contour $\chi_1 = 1$ is the critical line;
            the dashed curve is the same line computed directly from its parameterisation by $q^*$
            (`mf.critical_line`: $\sigma_w^2 = 1/\mathbb E[\phi'(\sqrt{q^*}z)^2]$,
            $\sigma_b^2 = q^* - \sigma_w^2\,\mathbb E[\phi(\sqrt{q^*}z)^2]$). At $\sigma_b = 0$ the
            critical point of tanh is $\sigma_w = 1$ (LeCun init); the popular gain 5/3 is chaotic.
            """
        ),
        code(
            """
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
            ax.text(0.7, 0.8, "ordered\\n(chi_1 < 1)", fontsize=11); ax.text(2.8, 0.3, "chaotic\\n(chi_1 > 1)", fontsize=11)
            ax.set_xlabel("sigma_w"); ax.set_ylabel("sigma_b"); ax.set_title("tanh: chi_1 over (sigma_w, sigma_b)")
            ax.legend(fontsize=7, loc="upper right")
            plt.show()
            """
        ),
        md(
            r"""
            ## Depth scales

            $\xi_q$ (how fast the variance settles) stays short everywhere; $\xi_c$ (how fast two inputs
            forget how similar they were) diverges at the critical $\sigma_w$. Left: both as functions
            of $\sigma_w$ at $\sigma_b = 0.05$. Right: a check against a real random network (width
            1024): the distance of the correlation of two inputs from its fixed point, $|c^\ell - c^*|$,
            decays like $\chi_c^{\ell} = e^{-\ell/\xi_c}$ (dashed: the mean-field slope) until it
            reaches the finite-width noise floor $\sim 1/\sqrt n$.
            """
        ),
        code(
            """
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
            """
        ),
        md(
            r"""
            ## Does the network train where $L < 6\,\xi_c$?

            Short training runs on the bundled digits data (sklearn's 8×8 digits, 1797 images): a
            tanh MLP of width 32 and depth $L$ (input layer 64→32, then $L-1$ layers 32→32, a linear
            readout), weights $\sigma_w\cdot$`lecun_normal` $= \mathcal N(0, \sigma_w^2/n)$ and biases
            `normal(stddev=0.05)`, Adam for 200 steps of batch 64. All 28 (σ_w, depth) pairs train
            together under one `jax.vmap` (a net of depth $L$ uses the first $L$ layers of a 48-layer
            stack; the rest pass their input through), so there is a single compilation. Colour: training accuracy after the run
            (chance is 0.1). Lines: $\xi_c$ and $6\,\xi_c$ from the cell above.
            """
        ),
        code(
            """
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
            """
        ),
        code(
            """
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
            """
        ),
        md(
            r"""
            **Reading it.** The trainable region has the shape of $\xi_c$: deepest around the critical
            $\sigma_w$, shrinking on both sides — in the ordered phase (small $\sigma_w$, every input
            is mapped to nearly the same output) and in the chaotic one (large $\sigma_w$, inputs are
            scrambled). Away from criticality the edge between trained and untrained cells sits near
            the $6\,\xi_c$ line (within a factor of about 2; one short run per cell is noisy). Only
            near criticality do the 48-layer nets start to train, and only partly: the theory allows
            any depth there ($\xi_c = \infty$), but 200 steps of a width-32 net are far from the
            paper's setting (long training, widths of hundreds, $L/n \ll 1$). To test $6\,\xi_c$ at
            scale, run the benchmark (notebook 03) with more depth, width and steps on a GPU.
            """
        ),
    ]


# --------------------------------------------------------------------------- 05
@notebook("05_data_dependent")
def data_dependent():
    return [
        md(
            r"""
            # 05 · Beyond one tensor: tree rules (GPT-2, Fixup, ReZero) and LSUV

            A per-tensor initializer sees only a shape. Some recipes need to know **where** a
            parameter sits in the model (GPT-2 scales the projections that write into the residual
            stream by the depth; Fixup zeroes the last layer of every residual branch) or need **data**
            (LSUV rescales each layer until its outputs on a real batch have unit variance).
            `jinit.tree.reinit(key, params, rules)` applies `(pattern, initializer)` rules to a
            parameter tree by path (first match wins), and `jinit.data_dependent.lsuv` runs LSUV.

            The model: a residual MLP without normalization on the digits data,
            $x_{k+1} = x_k + \alpha_k\, W^{\text{proj}}_k\,\mathrm{relu}(W^{\text{fc}}_k x_k)$, 8 blocks
            of 2 branches each (so $2L = 16$ residual additions, GPT-2's count for $L = 8$ layers),
            width 64, hidden width 128, with GPT-2's parameter names `c_fc`, `c_proj`.
            """
        ),
        SETUP,
        code(
            """
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
            """
        ),
        md(
            r"""
            ## Four recipes as rule lists

            * **He everywhere** — `[("*kernel", he_normal()), ("*bias", zeros())]`: He preserves the
              second moment through each branch, so each branch adds about twice the variance of its
              input (its ReLU input is $x$, not a ReLU output) and the stream's variance grows
              geometrically, about $\times 3$ per residual addition: $3^{2L}$ after $2L$ of them.
            * **GPT-2** (`gpt2_rules(L, std)`): kernels $\mathcal N(0, \sigma^2)$, the residual
              projections `c_proj` $\mathcal N(0, \sigma^2/2L)$, biases 0. GPT-2 uses $\sigma = 0.02$
              at width 768; here $\sigma = 1/\sqrt{64}$ (LeCun for width 64).
            * **Fixup** (`fixup_rules(2L, ["*c_fc/kernel", "*c_proj/kernel"], classifier="*head/*")`):
              the last layer of each branch and the classifier are 0, the other branch layers He
              scaled by $(2L)^{-1/(2m-2)}$ with $m = 2$ layers per branch, other kernels He.
            * **ReZero / SkipInit** (`rezero_rules("*alpha")` then He): the gates $\alpha_k = 0$.

            `match_rules(params, rules)` shows which rule each leaf gets, before anything is drawn:
            """
        ),
        code(
            """
            he = [("*kernel", jinit.he_normal()), ("*bias", jinit.zeros())]
            RECIPES = {
                "he everywhere": he,
                "gpt2": gpt2_rules(N_LAYERS, std=WIDTH ** -0.5),
                "fixup": fixup_rules(2 * N_LAYERS, ["*c_fc/kernel", "*c_proj/kernel"], classifier="*head/*"),
                "rezero": rezero_rules("*alpha") + he,
            }
            rows = ["| leaf | " + " | ".join(RECIPES) + " |", "|---|" + "---|" * len(RECIPES)]
            matched = {name: match_rules(params, rules) for name, rules in RECIPES.items()}
            for path in [p for p in paths if "h_0_branch_0" in p or "h_" not in p]:
                cells = []
                for name, rules in RECIPES.items():
                    i = matched[name][path]
                    cells.append("kept" if i is None else f"`{rules[i][0]}` → {getattr(rules[i][1], '__name__', 'init')}")
                rows.append(f"| `{path}` | " + " | ".join(cells) + " |")
            display(Markdown("\\n".join(rows) + "\\n\\n(the other blocks match like `h_0_branch_0`)"))

            inits = {name: reinit(jax.random.key(1), params, rules) for name, rules in RECIPES.items()}
            """
        ),
        md(
            r"""
            ## The residual stream at initialization

            The std of $x_k$ after each residual addition, on the whole digits set. He everywhere
            explodes (about $\sqrt 3$ per branch); GPT-2's $1/\sqrt{2L}$ keeps the growth bounded whatever
            the depth; Fixup and ReZero start every block as the identity, so the stream is flat.
            """
        ),
        code(
            """
            apply = jax.jit(model.apply)
            fig, ax = plt.subplots(figsize=(7.5, 3.6))
            for name, p in inits.items():
                _, stream = apply(p, X)
                ax.plot([float(s.std()) for s in stream], "o-", ms=3, lw=2, label=name)
            ax.set_yscale("log"); ax.set_xlabel("residual additions (0 = after the embedding)")
            ax.set_ylabel("std of the residual stream"); ax.legend(); ax.set_title(f"{2 * N_LAYERS} residual branches at init")
            plt.show()
            """
        ),
        md(
            r"""
            ## Training

            The four inits train the same network (Adam, lr 1e-3, 200 steps of batch 64). Their
            parameter trees have the same structure, so they are stacked and trained together under
            `jax.vmap`: one compilation.
            """
        ),
        code(
            """
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
            """
        ),
        md(
            r"""
            **Reading it.** He everywhere starts with a residual stream of std $\sim 10^4$ and logits
            to match: the loss starts huge and training crawls. GPT-2's depth scaling, Fixup and ReZero
            all start near the identity map and train fast — without any normalization layer.

            ## LSUV: layer-sequential unit variance

            LSUV (Mishkin & Matas 2016) needs a batch: start from orthonormal kernels, then for each
            layer in forward order rescale its kernel until the layer's output has unit variance on
            the batch,

            $$W_\ell \leftarrow W_\ell / \sqrt{\mathrm{Var}(x_{\ell-1} W_\ell + b_\ell)}\quad\text{until}\quad
              |\mathrm{Var} - 1| < \text{tol}\ (0.1)\ \text{or } 10 \text{ rescalings}.$$

            `jinit.data_dependent.lsuv(key, model, params, batch)` finds the `nn.Dense`/`nn.Conv`
            layers by intercepting their calls (so it works inside `nn.scan` and nested modules too)
            and returns `(params, report)`. Here: a plain 20-layer ReLU MLP of width 64 (no
            residuals), compared with its orthogonal pre-init (gain 1: the signal halves its second
            moment at every ReLU) and with He.
            """
        ),
        code(
            """
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
            """
        ),
        code(
            """
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
            """
        ),
        md(
            r"""
            LSUV lands every layer's output at unit variance by construction (left: flat at 1), from a
            pre-init that on its own vanishes; He gets there analytically for ReLU. LSUV's value is
            that it needs no derivation: it works for any activation and layer type, at the cost of a
            few forward passes on real data. For architectures where a recipe exists (GPT-2-style
            scaling, Fixup, ReZero, He), the tree rules above give the same effect without data.
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


def execute(path: pathlib.Path, keep: pathlib.Path | None) -> tuple[float, float]:
    """Runs the notebook; returns (wall seconds, CPU seconds of the kernel process)."""
    import resource

    import nbclient

    nb = nbformat.read(path, as_version=4)
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    try:
        nbclient.NotebookClient(
            nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
        ).execute()
    finally:
        if keep is not None:  # also after an error, to inspect it
            keep.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, keep / path.name)
    wall = time.perf_counter() - start
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)  # the kernel has exited and been reaped
    return wall, (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)


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
            wall, cpu = execute(path, args.keep)
            print(f"  executed in {wall:.1f} s wall, {cpu:.1f} s CPU (kernel)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
