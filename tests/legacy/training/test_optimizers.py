"""Update rules of the optimizer helpers against their formulas, on tiny problems."""

import keras_bnn.legacy  # noqa: F401  (first: selects tf-keras)
import larq
import numpy as np
import pytest
import tensorflow as tf

from keras_bnn.legacy.quantizers import StochasticSign
from keras_bnn.legacy.training import AdamW, binary_connect, case_optimizer, real_optimizer

BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7


def _adam(values, grads, lr, state, weight_decay=0.0):
    """Reference Adam (TF's ApplyAdam: bias correction in the step size, ε added to sqrt(v))."""
    m, v, t = state
    t += 1
    m = BETA_1 * m + (1 - BETA_1) * grads
    v = BETA_2 * v + (1 - BETA_2) * grads**2
    lr_t = lr * np.sqrt(1 - BETA_2**t) / (1 - BETA_1**t)
    values = values - lr * weight_decay * values - lr_t * m / (np.sqrt(v) + EPSILON)
    return values, (m, v, t)


def _dense_model(**kwargs):
    model = tf.keras.Sequential([tf.keras.Input((4,)), larq.layers.QuantDense(3, **kwargs)])
    return model


def _loss_and_grads(model, x, y):
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(tf.square(model(x) - y))
    return loss, tape.gradient(loss, model.trainable_variables)


def test_case_optimizer_applies_bop_to_binary_kernel_and_adam_to_bias():
    model = _dense_model(kernel_quantizer="ste_sign", kernel_constraint="weight_clip", use_bias=True)
    kernel, bias = model.layers[0].kernel, model.layers[0].bias
    rng = np.random.default_rng(0)
    kernel.assign(np.where(rng.random((4, 3)) > 0.5, 1.0, -1.0).astype(np.float32))
    bias.assign(rng.normal(size=3).astype(np.float32))
    gamma, threshold, lr = 0.5, 0.05, 0.01
    optimizer = case_optimizer(model, binary=larq.optimizers.Bop(threshold=threshold, gamma=gamma),
                               real=tf.keras.optimizers.legacy.Adam(lr))
    x = rng.normal(size=(8, 4)).astype(np.float32)
    y = rng.normal(size=(8, 3)).astype(np.float32)

    w, b = kernel.numpy(), bias.numpy()
    m_bop = np.zeros_like(w)
    adam_state = (np.zeros_like(b), np.zeros_like(b), 0)
    flips = 0
    for _ in range(3):
        _, grads = _loss_and_grads(model, x, y)
        g_kernel, g_bias = (g.numpy() for g in grads)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        # Bop: m <- m + γ (g − m); flip where |m| > τ and sign(m) = sign(w).
        m_bop = m_bop + gamma * (g_kernel - m_bop)
        flip = (np.abs(m_bop) > threshold) & (np.sign(m_bop) == np.sign(w))
        flips += flip.sum()
        w = np.where(flip, -w, w)
        b, adam_state = _adam(b, g_bias, lr, adam_state)
        np.testing.assert_array_equal(kernel.numpy(), w)
        np.testing.assert_allclose(bias.numpy(), b, rtol=1e-5, atol=1e-7)
    assert flips > 0  # the test exercises both branches of Bop's rule


def test_adamw_decoupled_weight_decay_matches_formula():
    variable = tf.Variable([0.5, -1.0, 2.0])
    optimizer = AdamW(learning_rate=0.1, weight_decay=0.2)
    expected, state = variable.numpy(), (np.zeros(3), np.zeros(3), 0)
    for grads in ([0.1, -0.3, 0.0], [0.2, 0.1, -0.4]):
        optimizer.apply_gradients([(tf.constant(grads), variable)])
        expected, state = _adam(expected, np.array(grads), 0.1, state, weight_decay=0.2)
    np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-5)  # float32 vs float64 rounding
    restored = AdamW.from_config(optimizer.get_config())
    assert restored.get_config()["weight_decay"] == pytest.approx(0.2)


