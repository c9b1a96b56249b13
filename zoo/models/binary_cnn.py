"""A small binary CNN for MNIST (larq's MNIST example layout): builder and zoo entry.

Example:
    >>> import keras_bnn.zoo as zoo
    >>> zoo.get("binary_cnn.mnist", num_classes=3, batch_size=1).output_shape
    (1, 3)
"""

from __future__ import annotations

from typing import Any

from keras_bnn.zoo.models._building import (
    MNIST_LICENSE,
    MNIST_SHAPE,
    PIXELS,
    batch_norm,
    check_head_args,
    finish,
    license_text,
    model_input,
    quant_dense,
    quant_kwargs,
    rescale,
    softmax,
)
from keras_bnn.zoo.models._kit import kit
from keras_bnn.zoo.registry import Pretrained, ZooEntry, register
from keras_bnn.zoo.training.recipes import ImageRecipe

__all__ = ["binary_cnn"]


def binary_cnn(*, input_shape: tuple[int, ...] = MNIST_SHAPE, num_classes: int = 10, include_top: bool = True,
               batch_size: int | None = None, binary: bool = True, legacy: bool = False) -> Any:
    """Three binary 3x3 convolutions (each + max-pool + BatchNorm), binary dense 256, binary classifier.

    Args:
        input_shape: Image shape, no batch dimension.
        num_classes: Classes of the head.
        include_top: False ends the model at `bn4`.
        batch_size: Fixed batch size, or None.
        binary: False builds the float twin.
        legacy: True builds the tf-keras + larq model (what the converter takes); False the Keras 3 one.
    """
    k = kit(legacy)
    check_head_args(num_classes, include_top)
    inputs = model_input(k, input_shape, batch_size, min_rank=3)
    x = rescale(k, inputs)
    for index, filters in enumerate((64, 64, 128), start=1):
        x = k.QuantConv2D(
            filters, 3, padding="same", pad_values=0.0 if index == 1 else 1.0, use_bias=False, name=f"conv{index}",
            **quant_kwargs(k, binary, None if index == 1 else "ste_sign", "ste_sign"),
        )(x)
        x = k.keras.layers.MaxPooling2D(2, name=f"pool{index}")(x)
        x = batch_norm(k, f"bn{index}")(x)
    x = k.keras.layers.Flatten(name="flatten")(x)
    x = quant_dense(k, 256, binary, "ste_sign", name="dense4")(x)
    x = batch_norm(k, "bn4")(x)
    if include_top:
        x = quant_dense(k, num_classes, binary, "ste_sign", name="logits_dense")(x)
        x = softmax(k, batch_norm(k, "logits_bn")(x))
    return finish(k, inputs, x, "binary_cnn.mnist")


register(ZooEntry(
    name="binary_cnn.mnist",
    builder=binary_cnn,
    task="image_classification",
    dataset="mnist",
    input_shape=MNIST_SHAPE,
    num_classes=10,
    feature_layer="bn4",
    summary=(
        "A small binary CNN (larq-style): three 3x3 QuantConv2D (64-64-128 filters, SAME padding with +1) "
        "each followed by 2x2 max-pooling and BatchNorm, then binary dense 256 and a binary dense classifier. "
        "Weights are sign-binarized everywhere; activations are binarized (ste_sign) everywhere except the "
        "first convolution's input (the pixels)."
    ),
    paper="Courbariaux et al., 'Binarized Neural Networks', NeurIPS 2016 (architecture: larq's MNIST example)",
    pretrained=Pretrained(
        weights_file="binary_cnn.mnist.npz",
        sha256="09754a1f0ac43774d6cac924ad772918b2042e7a70ba58187d31762a98331542",
        size_bytes=69822,
        metric="top1_accuracy",
        scores={"test": 0.9929, "train[90%:]": 0.9915},
        test_split="test",
        test_examples=10000,
        preprocessing=PIXELS,
        flatbuffer_bytes=64768,
        bitpacked_share=1.0,
        flatbuffer_macs={"bitpacked": 11135488, "unpacked_binary": 0, "activation_binary": 0, "other": 451584},
        epochs=12,
        seed=0,
        train_wall_time_s=731.6,
        command="python -m keras_bnn.zoo.training.train binary_cnn.mnist --seed 0",
        license=license_text(MNIST_LICENSE),
    ),
    recipe=ImageRecipe(epochs=12, batch_size=100, learning_rate=2e-3, shift=2),
    card="binary_cnn.mnist.md",
))
