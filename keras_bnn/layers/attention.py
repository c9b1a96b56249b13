"""Binary multi-head attention on Keras 3: binary Q/K/V/O projections and binarized attention (BiBERT, BiT).

`BinaryMultiHeadAttention` has the call API of ``keras.layers.MultiHeadAttention`` (Keras padding masks,
``attention_mask``, ``use_causal_mask``, dropout, ``return_attention_scores``):

* the four projections are `QuantDense` layers on ``(B, T, features)`` named ``query``, ``key``, ``value`` and
  ``attention_output`` (kernels ``(features, heads * dim)``; heads are split and merged by reshapes), the weights
  of ``keras_bnn.legacy.layers.BinaryMultiHeadAttention`` by name, shape and order;
* scores are ``q(Q) q(K)^T / sqrt(key_dim)`` with ``q`` the query / key quantizers (``ste_sign``: ±1, so every
  score is an integer / sqrt(key_dim));
* probabilities are a softmax of the scores, or BiBERT's Bi-Attention ``bool(scores)`` (1 where the score is
  >= 0, else 0; no softmax, and the context is divided by the key length S); the context is
  ``probabilities @ q(V)``.

Real: the softmax, the scale 1/sqrt(key_dim), biases, masks, dropout, and a constant 1e-5 added to the context
before a binary output projection (binary scores make exact zeros common; the offset resolves them to +1, larq's
sign(0), in every runtime). With every quantizer None and ``probabilities="softmax"`` the layer computes what
``keras.layers.MultiHeadAttention`` computes with the same (reshaped) weights.

References:
    - Qin et al., "BiBERT: Accurate Fully Binarized BERT", ICLR 2022, https://arxiv.org/abs/2203.06390
    - Liu et al., "BiT: Robustly Binarized Multi-distilled Transformer", NeurIPS 2022,
      https://arxiv.org/abs/2205.13016
"""

from __future__ import annotations

import json
import math
from typing import Any

import keras
from keras import ops

from keras_bnn import constraints as bnn_constraints
from keras_bnn import quantizers as bnn_quantizers
from keras_bnn._validation import check_fraction, check_positive_int
from keras_bnn.layers.quantized import QuantDense
from keras_bnn.layers.quantized_base import _resolve
from keras_bnn.quantizers.base import PACKAGE, clipped_gradient, sign, straight_through

__all__ = ["BinaryMultiHeadAttention", "attention_macs", "binary_step"]

PROBABILITIES = ("softmax", "bool")
_TIE_OFFSET = 1e-5  # far above float32 rounding of a context (|p| <= 1), far below any other context value
_LARGE_NEGATIVE = -1e9  # added to masked scores before the softmax (tf-keras' Softmax)
_FLOAT16_NEGATIVE = -65504.0  # float16's lowest
# (batch, length, heads, dim) operands; scores (batch, heads, query length, key length)
_SCORES_EQUATION, _CONTEXT_EQUATION = "bshd,bthd->bhts", "bhts,bshd->bthd"


def _step(x):
    return 0.5 * (sign(x) + 1.0)  # sign(0) = +1, so bool(0) = 1 as in BiBERT


_binary_step = straight_through(_step, lambda x, upstream: clipped_gradient(x, upstream, 1.0))


def binary_step(x):
    """BiBERT's ``bool``: 1 where x >= 0, else 0; straight-through gradient 1 on |x| <= 1, 0 outside.

    Example:
        >>> from keras import ops
        >>> from keras_bnn.layers.attention import binary_step
        >>> ops.convert_to_numpy(binary_step(ops.convert_to_tensor([-2.0, -0.5, 0.0, 3.0]))).tolist()
        [0.0, 0.0, 1.0, 1.0]
    """
    return _binary_step(x)


def serialized(config: Any) -> Any:
    """`config` without Keras' ``shared_object_id`` keys (recursively).

    Inside Keras' object-sharing scope (.keras saving and loading) two serialized objects with the same ``id()``
    are marked as one shared object; the temporaries these layers serialize in ``__init__`` must not carry that
    mark (every sublayer builds its own instances anyway).
    """
    if isinstance(config, dict):
        return {key: serialized(value) for key, value in config.items() if key != "shared_object_id"}
    if isinstance(config, (list, tuple)):
        return [serialized(value) for value in config]
    return config


def _to_json(quantizer: Any) -> str:
    return json.dumps(serialized(bnn_quantizers.serialize(quantizer)))


