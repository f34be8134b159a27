"""Test helpers for the benchmark's MLP: an independent reference forward pass and
conversions between the scanned parameters of ``bench.archs.mlp.MLP`` and the
layer-per-``Dense`` ones of ``bench.archs.mlp.UnrolledMLP``."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

import jinit


def unrolled_apply(params: Any, x: jax.Array, activation: str, depth: int) -> jax.Array:
    """Reference forward pass: a Python loop over the scanned stack's slices."""
    phi = jinit.get_activation(activation)
    p = params["input"]["dense"]
    h = phi(x @ p["kernel"] + p["bias"])
    stack = params["hidden"]["dense"] if depth > 1 else None
    for i in range(depth - 1):
        h = phi(h @ stack["kernel"][i] + stack["bias"][i])
    return h @ params["output"]["kernel"] + params["output"]["bias"]


def to_unrolled(params: Any, depth: int) -> dict:
    """MLP params -> UnrolledMLP params (``layer_i`` / ``output``)."""
    out = {"layer_0": dict(params["input"]["dense"])}
    for i in range(1, depth):
        out[f"layer_{i}"] = jax.tree.map(lambda a, i=i: a[i - 1], dict(params["hidden"]["dense"]))
    out["output"] = dict(params["output"])
    return out


def from_unrolled(params: Any, depth: int) -> dict:
    """UnrolledMLP params -> MLP params (re-stacks the hidden layers)."""
    out = {"input": {"dense": dict(params["layer_0"])}, "output": dict(params["output"])}
    if depth > 1:
        layers = [params[f"layer_{i}"] for i in range(1, depth)]
        out["hidden"] = {"dense": jax.tree.map(lambda *a: jnp.stack(a), *layers)}
    return out
