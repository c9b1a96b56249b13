"""AddPositions and BinaryTransformerEncoder on Keras 3 (every backend): equal to the legacy (tf-keras + larq)
layers with the same weights, the zoo's Transformer weight file fills a Keras 3 model equal to the legacy one,
masks, gradients, serialization, training, argument checks."""

import json
import pathlib

import keras
import numpy as np
import pytest
from keras import ops

from keras_bnn.layers import AddPositions, BinaryTransformerEncoder
from tests.larq_reference import run_larq
from tests.gradients import value_and_gradients

ZOO_WEIGHTS = pathlib.Path(__file__).resolve().parents[2] / "zoo" / "weights" / "binary_transformer.sst2.npz"
FLOAT = dict(input_quantizer=None, kernel_quantizer=None, kernel_constraint=None, query_quantizer=None,
             key_quantizer=None, value_quantizer=None, activation="gelu")

# name -> (encoder arguments, call with the attention mask), the same on both sides.
LEGACY_CASES = {
    "default": (dict(num_heads=2, intermediate_dim=32), False),
    "bool_masked": (dict(num_heads=2, intermediate_dim=32, probabilities="bool"), True),
    "key_dim_ste_kernels": (dict(num_heads=3, intermediate_dim=24, key_dim=5, kernel_quantizer="ste_sign",
                                 input_quantizer="approx_sign"), True),
    "float_gelu": (dict(num_heads=4, intermediate_dim=32, **FLOAT), False),
}

_ZOO_MODEL = """
def zoo_model(keras, layers):
    # keras_bnn.zoo's binary_transformer.sst2 (transformer_classifier with the binary settings).
    tokens = keras.Input((48,), dtype="int32")
    x = keras.layers.Embedding(12000, 64, mask_zero=True, name="tokens")(tokens)
    x = layers.AddPositions(48, name="positions")(x)
    x = keras.layers.LayerNormalization(epsilon=1e-5, name="embedding_norm")(x)
    x = keras.layers.Dropout(0.1, name="embedding_dropout")(x)
    for index in range(2):
        x = layers.BinaryTransformerEncoder(4, 128, dropout=0.1, name=f"encoder_{index}",
                                            input_quantizer="ste_sign")(x)
    x = keras.layers.GlobalAveragePooling1D(name="pool")(x)
    x = keras.layers.Dropout(0.1, name="pool_dropout")(x)
    return keras.Model(tokens, keras.layers.Dense(2, name="classifier")(x))


def zoo_values(path):
    arrays = dict(np.load(path))
    values = []
    for index in range(len(arrays["__names__"])):
        key = f"w{index:03d}"
        if key + ".value" in arrays:
            values.append(arrays[key + ".value"])
            continue
        shape = tuple(int(d) for d in arrays[key + ".shape"])
        bits = np.unpackbits(arrays[key + ".bits"], count=int(np.prod(shape))).reshape(shape).astype(bool)
        magnitude = arrays.get(key + ".scale", np.float32(1.0))
        values.append(np.where(bits, magnitude, -magnitude).astype(np.float32))
    return [str(name) for name in arrays["__names__"]], values
"""
exec(_ZOO_MODEL)  # zoo_model and zoo_values, here as in the legacy script

_LEGACY_SCRIPT = _ZOO_MODEL + """
import json
import keras_bnn.legacy.layers as legacy_layers
for name, (arguments, masked) in json.loads(str(inputs["cases"])).items():
    rng = np.random.default_rng(0)
    layer = legacy_layers.BinaryTransformerEncoder(name="encoder", **arguments)
    x = inputs["x"]
    call = dict(attention_mask=inputs["mask"] if masked else None)
    layer(x, **call)
    weights = [(rng.normal(size=w.shape) * 0.5).astype(np.float32) for w in layer.get_weights()]
    layer.set_weights(weights)
    outputs[name + ".y"] = layer(x, **call).numpy()
    outputs[name + ".names"] = np.array([w.name for w in layer.weights])
    for index, weight in enumerate(weights):
        outputs[f"{name}.w{index}"] = weight
positions = legacy_layers.AddPositions(8, name="positions")
outputs["positions.y"] = positions(inputs["x"]).numpy()
outputs["positions.w"] = positions.get_weights()[0]
model = zoo_model(tf.keras, legacy_layers)
names, values = zoo_values(inputs["zoo_path"].item())
model.set_weights(values)
outputs["zoo.names"] = np.array([w.name for w in model.weights])
outputs["zoo.logits"] = model(inputs["tokens"]).numpy()
"""


def _numpy(x):
    return ops.convert_to_numpy(x)


