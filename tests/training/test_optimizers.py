"""Bop and CaseOptimizer against larq's (same weights and gradients), the recipes against their formulas, fit,
saving (state restored, on another backend too)."""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest

import keras_bnn
from keras_bnn.training import (
    AdamW,
    BinaryConnect,
    Bop,
    CaseOptimizer,
    binary_connect,
    case_optimizer,
    real_optimizer,
)
from tests.larq_reference import run_larq
from tests.training.gradients import loss_and_gradients, numpy

BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7
RNG = np.random.default_rng(0)
KERNEL = np.where(RNG.random((4, 3)) > 0.5, 1.0, -1.0).astype(np.float32)
BIAS = RNG.normal(size=3).astype(np.float32)
GRADIENTS = [(RNG.normal(scale=0.1, size=(4, 3)).astype(np.float32), RNG.normal(size=3).astype(np.float32))
             for _ in range(4)]
THRESHOLD, GAMMA, LEARNING_RATE = 0.02, 0.5, 0.01

_LARQ_SCRIPT = """
layer = larq.layers.QuantDense(3, kernel_quantizer="ste_sign", kernel_constraint="weight_clip")
layer.build((None, 4))
layer.kernel.assign(inputs["kernel"])
layer.bias.assign(inputs["bias"])
bop = larq.optimizers.Bop(threshold=float(inputs["threshold"]), gamma=float(inputs["gamma"]))
optimizer = larq.optimizers.CaseOptimizer((larq.optimizers.Bop.is_binary_variable, bop),
                                          default_optimizer=tf.keras.optimizers.legacy.Adam(float(inputs["lr"])))
kernels, biases, moments = [], [], []
for step in range(len(inputs["g_kernel"])):
    optimizer.apply_gradients([(tf.constant(inputs["g_kernel"][step]), layer.kernel),
                               (tf.constant(inputs["g_bias"][step]), layer.bias)])
    kernels.append(layer.kernel.numpy()); biases.append(layer.bias.numpy())
    moments.append(bop.get_slot(layer.kernel, "m").numpy())
outputs["kernels"], outputs["biases"], outputs["moments"] = kernels, biases, moments

# Bop alone with a gamma schedule and a threshold schedule.
w = tf.Variable(inputs["kernel"])
scheduled = larq.optimizers.Bop(
    threshold=tf.keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=1, decay_rate=0.5),
    gamma=tf.keras.optimizers.schedules.ExponentialDecay(0.5, decay_steps=1, decay_rate=0.8))
scheduled_weights = []
for step in range(len(inputs["g_kernel"])):
    scheduled.apply_gradients([(tf.constant(inputs["g_kernel"][step]), w)])
    scheduled_weights.append(w.numpy())
outputs["scheduled"] = scheduled_weights
"""


@pytest.fixture(scope="module")
def larq_outputs():
    return run_larq(_LARQ_SCRIPT, kernel=KERNEL, bias=BIAS, threshold=np.float32(THRESHOLD), gamma=np.float32(GAMMA),
                    lr=np.float32(LEARNING_RATE), g_kernel=np.stack([g for g, _ in GRADIENTS]),
                    g_bias=np.stack([g for _, g in GRADIENTS]))


def _dense(**kwargs):
    layer = keras_bnn.layers.QuantDense(3, **kwargs)
    layer.build((None, 4))
    return layer


