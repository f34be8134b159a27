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
* a CIFAR-10 directory in the official Python format: the ``cifar-10-batches-py``
  folder extracted from ``cifar-10-python.tar.gz``, holding ``data_batch_1`` ...
  ``data_batch_5`` (50,000 training images) and ``test_batch`` (10,000 test
  images); ``batches.meta``, if present, names the 10 classes. Each image's
  32x32x3 pixels become one row of features in height, width, channel order
  (``x.reshape(-1, 32, 32, 3)`` gives the images back; the shape is in
  ``notes["image_shape"]``), scaled to [0, 1] and standardized with the training
  split's global mean and std, as for IDX files. The batches are Python pickles,
  and loading a pickle can execute code: pass only the official CIFAR-10 files
  (see :func:`load_cifar10_dir`).
* a ``.npz`` file with arrays ``x_train``, ``y_train``, ``x_test``, ``y_test``.
  Inputs are flattened to ``(N, features)``; integer labels (or integral
  floats, 1-D) make a classification task, anything else regression. Tabular
  inputs are standardized per feature, image-like ones (``uint8`` or more than 2
  dimensions) globally, with training statistics.

Missing or malformed files raise :class:`DataError` with the reason.
"""

from __future__ import annotations

import codecs
import gzip
import math
import os
import pickle
from dataclasses import dataclass, field, replace

import numpy as np

__all__ = ["Dataset", "DataError", "load_dataset", "with_validation", "load_digits", "make_teacher", "load_idx", "load_idx_dir",
           "load_cifar10_dir", "load_npz"]

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
      notes: extra facts copied into :meth:`describe` (``source``; for image
        datasets that know it, ``image_shape``, the ``(height, width, channels)``
        layout of a flattened row).
      x_val, y_val: the validation split carved from the training split by
        :func:`with_validation` (None before).
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
    x_val: np.ndarray | None = None
    y_val: np.ndarray | None = None

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
            "n_val": 0 if self.x_val is None else int(self.x_val.shape[0]),
            "n_features": self.n_features,
            "n_classes": self.n_classes,
            "n_out": self.n_out,
            **self.notes,
        }


def with_validation(data: Dataset, fraction: float) -> Dataset:
    """``data`` with a fixed validation split carved from its training split.

    The last ``round(fraction * n_train)`` examples of a permutation drawn with
    ``numpy.random.default_rng(0)`` become ``x_val, y_val`` (for classification
    the permutation is stratified: each class gives the same fraction, so the
    split does not depend on the order of the file). The split is the same for
    every scheme, learning rate and seed; learning rates are chosen on it and the
    test split is only reported. Features were standardized with statistics of the
    whole training split (validation part included), as before the carve.
    """
    if not 0 < fraction < 1:
        raise DataError(f"validation fraction must be in (0, 1), got {fraction!r}.")
    n = len(data.x_train)
    rng = np.random.default_rng(0)
    if data.task == "classification":
        val = np.concatenate([
            idx[: int(round(fraction * len(idx)))]
            for idx in (rng.permutation(np.flatnonzero(data.y_train == c)) for c in range(data.n_classes))
        ])
    else:
        val = rng.permutation(n)[: int(round(fraction * n))]
    if len(val) < 1 or len(val) >= n:
        raise DataError(f"{data.name}: a validation fraction of {fraction} leaves {n - len(val)} training and "
                        f"{len(val)} validation examples; choose a fraction that leaves both non-empty.")
    keep = np.setdiff1d(np.arange(n), val)
    val = np.sort(val)
    return replace(data, x_train=data.x_train[keep], y_train=data.y_train[keep], x_val=data.x_train[val],
                   y_val=data.y_train[val])


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


def _idx_candidates(stem: str) -> list[str]:
    return [stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"]


def _find_idx(directory: str, stem: str) -> str:
    for name in _idx_candidates(stem):
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


# --------------------------------------------------------------------------- CIFAR-10

CIFAR_TRAIN = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR_TEST = "test_batch"
CIFAR_META = "batches.meta"
CIFAR_IMAGE_SHAPE = (32, 32, 3)  # height, width, channels: the order of a row's features
CIFAR_CLASSES = 10

_ARRAY = np.zeros(1, np.uint8)
# The only globals a CIFAR-10 batch needs: NumPy's array reconstructors (module
# names of NumPy 1 and 2; protocol 5 pickles use _frombuffer) and, for batches
# re-pickled by Python 3 with protocol 2, codecs.encode (how it stores bytes).
_PICKLE_GLOBALS = {
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _ARRAY.__reduce__()[0],
    ("numpy._core.multiarray", "_reconstruct"): _ARRAY.__reduce__()[0],
    ("numpy.core.numeric", "_frombuffer"): _ARRAY.__reduce_ex__(5)[0],
    ("numpy._core.numeric", "_frombuffer"): _ARRAY.__reduce_ex__(5)[0],
    ("_codecs", "encode"): codecs.encode,
}


class _CifarUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and NumPy arrays; refuses every
    other global (a pickle runs code by naming a function to call)."""

    def find_class(self, module: str, name: str):
        try:
            return _PICKLE_GLOBALS[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refusing to load {module}.{name}: a CIFAR-10 batch holds only a dict of lists, bytes and a "
                "uint8 array"
            ) from None


