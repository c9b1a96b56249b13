"""Binary multi-head attention: binary Q/K/V/O projections and binarized attention (BiBERT, BiT).

`BinaryMultiHeadAttention` is `tf.keras.layers.MultiHeadAttention` with the same call API (masks, causal
mask, dropout, ``return_attention_scores``), built on its override hooks ``_build_from_signature`` and
``_compute_attention``:

* the four projections are ``larq.layers.QuantDense`` layers on ``(B, T, features)`` (heads are split and
  merged by reshapes), so binary projections are the form :mod:`keras_bnn.tflite.rewrite` turns into 1x1 binary
  convolutions that Larq Compute Engine runs as bitpacked ``LceBconv2d`` ops;
* scores are ``q(Q) q(K)^T / sqrt(key_dim)`` with ``q`` the query / key quantizers (``ste_sign``: ±1, so every
  score is an integer / sqrt(key_dim));
* probabilities are either a softmax of the scores, or BiBERT's Bi-Attention ``bool(scores)`` (1 where the score
  is >= 0, else 0; no softmax), and the context is ``probabilities @ q(V)``.

What stays real, and why:

* the softmax (when chosen): normalising binary scores needs exp and a division. Its output is real, so the
  context matmul ``softmax @ sign(V)`` multiplies a real and a binary operand.
* the scaling 1/sqrt(key_dim), biases, the attention mask, dropout and (with ``probabilities="bool"``) the
  constant 1/S that keeps the summed context inside the straight-through window of the next binary input
  (S: key length; a positive constant, so it does not change the sign the output projection sees).
* a constant 1e-5 added to the context before a binary output projection. Binary scores make exact zeros in
  the context common (equal probabilities times opposite values cancel); the offset resolves them to +1
  (larq's sign(0)) in every runtime, so Keras and LCE, which sum in different orders, agree.
* score and context matmuls multiply two *activations*. LCE has bitpacked kernels only for binary activation x
  constant binary weight (``LceBconv2d``), so after conversion these matmuls run as float ``FULLY_CONNECTED``
  / ``BATCH_MATMUL`` ops on ±1 (or 0/1) values. :func:`attention_macs` counts them. For d_model 64, 4 heads of
  16, feed-forward 128 and 48 tokens (``benchmarks/attention.py``), the score matmul is 8.6% of a block's binary
  MACs (softmax attention; the real x binary context matmul is not counted as binary), and scores plus context
  are 15.8% with Bi-Attention (0/1 probabilities); the rest are bitpacked projections and feed-forward matmuls.

Conversion: ``keras_bnn.tflite.convert`` converts the layer with its rule (``keras_bnn.tflite.rules.attention``),
which turns the binary projections into 1x1 binary convolutions (an ``ElasticSign`` input is folded into an
equal ``LearnableThresholdSign`` input and an ``α``-scaled kernel first).

With every quantizer None (``input_quantizer``, ``kernel_quantizer``, ``query_quantizer``, ``key_quantizer``,
``value_quantizer``) and ``probabilities="softmax"`` the layer computes what ``tf.keras.layers.MultiHeadAttention``
computes with the same weights, up to float rounding (reshaped weights: the projection kernels here are
``(features, heads * dim)`` matrices instead of ``(features, heads, dim)`` tensors).

``larq.models.summary`` counts these layers' parameters and memory right (binary kernels are larq
``QuantizedVariable`` s of precision 1, everything else 32-bit) but, as for every layer outside its fixed list
of conv / dense classes, shows no MAC count; use :func:`attention_macs`.

References:
    - Qin et al., "BiBERT: Accurate Fully Binarized BERT", ICLR 2022, https://arxiv.org/abs/2203.06390
      (Bi-Attention: bool(sign(Q) sign(K)^T / sqrt(D)) sign(V), straight-through gradient on |x| <= 1).
    - Liu et al., "BiT: Robustly Binarized Multi-distilled Transformer", NeurIPS 2022,
      https://arxiv.org/abs/2205.13016 (elastic binary activations, ``keras_bnn.legacy.quantizers.ElasticSign``).
"""

from __future__ import annotations

import contextlib
import json
import math
from typing import Any

import larq as lq
import tensorflow as tf

from keras_bnn import _compat
from keras_bnn._compat import is_binary_quantizer
from keras_bnn._validation import check_fraction, check_positive_int
from keras_bnn.legacy.quantizers import resolve

