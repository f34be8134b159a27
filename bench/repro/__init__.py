"""Reproductions of published claims that are not a training sweep of
:func:`bench.run` (theory against measurement): ``python -m bench.repro NAME --out DIR``.

Each reproduction is one module of this package with a function
``run(out_dir: str, quick: bool = False) -> list[str]`` that writes its figure(s)
and a ``NAME.md`` (the paper's claim next to the measurement) into ``out_dir`` and
returns the paths written; ``quick`` shrinks it to seconds (used by the tests).
Registered in :data:`REPRODUCTIONS` (name -> (module, one-line summary)).
"""

from __future__ import annotations

import importlib

__all__ = ["REPRODUCTIONS", "get"]

# name -> (module under bench.repro, summary): one line per reproduction.
REPRODUCTIONS: dict[str, tuple[str, str]] = {
    "jacobian": ("jacobian", "Jacobian spectrum mean/variance vs depth: free probability vs finite nets (Pennington et al. 2017)"),
}


def get(name: str):
    """The ``run`` function of reproduction ``name``; ValueError listing the valid names otherwise."""
    if name not in REPRODUCTIONS:
        raise ValueError(f"unknown reproduction {name!r}; valid reproductions are {', '.join(REPRODUCTIONS) or '(none)'}.")
    return importlib.import_module(f"bench.repro.{REPRODUCTIONS[name][0]}").run
