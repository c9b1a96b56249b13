"""Compact weight files: binary kernels as packed bits, everything else at its own dtype, checked by sha256.

A compact file is an uncompressed `.npz` (readable with `numpy.load`) holding every weight of a model, in
tf-keras's `model.weights` order (a Keras 3 model's weights are put in that order, so the Keras 3 and the tf-keras
build of one zoo definition read the same file; see ``keras_bnn.zoo._weight_access``):

* a binary kernel (the latent weight of a keras_bnn layer's, or a larq `QuantizedVariable`'s, quantizer of
  precision 1) whose quantized value is ±1 is stored as its signs, `np.packbits` of `quantized > 0` (1 bit per
  weight): key `wNNN.bits`;
* a binary kernel whose quantized value is ±c with one c per output channel (larq's
  `magnitude_aware_sign`, the XNOR-Net/Bi-Real weight scale) is stored as signs plus one float32 per output
  channel: keys `wNNN.bits` and `wNNN.scale`;
* anything else (real kernels, BatchNorm parameters and statistics, biases) is stored as is: `wNNN.value`;
* optional extras that belong with the weights, e.g. a text model's vocabulary (a numpy string array), are
  stored as `extra.NAME` and read back with `load_extras`, under the same sha256 check.

On load the latent weight of a binary kernel is set to its quantized value (±1, or ±c), so the quantized
forward pass is the one of the saved model. For ±c the stored c is the latent magnitude for which the
quantizer gives back the saved c exactly (the mean of identical float32 values is not always that value;
`save_compact` searches a few float32 neighbours and checks with the quantizer itself). A kernel for which
that fails is stored as is, so a compact file never changes a prediction. The files' bytes are deterministic
(fixed zip timestamps), so the same weights always give the same sha256.

Example:
    >>> import keras_bnn, tempfile, os
    >>> from keras_bnn.zoo import weights
    >>> model = keras_bnn.zoo.get("binary_cnn.mnist")
    >>> path = os.path.join(tempfile.mkdtemp(), "cnn.npz")
    >>> info = weights.save_compact(model, path)
    >>> info.binary_kernels, info.bytes == os.path.getsize(path)
    (5, True)
    >>> weights.load_compact(model, path, sha256=info.sha256)
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import pathlib
import zipfile

import numpy as np

from keras_bnn.zoo._weight_access import Slot, is_built_model, slots

__all__ = [
    "CACHE_SUBDIR",
    "CompactInfo",
    "WeightsFileError",
    "canonicalize",
    "file_sha256",
    "save_compact",
    "load_compact",
    "load_extras",
    "load_pretrained",
    "weights_path",
]

FORMAT = "keras_bnn.zoo compact weights v1"
CACHE_SUBDIR = "keras_bnn_zoo"
_FIXED_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_EXTRA = "extra."


class WeightsFileError(ValueError):
    """A weights file is missing, corrupted, truncated, or does not fit the model."""


@dataclasses.dataclass(frozen=True)
class CompactInfo:
    """What `save_compact` wrote.

    Attributes:
        path: The file written.
        sha256: Hex sha256 of the file's bytes.
        bytes: File size.
        binary_kernels: Binary kernels stored as packed bits (with or without per-channel scales).
        scaled_kernels: Of those, the ones stored with a per-output-channel scale.
        dense_fallbacks: Names of binary kernels stored as floats because the bit form would not reproduce them.
        float32_equivalent_bytes: Size of all weights as float32, for comparison.
    """

    path: str
    sha256: str
    bytes: int
    binary_kernels: int
    scaled_kernels: int
    dense_fallbacks: tuple[str, ...]
    float32_equivalent_bytes: int


def file_sha256(path: str | os.PathLike) -> str:
    """Hex sha256 of a file's bytes."""
    with open(path, "rb") as file:
        return hashlib.sha256(file.read()).hexdigest()


def _signed(bits: np.ndarray, magnitude: np.ndarray) -> np.ndarray:
    return np.where(bits, magnitude, -magnitude).astype(np.float32)


