import atexit
import os
import shutil
import tempfile

# Tests run on the CPU with several virtual devices, so sharding paths are
# exercised on any machine; must be set before jax is imported.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

# One XLA compilation cache for the test session and the subprocesses it starts
# (notebooks, `python -m bench` runs): many tests compile the same small programs.
# A new directory per session, removed at exit, so every session starts cold and
# no result depends on an earlier run.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _cache = tempfile.mkdtemp(prefix="jinit-tests-xla-cache-")
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")
