"""Tests of keras_bnn.legacy.quantizers: forward values, pseudo-gradients against their formulas, larq integration,
serialization (config, .keras, .h5, SavedModel), training and input validation."""

import math

import keras_bnn.legacy  # noqa: F401  (first: selects tf-keras)
import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from keras_bnn.legacy import quantizers
from keras_bnn.legacy.quantizers import ElasticSign, LearnableThresholdSign, StochasticSign
from keras_bnn.legacy.quantizers import signs

OURS = {
    "stochastic_sign": StochasticSign,
    "elastic_sign": ElasticSign,
    "learnable_threshold_sign": LearnableThresholdSign,
}
LARQ = {
    "ste_sign": lq.quantizers.SteSign,
    "approx_sign": lq.quantizers.ApproxSign,
    "magnitude_aware_sign": lq.quantizers.MagnitudeAwareSign,
    "swish_sign": lq.quantizers.SwishSign,
    "ste_heaviside": lq.quantizers.SteHeaviside,
    "ste_tern": lq.quantizers.SteTern,
    "dorefa_quantizer": lq.quantizers.DoReFa,
    "SteSign": lq.quantizers.SteSign,
    "ApproxSign": lq.quantizers.ApproxSign,
    "NoOp": lq.quantizers.NoOp,
}


def larq_sign(values):
    """larq.math.sign in numpy: +1 for x >= 0, else -1."""
    return np.where(np.asarray(values) >= 0, 1.0, -1.0).astype(np.float32)


