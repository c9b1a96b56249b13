"""The ``"lce"`` target: a Larq Compute Engine flatbuffer in which every binary matmul is bitpacked.

The model's copy from :func:`keras_bnn.tflite.rewrite.rewrite_for_lce` (every binary matmul a binary
``QuantConv2D``) is converted by ``larq_compute_engine.convert_keras_model``; the flatbuffer is then read back and
each binary convolution the rewrite expected must be an ``LceBconv2d`` op, else the layer is reported with why.
"""

from __future__ import annotations

import inspect
import logging
import warnings
from collections import Counter, defaultdict
from typing import Any

import numpy as np
import tensorflow as tf

from keras_bnn._compat import is_binary_quantizer, lce_validate_options
from keras_bnn.tflite.audit import BitpackableLayer, NotBitpackedLayer
from keras_bnn.tflite.flatbuffer import Flatbuffer, read_flatbuffer
from keras_bnn.tflite.isolation import lce_convert_keras_model
from keras_bnn.tflite.rewrite import rewrite_for_lce
from keras_bnn.tflite.targets import Target, TargetOutput, register_target

__all__ = ["LceTarget"]

log = logging.getLogger(__name__)


def _lce_keyword_options() -> set[str]:
    """Keyword options of ``lce.convert_keras_model`` (read from its signature, so new LCE options pass)."""
    import larq_compute_engine as lce

    parameters = inspect.signature(lce.convert_keras_model).parameters.values()
    return {parameter.name for parameter in parameters if parameter.kind is inspect.Parameter.KEYWORD_ONLY}


def _bconv_signature(in_channels: int, out_channels: int, kernel: tuple, strides: tuple, dilation: tuple) -> tuple:
    return (int(in_channels), int(out_channels), *map(int, kernel), *map(int, strides), *map(int, dilation))


def _flatbuffer_bconvs(flatbuffer: Flatbuffer) -> Counter:
    """Signatures of the ``LceBconv2d`` ops in every subgraph of a flatbuffer."""
    found: Counter = Counter()
    for subgraph, _, op, kind in flatbuffer.operators():
        if kind != "LceBconv2d":
            continue
        options = flatbuffer.custom_options(op)
        filter_shape = flatbuffer.model.subgraphs[subgraph].tensors[op.inputs[1]].shape  # (out, kh, kw, packed)
        found[_bconv_signature(
            options["channels_in"], filter_shape[0], filter_shape[1:3],
            (options["stride_height"], options["stride_width"]),
            (options["dilation_height_factor"], options["dilation_width_factor"]))] += 1
    return found


def _missing_bconvs(bitpackable: list[BitpackableLayer], flatbuffer: Flatbuffer) -> list[NotBitpackedLayer]:
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


def _warn_if_float_io(flatbuffer: Flatbuffer, options: dict) -> None:
    """LCE keeps float32 inputs/outputs when int8 ones are asked of a model without quantization: say so."""
    main = flatbuffer.model.subgraphs[0]
    for side, indices in (("input", main.inputs), ("output", main.outputs)):
        wanted = options[f"inference_{side}_type"]
        if wanted != tf.float32 and any(flatbuffer.type_name(main.tensors[i]) != "INT8" for i in indices):
            warnings.warn(f"inference_{side}_type={wanted.name} was asked, but the flatbuffer's {side}s stay "
                          "float32: the model has no int8 quantization (fake-quant ops or "
                          "experimental_default_int8_range)", UserWarning, stacklevel=5)


# LCE folds larq's sign of a constant (its LceQuantize) as if the constant were rank 4; on a rank-2/3 kernel of more
# than 2**25 weights (TensorFlow leaves those unfolded) it reads past the shape: a crash, a "cannot create
# std::vector larger than max_size()" error, or minutes of work (larq-zoo's DoReFaNet: 2-bit inputs, sign kernels).
LCE_SIGN_FOLD_LIMIT = 2**25


def _check_sign_fold_limit(model: tf.keras.Model) -> None:
    """ValueError naming a layer whose binary kernel LCE's converter would crash on, before it runs."""
    for layer in model.submodules:
        quantizer = getattr(layer, "kernel_quantizer", None)
        kernel = getattr(layer, "kernel", None)
        if quantizer is None or kernel is None or not is_binary_quantizer(quantizer):
            continue
        shape = tuple(kernel.shape)
        if len(shape) != 4 and int(np.prod(shape)) > LCE_SIGN_FOLD_LIMIT:
            raise ValueError(
                f"layer {layer.name!r} ({type(layer).__name__}) cannot be converted with kernels='lce': its binary "
                f"kernel {'x'.join(map(str, shape))} ({int(np.prod(shape)):,} weights) stays a float matmul (not a "
                f"bitpacked convolution: its input is not binary), and LCE's converter crashes on a binary "
                f"rank-{len(shape)} kernel of more than 2**25 = {LCE_SIGN_FOLD_LIMIT:,} weights. Make its input "
                "binary (it is then bitpacked), split it into smaller layers, or use kernels='float'.")


class LceTarget(Target):
    """Options: LCE's ``convert_keras_model`` keyword options (``inference_input_type``,
    ``inference_output_type``, ``target`` "arm"/"xcore", ``experimental_default_int8_range``, ...)."""

    name = "lce"

    def validate(self, model: tf.keras.Model, options: dict[str, Any]) -> None:
        known = _lce_keyword_options()
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(f"convert() got unknown option(s) {', '.join(map(repr, unknown))}; LCE accepts "
                            f"{', '.join(sorted(known))}")
        with warnings.catch_warnings():  # LCE repeats its advice (e.g. on experimental options) when converting
            warnings.simplefilter("ignore")
            lce_validate_options(**options)

    def convert(self, model: tf.keras.Model, *, strict: bool, batch_size: int | None,
                options: dict[str, Any]) -> TargetOutput:
        rewritten = rewrite_for_lce(model, target=options["target"], batch_size=batch_size)
        _check_sign_fold_limit(rewritten.model)
        flatbuffer = read_flatbuffer(lce_convert_keras_model(rewritten.model, **options))  # a crash: an error
        _warn_if_float_io(flatbuffer, options)
        missing = _missing_bconvs(rewritten.bitpackable, flatbuffer)
        log.info("bitpacked %d binary layer(s); %d stay in float", len(rewritten.bitpackable) - len(missing),
                 len(rewritten.not_bitpacked) + len(missing))
        return TargetOutput(flatbuffer.data, rewritten.not_bitpacked + missing,
                            len(rewritten.bitpackable) - len(missing), rewritten.notes)


register_target(LceTarget())