def _channel_magnitudes(quantized: np.ndarray) -> np.ndarray | None:
    """The per-output-channel c of a quantized kernel that is ±c per channel, else None."""
    target = np.abs(quantized).reshape(-1, quantized.shape[-1])[0]
    if np.array_equal(np.abs(quantized), np.broadcast_to(target, quantized.shape)):
        return target
    return None


def _encode_binary(slot: Slot) -> dict[str, np.ndarray] | None:
    """The bit (+scale) form of a binary kernel, or None when it would not reproduce the quantized value."""
    latent = slot.read()
    if latent.dtype != np.float32 or latent.ndim < 1:
        return None
    quantized = slot.quantize(latent)
    magnitudes = _channel_magnitudes(quantized)
    if magnitudes is None:
        return None
    bits = quantized > 0
    encoded = {"bits": np.packbits(bits.reshape(-1)), "shape": np.asarray(quantized.shape, np.int64)}
    if not np.all(magnitudes == 1.0):
        encoded["scale"] = magnitudes
    # Loading sets the latent weight to ±c; keep the bit form only if the quantizer maps that back to ±c.
    if not np.array_equal(slot.quantize(_signed(bits, magnitudes)), quantized):
        return None
    return encoded


def _representable_scale(magnitudes: np.ndarray, reduced: int) -> np.ndarray:
    """`magnitudes` rounded to 24 - ceil(log2(reduced)) significant bits.

    A mean over `reduced` copies of such a value is exact in float32 whatever the summation order (every
    partial sum k·c is representable), so a magnitude-aware quantizer gives the value back unchanged.
    """
    significant = 24 - max(int(np.ceil(np.log2(max(reduced, 1)))), 0)
    mantissa, exponent = np.frexp(magnitudes.astype(np.float64))
    rounded = np.ldexp(np.round(mantissa * 2.0**significant) / 2.0**significant, exponent)
    return rounded.astype(np.float32)


