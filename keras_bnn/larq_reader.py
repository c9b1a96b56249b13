"""Read a model saved by larq on tf-keras 2 (`.h5` or `.keras`) into its Keras 3 equivalent, with the same weights.

larq's layers and quantizers have Keras 3 twins of the same names and config keys (`keras_bnn.layers`,
`keras_bnn.quantizers`, `keras_bnn.constraints`), but a tf-keras file is not a Keras 3 file: its config says
``batch_input_shape``, ``axis: [3]``, ``{"class_name": "SteSign", "config": {...}}`` without a module, and a
`.keras` file keeps its weights in tf-keras' layout. :func:`load_larq_model` reads the stored config, rewrites it
into Keras 3's format (each larq class onto its keras_bnn twin, each Keras layer onto Keras 3's), builds the model
with `keras.saving.deserialize_keras_object`, then copies each layer's stored weights in by layer name and weight
order. Only `keras` and `h5py` are used, so it works on every Keras backend.

Layers that carry code (`Lambda`) are refused unless ``safe_mode=False`` (the check of `keras_bnn.saving`); a
layer with no Keras 3 twin (larq's `QuantLocallyConnected2D`: Keras 3 has no locally connected layers) is a
`ValueError` naming the layer and the file.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from typing import Any

import keras

__all__ = ["load_larq_model", "translate_config"]

_MODEL_CLASSES = {"Functional": "Model", "Model": "Model", "Sequential": "Sequential"}
_KERAS_MODULES = ("keras", "tf_keras")  # where tf-keras says its own classes live ("keras.layers", ...)
_KERNEL_KEYS = ("kernel_initializer", "kernel_regularizer", "kernel_constraint")
#: Config keys tf-keras writes that Keras 3's classes do not take (unused there: "groups" is always 1).
_UNUSED_KEYS = (
    ((keras.layers.SeparableConv1D, keras.layers.SeparableConv2D), ("groups", *_KERNEL_KEYS)),
    ((keras.layers.DepthwiseConv1D, keras.layers.DepthwiseConv2D, keras.layers.Conv1DTranspose,
      keras.layers.Conv2DTranspose, keras.layers.Conv3DTranspose), ("groups",)),
    ((keras.layers.Embedding,), ("input_length",)),
)


def _layer_classes(module: Any) -> dict[str, type]:
    """The Keras layer classes a keras_bnn package exports, by exported name."""
    exported = {name: getattr(module, name) for name in module.__all__}
    return {name: item for name, item in exported.items()
            if isinstance(item, type) and issubclass(item, keras.layers.Layer)}


class _Translator:
    """Rewrites one tf-keras model config into Keras 3's serialization format (errors name the file)."""

    def __init__(self, path: str):
        from keras_bnn import constraints, layers, quantizers

        self.path = path
        self.layer_classes = _layer_classes(layers)
        self.quantizer_classes = _layer_classes(quantizers)  # DoReFaQuantizer (larq's old name) included
        self.quantizer_names = set(quantizers.known_quantizer_names())
        self.weight_clip = constraints.WeightClip

    def error(self, layer: str, reason: str) -> ValueError:
        return ValueError(f"Cannot read layer {layer} of {self.path!r} into Keras 3: {reason}.")

    def model(self, entry: dict) -> dict:
        """A `Functional`/`Sequential` config (top level or nested as a layer)."""
        kind = _MODEL_CLASSES[entry["class_name"]]
        config = dict(entry["config"])
        config["layers"] = [self.layer(layer) for layer in config.get("layers", [])]
        if kind == "Sequential":
            _add_input_layer(config["layers"])
        for layer in config["layers"]:  # the graph gives the shapes (Keras 3 warns on a layer's input_shape)
            layer["config"].pop("input_shape", None)
        _shift_nested_model_nodes(config)
        return {"module": "keras", "class_name": kind, "config": config, "registered_name": None,
                **_graph_keys(entry)}

    def layer(self, entry: dict) -> dict:
        class_name = entry.get("class_name")
        config = dict(entry.get("config") or {})
        label = f"{config.get('name', '?')!r} ({class_name})"
        if class_name in _MODEL_CLASSES:
            return self.model(entry)
        module = entry.get("module") or ""
        if module.startswith("larq") or (not module and class_name in self.layer_classes):
            cls = self.layer_classes.get(class_name)
            if cls is None:
                raise self.error(label, "larq's layer has no Keras 3 equivalent in keras_bnn.layers (known: "
                                        f"{', '.join(sorted(self.layer_classes))})")
            serialized = {"module": cls.__module__, "class_name": class_name,
                          "registered_name": keras.saving.get_registered_name(cls)}
        elif (not module or module.split(".")[0] in _KERAS_MODULES) and isinstance(
                getattr(keras.layers, str(class_name), None), type):
            cls = getattr(keras.layers, class_name)
            serialized = {"module": "keras.layers", "class_name": class_name, "registered_name": None}
        else:
            origin = f" (from {module})" if module else ""
            raise self.error(label, f"{class_name}{origin} is neither a larq layer with a keras_bnn twin nor a Keras "
                                    "layer")
        serialized["config"] = self.layer_config(cls, config, label)
        return {**serialized, **_graph_keys(entry)}

    def layer_config(self, cls: type, config: dict, label: str) -> dict:
        for key in [key for key in config if key.endswith("_quantizer")]:
            config[key] = self.quantizer(config[key], f"{label} {key}")
        for key in [key for key in config if key.endswith("_constraint")]:
            config[key] = self.constraint(config[key])
        if isinstance(config.get("dtype"), dict):  # a tf-keras mixed-precision Policy
            config["dtype"] = (config["dtype"].get("config") or {}).get("name", "float32")
        if issubclass(cls, keras.layers.InputLayer):
            if "batch_input_shape" in config:
                config["batch_shape"] = config.pop("batch_input_shape")
        elif isinstance(config.get("batch_input_shape"), list):  # the first layer of a Sequential without Input
            config["input_shape"] = config.pop("batch_input_shape")[1:]
        if issubclass(cls, keras.layers.BatchNormalization) and isinstance(config.get("axis"), list) and len(
                config["axis"]) == 1:
            config["axis"] = config["axis"][0]
        for base, keys in _UNUSED_KEYS:
            if issubclass(cls, base):
                if config.get("groups", 1) != 1:
                    raise self.error(label, f"groups={config['groups']} has no Keras 3 equivalent")
                for key in keys:
                    config.pop(key, None)
        if issubclass(cls, keras.layers.Lambda):
            config = _lambda_config(config)
        return config

    def quantizer(self, value: Any, label: str) -> Any:
        if value is None:
            return None
        if isinstance(value, str):  # a function stored by name (tf-keras .h5)
            if value in self.quantizer_names:
                return value
            raise self.error(label, f"unknown quantizer {value!r}")
        class_name = value.get("class_name")
        if class_name == "function" and value.get("config") in self.quantizer_names:  # a function (.keras)
            return value["config"]
        cls = self.quantizer_classes.get(class_name)
        if cls is None:
            raise self.error(label, f"quantizer {class_name!r} has no Keras 3 equivalent in keras_bnn.quantizers")
        config = {key: item for key, item in (value.get("config") or {}).items() if key != "dtype"}
        return {"module": cls.__module__, "class_name": cls.__name__, "config": config,
                "registered_name": keras.saving.get_registered_name(cls)}

    def constraint(self, value: Any) -> Any:
        if isinstance(value, dict) and value.get("class_name") in ("weight_clip", "WeightClip"):
            return {"module": self.weight_clip.__module__, "class_name": "WeightClip",
                    "config": dict(value.get("config") or {}),
                    "registered_name": keras.saving.get_registered_name(self.weight_clip)}
        return "weight_clip" if value == "weight_clip" else value


