"""After training: canonicalize, write the compact weights, re-measure from the file, convert, report card fields.

The trained model may be a Keras 3 or a tf-keras one (``legacy``); the flatbuffer is always converted from the
tf-keras model of the same definition, loaded from the written file (the converter takes tf-keras models).
"""

from __future__ import annotations

import pathlib
import tempfile
import warnings
from typing import Any

import numpy as np

from keras_bnn.zoo.evaluation import measure
from keras_bnn.zoo.registry import ZooEntry
from keras_bnn.zoo.weights import canonicalize, load_compact, save_compact

__all__ = ["export", "file_fields", "flatbuffer_figures", "float_twin_scores"]


def file_fields(path: pathlib.Path, info) -> dict:
    """The card fields that describe a written compact weights file (`info`: what `save_compact` returned)."""
    return {"weights_file": path.name, "sha256": info.sha256, "size_bytes": info.bytes,
            "float32_equivalent_bytes": info.float32_equivalent_bytes,
            "binary_kernels_as_bits": info.binary_kernels, "dense_fallbacks": list(info.dense_fallbacks)}


def flatbuffer_figures(entry: ZooEntry, weights_file: pathlib.Path, num_classes: int) -> dict:
    """Size, bitpacked share and MACs per category of the LCE flatbuffer of the tf-keras model with the weights of
    `weights_file` (batch 1; a language model's one-step model)."""
    from keras_bnn.tflite import convert

    if entry.task == "language_modeling":
        from keras_bnn.text import step_model

        model = entry.builder(num_classes=num_classes, legacy=True)
        load_compact(model, weights_file)
        converted = step_model(model)
    else:
        converted = entry.builder(batch_size=1, num_classes=num_classes, legacy=True)
        load_compact(converted, weights_file)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # A first layer with real input stays float by design.
        result = convert(converted, report=True)
    return {"flatbuffer_bytes": result.report.flatbuffer_bytes, "bitpacked_share": result.report.bitpacked_share,
            "flatbuffer_macs": dict(result.report.macs)}


def _vocabulary_extras(vocabulary: list[str] | None) -> dict | None:
    if vocabulary is None:
        return None
    from keras_bnn.zoo.tokenizers import encode_vocabulary

    return {"vocabulary": encode_vocabulary(vocabulary)}


def export(entry: ZooEntry, model: Any, weights_dir: pathlib.Path, *, splits: tuple[str, ...],
           vocabulary: list[str] | None = None, legacy: bool = False) -> dict:
    """Write `weights_dir/<name>.npz` from a trained model; return the card fields measured from that file.

    The model is canonicalized first (binary latent weights set to their quantized values, see
    ``keras_bnn.zoo.weights.canonicalize``); every score is then measured from the written file exactly as
    ``keras_bnn.zoo.evaluate`` does, on each of `splits`, with the Keras 3 model or (`legacy`) the tf-keras one.
    """
    weights_dir.mkdir(parents=True, exist_ok=True)
    path = weights_dir / f"{entry.name}.npz"
    canonicalize(model)
    info = save_compact(model, path, extras=_vocabulary_extras(vocabulary))
    fields = file_fields(path, info)
    scores = {}
    for split in splits:
        scores[split], fields[f"examples_{split}"] = measure(entry.name, split, path, legacy=legacy)
    fields["scores"] = scores
    try:
        fields.update(flatbuffer_figures(entry, path, int(model.outputs[0].shape[-1])))
    except Exception as error:  # noqa: BLE001  (report, do not lose the trained weights)
        fields["flatbuffer_error"] = repr(error)
    return fields


def float_twin_scores(entry: ZooEntry, model: Any, splits: tuple[str, ...],
                      vocabulary: list[str] | None = None, legacy: bool = False) -> dict:
    """The float twin's scores, measured like the binary model's (from a temporary compact file)."""
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "float_twin.npz"
        save_compact(model, path, extras=_vocabulary_extras(vocabulary))
        return {split: measure(entry.name, split, path, binary=False, legacy=legacy)[0] for split in splits}


def image_float_twin_scores(entry: ZooEntry, model: Any, split: str) -> dict:
    """An image float twin's accuracy on `split` (nothing is saved)."""
    import keras_bnn.datasets
    from keras_bnn.zoo.evaluation import accuracy

    images, labels = keras_bnn.datasets.load_images(entry.dataset, split)
    return {split: accuracy(model, images, np.asarray(labels))}
