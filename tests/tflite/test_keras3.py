"""Keras 3 models into the converter: `convert` takes a Keras 3 model (or its .keras file) by rebuilding it as the
equivalent tf-keras model, so its flatbuffers are byte for byte those of the tf-keras (legacy) build of the same
definition and weights; `verify` runs the Keras 3 model itself. Models trained on JAX and on PyTorch (in
subprocesses, saved as .keras) convert here, on TensorFlow, and agree with their own predictions."""

import functools
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_bnn.datasets
import keras_bnn.layers
import keras_bnn.zoo as zoo
from keras_bnn.tflite import convert, inspect, verify
from keras_bnn.tflite.keras3 import to_tf_keras
from keras_bnn.tflite.runtimes import run

SAMPLES = 16
GRU_LENGTH = 16


@functools.lru_cache(maxsize=None)
def _samples(name):
    """Real test samples for a pretrained zoo model (a language model: windows of GRU_LENGTH characters). The
    28x28 image models all read Fashion-MNIST's (one dataset to prepare: agreement needs real inputs, not the
    model's own dataset)."""
    found = zoo.entry(name)
    if found.task == "language_modeling":
        ids = zoo.tokenizer(name).encode(keras_bnn.datasets.load_text(found.dataset, "test")[:4 * GRU_LENGTH])
        return ids.reshape(4, GRU_LENGTH).astype(np.int32)
    if found.task == "image_classification":
        name = "xnornet_small.fashion_mnist"
    return zoo.samples.test_samples(name, SAMPLES)[0][0]


def _both_builds(name):
    """The Keras 3 and the tf-keras build of a pretrained zoo model (batch 1)."""
    shape = dict(input_shape=(GRU_LENGTH,)) if zoo.entry(name).task == "language_modeling" else {}
    return (zoo.get(name, pretrained=True, batch_size=1, legacy=False, **shape),
            zoo.get(name, pretrained=True, batch_size=1, legacy=True, **shape))


def _convert_both(keras3_model, legacy_model, **options):
    """Flatbuffers of both builds, each made in a fresh tf-keras session (automatic names are the same)."""
    expected = convert(legacy_model, **options)
    tf.keras.backend.clear_session()
    return convert(keras3_model, **options), expected


@pytest.mark.parametrize("name", ["binary_cnn.mnist", "xnornet_small.fashion_mnist",
                                  "birealnet_small.fashion_mnist", "binary_gru_lm.tiny_shakespeare",
                                  "binary_transformer.sst2"])
def test_zoo_model_converts_to_the_legacy_flatbuffer(name):
    model, legacy = _both_builds(name)
    assert isinstance(model, keras.Model) and not isinstance(model, tf.keras.Model)
    flatbuffer, expected = _convert_both(model, legacy, kernels="lce")
    assert flatbuffer == expected
    assert inspect(flatbuffer).bitpacked_share == 1.0
    report = verify(model, flatbuffer, _samples(name))
    if report.top1_agreement is None:  # the language model: logits per position
        assert report.max_abs_diff < 1e-3 * report.max_abs_keras
    else:
        assert report.top1_agreement == 1.0
    if name == "binary_cnn.mnist":
        tf.keras.backend.clear_session()
        float_flatbuffer, float_expected = _convert_both(model, legacy, kernels="float")
        assert float_flatbuffer == float_expected
        assert verify(model, float_flatbuffer, _samples(name)).top1_agreement == 1.0


def test_int8_target_gives_the_legacy_flatbuffer():
    name = "binary_cnn.mnist"
    model, legacy = _both_builds(name)
    calibration = zoo.samples.calibration_samples("xnornet_small.fashion_mnist", 64)[0]
    flatbuffer, expected = _convert_both(model, legacy, kernels="int8", representative_data=calibration)
    assert flatbuffer == expected
    assert verify(model, flatbuffer, _samples(name)).top1_agreement == 1.0


def test_weights_are_copied_and_outputs_match():
    model, legacy = _both_builds("birealnet_small.fashion_mnist")
    rebuilt = to_tf_keras(model)
    assert isinstance(rebuilt, tf.keras.Model) and [layer.name for layer in rebuilt.layers] == [
        layer.name for layer in legacy.layers]
    for ours, theirs in zip(rebuilt.weights, legacy.weights):
        np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    x = _samples("birealnet_small.fashion_mnist")
    np.testing.assert_allclose(rebuilt(x, training=False).numpy(), model.predict(x, verbose=0), atol=1e-4)


def _small_binary_net(sequential=False):
    binary = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                  use_bias=False)
    layers = [keras.layers.Rescaling(1 / 127.5, offset=-1.0),
              keras_bnn.layers.QuantConv2D(16, 3, padding="same", pad_values=1.0, **binary),
              keras.layers.MaxPooling2D(2), keras.layers.BatchNormalization(),
              keras_bnn.layers.XNORConv2D(16, 3, padding="same", input_quantizer="ste_sign"),
              keras.layers.BatchNormalization(), keras.layers.Flatten(),
              keras_bnn.layers.QuantDense(10, **binary), keras.layers.BatchNormalization()]
    if sequential:
        return keras.Sequential([keras.Input((8, 8, 1), batch_size=1), *layers])
    inputs = keras.Input((8, 8, 1), batch_size=1)
    block = keras.Sequential([keras.Input((8, 8, 1)), *layers[:4]], name="block")  # a nested model
    x = block(inputs)
    for layer in layers[4:]:
        x = layer(x)
    return keras.Model(inputs, x)


