"""keras_bnn.tflite.targets.int8: exact int8 flatbuffers of Keras BNNs, made only of TFLite builtin ops.

A binary network is exactly representable with standard int8 ops: +-1 activations and weights are exact in
int8, a binary matmul accumulates exactly in int32, and the scale, BatchNorm and bias between it and the next
sign fold into a per-channel integer threshold on that accumulator. This target lowers the Keras graph itself
(no TFLite converter, no post-training quantization of binary layers) into such ops and writes the flatbuffer
with TFLite's schema, so the file runs unchanged in LiteRT (XNNPACK), ``tf.lite.Interpreter`` and TFLite Micro.

- :func:`convert_int8` -> flatbuffer bytes.
- :class:`UnsupportedLayerError`: a layer with no exact lowering, named with the reason.
- :func:`register_lowering`: how a layer class gets an int8 lowering.
- ``keras_bnn.tflite.runtimes`` runs the files in ``litert``, ``tflite`` or ``tflm`` (TFLite Micro's arena bytes).

Exact: every sign a binary layer computes from exact inputs. The model input is exact when the representative
data are integers within a window of 256 values (raw pixels 0..255); other float inputs are rounded to int8
like in any int8 model (a sign taken of the raw input then differs where |x| < scale / 2). Real-valued layers
(a real first conv, a real classifier, Bi-Real's residual stream) are int8-quantized, hence approximate; see
:func:`convert_int8` for the options that narrow that gap (``weight_digits``, ``head="float"``).

Example:
    >>> import keras_bnn, larq, numpy as np, tensorflow as tf
    >>> from keras_bnn.tflite.targets.int8 import convert_int8
    >>> from keras_bnn.tflite.runtimes import run
    >>> inputs = tf.keras.Input((16,))
    >>> binary = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign")
    >>> outputs = larq.quantizers.SteSign()(larq.layers.QuantDense(8, **binary)(inputs))
    >>> model = tf.keras.Model(inputs, outputs)
    >>> x = np.random.default_rng(0).integers(-3, 4, size=(8, 16)).astype(np.float32)  # exact in int8
    >>> flatbuffer = convert_int8(model, representative_data=x)
    >>> bool((run(flatbuffer, x, "tflm")[0] == model.predict(x, verbose=0)).all())
    True
"""

from keras_bnn.tflite.targets.int8.converter import convert_int8
from keras_bnn.tflite.targets.int8.lowering import UnsupportedLayerError, register_lowering
from keras_bnn.tflite.targets.int8.target import Int8Target

__all__ = ["Int8Target", "UnsupportedLayerError", "convert_int8", "register_lowering"]
