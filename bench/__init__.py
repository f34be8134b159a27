"""jinit's training benchmark: how each initialization scheme trains deep networks.

``python -m bench --help`` for the command line; from Python::

    import bench
    results = bench.run(bench.BenchConfig.from_preset("quick"), "results/quick")
    results.selection  # each scheme at its best learning rate, with CI95 over seeds

The pieces:

* :mod:`bench.config`: :class:`BenchConfig`, every setting and its default;
* :mod:`bench.presets`: named configurations (most reproduce a published result);
* :mod:`bench.archs`: the architectures (``mlp``, ``resmlp``, ``cnn``, ``transformer``, ...);
* :mod:`bench.data`: the datasets (``digits``, ``teacher``, IDX, CIFAR-10, ``.npz``) and the validation split;
* :mod:`bench.engine`: the compiled trainer (schemes x learning rates x seeds batched in one program);
* :mod:`bench.runner`: :func:`run`, resumable and interruptible;
* :mod:`bench.results`: ``results.json``; :mod:`bench.selection`: best-lr selection and statistics;
  :mod:`bench.report`: ``summary.md``; :mod:`bench.plots`: the figures.

Importing ``bench`` is cheap (``BenchConfig`` and ``run`` load JAX on first use), so
``python -m bench.speed`` does not pay for the training benchmark.
"""

__all__ = ["BenchConfig", "run", "Results"]


def __getattr__(name):
    if name == "BenchConfig":
        from bench.config import BenchConfig

        return BenchConfig
    if name in ("run", "Results"):
        from bench import runner as _runner

        return getattr(_runner, name)
    raise AttributeError(f"module 'bench' has no attribute {name!r}")
