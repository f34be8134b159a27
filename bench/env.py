"""The environment a benchmark ran in, recorded next to its numbers.

One report for both benchmarks: ``python -m bench`` stores it as ``env`` in
``results.json``, ``python -m bench.speed`` as ``machine`` in its JSON. Heavy
imports happen inside the functions, so importing this module costs nothing.
"""

from __future__ import annotations

import os
import platform
from typing import Any

__all__ = ["environment", "load_average"]


def _versions() -> dict[str, Any]:
    import jax
    import jaxlib
    import numpy

    out: dict[str, Any] = {"jax": jax.__version__, "jaxlib": jaxlib.__version__}
    for name in ("flax", "optax"):
        try:
            out[name] = __import__(name).__version__
        except ImportError:
            pass
    out["numpy"] = numpy.__version__
    try:
        import jinit

        out["jinit"] = getattr(jinit, "__version__", "?")
    except ImportError:
        pass
    out["python"] = platform.python_version()
    return out


def _proc_field(path: str, prefix: str) -> str | None:
    """The value after ``:`` on the first line of ``path`` starting with ``prefix`` (None if absent)."""
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(prefix):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _machine() -> dict[str, Any]:
    out: dict[str, Any] = {
        "platform": platform.platform(),
        "cpu_model": _proc_field("/proc/cpuinfo", "model name") or platform.processor() or platform.machine(),
        "logical_cpus": os.cpu_count(),
    }
    mem = _proc_field("/proc/meminfo", "MemTotal")
    if mem:
        out["memory_gib"] = round(int(mem.split()[0]) / 2**20, 1)
    out["xla_flags"] = os.environ.get("XLA_FLAGS", "")
    return out


def _devices() -> dict[str, Any]:
    import jax

    devices = jax.devices()
    return {
        "backend": jax.default_backend(),
        "devices": [str(d) for d in devices],
        "device_kind": devices[0].device_kind if devices else None,
        "device_count": len(devices),
    }


def environment(devices_used: int | None = None, torch: Any = None) -> dict[str, Any]:
    """Library versions, platform, CPU model, cores, memory, XLA flags and the JAX devices.

    ``devices_used``: how many of the devices the run used (recorded when given);
    ``torch``: the imported torch module when torch takes part (its version and thread count
    are recorded).
    """
    info = {**_versions(), **_machine(), **_devices()}
    if devices_used is not None:
        info["devices_used"] = devices_used
    if torch is not None:
        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    return info


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (None where the platform has none)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None
