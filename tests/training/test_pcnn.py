"""PCNN: projected kernels, projection loss and gradients against the paper's equations; training and saving."""

import keras
import numpy as np
import pytest
from keras import ops

from keras_bnn.training import Bop, PCNNConv2D, PCNNProjection
from tests.training.gradients import loss_and_gradients, numpy

RNG = np.random.default_rng(0)
LATENT = RNG.normal(scale=0.6, size=(3, 3, 2, 4)).astype(np.float32)  # (K_h, K_w, C_in, F/J)
MATRICES = RNG.uniform(0.5, 1.5, size=(2, 3, 3)).astype(np.float32)  # J = 2 projection matrices
MATRICES[1, 0, 0] = -0.7  # one negative entry flips a sign


def _sign(x):
    return np.where(x >= 0, 1.0, -1.0)


def _reference(latent, matrices, scale="layer"):
    """Ŵ_j ∘ C and Ĉ_j = a·sign(Ŵ_j ∘ C) for every j, and D = Ĉ_1 ⊕ … ⊕ Ĉ_J along the output channels."""
    a = np.mean(np.abs(latent)) if scale == "layer" else np.mean(np.abs(latent), axis=(0, 1, 2))
    arguments = [matrices[j][:, :, None, None] * latent for j in range(len(matrices))]
    projected = [a * _sign(x) for x in arguments]
    return arguments, projected, np.concatenate(projected, axis=-1)


def _projection(scale="layer", weight=1e-2, eta=0.0):
    projection = PCNNProjection(num_projections=2, projection_loss_weight=weight, eta=eta, scale=scale)
    projection.build(LATENT.shape)
    projection.projection.assign(MATRICES)
    return projection


@pytest.mark.parametrize("scale", ["layer", "channel"])
def test_projected_kernel_matches_the_paper(scale):
    _, _, expected = _reference(LATENT, MATRICES, scale)
    kernel = numpy(_projection(scale)(LATENT))
    np.testing.assert_allclose(kernel, expected, rtol=1e-6)
    # Binary with one scale per output channel: what LCE folds into LceBconv2d.
    magnitudes = np.abs(kernel).reshape(-1, kernel.shape[-1])
    np.testing.assert_array_equal(magnitudes, np.broadcast_to(magnitudes[:1], magnitudes.shape))


def test_projection_loss_and_gradients_match_equations():
    projection = _projection(weight=0.3)
    latent = keras.Variable(LATENT)
    upstream = RNG.normal(size=(3, 3, 2, 8)).astype(np.float32)  # δ = ∂L_S/∂D, i.e. ∂L_S/∂Ĉ_j per block
    upstream_tensor = ops.convert_to_tensor(upstream)
    _, (d_latent, d_matrices) = loss_and_gradients(
        lambda: ops.sum(upstream_tensor * projection(latent)) + projection.projection_loss(latent),
        [latent, projection.projection])
    arguments, projected, _ = _reference(LATENT, MATRICES)
    deltas = np.split(upstream, 2, axis=-1)
    # L_P = λ/2 Σ_j ‖Ĉ_j − Ŵ_j ∘ C‖²   (Eq. 3.42 with η = 0)
    expected_loss = 0.15 * sum(np.sum((c - x) ** 2) for c, x in zip(projected, arguments))
    np.testing.assert_allclose(float(numpy(projection.projection_loss(latent))), expected_loss, rtol=1e-5)
    expected_latent = np.zeros_like(LATENT)
    expected_matrices = np.zeros_like(MATRICES)
    for j in range(2):
        tiled = MATRICES[j][:, :, None, None]
        inside = (np.abs(arguments[j]) <= 1.0).astype(np.float32)  # indicator 1_{-1 ≤ Ŵ∘C ≤ 1}
        expected_latent += deltas[j] * inside * tiled  # ∂L_S/∂C (Eq. 3.51)
        expected_latent += 0.3 * (arguments[j] - projected[j]) * tiled  # ∂L_P/∂C (Eq. 3.52)
        expected_matrices[j] += np.sum(deltas[j] * inside * LATENT, axis=(2, 3))  # ∂L_S/∂W_j (Eq. 3.55)
        expected_matrices[j] += 0.3 * np.sum((arguments[j] - projected[j]) * LATENT, axis=(2, 3))  # (Eq. 3.56)
    assert np.any(np.abs(np.concatenate(arguments)) > 1.0)  # the indicator is exercised
    np.testing.assert_allclose(d_latent, expected_latent, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(d_matrices, expected_matrices, rtol=1e-4, atol=1e-5)


def test_eta_lookahead_gradient_equals_the_full_projection_loss():
    """With η > 0 the gradients equal those of L_S + λ/2 Σ‖Ĉ − Ŵ∘(C + ηδ)‖² with δ = ∂L_S/∂Ĉ held constant."""
    weight, eta = 0.3, 0.05
    upstream = RNG.normal(size=(3, 3, 2, 8)).astype(np.float32)
    upstream_tensor = ops.convert_to_tensor(upstream)
    latent = keras.Variable(LATENT)
    projection = _projection(weight=weight, eta=eta)
    _, got = loss_and_gradients(
        lambda: ops.sum(upstream_tensor * projection(latent)) + projection.projection_loss(latent),
        [latent, projection.projection])

    reference = _projection(weight=weight, eta=0.0)
    deltas = ops.convert_to_tensor(np.stack(np.split(upstream, 2, axis=-1)))  # (J, K_h, K_w, C_in, F/J)

    def full():
        task_loss = ops.sum(upstream_tensor * reference(latent))
        _, projected, matrices = reference._projected(ops.convert_to_tensor(latent))
        lookahead = matrices * (ops.convert_to_tensor(latent)[None] + eta * deltas)
        return task_loss + 0.5 * weight * ops.sum(ops.square(ops.stop_gradient(projected) - lookahead))

    _, expected = loss_and_gradients(full, [latent, reference.projection])
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-6)
    without = _projection(weight=weight, eta=0.0)
    _, plain = loss_and_gradients(
        lambda: ops.sum(upstream_tensor * without(latent)) + without.projection_loss(latent),
        [latent, without.projection])
    assert not np.allclose(plain[1], got[1], rtol=1e-4, atol=1e-6)  # η changes the update


