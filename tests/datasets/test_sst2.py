"""keras_bnn.datasets.sst2.Sst2: the GLUE SST-2 tfds builder, checked against the raw TSV files."""

import shutil

import keras_bnn.legacy  # noqa: F401  (first: selects tf-keras)
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_bnn import datasets
from keras_bnn.datasets import Sst2

RAW = datasets.raw_data_dir() / "sst2"


def _raw_rows(file_name: str) -> list[tuple[str, int]]:
    """(sentence, label) per data row, parsed line by line (GLUE writes `<sentence> \\t<label>`)."""
    lines = (RAW / file_name).read_text(encoding="utf-8").splitlines()
    assert lines[0] == "sentence\tlabel"
    rows = []
    for line in lines[1:]:
        sentence, label = line.rsplit("\t", 1)
        assert sentence.endswith(" ")
        rows.append((sentence[:-1], int(label)))
    return rows


@pytest.mark.parametrize(
    "split, file_name, count, positives",
    [("train", "train.tsv", 67_349, 37_569), ("validation", "dev.tsv", 872, 444)],
)
def test_sst2_matches_glue_counts_and_raw_rows(prepared_dir, split, file_name, count, positives):
    dataset = datasets.load("sst2", split, as_supervised=False, data_dir=prepared_dir, batch_size=-1)
    examples = tfds.as_numpy(dataset)
    assert len(examples["idx"]) == count
    assert int(examples["label"].sum()) == positives
    by_idx = {
        int(idx): (sentence.decode("utf-8"), int(label))
        for idx, sentence, label in zip(examples["idx"], examples["sentence"], examples["label"])
    }
    assert [by_idx[i] for i in range(count)] == _raw_rows(file_name)


def test_sst2_features_and_supervised_pairs(prepared_dir):
    builder = datasets.prepare("sst2", data_dir=prepared_dir)
    assert isinstance(builder, Sst2) and builder.name == "sst2"
    assert builder.info.features["label"].names == ["negative", "positive"]
    assert builder.info.features["idx"].dtype == tf.int32
    assert set(builder.info.splits) == {"train", "validation"}
    sentence, label = next(iter(datasets.load("sst2", "validation", data_dir=prepared_dir)))
    assert sentence.dtype == tf.string and label.dtype == tf.int64
    assert not sentence.numpy().endswith(b" ")


def test_sst2_rejects_a_modified_tsv(tmp_path):
    folder = tmp_path / "raw" / "sst2"
    folder.mkdir(parents=True)
    shutil.copyfile(RAW / "dev.tsv", folder / "dev.tsv")
    text = (RAW / "train.tsv").read_text(encoding="utf-8")
    (folder / "train.tsv").write_text(text.replace("\t1\n", "\t0\n", 1), encoding="utf-8")
    with pytest.raises(Exception, match="train.tsv") as error:
        datasets.prepare("sst2", data_dir=tmp_path / "data", raw_dir=tmp_path / "raw")
    assert type(error.value).__name__ == "NonMatchingChecksumError"


def test_sst2_without_files_fails_fast_even_when_downloads_are_allowed(tmp_path):
    with pytest.raises(FileNotFoundError, match="cannot download"):
        datasets.load("sst2", "train", data_dir=tmp_path / "data", raw_dir=tmp_path, allow_download=True)