def gradients(quantizer, x, upstream, training=None):
    """Output, d(sum(upstream * q(x)))/dx and the gradients of the quantizer's trainable weights."""
    x = tf.constant(x, tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = quantizer(x, training=training) if training is not None else quantizer(x)
        loss = tf.reduce_sum(tf.constant(upstream, tf.float32) * outputs)
    grads = tape.gradient(loss, [x, *quantizer.trainable_weights])
    return outputs.numpy(), grads[0].numpy(), [g.numpy() for g in grads[1:]]


# --- registration ---------------------------------------------------------------------------------------


def test_aliases_and_registered_names_resolve_to_our_classes():
    objects = tf.keras.utils.get_custom_objects()
    for alias, cls in OURS.items():
        assert objects[alias] is cls
        assert objects[f"keras_bnn>{cls.__name__}"] is cls
        assert objects[cls.__name__] is cls  # larq's lookup during legacy (.h5) loading uses the class name
        assert tf.keras.utils.get_registered_name(cls) == f"keras_bnn>{cls.__name__}"
        assert isinstance(lq.quantizers.get(alias), cls)
        assert cls.precision == 1 and issubclass(cls, lq.quantizers.Quantizer)


def test_larq_names_still_resolve_to_larq_classes():
    objects = tf.keras.utils.get_custom_objects()
    for name, cls in LARQ.items():
        assert objects[name] is cls, name
        if cls is not lq.quantizers.NoOp:  # NoOp needs a `precision` argument
            assert type(lq.quantizers.get(name)) is cls, name


def test_registering_an_existing_larq_alias_is_refused():
    class Impostor(lq.quantizers.Quantizer):
        pass

    with pytest.raises(ValueError, match="'ste_sign' is already registered"):
        signs._register("ste_sign")(Impostor)
    SteSign = type("SteSign", (lq.quantizers.Quantizer,), {})  # same class name as larq's
    with pytest.raises(ValueError, match="'SteSign' is already registered"):
        signs._register("impostor_sign")(SteSign)
    objects = tf.keras.utils.get_custom_objects()
    assert objects["ste_sign"] is lq.quantizers.SteSign and objects["SteSign"] is lq.quantizers.SteSign
    assert "impostor_sign" not in objects


def test_unknown_names_give_clear_errors():
    # larq's own error names the bad identifier ...
    with pytest.raises(ValueError, match="no_such_quantizer"):
        lq.layers.QuantDense(3, input_quantizer="no_such_quantizer")
    # ... ours also lists what is known, larq's and keras_bnn's.
    with pytest.raises(ValueError, match="no_such_quantizer") as error:
        quantizers.get("no_such_quantizer")
    for name in ("ste_sign", "approx_sign", "stochastic_sign", "elastic_sign", "learnable_threshold_sign"):
        assert name in str(error.value)
    with pytest.raises(TypeError, match="42"):
        quantizers.get(42)
    assert quantizers.get(None) is None
    assert isinstance(quantizers.get("swish_sign"), lq.quantizers.SwishSign)


# --- StochasticSign ---------------------------------------------------------------------------------------

X_CLIP = np.array([-3.0, -1.5, -1.0, -0.999, -0.5, 0.0, 0.25, 0.999, 1.0, 1.001, 2.0], np.float32)


@pytest.mark.parametrize("training", [False, True])
@pytest.mark.parametrize("clip_value", [1.0, 0.5, None])
def test_stochastic_sign_gradient_is_clipped_straight_through(training, clip_value):
    upstream = np.linspace(0.5, 1.5, X_CLIP.size).astype(np.float32)
    outputs, dx, weight_grads = gradients(StochasticSign(clip_value=clip_value), X_CLIP, upstream, training)
    inside = np.ones_like(X_CLIP, bool) if clip_value is None else np.abs(X_CLIP) <= clip_value
    np.testing.assert_array_equal(dx, np.where(inside, upstream, 0.0))
    assert weight_grads == []
    assert set(np.unique(outputs)) <= {-1.0, 1.0}


def test_stochastic_sign_at_inference_is_larq_sign():
    x = np.random.default_rng(0).normal(size=(64, 5)).astype(np.float32)
    x[0, :3] = [0.0, -0.0, 1e-8]
    quantizer = StochasticSign(seed=3)
    for training in (None, False):
        outputs = quantizer(x) if training is None else quantizer(x, training=training)
        np.testing.assert_array_equal(outputs.numpy(), larq_sign(x))
    # The same through a model and a larq layer in inference mode: predict is deterministic.
    model = tf.keras.Sequential([tf.keras.Input((5,)), StochasticSign()])
    np.testing.assert_array_equal(model.predict(x, verbose=0), larq_sign(x))


@pytest.mark.parametrize("x, probability", [(0.5, 0.75), (-0.5, 0.25), (0.0, 0.5)])
def test_stochastic_sign_training_frequency_matches_hard_sigmoid(x, probability):
    n = 40_000
    outputs = StochasticSign(seed=7)(tf.fill((n,), x), training=True).numpy()
    assert set(np.unique(outputs)) == {-1.0, 1.0}
    # The count of +1 is Binomial(n, p): its standard deviation is sqrt(p (1 - p) / n) <= 0.0025 for n = 40,000;
    # a 5-sigma band fails a correct sampler with probability < 6e-7, yet catches e.g. p = 0.7 vs 0.75.
    tolerance = 5 * math.sqrt(probability * (1 - probability) / n)
    assert abs(np.mean(outputs == 1.0) - probability) < tolerance


def test_stochastic_sign_saturates_outside_unit_interval():
    x = tf.constant([-5.0, -1.0, 1.0, 5.0] * 500)
    outputs = StochasticSign()(x, training=True).numpy()
    np.testing.assert_array_equal(outputs, larq_sign(x.numpy()))


def test_stochastic_sign_follows_keras_training_context():
    x = np.zeros((2000, 1), np.float32)  # p(+1) = 0.5 while training, sign(0) = +1 at inference
    layer = lq.layers.QuantDense(
        1, input_quantizer="stochastic_sign", kernel_initializer="ones", use_bias=False
    )
    model = tf.keras.Sequential([tf.keras.Input((1,)), layer])
    np.testing.assert_array_equal(model(x, training=False).numpy(), np.ones_like(x))
    assert set(np.unique(model(x, training=True).numpy())) == {-1.0, 1.0}

    # A symbolic `training` flag (tf.cond branch) behaves the same.
    quantizer = StochasticSign()
    run = tf.function(lambda values, flag: quantizer(values, training=flag))
    np.testing.assert_array_equal(run(x, tf.constant(False)).numpy(), np.ones_like(x))
    assert set(np.unique(run(x, tf.constant(True)).numpy())) == {-1.0, 1.0}


def test_stochastic_sign_as_kernel_quantizer_samples_weights_while_training():
    # BinaryConnect's use: stochastic binary weights in training, sign(latent weights) at inference.
    layer = lq.layers.QuantDense(
        6, kernel_quantizer="stochastic_sign", kernel_constraint="weight_clip", use_bias=False
    )
    identity = np.eye(5, dtype=np.float32)  # the output is the quantized kernel itself
    inference = layer(identity, training=False).numpy()
    np.testing.assert_array_equal(inference, larq_sign(layer.kernel.latent_variable.numpy()))
    samples = np.stack([layer(identity, training=True).numpy() for _ in range(20)])
    assert set(np.unique(samples)) == {-1.0, 1.0}
    assert not all(np.array_equal(sample, inference) for sample in samples)


# --- ElasticSign ------------------------------------------------------------------------------------------

ALPHA, BETA = 0.5, 0.25
# u = (x - beta) / alpha covers outside (-3, 2, 3), the boundary (-1, 1) and inside (-0.5, 0, 0.5, 0.9).
U_GRID = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 0.9, 1.0, 2.0, 3.0], np.float32)
X_ELASTIC = (BETA + ALPHA * U_GRID).astype(np.float32)


