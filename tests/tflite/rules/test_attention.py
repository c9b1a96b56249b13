"""Binary attention and Transformer encoder through `convert`: projections bitpacked, Keras and LCE agree."""

import numpy as np
import pytest
import tensorflow as tf

from keras_bnn.legacy.layers.attention import BinaryMultiHeadAttention, attention_macs
from keras_bnn.legacy.layers.transformer import BinaryTransformerEncoder
from keras_bnn.tflite import convert, inspect, rewrite_for_lce, verify

LENGTH, FEATURES = 12, 64


def _randomize(model, seed=0):
    """Random weights; biases and LayerNorm betas non-zero, so that no sign sees an exact 0 (a tie)."""
    rng = np.random.default_rng(seed)
    model.set_weights([rng.uniform(0.5, 1.5, value.shape).astype("float32")
                       if "alpha" in weight.name or "gamma" in weight.name
                       else rng.normal(size=value.shape).astype("float32")
                       for weight, value in zip(model.weights, model.get_weights())])


def _attention_model(**settings):
    inputs = tf.keras.Input((LENGTH, FEATURES), batch_size=2)
    outputs = BinaryMultiHeadAttention(2, 32, **settings)(inputs, inputs)
    model = tf.keras.Model(inputs, outputs)
    _randomize(model)
    return model


def _encoder_model(blocks=1, **settings):
    inputs = tf.keras.Input((LENGTH, FEATURES), batch_size=2)
    outputs = inputs
    for _ in range(blocks):
        outputs = BinaryTransformerEncoder(2, 128, **settings)(outputs)
    model = tf.keras.Model(inputs, outputs)
    _randomize(model)
    return model


def _samples(n=4):
    return np.random.default_rng(1).normal(size=(n, LENGTH, FEATURES)).astype("float32")


@pytest.mark.parametrize("probabilities", ["softmax", "bool"])
def test_attention_projections_become_lce_bconv2d_and_outputs_agree(probabilities):
    model = _attention_model(probabilities=probabilities)
    flatbuffer = convert(model, strict=True)  # strict: every binary projection must be bitpacked
    report = inspect(flatbuffer)
    assert report.op_counts["LceBconv2d"] == 4
    assert report.bitpacked_share == 1.0
    macs = attention_macs(model.layers[1], LENGTH, batch_size=2)
    assert report.macs["bitpacked"] == macs["projections"]
    assert report.macs["activation_binary"] == macs["scores"]  # sign(Q) sign(K)^T: +-1 x +-1 BATCH_MATMUL
    result = verify(model, flatbuffer, _samples())
    assert result.max_abs_diff < 1e-3 * max(1.0, result.max_abs_keras), result


def test_encoder_block_is_fully_bitpacked_and_outputs_agree():
    # Elastic inputs (alpha * sign(x - beta)) feed a conv through a multiply, which LCE does not bitpack; the
    # rewrite moves alpha into the kernel (magnitude_aware_sign) and beta into a LearnableThresholdSign.
    model = _encoder_model(input_quantizer="elastic_sign")
    rewritten = rewrite_for_lce(model)
    x = _samples(2)
    np.testing.assert_allclose(rewritten.model(x), model(x), atol=1e-4)
    flatbuffer = convert(model, strict=True)
    report = inspect(flatbuffer)
    assert report.op_counts["LceBconv2d"] == 6  # Q, K, V, O and the two feed-forward matmuls
    assert report.bitpacked_share == 1.0
    result = verify(model, flatbuffer, _samples())
    assert result.max_abs_diff < 1e-3 * max(1.0, result.max_abs_keras), result


def test_rewrite_keeps_the_model_and_computes_the_same():
    model = _encoder_model(blocks=2, probabilities="bool")
    rewritten = rewrite_for_lce(model)
    assert rewritten.not_bitpacked == []
    names = {entry.name for entry in rewritten.bitpackable}
    assert names == {f"{block}/{part}" for block in ("binary_transformer_encoder", "binary_transformer_encoder_1")
                     for part in ("attention/query", "attention/key", "attention/value",
                                  "attention/attention_output", "intermediate", "output")}
    assert all(type(layer) is BinaryTransformerEncoder for layer in model.layers[1:])
    assert type(model.layers[1].attention._query_dense).__name__ == "QuantDense"  # original untouched
    x = _samples(2)
    np.testing.assert_array_equal(rewritten.model(x), model(x))


def test_float_attention_needs_no_rewrite():
    model = _attention_model(input_quantizer=None, kernel_quantizer=None, query_quantizer=None,
                             key_quantizer=None, value_quantizer=None)
    rewritten = rewrite_for_lce(model)
    assert rewritten.bitpackable == [] and rewritten.not_bitpacked == []
    assert type(rewritten.model.layers[1]._query_dense).__name__ == "QuantDense"


def test_a_projection_that_cannot_be_bitpacked_is_reported():
    # Binary inputs but a 2-bit kernel quantizer: LCE cannot bitpack the projections; the audit says which and why.
    model = _attention_model(kernel_quantizer="dorefa_quantizer")
    not_bitpacked = rewrite_for_lce(model).not_bitpacked
    assert sorted(entry.name.rsplit("/", 1)[-1] for entry in not_bitpacked) == [
        "attention_output", "key", "query", "value"]
    assert all("kernel quantizer" in entry.reason for entry in not_bitpacked)
