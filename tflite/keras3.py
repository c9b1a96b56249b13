"""Keras 3 models into the converter: rebuild one as the equivalent tf-keras model (same layers, same weights).

The converter's rules work on tf-keras 2 models made of larq and ``keras_bnn.legacy`` layers. The Keras 3 layers
(``keras_bnn.layers``, ``keras_bnn.quantizers``, ``keras_bnn.constraints``, ``keras_bnn.training``) keep those
classes' names, arguments, config keys and weight order, so :func:`to_tf_keras` rewrites a Keras 3 model's public
config into tf-keras' format (``inbound_nodes`` lists, dtype names, ``batch_input_shape``, larq's quantizer and
constraint configs, each class onto its tf-keras twin), builds it with ``tf.keras.Model.from_config`` and copies
the weights layer by layer (by name, in tf-keras' weight order). The converter then makes exactly the flatbuffer
it makes of the tf-keras model.

A model trained on JAX or PyTorch is saved as ``.keras`` and converted in a TensorFlow process:
:func:`load_keras3_model` reads the file (Keras 3's ``keras.saving.load_model``, safe mode on), and
``keras_bnn.tflite.convert`` takes the path itself.

Example:
    >>> import keras, keras_bnn.layers, keras_bnn.tflite
    >>> from keras_bnn.tflite.keras3 import to_tf_keras
    >>> inputs = keras.Input((16,), batch_size=1)
    >>> outputs = keras_bnn.layers.QuantDense(4, input_quantizer="ste_sign", kernel_quantizer="ste_sign")(inputs)
    >>> legacy = to_tf_keras(keras.Model(inputs, outputs))
    >>> type(legacy.layers[1]).__module__
    'larq.layers'
"""

from __future__ import annotations

import inspect
import os
import re
import sys
from typing import Any

import keras_bnn.legacy  # noqa: F401  (first: tf-keras as tf.keras)
from keras_bnn import _compat
import numpy as np
import tensorflow as tf

__all__ = ["is_keras3_model", "load_keras3_model", "to_tf_keras"]

_MODEL_CLASSES = ("Functional", "Sequential", "Model")
#: Where the tf-keras twins of keras_bnn's Keras 3 classes live, searched in this order.
_TWIN_MODULES = {
    "layers": ("larq.layers", "keras_bnn.legacy.layers", "keras_bnn.legacy.training"),
    "quantizers": ("larq.quantizers", "keras_bnn.legacy.quantizers", "keras_bnn.legacy.training"),
    "constraints": ("larq.constraints",),
}
_NESTED_KEYS = ("_initializer", "_regularizer", "_constraint")
#: Keras 3 settings read from ``**kwargs`` (no default in the signature), at their no-op values.
_KWARGS_DEFAULTS = {"rms_scaling": False, "quantization_config": None, "zero_output_for_mask": False,
                    "synchronized": False, "optional": False, "sparse": False, "ragged": False}
_BASE_LAYER_KEYS = {"name", "trainable", "dtype", "dynamic", "input_dim", "input_shape", "batch_input_shape",
                    "batch_size", "weights", "activity_regularizer", "autocast", "implementation"}


def is_keras3_model(model: Any) -> bool:
    """Whether `model` is a Keras 3 ``keras.Model`` (Keras 3 is not imported to find out).

    Example:
        >>> import tensorflow as tf
        >>> is_keras3_model(tf.keras.Sequential())
        False
    """
    keras = sys.modules.get("keras")
    return keras is not None and hasattr(keras, "Model") and isinstance(model, keras.Model)


