"""BinaryGRU / BinaryGRUCell on Keras 3 (every backend): equal to the legacy (tf-keras + larq) layers with the same
weights, the zoo's GRU weight file fills a Keras 3 model, float equivalence with keras.layers.GRU, GRU options,
gradients, serialization, training, argument checks."""

import math
import pathlib

import keras
import numpy as np
import pytest
from keras import ops

from keras_bnn.layers import BinaryGRU, BinaryGRUCell, variable_precision
from tests.larq_reference import run_larq
from tests.gradients import value_and_gradients

FLOAT = dict(input_quantizer=None, recurrent_input_quantizer=None, kernel_quantizer=None,
             recurrent_kernel_quantizer=None)
ZOO_WEIGHTS = pathlib.Path(__file__).resolve().parents[2] / "zoo" / "weights" / "binary_gru_lm.tiny_shakespeare.npz"

# name -> BinaryGRU arguments, the same on both sides.
LEGACY_CASES = {
    "default": dict(return_sequences=True),
    "reset_before": dict(reset_after=False, return_sequences=True),
    "magnitude_approx": dict(kernel_quantizer="magnitude_aware_sign", input_quantizer="approx_sign",
                             recurrent_kernel_quantizer="ste_tern", return_sequences=True),
    "float": dict(FLOAT, return_sequences=True),
    "no_gate_scale_backwards": dict(gate_scale=False, go_backwards=True),
    "no_bias_softsign": dict(use_bias=False, activation="softsign", return_sequences=True),
}

_LEGACY_SCRIPT = """
import json
from keras_bnn.legacy.layers.recurrent import BinaryGRU
cases = json.loads(str(inputs["cases"]))
x = inputs["x"]
for name, arguments in cases.items():
    rng = np.random.default_rng(0)
    for masked in (False, True):  # (the masked runs of two cases are compared)
        layer = BinaryGRU(6, name="binary_gru", **arguments)
        layer(x)
        weights = [rng.normal(scale=0.5, size=w.shape).astype(np.float32) for w in layer.get_weights()]
        layer.set_weights(weights)
        key = name + (".masked" if masked else "")
        outputs[key + ".y"] = layer(x, mask=tf.constant(inputs["mask"]) if masked else None).numpy()
        outputs[key + ".names"] = np.array([w.name for w in layer.weights])
        for index, weight in enumerate(weights):
            outputs[f"{key}.w{index}"] = weight

# The zoo's GRU language model (built as keras_bnn.zoo builds it), filled from its compact weights file.
arrays = dict(np.load(inputs["zoo_path"].item()))
tokens = tf.keras.Input((None,), dtype="int32")
h = tf.keras.layers.Embedding(65, 64, name="embedding")(tokens)
h = BinaryGRU(256, return_sequences=True, name="binary_gru")(h)
model = tf.keras.Model(tokens, tf.keras.layers.Dense(65, name="dense")(h))
values = []
for index in range(len(model.weights)):
    key = f"w{index:03d}"
    if key + ".value" in arrays:
        values.append(arrays[key + ".value"])
        continue
    shape = tuple(arrays[key + ".shape"])
    bits = np.unpackbits(arrays[key + ".bits"], count=int(np.prod(shape))).reshape(shape).astype(bool)
    magnitude = arrays.get(key + ".scale", np.float32(1.0))
    values.append(np.where(bits, magnitude, -magnitude).astype(np.float32))
model.set_weights(values)
outputs["zoo.names"] = np.array([w.name for w in model.weights])
outputs["zoo.logits"] = model(inputs["tokens"]).numpy()
"""


