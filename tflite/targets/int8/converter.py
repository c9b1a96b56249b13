"""convert_int8: a Keras BNN to a TFLite flatbuffer of builtin int8 ops whose binary layers are exact.

Example:
    >>> import keras_bnn, larq, numpy as np, tensorflow as tf
    >>> from keras_bnn.tflite.targets.int8 import convert_int8
    >>> inputs = tf.keras.Input((16,))
    >>> binary = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign")
    >>> outputs = larq.quantizers.SteSign()(larq.layers.QuantDense(8, **binary)(inputs))
    >>> model = tf.keras.Model(inputs, outputs)
    >>> flatbuffer = convert_int8(model, representative_data=np.random.randn(32, 16))
    >>> flatbuffer[4:8]
    b'TFL3'
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from keras_bnn._compat import is_graph_model
from keras_bnn.tflite.targets.int8 import rules_core, rules_larq  # noqa: F401 (registers the lowering rules)
from keras_bnn.tflite.targets.int8.calibration import Calibrator
from keras_bnn.tflite.targets.int8.writer import to_flatbuffer
from keras_bnn.tflite.targets.int8.lowering import lower_model

__all__ = ["convert_int8"]

_TYPES = (tf.float32, tf.int8)


def _check(model, data, batch_size, input_type, output_type) -> tuple[np.ndarray, int]:
    if not isinstance(model, tf.keras.Model) or not is_graph_model(model):
        raise TypeError(f"convert_int8 needs a Functional or Sequential tf.keras.Model, got {type(model).__name__}")
    if len(model.inputs) != 1:
        raise ValueError(f"convert_int8 supports models with one input; {model.name!r} has {len(model.inputs)} "
                         f"({', '.join(t.name for t in model.inputs)})")
    for name, dtype in (("inference_input_type", input_type), ("inference_output_type", output_type)):
        if dtype not in _TYPES:
            raise ValueError(f"{name} must be tf.float32 or tf.int8, got {dtype!r}")
    data = np.asarray(data, np.float32)
    per_sample = tuple(model.inputs[0].shape[1:])
    if data.ndim != len(per_sample) + 1 or tuple(data.shape[1:]) != per_sample or len(data) == 0:
        raise ValueError(f"representative_data must have shape (N, {', '.join(map(str, per_sample))}) with N >= 1, "
                         f"got {data.shape}")
    fixed = model.inputs[0].shape[0]
    if batch_size is None:
        batch_size = fixed or 1
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if fixed is not None and fixed != batch_size:
        raise ValueError(f"the model's input has batch size {fixed}, batch_size={batch_size} was asked")
    return data, batch_size


def convert_int8(
    model: tf.keras.Model,
    *,
    representative_data,
    inference_input_type: tf.DType = tf.float32,
    inference_output_type: tf.DType = tf.float32,
    batch_size: int | None = None,
    weight_digits: int = 1,
    head: str = "int8",
) -> bytes:
    """Lower a Keras BNN to a flatbuffer of TFLite builtin int8 ops (no custom op, no Select TF op).

    Binary layers are exact: each binary conv/dense with its scale, BatchNorm and bias, followed by a sign, is
    one int8 CONV_2D / FULLY_CONNECTED whose int32 accumulator is compared with an exact integer threshold.
    Real-valued tensors (first and last layers, Bi-Real's residual stream) are int8, per-tensor, calibrated on
    `representative_data`; real weights are int8 per output channel.

    Args:
        model: a single-input Functional or Sequential Keras model.
        representative_data: model inputs (N, ...) for calibrating real-valued tensors. Integer data in a
            window of 256 values (raw pixels) make the int8 input exact.
        inference_input_type: ``tf.float32`` (a QUANTIZE op comes first) or ``tf.int8``.
        inference_output_type: ``tf.float32`` (DEQUANTIZE ops at the end) or ``tf.int8``.
        batch_size: the flatbuffer's batch size (default: the model's, else 1).
        weight_digits: real weights feeding a sign on a real input (a real first conv + BatchNorm before the
            first binary layer) are int8 parts of at most 63 each, on that many copies of the input: more digits,
            closer to Keras' signs, at that many times the layer's MACs (1: 7-bit weights).
        head: "int8" (every op int8) or "float": the last dense layer's outputs, and the affine maps and softmax
            after it, in float32 (exact logits for a binary classifier; see :mod:`keras_bnn.tflite.targets.int8.head`).

    Returns:
        The flatbuffer bytes.

    Raises:
        UnsupportedLayerError: a layer has no exact int8 lowering (the message names it and says why).
        TypeError, ValueError: bad arguments.
    """
    data, batch_size = _check(model, representative_data, batch_size, inference_input_type, inference_output_type)
    if head not in ("int8", "float"):
        raise ValueError(f"head must be 'int8' or 'float', got {head!r}")
    if head == "float" and inference_output_type != tf.float32:
        raise ValueError("head='float' computes float32 outputs: inference_output_type must be tf.float32")
    if isinstance(weight_digits, bool) or not isinstance(weight_digits, int) or not 1 <= weight_digits <= 16:
        raise ValueError(f"weight_digits must be an int in [1, 16], got {weight_digits!r}")
    graph = lower_model(model, Calibrator(model, data), batch_size=batch_size, input_type=inference_input_type,
                        output_type=inference_output_type, weight_digits=weight_digits, head=head)
    return to_flatbuffer(graph, description=f"keras_bnn int8: {model.name}")
