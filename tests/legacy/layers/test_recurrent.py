"""BinaryGRU / BinaryGRUCell: float equivalence with Keras' GRU, every GRU option, serialization, larq
summary, gradients, training on real text, argument checks. Conversion is tested in tests/tflite."""

import math

import keras_bnn
import larq
import numpy as np
import pytest
import tensorflow as tf

from keras_bnn.legacy.layers.recurrent import BinaryGRU, BinaryGRUCell

FLOAT = dict(input_quantizer=None, recurrent_input_quantizer=None, kernel_quantizer=None,
             recurrent_kernel_quantizer=None)


def _x(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _randomize(layer, seed=0):
    rng = np.random.default_rng(seed)
    layer.set_weights([rng.normal(scale=0.5, size=w.shape).astype(np.float32) for w in layer.get_weights()])


@pytest.mark.parametrize("reset_after", [True, False])
@pytest.mark.parametrize("implementation", [1, 2])
def test_float_quantizers_equal_keras_gru_with_shared_weights(reset_after, implementation):
    x = _x((3, 7, 5))
    reference = tf.keras.layers.GRU(6, return_sequences=True, reset_after=reset_after,
                                    implementation=implementation)
    ours = BinaryGRU(6, return_sequences=True, reset_after=reset_after, implementation=implementation, **FLOAT)
    reference(x), ours(x)
    _randomize(reference)
    assert [w.name.split("/")[-1] for w in ours.weights] == ["kernel:0", "recurrent_kernel:0", "bias:0"]
    ours.set_weights(reference.get_weights())
    np.testing.assert_allclose(ours(x).numpy(), reference(x).numpy(), atol=1e-5)
    # The cell alone, in a generic RNN, equals GRUCell too.
    cell_rnn = tf.keras.layers.RNN(BinaryGRUCell(6, reset_after=reset_after, **FLOAT), return_sequences=True)
    cell_rnn(x)
    cell_rnn.set_weights(reference.get_weights())
    np.testing.assert_allclose(cell_rnn(x).numpy(), reference(x).numpy(), atol=1e-5)


def test_binary_step_matches_its_definition():
    """One step computed by hand: sign inputs and kernels, gate scale, real gates (reset_after=True)."""
    layer = BinaryGRU(4)
    x = _x((2, 1, 3))
    layer(x)
    _randomize(layer)
    kernel, recurrent, bias, kernel_scale, recurrent_scale = layer.get_weights()
    sign = lambda v: np.where(v >= 0, 1.0, -1.0)  # noqa: E731  (larq's sign: sign(0) = +1)
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h0 = np.zeros((2, 4))
    xw = (sign(x[:, 0]) @ sign(kernel)) * kernel_scale + bias[0]
    hr = (sign(h0) @ sign(recurrent)) * recurrent_scale + bias[1]
    z, r = sigmoid(xw[:, :4] + hr[:, :4]), sigmoid(xw[:, 4:8] + hr[:, 4:8])
    expected = (1 - z) * np.tanh(xw[:, 8:] + r * hr[:, 8:])
    np.testing.assert_allclose(layer(x).numpy(), expected, atol=1e-5)


def test_gate_scale_initialised_to_inverse_sqrt_fan_in_and_only_for_quantized_kernels():
    layer = BinaryGRU(8, kernel_quantizer=None)
    layer(np.zeros((1, 2, 16), np.float32))
    assert layer.cell.kernel_scale is None
    np.testing.assert_allclose(layer.cell.recurrent_kernel_scale.numpy(), np.full(24, 1 / math.sqrt(8)))
    unscaled = BinaryGRU(8, gate_scale=False)
    unscaled(np.zeros((1, 2, 16), np.float32))
    assert unscaled.cell.kernel_scale is None and unscaled.cell.recurrent_kernel_scale is None


@pytest.mark.parametrize("reset_after", [True, False])
def test_gradients_reach_every_weight(reset_after):
    layer = BinaryGRU(8, reset_after=reset_after, return_sequences=True)
    x = _x((4, 6, 5))
    layer(x)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(x, training=True) - 0.3))
    gradients = tape.gradient(loss, layer.trainable_weights)
    assert len(gradients) == 5
    for weight, gradient in zip(layer.trainable_weights, gradients):
        assert gradient is not None and np.abs(gradient.numpy()).sum() > 0, weight.name


