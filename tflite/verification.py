"""Check that a flatbuffer computes what its Keras model computes, on the same inputs, in a real runtime."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import tensorflow as tf

from keras_bnn.tflite.flatbuffer import read_flatbuffer
from keras_bnn.tflite.keras3 import is_keras3_model
from keras_bnn.tflite.runtimes import default_runtime, open_runtime

__all__ = ["VerificationReport", "verify"]

_KERAS_CHUNK = 256  # samples per Keras call when the Keras model accepts any batch size


@dataclass(frozen=True)
class VerificationReport:
    """Keras vs a runtime's outputs on the same samples, from :func:`verify`.

    Attributes:
        runtime: the runtime that ran the flatbuffer (e.g. ``"lce"``).
        n_samples: samples compared.
        flatbuffer_batch_size: the batch size fixed in the flatbuffer (inputs ran in chunks of it).
        max_abs_diff: largest |keras - flatbuffer| over all output elements.
        mean_abs_diff: mean |keras - flatbuffer| over all output elements.
        max_abs_keras: largest |keras| output, to judge the diffs against.
        top1_agreement: fraction of samples whose argmax over the class axis agrees, for outputs of shape
            (batch, classes) with at least 2 classes; None for other outputs.
        quantized_io: whether the flatbuffer's input or output is integer-quantized (int8/uint8/int16).
    """

    runtime: str
    n_samples: int
    flatbuffer_batch_size: int
    max_abs_diff: float
    mean_abs_diff: float
    max_abs_keras: float
    top1_agreement: float | None
    quantized_io: bool

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field."""
        return dataclasses.asdict(self)

    def __str__(self) -> str:
        top1 = "n/a (no class axis)" if self.top1_agreement is None else f"{self.top1_agreement:.2%}"
        io = ", int-quantized I/O" if self.quantized_io else ""
        return (f"Keras vs {self.runtime} on {self.n_samples} samples (flatbuffer batch {self.flatbuffer_batch_size}{io}): "
                f"max |diff| {self.max_abs_diff:.3g}, mean |diff| {self.mean_abs_diff:.3g} "
                f"(max |keras| {self.max_abs_keras:.3g}), top-1 agreement {top1}")


def _quantize(x: np.ndarray, dtype: np.dtype, scale: Any, zero_point: Any, what: str) -> np.ndarray:
    """Map float values to the integer dtype of a quantized flatbuffer input."""
    if scale is None:
        return x.astype(dtype)  # an integer input that is not quantized (for example token ids)
    if not np.isscalar(scale):
        raise NotImplementedError(f"{what} is quantized per channel (scales {scale}); only per-tensor is supported")
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def _in_chunks(run, x: np.ndarray, batch: int, pad: bool = True) -> np.ndarray:
    """run() over x in chunks of ``batch`` samples; with ``pad``, the last chunk is zero-padded to exactly
    ``batch`` samples and the padding's outputs are dropped."""
    outputs = []
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch]
        missing = batch - len(chunk) if pad else 0
        if missing:
            chunk = np.concatenate([chunk, np.zeros((missing, *chunk.shape[1:]), chunk.dtype)])
        outputs.append(np.array(run(chunk))[:batch - missing])
    return np.concatenate(outputs)


