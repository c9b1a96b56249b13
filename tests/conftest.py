"""Shared test set-up: keras_bnn is imported first so that tf.keras is tf-keras (Keras 2)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_bnn  # noqa: E402,F401  (must precede tensorflow)
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import tensorflow as tf  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_keras_state():
    """Each test starts from a clean Keras session with fixed seeds."""
    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(1234)
    np.random.seed(1234)
    yield
