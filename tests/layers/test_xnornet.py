"""XNORConv2D on Keras 3 against the tf-keras one (keras_bnn.legacy, run once in a larq process): outputs, gradients,
config and signature; XNOR-Net's α, input scaling, exact ties, defaults, errors, saving and training; every backend."""

import inspect
import json

import keras
import numpy as np
import pytest
from keras import ops

from keras_bnn import constraints, layers, quantizers
from keras_bnn.layers import XNORConv2D
from tests.larq_reference import run_larq
from tests.gradients import layer_gradients

# case -> (keyword arguments, input shape)
CASES = {
    "valid": ({"filters": 6, "kernel_size": 3}, (2, 7, 7, 5)),
    "same": ({"filters": 6, "kernel_size": 3, "padding": "same"}, (2, 7, 7, 5)),
    "same_stride2": ({"filters": 4, "kernel_size": 3, "strides": 2, "padding": "same"}, (2, 8, 7, 3)),
    "input_scaling": ({"filters": 5, "kernel_size": 3, "input_scaling": True}, (2, 6, 6, 4)),
    "input_scaling_same_stride2": ({"filters": 5, "kernel_size": 3, "strides": 2, "padding": "same",
                                    "input_scaling": True}, (2, 7, 7, 4)),
    "ste_sign_kernel_bias": ({"filters": 4, "kernel_size": 2, "kernel_quantizer": "ste_sign", "use_bias": True},
                             (2, 5, 5, 3)),
}


def make_arrays():
    rng = np.random.default_rng(0)
    arrays = {}
    for case, (kwargs, shape) in CASES.items():
        layer = XNORConv2D(**kwargs)
        layer.build(shape)
        arrays[case + "/x"] = rng.normal(size=shape).astype(np.float32)
        arrays[case + "/up"] = rng.normal(size=layer.compute_output_shape(shape)).astype(np.float32)
        for index, weight in enumerate(layer.weights):
            arrays[f"{case}/w{index}"] = rng.uniform(-1.5, 1.5, size=weight.shape).astype(np.float32)
    return arrays


LEGACY_SCRIPT = """
import inspect, json
from keras_bnn.legacy.layers import XNORConv2D
for case, (kwargs, shape) in {cases!r}.items():
    layer = XNORConv2D(**kwargs)
    x = tf.constant(inputs[case + "/x"])
    layer(x)
    layer.set_weights([inputs[f"{{case}}/w{{i}}"] for i in range(len(layer.weights))])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x)
        loss = tf.reduce_sum(tf.constant(inputs[case + "/up"]) * y)
    for i, gradient in enumerate(tape.gradient(loss, [x, *layer.trainable_weights])):
        outputs[f"{{case}}/d{{i}}"] = gradient.numpy()
    outputs[case + "/y"] = y.numpy()
    outputs[case + "/config"] = json.dumps(sorted(layer.get_config()))
    outputs[case + "/names"] = json.dumps([w.name.split("/", 1)[1].replace(":0", "") for w in layer.weights])
parameters = inspect.signature(XNORConv2D).parameters.values()
outputs["signature"] = json.dumps([(p.name, repr(p.default)) for p in parameters])
"""


@pytest.fixture(scope="module")
def legacy_run():
    arrays = make_arrays()
    return arrays, run_larq(LEGACY_SCRIPT.format(cases=CASES), **arrays)


def _layer(case, arrays):
    kwargs, shape = CASES[case]
    layer = XNORConv2D(**kwargs)
    layer.build(shape)
    layer.set_weights([arrays[f"{case}/w{i}"] for i in range(len(layer.weights))])
    return layer


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_gradients_config_and_weight_names_equal_legacy(case, legacy_run):
    arrays, legacy = legacy_run
    layer = _layer(case, arrays)
    y, dx, dweights = layer_gradients(layer, arrays[case + "/x"], arrays[case + "/up"])
    np.testing.assert_allclose(y, legacy[case + "/y"], rtol=1e-5, atol=1e-5)
    for index, gradient in enumerate([dx, *dweights]):
        np.testing.assert_allclose(gradient, legacy[f"{case}/d{index}"], rtol=1e-5, atol=1e-5)
    config = layer.get_config()
    assert set(config) - {"lora_rank", "lora_alpha"} == set(json.loads(str(legacy[case + "/config"])))
    assert [w.path.split("/", 1)[1] for w in layer.weights] == json.loads(str(legacy[case + "/names"]))
    assert XNORConv2D.from_config(config).get_config() == config


def test_signature_equals_legacy(legacy_run):
    _, legacy = legacy_run
    ours = [(p.name, repr(p.default)) for p in inspect.signature(XNORConv2D).parameters.values()]
    assert json.loads(json.dumps(ours)) == json.loads(str(legacy["signature"]))


