"""Integer arithmetic of the int8 target: thresholds, requantization limits, calibrated thresholds, SAME padding."""

import numpy as np
import pytest

from keras_bnn.tflite.targets.int8.arith import activation_params, quantize_weights, sign_thresholds, \
    threshold_requantization
from keras_bnn.tflite.targets.int8.materialize import same_padding
from keras_bnn.tflite.targets.int8.refine import best_threshold


@pytest.mark.parametrize("lattice", [1, 127])
def test_sign_thresholds_match_brute_force(lattice):
    rng = np.random.default_rng(0)
    channels, bound = 40, 50 * lattice
    slope = rng.choice([-2.0, -0.3, 0.0, 0.7, 3.0], channels).astype(np.float32)
    offset = (rng.normal(size=channels) * 20 * lattice).astype(np.float32)

    def positive(a):
        return (np.float32(1 / lattice) * a.astype(np.float32) * slope + offset / lattice) >= 0

    direction, threshold = sign_thresholds(positive, channels=channels, lattice=lattice, bound=bound)
    grid = np.arange(-bound, bound + 1, lattice)[:, None] * np.ones((1, channels), np.int64)
    truth = positive(grid)
    rule = np.where(direction > 0, grid >= threshold, np.where(direction < 0, grid <= threshold, threshold > 0))
    np.testing.assert_array_equal(rule, truth)


def test_threshold_requantization_respects_xnnpack_and_int32_limits():
    k, r, multiplier = threshold_requantization(127, 1, 127 * 4096)  # binary input, binary weights
    assert (k, r) == (1, 63) and multiplier * 63 >= 127 and multiplier < 256
    k, r, multiplier = threshold_requantization(1, 63, 10_000)  # real input: odd accumulators need k = 2
    assert (k, r, multiplier) == (2, 1, 128.0)
    with pytest.raises(ValueError, match="int32"):
        threshold_requantization(1, 63, 5_000_000)  # 2 * 2 * 5e6 * 2**8 > 2**31
    with pytest.raises(ValueError):
        threshold_requantization(1, 127, 10)  # an odd accumulator cannot be doubled in int8


def test_activation_params_and_weights():
    assert activation_params(0.0, 255.0) == (1.0, -128)
    assert activation_params(-1.0, 2.0, symmetric=True) == (2.0 / 127, 0)
    weights, scale = quantize_weights(np.array([[0.5, -1.0], [0.0, 0.0]]), 63)
    np.testing.assert_array_equal(weights, [[32, -63], [0, 0]])
    np.testing.assert_allclose(scale, [1 / 63, 1.0])


def test_best_threshold_moves_only_within_reach():
    a = np.arange(20)
    keras = a >= 12
    assert best_threshold(a, keras, rising=True, start=10, reach=3) == 12
    assert best_threshold(a, keras, rising=True, start=5, reach=3) == 8  # the closest it may go
    assert best_threshold(a, a <= 4, rising=False, start=6, reach=3) == 4


@pytest.mark.parametrize("size, kernel, stride, expected", [(28, 3, 1, (1, 1)), (14, 3, 2, (0, 1)),
                                                            (7, 2, 2, (0, 1)), (8, 1, 1, (0, 0))])
def test_same_padding_is_tensorflows(size, kernel, stride, expected):
    assert same_padding(size, kernel, stride) == expected
