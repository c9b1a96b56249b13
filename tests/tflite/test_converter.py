"""convert(): real LCE conversion, real LCE interpreter, op types counted from the flatbuffer itself.

Tolerance: with +-1 inputs and +-1 weights every binary dot product is an integer, exact in Keras' float conv
and in LCE's popcount alike; only the float ops after it (bias, BN, magnitude-aware scale, which LCE fuses into
one multiply-add) round differently, by a few float32 ulps of the output. Hence rtol=1e-5 and an absolute
tolerance of 1e-5 of the largest output.
"""

from collections import Counter

import larq as lq
import larq_compute_engine as lce
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_bnn._compat import lce_interpreter_class, tflite_schema
from keras_bnn.tflite import ConversionResult, NotBitpackableError, NotBitpackedWarning, convert

BINARY = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip")
FLOAT_MATMULS = {"FULLY_CONNECTED", "CONV_2D", "BATCH_MATMUL", "DEPTHWISE_CONV_2D"}


def op_counts(flatbuffer: bytes) -> Counter:
    """Op types over all subgraphs, read with TFLite's schema (custom ops by their custom code)."""
    schema = tflite_schema()
    names = {value: name for name, value in vars(schema.BuiltinOperator).items() if not name.startswith("_")}
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAsModel(flatbuffer, 0))
    counts = Counter()
    for subgraph in model.subgraphs:
        for op in subgraph.operators:
            code = model.operatorCodes[op.opcodeIndex]
            counts[code.customCode.decode() if code.customCode
                   else names[max(code.builtinCode, code.deprecatedBuiltinCode)]] += 1
    return counts


def randomize(model: tf.keras.Model, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 2, gamma.shape), rng.normal(size=beta.shape),
                               rng.normal(size=mean.shape), rng.uniform(0.5, 2, variance.shape)])
        elif layer.weights:
            layer.set_weights([rng.normal(size=w.shape).astype("float32") for w in layer.get_weights()])


def assert_matches_keras(model: tf.keras.Model, flatbuffer: bytes, samples: int = 3) -> None:
    interpreter = lce_interpreter_class()(flatbuffer, num_threads=1)
    x = np.random.default_rng(7).normal(size=(samples, *model.inputs[0].shape[1:])).astype("float32")
    expected = np.concatenate([model(x[i:i + 1]).numpy() for i in range(samples)])
    actual = interpreter.predict(x)
    np.testing.assert_allclose(actual, expected, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(expected).max()))


def assert_all_bitpacked(flatbuffer: bytes, binary_layers: int) -> None:
    counts = op_counts(flatbuffer)
    assert counts["LceBconv2d"] == binary_layers, counts
    assert not FLOAT_MATMULS & set(counts), counts


def test_binary_mlp_is_bitpacked_and_exact():
    inputs = tf.keras.Input((64,), batch_size=1)
    x = lq.layers.QuantDense(48, **BINARY)(inputs)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantDense(40, activation="relu", **BINARY)(x)
    x = lq.layers.QuantDense(10, input_quantizer="ste_sign", kernel_quantizer="magnitude_aware_sign")(x)
    model = tf.keras.Model(inputs, x)
    randomize(model)
    flatbuffer = convert(model, strict=True)
    assert_all_bitpacked(flatbuffer, 3)
    assert_matches_keras(model, flatbuffer)
    # what plain LCE leaves in float:
    assert op_counts(lce.convert_keras_model(model))["FULLY_CONNECTED"] == 3


def test_dense_on_sequences_and_conv1d_are_bitpacked_and_exact():
    inputs = tf.keras.Input((16, 40))
    x = lq.layers.QuantConv1D(48, 3, **BINARY)(inputs)  # valid
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantConv1D(32, 3, padding="same", pad_values=1.0, **BINARY)(x)
    x = lq.layers.QuantConv1D(32, 3, strides=2, **BINARY)(x)
    x = lq.layers.QuantConv1D(40, 2, dilation_rate=2, **BINARY)(x)
    x = lq.layers.QuantDense(24, **BINARY)(x)  # QuantDense on (B, T, F)
    x = tf.keras.layers.BatchNormalization()(x)
    x = lq.layers.QuantDense(16, **BINARY)(x)
    model = tf.keras.Model(inputs, x)
    randomize(model)
    flatbuffer = convert(model, strict=True)
    assert_all_bitpacked(flatbuffer, 6)
    assert_matches_keras(model, flatbuffer)


def test_binary_mlp_flatbuffer_is_20_times_smaller_than_plain_lce():
    inputs = tf.keras.Input((784,))
    x = inputs
    for units in (512, 512, 10):
        x = lq.layers.QuantDense(units, use_bias=False, **BINARY)(x)
        x = tf.keras.layers.BatchNormalization()(x)
    model = tf.keras.Model(inputs, x)
    plain, ours = len(lce.convert_keras_model(model)), len(convert(model, strict=True))
    assert plain >= 20 * ours, (plain, ours)


