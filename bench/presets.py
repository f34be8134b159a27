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
         "activations": ("relu",), "depths": (3,), "widths": (16,), "steps": 40, "batch_size": 64, "seeds": 2,
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
         "archs": ("mlp",), "depths": (30,), "widths": (64,), "optimizer": "momentum", "batch_size": 128, "lrs": (0.001, 0.002, 0.005),
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
         "archs": ("mlp",), "activations": ("tanh", "sigmoid"), "depths": (5,), "widths": (128,), "optimizer": "sgd",
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
         "archs": ("mlp",), "depths": (10, 50, 100, 200), "widths": (64,), "optimizer": "momentum", "batch_size": 128, "lrs": (0.005,),
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
         "archs": ("mlp",), "widths": (64,), "optimizer": "momentum", "batch_size": 128, "lrs": (0.002,), "steps": 300, "seeds": 2,
         "eval_every": 25},
        required=("critical",),
        optional=("orthogonal",),
    )
)
_add(
    Preset(
        "depth1000",
        "a vanilla 1000-layer tanh MLP (no skips, no normalization) trained to > 90% test accuracy: `isometric` "
        "init (orthogonal, critical line at q* = 0.01), Adam, 3 lrs (about 3 min on a 2-core CPU)",
        "Pennington, Schoenholz & Ganguli 2017, 'Resurrecting the sigmoid in deep learning through dynamical "
        "isometry: theory and practice', NeurIPS",
        "A 1000-hidden-layer, width-64 tanh MLP initialized with `isometric`: W = sigma_w Q (Q Haar orthogonal), "
        "b ~ N(0, sigma_b^2) at the critical point with fixed point q* = 0.01 (sigma_w = 1.00981, sigma_b = "
        "0.00112; chi_1 = sigma_w^2 E[tanh'(sqrt(q*) z)^2] = 1). Theory: on the critical line with q* > 0 the "
        "pre-activation variance settles at a stable q*, and with orthogonal weights the squared singular values "
        "of the input-output Jacobian spread only by about L (sigma_w^4 E[tanh'^4] - 1) = 0.7 at L = 1000, so "
        "gradients reach every layer. Adam at lrs 1e-5, 3e-5, 1e-4, 300 steps of batch 128, 1 seed (add "
        "--seeds 2 for intervals, twice the time). Observed on digits (one seed, two runs): lr 3e-5 is chosen, "
        "validation loss 0.49-0.58 and 92.5-95.3% test accuracy (above 90% from step 50 on); 1e-5 is slower "
        "(val loss 0.90, 95%); 1e-4 spikes and can collapse late (35% at step 300). At the same depth, "
        "`critical` (sigma_b = 0, whose q decays to 0 like 1/(2l)) reaches val loss 0.65 / 94% with Adam at 3e-5 but only 1.13 / 83% with momentum SGD at 5e-4 "
        "(`isometric`: 0.56 / 95%), and momentum at lr 0.002 collapses both to chance: at this depth the learning "
        "rate matters as much as the init. About 3 minutes on a 2-core CPU (185 s measured on a shared machine: "
        "0.2-0.3 s per step of a 1000-layer model).",
        {"schemes": ("isometric",), "activations": ("tanh",), "archs": ("mlp",), "depths": (1000,),
         "widths": (64,), "optimizer": "adam", "batch_size": 128, "lrs": (1e-5, 3e-5, 1e-4), "steps": 300,
         "seeds": 1, "eval_every": 50},
        required=("isometric",),
    )
)
_add(
    Preset(
        "depth-limits",
        "the deepest tanh MLP (depth 10, 30, 100, 300, 1000) that he_normal, glorot_normal and lecun_normal still "
        "train, against critical and isometric (Adam, 100 steps)",
        "Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, 'Deep Information Propagation', ICLR; "
        "Pennington, Schoenholz & Ganguli 2017, NeurIPS",
        "The classic schemes on the depth1000 protocol (tanh, width 64, Adam, batch 128) with short training "
        "(100 steps, lrs 3e-5 and 3e-4, 1 seed) at depths 10, 30, 100, 300, 1000. A scheme 'trains' at a depth "
        "when its test accuracy at the lr chosen on validation loss is at least 50% (chance: 10%). Mean-field "
        "theory: he_normal (sigma_w^2 = 2) is chaotic for tanh (q* = 0.62, chi_1 = 1.11, xi_c = 22: trainable up to "
        "about 6 xi_c = 130 layers); glorot_normal and lecun_normal (sigma_w = 1, identical on square "
        "layers) are critical in mean (q -> 0 like 1/(2l)) but Gaussian, so their Jacobian spectrum spreads "
        "with depth; `critical` and `isometric` are orthogonal at the critical point. Observed on digits (test "
        "accuracy % at depths 10 / 30 / 100 / 300 / 1000): he_normal 88 / 72 / 33 / 13 / 10, glorot_normal "
        "90 / 89 / 37 / 20 / 18, lecun_normal 90 / 88 / 28 / 17 / 10, critical 94 / 96 / 94 / 61 / 91, "
        "isometric 94 / 96 / 95 / 79 / 95: the classic schemes train up to depth 30 and not at 100 (with "
        "--depth 50,70: he_normal 56 / 49, glorot_normal 73 / 78, lecun_normal 71 / 53), the orthogonal "
        "critical ones at every depth. About 8.5 minutes on a shared 2-core CPU (init and compile 3.5 min of it).",
        {"schemes": ("he_normal", "glorot_normal", "lecun_normal"), "activations": ("tanh",), "archs": ("mlp",),
         "depths": (10, 30, 100, 300, 1000), "widths": (64,), "optimizer": "adam", "batch_size": 128,
         "lrs": (3e-5, 3e-4), "steps": 100, "seeds": 1, "eval_every": 25},
        optional=("critical", "isometric"),
    )
)


