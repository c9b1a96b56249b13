"""A binary Transformer encoder block on Keras 3: binary attention and feed-forward, real residuals and LayerNorm.

Weights, by name and in this order (those of ``keras_bnn.legacy.layers.BinaryTransformerEncoder``, which the
zoo's weight files follow): ``attention/{query,key,value,attention_output}/{kernel,bias}``,
``attention_norm/{gamma,beta}``, ``intermediate/{kernel,bias}``, ``output/{kernel,bias}``,
``output_norm/{gamma,beta}``; `AddPositions` has one weight, ``positions``.
"""

from __future__ import annotations

import json
from typing import Any

import keras
from keras import ops

from keras_bnn import constraints as bnn_constraints
from keras_bnn import quantizers as bnn_quantizers
from keras_bnn._validation import check_fraction, check_positive_int
from keras_bnn.layers.attention import PROBABILITIES, BinaryMultiHeadAttention, build_sublayer, serialized
from keras_bnn.layers.quantized import QuantDense
from keras_bnn.layers.quantized_base import _resolve
from keras_bnn.quantizers.base import PACKAGE

__all__ = ["AddPositions", "BinaryTransformerEncoder"]


@keras.saving.register_keras_serializable(package=PACKAGE)
class AddPositions(keras.layers.Layer):
    """Adds a learned position embedding (for up to `max_length` positions); keeps the token mask.

    Args:
        max_length: Number of positions; longer inputs are an error.
        **kwargs: Base `Layer` arguments.

    Raises:
        ValueError: a bad `max_length`; inputs longer than `max_length` (when their length is known).

    Example:
        >>> import keras, keras_bnn
        >>> tuple(keras_bnn.layers.AddPositions(8)(keras.ops.zeros((2, 5, 4))).shape)
        (2, 5, 4)
    """

    def __init__(self, max_length: int, **kwargs: Any):
        super().__init__(**kwargs)
        self.max_length = check_positive_int("max_length", max_length)
        self.supports_masking = True

    def build(self, input_shape) -> None:
        self.positions = self.add_weight(name="positions", shape=(self.max_length, int(input_shape[-1])),
                                         initializer=keras.initializers.RandomNormal(stddev=0.02))

    def call(self, inputs):
        length = inputs.shape[1]
        if length is not None and length > self.max_length:
            raise ValueError(f"Layer {self.name!r} has {self.max_length} positions, got inputs of length {length}.")
        if length is None:
            length = ops.shape(inputs)[1]
        return inputs + ops.cast(self.positions[:length], inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "max_length": self.max_length}


@keras.saving.register_keras_serializable(package=PACKAGE)
class BinaryTransformerEncoder(keras.layers.Layer):
    """Post-norm Transformer encoder block (as in BERT, BiBERT and BiT) with binary matmuls.

    ``y = LN(x + Dropout(BinaryMultiHeadAttention(x, x)))``, then
    ``out = LN(y + Dropout(QuantDense_out(activation(QuantDense_in(y)))))``.

    Binary: the Q/K/V/output projections and both feed-forward matmuls (binary inputs via `input_quantizer`,
    binary kernels via `kernel_quantizer`), and the attention scores / context as in `BinaryMultiHeadAttention`.
    Real: the residual additions, the two LayerNorms, biases and dropout.

    The feed-forward `activation` defaults to None: the sign of the second matmul's input quantizer is already
    the nonlinearity. Do not use ``"relu"`` with a sign quantizer (sign(relu(x)) is +1 everywhere); use
    ``"gelu"``/``"relu"`` only for a float block (all quantizers None), e.g. the float teacher of distillation.

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
        >>> import keras, keras_bnn
        >>> tokens = keras.Input((12,), dtype="int32")
        >>> x = keras.layers.Embedding(100, 32, mask_zero=True)(tokens)
        >>> x = keras_bnn.layers.BinaryTransformerEncoder(num_heads=2, intermediate_dim=64)(x)
        >>> x = keras.layers.GlobalAveragePooling1D()(x)  # averages the unpadded positions only
        >>> model = keras.Model(tokens, keras.layers.Dense(2)(x))
        >>> tuple(model(keras.ops.convert_to_tensor([[5, 7, 9] + [0] * 9])).shape)
        (1, 2)
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
        self.activation = keras.activations.get(activation)
        self.norm_epsilon = float(norm_epsilon)
        self.probabilities = probabilities
        # Quantizers and the other sublayer settings are kept serialized (JSON strings, untouched by Keras'
        # attribute tracking); every sublayer builds its own instances from them.
        self._settings_json = json.dumps(serialized({
            name: bnn_quantizers.serialize(_resolve(name, value)) for name, value in (
                ("input_quantizer", input_quantizer), ("kernel_quantizer", kernel_quantizer),
                ("query_quantizer", query_quantizer), ("key_quantizer", key_quantizer),
                ("value_quantizer", value_quantizer))
        } | {
            "kernel_constraint": keras.constraints.serialize(bnn_constraints.get(kernel_constraint)),
            "kernel_initializer": keras.initializers.serialize(keras.initializers.get(kernel_initializer)),
        }))
        self.supports_masking = True

    def _settings(self) -> dict[str, Any]:
        return json.loads(self._settings_json)

    def build(self, input_shape) -> None:
        input_shape = tuple(input_shape)
        if len(input_shape) != 3 or input_shape[-1] is None:
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
            name="attention", dtype=self.dtype_policy, **settings)
        self.attention.build_for(input_shape, input_shape)
        self.attention_norm = keras.layers.LayerNormalization(epsilon=self.norm_epsilon, name="attention_norm",
                                                              dtype=self.dtype_policy)
        build_sublayer(self.attention_norm, input_shape)
        self.intermediate_dense = QuantDense(self.intermediate_dim, name="intermediate", dtype=self.dtype_policy,
                                             kernel_initializer=settings["kernel_initializer"], **dense)
        build_sublayer(self.intermediate_dense, input_shape)
        self.output_dense = QuantDense(features, name="output", dtype=self.dtype_policy,
                                       kernel_initializer=settings["kernel_initializer"], **dense)
        build_sublayer(self.output_dense, input_shape[:-1] + (self.intermediate_dim,))
        self.output_norm = keras.layers.LayerNormalization(epsilon=self.norm_epsilon, name="output_norm",
                                                           dtype=self.dtype_policy)
        build_sublayer(self.output_norm, input_shape)
        self.dropout_layer = keras.layers.Dropout(self.dropout)

    def call(self, inputs, attention_mask=None, training=None, mask=None):
        if mask is not None:
            mask = ops.cast(mask, "bool")
            padding = ops.logical_and(ops.expand_dims(mask, 2), ops.expand_dims(mask, 1))  # (B, T, T): tokens
            attention_mask = padding if attention_mask is None else ops.logical_and(
                ops.cast(attention_mask, "bool"), padding)
        attended = self.attention(inputs, inputs, attention_mask=attention_mask, training=training)
        hidden = self.attention_norm(inputs + self.dropout_layer(attended, training=training))
        branch = self.output_dense(self.activation(self.intermediate_dense(hidden)))
        return self.output_norm(hidden + self.dropout_layer(branch, training=training))

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "intermediate_dim": self.intermediate_dim,
            "key_dim": self.key_dim,
            "dropout": self.dropout,
            "attention_dropout": self.attention_dropout,
            "activation": keras.activations.serialize(self.activation),
            "norm_epsilon": self.norm_epsilon,
            "probabilities": self.probabilities,
            **self._settings(),
        }