def canonicalize(model) -> int:
    """Set every binary kernel's latent weight to its quantized value, so `save_compact` stores it as bits.

    A ±1 kernel's quantized forward pass does not change. A ±c kernel (magnitude-aware sign) gets c rounded
    to 24 - ceil(log2(n)) significant bits, n the number of weights averaged per channel (e.g. 14 bits for a
    3x3x64 kernel: a relative change of at most 2^-15), because the quantizer's float32 mean of n copies of
    an arbitrary c is not c. Measure a model after canonicalizing it: that is the model a compact file holds.

    Args:
        model: A built Keras 3 or tf-keras model; non-binary weights are left alone.

    Returns:
        The number of binary kernels set.

    Example:
        >>> import keras_bnn
        >>> from keras_bnn.zoo import weights
        >>> weights.canonicalize(keras_bnn.zoo.get("xnornet_small.fashion_mnist"))
        2
    """
    count = 0
    for slot in slots(model):
        if slot.quantizer is None:
            continue
        quantized = slot.quantize(slot.read())
        magnitudes = _channel_magnitudes(quantized)
        if magnitudes is None:
            continue
        if not np.all(magnitudes == 1.0):
            magnitudes = _representable_scale(magnitudes, quantized.size // quantized.shape[-1])
        slot.assign(_signed(quantized > 0, magnitudes))
        count += 1
    return count


def _decode(arrays: dict[str, np.ndarray], key: str) -> np.ndarray:
    if f"{key}.value" in arrays:
        return arrays[f"{key}.value"]
    shape = tuple(int(d) for d in arrays[f"{key}.shape"])
    bits = np.unpackbits(arrays[f"{key}.bits"], count=int(np.prod(shape))).reshape(shape).astype(bool)
    magnitude = arrays[f"{key}.scale"] if f"{key}.scale" in arrays else np.float32(1.0)
    return _signed(bits, magnitude)


def _write_npz(path: str | os.PathLike, arrays: dict[str, np.ndarray]) -> None:
    """An uncompressed .npz with fixed timestamps (same arrays, same bytes)."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for key, array in arrays.items():
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.asarray(array), allow_pickle=False)
            archive.writestr(zipfile.ZipInfo(f"{key}.npy", date_time=_FIXED_ZIP_TIME), buffer.getvalue())


def _check_extras(extras: dict[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    checked = {}
    for name, value in (extras or {}).items():
        array = np.asarray(value)
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"extras keys must be identifiers, got {name!r}.")
        if array.dtype == object:
            raise ValueError(f"extras[{name!r}] must be a numeric or str array (no Python objects).")
        checked[f"{_EXTRA}{name}"] = array
    return checked


def save_compact(model, path: str | os.PathLike, *, extras: dict[str, np.ndarray] | None = None) -> CompactInfo:
    """Write all of `model`'s weights to `path` in the compact format (see the module docstring).

    Args:
        model: A built Keras 3 or tf-keras model (any model; binary kernels, of keras_bnn or larq layers, are
            stored as bits).
        path: Where to write the `.npz` file.
        extras: Arrays stored next to the weights (names are identifiers; str arrays are fine, objects are
            not), e.g. `{"vocabulary": np.asarray(tokens)}`; read back with `load_extras`.

    Returns:
        A `CompactInfo` with the file's sha256 and size and how each binary kernel was stored.

    Raises:
        TypeError: `model` is not a built Keras model.
        ValueError: a bad `extras` name or an object array.
    """
    if not is_built_model(model):
        raise TypeError(f"save_compact needs a built Keras model, got {model!r}.")
    arrays: dict[str, np.ndarray] = {"__format__": np.asarray(FORMAT), **_check_extras(extras)}
    names, binary, scaled, fallbacks, float_bytes = [], 0, 0, [], 0
    for index, slot in enumerate(slots(model)):
        key = f"w{index:03d}"
        names.append(slot.name)
        float_bytes += int(np.prod(slot.shape)) * 4
        encoded = _encode_binary(slot) if slot.quantizer is not None else None
        if encoded is None:
            if slot.quantizer is not None:
                fallbacks.append(slot.name)
            arrays[f"{key}.value"] = slot.read()
            continue
        binary += 1
        scaled += "scale" in encoded
        arrays.update({f"{key}.{part}": array for part, array in encoded.items()})
    arrays["__names__"] = np.asarray(names)
    _write_npz(path, arrays)
    return CompactInfo(
        path=os.fspath(path),
        sha256=file_sha256(path),
        bytes=os.path.getsize(path),
        binary_kernels=binary,
        scaled_kernels=scaled,
        dense_fallbacks=tuple(fallbacks),
        float32_equivalent_bytes=float_bytes,
    )


def _read_checked(path: str | os.PathLike, sha256: str | None, size: int | None) -> bytes:
    if not os.path.isfile(path):
        raise WeightsFileError(f"Weights file {os.fspath(path)!r} does not exist.")
    with open(path, "rb") as file:
        data = file.read()
    actual = hashlib.sha256(data).hexdigest()
    if sha256 is not None and actual != sha256:
        raise WeightsFileError(
            f"Weights file {os.fspath(path)!r} is corrupted or truncated: its sha256 is {actual} "
            f"({len(data)} bytes) but {sha256} ({size if size is not None else 'unknown'} bytes) was expected. "
            "It was not loaded; delete it (a cached download is fetched again) or restore it."
        )
    if size is not None and len(data) != size:
        raise WeightsFileError(
            f"Weights file {os.fspath(path)!r} has {len(data)} bytes but {size} were expected; not loaded."
        )
    return data


def _read_arrays(path: str | os.PathLike, sha256: str | None, size: int | None) -> dict[str, np.ndarray]:
    """All arrays of a checked compact file."""
    data = _read_checked(path, sha256, size)
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise WeightsFileError(f"Weights file {os.fspath(path)!r} is not a readable .npz: {error}") from error
    if str(arrays.get("__format__", "")) != FORMAT:
        raise WeightsFileError(f"{os.fspath(path)!r} is not a {FORMAT!r} file.")
    return arrays


def load_extras(
    path: str | os.PathLike, *, sha256: str | None = None, size: int | None = None
) -> dict[str, np.ndarray]:
    """The extras that `save_compact(..., extras=...)` stored in a compact file, checked like the weights.

    Args:
        path: The `.npz` file.
        sha256: Expected hex sha256 of the file; None skips the check.
        size: Expected file size in bytes; None skips the check.

    Returns:
        `{name: array}` (empty when the file has no extras).

    Raises:
        WeightsFileError: as `load_compact`.
    """
    arrays = _read_arrays(path, sha256, size)
    return {key[len(_EXTRA):]: value for key, value in arrays.items() if key.startswith(_EXTRA)}


def load_compact(
    model,
    path: str | os.PathLike,
    *,
    sha256: str | None = None,
    size: int | None = None,
) -> None:
    """Set `model`'s weights from a compact file written by `save_compact`.

    The file is checked against `sha256` (and `size`) before anything is parsed or assigned.

    Args:
        model: A built Keras 3 or tf-keras model with the same weights (count, order, shapes) as the saved one
            (the same zoo definition built either way); weights that the file names all, in another order, are
            matched by name.
        path: The `.npz` file.
        sha256: Expected hex sha256 of the file; None skips the check.
        size: Expected file size in bytes; None skips the check.

    Raises:
        WeightsFileError (a ValueError): missing file, sha256 or size mismatch (the message names the file and
            both hashes), a file that is not a compact weights file, or weights that do not fit `model`.
    """
    arrays = _read_arrays(path, sha256, size)
    names = [str(name) for name in arrays["__names__"]]
    targets = slots(model)
    if len(names) != len(targets):
        raise WeightsFileError(
            f"{os.fspath(path)!r} holds {len(names)} weights but model {model.name!r} has {len(targets)}."
        )
    by_name = {slot.name: slot for slot in targets}
    if names != [slot.name for slot in targets] and len(by_name) == len(targets) and set(by_name) == set(names):
        targets = [by_name[name] for name in names]  # the same weights listed in another order: match by name
    values = []
    for index, (slot, saved_name) in enumerate(zip(targets, names)):
        value = _decode(arrays, f"w{index:03d}")
        if tuple(value.shape) != slot.shape:
            raise WeightsFileError(
                f"{os.fspath(path)!r}: weight {index} ({saved_name}) has shape {tuple(value.shape)} but the "
                f"model's {slot.name} has shape {slot.shape}."
            )
        values.append(value)
    for slot, value in zip(targets, values):
        slot.assign(value)


def weights_path(pretrained, cache_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """Local path of a `keras_bnn.zoo.Pretrained`'s weights file: the packaged file, else a download cached by Keras.

    Args:
        pretrained: The weights' description (a zoo entry's `pretrained`).
        cache_dir: Keras cache folder for downloads (default `~/.keras`); files go to its `keras_bnn_zoo/`.

    Raises:
        WeightsFileError: the file is not packaged and has no `url`.
    """
    import importlib_resources

    packaged = importlib_resources.files("keras_bnn.zoo") / "weights" / pretrained.weights_file
    if packaged.is_file():
        return pathlib.Path(os.fspath(packaged))
    if pretrained.url is None:
        raise WeightsFileError(
            f"Weights file {pretrained.weights_file!r} is not in the installed package ({packaged}) and has no "
            "release URL to download it from; reinstall keras-bnn with its package data."
        )
    if cache_dir is not None:  # Keras falls back to /tmp/.keras when the folder does not exist yet.
        os.makedirs(cache_dir, exist_ok=True)
    import keras

    downloaded = keras.utils.get_file(
        pretrained.weights_file, pretrained.url, file_hash=pretrained.sha256, hash_algorithm="sha256",
        cache_subdir=CACHE_SUBDIR, cache_dir=None if cache_dir is None else os.fspath(cache_dir))
    return pathlib.Path(downloaded)


def load_pretrained(model, pretrained) -> None:
    """Set `model`'s weights from a zoo entry's pretrained file, checked by sha256 and size first."""
    load_compact(model, weights_path(pretrained), sha256=pretrained.sha256, size=pretrained.size_bytes)
