"""bench.report (the ranked tables and summary.md) and bench.plots (the PNGs)."""

import os

from bench.plots import plot_accuracy, plot_all, plot_loss_curves, plot_lr_sensitivity
from bench.report import TABLE_HEADER, Table, fmt, summary_markdown, tables
from bench.selection import select
from tests.bench.test_selection import _group_runs, record, results_of

COLUMN = {name: i for i, name in enumerate(TABLE_HEADER)}


def _cells(table: Table, scheme: str) -> dict[str, str]:
    row = next(r for r in table.rows if r[COLUMN["scheme"]] == scheme)
    return dict(zip(table.header, row))


def _results(**config):
    res = results_of(_group_runs(depth=20, width=64), target_loss=0.6, lrs=[0.1, 1.0], archs=["mlp"], **config)
    res["skipped"] = [{"arch": "mlp", "scheme": "orthogonal", "activation": "relu", "depth": 20, "width": 64,
                       "reason": "needs width >= fan-in"}]
    res["timing"] = {"compile_s": 1.25, "train_s": 10.0, "note": "text is not a number"}
    return res


def test_fmt():
    assert fmt(None) == "-" and fmt(float("inf")) == "inf" and fmt(0.123456) == "0.123" and fmt(3e-5) == "3e-05"


def test_tables_cells():
    (table,) = tables(_results())
    assert table.title == "mlp, relu, depth 20, width 64" and table.header == TABLE_HEADER
    assert [r[0] for r in table.rows] == ["1", "2", "3", "4"]
    good, tie, bad, wild = (_cells(table, s) for s in ("good", "tie", "bad", "wild"))
    e = select(_results())[0]
    assert good["best lr"] == "0.1"
    assert good["val loss (mean ± CI95)"] == f"{fmt(e['val_loss_mean'])} ± {fmt(e['val_loss_ci95'])}"
    assert good["test acc % (mean ± CI95)"] == "90.0 ± 0.0"
    steps = "steps to target (reached/seeds)"
    assert good[steps] == "102 (5/5)" and bad[steps] == "never (0/5)"
    assert good["lr robustness"] == "1/2" and bad["lr robustness"] == "0/2"
    assert good["diverged"] == "0" and wild["diverged"] == "1/5"
    assert [c["vs best"] for c in (good, tie, bad, wild)] == ["", "≈", "worse", "better"]
    assert good["init act std (last layer)"] == "1" and bad["init act std (last layer)"] == "0.01"
    assert table.notes == []


def test_tables_one_seed_and_regression():
    runs = [record("a", 0.1, 0, 0.3, acc=None), record("b", 0.1, 0, 0.6, acc=None)]
    (table,) = tables(results_of(runs))
    a, b = _cells(table, "a"), _cells(table, "b")
    assert a["val loss (mean ± CI95)"] == "0.3" and a["test acc % (mean ± CI95)"] == "-"
    assert b["vs best"] == "n/a"
    assert a["steps to target (reached/seeds)"] == "-"  # no target loss configured


def test_tables_note_a_best_lr_at_the_edge_of_the_grid():
    runs = [record("low", lr, 0, 0.1 + lr) for lr in (0.01, 0.1, 1.0)]
    runs += [record("mid", lr, 0, abs(lr - 0.1) + 0.2) for lr in (0.01, 0.1, 1.0)]
    (table,) = tables(results_of(runs))
    assert table.notes == ["best lr at the edge of the grid (smallest lr for low): the optimum may lie outside it."]


def test_summary_markdown():
    text = summary_markdown(_results(last_k=4))
    assert "best lr" in text and "validation" in text and "t_{0.975,n-1}" in text and "paired t-test" in text
    assert "lr grid [0.1, 1]" in text and "last 4 evaluations" in text
    assert "## mlp, relu, depth 20, width 64" in text
    assert "| " + " | ".join(TABLE_HEADER) + " |" in text
    assert "| 1 | good | 0.1 |" in text
    assert "## Skipped" in text and "- `orthogonal` (mlp, relu, depth 20, width 64): needs width >= fan-in" in text
    assert "Timing of the last session: compile 1.2 s, train 10.0 s." in text


def test_summary_markdown_without_skipped_or_timing():
    res = results_of([record()])
    res["timing"] = {"note": "none"}
    text = summary_markdown(res)
    assert "## mlp, relu, depth 3, width 16" in text and "Skipped" not in text and "Timing" not in text


PNGS = ("loss_curves.png", "activation_std.png", "grad_norm.png", "accuracy.png", "lr_sensitivity.png")


def test_plots_classification_with_diverged_lrs(tmp_path):
    runs = _group_runs(activation="tanh")  # wild diverges at every lr
    runs += [record("good", 0.1, s, 0.4, activation="relu", depth=2) for s in range(2)]
    runs += [record("good", 10.0, s, diverged=True, activation="relu", depth=2) for s in range(2)]
    runs += [record("dead", lr, s, diverged=True, depth=4) for lr in (0.1, 1.0) for s in range(2)]
    res = results_of(runs, dataset_info={"n_classes": 3, "task": "classification"})
    written = plot_all(res, str(tmp_path))
    assert sorted(os.path.basename(p) for p in written) == sorted(PNGS + ("saturation.png",))
    for p in written:
        assert os.path.getsize(p) > 1000, p


def test_plots_regression_with_null_accuracies(tmp_path):
    runs = [record(s_, lr, s, 0.4 + lr, acc=None, test_loss=0.5 + lr, init_loss=3.0)
            for s_ in ("a", "b") for lr in (0.01, 0.1) for s in range(2)]
    runs += [record("b", 1.0, s, diverged=True, acc=None) for s in range(2)]
    runs += [record("dead", lr, s, diverged=True, acc=None, depth=4) for lr in (0.1, 1.0) for s in range(2)]
    res = results_of(runs, dataset_info={"task": "regression"})
    # the figures whose axes depend on the task (the others are covered above)
    written = [plot(res, str(tmp_path / name)) for plot, name in (
        (plot_loss_curves, "loss_curves.png"), (plot_accuracy, "accuracy.png"),
        (plot_lr_sensitivity, "lr_sensitivity.png"))]
    for p in written:
        assert os.path.getsize(p) > 1000, p


def test_plot_all_without_runs(tmp_path):
    assert plot_all(results_of([]), str(tmp_path)) == []