def test_adamw_sparse_gradient_decays_only_updated_rows():
    variable = tf.Variable([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    optimizer = AdamW(learning_rate=0.1, weight_decay=0.5)
    grads = tf.IndexedSlices(tf.constant([[0.0, 0.0]]), tf.constant([1]))
    optimizer.apply_gradients([(grads, variable)])
    np.testing.assert_allclose(variable.numpy(), [[1.0, 1.0], [1.9, 1.9], [3.0, 3.0]], rtol=1e-6)


def test_binary_connect_step_binarizes_forward_and_clips_latent_weights():
    recipe = binary_connect(learning_rate=0.01)
    model = _dense_model(use_bias=False, **recipe.layer_kwargs())
    kernel = model.layers[0].kernel
    w0 = np.array([[0.995, -0.2, 0.4], [-0.999, 0.3, -0.5], [0.1, 0.996, -0.7], [-0.6, 0.05, 0.998]], np.float32)
    kernel.assign(w0)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(6, 4)).astype(np.float32)
    y = rng.normal(size=(6, 3)).astype(np.float32)
    optimizer = recipe.optimizer()
    loss, grads = _loss_and_grads(model, x, y)
    # Forward with sign(w); the straight-through gradient is that of the binary weights.
    binary = np.where(w0 >= 0, 1.0, -1.0)
    outputs = x @ binary
    np.testing.assert_allclose(loss.numpy(), np.mean((outputs - y) ** 2), rtol=1e-6)
    expected_grad = x.T @ (2 * (outputs - y) / outputs.size)
    np.testing.assert_allclose(grads[0].numpy(), expected_grad, rtol=1e-5, atol=1e-7)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    updated, _ = _adam(w0, expected_grad, 0.01, (np.zeros_like(w0), np.zeros_like(w0), 0))
    expected = np.clip(updated, -1.0, 1.0)
    assert np.any(np.abs(updated) > 1.0)  # some weights were pushed past the bound and clipped
    np.testing.assert_allclose(kernel.latent_variable.numpy(), expected, rtol=1e-5, atol=1e-7)


def test_binary_connect_stochastic_uses_stochastic_sign():
    recipe = binary_connect(stochastic=True, clip_value=0.5)
    kwargs = recipe.layer_kwargs()
    assert isinstance(kwargs["kernel_quantizer"], StochasticSign)
    assert kwargs["kernel_constraint"].clip_value == 0.5


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"clip_value": 0.0}, ValueError),
        ({"learning_rate": -1.0}, ValueError),
        ({"stochastic": "yes"}, TypeError),
    ],
)
def test_binary_connect_bad_arguments(kwargs, error):
    with pytest.raises(error):
        binary_connect(**kwargs)


def test_case_optimizer_bad_arguments():
    real_model = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(2)])
    with pytest.raises(ValueError, match="binary"):
        case_optimizer(real_model)
    with pytest.raises(ValueError, match="not built"):
        case_optimizer(tf.keras.Sequential([tf.keras.layers.Dense(2)]))
    with pytest.raises(TypeError, match="legacy"):
        case_optimizer(real=tf.keras.optimizers.Adam())
    with pytest.raises(TypeError, match="legacy"):
        case_optimizer(binary="bop")
    with pytest.raises(ValueError, match="Unknown optimizer"):
        real_optimizer("adamx")
    with pytest.raises(ValueError, match="weight_decay"):
        AdamW(weight_decay=-0.1)


def test_case_optimizer_trains_in_fit_with_adamw():
    model = _dense_model(input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip")
    model.compile(case_optimizer(model, binary=larq.optimizers.Bop(threshold=1e-6, gamma=1e-2), real="adamw"), "mse")
    rng = np.random.default_rng(2)
    history = model.fit(rng.normal(size=(32, 4)), rng.normal(size=(32, 3)), epochs=2, batch_size=8, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert set(np.unique(model.layers[0].kernel.latent_variable.numpy())) <= {-1.0, 1.0}  # Bop's weights are ±1
