"""BinaryNet's MNIST MLP (784-2048x3-10): builder and zoo entry.

Example:
    >>> import keras_bnn.zoo as zoo
    >>> zoo.get("binarynet_mlp.mnist").output_shape
    (None, 10)
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
    rescale,
    softmax,
)
from keras_bnn.zoo.models._kit import kit
from keras_bnn.zoo.registry import Pretrained, ZooEntry, register
from keras_bnn.zoo.training.recipes import ImageRecipe

__all__ = ["binarynet_mlp"]


def binarynet_mlp(*, input_shape: tuple[int, ...] = MNIST_SHAPE, num_classes: int = 10, include_top: bool = True,
                  batch_size: int | None = None, binary: bool = True, legacy: bool = False) -> Any:
    """BinaryNet's MNIST MLP: four bias-free dense layers with sign weights, BatchNorm after each.

    Args:
        input_shape: Image shape, no batch dimension.
        num_classes: Classes of the head.
        include_top: False ends the model at `bn3`.
        batch_size: Fixed batch size, or None.
        binary: False builds the float twin (no quantizers, `hard_tanh` where the binary model has a sign).
        legacy: True builds the tf-keras + larq model (what the converter takes); False the Keras 3 one.
    """
    k = kit(legacy)
    check_head_args(num_classes, include_top)
    inputs = model_input(k, input_shape, batch_size, min_rank=1)
    x = k.keras.layers.Flatten(name="flatten")(rescale(k, inputs))
    for index in range(1, 4):
        x = quant_dense(k, 2048, binary, None if index == 1 else "ste_sign", name=f"dense{index}")(x)
        x = batch_norm(k, f"bn{index}")(x)
    if include_top:
        x = quant_dense(k, num_classes, binary, "ste_sign", name="logits_dense")(x)
        x = softmax(k, batch_norm(k, "logits_bn")(x))
    return finish(k, inputs, x, "binarynet_mlp.mnist")


register(ZooEntry(
    name="binarynet_mlp.mnist",
    builder=binarynet_mlp,
    task="image_classification",
    dataset="mnist",
    input_shape=MNIST_SHAPE,
    num_classes=10,
    feature_layer="bn3",
    summary=(
        "BinaryNet MLP 784-2048x3-10: four bias-free dense layers with sign-binarized weights, BatchNorm "
        "after each, sign activations between them. The first layer has binary weights and a real input "
        "(pixels in [-1, 1]), as in BinaryNet's MNIST MLP, which keeps the 8-bit input."
    ),
    paper="Courbariaux, Hubara, Soudry, El-Yaniv, Bengio, 'Binarized Neural Networks', NeurIPS 2016",
    pretrained=Pretrained(
        weights_file="binarynet_mlp.mnist.npz",
        sha256="e6be670297ae9cbc81a1bec83ca6c94697be68ac6b006313b088bcf79fcdeff4",
        size_bytes=1358700,
        metric="top1_accuracy",
        scores={"test": 0.99, "train[90%:]": 0.9898},
        test_split="test",
        test_examples=10000,
        preprocessing=PIXELS,
        flatbuffer_bytes=7502500,
        bitpacked_share=1.0,
        flatbuffer_macs={"bitpacked": 8409088, "unpacked_binary": 0, "activation_binary": 0, "other": 1605632},
        epochs=20,
        seed=0,
        train_wall_time_s=2051.6,
        command="python -m keras_bnn.zoo.training.train binarynet_mlp.mnist --seed 0",
        license=license_text(MNIST_LICENSE),
    ),
    recipe=ImageRecipe(epochs=20, batch_size=100, learning_rate=1e-3, shift=2),
    card="binarynet_mlp.mnist.md",
))
