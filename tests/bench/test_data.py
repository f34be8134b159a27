"""Datasets: digits, teacher, IDX, CIFAR-10 and .npz loaders and their errors."""

import gzip
import os
import pickle
import re
import struct

import numpy as np
import pytest

from bench.data import DataError, load_dataset, load_idx, make_teacher, parse_teacher_spec


def test_digits_split_and_standardization():
    d = load_dataset("digits")
    assert d.x_train.shape == (1437, 64) and d.x_test.shape == (360, 64)
    assert d.task == "classification" and d.n_classes == 10 and d.n_out == 10
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int32
    varying = d.x_train.std(axis=0) > 0
    np.testing.assert_allclose(d.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(d.x_train.std(axis=0)[varying], 1, atol=1e-4)
    assert set(np.unique(d.y_test)) == set(range(10))  # stratified
    again = load_dataset("digits")
    np.testing.assert_array_equal(d.x_test, again.x_test)  # fixed split


def test_teacher_is_deterministic_and_configurable():
    a = make_teacher("teacher:n_train=300,n_test=100,dim=8,classes=4")
    b = make_teacher("teacher:n_train=300,n_test=100,dim=8,classes=4")
    np.testing.assert_array_equal(a.x_train, b.x_train)
    np.testing.assert_array_equal(a.y_train, b.y_train)
    assert a.x_train.shape == (300, 8) and a.x_test.shape == (100, 8) and a.n_classes == 4
    counts = np.bincount(a.y_train, minlength=4)
    assert counts.min() > 0.05 * 300  # no empty class
    c = make_teacher("teacher:n_train=300,n_test=100,dim=8,classes=4,seed=1")
    assert not np.array_equal(a.y_train, c.y_train)


def test_teacher_regression():
    d = load_dataset("teacher:classes=0,outputs=3,n_train=200,n_test=50")
    assert d.task == "regression" and d.n_classes == 0 and d.n_out == 3
    assert d.y_train.shape == (200, 3) and d.y_train.dtype == np.float32


@pytest.mark.parametrize("spec", ["teacher:bogus=1", "teacher:dim=x", "teacher:classes=1", "teacher:n_train=0"])
def test_teacher_bad_options(spec):
    with pytest.raises(DataError, match="teacher"):
        parse_teacher_spec(spec)


def _idx_bytes(arr: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", n) for n in arr.shape)
    return header + arr.astype(np.uint8).tobytes()


def _write_idx_dir(tmp_path, gz: bool, n_train=20, n_test=10):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 4, 4)),
        "train-labels-idx1-ubyte": rng.integers(0, 3, n_train),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 4, 4)),
        "t10k-labels-idx1-ubyte": np.arange(n_test) % 3,
    }
    for name, arr in arrays.items():
        data = _idx_bytes(arr)
        if gz:
            (tmp_path / (name + ".gz")).write_bytes(gzip.compress(data))
        else:
            (tmp_path / name).write_bytes(data)
    return arrays


@pytest.mark.parametrize("gz", [False, True])
def test_idx_directory(tmp_path, gz):
    arrays = _write_idx_dir(tmp_path, gz)
    d = load_dataset(str(tmp_path))
    assert d.x_train.shape == (20, 16) and d.x_test.shape == (10, 16)
    assert d.n_classes == 3 and d.task == "classification"
    np.testing.assert_array_equal(d.y_train, arrays["train-labels-idx1-ubyte"])
    assert abs(d.x_train.mean()) < 1e-5 and abs(d.x_train.std() - 1) < 1e-4  # global standardization
    # pixel order preserved: standardization is one affine map
    raw = arrays["train-images-idx3-ubyte"].reshape(20, 16).astype(float)
    assert np.corrcoef(raw.ravel(), d.x_train.ravel())[0, 1] > 0.9999


def test_idx_errors(tmp_path):
    _write_idx_dir(tmp_path, gz=False)
    bad = tmp_path / "t10k-labels-idx1-ubyte"
    bad.write_bytes(b"\x12\x34\x56\x78" + b"\x00" * 10)
    with pytest.raises(DataError, match="not an IDX file"):
        load_dataset(str(tmp_path))
    bad.write_bytes(_idx_bytes(np.arange(10))[:-3])  # truncated data
    with pytest.raises(DataError, match="declares shape"):
        load_idx(str(bad))
    bad.write_bytes(_idx_bytes(np.arange(7) % 3))  # 7 labels for 10 images
    with pytest.raises(DataError, match="10 examples but y_test has 7"):
        load_dataset(str(tmp_path))
    bad.unlink()
    with pytest.raises(DataError, match="missing t10k-labels-idx1-ubyte"):
        load_dataset(str(tmp_path))
    (tmp_path / "x.gz").write_bytes(b"\x1f\x8b garbage")
    with pytest.raises(DataError, match="gzip"):
        load_idx(str(tmp_path / "x.gz"))


