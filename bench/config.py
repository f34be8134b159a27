"""The benchmark's settings: one frozen dataclass, every default defined once.

The defaults are the ``default`` preset, what a plain ``python -m bench`` runs: every
registered scheme on a 20-layer plain MLP and a 20-block residual MLP (ReLU, width
32) on the digits data, momentum SGD at three learning rates a factor 5 apart, 3
seeds, 200 steps of batch 64 -- sized to finish within 3 minutes on a 2-core CPU.
What it trades: one activation (tanh is in the ``glorot2010``, ``depth`` and
``critical`` presets), a small width, short training and 3 seeds (95% intervals
over 3 seeds are wide: t_{0.975,2} = 4.30).

:class:`BenchConfig` holds everything a run needs; presets
(:mod:`bench.presets`) are named overrides of it and the command line is a
thin layer over both. Invalid values raise :class:`ConfigError` when the
config is built, naming the field, the value and what is valid.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["BenchConfig", "ConfigError", "OPTIMIZERS", "DEFAULT_LRS", "PARAMETRIZATIONS"]

OPTIMIZERS = {
    "sgd": "plain SGD",
    "momentum": "SGD with momentum 0.9 (heavy ball, optax.sgd(lr, momentum=0.9))",
    "adam": "Adam (optax.adam: b1=0.9, b2=0.999, eps=1e-8)",
}
# The parametrizations of jinit.parametrization a run can use (names only: importing
# jinit.parametrization here would make `--help` slow).
PARAMETRIZATIONS = {
    "standard": "the scheme's init, one learning rate for every parameter, no multipliers",
    "ntk": "NTK parametrization: hidden and readout learning rates divided by the fan-in multiplier "
           "(SGD; its square root for Adam)",
    "mup": "maximal update parametrization (Tensor Programs V): readout init scaled up and multiplied "
           "by 1/m in the forward pass, per-role learning rates (mup's MuSGD / MuAdam)",
    "depth_mup": "mup plus residual branches multiplied by sqrt(L0/L) and (Adam) block learning rates "
                 "times sqrt(L0/L) (Tensor Programs VI)",
}
# The learning-rate grid per optimizer when a preset does not set one: three
# points a factor 5 apart around the usual value (25x in all).
DEFAULT_LRS = {"sgd": (0.004, 0.02, 0.1), "momentum": (0.001, 0.005, 0.025), "adam": (0.0002, 0.001, 0.005)}


class ConfigError(ValueError):
    """A setting is invalid; ``field`` names it, the message its value and what is valid."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


def _names(where: str, what: str, value: Any, valid, allow_none: bool = False) -> tuple[str, ...] | None:
    if value is None and allow_none:
        return None
    items = (value,) if isinstance(value, str) else tuple(value)
    unknown = [v for v in items if v not in valid]
    if unknown or not items:
        raise ConfigError(where, f"unknown {what}(s) {', '.join(map(repr, unknown)) or '(none given)'}; valid "
                                 f"{what}s are {', '.join(valid)}.")
    return tuple(dict.fromkeys(items))


def _schemes(value: Any) -> tuple[str, ...] | None:
    """Registered scheme names and parametric ones (``meanfield(sigma_w2=1.5)``), the latter in
    their canonical spelling, so that two spellings of one scheme are one scheme."""
    import jinit

    if value is None:
        return None
    items = (value,) if isinstance(value, str) else tuple(value)
    if not items:
        raise ConfigError("schemes", f"no scheme given; valid schemes are {', '.join(jinit.SCHEMES)}, or parametric "
                                     "ones such as meanfield(sigma_w2=1.5,sigma_b2=0.05).")
    names = []
    for v in items:
        try:
            names.append(jinit.get_scheme(v).name)
        except (ValueError, TypeError) as err:
            raise ConfigError("schemes", str(err)) from err
    return tuple(dict.fromkeys(names))


def _positive_ints(where: str, value: Any) -> tuple[int, ...]:
    items = (value,) if isinstance(value, int) else tuple(value)
    if not items or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in items):
        raise ConfigError(where, f"expected integers >= 1, got {value!r}.")
    return tuple(dict.fromkeys(items))


def _int(where: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ConfigError(where, f"expected an integer >= {low}, got {value!r}.")
    return value


def _lrs(value: Any) -> tuple[float, ...]:
    items = (value,) if isinstance(value, (int, float)) else tuple(value)
    ok = items and all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < math.inf for v in items)
    if not ok:
        raise ConfigError("lrs", f"expected positive finite learning rates, got {value!r}.")
    return tuple(sorted(dict.fromkeys(float(v) for v in items)))


