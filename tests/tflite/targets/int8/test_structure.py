"""What the int8 flatbuffer is made of, and what convert_int8 refuses (with the layer's name and the reason)."""

import larq as lq
import numpy as np
import pytest
import tensorflow as tf

import keras_bnn
from keras_bnn._compat import tflite_schema
from keras_bnn.tflite.targets.int8 import UnsupportedLayerError, convert_int8, register_lowering

BINARY = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", use_bias=False)


def small_bnn() -> tf.keras.Model:
    inputs = tf.keras.Input((28, 28, 1))
    x = tf.keras.layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    x = tf.keras.layers.Conv2D(8, 3, padding="same", use_bias=False)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.MaxPooling2D(2)(x)
    x = lq.layers.QuantConv2D(16, 3, padding="same", pad_values=1.0, **BINARY)(x)
    x = tf.keras.layers.MaxPooling2D(2)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    x = tf.keras.layers.Flatten()(x)
    x = lq.layers.QuantDense(10, **BINARY)(x)
    x = tf.keras.layers.BatchNormalization()(x)
    return tf.keras.Model(inputs, tf.keras.layers.Activation("softmax")(x))


PIXELS = np.random.default_rng(0).integers(0, 256, size=(16, 28, 28, 1)).astype(np.float32)


def test_only_builtin_int8_ops_and_int8_weights(ops_of):
    flatbuffer = convert_int8(small_bnn(), representative_data=PIXELS)
    schema = tflite_schema()
    model = schema.ModelT.InitFromPackedBuf(flatbuffer, 0)
    assert all(code.customCode is None for code in model.operatorCodes)
    ops = ops_of(flatbuffer)
    assert "CUSTOM" not in ops and not any(name.startswith(("Lce", "Flex")) for name in ops)
    assert set(ops) <= {"QUANTIZE", "DEQUANTIZE", "PADV2", "CONCATENATION", "CONV_2D", "MAX_POOL_2D", "RESHAPE",
                        "FULLY_CONNECTED", "SOFTMAX"}
    graph = model.subgraphs[0]
    float_tensors = {graph.tensors[i].name.decode() for i, t in enumerate(graph.tensors)
                     if t.type == schema.TensorType.FLOAT32}
    assert float_tensors == {"input", "output0/float"}  # float32 only at the model's input and output
    for op in graph.operators:
        name = model.operatorCodes[op.opcodeIndex].builtinCode
        if name in (schema.BuiltinOperator.CONV_2D, schema.BuiltinOperator.FULLY_CONNECTED):
            weights, bias = graph.tensors[op.inputs[1]], graph.tensors[op.inputs[2]]
            assert weights.type == schema.TensorType.INT8 and bias.type == schema.TensorType.INT32


def test_binary_weights_cost_one_byte():
    """The file is within 1.1x of one byte per binary weight plus the real parameters at their width."""
    model = small_bnn()
    flatbuffer = convert_int8(model, representative_data=PIXELS)
    binary = sum(int(np.prod(layer.kernel.shape)) for layer in model.layers
                 if isinstance(layer, (lq.layers.QuantConv2D, lq.layers.QuantDense)))
    real = sum(int(np.prod(w.shape)) * w.dtype.size for layer in model.layers for w in layer.weights
               if not isinstance(layer, (lq.layers.QuantConv2D, lq.layers.QuantDense)))
    assert len(flatbuffer) <= 1.1 * (binary + real) + 4096  # + tables, names and shapes of ~20 tensors


@pytest.mark.parametrize("layer, reason", [
    (lq.layers.QuantDepthwiseConv2D(3, input_quantizer="ste_sign", depthwise_quantizer="ste_sign",
                                    name="binary_depthwise"), "no int8 lowering is registered"),
    (keras_bnn.legacy.layers.XNORConv2D(4, 3, input_scaling=True, name="scaled_xnor"), "input_scaling=True"),
    (lq.layers.QuantConv2D(4, 3, input_quantizer="ste_heaviside", kernel_quantizer="ste_sign",
                           name="heaviside_conv"), "SteHeaviside"),
    (tf.keras.layers.LayerNormalization(name="layer_norm"), "no int8 lowering is registered"),
])
def test_unsupported_layer_is_named(layer, reason):
    inputs = tf.keras.Input((8, 8, 4))
    model = tf.keras.Model(inputs, layer(inputs))
    with pytest.raises(UnsupportedLayerError, match=reason) as info:
        convert_int8(model, representative_data=np.zeros((2, 8, 8, 4), np.float32))
    assert info.value.layer_name == layer.name and layer.name in str(info.value)


def test_subclass_overriding_call_is_not_lowered_as_its_parent():
    class ShiftedDense(lq.layers.QuantDense):
        def call(self, inputs):
            return super().call(inputs) + 1.0

    inputs = tf.keras.Input((8,))
    model = tf.keras.Model(inputs, ShiftedDense(4, name="shifted", **BINARY)(inputs))
    with pytest.raises(UnsupportedLayerError, match="overrides call"):
        convert_int8(model, representative_data=np.zeros((2, 8), np.float32))


def test_registering_a_lowering_makes_a_layer_convertible():
    class Identity(tf.keras.layers.Layer):
        def call(self, inputs):
            return inputs

    register_lowering(Identity)(lambda ctx, layer, inputs, node: inputs[0])
    inputs = tf.keras.Input((8,))
    outputs = lq.quantizers.SteSign()(lq.layers.QuantDense(4, **BINARY)(Identity()(inputs)))
    flatbuffer = convert_int8(tf.keras.Model(inputs, outputs), representative_data=np.ones((2, 8), np.float32))
    assert flatbuffer[4:8] == b"TFL3"


@pytest.mark.parametrize("kwargs, error, match", [
    (dict(representative_data=np.zeros((2, 27, 28, 1))), ValueError, "representative_data must have shape"),
    (dict(representative_data=PIXELS, inference_input_type=tf.uint8), ValueError, "inference_input_type"),
    (dict(representative_data=PIXELS, inference_output_type=tf.int16), ValueError, "inference_output_type"),
    (dict(representative_data=PIXELS, batch_size=0), ValueError, "batch_size"),
])
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        convert_int8(small_bnn(), **kwargs)


def test_subclassed_model_is_refused():
    class Sub(tf.keras.Model):
        def call(self, x):
            return x

    with pytest.raises(TypeError, match="Functional or Sequential"):
        convert_int8(Sub(), representative_data=np.zeros((1, 2), np.float32))


def test_batch_size_is_fixed_in_the_file():
    flatbuffer = convert_int8(small_bnn(), representative_data=PIXELS, batch_size=4)
    graph = tflite_schema().ModelT.InitFromPackedBuf(flatbuffer, 0).subgraphs[0]
    assert list(graph.tensors[graph.inputs[0]].shape) == [4, 28, 28, 1]