def _graph_keys(entry: dict) -> dict:
    """The Functional graph fields that sit next to a layer's config (its name and inbound nodes)."""
    return {key: entry[key] for key in ("name", "inbound_nodes", "build_config") if key in entry}


def _add_input_layer(layers: list[dict]) -> None:
    """Put an `InputLayer` first in a Sequential's (translated) layers whose first layer holds the input shape."""
    first = layers[0]["config"] if layers else {}
    if "input_shape" in first:
        dtype = first.get("dtype") if isinstance(first.get("dtype"), str) else "float32"
        layers.insert(0, {"module": "keras.layers", "class_name": "InputLayer", "registered_name": None,
                          "config": {"batch_shape": [None, *first["input_shape"]], "dtype": dtype,
                                     "name": f"{first.get('name')}_input"}})


def _shift_nested_model_nodes(config: dict) -> None:
    """tf-keras counts a nested model's own first node in node references, Keras 3 does not: one less there."""
    nested = {layer["config"].get("name") for layer in config["layers"]
              if layer["class_name"] in _MODEL_CLASSES.values()}
    if not nested:
        return
    for layer in config["layers"]:
        if "inbound_nodes" in layer:
            layer["inbound_nodes"] = [_shift_nodes(node, nested) for node in layer["inbound_nodes"]]
    for key in ("input_layers", "output_layers"):
        if key in config:
            config[key] = _shift_nodes(config[key], nested)


