"""The Keras 3 Quant* layers on their own: pad_values, quantized_scope, config and .keras round trips, training,
argument errors; on every backend (larq parity is in test_quantized_larq.py)."""

import logging

import keras
import numpy as np
import pytest
from keras import ops

from keras_bnn import layers

BINARY = {"input_quantizer": "ste_sign", "kernel_quantizer": "ste_sign", "kernel_constraint": "weight_clip"}
SEPARABLE = {"input_quantizer": "ste_sign", "depthwise_quantizer": "ste_sign", "pointwise_quantizer": "ste_sign",
             "depthwise_constraint": "weight_clip", "pointwise_constraint": "weight_clip"}
# Every layer kind, as it would sit in a model on (8, 8, 3) images (1D layers on (8, 3), 3D on (4, 4, 4, 3)).
FACTORIES = {
    "QuantDense": (lambda: layers.QuantDense(4, **BINARY), (8, 3)),
    "QuantConv1D": (lambda: layers.QuantConv1D(4, 3, padding="same", pad_values=1.0, **BINARY), (8, 3)),
    "QuantConv2D": (lambda: layers.QuantConv2D(4, 3, strides=2, padding="same", pad_values=1.0, **BINARY),
                    (8, 8, 3)),
    "QuantConv3D": (lambda: layers.QuantConv3D(2, 2, padding="same", pad_values=1.0, **BINARY), (4, 4, 4, 3)),
    "QuantDepthwiseConv2D": (lambda: layers.QuantDepthwiseConv2D(
        3, padding="same", pad_values=1.0, depth_multiplier=2, input_quantizer="ste_sign",
        depthwise_quantizer="ste_sign", depthwise_constraint="weight_clip"), (8, 8, 3)),
    "QuantSeparableConv1D": (lambda: layers.QuantSeparableConv1D(4, 3, padding="same", pad_values=1.0, **SEPARABLE),
                             (8, 3)),
    "QuantSeparableConv2D": (lambda: layers.QuantSeparableConv2D(4, 3, padding="same", pad_values=1.0,
                                                                 **SEPARABLE), (8, 8, 3)),
    "QuantConv2DTranspose": (lambda: layers.QuantConv2DTranspose(4, 3, strides=2, padding="same", **BINARY),
                             (8, 8, 3)),
    "QuantConv3DTranspose": (lambda: layers.QuantConv3DTranspose(2, 2, **BINARY), (4, 4, 4, 3)),
}


def _model(name):
    factory, shape = FACTORIES[name]
    inputs = keras.Input(shape)
    x = factory()(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.uniform(-1.5, 1.5, size=weight.shape).astype(np.float32))


def _sign(x):
    return np.where(x >= 0, 1.0, -1.0).astype(np.float32)


@pytest.mark.parametrize("pad_values", [0.0, 1.0, -1.0])
def test_same_padding_pads_with_pad_values(pad_values):
    """A 3x3 all-ones kernel summed over a -1 input: the border sums count the padded pixels' value."""
    layer = layers.QuantConv2D(1, 3, padding="same", pad_values=pad_values, kernel_quantizer="ste_sign",
                               use_bias=False, kernel_initializer="ones")
    depthwise = layers.QuantDepthwiseConv2D(3, padding="same", pad_values=pad_values, use_bias=False,
                                            depthwise_initializer="ones")
    x = -np.ones((1, 4, 5, 1), np.float32)
    padded = np.pad(x[0, :, :, 0], 1, constant_values=pad_values)
    expected = np.array([[padded[i:i + 3, j:j + 3].sum() for j in range(5)] for i in range(4)], np.float32)
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x))[0, :, :, 0], expected)
    np.testing.assert_array_equal(ops.convert_to_numpy(depthwise(x))[0, :, :, 0], expected)


def test_causal_conv1d_quantizes_and_pads_with_zeros():
    layer = layers.QuantConv1D(1, 2, padding="causal", input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                               use_bias=False)
    x = np.array([[[0.3], [-2.0], [0.7]]], np.float32)
    layer.build(x.shape)
    layer.set_weights([np.array([[[0.5]], [[-0.25]]], np.float32)])
    xs = _sign(x[0, :, 0])
    expected = [xs[0] * -1.0, xs[0] * 1.0 + xs[1] * -1.0, xs[1] * 1.0 + xs[2] * -1.0]
    np.testing.assert_array_equal(ops.convert_to_numpy(layer(x))[0, :, 0], expected)


