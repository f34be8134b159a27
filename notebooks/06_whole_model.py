# ---
# jupyter:
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · Initializing a whole model: a transformer and a ResNet
#
# A per-tensor initializer is only right if it is called with the shape its layer would pass it.
# Real models stack layers with `nn.scan` (kernels `(L, in, out)`), flatten attention kernels
# (`(in, heads, head_dim)` is initialized as `(in, heads * head_dim)`), and Equinox stores
# `(out, in)`. This notebook initializes a GPT-2-style transformer (Flax's own
# `MultiHeadDotProductAttention`, blocks under `nn.scan`) and a small ResNet (scanned residual
# blocks) with `jinit.init` and recipes, reads the result with `jinit.audit`, and checks the
# signal with `jinit.signal_propagation`, which judges residual models by their residual stream.

# %%
import flax.linen as nn
import jax
import matplotlib.pyplot as plt
import numpy as np
from IPython.display import Markdown, display

import jinit

plt.rcParams.update({"figure.dpi": 80, "axes.grid": True, "grid.alpha": 0.3})
print("jax", jax.__version__, "| backend:", jax.default_backend(), "| jinit", jinit.__version__)

# %% [markdown]
# ## A pre-LN transformer with scanned blocks
#
# Eight blocks of width 128, each `x + attn(LN(x))` then `x + mlp(LN(x))`, stacked with `nn.scan`
# so every block parameter has a leading axis of 8.

# %%
N_LAYERS, WIDTH, VOCAB, SEQ = 8, 128, 256, 32


class Block(nn.Module):
    @nn.compact
    def __call__(self, x, _):
        x = x + nn.MultiHeadDotProductAttention(num_heads=4, name="attn")(nn.LayerNorm(name="ln_1")(x))
        h = nn.gelu(nn.Dense(4 * WIDTH, name="c_fc")(nn.LayerNorm(name="ln_2")(x)))
        return x + nn.Dense(WIDTH, name="c_proj")(h), None


class GPT(nn.Module):
    @nn.compact
    def __call__(self, tokens):
        x = nn.Embed(VOCAB, WIDTH, name="wte")(tokens)
        blocks = nn.scan(Block, variable_axes={"params": 0}, split_rngs={"params": True}, length=N_LAYERS)
        x, _ = blocks(name="blocks")(x, None)
        return nn.Dense(VOCAB, name="lm_head")(nn.LayerNorm(name="ln_f")(x))


model = GPT()
tokens = jax.random.randint(jax.random.key(0), (16, SEQ), 0, VOCAB)
rules = jinit.gpt2_rules(N_LAYERS)
gpt2 = jinit.init(model, rules, jax.random.key(1), tokens)
flax_default = model.init(jax.random.key(1), tokens)
matched = jinit.match_rules(gpt2, rules, layouts=jinit.linen_layouts(model, tokens))
print("residual output projections:", [path for path, rule in matched.items() if rule == 0])

# %% [markdown]
# `gpt2_rules` found the attention output projection by its role (`out` of Flax's attention) and
# the MLP projection by name (`c_proj`), and checked it set exactly `2 * N_LAYERS` layer slices.
# The audit shows, per parameter, the layout jinit read (8 stacked slices; the attention kernels
# initialized as 128 x 128 maps), the fans the initializer saw, the std range over slices, and the
# rule that set it:

# %%
report = jinit.audit(gpt2, rules=rules, layouts=jinit.linen_layouts(model, tokens))
display(Markdown(report.table()))

# %% [markdown]
# ## The residual stream, not the branch outputs
#
# A branch's output in a GPT-2 init is small by design (std 0.02/√16 ≈ 0.005 for the projections),
# so comparing the first layer's output with the last branch's would call every GPT-2 model
# "vanishing". `signal_propagation` finds the residual blocks (module calls whose output is their
# input plus something) and judges the stream's std from the first block to the last:

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
for ax, (name, params) in zip(axes, [("GPT-2 init", gpt2), ("Flax default", flax_default)]):
    signal = jinit.signal_propagation(model.apply, params, tokens)
    jinit.plot_signal_propagation(signal, ax=ax)
    ax.set_title(f"{name}: {signal.verdict}", fontsize=10)
    print(f"{name:>13}: verdict {signal.verdict}; stream std first -> last block "
          f"{signal.stream_std[0]:.3g} -> {signal.stream_std[-1]:.3g}")
