"""inspect() on flatbuffers made by the real LCE converter, checked against counts worked out by hand."""

import json

import larq as lq
import larq_compute_engine as lce
import pytest
import tensorflow as tf

from keras_bnn.tflite import FlatbufferReport, inspect

BINARY = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip", use_bias=False)


def _size_identity(report: FlatbufferReport) -> int:
    return (report.ideal_bytes + report.structure_bytes + report.non_tensor_buffer_bytes
            + report.unpacked_binary_excess_bytes + report.bitpack_padding_bytes)


def test_binary_conv_then_binary_dense():
    inputs = tf.keras.Input(batch_size=1, shape=(8, 8, 32))
    x = lq.layers.QuantConv2D(64, 3, padding="valid", **BINARY)(inputs)
    x = tf.keras.layers.Flatten()(x)
    outputs = lq.layers.QuantDense(10, **BINARY)(x)
    flatbuffer = lce.convert_keras_model(tf.keras.Model(inputs, outputs))

    report = inspect(flatbuffer)

    # Conv: bitpacked LceBconv2d after LceQuantize. Dense: LCE re-binarises the flattened activations
    # (LceQuantize -> LceDequantize) and keeps a float FULLY_CONNECTED with +-1 weights.
    assert report.op_counts == {"LceQuantize": 2, "LceBconv2d": 1, "RESHAPE": 1, "LceDequantize": 1,
                                "FULLY_CONNECTED": 1}
    assert report.ops_by_subgraph == {"0 (main)": report.op_counts}
    conv_macs = 6 * 6 * 64 * 3 * 3 * 32
    dense_macs = 6 * 6 * 64 * 10
    assert report.macs == {"bitpacked": conv_macs, "unpacked_binary": dense_macs, "activation_binary": 0,
                           "other": 0}
    assert [(op.op_type, op.macs, op.category) for op in report.op_macs] == [
        ("LceBconv2d", conv_macs, "bitpacked"), ("FULLY_CONNECTED", dense_macs, "unpacked_binary")]
    assert report.bitpacked_share == pytest.approx(conv_macs / (conv_macs + dense_macs))

    conv_weights, dense_weights = 64 * 3 * 3 * 32, 2304 * 10
    assert report.binary_weights == conv_weights + dense_weights
    # 1 bit per binary weight; LceBconv2d's float32 post-activation multiplier and bias (64 each); the int32
    # target shape [1, 2304] of Flatten's RESHAPE.
    assert report.ideal_bytes == conv_weights // 8 + dense_weights // 8 + 2 * 64 * 4 + 2 * 4
    assert report.unpacked_binary_excess_bytes == dense_weights * 4 - dense_weights // 8
    assert report.bitpack_padding_bytes == 0  # 32 input channels fill one int32 word exactly
    assert report.flatbuffer_bytes == len(flatbuffer) == _size_identity(report)
    assert report.size_ratio == pytest.approx(len(flatbuffer) / report.ideal_bytes)

    text = str(report)
    assert "LceBconv2d" in text and f"{report.bitpacked_share:.2%}" in text
    assert json.loads(json.dumps(report.to_dict()))["macs"]["bitpacked"] == conv_macs


def test_bitpacking_padding_and_path_input(tmp_path):
    inputs = tf.keras.Input(batch_size=1, shape=(6, 6, 8))
    outputs = lq.layers.QuantConv2D(16, 3, **BINARY)(inputs)
    path = tmp_path / "model.tflite"
    path.write_bytes(lce.convert_keras_model(tf.keras.Model(inputs, outputs)))

    report = inspect(path)

    assert report.macs["bitpacked"] == 4 * 4 * 16 * 3 * 3 * 8
    assert report.binary_weights == 16 * 3 * 3 * 8
    # 8 channels are packed into a 32-bit word: 24 padding bits per (output channel, kernel position).
    assert report.bitpack_padding_bytes == 16 * 3 * 3 * (32 - 8) // 8
    assert report.flatbuffer_bytes == _size_identity(report)


