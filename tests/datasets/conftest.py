"""Session fixtures for the dataset tests: every dataset prepared once, in the test run's own data folder."""

import os

import keras_bnn.legacy  # noqa: F401  (first: selects tf-keras)
import pytest
import tensorflow_datasets as tfds

from keras_bnn import datasets


@pytest.fixture(scope="session")
def prepared_dir():
    """The run's tfds data folder (tests/conftest.py), holding all of keras_bnn's datasets prepared from the raw
    files (each once per run; other tests reuse them)."""
    tfds.disable_progress_bar()
    folder = os.environ[datasets.DATA_DIR_VARIABLE]
    for name in datasets.available():
        datasets.prepare(name, data_dir=folder)
    return folder