def verify(model: Any, flatbuffer: bytes, x: Any, *, runtime: str | None = None, num_threads: int = 1,
           **runtime_options: Any) -> VerificationReport:
    """Run a Keras model and its flatbuffer on the same inputs and compare the outputs.

    The flatbuffer is checked first (bad bytes are a ValueError, never a crash). Its batch size is fixed at
    conversion; ``x`` may hold any number of samples: they run in chunks of that batch size, the last chunk
    zero-padded (the padding's outputs are dropped). The Keras model runs with ``training=False``. For an
    int8/uint8 input or output, values are (de)quantized with the tensor's scale and zero point.
    Single-input, single-output models only.

    Float results differ by float32 rounding only (accumulation order), except where a binary quantizer sees a
    value within rounding of 0 (for example a pooled value that is exactly 0 in real arithmetic): the sign may
    then flip, and the diff jumps by about 2x the weights that value feeds.

    Args:
        model: the Keras model the flatbuffer was converted from: a tf-keras model, or a Keras 3 model (run as it
            is, on the process' Keras backend).
        flatbuffer: the flatbuffer bytes.
        x: inputs, an array of shape ``(n_samples, *per_sample_shape)``.
        runtime: the runtime to run it in (``keras_bnn.tflite.runtimes.available_runtimes()``); None picks
            :func:`keras_bnn.tflite.runtimes.default_runtime`'s.
        num_threads: interpreter threads.
        **runtime_options: the runtime's own options, e.g. ``use_indirect_bgemm=True`` for LCE's indirect BGEMM.

    Returns:
        A :class:`VerificationReport`.

    Raises:
        TypeError: ``model`` is not a Keras model or ``flatbuffer`` is not bytes.
        ValueError: ``flatbuffer`` is not a valid TFLite flatbuffer, ``x`` is empty, or the per-sample shape of
            ``x``, the model's input and the flatbuffer's input disagree.
        NotImplementedError: several inputs/outputs, or per-channel quantized input/output.

    Example:
        >>> import keras_bnn, numpy as np, larq as lq, tensorflow as tf, larq_compute_engine as lce
        >>> from keras_bnn.tflite import verify
        >>> inputs = tf.keras.Input(batch_size=2, shape=(6, 6, 8))
        >>> binary = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign")
        >>> model = tf.keras.Model(inputs, lq.layers.QuantConv2D(4, 3, **binary)(inputs))
        >>> report = verify(model, lce.convert_keras_model(model), np.random.rand(5, 6, 6, 8) - 0.5)
        >>> report.n_samples, report.max_abs_diff < 1e-3
        (5, True)
    """
    keras3 = is_keras3_model(model)
    if not keras3 and not isinstance(model, tf.keras.Model):
        raise TypeError(f"model must be a tf.keras.Model or a Keras 3 keras.Model, got {type(model).__name__}")
    if not isinstance(flatbuffer, (bytes, bytearray, memoryview)):
        raise TypeError(f"flatbuffer must be bytes (e.g. from convert()), got {type(flatbuffer).__name__}")
    checked = read_flatbuffer(flatbuffer)
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise NotImplementedError(f"verify() supports single-input, single-output models; {model.name!r} has "
                                  f"{len(model.inputs)} inputs and {len(model.outputs)} outputs")
    runtime = default_runtime(checked) if runtime is None else runtime
    interpreter = open_runtime(checked, runtime, num_threads=num_threads, **runtime_options)
    if len(interpreter.inputs) != 1 or len(interpreter.outputs) != 1:
        raise ValueError(f"the flatbuffer has {len(interpreter.inputs)} inputs and {len(interpreter.outputs)} "
                         "outputs but the Keras model has 1 of each")
    source, sink = interpreter.inputs[0], interpreter.outputs[0]

    x = np.asarray(x)
    fb_shape = source.shape
    batch = fb_shape[0]
    if x.ndim == 0 or len(x) == 0:
        raise ValueError(f"x must hold at least one sample, got an array of shape {x.shape}")
    if tuple(x.shape[1:]) != fb_shape[1:]:
        raise ValueError(f"x has per-sample shape {tuple(x.shape[1:])} but the flatbuffer input has per-sample "
                         f"shape {fb_shape[1:]} (full shape {fb_shape})")
    keras_shape = tuple(model.inputs[0].shape)
    if len(keras_shape) != len(fb_shape) or any(
            k is not None and k != f for k, f in zip(keras_shape[1:], fb_shape[1:])):
        raise ValueError(f"the Keras model's input shape {keras_shape} does not match the flatbuffer input "
                         f"shape {fb_shape}: was the flatbuffer converted from this model?")

    if source.dtype.kind in "iu":
        runtime_input = _quantize(x.astype(np.float64), source.dtype, source.scale, source.zero_point,
                                  "the flatbuffer input")
    else:
        runtime_input = x.astype(source.dtype)

    def run_flatbuffer(chunk: np.ndarray) -> np.ndarray:
        (out,) = interpreter.run([chunk])
        return out

    flat_out = sink.real_values(_in_chunks(run_flatbuffer, runtime_input, batch))

    keras_batch = keras_shape[0]

    def run_keras(chunk: np.ndarray) -> np.ndarray:
        if keras3:  # the Keras 3 model itself (on this process' backend), not its tf-keras rebuild
            import keras

            tensor = keras.ops.convert_to_tensor(chunk, dtype=model.inputs[0].dtype)
            return keras.ops.convert_to_numpy(model(tensor, training=False))
        return model(tf.convert_to_tensor(chunk, model.inputs[0].dtype), training=False).numpy()

    keras_out = _in_chunks(run_keras, x, keras_batch or _KERAS_CHUNK, pad=keras_batch is not None)
    keras_out = keras_out.astype(np.float64)
    if keras_out.shape != flat_out.shape:
        raise ValueError(f"the Keras output shape {keras_out.shape} differs from the flatbuffer output shape "
                         f"{flat_out.shape} on the same {len(x)} samples")

    diff = np.abs(keras_out - flat_out)
    top1 = None
    if keras_out.ndim == 2 and keras_out.shape[1] >= 2:
        top1 = float(np.mean(np.argmax(keras_out, axis=1) == np.argmax(flat_out, axis=1)))
    return VerificationReport(
        runtime=runtime,
        n_samples=len(x),
        flatbuffer_batch_size=batch,
        max_abs_diff=float(diff.max()),
        mean_abs_diff=float(diff.mean()),
        max_abs_keras=float(np.abs(keras_out).max()),
        top1_agreement=top1,
        quantized_io=source.quantized or sink.quantized,
    )