def _shift_nodes(references: Any, nested: set[str]) -> Any:
    """Legacy node references (``[name, node_index, tensor_index, ...]``, or lists of them) with the node index of
    each nested model one lower."""
    if isinstance(references, list) and references and isinstance(references[0], str):
        if references[0] in nested and len(references) > 1 and isinstance(references[1], int):
            return [references[0], max(references[1] - 1, 0), *references[2:]]
        return references
    if isinstance(references, list):
        return [_shift_nodes(reference, nested) for reference in references]
    return references


def _lambda_config(config: dict) -> dict:
    """tf-keras' Lambda config (function as [bytecode, defaults, closure]) in Keras 3's form."""
    config = dict(config)
    for key in ("function", "output_shape"):
        kind = config.pop(f"{key}_type" if key == "output_shape" else "function_type", None)
        config.pop("module" if key == "function" else "output_shape_module", None)
        if kind == "lambda" and isinstance(config.get(key), (list, tuple)):
            code, defaults, closure = (list(config[key]) + [None, None])[:3]
            config[key] = {"class_name": "__lambda__",
                           "config": {"code": code, "defaults": defaults, "closure": closure}}
    return config


def translate_config(config: dict, path: str = "<config>") -> dict:
    """A tf-keras (larq) model config, as stored in a `.keras` or `.h5` file, in Keras 3's serialization format.

    Args:
        config: The stored model config (``{"class_name": "Functional" | "Sequential", "config": {...}}``).
        path: The file it came from, for error messages.

    Returns:
        A config that `keras.saving.deserialize_keras_object` builds into the Keras 3 model.

    Raises:
        ValueError: a layer or quantizer has no Keras 3 equivalent (the message names it and the file).

    Example:
        >>> from keras_bnn.larq_reader import translate_config
        >>> stored = {"class_name": "Sequential", "config": {"name": "s", "layers": [
        ...     {"class_name": "InputLayer", "config": {"batch_input_shape": [None, 4], "name": "in"}},
        ...     {"class_name": "QuantDense", "config": {"name": "d", "units": 2,
        ...      "kernel_quantizer": {"class_name": "SteSign", "config": {"clip_value": 1.0}}}}]}}
        >>> translated = translate_config(stored)
        >>> translated["config"]["layers"][1]["config"]["kernel_quantizer"]["registered_name"]
        'keras_bnn>SteSign'
    """
    if not isinstance(config, dict) or config.get("class_name") not in _MODEL_CLASSES:
        kind = config.get("class_name") if isinstance(config, dict) else type(config).__name__
        raise ValueError(f"{path!r} does not hold a Functional or Sequential model (its config is a {kind}).")
    return _Translator(path).model(config)


