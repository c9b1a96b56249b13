"""keras-bnn's own signs on Keras 3 (StochasticSign, ElasticSign, LearnableThresholdSign): forward values and
pseudo-gradients against their formulas, training vs inference, registration, configs, .keras files, training
with fit, and argument validation; on every Keras backend."""

import math

import keras
import numpy as np
import pytest
from keras import ops

from keras_bnn import quantizers
from keras_bnn.quantizers import ElasticSign, LearnableThresholdSign, StochasticSign

OURS = {"stochastic_sign": StochasticSign, "elastic_sign": ElasticSign,
        "learnable_threshold_sign": LearnableThresholdSign}


def larq_sign(values):
    """larq.math.sign in numpy: +1 for x >= 0, else -1."""
    return np.where(np.asarray(values) >= 0, 1.0, -1.0).astype(np.float32)


def numpy(x):
    return ops.convert_to_numpy(x)


def test_names_resolve_to_our_classes():
    for alias, cls in OURS.items():
        for name in (alias, cls.__name__):
            assert type(quantizers.get(name)) is cls
        assert keras.saving.get_registered_name(cls) == f"keras_bnn>{cls.__name__}"
        assert cls.precision == 1 and issubclass(cls, quantizers.Quantizer)
        assert quantizers.is_binary(alias)
        with pytest.raises(ValueError, match="already registered"):
            quantizers.register_alias(alias, quantizers.SteSign)


# --- StochasticSign ---------------------------------------------------------------------------------------

X_CLIP = np.array([-3.0, -1.5, -1.0, -0.999, -0.5, 0.0, 0.25, 0.999, 1.0, 1.001, 2.0], np.float32)


def test_stochastic_sign_gradient_is_clipped_straight_through(gradients):
    upstream = np.linspace(0.5, 1.5, X_CLIP.size).astype(np.float32)
    for clip_value in (1.0, 0.5, None):
        quantizer = StochasticSign(clip_value=clip_value, seed=3)
        for training in (False, True):
            outputs, dx, _ = gradients(lambda x: quantizer(x, training=training), X_CLIP, upstream)
            inside = np.ones_like(X_CLIP, bool) if clip_value is None else np.abs(X_CLIP) <= clip_value
            np.testing.assert_array_equal(dx, np.where(inside, upstream, 0.0), err_msg=f"{clip_value} {training}")
            assert set(np.unique(outputs)) <= {-1.0, 1.0}
        assert quantizer.trainable_weights == []


def test_stochastic_sign_at_inference_is_larq_sign():
    x = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32)
    x[0, :3] = [0.0, -0.0, 1e-8]
    quantizer = StochasticSign(seed=3)
    for outputs in (quantizer(x), quantizer(x, training=False)):
        np.testing.assert_array_equal(numpy(outputs), larq_sign(x))
    model = keras.Sequential([keras.Input((5,)), StochasticSign()])
    np.testing.assert_array_equal(model.predict(x, verbose=0), larq_sign(x))  # predict is inference


def test_stochastic_sign_training_frequency_matches_hard_sigmoid():
    n = 40_000
    quantizer = StochasticSign(seed=7)
    for x, probability in ((0.5, 0.75), (-0.5, 0.25), (0.0, 0.5)):
        outputs = numpy(quantizer(np.full((n,), x, np.float32), training=True))
        assert set(np.unique(outputs)) == {-1.0, 1.0}
        # The count of +1 is Binomial(n, p), standard deviation sqrt(p (1 - p) / n) <= 0.0025: a 5-sigma band
        # fails a correct sampler with probability < 6e-7, yet catches e.g. p = 0.7 instead of 0.75.
        tolerance = 5 * math.sqrt(probability * (1 - probability) / n)
        assert abs(np.mean(outputs == 1.0) - probability) < tolerance, x
    saturated = np.array([-5.0, -1.0, 1.0, 5.0] * 500, np.float32)  # p is 0 or 1
    np.testing.assert_array_equal(numpy(quantizer(saturated, training=True)), larq_sign(saturated))


