r"""Rule sets that reproduce other frameworks' default initialization, for porting.

A model ported from PyTorch, Keras, Flax or Haiku trains like the original only if it
starts from the same distributions. Each function returns rules for
:func:`jinit.init` / :func:`jinit.reinit` that give every parameter its source
framework's default, read in JAX layouts (fans from the layer, as everywhere in jinit):

| source | kernels (``Linear`` / ``Dense`` / ``Conv``) | biases | embeddings |
|---|---|---|---|
| torch | U(±1/√fan_in) (``kaiming_uniform_(a=√5)``) | U(±1/√fan_in) | N(0, 1) |
| keras | U(±√(6/(fan_in+fan_out))) (Glorot uniform) | 0 | U(-0.05, 0.05) |
| flax | truncated normal, Var = 1/fan_in (LeCun) | 0 | N(0, 1/features) |
| haiku | N(0, 1/fan_in) truncated at ±2σ, *parent* σ = 1/√fan_in (Var = 0.774/fan_in) | 0 | (kept) |

Normalization scales are 1 and their biases 0 in all four. Every rule of a set is optional
(a model without embeddings is fine), but a set that selects nothing at all is an error. PyTorch's bias bound uses the
fan-in of the layer's **weight** (``nn.Linear.reset_parameters``, ``_ConvNd.reset_parameters``),
so :func:`fan_in_uniform_bias` needs the layer: it works on models (nnx, Equinox, linen
under :func:`jinit.init`) and on bare trees with ``layouts=``, and raises otherwise.

Sources: PyTorch ``torch/nn/modules/linear.py`` and ``conv.py`` (``reset_parameters``),
``torch/nn/modules/sparse.py`` (``Embedding``: ``normal_``); Keras 3 ``Dense``/``Conv``
(``glorot_uniform``, ``zeros``) and ``Embedding`` (``"uniform"``: U(-0.05, 0.05)); Flax
``linen.linear`` (``default_kernel_init = lecun_normal()``, ``default_embed_init =
variance_scaling(1.0, 'fan_in', 'normal', out_axis=0)``); Haiku ``Linear`` / ``ConvND``
(``TruncatedNormal(1 / sqrt(fan_in))``, whose ``stddev`` is the parent's).

Example:
  >>> import jax, equinox as eqx, jinit
  >>> from jinit.porting import torch_rules
  >>> linear = eqx.nn.Linear(100, 10, key=jax.random.key(0))
  >>> ported = jinit.reinit(jax.random.key(1), linear, torch_rules())
  >>> bool(abs(ported.bias).max() <= 0.1)  # 1/sqrt(fan_in = 100)
  True
"""

from __future__ import annotations

import math
from typing import Any

from jinit import basic, variance
from jinit.basic import truncated_normal_std
from jinit.layout import Layout
from jinit.tree import Rule

__all__ = ["fan_in_uniform_bias", "torch_rules", "keras_rules", "flax_rules", "haiku_rules"]

_KERNELS = ("role:kernel", "role:attention_out", "*kernel")
_BIASES = ("role:bias", "*bias")


class fan_in_uniform_bias:  # noqa: N801 - used like the factories
    r"""PyTorch's default bias: :math:`b \sim U[-1/\sqrt{n}, 1/\sqrt{n})`, :math:`n` the
    fan-in of the layer's kernel (not of the bias, which has no fans).

    A layer-aware initializer: :func:`jinit.init` / :func:`jinit.reinit` call
    :meth:`for_layout` with the leaf's :class:`~jinit.layout.Layout`, which carries the
    kernel's fan-in when the layer is known. Called directly it raises.

    Example:
      >>> import jax, jinit
      >>> from jinit.layout import Layout
      >>> from jinit.porting import fan_in_uniform_bias
      >>> init = fan_in_uniform_bias().for_layout(Layout((8,), (8,), role="bias", fan_in=16))
      >>> bool(abs(init(jax.random.key(0), (8,))).max() <= 0.25)
      True
    """

    layer_aware = True
    __name__ = "fan_in_uniform_bias"

    def for_layout(self, layout: Layout):
        if layout.fan_in is None:
            raise ValueError(
                f"fan_in_uniform_bias needs the fan-in of the layer's kernel, and the layout of this leaf "
                f"({layout.describe()}) does not say it: pass the model itself (jinit.init for linen, "
                "jinit.reinit(key, model, rules) for nnx/Equinox) or layouts=jinit.linen_layouts(module, *inputs)."
            )
        bound = 1.0 / math.sqrt(layout.fan_in)
        return basic.uniform(-bound, bound)

    def __call__(self, key: Any, shape: Any, dtype: Any = None, out_sharding: Any = None):
        raise TypeError(
            "fan_in_uniform_bias depends on the layer's kernel: use it in rules for jinit.init / jinit.reinit, "
            "which know the layer, or call .for_layout(layout)."
        )

    def __repr__(self) -> str:
        return "fan_in_uniform_bias()"