def build_sublayer(layer: Any, shape) -> None:
    """Build a sublayer (and its input quantizer) now, so that every weight exists before the first call."""
    if not isinstance(layer, keras.layers.Layer) or layer.built:
        return
    layer.build(tuple(shape))
    build_sublayer(getattr(layer, "input_quantizer", None), shape)


def _shape_list(shape) -> list | None:
    return None if shape is None else [None if d is None else int(d) for d in shape]


def _clone(initializer):
    """A fresh copy of an initializer (each projection draws its own values)."""
    return initializer.__class__.from_config(initializer.get_config())


@keras.saving.register_keras_serializable(package=PACKAGE)
class BinaryMultiHeadAttention(keras.layers.Layer):
    """Multi-head attention with binary projections and binarized scores (and optionally Bi-Attention).

    Inputs are ``(batch, length, features)`` tensors (attention over the length axis). Call:
    ``layer(query, value, key=None, attention_mask=None, return_attention_scores=False, training=None,
    use_causal_mask=False)``; Keras padding masks of `query` / `value` / `key` are applied. With
    ``return_attention_scores=True`` the probabilities (softmax, or 0/1 for Bi-Attention) of shape
    ``(batch, heads, query length, key length)`` are returned too.

    Args:
        num_heads: Number of attention heads.
        key_dim: Size of each head for query and key.
        value_dim: Size of each head for value; None means `key_dim`.
        dropout: Dropout rate on the attention probabilities, in [0, 1).
        use_bias: Whether the projections have biases.
        output_shape: Units of the output projection (an int or a 1-tuple); None: the query's features.
        attention_axes: Only None (or ``(1,)``): attention over the length axis.
        input_quantizer: Quantizer of the inputs of the four projections (each gets its own instance).
            Default ``"ste_sign"``.
        kernel_quantizer: Quantizer of the four projection kernels. Default ``"ste_sign"``.
        kernel_constraint: Constraint of the projection kernels. Default ``"weight_clip"``.
        query_quantizer: Quantizer of the projected queries before the score matmul. Default ``"ste_sign"``.
        key_quantizer: Quantizer of the projected keys. Default ``"ste_sign"``.
        value_quantizer: Quantizer of the projected values before the context matmul. Default ``"ste_sign"``.
        probabilities: ``"softmax"`` or ``"bool"`` (BiBERT's Bi-Attention: 1 where the score is >= 0 and the
            position is not masked, else 0; the context is then divided by the key length S).
        kernel_initializer: Initializer of the projection kernels.
        bias_initializer: Initializer of the projection biases.
        kernel_regularizer: Regularizer of the projection kernels.
        bias_regularizer: Regularizer of the projection biases.
        activity_regularizer: Regularizer of the projections' outputs and of the layer's output.
        bias_constraint: Constraint of the projection biases.
        **kwargs: Base ``Layer`` arguments (``name``, ...).

    Raises:
        ValueError: a bad `num_heads`, `key_dim`, `value_dim`, `dropout`, `output_shape`, `attention_axes`,
            `probabilities` or an unknown quantizer name; at build, inputs that are not of rank 3.

    Example:
        >>> import keras, keras_bnn
        >>> layer = keras_bnn.layers.BinaryMultiHeadAttention(num_heads=2, key_dim=16, probabilities="bool")
        >>> x = keras.random.normal((3, 10, 32))
        >>> output, probabilities = layer(x, x, return_attention_scores=True)
        >>> tuple(output.shape), tuple(probabilities.shape)
        ((3, 10, 32), (3, 2, 10, 10))
        >>> sorted(set(keras.ops.convert_to_numpy(probabilities).ravel().tolist()))
        [0.0, 1.0]
    """

    def __init__(
        self,
        num_heads: int,
        key_dim: int,
        value_dim: int | None = None,
        dropout: float = 0.0,
        use_bias: bool = True,
        output_shape: int | tuple[int] | None = None,
        attention_axes: int | tuple[int] | None = None,
        *,
        input_quantizer: Any = "ste_sign",
        kernel_quantizer: Any = "ste_sign",
        kernel_constraint: Any = "weight_clip",
        query_quantizer: Any = "ste_sign",
        key_quantizer: Any = "ste_sign",
        value_quantizer: Any = "ste_sign",
        probabilities: str = "softmax",
        kernel_initializer: Any = "glorot_uniform",
        bias_initializer: Any = "zeros",
        kernel_regularizer: Any = None,
        bias_regularizer: Any = None,
        activity_regularizer: Any = None,
        bias_constraint: Any = None,
        **kwargs: Any,
    ):
        check_positive_int("num_heads", num_heads)
        check_positive_int("key_dim", key_dim)
        check_positive_int("value_dim", value_dim, allow_none=True)
        check_fraction("dropout", dropout)
        if isinstance(output_shape, (tuple, list)):
            if len(output_shape) != 1:
                raise ValueError(f"output_shape must be an int or a 1-tuple (one output axis), got {output_shape!r}.")
            output_shape = output_shape[0]
        check_positive_int("output_shape", output_shape, allow_none=True)
        if attention_axes not in (None, 1, (1,), [1]):
            raise ValueError(f"BinaryMultiHeadAttention attends over the length axis only: attention_axes must be "
                             f"None or (1,), got {attention_axes!r}.")
        if probabilities not in PROBABILITIES:
            raise ValueError(f"probabilities must be one of {PROBABILITIES}, got {probabilities!r}.")
        # Projection quantizers are kept serialized (as JSON, which Keras' attribute tracking leaves alone):
        # every projection builds its own instance from them.
        self._input_quantizer_json = _to_json(_resolve("input_quantizer", input_quantizer))
        self._kernel_quantizer_json = _to_json(_resolve("kernel_quantizer", kernel_quantizer))
        query_quantizer = _resolve("query_quantizer", query_quantizer)
        key_quantizer = _resolve("key_quantizer", key_quantizer)
        value_quantizer = _resolve("value_quantizer", value_quantizer)
        super().__init__(activity_regularizer=activity_regularizer, **kwargs)
        self.supports_masking = True
        self.num_heads = int(num_heads)
        self.key_dim = int(key_dim)
        self.value_dim = int(value_dim) if value_dim else self.key_dim
        self.dropout = float(dropout)
        self.use_bias = bool(use_bias)
        self.output_units = output_shape  # None: the query's features
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.bias_regularizer = keras.regularizers.get(bias_regularizer)
        self.kernel_constraint = bnn_constraints.get(kernel_constraint)
        self.bias_constraint = keras.constraints.get(bias_constraint)
        self.query_quantizer = query_quantizer
        self.key_quantizer = key_quantizer
        self.value_quantizer = value_quantizer
        self.probabilities = probabilities
        self._query_shape = self._key_shape = self._value_shape = None

    # ------------------------------------------------------------------------------------------------------
    # Building

    def _projection_quantizers(self) -> dict[str, Any]:
        """Serialized input and kernel quantizers of the projections (a new instance is made from each)."""
        return {"input_quantizer": json.loads(self._input_quantizer_json),
                "kernel_quantizer": json.loads(self._kernel_quantizer_json)}

    def _projection(self, units: int, name: str) -> QuantDense:
        return QuantDense(
            units, use_bias=self.use_bias, name=name, kernel_initializer=_clone(self.kernel_initializer),
            bias_initializer=_clone(self.bias_initializer), kernel_regularizer=self.kernel_regularizer,
            bias_regularizer=self.bias_regularizer, activity_regularizer=self.activity_regularizer,
            kernel_constraint=self.kernel_constraint, bias_constraint=self.bias_constraint,
            dtype=self.dtype_policy, **self._projection_quantizers())

    def build_for(self, query_shape, value_shape, key_shape=None) -> None:
        """Build the layer for inputs of these shapes (as its first call would), e.g. inside a parent's build."""
        self.build(query_shape, value_shape, key_shape)

    def build(self, query_shape, value_shape, key_shape=None) -> None:
        if self.built:
            return
        shapes = {}
        for role, shape in (("query", query_shape), ("value", value_shape),
                            ("key", value_shape if key_shape is None else key_shape)):
            shape = tuple(shape)
            if len(shape) != 3 or shape[-1] is None:
                raise ValueError(f"Layer {self.name!r} needs {role} of shape (batch, length, features) with "
                                 f"known features, got shape {shape}.")
            shapes[role] = shape
        self._query_shape, self._value_shape, self._key_shape = shapes["query"], shapes["value"], shapes["key"]
        output_units = self.output_units or self._query_shape[-1]
        self._query_dense = self._projection(self.num_heads * self.key_dim, "query")
        self._key_dense = self._projection(self.num_heads * self.key_dim, "key")
        self._value_dense = self._projection(self.num_heads * self.value_dim, "value")
        self._output_dense = self._projection(output_units, "attention_output")
        context_shape = (None, None, self.num_heads * self.value_dim)
        for projection, shape in ((self._query_dense, self._query_shape), (self._key_dense, self._key_shape),
                                  (self._value_dense, self._value_shape), (self._output_dense, context_shape)):
            build_sublayer(projection, shape)
        self._binary_context = bnn_quantizers.is_binary(self._output_dense.input_quantizer)
        build_sublayer(self.query_quantizer, (None, None, self.num_heads, self.key_dim))
        build_sublayer(self.key_quantizer, (None, None, self.num_heads, self.key_dim))
        build_sublayer(self.value_quantizer, (None, None, self.num_heads, self.value_dim))
        self._probabilities_dropout = keras.layers.Dropout(rate=self.dropout)
        self.built = True

    # ------------------------------------------------------------------------------------------------------
    # Attention

    def _split_heads(self, tensor, size: int):
        return ops.reshape(tensor, (ops.shape(tensor)[0], ops.shape(tensor)[1], self.num_heads, size))

    @staticmethod
    def _attention_mask(query, value, key, query_mask, value_mask, key_mask, attention_mask, use_causal_mask):
        """The ``(B, T, S)`` boolean mask from the inputs' padding masks, `attention_mask` and the causal mask."""
        masks = []
        if query_mask is not None:
            masks.append(ops.expand_dims(ops.cast(query_mask, "bool"), -1))  # (B, T, 1)
        if value_mask is not None:
            masks.append(ops.expand_dims(ops.cast(value_mask, "bool"), -2))  # (B, 1, S)
        if key_mask is not None and key is not None and key is not value:
            masks.append(ops.expand_dims(ops.cast(key_mask, "bool"), -2))
        if use_causal_mask:
            rows = ops.expand_dims(ops.arange(ops.shape(query)[1]), -1)
            columns = ops.expand_dims(ops.arange(ops.shape(value)[1]), 0)
            masks.append(ops.expand_dims(ops.greater_equal(rows, columns), 0))  # (1, T, S)
        if attention_mask is not None:
            masks.append(ops.cast(attention_mask, "bool"))
        if not masks:
            return None
        combined = masks[0]
        for mask in masks[1:]:
            combined = ops.logical_and(combined, mask)
        return combined

    def compute_attention(self, query, key, value, attention_mask=None, training=None):
        """Binarized dot-product attention on projected ``(B, T, heads * dim)`` tensors.

        Returns:
            ``(context, probabilities)``: context ``(B, T, heads * value_dim)`` (heads merged, the input of the
            output projection), probabilities ``(B, heads, T, S)``.
        """
        query = self._split_heads(query, self.key_dim)
        key = self._split_heads(key, self.key_dim)
        value = self._split_heads(value, self.value_dim)
        if self.query_quantizer is not None:
            query = self.query_quantizer(query)
        if self.key_quantizer is not None:
            key = self.key_quantizer(key)
        if self.value_quantizer is not None:
            value = self.value_quantizer(value)
        # The scale is applied after the matmul, so that both matmul operands stay exactly binary.
        scores = ops.einsum(_SCORES_EQUATION, key, query) * (1.0 / math.sqrt(float(self.key_dim)))
        mask = None if attention_mask is None else ops.expand_dims(ops.cast(attention_mask, scores.dtype), -3)
        if self.probabilities == "softmax":
            if mask is not None:
                float16 = keras.backend.standardize_dtype(scores.dtype) == "float16"
                scores = scores + (1.0 - mask) * (_FLOAT16_NEGATIVE if float16 else _LARGE_NEGATIVE)
            probabilities = ops.softmax(scores, axis=-1)
            scale = None
        else:
            probabilities = binary_step(scores)
            if mask is not None:
                probabilities = probabilities * mask  # broadcast over heads
            length = value.shape[1]
            scale = 1.0 / (float(length) if length is not None else ops.cast(ops.shape(value)[1], scores.dtype))
        dropped = self._probabilities_dropout(probabilities, training=training)
        context = ops.einsum(_CONTEXT_EQUATION, dropped, value)
        if scale is not None:
            context = context * scale
        if self._binary_context:
            context = context + _TIE_OFFSET
        context = ops.reshape(context, (ops.shape(context)[0], ops.shape(context)[1],
                                        self.num_heads * self.value_dim))
        return context, probabilities

    def call(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None, attention_mask=None,
             return_attention_scores=False, training=None, use_causal_mask=False):
        attention_mask = self._attention_mask(query, value, key, query_mask, value_mask, key_mask, attention_mask,
                                              use_causal_mask)
        projected_query = self._query_dense(query)
        projected_key = self._key_dense(value if key is None else key)
        projected_value = self._value_dense(value)
        context, probabilities = self.compute_attention(projected_query, projected_key, projected_value,
                                                        attention_mask, training)
        output = self._output_dense(context)
        if return_attention_scores:
            return output, probabilities
        return output

    def compute_output_shape(self, query_shape, value_shape, key_shape=None):
        return tuple(query_shape[:-1]) + (self.output_units or query_shape[-1],)

    def compute_output_spec(self, query, value, key=None, query_mask=None, value_mask=None, key_mask=None,
                            attention_mask=None, return_attention_scores=False, training=None,
                            use_causal_mask=False):
        output = keras.KerasTensor(self.compute_output_shape(query.shape, value.shape), dtype=self.compute_dtype)
        if return_attention_scores:
            key_length = (value if key is None else key).shape[1]
            scores = keras.KerasTensor((query.shape[0], self.num_heads, query.shape[1], key_length),
                                       dtype=self.compute_dtype)
            return output, scores
        return output

    # ------------------------------------------------------------------------------------------------------
    # Serialization

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_dim,
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "output_shape": self.output_units,
            "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            "bias_regularizer": keras.regularizers.serialize(self.bias_regularizer),
            "activity_regularizer": keras.regularizers.serialize(self.activity_regularizer),
            "kernel_constraint": keras.constraints.serialize(self.kernel_constraint),
            "bias_constraint": keras.constraints.serialize(self.bias_constraint),
            "query_shape": _shape_list(self._query_shape),
            "key_shape": _shape_list(self._key_shape),
            "value_shape": _shape_list(self._value_shape),
            **self._projection_quantizers(),
            "query_quantizer": bnn_quantizers.serialize(self.query_quantizer),
            "key_quantizer": bnn_quantizers.serialize(self.key_quantizer),
            "value_quantizer": bnn_quantizers.serialize(self.value_quantizer),
            "probabilities": self.probabilities,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BinaryMultiHeadAttention:
        config = dict(config)
        shapes = [config.pop(name, None) for name in ("query_shape", "value_shape", "key_shape")]
        layer = cls(**config)
        if shapes[0] is not None:
            layer.build(*shapes)
        return layer


