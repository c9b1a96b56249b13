"""A pretrained zoo model's deployable files on emulated aarch64 (real QEMU, real aarch64 LiteRT), against x86 and
Keras; the full sweep over every zoo model, with instruction counts, is benchmarks/arm.py.

Needs `make aarch64-setup` (run by `make test`); without it the tests fail with NotSetUp naming the command.
"""

import warnings

import numpy as np
import pytest

import keras_bnn.zoo as zoo
from keras_bnn.tflite import convert
from keras_bnn.tflite.emulation import Aarch64
from keras_bnn.tflite.runtimes import open_runtime

NAME = "binary_cnn.mnist"
EXAMPLES = 40


@pytest.fixture(scope="module")
def deployed():
    model = zoo.samples.deployment_model(NAME)
    (images,), labels = zoo.samples.test_samples(NAME, EXAMPLES)
    keras = model.predict(images, batch_size=EXAMPLES, verbose=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        files = {"float": convert(model, kernels="float", batch_size=1),
                 "int8": convert(model, kernels="int8", batch_size=1,
                                 representative_data=zoo.samples.calibration_samples(NAME, 200)[0])}
    return images, labels, keras, files


def _outputs(deployed, kind):
    images, _, _, files = deployed
    x86 = open_runtime(files[kind], "litert")
    samples = [[images[i:i + 1].astype(x86.inputs[0].dtype)] for i in range(len(images))]
    on_x86 = np.concatenate([x86.run(sample)[0] for sample in samples])
    on_arm = np.concatenate([outputs[0] for outputs in Aarch64().run_samples(files[kind], samples)])
    return on_x86, on_arm


def test_int8_file_on_aarch64_equals_x86_bit_for_bit_and_agrees_with_keras(deployed):
    on_x86, on_arm = _outputs(deployed, "int8")
    assert on_arm.dtype == on_x86.dtype and np.array_equal(on_arm, on_x86)
    keras = deployed[2]
    assert np.array_equal(on_arm.argmax(1), keras.argmax(1))
    assert np.abs(on_arm - keras).max() < 0.05  # int8 output probabilities: a few quantization steps


def test_float_file_on_aarch64_matches_x86_to_float32_rounding_and_agrees_with_keras(deployed):
    on_x86, on_arm = _outputs(deployed, "float")
    # Not bit for bit: XNNPACK's aarch64 and x86 kernels sum the real layers in different orders.
    np.testing.assert_allclose(on_arm, on_x86, rtol=0, atol=1e-5)
    keras = deployed[2]
    assert np.array_equal(on_arm.argmax(1), keras.argmax(1)) and np.abs(on_arm - keras).max() < 1e-5
