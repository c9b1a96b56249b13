"""BiRealConv2D on Keras 3 against the tf-keras one (keras_bnn.legacy, run once in a larq process): outputs in
inference and training, gradients, config, weight names and signature; shortcut choice, defaults, errors, saving
and training; every backend."""

import inspect
import json

import keras
import numpy as np
import pytest
from keras import ops

from keras_bnn import quantizers
from keras_bnn.layers import BiRealConv2D
from tests.larq_reference import run_larq
from tests.gradients import layer_gradients

# case -> (keyword arguments, input shape)
CASES = {
    "identity": ({"filters": 8}, (2, 6, 6, 8)),
    "projection_stride2": ({"filters": 8, "strides": 2}, (2, 6, 6, 8)),
    "projection_channels": ({"filters": 16}, (2, 6, 6, 8)),
    "projection_odd_relu": ({"filters": 16, "strides": 2, "activation": "relu"}, (2, 7, 7, 8)),
    "ste_sign_1x1_valid": ({"filters": 8, "kernel_size": 1, "padding": "valid", "input_quantizer": "ste_sign",
                            "kernel_quantizer": "ste_sign"}, (2, 5, 5, 8)),
}


def _weight_key(case, path):
    """The array name of weight `path` (e.g. 'bi_real_conv2d/batch_norm/gamma') of a case, layer name left out."""
    return f"{case}/{path.split('/', 1)[1]}"


def make_arrays():
    rng = np.random.default_rng(0)
    arrays = {}
    for case, (kwargs, shape) in CASES.items():
        layer = BiRealConv2D(**kwargs)
        layer.build(shape)
        arrays[case + "/x"] = rng.normal(size=shape).astype(np.float32)
        arrays[case + "/up"] = rng.normal(size=layer.compute_output_shape(shape)).astype(np.float32)
        for weight in layer.weights:
            low = 0.5 if "variance" in weight.path or "gamma" in weight.path else -1.5
            arrays[_weight_key(case, weight.path)] = rng.uniform(low, 1.5, size=weight.shape).astype(np.float32)
    return arrays


LEGACY_SCRIPT = """
import inspect, json
from keras_bnn.legacy.layers import BiRealConv2D
for case, (kwargs, shape) in {cases!r}.items():
    layer = BiRealConv2D(**kwargs)
    x = tf.constant(inputs[case + "/x"])
    layer(x)
    names = [w.name.split("/", 1)[1].replace(":0", "") for w in layer.weights]
    layer.set_weights([inputs[f"{{case}}/{{name}}"] for name in names])
    outputs[case + "/inference"] = layer(x, training=False).numpy()
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(tf.constant(inputs[case + "/up"]) * y)
    outputs[case + "/training"] = y.numpy()
    gradients = tape.gradient(loss, [x, *layer.trainable_weights])
    outputs[case + "/dx"] = gradients[0].numpy()
    for weight, gradient in zip(layer.trainable_weights, gradients[1:]):
        outputs[case + "/d/" + weight.name.split("/", 1)[1].replace(":0", "")] = gradient.numpy()
    outputs[case + "/config"] = json.dumps(sorted(layer.get_config()))
    outputs[case + "/names"] = json.dumps(sorted(names))
parameters = inspect.signature(BiRealConv2D).parameters.values()
outputs["signature"] = json.dumps([(p.name, repr(p.default)) for p in parameters])
"""


@pytest.fixture(scope="module")
def legacy_run():
    arrays = make_arrays()
    return arrays, run_larq(LEGACY_SCRIPT.format(cases=CASES), **arrays)


def _layer(case, arrays):
    kwargs, shape = CASES[case]
    layer = BiRealConv2D(**kwargs)
    layer.build(shape)
    layer.set_weights([arrays[_weight_key(case, w.path)] for w in layer.weights])
    return layer