def attention_macs(layer: BinaryMultiHeadAttention, query_length: int, key_length: int | None = None,
                   batch_size: int = 1) -> dict[str, int]:
    """MACs of one call of a built attention layer, by kind.

    Args:
        layer: a built `BinaryMultiHeadAttention`.
        query_length: T.
        key_length: S (None: T, self-attention).
        batch_size: B.

    Returns:
        ``{"projections": ..., "scores": ..., "context": ...}``: the four projections (binary weight x activation
        when their quantizers are binary), the score matmul ``Q K^T`` and the context matmul ``P V``
        (activation x activation).

    Raises:
        ValueError: the layer is not built.

    Example:
        >>> import keras, keras_bnn
        >>> from keras_bnn.layers.attention import BinaryMultiHeadAttention, attention_macs
        >>> layer = BinaryMultiHeadAttention(num_heads=2, key_dim=8)
        >>> _ = layer(keras.ops.zeros((1, 5, 16)), keras.ops.zeros((1, 5, 16)))
        >>> attention_macs(layer, 5)
        {'projections': 5120, 'scores': 400, 'context': 400}
    """
    config = layer.get_config()
    if config.get("query_shape") is None:
        raise ValueError(f"Layer {layer.name!r} is not built; call it once first.")
    key_length = query_length if key_length is None else key_length
    features = int(config["query_shape"][-1])
    key_features, value_features = int(config["key_shape"][-1]), int(config["value_shape"][-1])
    heads, key_dim, value_dim = config["num_heads"], config["key_dim"], config["value_dim"]
    output_units = int(config["output_shape"] or features)
    projections = (query_length * features * heads * key_dim + key_length * key_features * heads * key_dim
                   + key_length * value_features * heads * value_dim + query_length * heads * value_dim * output_units)
    return {
        "projections": batch_size * projections,
        "scores": batch_size * heads * query_length * key_length * key_dim,
        "context": batch_size * heads * query_length * key_length * value_dim,
    }
