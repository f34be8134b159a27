"""``results.json`` (atomic, resumable): the one place its schema is defined.
The summary is in :mod:`bench.report`, the statistics in :mod:`bench.selection`.

Layout (format ``jinit-bench/2``)::

    {"format": "jinit-bench/2",
     "config": {...BenchConfig fields..., "dataset_info": {...}, "versions": {...}, "settings_hash": ...},
     "env": {"jax": ..., "jaxlib": ..., "flax": ..., "optax": ..., "jinit": ...,
             "backend": "cpu", "devices": [...], "device_count": N, "devices_used": n, ...},
     "runs": [RUN, ...],          # one per (arch, scheme, activation, depth, lr, seed)
     "skipped": [{"arch", "scheme", "activation", "depth", "width", "reason"}, ...],
     "selection": [...],          # bench.selection.select(): one entry per (arch, activation, depth,
                                  # width, scheme) with best_lr, val_loss_mean, test_accuracy_mean,
                                  # test_accuracy_ci95, final_train_loss_mean, rank, p_vs_best, ...
     "timing": {...}}

``RUN`` has the keys of :data:`RUN_KEYS`: the model (``arch, scheme, activation,
depth, width, lr, seed``), the settings (``optimizer, steps, batch_size, dataset``),
final metrics (``final_train_loss, final_train_accuracy, final_val_loss,
final_val_accuracy, test_loss, test_accuracy``), robust scores (``best_val_loss``:
the lowest validation loss of the evaluations before any divergence;
``last_k_val_loss``: the mean of the last ``last_k`` evaluations), ``steps_to_target``,
``diverged``, ``diverged_step``, curves (``loss_curve``, ``val_loss_curve``,
``test_accuracy_curve``: ``[[step, value], ...]``), ``init_stats`` and
``final_stats`` (per layer: ``activation_std``, ``activation_mean``,
``saturation`` (null for unbounded activations), ``grad_norm``; and
``output_grad_norm``, ``loss``), ``run_hash`` and ``time_s`` (wall seconds of its
chunk per model); LSUV runs add ``post_init``.

JSON has no NaN or infinity: every non-finite number is written as ``null``.
A diverged run has ``"diverged": true`` and ``null`` final metrics.

The file is rewritten with a temporary file and :func:`os.replace` after each
trained chunk, so it is always complete and valid JSON, even if the process is
killed. Every file written here gets the mode a plain :func:`open` would give it,
``0o666`` less the process umask: ``0644`` (``rw-r--r--``) under the usual umask
``022``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
from typing import Any

import numpy as np

__all__ = [
    "FORMAT",
    "ResultsError",
    "ResultStore",
    "atomic_write_text",
    "jsonify",
    "settings_hash",
    "run_hash",
    "RUN_KEYS",
    "SKIP_KEYS",
]

FORMAT = "jinit-bench/2"
RESULTS = "results.json"
SUMMARY = "summary.md"

# Config entries that choose *what* to run, not *how*: runs of a results.json can
# be resumed / extended with different values of these.
SELECTION_KEYS = ("schemes", "archs", "activations", "depths", "widths", "parametrizations", "lrs", "seeds", "preset",
                  "devices", "batch_models")

SKIP_KEYS = ("arch", "scheme", "activation", "depth", "width", "parametrization")

RUN_KEYS = (
    "arch", "scheme", "activation", "depth", "width", "parametrization", "lr", "seed", "optimizer", "steps", "batch_size", "dataset",
    "final_train_loss", "final_train_accuracy", "final_val_loss", "final_val_accuracy", "test_loss",
    "test_accuracy", "best_val_loss", "last_k_val_loss", "steps_to_target", "diverged", "diverged_step",
    "loss_curve", "val_loss_curve", "test_accuracy_curve", "init_stats", "final_stats", "time_s",
)


class ResultsError(ValueError):
    """``--out`` holds results that cannot be resumed (the message says why)."""


def jsonify(x: Any) -> Any:
    """Recursively converts to JSON-able Python values; NaN/inf become None."""
    if isinstance(x, dict):
        return {str(k): jsonify(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonify(v) for v in x]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, np.ndarray):
        return jsonify(x.tolist())
    return x


_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)


def _create_temp(directory: str, base: str) -> tuple[int, str]:
    """A new, empty ``.<base>.<random>.tmp`` in ``directory``, created with mode
    0o666 so that the umask applies as for :func:`open` (``tempfile.mkstemp``
    would make it 0o600, private to the owner, and ``os.replace`` keeps that)."""
    for _ in range(100):
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, _TEMP_FLAGS, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name for {base} in {directory}")


def atomic_write_text(path: str, text: str) -> None:
    """Writes ``text`` to ``path`` via a temporary file and ``os.replace``.

    The file ends up with mode ``0o666 & ~umask`` (``0644`` under umask ``022``),
    as if written with :func:`open`, also when it replaces a file of another mode.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = _create_temp(directory, os.path.basename(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _digest(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def settings_hash(config: dict) -> str:
    """Hash of everything in ``config`` that changes the numbers of a run."""
    return _digest({k: v for k, v in config.items() if k not in SELECTION_KEYS and k not in ("settings_hash", "dataset_info")})


def run_hash(settings: str, structure: tuple, scheme: str, lr: float, seed: int) -> str:
    """Hash identifying one run (one model) under ``settings``; ``structure`` is
    ``(arch, activation, depth, width, parametrization)``."""
    arch, activation, depth, width, parametrization = structure
    return _digest([settings, arch, scheme, activation, int(depth), int(width), parametrization, float(lr), int(seed)])


class ResultStore:
    """The results of one ``--out`` directory, saved atomically."""

    def __init__(self, out_dir: str, config: dict, env: dict, writer: bool = True):
        self.out_dir, self.writer = out_dir, writer  # in a multi-process run only process 0 writes
        self.path = os.path.join(out_dir, RESULTS)
        self.data = {"format": FORMAT, "config": config, "env": env, "runs": [], "skipped": [], "timing": {}}

    @staticmethod
    def read(out_dir: str) -> dict | None:
        """The parsed results.json of ``out_dir``, None if absent; ResultsError if unusable."""
        path = os.path.join(out_dir, RESULTS)
        if not os.path.exists(path):
            return None
        try:
            with open(path, encoding="utf-8") as f:
                data = json.load(f)
        except (OSError, ValueError) as err:
            raise ResultsError(f"{path} exists but is not readable JSON ({err}); use another --out.") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT or not isinstance(data.get("runs"), list):
            raise ResultsError(f"{path} is not a jinit benchmark results file ({FORMAT}); use another --out.")
        return data

    @staticmethod
    def check_resumable(existing: dict, config: dict) -> None:
        """Raises ResultsError if ``existing`` was made with other settings."""
        old = existing.get("config", {})
        if old.get("settings_hash") == config.get("settings_hash"):
            return
        diffs = [
            f"{k}: {old.get(k)!r} there vs {config.get(k)!r} now"
            for k in sorted(set(old) | set(config))
            if k not in SELECTION_KEYS and k not in ("settings_hash", "dataset_info") and old.get(k) != config.get(k)
        ]
        raise ResultsError(
            "the output directory holds results made with different settings ("
            + ("; ".join(diffs) or "unknown difference")
            + "); re-run with the same settings to resume, or choose another --out."
        )

    def adopt(self, existing: dict) -> None:
        """Keeps the finished runs and skips of ``existing`` (same settings)."""
        self.data["runs"] = list(existing.get("runs", []))
        self.data["skipped"] = list(existing.get("skipped", []))
        self.data["scalings"] = list(existing.get("scalings", []))

    def done(self) -> set[str]:
        """Hashes of the runs already recorded."""
        return {r.get("run_hash") for r in self.data["runs"]}

    def add(self, runs: list[dict]) -> None:
        """Adds (or replaces, by ``run_hash``) finished runs."""
        new = {r["run_hash"] for r in runs}
        self.data["runs"] = [r for r in self.data["runs"] if r.get("run_hash") not in new] + list(runs)

    def scaling(self, structure: tuple, record: dict) -> None:
        """Records what a non-standard parametrization did to ``structure``'s network."""
        entry = dict(zip(("arch", "activation", "depth", "width"), structure[:4]), **record)
        key = tuple(entry[k] for k in ("arch", "activation", "depth", "width", "parametrization"))
        kept = [s for s in self.data.setdefault("scalings", [])
                if tuple(s.get(k) for k in ("arch", "activation", "depth", "width", "parametrization")) != key]
        self.data["scalings"] = kept + [entry]

    def skip(self, entry: dict) -> None:
        """Records an inapplicable (arch, scheme, activation, depth, width) with its reason."""
        key = tuple(entry[k] for k in SKIP_KEYS)
        self.data["skipped"] = [s for s in self.data["skipped"] if tuple(s.get(k) for k in SKIP_KEYS) != key]
        self.data["skipped"].append(dict(entry))

    def save(self) -> None:
        if not self.writer:
            return
        os.makedirs(self.out_dir, exist_ok=True)
        atomic_write_text(self.path, json.dumps(jsonify(self.data), indent=1, allow_nan=False) + "\n")