@pytest.mark.parametrize("alpha_gradient", ["bit", "lsq"])
def test_elastic_sign_forward_and_gradients(alpha_gradient):
    upstream = np.linspace(-1.0, 2.0, X_ELASTIC.size).astype(np.float32)
    quantizer = ElasticSign(alpha=ALPHA, beta=BETA, alpha_gradient=alpha_gradient)
    outputs, dx, (d_alpha, d_beta) = gradients(quantizer, X_ELASTIC, upstream, training=True)

    u = (X_ELASTIC - BETA) / ALPHA
    inside = np.abs(u) <= 1.0
    np.testing.assert_allclose(outputs, ALPHA * larq_sign(u))
    np.testing.assert_allclose(dx, np.where(inside, upstream, 0.0), rtol=1e-6)
    np.testing.assert_allclose(d_beta, -np.sum(np.where(inside, upstream, 0.0)), rtol=1e-5)
    if alpha_gradient == "bit":  # BiT, signed activations: d q / d alpha = Sign(x - beta)
        per_element = larq_sign(u)
    else:  # LSQ-style full derivative of alpha * ste_sign(u)
        per_element = np.where(inside, larq_sign(u) - u, larq_sign(u))
    np.testing.assert_allclose(d_alpha, np.sum(upstream * per_element), rtol=1e-5)


def test_elastic_sign_constraint_keeps_alpha_positive():
    quantizer = ElasticSign(alpha=0.01, min_alpha=1e-3)
    quantizer.build(tf.TensorShape((None, 3)))
    optimizer = tf.keras.optimizers.SGD(learning_rate=1.0)
    optimizer.apply_gradients([(tf.constant(5.0), quantizer.alpha)])  # would make alpha = -4.99
    assert quantizer.alpha.numpy() == pytest.approx(1e-3)
    outputs = quantizer(tf.constant([[-1.0, 0.0, 2.0]])).numpy()
    np.testing.assert_allclose(outputs, [[-1e-3, 1e-3, 1e-3]], rtol=1e-6)


# --- LearnableThresholdSign -------------------------------------------------------------------------------


