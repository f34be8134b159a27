import os

# Tests run on the CPU with several virtual devices, so sharding paths are
# exercised on any machine; must be set before jax is imported.
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
