"""keras_bnn.models.summary against larq.models.summary: the same tables, character for character, for the same
models (larq's layers and the tf-keras XNOR/Bi-Real layers, in one larq process); on every backend."""

import keras
import pytest

from keras_bnn import layers
from keras_bnn.models import ModelProfile, summary
from tests.larq_reference import run_larq

# Each model is written once, as code that builds it from a namespace `L` of quantized layers and `K` (Keras):
# larq's layers and tf.keras in the larq process, keras_bnn's layers and Keras 3 here.
MODELS = {
    "image": """
B = dict(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip")
model = K.Sequential([
    K.Input((8, 8, 3)),
    L.QuantConv2D(8, 3, kernel_quantizer="ste_sign", kernel_constraint="weight_clip", name="conv"),
    K.layers.BatchNormalization(name="norm"),
    K.layers.MaxPool2D(name="max_pool"),
    L.QuantDepthwiseConv2D(3, padding="same", pad_values=1.0, input_quantizer="ste_sign",
                           depthwise_quantizer="ste_sign", depth_multiplier=2, name="depthwise"),
    L.QuantSeparableConv2D(8, 2, input_quantizer="ste_sign", depthwise_quantizer="ste_sign",
                           pointwise_quantizer="ste_sign", name="separable"),
    L.QuantConv2DTranspose(4, 2, strides=2, name="transpose", **B),
    K.layers.AveragePooling2D(2, name="avg_pool"),
    L.QuantConv2D(6, 1, input_quantizer="ste_tern", kernel_quantizer="ste_tern", name="ternary"),
    K.layers.Flatten(name="flatten"),
    L.QuantDense(10, input_quantizer="ste_sign", kernel_quantizer="magnitude_aware_sign", name="binary_dense"),
    K.layers.Dense(3, name="dense"),
    K.layers.Activation("softmax", name="softmax"),
], name="image")
""",
    "sequence": """
inputs = K.Input((16, 4), name="tokens")
x = L.QuantConv1D(8, 3, padding="same", pad_values=1.0, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                  name="conv1d")(inputs)
x = L.QuantSeparableConv1D(8, 3, input_quantizer="ste_sign", depthwise_quantizer="ste_sign",
                           pointwise_quantizer="ste_sign", name="separable1d")(x)
x = K.layers.MaxPool1D(name="pool1d")(x)
x = K.layers.Flatten(name="flat")(x)
head = K.Sequential([K.Input((56,)), L.QuantDense(4, input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                                                  name="head_binary"), K.layers.Dense(2, name="head_dense")],
                    name="head")
model = K.Model(inputs, head(x), name="sequence")
""",
    "bnn_blocks": """
inputs = K.Input((8, 8, 16), name="image")
x = L.BiRealConv2D(16, name="bireal")(inputs)
x = L.BiRealConv2D(32, strides=2, name="bireal_down")(x)
x = L.XNORConv2D(32, 3, name="xnor")(x)
x = L.XNORConv2D(8, 1, input_scaling=True, name="xnor_scaled")(x)
x = K.layers.GlobalAveragePooling2D(name="gap")(x)
model = K.Model(inputs, K.layers.Dense(3, name="classifier")(x), name="bnn_blocks")
""",
}

LARQ_SCRIPT = """
from keras_bnn.legacy import layers as legacy_layers
K = tf.keras
class L:
    pass
for name in dir(larq.layers):
    setattr(L, name, getattr(larq.layers, name))
L.BiRealConv2D, L.XNORConv2D = legacy_layers.BiRealConv2D, legacy_layers.XNORConv2D
for model_name, code in {models!r}.items():
    namespace = dict(K=K, L=L)
    exec(code, namespace)
    for include_macs in (True, False):
        printed = []
        larq.models.summary(namespace["model"], print_fn=printed.append, include_macs=include_macs)
        outputs[f"{{model_name}}/{{include_macs}}"] = "\\n".join(printed)
"""


@pytest.fixture(scope="module")
def larq_summaries():
    return run_larq(LARQ_SCRIPT.format(models=MODELS))


def _build(name):
    namespace = {"K": keras, "L": layers}
    exec(MODELS[name], namespace)
    return namespace["model"]


@pytest.mark.parametrize("name", sorted(MODELS))
def test_summary_equals_larq(name, larq_summaries):
    model = _build(name)
    for include_macs in (True, False):
        printed = []
        summary(model, print_fn=printed.append, include_macs=include_macs)
        assert "\n".join(printed) == str(larq_summaries[f"{name}/{include_macs}"])


def test_profile_counts_of_binary_blocks():
    """The legacy test's counts: binary kernels as 1-bit parameters and binary MACs; the blocks' 32-bit weights."""
    model = _build("bnn_blocks")
    profiles = {p.name: p for p in ModelProfile(model).layer_profiles}
    bireal, down, xnor = profiles["bireal"], profiles["bireal_down"], profiles["xnor"]
    assert bireal.weight_count(bitwidth=1) == 3 * 3 * 16 * 16
    assert bireal.op_count("mac", 1) == 3 * 3 * 16 * 16 * 8 * 8
    assert bireal.weight_count(bitwidth=32) == 4 * 16
    assert down.weight_count(bitwidth=1) == 3 * 3 * 16 * 32
    assert down.op_count("mac", 1) == 3 * 3 * 16 * 32 * 4 * 4
    assert down.weight_count(bitwidth=32) == 16 * 32 + 2 * 4 * 32
    assert xnor.weight_count(bitwidth=1) == 3 * 3 * 32 * 32 and xnor.weight_count(bitwidth=32) == 0
    assert xnor.op_count("mac", 1) == 3 * 3 * 32 * 32 * 2 * 2
    assert xnor.input_precision == bireal.input_precision == 1
    assert profiles["gap"].op_count("mac") is None


def test_unbuilt_model_is_refused():
    with pytest.raises(ValueError, match="has not yet been built"):
        summary(keras.Sequential([layers.QuantDense(2)]))
