"""keras_bnn.saving.load_larq_model: models that larq itself builds and saves (`.h5` and `.keras`, tf-keras 2) load
into Keras 3 (keras_bnn's layers and quantizers) with larq's outputs, on every backend; bad files are refused clearly.

larq runs once per module, in a subprocess (`tests.larq_reference.run_larq`): it builds every model below with
random weights (batch-norm statistics included), saves each as `.h5` and `.keras`, and stores its outputs on a
fixed random input.
"""

from __future__ import annotations

import os
import shutil

import keras
import numpy as np
import pytest

import keras_bnn
from keras_bnn.saving import UnsafeModelError, load_larq_model
from tests.larq_reference import run_larq

_LARQ_SCRIPT = """
L, Q, K = larq.layers, larq.quantizers, tf.keras
rng = np.random.default_rng(7)

def save(name, model, input_shape, train=False):
    for layer in model.layers:  # random weights, positive moving variances
        layer.set_weights([rng.uniform(0.5, 2.0, w.shape) if "moving_variance" in w.name else rng.normal(size=w.shape)
                           for w in layer.weights])
    x = rng.normal(size=(3, *input_shape)).astype("float32")
    if train:  # the files then hold an optimizer's state and a training config too
        model.compile(K.optimizers.Adam(0.01), "mse")
        model.fit(x, model(x, training=False).numpy()[::-1], epochs=2, verbose=0)
    model.save(os.path.join(folder, name + ".h5"))
    model.save(os.path.join(folder, name + ".keras"))
    outputs[name] = model(x, training=False).numpy()
    outputs[name + "/input"] = x

save("dense_sequential", K.Sequential([
    K.Input((12,)),
    L.QuantDense(16, kernel_quantizer=Q.SteSign(clip_value=0.5), kernel_constraint="weight_clip"),
    K.layers.BatchNormalization(),
    L.QuantDense(16, input_quantizer="ste_sign", kernel_quantizer="approx_sign"),
    L.QuantDense(16, input_quantizer="swish_sign", kernel_quantizer="magnitude_aware_sign", use_bias=False),
    K.layers.BatchNormalization(momentum=0.9, epsilon=1e-4),
    L.QuantDense(16, input_quantizer="ste_heaviside", kernel_quantizer="ste_tern"),
    L.QuantDense(16, input_quantizer=Q.DoReFa(k_bit=2, mode="activations"),
                 kernel_quantizer=Q.DoReFa(k_bit=3, mode="weights")),
    L.QuantDense(8, input_quantizer=Q.SteTern(threshold_value=0.3), kernel_quantizer=Q.NoOp(precision=1)),
    L.QuantDense(4, input_quantizer=Q.SteTern(ternary_weight_networks=True), kernel_quantizer=Q.ste_sign),
    K.layers.Activation("softmax"),
]), (12,))

inputs_2d = K.Input((8, 8, 3))
x = L.QuantConv2D(8, 3, padding="same", kernel_quantizer="ste_sign", kernel_constraint="weight_clip")(inputs_2d)
x = K.layers.BatchNormalization(momentum=0.9)(x)
y = L.QuantConv2D(8, 3, padding="same", pad_values=1.0, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                  use_bias=False)(x)
y = K.layers.BatchNormalization()(y)
x = K.layers.Add()([x, y])
x = K.layers.MaxPooling2D()(x)
x = L.QuantConv2D(8, 3, strides=2, padding="same", input_quantizer="approx_sign",
                  kernel_quantizer="magnitude_aware_sign")(x)
x = K.layers.AveragePooling2D(padding="same")(x)
x = K.layers.Flatten()(x)
x = L.QuantDense(5, input_quantizer="ste_sign", kernel_quantizer="ste_sign")(x)
save("conv2d_residual", K.Model(inputs_2d, K.layers.Activation("softmax")(x)), (8, 8, 3), train=True)

save("conv1d", K.Sequential([
    K.Input((16, 4)),
    L.QuantConv1D(6, 3, padding="same", pad_values=1.0, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                  kernel_constraint="weight_clip"),
    K.layers.BatchNormalization(),
    K.layers.MaxPooling1D(),
    L.QuantSeparableConv1D(6, 3, padding="same", pad_values=1.0, depth_multiplier=2, input_quantizer="ste_sign",
                           depthwise_quantizer="ste_sign", pointwise_quantizer="ste_sign"),
    K.layers.AveragePooling1D(),
    L.QuantConv1D(4, 2, dilation_rate=2, input_quantizer="approx_sign", kernel_quantizer="ste_tern"),
    K.layers.GlobalAveragePooling1D(),
]), (16, 4))

save("conv3d", K.Sequential([
    K.Input((4, 4, 4, 2)),
    L.QuantConv3D(4, 3, padding="same", pad_values=1.0, input_quantizer="ste_sign", kernel_quantizer="ste_sign"),
    K.layers.BatchNormalization(),
    L.QuantConv3DTranspose(3, 2, strides=2, input_quantizer="ste_sign", kernel_quantizer="magnitude_aware_sign"),
    K.layers.MaxPooling3D(),
    K.layers.GlobalMaxPooling3D(),
]), (4, 4, 4, 2))

inputs_dw = K.Input((8, 8, 3))
x = L.QuantDepthwiseConv2D(3, depth_multiplier=2, padding="same", pad_values=1.0, input_quantizer="ste_sign",
                           depthwise_quantizer="ste_sign", depthwise_constraint="weight_clip")(inputs_dw)
x = K.layers.BatchNormalization()(x)
x = L.QuantSeparableConv2D(8, 3, padding="same", pad_values=1.0, input_quantizer="ste_sign",
                           depthwise_quantizer="ste_sign", pointwise_quantizer="ste_sign")(x)
x = K.layers.BatchNormalization()(x)
x = L.QuantConv2DTranspose(4, 3, strides=2, padding="same", input_quantizer="ste_sign",
                           kernel_quantizer="ste_sign")(x)
x = K.layers.Activation("relu")(x)
save("depthwise_separable_transpose_2d", K.Model(inputs_dw, K.layers.GlobalAveragePooling2D()(x)), (8, 8, 3))

inner = K.Sequential([L.QuantDense(4, input_quantizer="ste_sign", kernel_quantizer="ste_sign", input_shape=(6,)),
                      K.layers.BatchNormalization()], name="inner")  # no Input: batch_input_shape in QuantDense
inputs_nested = K.Input((6,))
save("nested", K.Model(inputs_nested, K.layers.Dense(2)(inner(inputs_nested))), (6,))

inputs_lambda = K.Input((5,))
save("lambda", K.Model(inputs_lambda, L.QuantDense(3, kernel_quantizer="ste_sign")(
    K.layers.Lambda(lambda t: t * 2.0 - 1.0)(inputs_lambda))), (5,))

save("locally_connected", K.Sequential([K.Input((6, 6, 2)), L.QuantLocallyConnected2D(
    2, 3, input_quantizer="ste_sign", kernel_quantizer="ste_sign", implementation=1), K.layers.Flatten()]),
    (6, 6, 2))

@K.utils.register_keras_serializable("custom")
class HalfSign(Q.SteSign):
    pass

@K.utils.register_keras_serializable("custom")
class Twice(K.layers.Layer):
    def call(self, inputs):
        return 2.0 * inputs

save("custom_quantizer", K.Sequential([K.Input((4,)), L.QuantDense(2, kernel_quantizer=HalfSign())]), (4,))
save("custom_layer", K.Sequential([K.Input((4,)), Twice(name="twice"), L.QuantDense(2)]), (4,))
"""

