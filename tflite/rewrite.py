"""Rewrite binary layers into the one form LCE bitpacks: a binary 1x1 (or 1xk) ``QuantConv2D``.

LCE bitpacks a ``Conv2D`` (as ``LceBconv2d``) whose input comes from a binary quantizer and whose filter is +-1
up to a per-output-channel scale; every other binary layer stays in float unless rewritten into that form.
A table maps Keras layer classes to *rewrite functions*, applied to a **copy** of a Functional or Sequential
model; the user's model is never modified.

A rewrite function takes a layer (and the LCE ``target``) and either

* returns ``None``: keep the layer as it is (it is not binary, or LCE already bitpacks it),
* returns a replacement layer, **built and holding the converted weights**, that computes the same outputs
  from the same inputs in the 1x1-binary-conv form, or
* raises :class:`CannotBitpack` with the reason the layer is binary but cannot be bitpacked.

Lookup walks the class's MRO, so a subclass inherits its parents' rewrite unless it registers its own. A new
layer family registers its rewrite beside its code::

    from keras_bnn.tflite.rewrite import register_rewrite

    @register_rewrite(MyBinaryGRU)
    def _gru_as_conv(layer, *, target):
        ...  # return a built layer, weights set, whose binary matmuls are 1x1 QuantConv2D

Example:
    >>> import keras_bnn, larq as lq, tensorflow as tf
    >>> from keras_bnn.tflite.rewrite import rewrite_for_lce
    >>> inputs = tf.keras.Input((64,), batch_size=1)
    >>> outputs = lq.layers.QuantDense(10, input_quantizer="ste_sign", kernel_quantizer="ste_sign")(inputs)
    >>> result = rewrite_for_lce(tf.keras.Model(inputs, outputs))
    >>> type(result.model.layers[-1]).__name__, result.not_bitpacked
    ('BinaryDenseAsConv2D', [])
    >>> [(layer.name, layer.class_name) for layer in result.bitpackable]
    [('quant_dense', 'QuantDense')]
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass, field
from typing import Callable, Optional

import larq as lq
import tensorflow as tf

from keras_bnn._compat import direct_sublayers, is_binary_quantizer, is_graph_model

__all__ = ["BinaryConv1DAsConv2D", "BinaryDenseAsConv2D", "BitpackableLayer", "CannotBitpack", "NotBitpackedLayer",
           "RewriteFunction", "RewriteResult", "get_rewrite", "register_rewrite", "rewrite_for_lce"]

RewriteFunction = Callable[..., Optional[tf.keras.layers.Layer]]
"""``fn(layer, *, target: str) -> Layer | None``; may raise :class:`CannotBitpack`."""

_REWRITES: dict[type, RewriteFunction] = {}
_BITPACK_WIDTH = 32  # LCE packs input channels into int32 words


class CannotBitpack(Exception):
    """Raised by a rewrite function: the layer is binary, but LCE cannot bitpack it. The message says why."""


@dataclass(frozen=True)
class NotBitpackedLayer:
    """A binary layer that stays in float after conversion.

    Attributes:
        name: the layer's path in the model, nested models and layers joined by ``/``.
        class_name: the layer's class name.
        reason: why it is not bitpacked.
    """

    name: str
    class_name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name} ({self.class_name}): {self.reason}"


@dataclass(frozen=True)
class BitpackableLayer:
    """A binary convolution of the rewritten copy that LCE should turn into ``LceBconv2d``.

    Attributes:
        name: path of the original layer in the model.
        class_name: class name of the original layer (e.g. ``QuantDense`` for a rewritten dense layer).
        layer: the ``QuantConv2D`` of the copy.
    """

    name: str
    class_name: str
    layer: tf.keras.layers.Layer


@dataclass
class RewriteResult:
    """What :func:`rewrite_for_lce` made.

    Attributes:
        model: the rewritten copy (the original model itself when nothing needed rewriting and it cannot be
            cloned, i.e. a subclassed model).
        bitpackable: binary convolutions of the copy that LCE should bitpack.
        not_bitpacked: binary layers that will stay in float, with the reason.
    """

    model: tf.keras.Model
    bitpackable: list[BitpackableLayer] = field(default_factory=list)
    not_bitpacked: list[NotBitpackedLayer] = field(default_factory=list)


def register_rewrite(layer_class: type) -> Callable[[RewriteFunction], RewriteFunction]:
    """Decorator: use the decorated function to rewrite `layer_class` (and subclasses without their own).

    Args:
        layer_class: a Keras layer class.

    Returns:
        The decorator; it returns the function unchanged.

    Raises:
        TypeError: `layer_class` is not a subclass of ``tf.keras.layers.Layer``.

    Example:
        >>> import keras_bnn, tensorflow as tf
        >>> from keras_bnn.tflite.rewrite import get_rewrite, register_rewrite
        >>> class MyLayer(tf.keras.layers.Layer):
        ...     pass
        >>> @register_rewrite(MyLayer)
        ... def _keep(layer, *, target):
        ...     return None
        >>> get_rewrite(MyLayer()) is _keep
        True
    """
    if not (isinstance(layer_class, type) and issubclass(layer_class, tf.keras.layers.Layer)):
        raise TypeError(f"register_rewrite needs a Keras layer class, got {layer_class!r}")

    def decorator(function: RewriteFunction) -> RewriteFunction:
        _REWRITES[layer_class] = function
        return function

    return decorator


def get_rewrite(layer: tf.keras.layers.Layer | type) -> RewriteFunction | None:
    """The rewrite function for a layer or layer class: that of the most specific registered class in its MRO.

    Returns:
        The function, or None when no class in the MRO has one (see :func:`register_rewrite` for an example).
    """
    cls = layer if isinstance(layer, type) else type(layer)
    for base in cls.__mro__:
        if base in _REWRITES:
            return _REWRITES[base]
    return None


class _Conv2DForm(tf.keras.layers.Wrapper):
    """Runs a wrapped ``QuantConv2D`` on a ``(B, 1, N, C)`` view of its input."""

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build(tf.TensorShape([None, 1, None, tf.TensorShape(input_shape)[-1]]))
        super().build(input_shape)


@tf.keras.utils.register_keras_serializable(package="keras_bnn")
class BinaryDenseAsConv2D(_Conv2DForm):
    """A dense layer on the last axis computed as a 1x1 ``QuantConv2D`` (the form LCE bitpacks).

    ``(B, ..., F)`` is reshaped to ``(B, 1, N, F)`` (N: the product of the middle axes, 1 for rank 2), the
    wrapped conv (kernel ``(1, 1, F, units)``) applied, and the result reshaped to ``(B, ..., units)``.

    Args:
        layer: a ``larq.layers.QuantConv2D`` with ``kernel_size=1``, strides 1 and ``channels_last``.
        **kwargs: base ``Layer`` arguments (``name``, ...).

    Example:
        >>> import keras_bnn, larq as lq, tensorflow as tf
        >>> from keras_bnn.tflite.rewrite import BinaryDenseAsConv2D
        >>> conv = lq.layers.QuantConv2D(10, 1, input_quantizer="ste_sign", kernel_quantizer="ste_sign")
        >>> BinaryDenseAsConv2D(conv)(tf.ones((2, 5, 64))).shape
        TensorShape([2, 5, 10])
    """

    def call(self, inputs):
        middle = inputs.shape[1:-1]
        count = math.prod(middle) if middle.is_fully_defined() else -1
        outputs = self.layer(tf.reshape(inputs, [-1, 1, count, inputs.shape[-1]]))
        if middle.is_fully_defined():
            return tf.reshape(outputs, [-1, *middle, self.layer.filters])
        return tf.reshape(outputs, tf.concat([tf.shape(inputs)[:-1], [self.layer.filters]], axis=0))

    def compute_output_shape(self, input_shape):
        return tf.TensorShape(input_shape)[:-1].concatenate([self.layer.filters])


@tf.keras.utils.register_keras_serializable(package="keras_bnn")
class BinaryConv1DAsConv2D(_Conv2DForm):
    """A 1D convolution computed as a ``(1, k)`` ``QuantConv2D`` on ``(B, 1, T, C)`` (the form LCE bitpacks).

    Args:
        layer: a ``larq.layers.QuantConv2D`` with kernel, strides and dilation of the form ``(1, x)``.
        **kwargs: base ``Layer`` arguments (``name``, ...).

    Example:
        >>> import keras_bnn, larq as lq, tensorflow as tf
        >>> from keras_bnn.tflite.rewrite import BinaryConv1DAsConv2D
        >>> conv = lq.layers.QuantConv2D(8, (1, 3), input_quantizer="ste_sign", kernel_quantizer="ste_sign")
        >>> BinaryConv1DAsConv2D(conv)(tf.ones((2, 10, 32))).shape
        TensorShape([2, 8, 8])
    """

    def call(self, inputs):
        return tf.squeeze(self.layer(tf.expand_dims(inputs, 1)), axis=1)

    def compute_output_shape(self, input_shape):
        input_shape = tf.TensorShape(input_shape)
        shape = self.layer.compute_output_shape([input_shape[0], 1, *input_shape[1:]])
        return tf.TensorShape([shape[0], *shape[2:]])


def _from_config(cls: type, config: dict, original: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
    """``cls.from_config(config)`` with the classes inside `original` in scope (e.g. unregistered quantizers)."""
    objects = {type(module).__name__: type(module) for module in original.submodules}
    with tf.keras.utils.custom_object_scope(objects):
        return cls.from_config(config)


def _quantizer_name(quantizer) -> str:
    return "None" if quantizer is None else getattr(quantizer, "__name__", type(quantizer).__name__)


def _conv2d_obstacle(*, kernel_quantizer, in_channels: int, groups: int, padding: str, pad_values,
                     data_format: str, target: str) -> str | None:
    """Why LCE would not bitpack a Conv2D with a binary input quantizer and these settings (None: it will)."""
    if not is_binary_quantizer(kernel_quantizer):
        return (f"its input is binarized but its kernel quantizer {_quantizer_name(kernel_quantizer)} is not "
                "binary; LCE needs +-1 weights (up to a per-output-channel scale)")
    if data_format != "channels_last":
        return f"data_format={data_format!r}; LCE bitpacks channels_last convolutions only"
    if groups > 1 and (in_channels // groups) % _BITPACK_WIDTH:
        return (f"{in_channels // groups} input channels per group ({in_channels} channels, groups={groups}); "
                f"LCE needs a multiple of {_BITPACK_WIDTH}")
    if padding == "same":
        value = float(tf.keras.backend.get_value(pad_values))
        if value not in (0.0, 1.0):
            return f"SAME padding with pad_values={value:g}; LCE bitpacks pad_values 0 or 1 only"
        if value == 0.0 and target != "arm":
            return f"SAME padding with pad_values=0 is bitpacked for target 'arm' only (got {target!r}); " \
                   "use pad_values=1"
    return None


def _require_built(layer: tf.keras.layers.Layer) -> None:
    if not layer.built:
        raise CannotBitpack("the layer is not built, so its weights cannot be converted")


@register_rewrite(lq.layers.QuantConv2D)
def _check_quant_conv2d(layer, *, target: str) -> None:
    """QuantConv2D is LCE's own form: keep it, but say when LCE will not bitpack it."""
    if not is_binary_quantizer(layer.input_quantizer):
        return None
    _require_built(layer)
    obstacle = _conv2d_obstacle(
        kernel_quantizer=layer.kernel_quantizer, in_channels=int(layer.kernel.shape[2]) * layer.groups,
        groups=layer.groups, padding=layer.padding, pad_values=layer.pad_values,
        data_format=layer.data_format, target=target)
    if obstacle:
        raise CannotBitpack(obstacle)
    return None


