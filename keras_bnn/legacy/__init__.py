"""The tf-keras 2 (+ larq) implementation of keras-bnn's quantizers, layers and training tools.

It is what `keras_bnn.tflite` converts and what the zoo builds for the converter until the converter takes Keras 3
models; it is not grown further. Importing it selects tf-keras as ``tf.keras`` (``TF_USE_LEGACY_KERAS=1``, which
larq needs), so it must be imported before TensorFlow is; otherwise the import fails with an ImportError that says
how to fix it. The Keras 3 implementation, for every backend, is `keras_bnn.quantizers`, `keras_bnn.layers` and
`keras_bnn.training`.
"""

from keras_bnn import _compat

_compat.ensure_legacy_keras()

from keras_bnn.legacy import quantizers  # noqa: E402
from keras_bnn.legacy import layers  # noqa: E402

__all__ = ["layers", "quantizers"]
