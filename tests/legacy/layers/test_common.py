"""Contract every keras_bnn layer keeps: config round trip, save/load in every format, larq summary
counts, signature parity with larq's QuantConv2D, training with fit."""

import inspect

import keras_bnn
import larq
import numpy as np
import pytest
import tensorflow as tf

from keras_bnn.legacy.layers import BiRealConv2D, XNORConv2D

LAYER_FACTORIES = {
    "bireal_identity": lambda: BiRealConv2D(8),
    "bireal_projection": lambda: BiRealConv2D(16, strides=2, activation="relu"),
    "xnor": lambda: XNORConv2D(16, 3, padding="same"),
    "xnor_input_scaling": lambda: XNORConv2D(16, 3, strides=2, input_scaling=True),
}


def _model(layer_factory, batch_size=None):
    inputs = tf.keras.Input((8, 8, 8), batch_size=batch_size)
    x = layer_factory()(inputs)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    outputs = tf.keras.layers.Dense(3)(x)
    return tf.keras.Model(inputs, outputs)


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        value = rng.normal(size=weight.shape).astype(np.float32)
        if "moving_variance" in weight.name:
            value = np.abs(value) + 0.5
        weight.assign(value)


@pytest.mark.parametrize("name", sorted(LAYER_FACTORIES))
def test_config_round_trip(name):
    layer = LAYER_FACTORIES[name]()
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    serialized = tf.keras.layers.serialize(layer)
    assert serialized["registered_name"] == f"keras_bnn>{type(layer).__name__}"
    assert tf.keras.utils.get_registered_object(f"keras_bnn>{type(layer).__name__}") is type(layer)
    assert type(tf.keras.layers.deserialize(serialized)) is type(layer)


@pytest.mark.parametrize("name", sorted(LAYER_FACTORIES))
@pytest.mark.parametrize("fmt", ["keras", "h5", "savedmodel"])
def test_save_and_load_keep_predictions(name, fmt, tmp_path):
    model = _model(LAYER_FACTORIES[name])
    _randomize(model)
    x = np.random.default_rng(1).normal(size=(4, 8, 8, 8)).astype(np.float32)
    expected = model(x, training=False).numpy()
    path = str(tmp_path / ("model" if fmt == "savedmodel" else f"model.{fmt}"))
    model.save(path, **({"save_format": "tf"} if fmt == "savedmodel" else {}))
    loaded = tf.keras.models.load_model(path)
    np.testing.assert_array_equal(loaded(x, training=False).numpy(), expected)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]


def test_larq_summary_counts_binary_params_and_macs():
    inputs = tf.keras.Input((8, 8, 16))
    x = BiRealConv2D(16)(inputs)
    x = BiRealConv2D(32, strides=2)(x)
    outputs = XNORConv2D(32, 3)(x)
    model = tf.keras.Model(inputs, outputs)
    profile = larq.models.ModelProfile(model)
    by_name = {p.name: p for p in profile.layer_profiles}

    bireal, bireal_down, xnor = (by_name[layer.name] for layer in model.layers[1:])
    assert bireal.weight_count(bitwidth=1) == 3 * 3 * 16 * 16
    assert bireal.op_count("mac", 1) == 3 * 3 * 16 * 16 * 8 * 8
    # 32-bit: the block's BatchNorm (gamma, beta, moving mean/var); no shortcut conv.
    assert bireal.weight_count(bitwidth=32) == 4 * 16
    assert bireal_down.weight_count(bitwidth=1) == 3 * 3 * 16 * 32
    assert bireal_down.op_count("mac", 1) == 3 * 3 * 16 * 32 * 4 * 4
    # 32-bit: shortcut 1x1 conv + two BatchNorms.
    assert bireal_down.weight_count(bitwidth=32) == 16 * 32 + 2 * 4 * 32
    assert xnor.weight_count(bitwidth=1) == 3 * 3 * 32 * 32
    assert xnor.weight_count(bitwidth=32) == 0
    assert xnor.op_count("mac", 1) == 3 * 3 * 32 * 32 * 2 * 2
    assert xnor.input_precision == bireal.input_precision == 1
    larq.models.summary(model)  # prints without error


# Arguments whose defaults differ from larq.layers.QuantConv2D on purpose (paper defaults).
INTENDED_DEFAULTS = {
    BiRealConv2D: {
        "kernel_size": 3,
        "padding": "same",
        "pad_values": 1.0,
        "input_quantizer": "approx_sign",
        "kernel_quantizer": "magnitude_aware_sign",
        "kernel_constraint": "weight_clip",
        "use_bias": False,
    },
    XNORConv2D: {
        "pad_values": 1.0,
        "input_quantizer": "ste_sign",
        "kernel_quantizer": "magnitude_aware_sign",
        "kernel_constraint": "weight_clip",
        "use_bias": False,
    },
}


@pytest.mark.parametrize("layer_class", [BiRealConv2D, XNORConv2D])
def test_signature_parity_with_larq_quantconv2d(layer_class):
    """Like larq's test_layer_kwargs: every QuantConv2D argument is accepted and round-trips through the
    config; explicit arguments keep QuantConv2D's order; defaults differ only where documented."""
    ours = inspect.signature(layer_class).parameters
    base = inspect.signature(larq.layers.QuantConv2D).parameters
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in ours.values())
    shared = [name for name in ours if name in base]
    assert shared == [name for name in base if name in shared], "argument order differs from QuantConv2D"
    for name in shared:
        expected = INTENDED_DEFAULTS[layer_class].get(name, base[name].default)
        assert ours[name].default == expected, name

    config = layer_class(4).get_config() if layer_class is BiRealConv2D else layer_class(4, 3).get_config()
    base_config = larq.layers.QuantConv2D(4, 3).get_config()
    assert set(base_config) <= set(config)
    non_default = dict(dilation_rate=(2, 2), groups=1, bias_initializer="ones", kernel_regularizer="l2")
    layer = layer_class(4, 3, **non_default)
    for key, value in non_default.items():
        clone_value = layer_class.from_config(layer.get_config()).get_config()[key]
        assert clone_value == layer.get_config()[key], key


@pytest.mark.parametrize("name", ["bireal_projection", "xnor"])
def test_trains_with_fit(name):
    model = _model(LAYER_FACTORIES[name])
    model.compile(optimizer=tf.keras.optimizers.Adam(0.01), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8, 8, 8)).astype(np.float32)
    y = rng.normal(size=(64, 3)).astype(np.float32)
    history = model.fit(x, y, epochs=4, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]


def test_mixes_with_larq_layers():
    model = tf.keras.Sequential(
        [
            tf.keras.Input((8, 8, 3)),
            larq.layers.QuantConv2D(8, 3, kernel_quantizer="ste_sign", kernel_constraint="weight_clip"),
            BiRealConv2D(8),
            XNORConv2D(8, 3),
            tf.keras.layers.Flatten(),
            larq.layers.QuantDense(2, input_quantizer="ste_sign", kernel_quantizer="ste_sign"),
        ]
    )
    assert model(np.zeros((2, 8, 8, 3), np.float32)).shape == (2, 2)