def test_float_model_reports_no_binary_macs():
    inputs = tf.keras.Input(batch_size=1, shape=(6, 6, 2))
    x = tf.keras.layers.Conv2D(4, 3)(inputs)
    x = tf.keras.layers.Flatten()(x)
    outputs = tf.keras.layers.Dense(3)(x)

    report = inspect(lce.convert_keras_model(tf.keras.Model(inputs, outputs)))

    assert report.bitpacked_share is None
    assert report.binary_weights == 0 and report.unpacked_binary_excess_bytes == 0
    assert report.macs == {"bitpacked": 0, "unpacked_binary": 0, "activation_binary": 0,
                           "other": 4 * 4 * 4 * 3 * 3 * 2 + 64 * 3}
    assert "no binary MACs" in str(report)
    assert report.flatbuffer_bytes == _size_identity(report)


def test_activation_times_activation_is_its_own_category():
    inputs = tf.keras.Input(batch_size=1, shape=(5, 16))
    signs = lq.quantizers.SteSign()(inputs)
    outputs = tf.keras.layers.Lambda(lambda t: tf.matmul(t, t, transpose_b=True))(signs)

    report = inspect(lce.convert_keras_model(tf.keras.Model(inputs, outputs)))

    assert report.macs["activation_binary"] == 5 * 5 * 16
    assert report.macs["bitpacked"] == report.macs["unpacked_binary"] == 0
    assert report.bitpacked_share is None  # no binary weight x binary activation MACs


class _BinaryLoop(tf.keras.layers.Layer):
    """Three iterations of x <- sign(x) @ sign(W) inside a tf.while_loop."""

    def build(self, input_shape):
        self.kernel = self.add_weight("kernel", (input_shape[-1], input_shape[-1]))

    def call(self, inputs):
        def body(i, x):
            return i + 1, tf.matmul(lq.quantizers.ste_sign(x), lq.quantizers.ste_sign(self.kernel))

        return tf.while_loop(lambda i, x: i < 3, body, (tf.constant(0), inputs))[1]


def test_while_subgraphs_are_labelled_and_counted_per_iteration():
    inputs = tf.keras.Input(batch_size=1, shape=(8,))
    report = inspect(lce.convert_keras_model(tf.keras.Model(inputs, _BinaryLoop()(inputs))))

    roles = {sub.role: sub for sub in report.subgraphs}
    assert set(roles) == {"main", "while_cond", "while_body"}
    assert roles["main"].op_counts == {"WHILE": 1} and not roles["main"].per_iteration
    assert roles["while_cond"].per_iteration and roles["while_body"].per_iteration
    assert roles["while_body"].op_counts["FULLY_CONNECTED"] == 1
    assert roles["while_body"].macs["unpacked_binary"] == 8 * 8  # one iteration, not three
    assert report.macs["unpacked_binary"] == 8 * 8
    assert report.binary_weights == 8 * 8
    assert f"{roles['while_body'].index} (while_body)" in report.ops_by_subgraph
    assert "per iteration" in str(report)


def test_rejects_what_is_not_a_flatbuffer(tmp_path):
    with pytest.raises(ValueError, match="not a TFLite flatbuffer"):
        inspect(b"certainly not a flatbuffer")
    path = tmp_path / "notes.txt"
    path.write_text("hello, world")
    with pytest.raises(ValueError, match="notes.txt.*not a TFLite flatbuffer"):
        inspect(path)
    with pytest.raises(TypeError, match="int"):
        inspect(42)


def test_rejects_a_truncated_flatbuffer():
    inputs = tf.keras.Input(batch_size=1, shape=(4,))
    flatbuffer = lce.convert_keras_model(tf.keras.Model(inputs, tf.keras.layers.Dense(2)(inputs)))
    assert inspect(flatbuffer).macs["other"] == 4 * 2
    with pytest.raises(ValueError, match="truncated or corrupted"):
        inspect(flatbuffer[:100])  # keeps the TFL3 identifier, loses the tables it points to
