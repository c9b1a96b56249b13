"""ImageNet-sized definitions (no weights): Bi-Real Net-18 and XNOR-Net-18, built from keras_bnn's layers.

Both follow ResNet-18 at 224x224x3: a real 7x7/2 convolution + BatchNorm + ReLU + 3x3/2 max-pooling stem,
four stages at 64/128/256/512 channels, global average pooling and a real 1000-way classifier. Inputs are
expected already normalised (e.g. per-channel mean/std); the models do no preprocessing.

* `birealnet18.imagenet`: 16 `BiRealConv2D` blocks (one binary 3x3 convolution + BatchNorm + real shortcut
  each); the first block of stages 2-4 has stride 2 and the AvgPool + real 1x1 conv + BatchNorm shortcut.
* `xnornet18.imagenet`: 8 ResNet basic blocks of two `XNORConv2D` 3x3 convolutions (each + BatchNorm); the
  shortcut spans the two, and when the shape changes it is a binary 1x1 `XNORConv2D` (stride 2) + BatchNorm,
  as in the XNOR-ResNet-18 that the Bi-Real Net paper compares with (its BOPs include those 1x1 convolutions).

`PAPER_FIGURES` holds the figures that the cards compare `larq.models.ModelProfile`'s counts with.

Example:
    >>> import keras_bnn
    >>> keras_bnn.zoo.get("birealnet18.imagenet").output_shape
    (None, 1000)
"""

from __future__ import annotations

import tensorflow as tf

from keras_bnn.layers import BiRealConv2D, XNORConv2D
from keras_bnn.zoo._building import BN_MOMENTUM, check_head_args, finish, model_input, quant_kwargs, softmax
from keras_bnn.zoo._registry import register_model

__all__ = ["PAPER_FIGURES", "PAPER_NOTES", "birealnet18_imagenet", "xnornet18_imagenet"]

_IMAGENET_SHAPE = (224, 224, 3)
_STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))

# The Bi-Real Net paper (Liu et al., ECCV 2018) compares Bi-Real Net-18 and XNOR-Net-18 in BOPs (binary
# operations, i.e. binary MACs) and OPs = BOPs / 64 + FLOPs (float MACs). The OPs 1.63e8 / 1.67e8 are also
# quoted in ReActNet's comparison table; the float part follows as OPs - BOPs / 64.
PAPER_FIGURES: dict[str, dict[str, float]] = {
    "birealnet18.imagenet": {"bops": 1.68e9, "ops": 1.63e8, "resnet18_params": 11.69e6},
    "xnornet18.imagenet": {"bops": 1.70e9, "ops": 1.67e8, "resnet18_params": 11.69e6},
}

PAPER_NOTES: dict[str, str] = {
    "birealnet18.imagenet": (
        "All figures agree within 1%. The binary MACs are the 16 binary 3x3 convolutions; the float MACs are "
        "the 7x7 stem, the three real 1x1 downsampling convolutions and the classifier."
    ),
    "xnornet18.imagenet": (
        "BOPs agree within 0.3% (16 binary 3x3 convolutions plus the 3 binary 1x1 downsampling ones). The "
        "float part is 16% below the paper's: XNOR-Net also computes its input-magnitude map K in float "
        "(a channel mean and a box filter per binary convolution), which `XNORConv2D` only does with "
        "`input_scaling=True` (off here) and which `ModelProfile` does not count either way. The figure "
        "'FLOPs 1.33e8' for XNOR-Net-18 could not be confirmed in the sources read (ReActNet's table gives "
        "OPs 1.67e8, as used here)."
    ),
}


def _stem(inputs: tf.Tensor) -> tf.Tensor:
    x = tf.keras.layers.Conv2D(64, 7, strides=2, padding="same", use_bias=False, name="stem_conv")(inputs)
    x = tf.keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name="stem_bn")(x)
    x = tf.keras.layers.Activation("relu", name="stem_relu")(x)
    return tf.keras.layers.MaxPooling2D(3, strides=2, padding="same", name="stem_pool")(x)


