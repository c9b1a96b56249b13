"""BinaryMultiHeadAttention and BinaryTransformerEncoder at the Keras level (conversion: tests/tflite)."""

import keras_bnn
import larq as lq
import numpy as np
import pytest
import tensorflow as tf

# private tf-keras API, used only to check what .keras saving does
from tf_keras.src.saving.serialization_lib import ObjectSharingScope as keras_object_sharing_scope
from keras_bnn.legacy.layers.attention import BinaryMultiHeadAttention, attention_macs, binary_step
from keras_bnn.legacy.layers.transformer import BinaryTransformerEncoder

FLOAT = dict(input_quantizer=None, kernel_quantizer=None, query_quantizer=None, key_quantizer=None,
             value_quantizer=None)


def _randomize(layer, rng):
    """Random weights (positive elastic alphas), so that equality tests can fail."""
    layer.set_weights([rng.uniform(0.5, 1.5, w.shape).astype("float32") if "alpha" in v.name
                       else (rng.normal(size=w.shape) * 0.5).astype("float32")
                       for w, v in zip(layer.get_weights(), layer.weights)])


def _sign(x):
    return np.where(x >= 0, 1.0, -1.0)


@pytest.mark.parametrize("causal", [False, True])
def test_float_settings_equal_multi_head_attention_with_shared_weights(causal):
    rng = np.random.default_rng(0)
    query = rng.normal(size=(2, 7, 16)).astype("float32")
    value = rng.normal(size=(2, 7, 16)).astype("float32")
    mask = rng.random((2, 7, 7)) > 0.3
    reference = tf.keras.layers.MultiHeadAttention(3, 4, value_dim=6, output_shape=10)
    expected, expected_scores = reference(query, value, attention_mask=mask, use_causal_mask=causal,
                                          return_attention_scores=True)
    _randomize(reference, rng)
    expected, expected_scores = reference(query, value, attention_mask=mask, use_causal_mask=causal,
                                          return_attention_scores=True)
    layer = BinaryMultiHeadAttention(3, 4, value_dim=6, output_shape=10, **FLOAT)
    layer(query, value)
    # Same weights, reshaped: (features, heads, dim) kernels are (features, heads * dim) matrices here.
    layer.set_weights([w.reshape(v.shape) for w, v in zip(reference.get_weights(), layer.get_weights())])
    output, scores = layer(query, value, attention_mask=mask, use_causal_mask=causal, return_attention_scores=True)
    np.testing.assert_allclose(output, expected, atol=1e-5)
    np.testing.assert_allclose(scores, expected_scores, atol=1e-6)


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
    assert set(np.unique(scores * 2)) <= set(range(-4, 5))  # integer scores: binary Q and K
    if probabilities == "softmax":
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights /= weights.sum(-1, keepdims=True)
        context = np.einsum("bhts,bshd->bthd", weights, v)
    else:
        weights = (scores >= 0).astype("float32")
        context = np.einsum("bhts,bshd->bthd", weights, v) / 5.0  # divided by the key length
    expected = _sign(context.reshape(2, 5, 8) + 1e-5) @ _sign(wo) + bo  # the layer resolves ties to +1
    output, probs = layer(x, x, return_attention_scores=True)
    np.testing.assert_allclose(probs, weights, atol=1e-6)
    np.testing.assert_allclose(output, expected, atol=1e-5)


def test_binary_step_values_and_gradient():
    x = tf.constant([-2.0, -0.5, 0.0, 0.5, 2.0])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = binary_step(x)
    np.testing.assert_array_equal(y, [0, 0, 1, 1, 1])
    np.testing.assert_array_equal(tape.gradient(y, x), [0, 1, 1, 1, 0])