def test_stochastic_sign_seeds_and_training_flags():
    x = np.zeros((2000,), np.float32)  # p(+1) = 0.5 while training, sign(0) = +1 at inference
    first, second = StochasticSign(seed=11), StochasticSign(seed=11)
    draws = [numpy(first(x, training=True)) for _ in range(2)]
    np.testing.assert_array_equal(numpy(second(x, training=True)), draws[0])  # same seed, same samples
    assert not np.array_equal(draws[0], draws[1])  # the seed generator moves on
    # A boolean tensor as the flag picks per call.
    np.testing.assert_array_equal(numpy(first(x, training=ops.convert_to_tensor(False))), np.ones_like(x))
    assert set(np.unique(numpy(first(x, training=ops.convert_to_tensor(True))))) == {-1.0, 1.0}
    # Inside a model: Keras' training argument reaches the quantizer.
    model = keras.Sequential([keras.Input((1,)), StochasticSign(seed=2)])
    np.testing.assert_array_equal(numpy(model(x[:, None], training=False)), np.ones((2000, 1)))
    assert set(np.unique(numpy(model(x[:, None], training=True)))) == {-1.0, 1.0}


# --- ElasticSign ------------------------------------------------------------------------------------------

ALPHA, BETA = 0.5, 0.25
# u = (x - beta) / alpha covers outside (-3, 2, 3), the boundary (-1, 1) and inside (-0.5, 0, 0.5, 0.9).
U_GRID = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 0.9, 1.0, 2.0, 3.0], np.float32)
X_ELASTIC = (BETA + ALPHA * U_GRID).astype(np.float32)


def test_elastic_sign_forward_and_gradients(gradients):
    upstream = np.linspace(-1.0, 2.0, X_ELASTIC.size).astype(np.float32)
    u = (X_ELASTIC - BETA) / ALPHA
    inside = np.abs(u) <= 1.0
    for alpha_gradient in ("bit", "lsq"):
        quantizer = ElasticSign(alpha=ALPHA, beta=BETA, alpha_gradient=alpha_gradient)
        quantizer.build((X_ELASTIC.size,))
        assert [w.name for w in quantizer.trainable_weights] == ["alpha", "beta"]
        outputs, dx, (d_alpha, d_beta) = gradients(quantizer, X_ELASTIC, upstream, quantizer.trainable_weights)
        np.testing.assert_array_equal(outputs, ALPHA * larq_sign(u))
        np.testing.assert_array_equal(dx, np.where(inside, upstream, 0.0))
        np.testing.assert_allclose(d_beta, -np.sum(np.where(inside, upstream, 0.0)), rtol=1e-6)
        if alpha_gradient == "bit":  # BiT, signed activations: dq/dalpha = Sign(x - beta)
            per_element = larq_sign(u)
        else:  # LSQ-style full derivative of alpha * ste_sign(u)
            per_element = np.where(inside, larq_sign(u) - u, larq_sign(u))
        np.testing.assert_allclose(d_alpha, np.sum(upstream * per_element), rtol=1e-6, err_msg=alpha_gradient)


def test_elastic_sign_constraint_keeps_alpha_positive():
    quantizer = ElasticSign(alpha=0.01, min_alpha=1e-3)
    quantizer.build((None, 3))
    keras.optimizers.SGD(learning_rate=1.0).apply_gradients([(ops.convert_to_tensor(5.0), quantizer.alpha)])
    assert float(numpy(quantizer.alpha)) == pytest.approx(1e-3)  # not 0.01 - 5
    np.testing.assert_allclose(numpy(quantizer(np.array([[-1.0, 0.0, 2.0]], np.float32))),
                               [[-1e-3, 1e-3, 1e-3]], rtol=1e-6)


# --- LearnableThresholdSign -------------------------------------------------------------------------------


def test_learnable_threshold_sign_forward_and_gradients(gradients):
    beta = np.array([0.0, 0.5, -0.25, 1.0], np.float32)
    # Differences d = x - beta: outside (|d| > 1), boundary (|d| = 1), inside, and d = 0 exactly.
    d = np.array([-2.0, -1.0, -0.75, -0.5, 0.0, 0.25, 0.5, 1.0, 1.5, 3.0], np.float32)
    rng = np.random.default_rng(1)
    diffs = rng.choice(d, size=(3, 5, 4)).astype(np.float32)
    diffs[0, :, 0] = d[:5]
    x = diffs + beta
    upstream = rng.uniform(0.5, 1.5, size=x.shape).astype(np.float32)

    quantizer = LearnableThresholdSign(beta_initializer=keras.initializers.Constant(beta))
    quantizer.build(x.shape)
    outputs, dx, (d_beta,) = gradients(quantizer, x, upstream, quantizer.trainable_weights)

    shifted = x - beta
    np.testing.assert_array_equal(outputs, larq_sign(shifted))
    expected_dx = upstream * np.where(np.abs(shifted) <= 1.0, 2.0 - 2.0 * np.abs(shifted), 0.0)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-6, atol=1e-6)
    assert d_beta.shape == (4,)
    np.testing.assert_allclose(d_beta, -expected_dx.sum(axis=(0, 1)), rtol=1e-5, atol=1e-5)