def test_learnable_threshold_sign_forward_and_gradients():
    beta = np.array([0.0, 0.5, -0.25, 1.0], np.float32)
    # Differences d = x - beta: outside (|d| > 1), boundary (|d| = 1), inside, and d = 0 exactly.
    d = np.array([-2.0, -1.0, -0.75, -0.5, 0.0, 0.25, 0.5, 1.0, 1.5, 3.0], np.float32)
    rng = np.random.default_rng(1)
    diffs = rng.choice(d, size=(3, 5, 4)).astype(np.float32)
    diffs[0, :, 0] = d[:5]  # make sure channel 0 sees the boundary and zero
    x = diffs + beta
    upstream = rng.uniform(0.5, 1.5, size=x.shape).astype(np.float32)

    quantizer = LearnableThresholdSign(beta_initializer=tf.keras.initializers.Constant(beta))
    outputs, dx, (d_beta,) = gradients(quantizer, x, upstream, training=True)

    np.testing.assert_array_equal(outputs, larq_sign(x - beta))
    shifted = x - beta
    expected_dx = upstream * np.where(np.abs(shifted) <= 1.0, 2.0 - 2.0 * np.abs(shifted), 0.0)
    np.testing.assert_allclose(dx, expected_dx, rtol=1e-6, atol=1e-6)
    assert d_beta.shape == (4,)
    np.testing.assert_allclose(d_beta, -expected_dx.sum(axis=(0, 1)), rtol=1e-5, atol=1e-5)


# --- larq layers ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(OURS))
def test_string_names_work_in_larq_layers(name):
    x = np.random.default_rng(2).normal(size=(2, 6, 6, 3)).astype(np.float32)
    conv = lq.layers.QuantConv2D(
        4, 3, input_quantizer=name, kernel_quantizer="ste_sign", kernel_constraint="weight_clip"
    )
    assert conv(x).shape == (2, 4, 4, 4)
    assert isinstance(conv.input_quantizer, OURS[name])

    dense = lq.layers.QuantDense(5, input_quantizer=name, use_bias=False)
    flat = x.reshape(2, -1)
    outputs = dense(flat, training=False).numpy()
    assert isinstance(dense.input_quantizer, OURS[name])
    # The layer multiplies the *quantized* input with its kernel; the quantizer's weights are the layer's.
    expected = dense.input_quantizer(flat).numpy() @ dense.kernel.numpy()
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-5)
    assert set(np.unique(dense.input_quantizer(flat).numpy())) == {-1.0, 1.0}  # default alpha is 1
    for weight in dense.input_quantizer.trainable_weights:
        assert any(weight is w for w in dense.trainable_weights)


def test_flip_ratio_metric_is_supported():
    quantizer = LearnableThresholdSign(metrics=["flip_ratio"])
    quantizer(tf.ones((2, 3)))
    assert any(isinstance(m, lq.metrics.FlipRatio) for m in quantizer.metrics)


# --- serialization ----------------------------------------------------------------------------------------

CONFIGURED = [
    StochasticSign(clip_value=0.5, seed=11, name="stochastic"),
    ElasticSign(alpha=0.75, beta=-0.5, alpha_gradient="lsq", min_alpha=1e-2, name="elastic"),
    LearnableThresholdSign(beta_initializer=tf.keras.initializers.Constant(0.3), name="threshold"),
]


@pytest.mark.parametrize("quantizer", CONFIGURED, ids=lambda q: type(q).__name__)
def test_get_config_round_trip(quantizer):
    config = quantizer.get_config()
    clone = type(quantizer).from_config(config)
    assert clone.get_config() == config
    revived = tf.keras.utils.deserialize_keras_object(tf.keras.utils.serialize_keras_object(quantizer))
    assert type(revived) is type(quantizer) and revived.get_config() == config
    # Through a larq layer's own config (larq's quantizers.serialize / get).
    layer = lq.layers.QuantDense(3, input_quantizer=quantizer)
    clone_layer = lq.layers.QuantDense.from_config(layer.get_config())
    assert type(clone_layer.input_quantizer) is type(quantizer)
    assert clone_layer.input_quantizer.get_config() == config


