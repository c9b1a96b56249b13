"""keras_bnn.tflite: convert Keras BNNs to flatbuffers in which every binary matmul runs bitpacked; inspect and
verify them.

- `convert(model, kernels="lce", ...) -> bytes` (or, with ``report=True``, a `ConversionResult`): rewrites a
  copy of the model with the conversion rules (every binary matmul a binary convolution), then makes the target's
  flatbuffer. A binary layer that cannot be bitpacked is reported (a warning, or an error with ``strict=True``),
  never silently left in float.
- `inspect(flatbuffer) -> FlatbufferReport`: op table per subgraph, binary MACs in bitpacked vs float ops, the
  bitpacked share, and flatbuffer size vs the ideal size, read from the flatbuffer itself.
- `verify(model, flatbuffer, x) -> VerificationReport`: Keras vs a real runtime on the same inputs.
- `Rule`, `Verdict`, `register_rule(layer_class)`: how a new binary layer family makes itself bitpackable.

Every function that takes flatbuffer bytes checks them first with one reader (`keras_bnn.tflite.flatbuffer`):
bad bytes are a ``ValueError``, never a crash.

`convert` takes a Keras 3 model (of `keras_bnn.layers` and Keras layers, trained on any backend; or the path of its
``.keras`` file), which it rebuilds as the equivalent tf-keras model with the same weights (`keras3.to_tf_keras`),
or a tf-keras (Keras 2) model of larq and `keras_bnn.legacy` layers directly; the rules rewrite that tf-keras model.
Importing this package selects tf-keras as ``tf.keras`` (see `keras_bnn.legacy`).

Example:
    >>> import keras_bnn.tflite, larq, numpy as np, tensorflow as tf
    >>> inputs = tf.keras.Input((64,), batch_size=1)
    >>> outputs = larq.layers.QuantDense(10, input_quantizer="ste_sign", kernel_quantizer="ste_sign")(inputs)
    >>> model = tf.keras.Model(inputs, outputs)
    >>> flatbuffer = keras_bnn.tflite.convert(model)
    >>> keras_bnn.tflite.inspect(flatbuffer).bitpacked_share
    1.0
    >>> keras_bnn.tflite.verify(model, flatbuffer, np.random.randn(4, 64)).max_abs_diff < 1e-4
    True
"""

import keras_bnn.legacy  # noqa: F401  (first: selects tf-keras before TensorFlow is imported)
from keras_bnn.tflite.audit import BitpackableLayer, NotBitpackedLayer
from keras_bnn.tflite.converter import ConversionResult, NotBitpackableError, NotBitpackedWarning, convert
from keras_bnn.tflite.inspection import inspect
from keras_bnn.tflite.isolation import ConverterCrashError
from keras_bnn.tflite.registry import Action, Rule, Verdict, register_rule
from keras_bnn.tflite.report import FlatbufferReport
from keras_bnn.tflite.rewrite import RewriteResult, rewrite_for_lce
from keras_bnn.tflite.steppers import FlatbufferStepper
from keras_bnn.tflite.verification import VerificationReport, verify

__all__ = [
    "Action",
    "BitpackableLayer",
    "ConversionResult",
    "ConverterCrashError",
    "FlatbufferReport",
    "FlatbufferStepper",
    "NotBitpackableError",
    "NotBitpackedLayer",
    "NotBitpackedWarning",
    "RewriteResult",
    "Rule",
    "Verdict",
    "VerificationReport",
    "convert",
    "inspect",
    "register_rule",
    "rewrite_for_lce",
    "verify",
]
