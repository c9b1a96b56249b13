"""Convert a Keras BNN to a Larq Compute Engine flatbuffer with every binary layer bitpacked.

:func:`convert` rewrites a copy of the model (:mod:`keras_bnn.tflite.rewrite`) so that binary dense and
conv1d layers take the binary-Conv2D form LCE bitpacks, converts the copy with
``larq_compute_engine.convert_keras_model``, then checks the flatbuffer: each binary convolution the rewrite
expected must be an ``LceBconv2d`` op. A binary layer that stays in float is never silent: it is warned about
(:class:`NotBitpackedWarning`), or with ``strict=True`` it is an error (:class:`NotBitpackableError`).

Example:
    >>> import keras_bnn, larq as lq, tensorflow as tf
    >>> from keras_bnn.tflite.converter import convert
    >>> inputs = tf.keras.Input((784,))
    >>> binary = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign")
    >>> hidden = lq.layers.QuantDense(512, **binary)(inputs)
    >>> outputs = lq.layers.QuantDense(10, **binary)(hidden)
    >>> flatbuffer = convert(tf.keras.Model(inputs, outputs), strict=True)
    >>> len(flatbuffer) < 784 * 512 // 8 * 2  # 1 bit per binary weight, not 32
    True
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections import Counter, defaultdict

import larq_compute_engine as lce
import tensorflow as tf

from keras_bnn._compat import lce_validate_options, tflite_schema
from keras_bnn.tflite.rewrite import BitpackableLayer, NotBitpackedLayer, rewrite_for_lce

__all__ = ["NotBitpackableError", "NotBitpackedLayer", "NotBitpackedWarning", "convert", "convert_with_report"]

log = logging.getLogger(__name__)


class NotBitpackedWarning(UserWarning):
    """A binary layer stays in float in the converted flatbuffer."""


class NotBitpackableError(ValueError):
    """Raised by ``convert(..., strict=True)`` when some binary layers cannot be bitpacked.

    Attributes:
        layers: every such layer, with the reason.
    """

    def __init__(self, layers: list[NotBitpackedLayer]):
        self.layers = list(layers)
        details = "; ".join(str(layer) for layer in self.layers)
        super().__init__(f"{len(self.layers)} binary layer(s) cannot be bitpacked by LCE: {details}")


def _lce_keyword_options() -> set[str]:
    """Keyword options of ``lce.convert_keras_model`` (read from its signature, so new LCE options pass)."""
    parameters = inspect.signature(lce.convert_keras_model).parameters.values()
    return {parameter.name for parameter in parameters if parameter.kind is inspect.Parameter.KEYWORD_ONLY}


def _validate(model, options: dict) -> None:
    """Check the arguments before any work: TypeError for a wrong model or unknown option; LCE's own checks."""
    if not isinstance(model, tf.keras.Model):
        raise TypeError(f"convert() needs a tf.keras.Model, got {type(model).__name__}: {model!r}")
    unknown = sorted(set(options) - _lce_keyword_options())
    if unknown:
        raise TypeError(f"convert() got unknown option(s) {', '.join(map(repr, unknown))}; LCE accepts "
                        f"{', '.join(sorted(_lce_keyword_options()))}")
    with warnings.catch_warnings():  # LCE repeats its advice (e.g. on experimental options) when converting
        warnings.simplefilter("ignore")
        lce_validate_options(**options)


def _bconv_signature(in_channels: int, out_channels: int, kernel: tuple, strides: tuple, dilation: tuple) -> tuple:
    return (int(in_channels), int(out_channels), *map(int, kernel), *map(int, strides), *map(int, dilation))


def _flatbuffer_bconvs(flatbuffer: bytes) -> Counter:
    """Signatures of the ``LceBconv2d`` ops in every subgraph of a flatbuffer."""
    from flatbuffers import flexbuffers

    schema = tflite_schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    found: Counter = Counter()
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex].customCode
            if code is None or code.decode() != "LceBconv2d":
                continue
            options = flexbuffers.Loads(bytes(op.customOptions))
            filter_shape = subgraph.tensors[op.inputs[1]].shape  # (out, kh, kw, packed in)
            found[_bconv_signature(
                options["channels_in"], filter_shape[0], filter_shape[1:3],
                (options["stride_height"], options["stride_width"]),
                (options["dilation_height_factor"], options["dilation_width_factor"]))] += 1
    return found


def _missing_bconvs(bitpackable: list[BitpackableLayer], flatbuffer: bytes) -> list[NotBitpackedLayer]:
    """Binary convolutions the rewrite expected LCE to bitpack but that have no LceBconv2d op."""
    expected: dict[tuple, list[BitpackableLayer]] = defaultdict(list)
    for entry in bitpackable:
        conv = entry.layer
        expected[_bconv_signature(int(conv.kernel.shape[2]) * conv.groups, conv.filters, conv.kernel_size,
                                  conv.strides, conv.dilation_rate)].append(entry)
    found = _flatbuffer_bconvs(flatbuffer)
    missing = []
    for signature, entries in expected.items():
        if found[signature] >= len(entries):
            continue
        reason = (f"LCE made {found[signature]} LceBconv2d op(s) for the {len(entries)} binary convolution(s) "
                  f"of this shape ({', '.join(entry.name for entry in entries)}); its quantizers may not lower "
                  "to LCE's sign (LceQuantize) and +-1 weights")
        missing.extend(NotBitpackedLayer(entry.name, entry.class_name, reason) for entry in entries)
    return missing