def _norms() -> list[Rule]:
    return [Rule("role:scale", basic.ones(), required=False, what="normalization scales"),
            Rule("role:norm_bias", basic.zeros(), required=False, what="normalization biases")]


def torch_rules() -> list[Rule]:
    """PyTorch's defaults: ``nn.Linear`` / ``nn.ConvNd`` weights ``kaiming_uniform_(a=√5)``
    (= U(±1/√fan_in)), biases U(±1/√fan_in) of the weight's fan-in, ``nn.Embedding`` N(0, 1),
    ``nn.LayerNorm`` 1 and 0.

    Example:
      >>> [rule.what for rule in __import__("jinit").porting.torch_rules()]
      ['normalization scales', 'normalization biases', 'embeddings', 'kernels', 'biases']
    """
    return _norms() + [
        Rule(("role:embedding", "*embedding"), basic.normal(1.0), required=False, what="embeddings"),
        Rule(_KERNELS, variance.he_uniform(negative_slope=math.sqrt(5.0)), required=False, what="kernels"),
        Rule(_BIASES, fan_in_uniform_bias(), required=False, what="biases"),
    ]


def keras_rules() -> list[Rule]:
    """Keras' defaults: ``glorot_uniform`` kernels, zero biases, ``Embedding`` U(-0.05, 0.05),
    normalization 1 and 0.

    Example:
      >>> len(__import__("jinit").porting.keras_rules())
      5
    """
    return _norms() + [
        Rule(("role:embedding", "*embedding"), basic.uniform(-0.05, 0.05), required=False, what="embeddings"),
        Rule(_KERNELS, variance.glorot_uniform(), required=False, what="kernels"),
        Rule(_BIASES, basic.zeros(), required=False, what="biases"),
    ]


def flax_rules() -> list[Rule]:
    """Flax's defaults: LeCun truncated-normal kernels (``jax.nn.initializers.lecun_normal``,
    Var = 1/fan_in), zero biases, ``Embed`` N(0, 1/features), normalization 1 and 0.

    Example:
      >>> len(__import__("jinit").porting.flax_rules())
      5
    """
    return _norms() + [
        Rule(("role:embedding", "*embedding"), variance.variance_scaling(1.0, "fan_in", "normal", in_axis=-1,
                                                                          out_axis=0), required=False,
             what="embeddings"),
        Rule(_KERNELS, variance.variance_scaling(1.0, "fan_in", "truncated_normal"), required=False,
             what="kernels"),
        Rule(_BIASES, basic.zeros(), required=False, what="biases"),
    ]


def haiku_rules() -> list[Rule]:
    """Haiku's defaults for ``hk.Linear`` / ``hk.ConvND``: ``TruncatedNormal(stddev=1/√fan_in)``,
    a normal truncated at ±2 parent σ **without** variance correction (Var = 0.7737/fan_in),
    zero biases, normalization 1 and 0.

    Example:
      >>> len(__import__("jinit").porting.haiku_rules())
      4
    """
    parent_scale = truncated_normal_std(-2.0, 2.0) ** 2  # parent sigma^2 = 1/fan_in
    return _norms() + [
        Rule(_KERNELS, variance.variance_scaling(parent_scale, "fan_in", "truncated_normal"), required=False,
             what="kernels"),
        Rule(_BIASES, basic.zeros(), required=False, what="biases"),
    ]