_POW2 = tuple(2.0 ** k for k in range(-12, -3))  # 2^-12 .. 2^-4: the grid of the transfer presets
_add(
    Preset(
        "mup-width",
        "learning-rate transfer across width: pre-LN residual MLPs of width 64 to 1024, standard vs muP, Adam, "
        "lr grid in powers of 2",
        "Yang et al. 2022, 'Tensor Programs V: Tuning Large Neural Networks via Zero-Shot Hyperparameter "
        "Transfer', arXiv:2203.03466, Fig. 1 and Table 3",
        "A 2-block pre-LN residual MLP (resmlp_ln, ReLU, he_normal) at widths 64, 128, 256, 512, 1024 under the "
        "standard parametrization and under muP relative to the width-64 base (--parametrization: hidden Adam lr "
        "x 1/m, readout init x sqrt(m) and forward multiplier 1/m), Adam at lrs 2^-12 .. 2^-4, 60 steps of "
        "batch 64, 2 seeds. muP's claim: the best lr stays put as the width grows, while under the standard "
        "parametrization it falls (with Adam about as 1/width). The transfer table of summary.md lists the "
        "best lr per width by final training loss (what muP predicts) and by validation loss; "
        "lr_transfer_width.png is the papers' figure (training loss vs lr, one curve per width). See README "
        "for the measured numbers.",
        {"schemes": ("he_normal",), "archs": ("resmlp_ln",), "activations": ("relu",), "depths": (2,),
         "widths": (64, 128, 256, 512, 1024), "parametrizations": ("standard", "mup"), "optimizer": "adam",
         "lrs": _POW2, "steps": 60, "batch_size": 64, "seeds": 2, "eval_every": 20},
    )
)
_add(
    Preset(
        "mup-depth",
        "learning-rate transfer across depth: residual MLPs of 2 to 64 blocks, standard vs depth-muP, Adam, "
        "lr grid in powers of 2",
        "Yang, Yu, Zhu & Hayou 2023, 'Tensor Programs VI: Feature Learning in Infinite-Depth Neural Networks', "
        "arXiv:2310.02244; Bordelon, Noci, Li, Hanin & Pehlevan 2023, arXiv:2309.16620",
        "Residual MLPs (resmlp, no normalization; resmlp_ln, pre-LN; ReLU, he_normal, width 128) of 2, 8, 32 "
        "and 64 blocks under the standard parametrization and under depth-muP relative to the 2-block base "
        "(each branch's output layer multiplied by sqrt(2/L), Adam lr of the block weights x sqrt(2/L)), Adam "
        "at lrs 2^-12 .. 2^-4, 60 steps of batch 64, 2 seeds. Depth-muP's claim: the best lr stays put as the "
        "depth grows; under the standard parametrization it falls, and without normalization the unscaled "
        "branches make deep nets diverge (the residual stream's variance doubles per He-initialized block). "
        "See README for the measured numbers.",
        {"schemes": ("he_normal",), "archs": ("resmlp", "resmlp_ln"), "activations": ("relu",),
         "depths": (2, 8, 32, 64), "widths": (128,), "parametrizations": ("standard", "depth_mup"),
         "optimizer": "adam", "lrs": _POW2, "steps": 60, "batch_size": 64, "seeds": 2, "eval_every": 20},
    )
)


