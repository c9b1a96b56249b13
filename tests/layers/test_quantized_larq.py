"""Every larq `Quant*` layer against larq 0.14: same outputs and gradients on the same inputs and weights (larq runs
once for the module, in a subprocess), same signatures, config keys and quantized weights; on every backend."""

import inspect
import json

import keras
import numpy as np
import pytest

from keras_bnn import layers
from tests.larq_reference import run_larq
from tests.gradients import layer_gradients

BINARY = {"input_quantizer": "ste_sign", "kernel_quantizer": "ste_sign", "kernel_constraint": "weight_clip"}
SEPARABLE = {"input_quantizer": "ste_sign", "depthwise_quantizer": "ste_sign", "pointwise_quantizer": "ste_sign"}
# case -> (class name, keyword arguments, input shape). Every case's kernels are binary unless listed in ROUNDED.
CASES = {
    "dense": ("QuantDense", {"units": 3, **BINARY}, (4, 6)),
    "dense_sequence": ("QuantDense", {"units": 3, **BINARY}, (2, 3, 6)),
    "dense_magnitude": ("QuantDense", {"units": 3, "input_quantizer": "approx_sign",
                                       "kernel_quantizer": "magnitude_aware_sign"}, (4, 6)),
    "conv1d_same_pad1_stride2": ("QuantConv1D", {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same",
                                                 "pad_values": 1.0, **BINARY}, (2, 9, 4)),
    "conv1d_causal": ("QuantConv1D", {"filters": 3, "kernel_size": 3, "padding": "causal", "dilation_rate": 2,
                                      **BINARY}, (2, 9, 4)),
    "conv2d_same_pad1": ("QuantConv2D", {"filters": 4, "kernel_size": 3, "padding": "same", "pad_values": 1.0,
                                         **BINARY}, (2, 6, 6, 3)),
    "conv2d_same_pad1_stride2_even": ("QuantConv2D", {"filters": 4, "kernel_size": (2, 3), "strides": 2,
                                                      "padding": "same", "pad_values": 1.0, **BINARY},
                                      (2, 6, 7, 3)),
    "conv2d_same_pad1_dilated": ("QuantConv2D", {"filters": 4, "kernel_size": 3, "dilation_rate": 2,
                                                 "padding": "same", "pad_values": 1.0, **BINARY}, (2, 7, 7, 3)),
    "conv2d_same_pad0_tern": ("QuantConv2D", {"filters": 4, "kernel_size": 3, "padding": "same",
                                              "input_quantizer": "ste_tern", "kernel_quantizer": "ste_tern"},
                              (2, 5, 5, 3)),
    "conv2d_real_kernel": ("QuantConv2D", {"filters": 4, "kernel_size": 3, "input_quantizer": "ste_sign",
                                           "activation": "relu"}, (2, 5, 5, 3)),
    "conv3d_same_pad1": ("QuantConv3D", {"filters": 2, "kernel_size": 2, "padding": "same", "pad_values": 1.0,
                                         **BINARY}, (1, 3, 4, 5, 2)),
    "depthwise_same_pad1": ("QuantDepthwiseConv2D", {"kernel_size": 3, "padding": "same", "pad_values": 1.0,
                                                     "depth_multiplier": 2, "input_quantizer": "ste_sign",
                                                     "depthwise_quantizer": "ste_sign"}, (2, 6, 6, 3)),
    "depthwise_stride2": ("QuantDepthwiseConv2D", {"kernel_size": 3, "strides": 2, "padding": "same",
                                                   "pad_values": 1.0, "input_quantizer": "ste_sign",
                                                   "depthwise_quantizer": "ste_sign"}, (2, 7, 7, 2)),
    "separable1d_same_pad1": ("QuantSeparableConv1D", {"filters": 3, "kernel_size": 3, "padding": "same",
                                                       "pad_values": 1.0, **SEPARABLE}, (2, 8, 4)),
    "separable2d_same_pad1": ("QuantSeparableConv2D", {"filters": 5, "kernel_size": 3, "strides": 2,
                                                       "padding": "same", "pad_values": 1.0, "depth_multiplier": 2,
                                                       **SEPARABLE}, (2, 7, 7, 3)),
    "conv2d_transpose": ("QuantConv2DTranspose", {"filters": 3, "kernel_size": 3, "strides": 2, "padding": "same",
                                                  **BINARY}, (2, 4, 4, 3)),
    "conv2d_transpose_valid": ("QuantConv2DTranspose", {"filters": 3, "kernel_size": 2, **BINARY}, (2, 3, 3, 2)),
    "conv3d_transpose": ("QuantConv3DTranspose", {"filters": 2, "kernel_size": 2, "strides": 2, **BINARY},
                         (1, 2, 3, 3, 2)),
}
# Sums of float products (a real or magnitude-scaled kernel): equal up to rounding. The others: ±1 (or ternary)
# inputs and kernels on a grid of 1/8, whose sums are exact in any order, so they are compared bit for bit.
ROUNDED = {"dense_magnitude", "conv2d_real_kernel"}
CLASSES = sorted({class_name for class_name, _, _ in CASES.values()})


def make_arrays():
    """Inputs, upstream gradients and weights (in the layer's weight order) for every case, on grids that make
    the binary sums exact; kernels spread past ±1 so that the straight-through clipping shows."""
    rng = np.random.default_rng(0)
    arrays = {}
    for case, (class_name, kwargs, shape) in CASES.items():
        layer = getattr(layers, class_name)(**kwargs)
        layer.build(shape)
        arrays[case + "/x"] = (np.round(rng.normal(size=shape) * 8) / 8).astype(np.float32)
        outputs = layer.compute_output_shape(shape)
        arrays[case + "/up"] = rng.integers(-8, 9, size=outputs).astype(np.float32) / 8
        for index, weight in enumerate(layer.weights):
            arrays[f"{case}/w{index}"] = (np.round(rng.uniform(-1.5, 1.5, size=weight.shape) * 8) / 8).astype(
                np.float32)
    return arrays