def _x(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype(np.float32)


def _numpy(x):
    return ops.convert_to_numpy(x)


def _zoo_values(path):
    """The compact weight file's weights in model order (keras_bnn.zoo.weights' format: bits, scale or value)."""
    arrays = dict(np.load(path))
    values = []
    for index in range(len(arrays["__names__"])):
        key = f"w{index:03d}"
        if f"{key}.value" in arrays:
            values.append(arrays[f"{key}.value"])
            continue
        shape = tuple(int(d) for d in arrays[f"{key}.shape"])
        bits = np.unpackbits(arrays[f"{key}.bits"], count=int(np.prod(shape))).reshape(shape).astype(bool)
        magnitude = arrays.get(f"{key}.scale", np.float32(1.0))
        values.append(np.where(bits, magnitude, -magnitude).astype(np.float32))
    return [str(name) for name in arrays["__names__"]], values


@pytest.fixture(scope="module")
def legacy():
    """The legacy layers' weights and outputs (one subprocess for the whole module)."""
    import json

    mask = np.ones((3, 5), bool)
    mask[0, 3:] = False
    mask[2, 1:] = False
    tokens = np.random.default_rng(7).integers(0, 65, size=(2, 24)).astype(np.int32)
    return run_larq(_LEGACY_SCRIPT, x=_x((3, 5, 4)), mask=mask, tokens=tokens, cases=np.array(json.dumps(LEGACY_CASES)),
                    zoo_path=np.array(str(ZOO_WEIGHTS))) | {"x": _x((3, 5, 4)), "mask": mask, "tokens": tokens}


@pytest.mark.parametrize("name, masked", [(name, False) for name in sorted(LEGACY_CASES)]
                         + [("default", True), ("reset_before", True)])
def test_equals_the_legacy_layer_with_the_same_weights(legacy, name, masked):
    key = name + (".masked" if masked else "")
    layer = BinaryGRU(6, name="binary_gru", **LEGACY_CASES[name])
    layer(legacy["x"])
    paths = [w.path for w in layer.weights]
    assert [f"{path}:0" for path in paths] == [str(n) for n in legacy[f"{key}.names"]]
    layer.set_weights([legacy[f"{key}.w{i}"] for i in range(len(paths))])
    mask = ops.convert_to_tensor(legacy["mask"]) if masked else None
    np.testing.assert_allclose(_numpy(layer(legacy["x"], mask=mask)), legacy[f"{key}.y"], atol=1e-5)


def test_the_zoo_weight_file_fills_a_keras3_model_that_equals_the_legacy_one(legacy):
    names, values = _zoo_values(ZOO_WEIGHTS)
    tokens = keras.Input((None,), dtype="int32")
    h = keras.layers.Embedding(65, 64, name="embedding")(tokens)
    h = BinaryGRU(256, return_sequences=True, name="binary_gru")(h)
    model = keras.Model(tokens, keras.layers.Dense(65, name="dense")(h))
    assert [f"{w.path}:0" for w in model.weights] == names == [str(n) for n in legacy["zoo.names"]]
    assert [tuple(w.shape) for w in model.weights] == [v.shape for v in values]
    model.set_weights(values)
    np.testing.assert_allclose(_numpy(model(legacy["tokens"])), legacy["zoo.logits"], atol=1e-4)


@pytest.mark.parametrize("reset_after", [True, False])
def test_float_quantizers_equal_keras_gru_with_shared_weights(reset_after):
    x = _x((3, 7, 5))
    reference = keras.layers.GRU(6, return_sequences=True, reset_after=reset_after)
    ours = BinaryGRU(6, return_sequences=True, reset_after=reset_after, **FLOAT)
    reference(x), ours(x)
    rng = np.random.default_rng(0)
    reference.set_weights([rng.normal(scale=0.5, size=w.shape).astype(np.float32) for w in reference.get_weights()])
    assert [w.name for w in ours.weights] == ["kernel", "recurrent_kernel", "bias"]
    ours.set_weights(reference.get_weights())
    np.testing.assert_allclose(_numpy(ours(x)), _numpy(reference(x)), atol=1e-5)
    cell_rnn = keras.layers.RNN(BinaryGRUCell(6, reset_after=reset_after, **FLOAT), return_sequences=True)
    cell_rnn(x)
    cell_rnn.set_weights(reference.get_weights())
    np.testing.assert_allclose(_numpy(cell_rnn(x)), _numpy(reference(x)), atol=1e-5)


def test_binary_step_matches_its_definition():
    """One step computed by hand: sign inputs and kernels, gate scale, real gates (reset_after=True)."""
    layer = BinaryGRU(4)
    x = _x((2, 1, 3))
    layer(x)
    rng = np.random.default_rng(0)
    layer.set_weights([rng.normal(scale=0.5, size=w.shape).astype(np.float32) for w in layer.get_weights()])
    kernel, recurrent, bias, kernel_scale, recurrent_scale = layer.get_weights()
    sign = lambda v: np.where(v >= 0, 1.0, -1.0)  # noqa: E731  (sign(0) = +1)
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h0 = np.zeros((2, 4))
    xw = (sign(x[:, 0]) @ sign(kernel)) * kernel_scale + bias[0]
    hr = (sign(h0) @ sign(recurrent)) * recurrent_scale + bias[1]
    z, r = sigmoid(xw[:, :4] + hr[:, :4]), sigmoid(xw[:, 4:8] + hr[:, 4:8])
    expected = (1 - z) * np.tanh(xw[:, 8:] + r * hr[:, 8:])
    np.testing.assert_allclose(_numpy(layer(x)), expected, atol=1e-5)


def test_gate_scale_initialised_to_inverse_sqrt_fan_in_and_only_for_quantized_kernels():
    layer = BinaryGRU(8, kernel_quantizer=None)
    layer(np.zeros((1, 2, 16), np.float32))
    assert layer.cell.kernel_scale is None
    np.testing.assert_allclose(_numpy(layer.cell.recurrent_kernel_scale), np.full(24, 1 / math.sqrt(8)), rtol=1e-6)
    unscaled = BinaryGRU(8, gate_scale=False)
    unscaled(np.zeros((1, 2, 16), np.float32))
    assert unscaled.cell.kernel_scale is None and unscaled.cell.recurrent_kernel_scale is None
    assert variable_precision(layer.cell.recurrent_kernel) == 1 and variable_precision(layer.cell.kernel) is None


@pytest.mark.parametrize("reset_after", [True, False])
def test_gradients_reach_every_weight(reset_after):
    layer = BinaryGRU(8, reset_after=reset_after, return_sequences=True)
    x = _x((4, 6, 5))
    layer(x)
    upstream = _x((4, 6, 8), seed=1)
    _, _, gradients = value_and_gradients(lambda v: layer(v, training=True), x, upstream, layer.trainable_weights)
    assert len(gradients) == 5
    for weight, gradient in zip(layer.trainable_weights, gradients):
        assert gradient is not None and np.abs(gradient).sum() > 0, weight.path


OPTIONS = {
    "default": {},
    "return_sequences_state": dict(return_sequences=True, return_state=True),
    "go_backwards": dict(go_backwards=True, return_state=True),
    "unroll": dict(unroll=True, return_sequences=True),
    "reset_before": dict(reset_after=False, return_state=True),
    "dropout_impl1": dict(dropout=0.3, recurrent_dropout=0.3, implementation=1, return_state=True),
    "dropout_impl2": dict(dropout=0.3, implementation=2, return_sequences=True),
}


@pytest.mark.parametrize("name", sorted(OPTIONS))
def test_shapes_and_states(name):
    options = OPTIONS[name]
    layer = BinaryGRU(6, **options)
    x = _x((3, 5, 4))
    result = layer(x, training=True)
    outputs, *states = result if options.get("return_state") else [result]
    expected = (3, 5, 6) if options.get("return_sequences") else (3, 6)
    assert tuple(outputs.shape) == expected
    if options.get("return_state"):
        assert len(states) == 1 and tuple(states[0].shape) == (3, 6)
        last = _numpy(outputs)[:, -1] if options.get("return_sequences") else _numpy(outputs)
        np.testing.assert_allclose(_numpy(states[0]), last)
    assert np.all(np.isfinite(_numpy(outputs)))
    if options.get("dropout"):  # dropout acts in training only
        first = lambda r: _numpy(r[0] if options.get("return_state") else r)  # noqa: E731
        assert not np.allclose(first(layer(x, training=True)), first(layer(x, training=True)))
        np.testing.assert_allclose(first(layer(x, training=False)), first(layer(x, training=False)))


def test_initial_state_is_used():
    layer = BinaryGRU(4)
    x = _x((2, 3, 5))
    assert not np.allclose(_numpy(layer(x)), _numpy(layer(x, initial_state=[ops.convert_to_tensor(_x((2, 4), 1))])))


@pytest.mark.parametrize("reset_after", [True, False])
def test_masking_skips_padded_steps(reset_after):
    tokens = np.array([[3, 1, 4, 0, 0], [2, 7, 1, 8, 2]], np.int32)
    inputs = keras.Input((None,), dtype="int32")
    embedded = keras.layers.Embedding(10, 8, mask_zero=True)(inputs)
    model = keras.Model(inputs, BinaryGRU(6, reset_after=reset_after)(embedded))
    np.testing.assert_allclose(_numpy(model(tokens))[:1], _numpy(model(tokens[:1, :3])), atol=1e-6)


def test_bidirectional_and_rnn_wrapper():
    x = _x((2, 5, 4))
    bidirectional = keras.layers.Bidirectional(BinaryGRU(6, return_sequences=True))
    assert tuple(bidirectional(x).shape) == (2, 5, 12)
    assert type(bidirectional.backward_layer) is BinaryGRU and bidirectional.backward_layer.go_backwards
    clone = keras.layers.Bidirectional.from_config(bidirectional.get_config())
    assert type(clone.forward_layer) is BinaryGRU
    stacked = keras.layers.RNN([BinaryGRUCell(6), BinaryGRUCell(3)], return_sequences=True)
    assert tuple(stacked(x).shape) == (2, 5, 3)


def test_stateful_carries_state_across_calls():
    layer = BinaryGRU(4, stateful=True, return_sequences=True)
    inputs = keras.Input(batch_shape=(2, None, 3))
    model = keras.Model(inputs, layer(inputs))
    x = _x((2, 6, 3))
    whole = _numpy(model(x))
    layer.reset_state()
    first, second = _numpy(model(x[:, :3])), _numpy(model(x[:, 3:]))
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), whole, atol=1e-6)
    layer.reset_state()
    np.testing.assert_allclose(_numpy(model(x[:, :3])), first, atol=1e-6)