__all__ = ["BinaryMultiHeadAttention", "attention_macs", "binary_step"]

PROBABILITIES = ("softmax", "bool")
PROJECTIONS = ("_query_dense", "_key_dense", "_value_dense", "_output_dense")  # MultiHeadAttention's sublayers
_TIE_OFFSET = 1e-5  # far above float32 rounding of a context (|p| <= 1), far below any other context value
# (batch, length, heads, dim) operands; scores (batch, heads, query length, key length)
_SCORES_EQUATION, _CONTEXT_EQUATION = "bshd,bthd->bhts", "bhts,bshd->bthd"


def binary_step(x: tf.Tensor) -> tf.Tensor:
    """BiBERT's ``bool``: 1 where x >= 0, else 0; straight-through gradient 1 on |x| <= 1, 0 outside.

    Example:
        >>> import keras_bnn, tensorflow as tf
        >>> from keras_bnn.legacy.layers.attention import binary_step
        >>> binary_step(tf.constant([-2.0, -0.5, 0.0, 3.0])).numpy()
        array([0., 0., 1., 1.], dtype=float32)
    """
    step = 0.5 * (lq.math.sign(x) + 1.0)  # larq's sign(0) = +1, so bool(0) = 1 as in BiBERT
    clipped = tf.clip_by_value(x, -1.0, 1.0)  # gradient 1 inside [-1, 1], 0 outside
    return clipped + tf.stop_gradient(step - clipped)


def serialized(config: Any) -> Any:
    """`config` without Keras' ``shared_object_id`` keys (recursively).

    Keras' .keras saving and loading mark two serialized objects with the same ``id()`` as one shared object.
    The quantizer and constraint objects these layers serialize in ``__init__`` are temporaries, whose ids Python
    reuses, so a later, unrelated object would otherwise be "shared" with them at loading (seen: a query
    quantizer loaded as the kernel constraint). Every sublayer builds its own instances anyway.
    """
    if isinstance(config, dict):
        return {key: serialized(value) for key, value in config.items() if key != "shared_object_id"}
    if isinstance(config, (list, tuple)):
        return [serialized(value) for value in config]
    return config


def _to_json(quantizer: Any) -> str:
    return json.dumps(serialized(lq.quantizers.serialize(quantizer)))


def build_sublayer(layer: Any, shape) -> None:
    """Build a sublayer (and its input quantizer) now, its weights named ``<layer>/<weight>`` as Keras would.

    Trainable quantizers (e.g. ``elastic_sign``) thus get their weights before the first call, so that
    ``from_config`` and .h5 loading create every weight.
    """
    if not isinstance(layer, tf.keras.layers.Layer) or layer.built:
        return
    with tf.name_scope(layer.name):
        layer.build(tf.TensorShape(shape))
        build_sublayer(getattr(layer, "input_quantizer", None), shape)


def _init_scope():
    """Create sublayer variables outside any tf.function being traced (as MultiHeadAttention does)."""
    if tf.compat.v1.executing_eagerly_outside_functions():
        return tf.init_scope()
    return contextlib.nullcontext()


