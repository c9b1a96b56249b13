"""XNOR-Nets (Rastegari et al., ECCV 2016): a small one trained on Fashion-MNIST, and XNOR-Net-18 (definition).

Example:
    >>> import keras_bnn.zoo as zoo
    >>> zoo.get("xnornet18.imagenet").output_shape
    (None, 1000)
"""

from __future__ import annotations

from typing import Any

from keras_bnn.zoo.models._building import (
    FASHION_MNIST_LICENSE,
    IMAGENET_SHAPE,
    IMAGENET_STAGES,
    MNIST_SHAPE,
    PIXELS,
    batch_norm,
    check_head_args,
    finish,
    imagenet_head,
    imagenet_stem,
    license_text,
    model_input,
    quant_kwargs,
    real_classifier,
    real_stem,
    rescale,
)
from keras_bnn.zoo.models._kit import Kit, kit
from keras_bnn.zoo.registry import Pretrained, ZooEntry, register
from keras_bnn.zoo.training.recipes import ImageRecipe

__all__ = ["xnornet18", "xnornet_small"]

PAPER = "Rastegari et al., 'XNOR-Net: ImageNet Classification Using Binary CNNs', ECCV 2016"


def _xnor_conv(k: Kit, x: Any, filters: int, kernel: int, strides: int, name: str, binary: bool) -> Any:
    return k.XNORConv2D(filters, kernel, strides=strides, padding="same", name=name,
                        **quant_kwargs(k, binary, "ste_sign", "magnitude_aware_sign"))(x)


def xnornet_small(*, input_shape: tuple[int, ...] = MNIST_SHAPE, num_classes: int = 10, include_top: bool = True,
                  batch_size: int | None = None, binary: bool = True, legacy: bool = False) -> Any:
    """A two-layer XNOR-Net for 28x28 images (see the entry's summary); False `binary`: the float twin;
    True `legacy`: the tf-keras + larq model (what the converter takes)."""
    k = kit(legacy)
    check_head_args(num_classes, include_top)
    inputs = model_input(k, input_shape, batch_size, min_rank=3)
    x = real_stem(k, rescale(k, inputs), 32)
    for index, filters in enumerate((64, 128), start=1):
        x = _xnor_conv(k, x, filters, 3, 1, f"xnor_conv{index}", binary)
        x = k.keras.layers.MaxPooling2D(2, name=f"pool{index}")(x)
        x = batch_norm(k, f"bn{index}")(x)
    if include_top:
        x = real_classifier(k, x, num_classes)
    return finish(k, inputs, x, "xnornet_small.fashion_mnist")


def xnornet18(*, input_shape: tuple[int, ...] = IMAGENET_SHAPE, num_classes: int = 1000, include_top: bool = True,
              batch_size: int | None = None, binary: bool = True, legacy: bool = False) -> Any:
    """XNOR-Net-18 (XNOR-ResNet-18) at 224x224x3 (inputs already normalised; no preprocessing inside)."""
    k = kit(legacy)
    check_head_args(num_classes, include_top)
    inputs = model_input(k, input_shape, batch_size, min_rank=3)
    x = imagenet_stem(k, inputs)

    def conv_bn(x, filters, kernel, strides, name):
        x = _xnor_conv(k, x, filters, kernel, strides, name, binary)
        return batch_norm(k, f"{name}_bn")(x)

    for stage, (filters, strides) in enumerate(IMAGENET_STAGES, start=1):
        for block in range(1, 3):
            name = f"stage{stage}_block{block}"
            block_strides = strides if block == 1 else 1
            shortcut = x
            if block_strides != 1 or x.shape[-1] != filters:
                shortcut = conv_bn(x, filters, 1, block_strides, f"{name}_shortcut")
            y = conv_bn(x, filters, 3, block_strides, f"{name}_conv1")
            y = conv_bn(y, filters, 3, 1, f"{name}_conv2")
            x = k.keras.layers.Add(name=f"{name}_add")([y, shortcut])
    if include_top:
        x = imagenet_head(k, x, num_classes)
    return finish(k, inputs, x, "xnornet18.imagenet")


register(ZooEntry(
    name="xnornet_small.fashion_mnist",
    builder=xnornet_small,
    task="image_classification",
    dataset="fashion_mnist",
    input_shape=MNIST_SHAPE,
    num_classes=10,
    feature_layer="bn2",
    summary=(
        "A small XNOR-Net: real 3x3 stem (32) + BatchNorm + max-pool to 14x14, then two XNORConv2D layers "
        "(64 and 128 filters, 3x3, SAME padding with +1; sign activations, weights sign(W)·mean|W| per "
        "output channel), each followed by 2x2 max-pooling and BatchNorm; flatten and a real dense "
        "classifier."
    ),
    paper=PAPER,
    pretrained=Pretrained(
        weights_file="xnornet_small.fashion_mnist.npz",
        sha256="abb90240ed0a61f07b6346c4643a96ff79f071e8c405f166bb5a8e4cc8f69bc9",
        size_bytes=70388,
        metric="top1_accuracy",
        scores={"test": 0.9029, "train[90%:]": 0.9158},
        test_split="test",
        test_examples=10000,
        float_twin_scores={"test": 0.9193},
        preprocessing=PIXELS,
        flatbuffer_bytes=67412,
        bitpacked_share=1.0,
        flatbuffer_macs={"bitpacked": 7225344, "unpacked_binary": 0, "activation_binary": 0, "other": 237312},
        epochs=6,
        seed=0,
        train_wall_time_s=283.2,
        command="python -m keras_bnn.zoo.training.train xnornet_small.fashion_mnist --seed 0",
        license=license_text(FASHION_MNIST_LICENSE),
    ),
    recipe=ImageRecipe(epochs=6, batch_size=100, learning_rate=2e-3, flip=True, float_twin=True),
    card="xnornet_small.fashion_mnist.md",
))

register(ZooEntry(
    name="xnornet18.imagenet",
    builder=xnornet18,
    task="image_classification",
    dataset="imagenet",
    input_shape=IMAGENET_SHAPE,
    num_classes=1000,
    feature_layer="stage4_block2_add",
    summary=(
        "XNOR-Net-18 (XNOR-ResNet-18): ResNet-18 stem, 8 basic blocks of two XNORConv2D 3x3 convolutions "
        "(sign activations, weights sign(W)·mean|W|) each + BatchNorm, a shortcut per block (binary 1x1 "
        "XNORConv2D + BatchNorm where the shape changes), real 1000-way classifier. Definition only."
    ),
    paper=PAPER,
    paper_figures={"bops": 1.70e9, "ops": 1.67e8, "resnet18_params": 11.69e6},
    card="xnornet18.imagenet.md",
))