def test_config_round_trip_covers_every_argument():
    arguments = dict(activation="relu", recurrent_activation="hard_sigmoid", use_bias=False,
                     kernel_initializer="ones", recurrent_initializer="zeros", bias_initializer="ones",
                     kernel_regularizer="l2", recurrent_regularizer="l1", bias_regularizer="l2",
                     activity_regularizer="l1", kernel_constraint=None, recurrent_constraint="non_neg",
                     bias_constraint="non_neg", dropout=0.1, recurrent_dropout=0.2, return_sequences=True,
                     return_state=True, go_backwards=True, stateful=True, unroll=True, reset_after=False,
                     input_quantizer="approx_sign", recurrent_input_quantizer=None,
                     kernel_quantizer="magnitude_aware_sign", recurrent_kernel_quantizer="ste_tern",
                     gate_scale=False, seed=3, implementation=1)
    layer = BinaryGRU(5, **arguments)
    config = layer.get_config()
    assert set(arguments) <= set(config)
    clone = BinaryGRU.from_config(config)
    assert clone.get_config() == config
    assert type(clone.kernel_quantizer).__name__ == "MagnitudeAwareSign"
    assert clone.recurrent_input_quantizer is None and clone.gate_scale is False and clone.go_backwards
    for cls in (BinaryGRU, BinaryGRUCell):
        assert keras.saving.get_registered_name(cls) == f"keras_bnn>{cls.__name__}"
    cell = BinaryGRUCell(3, recurrent_kernel_quantizer="ste_tern", reset_after=False)
    assert BinaryGRUCell.from_config(cell.get_config()).get_config() == cell.get_config()
    assert type(keras.layers.deserialize(keras.layers.serialize(layer))) is BinaryGRU