def _randomize(layer, rng):
    layer.set_weights([(rng.normal(size=w.shape) * 0.5).astype("float32") for w in layer.get_weights()])


@pytest.fixture(scope="module")
def legacy():
    """The legacy layers' weights and outputs (one subprocess for the whole module)."""
    rng = np.random.default_rng(1)
    tokens = rng.integers(1, 12000, size=(3, 48)).astype(np.int32)
    tokens[0, 20:] = 0  # padding
    tokens[1, 5:] = 0
    arrays = dict(x=rng.normal(size=(2, 6, 12)).astype("float32"), mask=rng.random((2, 6, 6)) > 0.3,
                  tokens=tokens)
    return run_larq(_LEGACY_SCRIPT, cases=np.array(json.dumps(LEGACY_CASES)), zoo_path=np.array(str(ZOO_WEIGHTS)),
                    **arrays) | arrays


@pytest.mark.parametrize("name", sorted(LEGACY_CASES))
def test_encoder_equals_the_legacy_layer_with_the_same_weights(legacy, name):
    arguments, masked = LEGACY_CASES[name]
    layer = BinaryTransformerEncoder(name="encoder", **arguments)
    call = dict(attention_mask=legacy["mask"] if masked else None)
    layer(legacy["x"], **call)
    assert [f"{w.path}:0" for w in layer.weights] == [str(n) for n in legacy[f"{name}.names"]]
    layer.set_weights([legacy[f"{name}.w{i}"] for i in range(len(layer.weights))])
    np.testing.assert_allclose(_numpy(layer(legacy["x"], **call)), legacy[f"{name}.y"], atol=1e-5)


def test_add_positions_equals_the_legacy_layer(legacy):
    layer = AddPositions(8, name="positions")
    layer(legacy["x"])
    assert [w.path for w in layer.weights] == ["positions/positions"]
    layer.set_weights([legacy["positions.w"]])
    np.testing.assert_allclose(_numpy(layer(legacy["x"])), legacy["positions.y"], atol=1e-6)


def test_the_zoo_weight_file_fills_a_keras3_model_that_equals_the_legacy_one(legacy):
    import keras_bnn.layers

    model = zoo_model(keras, keras_bnn.layers)
    names, values = zoo_values(ZOO_WEIGHTS)
    assert [f"{w.path}:0" for w in model.weights] == names == [str(n) for n in legacy["zoo.names"]]
    assert [tuple(w.shape) for w in model.weights] == [v.shape for v in values]
    model.set_weights(values)
    np.testing.assert_allclose(_numpy(model(legacy["tokens"])), legacy["zoo.logits"], atol=1e-4)


def test_add_positions_keeps_the_mask_and_refuses_longer_inputs():
    tokens = keras.Input((5,), dtype="int32")
    positioned = AddPositions(8)(keras.layers.Embedding(10, 4, mask_zero=True)(tokens))
    assert positioned._keras_mask is not None
    with pytest.raises(ValueError, match="has 4 positions, got inputs of length 6"):
        AddPositions(4)(ops.zeros((1, 6, 3)))
    with pytest.raises(ValueError, match="max_length must be a positive integer, got 0"):
        AddPositions(0)
    config = AddPositions(7, name="p").get_config()
    assert AddPositions.from_config(config).get_config() == config


@pytest.mark.parametrize("probabilities", ["softmax", "bool"])
def test_padding_mask_from_embedding_is_respected(probabilities):
    tokens = keras.Input((6,), dtype="int32")
    embedding = keras.layers.Embedding(20, 16, mask_zero=True)
    encoded = BinaryTransformerEncoder(2, 32, probabilities=probabilities)(embedding(tokens))
    assert encoded._keras_mask is not None  # the encoder keeps the mask for pooling
    model = keras.Model(tokens, encoded)
    _randomize(model, np.random.default_rng(2))
    ids = np.array([[3, 4, 5, 0, 0, 0], [7, 8, 9, 10, 11, 0]])
    before = _numpy(model(ids))
    table = embedding.get_weights()[0]
    table[0] += 3.0  # changing the padding token's embedding must not change any unpadded output
    embedding.set_weights([table])
    after = _numpy(model(ids))
    np.testing.assert_allclose(before[ids != 0], after[ids != 0], atol=1e-5)
    assert np.abs(before[ids == 0] - after[ids == 0]).max() > 0  # padded positions still see their embedding


