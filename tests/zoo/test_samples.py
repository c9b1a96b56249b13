"""keras_bnn.zoo.samples: each pretrained model as deployed, with real test and calibration samples."""

import numpy as np
import pytest

import keras_bnn.zoo as zoo


@pytest.mark.parametrize("name, shapes", [
    ("binary_cnn.mnist", [(4, 28, 28, 1)]),
    ("binary_transformer.sst2", [(4, 48)]),
    ("binary_gru_lm.tiny_shakespeare", [(4, 1), (4, 256)]),
])
def test_samples_fit_the_deployment_model(name, shapes):
    model = zoo.samples.deployment_model(name)
    inputs, labels = zoo.samples.test_samples(name, 4)
    assert [x.shape for x in inputs] == shapes and labels.shape == (4,)
    outputs = model.predict(inputs if len(inputs) > 1 else inputs[0], batch_size=1, verbose=0)
    scores = outputs[0] if isinstance(outputs, list) else outputs
    assert scores.reshape(4, -1).shape[1] == zoo.entry(name).num_classes
    assert [x.shape[1:] for x in zoo.samples.calibration_samples(name, 3)] == [s[1:] for s in shapes]


def test_language_model_samples_carry_the_state_along_the_text():
    (tokens, states), labels = zoo.samples.test_samples("binary_gru_lm.tiny_shakespeare", 6)
    assert np.all(states[0] == 0) and not np.all(states[1] == 0)  # the text starts from a zero state
    assert tokens[1:, 0].tolist() == labels[:-1].tolist()  # each label is the next token


@pytest.mark.parametrize("name", ["binary_cnn.mnist", "binary_transformer.sst2"])
def test_none_takes_the_whole_test_split(name):
    inputs, labels = zoo.samples.test_samples(name, None)
    assert len(labels) == len(inputs[0]) == zoo.entry(name).pretrained.test_examples


@pytest.mark.parametrize("examples", [0, -3])
def test_a_non_positive_number_of_examples_is_refused(examples):
    with pytest.raises(ValueError, match="positive number of samples"):
        zoo.samples.test_samples("binary_cnn.mnist", examples)
