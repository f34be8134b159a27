"""bench.selection: CI math, the paired test, best-lr selection, robustness and ranking."""

import math

import numpy as np
import pytest
from scipy import stats

from bench.selection import best_lr, by_group, ci95, lr_robustness, lr_score, paired_test, select, trains


def record(scheme="a", lr=0.1, seed=0, val=0.5, *, diverged=False, arch="mlp", activation="relu", depth=3,
           width=16, train=None, acc=0.9, test_loss=None, steps_to_target=None, init_loss=2.0, std_last=1.0):
    """One run record as results.json holds it; ``val=None`` without ``diverged``:
    a run that finished without a final validation loss."""
    train = val if train is None else train
    final = (lambda x: None) if diverged else (lambda x: x)
    stats_ = {"activation_std": [1.0] * (depth - 1) + [std_last], "activation_mean": [0.0] * depth,
              "saturation": [0.1] * depth if activation == "tanh" else None, "grad_norm": [0.5] * depth,
              "output_grad_norm": 0.5, "loss": init_loss}
    return {
        "arch": arch, "scheme": scheme, "activation": activation, "depth": depth, "width": width, "lr": lr,
        "seed": seed, "optimizer": "sgd", "steps": 20, "batch_size": 8, "dataset": "teacher",
        "final_train_loss": final(train), "final_train_accuracy": final(acc), "final_val_loss": final(val),
        "final_val_accuracy": final(acc), "test_loss": final(val if test_loss is None else test_loss),
        "test_accuracy": final(acc), "best_val_loss": final(val), "last_k_val_loss": final(val),
        "steps_to_target": None if diverged else steps_to_target, "diverged": diverged,
        "diverged_step": 10 if diverged else None,
        "loss_curve": [[0, init_loss], [10, None if diverged else (init_loss + train) / 2], [20, final(train)]],
        "val_loss_curve": [[0, init_loss], [20, final(val)]], "test_accuracy_curve": [[0, 0.3], [20, final(acc)]],
        "init_stats": stats_, "final_stats": None if diverged else stats_, "config_hash": "h", "time_s": 0.1,
    }


def results_of(runs, target_loss=None, **config):
    return {"format": "jinit-bench/2", "config": {"target_loss": target_loss, "last_k": 3, **config},
            "env": {}, "runs": runs, "skipped": [], "timing": {}}


# --------------------------------------------------------------------------- ci95, paired_test


def test_ci95_known_numbers():
    mean, half = ci95([1.0, 2.0, 3.0])
    assert mean == 2.0
    assert half == pytest.approx(stats.t.ppf(0.975, 2) / math.sqrt(3)) and half == pytest.approx(2.4841377, abs=1e-6)
    assert ci95([4.0]) == (4.0, None)
    assert ci95([]) == (None, None)


def test_paired_test_matches_scipy():
    rng = np.random.default_rng(0)
    for n in (2, 3, 5, 12):
        a, b = rng.normal(size=n), rng.normal(0.3, size=n)
        assert paired_test(list(a), list(b)) == pytest.approx(stats.ttest_rel(a, b).pvalue, rel=1e-10)


def test_paired_test_edge_cases():
    assert paired_test([1.0], [2.0]) is None
    assert paired_test([], []) is None
    assert paired_test([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]) == 1.0  # identical: no evidence of a difference
    assert paired_test([2.0, 3.0, 4.0], [1.0, 2.0, 3.0]) == 0.0  # constant shift: |t| -> inf
    with pytest.raises(ValueError):
        paired_test([1.0, 2.0], [1.0])


# --------------------------------------------------------------------------- best lr


def test_best_lr_lowest_mean_val_loss():
    by_lr = {lr: [record(lr=lr, seed=s, val=v + 0.01 * s) for s in range(3)]
             for lr, v in ((0.01, 0.8), (0.1, 0.3), (1.0, 0.5))}
    assert best_lr(by_lr) == 0.1
    assert lr_score(by_lr[0.1]) == (0, pytest.approx(0.31))