@pytest.mark.parametrize("probabilities", ["softmax", "bool"])
def test_padding_mask_from_embedding_is_respected(probabilities):
    tokens = tf.keras.Input((6,), dtype="int32")
    embedded = tf.keras.layers.Embedding(20, 16, mask_zero=True)(tokens)
    attended = BinaryMultiHeadAttention(2, 8, probabilities=probabilities)(embedded, embedded)
    encoded = BinaryTransformerEncoder(2, 32, probabilities=probabilities)(embedded)
    model = tf.keras.Model(tokens, [attended, encoded])
    _randomize(model, np.random.default_rng(2))
    ids = np.array([[3, 4, 5, 0, 0, 0], [7, 8, 9, 10, 11, 0]])
    # Changing the embedding of the padding token must not change any unpadded output.
    embedding = model.layers[1]
    before = [o.numpy() for o in model(ids)]
    table = embedding.get_weights()[0]
    table[0] += 3.0
    embedding.set_weights([table])
    after = [o.numpy() for o in model(ids)]
    unpadded = ids != 0
    for first, second in zip(before, after):
        np.testing.assert_allclose(first[unpadded], second[unpadded], atol=1e-5)
    assert encoded._keras_mask is not None  # the encoder keeps the mask for pooling


@pytest.mark.parametrize("probabilities", ["softmax", "bool"])
def test_causal_mask_hides_the_future(probabilities):
    rng = np.random.default_rng(3)
    layer = BinaryMultiHeadAttention(2, 8, probabilities=probabilities)
    x = rng.normal(size=(1, 6, 16)).astype("float32")
    layer(x, x)
    _randomize(layer, rng)
    changed = x.copy()
    changed[:, 4:] = rng.normal(size=(1, 2, 16))
    first = layer(x, x, use_causal_mask=True).numpy()
    second = layer(changed, changed, use_causal_mask=True).numpy()
    np.testing.assert_allclose(first[:, :4], second[:, :4], atol=1e-6)
    assert np.abs(first[:, 4:] - second[:, 4:]).max() > 0
    _, probs = layer(x, x, use_causal_mask=True, return_attention_scores=True)
    assert np.all(np.triu(np.ones((6, 6)), 1) * probs.numpy() == 0)


@pytest.mark.parametrize("settings", [dict(probabilities="softmax"), dict(probabilities="bool"),
                                      dict(input_quantizer="elastic_sign"),
                                      dict(input_quantizer="learnable_threshold_sign")])
def test_gradients_reach_every_weight(settings):
    rng = np.random.default_rng(4)
    layer = BinaryTransformerEncoder(2, 32, **settings)
    x = tf.constant(rng.normal(size=(4, 6, 16)).astype("float32"))
    layer(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, training=True) * rng.normal(size=(4, 6, 16)).astype("float32"))
    gradients = tape.gradient(loss, layer.trainable_weights)
    assert len(gradients) == len(layer.trainable_weights) > 10
    for weight, gradient in zip(layer.trainable_weights, gradients):
        assert gradient is not None, weight.name
        assert np.abs(gradient.numpy()).sum() > 0, weight.name


def _model_with_both_layers():
    inputs = tf.keras.Input((6, 16))
    x = BinaryMultiHeadAttention(2, 8, input_quantizer="elastic_sign", probabilities="bool", dropout=0.1)(inputs,
                                                                                                          inputs)
    x = BinaryTransformerEncoder(2, 32, input_quantizer="elastic_sign", dropout=0.1)(x)
    model = tf.keras.Model(inputs, x)
    _randomize(model, np.random.default_rng(5))
    return model


@pytest.mark.parametrize("path", ["model.keras", "model.h5", "saved_model"])
def test_save_and_load(tmp_path, path):
    model = _model_with_both_layers()
    x = np.random.default_rng(6).normal(size=(2, 6, 16)).astype("float32")
    if path == "saved_model":
        # save_traces=False: no tf.function traces of every layer call (slow); Keras rebuilds the layers from
        # their registered classes and configs, as for .keras.
        model.save(tmp_path / path, save_format="tf", save_traces=False)
    else:
        model.save(tmp_path / path)
    loaded = tf.keras.models.load_model(tmp_path / path)
    np.testing.assert_allclose(loaded(x), model(x), atol=1e-6)
    assert [type(layer).__name__ for layer in loaded.layers[1:]] == ["BinaryMultiHeadAttention",
                                                                          "BinaryTransformerEncoder"]


