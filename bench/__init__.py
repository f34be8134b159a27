"""jinit's training benchmark: how each initialization scheme trains a deep MLP.

Run ``python -m bench --help`` for the command line. The pieces, usable on their
own (e.g. from a notebook):

* :mod:`bench.data`: the datasets (``digits``, ``teacher``, IDX, CIFAR-10 and ``.npz`` files);
* :mod:`bench.model`: the Flax MLP whose hidden stack runs under ``nn.scan``;
* :mod:`bench.train`: the compiled, seed-vmapped (and batch-sharded) trainer;
* :mod:`bench.results`: ``results.json`` (atomic, resumable) and ``summary.md``;
* :mod:`bench.plots`: the PNG figures;
* :mod:`bench.presets`: named configurations reproducing published results.

This file imports nothing heavy on purpose, so that ``python -m bench.speed``
(the initializer speed benchmark) does not pay for the training benchmark.
"""