def small_model():
    inputs = tf.keras.Input((6, 6, 2))
    x = lq.layers.QuantConv2D(
        4,
        3,
        input_quantizer="learnable_threshold_sign",
        kernel_quantizer="ste_sign",
        kernel_constraint="weight_clip",
        padding="same",
    )(inputs)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(
        8, input_quantizer="elastic_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip"
    )(x)
    x = lq.layers.QuantDense(3, input_quantizer=StochasticSign(seed=5))(x)
    return tf.keras.Model(inputs, x)


def quantizer_weights(model):
    return {
        f"{layer.name}/{w.name.split('/')[-1]}": w.numpy()
        for layer in model.layers
        if getattr(layer, "input_quantizer", None) is not None
        for w in layer.input_quantizer.weights
    }


@pytest.mark.filterwarnings("ignore:You are saving your model as an HDF5 file")
@pytest.mark.parametrize("file_name", ["model.keras", "model.h5", "saved_model"])
def test_save_and_load_gives_identical_predictions(tmp_path, file_name):
    model = small_model()
    threshold = model.layers[1].input_quantizer
    elastic = model.layers[4].input_quantizer
    threshold.beta.assign([0.1, -0.2])
    elastic.alpha.assign(0.6)
    elastic.beta.assign(-0.05)
    x = np.random.default_rng(3).normal(size=(4, 6, 6, 2)).astype(np.float32)
    expected = model.predict(x, verbose=0)

    path = str(tmp_path / file_name)
    model.save(path)
    loaded = tf.keras.models.load_model(path)

    np.testing.assert_allclose(loaded.predict(x, verbose=0), expected, rtol=1e-6, atol=1e-6)
    assert isinstance(loaded.layers[1].input_quantizer, LearnableThresholdSign)
    assert isinstance(loaded.layers[4].input_quantizer, ElasticSign)
    assert isinstance(loaded.layers[5].input_quantizer, StochasticSign)
    saved, restored = quantizer_weights(model), quantizer_weights(loaded)
    assert saved.keys() == restored.keys() and len(saved) == 3
    for key, value in saved.items():
        np.testing.assert_array_equal(restored[key], value)


# --- training ---------------------------------------------------------------------------------------------


def test_fit_trains_the_quantizer_parameters():
    model = small_model()
    model.compile(
        optimizer=tf.keras.optimizers.Adam(0.05),
        loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    rng = np.random.default_rng(4)
    x = rng.normal(size=(32, 6, 6, 2)).astype(np.float32)
    y = rng.integers(0, 3, size=(32,))
    before = quantizer_weights(model)
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    after = quantizer_weights(model)

    assert all(np.isfinite(history.history["loss"]))
    for key, value in before.items():
        assert not np.allclose(after[key], value), f"{key} did not change"
    alpha = next(value for key, value in after.items() if key.endswith("alpha:0"))
    assert alpha >= 1e-3


# --- bad input --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, error, message",
    [
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
        (lambda: StochasticSign(seed=1.5), TypeError, "1.5"),
        (lambda: StochasticSign(seed=True), TypeError, "True"),
        (lambda: LearnableThresholdSign(beta_initializer="no_such_initializer"), ValueError, "no_such"),
    ],
)
def test_bad_arguments_raise(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="known last"):
        LearnableThresholdSign().build(tf.TensorShape((None, None)))
    with pytest.raises(ValueError, match="rank >= 1"):
        LearnableThresholdSign()(tf.constant(1.0))
    for quantizer in (StochasticSign(), ElasticSign(), LearnableThresholdSign()):
        with pytest.raises(TypeError, match="int32"):
            quantizer(tf.constant([[1, -2]], tf.int32))