@dataclass(frozen=True)
class BenchConfig:
    """Every setting of a benchmark run.

    Attributes:
      schemes: scheme names of ``jinit.SCHEMES`` or parametric schemes of ``jinit.PARAMETRIC_SCHEMES``
        (``"meanfield(sigma_w2=1.5,sigma_b2=0.05)"``, kept in canonical spelling); None: every registered scheme.
      archs: architectures of :data:`bench.archs.ARCHS`.
      activations: hidden activations (``jinit.ACTIVATIONS``, or the depth-dependent
        shaped ones of ``bench.archs.common.SHAPED_ACTIVATIONS``: mlp only).
      depths: depths to run (hidden layers, residual blocks, conv layers or
        transformer blocks: see each architecture).
      widths: units / channels / model dimension; several widths make a width sweep.
      parametrizations: how init, learning rate and forward multipliers scale with width
        and depth relative to the base model (:data:`PARAMETRIZATIONS`): ``standard``
        (the schemes as they are), ``ntk``, ``mup``, ``depth_mup`` (see
        :mod:`bench.parametrize`).
      base_width, base_depth: the base model the parametrizations are relative to (None:
        the smallest of ``widths`` / ``depths``); at the base every parametrization is
        the standard one, so a learning rate tuned there is the one that transfers.
      optimizer: ``sgd``, ``momentum`` or ``adam``.
      lrs: the learning-rate grid; every (scheme, lr, seed) is trained.
      steps, batch_size: optimizer steps; minibatch size (uniform with replacement).
      seeds: seeds ``0 .. seeds-1`` per (scheme, lr).
      dataset: ``digits``, ``teacher[:...]`` or a path (see :func:`bench.data.load_dataset`).
      val_fraction: fraction of the training split held out to choose learning rates.
      eval_every: full-split evaluations every this many steps (the only host syncs).
      target_loss: ``steps_to_target`` threshold on the train loss (None: not reported).
      last_k: evaluations averaged into ``last_k_val_loss``.
      batch_models: models trained together in one compiled program (None: all of a
        structure on accelerators, a measured default on CPU).
      devices: use the first N devices (None: all).
      preset: the preset this config came from (recorded, not used).
    """

    schemes: tuple[str, ...] | None = None
    archs: tuple[str, ...] = ("mlp", "resmlp")
    activations: tuple[str, ...] = ("relu",)
    depths: tuple[int, ...] = (20,)
    widths: tuple[int, ...] = (32,)
    parametrizations: tuple[str, ...] = ("standard",)
    base_width: int | None = None
    base_depth: int | None = None
    optimizer: str = "momentum"
    lrs: tuple[float, ...] = DEFAULT_LRS["momentum"]
    steps: int = 200
    batch_size: int = 64
    seeds: int = 3
    dataset: str = "digits"
    val_fraction: float = 0.2
    eval_every: int = 50
    target_loss: float | None = 0.5
    last_k: int = 3
    batch_models: int | None = None
    devices: int | None = None
    preset: str = "default"

    def __post_init__(self):
        import jinit
        from bench.archs import ARCHS
        from bench.archs.common import SHAPED_ACTIVATIONS

        set_ = object.__setattr__
        set_(self, "schemes", _schemes(self.schemes))
        set_(self, "archs", _names("archs", "architecture", self.archs, tuple(ARCHS)))
        set_(self, "activations",
             _names("activations", "activation", self.activations, (*jinit.ACTIVATIONS, *SHAPED_ACTIVATIONS)))
        set_(self, "depths", _positive_ints("depths", self.depths))
        set_(self, "optimizer", _names("optimizer", "optimizer", self.optimizer, tuple(OPTIMIZERS))[0])
        set_(self, "lrs", _lrs(self.lrs))
        set_(self, "widths", _positive_ints("widths", self.widths))
        set_(self, "parametrizations", _names("parametrizations", "parametrization", self.parametrizations,
                                              tuple(PARAMETRIZATIONS)))
        for name in ("base_width", "base_depth"):
            if getattr(self, name) is not None:
                _int(name, getattr(self, name))
        for name in ("steps", "batch_size", "seeds", "eval_every", "last_k"):
            _int(name, getattr(self, name))
        if self.batch_models is not None:
            _int("batch_models", self.batch_models)
        if self.devices is not None:
            _int("devices", self.devices)
        if not (isinstance(self.val_fraction, float) and 0 < self.val_fraction < 1):
            raise ConfigError("val_fraction", f"expected a float in (0, 1), got {self.val_fraction!r}.")
        if self.target_loss is not None and not math.isfinite(self.target_loss):
            raise ConfigError("target_loss", f"expected a finite number or None, got {self.target_loss!r}.")
        set_(self, "eval_every", min(self.eval_every, self.steps))

    def replace(self, **changes: Any) -> BenchConfig:
        """A copy with ``changes`` (validated again)."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise ConfigError("replace", f"unknown setting(s) {', '.join(unknown)}; valid settings are "
                                         f"{', '.join(f.name for f in dataclasses.fields(self))}.")
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_preset(cls, name: str = "default", **overrides: Any) -> BenchConfig:
        """The preset ``name`` (see :mod:`bench.presets`) with ``overrides``."""
        from bench.presets import preset_config

        return preset_config(name).replace(**overrides)

    @property
    def base(self) -> tuple[int, int]:
        """``(base_width, base_depth)`` with the defaults resolved."""
        return (self.base_width or min(self.widths), self.base_depth or min(self.depths))

    def eval_steps(self) -> list[int]:
        """Steps at which the model is evaluated: 0, eval_every, ..., steps."""
        return sorted(set(range(0, self.steps, self.eval_every)) | {self.steps})

    def asdict(self) -> dict:
        return dataclasses.asdict(self)
