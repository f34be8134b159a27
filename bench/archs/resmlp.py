"""``resmlp`` and ``resmlp_ln``: residual MLPs whose blocks run under one ``nn.scan``.

For ``depth = L`` and ``width = n``::

    x --Dense(n_in -> n)--> phi --[h + gate * fc2(phi(fc1(u)))] x L--> Dense(n -> n_out) --> outputs
         "input"                    "blocks", one nn.scan              "output"

``depth`` counts the residual blocks (two ``Dense(n -> n)`` each, ``"fc1"`` and
``"fc2"``); the stem ``"input"`` and the linear readout ``"output"`` come on top.
``u = h`` in ``resmlp``; ``resmlp_ln`` is pre-LN, ``u = LayerNorm(h)`` (``"norm"``),
with a final LayerNorm ``"final_norm"`` before the readout. Each block has a
learnable scalar residual gate ``"gate"``, 1 by default (ReZero and SkipInit set it
to 0, Fixup keeps it as its multiplier). The blocks' parameters are stacked along a
leading axis of length ``L``; each layer's initializer sees one block's shape and
its own key. ``stats`` has one row per block: the residual stream after it.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

import jinit
from bench.archs import Arch, NetSpec
from bench.archs.common import layer_stats, scanned, shaped_reason, stacked_norms

__all__ = ["ResBlock", "ResMLP", "ARCHS"]


class ResBlock(nn.Module):
    """``h + gate * fc2(phi(fc1(u)))``, ``u = h`` or ``LayerNorm(h)``; the second output
    is the new residual stream's (std, mean, saturation) when ``collect``."""

    width: int
    activation: str
    norm: bool = False
    collect: bool = False

    @nn.compact
    def __call__(self, h, _=None):
        u = nn.LayerNorm(name="norm")(h) if self.norm else h
        z = nn.Dense(self.width, kernel_init=jinit.lecun_normal(), name="fc1")(u)
        z = nn.Dense(self.width, kernel_init=jinit.lecun_normal(), name="fc2")(jinit.get_activation(self.activation)(z))
        gate = self.param("gate", jinit.ones(), ())
        h = h + gate * z
        return h, (layer_stats(self.activation, h) if self.collect else None)


class ResMLP(nn.Module):
    """The scanned residual MLP (module docstring). With ``collect`` returns
    ``(outputs, stats)``, ``stats`` of shape ``(depth, 3)``."""

    depth: int
    width: int
    n_out: int
    activation: str
    norm: bool = False
    collect: bool = False

    @nn.compact
    def __call__(self, x):
        h = nn.Dense(self.width, kernel_init=jinit.lecun_normal(), name="input")(x)
        h = jinit.get_activation(self.activation)(h)
        h, stats = scanned(ResBlock, self.depth)(self.width, self.activation, self.norm, self.collect, name="blocks")(h, None)
        if self.norm:
            h = nn.LayerNorm(name="final_norm")(h)
        out = nn.Dense(self.n_out, kernel_init=jinit.lecun_normal(), name="output")(h)
        return (out, stats) if self.collect else out


class ResMLPArch(Arch):
    def __init__(self, name: str, norm: bool):
        self.name, self.norm = name, norm
        self.summary = (
            "residual MLP: stem, then blocks h + gate * fc2(phi(fc1(" + ("LayerNorm(h)" if norm else "h")
            + "))) (blocks under nn.scan)" + (", final LayerNorm" if norm else ", no normalization")
        )

    def check(self, spec: NetSpec) -> str | None:
        return shaped_reason(self.name, spec.activation)

    def module(self, spec: NetSpec, *, collect: bool = False) -> ResMLP:
        return ResMLP(spec.depth, spec.width, spec.n_out, spec.activation, norm=self.norm, collect=collect)

    def structure(self, spec: NetSpec) -> jinit.Structure:
        features = {"residual", "gates"} | ({"norm"} if self.norm else set())
        return jinit.Structure(spec.activation, features, readout="output", blocks=spec.depth,
                               branch_layers=("*fc1/kernel", "*fc2/kernel"), gates="*gate")

    def roles(self, spec: NetSpec) -> list[tuple[str, str]]:
        # The scalar gate scales a branch as a normalization's scale would; it does not grow with width.
        return [("*gate", "norm")]

    def grad_norms(self, spec: NetSpec, grads) -> jax.Array:
        blocks = grads["blocks"]
        return jnp.asarray(stacked_norms(blocks["fc1"]["kernel"], blocks["fc2"]["kernel"]))


ARCHS = [ResMLPArch("resmlp", norm=False), ResMLPArch("resmlp_ln", norm=True)]
