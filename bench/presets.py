"""Named benchmark configurations; most reproduce a published result.

A preset fixes every setting; flags given on the command line override it
(``python -m bench --preset he2015 --steps 200``). Scheme lists name the schemes
a preset needs (``required``: the preset errors if one is not registered) and
those it adds when present (``optional``, e.g. ``orthogonal``); ``schemes=None``
means every scheme registered in :data:`jinit.SCHEMES`.

This module imports nothing heavy, so ``--help`` can list the presets cheaply.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bench.config import BenchConfig, ConfigError

__all__ = ["Preset", "PRESETS", "PresetError", "preset_config", "resolve_schemes"]


class PresetError(ConfigError):
    """The preset cannot run with the schemes registered in this jinit."""


@dataclass(frozen=True)
class Preset:
    """A named configuration.

    Attributes:
      name: ``--preset`` value.
      summary: one line for ``--help``.
      source: the publication it reproduces (or "none").
      description: what it runs and what to expect.
      values: :class:`bench.config.BenchConfig` fields it overrides.
      required: schemes that must be registered.
      optional: schemes added when registered.
    """

    name: str
    summary: str
    source: str
    description: str
    values: dict = field(default_factory=dict)
    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    def config(self, registered: Iterable[str] | None = None) -> BenchConfig:
        """The preset as a :class:`BenchConfig` (schemes resolved against ``registered``,
        default: jinit's registry)."""
        import jinit

        schemes, _ = resolve_schemes(self, jinit.SCHEMES if registered is None else registered)
        return BenchConfig(**{**self.values, "schemes": None if "schemes" not in self.values and not self.required
                              else tuple(schemes), "preset": self.name})


def preset_config(name: str) -> BenchConfig:
    """The :class:`BenchConfig` of preset ``name``; ConfigError listing the presets otherwise."""
    if name not in PRESETS:
        raise ConfigError("preset", f"unknown preset {name!r}; valid presets are {', '.join(PRESETS)}.")
    return PRESETS[name].config()


PRESETS: dict[str, Preset] = {}


def _add(p: Preset) -> None:
    PRESETS[p.name] = p


_add(
    Preset(
        "default",
        "every registered scheme on a 20-layer MLP and a 20-block residual MLP (ReLU, width 32), 3 learning rates, "
        "3 seeds (< 3 min on a 2-core CPU)",
        "none (the benchmark's own default)",
        "Every scheme in jinit's registry on a 20-hidden-layer plain MLP (mlp) and a 20-block residual MLP "
        "(resmlp: x + gate * fc2(relu(fc1(x))), no normalization), ReLU, width 32, SGD with momentum 0.9 at "
        "learning rates 0.001, 0.005, 0.025, 200 steps of batch 64 on the digits data, 3 seeds; each scheme is "
        "ranked at its best learning rate on a validation split. Whole-model schemes run where they apply "
        "(Fixup, ReZero, SkipInit, GPT-2, ZerO: the residual net). Shows which schemes train, which stall "
        "(vanishing signal) and which diverge, and why residual nets need depth-aware init.",
    )
)
_add(
    Preset(
        "quick",
        "smoke test: 4 schemes (Fixup included), depth-3 width-16 ReLU mlp and resmlp, 2 lrs, 40 steps, 2 seeds (seconds)",
        "none (CI smoke test)",
        "A few seconds end to end; checks the installation and the output files, not a scientific result.",
        {"schemes": ("he_normal", "glorot_normal", "normal", "fixup"), "archs": ("mlp", "resmlp"),
         "activations": ("relu",), "depths": (3,), "width": 16, "steps": 40, "batch_size": 64, "seeds": 2,
         "eval_every": 10, "lrs": (0.02, 0.05)},
    )
)
_add(
    Preset(
        "he2015",
        "30-layer ReLU MLP, SGD with momentum: He init trains, Xavier (Glorot) stalls",
        "He, Zhang, Ren & Sun 2015, 'Delving Deep into Rectifiers', ICCV, Sec. 2.2 and Fig. 3",
        "He et al. train a 30-layer ReLU net with SGD + momentum: their init (Var = 2/fan_in, here he_normal / "
        "he_uniform) converges while Xavier (Var = 1/n for square layers, here glorot_normal / glorot_uniform) "
        "stalls: the ReLU halves the signal's second moment at each layer, so after 30 layers it is 2^-30 of "
        "the input and the gradients vanish. Here: a 30-hidden-layer, width-64 MLP on digits, SGD with momentum "
        "0.9 at lr 0.002, 500 steps (the paper used a convnet on ImageNet). Expected: he_* reach the target "
        "loss, glorot_* stay at chance (loss ~ ln 10 = 2.30).",
        {"schemes": ("he_normal", "he_uniform", "glorot_normal", "glorot_uniform"), "activations": ("relu",),
         "archs": ("mlp",), "depths": (30,), "width": 64, "optimizer": "momentum", "batch_size": 128, "lrs": (0.001, 0.002, 0.005),
         "steps": 500, "seeds": 3, "eval_every": 25},
    )
)
_add(
    Preset(
        "glorot2010",
        "5-hidden-layer tanh and sigmoid MLPs: standard init (N(0,1), U[+-1/sqrt(n)]) vs normalized (Glorot) init, "
        "with per-layer saturation",
        "Glorot & Bengio 2010, 'Understanding the difficulty of training deep feedforward neural networks', "
        "AISTATS, Sec. 3-4, Figs. 2-7",
        "Glorot & Bengio train 5-hidden-layer sigmoid / tanh nets with plain SGD. With the 'standard' init "
        "U[+-1/sqrt(fan_in)] (glorot_standard) the signal and the back-propagated gradients shrink layer by "
        "layer and deep sigmoid nets sit on a plateau with saturated top units; the 'normalized' init "
        "(glorot_uniform, Var = 2/(fan_in+fan_out)) keeps activations and gradients at the same scale across "
        "layers and trains faster. N(0, 1) (normal) saturates most tanh units at init. Here: width-128 MLPs "
        "on digits, plain SGD (lr 0.5, batch 32, 600 steps). Expected (tanh): glorot_uniform / glorot_normal "
        "reach a ~10x lower loss than glorot_standard, normal fails. Sigmoid: with the small (standard or "
        "normalized) inits the net stays on the plateau at chance level for these 600 steps (the paper's "
        "sigmoid nets also plateau for long), normal escapes it but overfits. results.json records, per "
        "hidden layer, the fraction of saturated units (|tanh| > 0.99, sigmoid < 0.01 or > 0.99) at init "
        "and after training (saturation.png).",
        {"schemes": ("normal", "glorot_standard", "glorot_uniform", "glorot_normal"),
         "archs": ("mlp",), "activations": ("tanh", "sigmoid"), "depths": (5,), "width": 128, "optimizer": "sgd",
         "lrs": (0.5,), "steps": 600, "batch_size": 32, "seeds": 3, "eval_every": 50},
    )
)
_add(
    Preset(
        "depth",
        "tanh MLPs of depth 10, 50, 100, 200: critical (orthogonal at the mean-field critical point) vs off-critical",
        "Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, 'Deep Information Propagation', ICLR; "
        "Pennington, Schoenholz & Ganguli 2017, 'Resurrecting the sigmoid', NeurIPS",
        "The same schemes at depths 10, 50, 100, 200 (tanh, width 64, SGD + momentum at lr 0.005, 300 steps, "
        "2 seeds). Mean-field theory: signals propagate through about 6 depth scales xi_c; at the critical "
        "point (chi_1 = 1; for tanh without bias sigma_w = 1) xi_c diverges, and with orthogonal weights the "
        "input-output Jacobian is also well conditioned (dynamical isometry). Critical: `critical` (if "
        "registered: orthogonal, sigma_w = 1 for tanh) and glorot_normal (Gaussian, sigma_w = 1: critical "
        "in mean, not isometric). Off-critical: `orthogonal` (if registered: orthogonal but with the "
        "second-moment gain sigma_w ~ 1.59 for tanh, chaotic phase), gain_normal (Gaussian, sigma_w ~ 1.59, "
        "chaotic) and uniform_small (sigma_w ~ 0.05, ordered: the signal vanishes). Expected: every scheme "
        "trains at depth 10; from depth 50-100 on only `critical` does (observed on digits: train loss "
        "~0.3 at depth 200 after 100 steps, the others at chance).",
        {"schemes": ("glorot_normal", "gain_normal", "uniform_small"), "activations": ("tanh",),
         "archs": ("mlp",), "depths": (10, 50, 100, 200), "width": 64, "optimizer": "momentum", "batch_size": 128, "lrs": (0.005,),
         "steps": 300, "seeds": 2, "eval_every": 25},
        optional=("critical", "orthogonal"),
    )
)
_add(
    Preset(
        "critical",
        "200-layer tanh MLPs: orthogonal at criticality vs Glorot / He (needs the `critical` scheme)",
        "Pennington, Schoenholz & Ganguli 2017, 'Resurrecting the sigmoid in deep learning through dynamical "
        "isometry', NeurIPS; Xiao et al. 2018, 'Dynamical Isometry and a Mean Field Theory of CNNs', ICML",
        "Very deep (200 hidden layers, width 64) tanh MLPs; add --depth 200,500 for more. `critical` (orthogonal weights with the "
        "mean-field critical sigma_w for tanh) keeps the input-output Jacobian well conditioned and trains; "
        "he_normal is chaotic for tanh (gradients explode); glorot_normal is critical in mean only, its Jacobian "
        "spectrum spreads with depth and training slows. Observed on digits (2 seeds, 300 steps, lr 0.002): "
        "critical reaches train loss 0.14 and 95% test accuracy; glorot_normal 2.02, orthogonal (tanh gain "
        "1.59, chaotic) and he_normal stay at chance (2.30). At lr 0.005 critical's loss spikes back up.",
        {"schemes": ("critical", "glorot_normal", "he_normal"), "activations": ("tanh",), "depths": (200,),
         "archs": ("mlp",), "width": 64, "optimizer": "momentum", "batch_size": 128, "lrs": (0.002,), "steps": 300, "seeds": 2,
         "eval_every": 25},
        required=("critical",),
        optional=("orthogonal",),
    )
)


def resolve_schemes(preset: Preset, registered: Iterable[str]) -> tuple[list[str], list[str]]:
    """The schemes ``preset`` runs given the registry, and notes on what was left out.

    Raises PresetError if a required scheme is missing.
    """
    registered = list(registered)
    missing = [s for s in preset.required if s not in registered]
    if missing:
        raise PresetError(
            "preset", f"preset {preset.name!r} needs the scheme(s) {', '.join(missing)}, which this jinit does not register "
            f"(registered: {', '.join(registered)})."
        )
    names = preset.values.get("schemes")
    if names is None:
        return registered, []
    chosen = [s for s in preset.required if s not in names] + list(names)
    chosen += [s for s in preset.optional if s in registered and s not in chosen]
    absent = [s for s in list(names) + list(preset.optional) if s not in registered]
    notes = [f"preset {preset.name!r}: scheme(s) {', '.join(absent)} not registered, left out."] if absent else []
    return [s for s in chosen if s in registered], notes
