"""Pieces shared by the zoo's model definitions: inputs, quantizer settings, the float twin, heads, licenses.

Each function that makes layers takes the `Kit` (``keras_bnn.zoo.models._kit``) to make them with, so one
definition builds a Keras 3 model and a tf-keras one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keras_bnn.zoo.models._kit import Kit

__all__ = [
    "BN_MOMENTUM",
    "FASHION_MNIST_LICENSE",
    "IMAGENET_SHAPE",
    "IMAGENET_STAGES",
    "MNIST_LICENSE",
    "MNIST_SHAPE",
    "PIXELS",
    "batch_norm",
    "check_head_args",
    "check_positive_int",
    "finish",
    "imagenet_head",
    "imagenet_stem",
    "license_text",
    "model_input",
    "quant_dense",
    "quant_kwargs",
    "real_classifier",
    "real_stem",
    "rescale",
    "softmax",
    "token_input",
]

MNIST_SHAPE = (28, 28, 1)
PIXELS = "float32 pixel values 0..255, shape (28, 28, 1); the model's own Rescaling layer maps them to [-1, 1]"
MNIST_LICENSE = "MNIST, CC BY-SA 3.0 (LeCun & Cortes)"
FASHION_MNIST_LICENSE = "Fashion-MNIST, MIT (Zalando SE)"


def license_text(data: str) -> str:
    """The license line of weights trained here on `data`."""
    return f"Apache-2.0 (weights); data: {data}"


def check_positive_int(name: str, value: Any, *, allow_none: bool = False) -> int | None:
    """`value` as an int; ValueError unless it is a positive integer (or None, with `allow_none`)."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer{' or None' if allow_none else ''}, got {value!r}.")
    return int(value)


def rescale(kit: Kit, x: Any) -> Any:
    """0..255 pixels to [-1, 1], inside the model (the preprocessing travels with it, also into a flatbuffer)."""
    return kit.keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(x)


# Momentum 0.9 instead of Keras' 0.99: with few epochs the moving statistics of a binary network otherwise
# lag the fast-changing batch statistics, and inference-mode accuracy collapses.
BN_MOMENTUM = 0.9


def batch_norm(kit: Kit, name: str) -> Any:
    """A BatchNormalization with the zoo's momentum (`BN_MOMENTUM`)."""
    return kit.keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=name)


def quant_kwargs(kit: Kit, binary: bool, input_quantizer: Any, kernel_quantizer: Any) -> dict[str, Any]:
    """Quantizer arguments of a binary layer, or those of its float twin when `binary` is False.

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
        "input_quantizer": kit.hard_tanh if input_quantizer is not None else None,
        "kernel_quantizer": None,
        "kernel_constraint": None,
    }


def model_input(kit: Kit, input_shape: tuple[int, ...], batch_size: int | None, *, min_rank: int) -> Any:
    """A Keras Input, after checking the shape and batch size."""
    if not isinstance(input_shape, (tuple, list)) or not all(
        isinstance(d, int) and d > 0 for d in input_shape
    ):
        raise ValueError(f"input_shape must be a tuple of positive ints (no batch dimension), got {input_shape!r}.")
    if len(input_shape) < min_rank:
        raise ValueError(f"input_shape must have at least {min_rank} dimensions, got {tuple(input_shape)!r}.")
    check_positive_int("batch_size", batch_size, allow_none=True)
    return kit.keras.Input(tuple(input_shape), batch_size=batch_size, name="image")


def check_head_args(num_classes: int, include_top: bool) -> None:
    """Raise TypeError/ValueError for a bad `num_classes` or `include_top`."""
    if not isinstance(include_top, bool):
        raise TypeError(f"include_top must be a bool, got {include_top!r}.")
    check_positive_int("num_classes", num_classes)


def finish(kit: Kit, inputs: Any, outputs: Any, name: str) -> Any:
    """The Functional model from `inputs` to `outputs`, named after the registry name."""
    return kit.keras.Model(inputs, outputs, name=name.replace(".", "_"))


def softmax(kit: Kit, x: Any) -> Any:
    """The classifier's output activation (float32 probabilities)."""
    return kit.keras.layers.Activation("softmax", dtype="float32", name="predictions")(x)


def quant_dense(kit: Kit, units: int, binary: bool, input_quantizer: Any, name: str) -> Any:
    """A bias-free QuantDense with sign-binarized weights (BinaryNet), or its float twin."""
    return kit.QuantDense(units, use_bias=False, name=name, **quant_kwargs(kit, binary, input_quantizer, "ste_sign"))


def token_input(kit: Kit, input_shape: tuple[int | None, ...], batch_size: int | None, *,
                max_length: int | None = None) -> Any:
    """An int32 Keras Input of token ids `(batch, length)`, after checking the shape and batch size.

    Args:
        kit: The Keras pieces to build with.
        input_shape: `(length,)`; `length` a positive int or None (any length).
        batch_size: Fixed batch size, or None.
        max_length: Longest length the model supports, or None.

    Raises:
        ValueError: a bad shape, a length over `max_length`, or a bad batch size.
    """
    if (not isinstance(input_shape, (tuple, list)) or len(input_shape) != 1
            or not (input_shape[0] is None or (isinstance(input_shape[0], int) and input_shape[0] > 0))):
        raise ValueError(f"input_shape must be (length,) with length a positive int or None (token ids), got "
                         f"{input_shape!r}.")
    if max_length is not None and input_shape[0] is not None and input_shape[0] > max_length:
        raise ValueError(f"input_shape {tuple(input_shape)!r} is longer than the {max_length} positions this "
                         "model has.")
    check_positive_int("batch_size", batch_size, allow_none=True)
    return kit.keras.Input(tuple(input_shape), batch_size=batch_size, dtype="int32", name="token_ids")


def real_stem(kit: Kit, x: Any, filters: int) -> Any:
    """Real 3x3 convolution + BatchNorm + 2x2 max-pooling (binary networks keep the first layer real)."""
    x = kit.keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name="stem_conv")(x)
    return kit.keras.layers.MaxPooling2D(2, name="stem_pool")(batch_norm(kit, "stem_bn")(x))


def real_classifier(kit: Kit, x: Any, num_classes: int) -> Any:
    """Flatten + real dense classifier + softmax (the last layer stays real, as in XNOR-Net and Bi-Real Net).

    Flatten rather than global pooling: on 28x28 images where a feature sits matters.
    """
    x = kit.keras.layers.Flatten(name="flatten")(x)
    return softmax(kit, kit.keras.layers.Dense(num_classes, name="logits")(x))


IMAGENET_SHAPE = (224, 224, 3)
IMAGENET_STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))


def imagenet_stem(kit: Kit, inputs: Any) -> Any:
    """ResNet-18's stem: real 7x7/2 convolution + BatchNorm + ReLU + 3x3/2 max-pooling."""
    layers = kit.keras.layers
    x = layers.Conv2D(64, 7, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = layers.Activation("relu", name="stem_relu")(batch_norm(kit, "stem_bn")(x))
    return layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)


def imagenet_head(kit: Kit, x: Any, num_classes: int) -> Any:
    """Global average pooling + real classifier + softmax."""
    x = kit.keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return softmax(kit, kit.keras.layers.Dense(num_classes, name="logits")(x))