def load_keras3_model(path: str | os.PathLike) -> Any:
    """A Keras 3 model saved as ``.keras`` (on any backend), loaded with safe mode on and not compiled (a ``.keras``
    file that tf-keras saved is loaded by tf-keras, also in safe mode).

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a ``.keras`` file, or one that Keras 3 cannot read.

    Example:
        >>> try:
        ...     load_keras3_model("missing.keras")
        ... except FileNotFoundError as error:
        ...     print(error)
        No such file: 'missing.keras'
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such file: {path!r}")
    if not path.endswith(".keras"):
        raise ValueError(f"{path!r} is not a Keras 3 model file: expected a .keras file.")
    from keras_bnn.larq_reader import saved_keras_version

    if saved_keras_version(path).startswith("2."):  # saved by tf-keras: already the converter's kind of model
        return tf.keras.models.load_model(path, compile=False, safe_mode=True)
    import keras

    import keras_bnn.layers  # noqa: F401  (registers keras_bnn's classes)
    import keras_bnn.training  # noqa: F401

    return keras.saving.load_model(path, compile=False, safe_mode=True)


def _snake_case(name: str) -> str:
    """Keras' automatic name of an instance of class `name` (``SteSign`` -> ``ste_sign``)."""
    return re.sub("([a-z0-9])([A-Z])", r"\1_\2", re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)).lower()


def _twin(kind: str, cls: type, label: str) -> type:
    """The tf-keras class that `cls` (a keras_bnn Keras 3 class) mirrors."""
    import importlib

    for module_name in _TWIN_MODULES[kind]:
        twin = getattr(importlib.import_module(module_name), cls.__name__, None)
        if isinstance(twin, type):
            return twin
    raise ValueError(f"{label}: {cls.__module__}.{cls.__name__} has no tf-keras equivalent (none in "
                     f"{', '.join(_TWIN_MODULES[kind])}); the converter cannot take it yet.")


def _tf_serialized(cls: type, config: dict) -> dict:
    return {"module": cls.__module__, "class_name": cls.__name__, "config": config,
            "registered_name": tf.keras.saving.get_registered_name(cls)}


def _keras3_class(entry: dict) -> Any:
    import keras

    registered = entry.get("registered_name")
    if registered:
        found = keras.saving.get_registered_object(registered)
        if found is not None:
            return found
    if str(entry.get("module", "")).startswith("keras"):
        return getattr(keras.layers, entry.get("class_name", ""), None)
    return None


def _dtype(value: Any, label: str) -> Any:
    """A Keras 3 dtype policy (``{"class_name": "DTypePolicy", ...}``) as tf-keras' dtype name."""
    if not isinstance(value, dict):
        return value
    if value.get("class_name") not in ("DTypePolicy", "FloatDTypePolicy"):
        raise ValueError(f"{label}: the dtype policy {value.get('class_name')} has no tf-keras equivalent.")
    return value["config"]["name"]


def _accepted_keys(cls: type) -> set[str]:
    """The config keys the tf-keras class takes (its and its bases' ``__init__`` arguments)."""
    keys = set(_BASE_LAYER_KEYS)
    for base in cls.__mro__:
        init = base.__dict__.get("__init__")
        if init is None or base is object:
            continue
        parameters = inspect.signature(init).parameters
        keys.update(name for name, p in parameters.items() if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))
        if not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            return keys
    return keys


def _defaults(cls: type) -> dict[str, Any]:
    """The Keras 3 class' argument defaults (a setting at its default can be left out)."""
    defaults = dict(_KWARGS_DEFAULTS)
    for base in reversed(cls.__mro__):
        init = base.__dict__.get("__init__")
        if init is not None and base is not object:
            defaults.update({name: p.default for name, p in inspect.signature(init).parameters.items()
                             if p.default is not p.empty})
    return defaults


