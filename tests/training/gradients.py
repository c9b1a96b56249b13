"""A scalar loss and its gradients with respect to keras.Variables, on the running Keras backend.

`loss_and_gradients(loss, variables)` calls ``loss()`` (which reads the variables through Keras layers or ops) and
returns its value and its gradients as numpy arrays: TensorFlow through `tf.GradientTape`, JAX through `jax.grad`
(the variables passed in a `keras.StatelessScope`), PyTorch through `torch.autograd.grad`.
"""

import keras
import numpy as np
from keras import ops


def _tensorflow(loss, variables):
    import tensorflow as tf

    with tf.GradientTape() as tape:
        value = loss()
    return value, tape.gradient(value, [variable.value for variable in variables])


def _jax(loss, variables):
    import jax

    def pure(values):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            return loss()

    return jax.value_and_grad(pure)([variable.value for variable in variables])


def _torch(loss, variables):
    import torch

    value = loss()
    return value, torch.autograd.grad(value, [variable.value for variable in variables], allow_unused=True)


_BACKENDS = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}


def loss_and_gradients(loss, variables):
    """``(float(loss()), [d loss / d variable, ...])`` as numpy (None where a variable does not enter)."""
    variables = list(variables)
    value, gradients = _BACKENDS[keras.backend.backend()](loss, variables)
    return float(ops.convert_to_numpy(value)), [None if g is None else ops.convert_to_numpy(g) for g in gradients]


def numpy(value):
    """Any tensor or variable as a numpy array."""
    return np.asarray(ops.convert_to_numpy(value))
