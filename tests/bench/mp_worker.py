"""One process of a two-process benchmark run (``jax.distributed``, CPU devices), for
tests/bench/test_multiprocess.py: ``python mp_worker.py PROCESS_ID PORT OUT_DIR``."""

import os
import sys

if __name__ == "__main__":
    pid, port, out = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.distributed.initialize(f"127.0.0.1:{port}", num_processes=2, process_id=pid)
    import bench
    from tests.bench.test_multiprocess import CONFIG

    results = bench.run(CONFIG, out, plots=False)
    print(f"process {pid}: {jax.process_count()} processes, {jax.device_count()} devices, {len(results.runs)} runs")
