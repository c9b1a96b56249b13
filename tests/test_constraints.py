"""keras_bnn.constraints against larq 0.14 (values, configs, larq's serialized forms, names), its Keras 3
round trips, its use by an optimizer, and validation; on every Keras backend."""

import json

import keras
import numpy as np
import pytest
from keras import ops

from keras_bnn import constraints
from tests.larq_reference import run_larq

CASES = {"default": ("WeightClip", {}), "0.5": ("WeightClip", {"clip_value": 0.5}),
         "alias_2": ("weight_clip", {"clip_value": 2})}

LARQ_SCRIPT = """
import json
for case, (class_name, kwargs) in {cases!r}.items():
    constraint = getattr(larq.constraints, class_name)(**kwargs)
    outputs[case + "/y"] = constraint(tf.constant(inputs["w"])).numpy()
    outputs[case + "/config"] = json.dumps(constraint.get_config())
    outputs[case + "/serialized"] = json.dumps(tf.keras.constraints.serialize(constraint))
    outputs[case + "/legacy"] = json.dumps(tf.keras.utils.legacy.serialize_keras_object(constraint))
for name in ("weight_clip", "WeightClip"):
    outputs["get/" + name] = type(tf.keras.constraints.get(name)).__name__
"""


@pytest.fixture(scope="module")
def larq_run():
    """larq's clipped values, configs, serialized forms and names (one TensorFlow start for the module)."""
    w = np.random.default_rng(0).normal(scale=1.5, size=(4, 6)).astype(np.float32)
    w.ravel()[:8] = [0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 1.0000001]
    return w, run_larq(LARQ_SCRIPT.format(cases=CASES), w=w)


def test_values_configs_and_names_equal_larq(larq_run):
    w, larq = larq_run
    for case, (class_name, kwargs) in CASES.items():
        constraint = getattr(constraints, class_name)(**kwargs)
        np.testing.assert_array_equal(ops.convert_to_numpy(constraint(ops.convert_to_tensor(w))), larq[case + "/y"])
        assert constraint.get_config() == json.loads(str(larq[case + "/config"])), case
        for form in ("serialized", "legacy"):
            config = json.loads(str(larq[f"{case}/{form}"]))
            revived = constraints.get(config)
            assert type(revived) is type(constraint) and revived.get_config() == constraint.get_config(), form
    for name in ("weight_clip", "WeightClip"):
        assert type(constraints.get(name)).__name__ == str(larq["get/" + name])


def test_keras_round_trips_and_other_identifiers():
    for constraint in (constraints.WeightClip(0.25), constraints.weight_clip(3)):
        config = json.loads(json.dumps(keras.saving.serialize_keras_object(constraint)))
        assert config["registered_name"] == f"keras_bnn>{type(constraint).__name__}"
        revived = constraints.get(config)
        assert type(revived) is type(constraint) and revived.get_config() == constraint.get_config()
    assert constraints.get(None) is None
    assert isinstance(constraints.get("non_neg"), keras.constraints.NonNeg)
    function = lambda w: w  # noqa: E731
    assert constraints.get(function) is function
    with pytest.raises(ValueError, match="no_such_constraint"):
        constraints.get("no_such_constraint")


def test_an_optimizer_step_clips_the_variable():
    variable = keras.Variable(np.array([0.5, -0.5, 0.9], np.float32))
    variable.constraint = constraints.get("weight_clip")  # what add_weight(constraint=...) sets
    gradient = ops.convert_to_tensor(np.array([-2.0, 2.0, 0.05], np.float32))
    keras.optimizers.SGD(learning_rate=1.0).apply_gradients([(gradient, variable)])
    np.testing.assert_allclose(ops.convert_to_numpy(variable), [1.0, -1.0, 0.85], rtol=1e-6)


def test_bad_clip_values_raise():
    for value in (0, -1.0, float("nan"), "1", True, None):
        with pytest.raises(ValueError, match="clip_value"):
            constraints.WeightClip(value)
