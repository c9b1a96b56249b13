"""keras_bnn on the three Keras 3 backends: a `.keras` file saved on one loads on the others with the same outputs,
`ste_sign`'s gradient is the same on each, the Keras 3 modules need neither tf-keras, larq nor (on JAX)
TensorFlow, and a backend whose package is missing is reported with the extra to install.

Each backend runs in its own Python process (Keras picks its backend once per process), whatever backend runs
the test itself.
"""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

BACKENDS = ("tensorflow", "jax", "torch")

# Run as `python -c WORKER save|load FOLDER` on the backend KERAS_BACKEND names.
WORKER = r'''
import json, os, sys
import numpy as np
import keras
import keras_bnn.layers
from keras_bnn.quantizers import ste_sign

mode, folder = sys.argv[1], sys.argv[2]
backend = keras.backend.backend()
data = np.load(os.path.join(folder, "inputs.npz"))


def build():
    inputs = keras.Input((6, 6, 3))
    x = keras_bnn.layers.QuantConv2D(4, 3, padding="same", pad_values=1.0, input_quantizer="ste_sign",
                                     kernel_quantizer="ste_sign", kernel_constraint="weight_clip",
                                     use_bias=False, name="conv")(inputs)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras_bnn.layers.QuantDense(5, input_quantizer=ste_sign, kernel_quantizer="ste_sign",
                                          kernel_constraint="weight_clip", name="dense")(x)
    return keras.Model(inputs, outputs)


def ste_sign_gradient(x, upstream):
    """(ste_sign(x), d/dx of sum(upstream * ste_sign(x))) by the backend's own autodiff."""
    if backend == "tensorflow":
        import tensorflow as tf
        x = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = ste_sign(x)
        return y.numpy(), tape.gradient(y, x, output_gradients=tf.constant(upstream)).numpy()
    if backend == "jax":
        import jax
        y, vjp = jax.vjp(ste_sign, x)
        return np.asarray(y), np.asarray(vjp(upstream)[0])
    import torch
    x = torch.tensor(x, requires_grad=True)
    y = ste_sign(x)
    y.backward(torch.tensor(upstream))
    return y.detach().numpy(), x.grad.numpy()


if mode == "save":
    keras.utils.set_random_seed(7)
    model = build()
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="mse")
    model.fit(data["x_train"], data["y_train"], batch_size=8, epochs=2, verbose=0)  # weights and BN statistics move
    model.save(os.path.join(folder, f"{backend}.keras"))
    np.save(os.path.join(folder, f"{backend}.predictions.npy"), model.predict(data["x"], verbose=0))
    values, gradient = ste_sign_gradient(data["gradient_x"], data["upstream"])
    np.save(os.path.join(folder, f"{backend}.ste_sign.npy"), values)
    np.save(os.path.join(folder, f"{backend}.ste_sign_gradient.npy"), gradient)
else:
    report = {}
    for saved in sys.argv[3:]:
        model = keras.saving.load_model(os.path.join(folder, f"{saved}.keras"))
        np.save(os.path.join(folder, f"{saved}.loaded_on_{backend}.npy"), model.predict(data["x"], verbose=0))
        conv, dense = model.get_layer("conv"), model.get_layer("dense")
        report[saved] = {"classes": [type(conv).__module__, type(dense).__module__],
                         "pad_values": conv.get_config()["pad_values"],
                         "constraint": type(conv.kernel_constraint).__name__}
    with open(os.path.join(folder, f"loaded_on_{backend}.json"), "w") as handle:
        json.dump(report, handle)
'''