def test_config_round_trip_and_serialization_name():
    model = _model_with_both_layers()
    for layer in model.layers[1:]:
        config = layer.get_config()
        copy = type(layer).from_config(dict(config))  # MultiHeadAttention.from_config pops from its argument
        assert copy.get_config() == config
        assert tf.keras.utils.get_registered_name(type(layer)) == f"keras_bnn>{type(layer).__name__}"


def test_larq_summary_counts_binary_kernels_as_one_bit():
    inputs = tf.keras.Input((10, 32))
    model = tf.keras.Model(inputs, BinaryTransformerEncoder(4, 64)(inputs))
    profile = lq.models.ModelProfile(model)
    layer = model.layers[1]
    kernels = sum(int(np.prod(w.shape)) for w in layer.weights if w.name.endswith("kernel:0"))
    assert kernels == 4 * 32 * 32 + 2 * 32 * 64
    others = layer.count_params() - kernels
    assert profile.weight_count(bitwidth=1) == kernels
    assert profile.memory == kernels + 32 * others


def test_attention_macs():
    layer = BinaryMultiHeadAttention(2, 8, value_dim=4, output_shape=12)
    layer(tf.zeros((1, 5, 16)), tf.zeros((1, 7, 24)))
    macs = attention_macs(layer, 5, 7, batch_size=3)
    assert macs == {"projections": 3 * (5 * 16 * 16 + 7 * 24 * 16 + 7 * 24 * 8 + 5 * 8 * 12),
                    "scores": 3 * 2 * 5 * 7 * 8, "context": 3 * 2 * 5 * 7 * 4}


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


@pytest.mark.parametrize("arguments, message", [
    (dict(num_heads=2, intermediate_dim=0), "intermediate_dim must be a positive integer, got 0"),
    (dict(num_heads=2, intermediate_dim=8, attention_dropout=-0.1), "attention_dropout must be .* got -0.1"),
    (dict(num_heads=2, intermediate_dim=8, norm_epsilon=0), "norm_epsilon must be a positive number, got 0"),
    (dict(num_heads=2, intermediate_dim=8, probabilities="hard"), "probabilities must be one of .* got 'hard'"),
    (dict(num_heads=2, intermediate_dim=8, input_quantizer="nope"), "input_quantizer: Unknown quantizer 'nope'"),
])
def test_bad_encoder_arguments(arguments, message):
    with pytest.raises(ValueError, match=message):
        BinaryTransformerEncoder(**arguments)


def test_bad_input_shapes():
    with pytest.raises(ValueError, match=r"needs query of shape \(batch, length, features\).* got shape \(2, 16\)"):
        BinaryMultiHeadAttention(2, 8)(tf.zeros((2, 16)), tf.zeros((2, 16)))
    with pytest.raises(ValueError, match="30 features are not divisible by num_heads=4"):
        BinaryTransformerEncoder(4, 16)(tf.zeros((1, 3, 30)))


def test_configs_drop_keras_shared_object_ids():
    # Inside the object-sharing scope of .keras saving/loading, Keras marks objects serialized twice (same id())
    # as shared. The layers serialize quantizers in __init__; ids of freed temporaries are reused, so a stale
    # "shared_object_id" once made a query quantizer load as the kernel constraint (flaky, depending on memory
    # layout). Here the same object is serialized twice on purpose: the stored settings must not keep the mark.
    quantizer = keras_bnn.legacy.quantizers.ElasticSign()
    with keras_object_sharing_scope():
        layer = BinaryTransformerEncoder(2, 32, input_quantizer=quantizer, query_quantizer=quantizer)
        attention = BinaryMultiHeadAttention(2, 8, input_quantizer=quantizer, kernel_quantizer=quantizer)
    for config in (layer.get_config(), attention.get_config()):
        assert "shared_object_id" not in str(config)
    layer(tf.zeros((1, 4, 16)))
    assert "shared_object_id" not in str(layer.attention.get_config())
    quantizers = [layer.attention._query_dense.input_quantizer, layer.intermediate_dense.input_quantizer,
                  layer.attention.query_quantizer]
    assert len({id(q) for q in quantizers}) == 3  # every sublayer has its own instance