MODELS = ["dense_sequential", "conv2d_residual", "conv1d", "conv3d", "depthwise_separable_transpose_2d", "nested"]
FORMATS = [".h5", ".keras"]


@pytest.fixture(scope="module")
def larq_files(tmp_path_factory):
    """(folder of the files larq saved, larq's outputs by model name)."""
    folder = str(tmp_path_factory.mktemp("larq_models"))
    outputs = run_larq(f"folder = {folder!r}\n" + _LARQ_SCRIPT)
    return folder, outputs


def _predict(model, x) -> np.ndarray:
    return keras.ops.convert_to_numpy(model(keras.ops.convert_to_tensor(x), training=False))


@pytest.mark.parametrize("extension", FORMATS)
@pytest.mark.parametrize("name", MODELS)
def test_outputs_match_larq(larq_files, name, extension):
    folder, outputs = larq_files
    model = load_larq_model(os.path.join(folder, name + extension))
    np.testing.assert_allclose(_predict(model, outputs[name + "/input"]), outputs[name], rtol=0, atol=1e-5)


def test_layers_quantizers_and_constraints_are_keras_bnn_classes(larq_files):
    folder, _ = larq_files
    for extension in FORMATS:
        model = load_larq_model(os.path.join(folder, "dense_sequential" + extension))
        first, *_, last = [layer for layer in model.layers if isinstance(layer, keras_bnn.layers.QuantDense)]
        assert type(first) is keras_bnn.layers.QuantDense
        assert isinstance(first.kernel_quantizer, keras_bnn.quantizers.SteSign)
        assert first.kernel_quantizer.clip_value == 0.5
        assert first.input_quantizer is None
        assert isinstance(first.kernel_constraint, keras_bnn.constraints.WeightClip)
        assert isinstance(last.input_quantizer, keras_bnn.quantizers.SteTern)
        assert last.input_quantizer.ternary_weight_networks is True
        kinds = [type(layer.kernel_quantizer).__name__ for layer in model.layers
                 if isinstance(layer, keras_bnn.layers.QuantDense)]
        assert kinds == ["SteSign", "ApproxSign", "MagnitudeAwareSign", "SteTern", "DoReFa", "NoOp", "SteSign"]


