"""A binary Transformer encoder block: binary attention, binary feed-forward, real residuals and LayerNorm."""

from __future__ import annotations

import json
from typing import Any

import larq as lq
import tensorflow as tf

from keras_bnn._validation import check_fraction, check_positive_int
from keras_bnn.legacy.layers.attention import PROBABILITIES, BinaryMultiHeadAttention, build_sublayer, serialized
from keras_bnn.legacy.quantizers import resolve

__all__ = ["AddPositions", "BinaryTransformerEncoder"]


@tf.keras.utils.register_keras_serializable(package="keras_bnn")
class AddPositions(tf.keras.layers.Layer):
    """Adds a learned position embedding (for up to `max_length` positions); keeps the token mask.

    Args:
        max_length: Number of positions; longer inputs are an error.
        **kwargs: Base `Layer` arguments.

    Example:
        >>> import keras_bnn, tensorflow as tf
        >>> keras_bnn.legacy.layers.AddPositions(8)(tf.zeros((2, 5, 4))).shape.as_list()
        [2, 5, 4]
    """

    def __init__(self, max_length: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.max_length = check_positive_int("max_length", max_length)
        self.supports_masking = True

    def build(self, input_shape: tf.TensorShape) -> None:
        self.positions = self.add_weight("positions", shape=(self.max_length, input_shape[-1]),
                                         initializer=tf.keras.initializers.RandomNormal(stddev=0.02))
        super().build(input_shape)

    def call(self, inputs: tf.Tensor) -> tf.Tensor:
        return inputs + self.positions[:tf.shape(inputs)[1]]

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_length": self.max_length}


@tf.keras.utils.register_keras_serializable(package="keras_bnn")
class BinaryTransformerEncoder(tf.keras.layers.Layer):
    """Post-norm Transformer encoder block (as in BERT, BiBERT and BiT) with binary matmuls.

    ``y = LN(x + Dropout(BinaryMultiHeadAttention(x, x)))``, then
    ``out = LN(y + Dropout(QuantDense_out(activation(QuantDense_in(y)))))``.

    Binary: the Q/K/V/output projections and both feed-forward matmuls (binary inputs via `input_quantizer`,
    binary kernels via `kernel_quantizer`; after ``keras_bnn.tflite.convert`` they are bitpacked ``LceBconv2d``
    ops, see ``keras_bnn.tflite.rules.attention``), and the attention scores / context as in `BinaryMultiHeadAttention`. Real: the residual additions,
    the two LayerNorms, biases and dropout. Real residuals carry the information that a sign would lose, and
    LayerNorm re-centres each branch before the next sign, as in every binary BERT (BiBERT, BiT).

    The feed-forward `activation` defaults to None: the sign of the second matmul's input quantizer is already
    the nonlinearity. Do not use ``"relu"`` with a sign quantizer (sign(relu(x)) is +1 everywhere); use
    ``"gelu"``/``"relu"`` only for a float block (all quantizers None), e.g. the float teacher of distillation.

    Activation quantizers, measured (``benchmarks/attention.py``: SST-2, d_model 64, 2 blocks, one distilled
    epoch from the float weights, one seed): ``ste_sign`` / ``elastic_sign`` / ``learnable_threshold_sign``
    inputs reached 89.4 / 89.1 / 89.3% on held-out train sentences and 80.2 / 80.4 / 79.8% on GLUE dev, i.e. no
    difference beyond noise (one dev sentence is 0.11 points); Bi-Attention (``probabilities="bool"``) 88.8 /
    80.2%. ``magnitude_aware_sign`` kernels keep the binary branches at the scale of the float ones, which the
    learned scales of ``elastic_sign`` would otherwise have to do; hence the plain ``ste_sign`` default.

    Keras padding masks (``Embedding(mask_zero=True)``) are respected: padded positions are neither attended to
    nor attend; `attention_mask` (``(B, T, T)``) can be given too. The output keeps the input's mask.

    Args:
        num_heads: Number of attention heads.
        intermediate_dim: Units of the first feed-forward matmul.
        key_dim: Size of each attention head; None: features // num_heads.
        dropout: Dropout rate of the two residual branches, in [0, 1).
        attention_dropout: Dropout rate of the attention probabilities, in [0, 1).
        activation: Activation between the two feed-forward matmuls (None: none, see above).
        norm_epsilon: Epsilon of the LayerNorms.
        input_quantizer: Quantizer of the inputs of every binary matmul (each gets its own instance).
        kernel_quantizer: Quantizer of every kernel. Default ``"magnitude_aware_sign"`` (±mean|W| per output
            unit: the binary branch keeps the scale of a float one, so the real residual is not drowned).
        kernel_constraint: Constraint of every kernel, default ``"weight_clip"``.
        query_quantizer: see `BinaryMultiHeadAttention`.
        key_quantizer: see `BinaryMultiHeadAttention`.
        value_quantizer: see `BinaryMultiHeadAttention`.
        probabilities: ``"softmax"`` or ``"bool"`` (BiBERT's Bi-Attention), see `BinaryMultiHeadAttention`.
        kernel_initializer: Initializer of every kernel.
        **kwargs: Base ``Layer`` arguments (``name``, ...).

    Raises:
        ValueError: a bad `num_heads`, `intermediate_dim`, `key_dim`, dropout rate, `norm_epsilon`,
            `probabilities` or quantizer name; at build, inputs not of shape (batch, length, features), or
            features not divisible by `num_heads` when `key_dim` is None.

    Example:
        >>> import keras_bnn, tensorflow as tf
        >>> from keras_bnn.legacy.layers.transformer import BinaryTransformerEncoder
        >>> tokens = tf.keras.Input((12,), dtype="int32")
        >>> x = tf.keras.layers.Embedding(100, 32, mask_zero=True)(tokens)
        >>> x = BinaryTransformerEncoder(num_heads=2, intermediate_dim=64)(x)
        >>> x = tf.keras.layers.GlobalAveragePooling1D()(x)  # averages the unpadded positions only
        >>> model = tf.keras.Model(tokens, tf.keras.layers.Dense(2)(x))
        >>> model(tf.constant([[5, 7, 9] + [0] * 9])).shape
        TensorShape([1, 2])
    """

    def __init__(
        self,
        num_heads: int,
        intermediate_dim: int,
        key_dim: int | None = None,
        dropout: float = 0.0,
        attention_dropout: float = 0.0,
        activation: Any = None,
        norm_epsilon: float = 1e-5,
        *,
        input_quantizer: Any = "ste_sign",
        kernel_quantizer: Any = "magnitude_aware_sign",
        kernel_constraint: Any = "weight_clip",
        query_quantizer: Any = "ste_sign",
        key_quantizer: Any = "ste_sign",
        value_quantizer: Any = "ste_sign",
        probabilities: str = "softmax",
        kernel_initializer: Any = "glorot_uniform",
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.num_heads = check_positive_int("num_heads", num_heads)
        self.intermediate_dim = check_positive_int("intermediate_dim", intermediate_dim)
        self.key_dim = check_positive_int("key_dim", key_dim, allow_none=True)
        check_fraction("dropout", dropout)
        check_fraction("attention_dropout", attention_dropout)
        if isinstance(norm_epsilon, bool) or not isinstance(norm_epsilon, (int, float)) or not norm_epsilon > 0:
            raise ValueError(f"norm_epsilon must be a positive number, got {norm_epsilon!r}.")
        if probabilities not in PROBABILITIES:
            raise ValueError(f"probabilities must be one of {PROBABILITIES}, got {probabilities!r}.")
        self.dropout = float(dropout)
        self.attention_dropout = float(attention_dropout)
        self.activation = tf.keras.activations.get(activation)
        self.norm_epsilon = float(norm_epsilon)
        self.probabilities = probabilities
        # Quantizers and the other sublayer settings are kept serialized (JSON strings, untouched by Keras'
        # attribute tracking); every sublayer builds its own instances from them.
        self._settings_json = json.dumps(serialized({
            name: lq.quantizers.serialize(resolve(name, value)) for name, value in (
                ("input_quantizer", input_quantizer), ("kernel_quantizer", kernel_quantizer),
                ("query_quantizer", query_quantizer), ("key_quantizer", key_quantizer),
                ("value_quantizer", value_quantizer))
        } | {
            "kernel_constraint": tf.keras.constraints.serialize(tf.keras.constraints.get(kernel_constraint)),
            "kernel_initializer": tf.keras.initializers.serialize(tf.keras.initializers.get(kernel_initializer)),
        }))
        self.supports_masking = True

    def _settings(self) -> dict[str, Any]:
        return json.loads(self._settings_json)

    def build(self, input_shape: tf.TensorShape) -> None:
        input_shape = tf.TensorShape(input_shape)
        if input_shape.rank != 3 or input_shape[-1] is None:
            raise ValueError(f"Layer {self.name!r} needs inputs of shape (batch, length, features) with known "
                             f"features, got shape {input_shape}.")
        features = int(input_shape[-1])
        key_dim = self.key_dim
        if key_dim is None:
            if features % self.num_heads:
                raise ValueError(f"Layer {self.name!r}: {features} features are not divisible by num_heads="
                                 f"{self.num_heads}; give key_dim.")
            key_dim = features // self.num_heads
        settings = self._settings()
        dense = {name: settings[name] for name in ("input_quantizer", "kernel_quantizer", "kernel_constraint")}
        self.attention = BinaryMultiHeadAttention(
            self.num_heads, key_dim, dropout=self.attention_dropout, probabilities=self.probabilities,
            name="attention", **settings)
        self.attention.build_for(input_shape, input_shape)
        self.attention_norm = tf.keras.layers.LayerNormalization(epsilon=self.norm_epsilon, name="attention_norm")
        build_sublayer(self.attention_norm, input_shape)
        self.intermediate_dense = lq.layers.QuantDense(
            self.intermediate_dim, name="intermediate", kernel_initializer=settings["kernel_initializer"], **dense)
        build_sublayer(self.intermediate_dense, input_shape)
        intermediate_shape = input_shape[:-1].concatenate([self.intermediate_dim])
        self.output_dense = lq.layers.QuantDense(
            features, name="output", kernel_initializer=settings["kernel_initializer"], **dense)
        build_sublayer(self.output_dense, intermediate_shape)
        self.output_norm = tf.keras.layers.LayerNormalization(epsilon=self.norm_epsilon, name="output_norm")
        build_sublayer(self.output_norm, input_shape)
        self.dropout_layer = tf.keras.layers.Dropout(self.dropout)
        super().build(input_shape)

    def call(self, inputs: tf.Tensor, attention_mask: tf.Tensor | None = None, training: bool | None = None,
             mask: tf.Tensor | None = None) -> tf.Tensor:
        if mask is not None:
            mask = tf.cast(mask, tf.bool)
            padding = mask[:, :, tf.newaxis] & mask[:, tf.newaxis, :]  # (B, T, T): both positions are tokens
            attention_mask = padding if attention_mask is None else tf.cast(attention_mask, tf.bool) & padding
        attended = self.attention(inputs, inputs, attention_mask=attention_mask, training=training)
        hidden = self.attention_norm(inputs + self.dropout_layer(attended, training=training))
        branch = self.output_dense(self.activation(self.intermediate_dense(hidden)))
        return self.output_norm(hidden + self.dropout_layer(branch, training=training))

    def compute_output_shape(self, input_shape: tf.TensorShape) -> tf.TensorShape:
        return tf.TensorShape(input_shape)

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "key_dim": self.key_dim,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "activation": tf.keras.activations.serialize(self.activation),
            "norm_epsilon": self.norm_epsilon,
            "probabilities": self.probabilities,
            **self._settings(),
        }
