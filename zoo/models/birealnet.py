"""Bi-Real Nets (Liu et al., ECCV 2018): a small one trained on Fashion-MNIST, and Bi-Real Net-18 (definition).

Example:
    >>> import keras_bnn.zoo as zoo
    >>> zoo.get("birealnet_small.fashion_mnist", include_top=False).output_shape
    (None, 7, 7, 96)
"""

from __future__ import annotations

from typing import Any

from keras_bnn.zoo.models._building import (
    BN_MOMENTUM,
    FASHION_MNIST_LICENSE,
    IMAGENET_SHAPE,
    IMAGENET_STAGES,
    MNIST_SHAPE,
    PIXELS,
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

__all__ = ["birealnet18", "birealnet_small"]

PAPER = "Liu et al., 'Bi-Real Net: Enhancing the Performance of 1-bit CNNs', ECCV 2018"


def _block(k: Kit, x: Any, filters: int, strides: int, name: str, binary: bool) -> Any:
    return k.BiRealConv2D(filters, strides=strides, momentum=BN_MOMENTUM, name=name,
                          **quant_kwargs(k, binary, "approx_sign", "magnitude_aware_sign"))(x)


def birealnet_small(*, input_shape: tuple[int, ...] = MNIST_SHAPE, num_classes: int = 10, include_top: bool = True,
                    batch_size: int | None = None, binary: bool = True, legacy: bool = False) -> Any:
    """A four-block Bi-Real Net for 28x28 images (see the entry's summary); False `binary`: the float twin;
    True `legacy`: the tf-keras + larq model (what the converter takes)."""
    k = kit(legacy)
    check_head_args(num_classes, include_top)
    inputs = model_input(k, input_shape, batch_size, min_rank=3)
    x = real_stem(k, rescale(k, inputs), 48)
    for index, (filters, strides) in enumerate(((48, 1), (48, 1), (96, 2), (96, 1)), start=1):
        x = _block(k, x, filters, strides, f"block{index}", binary)
    if include_top:
        x = real_classifier(k, x, num_classes)
    return finish(k, inputs, x, "birealnet_small.fashion_mnist")


def birealnet18(*, input_shape: tuple[int, ...] = IMAGENET_SHAPE, num_classes: int = 1000, include_top: bool = True,
                batch_size: int | None = None, binary: bool = True, legacy: bool = False) -> Any:
    """Bi-Real Net-18 at 224x224x3 (inputs already normalised; no preprocessing inside)."""
    k = kit(legacy)
    check_head_args(num_classes, include_top)
    inputs = model_input(k, input_shape, batch_size, min_rank=3)
    x = imagenet_stem(k, inputs)
    for stage, (filters, strides) in enumerate(IMAGENET_STAGES, start=1):
        for block in range(1, 5):
            x = _block(k, x, filters, strides if block == 1 else 1, f"stage{stage}_block{block}", binary)
    if include_top:
        x = imagenet_head(k, x, num_classes)
    return finish(k, inputs, x, "birealnet18.imagenet")


register(ZooEntry(
    name="birealnet_small.fashion_mnist",
    builder=birealnet_small,
    task="image_classification",
    dataset="fashion_mnist",
    input_shape=MNIST_SHAPE,
    num_classes=10,
    feature_layer="block4",
    summary=(
        "A small Bi-Real Net: real 3x3 stem (48) + BatchNorm + max-pool to 14x14, then four BiRealConv2D "
        "blocks (48, 48, 96 with stride 2, 96), each binary 3x3 conv (ApproxSign activations, "
        "magnitude-aware sign weights) + BatchNorm + real shortcut; flatten and a real dense classifier."
    ),
    paper=PAPER,
    pretrained=Pretrained(
        weights_file="birealnet_small.fashion_mnist.npz",
        sha256="f138cfc565c2b4aa4630fab942bdfcef6266ce786f809dc3514249fc5b543d2e",
        size_bytes=252036,
        metric="top1_accuracy",
        scores={"test": 0.9184, "train[90%:]": 0.9258},
        test_split="test",
        test_examples=10000,
        float_twin_scores={"test": 0.924},
        preprocessing=PIXELS,
        flatbuffer_bytes=242160,
        bitpacked_share=1.0,
        flatbuffer_macs={"bitpacked": 14224896, "unpacked_binary": 0, "activation_binary": 0, "other": 611520},
        epochs=10,
        seed=0,
        train_wall_time_s=868.1,
        command="python -m keras_bnn.zoo.training.train birealnet_small.fashion_mnist --seed 0",
        license=license_text(FASHION_MNIST_LICENSE),
    ),
    recipe=ImageRecipe(epochs=10, batch_size=100, learning_rate=2e-3, flip=True, float_twin=True),
    card="birealnet_small.fashion_mnist.md",
))

register(ZooEntry(
    name="birealnet18.imagenet",
    builder=birealnet18,
    task="image_classification",
    dataset="imagenet",
    input_shape=IMAGENET_SHAPE,
    num_classes=1000,
    feature_layer="stage4_block4",
    summary=(
        "Bi-Real Net-18: ResNet-18 stem, 16 BiRealConv2D blocks (binary 3x3 conv with ApproxSign activations "
        "and magnitude-aware sign weights + BatchNorm + real identity shortcut around every convolution), "
        "real 1x1 downsampling shortcuts, real 1000-way classifier. Definition only: no weights."
    ),
    paper=PAPER,
    # The Bi-Real Net paper compares in BOPs (binary MACs) and OPs = BOPs / 64 + FLOPs (float MACs); ReActNet's
    # comparison quotes the same OPs.
    paper_figures={"bops": 1.68e9, "ops": 1.63e8, "resnet18_params": 11.69e6},
    card="birealnet18.imagenet.md",
))