@pytest.mark.parametrize("probabilities", ["softmax", "bool"])
def test_gradients_reach_every_weight(probabilities):
    rng = np.random.default_rng(4)
    layer = BinaryTransformerEncoder(2, 32, probabilities=probabilities)
    x = rng.normal(size=(4, 6, 16)).astype("float32")
    layer(x)
    upstream = rng.normal(size=(4, 6, 16)).astype("float32")
    _, _, gradients = value_and_gradients(lambda v: layer(v, training=True), x, upstream, layer.trainable_weights)
    assert len(gradients) == len(layer.trainable_weights) == 16
    for weight, gradient in zip(layer.trainable_weights, gradients):
        assert gradient is not None and np.abs(gradient).sum() > 0, weight.path


def test_keras_file_and_config_round_trip(tmp_path):
    inputs = keras.Input((6, 16))
    layer = BinaryTransformerEncoder(2, 32, dropout=0.1, attention_dropout=0.1, probabilities="bool",
                                     input_quantizer="approx_sign", kernel_initializer="he_normal")
    model = keras.Model(inputs, layer(inputs))
    _randomize(model, np.random.default_rng(5))
    x = np.random.default_rng(6).normal(size=(2, 6, 16)).astype("float32")
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(_numpy(loaded(x)), _numpy(model(x)), atol=1e-6)
    assert type(loaded.layers[-1]) is BinaryTransformerEncoder
    config = layer.get_config()
    assert BinaryTransformerEncoder.from_config(config).get_config() == config
    assert {"input_quantizer", "kernel_quantizer", "kernel_constraint", "kernel_initializer", "query_quantizer",
            "probabilities", "norm_epsilon", "activation"} <= set(config)
    assert "shared_object_id" not in json.dumps(config)
    assert keras.saving.get_registered_name(BinaryTransformerEncoder) == "keras_bnn>BinaryTransformerEncoder"
    quantizers = [layer.attention._query_dense.input_quantizer, layer.intermediate_dense.input_quantizer,
                  layer.attention.query_quantizer]
    assert len({id(q) for q in quantizers}) == 3  # every sublayer has its own instance


def test_a_few_training_steps_lower_the_loss():
    rng = np.random.default_rng(0)
    # Class 1 when token 1 occurs in the sentence: the encoder must look at every position.
    ids = rng.integers(2, 30, size=(128, 8))
    labels = rng.integers(0, 2, size=128)
    ids[labels == 1, rng.integers(0, 8, size=int(labels.sum()))] = 1
    tokens = keras.Input((8,), dtype="int32")
    x = keras.layers.Embedding(30, 32, mask_zero=True)(tokens)
    x = AddPositions(8)(x)
    x = BinaryTransformerEncoder(2, 64)(x)
    model = keras.Model(tokens, keras.layers.Dense(2)(keras.layers.GlobalAveragePooling1D()(x)))
    # XLA compilation takes longer than these few steps on TensorFlow; JAX always compiles.
    model.compile(keras.optimizers.Adam(0.005), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=keras.backend.backend() == "jax")
    before = model.evaluate(ids, labels, verbose=0)
    model.fit(ids, labels, batch_size=32, epochs=4, verbose=0)
    after = model.evaluate(ids, labels, verbose=0)
    assert after < before - 0.2, (before, after)


@pytest.mark.parametrize("arguments, message", [
    (dict(num_heads=0, intermediate_dim=8), "num_heads must be a positive integer, got 0"),
    (dict(num_heads=2, intermediate_dim=0), "intermediate_dim must be a positive integer, got 0"),
    (dict(num_heads=2, intermediate_dim=8, key_dim=-2), "key_dim must be a positive integer or None, got -2"),
    (dict(num_heads=2, intermediate_dim=8, dropout=1.0), r"dropout must be a number in \[0, 1\), got 1.0"),
    (dict(num_heads=2, intermediate_dim=8, attention_dropout=-0.1), "attention_dropout must be .* got -0.1"),
    (dict(num_heads=2, intermediate_dim=8, norm_epsilon=0), "norm_epsilon must be a positive number, got 0"),
    (dict(num_heads=2, intermediate_dim=8, probabilities="hard"), "probabilities must be one of .* got 'hard'"),
    (dict(num_heads=2, intermediate_dim=8, input_quantizer="nope"), "input_quantizer: Unknown quantizer 'nope'"),
])
def test_bad_encoder_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        BinaryTransformerEncoder(**arguments)


def test_bad_input_shapes():
    with pytest.raises(ValueError, match="30 features are not divisible by num_heads=4"):
        BinaryTransformerEncoder(4, 16)(ops.zeros((1, 3, 30)))
    with pytest.raises(ValueError, match=r"needs inputs of shape \(batch, length, features\).* got shape \(2, 16\)"):
        BinaryTransformerEncoder(2, 16)(ops.zeros((2, 16)))