@tf.keras.utils.register_keras_serializable(package="keras_bnn")
class BinaryMultiHeadAttention(tf.keras.layers.MultiHeadAttention):
    """Multi-head attention with binary projections and binarized scores (and optionally Bi-Attention).

    Inputs are ``(batch, length, features)`` tensors (the attention axis is the length axis). Everything of
    ``tf.keras.layers.MultiHeadAttention``'s call works the same: ``layer(query, value, key=None,
    attention_mask=None, return_attention_scores=False, training=None, use_causal_mask=False)``; Keras padding
    masks of `query` / `value` / `key` are applied. With ``return_attention_scores=True`` the probabilities
    (softmax, or 0/1 for Bi-Attention) of shape ``(batch, heads, query length, key length)`` are returned too.

    Args:
        num_heads: Number of attention heads.
        key_dim: Size of each head for query and key.
        value_dim: Size of each head for value; None means `key_dim`.
        dropout: Dropout rate on the attention probabilities, in [0, 1).
        use_bias: Whether the projections have biases.
        output_shape: Units of the output projection (an int or a 1-tuple); None: the query's features.
        attention_axes: Only None (or ``(1,)``): attention over the length axis.
        input_quantizer: Quantizer of the inputs of the four projections (each gets its own instance, so
            trainable quantizers such as ``"elastic_sign"`` learn per projection). Default ``"ste_sign"``.
        kernel_quantizer: Quantizer of the four projection kernels. Default ``"ste_sign"``; larq's
            ``"magnitude_aware_sign"`` (±mean|W| per output unit) keeps the float scale and is bitpacked too.
        kernel_constraint: Constraint of the projection kernels. Default ``"weight_clip"`` (larq's clip to
            [-1, 1], which keeps latent weights where the straight-through gradient is non-zero).
        query_quantizer: Quantizer of the projected queries before the score matmul. Default ``"ste_sign"``.
        key_quantizer: Quantizer of the projected keys. Default ``"ste_sign"``.
        value_quantizer: Quantizer of the projected values before the context matmul. Default ``"ste_sign"``.
        probabilities: ``"softmax"`` (softmax of the binary scores) or ``"bool"`` (BiBERT's Bi-Attention:
            1 where the score is >= 0 and the position is not masked, else 0; the context is then divided by the
            key length S).
        **kwargs: Other ``tf.keras.layers.MultiHeadAttention`` arguments (``kernel_initializer``,
            ``bias_initializer``, regularizers, ``bias_constraint``, ``name``, ...).

    Raises:
        ValueError: a bad `num_heads`, `key_dim`, `value_dim`, `dropout`, `output_shape`, `attention_axes`,
            `probabilities` or an unknown quantizer name; at build, inputs that are not of rank 3.

    Example:
        >>> import keras_bnn, tensorflow as tf
        >>> from keras_bnn.legacy.layers.attention import BinaryMultiHeadAttention
        >>> layer = BinaryMultiHeadAttention(num_heads=2, key_dim=16, probabilities="bool")
        >>> x = tf.random.normal((3, 10, 32))
        >>> output, probabilities = layer(x, x, return_attention_scores=True)
        >>> output.shape, probabilities.shape
        (TensorShape([3, 10, 32]), TensorShape([3, 2, 10, 10]))
        >>> sorted(set(probabilities.numpy().ravel().tolist()))
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
        self._input_quantizer_json = _to_json(resolve("input_quantizer", input_quantizer))
        self._kernel_quantizer_json = _to_json(resolve("kernel_quantizer", kernel_quantizer))
        super().__init__(num_heads, key_dim, value_dim=value_dim, dropout=dropout, use_bias=use_bias,
                         output_shape=output_shape, attention_axes=None, kernel_constraint=kernel_constraint,
                         **kwargs)
        sizes = tf.keras.layers.MultiHeadAttention.get_config(self)  # Keras keeps them in private attributes
        self.num_heads, self.key_dim, self.value_dim = sizes["num_heads"], sizes["key_dim"], sizes["value_dim"]
        self.output_units = sizes["output_shape"]  # None: the query's features
        self.query_quantizer = resolve("query_quantizer", query_quantizer)
        self.key_quantizer = resolve("key_quantizer", key_quantizer)
        self.value_quantizer = resolve("value_quantizer", value_quantizer)
        self.probabilities = probabilities

    # ------------------------------------------------------------------------------------------------------
    # Building

    def _projection(self, units: int, name: str) -> lq.layers.QuantDense:
        return lq.layers.QuantDense(units, use_bias=self.get_config()["use_bias"], name=name,
                                    **self._projection_quantizers(), **_compat.mha_sublayer_kwargs(self))

    def _projection_quantizers(self) -> dict[str, Any]:
        """Serialized input and kernel quantizers of the projections (a new instance is made from each)."""
        return {"input_quantizer": json.loads(self._input_quantizer_json),
                "kernel_quantizer": json.loads(self._kernel_quantizer_json)}

    def build_for(self, query_shape, value_shape, key_shape=None) -> None:
        """Build the layer for inputs of these shapes (as its first call would), e.g. inside a parent's build."""
        with tf.name_scope(self.name):
            self._build_from_signature(query_shape, value_shape, key_shape)

    def _build_from_signature(self, query, value, key=None) -> None:
        """MultiHeadAttention's build hook: the four QuantDense projections and the softmax / dropout layers for
        these input shapes."""
        self._built_from_signature = True
        shapes = {}
        for role, tensor in (("query", query), ("value", value), ("key", value if key is None else key)):
            shape = tf.TensorShape(tensor.shape if hasattr(tensor, "shape") else tensor)
            if shape.rank != 3 or shape[-1] is None:
                raise ValueError(f"Layer {self.name!r} needs {role} of shape (batch, length, features) with "
                                 f"known features, got shape {shape}.")
            shapes[role] = shape
        self._query_shape, self._value_shape, self._key_shape = shapes["query"], shapes["value"], shapes["key"]
        output_units = self.output_units or self._query_shape[-1]
        with _init_scope():
            self._query_dense = self._projection(self.num_heads * self.key_dim, "query")
            self._key_dense = self._projection(self.num_heads * self.key_dim, "key")
            self._value_dense = self._projection(self.num_heads * self.value_dim, "value")
            self._output_dense = self._projection(output_units, "attention_output")
            context_shape = tf.TensorShape([None, None, self.num_heads * self.value_dim])
            for projection, shape in ((self._query_dense, self._query_shape), (self._key_dense, self._key_shape),
                                      (self._value_dense, self._value_shape), (self._output_dense, context_shape)):
                build_sublayer(projection, shape)
            self._binary_context = is_binary_quantizer(self._output_dense.input_quantizer)
            build_sublayer(self.query_quantizer, [None, None, self.num_heads, self.key_dim])
            build_sublayer(self.key_quantizer, [None, None, self.num_heads, self.key_dim])
            build_sublayer(self.value_quantizer, [None, None, self.num_heads, self.value_dim])
            self._probabilities_softmax = tf.keras.layers.Softmax(axis=-1)
            self._probabilities_dropout = tf.keras.layers.Dropout(rate=self.get_config()["dropout"])

    # ------------------------------------------------------------------------------------------------------
    # Attention

    def _split_heads(self, tensor: tf.Tensor, size: int) -> tf.Tensor:
        return tf.reshape(tensor, tf.concat([tf.shape(tensor)[:-1], [self.num_heads, size]], axis=0))

    def _compute_attention(self, query, key, value, attention_mask=None, training=None):
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
        scores = tf.einsum(_SCORES_EQUATION, key, query) * (1.0 / math.sqrt(float(self.key_dim)))
        if self.probabilities == "softmax":
            mask = None if attention_mask is None else tf.expand_dims(attention_mask, axis=-3)  # over heads
            probabilities = self._probabilities_softmax(scores, mask)
            scale = None
        else:
            probabilities = binary_step(scores)
            if attention_mask is not None:
                mask = tf.cast(attention_mask, probabilities.dtype)
                probabilities = probabilities * tf.expand_dims(mask, axis=-3)  # broadcast over heads
            scale = 1.0 / float(value.shape[1]) if value.shape[1] is not None else \
                1.0 / tf.cast(tf.shape(value)[1], probabilities.dtype)
        dropped = self._probabilities_dropout(probabilities, training=training)
        context = tf.einsum(_CONTEXT_EQUATION, dropped, value)
        if scale is not None:
            context = context * scale
        if self._binary_context:
            # Binary scores make exact real-arithmetic zeros in the context common (equal probabilities times
            # opposite values cancel; an all-zero Bi-Attention row gives -0.0). A tiny offset makes the next
            # sign resolve them to +1, larq's sign(0), whatever the summation order of the runtime (Keras, LCE).
            context = context + _TIE_OFFSET
        context = tf.reshape(context, tf.concat([tf.shape(context)[:-2], [self.num_heads * self.value_dim]], 0))
        return context, probabilities

    # ------------------------------------------------------------------------------------------------------
    # Serialization

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("attention_axes", None)  # always the length axis
        return {
            **config,
            **self._projection_quantizers(),
            "query_quantizer": lq.quantizers.serialize(self.query_quantizer),
            "key_quantizer": lq.quantizers.serialize(self.key_quantizer),
            "value_quantizer": lq.quantizers.serialize(self.value_quantizer),
            "probabilities": self.probabilities,
        }


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
        when their quantizers are binary), the score matmul ``Q K^T`` (activation x activation) and the context
        matmul ``P V`` (activation x activation).

    Example:
        >>> import keras_bnn, tensorflow as tf
        >>> from keras_bnn.legacy.layers.attention import BinaryMultiHeadAttention, attention_macs
        >>> layer = BinaryMultiHeadAttention(num_heads=2, key_dim=8)
        >>> _ = layer(tf.zeros((1, 5, 16)), tf.zeros((1, 5, 16)))
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
