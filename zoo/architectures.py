"""The zoo's small models, sized for MNIST and Fashion-MNIST and trained here (see `keras_bnn.zoo.training`).

Every entry point takes `input_shape`, `num_classes`, `include_top`, `batch_size` and `binary` (False builds
the float twin: the same layers with no quantizers, sign() replaced by `hard_tanh`). Models take raw pixel
values (0..255, float) and rescale them to [-1, 1] themselves, so the preprocessing travels with the model
(also into a converted flatbuffer). With `include_top=False` the model ends at its `feature_layer` (see the
registry) and has no classifier.

Example:
    >>> import keras_bnn
    >>> model = keras_bnn.zoo.get("binary_cnn.mnist")
    >>> model.output_shape
    (None, 10)
"""

from __future__ import annotations

import larq
import tensorflow as tf

from keras_bnn.layers import BiRealConv2D, XNORConv2D
from keras_bnn.zoo._building import (
    BN_MOMENTUM,
    check_head_args,
    finish,
    model_input,
    quant_dense,
    quant_kwargs,
    softmax,
)
from keras_bnn.zoo._registry import register_model

__all__ = ["binarynet_mlp_mnist", "binary_cnn_mnist", "birealnet_small_fashion_mnist", "xnornet_small_fashion_mnist"]

_MNIST_SHAPE = (28, 28, 1)


def _rescale(x: tf.Tensor) -> tf.Tensor:
    """0..255 pixels to [-1, 1]."""
    return tf.keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(x)


def _bn(name: str, scale: bool = True) -> tf.keras.layers.BatchNormalization:
    return tf.keras.layers.BatchNormalization(momentum=BN_MOMENTUM, scale=scale, name=name)


@register_model(
    "binarynet_mlp.mnist",
    input_shape=_MNIST_SHAPE,
    num_classes=10,
    dataset="mnist",
    feature_layer="bn3",
    summary=(
        "BinaryNet MLP 784-2048x3-10: four bias-free dense layers with sign-binarized weights, BatchNorm "
        "after each, sign activations between them. The first layer has binary weights and a real input "
        "(pixels in [-1, 1]), as in BinaryNet's MNIST MLP, which keeps the 8-bit input."
    ),
    paper="Courbariaux, Hubara, Soudry, El-Yaniv, Bengio, 'Binarized Neural Networks', NeurIPS 2016",
)
def binarynet_mlp_mnist(
    *,
    input_shape: tuple[int, ...] = _MNIST_SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    batch_size: int | None = None,
    binary: bool = True,
) -> tf.keras.Model:
    """BinaryNet's MNIST MLP (784-2048x3-10)."""
    check_head_args(num_classes, include_top)
    inputs = model_input(input_shape, batch_size, min_rank=1)
    x = tf.keras.layers.Flatten(name="flatten")(_rescale(inputs))
    for index in range(1, 4):
        x = quant_dense(2048, binary, None if index == 1 else "ste_sign", name=f"dense{index}")(x)
        x = _bn(f"bn{index}")(x)
    if include_top:
        x = quant_dense(num_classes, binary, "ste_sign", name="logits_dense")(x)
        x = softmax(_bn("logits_bn")(x))
    return finish(inputs, x, "binarynet_mlp.mnist")


@register_model(
    "binary_cnn.mnist",
    input_shape=_MNIST_SHAPE,
    num_classes=10,
    dataset="mnist",
    feature_layer="bn4",
    summary=(
        "A small binary CNN (larq-style): three 3x3 QuantConv2D (64-64-128 filters, SAME padding with +1) "
        "each followed by 2x2 max-pooling and BatchNorm, then binary dense 256 and a binary dense classifier. "
        "Weights are sign-binarized everywhere; activations are binarized (ste_sign) everywhere except the "
        "first convolution's input (the pixels)."
    ),
    paper="Courbariaux et al., 'Binarized Neural Networks', NeurIPS 2016 (architecture: larq's MNIST example)",
)
def binary_cnn_mnist(
    *,
    input_shape: tuple[int, ...] = _MNIST_SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    batch_size: int | None = None,
    binary: bool = True,
) -> tf.keras.Model:
    """A small binary CNN for MNIST."""
    check_head_args(num_classes, include_top)
    inputs = model_input(input_shape, batch_size, min_rank=3)
    x = _rescale(inputs)
    for index, filters in enumerate((64, 64, 128), start=1):
        x = larq.layers.QuantConv2D(
            filters,
            3,
            padding="same",
            pad_values=0.0 if index == 1 else 1.0,
            use_bias=False,
            name=f"conv{index}",
            **quant_kwargs(binary, None if index == 1 else "ste_sign", "ste_sign"),
        )(x)
        x = tf.keras.layers.MaxPooling2D(2, name=f"pool{index}")(x)
        x = _bn(f"bn{index}")(x)
    x = tf.keras.layers.Flatten(name="flatten")(x)
    x = quant_dense(256, binary, "ste_sign", name="dense4")(x)
    x = _bn("bn4")(x)
    if include_top:
        x = quant_dense(num_classes, binary, "ste_sign", name="logits_dense")(x)
        x = softmax(_bn("logits_bn")(x))
    return finish(inputs, x, "binary_cnn.mnist")