def test_quantized_scope_reads_quantized_kernels_of_layers_and_models():
    model = _model("QuantSeparableConv2D")
    _randomize(model)
    separable = model.layers[1]
    latent = model.get_weights()
    with layers.quantized_scope(True) as quantize:
        assert quantize is True and layers.should_quantize()
        quantized = model.get_weights()
        assert [np.array_equal(a, b) for a, b in zip(separable.get_weights(), quantized[:3])] == [True] * 3
        with layers.quantized_scope(False):
            np.testing.assert_array_equal(model.get_weights()[0], latent[0])
        assert layers.should_quantize()
    assert not layers.should_quantize()
    np.testing.assert_array_equal(quantized[0], _sign(latent[0]))  # depthwise kernel
    np.testing.assert_array_equal(quantized[1], _sign(latent[1]))  # pointwise kernel
    for index in (2, 3, 4):  # bias, Dense kernel and bias: not quantized
        np.testing.assert_array_equal(quantized[index], latent[index])
    for index, value in enumerate(model.get_weights()):
        np.testing.assert_array_equal(value, latent[index])
    np.testing.assert_array_equal(layers.quantized_weight(separable, "pointwise_kernel"), quantized[1])


def test_quantized_scope_does_not_change_outputs_or_saved_weights(tmp_path):
    model = _model("QuantConv2D")
    _randomize(model)
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype(np.float32)
    expected = ops.convert_to_numpy(model(x))
    path = str(tmp_path / "model.keras")
    with layers.quantized_scope(True):
        np.testing.assert_array_equal(ops.convert_to_numpy(model(x)), expected)
        model.save(path)
    loaded = keras.saving.load_model(path)
    for ours, theirs in zip(loaded.get_weights(), model.get_weights()):
        np.testing.assert_array_equal(ours, theirs)  # latent weights, as outside the scope


def test_quantized_weight_errors():
    layer = layers.QuantConv2D(2, 3, kernel_quantizer="ste_sign")
    with pytest.raises(ValueError, match="not built"):
        layers.quantized_weight(layer)
    with pytest.raises(ValueError, match="no weight named 'bias'"):
        layers.quantized_weight(layer, "bias")
    with pytest.raises(ValueError, match="no weight named"):
        layers.quantized_weight(keras.layers.Dense(2))
    with pytest.raises(TypeError, match="bool"):
        with layers.quantized_scope(1):
            pass


@pytest.mark.parametrize("name", sorted(FACTORIES))
def test_config_round_trip_and_keras_file(name, tmp_path):
    layer = FACTORIES[name][0]()
    config = layer.get_config()
    assert type(layer).from_config(config).get_config() == config
    serialized = keras.layers.serialize(layer)
    assert serialized["registered_name"] == f"keras_bnn>{name}"
    assert type(keras.layers.deserialize(serialized)) is type(layer)

    model = _model(name)
    _randomize(model)
    x = np.random.default_rng(1).normal(size=(2, *model.input_shape[1:])).astype(np.float32)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert type(loaded.layers[1]) is type(model.layers[1])
    np.testing.assert_array_equal(ops.convert_to_numpy(loaded(x)), ops.convert_to_numpy(model(x)))


def test_training_lowers_the_loss():
    inputs = keras.Input((8, 8, 3))
    x = layers.QuantConv2D(8, 3, padding="same", pad_values=1.0, kernel_quantizer="ste_sign",
                           kernel_constraint="weight_clip", use_bias=False)(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = layers.QuantDepthwiseConv2D(3, padding="same", pad_values=1.0, **{
        k: v for k, v in SEPARABLE.items() if not k.startswith("pointwise")})(x)
    x = keras.layers.BatchNormalization()(x)
    x = layers.QuantSeparableConv2D(8, 3, strides=2, padding="same", pad_values=1.0, **SEPARABLE)(x)
    x = keras.layers.BatchNormalization()(x)
    x = layers.QuantConv2DTranspose(4, 2, strides=2, **BINARY)(x)
    x = keras.layers.Flatten()(x)
    outputs = layers.QuantDense(3, **BINARY)(x)
    model = keras.Model(inputs, outputs)
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8, 8, 3)).astype(np.float32)
    y = rng.normal(size=(64, 3)).astype(np.float32)
    losses = model.fit(x, y, epochs=4, batch_size=16, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    for weight in model.trainable_weights:  # weight_clip held the binary latent weights in [-1, 1]
        if layers.variable_precision(weight) == 1:
            assert np.abs(ops.convert_to_numpy(weight)).max() <= 1.0


def test_argument_errors_and_larq_warning(caplog):
    with pytest.raises(ValueError, match="pad_values must be a number"):
        layers.QuantConv2D(2, 3, pad_values="one")
    with pytest.raises(ValueError, match="Causal padding with `pad_values != 0`"):
        layers.QuantConv1D(2, 3, padding="causal", pad_values=1.0)
    with pytest.raises(ValueError, match="groups must be 1"):
        layers.QuantConv2DTranspose(2, 3, groups=2)
    with pytest.raises(ValueError, match="depthwise_quantizer: Unknown quantizer 'nope'"):
        layers.QuantDepthwiseConv2D(3, depthwise_quantizer="nope")
    with caplog.at_level(logging.WARNING, logger="keras_bnn.layers.quantized_base"):
        layers.QuantSeparableConv2D(2, 3, depthwise_quantizer="ste_sign", pointwise_quantizer="ste_sign",
                                    pointwise_constraint="weight_clip")
    assert "`depthwise_quantizer` without setting `depthwise_constraint`" in caplog.text
    assert "pointwise_constraint" not in caplog.text
