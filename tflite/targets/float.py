"""The ``"float"`` target: the model as stock TFLite float ops (``tf.lite.TFLiteConverter``), the reference.

Binary layers stay float ops on ±1 values (nothing is bitpacked or quantized), so the file runs in any TFLite
runtime with XNNPACK's float kernels: the baseline that the ``"lce"`` and ``"int8"`` files are measured against.
TFLite's converter folds a BatchNorm into the convolution's float weights, so a pre-activation that is exactly 0 in
Keras (a tie: common with untrained BatchNorm statistics) can come out as a ±1e-7 residue and flip the next sign;
the ``"lce"`` and ``"int8"`` files compute ties exactly.

Example:
    >>> import keras_bnn, keras_bnn.tflite, larq, tensorflow as tf
    >>> inputs = tf.keras.Input((16,))
    >>> outputs = larq.layers.QuantDense(4, input_quantizer="ste_sign", kernel_quantizer="ste_sign")(inputs)
    >>> flatbuffer = keras_bnn.tflite.convert(tf.keras.Model(inputs, outputs), kernels="float", batch_size=1)
    >>> sorted(keras_bnn.tflite.inspect(flatbuffer).op_counts)
    ['ADD', 'FULLY_CONNECTED', 'SIGN']
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from keras_bnn.tflite.targets import Target, TargetOutput, register_target

__all__ = ["FloatTarget"]


class FloatTarget(Target):
    """Options: ``inference_input_type`` / ``inference_output_type`` (``tf.float32`` only)."""

    name = "float"

    def validate(self, model: tf.keras.Model, options: dict[str, Any]) -> None:
        unknown = sorted(set(options) - {"inference_input_type", "inference_output_type"})
        if unknown:
            raise TypeError(f"convert(kernels='float') got unknown option(s) {', '.join(map(repr, unknown))}")
        for side in ("inference_input_type", "inference_output_type"):
            if options.get(side, tf.float32) != tf.float32:
                raise ValueError(f"kernels='float' makes a float32 file: {side} must be tf.float32")

    def convert(self, model: tf.keras.Model, *, strict: bool, batch_size: int | None,
                options: dict[str, Any]) -> TargetOutput:
        batch = batch_size or model.inputs[0].shape[0] or 1
        # The file's signature keeps the Keras names (inputs by Input layer, outputs by output layer), so runtimes
        # can feed and read it by name, as they do LCE's files.
        specs = [tf.TensorSpec((batch, *tensor.shape[1:]), tensor.dtype, name=name)
                 for tensor, name in zip(model.inputs, model.input_names)]

        def function(*inputs):
            outputs = model(list(inputs) if len(inputs) > 1 else inputs[0], training=False)
            outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
            return dict(zip(model.output_names, outputs))

        concrete = tf.function(function).get_concrete_function(*specs)
        flatbuffer = tf.lite.TFLiteConverter.from_concrete_functions([concrete], model).convert()
        return TargetOutput(flatbuffer, [], None)


register_target(FloatTarget())
