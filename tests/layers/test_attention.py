"""BinaryMultiHeadAttention on Keras 3 (every backend): equal to the legacy (tf-keras + larq) layer with the same
weights, float equivalence with keras.layers.MultiHeadAttention, a numpy reference, masks, gradients,
serialization, attention_macs, argument checks."""

import json

import keras
import numpy as np
import pytest
from keras import ops

from keras_bnn.layers import BinaryMultiHeadAttention, attention_macs, binary_step
from tests.larq_reference import run_larq
from tests.gradients import value_and_gradients

FLOAT = dict(input_quantizer=None, kernel_quantizer=None, query_quantizer=None, key_quantizer=None,
             value_quantizer=None)

# name -> (layer arguments, call options), the same on both sides. "value": a separate value input of another
# length and width; "mask": the random attention mask.
LEGACY_CASES = {
    "softmax": (dict(num_heads=2, key_dim=4), {}),
    "bool": (dict(num_heads=2, key_dim=4, probabilities="bool"), {}),
    "cross_sizes": (dict(num_heads=3, key_dim=4, value_dim=6, output_shape=10), {"value": True}),
    "masked_causal": (dict(num_heads=2, key_dim=4), {"mask": True, "causal": True}),
    "bool_masked": (dict(num_heads=2, key_dim=4, probabilities="bool"), {"mask": True}),
    # (with biases: without them, ±c kernels times ±1 inputs sum to exact ties, whose sign depends on the
    # summation order of each backend's matmul)
    "magnitude_approx": (dict(num_heads=2, key_dim=8, kernel_quantizer="magnitude_aware_sign",
                              input_quantizer="approx_sign"), {}),
    "no_bias": (dict(num_heads=2, key_dim=4, use_bias=False), {}),
    "float": (dict(num_heads=2, key_dim=4, **FLOAT), {"mask": True}),
}

_LEGACY_SCRIPT = """
import json
from keras_bnn.legacy.layers.attention import BinaryMultiHeadAttention
for name, (arguments, options) in json.loads(str(inputs["cases"])).items():
    rng = np.random.default_rng(0)
    layer = BinaryMultiHeadAttention(name="attention", **arguments)
    query = inputs["query"]
    value = inputs["value"] if options.get("value") else query
    call = dict(attention_mask=inputs["mask"] if options.get("mask") else None,
                use_causal_mask=bool(options.get("causal")))
    layer(query, value, **call)
    weights = [(rng.normal(size=w.shape) * 0.5).astype(np.float32) for w in layer.get_weights()]
    layer.set_weights(weights)
    output, scores = layer(query, value, return_attention_scores=True, **call)
    outputs[name + ".y"], outputs[name + ".scores"] = output.numpy(), scores.numpy()
    outputs[name + ".names"] = np.array([w.name for w in layer.weights])
    for index, weight in enumerate(weights):
        outputs[f"{name}.w{index}"] = weight
"""


def _numpy(x):
    return ops.convert_to_numpy(x)


def _randomize(layer, rng):
    layer.set_weights([(rng.normal(size=w.shape) * 0.5).astype("float32") for w in layer.get_weights()])


def _sign(x):
    return np.where(x >= 0, 1.0, -1.0)


@pytest.fixture(scope="module")
def legacy():
    """The legacy layer's weights and outputs (one subprocess for the whole module)."""
    rng = np.random.default_rng(1)
    arrays = dict(query=rng.normal(size=(2, 7, 16)).astype("float32"),
                  value=rng.normal(size=(2, 5, 12)).astype("float32"), mask=rng.random((2, 7, 7)) > 0.3)
    return run_larq(_LEGACY_SCRIPT, cases=np.array(json.dumps(LEGACY_CASES)), **arrays) | arrays


