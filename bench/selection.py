"""Best-learning-rate selection and the statistics over seeds (numpy + scipy).

Every (arch, scheme, activation, depth, width, lr, seed) is trained. A scheme
is compared with the others of its *group* (arch, activation, depth, width) at
its own best learning rate, chosen on the validation split:

* the score of an lr is ``(f, m)``: ``f`` the seeds that diverged (or have no
  final validation loss), ``m`` the mean final validation loss of the others;
  the best lr has the lowest score (a diverged seed is worse than any loss;
  ties go to the smaller lr);
* test numbers are reported at the best lr only, so the test split plays no
  part in the choice;
* uncertainty is a Student-t 95% interval over seeds, and a scheme is compared
  with its group's best by a paired t-test over seeds: seed ``s`` draws the same
  minibatches in every run, so two runs with the same seed form a pair.

All functions are pure, over the run records of ``results.json`` (plain dicts,
``null`` for missing or non-finite numbers).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

__all__ = [
    "GROUP_KEYS",
    "SIGNIFICANCE",
    "best_lr",
    "by_group",
    "ci95",
    "group_key",
    "lr_robustness",
    "lr_score",
    "paired_test",
    "select",
    "trains",
]

# A group: the schemes ranked against each other share these.
GROUP_KEYS = ("arch", "activation", "depth", "width", "parametrization")

# p-value below which a scheme differs significantly from its group's best.
SIGNIFICANCE = 0.05


def group_key(record: Mapping) -> tuple:
    """``(arch, activation, depth, width, parametrization)`` of a run record or selection
    entry (records without a parametrization are ``standard``)."""
    return tuple(record.get(k, "standard") if k == "parametrization" else record[k] for k in GROUP_KEYS)


def _finite(x) -> bool:
    return x is not None and math.isfinite(x)


def _mean(values) -> float | None:
    """Mean of the finite values; None when there are none."""
    vals = [float(v) for v in values if _finite(v)]
    return float(np.mean(vals)) if vals else None


def ci95(values: Sequence[float]) -> tuple[float | None, float | None]:
    """Mean and half-width of the Student-t 95% confidence interval of the mean.

    ``half = t_{0.975, n-1} * s / sqrt(n)``, with ``s`` the sample standard
    deviation (``ddof=1``) of the ``n`` values. The values are used as given:
    the caller drops missing or non-finite ones (a NaN in gives NaN out).
    Returns ``(None, None)`` for no values and ``(mean, None)`` for one value.
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0:
        return None, None
    mean = float(x.mean())
    if x.size < 2:
        return mean, None
    return mean, float(stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))


