"""``transformer`` and ``transformer_causal``: a small pre-LN transformer classifier
over the image's rows as tokens; the blocks run under one ``nn.scan``.

For ``depth = L`` and ``width = n`` (the model dimension), on ``T`` tokens of ``F`` features::

    x -> (T, F) --Dense(F -> n) + pos--> [x + attn(LN1(x)); x + mlp(LN2(x))] x L --> LN --> pool --> Dense(n -> n_out)
                  "embed"   "pos"         "blocks", one nn.scan                    "final_norm"        "output"

The flat features are read as an image (see :func:`bench.archs.cnn.image_shape`)
whose rows are the tokens: ``n_in = s * s`` gives ``T = F = s`` (``digits``: 8 tokens
of 8 pixels), ``n_in = s * s * 3`` gives ``T = s`` rows of ``F = 3 s`` values
(CIFAR-10: 32 tokens of 96); any other ``n_in`` is rejected by ``check``. ``depth``
counts the blocks; each has ``nn.MultiHeadDotProductAttention`` (``"attn"``,
``max(1, n // 16)`` heads, so ``n`` must be a multiple of the head count) and an
MLP ``"mlp"`` (``fc1``: ``n -> 2n``, ``phi``, ``fc2``: ``2n -> n``). ``"pos"`` is a
learned ``(T, n)`` position table, N(0, 0.02^2). ``transformer`` pools by the mean
over tokens; ``transformer_causal`` masks attention causally and reads the last
token. ``stats`` has one row per block: the residual stream after it.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

import jinit
from bench.archs import Arch, NetSpec
from bench.archs.cnn import image_shape
from bench.archs.common import layer_stats, scanned, shaped_reason, stacked_norms

__all__ = ["tokens_shape", "heads", "MLPBranch", "Block", "Transformer", "ARCHS"]


_BLOCK_KERNELS = ("attn/query", "attn/key", "attn/value", "attn/out", "mlp/fc1", "mlp/fc2")


def tokens_shape(n_in: int) -> tuple[int, int] | None:
    """``(T, F)``: the image's rows as ``T`` tokens of ``F`` features, or None."""
    image = image_shape(n_in)
    return None if image is None else (image[0], n_in // image[0])


def heads(width: int) -> int:
    """The number of attention heads at model dimension ``width``."""
    return max(1, width // 16)


class MLPBranch(nn.Module):
    """``fc2(phi(fc1(x)))``, ``fc1``: ``n -> 2n``, ``fc2``: ``2n -> n``."""

    width: int
    activation: str

    @nn.compact
    def __call__(self, x):
        z = nn.Dense(2 * self.width, kernel_init=jinit.lecun_normal(), name="fc1")(x)
        z = jinit.get_activation(self.activation)(z)
        return nn.Dense(self.width, kernel_init=jinit.lecun_normal(), name="fc2")(z)


class Block(nn.Module):
    """``x + attn(LN1(x))`` then ``x + mlp(LN2(x))``; the second output is the residual
    stream's (std, mean, saturation) when ``collect``."""

    width: int
    activation: str
    causal: bool = False
    collect: bool = False

    @nn.compact
    def __call__(self, x, _=None):
        mask = nn.make_causal_mask(jnp.ones(x.shape[:2])) if self.causal else None
        attn = nn.MultiHeadDotProductAttention(num_heads=heads(self.width), name="attn")
        x = x + attn(nn.LayerNorm(name="ln1")(x), mask=mask)
        x = x + MLPBranch(self.width, self.activation, name="mlp")(nn.LayerNorm(name="ln2")(x))
        return x, (layer_stats(self.activation, x) if self.collect else None)


class Transformer(nn.Module):
    """The scanned transformer (module docstring). With ``collect`` returns
    ``(outputs, stats)``, ``stats`` of shape ``(depth, 3)``."""

    depth: int
    width: int
    n_out: int
    activation: str
    causal: bool = False
    collect: bool = False

    @nn.compact
    def __call__(self, x):
        n_tokens, n_features = tokens_shape(x.shape[-1])
        h = x.reshape(x.shape[0], n_tokens, n_features)
        h = nn.Dense(self.width, kernel_init=jinit.lecun_normal(), name="embed")(h)
        h = h + self.param("pos", jinit.normal(stddev=0.02), (n_tokens, self.width))
        h, stats = scanned(Block, self.depth)(self.width, self.activation, self.causal, self.collect, name="blocks")(h, None)
        h = nn.LayerNorm(name="final_norm")(h)
        pooled = h[:, -1] if self.causal else jnp.mean(h, axis=1)
        out = nn.Dense(self.n_out, kernel_init=jinit.lecun_normal(), name="output")(pooled)
        return (out, stats) if self.collect else out


class TransformerArch(Arch):
    def __init__(self, name: str, causal: bool):
        self.name, self.causal = name, causal
        self.summary = (
            "pre-LN transformer over image rows as tokens (blocks under nn.scan), "
            + ("causal attention, last-token readout" if causal else "mean-pooled tokens")
        )

    def check(self, spec: NetSpec) -> str | None:
        if shaped_reason(self.name, spec.activation):
            return shaped_reason(self.name, spec.activation)
        if tokens_shape(spec.n_in) is None:
            return (f"{self.name} reads the features as the rows of an s x s image of 1 or 3 channels "
                    f"(n_in = s*s or 3*s*s); n_in = {spec.n_in} is neither")
        if spec.width % heads(spec.width):
            return f"{self.name}: width {spec.width} is not a multiple of its {heads(spec.width)} attention heads"
        return None

    def parametrization_issue(self, spec: NetSpec, base: NetSpec) -> str | None:
        # Attention logits are scaled by 1/sqrt(head_dim); µP needs 1/head_dim when the head
        # dimension grows. With a constant head dimension (more heads) the two agree.
        h, h0 = spec.width // heads(spec.width), base.width // heads(base.width)
        if h != h0:
            return (f"the head dimension changes from {h0} (width {base.width}) to {h} (width {spec.width}) and the "
                    "attention logits are scaled by 1/sqrt(head_dim), not 1/head_dim as mup needs; use widths >= 16 "
                    "(head dimension 16: more heads, not wider ones).")
        return None

    def module(self, spec: NetSpec, *, collect: bool = False) -> Transformer:
        return Transformer(spec.depth, spec.width, spec.n_out, spec.activation, causal=self.causal, collect=collect)

    def structure(self, spec: NetSpec) -> jinit.Structure:
        return jinit.Structure(spec.activation, {"residual", "norm", "attention"}, readout="output",
                               blocks=spec.depth, branch_layers=("*mlp/fc1/kernel", "*mlp/fc2/kernel"),
                               residual_outputs=("*attn/out/kernel", "*mlp/fc2/kernel"), residual_per_block=2)

    def grad_norms(self, spec: NetSpec, grads) -> jax.Array:
        blocks = grads["blocks"]
        leaves = []
        for path in _BLOCK_KERNELS:
            module, layer = path.split("/")
            leaves.append(blocks[module][layer]["kernel"])
        return stacked_norms(*leaves)


ARCHS = [TransformerArch("transformer", causal=False), TransformerArch("transformer_causal", causal=True)]
