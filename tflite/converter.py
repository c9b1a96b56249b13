"""``convert``: a Keras BNN to a flatbuffer of one target kind, every binary layer it can run bitpacked.

The target (``kernels=``) is a plug-in (:mod:`keras_bnn.tflite.targets`); the options are checked before any work;
a binary layer that stays in float is never silent: it is warned about (:class:`NotBitpackedWarning`), or with
``strict=True`` it is an error (:class:`NotBitpackableError`). ``convert`` returns the bytes, or with
``report=True`` one :class:`ConversionResult` holding the bytes and the full report.

Example:
    >>> import keras_bnn, larq as lq, tensorflow as tf
    >>> from keras_bnn.tflite import convert
    >>> inputs = tf.keras.Input((784,))
    >>> binary = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign")
    >>> hidden = lq.layers.QuantDense(512, **binary)(inputs)
    >>> outputs = lq.layers.QuantDense(10, **binary)(hidden)
    >>> flatbuffer = convert(tf.keras.Model(inputs, outputs), strict=True)
    >>> len(flatbuffer) < 784 * 512 // 8 * 2  # 1 bit per binary weight, not 32
    True
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from typing import Any

import tensorflow as tf

from keras_bnn._validation import check_positive_int
from keras_bnn.tflite import keras3
from keras_bnn.tflite.audit import NotBitpackedLayer
from keras_bnn.tflite.inspection import FlatbufferReport, inspect
from keras_bnn.tflite.targets import get_target
from keras_bnn.tflite.targets import float as _float  # noqa: F401  (registers the "float" target)
from keras_bnn.tflite.targets import int8 as _int8  # noqa: F401  (registers the "int8" target)
from keras_bnn.tflite.targets import lce as _lce  # noqa: F401  (registers the "lce" target)

__all__ = ["ConversionResult", "NotBitpackableError", "NotBitpackedLayer", "NotBitpackedWarning", "convert"]


class NotBitpackedWarning(UserWarning):
    """A binary layer stays in float in the converted flatbuffer."""


class NotBitpackableError(ValueError):
    """Raised by ``convert(..., strict=True)`` when some binary layers cannot be bitpacked.

    Attributes:
        layers: every such layer, with the reason.
    """

    def __init__(self, layers: list[NotBitpackedLayer], kernels: str = "lce"):
        self.layers = list(layers)
        details = "; ".join(str(layer) for layer in self.layers)
        super().__init__(f"{len(self.layers)} binary layer(s) cannot be bitpacked for kernels={kernels!r}: {details}")


@dataclasses.dataclass(frozen=True)
class ConversionResult:
    """What ``convert(..., report=True)`` returns.

    Attributes:
        flatbuffer: The flatbuffer's bytes.
        kernels: The target it was made for (``"lce"``, ...).
        report: :func:`keras_bnn.tflite.inspect`'s report of those bytes (ops, MACs, size against the ideal).
        not_bitpacked: Binary layers that stay in float, with the reason.
        notes: Anything else the conversion had to do (e.g. a layer used as it is because it cannot be copied).
    """

    flatbuffer: bytes
    kernels: str
    report: FlatbufferReport
    not_bitpacked: tuple[NotBitpackedLayer, ...] = ()
    notes: tuple[str, ...] = ()

    def __str__(self) -> str:
        lines = [str(self.report)]
        if self.not_bitpacked:
            lines.append("Binary layers not bitpacked: " + "; ".join(map(str, self.not_bitpacked)))
        lines.extend(f"Note: {note}" for note in self.notes)
        return "\n".join(lines)


def _validate(model: Any, kernels: str, strict: Any, report: Any, batch_size: Any, options: dict) -> Any:
    """Check every argument before any work; the target checks its own options."""
    if not isinstance(model, tf.keras.Model):
        raise TypeError(f"convert() needs a tf.keras.Model, got {type(model).__name__}: {model!r}; it takes a tf-keras "
                        "model (tf.keras.Model), a Keras 3 model (keras.Model) or the path of a Keras 3 .keras file")
    target = get_target(kernels)
    for name, value in (("strict", strict), ("report", report)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be a bool, got {value!r}")
    check_positive_int("batch_size", batch_size, allow_none=True)
    target.validate(model, options)
    return target


def convert(
    model: tf.keras.Model | Any,
    *,
    kernels: str = "lce",
    strict: bool = False,
    report: bool = False,
    batch_size: int | None = None,
    inference_input_type: tf.DType = tf.float32,
    inference_output_type: tf.DType = tf.float32,
    target: str = "arm",
    **options: Any,
) -> bytes | ConversionResult:
    """Convert a Keras BNN to a flatbuffer; the model itself is not modified.

    Args:
        model: a Functional or Sequential tf-keras model (a subclassed one only if none of its layers needs a
            rewrite); or a Functional or Sequential Keras 3 model (``keras.Model`` of Keras and keras_bnn layers,
            trained on any backend), or the path of its ``.keras`` file (loaded with safe mode on): it is rebuilt
            as the equivalent tf-keras model (:func:`keras_bnn.tflite.keras3.to_tf_keras`, same layers and
            weights) and converted as that model is.
        kernels: The target: ``"lce"`` (Larq Compute Engine, bitpacked ``LceBconv2d``; for LCE's runtime on ARM)
            or ``"int8"`` (TFLite builtin int8 ops only, binary layers exact; for stock LiteRT / TFLite, TFLite
            Micro and int8 accelerators: it needs ``representative_data``, see
            :class:`keras_bnn.tflite.targets.int8.Int8Target`), or ``"float"`` (stock TFLite float ops: the
            reference).
        strict: raise :class:`NotBitpackableError` when a binary layer cannot be bitpacked, instead of a
            :class:`NotBitpackedWarning` per layer.
        report: return a :class:`ConversionResult` (bytes, inspection report, layers left in float) instead of
            the bytes.
        batch_size: batch size of the flatbuffer's inputs; None keeps the model's (1 if unknown).
        inference_input_type: ``tf.float32`` or ``tf.int8``.
        inference_output_type: ``tf.float32`` or ``tf.int8``.
        target: LCE's target hardware, ``"arm"`` or ``"xcore"`` (``kernels="lce"`` only).
        **options: further options of the target (for ``"lce"``: ``larq_compute_engine.convert_keras_model``'s,
            e.g. ``experimental_default_int8_range``; for ``"int8"``: ``representative_data``, ``head``,
            ``weight_digits``).

    Returns:
        The flatbuffer bytes, or a :class:`ConversionResult` with ``report=True``.

    Raises:
        TypeError: `model` is not a Keras model, an option is unknown, or the model is subclassed and needs a
            rewrite (a subclassed Keras 3 model always).
        ValueError: an unknown `kernels`, an option value the target rejects, or a bad `batch_size`;
            ``keras_bnn.tflite.targets.int8.UnsupportedLayerError`` (a ValueError) names a layer the int8 target
            cannot lower exactly; a Keras 3 layer or quantizer with no tf-keras equivalent.
        FileNotFoundError: `model` is a path to no file.
        NotBitpackableError: with ``strict=True``, some binary layers cannot be bitpacked (all are listed).

    Example:
        >>> import keras_bnn, larq as lq, tensorflow as tf
        >>> from keras_bnn.tflite import convert
        >>> inputs = tf.keras.Input((16, 32))
        >>> binary = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign")
        >>> outputs = lq.layers.QuantConv1D(32, 3, **binary)(inputs)
        >>> result = convert(tf.keras.Model(inputs, outputs), strict=True, report=True)
        >>> result.flatbuffer[4:8], result.report.bitpacked_share
        (b'TFL3', 1.0)
    """
    options = dict(options, inference_input_type=inference_input_type, inference_output_type=inference_output_type)
    if kernels == "lce":
        options["target"] = target
    elif target != "arm":
        raise TypeError(f"target={target!r} is an option of kernels='lce' (LCE's target hardware), not of "
                        f"kernels={kernels!r}")
    if isinstance(model, (str, os.PathLike)):
        model = keras3.load_keras3_model(model)
    if keras3.is_keras3_model(model):
        model = keras3.to_tf_keras(model)  # the same layers and weights, as the tf-keras model the rules rewrite
    converter = _validate(model, kernels, strict, report, batch_size, options)
    output = converter.convert(model, strict=strict, batch_size=batch_size, options=options)
    if strict and output.not_bitpacked:
        raise NotBitpackableError(output.not_bitpacked, kernels)
    for layer in output.not_bitpacked:
        warnings.warn(f"binary layer {layer.name!r} ({layer.class_name}) stays in float: {layer.reason}",
                      NotBitpackedWarning, stacklevel=2)
    if output.bitpacked_layers == 0 and not output.not_bitpacked:
        warnings.warn(f"model {model.name!r} has no binary layer (binary input and kernel quantizers); it was "
                      "converted without bitpacked ops", NotBitpackedWarning, stacklevel=2)
    for note in output.notes:
        warnings.warn(f"layer used as it is (shared with the model): {note}", UserWarning, stacklevel=2)
    if not report:
        return output.flatbuffer
    return ConversionResult(output.flatbuffer, kernels, inspect(output.flatbuffer), tuple(output.not_bitpacked),
                            tuple(output.notes))
