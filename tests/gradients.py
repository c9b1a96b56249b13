"""Outputs and gradients on the running Keras backend, for the tests of quantizers and layers.

`value_and_gradients(function, x, upstream, variables)` returns ``function(x)`` and the gradients of
``sum(upstream * function(x))`` with respect to `x` and to each of `variables` (keras.Variables the function reads),
as numpy arrays: TensorFlow through `tf.GradientTape`, JAX through `jax.grad` (variables passed in a
`keras.StatelessScope`; jitted with ``jit=True``: one compilation instead of one per op), PyTorch through
`torch.autograd.grad`. `layer_gradients(layer, x, upstream)` does the same for a layer and its trainable variables.
"""

import keras
import numpy as np
from keras import ops


def _tensorflow(function, x, upstream, variables, jit):
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = function(x)
        loss = tf.reduce_sum(tf.constant(upstream) * outputs)
    return outputs, tape.gradient(loss, [x, *[variable.value for variable in variables]])


def _jax(function, x, upstream, variables, jit):
    import jax

    def loss(x, values):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            outputs = function(x)
        return ops.sum(ops.convert_to_tensor(upstream) * outputs), outputs

    values = [variable.value for variable in variables]
    step = jax.value_and_grad(loss, argnums=(0, 1), has_aux=True)
    (_, outputs), (dx, dvalues) = (jax.jit(step) if jit else step)(jax.numpy.asarray(x), values)
    return outputs, [dx, *dvalues]


def _torch(function, x, upstream, variables, jit):
    import torch

    x = torch.tensor(x, requires_grad=True)
    outputs = function(x)
    loss = torch.sum(torch.tensor(upstream) * outputs)
    return outputs, torch.autograd.grad(loss, [x, *[variable.value for variable in variables]], allow_unused=True)


_BACKENDS = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}


def value_and_gradients(function, x, upstream, variables=(), *, jit=False):
    """``(outputs, d/dx, [d/dvariable, ...])`` of ``sum(upstream * function(x))``, as numpy arrays."""
    x = np.asarray(x, np.float32)
    upstream = np.asarray(upstream, np.float32)
    outputs, gradients = _BACKENDS[keras.backend.backend()](function, x, upstream, list(variables), jit)
    gradients = [None if g is None else ops.convert_to_numpy(g) for g in gradients]
    return ops.convert_to_numpy(outputs), gradients[0], gradients[1:]


def layer_gradients(layer, x, upstream, training=False):
    """``(outputs, d/dx, [d/dvariable for layer.trainable_variables])`` of ``sum(upstream * layer(x))``, numpy
    (jitted on JAX)."""
    x = np.asarray(x, np.float32)
    if not layer.built:
        layer.build(x.shape)
    return value_and_gradients(lambda inputs: layer(inputs, training=training), x, upstream,
                               layer.trainable_variables, jit=True)