class _Translator:
    """Rewrites a Keras 3 model config into tf-keras' format (the live model alongside, for its nodes' masks)."""

    def model_config(self, entry: dict, live: Any) -> dict:
        config = dict(entry["config"])
        ops = {_name(layer) for layer in config["layers"] if str(layer.get("module", "")).startswith("keras.src.ops")}
        nested = {_name(layer) for layer in config["layers"] if layer.get("class_name") in _MODEL_CLASSES}
        layers = []
        for layer in config["layers"]:
            if _name(layer) in ops:
                continue
            layers.append(self.layer(layer, live, ops, nested))
        used = {ref[0] for layer in layers for node in layer.get("inbound_nodes", []) for ref in _refs(node)}
        used.update(ref[0] for ref in _refs(config.get("output_layers", [])))
        if used & ops:
            names = ", ".join(sorted(used & ops))
            raise ValueError(f"model {config.get('name')!r}: the Keras 3 operation(s) {names} (keras.ops called on "
                             "symbolic tensors) have no tf-keras equivalent; wrap them in a layer of keras_bnn "
                             "or Keras.")
        config["layers"] = layers
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = _dtype(config["dtype"], f"model {config.get('name')!r}")
        for key in ("input_layers", "output_layers"):
            if key in config:
                config[key] = _shift(_as_list_of_refs(config[key]), nested)
        class_name = "Sequential" if entry["class_name"] == "Sequential" else "Functional"
        return {"module": "keras", "class_name": class_name, "config": config, "registered_name": class_name,
                **({"name": entry["name"]} if "name" in entry else {}),
                **({"inbound_nodes": entry["inbound_nodes"]} if "inbound_nodes" in entry else {})}

    def layer(self, entry: dict, parent: Any, ops: set, nested: set) -> dict:
        name = _name(entry)
        label = f"layer {name!r} ({entry.get('class_name')})"
        live = _find(parent, name)
        if entry.get("class_name") in _MODEL_CLASSES:
            result = self.model_config(entry, live)
        else:
            result = self.plain_layer(entry, label)
        if "name" in entry:
            result["name"] = entry["name"]
        if "inbound_nodes" in entry:
            nodes = _own_nodes(parent, live)
            result["inbound_nodes"] = [self.node(node, nodes[i] if i < len(nodes) else None, label, ops, nested)
                                       for i, node in enumerate(entry["inbound_nodes"])]
        return result

    def plain_layer(self, entry: dict, label: str) -> dict:
        cls = _keras3_class(entry)
        if cls is None:
            raise ValueError(f"{label}: {entry.get('module')}.{entry.get('class_name')} has no tf-keras equivalent "
                             "(only Keras' and keras_bnn's layers can be converted).")
        if cls.__module__.startswith("keras_bnn."):
            twin = _twin("layers", cls, label)
        else:
            twin = getattr(tf.keras.layers, cls.__name__, None)
            if not isinstance(twin, type):
                raise ValueError(f"{label}: keras.layers.{cls.__name__} has no tf-keras equivalent.")
        config = self.layer_config(dict(entry["config"]), cls, twin, label)
        serialized = _tf_serialized(twin, config)
        if twin.__module__.startswith("tf_keras"):
            serialized["module"] = "keras.layers"
            serialized["registered_name"] = None
        return serialized

    def layer_config(self, config: dict, cls: type, twin: type, label: str) -> dict:
        if "dtype" in config:
            config["dtype"] = _dtype(config["dtype"], label)
        if issubclass(twin, tf.keras.layers.InputLayer) and "batch_shape" in config:
            config["batch_input_shape"] = config.pop("batch_shape")
        for key in list(config):
            if key.endswith("_quantizer"):
                config[key] = self.quantizer(config[key], f"{label} {key}")
            elif key.endswith(_NESTED_KEYS) and config[key] is not None:
                translated = self.keras_object(config[key], key.rsplit("_", 1)[1] + "s")
                if translated is None:
                    del config[key]  # no effect on inference (the weights are copied); the twin's default
                else:
                    config[key] = translated
            elif key in ("activation", "recurrent_activation") and not isinstance(config[key], (str, type(None))):
                raise ValueError(f"{label}: the {key} {config[key]!r} is not a named activation.")
        accepted, defaults = _accepted_keys(twin), _defaults(cls)
        for key in [key for key in config if key not in accepted]:
            if config[key] is not None and config[key] != defaults.get(key, None):
                raise ValueError(f"{label}: {key}={config[key]!r} has no tf-keras equivalent.")
            del config[key]
        return config

    def keras_object(self, value: Any, kind: str) -> Any:
        """An initializer, regularizer or constraint config in tf-keras' form (None: none there)."""
        if isinstance(value, str):
            return value
        cls = _keras3_class({**value, "module": ""}) if value.get("registered_name") else None
        if cls is not None and cls.__module__.startswith("keras_bnn."):
            twin = _twin(kind, cls, kind) if kind in _TWIN_MODULES else None
            return None if twin is None else tf.keras.saving.serialize_keras_object(twin(**value.get("config", {})))
        twin = getattr(getattr(tf.keras, kind, None), str(value.get("class_name")), None)
        if not isinstance(twin, type):
            return None
        accepted = _accepted_keys(twin)
        config = {key: item for key, item in (value.get("config") or {}).items() if key in accepted}
        return {"module": f"keras.{kind}", "class_name": twin.__name__, "config": config, "registered_name": None}

    def quantizer(self, value: Any, label: str) -> Any:
        if value is None or isinstance(value, str):
            return value
        if value.get("class_name") == "function":
            return value["config"]  # a larq function's name (ste_sign, ...)
        cls = _keras3_class(value)
        if cls is None or not cls.__module__.startswith("keras_bnn."):
            raise ValueError(f"{label}: the quantizer {value.get('class_name')!r} is not one of keras_bnn's.")
        twin = _twin("quantizers", cls, label)
        config = dict(value.get("config") or {})
        if "dtype" in config:
            config["dtype"] = _dtype(config["dtype"], label)
        if re.fullmatch(rf"{_snake_case(twin.__name__)}(_\d+)?", str(config.get("name"))):
            del config["name"]  # an automatic name: tf-keras gives its own, as it does to larq's quantizers
        for key in [key for key in config if key.endswith("_quantizer")]:
            config[key] = self.quantizer(config[key], label)
        return _tf_serialized(twin, config)

    def node(self, node: dict, live: Any, label: str, ops: set, nested: set) -> list:
        """A Keras 3 node (``{"args": [...], "kwargs": {...}}``) as tf-keras' ``[[name, node, tensor, kwargs]]``."""
        args, kwargs = list(node.get("args", [])), dict(node.get("kwargs", {}))
        if "mask" in kwargs and _implicit_mask(live):
            del kwargs["mask"]  # tf-keras passes the mask its inputs carry by itself
        if kwargs.get("training", True) in (False, None):
            del kwargs["training"]  # Keras 3 records the inference default; the same in tf-keras without it
        layer = live.operation if live is not None else None
        if len(args) > 1:
            names = list(inspect.signature(layer.call).parameters)[1:] if layer is not None else []
            if len(names) < len(args) - 1:
                raise ValueError(f"{label}: cannot name its positional call arguments.")
            kwargs.update(zip(names, args[1:]))
        kwargs = _map_tensors(kwargs, lambda ref: _shift(ref, nested))
        first = args[0] if args else None
        data = _map_tensors(first, lambda ref: [*_shift(ref, nested), kwargs])
        if isinstance(data, list) and data and isinstance(data[0], str):
            data = [data]
        return data