_add(
    Preset(
        "kernel-shaping",
        "100-layer vanilla MLPs (no skips, no normalization): relu vs TAT leaky ReLU vs DKS tanh, orthogonal "
        "weights, Adam",
        "Martens et al. 2021, 'Rapid training of deep neural networks without skip connections or normalization "
        "layers using Deep Kernel Shaping', arXiv:2110.01765; Zhang et al. 2022, 'Deep Learning without "
        "Shortcuts: Shaping the Kernel with Tailored Rectifiers', ICLR",
        "A 100-hidden-layer, width-64 plain MLP with orthogonal weights (gain sqrt 2 for relu, 1 for the shaped "
        "activations, whose transform carries the gain) and three activations: relu; tat_leaky_relu (TAT: the "
        "negative slope that makes the depth-100 network's C map at 0 equal 0.9, output scaled so that Q(q) = "
        "q); dks_tanh (DKS: gamma (tanh(alpha x + beta) + delta) with Q(1) = 1, C(0) = 0, Q'(1) = 1 and the "
        "network's C'(1) = 1.5), solved by jinit.kernel_shaping as google-deepmind/dks does. Adam at lrs 3e-5, 1e-4, "
        "3e-4, 1e-3, 300 steps of batch 64, 1 seed. The papers' claim: with the shaped activations deep vanilla "
        "nets train nearly as fast as residual ones, where relu nets degrade with depth. See README for the "
        "measured numbers.",
        {"schemes": ("orthogonal",), "archs": ("mlp",), "activations": ("relu", "tat_leaky_relu", "dks_tanh"),
         "depths": (100,), "widths": (64,), "optimizer": "adam", "lrs": (3e-5, 1e-4, 3e-4, 1e-3), "steps": 300,
         "batch_size": 64, "seeds": 1, "eval_every": 50},
    )
)

