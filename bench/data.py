"""Datasets for the benchmark, as in-memory NumPy arrays.

``--dataset`` accepts:

* ``digits``: scikit-learn's bundled 8x8 handwritten digits (1,797 images, 64
  features, 10 classes; no download). Fixed stratified split, 1,437 train / 360
  test (``random_state=0``); each feature standardized with the training split's
  mean and std (constant pixels are left at 0). The default.
* ``teacher`` or ``teacher:key=value,...``: a synthetic teacher-student task. A
  random tanh MLP (the teacher) labels Gaussian inputs; the student (the
  benchmarked MLP) learns it. Keys (defaults): ``n_train`` (4096), ``n_test``
  (1024), ``dim`` (32 input features), ``classes`` (10; ``0`` makes it a
  regression task), ``outputs`` (regression targets, 1), ``hidden`` (64),
  ``layers`` (2 hidden teacher layers), ``noise`` (0.0: std of Gaussian noise
  added to the teacher's logits / targets), ``seed`` (0). Deterministic.
* a directory holding MNIST-format IDX files (MNIST, Fashion-MNIST, KMNIST ...):
  ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-images-idx3-ubyte``, ``t10k-labels-idx1-ubyte``, each optionally
  gzipped (``.gz``). Pixels are scaled to [0, 1] and standardized with the
  training split's global mean and std.
* a ``.npz`` file with arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``.
  Inputs are flattened to ``(N, features)``; integer labels (or integral
  floats, 1-D) make a classification task, anything else regression. Tabular
  inputs are standardized per feature, image-like ones (``uint8`` or more than 2
  dimensions) globally, with training statistics.

Missing or malformed files raise :class:`DataError` with the reason.
"""

from __future__ import annotations

import gzip
import math
import os
from dataclasses import dataclass, field

import numpy as np

__all__ = ["Dataset", "DataError", "load_dataset", "load_digits", "make_teacher", "load_idx", "load_idx_dir", "load_npz"]

BUILTIN = ("digits", "teacher")

TEACHER_DEFAULTS = {
    "n_train": 4096,
    "n_test": 1024,
    "dim": 32,
    "classes": 10,
    "outputs": 1,
    "hidden": 64,
    "layers": 2,
    "noise": 0.0,
    "seed": 0,
}


class DataError(ValueError):
    """A dataset cannot be found, parsed or used; the message says why."""


@dataclass
class Dataset:
    """A train/test split ready for training.

    Attributes:
      name: short name for tables (``digits``, ``teacher``, the file's name).
      spec: the ``--dataset`` string it was loaded from.
      x_train, x_test: ``float32`` arrays of shape ``(N, features)``.
      y_train, y_test: ``int32`` class labels ``(N,)`` for classification,
        ``float32`` targets ``(N, outputs)`` for regression.
      task: ``"classification"`` or ``"regression"``.
      n_classes: number of classes (0 for regression).
    """

    name: str
    spec: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    task: str
    n_classes: int
    notes: dict = field(default_factory=dict)

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_out(self) -> int:
        return self.n_classes if self.task == "classification" else int(self.y_train.shape[1])

    def describe(self) -> dict:
        return {
            "name": self.name,
            "spec": self.spec,
            "task": self.task,
            "n_train": int(self.x_train.shape[0]),
            "n_test": int(self.x_test.shape[0]),
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "n_out": self.n_out,
            **self.notes,
        }


# --------------------------------------------------------------------------- helpers


def _standardize(x_train: np.ndarray, x_test: np.ndarray, per_feature: bool) -> tuple[np.ndarray, np.ndarray]:
    x_train = x_train.astype(np.float64)
    x_test = x_test.astype(np.float64)
    if per_feature:
        mean = x_train.mean(axis=0)
        std = x_train.std(axis=0)
        std = np.where(std > 1e-8, std, 1.0)
    else:
        mean = x_train.mean()
        std = x_train.std()
        std = std if std > 1e-8 else 1.0
    return ((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32)


def _check_split(name: str, x_train, y_train, x_test, y_test) -> None:
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        if len(x) != len(y):
            raise DataError(f"{name}: x_{split} has {len(x)} examples but y_{split} has {len(y)}.")
        if len(x) == 0:
            raise DataError(f"{name}: the {split} split is empty.")
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"{name}: x_train examples have shape {x_train.shape[1:]} but x_test ones {x_test.shape[1:]}.")
    for split, x in (("train", x_train), ("test", x_test)):
        if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
            raise DataError(f"{name}: x_{split} must be real numbers, got dtype {x.dtype}.")
        if np.issubdtype(x.dtype, np.floating) and not np.all(np.isfinite(x)):
            raise DataError(f"{name}: x_{split} contains NaN or inf.")


