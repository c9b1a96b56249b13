"""BinaryGRU conversion: the registered rewrite (conv2d form, Keras level) and LCE flatbuffers in both unroll
modes, checked with inspect (LceBconv2d in the WHILE body, no float matmul fed by binary inputs) and verify."""

import warnings

import numpy as np
import pytest
import tensorflow as tf

from keras_bnn.legacy.layers.recurrent import BinaryGRU
from keras_bnn.tflite.forms import BinaryGRUAsConv2D, BinaryGRUCellAsConv2D
from keras_bnn.tflite import convert, inspect, rewrite_for_lce, verify


def _randomize(model, seed=0):
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.normal(scale=0.5, size=weight.shape).astype(np.float32))


REWRITE_CASES = {
    "reset_after": dict(layer=dict(return_sequences=True)),
    "reset_before_state": dict(layer=dict(reset_after=False, return_state=True)),
    "backwards_masked": dict(layer=dict(go_backwards=True, return_sequences=True), mask=True),
    "time_major_unroll": dict(layer=dict(time_major=True, unroll=True, reset_after=False)),
    "stateful": dict(layer=dict(stateful=True, return_sequences=True), batch=3),
    "real_input": dict(layer=dict(input_quantizer=None, return_sequences=True)),
}


@pytest.mark.parametrize("name", sorted(REWRITE_CASES))
def test_rewrite_gives_the_conv2d_form_with_the_same_outputs(name):
    case = REWRITE_CASES[name]
    options = case["layer"]
    shape = (5, 3, 8) if options.get("time_major") else (3, 5, 8)
    inputs = tf.keras.Input(batch_shape=shape if options.get("time_major") else (case.get("batch"), *shape[1:]))
    x = tf.keras.layers.Masking(0.0)(inputs) if case.get("mask") else inputs
    outputs = BinaryGRU(16, name="gru", **options)(x)
    model = tf.keras.Model(inputs, outputs)
    _randomize(model)
    data = np.random.default_rng(1).normal(size=shape).astype(np.float32)
    if case.get("mask"):
        data[1, 3:] = 0.0
    result = rewrite_for_lce(model)
    rewritten = result.model.get_layer("gru")
    assert isinstance(rewritten, BinaryGRUAsConv2D) and isinstance(rewritten.cell, BinaryGRUCellAsConv2D)
    assert type(model.get_layer("gru")) is BinaryGRU  # the user's model is untouched
    assert result.not_bitpacked == []
    expected_convs = 1 if options.get("input_quantizer", "ste_sign") is None else 2
    expected_convs += 0 if options.get("reset_after", True) else 1
    assert len(result.bitpackable) == expected_convs
    assert all(entry.name.startswith("gru/") for entry in result.bitpackable), result.bitpackable
    for got, want in zip(tf.nest.flatten(result.model(data)), tf.nest.flatten(model(data))):
        np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5)


def test_audit_names_binary_gru_that_stays_float():
    inputs = tf.keras.Input((4, 8))
    x = BinaryGRU(8, kernel_quantizer=None, return_sequences=True, name="float_kernel")(inputs)
    x = BinaryGRU(8, input_quantizer=None, recurrent_input_quantizer=None, name="real_inputs")(x)
    result = rewrite_for_lce(tf.keras.Model(inputs, x))
    reasons = {entry.name: entry.reason for entry in result.not_bitpacked}
    assert "kernel quantizer None is not binary" in reasons["float_kernel"]
    assert not any(name.startswith("real_inputs") for name in reasons)  # no binary input: nothing to bitpack
    assert type(result.model.get_layer("real_inputs")) is BinaryGRU


def _body_ops(report):
    return [sub for sub in report.subgraphs if sub.role == "while_body"]


@pytest.mark.parametrize("unroll, reset_after", [(False, True), (True, False)])
def test_lce_bitpacks_both_matmuls_and_matches_keras(unroll, reset_after):
    batch, steps, features, units = 2, 6, 40, 32
    inputs = tf.keras.Input((steps, features), batch_size=batch)
    x = BinaryGRU(units, return_sequences=True, unroll=unroll, reset_after=reset_after)(inputs)
    x = BinaryGRU(units, unroll=unroll, reset_after=reset_after)(x)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(5)(x))
    _randomize(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a binary layer left in float would warn
        flatbuffer = convert(model, strict=True)
    report = inspect(flatbuffer)
    assert report.macs["unpacked_binary"] == 0 and report.bitpacked_share == 1.0
    assert report.op_counts["FULLY_CONNECTED"] == 1  # the real Dense head only
    bodies = _body_ops(report)
    if unroll:
        assert bodies == [] and report.op_counts["LceBconv2d"] >= 2 * steps
    else:
        assert len(bodies) == 2
        for body in bodies:  # the recurrent matmul runs bitpacked inside the loop, counted per iteration
            assert body.op_counts.get("LceBconv2d") == 1 and "FULLY_CONNECTED" not in body.op_counts
            assert body.macs["bitpacked"] == batch * units * 3 * units
    data = np.random.default_rng(2).normal(size=(6, steps, features)).astype(np.float32)
    verification = verify(model, flatbuffer, data)
    assert verification.max_abs_diff < 1e-4 * max(1.0, verification.max_abs_keras)