OPTIONS = {
    "default": {},
    "return_sequences_state": dict(return_sequences=True, return_state=True),
    "go_backwards": dict(go_backwards=True, return_state=True),
    "unroll": dict(unroll=True, return_sequences=True),
    "reset_before": dict(reset_after=False, return_state=True),
    "time_major": dict(time_major=True, return_sequences=True),
    "dropout_impl1": dict(dropout=0.3, recurrent_dropout=0.3, implementation=1, return_state=True),
    "dropout_impl2": dict(dropout=0.3, implementation=2, return_sequences=True),
    "no_bias_hard_sigmoid": dict(use_bias=False, recurrent_activation="hard_sigmoid"),
}


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_shapes_and_states(name):
    options = OPTIONS[name]
    layer = BinaryGRU(6, **options)
    x = _x((3, 5, 4))
    if options.get("time_major"):
        x = np.transpose(x, (1, 0, 2))
    result = layer(x, training=True)
    outputs, *states = result if options.get("return_state") else [result]
    expected = (5, 3, 6) if options.get("time_major") else (3, 5, 6) if options.get("return_sequences") else (3, 6)
    assert outputs.shape == expected
    if options.get("return_state"):
        assert len(states) == 1 and states[0].shape == (3, 6)
        last = outputs[:, -1] if options.get("return_sequences") else outputs
        np.testing.assert_allclose(states[0].numpy(), last.numpy())
    assert np.all(np.isfinite(outputs.numpy()))
    if options.get("dropout"):  # dropout acts in training only
        inference = layer(x, training=False)
        inference = inference[0] if options.get("return_state") else inference
        assert not np.allclose(layer(x, training=True)[0], layer(x, training=True)[0])
        np.testing.assert_allclose(inference, layer(x, training=False)[0] if options.get("return_state")
                                   else layer(x, training=False))


def test_initial_state_is_used():
    layer = BinaryGRU(4)
    x = _x((2, 3, 5))
    assert not np.allclose(layer(x).numpy(), layer(x, initial_state=[tf.constant(_x((2, 4), 1))]).numpy())


@pytest.mark.parametrize("reset_after", [True, False])
def test_masking_skips_padded_steps(reset_after):
    tokens = np.array([[3, 1, 4, 0, 0], [2, 7, 1, 8, 2]], np.int32)
    inputs = tf.keras.Input((None,), dtype="int32")
    embedded = tf.keras.layers.Embedding(10, 8, mask_zero=True)(inputs)
    model = tf.keras.Model(inputs, BinaryGRU(6, reset_after=reset_after)(embedded))
    padded = model(tokens).numpy()
    unpadded = model(tokens[:1, :3]).numpy()
    np.testing.assert_allclose(padded[:1], unpadded, atol=1e-6)


def test_bidirectional_and_rnn_wrapper():
    x = _x((2, 5, 4))
    bidirectional = tf.keras.layers.Bidirectional(BinaryGRU(6, return_sequences=True))
    assert bidirectional(x).shape == (2, 5, 12)
    assert type(bidirectional.backward_layer) is BinaryGRU and bidirectional.backward_layer.go_backwards
    clone = tf.keras.layers.Bidirectional.from_config(bidirectional.get_config())
    assert type(clone.forward_layer) is BinaryGRU
    stacked = tf.keras.layers.RNN([BinaryGRUCell(6), BinaryGRUCell(3)], return_sequences=True)
    assert stacked(x).shape == (2, 5, 3)


def test_stateful_carries_state_across_calls():
    layer = BinaryGRU(4, stateful=True, return_sequences=True)
    inputs = tf.keras.Input(batch_shape=(2, None, 3))
    model = tf.keras.Model(inputs, layer(inputs))
    x = _x((2, 6, 3))
    whole = model(x).numpy()
    model.reset_states()
    first, second = model(x[:, :3]).numpy(), model(x[:, 3:]).numpy()
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=1e-6)
    model.reset_states()
    np.testing.assert_allclose(model(x[:, :3]).numpy(), first, atol=1e-6)


def test_config_round_trip_covers_every_argument():
    arguments = dict(activation="relu", recurrent_activation="hard_sigmoid", use_bias=False,
                     kernel_initializer="ones", recurrent_initializer="zeros", bias_initializer="ones",
                     kernel_regularizer="l2", recurrent_regularizer="l1", bias_regularizer="l2",
                     activity_regularizer="l1", kernel_constraint=None, recurrent_constraint="non_neg",
                     bias_constraint="non_neg", dropout=0.1, recurrent_dropout=0.2, return_sequences=True,
                     return_state=True, go_backwards=True, stateful=True, unroll=True, time_major=True,
                     reset_after=False, input_quantizer="approx_sign", recurrent_input_quantizer=None,
                     kernel_quantizer="magnitude_aware_sign", recurrent_kernel_quantizer="ste_tern",
                     gate_scale=False)
    layer = BinaryGRU(5, **arguments)
    config = layer.get_config()
    assert set(arguments) <= set(config)
    clone = BinaryGRU.from_config(config)
    assert clone.get_config() == config
    assert isinstance(clone.kernel_quantizer, larq.quantizers.MagnitudeAwareSign)
    assert clone.recurrent_input_quantizer is None and clone.gate_scale is False and clone.go_backwards
    for cls in (BinaryGRU, BinaryGRUCell):
        assert tf.keras.utils.get_registered_name(cls) == f"keras_bnn>{cls.__name__}"
    cell = BinaryGRUCell(3, recurrent_kernel_quantizer="ste_tern", reset_after=False)
    assert BinaryGRUCell.from_config(cell.get_config()).get_config() == cell.get_config()
    assert type(tf.keras.layers.deserialize(tf.keras.layers.serialize(layer))) is BinaryGRU