@register_rewrite(lq.layers.QuantDense)
def _dense_as_conv2d(layer, *, target: str) -> BinaryDenseAsConv2D | None:
    """Binary QuantDense -> BinaryDenseAsConv2D (1x1 QuantConv2D, kernel reshaped to (1, 1, F, units))."""
    if not is_binary_quantizer(layer.input_quantizer):
        return None
    _require_built(layer)
    kernel, *rest = layer.get_weights()
    obstacle = _conv2d_obstacle(kernel_quantizer=layer.kernel_quantizer, in_channels=kernel.shape[0], groups=1,
                                padding="valid", pad_values=0.0, data_format="channels_last", target=target)
    if obstacle:
        raise CannotBitpack(obstacle)
    config = layer.get_config()
    config["filters"] = config.pop("units")
    conv = _from_config(lq.layers.QuantConv2D, {**config, "kernel_size": 1}, layer)
    replacement = BinaryDenseAsConv2D(conv, name=layer.name)
    replacement.build(tf.TensorShape([None, kernel.shape[0]]))
    replacement.set_weights([kernel.reshape((1, 1, *kernel.shape)), *rest])
    return replacement


@register_rewrite(lq.layers.QuantConv1D)
def _conv1d_as_conv2d(layer, *, target: str) -> BinaryConv1DAsConv2D | None:
    """Binary QuantConv1D -> BinaryConv1DAsConv2D ((1, k) QuantConv2D on (B, 1, T, C))."""
    if not is_binary_quantizer(layer.input_quantizer):
        return None
    _require_built(layer)
    if layer.padding == "causal":
        raise CannotBitpack("causal padding; LCE's binary conv pads both sides. Use padding='valid' after an "
                            "explicit left padding, or padding='same'")
    kernel, *rest = layer.get_weights()
    obstacle = _conv2d_obstacle(
        kernel_quantizer=layer.kernel_quantizer, in_channels=kernel.shape[1] * layer.groups, groups=layer.groups,
        padding=layer.padding, pad_values=layer.pad_values, data_format=layer.data_format, target=target)
    if obstacle:
        raise CannotBitpack(obstacle)
    config = layer.get_config()
    config.update(kernel_size=(1, *layer.kernel_size), strides=(1, *layer.strides),
                  dilation_rate=(1, *layer.dilation_rate))
    replacement = BinaryConv1DAsConv2D(_from_config(lq.layers.QuantConv2D, config, layer), name=layer.name)
    replacement.build(tf.TensorShape([None, None, kernel.shape[1] * layer.groups]))
    replacement.set_weights([kernel.reshape((1, *kernel.shape)), *rest])
    return replacement


