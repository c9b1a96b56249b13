"""keras_bnn.tflite: convert Keras BNNs to Larq Compute Engine flatbuffers in which every binary matmul is bitpacked.

- `convert(model, ...) -> bytes`: rewrites a copy of the model so that every binary matmul (larq `QuantDense`,
  `QuantConv1D`, keras_bnn layers that register a rewrite) is a binary convolution, then converts with LCE.
  A binary layer that cannot be bitpacked is reported (a warning, or an error with `strict=True`), never silently
  left in float.
- `inspect(flatbuffer) -> ConversionReport`: op table per subgraph, binary MACs in bitpacked vs float ops,
  the bitpacked share, and flatbuffer size vs the ideal size, read from the flatbuffer itself.
- `verify(model, flatbuffer, x) -> VerificationReport`: Keras vs the LCE interpreter on the same inputs.
- `register_rewrite(layer_class)`: how a new binary layer family makes itself bitpackable.

Example:
    >>> import keras_bnn, keras_bnn.tflite, larq, numpy as np, tensorflow as tf
    >>> inputs = tf.keras.Input((64,), batch_size=1)
    >>> outputs = larq.layers.QuantDense(10, input_quantizer="ste_sign", kernel_quantizer="ste_sign")(inputs)
    >>> model = tf.keras.Model(inputs, outputs)
    >>> flatbuffer = keras_bnn.tflite.convert(model)
    >>> keras_bnn.tflite.inspect(flatbuffer).bitpacked_share
    1.0
    >>> keras_bnn.tflite.verify(model, flatbuffer, np.random.randn(4, 64)).max_abs_diff < 1e-4
    True
"""

from keras_bnn.tflite.converter import (
    NotBitpackableError,
    NotBitpackedLayer,
    NotBitpackedWarning,
    convert,
    convert_with_report,
)
from keras_bnn.tflite.inspection import ConversionReport, inspect
from keras_bnn.tflite.rewrite import CannotBitpack, register_rewrite, rewrite_for_lce
from keras_bnn.tflite.verification import VerificationReport, verify

__all__ = [
    "CannotBitpack",
    "ConversionReport",
    "NotBitpackableError",
    "NotBitpackedLayer",
    "NotBitpackedWarning",
    "VerificationReport",
    "convert",
    "convert_with_report",
    "inspect",
    "register_rewrite",
    "rewrite_for_lce",
    "verify",
]