# --- configs, files, training -----------------------------------------------------------------------------


def configured():
    return [StochasticSign(clip_value=0.5, seed=11, name="stochastic"),
            ElasticSign(alpha=0.75, beta=-0.5, alpha_gradient="lsq", min_alpha=1e-2, name="elastic"),
            LearnableThresholdSign(beta_initializer=keras.initializers.Constant(0.3), name="threshold")]


def test_config_round_trips():
    for quantizer in configured():
        config = quantizer.get_config()
        assert type(quantizer).from_config(config).get_config() == config
        for revived in (quantizers.deserialize(quantizers.serialize(quantizer)),
                        quantizers.get(quantizers.serialize(quantizer))):
            assert type(revived) is type(quantizer) and revived.get_config() == config


def small_model():
    inputs = keras.Input((6, 2))
    x = LearnableThresholdSign()(inputs)
    x = keras.layers.Conv1D(4, 3, padding="same")(x)
    x = keras.layers.Flatten()(x)
    x = ElasticSign()(x)
    x = keras.layers.Dense(8)(x)
    x = StochasticSign(seed=5)(x)
    return keras.Model(inputs, keras.layers.Dense(3)(x))


def quantizer_weights(model):
    return {w.path: numpy(w) for layer in model.layers if isinstance(layer, quantizers.Quantizer)
            for w in layer.trainable_weights}


def test_keras_file_round_trip(tmp_path):
    model = small_model()
    model.layers[1].beta.assign([0.1, -0.2])
    model.layers[4].alpha.assign(0.6)
    model.layers[4].beta.assign(-0.05)
    x = np.random.default_rng(3).normal(size=(4, 6, 2)).astype(np.float32)
    expected = model.predict(x, verbose=0)
    path = str(tmp_path / "model.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), expected)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    saved, restored = quantizer_weights(model), quantizer_weights(loaded)
    assert saved.keys() == restored.keys() and len(saved) == 3
    for key, value in saved.items():
        np.testing.assert_array_equal(restored[key], value)


def test_fit_trains_the_quantizer_parameters():
    model = small_model()
    model.compile(optimizer=keras.optimizers.Adam(0.05),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(4)
    x = rng.normal(size=(32, 6, 2)).astype(np.float32)
    y = rng.integers(0, 3, size=(32,))
    before = quantizer_weights(model)
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    after = quantizer_weights(model)
    assert all(np.isfinite(history.history["loss"]))
    for key, value in before.items():
        assert not np.allclose(after[key], value), f"{key} did not change"
    assert after[model.layers[4].alpha.path] >= 1e-3


# --- bad input --------------------------------------------------------------------------------------------

BAD_ARGUMENTS = [
    (lambda: ElasticSign(alpha=0.0), ValueError, "0.0"),
    (lambda: ElasticSign(alpha=-1.5), ValueError, "-1.5"),
    (lambda: ElasticSign(alpha=float("nan")), ValueError, "nan"),
    (lambda: ElasticSign(alpha="1"), TypeError, "'1'"),
    (lambda: ElasticSign(beta=None), TypeError, "None"),
    (lambda: ElasticSign(alpha=0.5, min_alpha=0.75), ValueError, "0.75"),
    (lambda: ElasticSign(min_alpha=0.0), ValueError, "min_alpha"),
    (lambda: ElasticSign(alpha_gradient="exact"), ValueError, "'exact'"),
    (lambda: StochasticSign(clip_value=0.0), ValueError, "0.0"),
    (lambda: StochasticSign(clip_value=-1.0), ValueError, "-1.0"),
    (lambda: StochasticSign(clip_value=float("inf")), ValueError, "inf"),
    (lambda: StochasticSign(seed=1.5), TypeError, "1.5"),
    (lambda: StochasticSign(seed=True), TypeError, "True"),
    (lambda: LearnableThresholdSign(beta_initializer="no_such_initializer"), ValueError, "no_such"),
]


def test_bad_arguments_raise():
    for make, error, message in BAD_ARGUMENTS:
        with pytest.raises(error, match=message):
            make()


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="known last"):
        LearnableThresholdSign().build((None, None))
    with pytest.raises(ValueError, match="rank >= 1"):
        LearnableThresholdSign()(ops.convert_to_tensor(1.0))
    for quantizer in (StochasticSign(), ElasticSign(), LearnableThresholdSign()):
        with pytest.raises(TypeError, match="int32"):
            quantizer(ops.convert_to_tensor(np.array([[1, -2]], np.int32)))