def test_keras_file_keeps_predictions(tmp_path):
    inputs = keras.Input((None,), dtype="int32")
    x = keras.layers.Embedding(12, 8)(inputs)
    x = keras.layers.Bidirectional(BinaryGRU(6, return_sequences=True))(x)
    model = keras.Model(inputs, BinaryGRU(5, reset_after=False, kernel_quantizer="magnitude_aware_sign")(x))
    rng = np.random.default_rng(1)
    model.set_weights([rng.normal(scale=0.5, size=w.shape).astype(np.float32) for w in model.get_weights()])
    tokens = rng.integers(0, 12, size=(3, 7))
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    np.testing.assert_allclose(_numpy(loaded(tokens)), _numpy(model(tokens)), atol=1e-6)
    assert type(loaded.layers[-1]) is BinaryGRU


def test_macs_per_step():
    layer = BinaryGRU(32)
    layer(np.zeros((1, 2, 16), np.float32))
    assert layer.macs_per_step() == {1: 16 * 96 + 32 * 96}
    half = BinaryGRU(32, input_quantizer=None)
    half(np.zeros((1, 2, 16), np.float32))
    assert half.macs_per_step() == {32: 16 * 96, 1: 32 * 96}
    with pytest.raises(ValueError, match="not built"):
        BinaryGRUCell(4).macs_per_step()


def test_a_few_training_steps_lower_the_loss():
    rng = np.random.default_rng(0)
    # A next-token task with structure: the sequence counts up modulo 8 from a random start.
    starts = rng.integers(0, 8, size=(256, 1))
    ids = ((starts + np.arange(13)) % 8).astype(np.int32)
    x, y = ids[:, :-1], ids[:, 1:]
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(8, 16),
                              BinaryGRU(32, return_sequences=True), keras.layers.Dense(8)])
    # XLA compilation takes longer than these few steps on TensorFlow; JAX always compiles.
    model.compile(keras.optimizers.Adam(0.01), keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  jit_compile=keras.backend.backend() == "jax")
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, batch_size=32, epochs=3, verbose=0)
    after = model.evaluate(x, y, verbose=0)
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
