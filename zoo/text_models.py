"""The zoo's text models: a binary GRU character language model and a binary Transformer sentence classifier.

Both take token ids (int32; see `keras_bnn.zoo.tokenizer` for the vocabulary that ships with their weights)
and return logits (no softmax: a language model samples from them with a temperature, and both convert to
LCE flatbuffers as they are). Entry points take the registry's keyword arguments (`input_shape`,
`num_classes`, `include_top`, `batch_size`, `binary`); `input_shape` is `(length,)`, with `None` for any
length.

Example:
    >>> import keras_bnn
    >>> model = keras_bnn.zoo.get("binary_gru_lm.tiny_shakespeare")
    >>> model.output_shape
    (None, None, 65)
"""

from __future__ import annotations

from typing import Any

import tensorflow as tf

from keras_bnn.layers.recurrent import BinaryGRU
from keras_bnn.layers.transformer import BinaryTransformerEncoder
from keras_bnn.zoo._building import check_head_args, finish
from keras_bnn.zoo._registry import register_model

__all__ = [
    "AddPositions",
    "FLOAT_ENCODER",
    "SST2_ENCODER",
    "binary_gru_lm_tiny_shakespeare",
    "binary_transformer_sst2",
    "token_input",
    "transformer_classifier",
]

TINY_SHAKESPEARE_CHARACTERS = 65
SST2_VOCABULARY = 12000
SST2_LENGTH = 48

# Settings of every BinaryTransformerEncoder of the float teacher (no quantizer, GELU feed-forward) and of
# the binary model selected by benchmarks/attention.py (ste_sign inputs, the layer's other defaults).
FLOAT_ENCODER: dict[str, Any] = dict(
    input_quantizer=None, kernel_quantizer=None, kernel_constraint=None, query_quantizer=None,
    key_quantizer=None, value_quantizer=None, activation="gelu",
)
SST2_ENCODER: dict[str, Any] = dict(input_quantizer="ste_sign")


