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

On CPU the convolutions' kernel gradient is written out (:func:`loop_friendly_conv`, passed
to ``nn.Conv(conv_general_dilated=...)``) and each compiled program trains one model: inside
a loop (the layer scan, the training steps), XLA's CPU backend computes the kernel-gradient
convolution of ``jax.grad`` about 15x slower than this form (width 16, batch 64, 8 x 8 images:
39 ms against 2.7 ms per layer and step, forward and backward), and the grouped convolutions
of several vmapped models cost about 2.3x more per model. Module, parameters and
initialization are the same on every backend; the gradients are equal to rounding.
"""

from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

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


_NHWC = ("NHWC", "HWIO", "NHWC")


@jax.custom_vjp
def _same_conv(h: jax.Array, w: jax.Array) -> jax.Array:
    """A stride-1 'SAME' NHWC x HWIO convolution with odd kernel sizes."""
    return lax.conv_general_dilated(h, w, (1, 1), "SAME", dimension_numbers=_NHWC)


def _same_conv_fwd(h, w):
    return _same_conv(h, w), (h, w)


def _same_conv_bwd(res, dy):
    h, w = res
    ph, pw = w.shape[0] // 2, w.shape[1] // 2
    # dx: dy correlated with the flipped kernel, in and out channels swapped.
    dx = lax.conv_general_dilated(dy, jnp.flip(w, (0, 1)).swapaxes(2, 3), (1, 1), "SAME", dimension_numbers=_NHWC)
    # dW[a, b, i, o] = sum_{n, y, x} h_pad[n, y + a, x + b, i] dy[n, y, x, o]: a plain NHWC x HWIO
    # convolution with the input channels as its batch and the examples as its features.
    hp = jnp.pad(h, ((0, 0), (ph, ph), (pw, pw), (0, 0))).transpose(3, 1, 2, 0)
    dw = lax.conv_general_dilated(hp, dy.transpose(1, 2, 0, 3), (1, 1), "VALID", dimension_numbers=_NHWC)
    return dx, dw.transpose(1, 2, 0, 3)


_same_conv.defvjp(_same_conv_fwd, _same_conv_bwd)


def loop_friendly_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                       dimension_numbers=None, feature_group_count=1, precision=None):
    """``lax.conv_general_dilated`` (the signature ``nn.Conv(conv_general_dilated=...)`` calls)
    whose kernel gradient XLA's CPU backend computes as fast inside a loop as outside one.

    Stride-1 'SAME' 2-D convolutions (NHWC x HWIO, odd kernel, no dilation or groups) get the
    same forward and a backward written as two plain convolutions (see the module docstring);
    anything else is ``lax.conv_general_dilated`` itself."""
    dn = lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers)
    kh, kw = rhs.shape[:2] if rhs.ndim == 4 else (0, 0)
    pads = lax.padtype_to_pads(lhs.shape[1:3], (kh, kw), window_strides, padding) if isinstance(padding, str) else padding
    plain = (lhs.ndim == 4 and dn == lax.conv_dimension_numbers(lhs.shape, rhs.shape, _NHWC) and kh % 2 == kw % 2 == 1
             and tuple(window_strides) == (1, 1) and set(lhs_dilation or (1,)) == {1} and set(rhs_dilation or (1,)) == {1}
             and feature_group_count == 1 and precision is None
             and [tuple(p) for p in pads] == [(kh // 2, kh // 2), (kw // 2, kw // 2)])
    if not plain:
        return lax.conv_general_dilated(lhs, rhs, window_strides, padding, lhs_dilation, rhs_dilation,
                                        dimension_numbers, feature_group_count, precision=precision)
    return _same_conv(lhs, rhs)


def _conv(width: int, name: str) -> nn.Conv:
    """The network's 3x3 'SAME' convolution; on CPU with :func:`loop_friendly_conv` (module docstring)."""
    conv = loop_friendly_conv if jax.default_backend() == "cpu" else lax.conv_general_dilated
    return nn.Conv(width, (3, 3), padding="SAME", kernel_init=jinit.lecun_normal(), conv_general_dilated=conv, name=name)


class ConvLayer(nn.Module):
    """``phi(conv3x3(h))``; the second output is its (std, mean, saturation) when ``collect``."""

    width: int
    activation: str
    collect: bool = False

    @nn.compact
    def __call__(self, h, _=None):
        z = _conv(self.width, "conv")(h)
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
        h = _conv(self.width, "input")(h)
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
    cpu_models_per_program = 1  # see the module docstring

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
