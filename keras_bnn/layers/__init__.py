"""Quantized and binary Keras 3 layers (every backend): larq's `Quant*` layers by the same names, and keras-bnn's.

Example:
    >>> import keras_bnn
    >>> "QuantConv2D" in keras_bnn.layers.__all__
    True
"""

import keras_bnn._backend_guard  # noqa: F401  (first: a missing JAX/PyTorch names its extra)
from keras_bnn.layers.attention import BinaryMultiHeadAttention, attention_macs, binary_step
from keras_bnn.layers.birealnet import BiRealConv2D
from keras_bnn.layers.quantized import QuantConv1D, QuantConv2D, QuantConv3D, QuantDense
from keras_bnn.layers.quantized_base import QuantizerBase, variable_precision
from keras_bnn.layers.quantized_depthwise import QuantDepthwiseConv2D
from keras_bnn.layers.quantized_separable import QuantSeparableConv1D, QuantSeparableConv2D
from keras_bnn.layers.quantized_transpose import QuantConv2DTranspose, QuantConv3DTranspose
from keras_bnn.layers.recurrent import BinaryGRU, BinaryGRUCell
from keras_bnn.layers.scope import quantized_scope, quantized_weight, should_quantize
from keras_bnn.layers.transformer import AddPositions, BinaryTransformerEncoder
from keras_bnn.layers.xnornet import XNORConv2D

__all__ = ["QuantConv1D", "QuantConv2D", "QuantConv3D", "QuantDense", "QuantizerBase", "variable_precision",
           "BiRealConv2D", "QuantConv2DTranspose", "QuantConv3DTranspose", "QuantDepthwiseConv2D",
           "QuantSeparableConv1D", "QuantSeparableConv2D", "XNORConv2D", "quantized_scope", "quantized_weight",
           "should_quantize"]
__all__ += ["AddPositions", "BinaryGRU", "BinaryGRUCell", "BinaryMultiHeadAttention", "BinaryTransformerEncoder",
            "attention_macs", "binary_step"]
