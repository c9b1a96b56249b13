"""keras-bnn: Binary Neural Networks for Keras, extending Larq.

Importing this package selects Keras 2 (``tf-keras``) as ``tf.keras``, which larq needs, by setting
``TF_USE_LEGACY_KERAS=1`` before TensorFlow is first imported. If TensorFlow was already imported with
Keras 3 as ``tf.keras``, the import fails with an ImportError that says how to fix it.

Example:
    >>> import keras_bnn
    >>> import tensorflow as tf
    >>> layer = keras_bnn.layers.XNORConv2D(8, 3)
    >>> layer(tf.zeros((1, 8, 8, 4))).shape
    TensorShape([1, 6, 6, 8])
"""

from keras_bnn import _compat

_compat.ensure_legacy_keras()

from keras_bnn import quantizers  # noqa: E402
from keras_bnn import layers  # noqa: E402
from keras_bnn import datasets  # noqa: E402
from keras_bnn import text  # noqa: E402
from keras_bnn import zoo  # noqa: E402  (zoo/ mapped to keras_bnn.zoo; imports the layers above)

__version__ = "0.1.0"

__all__ = ["quantizers", "layers", "datasets", "text", "zoo", "__version__"]