@pytest.mark.parametrize("name", sorted(LEGACY_CASES))
def test_equals_the_legacy_layer_with_the_same_weights(legacy, name):
    arguments, options = LEGACY_CASES[name]
    layer = BinaryMultiHeadAttention(name="attention", **arguments)
    query = legacy["query"]
    value = legacy["value"] if options.get("value") else query
    call = dict(attention_mask=legacy["mask"] if options.get("mask") else None,
                use_causal_mask=bool(options.get("causal")))
    layer(query, value, **call)
    assert [f"{w.path}:0" for w in layer.weights] == [str(n) for n in legacy[f"{name}.names"]]
    layer.set_weights([legacy[f"{name}.w{i}"] for i in range(len(layer.weights))])
    output, scores = layer(query, value, return_attention_scores=True, **call)
    np.testing.assert_allclose(_numpy(scores), legacy[f"{name}.scores"], atol=1e-6)
    np.testing.assert_allclose(_numpy(output), legacy[f"{name}.y"], atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_float_settings_equal_keras_multi_head_attention_with_shared_weights(causal):
    rng = np.random.default_rng(0)
    query = rng.normal(size=(2, 7, 16)).astype("float32")
    value = rng.normal(size=(2, 7, 16)).astype("float32")
    mask = (rng.random((2, 7, 7)) > 0.3) | np.eye(7, dtype=bool)  # no fully masked row
    reference = keras.layers.MultiHeadAttention(3, 4, output_shape=10)  # (value_dim != key_dim fails on JAX)
    reference(query, value)
    _randomize(reference, rng)
    expected, expected_scores = reference(query, value, attention_mask=mask, use_causal_mask=causal,
                                          return_attention_scores=True)
    layer = BinaryMultiHeadAttention(3, 4, output_shape=10, **FLOAT)
    layer(query, value)
    # Same weights, reshaped: (features, heads, dim) kernels are (features, heads * dim) matrices here.
    layer.set_weights([w.reshape(v.shape) for w, v in zip(reference.get_weights(), layer.get_weights())])
    output, scores = layer(query, value, attention_mask=mask, use_causal_mask=causal, return_attention_scores=True)
    np.testing.assert_allclose(_numpy(output), _numpy(expected), atol=1e-5)
    np.testing.assert_allclose(_numpy(scores), _numpy(expected_scores), atol=1e-6)


@pytest.mark.parametrize("probabilities", ["softmax", "bool"])
def test_binary_attention_matches_a_numpy_reference(probabilities):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 5, 8)).astype("float32")
    layer = BinaryMultiHeadAttention(2, 4, probabilities=probabilities)
    layer(x, x)
    _randomize(layer, rng)
    (wq, bq, wk, bk, wv, bv, wo, bo) = layer.get_weights()
    heads = lambda t: t.reshape(2, 5, 2, 4)  # noqa: E731
    q = _sign(heads(_sign(x) @ _sign(wq) + bq))
    k = _sign(heads(_sign(x) @ _sign(wk) + bk))
    v = _sign(heads(_sign(x) @ _sign(wv) + bv))
    scores = np.einsum("bthd,bshd->bhts", q, k) / 2.0  # sqrt(key_dim = 4)
    if probabilities == "softmax":
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        context = np.einsum("bhts,bshd->bthd", weights, v)
    else:
        weights = (scores >= 0).astype("float32")
        context = np.einsum("bhts,bshd->bthd", weights, v) / 5.0  # divided by the key length
    expected = _sign(context.reshape(2, 5, 8) + 1e-5) @ _sign(wo) + bo  # the layer resolves ties to +1
    output, probs = layer(x, x, return_attention_scores=True)
    np.testing.assert_allclose(_numpy(probs), weights, atol=1e-6)
    np.testing.assert_allclose(_numpy(output), expected, atol=1e-5)


def test_binary_step_values_and_gradient():
    values, gradient, _ = value_and_gradients(binary_step, [-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 2.0], np.ones(7))
    np.testing.assert_array_equal(values, [0, 0, 0, 1, 1, 1, 1])
    np.testing.assert_array_equal(gradient, [0, 1, 1, 1, 1, 1, 0])


@pytest.mark.parametrize("probabilities", ["softmax", "bool"])
def test_padding_mask_from_embedding_is_respected(probabilities):
    tokens = keras.Input((6,), dtype="int32")
    embedding = keras.layers.Embedding(20, 16, mask_zero=True)
    embedded = embedding(tokens)
    attended = BinaryMultiHeadAttention(2, 8, probabilities=probabilities)(embedded, embedded)
    model = keras.Model(tokens, attended)
    _randomize(model, np.random.default_rng(2))
    ids = np.array([[3, 4, 5, 0, 0, 0], [7, 8, 9, 10, 11, 0]])
    before = _numpy(model(ids))
    table = embedding.get_weights()[0]
    table[0] += 3.0  # changing the padding token's embedding must not change any unpadded output
    embedding.set_weights([table])
    after = _numpy(model(ids))
    np.testing.assert_allclose(before[ids != 0], after[ids != 0], atol=1e-5)
    table[3] += 3.0  # while a token's embedding is seen (the test can fail)
    embedding.set_weights([table])
    assert np.abs(_numpy(model(ids))[0, :3] - after[0, :3]).max() > 0


