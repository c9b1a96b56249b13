"""The one place for TensorFlow/Keras version checks and private-API imports.

Everything else in keras_bnn imports TensorFlow internals only through this module, so a TF upgrade that
moves them breaks here, loudly, and nowhere else.
"""

from __future__ import annotations

import os
import sys

LEGACY_KERAS_VARIABLE = "TF_USE_LEGACY_KERAS"

_KERAS3_MESSAGE = (
    "keras_bnn needs Keras 2 (the `tf-keras` package) as `tf.keras`, because larq does, but TensorFlow "
    "was already imported with Keras 3 as `tf.keras`. Set the environment variable "
    "TF_USE_LEGACY_KERAS=1 before TensorFlow is first imported (for example `export TF_USE_LEGACY_KERAS=1` "
    "in the shell, or `os.environ['TF_USE_LEGACY_KERAS'] = '1'` at the very top of your script), or "
    "`import keras_bnn` before `import tensorflow`."
)


def ensure_legacy_keras() -> None:
    """Make `tf.keras` be tf-keras (Keras 2), or raise ImportError when it is too late to do so.

    Raises:
        ImportError: TensorFlow is already imported and its `tf.keras` is Keras 3, or tf-keras is missing.
    """
    if "tensorflow" not in sys.modules:
        os.environ[LEGACY_KERAS_VARIABLE] = "1"
    import tensorflow as tf

    try:
        keras_module = tf.keras.layers.Layer.__module__
    except ImportError as error:
        raise ImportError(f"{_KERAS3_MESSAGE} ({error})") from error
    if not keras_module.startswith("tf_keras."):
        raise ImportError(f"{_KERAS3_MESSAGE} (tf.keras.layers.Layer comes from {keras_module!r})")


def tflite_schema():
    """TFLite's generated flatbuffer schema module (private to TensorFlow, shipped with it)."""
    from tensorflow.lite.python import schema_py_generated

    return schema_py_generated


def lce_interpreter_class():
    """LCE's Python interpreter, which runs flatbuffers containing LCE custom ops."""
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    return Interpreter


def is_binary_quantizer(quantizer) -> bool:
    """larq's own test for a binarizing quantizer: `precision == 1`, excluding `NoOp(precision=1)`."""
    from larq.layers_base import _is_binary

    return bool(_is_binary(quantizer))


def direct_sublayers(layer) -> list:
    """The Keras layers that `layer` tracks directly (one level down, in tracking order)."""
    return list(layer._flatten_layers(include_self=False, recursive=False))


def is_graph_model(model) -> bool:
    """Whether `model` is a Functional (or built Sequential) Keras model, whose layer graph can be cloned."""
    return bool(getattr(model, "_is_graph_network", False))


def lce_validate_options(**options) -> None:
    """LCE's own check of converter options (ValueError on a bad target or inference type)."""
    import inspect

    from larq_compute_engine.mlir.python.converter import _validate_options

    known = inspect.signature(_validate_options).parameters
    _validate_options(**{name: value for name, value in options.items() if name in known})


def larq_base_quantizer() -> type:
    """larq's private quantizer base class (adds the `flip_ratio` metric that larq's own quantizers support).

    Imported lazily: this module is imported before TensorFlow, so it must not import larq at import time.
    """
    from larq.quantizers import _BaseQuantizer

    return _BaseQuantizer


def lce_predict(interpreter, inputs: list):
    """Run one whole batch of every input through an LCE `Interpreter`; the list of its outputs.

    LCE's public `Interpreter.predict` feeds one sample at a time (it adds a batch axis of 1 to each), which fails
    for a flatbuffer converted with batch size B > 1; its wrapper object takes the full batch.
    """
    return interpreter.interpreter.predict(list(inputs))


def larq_base_layer() -> type:
    """larq's quantizer mixin over Keras layers (``larq.layers_base.BaseLayer``): ``input_quantizer`` and the
    ``_get_quantizer(name)`` hook that turns the named weights into ``QuantizedVariable``s."""
    from larq.layers_base import BaseLayer

    return BaseLayer


def quantized_variable_class() -> type:
    """larq's ``QuantizedVariable`` (a binary kernel's variable: ``latent_variable`` and ``quantizer``)."""
    from larq.quantized_variable import QuantizedVariable

    return QuantizedVariable


