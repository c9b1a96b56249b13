"""Distiller: its loss equals the definition on fixed tensors; it trains with fit; the student stands alone."""

import keras
import numpy as np
import pytest

from keras_bnn.layers import QuantConv2D
from keras_bnn.training import Distiller, PCNNConv2D, attention_map, attention_transfer_loss, soft_target_loss
from tests.training.gradients import numpy

RNG = np.random.default_rng(0)


def _softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def _np_attention(features):
    q = np.sum(features**2, axis=-1).reshape(len(features), -1)
    return q / np.linalg.norm(q, axis=-1, keepdims=True)


def _teacher():
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="t_features")(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(4)(x), name="teacher")


def _student(outputs=4):
    binary = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip")
    inputs = keras.Input((8, 8, 1))
    x = QuantConv2D(4, 3, padding="same", pad_values=1.0, name="s_conv", kernel_quantizer="ste_sign",
                    kernel_constraint="weight_clip")(inputs)
    x = keras.layers.BatchNormalization(name="s_features")(x)
    x = QuantConv2D(4, 3, strides=2, padding="same", pad_values=1.0, **binary)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(outputs, name="s_logits")(x), name="student")


def test_soft_target_and_attention_losses_match_their_definitions():
    t, s = RNG.normal(size=(5, 4)).astype(np.float32), RNG.normal(size=(5, 4)).astype(np.float32)
    temperature = 3.0
    p_t, p_s = _softmax(t / temperature), _softmax(s / temperature)
    expected = temperature**2 * np.sum(p_t * (np.log(p_t) - np.log(p_s)), axis=-1)
    np.testing.assert_allclose(numpy(soft_target_loss(t, s, temperature)), expected, rtol=1e-4, atol=1e-6)

    f_t, f_s = RNG.normal(size=(3, 4, 4, 6)).astype(np.float32), RNG.normal(size=(3, 4, 4, 2)).astype(np.float32)
    np.testing.assert_allclose(numpy(attention_map(f_t)), _np_attention(f_t), rtol=1e-5)
    expected = np.linalg.norm(_np_attention(f_s) - _np_attention(f_t), axis=-1)
    np.testing.assert_allclose(numpy(attention_transfer_loss(f_t, f_s)), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="batch, height, width, channels"):
        attention_map(np.ones((2, 3), np.float32))


def test_distiller_total_loss_equals_its_definition_on_fixed_tensors():
    distiller = Distiller(_teacher(), _student(), temperature=2.5, alpha=0.3,
                          attention_pairs=[("t_features", "s_features")], attention_weight=7.0)
    distiller.compile("adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    y = np.array([0, 3, 1, 2])
    weights = np.array([1.0, 0.5, 2.0, 0.0], np.float32)
    t_logits, s_logits = RNG.normal(size=(4, 4)).astype(np.float32), RNG.normal(size=(4, 4)).astype(np.float32)
    t_feat, s_feat = RNG.normal(size=(4, 8, 8, 6)).astype(np.float32), RNG.normal(size=(4, 8, 8, 4)).astype(np.float32)
    tensors = [keras.ops.convert_to_tensor(a) for a in (t_logits, t_feat, s_logits, s_feat, weights)]
    losses = {k: float(numpy(v)) for k, v in distiller.compute_losses(
        keras.ops.convert_to_tensor(y), tensors[:2], tensors[2:4], tensors[4]).items()}

    hard = -np.log(_softmax(s_logits)[np.arange(4), y])
    p_t, p_s = _softmax(t_logits / 2.5), _softmax(s_logits / 2.5)
    soft = 2.5**2 * np.sum(p_t * np.log(p_t / p_s), axis=-1)
    attention = np.linalg.norm(_np_attention(s_feat) - _np_attention(t_feat), axis=-1)
    mean = lambda per_example: np.sum(weights * per_example) / len(y)  # noqa: E731  (Keras' sum over batch size)
    np.testing.assert_allclose(losses["student_loss"], mean(hard), rtol=1e-5)
    np.testing.assert_allclose(losses["distillation_loss"], mean(soft), rtol=1e-5)
    np.testing.assert_allclose(losses["attention_loss"], mean(attention), rtol=1e-5)
    expected = 0.3 * mean(hard) + 0.7 * mean(soft) + 7.0 * mean(attention)
    np.testing.assert_allclose(losses["loss"], expected, rtol=1e-5)


def test_probabilities_give_the_same_soft_loss_as_logits():
    def probabilities_model(model):
        return keras.Model(model.inputs, keras.layers.Softmax()(model.outputs[0]))

    t_logits, s_logits = RNG.normal(size=(3, 4)).astype(np.float32), RNG.normal(size=(3, 4)).astype(np.float32)
    y = keras.ops.convert_to_tensor([0, 1, 2])
    results = []
    for from_logits, t_out, s_out in ((True, t_logits, s_logits), (False, _softmax(t_logits), _softmax(s_logits))):
        teacher, student = _teacher(), _student()
        if not from_logits:
            teacher, student = probabilities_model(teacher), probabilities_model(student)
        distiller = Distiller(teacher, student, temperature=4.0, from_logits=from_logits)
        distiller.compile("adam", loss="sparse_categorical_crossentropy")
        t_out, s_out = keras.ops.convert_to_tensor(t_out), keras.ops.convert_to_tensor(s_out)
        results.append(numpy(distiller.compute_losses(y, [t_out], [s_out])["distillation_loss"]))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-4)


