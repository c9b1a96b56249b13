"""Gradients on the running Keras backend, for the quantizer tests.

`value_and_gradients(function, x, upstream, variables)` returns ``function(x)`` and the gradients of
``sum(upstream * function(x))`` with respect to `x` and to each of `variables` (keras.Variables the function
reads), as numpy arrays: TensorFlow through `tf.GradientTape`, JAX through `jax.grad` (variables passed in a
`keras.StatelessScope`), PyTorch through `torch.autograd.grad`.
"""

import keras
import numpy as np
import pytest
from keras import ops


def _tensorflow(function, x, upstream, variables):
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = function(x)
        loss = tf.reduce_sum(tf.constant(upstream) * outputs)
    gradients = tape.gradient(loss, [x, *[variable.value for variable in variables]])
    return outputs, gradients


def _jax(function, x, upstream, variables):
    import jax

    def loss(x, values):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            outputs = function(x)
        return ops.sum(ops.convert_to_tensor(upstream) * outputs), outputs

    values = [variable.value for variable in variables]
    (_, outputs), (dx, dvalues) = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)(
        jax.numpy.asarray(x), values)
    return outputs, [dx, *dvalues]


def _torch(function, x, upstream, variables):
    import torch

    x = torch.tensor(x, requires_grad=True)
    outputs = function(x)
    loss = torch.sum(torch.tensor(upstream) * outputs)
    gradients = torch.autograd.grad(loss, [x, *[variable.value for variable in variables]], allow_unused=True)
    return outputs, gradients


_BACKENDS = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}


def value_and_gradients(function, x, upstream, variables=()):
    """``(outputs, d/dx, [d/dvariable, ...])`` of ``sum(upstream * function(x))``, as numpy arrays."""
    x = np.asarray(x, np.float32)
    upstream = np.asarray(upstream, np.float32)
    outputs, gradients = _BACKENDS[keras.backend.backend()](function, x, upstream, list(variables))
    gradients = [None if g is None else ops.convert_to_numpy(g) for g in gradients]
    return ops.convert_to_numpy(outputs), gradients[0], gradients[1:]


@pytest.fixture
def gradients():
    """`value_and_gradients` on the running backend."""
    return value_and_gradients