LARQ_SCRIPT = """
import inspect, json
CASES = {cases!r}
for case, (class_name, kwargs, shape) in CASES.items():
    layer = getattr(larq.layers, class_name)(**kwargs)
    x = tf.constant(inputs[case + "/x"])
    layer(x)
    layer.set_weights([inputs[f"{{case}}/w{{i}}"] for i in range(len(layer.weights))])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(tf.constant(inputs[case + "/up"]) * y)
    gradients = tape.gradient(loss, [x, *layer.trainable_weights])
    outputs[case + "/y"] = y.numpy()
    for i, gradient in enumerate(gradients):
        outputs[f"{{case}}/d{{i}}"] = gradient.numpy()
    outputs[case + "/config"] = json.dumps(sorted(layer.get_config()))
    with larq.context.quantized_scope(True):
        for i, value in enumerate(layer.get_weights()):
            outputs[f"{{case}}/q{{i}}"] = value
for class_name in {classes!r}:
    parameters = inspect.signature(getattr(larq.layers, class_name)).parameters.values()
    outputs["signature/" + class_name] = json.dumps([(p.name, repr(p.default)) for p in parameters])
"""


@pytest.fixture(scope="module")
def larq_run():
    """The arrays and larq's outputs, gradients, configs, quantized weights and signatures (one larq process)."""
    arrays = make_arrays()
    return arrays, run_larq(LARQ_SCRIPT.format(cases=CASES, classes=CLASSES), **arrays)


def _layer(case, arrays):
    class_name, kwargs, shape = CASES[case]
    layer = getattr(layers, class_name)(**kwargs)
    layer.build(shape)
    layer.set_weights([arrays[f"{case}/w{i}"] for i in range(len(layer.weights))])
    return layer


def _assert_equal(ours, theirs, exact):
    if exact:
        np.testing.assert_array_equal(ours, theirs)
    else:
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6)


# Keras 3 config entries that tf-keras layers do not have (Keras 3's Conv3DTranspose takes a dilation_rate).
KERAS3_ONLY_KEYS = {"lora_rank", "lora_alpha", "quantization_config"}
KERAS3_ONLY_BY_CLASS = {"QuantConv3DTranspose": {"dilation_rate"}}
# tf-keras' depthwise and separable convolutions inherit Conv's entries, which Keras 3's classes do not have: our
# layers accept them from a larq config and drop them.
TF_KERAS_ONLY = {"groups", "kernel_initializer", "kernel_regularizer", "kernel_constraint"}
TF_KERAS_ONLY_BY_CLASS = {"QuantDepthwiseConv2D": TF_KERAS_ONLY, "QuantSeparableConv1D": TF_KERAS_ONLY,
                          "QuantSeparableConv2D": TF_KERAS_ONLY, "QuantConv2DTranspose": {"groups"},
                          "QuantConv3DTranspose": {"groups"}}


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_gradients_weights_and_config_equal_larq(case, larq_run):
    arrays, larq = larq_run
    layer = _layer(case, arrays)
    y, dx, dweights = layer_gradients(layer, arrays[case + "/x"], arrays[case + "/up"])
    exact = case not in ROUNDED
    _assert_equal(y, larq[case + "/y"], exact)
    _assert_equal(dx, larq[case + "/d0"], exact)
    assert len(dweights) == len(layer.trainable_variables) == len(layer.weights)
    for index, gradient in enumerate(dweights):
        _assert_equal(gradient, larq[f"{case}/d{index + 1}"], exact)
    assert np.abs(dx).sum() > 0 and all(np.abs(g).sum() > 0 for g in dweights)

    with layers.quantized_scope(True):
        quantized = layer.get_weights()
    for index, value in enumerate(quantized):
        _assert_equal(value, larq[f"{case}/q{index}"], exact)
    for index, value in enumerate(layer.get_weights()):  # latent again outside the scope
        np.testing.assert_array_equal(value, arrays[f"{case}/w{index}"])

    class_name = CASES[case][0]
    config = layer.get_config()
    ours = set(config) - KERAS3_ONLY_KEYS - KERAS3_ONLY_BY_CLASS.get(class_name, set())
    assert ours == set(json.loads(str(larq[case + "/config"]))) - TF_KERAS_ONLY_BY_CLASS.get(class_name, set())
    inherited = {"groups": 1, "kernel_initializer": "glorot_uniform", "kernel_regularizer": None,
                 "kernel_constraint": None}
    revived = type(layer).from_config({**config, **{k: inherited[k] for k in TF_KERAS_ONLY_BY_CLASS.get(
        class_name, ())}})
    assert revived.get_config() == config


def test_signatures_equal_larq(larq_run):
    """larq's arguments in larq's order with larq's defaults; ``metrics`` (keras-bnn's) comes after them."""
    _, larq = larq_run
    for class_name in CLASSES:
        theirs = json.loads(str(larq["signature/" + class_name]))
        parameters = inspect.signature(getattr(layers, class_name)).parameters.values()
        ours = [(p.name, repr(p.default)) for p in parameters if p.name != "metrics"]
        assert json.loads(json.dumps(ours)) == theirs, class_name