def test_not_bitpackable_layers_warn_or_raise_with_strict():
    inputs = tf.keras.Input((16, 32))
    x = lq.layers.QuantConv1D(32, 3, padding="causal", name="causal_conv", **BINARY)(inputs)
    x = tf.keras.layers.Reshape((4, 4, 32))(x)
    x = lq.layers.QuantDepthwiseConv2D(3, input_quantizer="ste_sign", depthwise_quantizer="ste_sign",
                                       name="binary_depthwise")(x)
    x = lq.layers.QuantConv2D(32, 1, **BINARY)(x)
    model = tf.keras.Model(inputs, x)
    with pytest.raises(NotBitpackableError, match="2 binary layer") as raised:
        convert(model, strict=True)
    assert [layer.name for layer in raised.value.layers] == ["causal_conv", "binary_depthwise"]
    assert isinstance(raised.value, ValueError)
    with pytest.warns(NotBitpackedWarning) as caught:
        result = convert(model, report=True)
    messages = [str(warning.message) for warning in caught]
    assert any("'causal_conv' (QuantConv1D)" in m and "causal padding" in m for m in messages)
    assert any("'binary_depthwise' (QuantDepthwiseConv2D)" in m for m in messages)
    assert isinstance(result, ConversionResult) and result.kernels == "lce"
    assert [layer.name for layer in result.not_bitpacked] == ["causal_conv", "binary_depthwise"]
    assert op_counts(result.flatbuffer)["LceBconv2d"] == 1  # the bitpackable QuantConv2D still is
    assert result.report.op_counts["LceBconv2d"] == 1 and "causal_conv" in str(result)


def test_flatbuffer_check_catches_what_lce_left_in_float():
    # ste_heaviside has precision 1 but gives {0, 1}: the static rules accept it, LCE does not bitpack it.
    inputs = tf.keras.Input((6, 6, 32))
    x = lq.layers.QuantConv2D(32, 3, name="ok", **BINARY)(inputs)
    x = lq.layers.QuantConv2D(32, 1, input_quantizer="ste_heaviside", kernel_quantizer="ste_sign", name="heavi")(x)
    model = tf.keras.Model(inputs, x)
    with pytest.raises(NotBitpackableError) as raised:
        convert(model, strict=True)
    ((name, reason),) = [(layer.name, layer.reason) for layer in raised.value.layers]
    assert name == "heavi" and "made 0 LceBconv2d op(s)" in reason


def test_float_model_converts_and_says_so():
    inputs = tf.keras.Input((8,))
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(4)(inputs), name="plain")
    with pytest.warns(NotBitpackedWarning, match="model 'plain' has no binary layer"):
        flatbuffer = convert(model)
    assert op_counts(flatbuffer)["FULLY_CONNECTED"] == 1


def test_bad_arguments():
    inputs = tf.keras.Input((8,))
    model = tf.keras.Model(inputs, lq.layers.QuantDense(4, **BINARY)(inputs))
    with pytest.raises(TypeError, match="needs a tf.keras.Model, got list"):
        convert([model])
    with pytest.raises(TypeError, match="unknown option\\(s\\) 'quantize', 'targett'"):
        convert(model, targett="arm", quantize=True)
    with pytest.raises(ValueError, match="target.*got riscv"):
        convert(model, target="riscv")
    with pytest.raises(ValueError, match="inference_input_type"):
        convert(model, inference_input_type=tf.float16)
    with pytest.raises(ValueError, match="batch_size"):
        convert(model, batch_size=-1)


def test_batch_size_is_kept_or_set_and_options_pass_to_lce():
    inputs = tf.keras.Input((8,), batch_size=2)
    model = tf.keras.Model(inputs, lq.layers.QuantDense(4, **BINARY)(inputs))
    assert lce_interpreter_class()(convert(model)).input_shapes == [(2, 8)]
    with pytest.warns(UserWarning, match="experimental_default_int8_range"):  # LCE's own advice
        int8 = convert(model, batch_size=3, inference_input_type=tf.int8, inference_output_type=tf.int8,
                       experimental_default_int8_range=(-3.0, 3.0))
    interpreter = lce_interpreter_class()(int8)
    assert interpreter.input_shapes == [(3, 8)] and interpreter.input_types == [np.int8]
    assert op_counts(int8)["LceBconv2d"] == 1
    with pytest.warns(UserWarning) as caught:  # nothing quantized: LCE keeps float32 inputs
        convert(model, inference_input_type=tf.int8)
    assert any("inference_input_type=int8 was asked, but the flatbuffer's inputs stay float32" in str(w.message)
               for w in caught)


def test_user_model_is_untouched_by_convert():
    inputs = tf.keras.Input((32,))
    model = tf.keras.Model(inputs, lq.layers.QuantDense(8, **BINARY)(inputs))
    layers, weights = list(model.layers), [w.copy() for w in model.get_weights()]
    convert(model)
    assert model.layers == layers and type(model.layers[-1]) is lq.layers.QuantDense
    for before, after in zip(weights, model.get_weights()):
        np.testing.assert_array_equal(before, after)


