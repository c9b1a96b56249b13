"""Walk a Keras graph model and lower every layer with the rule registered for its class.

A rule receives the lowering :class:`Context`, the layer, the values of its inputs
(:mod:`keras_bnn.tflite.targets.int8.values`) and its graph node, and returns the value of its output. Rules are keyed
by layer class; a subclass uses its parent's rule only if it does not override ``call`` (otherwise its
behaviour could differ silently). A layer without a rule, or one a rule cannot lower, raises
:class:`UnsupportedLayerError` naming the layer and the reason: no layer is ever left in float.

Registration also says how a layer treats signs, for the *sign-only analysis*: a Keras tensor whose every
consumer uses only its sign (a binary input quantizer, possibly behind Flatten/Reshape/MaxPool/Dropout) is
lowered to exact signs and its real value never exists in the int8 graph.

Example:
    >>> import tensorflow as tf
    >>> from keras_bnn.tflite.targets.int8.lowering import register_lowering, find_rule
    >>> class Twice(tf.keras.layers.Layer):
    ...     def call(self, x):
    ...         return 2 * x
    >>> @register_lowering(Twice)
    ... def _twice(ctx, layer, inputs, node):
    ...     raise NotImplementedError
    >>> find_rule(Twice()).lower is _twice
    True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from keras_bnn.tflite.targets.int8 import emit, materialize
from keras_bnn.tflite.targets.int8.arith import activation_params
from keras_bnn.tflite.targets.int8.calibration import Calibrator
from keras_bnn.tflite.targets.int8.ir import Graph
from keras_bnn.tflite.targets.int8.quantizers import SignSpec, UnsupportedQuantizer
from keras_bnn.tflite.targets.int8.head import float_head
from keras_bnn.tflite.targets.int8.values import Deferred, Float, Real, Signs, Value

__all__ = ["Context", "Rule", "UnsupportedLayerError", "find_rule", "lower_model", "register_lowering"]


class UnsupportedLayerError(ValueError):
    """A layer the int8 target cannot lower exactly as Keras computes it.

    Attributes:
        layer_name: the layer's name.
        class_name: its class.
        reason: why.
    """

    def __init__(self, layer_name: str, class_name: str, reason: str):
        self.layer_name, self.class_name, self.reason = layer_name, class_name, reason
        super().__init__(f"layer {layer_name!r} ({class_name}) cannot be lowered to int8 builtin ops: {reason}")


@dataclass(frozen=True)
class Rule:
    """A lowering rule and what it tells the sign-only analysis.

    Attributes:
        lower: ``lower(ctx, layer, inputs, node) -> Value``.
        sign_input: ``sign_input(layer) -> SignSpec | None``: the sign the layer takes of its (first) input,
            when the layer uses nothing else of it.
        sign_passthrough: the layer commutes with any sign (layout ops, max-pool, identities).
        changes_layout: the layer moves elements across channels (then per-channel signs cannot pass).
    """

    lower: Callable
    sign_input: Callable | None = None
    sign_passthrough: bool = False
    changes_layout: bool = False


_RULES: dict[type, Rule] = {}


def register_lowering(layer_class: type, *, sign_input: Callable | None = None, sign_passthrough: bool = False,
                      changes_layout: bool = False) -> Callable:
    """Decorator registering ``lower(ctx, layer, inputs, node) -> Value`` for `layer_class`."""
    if not (isinstance(layer_class, type) and issubclass(layer_class, tf.keras.layers.Layer)):
        raise TypeError(f"register_lowering needs a Keras layer class, got {layer_class!r}")

    def decorator(function: Callable) -> Callable:
        _RULES[layer_class] = Rule(function, sign_input, sign_passthrough, changes_layout)
        return function

    return decorator


def find_rule(layer) -> Rule:
    """The rule for `layer`'s class (or an ancestor's, if `layer` does not override ``call``).

    Raises:
        UnsupportedLayerError: no rule applies.
    """
    cls = type(layer)
    for ancestor in cls.__mro__:
        if ancestor in _RULES:
            if ancestor is not cls and cls.call is not ancestor.call:
                raise UnsupportedLayerError(layer.name, cls.__name__, f"it subclasses {ancestor.__name__} but "
                                            "overrides call(), and no int8 lowering is registered for it")
            return _RULES[ancestor]
    raise UnsupportedLayerError(layer.name, cls.__name__, "no int8 lowering is registered for this layer class")


class Context:
    """What rules work with: the graph being built, calibration, the sign-only analysis, conversions."""

    def __init__(self, model: tf.keras.Model, calibrator: Calibrator, batch_size: int, weight_digits: int = 1,
                 head: str = "int8"):
        self.model, self.calibrator, self.batch_size = model, calibrator, batch_size
        self.weight_digits, self.head = weight_digits, head
        self.graph = Graph()
        self._consumers: dict[int, list] = {}
        self._outputs = {id(t) for t in model.outputs}
        self._sign_specs: dict[int, SignSpec | None] = {}

    def index_consumers(self, nodes) -> None:
        for node in nodes:
            for tensor in node.keras_inputs:
                self._consumers.setdefault(id(tensor), []).append(node)

    def sign_spec(self, tensor) -> SignSpec | None:
        """The one sign every consumer of `tensor` takes of it, or None if some consumer needs its value."""
        key = id(tensor)
        if key not in self._sign_specs:
            self._sign_specs[key] = None  # cycle guard (graphs are acyclic; cheap insurance)
            self._sign_specs[key] = self._compute_sign_spec(tensor)
        return self._sign_specs[key]

    def _compute_sign_spec(self, tensor) -> SignSpec | None:
        consumers = self._consumers.get(id(tensor), [])
        if id(tensor) in self._outputs or not consumers:
            return None
        specs = set()
        for node in consumers:
            try:
                rule = find_rule(node.layer)
                spec = rule.sign_input(node.layer) if rule.sign_input else None
            except (UnsupportedLayerError, UnsupportedQuantizer):
                return None
            if spec is None and rule.sign_passthrough:
                spec = self.sign_spec(tf.nest.flatten(node.outputs)[0])
                if spec is not None and spec.per_channel and rule.changes_layout:
                    return None
            if spec is None:
                return None
            specs.add(spec)
        return specs.pop() if len(specs) == 1 else None

    # ---- conversions used by rules -----------------------------------------------------------------------
    def signs(self, value: Value, spec: SignSpec, name: str) -> Signs:
        return materialize.to_signs(self.graph, value, spec, name)

    def real(self, value: Value, name: str) -> Real:
        return materialize.to_real(self.graph, value, name)

    def plain(self, value: Value, name: str, calibration=None) -> Real:
        return materialize.plain_real(self.graph, value, name, calibration)


def _model_input(ctx: Context, tensor, input_type: tf.DType) -> Real:
    """The model input as int8: exactly (scale 1) when the representative data are integers in an int8-sized
    window (raw pixels 0..255), else quantized to its range."""
    data = ctx.calibrator.data
    shape = (ctx.batch_size,) + tuple(int(d) for d in tensor.shape[1:])
    integral = bool(np.all(data == np.round(data)))
    low, high = float(data.min()), float(data.max())
    if integral and high - low <= 255:
        scale, zero_point = 1.0, int(-128 - low) if low < -128 or high > 127 else 0
        exact = True
    else:
        scale, zero_point = activation_params(low, high)
        exact = False
    def int_batches():
        for start in range(0, len(data), ctx.calibrator.batch_size):
            batch = data[start:start + ctx.calibrator.batch_size]
            yield np.clip(np.round(batch / scale) + zero_point, -128, 127).astype(np.int64)

    if input_type == tf.int8:
        x = ctx.graph.activation("input", shape, "int8", scale=scale, zero_point=zero_point)
        ctx.graph.inputs.append(x)
        return Real(x, exact=True, int_batches=int_batches)
    x = ctx.graph.activation("input", shape, "float32")
    ctx.graph.inputs.append(x)
    return Real(emit.quantize(ctx.graph, x, scale, zero_point, "input/quantize"), exact=exact,
                int_batches=int_batches if exact else None)


def _check_rules(nodes) -> None:
    """Raise one UnsupportedLayerError naming every layer without a lowering rule (the first one as
    ``layer_name``), before any work."""
    missing = []
    for node in nodes:
        if isinstance(node.layer, tf.keras.layers.InputLayer):
            continue
        try:
            find_rule(node.layer)
        except UnsupportedLayerError as error:
            missing.append(error)
    if len(missing) == 1:
        raise missing[0]
    if missing:
        others = "; ".join(f"{e.layer_name!r} ({e.class_name}): {e.reason}" for e in missing[1:])
        raise UnsupportedLayerError(missing[0].layer_name, missing[0].class_name,
                                    f"{missing[0].reason}; also unsupported: {others}")


def lower_model(model: tf.keras.Model, calibrator: Calibrator, *, batch_size: int, input_type: tf.DType,
                output_type: tf.DType, weight_digits: int = 1, head: str = "int8") -> Graph:
    """Lower a single-input Functional/Sequential Keras model to an int8 IR graph."""
    ctx = Context(model, calibrator, batch_size, weight_digits, head)
    nodes = [node for depth in sorted(model._nodes_by_depth, reverse=True)  # noqa: SLF001 (Keras' own order)
             for node in model._nodes_by_depth[depth]]
    ctx.index_consumers(nodes)
    _check_rules(nodes)
    values: dict[int, Value] = {id(model.inputs[0]): _model_input(ctx, model.inputs[0], input_type)}
    for node in nodes:
        layer = node.layer
        if isinstance(layer, tf.keras.layers.InputLayer):
            continue
        outputs = tf.nest.flatten(node.outputs)
        if len(outputs) != 1:
            raise UnsupportedLayerError(layer.name, type(layer).__name__, "layers with several outputs are not "
                                        "supported")
        rule = find_rule(layer)
        inputs = [values[id(t)] for t in node.keras_inputs]
        try:
            values[id(outputs[0])] = rule.lower(ctx, layer, inputs, node)
        except (UnsupportedQuantizer, materialize.InexactLowering) as error:
            raise UnsupportedLayerError(layer.name, type(layer).__name__, str(error)) from None
    for index, tensor in enumerate(model.outputs):
        value = values[id(tensor)]
        if isinstance(value, Float):
            ctx.graph.outputs.append(value.tensor)
            continue
        if head == "float" and not isinstance(value, (Signs, Deferred)) and not getattr(value, "is_sign", False):
            ctx.graph.outputs.append(float_head(ctx.graph, value, f"output{index}"))
            continue
        out = ctx.plain(value, f"output{index}", ctx.calibrator.tap(tensor)).tensor
        if output_type == tf.float32:
            out = emit.dequantize(ctx.graph, out, f"output{index}/float")
        ctx.graph.outputs.append(out)
    return ctx.graph