@pytest.mark.parametrize("probabilities", ["softmax", "bool"])
def test_causal_mask_hides_the_future(probabilities):
    rng = np.random.default_rng(3)
    layer = BinaryMultiHeadAttention(2, 8, probabilities=probabilities)
    x = rng.normal(size=(1, 6, 16)).astype("float32")
    layer(x, x)
    _randomize(layer, rng)
    changed = x.copy()
    changed[:, 4:] = rng.normal(size=(1, 2, 16))
    first = _numpy(layer(x, x, use_causal_mask=True))
    second = _numpy(layer(changed, changed, use_causal_mask=True))
    np.testing.assert_allclose(first[:, :4], second[:, :4], atol=1e-6)
    assert np.abs(first[:, 4:] - second[:, 4:]).max() > 0
    _, probs = layer(x, x, use_causal_mask=True, return_attention_scores=True)
    assert np.all(np.triu(np.ones((6, 6)), 1) * _numpy(probs) == 0)


@pytest.mark.parametrize("probabilities", ["softmax", "bool"])
def test_gradients_reach_every_weight(probabilities):
    rng = np.random.default_rng(4)
    layer = BinaryMultiHeadAttention(2, 8, probabilities=probabilities)
    x = rng.normal(size=(4, 6, 16)).astype("float32")
    layer(x, x)
    upstream = rng.normal(size=(4, 6, 16)).astype("float32")
    _, dx, gradients = value_and_gradients(lambda v: layer(v, v, training=True), x, upstream,
                                           layer.trainable_weights)
    assert len(gradients) == 8 and np.abs(dx).sum() > 0
    for weight, gradient in zip(layer.trainable_weights, gradients):
        assert gradient is not None and np.abs(gradient).sum() > 0, weight.path


def test_keras_file_and_config_round_trip(tmp_path):
    inputs = keras.Input((6, 16))
    layer = BinaryMultiHeadAttention(2, 8, value_dim=4, probabilities="bool", dropout=0.1, output_shape=12,
                                     kernel_quantizer="magnitude_aware_sign", kernel_regularizer="l2")
    model = keras.Model(inputs, layer(inputs, inputs))
    _randomize(model, np.random.default_rng(5))
    x = np.random.default_rng(6).normal(size=(2, 6, 16)).astype("float32")
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(_numpy(loaded(x)), _numpy(model(x)), atol=1e-6)
    assert type(loaded.layers[-1]) is BinaryMultiHeadAttention
    config = layer.get_config()
    assert config["query_shape"] == [None, 6, 16] and "attention_axes" not in config
    copy = BinaryMultiHeadAttention.from_config(config)
    assert copy.get_config() == config and copy.built
    assert keras.saving.get_registered_name(BinaryMultiHeadAttention) == "keras_bnn>BinaryMultiHeadAttention"
    quantizers = [layer._query_dense.input_quantizer, layer._key_dense.input_quantizer, layer.query_quantizer]
    assert len({id(q) for q in quantizers}) == 3  # every sublayer has its own instance


def test_attention_macs():
    layer = BinaryMultiHeadAttention(2, 8, value_dim=4, output_shape=12)
    layer(ops.zeros((1, 5, 16)), ops.zeros((1, 7, 24)))
    macs = attention_macs(layer, 5, 7, batch_size=3)
    assert macs == {"projections": 3 * (5 * 16 * 16 + 7 * 24 * 16 + 7 * 24 * 8 + 5 * 8 * 12),
                    "scores": 3 * 2 * 5 * 7 * 8, "context": 3 * 2 * 5 * 7 * 4}
    with pytest.raises(ValueError, match="not built"):
        attention_macs(BinaryMultiHeadAttention(2, 8), 5)


@pytest.mark.parametrize("arguments, message", [
    (dict(num_heads=0, key_dim=8), "num_heads must be a positive integer, got 0"),
    (dict(num_heads=2, key_dim=2.5), "key_dim must be a positive integer, got 2.5"),
    (dict(num_heads=2, key_dim=8, value_dim=-1), "value_dim must be a positive integer or None, got -1"),
    (dict(num_heads=2, key_dim=8, dropout=1.0), r"dropout must be a number in \[0, 1\), got 1.0"),
    (dict(num_heads=2, key_dim=8, probabilities="sigmoid"), "probabilities must be one of .* got 'sigmoid'"),
    (dict(num_heads=2, key_dim=8, attention_axes=(1, 2)), r"attention_axes must be None or \(1,\), got \(1, 2\)"),
    (dict(num_heads=2, key_dim=8, output_shape=(3, 4)), r"output_shape must be .* got \(3, 4\)"),
    (dict(num_heads=2, key_dim=8, query_quantizer="nope"), "query_quantizer: Unknown quantizer 'nope'"),
])
def test_bad_attention_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        BinaryMultiHeadAttention(**arguments)


def test_bad_input_shapes():
    with pytest.raises(ValueError, match=r"needs query of shape \(batch, length, features\).* got shape \(2, 16\)"):
        BinaryMultiHeadAttention(2, 8)(ops.zeros((2, 16)), ops.zeros((2, 16)))