def test_best_lr_a_diverged_seed_loses():
    by_lr = {
        0.01: [record(lr=0.01, seed=s, val=0.9) for s in range(3)],
        0.1: [record(lr=0.1, seed=0, val=0.1), record(lr=0.1, seed=1, val=0.1), record(lr=0.1, seed=2, diverged=True)],
    }
    assert lr_score(by_lr[0.1]) == (1, pytest.approx(0.1))
    assert best_lr(by_lr) == 0.01


def test_best_lr_null_val_loss_counts_as_failed():
    by_lr = {0.1: [record(lr=0.1, seed=0, val=0.1), record(lr=0.1, seed=1, val=None, train=0.2)],
             0.3: [record(lr=0.3, seed=s, val=0.4) for s in range(2)]}
    assert lr_score(by_lr[0.1]) == (1, pytest.approx(0.1))
    assert best_lr(by_lr) == 0.3


def test_best_lr_ties_go_to_the_smaller_lr():
    by_lr = {lr: [record(lr=lr, seed=s, val=0.5) for s in range(2)] for lr in (0.3, 0.03, 0.1)}
    assert best_lr(by_lr) == 0.03
    everything_diverges = {lr: [record(lr=lr, diverged=True)] for lr in (1.0, 0.5)}
    assert lr_score(everything_diverges[1.0]) == (1, math.inf)
    assert best_lr(everything_diverges) == 0.5


# --------------------------------------------------------------------------- robustness


def test_trains_with_a_target():
    ok = [record(seed=s, train=0.2) for s in range(2)]
    assert trains(ok, target_loss=0.25) and not trains(ok, target_loss=0.1)
    assert not trains(ok + [record(seed=2, diverged=True)], target_loss=10.0)


def test_trains_without_a_target_halves_the_initial_loss():
    assert trains([record(train=0.9, init_loss=2.0)], None)
    assert not trains([record(train=1.1, init_loss=2.0)], None)
    overflow = record(train=1e3)
    overflow["loss_curve"][0][1] = None  # infinite at init
    assert trains([overflow], None)
    no_final = record()
    no_final["final_train_loss"] = None
    assert not trains([no_final], None)


def test_lr_robustness_is_the_fraction_of_lrs_that_train():
    by_lr = {
        0.01: [record(lr=0.01, seed=s, train=1.5) for s in range(2)],  # too slow
        0.1: [record(lr=0.1, seed=s, train=0.2) for s in range(2)],
        0.3: [record(lr=0.3, seed=s, train=0.3) for s in range(2)],
        1.0: [record(lr=1.0, seed=0, train=0.1), record(lr=1.0, seed=1, diverged=True)],
    }
    assert lr_robustness(by_lr, target_loss=0.5) == 0.5
    assert lr_robustness(by_lr, target_loss=None) == 0.5  # half of the initial 2.0
    assert lr_robustness(by_lr, target_loss=2.0) == 0.75


# --------------------------------------------------------------------------- select


NOISE = [0.01, -0.02, 0.015, -0.005, 0.0]


def _group_runs(**kw):
    """Five seeds, lrs 0.1 and 1.0: ``good`` and ``tie`` equal up to noise,
    ``bad`` clearly worse, ``wild`` diverges on a seed at every lr."""
    runs = []
    for s, eps in enumerate(NOISE):
        for lr, shift in ((0.1, 0.0), (1.0, 0.2)):
            runs.append(record("good", lr, s, 0.5 + shift + eps, acc=0.9 - shift, steps_to_target=100 + s, **kw))
            runs.append(record("tie", lr, s, 0.5 + shift - eps + 0.001, acc=0.88, **kw))
            runs.append(record("bad", lr, s, 0.9 + shift - eps, acc=0.7, std_last=0.01, **kw))
            runs.append(record("wild", lr, s, 0.2, diverged=s == 0, **kw))
    return runs