@tf.keras.utils.register_keras_serializable(package="keras_bnn")
class AddPositions(tf.keras.layers.Layer):
    """Adds a learned position embedding (for up to `max_length` positions); keeps the token mask.

    Args:
        max_length: Number of positions; longer inputs are an error.
        **kwargs: Base `Layer` arguments.

    Example:
        >>> import keras_bnn, tensorflow as tf
        >>> from keras_bnn.zoo.text_models import AddPositions
        >>> AddPositions(8)(tf.zeros((2, 5, 4))).shape.as_list()
        [2, 5, 4]
    """

    def __init__(self, max_length: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.max_length = max_length
        self.supports_masking = True

    def build(self, input_shape: tf.TensorShape) -> None:
        self.positions = self.add_weight("positions", shape=(self.max_length, input_shape[-1]),
                                         initializer=tf.keras.initializers.RandomNormal(stddev=0.02))
        super().build(input_shape)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return inputs + self.positions[:tf.shape(inputs)[1]]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_length": self.max_length}


def token_input(input_shape: tuple[int | None, ...], batch_size: int | None, *,
                max_length: int | None = None) -> tf.Tensor:
    """An int32 Keras Input of token ids `(batch, length)`, after checking the shape and batch size.

    Args:
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
    if batch_size is not None and (not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1):
        raise ValueError(f"batch_size must be a positive int or None, got {batch_size!r}.")
    return tf.keras.Input(tuple(input_shape), batch_size=batch_size, dtype="int32", name="token_ids")


@register_model(
    "binary_gru_lm.tiny_shakespeare",
    input_shape=(None,),
    num_classes=TINY_SHAKESPEARE_CHARACTERS,
    dataset="tiny_shakespeare",
    feature_layer="binary_gru",
    task="language_modeling",
    summary=(
        "Character language model: real Embedding(65, 64) -> BinaryGRU(256, return_sequences=True) -> real "
        "Dense(65) logits of the next character. Both GRU matmuls are binary (ste_sign inputs and kernels, "
        "learned per-unit gate scale); gates, biases and the hidden state are real."
    ),
    paper="Cho et al., 'Learning Phrase Representations using RNN Encoder-Decoder', EMNLP 2014 (GRU); "
          "binarization: keras_bnn.layers.BinaryGRU",
)
def binary_gru_lm_tiny_shakespeare(
    *,
    input_shape: tuple[int | None, ...] = (None,),
    num_classes: int = TINY_SHAKESPEARE_CHARACTERS,
    include_top: bool = True,
    batch_size: int | None = None,
    binary: bool = True,
    stateful: bool = False,
) -> tf.keras.Model:
    """The binary GRU character LM of `benchmarks/gru_lm.py` (`build_lm("binary", 65, ...)`).

    Args:
        input_shape: `(length,)`, default `(None,)` (any length).
        num_classes: Vocabulary size: rows of the embedding and logits of the head.
        include_top: False ends the model at the GRU's outputs `(batch, length, 256)`.
        batch_size: Fixed batch size (needed with `stateful=True`).
        binary: False builds the float GRU of the same size (Keras' `GRU`).
        stateful: Carry the GRU state from one call to the next (streamed evaluation, training on streams).

    Returns:
        The model; its layers are named like the benchmark's (`embedding`, `binary_gru`, `dense`), so a
        checkpoint that the benchmark saves with `save_weights` loads into it with `load_weights`.
    """
    check_head_args(num_classes, include_top)
    if stateful and batch_size is None:
        raise ValueError("stateful=True needs a fixed batch_size.")
    tokens = token_input(input_shape, batch_size)
    x = tf.keras.layers.Embedding(num_classes, 64, name="embedding")(tokens)
    if binary:
        x = BinaryGRU(256, return_sequences=True, stateful=stateful, name="binary_gru")(x)
    else:
        x = tf.keras.layers.GRU(256, return_sequences=True, stateful=stateful, name="binary_gru")(x)
    if include_top:
        x = tf.keras.layers.Dense(num_classes, name="dense")(x)
    return finish(tokens, x, "binary_gru_lm.tiny_shakespeare")


def transformer_classifier(
    tokens: tf.Tensor,
    encoder_settings: dict[str, Any],
    *,
    vocabulary_size: int,
    max_length: int,
    d_model: int = 64,
    heads: int = 4,
    ffn: int = 128,
    layers: int = 2,
    dropout: float = 0.1,
    num_classes: int | None = 2,
) -> tf.Tensor:
    """Token ids (0: padding) -> class logits: embedding + positions, encoder blocks, masked mean, Dense.

    The definition that `benchmarks/attention.py` trains and `binary_transformer.sst2` ships.

    Args:
        tokens: int32 token ids `(batch, length)`, length at most `max_length`.
        encoder_settings: Keyword arguments of every `BinaryTransformerEncoder` (its quantizers).
        vocabulary_size: Rows of the token embedding.
        max_length: Number of learned positions.
        d_model: Embedding width.
        heads: Attention heads.
        ffn: Feed-forward width.
        layers: Encoder blocks.
        dropout: Dropout rate (embedding, residual branches, pooled features).
        num_classes: Units of the real Dense head; None stops at the pooled features.

    Returns:
        The logits (or the pooled features).
    """
    x = tf.keras.layers.Embedding(vocabulary_size, d_model, mask_zero=True, name="tokens")(tokens)
    x = AddPositions(max_length, name="positions")(x)
    x = tf.keras.layers.LayerNormalization(epsilon=1e-5, name="embedding_norm")(x)
    x = tf.keras.layers.Dropout(dropout, name="embedding_dropout")(x)
    for index in range(layers):
        x = BinaryTransformerEncoder(heads, ffn, dropout=dropout, name=f"encoder_{index}", **encoder_settings)(x)
    x = tf.keras.layers.GlobalAveragePooling1D(name="pool")(x)  # mean over the unpadded positions
    if num_classes is None:
        return x
    x = tf.keras.layers.Dropout(dropout, name="pool_dropout")(x)
    return tf.keras.layers.Dense(num_classes, name="classifier")(x)


@register_model(
    "binary_transformer.sst2",
    input_shape=(SST2_LENGTH,),
    num_classes=2,
    dataset="sst2",
    feature_layer="pool",
    task="text_classification",
    summary=(
        "Sentence classifier: real token (12,000 words) + learned position embedding (48 positions), "
        "LayerNorm, two BinaryTransformerEncoder blocks (d_model 64, 4 heads, feed-forward 128; binary "
        "Q/K/V/O and feed-forward matmuls with ste_sign inputs and magnitude-aware sign kernels, binary "
        "attention scores and values, real residuals and LayerNorms), masked mean pooling, real Dense(2) "
        "logits (0: negative, 1: positive)."
    ),
    paper="Vaswani et al., 'Attention Is All You Need', NeurIPS 2017; binarization as in Qin et al., "
          "'BiBERT', ICLR 2022 (without Bi-Attention)",
)
def binary_transformer_sst2(
    *,
    input_shape: tuple[int | None, ...] = (SST2_LENGTH,),
    num_classes: int = 2,
    include_top: bool = True,
    batch_size: int | None = None,
    binary: bool = True,
) -> tf.keras.Model:
    """The binary Transformer of `benchmarks/attention.py` (its selected `ste_sign` variant).

    Args:
        input_shape: `(length,)` with length at most 48, or `(None,)`; padding is token 0 (masked).
        num_classes: Units of the real Dense head.
        include_top: False ends the model at the pooled features `(batch, 64)`.
        batch_size: Fixed batch size, or None.
        binary: False builds the float teacher (no quantizers, GELU feed-forward).
    """
    check_head_args(num_classes, include_top)
    tokens = token_input(input_shape, batch_size, max_length=SST2_LENGTH)
    outputs = transformer_classifier(
        tokens, SST2_ENCODER if binary else FLOAT_ENCODER, vocabulary_size=SST2_VOCABULARY,
        max_length=SST2_LENGTH, num_classes=num_classes if include_top else None)
    return finish(tokens, outputs, "binary_transformer.sst2")
