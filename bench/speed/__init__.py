"""Initializer speed benchmark: ``python -m bench.speed``.

Times, in one process and one run (so that every ratio compares numbers taken
under the same conditions):

1. **Tensors** (4096x4096 dense, 3x3x512x512 conv; ``--quick``: 512x512 and
   3x3x64x64), three distributions at He scale:

   ========== ============================== ==================================== ===========================
   dist       jinit (generator jax/philox)   jax.nn.initializers (jitted)         torch.nn.init
   ========== ============================== ==================================== ===========================
   normal     ``he_normal()``                ``variance_scaling(2, fan_in, normal)`` ``kaiming_normal_``
   uniform    ``he_uniform()``               ``variance_scaling(2, fan_in, uniform)`` ``kaiming_uniform_``
   truncated  ``variance_scaling(2, fan_in,  ``he_normal()`` (truncated)          ``trunc_normal_(std, -2std, 2std)``
              truncated_normal)``
   ========== ============================== ==================================== ===========================

   next to a plain fill (``jnp.full`` / ``torch.empty().fill_``: the memory
   bandwidth limit, allocation included) and the raw bits
   (``jax.random.bits`` with JAX's lowering and with jinit's fused one, philox). jinit is called as users call it (eagerly; it
   compiles its sampler once per shape), ``jax.nn`` initializers under
   ``jax.jit`` (their fastest form). torch is timed twice: "alloc" =
   ``torch.empty`` + ``init_`` (a new tensor, like jinit and JAX, which return new
   arrays) and "in place" = ``init_`` on a tensor allocated (and touched) before.
2. **Orthogonal** (4096x4096; ``--quick``: 128): jinit (``method="householder"``
   and ``"qr"``; also its first call, compilation included), ``jax.nn.initializers.orthogonal``
   (jitted), the LAPACK QR alone (``jnp.linalg.qr`` of a prepared Gaussian
   matrix, jitted), ``torch.nn.init.orthogonal_`` and ``torch.linalg.qr``.
3. **A 1B-parameter tree**: 16 layers of 8192x8192 + bias (1.07e9 parameters,
   4.3 GB in float32; ``--quick``: 4 x 256), initialized leaf by leaf (each leaf
   freed before the next, so memory stays at one leaf) with jinit, jax.nn and
   torch, plus jinit through ``jax.jit(flax_model.init)`` as one program.
4. **Depth**: compile time and training-step time of the benchmark's scanned
   MLP (:class:`bench.archs.mlp.MLP`, ``nn.scan`` over the hidden layers) at depth 10, 100,
   1000, and the compile time of the same network unrolled
   (:class:`bench.archs.mlp.UnrolledMLP`, one ``Dense`` per layer) up to
   ``--unrolled-max-depth``; both initialized by ``jinit.init`` with ``he_normal``'s rules.
5. **Engine** (:mod:`~bench.speed.engine`): optimizer steps per second of the training
   engine (:meth:`bench.engine.Engine.train`, 200 steps of a depth-20 width-64 ``mlp`` and
   ``resmlp`` on digits) against a minimal hand-written ``jax.jit`` + ``optax`` loop training the
   same models, and model-steps per second with 1, 4, 16, 64 (GPU/TPU: 256) models per
   compiled program, compile time apart (``--engine-parts``, ``--engine-models``,
   ``--engine-steps``; ``--quick``: depth 3, width 16).
6. **First parameters**: time to the first parameters of the unrolled MLP in a fresh
   process, ``jinit.init`` against ``jax.jit(module.init)`` and eager ``module.init``.

Every case is warmed up (compilation excluded), then the cases of a section are
run round-robin ``--repeats`` times; min and median wall-clock times are
reported (``block_until_ready`` on JAX results; torch on the CPU is synchronous),
and the JSON also has the minimum process CPU time (all threads: XLA runs a
large loop on every core, torch's generators run on one), which moves less than
wall time on a shared machine.
GB/s is bytes written / min time. Results go to a rich table and, with
``--out``, to JSON (written atomically) together with the machine description
(CPU model, cores, memory, load average, library versions, XLA flags:
:func:`bench.env.environment`, the report ``python -m bench`` records too).
``--sections`` chooses the sections (``--sizes``, its old name, still works and
warns).

Timings vary with the machine's load; the JSON records the load average at
start and end. No test asserts on timings.

The package: :mod:`bench.speed.harness` (:class:`Case`, :func:`run_cases`), one
module per section (:mod:`~bench.speed.tensor`, :mod:`~bench.speed.orthogonal`,
:mod:`~bench.speed.tree`, :mod:`~bench.speed.depth`, :mod:`~bench.speed.engine`,
:mod:`~bench.speed.first_params`), :mod:`bench.speed.tables` (the printed
tables) and :mod:`bench.speed.cli` (the command line).
"""

from bench.env import load_average
from bench.speed.cli import build_parser, machine_info, main
from bench.speed.first_params import FIRST_PARAMS_METHODS, time_first_params
from bench.speed.harness import Case, run_cases

__all__ = [
    "main",
    "build_parser",
    "machine_info",
    "load_average",
    "Case",
    "run_cases",
    "time_first_params",
    "FIRST_PARAMS_METHODS",
]
