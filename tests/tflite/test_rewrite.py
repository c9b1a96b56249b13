"""The rewrite pass: binary dense / conv1d -> binary Conv2D form on a copy; registry; audit of binary layers.

These tests stay at the Keras level (no LCE conversion); test_converter.py converts and runs flatbuffers.
Outputs of the copy must equal the original's exactly: with +-1 inputs and +-1 weights, every dot product is a
small integer, exact in float32 whatever the summation order, and the ops after it (bias, BN) are the same.
"""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

from keras_bnn.tflite import Rule, Verdict, register_rule, rewrite_for_lce
from keras_bnn.tflite.forms import BinaryConv1DAsConv2D, BinaryDenseAsConv2D
from keras_bnn.tflite.registry import rule_for

BINARY = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip")


def _randomize(model: tf.keras.Model) -> None:
    """Random weights everywhere (BN with positive variances), so that equality tests can fail."""
    rng = np.random.default_rng(0)
    for layer in model.submodules:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, gamma.shape), rng.normal(size=beta.shape),
                               rng.normal(size=mean.shape), rng.uniform(0.5, 2, variance.shape)])
        elif isinstance(layer, tf.keras.layers.Layer) and layer.weights and not isinstance(layer, tf.keras.Model):
            layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])


def _layer_types(model):
    return [type(layer).__name__ for layer in model.layers]


def _mixed_model():
    inputs = tf.keras.Input((12, 40), batch_size=2)
    x = lq.layers.QuantConv1D(48, 3, padding="same", pad_values=1.0, **BINARY)(inputs)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv1D(32, 3, strides=2, **BINARY)(x)
    x = lq.layers.QuantConv1D(32, 2, dilation_rate=2, padding="same", **BINARY)(x)
    x = lq.layers.QuantDense(20, activation="relu", **BINARY)(x)  # rank 3: on the last axis
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(10, input_quantizer="ste_sign", kernel_quantizer="magnitude_aware_sign")(x)
    model = tf.keras.Model(inputs, x)
    _randomize(model)
    return model


def test_copy_computes_the_same_and_leaves_the_model_untouched():
    model = _mixed_model()
    layers_before = [(id(layer), type(layer)) for layer in model.layers]
    weights_before = [w.copy() for w in model.get_weights()]
    nodes_before = [len(layer.inbound_nodes) for layer in model.layers]

    result = rewrite_for_lce(model)

    assert _layer_types(result.model) == ["InputLayer", "BinaryConv1DAsConv2D", "BatchNormalization",
                                          "BinaryConv1DAsConv2D", "BinaryConv1DAsConv2D", "BinaryDenseAsConv2D",
                                          "Flatten", "BinaryDenseAsConv2D"]
    assert [(entry.name, entry.class_name) for entry in result.bitpackable] == [
        ("quant_conv1d", "QuantConv1D"), ("quant_conv1d_1", "QuantConv1D"), ("quant_conv1d_2", "QuantConv1D"),
        ("quant_dense", "QuantDense"), ("quant_dense_1", "QuantDense")]
    assert all(isinstance(entry.layer, lq.layers.QuantConv2D) for entry in result.bitpackable)
    assert result.not_bitpacked == []
    assert result.model.inputs[0].shape.as_list() == [2, 12, 40]  # batch size kept (LCE bakes it in)

    x = np.random.default_rng(1).normal(size=(2, 12, 40)).astype("float32")
    expected = model(x).numpy()
    np.testing.assert_allclose(result.model(x).numpy(), expected, rtol=1e-6, atol=1e-5 * np.abs(expected).max())

    assert [(id(layer), type(layer)) for layer in model.layers] == layers_before
    assert [len(layer.inbound_nodes) for layer in model.layers] == nodes_before
    for before, after in zip(weights_before, model.get_weights()):
        np.testing.assert_array_equal(before, after)
    assert not {id(w) for w in model.weights} & {id(w) for w in result.model.weights}