def test_alpha_is_mean_absolute_weight():
    layer = XNORConv2D(3, 2)
    layer.build((1, 4, 4, 2))
    latent = np.arange(24, dtype=np.float32).reshape(2, 2, 2, 3) / 24.0 - 0.5
    layer.set_weights([latent])
    quantized = layers.quantized_weight(layer)
    np.testing.assert_allclose(np.abs(quantized).max(axis=(0, 1, 2)), np.abs(latent).mean(axis=(0, 1, 2)),
                               rtol=1e-6)
    np.testing.assert_array_equal(np.sign(quantized), np.where(latent >= 0, 1.0, -1.0))


def _valid_conv(x, kernel):
    kh, kw = kernel.shape[:2]
    h, w = x.shape[1] - kh + 1, x.shape[2] - kw + 1
    patches = np.stack([x[:, i:i + h, j:j + w] for i in range(kh) for j in range(kw)], axis=3)
    return np.einsum("bhwkc,kcf->bhwf", patches, kernel.reshape(kh * kw, *kernel.shape[2:]))


def test_ties_are_exact():
    """A window whose ±1 products sum to 0 gives exactly 0 (as LCE's bit count does), where convolving with the
    ±α kernel leaves float residues."""
    rng = np.random.default_rng(5)
    x = np.where(rng.normal(size=(4, 10, 10, 6)) >= 0, 1.0, -1.0).astype(np.float32)
    latent = rng.uniform(-1, 1, size=(3, 3, 6, 8)).astype(np.float32)
    integer = _valid_conv(x, np.where(latent >= 0, 1.0, -1.0))
    assert (integer == 0).sum() > 100
    xnor = XNORConv2D(8, 3)
    plain = layers.QuantConv2D(8, 3, input_quantizer="ste_sign", kernel_quantizer="magnitude_aware_sign",
                               use_bias=False)
    for layer in (xnor, plain):
        layer.build(x.shape)
        layer.set_weights([latent])
    outputs = ops.convert_to_numpy(xnor(x))
    np.testing.assert_array_equal(outputs[integer == 0], 0.0)
    np.testing.assert_allclose(outputs, integer * np.abs(latent).mean(axis=(0, 1, 2)), rtol=1e-6)
    assert (ops.convert_to_numpy(plain(x))[integer == 0] != 0).sum() > 0  # what the exact scale avoids


def test_input_scaling_multiplies_by_box_filtered_channel_mean():
    x = np.random.default_rng(2).normal(size=(1, 6, 6, 4)).astype(np.float32)
    plain = XNORConv2D(5, 3)
    plain.build(x.shape)
    scaled = XNORConv2D(5, 3, input_scaling=True)
    scaled.build(x.shape)
    scaled.set_weights(plain.get_weights())
    channel_mean = np.abs(x).mean(axis=-1)[0]
    k = np.array([[channel_mean[i:i + 3, j:j + 3].mean() for j in range(4)] for i in range(4)])
    np.testing.assert_allclose(ops.convert_to_numpy(scaled(x)), ops.convert_to_numpy(plain(x)) * k[None, :, :, None],
                               rtol=1e-5, atol=1e-5)


def test_defaults_are_xnor_net():
    layer = XNORConv2D(4, 3)
    assert isinstance(layer.input_quantizer, quantizers.SteSign)
    assert isinstance(layer.kernel_quantizer, quantizers.MagnitudeAwareSign)
    assert isinstance(layer.kernel_constraint, constraints.WeightClip)
    assert layer.use_bias is False and layer.pad_values == 1.0 and layer.input_scaling is False


def test_errors():
    with pytest.raises(ValueError, match=r"kernel_size \(5, 5\).*\(3, 3\)"):
        XNORConv2D(4, 5)(np.zeros((1, 3, 3, 2), np.float32))
    with pytest.raises(ValueError, match="rank 4|ndim=4"):
        XNORConv2D(4, 1)(np.zeros((1, 3, 2), np.float32))
    with pytest.raises(ValueError, match=r"rank 4.*rank 5"):
        XNORConv2D(4, 1).build((1, 2, 3, 3, 2))
    with pytest.raises(ValueError, match="channels_last"):
        XNORConv2D(4, 3, data_format="channels_first")
    with pytest.raises(TypeError, match="input_scaling"):
        XNORConv2D(4, 3, input_scaling="yes")
    with pytest.raises(ValueError, match="not_a_quantizer"):
        XNORConv2D(4, 3, kernel_quantizer="not_a_quantizer")


def test_keras_file_and_training(tmp_path):
    inputs = keras.Input((8, 8, 3))
    x = XNORConv2D(8, 3, padding="same")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = XNORConv2D(8, 3, strides=2, input_scaling=True)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8, 8, 3)).astype(np.float32)
    y = rng.normal(size=(64, 3)).astype(np.float32)
    losses = model.fit(x, y, epochs=4, batch_size=16, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    path = str(tmp_path / "xnor.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    np.testing.assert_array_equal(ops.convert_to_numpy(loaded(x[:4])), ops.convert_to_numpy(model(x[:4])))
