"""A binary GRU character language model (Tiny Shakespeare): builder and zoo entry.

Example:
    >>> import keras_bnn.zoo as zoo
    >>> zoo.get("binary_gru_lm.tiny_shakespeare").output_shape
    (None, None, 65)
"""

from __future__ import annotations

from typing import Any

from keras_bnn.zoo.models._building import check_head_args, finish, token_input
from keras_bnn.zoo.models._kit import kit
from keras_bnn.zoo.registry import Pretrained, ZooEntry, register
from keras_bnn.zoo.training.recipes import LanguageModelRecipe

__all__ = ["binary_gru_lm"]

TINY_SHAKESPEARE_CHARACTERS = 65


def binary_gru_lm(*, input_shape: tuple[int | None, ...] = (None,), num_classes: int = TINY_SHAKESPEARE_CHARACTERS,
                  include_top: bool = True, batch_size: int | None = None, binary: bool = True,
                  stateful: bool = False, units: int = 256, embedding: int = 64, gate_scale: bool = True,
                  dropout: float = 0.0, legacy: bool = False) -> Any:
    """Real Embedding -> BinaryGRU(return_sequences=True) -> real Dense logits of the next character.

    Args:
        input_shape: `(length,)`, default `(None,)` (any length).
        num_classes: Vocabulary size: rows of the embedding and logits of the head.
        include_top: False ends the model at the GRU's outputs `(batch, length, units)`.
        batch_size: Fixed batch size (needed with `stateful=True`).
        binary: False builds the float GRU of the same size (Keras' `GRU`).
        stateful: Carry the GRU state from one call to the next (streamed evaluation, training on streams).
        units: GRU units.
        embedding: Embedding width.
        gate_scale: The BinaryGRU's learned gate scale (binary only).
        dropout: Input dropout of the GRU.
        legacy: True builds the tf-keras + larq model (what the converter takes); False the Keras 3 one.

    Returns:
        The model; its layers are named `embedding`, `binary_gru` (also for the float GRU) and `dense`.
    """
    k = kit(legacy)
    check_head_args(num_classes, include_top)
    if stateful and batch_size is None:
        raise ValueError("stateful=True needs a fixed batch_size.")
    tokens = token_input(k, input_shape, batch_size)
    x = k.keras.layers.Embedding(num_classes, embedding, name="embedding")(tokens)
    if binary:
        x = k.BinaryGRU(units, return_sequences=True, stateful=stateful, gate_scale=gate_scale, dropout=dropout,
                        name="binary_gru")(x)
    else:
        x = k.keras.layers.GRU(units, return_sequences=True, stateful=stateful, dropout=dropout,
                               name="binary_gru")(x)
    if include_top:
        x = k.keras.layers.Dense(num_classes, name="dense")(x)
    return finish(k, tokens, x, "binary_gru_lm.tiny_shakespeare")


register(ZooEntry(
    name="binary_gru_lm.tiny_shakespeare",
    builder=binary_gru_lm,
    task="language_modeling",
    dataset="tiny_shakespeare",
    input_shape=(None,),
    num_classes=TINY_SHAKESPEARE_CHARACTERS,
    feature_layer="binary_gru",
    summary=(
        "Character language model: real Embedding(65, 64) -> BinaryGRU(256, return_sequences=True) -> real "
        "Dense(65) logits of the next character. Both GRU matmuls are binary (ste_sign inputs and kernels, "
        "learned per-unit gate scale); gates, biases and the hidden state are real."
    ),
    paper=("Cho et al., 'Learning Phrase Representations using RNN Encoder-Decoder', EMNLP 2014 (GRU); "
           "binarization: keras_bnn.layers.BinaryGRU"),
    pretrained=Pretrained(
        weights_file="binary_gru_lm.tiny_shakespeare.npz",
        sha256="bd72cd2e92967ed397c37fa0b050a5b67f4cbf5d5c1533ef258c715174a8f15a",
        size_bytes=131630,
        metric="bits_per_character",
        scores={"test": 2.5073, "validation": 2.3959},
        test_split="test",
        test_examples=55744,
        float_twin_scores={"test": 2.305, "validation": 2.1446},
        preprocessing=(
            "int32 character ids of any length: keras_bnn.zoo.tokenizer('binary_gru_lm.tiny_shakespeare')"
            ".encode(text) (the 65 characters of Tiny Shakespeare, sorted; stored in the weights file); the "
            "model returns next-character logits"
        ),
        flatbuffer_bytes=133732,
        bitpacked_share=1.0,
        flatbuffer_macs={"bitpacked": 245760, "unpacked_binary": 0, "activation_binary": 0, "other": 16640},
        epochs=13,
        seed=1,
        train_wall_time_s=456.1,
        command="python -m keras_bnn.zoo.training.train binary_gru_lm.tiny_shakespeare --seed 1",
        license=("Apache-2.0 (weights); data: Tiny Shakespeare (Karpathy's char-rnn corpus; Shakespeare's text is in "
                 "the public domain)"),
    ),
    recipe=LanguageModelRecipe(steps=2000),
    card="binary_gru_lm.tiny_shakespeare.md",
))