@pytest.mark.parametrize("shape", [(64,), (7, 64), (3, 4, 64)], ids=["rank2", "rank3", "rank4"])
def test_dense_rewrite_on_any_rank(shape):
    inputs = tf.keras.Input(shape)
    outputs = lq.layers.QuantDense(16, **BINARY)(inputs)
    model = tf.keras.Model(inputs, outputs)
    _randomize(model)
    result = rewrite_for_lce(model)
    assert isinstance(result.model.layers[-1], BinaryDenseAsConv2D)
    assert result.model.layers[-1].layer.kernel.shape == (1, 1, 64, 16)
    x = np.random.default_rng(2).normal(size=(3, *shape)).astype("float32")
    np.testing.assert_array_equal(result.model(x).numpy(), model(x).numpy())
    assert result.model.inputs[0].shape.as_list() == [None, *shape]


def test_batch_size_override_and_validation():
    inputs = tf.keras.Input((8,))
    model = tf.keras.Model(inputs, lq.layers.QuantDense(4, **BINARY)(inputs))
    assert rewrite_for_lce(model, batch_size=5).model.inputs[0].shape.as_list() == [5, 8]
    with pytest.raises(ValueError, match="batch_size must be a positive integer or None, got 0"):
        rewrite_for_lce(model, batch_size=0)
    with pytest.raises(TypeError, match="expected a tf.keras.Model, got str"):
        rewrite_for_lce("model.h5")


def test_nested_and_sequential_models_are_rewritten():
    inner = tf.keras.Sequential([lq.layers.QuantDense(16, input_shape=(32,), **BINARY),
                                 tf.keras.layers.BatchNormalization()], name="inner")
    inputs = tf.keras.Input((32,), batch_size=1)
    outputs = lq.layers.QuantDense(8, **BINARY)(inner(inputs))
    model = tf.keras.Model(inputs, outputs)
    _randomize(model)
    result = rewrite_for_lce(model)
    assert _layer_types(result.model.get_layer("inner")) == ["BinaryDenseAsConv2D", "BatchNormalization"]
    assert [entry.name for entry in result.bitpackable] == ["inner/quant_dense", "quant_dense_1"]
    assert _layer_types(inner) == ["QuantDense", "BatchNormalization"]
    x = np.random.default_rng(3).normal(size=(1, 32)).astype("float32")
    np.testing.assert_allclose(result.model(x).numpy(), model(x).numpy(), rtol=1e-6, atol=1e-5)


def test_rewritten_layers_serialize():
    result = rewrite_for_lce(_mixed_model())
    for layer in result.model.layers:
        if isinstance(layer, (BinaryDenseAsConv2D, BinaryConv1DAsConv2D)):
            config = tf.keras.utils.serialize_keras_object(layer)
            assert config["registered_name"] == f"keras_bnn>{type(layer).__name__}"
            clone = tf.keras.utils.deserialize_keras_object(config)
            assert type(clone) is type(layer) and clone.layer.get_config() == layer.layer.get_config()


def test_reasons_for_binary_layers_that_cannot_be_bitpacked():
    inputs = tf.keras.Input((16, 48))
    x = lq.layers.QuantConv1D(48, 3, padding="causal", name="causal", **BINARY)(inputs)
    x = lq.layers.QuantConv1D(48, 3, groups=2, name="grouped", **BINARY)(x)  # 24 channels per group
    x = lq.layers.QuantConv1D(64, 3, padding="same", name="zero_same", **BINARY)(x)
    x = lq.layers.QuantDense(32, input_quantizer="ste_sign", kernel_quantizer="ste_tern", name="ternary")(x)
    x = lq.layers.QuantConv1D(32, 3, name="float_input", kernel_quantizer="ste_sign")(x)  # not binary
    x = tf.keras.layers.Reshape((1, -1, 32))(x)
    x = lq.layers.QuantDepthwiseConv2D(3, padding="same", input_quantizer="ste_sign",
                                       depthwise_quantizer="ste_sign", name="depthwise")(x)
    model = tf.keras.Model(inputs, x)

    for target, zero_same in [("arm", False), ("xcore", True)]:
        result = rewrite_for_lce(model, target=target)
        reasons = {entry.name: entry.reason for entry in result.not_bitpacked}
        assert sorted(reasons) == sorted(["causal", "grouped", "ternary", "depthwise"] + zero_same * ["zero_same"])
        assert "causal padding" in reasons["causal"]
        assert "24 input channels per group" in reasons["grouped"]
        assert "SteTern is not binary" in reasons["ternary"]
        assert "depthwise" in reasons["depthwise"]
        assert zero_same == ("zero_same" not in [entry.name for entry in result.bitpackable])
        kept = {layer.name: type(layer).__name__ for layer in result.model.layers}
        assert kept["causal"] == "QuantConv1D" and kept["float_input"] == "QuantConv1D"


