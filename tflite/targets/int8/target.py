"""The ``"int8"`` target: ``keras_bnn.tflite.convert(model, kernels="int8", representative_data=x)``.

A flatbuffer of TFLite builtin int8 ops only (no custom op, no Select TF op), for stock LiteRT, ``tf.lite``,
TFLite Micro and int8 accelerators; binary layers exact (:func:`~keras_bnn.tflite.targets.int8.convert_int8`).
A layer without an exact lowering is an error naming it (never a silently float layer), with or without
``strict``.

Example:
    >>> import keras_bnn, keras_bnn.tflite, larq, numpy as np, tensorflow as tf
    >>> inputs = tf.keras.Input((28, 28, 1), batch_size=1)
    >>> x = larq.layers.QuantConv2D(8, 3, input_quantizer="ste_sign", kernel_quantizer="ste_sign")(inputs)
    >>> model = tf.keras.Model(inputs, tf.keras.layers.Flatten()(x))
    >>> pixels = np.random.default_rng(0).integers(0, 256, (16, 28, 28, 1)).astype(np.float32)
    >>> result = keras_bnn.tflite.convert(model, kernels="int8", representative_data=pixels, report=True)
    >>> sorted(result.report.op_counts), keras_bnn.tflite.inspect(result.flatbuffer).macs["bitpacked"]
    (['CONV_2D', 'DEPTHWISE_CONV_2D', 'DEQUANTIZE', 'QUANTIZE', 'RESHAPE'], 0)
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from keras_bnn.tflite.targets import Target, TargetOutput, register_target
from keras_bnn.tflite.targets.int8.converter import convert_int8

__all__ = ["Int8Target"]

OPTIONS = ("representative_data", "inference_input_type", "inference_output_type", "weight_digits", "head")


class Int8Target(Target):
    """Options: ``representative_data`` (required: model inputs that calibrate the real-valued tensors; integer
    pixels make the int8 input exact), ``inference_input_type`` / ``inference_output_type`` (``tf.float32`` or
    ``tf.int8``), ``weight_digits``, ``head`` (``"int8"`` or ``"float"``), as :func:`convert_int8` describes."""

    name = "int8"

    def validate(self, model: tf.keras.Model, options: dict[str, Any]) -> None:
        unknown = sorted(set(options) - set(OPTIONS))
        if unknown:
            raise TypeError(f"convert(kernels='int8') got unknown option(s) {', '.join(map(repr, unknown))}; it "
                            f"accepts {', '.join(OPTIONS)}")
        if options.get("representative_data") is None:
            raise ValueError("convert(kernels='int8') needs representative_data: model inputs (N, ...) that "
                             "calibrate its real-valued tensors (raw integer pixels keep the input exact)")

    def convert(self, model: tf.keras.Model, *, strict: bool, batch_size: int | None,
                options: dict[str, Any]) -> TargetOutput:
        from keras_bnn.tflite.inspection import inspect

        flatbuffer = convert_int8(model, batch_size=batch_size, **options)
        binary = inspect(flatbuffer).macs["unpacked_binary"]
        return TargetOutput(flatbuffer, [], int(binary > 0))


register_target(Int8Target())
