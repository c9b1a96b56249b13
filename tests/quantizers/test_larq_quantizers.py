"""keras_bnn.quantizers against larq 0.14: forward values and gradients (larq run once, in a subprocess, on the
same inputs), names, configs, larq's serialized forms, and argument validation; on every Keras backend."""

import json

import keras
import numpy as np
import pytest
from keras import ops

import keras_bnn
from keras_bnn import quantizers
from tests.larq_reference import run_larq

# Every larq quantizer, with default and non-default arguments: case -> (class name, kwargs, input name).
CASES = {
    "SteSign": ("SteSign", {}, "x"),
    "SteSign_clip_0.5": ("SteSign", {"clip_value": 0.5}, "x"),
    "SteSign_clip_None": ("SteSign", {"clip_value": None}, "x"),
    "ApproxSign": ("ApproxSign", {}, "x"),
    "SwishSign": ("SwishSign", {}, "x"),
    "SwishSign_beta_2.5": ("SwishSign", {"beta": 2.5}, "x"),
    "SteHeaviside": ("SteHeaviside", {}, "x"),
    "SteHeaviside_clip_2": ("SteHeaviside", {"clip_value": 2.0}, "x"),
    "MagnitudeAwareSign": ("MagnitudeAwareSign", {}, "x"),
    "MagnitudeAwareSign_clip_0.5": ("MagnitudeAwareSign", {"clip_value": 0.5}, "x"),
    "MagnitudeAwareSign_rank_1": ("MagnitudeAwareSign", {}, "vector"),
    "SteTern": ("SteTern", {}, "x"),
    "SteTern_threshold_0.5_clip_2": ("SteTern", {"threshold_value": 0.5, "clip_value": 2.0}, "x"),
    "SteTern_twn": ("SteTern", {"ternary_weight_networks": True, "clip_value": None}, "x"),
    "DoReFa": ("DoReFa", {}, "x"),
    "DoReFa_3_bit": ("DoReFa", {"k_bit": 3}, "x"),
    "DoReFa_weights": ("DoReFa", {"mode": "weights"}, "x"),
    "DoReFa_weights_4_bit": ("DoReFa", {"k_bit": 4, "mode": "weights"}, "x"),
    "NoOp": ("NoOp", {"precision": 1}, "x"),
}
# Pseudo-gradients computed with tanh/cosh or |x| agree up to rounding: (rtol, atol). The backends' tanh and cosh
# differ by an ulp or two, and two formulas cancel: SwishSign's 2 - bx·tanh(bx/2) near bx = 2.4, DoReFa's weight
# gradient 1 - tanh(x)^2 at large |x|; there an ulp is ~1e-6 of the largest gradient (|dx| <= 6).
# Every other gradient is bit for bit.
ROUNDED_GRADIENTS = {"ApproxSign": (1e-6, 0.0), "SwishSign": (1e-6, 2e-6), "DoReFa_weights": (1e-6, 2e-6),
                     "DoReFa_weights_4_bit": (1e-6, 2e-6)}
LARQ_NAMES = ["ste_sign", "approx_sign", "swish_sign", "ste_heaviside", "magnitude_aware_sign", "ste_tern",
              "dorefa_quantizer", "SteSign", "ApproxSign", "SwishSign", "SteHeaviside", "MagnitudeAwareSign",
              "SteTern", "DoReFa", "DoReFaQuantizer"]


def make_inputs():
    """Random values on a 1/256 grid (any summation order adds them exactly: means agree across backends), and
    the edge values: 0, -0, ±1, ±clip values, ±thresholds, DoReFa's level boundaries."""
    rng = np.random.default_rng(0)
    x = np.round(rng.normal(scale=1.2, size=(3, 4, 5)) * 256) / 256
    edges = [0.0, -0.0, 1.0, -1.0, 0.5, -0.5, 2.0, -2.0, 0.05, -0.05, 1 / 6, 0.5 / 7, 3.0, -3.0, 1e-8, -1e-8]
    x.ravel()[: len(edges)] = edges
    vector = x[0, 0].copy()
    return {"x": x.astype(np.float32), "vector": vector.astype(np.float32),
            "up_x": rng.uniform(-2, 2, size=x.shape).astype(np.float32),
            "up_vector": rng.uniform(-2, 2, size=vector.shape).astype(np.float32)}


LARQ_SCRIPT = """
import json
CASES = {cases!r}
for case, (class_name, kwargs, name) in CASES.items():
    quantizer = getattr(larq.quantizers, class_name)(**kwargs)
    x = tf.constant(inputs[name])
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = quantizer(x)
        loss = tf.reduce_sum(tf.constant(inputs["up_" + name]) * y)
    outputs[case + "/y"] = y.numpy()
    outputs[case + "/dx"] = tape.gradient(loss, x).numpy()
    outputs[case + "/config"] = json.dumps(quantizer.get_config())
    outputs[case + "/precision"] = json.dumps(quantizer.precision)
    outputs[case + "/serialized"] = json.dumps(larq.quantizers.serialize(quantizer))
    outputs[case + "/legacy"] = json.dumps(larq.quantizers.serialize(quantizer, use_legacy_format=True))
for name in {names!r}:
    outputs["get/" + name] = type(larq.quantizers.get(name)).__name__
outputs["function/ste_sign"] = json.dumps(larq.quantizers.serialize(larq.quantizers.ste_sign))
"""