def _labels(name: str, y_train: np.ndarray, y_test: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    for split, y in (("train", y_train), ("test", y_test)):
        if y.min() < 0:
            raise DataError(f"{name}: y_{split} has negative class labels.")
    n_classes = int(max(y_train.max(), y_test.max())) + 1
    if n_classes < 2:
        raise DataError(f"{name}: classification needs at least 2 classes, found {n_classes}.")
    return y_train.astype(np.int32), y_test.astype(np.int32), n_classes


# --------------------------------------------------------------------------- digits


def load_digits() -> Dataset:
    """scikit-learn's 8x8 digits: 1,437 train / 360 test, standardized per feature."""
    try:
        from sklearn.datasets import load_digits as _sk_digits
        from sklearn.model_selection import train_test_split
    except ImportError as err:  # pragma: no cover - sklearn is a bench dependency
        raise DataError("digits: needs scikit-learn (pip install 'jinit[bench]').") from err
    digits = _sk_digits()
    x, y = digits.data, digits.target
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=360, random_state=0, stratify=y)
    x_train, x_test = _standardize(x_train, x_test, per_feature=True)
    return Dataset(
        "digits", "digits", x_train, y_train.astype(np.int32), x_test, y_test.astype(np.int32),
        "classification", 10, {"source": "sklearn.datasets.load_digits"},
    )


# --------------------------------------------------------------------------- teacher


def parse_teacher_spec(spec: str) -> dict:
    """``teacher:dim=16,classes=0`` -> the teacher's settings (defaults filled in)."""
    opts = dict(TEACHER_DEFAULTS)
    _, _, rest = spec.partition(":")
    for item in filter(None, (s.strip() for s in rest.split(","))):
        key, eq, value = item.partition("=")
        key = key.strip()
        if key not in TEACHER_DEFAULTS or not eq:
            raise DataError(
                f"teacher: invalid option {item!r}; valid options are "
                + ", ".join(f"{k}=<{type(v).__name__}>" for k, v in TEACHER_DEFAULTS.items())
                + " (e.g. --dataset teacher:dim=16,classes=0)."
            )
        kind = type(TEACHER_DEFAULTS[key])
        try:
            opts[key] = kind(value)
        except ValueError:
            raise DataError(f"teacher: option {key} must be {kind.__name__}, got {value!r}.") from None
    for key in ("n_train", "n_test", "dim", "hidden", "outputs"):
        if opts[key] < 1:
            raise DataError(f"teacher: {key} must be >= 1, got {opts[key]}.")
    if opts["layers"] < 0 or opts["classes"] < 0 or opts["classes"] == 1 or not opts["noise"] >= 0:
        raise DataError("teacher: need layers >= 0, classes = 0 (regression) or >= 2, noise >= 0.")
    return opts


def make_teacher(spec: str = "teacher") -> Dataset:
    """A random tanh MLP labels N(0, I) inputs (see the module docstring)."""
    o = parse_teacher_spec(spec)
    rng = np.random.default_rng(o["seed"])
    n = o["n_train"] + o["n_test"]
    x = rng.standard_normal((n, o["dim"]))
    h = x
    fan = o["dim"]
    for _ in range(o["layers"]):
        w = rng.standard_normal((fan, o["hidden"])) * math.sqrt(2.0 / fan)  # a little above critical: non-trivial
        h = np.tanh(h @ w)
        fan = o["hidden"]
    n_out = o["classes"] if o["classes"] else o["outputs"]
    out = h @ (rng.standard_normal((fan, n_out)) / math.sqrt(fan))
    out = out + o["noise"] * rng.standard_normal(out.shape)
    if o["classes"]:
        # Centre each logit so that classes are roughly balanced.
        y = np.argmax(out - out.mean(axis=0), axis=1).astype(np.int32)
        n_classes, task = o["classes"], "classification"
    else:
        y = ((out - out.mean(axis=0)) / out.std(axis=0)).astype(np.float32)
        n_classes, task = 0, "regression"
    x = x.astype(np.float32)
    tr, te = slice(0, o["n_train"]), slice(o["n_train"], n)
    return Dataset("teacher", spec, x[tr], y[tr], x[te], y[te], task, n_classes, {"teacher": o})


# --------------------------------------------------------------------------- IDX

_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


def _read_bytes(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}.") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as err:
            raise DataError(f"{path}: corrupt gzip data ({err}).") from None
    return raw