# ---------------------------------------------------------------- property: random binary stacks


@st.composite
def binary_stacks(draw):
    """A random stack of binary layers (plus BN / Flatten / Reshape) on a (1, 6, 6, C) input."""
    channels = draw(st.sampled_from([3, 32, 40]))
    shape = [6, 6, channels]  # without the batch axis
    steps = []
    for _ in range(draw(st.integers(1, 4))):
        options = ["dense", "bn"] + {3: ["conv2d", "to_sequence", "flatten"], 2: ["conv1d", "flatten"], 1: []}[
            len(shape)]
        kind = draw(st.sampled_from(options))
        filters = draw(st.sampled_from([8, 32, 33]))
        if kind == "conv2d":
            kernel = draw(st.sampled_from([1, 3]))
            padding = draw(st.sampled_from(["valid", "same"]))
            strides = draw(st.sampled_from([1, 2]))
            if padding == "valid" and min(shape[:2]) < kernel:
                continue
            steps.append(("conv2d", dict(filters=filters, kernel_size=kernel, padding=padding, strides=strides)))
            size = [(s + strides - 1) // strides if padding == "same" else (s - kernel) // strides + 1
                    for s in shape[:2]]
            shape = [*size, filters]
        elif kind == "conv1d":
            kernel = draw(st.sampled_from([1, 2, 3]))
            padding = draw(st.sampled_from(["valid", "same"]))
            strides, dilation = draw(st.sampled_from([(1, 1), (2, 1), (1, 2)]))
            span = (kernel - 1) * dilation + 1
            if padding == "valid" and shape[0] < span:
                continue
            steps.append(("conv1d", dict(filters=filters, kernel_size=kernel, padding=padding, strides=strides,
                                         dilation_rate=dilation)))
            length = (shape[0] + strides - 1) // strides if padding == "same" else (shape[0] - span) // strides + 1
            shape = [length, filters]
        elif kind == "dense":
            steps.append(("dense", dict(units=filters)))
            shape = [*shape[:-1], filters]
        elif kind == "to_sequence":
            steps.append(("reshape", dict(target_shape=(shape[0] * shape[1], shape[2]))))
            shape = [shape[0] * shape[1], shape[2]]
        elif kind == "flatten":
            steps.append(("flatten", {}))
            shape = [int(np.prod(shape))]
        else:
            steps.append(("bn", {}))
    return channels, steps


def _build(channels, steps):
    inputs = tf.keras.Input((6, 6, channels), batch_size=1)
    x, binary = inputs, 0
    for kind, options in steps:
        if kind in ("conv2d", "conv1d", "dense"):
            binary += 1
            same = {"pad_values": 1.0} if options.get("padding") == "same" else {}
            layer = {"conv2d": lq.layers.QuantConv2D, "conv1d": lq.layers.QuantConv1D,
                     "dense": lq.layers.QuantDense}[kind]
            x = layer(**options, **same, **BINARY)(x)
        elif kind == "reshape":
            x = tf.keras.layers.Reshape(**options)(x)
        elif kind == "flatten":
            x = tf.keras.layers.Flatten()(x)
        else:
            x = tf.keras.layers.BatchNormalization()(x)
    return tf.keras.Model(inputs, x), binary


def _has_binary_layer(stack) -> bool:
    return any(kind in ("conv2d", "conv1d", "dense") for kind, _ in stack[1])


@settings(max_examples=8, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(binary_stacks().filter(_has_binary_layer))
def test_random_binary_stacks_are_bitpacked_and_agree(stack):
    tf.keras.backend.clear_session()
    model, binary = _build(*stack)
    randomize(model, seed=len(stack[1]))
    flatbuffer = convert(model, strict=True)
    counts = op_counts(flatbuffer)
    assert counts["LceBconv2d"] == binary, (stack, counts)
    assert not FLOAT_MATMULS & set(counts), (stack, counts)
    assert_matches_keras(model, flatbuffer, samples=2)


@pytest.mark.parametrize("kernels", ["lce", "float"])
@pytest.mark.parametrize("batch_size", [None, 1, 3])
def test_files_keep_the_keras_input_and_output_names(kernels, batch_size):
    """Runtimes feed files by signature name, and a file's input order need not be the model's."""
    from keras_bnn.tflite.runtimes import open_runtime

    token, state = tf.keras.Input((8,), name="token"), tf.keras.Input((16,), name="state_0")
    logits = lq.layers.QuantDense(4, name="logits", **BINARY)(tf.keras.layers.Concatenate()([token, state]))
    new_state = lq.layers.QuantDense(16, name="new_state_0", **BINARY)(state)
    model = tf.keras.Model([token, state], [logits, new_state])
    runtime = open_runtime(convert(model, kernels=kernels, batch_size=batch_size),
                           "lce" if kernels == "lce" else "litert")
    assert sorted(detail.name for detail in runtime.inputs) == ["state_0", "token"]
    assert sorted(detail.name for detail in runtime.outputs) == ["logits", "new_state_0"]