@pytest.fixture(scope="module")
def larq_run():
    """larq's outputs, gradients, configs and names for every case (one TensorFlow start for the module)."""
    inputs = make_inputs()
    return inputs, run_larq(LARQ_SCRIPT.format(cases=CASES, names=LARQ_NAMES), **inputs)


def base_free(config):
    """A quantizer's own config entries (without the Keras layer's name, trainable, dtype)."""
    return {k: v for k, v in config.items() if k not in ("name", "trainable", "dtype")}


# (One test per check, looping over the cases: each test's set-up clears two Keras sessions, ~1.5 s.)


def test_forward_and_gradient_equal_larq(larq_run, gradients):
    inputs, larq = larq_run
    for case, (class_name, kwargs, name) in CASES.items():
        quantizer = getattr(quantizers, class_name)(**kwargs)
        y, dx, _ = gradients(quantizer, inputs[name], inputs["up_" + name])
        assert y.dtype == np.float32, case
        np.testing.assert_array_equal(y, larq[case + "/y"], err_msg=case)
        tolerance = ROUNDED_GRADIENTS.get(case, ROUNDED_GRADIENTS.get(class_name))
        if tolerance:
            np.testing.assert_allclose(dx, larq[case + "/dx"], rtol=tolerance[0], atol=tolerance[1], err_msg=case)
        else:
            np.testing.assert_array_equal(dx, larq[case + "/dx"], err_msg=case)
        assert quantizer.precision == json.loads(str(larq[case + "/precision"])), case


def test_config_keys_and_values_equal_larq(larq_run):
    _, larq = larq_run
    for case, (class_name, kwargs, _) in CASES.items():
        ours = getattr(quantizers, class_name)(**kwargs).get_config()
        theirs = json.loads(str(larq[case + "/config"]))
        assert sorted(ours) == sorted(theirs), case
        assert base_free(ours) == base_free(theirs), case


def test_larq_serialized_quantizers_deserialize(larq_run):
    _, larq = larq_run
    for case, (class_name, _, _) in CASES.items():
        for form in ("serialized", "legacy"):
            config = json.loads(str(larq[f"{case}/{form}"]))
            assert ("module" in config) == (form == "serialized")
            revived = quantizers.deserialize(config)
            assert type(revived) is getattr(quantizers, class_name), (case, form)
            assert base_free(revived.get_config()) == base_free(json.loads(str(larq[case + "/config"])))
            assert type(quantizers.get(config)) is type(revived)


def test_names_resolve_to_the_classes_larq_resolves(larq_run):
    _, larq = larq_run
    for name in LARQ_NAMES:
        assert type(quantizers.get(name)).__name__ == str(larq["get/" + name]), name
    assert quantizers.DoReFaQuantizer is quantizers.DoReFa and quantizers.NoOpQuantizer is quantizers.NoOp
    # larq has no alias for NoOp; its class name needs a precision, as in larq.
    assert "no_op" not in quantizers.known_quantizer_names()
    with pytest.raises(TypeError, match="precision"):
        quantizers.get("NoOp")


def test_larq_serialized_function_deserializes(larq_run):
    _, larq = larq_run
    assert quantizers.deserialize(json.loads(str(larq["function/ste_sign"]))) is quantizers.ste_sign


X_EDGES = np.array([-3.0, -2.0, -1.0001, -1.0, -0.999, -0.5, -0.0, 0.0, 1e-8, 0.5, 0.999, 1.0, 1.0001, 2.0],
                   np.float32)


def test_ste_sign_gradient_is_exactly_the_clipped_upstream(gradients):
    upstream = np.linspace(-1.5, 2.5, X_EDGES.size).astype(np.float32)
    for quantizer in (quantizers.ste_sign, quantizers.get("ste_sign"), quantizers.SteSign()):
        y, dx, _ = gradients(quantizer, X_EDGES, upstream)
        np.testing.assert_array_equal(y, np.where(X_EDGES >= 0, 1.0, -1.0))
        np.testing.assert_array_equal(dx, upstream * (np.abs(X_EDGES) <= 1))