def _head(x: tf.Tensor, num_classes: int) -> tf.Tensor:
    x = tf.keras.layers.GlobalAveragePooling2D(name="avg_pool")(x)
    return softmax(tf.keras.layers.Dense(num_classes, name="logits")(x))


@register_model(
    "birealnet18.imagenet",
    input_shape=_IMAGENET_SHAPE,
    num_classes=1000,
    dataset="imagenet",
    feature_layer="stage4_block4",
    summary=(
        "Bi-Real Net-18: ResNet-18 stem, 16 BiRealConv2D blocks (binary 3x3 conv with ApproxSign activations "
        "and magnitude-aware sign weights + BatchNorm + real identity shortcut around every convolution), "
        "real 1x1 downsampling shortcuts, real 1000-way classifier. Definition only: no weights."
    ),
    paper="Liu et al., 'Bi-Real Net: Enhancing the Performance of 1-bit CNNs', ECCV 2018",
)
def birealnet18_imagenet(
    *,
    input_shape: tuple[int, ...] = _IMAGENET_SHAPE,
    num_classes: int = 1000,
    include_top: bool = True,
    batch_size: int | None = None,
    binary: bool = True,
) -> tf.keras.Model:
    """Bi-Real Net-18."""
    check_head_args(num_classes, include_top)
    inputs = model_input(input_shape, batch_size, min_rank=3)
    x = _stem(inputs)
    for stage, (filters, strides) in enumerate(_STAGES, start=1):
        for block in range(1, 5):
            x = BiRealConv2D(
                filters,
                strides=strides if block == 1 else 1,
                momentum=BN_MOMENTUM,
                name=f"stage{stage}_block{block}",
                **quant_kwargs(binary, "approx_sign", "magnitude_aware_sign"),
            )(x)
    if include_top:
        x = _head(x, num_classes)
    return finish(inputs, x, "birealnet18.imagenet")


def _xnor_conv(x: tf.Tensor, filters: int, kernel: int, strides: int, name: str, binary: bool) -> tf.Tensor:
    x = XNORConv2D(
        filters,
        kernel,
        strides=strides,
        padding="same",
        name=name,
        **quant_kwargs(binary, "ste_sign", "magnitude_aware_sign"),
    )(x)
    return tf.keras.layers.BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn")(x)


@register_model(
    "xnornet18.imagenet",
    input_shape=_IMAGENET_SHAPE,
    num_classes=1000,
    dataset="imagenet",
    feature_layer="stage4_block2_add",
    summary=(
        "XNOR-Net-18 (XNOR-ResNet-18): ResNet-18 stem, 8 basic blocks of two XNORConv2D 3x3 convolutions "
        "(sign activations, weights sign(W)·mean|W|) each + BatchNorm, a shortcut per block (binary 1x1 "
        "XNORConv2D + BatchNorm where the shape changes), real 1000-way classifier. Definition only."
    ),
    paper="Rastegari et al., 'XNOR-Net: ImageNet Classification Using Binary CNNs', ECCV 2016",
)
def xnornet18_imagenet(
    *,
    input_shape: tuple[int, ...] = _IMAGENET_SHAPE,
    num_classes: int = 1000,
    include_top: bool = True,
    batch_size: int | None = None,
    binary: bool = True,
) -> tf.keras.Model:
    """XNOR-Net-18."""
    check_head_args(num_classes, include_top)
    inputs = model_input(input_shape, batch_size, min_rank=3)
    x = _stem(inputs)
    for stage, (filters, strides) in enumerate(_STAGES, start=1):
        for block in range(1, 3):
            name = f"stage{stage}_block{block}"
            block_strides = strides if block == 1 else 1
            shortcut = x
            if block_strides != 1 or x.shape[-1] != filters:
                shortcut = _xnor_conv(x, filters, 1, block_strides, f"{name}_shortcut", binary)
            y = _xnor_conv(x, filters, 3, block_strides, f"{name}_conv1", binary)
            y = _xnor_conv(y, filters, 3, 1, f"{name}_conv2", binary)
            x = tf.keras.layers.Add(name=f"{name}_add")([y, shortcut])
    if include_top:
        x = _head(x, num_classes)
    return finish(inputs, x, "xnornet18.imagenet")