fig.tight_layout()

# %% [markdown]
# ## A ResNet under Fixup
#
# Six residual blocks of two 3x3 convolutions, scanned. Fixup (Zhang et al. 2019) zeroes the
# last convolution of every branch and the classifier, and scales the first by
# $L^{-1/(2m-2)} = 6^{-1/2}$ on top of He: each block starts as the identity. The fans are one
# layer's (`9 * 32`), not the stack's.

# %%
class ResBlock(nn.Module):
    @nn.compact
    def __call__(self, x, _):
        h = nn.Conv(32, (3, 3), name="conv1")(x)
        return nn.relu(x + nn.Conv(32, (3, 3), name="conv2")(nn.relu(h))), None


class ResNet(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.relu(nn.Conv(32, (3, 3), name="stem")(x))
        x, _ = nn.scan(ResBlock, variable_axes={"params": 0}, split_rngs={"params": True}, length=6)(
            name="blocks")(x, None)
        return nn.Dense(10, name="head")(x.mean(axis=(1, 2)))


resnet, images = ResNet(), jax.random.normal(jax.random.key(2), (32, 8, 8, 3))
fixup = jinit.fixup_rules(6, ["*conv1/kernel", "*conv2/kernel"], "*head/*")
variables = jinit.init(resnet, fixup, jax.random.key(3), images)
audit = jinit.audit(variables, rules=fixup, layouts=jinit.linen_layouts(resnet, images))
display(Markdown(audit.table()))

# %% [markdown]
# The `zero` flags are Fixup's intended zeros (the rule column says which rule set them). The
# same ResNet with plain He init everywhere, against Fixup:

# %%
he = jinit.init(resnet, [("*kernel", jinit.he_normal()), ("*bias", jinit.zeros())], jax.random.key(3), images)
fig, axes = plt.subplots(1, 2, figsize=(12, 3.5))
for ax, (name, params) in zip(axes, [("Fixup", variables), ("He everywhere", he)]):
    signal = jinit.signal_propagation(resnet.apply, params, images)
    jinit.plot_signal_propagation(signal, ax=ax)
    ax.set_title(f"{name}: {signal.verdict}", fontsize=10)
    print(f"{name:>13}: stream std per block {np.round(signal.stream_std, 3).tolist()}")
fig.tight_layout()

# %% [markdown]
# ## The same in nnx and Equinox
#
# `jinit.reinit(key, model, rules)` reads the layout from nnx and Equinox layers (Equinox stores
# `(out, in)`; fans are read as `(in, out)`), and returns a new model.

# %%
import equinox as eqx
from flax import nnx

attention = nnx.MultiHeadAttention(num_heads=4, in_features=WIDTH, decode=False, rngs=nnx.Rngs(0))
attention = jinit.reinit(jax.random.key(4), attention, jinit.gpt2_rules(1, residual_per_block=1))
mlp = eqx.nn.MLP(64, 10, 256, 3, key=jax.random.key(5))
mlp = jinit.reinit(jax.random.key(6), mlp, [("role:kernel", jinit.he_normal()), ("role:bias", jinit.zeros())])
display(Markdown(jinit.audit(attention).table() + "\n\n" + jinit.audit(mlp).table()))

# %% [markdown]
# LSUV (Mishkin & Matas 2016) on the nnx attention layer: the query/key/value/out projections
# are pre-initialized orthogonally as the 2-D maps Flax would pass, then rescaled to unit output
# variance on one batch.

# %%
x = jax.random.normal(jax.random.key(7), (8, SEQ, WIDTH))
attention, lsuv_report = jinit.lsuv(jax.random.key(8), attention, x)
for layer in lsuv_report:
    print(f"{layer.name:>14}: var {layer.var_before:.3f} -> {layer.var_after:.3f} ({layer.iterations} rescalings)")
