"""After training: canonicalize, write the compact weights, re-measure from the file, convert, report."""

from __future__ import annotations

import pathlib
import warnings

import tensorflow as tf

from keras_bnn.zoo import _registry
from keras_bnn.zoo.evaluation import accuracy, load_split
from keras_bnn.zoo.training.recipes import TEST_SPLIT
from keras_bnn.zoo.weights import canonicalize, load_compact, save_compact

__all__ = ["export", "file_fields", "float_accuracy", "flatbuffer_figures"]


def file_fields(path: pathlib.Path, info) -> dict:
    """The card fields that describe a written compact weights file (`info`: what `save_compact` returned)."""
    return {
        "weights_file": path.name,
        "sha256": info.sha256,
        "size_bytes": info.bytes,
        "float32_equivalent_bytes": info.float32_equivalent_bytes,
        "binary_kernels_as_bits": info.binary_kernels,
        "dense_fallbacks": list(info.dense_fallbacks),
    }


def flatbuffer_figures(model: tf.keras.Model) -> dict:
    """Size, bitpacked share and MACs per category of the model's LCE flatbuffer (batch size 1)."""
    from keras_bnn.tflite.converter import convert
    from keras_bnn.tflite.inspection import inspect

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # A first layer with real input stays float by design.
        flatbuffer = convert(model, batch_size=1)
    report = inspect(flatbuffer)
    return {"flatbuffer_bytes": report.flatbuffer_bytes, "bitpacked_share": report.bitpacked_share,
            "flatbuffer_macs": dict(report.macs)}


def export(model: tf.keras.Model, name: str, weights_dir: pathlib.Path) -> dict:
    """Write `weights_dir/<name>.npz` from a trained model; return the card fields measured from the file.

    The model is canonicalized first (binary latent weights set to their quantized values, see
    `keras_bnn.zoo.weights.canonicalize`); the file is then loaded into a freshly built model, whose test
    accuracy is measured exactly as `keras_bnn.zoo.evaluate` does.
    """
    spec = _registry.spec(name)
    weights_dir.mkdir(parents=True, exist_ok=True)
    path = weights_dir / f"{name}.npz"
    canonicalize(model)
    info = save_compact(model, path)
    fresh = spec.entry_point()
    load_compact(fresh, path, sha256=info.sha256, size=info.bytes)
    images, labels = load_split(spec.dataset, TEST_SPLIT)
    fields = {
        **file_fields(path, info),
        "test_accuracy": accuracy(fresh, images, labels),
        "test_examples": int(len(labels)),
    }
    try:
        fields.update(flatbuffer_figures(fresh))
    except Exception as error:  # noqa: BLE001  (report, do not lose the trained weights)
        fields["flatbuffer_error"] = repr(error)
    return fields


def float_accuracy(model: tf.keras.Model, dataset: str, split: str) -> dict:
    """Test accuracy of a float twin (nothing is saved)."""
    images, labels = load_split(dataset, split)
    return {"float_twin_test_accuracy": accuracy(model, images, labels), "test_examples": int(len(labels))}
