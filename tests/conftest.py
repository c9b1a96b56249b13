"""Shared test set-up.

The suite behaves as on a fresh machine: before anything is imported, every folder where keras_bnn, TFDS, Keras
and matplotlib keep data or caches is pointed at one temporary folder of this test run (removed at the end), so
no test reads what an earlier run, or the user, prepared (e.g. `~/tensorflow_datasets`), and none writes outside
the clone and that folder. Datasets are prepared there on first use, once per run; subprocesses inherit it.

The tf-keras (legacy) implementation is imported first, so that tf.keras is tf-keras (Keras 2) for the tests
of the converter and the legacy code; `keras` is Keras 3 all the same, on the backend KERAS_BACKEND names
(TensorFlow by default). The Keras 3 tests run on every backend (see the Makefile's `test`).
"""

import os
import shutil
import tempfile

_RUN_FOLDER = tempfile.mkdtemp(prefix="keras_bnn_tests_")
# The data and cache folders (variables read by keras_bnn, TFDS, Keras and matplotlib), all inside _RUN_FOLDER.
ISOLATED_FOLDERS = {
    "KERAS_BNN_DATA_DIR": "prepared_data",
    "TFDS_DATA_DIR": "tensorflow_datasets",
    "KERAS_HOME": "keras",
    "MPLCONFIGDIR": "matplotlib",
    "XDG_CACHE_HOME": "cache",
}
for _variable, _name in ISOLATED_FOLDERS.items():
    os.environ[_variable] = os.path.join(_RUN_FOLDER, _name)
    os.makedirs(os.environ[_variable])
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_bnn.legacy  # noqa: E402,F401  (must precede tensorflow)
import keras  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402


def pytest_unconfigure(config):
    """Remove this run's data and cache folder."""
    shutil.rmtree(_RUN_FOLDER, ignore_errors=True)


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts from a clean Keras session with fixed seeds."""
    tf.keras.backend.clear_session()
    keras.utils.clear_session(free_memory=False)  # (True adds a gc.collect: ~1 s a test)
    tf.keras.utils.set_random_seed(1234)
    keras.utils.set_random_seed(1234)
    np.random.seed(1234)
    yield
