"""The rewrite step of conversion: a copy of the model in which every binary matmul is a binary ``QuantConv2D``.

:func:`rewrite_for_lce` applies the conversion rules (:mod:`keras_bnn.tflite.registry`, registered per layer
family in :mod:`keras_bnn.tflite.rules`) to a copy of a Functional or Sequential model and lists its binary layers:
the convolutions LCE should bitpack, and those that stay in float with the reason. The user's model is never
modified. Every conversion target starts from this copy.

Example:
    >>> import keras_bnn, larq as lq, tensorflow as tf
    >>> from keras_bnn.tflite import rewrite_for_lce
    >>> inputs = tf.keras.Input((64,), batch_size=1)
    >>> dense = lq.layers.QuantDense(10, input_quantizer="ste_sign", kernel_quantizer="ste_sign", name="dense")
    >>> result = rewrite_for_lce(tf.keras.Model(inputs, dense(inputs)))
    >>> type(result.model.layers[-1]).__name__, result.not_bitpacked
    ('BinaryDenseAsConv2D', [])
    >>> [(layer.name, layer.class_name) for layer in result.bitpackable]
    [('dense', 'QuantDense')]
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging

import tensorflow as tf

from keras_bnn._compat import is_graph_model
from keras_bnn._validation import check_positive_int
from keras_bnn.tflite import rules  # noqa: F401  (registers the rules of larq's and keras_bnn's layers)
from keras_bnn.tflite.audit import BitpackableLayer, NotBitpackedLayer, audit
from keras_bnn.tflite.cloning import Clone, clone_with_rules, contains_rewrite, subclassed_error

__all__ = ["RewriteResult", "rewrite_for_lce"]


@dataclasses.dataclass
class RewriteResult:
    """What :func:`rewrite_for_lce` made.

    Attributes:
        model: the rewritten copy (the original model itself when nothing needed rewriting and it cannot be
            cloned, i.e. a subclassed model).
        bitpackable: binary convolutions of the copy that LCE should bitpack.
        not_bitpacked: binary layers that will stay in float, with the reason.
        notes: layers used as they are because they cannot be copied (their objects are shared with the
            user's model), with the reason.
    """

    model: tf.keras.Model
    bitpackable: list[BitpackableLayer] = dataclasses.field(default_factory=list)
    not_bitpacked: list[NotBitpackedLayer] = dataclasses.field(default_factory=list)
    notes: list[str] = dataclasses.field(default_factory=list)


@contextlib.contextmanager
def _quiet_larq_construction():
    """Silence larq's training-only advice (kernel_constraint) while layers are copied for conversion."""
    logger = logging.getLogger("larq.layers_base")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def rewrite_for_lce(model: tf.keras.Model, *, target: str = "arm", batch_size: int | None = None) -> RewriteResult:
    """Copy `model` with every conversion rule applied, and list its binary layers.

    Args:
        model: a Functional or Sequential Keras model (nested models are rewritten too). A subclassed model is
            accepted only when no layer in it needs a rewrite; it is then returned as it is.
        target: LCE's target, ``"arm"`` or ``"xcore"`` (what LCE bitpacks differs slightly).
        batch_size: the batch size of the copy's inputs (LCE fixes it at conversion); None keeps the model's.

    Returns:
        A :class:`RewriteResult`.

    Raises:
        TypeError: `model` is not a Keras model, or is subclassed and holds layers that need a rewrite (or a
            new `batch_size`).
        ValueError: the model has no known input shape, or `batch_size` is not a positive integer.
    """
    if not isinstance(model, tf.keras.Model):
        raise TypeError(f"expected a tf.keras.Model, got {type(model).__name__}: {model!r}")
    check_positive_int("batch_size", batch_size, allow_none=True)
    with _quiet_larq_construction():
        if not is_graph_model(model):
            if contains_rewrite(model, target) or batch_size is not None:
                raise subclassed_error(model)
            clone = Clone(model=model)
        else:
            input_tensors = None
            if batch_size is not None:
                # Same names as the model's Input layers: they become the file's signature names.
                input_tensors = [tf.keras.Input(batch_shape=(batch_size, *tensor.shape[1:]), dtype=tensor.dtype,
                                                name=name) for tensor, name in zip(model.inputs, model.input_names)]
            clone = clone_with_rules(model, target, input_tensors)
        bitpackable, not_bitpacked = audit(clone.model, target, clone.origins)
    return RewriteResult(clone.model, bitpackable, not_bitpacked, clone.reused)
