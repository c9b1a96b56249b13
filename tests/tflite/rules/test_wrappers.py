"""Rewrites of wrappers around binary layers: Bidirectional(BinaryGRU), RNN(BinaryGRUCell), RNN([cells]).

The rewritten model must compute what the original does, every binary matmul must become bitpackable, and LCE
must run it bitpacked with the same outputs as Keras."""

import warnings

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from keras_bnn.legacy.layers.recurrent import BinaryGRU, BinaryGRUCell
from keras_bnn.tflite import convert, inspect, rewrite_for_lce, verify

STEPS, FEATURES = 5, 32


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.normal(scale=0.5, size=weight.shape).astype(np.float32))


WRAPPED = {
    "bidirectional": lambda: tf.keras.layers.Bidirectional(BinaryGRU(16, return_sequences=True), name="wrapped"),
    "bidirectional_reset_before_sum": lambda: tf.keras.layers.Bidirectional(
        BinaryGRU(16, reset_after=False), merge_mode="sum", name="wrapped"),
    "rnn_cell": lambda: tf.keras.layers.RNN(BinaryGRUCell(16), return_sequences=True, name="wrapped"),
    "rnn_stacked_cells": lambda: tf.keras.layers.RNN([BinaryGRUCell(16), BinaryGRUCell(8, reset_after=False)],
                                                     name="wrapped"),
}
EXPECTED_CONVS = {"bidirectional": 4, "bidirectional_reset_before_sum": 6, "rnn_cell": 2, "rnn_stacked_cells": 5}


def _model(name, batch_size=None):
    inputs = tf.keras.Input((STEPS, FEATURES), batch_size=batch_size)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(3)(WRAPPED[name]()(inputs)))
    _randomize(model)
    return model


@pytest.mark.parametrize("name", sorted(WRAPPED))
def test_rewrite_enters_the_wrapper_and_keeps_outputs(name):
    model = _model(name)
    result = rewrite_for_lce(model)
    assert result.not_bitpacked == []
    assert len(result.bitpackable) == EXPECTED_CONVS[name]
    assert all(entry.name.startswith("wrapped/") for entry in result.bitpackable), result.bitpackable
    original, rewritten = model.get_layer("wrapped"), result.model.get_layer("wrapped")
    assert type(rewritten) is type(original) and rewritten is not original
    data = np.random.default_rng(1).normal(size=(3, STEPS, FEATURES)).astype(np.float32)
    np.testing.assert_allclose(result.model(data).numpy(), model(data).numpy(), atol=1e-5)


@pytest.mark.parametrize("name", ["bidirectional", "rnn_stacked_cells"])
def test_lce_bitpacks_wrapped_grus_and_matches_keras(name):
    model = _model(name, batch_size=2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a binary matmul left in float would warn
        flatbuffer = convert(model, strict=True)
    report = inspect(flatbuffer)
    assert report.bitpacked_share == 1.0 and report.macs["unpacked_binary"] == 0
    assert report.op_counts["FULLY_CONNECTED"] == 1  # the real Dense head only
    data = np.random.default_rng(2).normal(size=(4, STEPS, FEATURES)).astype(np.float32)
    verification = verify(model, flatbuffer, data)
    assert verification.max_abs_diff < 1e-4 * max(1.0, verification.max_abs_keras)


def test_wrappers_around_float_layers_are_kept():
    inputs = tf.keras.Input((STEPS, FEATURES))
    x = tf.keras.layers.Bidirectional(tf.keras.layers.GRU(8, return_sequences=True), name="float_bi")(inputs)
    x = tf.keras.layers.RNN(tf.keras.layers.GRUCell(4), name="float_rnn")(x)
    result = rewrite_for_lce(tf.keras.Model(inputs, x))
    assert result.bitpackable == [] and result.not_bitpacked == []
    assert type(result.model.get_layer("float_bi").forward_layer) is tf.keras.layers.GRU


def test_a_binary_gru_that_cannot_be_bitpacked_is_reported_inside_the_wrapper():
    inputs = tf.keras.Input((STEPS, FEATURES))
    x = tf.keras.layers.Bidirectional(BinaryGRU(8, kernel_quantizer=None), name="bi")(inputs)
    result = rewrite_for_lce(tf.keras.Model(inputs, x))
    assert result.bitpackable == []
    reasons = {entry.name: entry.reason for entry in result.not_bitpacked}
    assert any("kernel quantizer None is not binary" in reason for reason in reasons.values()), reasons


def test_a_wrapper_without_a_rewrite_is_named():
    inputs = tf.keras.Input((STEPS, FEATURES))
    dense = lq.layers.QuantDense(8, input_quantizer="ste_sign", kernel_quantizer="ste_sign")
    x = tf.keras.layers.TimeDistributed(dense, name="time_distributed")(inputs)
    result = rewrite_for_lce(tf.keras.Model(inputs, x))
    [entry] = result.not_bitpacked
    assert entry.name.startswith("time_distributed/") and "cannot enter" in entry.reason
