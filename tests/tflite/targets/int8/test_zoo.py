"""The zoo's four image models convert to int8 and run in LiteRT, tf.lite and TFLite Micro on real test images.

binary_cnn.mnist and binarynet_mlp.mnist are binary from the first sign on, so their int8 files agree with
Keras on every image here (the only rounding left is the int8 logits). XNOR-Net and Bi-Real Net keep real
first/last layers (and Bi-Real a real residual stream), quantized to int8: they agree on most images, and the
three runtimes agree with each other.
"""

import numpy as np
import pytest

import keras_bnn.zoo as zoo
from keras_bnn.tflite.targets.int8 import convert_int8
from keras_bnn.tflite.runtimes import run
from keras_bnn.datasets import load_images as load_split

# Agreement with Keras required on the first 64 test images (full-split figures: benchmarks/int8_target.py).
MODELS = {"binary_cnn.mnist": 1.0, "binarynet_mlp.mnist": 1.0, "xnornet_small.fashion_mnist": 0.9,
          "birealnet_small.fashion_mnist": 0.9}


@pytest.mark.parametrize("name", sorted(MODELS))
def test_zoo_model_runs_everywhere(name, ops_of):
    model = zoo.get(name, pretrained=True, batch_size=1, legacy=True)
    dataset = zoo.entry(name).dataset
    calibration, _ = load_split(dataset, "train[:64]")
    images, _ = load_split(dataset, "test[:64]")
    flatbuffer = convert_int8(model, representative_data=calibration)
    assert not any(op.startswith("Lce") or op == "CUSTOM" for op in ops_of(flatbuffer))
    expected = model.predict(images, verbose=0).argmax(axis=1)
    predictions = {runtime: run(flatbuffer, images, runtime)[0] for runtime in ("litert", "tflite", "tflm")}
    for runtime, probabilities in predictions.items():
        agreement = np.mean(probabilities.argmax(axis=1) == expected)
        assert agreement >= MODELS[name], f"{runtime}: top-1 agreement {agreement:.3f}"
    if MODELS[name] == 1.0:  # binary up to the logits: runtimes differ at most by int8 rounding of the head
        np.testing.assert_allclose(predictions["litert"], predictions["tflm"], atol=3 / 256)
    else:  # XNNPACK and the reference kernels round some real int8 ADD/requantizations differently
        assert np.mean(predictions["litert"].argmax(1) == predictions["tflm"].argmax(1)) >= 0.95
