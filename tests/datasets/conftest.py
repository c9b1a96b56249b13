"""Session fixtures for the dataset tests: every dataset is prepared once, into a temporary data folder."""

import keras_bnn  # noqa: F401  (must precede tensorflow)
import pytest
import tensorflow_datasets as tfds

from keras_bnn import datasets


@pytest.fixture(scope="session")
def prepared_dir(tmp_path_factory):
    """A tfds data folder holding all of keras_bnn's datasets, prepared from the raw files (once per session)."""
    tfds.disable_progress_bar()
    folder = tmp_path_factory.mktemp("tfds_data")
    for name in datasets.available():
        datasets.prepare(name, data_dir=folder)
    return folder