def _name(entry: dict) -> str:
    return entry.get("name") or entry["config"]["name"]


def _is_tensor(value: Any) -> bool:
    return isinstance(value, dict) and value.get("class_name") == "__keras_tensor__"


def _map_tensors(value: Any, fn) -> Any:
    if _is_tensor(value):
        return fn(list(value["config"]["keras_history"]))
    if isinstance(value, dict):
        return {key: _map_tensors(item, fn) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_map_tensors(item, fn) for item in value]
    return value


def _refs(value: Any) -> list:
    """Every ``[name, node, tensor, ...]`` reference inside tf-keras node data."""
    if isinstance(value, list) and len(value) >= 3 and isinstance(value[0], str) and isinstance(value[1], int):
        return [value, *_refs(value[3:])]
    if isinstance(value, dict):
        return [ref for item in value.values() for ref in _refs(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in _refs(item)]
    return []


def _as_list_of_refs(value: Any) -> list:
    return [value] if value and isinstance(value[0], str) else list(value)


def _shift(ref: list, nested: set) -> list:
    """tf-keras counts a nested model's own first node in node references, Keras 3 does not: one more here."""
    if isinstance(ref, list) and ref and isinstance(ref[0], str):
        return [ref[0], ref[1] + 1, *ref[2:]] if ref[0] in nested else list(ref)
    return [_shift(item, nested) for item in ref]


def _find(parent: Any, name: str) -> Any:
    for layer in getattr(parent, "layers", []):
        if layer.name == name:
            return layer
    for operation in getattr(parent, "operations", []):
        if operation.name == name:
            return operation
    return None


def _own_nodes(parent: Any, operation: Any) -> list:
    """The nodes of `operation` that belong to `parent`'s graph, in the order Keras 3's config lists them."""
    if operation is None:
        return []
    return _compat.keras_inbound_nodes(operation, parent)


def _implicit_mask(node: Any) -> bool:
    """Whether a node's ``mask`` argument is the mask its first input carries (Keras 3 records it; tf-keras
    propagates it)."""
    if node is None:
        return False
    args, kwargs = node.arguments.args, node.arguments.kwargs
    return bool(args) and kwargs.get("mask") is _compat.keras_tensor_mask(args[0])


def keras_ops() -> Any:
    """Keras 3's ``keras.ops`` (imported when a Keras 3 model is at hand)."""
    import keras

    return keras.ops


def _copy_weights(source: Any, target: Any) -> None:
    """Every Keras 3 layer's weights into the tf-keras layer of the same name, in tf-keras' weight order."""
    for layer in source.layers:
        twin = target.get_layer(layer.name)
        if hasattr(layer, "layers") and hasattr(twin, "layers") and layer.__class__.__name__ in (
                "Functional", "Sequential"):
            _copy_weights(layer, twin)
            continue
        # tf-keras' order of a trainable layer: trainable variables, then the others. A frozen Keras 3 layer marks
        # all its variables non-trainable, so the trainable ones are those it created as such.
        created_trainable = {id(variable) for sublayer in _compat.keras_sublayers(layer)
                             for variable in _compat.keras_created_trainable_variables(sublayer)}
        ordered = [variable for variable in layer.weights if id(variable) in created_trainable]
        ordered += [variable for variable in layer.weights if id(variable) not in created_trainable]
        values = [keras_ops().convert_to_numpy(variable.value) for variable in ordered]
        trainable, twin.trainable = twin.trainable, True  # (a frozen tf-keras layer lists its weights otherwise)
        try:
            shapes = [tuple(weight.shape) for weight in twin.weights]
            if [tuple(value.shape) for value in values] != shapes:
                raise ValueError(f"layer {layer.name!r}: its Keras 3 weights (shapes "
                                 f"{[tuple(v.shape) for v in values]}) do not fit its tf-keras twin (shapes {shapes}).")
            twin.set_weights(values)
        finally:
            twin.trainable = trainable


def to_tf_keras(model: Any) -> tf.keras.Model:
    """The tf-keras model equivalent to a Keras 3 Functional or Sequential model: same layers, same weights.

    Args:
        model: A built Keras 3 model made of Keras and keras_bnn layers (any backend's; its weights are read as
            numpy).

    Returns:
        A ``tf.keras.Model`` of tf-keras, larq and ``keras_bnn.legacy`` layers (what the converter rewrites).

    Raises:
        TypeError: `model` is not a Keras 3 model, or is subclassed (build it as Functional or Sequential).
        ValueError: a layer, quantizer or setting has no tf-keras equivalent (the message names it).

    Example:
        >>> import keras, keras_bnn.layers
        >>> model = keras.Sequential([keras.Input((8,)), keras_bnn.layers.QuantDense(2, kernel_quantizer="ste_sign")])
        >>> to_tf_keras(model).layers[0].kernel_quantizer.__class__.__name__
        'SteSign'
    """
    if not is_keras3_model(model):
        raise TypeError(f"to_tf_keras() needs a Keras 3 keras.Model, got {type(model).__name__}")
    if not isinstance(model, (_compat.keras_functional_class(), sys.modules["keras"].Sequential)):
        raise TypeError(f"model {model.name!r} is a subclassed Keras 3 model ({type(model).__name__}); the converter "
                        "needs its layer graph: build it as a Functional or Sequential model.")
    if not model.built:
        raise ValueError(f"model {model.name!r} is not built: give it an Input first.")
    class_name = type(model).__name__
    entry = _Translator().model_config({"class_name": class_name, "config": model.get_config()}, model)
    custom = tf.keras.utils.get_custom_objects()
    with tf.keras.utils.custom_object_scope(custom):
        if class_name == "Sequential":
            rebuilt = tf.keras.Sequential.from_config(entry["config"])
        else:
            rebuilt = tf.keras.Model.from_config(entry["config"])
    _copy_weights(model, rebuilt)
    return rebuilt