def _real_stem(x: tf.Tensor, filters: int) -> tf.Tensor:
    """Real-valued 3x3 convolution + BatchNorm + 2x2 max-pooling (binary networks keep the first layer real)."""
    x = tf.keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name="stem_conv")(x)
    x = tf.keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name="stem_bn")(x)
    return tf.keras.layers.MaxPooling2D(2, name="stem_pool")(x)


def _real_classifier(x: tf.Tensor, num_classes: int) -> tf.Tensor:
    """Flatten + real dense classifier + softmax (the last layer stays real, as in XNOR-Net and Bi-Real Net).

    Flatten rather than global pooling: on 28x28 images where a feature sits matters.
    """
    x = tf.keras.layers.Flatten(name="flatten")(x)
    x = tf.keras.layers.Dense(num_classes, name="logits")(x)
    return softmax(x)


@register_model(
    "birealnet_small.fashion_mnist",
    input_shape=_MNIST_SHAPE,
    num_classes=10,
    dataset="fashion_mnist",
    feature_layer="block4",
    summary=(
        "A small Bi-Real Net: real 3x3 stem (48) + BatchNorm + max-pool to 14x14, then four BiRealConv2D "
        "blocks (48, 48, 96 with stride 2, 96), each binary 3x3 conv (ApproxSign activations, "
        "magnitude-aware sign weights) + BatchNorm + real shortcut; flatten and a real dense classifier."
    ),
    paper="Liu et al., 'Bi-Real Net: Enhancing the Performance of 1-bit CNNs', ECCV 2018",
)
def birealnet_small_fashion_mnist(
    *,
    input_shape: tuple[int, ...] = _MNIST_SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    batch_size: int | None = None,
    binary: bool = True,
) -> tf.keras.Model:
    """A four-block Bi-Real Net for 28x28 images."""
    check_head_args(num_classes, include_top)
    inputs = model_input(input_shape, batch_size, min_rank=3)
    x = _real_stem(_rescale(inputs), 48)
    for index, (filters, strides) in enumerate(((48, 1), (48, 1), (96, 2), (96, 1)), start=1):
        x = BiRealConv2D(
            filters,
            strides=strides,
            momentum=BN_MOMENTUM,
            name=f"block{index}",
            **quant_kwargs(binary, "approx_sign", "magnitude_aware_sign"),
        )(x)
    if include_top:
        x = _real_classifier(x, num_classes)
    return finish(inputs, x, "birealnet_small.fashion_mnist")


@register_model(
    "xnornet_small.fashion_mnist",
    input_shape=_MNIST_SHAPE,
    num_classes=10,
    dataset="fashion_mnist",
    feature_layer="bn2",
    summary=(
        "A small XNOR-Net: real 3x3 stem (32) + BatchNorm + max-pool to 14x14, then two XNORConv2D layers "
        "(64 and 128 filters, 3x3, SAME padding with +1; sign activations, weights sign(W)·mean|W| per "
        "output channel), each followed by 2x2 max-pooling and BatchNorm; flatten and a real dense "
        "classifier."
    ),
    paper="Rastegari et al., 'XNOR-Net: ImageNet Classification Using Binary CNNs', ECCV 2016",
)
def xnornet_small_fashion_mnist(
    *,
    input_shape: tuple[int, ...] = _MNIST_SHAPE,
    num_classes: int = 10,
    include_top: bool = True,
    batch_size: int | None = None,
    binary: bool = True,
) -> tf.keras.Model:
    """A two-layer XNOR-Net for 28x28 images."""
    check_head_args(num_classes, include_top)
    inputs = model_input(input_shape, batch_size, min_rank=3)
    x = _real_stem(_rescale(inputs), 32)
    for index, filters in enumerate((64, 128), start=1):
        x = XNORConv2D(
            filters,
            3,
            padding="same",
            name=f"xnor_conv{index}",
            **quant_kwargs(binary, "ste_sign", "magnitude_aware_sign"),
        )(x)
        x = tf.keras.layers.MaxPooling2D(2, name=f"pool{index}")(x)
        x = _bn(f"bn{index}")(x)
    if include_top:
        x = _real_classifier(x, num_classes)
    return finish(inputs, x, "xnornet_small.fashion_mnist")