def test_quantizers_work_on_variables_and_inside_a_compiled_function():
    variable = keras.Variable(X_EDGES)
    np.testing.assert_array_equal(ops.convert_to_numpy(quantizers.SteSign()(variable)),
                                  np.where(X_EDGES >= 0, 1.0, -1.0))
    model = keras.Sequential([keras.Input((X_EDGES.size,)), quantizers.SteTern(ternary_weight_networks=True)])
    predicted = model.predict(X_EDGES[None], verbose=0)
    eager = ops.convert_to_numpy(quantizers.ste_tern(X_EDGES[None], ternary_weight_networks=True))
    np.testing.assert_array_equal(predicted, eager)


def test_every_name_round_trips_through_serialize():
    for name in sorted(set(quantizers.known_quantizer_names()) - {"NoOp", "NoOpQuantizer"}):
        quantizer = quantizers.get(name)
        config = quantizers.serialize(quantizer)
        assert config["registered_name"] == f"keras_bnn>{type(quantizer).__name__}", name
        revived = quantizers.deserialize(json.loads(json.dumps(config)))
        assert type(revived) is type(quantizer) and revived.get_config() == quantizer.get_config(), name
        assert quantizers.get(config).get_config() == quantizer.get_config(), name


def test_functions_and_none_serialize():
    assert quantizers.serialize(None) is None and quantizers.get(None) is None
    for function in (quantizers.ste_sign, quantizers.approx_sign, quantizers.swish_sign, quantizers.ste_tern,
                     quantizers.ste_heaviside, quantizers.magnitude_aware_sign, quantizers.hard_tanh):
        assert quantizers.deserialize(json.loads(json.dumps(quantizers.serialize(function)))) is function
        assert quantizers.get(function) is function


def test_unknown_names_and_bad_identifiers():
    with pytest.raises(ValueError, match="no_such_quantizer") as error:
        quantizers.get("no_such_quantizer")
    for name in ("ste_sign", "SteSign", "dorefa_quantizer", "stochastic_sign", "elastic_sign"):
        assert name in str(error.value)
    with pytest.raises(TypeError, match="42"):
        quantizers.get(42)
    with pytest.raises(ValueError, match="already registered to SteSign"):
        quantizers.register_alias("ste_sign", quantizers.ApproxSign)
    with pytest.raises(TypeError, match="non-empty string"):
        quantizers.register_alias("", quantizers.ApproxSign)
    quantizers.register_alias("ste_sign", quantizers.SteSign)  # the same class again is no error


BAD_ARGUMENTS = [
    (lambda: quantizers.SteSign(clip_value=0.0), ValueError, "clip_value"),
    (lambda: quantizers.SteSign(clip_value=-1), ValueError, "-1"),
    (lambda: quantizers.SteSign(clip_value="1"), ValueError, "'1'"),
    (lambda: quantizers.SteHeaviside(clip_value=float("nan")), ValueError, "nan"),
    (lambda: quantizers.MagnitudeAwareSign(clip_value=True), ValueError, "True"),
    (lambda: quantizers.SwishSign(beta=0), ValueError, "beta"),
    (lambda: quantizers.SwishSign(beta="5"), ValueError, "'5'"),
    (lambda: quantizers.SteTern(threshold_value=-0.1), ValueError, "threshold_value"),
    (lambda: quantizers.SteTern(ternary_weight_networks=1), TypeError, "ternary_weight_networks"),
    (lambda: quantizers.SteTern(clip_value=0), ValueError, "clip_value"),
    (lambda: quantizers.DoReFa(mode="bias"), ValueError, "Invalid DoReFa quantizer mode bias"),
    (lambda: quantizers.DoReFa(k_bit=0), ValueError, "k_bit"),
    (lambda: quantizers.DoReFa(k_bit=2.0), ValueError, "2.0"),
    (lambda: quantizers.NoOp(precision=0), ValueError, "precision"),
    (lambda: quantizers.NoOp(precision="1"), ValueError, "'1'"),
    (lambda: quantizers.SteSign(metrics="flip_ratio"), TypeError, "metrics"),
]


def test_bad_arguments_raise():
    for make, error, message in BAD_ARGUMENTS:
        with pytest.raises(error, match=message):
            make()


def test_is_binary():
    for name in ("ste_sign", "approx_sign", "swish_sign", "magnitude_aware_sign", "ste_heaviside",
                 "stochastic_sign", "elastic_sign", "learnable_threshold_sign"):
        assert quantizers.is_binary(name), name
    assert quantizers.is_binary(quantizers.DoReFa(k_bit=1))
    for quantizer in (None, "ste_tern", "dorefa_quantizer", quantizers.NoOp(precision=1), quantizers.hard_tanh,
                      keras.activations.relu, keras.layers.Dense(2), 3.0):
        assert not quantizers.is_binary(quantizer), quantizer
    assert quantizers.is_binary(lambda x: ops.where(x >= 0, 1.0, -1.0))
    assert not quantizers.is_binary(lambda x: ops.where(x >= 0, 1.0, 0.0))
    assert keras_bnn.quantizers.get_kernel_quantizer("ste_sign").precision == 1