def test_registry_follows_the_mro():
    class MyDense(lq.layers.QuantDense):
        pass

    class MyOtherDense(lq.layers.QuantDense):
        pass

    assert rule_for(MyDense) is rule_for(lq.layers.QuantDense) is not None
    assert rule_for(tf.keras.layers.Dense) is None

    @register_rule(MyOtherDense)
    class _Refuse(Rule):
        def check(self, layer, *, target):
            return Verdict.refuse(f"refused for {target}")

    assert isinstance(rule_for(MyOtherDense(4)), _Refuse)
    inputs = tf.keras.Input((8,))
    x = MyDense(8, name="inherits", **BINARY)(inputs)
    x = MyOtherDense(8, name="own", **BINARY)(x)
    result = rewrite_for_lce(tf.keras.Model(inputs, x), target="xcore")
    assert [entry.name for entry in result.bitpackable] == ["inherits"]
    assert [(e.name, e.class_name, e.reason) for e in result.not_bitpacked] == [("own", "MyOtherDense",
                                                                                 "refused for xcore")]
    with pytest.raises(TypeError, match="needs a Keras layer class, got 'QuantDense'"):
        register_rule("QuantDense")
    with pytest.raises(TypeError, match="decorates a subclass of keras_bnn.tflite.Rule"):
        register_rule(MyOtherDense)(lambda layer, target: None)


class _Block(tf.keras.layers.Layer):
    """A custom layer holding a binary dense layer, with no rewrite of its own."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.dense = lq.layers.QuantDense(8, **BINARY)

    def call(self, inputs):
        return self.dense(inputs)


def test_binary_layer_inside_a_custom_layer_is_reported():
    inputs = tf.keras.Input((8,))
    model = tf.keras.Model(inputs, _Block(name="block")(inputs))
    (entry,) = rewrite_for_lce(model).not_bitpacked
    assert entry.name.startswith("block/") and entry.class_name == "QuantDense"
    assert "inside 'block' (_Block)" in entry.reason and "register a rule for _Block" in entry.reason


class _Subclassed(tf.keras.Model):
    def __init__(self, layer):
        super().__init__()
        self.inner = layer

    def call(self, inputs):
        return self.inner(inputs)


def test_subclassed_model_needs_a_functional_form_only_when_a_rewrite_applies():
    dense = _Subclassed(lq.layers.QuantDense(8, **BINARY))
    dense(tf.zeros((1, 8)))
    with pytest.raises(TypeError, match="subclassed Keras model.*Functional or Sequential"):
        rewrite_for_lce(dense)
    conv = _Subclassed(lq.layers.QuantConv2D(8, 3, **BINARY))
    conv(tf.zeros((1, 6, 6, 8)))
    result = rewrite_for_lce(conv)
    assert result.model is conv and len(result.bitpackable) == 1


class _UnregisteredSign(lq.quantizers.SteSign):
    """A quantizer class Keras cannot find by name: copying a layer that uses it must still work."""


def test_layers_with_unregistered_quantizers_are_copied():
    inputs = tf.keras.Input((16,))
    x = lq.layers.QuantDense(8, input_quantizer=_UnregisteredSign(), kernel_quantizer="ste_sign")(inputs)
    x = tf.keras.layers.Activation(_UnregisteredSign())(x)
    model = tf.keras.Model(inputs, lq.layers.QuantDense(4, input_quantizer=_UnregisteredSign(),
                                                        kernel_quantizer=_UnregisteredSign())(x))
    _randomize(model)
    result = rewrite_for_lce(model)
    assert [type(q).__name__ for q in (result.model.layers[1].layer.input_quantizer,
                                       result.model.layers[-1].layer.kernel_quantizer)] == ["_UnregisteredSign"] * 2
    x = np.random.default_rng(4).normal(size=(2, 16)).astype("float32")
    np.testing.assert_array_equal(result.model(x).numpy(), model(x).numpy())