def test_case_optimizer_with_bop_and_adam_equals_larq(larq_outputs):
    layer = _dense(kernel_quantizer="ste_sign", kernel_constraint="weight_clip")
    layer.kernel.assign(KERNEL)
    layer.bias.assign(BIAS)
    bop = Bop(threshold=THRESHOLD, gamma=GAMMA)
    optimizer = CaseOptimizer((Bop.is_binary_variable, bop), default_optimizer=keras.optimizers.Adam(LEARNING_RATE))
    flips = 0
    for step, (g_kernel, g_bias) in enumerate(GRADIENTS):
        before = numpy(layer.kernel)
        optimizer.apply([keras.ops.convert_to_tensor(g_kernel), keras.ops.convert_to_tensor(g_bias)],
                        [layer.kernel, layer.bias])
        flips += int(np.sum(numpy(layer.kernel) != before))
        np.testing.assert_array_equal(numpy(layer.kernel), larq_outputs["kernels"][step])
        np.testing.assert_allclose(numpy(bop._momentums[0]), larq_outputs["moments"][step], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(numpy(layer.bias), larq_outputs["biases"][step], rtol=1e-6, atol=1e-6)
    assert 0 < flips < KERNEL.size * len(GRADIENTS)  # both branches of Bop's rule are exercised
    assert optimizer.var_opt_mapping == [0, 1]
    assert int(numpy(optimizer.iterations)) == len(GRADIENTS) == int(numpy(bop.iterations))


def test_bop_with_schedules_equals_larq(larq_outputs):
    w = keras.Variable(KERNEL)
    bop = Bop(threshold=keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=1, decay_rate=0.5),
              gamma=keras.optimizers.schedules.ExponentialDecay(0.5, decay_steps=1, decay_rate=0.8))
    for step, (g_kernel, _) in enumerate(GRADIENTS):
        bop.apply([keras.ops.convert_to_tensor(g_kernel)], [w])
        np.testing.assert_array_equal(numpy(w), larq_outputs["scheduled"][step])
    restored = Bop.from_config(bop.get_config())
    assert isinstance(restored._threshold, keras.optimizers.schedules.ExponentialDecay)
    assert restored.get_config() == bop.get_config()


def test_bop_update_formula_and_config():
    w = keras.Variable([1.0, -1.0, 1.0, -1.0])
    bop = Bop(threshold=0.1, gamma=0.5)
    bop.apply([keras.ops.convert_to_tensor([1.0, 1.0, -1.0, -0.1])], [w])
    # m = 0.5 g = [0.5, 0.5, -0.5, -0.05]; w·m = [0.5, -0.5, -0.5, 0.05]: only w·m > 0.1 flips.
    assert numpy(w).tolist() == [-1.0, -1.0, 1.0, -1.0]
    config = bop.get_config()
    assert config["gamma"] == 0.5 and config["threshold"] == 0.1 and "learning_rate" not in config
    assert float(numpy(Bop.from_config(config).gamma)) == 0.5


def _adam(values, grads, lr, state, weight_decay=0.0):
    """Reference Adam (bias correction in the step size, ε added to sqrt(v)), decoupled decay first."""
    m, v, t = state
    t += 1
    m = BETA_1 * m + (1 - BETA_1) * grads
    v = BETA_2 * v + (1 - BETA_2) * grads**2
    lr_t = lr * np.sqrt(1 - BETA_2**t) / (1 - BETA_1**t)
    values = values - lr * weight_decay * values - lr_t * m / (np.sqrt(v) + EPSILON)
    return values, (m, v, t)


def test_adamw_decoupled_weight_decay_matches_formula():
    variable = keras.Variable([0.5, -1.0, 2.0])
    optimizer = AdamW(learning_rate=0.1, weight_decay=0.2)
    expected, state = numpy(variable).astype(np.float64), (np.zeros(3), np.zeros(3), 0)
    for grads in ([0.1, -0.3, 0.0], [0.2, 0.1, -0.4]):
        optimizer.apply([keras.ops.convert_to_tensor(grads)], [variable])
        expected, state = _adam(expected, np.array(grads), 0.1, state, weight_decay=0.2)
    np.testing.assert_allclose(numpy(variable), expected, rtol=1e-5)
    assert real_optimizer("adamw").weight_decay == pytest.approx(1e-4)


