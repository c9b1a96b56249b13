"""A binary Transformer sentence classifier (GLUE SST-2): builder and zoo entry.

Example:
    >>> import keras_bnn.zoo as zoo
    >>> zoo.get("binary_transformer.sst2").output_shape
    (None, 2)
"""

from __future__ import annotations

from typing import Any

from keras_bnn.zoo.models._building import check_head_args, finish, token_input
from keras_bnn.zoo.models._kit import Kit, kit
from keras_bnn.zoo.registry import Pretrained, ZooEntry, register
from keras_bnn.zoo.training.recipes import SentenceClassifierRecipe

__all__ = ["BINARY_ENCODER", "FLOAT_ENCODER", "binary_transformer", "transformer_classifier"]

SST2_VOCABULARY = 12000
SST2_LENGTH = 48

# Settings of every BinaryTransformerEncoder of the float teacher (no quantizer, GELU feed-forward) and of the
# binary model (ste_sign inputs, the layer's other defaults).
FLOAT_ENCODER: dict[str, Any] = dict(
    input_quantizer=None, kernel_quantizer=None, kernel_constraint=None, query_quantizer=None,
    key_quantizer=None, value_quantizer=None, activation="gelu",
)
BINARY_ENCODER: dict[str, Any] = dict(input_quantizer="ste_sign")


def transformer_classifier(tokens: Any, encoder_settings: dict[str, Any], *, vocabulary_size: int,
                           max_length: int, d_model: int = 64, heads: int = 4, ffn: int = 128, layers: int = 2,
                           dropout: float = 0.1, num_classes: int | None = 2, legacy: bool = False) -> Any:
    """Token ids (0: padding) -> class logits: embedding + positions, encoder blocks, masked mean, Dense.

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
        legacy: Build with tf-keras + keras_bnn.legacy layers (`tokens` a tf-keras Input) instead of Keras 3.
    """
    k: Kit = kit(legacy)
    layers_ = k.keras.layers
    x = layers_.Embedding(vocabulary_size, d_model, mask_zero=True, name="tokens")(tokens)
    x = k.AddPositions(max_length, name="positions")(x)
    x = layers_.LayerNormalization(epsilon=1e-5, name="embedding_norm")(x)
    x = layers_.Dropout(dropout, name="embedding_dropout")(x)
    for index in range(layers):
        x = k.BinaryTransformerEncoder(heads, ffn, dropout=dropout, name=f"encoder_{index}", **encoder_settings)(x)
    x = layers_.GlobalAveragePooling1D(name="pool")(x)  # mean over the unpadded positions
    if num_classes is None:
        return x
    x = layers_.Dropout(dropout, name="pool_dropout")(x)
    return layers_.Dense(num_classes, name="classifier")(x)


def binary_transformer(*, input_shape: tuple[int | None, ...] = (SST2_LENGTH,), num_classes: int = 2,
                       include_top: bool = True, batch_size: int | None = None, binary: bool = True,
                       encoder: dict[str, Any] | None = None, legacy: bool = False) -> Any:
    """The binary Transformer sentence classifier.

    Args:
        input_shape: `(length,)` with length at most 48, or `(None,)`; padding is token 0 (masked).
        num_classes: Units of the real Dense head.
        include_top: False ends the model at the pooled features `(batch, 64)`.
        batch_size: Fixed batch size, or None.
        binary: False builds the float teacher (no quantizers, GELU feed-forward).
        encoder: Other encoder settings for the binary model (e.g. another input quantizer); default the shipped
            model's.
        legacy: True builds the tf-keras + keras_bnn.legacy model (what the converter takes); False the Keras 3 one.
    """
    k = kit(legacy)
    check_head_args(num_classes, include_top)
    tokens = token_input(k, input_shape, batch_size, max_length=SST2_LENGTH)
    settings = (encoder or BINARY_ENCODER) if binary else FLOAT_ENCODER
    outputs = transformer_classifier(tokens, settings, vocabulary_size=SST2_VOCABULARY, max_length=SST2_LENGTH,
                                     num_classes=num_classes if include_top else None, legacy=legacy)
    return finish(k, tokens, outputs, "binary_transformer.sst2")


register(ZooEntry(
    name="binary_transformer.sst2",
    builder=binary_transformer,
    task="text_classification",
    dataset="sst2",
    input_shape=(SST2_LENGTH,),
    num_classes=2,
    feature_layer="pool",
    summary=(
        "Sentence classifier: real token (12,000 words) + learned position embedding (48 positions), "
        "LayerNorm, two BinaryTransformerEncoder blocks (d_model 64, 4 heads, feed-forward 128; binary "
        "Q/K/V/O and feed-forward matmuls with ste_sign inputs and magnitude-aware sign kernels, binary "
        "attention scores and values, real residuals and LayerNorms), masked mean pooling, real Dense(2) "
        "logits (0: negative, 1: positive)."
    ),
    paper=("Vaswani et al., 'Attention Is All You Need', NeurIPS 2017; binarization as in Qin et al., "
           "'BiBERT', ICLR 2022 (without Bi-Attention)"),
    pretrained=Pretrained(
        weights_file="binary_transformer.sst2.npz",
        sha256="a0858d6211fd01f0f0843fc44e8ab60dec6f2e0a98f5d4dcb35ed3a518a5ccd6",
        size_bytes=3264288,
        metric="top1_accuracy",
        scores={"validation": 0.8165, "train (5,000 sentences held out, seed 1)": 0.8908},
        test_split="validation",
        test_examples=872,
        float_twin_scores={"validation": 0.7982},
        preprocessing=(
            "int32 word ids, shape (48,), 0-padded: keras_bnn.zoo.tokenizer('binary_transformer.sst2')"
            "(sentences) (TextVectorization: lower-case, strip punctuation, split on whitespace, the 12,000-word "
            "vocabulary of SST-2 train stored in the weights file; 1 = unknown word); the model returns 2 "
            "logits (0: negative, 1: positive)"
        ),
        flatbuffer_bytes=3146824,
        bitpacked_share=1.0,
        flatbuffer_macs={"bitpacked": 3145728, "unpacked_binary": 0, "activation_binary": 294912, "other": 295040},
        epochs=1,
        seed=1,
        train_wall_time_s=65.0,
        command="python -m keras_bnn.zoo.training.train binary_transformer.sst2 --seed 1",
        license=("Apache-2.0 (weights); data: GLUE SST-2 (Socher et al., Stanford Sentiment Treebank, "
                 "https://nlp.stanford.edu/sentiment/)"),
    ),
    recipe=SentenceClassifierRecipe(),
    card="binary_transformer.sst2.md",
))
