r"""Diagnostics at initialization: does a signal survive the network, forward and backward?

* :func:`signal_propagation` pushes a batch through a ``flax.linen``, ``flax.nnx`` or Equinox
  model and reports, for every layer call (Dense, Conv, DenseGeneral, ..., in execution order,
  one row per layer of a scanned stack), the mean and standard deviation of its output and the
  norm of the gradient of a loss with respect to its kernel, with a verdict: ``"vanishing"``,
  ``"exploding"`` or ``"healthy"``. For residual networks the verdict reads the residual
  stream (the input and outputs of the residual blocks), not the heterogeneous branch outputs.
* :func:`plot_signal_propagation` draws such a report (matplotlib, imported on use).
* :func:`jacobian_spectrum` returns the singular values of the input-output Jacobian at one input:
  all equal to 1 is *dynamical isometry* (Pennington, Schoenholz & Ganguli 2017, "Resurrecting the
  sigmoid in deep learning through dynamical isometry"), which deep linear or tanh networks reach
  with orthogonal weights at criticality and never with Gaussian ones, whose spread grows with depth.

Models are passed as for :func:`jinit.data_dependent.lsuv`: ``(model.apply, params, batch)`` for
linen, ``(model, batch)`` for nnx and Equinox (an Equinox model is applied per example, under
``jax.vmap``).

Example:
  >>> import jax, jax.numpy as jnp, flax.linen as nn, jinit
  >>> from jinit.diagnostics import signal_propagation
  >>> class MLP(nn.Module):
  ...     @nn.compact
  ...     def __call__(self, x):
  ...         for _ in range(10):
  ...             x = jax.nn.relu(nn.Dense(128, kernel_init=jinit.he_normal())(x))
  ...         return nn.Dense(128, kernel_init=jinit.he_normal())(x)
  >>> x = jax.random.normal(jax.random.key(0), (256, 64))
  >>> params = MLP().init(jax.random.key(1), x)
  >>> signal_propagation(MLP().apply, params, x).verdict
  'healthy'
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jinit import _probe

__all__ = [
    "SignalReport",
    "signal_propagation",
    "plot_signal_propagation",
    "jacobian_spectrum",
    "DEFAULT_THRESHOLD",
]

DEFAULT_THRESHOLD = 10.0
"""A factor of more than 10 between the first and last layer counts as vanishing or exploding."""


def _empty() -> np.ndarray:
    return np.zeros(0)


@dataclass(frozen=True)
class SignalReport:
    """Per-layer statistics of one forward and backward pass at initialization.

    Attributes:
      layers: layer names in execution order (``"Dense_3"``; ``"hidden/dense[7]"`` for the 8th
        layer of a scanned stack; ``"shared#1"`` for the second call of a shared layer;
        ``"layers/0"`` for nnx / Equinox attribute paths).
      act_mean, act_std: mean and standard deviation of each layer's output (for ``Dense``: the
        pre-activation), over the batch and the features.
      grad_norm: Frobenius norm of the gradient of the loss with respect to each layer's kernel
        (for a scanned stack: of that layer's slice).
      act_ratio: ``stream_std[-1] / stream_std[0]`` when the report has a residual stream, else
        ``act_std[-1] / act_std[0]``.
      grad_ratio: with a stream: the kernel-gradient norm of a layer of the first residual block
        over that of the same layer of the last block (the layer position furthest from 1);
        else ``grad_norm[0] / grad_norm[-1]``: how the gradient reaching the first layer compares
        with the last one's.
      verdict: ``"exploding"`` if any statistic overflowed (inf/nan) or the ratio furthest from 1
        (in log scale) exceeds ``threshold``; ``"vanishing"`` if the first layer's output (the
        stream's input) is identically 0 or that ratio is below ``1 / threshold``; ``"healthy"``
        otherwise. A ratio 0/0 (a signal that is exactly 0 at both ends) does not count.
      threshold: the factor used (default :data:`DEFAULT_THRESHOLD` = 10).
      stream: the residual blocks in execution order (``"blocks_3"``, ``"ScanBlock_0[5]"`` for
        the 6th iteration of a scanned block); empty when the verdict reads the layers.
      stream_std: standard deviation of the stream: the first block's input, then each block's
        output (``len(stream) + 1`` values).
      stream_at: where each stream value sits among the layer rows (0-based; for plotting).
      basis: ``"stream"`` or ``"layers"``: what the verdict was computed from.
    """

    layers: tuple[str, ...]
    act_mean: np.ndarray
    act_std: np.ndarray
    grad_norm: np.ndarray
    act_ratio: float
    grad_ratio: float
    verdict: str
    threshold: float
    stream: tuple[str, ...] = ()
    stream_std: np.ndarray = field(default_factory=_empty)
    stream_at: np.ndarray = field(default_factory=_empty)
    basis: str = "layers"

    def __str__(self) -> str:
        what = (f"residual stream std last/first {self.act_ratio:.3g} over {len(self.stream)} blocks, "
                f"grad norm first/last block {self.grad_ratio:.3g}") if self.basis == "stream" else \
            f"act std last/first {self.act_ratio:.3g}, grad norm first/last {self.grad_ratio:.3g}"
        rows = [f"verdict: {self.verdict} ({what}, threshold {self.threshold:g})",
                f"{'layer':<24s} {'mean':>11s} {'std':>11s} {'|grad W|':>11s}"]
        for name, m, s, g in zip(self.layers, self.act_mean, self.act_std, self.grad_norm):
            rows.append(f"{name:<24s} {m:>11.4g} {s:>11.4g} {g:>11.4g}")
        if self.basis == "stream":
            rows.append(f"{'residual stream':<24s} {'std':>23s}")
            for name, s in zip(("(input)", *self.stream), self.stream_std):
                rows.append(f"{name:<24s} {s:>23.4g}")
        return "\n".join(rows)


def _variables(params: Any, where: str = "signal_propagation") -> dict:
    if isinstance(params, dict) or hasattr(params, "keys"):
        if "params" in params:
            return dict(params)
        return {"params": params}
    raise TypeError(
        f"{where}: params must be the variables returned by model.init ({{'params': ...}}) "
        f"or the params tree itself, got {type(params).__name__}."
    )


def _default_loss(outputs: Any) -> jax.Array:
    leaves = [x for x in jax.tree.leaves(outputs) if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
    if not leaves:
        raise TypeError("signal_propagation: the model returned no floating-point outputs to build a loss from.")
    return sum(jnp.mean(jnp.square(x.astype(jnp.float32))) for x in leaves)


def _moments(y: jax.Array) -> jax.Array:
    """``[mean, std]`` of all elements, scaled by max|y| so that large finite outputs do not overflow."""
    y = y.astype(jnp.float32)
    m = jnp.max(jnp.abs(y))
    s = jnp.where(jnp.isfinite(m) & (m > 0), m, jnp.float32(1))
    z = y / s
    mz = jnp.mean(z)
    return jnp.stack([s * mz, s * jnp.sqrt(jnp.mean(jnp.square(z - mz)))])


def _ratio(a: float, b: float) -> float:
    """a / b with 0/0 -> nan and x/0 -> inf."""
    if b == 0:
        return math.nan if a == 0 else math.inf
    return a / b


_ACCEPTED = ("a linen apply function (or Module) with params, a flax.nnx Module or an equinox Module")


def _model(where: str, model: Any, args: tuple, names: tuple[str, ...], kwargs: dict,
           forward: Callable | None) -> tuple[str, Callable | Any, Any, tuple]:
    """(framework, linen apply function or the nnx/Equinox model, linen variables, data args)."""
    fw = _probe.framework(model)
    if fw is None:
        raise TypeError(f"{where}: the first argument must be {_ACCEPTED}, got {type(model).__name__}.")
    linen = fw in ("linen", "apply")
    expected = ("params", *names) if linen else names
    if len(args) != len(expected):
        first = "apply_fn" if linen else "model"
        raise TypeError(f"{where}: a {_probe._FW_NAME[fw]} model is called as {where}({first}, "
                        f"{', '.join(expected)}, ...); got {len(args)} positional argument(s) after it.")
    if forward is not None and linen:
        raise TypeError(f"{where}: forward is for nnx / Equinox models; pass keyword arguments for apply instead.")
    if not linen:
        return fw, model, None, args
    apply_fn = model.apply if fw == "linen" else model
    if "mutable" in kwargs:  # apply then returns (output, updated collections)
        return fw, lambda v, b: apply_fn(v, b, **kwargs)[0], _variables(args[0], where), args[1:]
    return fw, lambda v, b: apply_fn(v, b, **kwargs), _variables(args[0], where), args[1:]


def _is_layer(fw: str) -> Callable[[Any], bool]:
    """Layers reported by default: modules owning a kernel (linen, nnx); Equinox Linear/Conv."""
    if fw == "equinox":
        import equinox as eqx

        types = (eqx.nn.Linear, eqx.nn.Conv, eqx.nn.ConvTranspose)
        return lambda m: isinstance(m, types)
    return lambda m: True


def _slice_norms(g: np.ndarray, site: _probe.Site) -> np.ndarray:
    g = np.asarray(g, dtype=np.float64)
    g = np.moveaxis(g, site.stack_axes, tuple(range(len(site.stack_axes)))).reshape((site.slices, -1))
    with np.errstate(over="ignore", invalid="ignore"):
        return np.sqrt(np.sum(g * g, axis=1))


def _rows(probe: _probe.Probe, events: list, grads: dict) -> tuple[list, np.ndarray, list]:
    """Row names, ``(n, 3)`` [mean, std, |grad|] and each row's (site, slice), in execution order."""
    norms = {s.kernel: _slice_norms(grads[s.kernel], s) for s in probe.sites}
    layer_events = [e for e in events if e.kind == "layer"]
    calls = Counter((e.index, e.slice) for e in layer_events)
    shared = {i for (i, _), c in calls.items() if c > 1}
    seen: Counter = Counter()
    names, stats, units = [], [], []
    for e in layer_events:
        site = probe.sites[e.index]
        c = seen[(e.index, e.slice)]
        seen[(e.index, e.slice)] += 1
        names.append((site.module or "<root>") + (f"[{e.slice}]" if e.slice is not None else "")
                     + (f"#{c}" if e.index in shared else ""))
        stats.append([*np.asarray(e.value, np.float64), norms[site.kernel][e.slice or 0]])
        units.append((e.index, e.slice))
    return names, np.asarray(stats, np.float64).reshape((-1, 3)), units


def _stream(probe: _probe.Probe, events: list) -> tuple[list, list, list, list]:
    """The residual stream: block names, stds (first input, then outputs), row positions, rows per block."""
    occurrences, stds, at, groups = [], [], [], []
    open_blocks, row = [], 0
    for e in events:
        if e.kind == "layer":
            row += 1
        elif e.kind == "enter":
            if not stds:
                stds.append(float(e.value[1]))
                at.append(row - 0.5)
            open_blocks.append((e.index, row))
        elif open_blocks:
            index, start = open_blocks.pop()
            occurrences.append(index)
            stds.append(float(e.value[1]))
            at.append(row - 0.5)
            groups.append(list(range(start, row)))
    total, seen, names = Counter(occurrences), Counter(), []
    for index in occurrences:
        name = probe.blocks[index][1] or "<root>"
        names.append(f"{name}[{seen[index]}]" if total[index] > 1 else name)
        seen[index] += 1
    return names, stds, at, groups


def _block_grad_ratio(groups: list, grad: np.ndarray, shapes: list) -> float:
    """First block's kernel-gradient norms over the last block's, same layer position; the
    position furthest from 1 (log scale); 0/0 positions are skipped."""
    if len(groups) < 2:
        return math.nan
    worst = math.nan
    for i, j in zip(groups[0], groups[-1]):
        if shapes[i] != shapes[j]:
            continue
        r = _ratio(grad[i], grad[j])
        if math.isnan(r):
            continue
        if math.isnan(worst) or abs(_log10(r)) > abs(_log10(worst)):
            worst = r
    return worst


def _log10(r: float) -> float:
    return math.log10(r) if r > 0 else -math.inf


def signal_propagation(
    model: Any,
    *args: Any,
    loss_fn: Callable[[Any], jax.Array] | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    stream: Any = None,
    forward: Callable[[Any, Any], Any] | None = None,
    **apply_kwargs: Any,
) -> SignalReport:
    r"""Per-layer activation statistics and kernel-gradient norms of a model at initialization.

    Call forms: ``signal_propagation(model.apply, params, batch)`` (``flax.linen``; ``params``
    are the variables from ``model.init`` or the params tree) and
    ``signal_propagation(model, batch)`` (``flax.nnx``; Equinox, applied per example under
    ``jax.vmap``).

    One jit-compiled ``jax.grad`` of ``loss_fn(outputs)`` with respect to every layer kernel,
    whose forward pass reports each layer call's output mean and std through ordered
    :func:`jax.debug.callback` (see :mod:`jinit._probe`): layers under ``nn.scan`` / ``nnx.scan``
    / ``jax.lax.scan`` (stacked kernels) one row per layer, in execution order; a shared layer
    one row per call (``#0``, ``#1``). Layers are the modules owning a ``kernel`` (linen, nnx)
    or Equinox ``Linear`` / ``Conv`` / ``ConvTranspose``.

    Verdict (see :class:`SignalReport`): with :math:`r_a = \sigma_\text{last}/\sigma_\text{first}`
    and :math:`r_g = \|g_\text{first}\|/\|g_\text{last}\|` (kernel-gradient norm), the one
    further from 1 in log scale decides: above ``threshold`` (10) ``"exploding"``, below
    ``1/threshold`` ``"vanishing"``, else ``"healthy"``; any inf/nan is ``"exploding"`` and an
    identically-zero first output ``"vanishing"``. For a 50-layer relu MLP: N(0, 1) weights
    explode (a factor :math:`\sqrt{n/2}` per layer), U(-0.01, 0.01) vanish, He normal is healthy.

    Residual networks. The first and last layers of a residual network are different kinds of
    maps (an attention query projection, a residual output projection initialized at
    :math:`0.02/\sqrt{2n}` by GPT-2, a Fixup branch's zero layer), so their ratio says nothing
    about the signal. When the model has residual blocks, :math:`\sigma` is the std of the
    residual stream instead (the first block's input and the last block's output) and
    :math:`g` compares each layer of the first block with the same layer of the last block.
    Blocks (``stream``):

    * ``None`` (default): detected. A block is a module call whose output has its input's
      shape and is, in the call's jaxpr, the input plus something (through additions, casts,
      scalar gains and rectifications: ``x + f(x)``, ``relu(x + f(x))``), that calls at least one
      layer and contains no smaller such block. A model without one is judged by its layers.
    * a pattern or sequence of patterns (``fnmatch``) of module paths naming the blocks, e.g.
      ``"blocks_*"``, ``"layers/*"``; each must match a module called with an array, and a
      match inside another match (``"h_0/attn"`` for ``"h_*"``) is part of that block.
    * ``False``: judge by the first and last layers.

    Finite width makes even a well-initialized network's ratios wobble from seed to seed: for relu
    the log of a layer's output std has a standard deviation of about :math:`\sqrt{5L/n}/2` at
    depth :math:`L` and width :math:`n` (Hanin & Rolnick 2018), about 1 for :math:`L = 50, n = 64`.
    Use widths of a few times the depth, or several seeds, before trusting a borderline verdict.
    For relu (positively homogeneous) networks without biases the gradient ratio does not depend
    on the weight scale; the activation ratio carries the verdict there.

    Args:
      model: ``model.apply`` (or the linen Module), an ``nnx.Module`` or an ``equinox.Module``.
      *args: ``params, batch`` (linen) or ``batch`` (nnx, Equinox).
      loss_fn: ``outputs -> scalar`` (close over labels if needed); default: the mean squared
        output (summed over floating-point output leaves).
      threshold: the factor (> 1) beyond which a ratio is vanishing/exploding.
      stream: the residual blocks, see above.
      forward: nnx / Equinox only: ``forward(model, batch)`` runs the model (default
        ``model(batch)`` for nnx, ``jax.vmap(model)(batch)`` for Equinox).
      **apply_kwargs: passed on to the model call (e.g. ``train=False``, ``rngs=...``; for linen
        a ``mutable`` list makes ``apply`` return ``(output, state)``, of which the output is used).

    Returns:
      A :class:`SignalReport`.

    Raises:
      ValueError: no layer is called; a ``stream`` pattern that matches no module.
      TypeError: a ``jax.jit``-compiled apply function; a model of another kind.

    Example:
      >>> import jax, equinox as eqx
      >>> from jinit.diagnostics import signal_propagation
      >>> mlp = eqx.nn.MLP(16, 16, 32, depth=2, key=jax.random.key(0))
      >>> report = signal_propagation(mlp, jax.random.normal(jax.random.key(1), (32, 16)))
      >>> report.layers, report.basis
      (('layers/0', 'layers/1', 'layers/2'), 'layers')
    """
    if model is None or (not callable(model) and _probe.framework(model) is None):
        raise TypeError(f"signal_propagation: apply_fn must be callable (model.apply), or a model: "
                        f"{_ACCEPTED}; got {model!r}.")
    if _probe.framework(model) == "apply" and _probe.is_jitted(model):
        raise TypeError("signal_propagation: apply_fn is a jax.jit-compiled function; its cached trace would "
                        "bypass the layer interception. Pass the un-jitted model.apply.")
    if loss_fn is not None and not callable(loss_fn):
        raise TypeError(f"signal_propagation: loss_fn must be callable, got {loss_fn!r}.")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not threshold > 1:
        raise ValueError(f"signal_propagation: threshold must be a number > 1, got {threshold!r}.")
    blocks = _probe.stream_patterns("signal_propagation", stream)
    fw, target, variables, (batch,) = _model("signal_propagation", model, args, ("batch",), apply_kwargs, forward)
    call = forward
    if call is None and fw == "nnx":
        call = lambda m, b: m(b, **apply_kwargs)  # noqa: E731
    elif call is None and fw == "equinox":
        call = lambda m, b: jax.vmap(lambda e: m(e, **apply_kwargs))(b)  # noqa: E731
    try:
        probe = _probe.build("signal_propagation", target, variables, batch, layers=_is_layer(fw),
                             blocks=blocks, call=call)
    except ValueError as err:
        if "called no" not in str(err):
            raise
        raise ValueError("signal_propagation: no layer with a 'kernel' parameter was called; the report "
                         "covers modules such as nn.Dense / nn.Conv / nn.DenseGeneral (nnx alike) and "
                         "Equinox Linear / Conv.") from None
    loss = loss_fn or _default_loss
    grads, events = probe.recorder(_moments, lambda apply, ks: jax.grad(lambda k: loss(apply(k)))(ks))(
        probe.kernels(), batch)
    return _report(probe, events, jax.device_get(grads), float(threshold))


def _report(probe: _probe.Probe, events: list, grads: dict, threshold: float) -> SignalReport:
    names, stats, units = _rows(probe, events, grads)
    act_mean, act_std, grad_norm = stats[:, 0], stats[:, 1], stats[:, 2]
    stream, stds, at, groups = _stream(probe, events)
    if stream:
        stream_std = np.asarray(stds, np.float64)
        shapes = [probe.sites[i].call_shape for i, _ in units]
        act_ratio = _ratio(stream_std[-1], stream_std[0])
        grad_ratio = _block_grad_ratio(groups, grad_norm, shapes)
        verdict = _verdict(np.concatenate([stream_std, act_std]), grad_norm, act_ratio, grad_ratio, threshold)
        return SignalReport(tuple(names), act_mean, act_std, grad_norm, act_ratio, grad_ratio, verdict, threshold,
                            tuple(stream), stream_std, np.asarray(at, np.float64), "stream")
    act_ratio = _ratio(act_std[-1], act_std[0])
    grad_ratio = _ratio(grad_norm[0], grad_norm[-1])
    verdict = _verdict(act_std, grad_norm, act_ratio, grad_ratio, threshold)
    return SignalReport(tuple(names), act_mean, act_std, grad_norm, act_ratio, grad_ratio, verdict, threshold)


def _verdict(act_std, grad_norm, act_ratio, grad_ratio, threshold) -> str:
    if not (np.all(np.isfinite(act_std)) and np.all(np.isfinite(grad_norm))):
        return "exploding"
    if act_std[0] == 0:
        return "vanishing"
    logs = [_log10(r) for r in (act_ratio, grad_ratio) if not math.isnan(r)]
    if not logs:
        return "healthy"
    worst = max(logs, key=abs)
    if abs(worst) <= math.log10(threshold):
        return "healthy"
    return "exploding" if worst > 0 else "vanishing"


def plot_signal_propagation(report: SignalReport, ax=None):
    """Plots a :class:`SignalReport`: output std and kernel-gradient norm per layer (log scale),
    with the layer names on the x axis, and the residual-stream std when the report has one.

    Zeros and inf/nan (overflow) are left out of the log-scale curves. Needs matplotlib (not a
    dependency of jinit: ``pip install matplotlib``). Returns the axes.

    Example:
      >>> import matplotlib; matplotlib.use("Agg")
      >>> import numpy as np
      >>> from jinit.diagnostics import SignalReport, plot_signal_propagation
      >>> r = SignalReport(("Dense_0", "Dense_1"), np.zeros(2), np.ones(2), np.ones(2), 1.0, 1.0, "healthy", 10.0)
      >>> [t.get_text() for t in plot_signal_propagation(r).get_xticklabels()]
      ['Dense_0', 'Dense_1']
    """
    try:
        import matplotlib.pyplot as plt
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("plot_signal_propagation needs matplotlib: pip install matplotlib") from err
    if not isinstance(report, SignalReport):
        raise TypeError(f"plot_signal_propagation: report must be a SignalReport, got {type(report).__name__}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(max(7.0, 0.18 * len(report.layers)), 4))
    rows = np.arange(len(report.layers))

    def clean(v):
        v = np.asarray(v, dtype=np.float64)
        return np.where(np.isfinite(v) & (v > 0), v, np.nan)

    curves = [clean(report.act_std), clean(report.grad_norm)]
    ax.plot(rows, curves[0], marker=".", label="std of layer output")
    ax.plot(rows, curves[1], marker=".", label="|dL/dW| of layer kernel")
    if report.basis == "stream":
        curves.append(clean(report.stream_std))
        ax.plot(report.stream_at, curves[2], marker="s", ms=3, label="std of residual stream")
    if any(np.any(np.isfinite(c)) for c in curves):
        ax.set_yscale("log")
    step = max(1, math.ceil(len(rows) / 60))  # at most ~60 readable names
    ax.set_xticks(rows[::step], [report.layers[i] for i in rows[::step]], rotation=90, fontsize=6)
    ax.set_xlabel("layer (execution order)")
    ratio = "stream std" if report.basis == "stream" else "std"
    ax.set_title(f"{report.verdict}: {ratio} last/first {report.act_ratio:.2g}, "
                 f"grad first/last {report.grad_ratio:.2g}")
    ax.legend(fontsize=8)
    return ax


def _function(model: Any, args: tuple, kwargs: dict) -> tuple[str, Callable, Any, Any]:
    """(framework, f, params, x): ``f(params, input)`` is the model's output. The parameters are an
    argument, not a closure, so that compiled programs do not embed them as constants."""
    fw, target, variables, (x,) = _model("jacobian_spectrum", model, args, ("x",), kwargs, None)
    if fw in ("linen", "apply"):
        return fw, target, variables, x
    if fw == "nnx":
        from flax import nnx

        graphdef, state = nnx.split(target)  # each call merges a fresh copy: the model is never changed
        return fw, lambda s, v: nnx.merge(graphdef, s)(v, **kwargs), state, x
    import equinox as eqx

    dynamic, static = eqx.partition(target, eqx.is_array)
    return fw, lambda d, v: eqx.combine(d, static)(v, **kwargs), dynamic, x


def _rows_independent(h: Callable, params: Any, x: jax.Array) -> bool:
    """Whether the rows of ``h(params, x)`` depend only on the same row of ``x`` (a batch), checked
    by perturbing the first and the last row (exact zeros elsewhere in the JVP)."""
    jvp = jax.jit(lambda p, v, t: jax.jvp(lambda u: h(p, u), (v,), (t,))[1])
    for row in (0, x.shape[0] - 1):
        t = jnp.zeros_like(x).at[row].set(jax.random.normal(jax.random.key(row), x.shape[1:], x.dtype))
        dy = np.asarray(jvp(params, x, t))
        others = np.delete(dy, row, axis=0)
        if not np.any(dy[row]) or np.any(others):
            return False
    return True


def _check_one_example(f: Callable, params: Any, x: jax.Array, add_batch_axis: bool) -> None:
    """Raises if ``x`` looks like a batch of examples rather than one example (see jacobian_spectrum)."""
    where = "jacobian_spectrum"
    if not add_batch_axis:
        try:
            jax.eval_shape(f, params, x)
        except Exception:
            if x.ndim and x.shape[0] > 1 and _accepts(jax.vmap(f, in_axes=(None, 0)), params, x):
                raise ValueError(
                    f"{where}: the model does not accept x of shape {x.shape}, but does accept each of its "
                    f"{x.shape[0]} rows: x looks like a batch. Pass one example, e.g. x[0].") from None
            raise
        return
    if x.ndim < 2 or x.shape[0] < 2:  # a vector is one example's features
        return
    h = lambda p, v: f(p, v[None])[0]  # noqa: E731
    y = jax.eval_shape(h, params, x)
    if not y.shape or y.shape[0] != x.shape[0] or not _rows_independent(h, params, x):
        return
    raise ValueError(
        f"{where}: x of shape {x.shape} looks like a batch of {x.shape[0]} examples: the model maps its rows "
        "independently, so the Jacobian would be block-diagonal over them (the union of their spectra), not "
        "one example's. Pass one example, e.g. x[0]; or, if x is one example whose leading axis the model "
        "maps row by row, set add_batch_axis=False and pass x[None] (the model then gets x as given).")


def _accepts(f: Callable, *args: Any) -> bool:
    try:
        jax.eval_shape(f, *args)
    except Exception:
        return False
    return True


def jacobian_spectrum(model: Any, *args: Any, add_batch_axis: bool | None = None, **apply_kwargs: Any) -> np.ndarray:
    r"""Singular values (descending) of the input-output Jacobian :math:`J = \partial f(x)/\partial x` at one input.

    Call forms: ``jacobian_spectrum(model.apply, params, x)`` (``flax.linen``) and
    ``jacobian_spectrum(model, x)`` (``flax.nnx``, Equinox).

    Dynamical isometry (Pennington et al. 2017) is every singular value near 1: gradients then
    reach all layers unchanged in every direction, not just on average. For :math:`L` layers the
    spectrum of :math:`J = \prod_l D_l W_l` concentrates at 1 with orthogonal :math:`W_l` and linear
    (or near-linear tanh at small :math:`q^*`) units, while with Gaussian weights its spread
    (:math:`s_\max/s_\min`, or the std of :math:`\log s`) grows with :math:`L` even at criticality.

    ``x`` is one example. With ``add_batch_axis`` (default for linen and nnx, whose models take
    batches) the model is applied to ``x[None]`` and the batch axis of the output dropped; an
    Equinox model (default ``add_batch_axis=False``) is applied to ``x`` itself. Input and output
    are flattened, so ``J`` has shape ``(output size, input size)``; it is computed with
    ``jax.jacfwd`` when the input is the smaller side, else ``jax.jacrev``.

    One example, not a batch. With ``add_batch_axis``, ``x`` is taken for a batch, and a
    ``ValueError`` raised, when it has two or more axes (a vector is one example's features),
    its leading axis has more than one entry, the output's leading
    axis has the same size, and the model maps those rows independently (perturbing the first
    row, or the last, changes only that row of the output): the Jacobian would then be
    block-diagonal over examples. A sequence or an image is one example (attention and
    convolutions mix its rows); a model that maps the rows of one example independently (a
    per-token MLP) needs ``add_batch_axis=False`` and ``x[None]``. Without ``add_batch_axis``,
    an ``x`` the model rejects while it accepts each row is a batch too.

    Example:
      >>> import jax, jax.numpy as jnp, flax.linen as nn
      >>> from jinit.diagnostics import jacobian_spectrum
      >>> model = nn.Dense(8, use_bias=False, kernel_init=lambda k, s, d: 2 * jnp.eye(8, dtype=d))
      >>> x = jnp.ones(8)
      >>> jacobian_spectrum(model.apply, model.init(jax.random.key(0), x), x).round(6).tolist()
      [2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0, 2.0]
    """
    if model is None or (not callable(model) and _probe.framework(model) is None):
        raise TypeError(f"jacobian_spectrum: apply_fn must be callable (model.apply), or a model: "
                        f"{_ACCEPTED}; got {model!r}.")
    fw, f, params, x = _function(model, args, apply_kwargs)
    if add_batch_axis is None:
        add_batch_axis = fw != "equinox"
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.inexact):
        raise TypeError(f"jacobian_spectrum: x must be floating point to differentiate, got {x.dtype}.")
    _check_one_example(f, params, x, add_batch_axis)

    def g(p, v):
        v = v.reshape(x.shape)
        y = f(p, v[None]) if add_batch_axis else f(p, v)
        return jnp.ravel(y[0] if add_batch_axis else y)

    flat = jnp.ravel(x)
    n_out = jax.eval_shape(g, params, flat).size
    jac = jax.jit(jax.jacfwd(g, argnums=1) if flat.size <= n_out else jax.jacrev(g, argnums=1))(params, flat)
    s = np.asarray(jnp.linalg.svd(jac, compute_uv=False), dtype=np.float64)
    return np.sort(s)[::-1]