def load_idx(path: str) -> np.ndarray:
    """Reads one IDX file (gzipped or not) into an array of its declared shape."""
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(
            f"{path}: not an IDX file (bad magic number {raw[:4].hex() or 'empty'}; expected 0000 then a type "
            "code 08/09/0b/0c/0d/0e and the number of dimensions)."
        )
    ndim = raw[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(raw) < header:
        raise DataError(f"{path}: truncated IDX header.")
    dims = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    expected = math.prod(dims) * dtype.itemsize
    if len(raw) - header != expected:
        raise DataError(
            f"{path}: IDX header declares shape {dims} ({expected} bytes of data) "
            f"but the file holds {len(raw) - header} bytes."
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(dims)


def _find_idx(directory: str, stem: str) -> str:
    candidates = [stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"]
    for name in candidates:
        p = os.path.join(directory, name)
        if os.path.isfile(p):
            return p
    raise DataError(
        f"{directory}: missing {stem}[.gz]; an IDX dataset directory needs "
        + ", ".join(f"{s}[.gz]" for s in IDX_FILES.values())
        + " (the MNIST / Fashion-MNIST file names)."
    )


def load_idx_dir(directory: str, spec: str | None = None) -> Dataset:
    """MNIST-format directory -> Dataset (pixels / 255, globally standardized)."""
    arrays = {k: load_idx(_find_idx(directory, stem)) for k, stem in IDX_FILES.items()}
    name = os.path.basename(os.path.normpath(directory)) or "idx"
    for k in ("y_train", "y_test"):
        if arrays[k].ndim != 1:
            raise DataError(f"{directory}: {IDX_FILES[k]} must hold 1-D labels, got shape {arrays[k].shape}.")
    x_train, x_test = (arrays[k].reshape(len(arrays[k]), -1) for k in ("x_train", "x_test"))
    _check_split(name, x_train, arrays["y_train"], x_test, arrays["y_test"])
    scale = 255.0 if arrays["x_train"].dtype == np.uint8 else 1.0
    x_train, x_test = _standardize(x_train / scale, x_test / scale, per_feature=False)
    y_train, y_test, n_classes = _labels(name, arrays["y_train"], arrays["y_test"])
    return Dataset(name, spec or directory, x_train, y_train, x_test, y_test, "classification", n_classes,
                   {"source": os.path.abspath(directory)})


# --------------------------------------------------------------------------- npz


def load_npz(path: str, spec: str | None = None) -> Dataset:
    """``.npz`` with x_train, y_train, x_test, y_test -> Dataset."""
    name = os.path.splitext(os.path.basename(path))[0]
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in IDX_FILES if k not in z.files]
            if missing:
                raise DataError(
                    f"{path}: missing array(s) {', '.join(missing)}; an .npz dataset needs x_train, y_train, "
                    f"x_test, y_test (found: {', '.join(z.files) or 'none'})."
                )
            arrays = {k: z[k] for k in IDX_FILES}
    except DataError:
        raise
    except (OSError, ValueError) as err:
        raise DataError(f"{path}: not a readable .npz file ({err}).") from None
    x_train, x_test = arrays["x_train"], arrays["x_test"]
    image_like = x_train.dtype == np.uint8 or x_train.ndim > 2
    scalars = [k for k, a in arrays.items() if a.ndim == 0]
    if scalars:
        raise DataError(f"{name}: {', '.join(scalars)} must be arrays of examples, got scalars.")
    x_train, x_test = x_train.reshape(len(x_train), -1), x_test.reshape(len(x_test), -1)
    y_train, y_test = arrays["y_train"], arrays["y_test"]
    _check_split(name, x_train, y_train, x_test, y_test)
    for split, y in (("train", y_train), ("test", y_test)):
        if not np.issubdtype(y.dtype, np.number) or (np.issubdtype(y.dtype, np.floating) and not np.all(np.isfinite(y))):
            raise DataError(f"{name}: y_{split} must be finite numbers, got dtype {y.dtype}.")
    scale = 255.0 if x_train.dtype == np.uint8 else 1.0
    x_train, x_test = _standardize(x_train / scale, x_test / scale, per_feature=not image_like)
    integral = y_train.ndim == 1 and y_test.ndim == 1 and all(
        np.issubdtype(y.dtype, np.integer) or np.all(y == np.round(y)) for y in (y_train, y_test)
    )
    if integral:
        y_train, y_test, n_classes = _labels(name, y_train, y_test)
        task = "classification"
    else:
        y_train = y_train.reshape(len(y_train), -1).astype(np.float32)
        y_test = y_test.reshape(len(y_test), -1).astype(np.float32)
        if y_train.shape[1] != y_test.shape[1]:
            raise DataError(f"{name}: y_train has {y_train.shape[1]} targets per example but y_test {y_test.shape[1]}.")
        n_classes, task = 0, "regression"
    return Dataset(name, spec or path, x_train, y_train, x_test, y_test, task, n_classes,
                   {"source": os.path.abspath(path)})


# --------------------------------------------------------------------------- entry point


def load_dataset(spec: str) -> Dataset:
    """Loads ``--dataset SPEC`` (see the module docstring); raises DataError."""
    if spec == "digits":
        return load_digits()
    if spec == "teacher" or spec.startswith("teacher:"):
        return make_teacher(spec)
    path = os.path.expanduser(spec)
    if os.path.isdir(path):
        return load_idx_dir(path, spec)
    if os.path.isfile(path):
        if path.endswith(".npz"):
            return load_npz(path, spec)
        raise DataError(
            f"{spec}: a dataset file must be an .npz (x_train, y_train, x_test, y_test); "
            "for IDX files pass the directory that holds them."
        )
    raise DataError(
        f"unknown dataset {spec!r}: not a built-in ({', '.join(BUILTIN)}, teacher:key=value,...) "
        "and no such file or directory (expected an IDX directory or an .npz file)."
    )