def test_binary_connect_step_binarizes_forward_and_clips_latent_weights():
    recipe = binary_connect(learning_rate=0.01)
    layer = _dense(use_bias=False, **recipe.layer_kwargs())
    w0 = np.array([[0.995, -0.2, 0.4], [-0.999, 0.3, -0.5], [0.1, 0.996, -0.7], [-0.6, 0.05, 0.998]], np.float32)
    layer.kernel.assign(w0)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 4)).astype(np.float32)
    y = rng.normal(size=(6, 3)).astype(np.float32)
    target = keras.ops.convert_to_tensor(y)
    loss, (grad,) = loss_and_gradients(lambda: keras.ops.mean(keras.ops.square(layer(x) - target)), [layer.kernel])
    binary = np.where(w0 >= 0, 1.0, -1.0)
    outputs = x @ binary
    np.testing.assert_allclose(loss, np.mean((outputs - y) ** 2), rtol=1e-6)
    expected_grad = x.T @ (2 * (outputs - y) / outputs.size)  # straight through: |w| <= 1 everywhere
    np.testing.assert_allclose(grad, expected_grad, rtol=1e-5, atol=1e-6)
    recipe.optimizer().apply([keras.ops.convert_to_tensor(grad)], [layer.kernel])
    updated, _ = _adam(w0, grad, 0.01, (np.zeros_like(w0), np.zeros_like(w0), 0))
    assert np.any(np.abs(updated) > 1.0)  # some weights were pushed past the bound and clipped
    np.testing.assert_allclose(numpy(layer.kernel), np.clip(updated, -1.0, 1.0), rtol=1e-5, atol=1e-6)


def test_binary_connect_stochastic_uses_stochastic_sign():
    kwargs = binary_connect(stochastic=True, clip_value=0.5).layer_kwargs()
    assert isinstance(kwargs["kernel_quantizer"], keras_bnn.quantizers.StochasticSign)
    assert kwargs["kernel_constraint"].clip_value == 0.5
    assert isinstance(binary_connect(), BinaryConnect)


@pytest.mark.parametrize("kwargs, error", [({"clip_value": 0.0}, ValueError), ({"learning_rate": -1.0}, ValueError),
                                           ({"stochastic": "yes"}, TypeError)])
def test_binary_connect_bad_arguments(kwargs, error):
    with pytest.raises(error):
        binary_connect(**kwargs)