def use_generic_rnn_loop(layer, return_runtime: bool = False) -> None:
    """Make a ``tf.keras.layers.GRU`` subclass always run Keras' generic RNN loop over its cell (never the fused
    cuDNN kernel, which would bypass a custom cell), with GRU's ``return_runtime`` testing flag."""
    layer._could_use_gpu_kernel = False
    layer._return_runtime = return_runtime


def mha_settings(layer) -> dict:
    """A ``tf.keras.layers.MultiHeadAttention``'s sizes (kept in private attributes by Keras): ``num_heads``,
    ``key_dim``, ``value_dim``, ``output_shape`` (None: the query's features) and ``built`` (whether its
    projections exist, i.e. ``_build_from_signature`` ran)."""
    return {"num_heads": layer._num_heads, "key_dim": layer._key_dim, "value_dim": layer._value_dim,
            "output_shape": layer._output_shape, "built": bool(layer._built_from_signature)}


def mha_sublayer_kwargs(layer) -> dict:
    """The initializers, regularizers and constraints a ``MultiHeadAttention`` passes to its projections."""
    return layer._get_common_kwargs_for_sublayer()


def larq_explicit_padding(layer, inputs):
    """The paddings a larq convolution adds itself (SAME padding with ``pad_values != 0``), or None when it uses
    the convolution's own padding."""
    if layer._is_native_padding:
        return None
    return layer._get_padding_same(inputs)


def litert_delegated_ops(interpreter) -> tuple[list[str], list[str]]:
    """(op names a delegate runs, op names left to builtin kernels) of an allocated LiteRT / TFLite interpreter.

    LiteRT lists the model's nodes followed by one ``DELEGATE`` node per delegated partition (its private
    ``_get_ops_details``, the only per-node listing it exposes); a partition's ops are found by walking back from
    its outputs to its inputs.
    """
    details = interpreter._get_ops_details()
    originals = [d for d in details if d["op_name"] != "DELEGATE"]
    producer = {int(t): d["index"] for d in originals for t in d["outputs"]}
    delegated: set[int] = set()
    for node in (d for d in details if d["op_name"] == "DELEGATE"):
        boundary = {int(t) for t in node["inputs"]}
        stack = [int(t) for t in node["outputs"]]
        while stack:
            tensor = stack.pop()
            if tensor in boundary or tensor not in producer or producer[tensor] in delegated:
                continue
            delegated.add(producer[tensor])
            stack.extend(int(t) for t in details[producer[tensor]]["inputs"])
    names = {d["index"]: d["op_name"] for d in originals}
    return [names[i] for i in sorted(delegated)], [names[i] for i in sorted(names) if i not in delegated]


def keras_sublayers(layer) -> list:
    """A Keras 3 layer and every layer tracked inside it (nested models, blocks, quantizer layers), each once, in
    tracking order (Keras 3 has no public recursive listing; ``Layer._flatten_layers`` is it)."""
    return list(layer._flatten_layers(include_self=True, recursive=True))


def keras_tensor_layer(tensor):
    """The Keras 3 layer that made a symbolic ``KerasTensor`` (e.g. a model input's ``InputLayer``)."""
    return tensor._keras_history[0]


def keras_inbound_nodes(operation, graph=None) -> list:
    """The call nodes of a Keras 3 layer (``_inbound_nodes``), only those of `graph`'s (a Functional's) own graph
    when `graph` is given (Keras 3 keeps one node list per layer across every model that calls it)."""
    nodes = list(operation._inbound_nodes)
    own = getattr(graph, "_nodes", None)
    if own is None:
        return nodes
    from keras.src.ops.function import make_node_key

    return [node for index, node in enumerate(nodes) if make_node_key(operation, index) in own]


def keras_tensor_mask(tensor):
    """The Keras mask a Keras 3 tensor carries (``_keras_mask``), or None."""
    return getattr(tensor, "_keras_mask", None)


def keras_created_trainable_variables(layer) -> list:
    """The variables a Keras 3 layer created as trainable (``_trainable_variables``), frozen or not now."""
    return list(layer._trainable_variables)


def keras_functional_class() -> type:
    """Keras 3's Functional model class (not exported by ``keras``)."""
    from keras.src.models.functional import Functional

    return Functional
