"""``cnn``: a vanilla deep CNN (Xiao et al. 2018): 3x3 convolutions only, no skips,
no normalization; the hidden stack runs under ``nn.scan``.

For ``depth = L`` and ``width = n`` (channels), on ``s x s`` images of ``c`` channels::

    x -> (s, s, c) --Conv3x3(c -> n)--> phi --[Conv3x3(n -> n) -> phi] x (L - 1)--> mean(s, s) --> Dense(n -> n_out)
                     "input"                   "hidden/conv", one nn.scan                          "output"

``depth`` counts the conv layers (all 'SAME', stride 1, so every feature map is
``s x s``); ``width`` is their number of channels. The flat features are read as
images: ``n_in = s * s`` is one channel (``digits``: 8 x 8), ``n_in = s * s * 3``
three channels flattened HWC (CIFAR-10: 32 x 32 x 3); any other ``n_in`` is
rejected by :meth:`CNNArch.check`. Global average pooling feeds the linear
readout. ``stats`` has one row per conv layer (its output after ``phi``).
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp

import jinit
from bench.archs import Arch, NetSpec
from bench.archs.common import layer_stats, safe_norm, scanned, shaped_reason, stacked_norms

__all__ = ["image_shape", "ConvLayer", "CNN", "ARCHS"]


def image_shape(n_in: int) -> tuple[int, int] | None:
    """``(s, channels)`` when ``n_in`` flat features are an ``s x s`` image of 1 or 3
    channels (flattened HWC), else None. No ``n_in`` is both (3 is not a square)."""
    for channels in (1, 3):
        if n_in % channels == 0:
            s = math.isqrt(n_in // channels)
            if s > 0 and s * s * channels == n_in:
                return s, channels
    return None


def image_reason(arch: str, n_in: int) -> str | None:
    """Why ``n_in`` flat features cannot be read as an image (None when they can)."""
    if image_shape(n_in) is None:
        return (f"{arch} reads the features as an s x s image of 1 or 3 channels (n_in = s*s or 3*s*s); "
                f"n_in = {n_in} is neither")
    return None


class ConvLayer(nn.Module):
    """``phi(conv3x3(h))``; the second output is its (std, mean, saturation) when ``collect``."""

    width: int
    activation: str
    collect: bool = False

    @nn.compact
    def __call__(self, h, _=None):
        z = nn.Conv(self.width, (3, 3), padding="SAME", kernel_init=jinit.lecun_normal(), name="conv")(h)
        a = jinit.get_activation(self.activation)(z)
        return a, (layer_stats(self.activation, a) if self.collect else None)


class CNN(nn.Module):
    """The scanned vanilla CNN (module docstring). With ``collect`` returns
    ``(outputs, stats)``, ``stats`` of shape ``(depth, 3)``."""

    depth: int
    width: int
    n_out: int
    activation: str
    collect: bool = False

    @nn.compact
    def __call__(self, x):
        s, c = image_shape(x.shape[-1])
        h = x.reshape(x.shape[0], s, s, c)
        h = nn.Conv(self.width, (3, 3), padding="SAME", kernel_init=jinit.lecun_normal(), name="input")(h)
        h = jinit.get_activation(self.activation)(h)
        stats = [layer_stats(self.activation, h)[None]] if self.collect else []
        if self.depth > 1:
            h, s_hidden = scanned(ConvLayer, self.depth - 1)(self.width, self.activation, self.collect, name="hidden")(h, None)
            stats += [s_hidden] if self.collect else []
        out = nn.Dense(self.n_out, kernel_init=jinit.lecun_normal(), name="output")(jnp.mean(h, axis=(1, 2)))
        return (out, jnp.concatenate(stats, axis=0)) if self.collect else out


class CNNArch(Arch):
    name = "cnn"
    summary = "vanilla CNN: 3x3 SAME convs + activation, no skips, no normalization, global average pooling"

    def check(self, spec: NetSpec) -> str | None:
        return shaped_reason(self.name, spec.activation) or image_reason(self.name, spec.n_in)

    def module(self, spec: NetSpec, *, collect: bool = False) -> CNN:
        return CNN(spec.depth, spec.width, spec.n_out, spec.activation, collect=collect)

    def structure(self, spec: NetSpec) -> jinit.Structure:
        return jinit.Structure(spec.activation, {"conv"}, readout="output",
                               conv_kernels=("*input/kernel", "*hidden/conv/kernel"))

    def grad_norms(self, spec: NetSpec, grads) -> jax.Array:
        norms = [safe_norm(grads["input"]["kernel"])[None]]
        if spec.depth > 1:
            norms.append(stacked_norms(grads["hidden"]["conv"]["kernel"]))
        return jnp.concatenate(norms)


ARCHS = [CNNArch()]