CIFAR_TRAIN = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR_NAMES = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse", b"ship", b"truck"]


def _cifar_batch(name: str, n: int, offset: int) -> dict:
    rng = np.random.default_rng(offset)
    return {b"batch_label": name.encode(), b"labels": [(offset + j) % 10 for j in range(n)],
            b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            b"filenames": [b"img_%d.png" % j for j in range(n)]}


def write_cifar(directory, n_train=4, n_test=6) -> dict:
    """A tiny fake ``cifar-10-batches-py``: the official file names and pickled
    dicts, ``n_train`` images in each of the 5 training batches. Pickle protocols
    2 (as the official files) and 5 alternate."""
    os.makedirs(directory, exist_ok=True)
    batches = {}
    for i, name in enumerate(CIFAR_TRAIN + ["test_batch"]):
        batches[name] = _cifar_batch(name, n_test if name == "test_batch" else n_train, offset=i)
        with open(os.path.join(directory, name), "wb") as f:
            pickle.dump(batches[name], f, protocol=2 if i % 2 == 0 else 5)
    with open(os.path.join(directory, "batches.meta"), "wb") as f:
        pickle.dump({b"num_cases_per_batch": n_train, b"label_names": CIFAR_NAMES, b"num_vis": 3072}, f, protocol=2)
    return batches