def _env(**extra: str) -> dict[str, str]:
    """The test's environment without a backend choice, the tf-keras switch or a PYTHONPATH, plus `extra`."""
    env = {key: value for key, value in os.environ.items()
           if key not in ("KERAS_BACKEND", "TF_USE_LEGACY_KERAS", "PYTHONPATH")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", **extra)
    return env


def _run_all(arguments: dict[str, list[str]], cwd: pathlib.Path) -> None:
    """Run WORKER on each backend (concurrently) with its arguments; fail with its stderr if one fails."""
    processes = {backend: subprocess.Popen([sys.executable, "-c", WORKER, *args], cwd=cwd, env=_env(KERAS_BACKEND=backend),
                                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for backend, args in arguments.items()}
    for backend, process in processes.items():
        _, stderr = process.communicate(timeout=900)
        assert process.returncode == 0, f"{backend}: {stderr[-3000:]}"


@pytest.fixture(scope="module")
def exchanged(tmp_path_factory) -> pathlib.Path:
    """A folder where each backend saved a model, its predictions and ste_sign's gradient, and then loaded the
    other backends' files."""
    folder = tmp_path_factory.mktemp("backends")
    rng = np.random.default_rng(0)
    gradient_x = np.concatenate([np.array([-2.0, -1.0001, -1.0, -0.5, 0.0, 0.5, 1.0, 1.0001, 2.0]),
                                 rng.uniform(-3, 3, 55)]).astype("float32")
    np.savez(folder / "inputs.npz", x=rng.normal(size=(16, 6, 6, 3)).astype("float32"),
             x_train=rng.normal(size=(32, 6, 6, 3)).astype("float32"),
             y_train=rng.normal(size=(32, 5)).astype("float32"),
             gradient_x=gradient_x, upstream=rng.normal(size=gradient_x.shape).astype("float32"))
    _run_all({backend: ["save", str(folder)] for backend in BACKENDS}, folder)
    _run_all({backend: ["load", str(folder), *(other for other in BACKENDS if other != backend)]
              for backend in BACKENDS}, folder)
    return folder


@pytest.mark.parametrize("saved", BACKENDS)
def test_keras_file_loads_on_the_other_backends_with_the_same_outputs(exchanged, saved):
    expected = np.load(exchanged / f"{saved}.predictions.npy")
    assert np.abs(expected).max() > 0
    for loaded in BACKENDS:
        if loaded == saved:
            continue
        np.testing.assert_allclose(np.load(exchanged / f"{saved}.loaded_on_{loaded}.npy"), expected, rtol=0,
                                   atol=1e-6, err_msg=f"saved on {saved}, loaded on {loaded}")
        report = json.loads((exchanged / f"loaded_on_{loaded}.json").read_text())[saved]
        assert all(module.startswith("keras_bnn.layers") for module in report["classes"]), report
        assert report["pad_values"] == 1.0
        assert report["constraint"] in ("WeightClip", "weight_clip")


def test_models_trained_on_each_backend_differ(exchanged):
    """The exchange compares real outputs: training moved each backend's model away from the others'."""
    predictions = [np.load(exchanged / f"{backend}.predictions.npy") for backend in BACKENDS]
    assert all(np.isfinite(p).all() for p in predictions)
    assert len({p.tobytes() for p in predictions}) > 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_ste_sign_gradient_is_upstream_inside_the_unit_interval(exchanged, backend):
    inputs = np.load(exchanged / "inputs.npz")
    x, upstream = inputs["gradient_x"], inputs["upstream"]
    np.testing.assert_array_equal(np.load(exchanged / f"{backend}.ste_sign.npy"), np.where(x >= 0, 1.0, -1.0))
    np.testing.assert_array_equal(np.load(exchanged / f"{backend}.ste_sign_gradient.npy"),
                                  upstream * (np.abs(x) <= 1))


def _fake_packages(folder: pathlib.Path, *names: str) -> str:
    """A PYTHONPATH folder where importing each of `names` raises ImportError (as if not installed)."""
    for name in names:
        (folder / name).mkdir()
        (folder / name / "__init__.py").write_text(f"raise ImportError(\"No module named '{name}' (test stand-in)\")\n")
    return str(folder)


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_missing_backend_package_names_the_extra(tmp_path, backend):
    path = _fake_packages(tmp_path, backend)
    result = subprocess.run([sys.executable, "-c", "import keras_bnn.layers"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, env=_env(KERAS_BACKEND=backend, PYTHONPATH=path))
    assert result.returncode != 0
    assert "BackendUnavailableError" in result.stderr
    assert f"pip install keras-bnn[{backend}]" in result.stderr
    assert "by KERAS_BACKEND" in result.stderr


def test_backend_from_keras_json_is_checked_too(tmp_path):
    home = tmp_path / "keras_home"
    home.mkdir()
    (home / "keras.json").write_text(json.dumps({"backend": "torch"}))
    path = _fake_packages(tmp_path, "torch")
    result = subprocess.run([sys.executable, "-c", "import keras_bnn.quantizers"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=300, env=_env(KERAS_HOME=str(home), PYTHONPATH=path))
    assert result.returncode != 0
    assert "pip install keras-bnn[torch]" in result.stderr
    assert "keras.json" in result.stderr


def test_installed_backend_passes_the_check(tmp_path):
    code = ("import keras_bnn.layers, keras, keras_bnn.backends as b\n"
            "print(b.check_backend(), b.selected_backend(), keras.backend.backend())")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env=_env(KERAS_BACKEND="jax"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["jax", "jax", "jax"]


def test_keras3_modules_work_without_tf_keras_or_larq(tmp_path):
    """TF_USE_LEGACY_KERAS unset and Keras 3 the only Keras: tf-keras and larq cannot be imported at all."""
    path = _fake_packages(tmp_path, "tf_keras", "larq")
    code = ("import keras, keras_bnn\n"
            "import keras_bnn.quantizers, keras_bnn.constraints, keras_bnn.layers, keras_bnn.training\n"
            "layer = keras_bnn.layers.QuantDense(3, input_quantizer='ste_sign', kernel_quantizer='ste_sign')\n"
            "print(keras.__version__, keras.backend.backend(), tuple(layer(keras.ops.ones((2, 4))).shape))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env=_env(KERAS_BACKEND="tensorflow", PYTHONPATH=path))
    assert result.returncode == 0, result.stderr
    version, backend, shape = result.stdout.split(maxsplit=2)
    assert version.startswith("3.") and backend == "tensorflow" and shape.strip() == "(2, 3)"


def test_keras3_modules_import_no_tensorflow_tf_keras_or_larq_on_jax(tmp_path):
    code = ("import sys\n"
            "import keras_bnn.quantizers, keras_bnn.constraints, keras_bnn.layers, keras_bnn.training\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'tf_keras', 'larq')))")
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=300,
                            env=_env(KERAS_BACKEND="jax"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
