"""Quantized and binary Keras 3 layers (every backend): larq's `Quant*` layers by the same names, and keras-bnn's.

Example:
    >>> import keras_bnn
    >>> "QuantConv2D" in keras_bnn.layers.__all__
    True
"""

from keras_bnn.layers.quantized import QuantConv1D, QuantConv2D, QuantConv3D, QuantDense
from keras_bnn.layers.quantized_base import QuantizerBase, variable_precision

__all__ = ["QuantConv1D", "QuantConv2D", "QuantConv3D", "QuantDense", "QuantizerBase", "variable_precision"]