def _warn_if_float_io(flatbuffer: bytes, options: dict) -> None:
    """LCE keeps float32 inputs/outputs when int8 ones are asked of a model without quantization: say so."""
    schema = tflite_schema()
    main = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0)).subgraphs[0]
    for side, indices in (("input", main.inputs), ("output", main.outputs)):
        wanted = options[f"inference_{side}_type"]
        if wanted != tf.float32 and any(main.tensors[i].type != schema.TensorType.INT8 for i in indices):
            warnings.warn(f"inference_{side}_type={wanted.name} was asked, but the flatbuffer's {side}s stay "
                          "float32: the model has no int8 quantization (fake-quant ops or "
                          "experimental_default_int8_range)", UserWarning, stacklevel=4)


def convert_with_report(
    model: tf.keras.Model,
    *,
    inference_input_type: tf.DType = tf.float32,
    inference_output_type: tf.DType = tf.float32,
    target: str = "arm",
    strict: bool = False,
    batch_size: int | None = None,
    **lce_options,
) -> tuple[bytes, list[NotBitpackedLayer]]:
    """Like :func:`convert`, and also return the binary layers left in float (each also warned about).

    Returns:
        ``(flatbuffer, not_bitpacked)``.

    Example:
        >>> import keras_bnn, larq as lq, tensorflow as tf
        >>> from keras_bnn.tflite.converter import convert_with_report
        >>> inputs = tf.keras.Input((8, 8, 32))
        >>> binary = dict(input_quantizer="ste_sign", depthwise_quantizer="ste_sign")
        >>> outputs = lq.layers.QuantDepthwiseConv2D(3, name="dw", **binary)(inputs)
        >>> import warnings
        >>> with warnings.catch_warnings(record=True):  # one NotBitpackedWarning for "dw"
        ...     flatbuffer, left = convert_with_report(tf.keras.Model(inputs, outputs))
        >>> [layer.name for layer in left]
        ['dw']
    """
    options = dict(lce_options, inference_input_type=inference_input_type,
                   inference_output_type=inference_output_type, target=target)
    _validate(model, options)
    rewritten = rewrite_for_lce(model, target=target, batch_size=batch_size)
    flatbuffer = lce.convert_keras_model(rewritten.model, **options)
    _warn_if_float_io(flatbuffer, options)
    missing = _missing_bconvs(rewritten.bitpackable, flatbuffer)
    not_bitpacked = rewritten.not_bitpacked + missing
    if strict and not_bitpacked:
        raise NotBitpackableError(not_bitpacked)
    for layer in not_bitpacked:
        warnings.warn(f"binary layer {layer.name!r} ({layer.class_name}) stays in float: {layer.reason}",
                      NotBitpackedWarning, stacklevel=3)
    if not rewritten.bitpackable and not not_bitpacked:
        warnings.warn(f"model {model.name!r} has no binary layer (binary input and kernel quantizers); it was "
                      "converted without bitpacked ops", NotBitpackedWarning, stacklevel=3)
    else:
        log.info("bitpacked %d binary layer(s); %d stay in float",
                 len(rewritten.bitpackable) - len(missing), len(not_bitpacked))
    return flatbuffer, not_bitpacked


def convert(
    model: tf.keras.Model,
    *,
    inference_input_type: tf.DType = tf.float32,
    inference_output_type: tf.DType = tf.float32,
    target: str = "arm",
    strict: bool = False,
    batch_size: int | None = None,
    **lce_options,
) -> bytes:
    """Convert a Keras BNN to an LCE flatbuffer, bitpacking every binary layer LCE can run bitpacked.

    The model itself is not modified: a copy is rewritten (binary ``QuantDense`` / ``QuantConv1D`` become
    binary ``QuantConv2D``) and converted.

    Args:
        model: a Functional or Sequential Keras model (a subclassed one only if none of its layers needs a
            rewrite).
        inference_input_type: ``tf.float32`` or ``tf.int8``, passed to LCE.
        inference_output_type: ``tf.float32`` or ``tf.int8``, passed to LCE.
        target: ``"arm"`` or ``"xcore"``, passed to LCE.
        strict: raise :class:`NotBitpackableError` when a binary layer cannot be bitpacked, instead of a
            :class:`NotBitpackedWarning` per layer.
        batch_size: batch size of the flatbuffer's inputs; None keeps the model's (LCE uses 1 if unknown).
        **lce_options: further keyword options of ``larq_compute_engine.convert_keras_model`` (e.g.
            ``experimental_default_int8_range``).

    Returns:
        The flatbuffer bytes.

    Raises:
        TypeError: `model` is not a Keras model, an option is unknown, or the model is subclassed and needs a
            rewrite.
        ValueError: an option value LCE rejects, or a bad `batch_size`.
        NotBitpackableError: with ``strict=True``, some binary layers cannot be bitpacked (all are listed).

    Example:
        >>> import keras_bnn, larq as lq, tensorflow as tf
        >>> from keras_bnn.tflite.converter import convert
        >>> inputs = tf.keras.Input((16, 32))
        >>> binary = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign")
        >>> outputs = lq.layers.QuantConv1D(32, 3, **binary)(inputs)
        >>> flatbuffer = convert(tf.keras.Model(inputs, outputs), strict=True)
        >>> flatbuffer[4:8]
        b'TFL3'
    """
    flatbuffer, _ = convert_with_report(
        model, inference_input_type=inference_input_type, inference_output_type=inference_output_type,
        target=target, strict=strict, batch_size=batch_size, **lce_options)
    return flatbuffer
