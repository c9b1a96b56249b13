"""keras_bnn.datasets.load / prepare: offline preparation by tfds's own builders, checked against the raw files."""

import gzip
import os
import pathlib
import time

import keras_bnn
import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_bnn import datasets

RAW = datasets.raw_data_dir()
IDX_FILES = {"train": "train-{}-idx{}-ubyte.gz", "test": "t10k-{}-idx{}-ubyte.gz"}


def _read_idx(path: pathlib.Path, magic: int, offset: int) -> np.ndarray:
    """The payload of a gzip idx file, after checking its big-endian header (magic number, count, ...)."""
    with gzip.open(path, "rb") as file:
        data = file.read()
    header = np.frombuffer(data[:offset], dtype=">u4")
    assert header[0] == magic, f"{path}: magic {header[0]:#x}"
    payload = np.frombuffer(data, dtype=np.uint8, offset=offset)
    assert payload.size == int(np.prod(header[1:])), path
    return payload.reshape(header[1:])


def _sorted_rows(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Examples as (pixels..., label) byte rows in sorted order, to compare splits whatever their order."""
    rows = np.concatenate([images.reshape(len(images), -1), labels.reshape(-1, 1).astype(np.uint8)], axis=1)
    return np.sort(np.ascontiguousarray(rows).view(np.dtype((np.void, rows.shape[1]))).ravel())


@pytest.mark.parametrize("split", ["test", "train"])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_prepared_pixels_and_labels_equal_the_raw_idx_files(prepared_dir, name, split):
    raw_images = _read_idx(RAW / name / IDX_FILES[split].format("images", 3), 0x803, 16)
    raw_labels = _read_idx(RAW / name / IDX_FILES[split].format("labels", 1), 0x801, 8)
    images, labels = tfds.as_numpy(datasets.load(name, split, data_dir=prepared_dir, batch_size=-1))
    assert images.shape == raw_images.shape + (1,) and images.dtype == np.uint8
    np.testing.assert_array_equal(np.bincount(labels, minlength=10), np.bincount(raw_labels, minlength=10))
    # tfds stores the examples in its own order: compare the multisets of (image, label). This also catches
    # Fashion-MNIST silently built from MNIST's extracted files (same file names, shared extraction folder).
    assert np.array_equal(_sorted_rows(images, labels), _sorted_rows(raw_images, raw_labels))


def test_tiny_shakespeare_splits_concatenate_to_the_raw_text(prepared_dir):
    raw = (RAW / "tiny_shakespeare" / "input.txt").read_text(encoding="utf-8")
    texts = {}
    for split in datasets.info("tiny_shakespeare").splits:
        elements = list(tfds.as_numpy(datasets.load("tiny_shakespeare", split, data_dir=prepared_dir)))
        assert len(elements) == 1, "each split is one element holding its whole text"
        texts[split] = elements[0].decode("utf-8")
    assert texts["train"] + texts["validation"] + texts["test"] == raw
    assert texts["train"] == raw[:1003854]
    assert texts["validation"] == raw[1003854:1059624]


def test_tiny_shakespeare_as_supervised_false_gives_the_tfds_dict_and_batch_size_minus_one_works(prepared_dir):
    (element,) = datasets.load("tiny_shakespeare", "validation", as_supervised=False, data_dir=prepared_dir)
    assert set(element) == {"text"}
    assert element["text"].dtype == tf.string and element["text"].shape == ()
    whole = datasets.load("tiny_shakespeare", "validation", data_dir=prepared_dir, batch_size=-1)
    assert isinstance(whole, tf.Tensor) and whole.shape == (1,) and whole[0] == element["text"]


def test_split_slicing_and_tfds_kwargs_reach_tfds(prepared_dir):
    dataset = datasets.load("mnist", "train[:10]+test[:5]", data_dir=prepared_dir, batch_size=4)
    assert [int(images.shape[0]) for images, _ in dataset] == [4, 4, 4, 3]
    encoded = datasets.load(
        "fashion_mnist", "test[:3]", data_dir=prepared_dir, decoders={"image": tfds.decode.SkipDecoding()}
    )
    assert all(image.dtype == tf.string for image, _ in encoded)


def test_prepared_data_is_loaded_without_raw_files(prepared_dir, tmp_path, monkeypatch):
    """KERAS_BNN_DATA_DIR picks the data folder; once prepared, the raw folder is not needed."""
    monkeypatch.setenv(datasets.DATA_DIR_VARIABLE, os.fspath(prepared_dir))
    monkeypatch.setenv(datasets.RAW_DATA_VARIABLE, os.fspath(tmp_path / "empty"))
    assert datasets.prepared_data_dir() == os.fspath(prepared_dir)
    labels = [int(label) for _, label in datasets.load("mnist", "test[:20]")]
    assert len(labels) == 20


@pytest.mark.parametrize("use_env", [False, True])
def test_missing_raw_folder_fails_fast_and_says_where_it_looked(tmp_path, monkeypatch, use_env):
    empty = tmp_path / "no_raw_data"
    if use_env:
        monkeypatch.setenv(datasets.RAW_DATA_VARIABLE, os.fspath(empty))
        kwargs = {}
    else:
        kwargs = {"raw_dir": empty}
    start = time.monotonic()
    with pytest.raises(FileNotFoundError) as error:
        datasets.load("mnist", "train", data_dir=tmp_path / "data", **kwargs)
    assert time.monotonic() - start < 10
    message = str(error.value)
    assert os.fspath(empty / "mnist") in message and "KERAS_BNN_RAW_DATA" in message
    assert "allow_download=True" in message


def test_incomplete_raw_folder_names_the_missing_file(tmp_path):
    folder = tmp_path / "raw" / "fashion_mnist"
    folder.mkdir(parents=True)
    for file in ["train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz"]:
        (folder / file).symlink_to(RAW / "fashion_mnist" / file)
    start = time.monotonic()
    with pytest.raises(FileNotFoundError, match="t10k-labels-idx1-ubyte.gz"):
        datasets.prepare("fashion_mnist", data_dir=tmp_path / "data", raw_dir=tmp_path / "raw")
    assert time.monotonic() - start < 10


def test_tfds_rejects_a_raw_file_with_the_wrong_checksum(tmp_path):
    """The raw files go through tfds's checksum check: an MNIST folder holding a Fashion-MNIST file fails."""
    folder = tmp_path / "raw" / "mnist"
    folder.mkdir(parents=True)
    for file in datasets.info("mnist").raw_files:
        source = "fashion_mnist" if file == "t10k-labels-idx1-ubyte.gz" else "mnist"
        (folder / file).symlink_to(RAW / source / file)
    with pytest.raises(Exception, match="wrong checksum") as error:
        datasets.prepare("mnist", data_dir=tmp_path / "data", raw_dir=tmp_path / "raw")
    assert type(error.value).__name__ == "NonMatchingChecksumError"
    assert not tfds.builder("mnist", data_dir=os.fspath(tmp_path / "data")).is_prepared()


def test_unknown_name_lists_the_known_names():
    with pytest.raises(ValueError, match="cifar10") as error:
        datasets.load("cifar10", "train")
    for name in ["mnist", "fashion_mnist", "tiny_shakespeare", "sst2"]:
        assert name in str(error.value)


@pytest.mark.parametrize(
    "name, split, expected",
    [("mnist", "validation", "'validation'"), ("sst2", "test", "not public"), ("mnist", "train+tst[:5]", "'tst'")],
)
def test_unknown_split_is_a_clear_error(tmp_path, name, split, expected):
    with pytest.raises(ValueError, match=expected):
        datasets.load(name, split, data_dir=tmp_path, raw_dir=tmp_path)


def test_available_and_info():
    assert datasets.available() == ["fashion_mnist", "mnist", "sst2", "tiny_shakespeare"]
    assert datasets.info("mnist").raw_files == (
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
    )
    assert datasets.info("tiny_shakespeare").supervised_keys is None
    assert not datasets.info("sst2").downloadable and datasets.info("mnist").downloadable


def test_raw_data_dir_defaults_to_shared_datasets_next_to_the_repository(monkeypatch):
    monkeypatch.delenv(datasets.RAW_DATA_VARIABLE, raising=False)
    repository_root = pathlib.Path(keras_bnn.__file__).resolve().parent.parent
    assert datasets.raw_data_dir() == repository_root.parent / "shared" / "datasets"
    assert (datasets.raw_data_dir() / "mnist").is_dir()
    monkeypatch.setenv(datasets.RAW_DATA_VARIABLE, "/somewhere/else")
    assert datasets.raw_data_dir() == pathlib.Path("/somewhere/else")


def test_prepared_data_dir_order(monkeypatch, tmp_path):
    monkeypatch.delenv(datasets.DATA_DIR_VARIABLE, raising=False)
    assert datasets.prepared_data_dir() is None
    monkeypatch.setenv(datasets.DATA_DIR_VARIABLE, os.fspath(tmp_path / "env"))
    assert datasets.prepared_data_dir() == os.fspath(tmp_path / "env")
    assert datasets.prepared_data_dir(tmp_path / "arg") == os.fspath(tmp_path / "arg")
