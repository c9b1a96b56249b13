"""Architectures the benchmarks measure, each buildable binary or as its float twin, at a fixed batch size.

LCE fixes the batch dimension at conversion, so every builder takes `batch_size`.
"""

from __future__ import annotations

from collections.abc import Callable

import keras_bnn.legacy  # noqa: F401  (first: selects tf-keras)
import keras_bnn.zoo
import larq
import tensorflow as tf

from keras_bnn.legacy.layers import BiRealConv2D, XNORConv2D

GRU_LM_LENGTH = 32  # characters per converted sequence (the WHILE loop runs this many steps)


def _quant(binary: bool, real_input: bool = False) -> dict:
    if not binary:
        return dict(input_quantizer=None, kernel_quantizer=None, kernel_constraint=None)
    return dict(
        input_quantizer=None if real_input else "ste_sign",
        kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
    )


def _norm() -> tf.keras.layers.Layer:
    # momentum 0.9: moving statistics follow the weight flips of the last epoch (see demo.py).
    return tf.keras.layers.BatchNormalization(momentum=0.9, scale=False)


def conv_bnn(batch_size: int | None = None, binary: bool = True) -> tf.keras.Model:
    """larq's MNIST tutorial layout: 3 binary convs + 2 binary dense layers (the `make demo` model)."""
    return tf.keras.Sequential(
        [
            tf.keras.Input((28, 28, 1), batch_size=batch_size),
            larq.layers.QuantConv2D(32, 3, use_bias=False, **_quant(binary, real_input=True)),
            tf.keras.layers.MaxPool2D(2),
            _norm(),
            larq.layers.QuantConv2D(64, 3, use_bias=False, **_quant(binary)),
            tf.keras.layers.MaxPool2D(2),
            _norm(),
            larq.layers.QuantConv2D(64, 3, use_bias=False, **_quant(binary)),
            _norm(),
            tf.keras.layers.Flatten(),
            larq.layers.QuantDense(64, use_bias=False, **_quant(binary)),
            _norm(),
            larq.layers.QuantDense(10, use_bias=False, **_quant(binary)),
            _norm(),
            tf.keras.layers.Activation("softmax"),
        ],
        name="conv_bnn",
    )


def binarynet_mlp(batch_size: int | None = None, binary: bool = True) -> tf.keras.Model:
    """BinaryNet's MNIST MLP 784-2048x3-10, every layer binary.

    The first layer's input is binarized too (sign of pixels scaled to [-1, 1], i.e. a threshold at mid-grey):
    with a real-valued input LCE cannot bitpack the first 784x2048 matmul, which alone would then be 6.4 MB of
    float weights (BinaryNet itself feeds real 8-bit pixels to its first layer).
    """
    layers = [tf.keras.Input((28, 28, 1), batch_size=batch_size), tf.keras.layers.Flatten()]
    for _ in range(3):
        layers += [larq.layers.QuantDense(2048, use_bias=False, **_quant(binary)), _norm()]
    layers += [larq.layers.QuantDense(10, use_bias=False, **_quant(binary)), _norm()]
    return tf.keras.Sequential(layers, name="binarynet_mlp")


def bireal_cnn(batch_size: int | None = None, binary: bool = True) -> tf.keras.Model:
    """A small Bi-Real CNN for 28x28 inputs: real stem, four BiRealConv2D blocks, binary classifier."""
    quant = {} if binary else dict(input_quantizer=None, kernel_quantizer=None, kernel_constraint=None)
    inputs = tf.keras.Input((28, 28, 1), batch_size=batch_size)
    x = tf.keras.layers.Conv2D(64, 3, padding="same", use_bias=False)(inputs)
    x = _norm()(x)
    x = BiRealConv2D(64, **quant)(x)
    x = BiRealConv2D(128, strides=2, **quant)(x)
    x = BiRealConv2D(128, **quant)(x)
    x = BiRealConv2D(256, strides=2, **quant)(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    x = larq.layers.QuantDense(10, **_quant(binary))(x)
    return tf.keras.Model(inputs, tf.keras.layers.Activation("softmax")(x), name="bireal_cnn")


def xnor_cnn(batch_size: int | None = None, binary: bool = True) -> tf.keras.Model:
    """A small XNOR-Net CNN for 28x28 inputs: real stem, XNORConv2D blocks, binary dense head."""
    quant = {} if binary else dict(input_quantizer=None, kernel_quantizer=None, kernel_constraint=None)
    inputs = tf.keras.Input((28, 28, 1), batch_size=batch_size)
    x = tf.keras.layers.Conv2D(64, 3, padding="same", use_bias=False)(inputs)
    x = _norm()(x)
    for filters in (64, 128, 128, 256):
        x = XNORConv2D(filters, 3, padding="same", **quant)(x)
        x = _norm()(x)
        if filters != 64:
            x = tf.keras.layers.MaxPool2D(2)(x)
    x = tf.keras.layers.Flatten()(x)
    x = larq.layers.QuantDense(256, use_bias=False, **_quant(binary))(x)
    x = _norm()(x)
    x = larq.layers.QuantDense(10, use_bias=False, **_quant(binary))(x)
    return tf.keras.Model(inputs, tf.keras.layers.Activation("softmax")(x), name="xnor_cnn")


def gru_lm(batch_size: int | None = None, binary: bool = True) -> tf.keras.Model:
    """The zoo's GRU character LM (256 units) over a fixed 32-character sequence; binary: its trained weights.

    Trained, not random, weights: with random recurrent weights the GRU is chaotic, so float rounding (and a sign
    that sees a value within rounding of 0) grows over the 32 steps and Keras vs flatbuffer says nothing.
    """
    if binary:
        return keras_bnn.zoo.get("binary_gru_lm.tiny_shakespeare", pretrained=True, input_shape=(GRU_LM_LENGTH,),
                                 batch_size=batch_size, legacy=True)
    return keras_bnn.zoo.entry("binary_gru_lm.tiny_shakespeare").builder(input_shape=(GRU_LM_LENGTH,),
                                                                         batch_size=batch_size, binary=False,
                                                                         legacy=True)


def transformer_sst2(batch_size: int | None = None, binary: bool = True) -> tf.keras.Model:
    """The zoo's Transformer sentence classifier (48 tokens); binary: its trained weights; float: its teacher."""
    if binary:
        return keras_bnn.zoo.get("binary_transformer.sst2", pretrained=True, batch_size=batch_size, legacy=True)
    return keras_bnn.zoo.entry("binary_transformer.sst2").builder(batch_size=batch_size, binary=False, legacy=True)


# Binary builders that load trained zoo weights (the benchmark does not randomize them).
WITH_TRAINED_WEIGHTS = frozenset({"gru_lm", "transformer_sst2"})


BUILDERS: dict[str, Callable[..., tf.keras.Model]] = {
    "conv_bnn": conv_bnn,
    "binarynet_mlp": binarynet_mlp,
    "bireal_cnn": bireal_cnn,
    "xnor_cnn": xnor_cnn,
    "gru_lm": gru_lm,
    "transformer_sst2": transformer_sst2,
}
