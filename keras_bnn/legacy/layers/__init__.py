"""Binary Keras layers that extend larq's.

Every layer here is a real Keras layer (compile/fit, get_config/from_config, save/load in .keras, .h5 and
SavedModel), registered for serialization as ``keras_bnn>ClassName``, counted by ``larq.models.summary``
and mixable with ``larq.layers``. No layer holds conversion code: ``keras_bnn.tflite`` converts them with rules
registered against their classes.
"""

from keras_bnn.legacy.layers.attention import BinaryMultiHeadAttention
from keras_bnn.legacy.layers.birealnet import BiRealConv2D
from keras_bnn.legacy.layers.recurrent import BinaryGRU, BinaryGRUCell
from keras_bnn.legacy.layers.transformer import AddPositions, BinaryTransformerEncoder
from keras_bnn.legacy.layers.xnornet import XNORConv2D

__all__ = [
    "AddPositions",
    "BiRealConv2D",
    "BinaryGRU",
    "BinaryGRUCell",
    "BinaryMultiHeadAttention",
    "BinaryTransformerEncoder",
    "XNORConv2D",
]