@pytest.mark.parametrize("case", sorted(CASES))
def test_outputs_gradients_config_and_weight_names_equal_legacy(case, legacy_run):
    arrays, legacy = legacy_run
    layer = _layer(case, arrays)
    x = arrays[case + "/x"]
    np.testing.assert_allclose(ops.convert_to_numpy(layer(x, training=False)), legacy[case + "/inference"],
                               rtol=1e-5, atol=1e-5)
    y, dx, dweights = layer_gradients(layer, x, arrays[case + "/up"], training=True)
    np.testing.assert_allclose(y, legacy[case + "/training"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, legacy[case + "/dx"], rtol=1e-4, atol=1e-4)
    assert len(dweights) == len(layer.trainable_weights)
    for weight, gradient in zip(layer.trainable_weights, dweights):
        expected = legacy[case + "/d/" + weight.path.split("/", 1)[1]]
        np.testing.assert_allclose(gradient, expected, rtol=1e-4, atol=1e-4, err_msg=weight.path)
        assert np.abs(gradient).sum() > 0, weight.path

    names = sorted(w.path.split("/", 1)[1] for w in layer.weights)
    assert names == json.loads(str(legacy[case + "/names"]))
    config = layer.get_config()
    assert set(config) - {"lora_rank", "lora_alpha"} == set(json.loads(str(legacy[case + "/config"])))
    assert BiRealConv2D.from_config(config).get_config() == config


def test_signature_equals_legacy(legacy_run):
    _, legacy = legacy_run
    ours = [(p.name, repr(p.default)) for p in inspect.signature(BiRealConv2D).parameters.values()]
    assert json.loads(json.dumps(ours)) == json.loads(str(legacy["signature"]))


def test_shortcut_choice_and_inference_formula():
    """Identity shortcut: BN(binary conv) + x; projection: + BN(1x1 conv(avgpool(x)))."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 6, 6, 8)).astype(np.float32)
    identity, projection = BiRealConv2D(8), BiRealConv2D(16, strides=2)
    for block in (identity, projection):
        block.build(x.shape)
    assert not identity.has_projection_shortcut and projection.has_projection_shortcut
    with pytest.raises(ValueError, match="not built"):
        _ = BiRealConv2D(8).has_projection_shortcut
    conv = ops.convert_to_numpy(identity.convolution_op(identity.quantize_input(x), identity.quantized("kernel")))
    norm = identity.batch_norm
    gamma, beta, mean, var = (ops.convert_to_numpy(v) for v in (norm.gamma, norm.beta, norm.moving_mean,
                                                                 norm.moving_variance))
    expected = gamma * (conv - mean) / np.sqrt(var + norm.epsilon) + beta + x
    np.testing.assert_allclose(ops.convert_to_numpy(identity(x, training=False)), expected, rtol=1e-5, atol=1e-5)
    pooled = x.reshape(2, 3, 2, 3, 2, 8).mean(axis=(2, 4))
    shortcut = np.einsum("bhwc,cf->bhwf", pooled, ops.convert_to_numpy(projection.shortcut_conv.kernel)[0, 0])
    np.testing.assert_allclose(ops.convert_to_numpy(projection.shortcut_pool(x)), pooled, rtol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(projection.shortcut_conv(projection.shortcut_pool(x))),
                               shortcut, rtol=1e-5, atol=1e-5)


def test_paper_defaults_and_overrides():
    block = BiRealConv2D(4)
    assert isinstance(block.input_quantizer, quantizers.ApproxSign)
    assert isinstance(block.kernel_quantizer, quantizers.MagnitudeAwareSign)
    assert block.padding == "same" and block.pad_values == 1.0 and block.kernel_size == (3, 3)
    assert block.use_bias is False
    custom = BiRealConv2D(4, input_quantizer="ste_sign", kernel_quantizer="ste_sign")
    assert isinstance(custom.input_quantizer, quantizers.SteSign)
    assert isinstance(custom.kernel_quantizer, quantizers.SteSign)
    block = BiRealConv2D(4, activation="relu")
    assert ops.convert_to_numpy(block(np.random.default_rng(0).normal(size=(1, 4, 4, 4)).astype("float32"))).min() >= 0
    assert block.get_config()["activation"] == "relu"


@pytest.mark.parametrize("kwargs, error, match", [
    ({"filters": 4, "padding": "valid"}, ValueError, "padding='valid'"),
    ({"filters": 4, "padding": "causal"}, ValueError, "padding"),
    ({"filters": 4, "momentum": 1.5}, ValueError, "momentum"),
    ({"filters": 4, "epsilon": 0.0}, ValueError, "epsilon"),
    ({"filters": 4, "data_format": "channels_first"}, ValueError, "channels_last"),
    ({"filters": 4, "input_quantizer": "no_such_quantizer"}, ValueError, "no_such_quantizer"),
])
def test_bad_arguments_raise_clear_errors(kwargs, error, match):
    with pytest.raises(error, match=match):
        BiRealConv2D(**kwargs)


def test_wrong_input_rank_names_the_shape():
    with pytest.raises(ValueError, match=r"(rank 4|ndim=4).*\(2, 8, 3\)"):
        BiRealConv2D(4)(np.zeros((2, 8, 3), np.float32))


def test_keras_file_and_training(tmp_path):
    inputs = keras.Input((8, 8, 8))
    x = BiRealConv2D(8)(inputs)
    x = BiRealConv2D(16, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    model = keras.Model(inputs, keras.layers.Dense(3)(x))
    model.compile(optimizer=keras.optimizers.Adam(0.01), loss="mse")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8, 8, 8)).astype(np.float32)
    y = rng.normal(size=(64, 3)).astype(np.float32)
    losses = model.fit(x, y, epochs=4, batch_size=16, verbose=0).history["loss"]
    assert np.all(np.isfinite(losses)) and losses[-1] < losses[0]
    path = str(tmp_path / "bireal.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    np.testing.assert_array_equal(ops.convert_to_numpy(loaded(x[:4], training=False)),
                                  ops.convert_to_numpy(model(x[:4], training=False)))