def test_cifar10_directory(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    batches = write_cifar(folder)
    d = load_dataset(str(folder))  # what --dataset PATH calls
    assert d.name == "cifar-10-batches-py" and d.task == "classification" and d.n_classes == 10
    assert d.x_train.shape == (20, 3072) and d.x_test.shape == (6, 3072)
    assert d.x_train.dtype == np.float32 and d.y_train.dtype == np.int32
    np.testing.assert_array_equal(d.y_train, np.concatenate([batches[n][b"labels"] for n in CIFAR_TRAIN]))
    np.testing.assert_array_equal(d.y_test, batches["test_batch"][b"labels"])
    info = d.describe()
    assert tuple(info["image_shape"]) == (32, 32, 3) and info["classes"][0] == "airplane" and info["n_features"] == 3072
    # rows are the images channel-last, globally standardized with the training statistics
    raw = np.concatenate([batches[n][b"data"] for n in CIFAR_TRAIN]).astype(float) / 255
    images = raw.reshape(20, 3, 32, 32).transpose(0, 2, 3, 1)
    mean, std = images.mean(), images.std()
    np.testing.assert_allclose(d.x_train.reshape(20, 32, 32, 3), (images - mean) / std, atol=1e-5)
    test = batches["test_batch"][b"data"].reshape(6, 3, 32, 32).transpose(0, 2, 3, 1) / 255
    np.testing.assert_allclose(d.x_test.reshape(6, 32, 32, 3), (test - mean) / std, atol=1e-5)
    # red, green, blue of the top-left pixel of the first image
    np.testing.assert_allclose(d.x_train[0, :3] * std + mean, raw[0, [0, 1024, 2048]], atol=1e-5)


def _rewrite(path, **changes):
    with open(path, "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    batch.update({k.encode(): v for k, v in changes.items()})
    with open(path, "wb") as f:
        pickle.dump(batch, f, protocol=2)


class _Payload:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return os.mkdir, (self.target,)


def test_cifar10_errors(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    write_cifar(folder)
    spec = str(folder)
    batch = folder / "data_batch_2"
    _rewrite(batch, data=np.zeros((4, 3071), np.uint8))
    with pytest.raises(DataError, match=r"data_batch_2: b'data' must be a uint8 array of shape \(N, 3072\).*"
                                        r"got shape \(4, 3071\)"):
        load_dataset(spec)
    _rewrite(batch, data=np.zeros((4, 3072), np.float32))
    with pytest.raises(DataError, match="data_batch_2.*dtype float32"):
        load_dataset(spec)
    _rewrite(batch, data=np.zeros((4, 3072), np.uint8), labels=[0, 1, 2])
    with pytest.raises(DataError, match="data_batch_2: 4 images but 3 labels"):
        load_dataset(spec)
    _rewrite(batch, labels=[0, 1, 10, -1])
    with pytest.raises(DataError, match=r"data_batch_2: labels must be CIFAR-10 classes 0\.\.9, found -1, 10"):
        load_dataset(spec)
    _rewrite(batch, labels=["cat"] * 4)
    with pytest.raises(DataError, match="data_batch_2: b'labels' must be a list of integer"):
        load_dataset(spec)
    batch.write_bytes(pickle.dumps({b"data": np.zeros((4, 3072), np.uint8), b"fine_labels": [0] * 4}))
    with pytest.raises(DataError, match="data_batch_2: a CIFAR-100 batch"):
        load_dataset(spec)
    batch.write_bytes(pickle.dumps({b"labels": [0] * 4}))
    with pytest.raises(DataError, match="data_batch_2: missing b'data'"):
        load_dataset(spec)
    batch.write_bytes(b"garbage")
    with pytest.raises(DataError, match="data_batch_2: not a CIFAR-10 Python batch"):
        load_dataset(spec)
    # a pickle that would call a function is refused, and the function is not called
    batch.write_bytes(pickle.dumps(_Payload(str(tmp_path / "ran")), protocol=2))
    with pytest.raises(DataError, match="refusing to load posix.mkdir|refusing to load nt.mkdir"):
        load_dataset(spec)
    assert not (tmp_path / "ran").exists()
    batch.unlink()
    (folder / "test_batch").unlink()
    with pytest.raises(DataError, match=re.escape(f"{folder}: missing data_batch_2, test_batch; a CIFAR-10 directory")):
        load_dataset(spec)


def test_dataset_directory_without_dataset_files(tmp_path):
    (tmp_path / "cifar-10-batches-py").mkdir()
    with pytest.raises(DataError, match="no dataset files found.*did you mean.*cifar-10-batches-py.*IDX.*data_batch_1"):
        load_dataset(str(tmp_path))
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"")
    with pytest.raises(DataError, match="extract it"):
        load_dataset(str(tmp_path / "cifar-10-python.tar.gz"))


def test_npz(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "data.npz"
    np.savez(path, x_train=rng.normal(size=(30, 2, 3)), y_train=rng.integers(0, 5, 30),
             x_test=rng.normal(size=(8, 2, 3)), y_test=rng.integers(0, 5, 8))
    d = load_dataset(str(path))
    assert d.x_train.shape == (30, 6) and d.n_classes == 5 and d.name == "data"
    reg = tmp_path / "reg.npz"
    np.savez(reg, x_train=rng.normal(size=(30, 4)), y_train=rng.normal(size=30),
             x_test=rng.normal(size=(8, 4)), y_test=rng.normal(size=8))
    d = load_dataset(str(reg))
    assert d.task == "regression" and d.y_train.shape == (30, 1)


def test_npz_errors(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "bad.npz"
    np.savez(path, x_train=rng.normal(size=(30, 4)), y_train=rng.integers(0, 5, 30), x_test=rng.normal(size=(8, 4)))
    with pytest.raises(DataError, match="missing array.*y_test"):
        load_dataset(str(path))
    np.savez(path, x_train=rng.normal(size=(30, 4)), y_train=rng.integers(0, 5, 29),
             x_test=rng.normal(size=(8, 4)), y_test=rng.integers(0, 5, 8))
    with pytest.raises(DataError, match="30 examples but y_train has 29"):
        load_dataset(str(path))
    np.savez(path, x_train=rng.normal(size=(30, 4)), y_train=rng.integers(0, 5, 30),
             x_test=rng.normal(size=(8, 5)), y_test=rng.integers(0, 5, 8))
    with pytest.raises(DataError, match="shape"):
        load_dataset(str(path))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_dataset(str(tmp_path / "junk.npz"))
    (tmp_path / "data.csv").write_text("1,2\n")
    with pytest.raises(DataError, match=".npz"):
        load_dataset(str(tmp_path / "data.csv"))


def test_unknown_dataset_names_the_choices():
    with pytest.raises(DataError, match="digits, teacher"):
        load_dataset("cifar-nonexistent")
