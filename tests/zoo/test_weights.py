"""Compact weight files: bit-exact round trips, packed sizes, and refusal of corrupted or mismatched files; the
Keras 3 models (every backend) and, where noted, the tf-keras ones (``legacy=True``) that the converter takes."""

import keras
import numpy as np
import pytest

import keras_bnn.zoo as zoo
from keras_bnn.layers import variable_precision
from keras_bnn.zoo import weights

SMALL = [name for name in zoo.list_models() if not name.endswith(".imagenet")]


def _randomized(name, seed=0, legacy=False):
    model = zoo.get(name, legacy=legacy)
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        value = rng.uniform(-1, 1, weight.shape).astype(np.float32)
        weight.assign(np.abs(value) + 0.5 if "variance" in weight.name else value)
    return model


def _numpy(variable):
    return keras.ops.convert_to_numpy(variable) if isinstance(variable, keras.Variable) else variable.numpy()


def _images(count=8, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (count, 28, 28, 1)).astype(np.float32)


def _inputs(name, count=8, seed=0):
    """Pixels for an image model; token ids (no padding) for a text model."""
    spec = zoo.entry(name)
    if spec.task == "image_classification":
        return _images(count, seed)
    vocabulary = zoo.get(name).layers[1].input_dim
    return np.random.default_rng(seed).integers(1, vocabulary, (count, spec.input_shape[0] or 16)).astype(np.int32)


def _binary_weights(model):
    """The binary kernels: Keras 3 marks their latent variables with precision 1, larq wraps them in a
    QuantizedVariable whose quantizer has precision 1."""
    if isinstance(model, keras.Model):
        return [w for w in model.weights if variable_precision(w) == 1]
    return [w for w in model.weights if getattr(getattr(w, "quantizer", None), "precision", None) == 1]


def _quantizers(model):
    """The weight quantizers of every (nested) quantized layer."""
    if not isinstance(model, keras.Model):
        return [w.quantizer for w in model.weights if hasattr(w, "quantizer")]
    return [getattr(layer, argument) for layer in model._flatten_layers()
            for argument in getattr(layer, "quantized_weights", {}).values()]


def _magnitude_aware_kernels(model):
    return sum(1 for quantizer in _quantizers(model) if type(quantizer).__name__ == "MagnitudeAwareSign")


@pytest.mark.parametrize("name, legacy", [(name, False) for name in SMALL] + [
    ("binary_cnn.mnist", True), ("birealnet_small.fashion_mnist", True)])
def test_canonical_round_trip_is_bit_exact_and_packed(name, legacy, tmp_path):
    model = _randomized(name, legacy=legacy)
    changed = weights.canonicalize(model)
    binary = _binary_weights(model)
    assert changed == len(binary) > 0
    info = weights.save_compact(model, tmp_path / "w.npz")
    assert info.binary_kernels == changed and info.dense_fallbacks == ()
    # ste_sign kernels (MNIST models, the GRU) are ±1: bits only; magnitude-aware ones also store one scale per
    # channel.
    assert info.scaled_kernels == _magnitude_aware_kernels(model)
    assert info.scaled_kernels == (changed if "fashion" in name or "transformer" in name else 0)
    reloaded = zoo.get(name, legacy=legacy)
    weights.load_compact(reloaded, tmp_path / "w.npz", sha256=info.sha256, size=info.bytes)
    inputs = _inputs(name)
    np.testing.assert_array_equal(reloaded.predict(inputs, verbose=0), model.predict(inputs, verbose=0))
    # Packed bits: the file is much smaller than the float32 weights, and at most the 1-bit size + floats.
    binary_count = sum(int(np.prod(w.shape)) for w in binary)
    float_bytes = (sum(int(np.prod(w.shape)) for w in model.weights) - binary_count) * 4
    packed_bytes = binary_count / 8
    with np.load(tmp_path / "w.npz") as archive:  # every binary weight is one bit
        assert sum(archive[key].size for key in archive.files if key.endswith(".bits")) == packed_bytes
    if zoo.entry(name).task == "image_classification":  # (the text models' real embeddings dominate)
        assert info.bytes < info.float32_equivalent_bytes / 2
    assert info.bytes <= packed_bytes + float_bytes + 4 * sum(w.shape[-1] for w in model.weights) + 400 * len(
        model.weights
    ) + 1000


@pytest.mark.parametrize("legacy", [False, True])
def test_binary_gru_kernels_are_packed_bits(legacy, tmp_path):
    model = _randomized("binary_gru_lm.tiny_shakespeare", legacy=legacy)
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
    latent = _numpy(model.get_layer("block1").kernel)
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
    before = [_numpy(w).copy() for w in target.weights]
    with pytest.raises(weights.WeightsFileError) as error:
        weights.load_compact(target, path, sha256=info.sha256, size=info.bytes)
    message = str(error.value)
    assert str(path) in message and info.sha256 in message and weights.file_sha256(path) in message
    for weight, value in zip(target.weights, before):  # nothing was assigned
        np.testing.assert_array_equal(_numpy(weight), value)
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
    with pytest.raises(TypeError, match="built Keras model"):
        weights.save_compact(keras.layers.Dense(3), tmp_path / "x.npz")
    with pytest.raises(TypeError, match="built Keras model"):
        weights.save_compact(keras.Sequential([keras.layers.Dense(3)]), tmp_path / "x.npz")


def test_keras3_and_legacy_builds_list_the_same_weights_in_the_same_order():
    """Every pretrained file's stored names are the Keras 3 model's weights, in the file's (tf-keras) order, with
    the same shapes and the same binary kernels as the tf-keras model's."""
    from keras_bnn.zoo._weight_access import slots

    for name in zoo.list_models(pretrained=True):
        keras3, legacy = slots(zoo.get(name)), slots(zoo.get(name, legacy=True))
        with np.load(weights.weights_path(zoo.entry(name).pretrained)) as archive:
            stored = [str(stored_name) for stored_name in archive["__names__"]]
        assert [slot.name for slot in keras3] == [slot.name for slot in legacy] == stored, name
        assert [slot.shape for slot in keras3] == [slot.shape for slot in legacy], name
        assert [slot.quantizer is None for slot in keras3] == [slot.quantizer is None for slot in legacy], name


def test_weights_stored_in_another_order_are_matched_by_name(saved, tmp_path):
    info, path = saved
    with np.load(path) as archive:
        arrays = {key: archive[key] for key in archive.files}
    names = [str(name) for name in arrays["__names__"]]
    order = list(range(len(names)))[::-1]  # the same weights, listed last to first
    shuffled = {"__format__": arrays["__format__"], "__names__": np.asarray([names[i] for i in order])}
    for new, old in enumerate(order):
        for key, value in arrays.items():
            if key.startswith(f"w{old:03d}."):
                shuffled[f"w{new:03d}.{key.split('.', 1)[1]}"] = value
    weights._write_npz(tmp_path / "reversed.npz", shuffled)
    expected, model = zoo.get("binary_cnn.mnist"), zoo.get("binary_cnn.mnist")
    weights.load_compact(expected, path, sha256=info.sha256)
    weights.load_compact(model, tmp_path / "reversed.npz")
    images = _images()
    np.testing.assert_array_equal(model.predict(images, verbose=0), expected.predict(images, verbose=0))