def _snake_case(name: str) -> str:
    """tf-keras' `to_snake_case`: how its `.keras` weights file names a layer's folder."""
    intermediate = re.sub("(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    insecure = re.sub("([a-z])([A-Z])", r"\1_\2", intermediate).lower()
    return insecure if insecure[0] != "_" else "private" + insecure


def _assign(layer: keras.layers.Layer, arrays: list, label: str, path: str) -> None:
    """Copy `arrays` into `layer`'s own variables, in order (trainable first, as both Keras versions store them)."""
    try:
        layer.load_own_variables({str(index): array for index, array in enumerate(arrays)})
    except ValueError as error:
        shapes = [tuple(array.shape) for array in arrays]
        raise ValueError(f"{path!r}: the stored weights of layer {label} (shapes {shapes}) do not fit its Keras 3 "
                         f"twin: {error}") from None


def _keras_file_weights(model: keras.Model, config: dict, group: Any, path: str) -> None:
    """Weights from a tf-keras `.keras` file's ``model.weights.h5`` (``layers/<snake_case class>[_n]/vars/<i>``)."""
    used: dict[str, int] = {}
    for entry in config["config"].get("layers", []):
        key = _snake_case(entry["class_name"])
        if key in used:
            used[key] += 1
            key = f"{key}_{used[key]}"
        else:
            used[key] = 0
        if entry["class_name"] == "InputLayer":
            continue
        name = entry["config"]["name"]
        layer = model.get_layer(name)
        stored = group.get(f"layers/{key}")
        if stored is None:
            raise ValueError(f"{path!r}: its weights file has no entry for layer {name!r} (layers/{key}).")
        if entry["class_name"] in _MODEL_CLASSES:
            _keras_file_weights(layer, entry, stored, path)
            continue
        variables = stored.get("vars", {})
        _assign(layer, [variables[str(i)][()] for i in range(len(variables))], repr(name), path)


def _h5_weights(model: keras.Model, group: Any, path: str) -> None:
    """Weights from a tf-keras `.h5` file's ``model_weights`` (a group per layer, ``weight_names`` in order)."""
    for layer in model.layers:
        if layer.name not in group:
            if layer.weights:
                raise ValueError(f"{path!r} holds no weights for layer {layer.name!r}.")
            continue
        names = [name.decode() if isinstance(name, bytes) else name
                 for name in group[layer.name].attrs.get("weight_names", [])]
        arrays = [group[layer.name][name][()] for name in names]
        if isinstance(layer, keras.Model):  # nested model: weights named <inner layer>/<variable>
            by_layer: dict[str, list] = {}
            for name, array in zip(names, arrays):
                by_layer.setdefault(name.split("/")[-2], []).append(array)
            for inner, inner_arrays in by_layer.items():
                _assign(_find_layer(layer, inner), inner_arrays, repr(inner), path)
        else:
            _assign(layer, arrays, repr(layer.name), path)


def _find_layer(model: keras.Model, name: str) -> keras.layers.Layer:
    for layer in model.layers:
        if layer.name == name:
            return layer
        if isinstance(layer, keras.Model):
            try:
                return _find_layer(layer, name)
            except ValueError:
                pass
    raise ValueError(f"No layer {name!r} in {model.name!r}.")


def saved_keras_version(path: str) -> str:
    """The Keras version that wrote a ``.keras`` file (its metadata.json), "" when it does not say; "2.x" is tf-keras.

    Raises:
        zipfile.BadZipFile: the file is not a zip archive.
    """
    with zipfile.ZipFile(path) as archive:
        try:
            return str(json.loads(archive.read("metadata.json")).get("keras_version", ""))
        except (KeyError, json.JSONDecodeError):
            return ""


def load_larq_model(path: str | os.PathLike, *, safe_mode: bool = True) -> keras.Model:
    """Load a model that larq (tf-keras 2) saved, as `.h5` or `.keras`, as the Keras 3 model with the same weights.

    larq's `Quant*` layers become `keras_bnn.layers`' twins, its quantizers `keras_bnn.quantizers`', its
    ``weight_clip`` `keras_bnn.constraints.WeightClip`; Keras layers become Keras 3's. The model is not compiled.
    A `.keras` file written by Keras 3 is loaded as it is (with `keras.saving.load_model`).

    Args:
        path: The `.h5` or `.keras` file.
        safe_mode: True (default) refuses a file whose layers carry Python code (`Lambda`); False loads them
            (only for files you trust).

    Returns:
        The Keras 3 model.

    Raises:
        keras_bnn.saving.UnsafeModelError: with ``safe_mode=True``, the file carries code.
        FileNotFoundError: `path` does not exist.
        ValueError: `path` is not a `.h5`/`.keras` model file, is truncated, or holds a layer or quantizer with
            no Keras 3 equivalent (e.g. larq's `QuantLocallyConnected2D`); the message names the layer and file.

    Example:
        >>> import os, tempfile, keras_bnn
        >>> path = os.path.join(tempfile.mkdtemp(), "notes.h5")
        >>> with open(path, "w") as handle:
        ...     _ = handle.write("not a model")
        >>> try:
        ...     keras_bnn.saving.load_larq_model(path)
        ... except ValueError as error:
        ...     print("HDF5 signature" in str(error))
        True
    """
    from keras_bnn import saving

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such file: {path!r}")
    if not path.endswith((".keras", ".h5", ".hdf5")):
        raise ValueError(f"{path!r} is not a saved larq model: expected a .h5 or .keras file.")
    config = saving._stored_config(path)  # ValueError for a truncated or mislabelled file
    found = saving.code_carrying_layers(config)
    if found and safe_mode:
        raise saving._refusal(path, f"layer(s) {', '.join(found)} carry Python code", "load_larq_model")
    if path.endswith(".keras") and not saved_keras_version(path).startswith("2."):
        return keras.saving.load_model(path, compile=False, safe_mode=safe_mode)
    model = keras.saving.deserialize_keras_object(translate_config(config, path), safe_mode=safe_mode)
    import h5py

    try:
        if path.endswith(".keras"):
            with zipfile.ZipFile(path) as archive:
                data = archive.read("model.weights.h5")
            with h5py.File(io.BytesIO(data), "r") as weights:
                _keras_file_weights(model, config, weights, path)
        else:
            with h5py.File(path, "r") as weights:
                _h5_weights(model, weights["model_weights"] if "model_weights" in weights else weights, path)
    except (KeyError, OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path!r}: its weights cannot be read ({error}); the file may be truncated.") from None
    return model