def test_distiller_trains_with_fit_and_the_student_saves_alone(tmp_path):
    teacher, student = _teacher(), _student()
    teacher_weights = [w.copy() for w in teacher.get_weights()]
    distiller = Distiller(teacher, student, attention_pairs=[("t_features", "s_features")])
    distiller.compile(keras.optimizers.Adam(1e-2), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                      metrics=["accuracy"])
    x, y = RNG.normal(size=(32, 8, 8, 1)).astype(np.float32), RNG.integers(0, 4, 32)
    history = distiller.fit(x, y, batch_size=8, epochs=3, verbose=0)
    assert set(history.history) == {"loss", "student_loss", "distillation_loss", "attention_loss", "accuracy"}
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert all(value > 0 for value in history.history["attention_loss"])
    for before, after in zip(teacher_weights, teacher.get_weights()):
        np.testing.assert_array_equal(before, after)  # the teacher is frozen
    evaluation = distiller.evaluate(x, y, verbose=0, return_dict=True)
    assert set(evaluation) == set(history.history)
    np.testing.assert_allclose(distiller.predict(x, verbose=0), student.predict(x, verbose=0), rtol=1e-6)

    path = tmp_path / "student.keras"
    distiller.student.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored.predict(x, verbose=0), student.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


def test_student_losses_enter_the_total():
    """A PCNN student's projection loss (add_loss) is part of the loss that fit minimises."""
    inputs = keras.Input((8, 8, 1))
    x = PCNNConv2D(4, 3, projection_loss_weight=10.0, name="pcnn")(inputs)
    student = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.GlobalAveragePooling2D()(x)))
    distiller = Distiller(_teacher(), student, alpha=0.5)
    distiller.compile("adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = RNG.normal(size=(8, 8, 8, 1)).astype(np.float32), RNG.integers(0, 4, 8)
    logs = distiller.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    projection = float(numpy(student.get_layer("pcnn").kernel_quantizer.projection_loss(
        student.get_layer("pcnn").kernel)))
    assert projection > 0
    expected = 0.5 * logs["student_loss"] + 0.5 * logs["distillation_loss"] + projection
    np.testing.assert_allclose(logs["loss"], expected, rtol=1e-4)


def test_distiller_config_round_trip():
    distiller = Distiller(_teacher(), _student(), temperature=3.0, alpha=0.2,
                          attention_pairs=[("t_features", "s_features")], attention_weight=2.0)
    clone = Distiller.from_config(distiller.get_config())
    assert (clone.temperature, clone.alpha, clone.attention_pairs, clone.attention_weight) == (
        3.0, 0.2, [("t_features", "s_features")], 2.0)
    assert clone.student.output_shape == (None, 4)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"temperature": 0.0}, ValueError, "temperature"),
        ({"temperature": -2.0}, ValueError, "temperature"),
        ({"alpha": -0.1}, ValueError, "alpha"),
        ({"alpha": 1.5}, ValueError, "alpha"),
        ({"attention_weight": -1.0}, ValueError, "attention_weight"),
        ({"attention_pairs": [("t_features", "missing")]}, ValueError, "missing"),
        ({"attention_pairs": [("t_features", "s_logits")]}, ValueError, "4-D"),
        ({"from_logits": "yes"}, TypeError, "from_logits"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        Distiller(_teacher(), _student(), **kwargs)


def test_shape_mismatch_and_missing_loss():
    with pytest.raises(ValueError, match="output shape"):
        Distiller(_teacher(), _student(outputs=5))
    with pytest.raises(TypeError, match="keras.Model"):
        Distiller(_teacher(), keras.layers.Dense(4))
    distiller = Distiller(_teacher(), _student())
    with pytest.raises(ValueError, match="loss="):
        distiller.compile("adam")