def _model(**kwargs):
    return keras.Sequential([
        keras.Input((6, 6, 3)),
        PCNNConv2D(8, 3, num_projections=2, name="pcnn", **kwargs),
        keras.layers.BatchNormalization(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3),
    ])


def test_layer_is_a_binary_convolution_with_its_projection_loss():
    model = _model(projection_loss_weight=0.1)
    layer = model.get_layer("pcnn")
    x = RNG.normal(size=(2, 6, 6, 3)).astype(np.float32)
    outputs = numpy(layer(x))
    kernel = layer.kernel_quantizer(layer.kernel)
    padded = np.pad(_sign(x), [[0, 0], [1, 1], [1, 1], [0, 0]], constant_values=1.0).astype(np.float32)
    np.testing.assert_allclose(outputs, numpy(ops.conv(padded, kernel, padding="valid")), rtol=1e-5, atol=1e-5)
    assert tuple(layer.kernel.shape) == (3, 3, 3, 4) and outputs.shape == (2, 6, 6, 8)
    assert len(layer.losses) == 1
    np.testing.assert_allclose(numpy(layer.losses[0]), numpy(layer.kernel_quantizer.projection_loss(layer.kernel)))
    assert Bop.is_binary_variable(layer.kernel)


def test_layer_trains_and_saves(tmp_path):
    model = _model(scale="channel", eta=1e-3, use_bias=True)
    model.compile(keras.optimizers.Adam(1e-2), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = RNG.normal(size=(16, 6, 6, 3)).astype(np.float32), RNG.integers(0, 3, 16)
    before = numpy(model.get_layer("pcnn").kernel_quantizer.projection).copy()
    history = model.fit(x, y, epochs=2, batch_size=8, verbose=0)
    assert np.all(np.isfinite(history.history["loss"]))
    assert not np.array_equal(before, numpy(model.get_layer("pcnn").kernel_quantizer.projection))  # W is learned

    config = model.get_layer("pcnn").get_config()
    assert "kernel_quantizer" not in config and config["num_projections"] == 2 and config["scale"] == "channel"
    path = tmp_path / "pcnn.keras"
    model.save(path)
    restored = keras.models.load_model(path)
    np.testing.assert_allclose(restored.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"filters": 6, "num_projections": 4}, ValueError, "multiple"),
        ({"filters": 4, "num_projections": 0}, ValueError, "num_projections"),
        ({"filters": 4, "scale": "kernel"}, ValueError, "scale"),
        ({"filters": 4, "projection_loss_weight": -1.0}, ValueError, "projection_loss_weight"),
        ({"filters": 4, "eta": float("nan")}, ValueError, "eta"),
        ({"filters": 4, "kernel_quantizer": "ste_sign"}, TypeError, "kernel_quantizer"),
        ({"filters": 4, "data_format": "channels_first"}, ValueError, "channels_last"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        PCNNConv2D(**kwargs)
