"""The benchmark's architectures: one module each, registered here.

An architecture (:class:`Arch`) turns a :class:`NetSpec` into a Flax linen module
whose ``__call__`` takes the flat features ``(batch, n_in)`` and returns the
outputs (with ``collect=True``: ``(outputs, stats)``, ``stats`` of shape
``(n_layers, 3)``: per layer the std, mean and saturated fraction of its output),
names the network's parts for whole-model schemes (:meth:`Arch.structure`, a
:class:`jinit.Structure`) and computes per-layer gradient norms. Hidden stacks
run under ``nn.scan``, so compile time does not grow with depth.

Adding an architecture: one module defining an :class:`Arch` subclass, and one
line in :data:`ARCHS`.
"""

from __future__ import annotations

from dataclasses import dataclass

import flax.linen as nn
import jax

import jinit

__all__ = ["NetSpec", "Arch", "ARCHS", "get_arch"]


@dataclass(frozen=True)
class NetSpec:
    """Everything that fixes a network's structure (and so its compiled code)."""

    arch: str
    depth: int
    width: int
    activation: str
    n_in: int
    n_out: int
    task: str = "classification"

    def __post_init__(self):
        if self.depth < 1 or self.width < 1:
            raise ValueError(f"depth and width must be >= 1, got depth={self.depth}, width={self.width}.")
        from bench.archs.common import check_activation

        check_activation(self.activation)  # plain (jinit.ACTIVATIONS) or shaped (SHAPED_ACTIVATIONS)


class Arch:
    """Interface of a benchmark architecture (see the module docstring)."""

    name: str = ""
    summary: str = ""
    # Models per compiled program on CPU when --batch-models is not set (None: the runner's
    # default, bench.runner.CPU_BATCH_MODELS).
    cpu_models_per_program: int | None = None

    def check(self, spec: NetSpec) -> str | None:
        """Why this architecture cannot be built for ``spec`` (None when it can)."""
        return None

    def module(self, spec: NetSpec, *, collect: bool = False) -> nn.Module:
        """The Flax module (default initializers: jinit rules set them at init)."""
        raise NotImplementedError

    def structure(self, spec: NetSpec) -> jinit.Structure:
        """The network's parts, for :meth:`jinit.Scheme.rules`."""
        raise NotImplementedError

    def grad_norms(self, spec: NetSpec, grads) -> jax.Array:
        """Per-layer Frobenius norm of the loss gradient of the layer's kernels,
        ``(n_layers,)``, one entry per row of the module's ``stats``."""
        raise NotImplementedError

    def roles(self, spec: NetSpec) -> list[tuple[str, str]]:
        """``(pattern, role)`` rules for :func:`jinit.parametrization.roles` where the
        defaults (read from how each kernel grows with width) do not decide."""
        return []

    def parametrization_issue(self, spec: NetSpec, base: NetSpec) -> str | None:
        """Why a width/depth parametrization relative to ``base`` cannot be expressed on
        this architecture (None when it can)."""
        return None

    def readout_grad_norm(self, grads) -> jax.Array:
        from bench.archs.common import safe_norm

        return safe_norm(grads["output"]["kernel"])


def _registry() -> dict[str, Arch]:
    # The registration: one line per architecture module.
    from bench.archs import cnn, mlp, resmlp, transformer

    archs = [mlp.ARCH, *resmlp.ARCHS, *cnn.ARCHS, *transformer.ARCHS]
    return {a.name: a for a in archs}


ARCHS: dict[str, Arch] = _registry()


def get_arch(name: str) -> Arch:
    """The architecture registered as ``name``; ValueError listing the valid names otherwise."""
    if name not in ARCHS:
        raise ValueError(f"unknown architecture {name!r}; valid architectures are {', '.join(ARCHS)}.")
    return ARCHS[name]
