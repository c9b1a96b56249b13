"""keras_bnn.tflite.runtimes on real LiteRT, tf.lite and TFLite Micro (and LCE: tests/tflite/test_verification.py)."""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from keras_bnn.tflite.targets.int8 import convert_int8
from keras_bnn.tflite.runtimes import open_runtime, run, tflm_arena_bytes

RUNTIMES = ("litert", "tflite", "tflite-builtin", "tflm")

BINARY = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", use_bias=False)


@pytest.fixture
def flatbuffer():
    inputs = tf.keras.Input((8, 8, 2))
    x = lq.layers.QuantConv2D(8, 3, padding="same", **BINARY)(inputs)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv2D(8, 3, **BINARY)(x)
    outputs = lq.quantizers.SteSign()(tf.keras.layers.BatchNormalization()(x))
    model = tf.keras.Model(inputs, outputs)
    return convert_int8(model, representative_data=np.ones((2, 8, 8, 2), np.float32))


def test_runtimes_agree(flatbuffer):
    x = np.random.default_rng(0).integers(-3, 4, size=(5, 8, 8, 2)).astype(np.float32)
    results = [run(flatbuffer, x, runtime)[0] for runtime in RUNTIMES]
    for result in results[1:]:
        np.testing.assert_array_equal(result, results[0])


def test_xnnpack_takes_the_binary_convolutions(flatbuffer):
    delegated, left = open_runtime(flatbuffer, "litert").xnnpack_delegated_ops()
    assert delegated.count("CONV_2D") == 2 and "CONV_2D" not in left


def test_tflm_arena_is_reported(flatbuffer):
    arena = tflm_arena_bytes(flatbuffer, np.zeros((1, 8, 8, 2), np.float32))
    assert 8 * 8 * 8 <= arena < 64 * 1024  # holds at least one int8 activation, far below the default arena


def test_unknown_runtime():
    with pytest.raises(ValueError, match="unknown runtime 'nope'"):
        run(b"", np.zeros(1), "nope")


@pytest.mark.parametrize("damage", ["identifier", "truncated", "garbage_body"])
def test_bad_bytes_give_value_error_in_every_runtime(flatbuffer, damage):
    data = bytearray(flatbuffer)
    if damage == "identifier":
        data[4:8] = b"XXXX"
    elif damage == "truncated":
        data = data[:200]
    else:
        data[8:] = bytes(len(data) - 8)  # a valid identifier in front of zeros
    for runtime in RUNTIMES:
        with pytest.raises(ValueError):
            run(bytes(data), np.zeros((1, 8, 8, 2), np.float32), runtime)
