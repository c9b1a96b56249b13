"""Outputs and gradients of a layer on the running Keras backend, for the layer tests.

`layer_gradients(layer, x, upstream)` returns ``layer(x)`` and the gradients of ``sum(upstream * layer(x))`` with
respect to `x` and to each of ``layer.trainable_variables``, as numpy arrays: TensorFlow through `tf.GradientTape`,
JAX through `jax.grad` (variables passed in a `keras.StatelessScope`), PyTorch through `torch.autograd.grad`.
"""

import keras
import numpy as np
from keras import ops


def _tensorflow(function, x, upstream, variables):
    import tensorflow as tf

    x = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = function(x)
        loss = tf.reduce_sum(tf.constant(upstream) * outputs)
    return outputs, tape.gradient(loss, [x, *[variable.value for variable in variables]])


def _jax(function, x, upstream, variables):
    import jax

    def loss(x, values):
        with keras.StatelessScope(state_mapping=list(zip(variables, values))):
            outputs = function(x)
        return ops.sum(ops.convert_to_tensor(upstream) * outputs), outputs

    values = [variable.value for variable in variables]
    step = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))  # one compilation, not one per op
    (_, outputs), (dx, dvalues) = step(jax.numpy.asarray(x), values)
    return outputs, [dx, *dvalues]


def _torch(function, x, upstream, variables):
    import torch

    x = torch.tensor(x, requires_grad=True)
    outputs = function(x)
    loss = torch.sum(torch.tensor(upstream) * outputs)
    return outputs, torch.autograd.grad(loss, [x, *[variable.value for variable in variables]], allow_unused=True)


_BACKENDS = {"tensorflow": _tensorflow, "jax": _jax, "torch": _torch}


def layer_gradients(layer, x, upstream, training=False):
    """``(outputs, d/dx, [d/dvariable for layer.trainable_variables])`` of ``sum(upstream * layer(x))``, numpy."""
    x = np.asarray(x, np.float32)
    if not layer.built:
        layer.build(x.shape)
    variables = list(layer.trainable_variables)
    outputs, gradients = _BACKENDS[keras.backend.backend()](lambda inputs: layer(inputs, training=training), x,
                                                            np.asarray(upstream, np.float32), variables)
    gradients = [None if g is None else ops.convert_to_numpy(g) for g in gradients]
    return ops.convert_to_numpy(outputs), gradients[0], gradients[1:]
