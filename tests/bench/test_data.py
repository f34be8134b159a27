"""Datasets: digits, teacher, IDX and .npz loaders and their errors."""

import gzip
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
