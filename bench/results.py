"""``results.json`` (atomic, resumable) and the ranked ``summary.md``.

Layout of ``results.json`` (format ``jinit-bench/1``)::

    {"format": "jinit-bench/1",
     "config": {...the resolved command line, "dataset_info": {...}, "settings_hash": ...},
     "env": {"jax": ..., "jaxlib": ..., "flax": ..., "optax": ..., "jinit": ...,
             "backend": "cpu", "devices": [...], "device_count": N, "devices_used": n, ...},
     "runs": [{"scheme", "activation", "depth", "width", "seed", "optimizer", "lr", "steps",
               "batch_size", "dataset", "final_train_loss", "final_train_accuracy", "test_loss",
               "test_accuracy", "steps_to_target", "diverged", "diverged_step",
               "loss_curve": [[step, loss], ...], "test_accuracy_curve": [[step, acc], ...],
               "init_stats": {"activation_std": [...], "activation_mean": [...],
                              "saturation": [...] | null, "grad_norm": [...],
                              "output_grad_norm", "loss"},
               "final_stats": {...same, after training...},
               "config_hash", "time_s"}, ...],
     "skipped": [{"scheme", "activation", "depth", "reason"}, ...],
     "timing": {...}}

JSON has no NaN or infinity: every non-finite number is written as ``null``.
A diverged run has ``"diverged": true`` and ``null`` final losses/accuracies;
``steps_to_target`` is ``null`` when the full-train loss never reached the
target; ``saturation`` is ``null`` for activations without a saturation
statistic (only tanh and sigmoid have one); ``test_accuracy`` is ``null`` for
regression tasks.

Every per-layer list has ``depth`` entries, one per hidden layer (the output
layer's gradient norm is ``output_grad_norm``).

The file is rewritten with a temporary file and :func:`os.replace` after each
finished configuration, so it is always complete and valid JSON, even if the
process is killed. Every file written here gets the mode a plain :func:`open`
would give it, ``0o666`` less the process umask: ``0644`` (``rw-r--r--``) under
the usual umask ``022``.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
from collections import defaultdict
from typing import Any

import numpy as np

__all__ = [
    "FORMAT",
    "ResultsError",
    "ResultStore",
    "atomic_write_text",
    "jsonify",
    "settings_hash",
    "config_hash",
    "rank_groups",
    "summary_markdown",
    "summary_rows",
]

FORMAT = "jinit-bench/1"
RESULTS = "results.json"
SUMMARY = "summary.md"

# Config entries that choose *what* to run, not *how*: runs of a results.json can
# be resumed / extended with different values of these.
SELECTION_KEYS = ("schemes", "activations", "depths", "preset", "preset_source", "out", "devices")


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


def config_hash(settings: str, scheme: str, activation: str, depth: int) -> str:
    """Hash identifying one configuration (all its seeds) under ``settings``."""
    return _digest([settings, scheme, activation, int(depth)])


class ResultStore:
    """The results of one ``--out`` directory, saved atomically."""

    def __init__(self, out_dir: str, config: dict, env: dict):
        self.out_dir = out_dir
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
        """Keeps the finished runs of ``existing`` (same settings)."""
        self.data["runs"] = list(existing.get("runs", []))

    def done(self, chash: str) -> bool:
        return any(r.get("config_hash") == chash for r in self.data["runs"])

    def add(self, runs: list[dict], chash: str) -> None:
        self.data["runs"] = [r for r in self.data["runs"] if r.get("config_hash") != chash]
        for r in runs:
            r["config_hash"] = chash
        self.data["runs"].extend(runs)
        self.data["skipped"] = [
            s for s in self.data["skipped"] if (s["scheme"], s["activation"], s["depth"]) != _key(runs[0])
        ]

    def skip(self, scheme: str, activation: str, depth: int, reason: str) -> None:
        self.data["skipped"].append({"scheme": scheme, "activation": activation, "depth": depth, "reason": reason})

    def save(self) -> None:
        os.makedirs(self.out_dir, exist_ok=True)
        atomic_write_text(self.path, json.dumps(jsonify(self.data), indent=1, allow_nan=False) + "\n")


def _key(run: dict) -> tuple:
    return run["scheme"], run["activation"], run["depth"]


# --------------------------------------------------------------------------- summary


def _mean_std(values: list[float]) -> tuple[float, float] | None:
    vals = [v for v in values if v is not None and math.isfinite(v)]
    if not vals:
        return None
    return float(np.mean(vals)), float(np.std(vals))


def summary_rows(runs: list[dict]) -> list[dict]:
    """Aggregates the seeds of each scheme in ``runs`` (one group) and ranks them.

    Rank: fewest diverged seeds first, then lowest mean final train loss (over
    the seeds that did not diverge), then highest test accuracy.
    """
    by_scheme: dict[str, list[dict]] = defaultdict(list)
    for r in runs:
        by_scheme[r["scheme"]].append(r)
    rows = []
    for scheme, rs in by_scheme.items():
        n = len(rs)
        diverged = sum(bool(r["diverged"]) for r in rs)
        loss = _mean_std([r["final_train_loss"] for r in rs])
        acc = _mean_std([r["test_accuracy"] for r in rs])
        reached = [r["steps_to_target"] for r in rs if r["steps_to_target"] is not None]
        last_std = [
            r["init_stats"]["activation_std"][-1]
            for r in rs
            if r.get("init_stats") and r["init_stats"]["activation_std"]
        ]
        std_last = _mean_std(last_std)
        rows.append(
            {
                "scheme": scheme,
                "seeds": n,
                "diverged": diverged,
                "loss": loss,
                "acc": acc,
                "reached": len(reached),
                "steps_to_target": float(np.mean(reached)) if reached else None,
                "init_std_last": std_last[0] if std_last else (None if not last_std else math.inf),
            }
        )
    rows.sort(
        key=lambda r: (
            r["diverged"] / r["seeds"],
            r["loss"][0] if r["loss"] else math.inf,
            -(r["acc"][0] if r["acc"] else -math.inf),
        )
    )
    for i, r in enumerate(rows, 1):
        r["rank"] = i
    return rows


def rank_groups(results: dict) -> dict[tuple[str, int], list[dict]]:
    """``{(activation, depth): ranked rows}`` for every group in ``results``."""
    groups: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for r in results.get("runs", []):
        groups[(r["activation"], r["depth"])].append(r)
    return {k: summary_rows(v) for k, v in sorted(groups.items(), key=lambda kv: (kv[0][1], kv[0][0]))}


def fmt(x: float | None, digits: int = 3) -> str:
    """``digits`` significant digits; ``-`` for missing, ``inf`` for infinite."""
    if x is None:
        return "-"
    if not math.isfinite(x):
        return "inf"
    return f"{x:.{digits}g}"


def table_cells(row: dict, target: float | None) -> list[str]:
    """The cells of one ranked-table row (shared by summary.md and the console)."""
    loss = f"{fmt(row['loss'][0])} ± {fmt(row['loss'][1])}" if row["loss"] else "-"
    acc = f"{100 * row['acc'][0]:.1f} ± {100 * row['acc'][1]:.1f}" if row["acc"] else "-"
    if target is None:
        reached = "-"
    else:
        reached = f"{row['steps_to_target']:.0f} ({row['reached']}/{row['seeds']})" if row["reached"] else f"never (0/{row['seeds']})"
    div = f"{row['diverged']}/{row['seeds']}" if row["diverged"] else "0"
    return [str(row["rank"]), row["scheme"], loss, acc, reached, div, fmt(row["init_std_last"])]


TABLE_HEADER = ["#", "scheme", "final train loss", "test acc %", "steps to target", "diverged", "init act std (last layer)"]


def summary_markdown(results: dict) -> str:
    """``summary.md``: the ranked table of every (activation, depth) group."""
    cfg = results.get("config", {})
    env = results.get("env", {})
    info = cfg.get("dataset_info", {})
    target = cfg.get("target_loss")
    lines = ["# jinit benchmark summary", ""]
    if cfg.get("preset"):
        lines.append(f"Preset `{cfg['preset']}`" + (f": {cfg.get('preset_source')}" if cfg.get("preset_source") else "") + ".")
        lines.append("")
    lines += [
        f"- dataset: `{info.get('name', cfg.get('dataset'))}` ({info.get('n_train', '?')} train / "
        f"{info.get('n_test', '?')} test, {info.get('n_features', '?')} features, task {info.get('task', '?')})",
        f"- MLP: width {cfg.get('width')}, depth = number of hidden layers; optimizer `{cfg.get('optimizer')}`, "
        f"lr {cfg.get('lr')}, {cfg.get('steps')} steps of batch {cfg.get('batch_size')}, "
        f"{cfg.get('seeds')} seed(s) per scheme",
        f"- backend `{env.get('backend')}`, {env.get('devices_used', 1)} device(s); jax {env.get('jax')}",
        "",
        "Ranked by: fewest diverged seeds, then lowest mean final train loss (whole training split, after the last "
        "step; non-diverged seeds), then test accuracy. Values are mean ± std over seeds. "
        f"`steps to target`: mean first logged step with train loss <= {target} (seeds that reached it / all). "
        "`init act std (last layer)`: std of the last hidden layer's output at initialization "
        "(about 1 is healthy; tiny means vanishing, huge exploding).",
        "",
    ]
    for (act, depth), rows in rank_groups(results).items():
        lines.append(f"## {act}, depth {depth}")
        lines.append("")
        lines.append("| " + " | ".join(TABLE_HEADER) + " |")
        lines.append("|" + "---|" * len(TABLE_HEADER))
        for row in rows:
            lines.append("| " + " | ".join(table_cells(row, target)) + " |")
        lines.append("")
    skipped = results.get("skipped") or []
    if skipped:
        lines.append("## Skipped")
        lines.append("")
        for s in skipped:
            lines.append(f"- `{s['scheme']}` ({s['activation']}, depth {s['depth']}): {s['reason']}")
        lines.append("")
    timing = results.get("timing") or {}
    if timing:
        lines.append(
            "Timing of the last session: "
            + ", ".join(f"{k.replace('_s', '')} {v:.1f} s" for k, v in timing.items() if isinstance(v, (int, float)))
            + "."
        )
        lines.append("")
    return "\n".join(lines)
