"""BinaryRelax: the relaxed weights against the paper's formula, the λ schedule, phase II as a plain binary model."""

import math

import keras
import numpy as np
import pytest

import keras_bnn
from keras_bnn.training import (
    Bop,
    BinaryRelaxScheduler,
    BinaryRelaxSign,
    binary_relax_quantizers,
    enter_phase_two,
)
from tests.training.gradients import loss_and_gradients, numpy

WEIGHTS = np.array([[-0.7, 0.05], [0.0, 0.3], [1.2, -0.25]], np.float32)


@pytest.mark.parametrize("relaxation", [0.0, 1.0, 3.5, 1e6])
def test_relaxed_weights_match_formula(relaxation):
    quantizer = BinaryRelaxSign(relaxation=relaxation)
    alpha = np.mean(np.abs(WEIGHTS))
    projection = alpha * np.where(WEIGHTS >= 0, 1.0, -1.0)
    expected = (WEIGHTS + relaxation * projection) / (1.0 + relaxation)
    np.testing.assert_allclose(numpy(quantizer(WEIGHTS)), expected, rtol=1e-6, atol=1e-7)


def test_phase_two_is_the_exact_scaled_binary_projection():
    values = numpy(BinaryRelaxSign(relaxation=math.inf)(WEIGHTS))
    alpha = np.abs(values).ravel()[0]
    np.testing.assert_array_equal(np.abs(values), np.full_like(values, alpha))  # exactly ±α: one magnitude
    np.testing.assert_allclose(alpha, np.mean(np.abs(WEIGHTS)), rtol=1e-6)  # α = mean|w| (summation order aside)
    np.testing.assert_array_equal(np.sign(values), np.where(WEIGHTS >= 0, 1.0, -1.0))


@pytest.mark.parametrize("relaxation", [1.0, math.inf])
def test_gradient_is_passed_straight_to_the_latent_weights(relaxation):
    weights = keras.Variable(WEIGHTS)
    upstream = keras.ops.convert_to_tensor(np.arange(6, dtype=np.float32).reshape(3, 2) - 2.5)
    quantizer = BinaryRelaxSign(relaxation=relaxation)
    _, (gradient,) = loss_and_gradients(lambda: keras.ops.sum(upstream * quantizer(weights)), [weights])
    np.testing.assert_array_equal(gradient, numpy(upstream))


def _model(relaxation=1.0):
    return keras.Sequential([
        keras.Input((6, 6, 2)),
        keras_bnn.layers.QuantConv2D(4, 3, input_quantizer="ste_sign", kernel_quantizer=BinaryRelaxSign(relaxation),
                                     kernel_constraint="weight_clip", use_bias=False, pad_values=1.0,
                                     padding="same"),
        keras.layers.BatchNormalization(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3),
    ])


def test_scheduler_grows_lambda_geometrically_and_switches_to_phase_two():
    model = _model(relaxation=0.5)
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(16, 6, 6, 2)).astype(np.float32), rng.integers(0, 3, 16)
    history = model.fit(x, y, epochs=4, batch_size=8, verbose=0,
                        callbacks=[BinaryRelaxScheduler(growth=1.5, quantize_epoch=3)])
    assert history.history["binary_relax_lambda"] == [0.5, 0.75, 1.125, math.inf]
    assert math.isinf(float(numpy(binary_relax_quantizers(model)[0].relaxation)))
    # In phase II the layer convolves with exactly ±α.
    layer = model.layers[0]
    kernel = numpy(layer.kernel_quantizer(layer.kernel))
    assert len(np.unique(np.abs(kernel))) == 1
    np.testing.assert_allclose(np.abs(kernel).ravel()[0], np.mean(np.abs(numpy(layer.kernel))), rtol=1e-6)
    # Resuming at epoch 1 continues the schedule from λ0·ρ.
    history = model.fit(x, y, initial_epoch=1, epochs=2, verbose=0, callbacks=[BinaryRelaxScheduler(growth=1.5)])
    assert history.history["binary_relax_lambda"] == [0.75]


def test_phase_two_model_saves_and_loads(tmp_path):
    model = _model()
    (quantizer,) = binary_relax_quantizers(model)
    assert quantizer.precision == 1 and Bop.is_binary_variable(model.layers[0].kernel)
    assert keras_bnn.quantizers.is_binary("binary_relax_sign")
    assert enter_phase_two(model) == 1
    path = tmp_path / "relaxed.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert math.isinf(float(numpy(binary_relax_quantizers(restored)[0].relaxation)))
    x = np.random.default_rng(1).normal(size=(2, 6, 6, 2)).astype(np.float32)
    np.testing.assert_array_equal(numpy(restored(x)), numpy(model(x)))


def test_bad_arguments():
    for growth in (1.0, 0.5, math.inf, "2"):
        with pytest.raises(ValueError, match="growth"):
            BinaryRelaxScheduler(growth=growth)
    with pytest.raises(ValueError, match="quantize_epoch"):
        BinaryRelaxScheduler(quantize_epoch=-1)
    with pytest.raises(TypeError, match="quantize_epoch"):
        BinaryRelaxScheduler(quantize_epoch=2.0)
    with pytest.raises(ValueError, match="relaxation"):
        BinaryRelaxSign(relaxation=-1.0)
    with pytest.raises(ValueError, match="relaxation"):
        BinaryRelaxSign(relaxation=float("nan"))
    with pytest.raises(TypeError, match="floating-point"):
        BinaryRelaxSign()(np.array([1, 2], np.int32))
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    plain.compile("adam", "mse")
    with pytest.raises(ValueError, match="BinaryRelaxSign"):
        plain.fit(np.ones((2, 3)), np.ones((2, 1)), verbose=0, callbacks=[BinaryRelaxScheduler()])
    with pytest.raises(ValueError, match="BinaryRelaxSign"):
        enter_phase_two(plain)