# The trainability preset's grid: sigma_w^2 from 1 to 4 with the critical value 1.76 (sigma_b^2 = 0.05).
TRAINABILITY_SIGMA_W2 = (1.0, 1.25, 1.5, 1.76, 2.0, 2.5, 3.0, 3.5, 4.0)
_add(
    Preset(
        "trainability",
        "the trainability phase diagram: tanh MLPs at sigma_b^2 = 0.05 over a grid of sigma_w^2 in [1, 4] and "
        "depths 10 to 320, heat map of the training loss and accuracy with the 6 xi_c prediction drawn over it",
        "Schoenholz, Gilmer, Ganguli & Sohl-Dickstein 2017, 'Deep Information Propagation', ICLR, Fig. 5 / 6",
        "Plain tanh MLPs (width 64) initialized with the parametric scheme meanfield(sigma_w2=s, sigma_b2=0.05) "
        "(every layer W ~ N(0, s/fan_in), b ~ N(0, 0.05)) for s in 1, 1.25, 1.5, 1.76, 2, 2.5, 3, 3.5, 4 at depths "
        "10, 20, 40, 80, 160, 320; Adam at lrs 3e-5 and 3e-4, 300 steps of batch 64, 1 seed; each cell at its best "
        "lr by final training loss. The paper's claim: information about the input survives about xi_c layers "
        "(jinit.meanfield.xi_c: 3.6, 15.8, 25.2, 9.1, 7.0 at s = 1, 1.5, 2, 3, 4; infinite at the critical "
        "s = 1.76), and networks train only up to about 6 xi_c layers, so the trainable region is a peak "
        "around the critical point that widens with training time. summary.md has the table (training "
        "accuracy per cell, the deepest depth that trains, 6 xi_c) and phase_diagram.png the heat maps with "
        "6 xi_c drawn over them. About 6.5 minutes on a 2-core CPU. See README for the measured numbers.",
        {"schemes": tuple(f"meanfield(sigma_w2={s:g},sigma_b2=0.05)" for s in TRAINABILITY_SIGMA_W2),
         "archs": ("mlp",), "activations": ("tanh",), "depths": (10, 20, 40, 80, 160, 320), "widths": (64,),
         "optimizer": "adam", "lrs": (3e-5, 3e-4), "steps": 300, "batch_size": 64, "seeds": 1, "eval_every": 100},
    )
)

_add(
    Preset(
        "deep-cnn",
        "deep vanilla tanh CNNs at the critical point (q* = 0.01): delta-orthogonal vs Gaussian conv kernels at "
        "depths 8, 32, 128",
        "Xiao, Bahri, Sohl-Dickstein, Schoenholz & Pennington 2018, 'Dynamical Isometry and a Mean Field Theory "
        "of CNNs: How to Train 10,000-Layer Vanilla Convolutional Neural Networks', ICML, arXiv:1806.05393",
        "The cnn architecture (3x3 SAME convs, tanh, no skips, no normalization, global average pooling; 16 "
        "channels) at depths 8, 32 and 128 with two parametric schemes at the same critical point of tanh (chi_1 "
        "= 1, fixed point q* = 0.01: sigma_w = 1.00981, sigma_b = 0.00112): critical(q_star=0.01,weights=delta) "
        "(every conv kernel zero but its centre, sigma_w H with H orthogonal) and "
        "critical(q_star=0.01,weights=gaussian) (conv kernels N(0, sigma_w^2 / (9 in-channels))). Adam at lrs "
        "3e-4, 1e-3 and 3e-3, 200 steps of batch 64, 1 seed. The paper's claim: at the critical point delta-orthogonal "
        "kernels give dynamical isometry (every spatial frequency of the signal propagates), so the network "
        "trains at depths where Gaussian kernels at the same sigma_w, whose non-uniform spatial modes decay with "
        "depth, do not. About 12-15 minutes on a 2-core CPU. See README for the measured numbers.",
        {"schemes": ("critical(q_star=0.01,weights=delta)", "critical(q_star=0.01,weights=gaussian)"),
         "archs": ("cnn",), "activations": ("tanh",), "depths": (8, 32, 128), "widths": (16,), "optimizer": "adam",
         "lrs": (3e-4, 1e-3, 3e-3), "steps": 200, "batch_size": 64, "seeds": 1, "eval_every": 50},
    )
)


def resolve_schemes(preset: Preset, registered: Iterable[str]) -> tuple[list[str], list[str]]:
    """The schemes ``preset`` runs given the registry, and notes on what was left out.

    Raises PresetError if a required scheme is missing.
    """
    # Parametric schemes ("meanfield(sigma_w2=2)") are built on demand, never registered: the
    # config checks them.
    registered = list(registered) + [s for s in (*preset.required, *(preset.values.get("schemes") or ())) if "(" in s]
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
