"""BatchNorm re-estimation: exact cumulative statistics, other layers in inference mode, callback, errors."""

import keras_bnn.legacy  # noqa: F401  (first: selects tf-keras)
import numpy as np
import pytest
import tensorflow as tf

from keras_bnn.legacy.layers import BiRealConv2D
from keras_bnn.legacy.quantizers import StochasticSign
from keras_bnn.legacy.training import BatchNormReestimation, batchnorm_layers, reestimate_batchnorm

RNG = np.random.default_rng(0)


def _model():
    inputs = tf.keras.Input((3,))
    x = tf.keras.layers.Dense(4, name="dense_a")(inputs)
    x = tf.keras.layers.Dropout(0.5)(x)  # must stay off
    x = tf.keras.layers.BatchNormalization(name="bn_a", epsilon=1e-3)(x)
    x = tf.keras.layers.Lambda(lambda t: StochasticSign()(t))(x)  # deterministic in inference mode
    x = tf.keras.layers.Dense(2, name="dense_b")(x)
    outputs = tf.keras.layers.BatchNormalization(name="bn_b", epsilon=1e-3)(x)
    return tf.keras.Model(inputs, outputs)


def _batch_moments(values):
    return values.mean(axis=0), values.var(axis=0)  # biased variance, as BatchNormalization in training


def test_statistics_are_the_cumulative_average_over_batches():
    model = _model()
    for weight in model.weights:
        weight.assign(RNG.uniform(0.5, 1.5, size=weight.shape) * RNG.choice([-1, 1], size=weight.shape))
    bn_a, bn_b = model.get_layer("bn_a"), model.get_layer("bn_b")
    for layer in (bn_a, bn_b):
        layer.moving_variance.assign(np.abs(layer.moving_variance.numpy()))
    kernel_a, bias_a = (w.numpy() for w in model.get_layer("dense_a").weights)
    kernel_b, bias_b = (w.numpy() for w in model.get_layer("dense_b").weights)
    gamma, beta = bn_a.gamma.numpy(), bn_a.beta.numpy()
    batches = [RNG.normal(size=(n, 3)).astype(np.float32) for n in (5, 8, 3)]

    sums = {"a": [0, 0], "b": [0, 0]}
    for x in batches:
        h = x @ kernel_a + bias_a
        mean, var = _batch_moments(h)
        sums["a"][0] += len(x) * mean
        sums["a"][1] += len(x) * var
        normalized = gamma * (h - mean) / np.sqrt(var + 1e-3) + beta  # BN with the batch's statistics
        g = np.where(normalized >= 0, 1.0, -1.0) @ kernel_b + bias_b
        mean, var = _batch_moments(g)
        sums["b"][0] += len(x) * mean
        sums["b"][1] += len(x) * var
    total = sum(len(x) for x in batches)

    assert reestimate_batchnorm(model, batches, num_batches=None) == 3
    np.testing.assert_allclose(bn_a.moving_mean.numpy(), sums["a"][0] / total, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn_a.moving_variance.numpy(), sums["a"][1] / total, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bn_b.moving_mean.numpy(), sums["b"][0] / total, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn_b.moving_variance.numpy(), sums["b"][1] / total, rtol=1e-4, atol=1e-5)
    # The layers are restored: inference uses the new moving statistics again.
    assert "call" not in bn_a.__dict__
    x = batches[0]
    h = x @ kernel_a + bias_a
    expected = gamma * (h - bn_a.moving_mean.numpy()) / np.sqrt(bn_a.moving_variance.numpy() + 1e-3) + beta
    np.testing.assert_allclose(bn_a(h, training=False).numpy(), expected, rtol=1e-5, atol=1e-5)


def test_num_batches_limits_and_targets_are_ignored():
    model = _model()
    data = tf.data.Dataset.from_tensor_slices((RNG.normal(size=(40, 3)).astype(np.float32), np.zeros(40))).batch(10)
    assert reestimate_batchnorm(model, data, num_batches=2) == 2
    only_first_two = model.get_layer("bn_a").moving_mean.numpy()
    assert reestimate_batchnorm(model, data.take(2), num_batches=None) == 2
    np.testing.assert_allclose(model.get_layer("bn_a").moving_mean.numpy(), only_first_two, rtol=1e-6)


def test_nested_batchnorm_layers_are_found():
    inputs = tf.keras.Input((8, 8, 4))
    model = tf.keras.Model(inputs, BiRealConv2D(8, strides=2)(inputs))
    assert len(batchnorm_layers(model)) == 2  # the block's norm and its shortcut's norm
    before = [layer.moving_mean.numpy().copy() for layer in batchnorm_layers(model)]
    reestimate_batchnorm(model, [RNG.normal(size=(4, 8, 8, 4)).astype(np.float32)])
    for old, layer in zip(before, batchnorm_layers(model)):
        assert not np.allclose(old, layer.moving_mean.numpy())


def test_callback_reestimates_at_the_end_of_training():
    model = _model()
    model.compile("sgd", "mse")
    x = RNG.normal(size=(32, 3)).astype(np.float32)
    data = tf.data.Dataset.from_tensor_slices(x).batch(8)
    callback = BatchNormReestimation(data, num_batches=None)
    model.fit(x, np.zeros((32, 2)), epochs=1, batch_size=8, verbose=0, callbacks=[callback])
    assert callback.batches_used == 4
    expected = model.get_layer("bn_a").moving_mean.numpy()
    reestimate_batchnorm(model, data, num_batches=None)  # idempotent: same weights, same statistics
    np.testing.assert_allclose(model.get_layer("bn_a").moving_mean.numpy(), expected, rtol=1e-6)


def test_bad_arguments():
    model = _model()
    for num_batches in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="num_batches"):
            reestimate_batchnorm(model, [], num_batches=num_batches)
        with pytest.raises(ValueError, match="num_batches"):
            BatchNormReestimation([], num_batches=num_batches)
    with pytest.raises(ValueError, match="no batch"):
        reestimate_batchnorm(model, [])
    plain = tf.keras.Sequential([tf.keras.Input((3,)), tf.keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no BatchNormalization"):
        reestimate_batchnorm(plain, [np.ones((1, 3))])
