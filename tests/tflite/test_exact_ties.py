"""Property: on random stacks of binary layers with no BatchNorm between them, Keras and LCE agree exactly.

Without BatchNorm, an XNOR-scaled binary convolution's output is exactly 0 wherever as many products are +1 as -1
(1-3% of the values), and the next sign sees that 0. LCE counts bits exactly; keras_bnn's layers convolve with the
±1 kernel first and scale afterwards (keras_bnn.legacy.layers._exact), so both give sign(0) = +1 and agree bit for bit.

CI runs a few examples (profile "ci"); the stress run tries many more:
    HYPOTHESIS_PROFILE=stress .venv/bin/python -m pytest tests/tflite/test_exact_ties.py
"""

import os
import warnings

import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import keras_bnn
import keras_bnn.tflite
import keras_bnn.legacy.training

settings.register_profile("ci", max_examples=10, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("stress", max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])

BINARY = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip")

layer_choice = st.fixed_dictionaries({
    "kind": st.sampled_from(["xnor", "larq_conv", "pcnn"]),
    "filters": st.sampled_from([8, 16, 32]),
    "kernel": st.sampled_from([1, 3]),
    "same": st.booleans(),
    "pool": st.booleans(),
})


def _conv(spec: dict, index: int) -> tf.keras.layers.Layer:
    padding = dict(padding="same", pad_values=1.0) if spec["same"] else dict(padding="valid")
    name = f"{spec['kind']}_{index}"
    if spec["kind"] == "xnor":
        return keras_bnn.legacy.layers.XNORConv2D(spec["filters"], spec["kernel"], name=name, **padding)
    if spec["kind"] == "pcnn":
        return keras_bnn.legacy.training.PCNNConv2D(spec["filters"], spec["kernel"], name=name, scale="channel", **padding)
    return lq.layers.QuantConv2D(spec["filters"], spec["kernel"], name=name, **BINARY, **padding)


def _stack(specs: list[dict], channels: int, seed: int) -> tf.keras.Model:
    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input((8, 8, channels), batch_size=1)
    x = inputs
    for index, spec in enumerate(specs):
        if not spec["same"] and x.shape[1] < spec["kernel"]:  # no room for a VALID convolution: pad instead
            spec = {**spec, "same": True}
        x = _conv(spec, index)(x)
        if spec["pool"] and x.shape[1] >= 2:
            x = tf.keras.layers.MaxPool2D(2)(x)
    x = tf.keras.layers.Flatten()(x)
    logits = lq.layers.QuantDense(10, name="logits", **BINARY)(x)
    model = tf.keras.Model(inputs, logits)
    rng = np.random.default_rng(seed)
    model.set_weights([rng.normal(size=w.shape).astype(np.float32) for w in model.get_weights()])
    return model


@settings(settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci")))
@given(specs=st.lists(layer_choice, min_size=1, max_size=3), channels=st.sampled_from([4, 8, 32]),
       seed=st.integers(0, 2**16))
def test_keras_and_lce_agree_exactly_on_binary_stacks_without_batchnorm(specs, channels, seed):
    model = _stack(specs, channels, seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # random kernels: larq's advice on constraints, nothing else
        flatbuffer = keras_bnn.tflite.convert(model, strict=True)
    x = np.random.default_rng(seed + 1).normal(size=(8, 8, 8, channels)).astype(np.float32)
    report = keras_bnn.tflite.verify(model, flatbuffer, x)
    assert report.top1_agreement == 1.0, report
    assert report.max_abs_diff <= 1e-5 * report.max_abs_keras, report


@pytest.mark.parametrize("layer_class", [keras_bnn.legacy.layers.XNORConv2D, keras_bnn.legacy.layers.BiRealConv2D,
                                         keras_bnn.legacy.training.PCNNConv2D])
def test_a_scaled_binary_convolution_gives_exact_zeros(layer_class):
    """The ±1 convolution first: a sum that is 0 in exact arithmetic is 0.0, not a float32 residue (3x3x64 inputs:
    about 3% of the sums are 0)."""
    layer = layer_class(64, 3, padding="same")
    x = tf.constant(np.random.default_rng(0).normal(size=(4, 6, 6, 64)), tf.float32)
    layer.build(x.shape)
    layer.kernel.assign(np.random.default_rng(1).normal(size=layer.kernel.shape) * 0.37)
    with lq.context.quantized_scope(True):
        out = layer.convolution_op(layer.input_quantizer(x), tf.convert_to_tensor(layer.kernel)).numpy()
    assert (out == 0).mean() > 0.01