@pytest.mark.parametrize("sequential", [True, False])
def test_sequential_and_nested_models_convert_and_agree(sequential):
    model = _small_binary_net(sequential)
    x = np.random.default_rng(0).uniform(0, 255, (12, 8, 8, 1)).astype("float32")
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, np.arange(12) % 10, epochs=1, batch_size=4, verbose=0)
    for layer in (model.layers[-5], model.layers[1]):  # XNORConv2D; QuantConv2D or the block
        layer.trainable = False  # a frozen layer's weights are copied all the same
    np.testing.assert_allclose(to_tf_keras(model)(x, training=False).numpy(), model.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-4)
    result = convert(model, report=True, strict=True)
    assert result.report.bitpacked_share == 1.0
    assert verify(model, result.flatbuffer, x).top1_agreement == 1.0


TRAIN_SCRIPT = textwrap.dedent("""
    import sys
    import keras, numpy as np
    import keras_bnn.layers
    assert keras.backend.backend() == sys.argv[1]
    binary = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                  use_bias=False)
    inputs = keras.Input((8, 8, 1))
    x = keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    x = keras_bnn.layers.QuantConv2D(16, 3, padding="same", pad_values=1.0, **binary)(x)
    x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.BatchNormalization()(x)
    x = keras_bnn.layers.BiRealConv2D(16, 3)(x)
    x = keras.layers.Flatten()(keras.layers.BatchNormalization()(x))
    outputs = keras.layers.BatchNormalization()(keras_bnn.layers.QuantDense(10, **binary)(x))
    model = keras.Model(inputs, outputs)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (64, 8, 8, 1)).astype("float32")
    history = model.fit(x, (x.mean(axis=(1, 2, 3)) > 127.5).astype("int32"), epochs=3, batch_size=16, verbose=0)
    model.save(sys.argv[2])
    np.save(sys.argv[3], x[:16])
    np.save(sys.argv[4], model.predict(x[:16], verbose=0))
""")


def test_models_trained_on_jax_and_torch_convert_on_tensorflow(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(TRAIN_SCRIPT)
    processes = {}
    for backend in ("jax", "torch"):
        env = dict(os.environ, KERAS_BACKEND=backend)
        env.pop("TF_USE_LEGACY_KERAS", None)
        files = [str(tmp_path / f"{backend}.{suffix}") for suffix in ("keras", "x.npy", "predictions.npy")]
        processes[backend] = (subprocess.Popen([sys.executable, str(script), backend, *files], env=env,
                                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True), files)
    for backend, (process, (path, x_path, predictions_path)) in processes.items():
        output, _ = process.communicate(timeout=300)
        assert process.returncode == 0, output[-3000:]
        x, predictions = np.load(x_path), np.load(predictions_path)
        flatbuffer = convert(path, strict=True)  # the .keras file, loaded here on TensorFlow
        assert inspect(flatbuffer).bitpacked_share == 1.0
        (outputs,) = run(flatbuffer, x, "lce")
        np.testing.assert_array_equal(outputs.argmax(1), predictions.argmax(1))
        np.testing.assert_allclose(outputs, predictions, atol=1e-3)
        loaded = keras.saving.load_model(path)
        assert verify(loaded, flatbuffer, x).top1_agreement == 1.0


class _Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras_bnn.layers.QuantDense(2, kernel_quantizer="ste_sign")

    def call(self, inputs):
        return self.dense(inputs)


class _OwnSign(keras_bnn.quantizers.Quantizer):
    precision = 1

    def call(self, inputs):
        return keras.ops.sign(inputs)


def test_what_has_no_tf_keras_equivalent_is_refused_by_name():
    with pytest.raises(TypeError, match="tf-keras model.*Keras 3 model"):
        convert(object())
    subclassed = _Subclassed()
    subclassed(np.zeros((1, 4), "float32"))
    with pytest.raises(TypeError, match="subclassed.*Functional or Sequential"):
        convert(subclassed)
    inputs = keras.Input((4,))
    with pytest.raises(ValueError, match="'rms'.*RMSNormalization.*no tf-keras equivalent"):
        convert(keras.Model(inputs, keras.layers.RMSNormalization(name="rms")(inputs)))
    with pytest.raises(ValueError, match="'own'.*input_quantizer.*_OwnSign"):
        convert(keras.Model(inputs, keras_bnn.layers.QuantDense(2, input_quantizer=_OwnSign(), name="own")(inputs)))
    with pytest.raises(ValueError, match="Keras 3 operation.*absolute"):
        convert(keras.Model(inputs, keras.ops.abs(keras_bnn.layers.QuantDense(2)(inputs))))
    with pytest.raises(FileNotFoundError, match="missing.keras"):
        convert("missing.keras")
