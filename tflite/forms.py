"""Inference-only forms of binary layers: each binary matmul as the binary ``QuantConv2D`` that LCE bitpacks.

The conversion rules (``keras_bnn.tflite.rules``) replace layers by these forms in a copy of the model; they compute
the same outputs from the same inputs. They are Keras-serializable (``keras_bnn>ClassName``), so a rewritten model
can be saved and loaded, but they exist for conversion: train the original layers.

* :class:`BinaryDenseAsConv2D`: a dense layer on the last axis as a 1x1 convolution on a ``(B, 1, N, F)`` view;
* :class:`BinaryConv1DAsConv2D`: a 1D convolution as a ``(1, k)`` convolution on ``(B, 1, T, C)``;
* :class:`BinaryGRUCellAsConv2D`, :class:`BinaryGRUAsConv2D`: ``keras_bnn.legacy.layers.BinaryGRU(Cell)`` whose two
  matmuls are 1x1 convolutions; the layer form runs the input matmul once for every step before the loop (one
  ``LceBconv2d`` outside the TFLite WHILE loop, which also keeps a loop's input from being another loop's output,
  a pattern LCE's converter rejects), and the loop keeps the recurrent one.

Example:
    >>> import keras_bnn, larq as lq, tensorflow as tf
    >>> from keras_bnn.tflite.forms import BinaryDenseAsConv2D
    >>> conv = lq.layers.QuantConv2D(10, 1, input_quantizer="ste_sign", kernel_quantizer="ste_sign")
    >>> BinaryDenseAsConv2D(conv)(tf.ones((2, 5, 64))).shape
    TensorShape([2, 5, 10])
"""

from __future__ import annotations

import math
from typing import Any

import larq as lq
import tensorflow as tf

from keras_bnn.legacy.layers.recurrent import BinaryGRU, BinaryGRUCell

__all__ = ["BinaryConv1DAsConv2D", "BinaryDenseAsConv2D", "BinaryGRUAsConv2D", "BinaryGRUCellAsConv2D",
           "conv_matmul"]


def conv_matmul(conv: tf.keras.layers.Layer, inputs: tf.Tensor, scale=None, bias=None) -> tf.Tensor:
    """``scale * (inputs @ W) + bias`` over the last axis, computed by the 1x1 convolution `conv` on a 4D view."""
    features, middle = inputs.shape[-1], inputs.shape[1:-1]
    if middle.is_fully_defined():
        view, out_shape = [-1, 1, max(math.prod(middle), 1), features], [-1, *middle, conv.filters]
    else:
        view, out_shape = [1, 1, -1, features], tf.concat([tf.shape(inputs)[:-1], [conv.filters]], axis=0)
    outputs = conv(tf.reshape(inputs, view))
    if scale is not None:
        outputs = outputs * scale
    if bias is not None:
        outputs = outputs + bias
    return tf.reshape(outputs, out_shape)


class _Conv2DForm(tf.keras.layers.Wrapper):
    """Runs a wrapped ``QuantConv2D`` on a ``(B, 1, N, C)`` view of its input."""

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(tf.TensorShape([None, 1, None, tf.TensorShape(input_shape)[-1]]))
        super().build(input_shape)


@tf.keras.utils.register_keras_serializable(package="keras_bnn")
class BinaryDenseAsConv2D(_Conv2DForm):
    """A dense layer on the last axis computed as a 1x1 ``QuantConv2D`` (the form LCE bitpacks).

    ``(B, ..., F)`` is reshaped to ``(B, 1, N, F)`` (N: the product of the middle axes, 1 for rank 2), the
    wrapped conv (kernel ``(1, 1, F, units)``) applied, and the result reshaped to ``(B, ..., units)``.

    Args:
        layer: a ``larq.layers.QuantConv2D`` with ``kernel_size=1``, strides 1 and ``channels_last``.
        **kwargs: base ``Layer`` arguments (``name``, ...).
    """

    def call(self, inputs):
        return conv_matmul(self.layer, inputs)

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)[:-1].concatenate([self.layer.filters])


