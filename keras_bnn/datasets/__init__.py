"""Real datasets as `tf.data.Dataset`, built by tensorflow-datasets' own builders from local raw files.

Known datasets: `mnist`, `fashion_mnist`, `tiny_shakespeare` (tfds builders) and `sst2` (GLUE SST-2, a
tfds builder defined in `keras_bnn.datasets.sst2`). `load` gives a `tf.data.Dataset`; `load_images`, `load_text`
and `load_sentences` give whole splits as numpy arrays and strings. Raw files are read from
`raw_data_dir()/<name>/` (`$KERAS_BNN_RAW_DATA`, else `<repository root>/../shared/datasets`); prepared data goes
to `data_dir`, else `$KERAS_BNN_DATA_DIR`, else tfds's default. Nothing is downloaded unless
`allow_download=True`.

Example:
    >>> import keras_bnn
    >>> dataset = keras_bnn.datasets.load("fashion_mnist", "test", data_dir="/tmp/keras_bnn_doc_data")
    >>> [int(label) for _, label in dataset.take(3)]
    [4, 4, 9]
"""

from keras_bnn.datasets._loader import (
    DATA_DIR_VARIABLE,
    RAW_DATA_VARIABLE,
    DatasetSpec,
    available,
    info,
    load,
    prepare,
    prepared_data_dir,
    raw_data_dir,
)
from keras_bnn.datasets.arrays import load_images, load_sentences, load_text
from keras_bnn.datasets.sst2 import Sst2

__all__ = [
    "DATA_DIR_VARIABLE",
    "RAW_DATA_VARIABLE",
    "DatasetSpec",
    "Sst2",
    "available",
    "info",
    "load",
    "load_images",
    "load_sentences",
    "load_text",
    "prepare",
    "prepared_data_dir",
    "raw_data_dir",
]
