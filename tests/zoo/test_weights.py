"""Compact weight files: bit-exact round trips, packed sizes, and refusal of corrupted or mismatched files."""

import larq
import numpy as np
import pytest
import tensorflow as tf

import keras_bnn.zoo as zoo
from keras_bnn.zoo import weights

SMALL = [name for name in zoo.list_models() if not name.endswith(".imagenet")]


def _randomized(name, seed=0):
    model = zoo.get(name)
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        value = rng.uniform(-1, 1, weight.shape).astype(np.float32)
        weight.assign(np.abs(value) + 0.5 if "variance" in weight.name else value)
    return model


def _images(count=8, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, 28, 28, 1)).astype(np.float32)


def _inputs(name, count=8, seed=0):
    """Pixels for an image model; token ids (no padding) for a text model."""
    spec = zoo.entry(name)
    if spec.task == "image_classification":
        return _images(count, seed)
    vocabulary = zoo.get(name).layers[1].input_dim
    return np.random.default_rng(seed).integers(1, vocabulary, (count, spec.input_shape[0] or 16)).astype(np.int32)


def _binary_kernels(model):
    return sum(1 for w in model.weights if getattr(getattr(w, "quantizer", None), "precision", None) == 1)


def _magnitude_aware_kernels(model):
    return sum(1 for w in model.weights if type(getattr(w, "quantizer", None)).__name__ == "MagnitudeAwareSign")


@pytest.mark.parametrize("name", SMALL)
def test_canonical_round_trip_is_bit_exact_and_packed(name, tmp_path):
    model = _randomized(name)
    changed = weights.canonicalize(model)
    assert changed == _binary_kernels(model) > 0
    info = weights.save_compact(model, tmp_path / "w.npz")
    assert info.binary_kernels == changed and info.dense_fallbacks == ()
    # ste_sign kernels (MNIST models, the GRU) are ±1: bits only; magnitude-aware ones also store one scale per
    # channel.
    assert info.scaled_kernels == _magnitude_aware_kernels(model)
    assert info.scaled_kernels == (changed if "fashion" in name or "transformer" in name else 0)
    reloaded = zoo.get(name)
    weights.load_compact(reloaded, tmp_path / "w.npz", sha256=info.sha256, size=info.bytes)
    inputs = _inputs(name)
    np.testing.assert_array_equal(reloaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0))
    # Packed bits: the file is much smaller than the float32 weights, and at most the 1-bit size + floats.
    profile = larq.models.ModelProfile(model)
    float_bytes = profile.weight_count(32) * 4
    packed_bytes = profile.weight_count(1) / 8
    with np.load(tmp_path / "w.npz") as archive:  # every binary weight is one bit
        assert sum(archive[key].size for key in archive.files if key.endswith(".bits")) == packed_bytes
    if zoo.entry(name).task == "image_classification":  # (the text models' real embeddings dominate)
        assert info.bytes < info.float32_equivalent_bytes / 2
    assert info.bytes <= packed_bytes + float_bytes + 4 * sum(w.shape[-1] for w in model.weights) + 400 * len(
        model.weights
    ) + 1000


def test_binary_gru_kernels_are_packed_bits(tmp_path):
    model = _randomized("binary_gru_lm.tiny_shakespeare")
    assert weights.canonicalize(model) == 2
    info = weights.save_compact(model, tmp_path / "gru.npz")
    with np.load(tmp_path / "gru.npz") as archive:
        names = [str(name) for name in archive["__names__"]]
        packed = {names[int(key[1:4])] for key in archive.files if key.endswith(".bits")}
    assert packed == {"binary_gru/binary_gru_cell/kernel:0", "binary_gru/binary_gru_cell/recurrent_kernel:0"}
    # 64x768 + 256x768 signs in 30,720 bytes; the embedding, biases, gate scales and the Dense head as float32.
    assert info.bytes < info.float32_equivalent_bytes / 8