def test_loaded_model_saves_and_reloads_in_keras_3(larq_files, tmp_path):
    folder, outputs = larq_files
    model = load_larq_model(os.path.join(folder, "conv2d_residual.keras"))
    path = str(tmp_path / "keras3.keras")
    model.save(path)
    again = load_larq_model(path)  # a Keras 3 file is loaded as it is
    x = outputs["conv2d_residual/input"]
    np.testing.assert_allclose(_predict(again, x), outputs["conv2d_residual"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("extension", FORMATS)
def test_lambda_is_refused_unless_safe_mode_is_off(larq_files, extension):
    folder, outputs = larq_files
    path = os.path.join(folder, "lambda" + extension)
    with pytest.raises(UnsafeModelError, match=r"lambda.*\(Lambda\).*load_larq_model\(path, safe_mode=False\)"):
        load_larq_model(path)
    model = load_larq_model(path, safe_mode=False)
    np.testing.assert_allclose(_predict(model, outputs["lambda/input"]), outputs["lambda"], rtol=0, atol=1e-5)


@pytest.mark.parametrize("extension", FORMATS)
def test_layer_without_keras_3_equivalent_names_layer_and_file(larq_files, extension):
    folder, _ = larq_files
    path = os.path.join(folder, "locally_connected" + extension)
    with pytest.raises(ValueError, match="QuantLocallyConnected2D") as error:
        load_larq_model(path)
    assert path in str(error.value) and "quant_locally_connected2d" in str(error.value)


@pytest.mark.parametrize("extension", FORMATS)
def test_custom_quantizer_or_layer_is_named_with_the_file(larq_files, extension):
    folder, _ = larq_files
    for name, expected in (("custom_quantizer", r"quant_dense.*kernel_quantizer.*'HalfSign'"),
                           ("custom_layer", r"'twice' \(.*Twice\)")):
        path = os.path.join(folder, name + extension)
        with pytest.raises(ValueError, match=expected) as error:
            load_larq_model(path)
        assert path in str(error.value)


def test_bad_files_are_clear_value_errors(larq_files, tmp_path):
    folder, _ = larq_files
    text = tmp_path / "notes.h5"
    text.write_text("not a model")
    with pytest.raises(ValueError, match="HDF5"):
        load_larq_model(text)
    for extension, expected in ((".keras", "zip"), (".h5", "truncated")):
        source = os.path.join(folder, "conv2d_residual" + extension)
        cut = tmp_path / f"cut{extension}"
        cut.write_bytes(open(source, "rb").read()[: os.path.getsize(source) // 2])
        with pytest.raises(ValueError, match=expected):
            load_larq_model(cut)
    other = tmp_path / "model.txt"
    shutil.copy(os.path.join(folder, "nested.h5"), other)
    with pytest.raises(ValueError, match=r"expected a \.h5 or \.keras file"):
        load_larq_model(other)
    with pytest.raises(FileNotFoundError):
        load_larq_model(tmp_path / "missing.keras")
