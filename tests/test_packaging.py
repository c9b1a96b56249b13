"""Packaging contract: zoo/ and tflite/ import as keras_bnn.zoo / keras_bnn.tflite from a regular and an
editable install, `import keras_bnn` selects nothing, and the tf-keras guard of `keras_bnn.legacy` behaves."""

import os
import pathlib
import shutil
import subprocess
import sys

import keras_bnn

REPO = pathlib.Path(__file__).resolve().parents[1]


def _clean_env(**extra):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_USE_LEGACY_KERAS", "PYTHONPATH")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", **extra)
    return env


def _run(code, cwd, **env):
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=_clean_env(**env), capture_output=True, text=True, timeout=300
    )


IMPORT_ALL = (
    "import keras_bnn.legacy, keras_bnn, keras_bnn.zoo, keras_bnn.tflite, keras_bnn.legacy.layers, keras_bnn.datasets\n"
    "import keras_bnn.quantizers, keras_bnn.constraints, keras_bnn.layers, keras_bnn.training\n"
    "import keras_bnn.legacy.training, keras_bnn.zoo.training, keras_bnn.zoo.training.train, keras_bnn.cli, keras_bnn.text\n"
    "import keras_bnn.tflite.rules, keras_bnn.tflite.targets.lce\n"
    "assert keras_bnn.zoo.model_card('binary_cnn.mnist').count('## Notes') == 1  # the card prose is package data\n"
    "print(keras_bnn.__file__); print(keras_bnn.zoo.__file__); print(keras_bnn.tflite.__file__)"
)


def test_editable_install_maps_zoo_and_tflite(tmp_path):
    """The development install (make test uses `pip install -e .`) maps the root folders into keras_bnn."""
    result = _run(IMPORT_ALL, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    package, zoo, tflite = (pathlib.Path(line) for line in result.stdout.split())
    assert zoo == REPO / "zoo" / "__init__.py"
    assert tflite == REPO / "tflite" / "__init__.py"
    assert package == REPO / "keras_bnn" / "__init__.py"


def test_regular_install_contains_zoo_and_tflite(tmp_path):
    target = tmp_path / "site"
    build_dir_existed = (REPO / "build").exists()
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(REPO)],
        capture_output=True, text=True, timeout=600,
    )
    if not build_dir_existed:  # setuptools builds in the source tree; leave no stale copy behind
        shutil.rmtree(REPO / "build", ignore_errors=True)
    assert install.returncode == 0, install.stderr
    assert (target / "keras_bnn" / "zoo" / "__init__.py").is_file()
    assert (target / "keras_bnn" / "tflite" / "__init__.py").is_file()
    assert (target / "keras_bnn" / "tflite" / "_aarch64_runner.py").is_file()  # run by tflite.emulation
    shipped = sorted(path.name for path in (target / "keras_bnn" / "zoo" / "weights").glob("*.npz"))
    assert shipped == sorted(path.name for path in (REPO / "zoo" / "weights").glob("*.npz")) != []
    # Run from a folder where neither the repository nor the editable finder can supply the modules first.
    result = _run(
        "import sys; sys.path.insert(0, sys.argv[1] if len(sys.argv) > 1 else '')\n" + IMPORT_ALL,
        cwd=tmp_path,
        PYTHONPATH=str(target),
    )
    assert result.returncode == 0, result.stderr
    for line in result.stdout.split():
        assert pathlib.Path(line).is_relative_to(target), line


def test_import_keras_bnn_is_light(tmp_path):
    """`import keras_bnn` loads neither Larq Compute Engine nor tensorflow-datasets nor the zoo."""
    result = _run(
        "import keras_bnn, sys\n"
        "print(sorted(m for m in sys.modules if m.startswith(('larq_compute_engine', 'tensorflow_datasets', "
        "'keras_bnn.zoo', 'keras_bnn.tflite'))))\n"
        "keras_bnn.zoo.list_models()\n"
        "print(sorted(m for m in sys.modules if m.startswith(('larq_compute_engine', 'tensorflow_datasets'))))",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == ["[]", "[]"]


def test_import_keras_bnn_selects_no_keras(tmp_path):
    """With TF_USE_LEGACY_KERAS unset, `import keras_bnn` (and its Keras 3 layers) leaves tf.keras as Keras 3."""
    result = _run(
        "import keras_bnn, os, keras_bnn.layers, tensorflow as tf\n"
        "print(os.environ.get('TF_USE_LEGACY_KERAS'), tf.keras.layers.Layer.__module__.split('.')[0])",
        cwd=tmp_path, KERAS_BACKEND="tensorflow",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["None", "keras"]


def test_legacy_import_sets_legacy_keras_before_tensorflow(tmp_path):
    result = _run(
        "import keras_bnn.legacy, os, tensorflow as tf\n"
        "print(os.environ['TF_USE_LEGACY_KERAS'], tf.keras.layers.Layer.__module__.split('.')[0])",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["1", "tf_keras"]


def test_keras3_already_imported_gives_actionable_error(tmp_path):
    result = _run("import tensorflow as tf\ntf.keras.layers.Layer\nimport keras_bnn.legacy", cwd=tmp_path)
    assert result.returncode != 0
    assert "ImportError" in result.stderr
    assert "TF_USE_LEGACY_KERAS=1" in result.stderr and "before TensorFlow is first imported" in result.stderr


def test_version_is_exposed():
    assert keras_bnn.__version__.count(".") == 2
