"""BatchNorm re-estimation: exact cumulative statistics, other layers in inference mode, callback, errors."""

import keras
import numpy as np
import pytest

from keras_bnn.layers import BiRealConv2D
from keras_bnn.quantizers import StochasticSign
from keras_bnn.training import BatchNormReestimation, batchnorm_layers, reestimate_batchnorm
from tests.training.gradients import numpy

RNG = np.random.default_rng(0)


def _model():
    inputs = keras.Input((3,))
    x = keras.layers.Dense(4, name="dense_a")(inputs)
    x = keras.layers.Dropout(0.5)(x)  # must stay off
    x = keras.layers.BatchNormalization(name="bn_a", epsilon=1e-3)(x)
    x = StochasticSign()(x)  # deterministic in inference mode
    x = keras.layers.Dense(2, name="dense_b")(x)
    outputs = keras.layers.BatchNormalization(name="bn_b", epsilon=1e-3)(x)
    return keras.Model(inputs, outputs)


def _batch_moments(values):
    return values.mean(axis=0), values.var(axis=0)  # biased variance, as BatchNormalization in training


def test_statistics_are_the_cumulative_average_over_batches():
    model = _model()
    for weight in model.weights:
        weight.assign(RNG.uniform(0.5, 1.5, size=weight.shape) * RNG.choice([-1, 1], size=weight.shape))
    bn_a, bn_b = model.get_layer("bn_a"), model.get_layer("bn_b")
    for layer in (bn_a, bn_b):
        layer.moving_variance.assign(np.abs(numpy(layer.moving_variance)))
    kernel_a, bias_a = (numpy(w) for w in model.get_layer("dense_a").weights)
    kernel_b, bias_b = (numpy(w) for w in model.get_layer("dense_b").weights)
    gamma, beta = numpy(bn_a.gamma), numpy(bn_a.beta)
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
    np.testing.assert_allclose(numpy(bn_a.moving_mean), sums["a"][0] / total, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(numpy(bn_a.moving_variance), sums["a"][1] / total, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(numpy(bn_b.moving_mean), sums["b"][0] / total, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(numpy(bn_b.moving_variance), sums["b"][1] / total, rtol=1e-4, atol=1e-5)
    # The layers are restored: inference uses the new moving statistics again.
    assert "call" not in bn_a.__dict__
    h = batches[0] @ kernel_a + bias_a
    expected = gamma * (h - numpy(bn_a.moving_mean)) / np.sqrt(numpy(bn_a.moving_variance) + 1e-3) + beta
    np.testing.assert_allclose(numpy(bn_a(h, training=False)), expected, rtol=1e-5, atol=1e-5)


def test_num_batches_limits_and_targets_are_ignored():
    model = _model()
    x = RNG.normal(size=(40, 3)).astype(np.float32)
    data = [(x[i:i + 10], np.zeros(10)) for i in range(0, 40, 10)]
    assert reestimate_batchnorm(model, data, num_batches=2) == 2
    only_first_two = numpy(model.get_layer("bn_a").moving_mean)
    assert reestimate_batchnorm(model, iter(data[:2]), num_batches=None) == 2
    np.testing.assert_allclose(numpy(model.get_layer("bn_a").moving_mean), only_first_two, rtol=1e-6)


def test_tf_data_batches_on_every_backend():
    import tensorflow as tf  # a tf.data pipeline feeds any backend

    model = _model()
    x = RNG.normal(size=(32, 3)).astype(np.float32)
    assert reestimate_batchnorm(model, tf.data.Dataset.from_tensor_slices(x).batch(8), num_batches=None) == 4
    expected = numpy(model.get_layer("bn_a").moving_mean)
    reestimate_batchnorm(model, [x[i:i + 8] for i in range(0, 32, 8)], num_batches=None)
    np.testing.assert_allclose(numpy(model.get_layer("bn_a").moving_mean), expected, rtol=1e-6)


def test_nested_batchnorm_layers_are_found():
    inputs = keras.Input((8, 8, 4))
    inner = keras.Sequential([keras.Input((4, 4, 8)), keras.layers.BatchNormalization(name="inner_bn")])
    model = keras.Model(inputs, inner(BiRealConv2D(8, strides=2)(inputs)))
    assert len(batchnorm_layers(model)) == 3  # the block's norm, its shortcut's norm, the nested model's
    before = [numpy(layer.moving_mean).copy() for layer in batchnorm_layers(model)]
    reestimate_batchnorm(model, [RNG.normal(size=(4, 8, 8, 4)).astype(np.float32)])
    for old, layer in zip(before, batchnorm_layers(model)):
        assert not np.allclose(old, numpy(layer.moving_mean))


def test_callback_reestimates_at_the_end_of_training():
    model = _model()
    model.compile("sgd", "mse")
    x = RNG.normal(size=(32, 3)).astype(np.float32)
    data = [x[i:i + 8] for i in range(0, 32, 8)]
    callback = BatchNormReestimation(data, num_batches=None)
    model.fit(x, np.zeros((32, 2)), epochs=1, batch_size=8, verbose=0, callbacks=[callback])
    assert callback.batches_used == 4
    expected = numpy(model.get_layer("bn_a").moving_mean)
    reestimate_batchnorm(model, data, num_batches=None)  # idempotent: same weights, same statistics
    np.testing.assert_allclose(numpy(model.get_layer("bn_a").moving_mean), expected, rtol=1e-6)
    every_epoch = BatchNormReestimation(data, num_batches=1, every_epoch=True)
    model.fit(x, np.zeros((32, 2)), epochs=2, batch_size=8, verbose=0, callbacks=[every_epoch])
    assert every_epoch.batches_used == 1


def test_bad_arguments():
    model = _model()
    for num_batches in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="num_batches"):
            reestimate_batchnorm(model, [], num_batches=num_batches)
        with pytest.raises(ValueError, match="num_batches"):
            BatchNormReestimation([], num_batches=num_batches)
    with pytest.raises(ValueError, match="no batch"):
        reestimate_batchnorm(model, [])
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="no BatchNormalization"):
        reestimate_batchnorm(plain, [np.ones((1, 3))])