def test_bad_arguments():
    real_model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="binary"):
        case_optimizer(real_model)
    with pytest.raises(ValueError, match="not built"):
        case_optimizer(keras.Sequential([keras.layers.Dense(2)]))
    with pytest.raises(TypeError, match="Keras 3 optimizer"):
        case_optimizer(real=object())
    with pytest.raises(TypeError, match="Keras 3 optimizer"):
        case_optimizer(binary="bop")
    with pytest.raises(ValueError, match="Unknown optimizer"):
        real_optimizer("adamx")
    with pytest.raises(TypeError, match="callable predicate"):
        CaseOptimizer(("not callable", Bop()))
    with pytest.raises(TypeError, match="default_optimizer"):
        CaseOptimizer((Bop.is_binary_variable, Bop()), default_optimizer="adam")
    with pytest.raises(ValueError, match="gamma"):
        Bop(gamma=0.0)
    with pytest.raises(ValueError, match="threshold"):
        Bop(threshold=-1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        Bop(weight_decay=0.1)
    layer = _dense(kernel_quantizer="ste_sign")
    with pytest.raises(ValueError, match="claimed by multiple"):
        CaseOptimizer((Bop.is_binary_variable, Bop()), (lambda v: True, keras.optimizers.SGD())).build(
            [layer.kernel])
    with pytest.raises(ValueError, match="did not claim"):
        CaseOptimizer((Bop.is_binary_variable, Bop()), default_optimizer=keras.optimizers.SGD()).build([layer.bias])
    with pytest.warns(UserWarning, match="default_optimizer"):
        CaseOptimizer((Bop.is_binary_variable, Bop())).build([layer.kernel, layer.bias])


def _binary_model():
    binary = dict(kernel_quantizer="ste_sign", kernel_constraint="weight_clip", use_bias=False)
    return keras.Sequential([
        keras.Input((6, 6, 2)),
        keras_bnn.layers.QuantConv2D(8, 3, padding="same", pad_values=1.0, **binary),
        keras.layers.BatchNormalization(),
        keras.layers.Flatten(),
        keras_bnn.layers.QuantDense(16, input_quantizer="ste_sign", **binary),
        keras.layers.BatchNormalization(),
        keras.layers.Dense(3),
    ])


def test_case_optimizer_trains_a_binary_model_with_fit_saves_and_resumes(tmp_path):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(64, 6, 6, 2)).astype(np.float32)
    y = np.argmax(np.sign(x.reshape(64, -1)) @ rng.normal(size=(72, 3)), axis=1)  # a task a binary net can learn
    model = _binary_model()
    optimizer = case_optimizer(model, binary=Bop(threshold=1e-5, gamma=1e-2), real=keras.optimizers.Adam(1e-2))
    model.compile(optimizer, keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    initial = [numpy(layer.kernel) for layer in model.layers if isinstance(layer, keras_bnn.layers.QuantizerBase)]
    history = model.fit(x, y, epochs=6, batch_size=16, verbose=0)
    losses = history.history["loss"]
    assert losses[-1] < 0.5 * losses[0], losses
    assert optimizer.var_opt_mapping.count(0) == 2  # the two binary kernels go to Bop
    for before, layer in zip(initial, [l for l in model.layers if isinstance(l, keras_bnn.layers.QuantizerBase)]):
        after = numpy(layer.kernel)
        assert set(np.unique(after)) <= {-1.0, 1.0}  # Bop's weights are ±1
        assert np.any(np.sign(after) != np.sign(before))  # and Bop flipped some

    path = tmp_path / "bop.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    assert isinstance(restored.optimizer, CaseOptimizer) and restored.optimizer.var_opt_mapping == \
        optimizer.var_opt_mapping
    assert [type(o).__name__ for o in restored.optimizer.optimizers] == ["Bop", "Adam"]
    for saved, loaded in zip(optimizer.variables, restored.optimizer.variables):
        np.testing.assert_array_equal(numpy(saved), numpy(loaded))  # the state, Bop's m included, is restored
    resumed = restored.fit(x, y, epochs=1, batch_size=16, verbose=0).history["loss"][0]
    assert np.isfinite(resumed) and resumed < losses[0]


_LOAD_ELSEWHERE = """
import json, sys
import numpy as np
import keras
import keras_bnn.training
model = keras.models.load_model(sys.argv[1])
optimizer = model.optimizer
np.savez(sys.argv[2], *[keras.ops.convert_to_numpy(v) for v in optimizer.variables])
print(json.dumps({"backend": keras.backend.backend(), "mapping": optimizer.var_opt_mapping,
                  "optimizers": [type(o).__name__ for o in optimizer.optimizers]}))
"""


def test_case_optimizer_state_loads_on_another_backend(tmp_path):
    rng = np.random.default_rng(3)
    model = _binary_model()
    model.compile(case_optimizer(model, binary=Bop(threshold=1e-5, gamma=1e-2)),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(rng.normal(size=(16, 6, 6, 2)), rng.integers(0, 3, 16), batch_size=8, verbose=0)
    path = tmp_path / "model.keras"
    model.save(path)
    other = "tensorflow" if keras.backend.backend() == "jax" else "jax"
    script = tmp_path / "load.py"
    script.write_text(_LOAD_ELSEWHERE)
    env = {**os.environ, "KERAS_BACKEND": other, "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.run([sys.executable, str(script), str(path), str(tmp_path / "state.npz")], env=env,
                             capture_output=True, text=True, timeout=600, cwd=os.getcwd())
    assert process.returncode == 0, process.stderr[-4000:]
    loaded = json.loads(process.stdout.strip().splitlines()[-1])
    assert loaded == {"backend": other, "mapping": model.optimizer.var_opt_mapping, "optimizers": ["Bop", "Adam"]}
    with np.load(tmp_path / "state.npz") as state:
        values = [state[f"arr_{i}"] for i in range(len(state.files))]
    assert len(values) == len(model.optimizer.variables)
    for saved, restored in zip(model.optimizer.variables, values):
        np.testing.assert_array_equal(numpy(saved), restored)