def _refuse(reason: str) -> RewriteFunction:
    def refuse(layer, *, target: str) -> None:
        if is_binary_quantizer(getattr(layer, "input_quantizer", None)):
            raise CannotBitpack(reason)
        return None

    return refuse


_SEPARABLE = "LCE has no bitpacked separable convolution (only the 1x1 part of a depthwise + 1x1 pair can be)"
for _class, _reason in {
    lq.layers.QuantDepthwiseConv2D: "LCE has no bitpacked depthwise convolution",
    lq.layers.QuantSeparableConv1D: _SEPARABLE,
    lq.layers.QuantSeparableConv2D: _SEPARABLE,
    lq.layers.QuantConv2DTranspose: "LCE has no bitpacked transposed convolution",
    lq.layers.QuantConv3D: "LCE has no bitpacked 3D convolution",
    lq.layers.QuantConv3DTranspose: "LCE has no bitpacked 3D transposed convolution",
    lq.layers.QuantLocallyConnected1D: "LCE has no bitpacked locally connected layer",
    lq.layers.QuantLocallyConnected2D: "LCE has no bitpacked locally connected layer",
}.items():
    register_rewrite(_class)(_refuse(_reason))


def _contains_rewritable(layer: tf.keras.layers.Layer, target: str) -> bool:
    """Whether any layer under `layer` (itself included) would be replaced by its rewrite."""
    for sub in [layer, *(m for m in layer.submodules if isinstance(m, tf.keras.layers.Layer))]:
        function = get_rewrite(sub)
        if function is None:
            continue
        try:
            if function(sub, target=target) is not None:
                return True
        except CannotBitpack:
            pass
    return False


