"""The conversion rules of larq's and keras_bnn's layers, one module per family (importing this registers them).

* ``larq``: ``QuantConv2D`` (LCE's own form: kept, or refused with LCE's reason), ``QuantDense`` and
  ``QuantConv1D`` (rewritten to binary ``QuantConv2D``), and the binary layers LCE has no kernel for (refused);
* ``gru``: ``BinaryGRU`` and ``BinaryGRUCell`` (to their ``keras_bnn.tflite.forms`` conv forms);
* ``attention``: ``BinaryMultiHeadAttention`` and ``BinaryTransformerEncoder`` (their binary projections);
* ``wrappers``: ``Bidirectional`` and ``RNN`` around rewritable layers.
"""

from keras_bnn.tflite.rules import attention, gru, larq, wrappers  # noqa: F401  (registration)
