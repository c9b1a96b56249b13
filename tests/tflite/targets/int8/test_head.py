"""head="float": a binary classifier's logits are exact (int8 partial sums, float32 BatchNorm as Keras computes it)."""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from keras_bnn.tflite.targets.int8 import UnsupportedLayerError, convert_int8
from keras_bnn.tflite.targets.int8.head import chunk_sizes
from keras_bnn.tflite.runtimes import run

BINARY = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", use_bias=False)


def binary_classifier(inputs: int, classes: int = 10) -> tf.keras.Model:
    x = tf.keras.Input((inputs,))
    logits = tf.keras.layers.BatchNormalization()(lq.layers.QuantDense(classes, **BINARY)(x))
    return tf.keras.Model(x, tf.keras.layers.Activation("softmax")(logits))


@pytest.mark.parametrize("inputs", [100, 256, 301])  # one chunk; 254 + 2; 174 + 127 (odd remainder)
def test_float_head_logits_match_keras_to_float_rounding(inputs, ops_of):
    rng = np.random.default_rng(inputs)
    model = binary_classifier(inputs)
    model.layers[1].kernel.assign(rng.normal(size=(inputs, 10)))
    model.layers[2].set_weights([rng.normal(size=10) * 0.05, rng.normal(size=10), rng.normal(size=10) * 5,
                                 rng.uniform(0.5, 2, 10)])
    x = rng.choice([-1.0, 1.0], size=(40, inputs)).astype(np.float32)
    flatbuffer = convert_int8(model, representative_data=x, head="float")
    assert ops_of(flatbuffer)["FULLY_CONNECTED"] == len(chunk_sizes(inputs))
    expected = model.predict(x, verbose=0)
    for runtime in ("litert", "tflite-builtin", "tflm"):
        actual = run(flatbuffer, x, runtime)[0]
        np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-6)
        assert np.array_equal(actual.argmax(1), expected.argmax(1))
    int8 = run(convert_int8(model, representative_data=x), x, "tflm")[0]
    assert np.abs(int8 - expected).max() > 1e-3  # the int8 head rounds (so the float head is what is exact)


def test_chunks_hold_exact_int8_sums():
    for n in range(1, 1200):
        sizes = chunk_sizes(n)
        assert sum(sizes) == n
        assert all((size % 2 == 0 and size <= 254) or size <= 127 for size in sizes)


def test_float_head_needs_float_output():
    with pytest.raises(ValueError, match="float32"):
        convert_int8(binary_classifier(8), representative_data=np.ones((2, 8)), head="float",
                     inference_output_type=tf.int8)
    with pytest.raises(ValueError, match="head"):
        convert_int8(binary_classifier(8), representative_data=np.ones((2, 8)), head="int16")


def test_every_unsupported_layer_is_listed():
    inputs = tf.keras.Input((6, 4))
    x = tf.keras.layers.LayerNormalization(name="norm")(inputs)
    x = tf.keras.layers.GlobalAveragePooling1D(name="pool1d")(x)
    model = tf.keras.Model(inputs, x)
    with pytest.raises(UnsupportedLayerError, match="'pool1d'") as info:
        convert_int8(model, representative_data=np.ones((2, 6, 4)))
    assert info.value.layer_name == "norm"