def test_extras_round_trip_under_the_same_check(tmp_path):
    model = _randomized("binary_gru_lm.tiny_shakespeare")
    vocabulary = np.asarray(["a", "b", "\n", "é"])
    info = weights.save_compact(model, tmp_path / "w.npz", extras={"vocabulary": vocabulary, "length": 4})
    extras = weights.load_extras(tmp_path / "w.npz", sha256=info.sha256, size=info.bytes)
    assert extras["vocabulary"].tolist() == ["a", "b", "\n", "é"] and int(extras["length"]) == 4
    weights.load_compact(zoo.get("binary_gru_lm.tiny_shakespeare"), tmp_path / "w.npz", sha256=info.sha256)
    assert weights.load_extras(weights.save_compact(model, tmp_path / "none.npz").path) == {}
    with pytest.raises(ValueError, match="identifiers"):
        weights.save_compact(model, tmp_path / "x.npz", extras={"not a name": vocabulary})
    with pytest.raises(ValueError, match="no Python objects"):
        weights.save_compact(model, tmp_path / "x.npz", extras={"mixed": np.asarray([1, "a", None], object)})
    data = (tmp_path / "w.npz").read_bytes()
    (tmp_path / "w.npz").write_bytes(data[:-5])
    with pytest.raises(weights.WeightsFileError, match=info.sha256):
        weights.load_extras(tmp_path / "w.npz", sha256=info.sha256)


def test_canonicalize_barely_moves_a_magnitude_aware_model():
    model = _randomized("birealnet_small.fashion_mnist")
    images = _images()
    before = model.predict(images, verbose=0)
    weights.canonicalize(model)
    after = model.predict(images, verbose=0)
    np.testing.assert_allclose(after, before, atol=1e-3)
    latent = model.get_layer("block1").kernel.latent_variable.numpy()
    per_channel = np.abs(latent).reshape(-1, latent.shape[-1])
    assert np.all(per_channel == per_channel[0])  # ±c per output channel


def test_non_canonical_model_round_trips_exactly_through_the_float_fallback(tmp_path):
    model = _randomized("xnornet_small.fashion_mnist")
    info = weights.save_compact(model, tmp_path / "w.npz")
    assert set(info.dense_fallbacks) == {"xnor_conv1/kernel:0", "xnor_conv2/kernel:0"}
    reloaded = zoo.get("xnornet_small.fashion_mnist")
    weights.load_compact(reloaded, tmp_path / "w.npz", sha256=info.sha256)
    images = _images()
    np.testing.assert_array_equal(reloaded.predict(images, verbose=0), model.predict(images, verbose=0))


@pytest.fixture
def saved(tmp_path):
    model = _randomized("binary_cnn.mnist")
    weights.canonicalize(model)
    info = weights.save_compact(model, tmp_path / "cnn.npz")
    return info, tmp_path / "cnn.npz"


def test_same_weights_give_the_same_bytes(saved, tmp_path):
    info, _ = saved
    model = zoo.get("binary_cnn.mnist")
    weights.load_compact(model, saved[1], sha256=info.sha256)
    again = weights.save_compact(model, tmp_path / "again.npz")
    assert (again.sha256, again.bytes) == (info.sha256, info.bytes)


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupted_or_truncated_file_is_refused_before_loading(saved, damage):
    info, path = saved
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    path.write_bytes(bytes(data))
    target = zoo.get("binary_cnn.mnist")
    before = [w.numpy().copy() for w in target.weights]
    with pytest.raises(weights.WeightsFileError) as error:
        weights.load_compact(target, path, sha256=info.sha256, size=info.bytes)
    message = str(error.value)
    assert str(path) in message and info.sha256 in message and weights.file_sha256(path) in message
    for weight, value in zip(target.weights, before):  # nothing was assigned
        np.testing.assert_array_equal(weight.numpy(), value)
    assert isinstance(error.value, ValueError)


def test_truncated_file_without_hash_is_still_refused(saved):
    _, path = saved
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(weights.WeightsFileError, match="not a readable .npz"):
        weights.load_compact(zoo.get("binary_cnn.mnist"), path)


def test_weights_of_another_model_are_refused(saved):
    info, path = saved
    with pytest.raises(weights.WeightsFileError, match="holds .* weights but model"):
        weights.load_compact(zoo.get("binarynet_mlp.mnist"), path, sha256=info.sha256)
    with pytest.raises(weights.WeightsFileError, match="shape"):
        weights.load_compact(zoo.get("binary_cnn.mnist", num_classes=3), path, sha256=info.sha256)


def test_missing_file_and_bad_model_argument(tmp_path):
    with pytest.raises(weights.WeightsFileError, match="does not exist"):
        weights.load_compact(zoo.get("binary_cnn.mnist"), tmp_path / "missing.npz")
    with pytest.raises(TypeError, match="built tf.keras.Model"):
        weights.save_compact(tf.keras.layers.Dense(3), tmp_path / "x.npz")