def paired_test(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of the paired t-test of ``mean(a - b) = 0``.

    ``d_i = a_i - b_i``, ``t = mean(d) / (s_d / sqrt(n))`` (``s_d`` with
    ``ddof=1``), ``p = 2 P(T_{n-1} > |t|)``: the same as
    ``scipy.stats.ttest_rel``. ``a`` and ``b`` are aligned by seed and used as
    given (the caller drops pairs with a missing value). None for fewer than 2
    pairs. When every difference is the same (``s_d = 0``) ``t`` is undefined:
    ``p = 1.0`` if they are all zero (identical results), else ``0.0`` (a
    constant shift, the limit ``|t| -> inf``).
    """
    if len(a) != len(b):
        raise ValueError(f"paired_test needs aligned samples, got {len(a)} and {len(b)} values")
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = d.size
    if n < 2:
        return None
    sd = float(d.std(ddof=1))
    if sd == 0.0:
        return 1.0 if float(d.mean()) == 0.0 else 0.0
    t = float(d.mean()) / (sd / math.sqrt(n))
    return float(2.0 * stats.t.sf(abs(t), n - 1))


def _failed(run: Mapping, metric: str = "final_val_loss") -> bool:
    """A seed that counts as worst: diverged, or no finite ``metric`` (final validation loss)."""
    return bool(run["diverged"]) or not _finite(run.get(metric))


def lr_score(runs: Sequence[Mapping], metric: str = "final_val_loss") -> tuple[int, float]:
    """Score ``(f, m)`` of one lr from its seeds' runs; lower is better.

    ``f`` = seeds that diverged or have a null ``metric`` (default: the final
    validation loss), ``m`` = mean ``metric`` of the other seeds (``inf`` when
    none). Compared lexicographically, so one more diverged seed loses to any loss.
    """
    ok = [r[metric] for r in runs if not _failed(r, metric)]
    return len(runs) - len(ok), (float(np.mean(ok)) if ok else math.inf)


def best_lr(runs_by_lr: Mapping[float, Sequence[Mapping]], metric: str = "final_val_loss") -> float:
    """``argmin_lr (lr_score(runs_by_lr[lr], metric), lr)``: the lowest score, ties to the smaller lr."""
    return min(runs_by_lr, key=lambda lr: (lr_score(runs_by_lr[lr], metric), lr))


def trains(runs: Sequence[Mapping], target_loss: float | None) -> bool:
    """Whether the scheme trains at one lr: no seed diverged and
    ``mean final train loss <= threshold``.

    ``threshold = target_loss``, or when that is None ``0.5 * mean initial
    train loss`` (``loss_curve[0]``; a null there is an overflow and counts as
    ``inf``). A mean over no finite final train loss does not train.
    """
    if any(r["diverged"] for r in runs):
        return False
    final = _mean(r["final_train_loss"] for r in runs)
    if final is None:
        return False
    if target_loss is None:
        initial = [math.inf if r["loss_curve"][0][1] is None else r["loss_curve"][0][1] for r in runs]
        target_loss = 0.5 * float(np.mean(initial))
    return final <= target_loss


def lr_robustness(runs_by_lr: Mapping[float, Sequence[Mapping]], target_loss: float | None) -> float:
    """``k / n``: ``k`` the lrs on which the scheme :func:`trains`, ``n`` the lrs it ran."""
    return sum(trains(runs, target_loss) for runs in runs_by_lr.values()) / len(runs_by_lr)


def _cells(runs: Sequence[Mapping]) -> dict[tuple, dict[float, list[Mapping]]]:
    """``{(arch, activation, depth, width, scheme): {lr: [runs]}}``."""
    cells: dict[tuple, dict[float, list]] = defaultdict(lambda: defaultdict(list))
    for r in runs:
        cells[(*group_key(r), r["scheme"])][r["lr"]].append(r)
    return cells


def _init_std_last(runs: Sequence[Mapping]) -> float | None:
    """Mean over seeds of the last hidden layer's activation std at init; a null
    std is an overflow and counts as ``inf``."""
    last = [r["init_stats"]["activation_std"][-1]
            for r in runs if r.get("init_stats") and r["init_stats"]["activation_std"]]
    if not last:
        return None
    return float(np.mean([math.inf if v is None else v for v in last]))


def _entry(key: tuple, runs_by_lr: Mapping[float, list[Mapping]], target_loss: float | None) -> dict:
    """The selection entry of one (group, scheme), before ranking."""
    lr = best_lr(runs_by_lr)
    at = runs_by_lr[lr]
    val_mean, val_ci = ci95([r["final_val_loss"] for r in at if not _failed(r)])
    acc_mean, acc_ci = ci95([r["test_accuracy"] for r in at if _finite(r["test_accuracy"])])
    test_mean, test_ci = ci95([r["test_loss"] for r in at if _finite(r["test_loss"])])
    steps = [r["steps_to_target"] for r in at if r["steps_to_target"] is not None]
    return {
        **dict(zip(GROUP_KEYS, key)), "scheme": key[-1],
        "best_lr": lr, "lrs": sorted(runs_by_lr),
        "lrs_trained": sorted(x for x, runs in runs_by_lr.items() if trains(runs, target_loss)),
        "seeds": len(at), "diverged": lr_score(at)[0],
        "val_loss_mean": val_mean, "val_loss_ci95": val_ci,
        "test_accuracy_mean": acc_mean, "test_accuracy_ci95": acc_ci,
        "test_loss_mean": test_mean, "test_loss_ci95": test_ci,
        "final_train_loss_mean": _mean(r["final_train_loss"] for r in at),
        "best_val_loss_mean": _mean(r["best_val_loss"] for r in at),
        "last_k_val_loss_mean": _mean(r["last_k_val_loss"] for r in at),
        "steps_to_target_mean": float(np.mean(steps)) if steps else None, "reached": len(steps),
        "lr_robustness": lr_robustness(runs_by_lr, target_loss),
        "init_std_last": _init_std_last(at),
    }


def _rank_key(e: Mapping) -> tuple:
    """Fewest diverged seeds, then lowest mean val loss, then highest test accuracy."""
    val = e["val_loss_mean"] if e["val_loss_mean"] is not None else math.inf
    acc = -e["test_accuracy_mean"] if e["test_accuracy_mean"] is not None else math.inf
    return e["diverged"], val, acc, e["scheme"]


def _val_by_seed(runs: Sequence[Mapping]) -> dict[int, float]:
    return {r["seed"]: r["final_val_loss"] for r in runs if not _failed(r)}


def _rank(entries: list[dict], cells: Mapping) -> list[dict]:
    """Ranks one group's entries and tests each against rank 1, paired by seed
    over the seeds where both have a final val loss (divergences are already
    the ranking's first key)."""
    entries = sorted(entries, key=_rank_key)
    best = _val_by_seed(cells[(*group_key(entries[0]), entries[0]["scheme"])][entries[0]["best_lr"]])
    for i, e in enumerate(entries, 1):
        e["rank"] = i
        e["p_vs_best"] = e["delta_vs_best"] = e["significant"] = None
        if i == 1:
            continue
        mine = _val_by_seed(cells[(*group_key(e), e["scheme"])][e["best_lr"]])
        seeds = sorted(set(mine) & set(best))
        a, b = [mine[s] for s in seeds], [best[s] for s in seeds]
        e["p_vs_best"] = paired_test(a, b)
        if e["p_vs_best"] is not None:
            e["delta_vs_best"] = float(np.mean(np.subtract(a, b)))
            e["significant"] = e["p_vs_best"] < SIGNIFICANCE
    return entries


def select(results: Mapping) -> list[dict]:
    """The ``selection`` list of ``results``: one entry per (arch, activation,
    depth, width, scheme), groups in sorted order, each group ranked.

    Each entry has the group keys, ``scheme``, ``best_lr``, ``lrs`` (the grid the
    scheme ran), ``lrs_trained`` (those it :func:`trains` on), ``lr_robustness``
    (their fraction), and at the best lr: ``seeds``, ``diverged`` (seeds that
    diverged or have no final val loss), ``val_loss_mean``/``val_loss_ci95``
    (final val loss over the other seeds), ``test_accuracy_mean``/``_ci95``,
    ``test_loss_mean``/``_ci95``, ``final_train_loss_mean``,
    ``best_val_loss_mean``, ``last_k_val_loss_mean``, ``steps_to_target_mean``
    (over the ``reached`` seeds), ``init_std_last``; then ``rank`` in the group,
    ``p_vs_best`` (:func:`paired_test` of final val losses against rank 1),
    ``delta_vs_best`` (mean paired difference, this minus rank 1) and
    ``significant`` (``p_vs_best < 0.05``), all None for rank 1 or when fewer
    than 2 seeds pair up.
    """
    cells = _cells(results.get("runs", []))
    target = results.get("config", {}).get("target_loss")
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for key, runs_by_lr in cells.items():
        groups[key[:-1]].append(_entry(key, runs_by_lr, target))
    return [e for g in sorted(groups) for e in _rank(groups[g], cells)]


def by_group(selection: Sequence[Mapping]) -> dict[tuple, list[Mapping]]:
    """``{(arch, activation, depth, width): entries}`` of a selection list, order kept."""
    groups: dict[tuple, list[Mapping]] = {}
    for e in selection:
        groups.setdefault(group_key(e), []).append(e)
    return groups
