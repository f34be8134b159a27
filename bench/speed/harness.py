"""The case harness of :mod:`bench.speed`: a timed contender (:class:`Case`), the
round-robin runner (:func:`run_cases`), and what every section shares."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Case", "Context", "run_cases", "run_section", "torch_module", "block"]

_TORCH: list = []


def torch_module():
    """The ``torch`` module, or None where it is not installed (imported once)."""
    if not _TORCH:
        try:
            import torch

            _TORCH.append(torch)
        except ImportError:
            _TORCH.append(None)
    return _TORCH[0]


@dataclass
class Context:
    """What the command line chose, for every section: ``args`` (the parsed arguments),
    the jinit generators and distributions to time, whether torch takes part, and where
    progress lines go."""

    args: Any
    rngs: list[str]
    dists: list[str]
    with_torch: bool
    progress: Callable[[str], None]


def block(x) -> None:
    """Waits for JAX results (torch on the CPU is synchronous)."""
    import jax

    if x is None:
        return
    leaves = jax.tree.leaves(x)
    if leaves and isinstance(leaves[0], jax.Array):
        jax.block_until_ready(x)


@dataclass
class Case:
    """One timed contender. ``fn()`` returns its result (blocked on, then freed)."""

    section: str
    group: str  # what is compared, e.g. "dense 4096x4096 / normal"
    name: str  # who, e.g. "jinit[philox]"
    fn: Callable[[], Any]
    nbytes: int = 0
    meta: dict = field(default_factory=dict)
    warm: Callable[[], Any] | None = None  # warm-up (compilation) if cheaper than fn
    times: list[float] = field(default_factory=list)
    cpu_times: list[float] = field(default_factory=list)
    error: str | None = None
    last_cpu: float = field(default=0.0, repr=False)
    first: float | None = None  # the first warm-up call: compilation included

    def call(self) -> float:
        c0 = time.process_time()
        t0 = time.perf_counter()
        out = self.fn()
        block(out)
        dt = time.perf_counter() - t0
        self.last_cpu = time.process_time() - c0
        del out
        return dt

    def record(self) -> dict:
        rec = {"section": self.section, "group": self.group, "name": self.name, **self.meta}
        if self.error is not None:
            rec["error"] = self.error
            return rec
        tmin = min(self.times)
        rec.update(
            min_ms=round(tmin * 1e3, 3),
            median_ms=round(statistics.median(self.times) * 1e3, 3),
            repeats=len(self.times),
            times_ms=[round(t * 1e3, 3) for t in self.times],
            cpu_min_ms=round(min(self.cpu_times) * 1e3, 3),
        )
        if self.first is not None:
            rec["first_call_ms"] = round(self.first * 1e3, 3)
        if self.nbytes:
            rec["bytes"] = self.nbytes
            rec["gb_per_s"] = float(f"{self.nbytes / tmin / 1e9:.4g}")
        return rec


def _warm_up(case: Case, warmup: int, progress: Callable[[str], None]) -> None:
    try:
        for i in range(warmup):
            t0 = time.perf_counter()
            if case.warm is not None:
                block(case.warm())
            else:
                case.call()
            if i == 0:
                case.first = time.perf_counter() - t0
    except Exception as err:  # e.g. out of memory on a small machine
        case.error = f"{type(err).__name__}: {err}".splitlines()[0][:300]
        progress(f"  {case.group} / {case.name}: {case.error}")


def run_cases(cases: Sequence[Case], repeats: int, warmup: int, progress: Callable[[str], None]) -> None:
    """Warm every case up, then run them round-robin ``repeats`` times."""
    for case in cases:
        _warm_up(case, warmup, progress)
    for r in range(repeats):
        for case in cases:
            if case.error is None:
                case.times.append(case.call())
                case.cpu_times.append(case.last_cpu)
                gc.collect()
        progress(f"  {cases[0].section}: round {r + 1}/{repeats} done")


def run_section(cases: list[Case], repeats: int, warmup: int, progress: Callable[[str], None]) -> list[dict]:
    """Runs ``cases`` and returns their records, freeing the cases' buffers."""
    run_cases(cases, repeats, warmup, progress)
    records = [c.record() for c in cases]
    cases.clear()
    gc.collect()
    return records