def _subclassed_error(model: tf.keras.Model) -> TypeError:
    return TypeError(
        f"model {model.name!r} ({type(model).__name__}) is a subclassed Keras model, which cannot be copied "
        "layer by layer, and it holds binary layers that must be rewritten to be bitpacked. Build it as a "
        "Functional or Sequential model (with a known input shape) to convert it.")


def _copy_layer(layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
    try:
        return _from_config(type(layer), layer.get_config(), layer)
    except NotImplementedError as error:
        raise TypeError(f"cannot copy layer {layer.name!r} ({type(layer).__name__}): it needs get_config() "
                        "and from_config()") from error


def _clone(model: tf.keras.Model, target: str, origins: dict[int, str], input_tensors=None) -> tf.keras.Model:
    """A copy of a Functional/Sequential model with rewrites applied, weights copied, nested models too.

    `origins` receives, for each replacement layer (by id), the class name of the layer it replaces.
    """
    copies: list[tuple[tf.keras.layers.Layer, tf.keras.layers.Layer]] = []

    def clone_layer(layer: tf.keras.layers.Layer) -> tf.keras.layers.Layer:
        if isinstance(layer, tf.keras.Model):
            if is_graph_model(layer):
                return _clone(layer, target, origins)
            if _contains_rewritable(layer, target):
                raise _subclassed_error(layer)
        else:
            function = get_rewrite(layer)
            if function is not None:
                try:
                    replacement = function(layer, target=target)
                except CannotBitpack:
                    replacement = None  # kept as it is; reported by the audit
                if replacement is not None:
                    origins[id(replacement)] = type(layer).__name__
                    return replacement
        new = _copy_layer(layer)
        copies.append((layer, new))
        return new

    clone = tf.keras.models.clone_model(model, input_tensors=input_tensors, clone_function=clone_layer)
    if not clone.built:
        raise ValueError(f"model {model.name!r} has no known input shape; give it an Input (or input_shape)")
    for original, new in copies:
        if original.built:
            new.set_weights(original.get_weights())
    return clone


def _audit(model: tf.keras.Model, target: str, origins: dict[int, str]) -> RewriteResult:
    """Find every binary layer of `model`: bitpackable convs, and the rest with a reason."""
    result = RewriteResult(model=model)
    seen: set[int] = set()

    def examine(layer, path: str, class_name: str, parent) -> None:
        function = get_rewrite(layer)
        binary = is_binary_quantizer(getattr(layer, "input_quantizer", None))
        reason = None
        if function is None:
            if binary:
                reason = (f"no rewrite is registered for {type(layer).__name__}; LCE bitpacks only binary "
                          "Conv2D (see keras_bnn.tflite.rewrite.register_rewrite)")
        else:
            try:
                if function(layer, target=target) is not None:
                    reason = (f"it has a rewrite, but it sits inside {parent.name!r} ({type(parent).__name__}), "
                              "which the rewrite pass cannot enter; register a rewrite for "
                              f"{type(parent).__name__}")
            except CannotBitpack as error:
                reason = str(error)
        if reason is not None:
            result.not_bitpacked.append(NotBitpackedLayer(path, class_name, reason))
        elif binary and isinstance(layer, lq.layers.QuantConv2D):
            result.bitpackable.append(BitpackableLayer(path, class_name, layer))

    def walk(parent, path: str, class_name: str) -> None:
        for child in direct_sublayers(parent):
            if id(child) in seen or isinstance(child, lq.quantizers.Quantizer):
                continue
            seen.add(id(child))
            # A rewritten layer wraps a conv of the same name: report it under the original's path and class.
            same = bool(path) and child.name == path.rsplit("/", 1)[-1]
            child_path = path if same else f"{path}/{child.name}" if path else child.name
            child_class = class_name if same else origins.get(id(child), type(child).__name__)
            examine(child, child_path, child_class, parent)
            walk(child, child_path, child_class)

    walk(model, "", type(model).__name__)
    return result


@contextlib.contextmanager
def _quiet_larq_construction():
    """Silence larq's training-only advice (kernel_constraint) while layers are copied for conversion."""
    logger = logging.getLogger("larq.layers_base")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def rewrite_for_lce(model: tf.keras.Model, *, target: str = "arm", batch_size: int | None = None) -> RewriteResult:
    """Copy `model` with every registered rewrite applied, and list its binary layers.

    Args:
        model: a Functional or Sequential Keras model (nested models are rewritten too). A subclassed model is
            accepted only when no layer in it needs a rewrite; it is then returned as it is.
        target: LCE's target, ``"arm"`` or ``"xcore"`` (what LCE bitpacks differs slightly).
        batch_size: the batch size of the copy's inputs (LCE fixes it at conversion); None keeps the model's.

    Returns:
        A :class:`RewriteResult`: the copy, its bitpackable binary convolutions, and the binary layers that will
        stay in float with the reason.

    Raises:
        TypeError: `model` is not a Keras model, or is subclassed and holds layers that need a rewrite (or a
            new `batch_size`).
        ValueError: the model has no known input shape, or `batch_size` is not a positive integer.
    """
    if not isinstance(model, tf.keras.Model):
        raise TypeError(f"expected a tf.keras.Model, got {type(model).__name__}: {model!r}")
    if batch_size is not None and (isinstance(batch_size, bool) or not isinstance(batch_size, int)
                                   or batch_size < 1):
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}")
    with _quiet_larq_construction():
        if not is_graph_model(model):
            if _contains_rewritable(model, target) or batch_size is not None:
                raise _subclassed_error(model)
            return _audit(model, target, {})
        input_tensors = None
        if batch_size is not None:
            input_tensors = [tf.keras.Input(batch_shape=(batch_size, *tensor.shape[1:]), dtype=tensor.dtype)
                             for tensor in model.inputs]
        origins: dict[int, str] = {}
        return _audit(_clone(model, target, origins, input_tensors), target, origins)


# Wrappers (Bidirectional, RNN) around rewritable layers register their rewrites in their own module.
from keras_bnn.tflite import wrappers as _wrappers  # noqa: E402,F401