@pytest.mark.parametrize("fmt", ["keras", "h5", "savedmodel"])
def test_save_and_load_keep_predictions(fmt, tmp_path):
    inputs = tf.keras.Input((None,), dtype="int32")
    x = tf.keras.layers.Embedding(12, 8)(inputs)
    x = tf.keras.layers.Bidirectional(BinaryGRU(6, return_sequences=True))(x)
    outputs = BinaryGRU(5, reset_after=False)(x)
    model = tf.keras.Model(inputs, outputs)
    for layer in model.layers[1:]:
        _randomize(layer)
    tokens = np.random.default_rng(1).integers(0, 12, size=(3, 7))
    expected = model(tokens).numpy()
    path = str(tmp_path / ("model" if fmt == "savedmodel" else f"model.{fmt}"))
    model.save(path, **({"save_format": "tf"} if fmt == "savedmodel" else {}))
    loaded = tf.keras.models.load_model(path)
    np.testing.assert_allclose(loaded(tokens).numpy(), expected, atol=1e-6)
    assert type(loaded.layers[-1]) is BinaryGRU


def test_larq_summary_counts_binary_weights():
    model = tf.keras.Sequential([tf.keras.Input((10, 16)), BinaryGRU(32), tf.keras.layers.Dense(4)])
    profile = larq.models.ModelProfile(model).layer_profiles[0]
    assert profile.weight_count(bitwidth=1) == 16 * 96 + 32 * 96
    assert profile.weight_count(bitwidth=32) == 2 * 96 + 2 * 96  # biases (reset_after) + gate scales
    assert profile.input_precision == 1
    assert profile.op_count("mac") is None  # larq counts MACs of conv/dense layers only: see macs_per_step
    assert model.layers[0].macs_per_step() == {1: 16 * 96 + 32 * 96}
    half = BinaryGRU(32, input_quantizer=None)
    half(np.zeros((1, 2, 16), np.float32))
    assert half.macs_per_step() == {32: 16 * 96, 1: 32 * 96}
    lines = []
    larq.models.summary(model, print_fn=lines.append)
    assert "binary_gru" in lines[0]


def test_a_few_steps_on_real_text_lower_the_loss():
    text = keras_bnn.datasets.load("tiny_shakespeare", "test").get_single_element().numpy().decode()[:20_000]
    vocabulary = sorted(set(text))
    ids = np.array([vocabulary.index(c) for c in text], np.int32)
    windows = ids[: len(ids) // 41 * 41].reshape(-1, 41)
    x, y = windows[:, :-1], windows[:, 1:]
    model = tf.keras.Sequential([tf.keras.Input((None,), dtype="int32"),
                                 tf.keras.layers.Embedding(len(vocabulary), 16),
                                 BinaryGRU(32, return_sequences=True),
                                 tf.keras.layers.Dense(len(vocabulary))])
    model.compile(tf.keras.optimizers.Adam(0.01),
                  tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = model.evaluate(x[:64], y[:64], verbose=0)
    model.fit(x, y, batch_size=32, epochs=2, verbose=0)
    after = model.evaluate(x[:64], y[:64], verbose=0)
    assert after < before - 0.3, (before, after)


@pytest.mark.parametrize("arguments, error, match", [
    (dict(units=0), ValueError, "units must be a positive integer, got 0"),
    (dict(units=-3), ValueError, "got -3"),
    (dict(units=2.5), ValueError, "got 2.5"),
    (dict(units="8"), ValueError, "got '8'"),
    (dict(units=4, kernel_quantizer="no_such_quantizer"), ValueError, "kernel_quantizer: .*'no_such_quantizer'"),
    (dict(units=4, input_quantizer="sgn"), ValueError, "input_quantizer: .*'sgn'"),
    (dict(units=4, recurrent_input_quantizer=3), ValueError, "recurrent_input_quantizer: .*3"),
    (dict(units=4, recurrent_kernel_quantizer="x"), ValueError, "recurrent_kernel_quantizer: .*'x'"),
    (dict(units=4, dropout=1.5), ValueError, "dropout must be a number in \\[0, 1\\], got 1.5"),
    (dict(units=4, recurrent_dropout=-0.1), ValueError, "recurrent_dropout .* got -0.1"),
    (dict(units=4, gate_scale="yes"), TypeError, "gate_scale must be a bool, got 'yes'"),
])
@pytest.mark.parametrize("cls", [BinaryGRU, BinaryGRUCell])
def test_bad_arguments(cls, arguments, error, match):
    with pytest.raises(error, match=match):
        cls(**arguments)


def test_macs_per_step_needs_a_built_cell():
    with pytest.raises(ValueError, match="not built"):
        BinaryGRUCell(4).macs_per_step()