@tf.keras.utils.register_keras_serializable(package="keras_bnn")
class BinaryConv1DAsConv2D(_Conv2DForm):
    """A 1D convolution computed as a ``(1, k)`` ``QuantConv2D`` on ``(B, 1, T, C)`` (the form LCE bitpacks).

    Args:
        layer: a ``larq.layers.QuantConv2D`` with kernel, strides and dilation of the form ``(1, x)``.
        **kwargs: base ``Layer`` arguments (``name``, ...).

    Example:
        >>> import keras_bnn, larq as lq, tensorflow as tf
        >>> from keras_bnn.tflite.forms import BinaryConv1DAsConv2D
        >>> conv = lq.layers.QuantConv2D(8, (1, 3), input_quantizer="ste_sign", kernel_quantizer="ste_sign")
        >>> BinaryConv1DAsConv2D(conv)(tf.ones((2, 10, 32))).shape
        TensorShape([2, 8, 8])
    """

    def call(self, inputs):
        return tf.squeeze(self.layer(tf.expand_dims(inputs, 1)), axis=1)

    def compute_output_shape(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        shape = self.layer.compute_output_shape([input_shape[0], 1, *input_shape[1:]])
        return tf.TensorShape([shape[0], *shape[2:]])


@tf.keras.utils.register_keras_serializable(package="keras_bnn")
class BinaryGRUCellAsConv2D(BinaryGRUCell):
    """:class:`~keras_bnn.legacy.layers.BinaryGRUCell` whose matmuls are 1x1 ``QuantConv2D`` layers (inference only).

    Weights: ``kernel_conv/kernel`` ``(1, 1, F, 3 units)``, ``recurrent_kernel_conv/kernel`` (``3 units`` outputs,
    or ``2 units`` with ``reset_after=False`` plus ``recurrent_candidate_conv/kernel``), GRUCell's ``bias`` and the
    gate scales.

    Args:
        inputs_projected: The step input is already ``x_t @ W`` (the layer form projects every step before the
            loop), so the cell skips that matmul.
        **kwargs: :class:`~keras_bnn.legacy.layers.BinaryGRUCell`'s arguments; dropout must be 0.
    """

    def __init__(self, units: int, *, inputs_projected: bool = False, **kwargs: Any):
        if kwargs.get("dropout") or kwargs.get("recurrent_dropout"):
            raise ValueError("BinaryGRUCellAsConv2D is an inference form: dropout and recurrent_dropout must be 0, "
                             f"got {kwargs.get('dropout')!r} and {kwargs.get('recurrent_dropout')!r}")
        self.inputs_projected = bool(inputs_projected)
        super().__init__(units, **kwargs)

    def build_matmuls(self, input_dim: int) -> None:
        def conv(name, filters, input_quantizer, kernel_quantizer, constraint, channels):
            layer = lq.layers.QuantConv2D(filters, 1, input_quantizer=input_quantizer,
                                          kernel_quantizer=kernel_quantizer, kernel_constraint=constraint,
                                          use_bias=False, name=name, dtype=self.dtype)
            layer.build(tf.TensorShape([None, 1, 1, channels]))
            return layer

        units = self.units
        self.kernel_conv = conv("kernel_conv", 3 * units, self.input_quantizer, self.kernel_quantizer,
                                self.kernel_constraint, input_dim)
        recurrent = (self.recurrent_input_quantizer, self.recurrent_kernel_quantizer, self.recurrent_constraint)
        self.recurrent_kernel_conv = conv("recurrent_kernel_conv", (3 if self.reset_after else 2) * units,
                                          *recurrent, units)
        self.recurrent_candidate_conv = None if self.reset_after else conv(
            "recurrent_candidate_conv", units, *recurrent, units)
        self.bias = None
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(2, 3 * units) if self.reset_after else (3 * units,),
                                        initializer=self.bias_initializer, regularizer=self.bias_regularizer,
                                        constraint=self.bias_constraint)

    @property
    def input_dim(self) -> int:
        return int(self.kernel_conv.kernel.shape[2])

    def project_inputs(self, inputs, masks, scale, bias):
        return inputs if self.inputs_projected else super().project_inputs(inputs, masks, scale, bias)

    def project(self, inputs, part: str, masks, scale, bias):
        conv = {"kernel": self.kernel_conv, "recurrent": self.recurrent_kernel_conv,
                "candidate": self.recurrent_candidate_conv}[part]
        return conv_matmul(conv, inputs, scale, bias)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "inputs_projected": self.inputs_projected}


@tf.keras.utils.register_keras_serializable(package="keras_bnn")
class BinaryGRUAsConv2D(BinaryGRU):
    """:class:`~keras_bnn.legacy.layers.BinaryGRU` in the conversion form (inference only): the input matmul of every
    step runs once before the loop, as a 1x1 ``QuantConv2D``; the loop's cell is a
    :class:`BinaryGRUCellAsConv2D` that takes the projected inputs."""

    cell_class = BinaryGRUCellAsConv2D

    def __init__(self, units: int, **kwargs: Any):
        kwargs.pop("inputs_projected", None)
        super().__init__(units, **kwargs)

    def _make_cell_kwargs(self) -> dict[str, Any]:
        return {"inputs_projected": True}

    def call(self, inputs, mask=None, training=None, initial_state=None):
        if isinstance(inputs, list):  # Keras passes [inputs, *initial states] when states are Keras tensors
            inputs, initial_state = inputs[0], (inputs[1:] or None)
        cell = self.cell
        input_bias = None
        if cell.use_bias:
            input_bias = cell.bias[0] if cell.reset_after else cell.bias
        projected = conv_matmul(cell.kernel_conv, inputs, cell.kernel_scale, input_bias)
        return super().call(projected, mask=mask, training=training, initial_state=initial_state)
