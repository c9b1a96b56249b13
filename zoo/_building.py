"""Pieces shared by the zoo's model definitions: inputs, quantizer settings, the float twin, heads."""

from __future__ import annotations

from typing import Any

import larq
import tensorflow as tf

__all__ = [
    "BN_MOMENTUM",
    "hard_tanh",
    "quant_kwargs",
    "model_input",
    "check_head_args",
    "finish",
    "softmax",
    "quant_dense",
]

# Momentum 0.9 instead of Keras' 0.99: with few epochs the moving statistics of a binary network otherwise
# lag the fast-changing batch statistics, and inference-mode accuracy collapses.
BN_MOMENTUM = 0.9


@tf.keras.utils.register_keras_serializable(package="keras_bnn")
def hard_tanh(x: tf.Tensor) -> tf.Tensor:
    """clip(x, -1, 1): the real-valued stand-in for sign() in a float twin (Bi-Real Net's pre-training).

    Example:
        >>> import keras_bnn, tensorflow as tf
        >>> from keras_bnn.zoo._building import hard_tanh
        >>> hard_tanh(tf.constant([-3.0, 0.5, 2.0])).numpy().tolist()
        [-1.0, 0.5, 1.0]
    """
    return tf.clip_by_value(x, -1.0, 1.0)


def quant_kwargs(binary: bool, input_quantizer: Any, kernel_quantizer: Any) -> dict[str, Any]:
    """Quantizer arguments of a larq/keras_bnn layer, or those of its float twin when `binary` is False.

    The float twin has no quantizers and no weight clipping; a binarized input becomes `hard_tanh` of the
    input (a float network needs a non-linearity where the binary one has sign()), a real input stays real.
    """
    if binary:
        return {
            "input_quantizer": input_quantizer,
            "kernel_quantizer": kernel_quantizer,
            "kernel_constraint": "weight_clip",
        }
    return {
        "input_quantizer": hard_tanh if input_quantizer is not None else None,
        "kernel_quantizer": None,
        "kernel_constraint": None,
    }


def model_input(input_shape: tuple[int, ...], batch_size: int | None, *, min_rank: int) -> tf.Tensor:
    """A Keras Input, after checking the shape and batch size."""
    if not isinstance(input_shape, (tuple, list)) or not all(
        isinstance(d, int) and d > 0 for d in input_shape
    ):
        raise ValueError(f"input_shape must be a tuple of positive ints (no batch dimension), got {input_shape!r}.")
    if len(input_shape) < min_rank:
        raise ValueError(f"input_shape must have at least {min_rank} dimensions, got {tuple(input_shape)!r}.")
    if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}.")
    return tf.keras.Input(tuple(input_shape), batch_size=batch_size, name="image")


def check_head_args(num_classes: int, include_top: bool) -> None:
    """Raise TypeError/ValueError for a bad `num_classes` or `include_top`."""
    if not isinstance(include_top, bool):
        raise TypeError(f"include_top must be a bool, got {include_top!r}.")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}.")


def finish(inputs: tf.Tensor, outputs: tf.Tensor, name: str) -> tf.keras.Model:
    """The Functional model from `inputs` to `outputs`, named after the registry name."""
    return tf.keras.Model(inputs, outputs, name=name.replace(".", "_"))


def softmax(x: tf.Tensor) -> tf.Tensor:
    """The classifier's output activation (float32 probabilities)."""
    return tf.keras.layers.Activation("softmax", dtype="float32", name="predictions")(x)


def quant_dense(units: int, binary: bool, input_quantizer: Any, name: str) -> larq.layers.QuantDense:
    """A bias-free QuantDense with sign-binarized weights (BinaryNet), or its float twin."""
    return larq.layers.QuantDense(
        units, use_bias=False, name=name, **quant_kwargs(binary, input_quantizer, "ste_sign")
    )
