"""Helpers for the int8 target's tests: real conversion, the real runtimes, no mocks."""

import numpy as np
import pytest
import tensorflow as tf

import keras_bnn.tflite
from keras_bnn.tflite.runtimes import run

# LiteRT and tf.lite with XNNPACK, tf.lite's own builtin kernels, TFLite Micro's reference kernels.
ALL_RUNTIMES = ("litert", "tflite", "tflite-builtin", "tflm")


def keras_outputs(model: tf.keras.Model, x: np.ndarray) -> list[np.ndarray]:
    outputs = model.predict(x, verbose=0)
    return [np.asarray(o) for o in (outputs if isinstance(outputs, list) else [outputs])]


def flatbuffer_ops(flatbuffer: bytes) -> dict[str, int]:
    """Op names (builtin; custom ops by custom code) counted from the flatbuffer by keras_bnn.tflite.inspect."""
    return keras_bnn.tflite.inspect(flatbuffer).op_counts


@pytest.fixture
def ops_of():
    """``ops_of(flatbuffer) -> {op name: count}``."""
    return flatbuffer_ops


@pytest.fixture
def exact_in_all_runtimes():
    """Assert that every runtime gives exactly Keras' outputs (for models whose outputs are signs)."""

    def check(model, flatbuffer, x, runtimes=ALL_RUNTIMES):
        expected = keras_outputs(model, x)
        for runtime in runtimes:
            actual = run(flatbuffer, x, runtime)
            assert len(actual) == len(expected)
            for index, (a, e) in enumerate(zip(actual, expected)):
                assert a.shape == e.shape, (runtime, index)
                mismatches = int(np.sum(a != e))
                assert mismatches == 0, f"{runtime}: output {index} differs from Keras in {mismatches} of {e.size}"

    return check