def _load_pickle(path: str):
    try:
        with open(path, "rb") as f:
            return _CifarUnpickler(f, encoding="bytes").load()
    except OSError as err:
        raise DataError(f"cannot read {path}: {err.strerror or err}.") from None
    except Exception as err:  # a malformed pickle can fail in many ways
        raise DataError(
            f"{path}: not a CIFAR-10 Python batch ({type(err).__name__}: {err}); pass the official "
            "cifar-10-batches-py folder."
        ) from None


def _entry(batch: dict, key: str):
    """``batch[b"key"]`` (the official files) or ``batch["key"]`` (re-pickled ones)."""
    return batch.get(key.encode(), batch.get(key))


def _load_cifar_batch(path: str) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> ``(uint8 (N, 3072) channel-major pixels, int labels (N,))``."""
    batch = _load_pickle(path)
    if not isinstance(batch, dict):
        raise DataError(f"{path}: expected a pickled dict with b'data' and b'labels', got {type(batch).__name__}.")
    data, labels = _entry(batch, "data"), _entry(batch, "labels")
    if labels is None and _entry(batch, "fine_labels") is not None:
        raise DataError(f"{path}: a CIFAR-100 batch (fine_labels); only CIFAR-10 is supported, or use an .npz.")
    missing = [k for k, v in (("data", data), ("labels", labels)) if v is None]
    if missing:
        raise DataError(
            f"{path}: missing {' and '.join(f'b{k!r}' for k in missing)}; a CIFAR-10 batch is a dict with "
            f"b'data' and b'labels' (found keys: {', '.join(map(repr, batch)) or 'none'})."
        )
    size = math.prod(CIFAR_IMAGE_SHAPE)
    if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2 and data.shape[1] == size):
        got = f"shape {data.shape}, dtype {data.dtype}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(
            f"{path}: b'data' must be a uint8 array of shape (N, {size}) (N 32x32 RGB images: 1024 red, then 1024 "
            f"green, then 1024 blue values each), got {got}."
        )
    try:
        y = np.asarray(labels)
    except (TypeError, ValueError):  # ragged or odd objects
        y = None
    if y is None or y.ndim != 1 or not (np.issubdtype(y.dtype, np.integer) or y.size == 0):
        got = type(labels).__name__ + (f" of dtype {y.dtype}, shape {y.shape}" if y is not None else "")
        raise DataError(f"{path}: b'labels' must be a list of integer class labels, got {got}.")
    if len(y) != len(data):
        raise DataError(f"{path}: {len(data)} images but {len(y)} labels.")
    bad = (y < 0) | (y >= CIFAR_CLASSES)
    if bad.any():
        raise DataError(
            f"{path}: labels must be CIFAR-10 classes 0..{CIFAR_CLASSES - 1}, found "
            f"{', '.join(map(str, np.unique(y[bad])[:5]))}."
        )
    return data, y


def _cifar_class_names(path: str) -> list[str]:
    meta = _load_pickle(path)
    names = _entry(meta, "label_names") if isinstance(meta, dict) else None
    if not (isinstance(names, list) and len(names) == CIFAR_CLASSES
            and all(isinstance(n, (bytes, str)) for n in names)):
        raise DataError(f"{path}: expected a pickled dict whose b'label_names' lists the {CIFAR_CLASSES} class names.")
    return [n.decode("utf-8", "replace") if isinstance(n, bytes) else n for n in names]


def load_cifar10_dir(directory: str, spec: str | None = None) -> Dataset:
    """CIFAR-10 Python batches (the extracted ``cifar-10-batches-py``) -> Dataset.

    Reads ``data_batch_1`` ... ``data_batch_5`` (train, in this order) and
    ``test_batch``; each is a pickled dict whose ``b"data"`` is a uint8 array
    ``(N, 3072)`` (per image 1024 red, 1024 green, 1024 blue values of a 32x32
    image, rows top to bottom) and ``b"labels"`` a list of N ints in 0..9. The
    optional ``batches.meta`` gives the class names (``notes["classes"]``).
    Rows of ``x_train`` / ``x_test`` are the images in height, width, channel
    order (``notes["image_shape"]`` is ``(32, 32, 3)``), scaled to [0, 1] and
    standardized with the training split's global mean and std.

    Security: the batches are Python pickles, and loading a pickle can execute
    arbitrary code, so pass only the official CIFAR-10 files (from
    https://www.cs.toronto.edu/~kriz/cifar.html, or a copy you trust). As a
    safeguard the files are read with an unpickler that accepts only dicts,
    lists, strings, numbers and NumPy arrays and refuses anything else with a
    :class:`DataError`; it does not make untrusted files safe to use.
    """
    paths = [os.path.join(directory, n) for n in CIFAR_TRAIN + (CIFAR_TEST,)]
    missing = [os.path.basename(p) for p in paths if not os.path.isfile(p)]
    if missing:
        raise DataError(
            f"{directory}: missing {', '.join(missing)}; a CIFAR-10 directory (the extracted cifar-10-batches-py) "
            f"needs {', '.join(CIFAR_TRAIN)} and {CIFAR_TEST}."
        )
    batches = [_load_cifar_batch(p) for p in paths]
    x_train = np.concatenate([x for x, _ in batches[:-1]])
    y_train = np.concatenate([y for _, y in batches[:-1]])
    x_test, y_test = batches[-1]
    name = os.path.basename(os.path.normpath(directory)) or "cifar10"
    _check_split(name, x_train, y_train, x_test, y_test)
    h, w, c = CIFAR_IMAGE_SHAPE
    x_train, x_test = (x.reshape(len(x), c, h, w).transpose(0, 2, 3, 1).reshape(len(x), -1) for x in (x_train, x_test))
    # Standardizing the raw uint8 values gives the same result as scaling them to
    # [0, 1] first (one affine map), without another float64 copy of the images.
    x_train, x_test = _standardize(x_train, x_test, per_feature=False)
    notes = {"source": os.path.abspath(directory), "image_shape": CIFAR_IMAGE_SHAPE}
    meta = os.path.join(directory, CIFAR_META)
    if os.path.isfile(meta):
        notes["classes"] = _cifar_class_names(meta)
    return Dataset(name, spec or directory, x_train, y_train.astype(np.int32), x_test, y_test.astype(np.int32),
                   "classification", CIFAR_CLASSES, notes)


def _load_dir(directory: str, spec: str) -> Dataset:
    """An IDX or a CIFAR-10 directory, told apart by the files in it."""
    if any(os.path.isfile(os.path.join(directory, n)) for stem in IDX_FILES.values() for n in _idx_candidates(stem)):
        return load_idx_dir(directory, spec)
    if any(os.path.isfile(os.path.join(directory, n)) for n in CIFAR_TRAIN + (CIFAR_TEST, CIFAR_META)):
        return load_cifar10_dir(directory, spec)
    hint = ""
    nested = os.path.join(directory, "cifar-10-batches-py")
    if os.path.isdir(nested):
        hint = f" (did you mean {nested}?)"
    raise DataError(
        f"{directory}: no dataset files found{hint}; a dataset directory holds MNIST-format IDX files ("
        + ", ".join(f"{s}[.gz]" for s in IDX_FILES.values())
        + f") or the CIFAR-10 Python batches ({', '.join(CIFAR_TRAIN)}, {CIFAR_TEST}: the extracted "
        "cifar-10-batches-py folder)."
    )


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
        return _load_dir(path, spec)
    if os.path.isfile(path):
        if path.endswith(".npz"):
            return load_npz(path, spec)
        if path.endswith((".tar.gz", ".tgz")):
            raise DataError(
                f"{spec}: an archive; extract it and pass the folder it holds (for CIFAR-10, "
                "cifar-10-batches-py)."
            )
        raise DataError(
            f"{spec}: a dataset file must be an .npz (x_train, y_train, x_test, y_test); "
            "for IDX files or CIFAR-10 batches pass the directory that holds them."
        )
    raise DataError(
        f"unknown dataset {spec!r}: not a built-in ({', '.join(BUILTIN)}, teacher:key=value,...) "
        "and no such file or directory (expected a directory of IDX files or CIFAR-10 batches, or an .npz file)."
    )
