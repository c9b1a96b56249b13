"""The one flatbuffer reader: bad bytes are a ValueError that says what they are, before any interpreter."""

import json
import pathlib
import subprocess
import sys

import larq as lq
import pytest
import tensorflow as tf

import keras_bnn.tflite
from keras_bnn.tflite.flatbuffer import read_flatbuffer

SCRIPT = pathlib.Path(__file__).with_name("bad_bytes_check.py")


def _flatbuffer() -> bytes:
    inputs = tf.keras.Input((8, 8, 32), batch_size=1)
    outputs = lq.layers.QuantConv2D(8, 3, input_quantizer="ste_sign", kernel_quantizer="ste_sign")(inputs)
    return keras_bnn.tflite.convert(tf.keras.Model(inputs, outputs))


def test_a_good_flatbuffer_is_read_with_its_ops_and_signature():
    flatbuffer = read_flatbuffer(_flatbuffer())
    assert "LceBconv2d" in flatbuffer.op_types() and flatbuffer.custom_op_types() >= {"LceBconv2d", "LceQuantize"}
    inputs, outputs = flatbuffer.signature()
    assert len(inputs) == 1 and len(outputs) == 1


@pytest.mark.parametrize("data, message", [
    (b"", r"\(0 bytes\) are not a TFLite flatbuffer: expected the file identifier b'TFL3' at bytes 4..8, empty"),
    (b"PK\x03\x04 a zip file", r"expected the file identifier b'TFL3' at bytes 4..8, found b' a z'"),
    (b"\xff\xff\xff\x7fTFL3" + b"\x00" * 8, r"root table offset 2147483647 points outside the bytes"),
])
def test_bad_bytes_name_what_they_are(data, message):
    with pytest.raises(ValueError, match=message):
        read_flatbuffer(data)


def test_a_truncated_flatbuffer_and_an_index_out_of_range_are_refused():
    good = _flatbuffer()
    with pytest.raises(ValueError, match="truncated or corrupted"):
        read_flatbuffer(good[: len(good) // 2])
    schema = keras_bnn._compat.tflite_schema()
    model = schema.ModelT.InitFromPackedBuf(good, 0)
    op = model.subgraphs[0].operators[0]
    op.inputs = [999, *list(op.inputs)[1:]]  # an op reading a tensor that does not exist
    import flatbuffers

    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    with pytest.raises(ValueError, match="uses tensor 999"):
        read_flatbuffer(bytes(builder.Output()))


def test_bad_bytes_never_crash_any_entry_point(tmp_path):
    """Truncated, random, empty and wrong-identifier bytes through verify, inspect, the stepper, the runtime and
    the command line, 20 rounds (new random cuts and bytes each): a clean exit and the message every time."""
    good = tmp_path / "good.tflite"
    good.write_bytes(_flatbuffer())
    run = subprocess.run([sys.executable, str(SCRIPT), str(good), "20", "0"], capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["cases"] == 20 * 5 * 4 + 5 and result["failures"] == []