def test_select_ranks_and_tests_against_the_best():
    sel = select(results_of(_group_runs(), target_loss=0.6))
    assert [(e["scheme"], e["rank"]) for e in sel] == [("good", 1), ("tie", 2), ("bad", 3), ("wild", 4)]
    good, tie, bad, wild = sel
    assert good["p_vs_best"] is None and good["significant"] is None
    assert tie["significant"] is False and tie["p_vs_best"] > 0.05
    assert bad["significant"] is True and bad["delta_vs_best"] == pytest.approx(0.4)
    bad_vals, good_vals = [0.9 - e for e in NOISE], [0.5 + e for e in NOISE]
    assert bad["p_vs_best"] == pytest.approx(stats.ttest_rel(bad_vals, good_vals).pvalue)
    tie_vals = [0.5 - e + 0.001 for e in NOISE]
    assert tie["p_vs_best"] == pytest.approx(stats.ttest_rel(tie_vals, good_vals).pvalue)
    # wild's lower loss does not beat a diverged seed; its 4 other seeds pair with good's
    assert wild["diverged"] == 1 and wild["best_lr"] == 0.1 and wild["seeds"] == 5
    assert wild["significant"] is True and wild["delta_vs_best"] < 0


def test_select_entry_fields_at_the_best_lr():
    good = select(results_of(_group_runs(), target_loss=0.6))[0]
    assert good["best_lr"] == 0.1 and good["lrs"] == [0.1, 1.0] and good["lrs_trained"] == [0.1]
    assert good["lr_robustness"] == 0.5
    assert (good["arch"], good["activation"], good["depth"], good["width"]) == ("mlp", "relu", 3, 16)
    assert good["seeds"] == 5 and good["diverged"] == 0
    mean, half = ci95([0.5 + e for e in NOISE])
    assert good["val_loss_mean"] == pytest.approx(mean) and good["val_loss_ci95"] == pytest.approx(half)
    assert good["test_accuracy_mean"] == pytest.approx(0.9)  # not the 0.7 of lr 1.0: test at the best lr only
    assert good["test_accuracy_ci95"] == pytest.approx(0.0, abs=1e-12)
    assert good["steps_to_target_mean"] == 102 and good["reached"] == 5
    assert good["final_train_loss_mean"] == pytest.approx(mean)
    assert good["best_val_loss_mean"] == pytest.approx(mean) and good["last_k_val_loss_mean"] == pytest.approx(mean)
    assert good["init_std_last"] == 1.0
    bad = select(results_of(_group_runs()))[2]
    assert bad["init_std_last"] == pytest.approx(0.01) and bad["reached"] == 0 and bad["steps_to_target_mean"] is None


def test_select_one_seed_has_no_interval_or_test():
    runs = [record("a", 0.1, 0, 0.3), record("b", 0.1, 0, 0.6)]
    a, b = select(results_of(runs))
    assert a["val_loss_ci95"] is None and b["rank"] == 2
    assert b["p_vs_best"] is None and b["significant"] is None


def test_select_ranks_within_groups():
    runs = [record("a", 0.1, s, 0.3, width=16) for s in range(2)] + [record("b", 0.1, s, 0.6, width=16) for s in range(2)]
    runs += [record("a", 0.1, s, 0.6, width=64) for s in range(2)] + [record("b", 0.1, s, 0.3, width=64) for s in range(2)]
    runs += [record("a", 0.1, s, 0.3, arch="resmlp") for s in range(2)]
    groups = by_group(select(results_of(runs)))
    assert list(groups) == [("mlp", "relu", 3, 16, "standard"), ("mlp", "relu", 3, 64, "standard"),
                            ("resmlp", "relu", 3, 16, "standard")]
    assert [[e["scheme"] for e in g] for g in groups.values()] == [["a", "b"], ["b", "a"], ["a"]]


def test_select_all_diverged_and_regression():
    runs = [record("dead", lr, s, diverged=True) for lr in (0.1, 1.0) for s in range(2)]
    runs += [record("reg", 0.1, s, 0.4 + 0.1 * s, acc=None, test_loss=0.5) for s in range(2)]
    reg, dead = select(results_of(runs))
    assert dead["rank"] == 2 and dead["diverged"] == 2 and dead["best_lr"] == 0.1
    assert dead["val_loss_mean"] is None and dead["lr_robustness"] == 0.0 and dead["significant"] is None
    assert reg["test_accuracy_mean"] is None and reg["test_accuracy_ci95"] is None
    assert reg["test_loss_mean"] == pytest.approx(0.5)
