"""Training techniques for binary networks on Keras 3 (TensorFlow, JAX and PyTorch backends), each a Keras tool
that works in compile/fit; the Keras 3 port of ``keras_bnn.legacy.training`` (same names and arguments).

* optimizers: larq's `Bop` and `CaseOptimizer`; `case_optimizer` (Bop on binary kernels + Adam/`AdamW` on
  the rest), `binary_connect` (the BinaryConnect recipe), `real_optimizer`;
* BinaryRelax: `BinaryRelaxSign` kernel quantizer + `BinaryRelaxScheduler` callback, `enter_phase_two`;
* knowledge distillation: `Distiller` (soft targets + Real-to-Binary attention transfer);
* two-step training: `requantize`;
* PCNN projection convolution: `PCNNConv2D` (`PCNNProjection` kernel quantizer with projection loss);
* BatchNorm re-estimation: `reestimate_batchnorm`, `BatchNormReestimation` callback;
* binarization monitor: `BinarizationMonitor` callback, `plot_monitor`.

Example:
    >>> import keras_bnn
    >>> "Distiller" in keras_bnn.training.__all__
    True
"""

import keras_bnn._backend_guard  # noqa: F401  (first: a missing JAX/PyTorch names its extra)
from keras_bnn.training.batchnorm import BatchNormReestimation, batchnorm_layers, reestimate_batchnorm
from keras_bnn.training.binary_relax import (
    BinaryRelaxScheduler,
    BinaryRelaxSign,
    binary_relax_quantizers,
    enter_phase_two,
)
from keras_bnn.training.distillation import Distiller, attention_map, attention_transfer_loss, soft_target_loss
from keras_bnn.training.monitor import BinarizationMonitor, plot_monitor
from keras_bnn.training.optimizers import (
    AdamW,
    BinaryConnect,
    Bop,
    CaseOptimizer,
    binary_connect,
    case_optimizer,
    real_optimizer,
)
from keras_bnn.training.pcnn import PCNNConv2D, PCNNProjection
from keras_bnn.training.two_step import KEEP, requantize

__all__ = [
    "KEEP",
    "AdamW",
    "BatchNormReestimation",
    "BinarizationMonitor",
    "BinaryConnect",
    "BinaryRelaxScheduler",
    "BinaryRelaxSign",
    "Bop",
    "CaseOptimizer",
    "Distiller",
    "PCNNConv2D",
    "PCNNProjection",
    "attention_map",
    "attention_transfer_loss",
    "batchnorm_layers",
    "binary_connect",
    "binary_relax_quantizers",
    "case_optimizer",
    "enter_phase_two",
    "plot_monitor",
    "real_optimizer",
    "reestimate_batchnorm",
    "requantize",
    "soft_target_loss",
]
