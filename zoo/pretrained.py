"""Pretrained weights as data: one frozen `PretrainedConfig` per model that has weights trained here.

Every figure below was printed by `python -m keras_bnn.zoo.training.train NAME ...` (the `command` field) on
the 2-core CPU machine this repository is developed on; `keras_bnn.zoo.evaluate(NAME)` re-measures the test
accuracy from the shipped file. Weights files live in `zoo/weights/` (installed as package data); a config
with a `url` can also be fetched and cached by `tf.keras.utils.get_file`, which checks the same sha256.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import importlib_resources
import tensorflow as tf

from keras_bnn.zoo.weights import WeightsFileError

__all__ = ["PretrainedConfig", "PRETRAINED", "pretrained_config", "weights_path"]

_CACHE_SUBDIR = "keras_bnn_zoo"


@dataclasses.dataclass(frozen=True)
class PretrainedConfig:
    """Everything known about one set of pretrained weights.

    Attributes:
        weights_file: File name in `zoo/weights/` (compact `.npz`, see `keras_bnn.zoo.weights`).
        sha256: Hex sha256 of that file; checked before every load.
        size_bytes: Size of that file.
        dataset: Dataset trained and tested on (a `keras_bnn.datasets` name).
        preprocessing: What the model expects as input.
        test_accuracy: Top-1 accuracy on the full test split, measured from the compact file.
        test_examples: Number of test examples.
        validation_accuracy: Top-1 accuracy on the held-out last 10% of train after the last epoch.
        float_twin_test_accuracy: Test accuracy of the same architecture without quantizers, or None.
        flatbuffer_bytes: Size of the LCE flatbuffer from `keras_bnn.tflite.converter.convert`.
        bitpacked_share: Share of binary MACs that run bitpacked in that flatbuffer (None: no binary MACs).
        epochs: Training epochs.
        seed: Training seed.
        train_wall_time_s: Wall time of training (the `fit` call), in seconds, on the machine named in notes.
        command: The command that reproduces the training and writes the weights file.
        license: License of the weights.
        paper: Reference of the architecture.
        url: Release URL of the weights file, or None when it only ships inside the package.
        notes: Anything a user should know (how binary weights are stored, what was not reached, ...).
    """

    weights_file: str
    sha256: str
    size_bytes: int
    dataset: str
    preprocessing: str
    test_accuracy: float
    test_examples: int
    validation_accuracy: float
    float_twin_test_accuracy: float | None
    flatbuffer_bytes: int
    bitpacked_share: float | None
    epochs: int
    seed: int
    train_wall_time_s: float
    command: str
    license: str
    paper: str
    url: str | None = None
    notes: str = ""


_PREPROCESSING = (
    "float32 pixel values 0..255, shape (28, 28, 1); the model's own Rescaling layer maps them to [-1, 1]"
)
_LICENSE = "Apache-2.0 (weights); data: {data}"
_MACHINE = "2 shared CPU cores (x86-64, AVX-512), TensorFlow 2.21 / tf-keras, larq 0.14"

_BITS_NOTE = (
    "Binary kernels are stored as packed sign bits{scales}; BatchNorm and real layers as float32. Training "
    "ran on " + _MACHINE + ", shared with other jobs whose load varied (load average 2 to 19), so wall times "
    "are not comparable between models: the same run takes several times less on an idle machine."
)

PRETRAINED: dict[str, PretrainedConfig] = {
    "xnornet_small.fashion_mnist": PretrainedConfig(
        weights_file="xnornet_small.fashion_mnist.npz",
        sha256="561ad4fd01db1f38616bf0c537fe11c28f944020a067ec72a097836dae8186fe",
        size_bytes=70388,
        dataset="fashion_mnist",
        preprocessing=_PREPROCESSING,
        test_accuracy=0.8999,
        test_examples=10000,
        validation_accuracy=0.9128,
        float_twin_test_accuracy=0.9189,
        flatbuffer_bytes=67416,
        bitpacked_share=1.0,
        epochs=6,
        seed=0,
        train_wall_time_s=291.3,
        command="python -m keras_bnn.zoo.training.train xnornet_small.fashion_mnist --epochs 6 --seed 0",
        license=_LICENSE.format(data="Fashion-MNIST, MIT (Zalando SE)"),
        paper="Rastegari et al., 'XNOR-Net: ImageNet Classification Using Binary CNNs', ECCV 2016",
        notes=_BITS_NOTE.format(scales=" plus one float32 magnitude per output channel (canonicalized, see "
                                "keras_bnn.zoo.weights.canonicalize)")
        + " Trained with random horizontal flips. The float twin was trained with "
        "`python -m keras_bnn.zoo.training.train xnornet_small.fashion_mnist --epochs 6 --seed 0 --float-twin` "
        "(326.6 s).",
    ),
    "birealnet_small.fashion_mnist": PretrainedConfig(
        weights_file="birealnet_small.fashion_mnist.npz",
        sha256="4dccf584113351e2c26475e2f8964f98735ad43b38bf71792daf898871817f03",
        size_bytes=252036,
        dataset="fashion_mnist",
        preprocessing=_PREPROCESSING,
        test_accuracy=0.9202,
        test_examples=10000,
        validation_accuracy=0.9245,
        float_twin_test_accuracy=0.926,
        flatbuffer_bytes=242164,
        bitpacked_share=1.0,
        epochs=10,
        seed=0,
        train_wall_time_s=949.9,
        command="python -m keras_bnn.zoo.training.train birealnet_small.fashion_mnist --epochs 10 --seed 0",
        license=_LICENSE.format(data="Fashion-MNIST, MIT (Zalando SE)"),
        paper="Liu et al., 'Bi-Real Net: Enhancing the Performance of 1-bit CNNs', ECCV 2018",
        notes=_BITS_NOTE.format(scales=" plus one float32 magnitude per output channel (canonicalized, see "
                                "keras_bnn.zoo.weights.canonicalize)")
        + " Most of the file (188 KB) is the real 4704x10 classifier. Trained with random horizontal flips. "
        "The float twin was trained with `python -m keras_bnn.zoo.training.train birealnet_small.fashion_mnist "
        "--epochs 10 --seed 0 --float-twin` (954.2 s). An earlier version with global average pooling instead "
        "of flatten reached 88.89% (float twin 90.79%) in 6 epochs.",
    ),
    "binarynet_mlp.mnist": PretrainedConfig(
        weights_file="binarynet_mlp.mnist.npz",
        sha256="6fe2bbdb19de355dcf5d263f96f7bc7a8f6c17a674d9042fc7789347de6eecfb",
        size_bytes=1358700,
        dataset="mnist",
        preprocessing=_PREPROCESSING,
        test_accuracy=0.9847,
        test_examples=10000,
        validation_accuracy=0.9872,
        float_twin_test_accuracy=None,
        flatbuffer_bytes=7502504,
        bitpacked_share=1.0,
        epochs=12,
        seed=0,
        train_wall_time_s=2424.1,
        command="python -m keras_bnn.zoo.training.train binarynet_mlp.mnist --epochs 12 --seed 0",
        license=_LICENSE.format(data="MNIST, CC BY-SA 3.0 (LeCun & Cortes)"),
        paper="Courbariaux et al., 'Binarized Neural Networks', NeurIPS 2016",
        notes=_BITS_NOTE.format(scales="")
        + " The first layer has binary weights but a real input (the pixels), so LCE cannot bitpack it: its "
        "1.6M weights stay float32 in the flatbuffer (6.4 MB of its 7.5 MB); the three binary-input layers "
        "are bitpacked. Target was 98.8% test accuracy; 12 epochs reached 98.47% (not reached: BinaryNet "
        "trains this MLP for hundreds of epochs).",
    ),
    "binary_cnn.mnist": PretrainedConfig(
        weights_file="binary_cnn.mnist.npz",
        sha256="782b9878d929a867a5ea1f34e38b51c43ad4234535346d1e197aab7cbc742998",
        size_bytes=69822,
        dataset="mnist",
        preprocessing=_PREPROCESSING,
        test_accuracy=0.9938,
        test_examples=10000,
        validation_accuracy=0.9918,
        float_twin_test_accuracy=None,
        flatbuffer_bytes=64772,
        bitpacked_share=1.0,
        epochs=12,
        seed=0,
        train_wall_time_s=930.0,
        command="python -m keras_bnn.zoo.training.train binary_cnn.mnist --epochs 12 --seed 0",
        license=_LICENSE.format(data="MNIST, CC BY-SA 3.0 (LeCun & Cortes)"),
        paper="Courbariaux et al., 'Binarized Neural Networks', NeurIPS 2016",
        notes=_BITS_NOTE.format(scales="")
        + " Trained with random shifts of up to 2 pixels (an earlier 8-epoch run without them reached 99.15%). "
        "The first convolution has a real input (the pixels), so its MACs are not binary x binary and are "
        "not in the bitpacked share.",
    ),
}


def pretrained_config(name: str) -> PretrainedConfig:
    """The `PretrainedConfig` of a registered model name.

    Raises:
        ValueError: `name` has no pretrained weights; the message lists the names that do.
    """
    if name not in PRETRAINED:
        raise ValueError(
            f"Model {name!r} has no pretrained weights; these do: {sorted(PRETRAINED)}. "
            "Build it with pretrained=False."
        )
    return PRETRAINED[name]


def weights_path(config: PretrainedConfig, cache_dir: str | os.PathLike | None = None) -> pathlib.Path:
    """Local path of a config's weights file: the packaged file, else a download cached by Keras.

    Args:
        config: The weights' config.
        cache_dir: Keras cache folder for downloads (default `~/.keras`); files go to its `keras_bnn_zoo/`.

    Raises:
        WeightsFileError: the file is not packaged and the config has no `url`.
    """
    packaged = importlib_resources.files("keras_bnn.zoo") / "weights" / config.weights_file
    if packaged.is_file():
        return pathlib.Path(os.fspath(packaged))
    if config.url is None:
        raise WeightsFileError(
            f"Weights file {config.weights_file!r} is not in the installed package ({packaged}) and has no "
            "release URL to download it from; reinstall keras-bnn with its package data."
        )
    if cache_dir is not None:  # Keras falls back to /tmp/.keras when the folder does not exist yet.
        os.makedirs(cache_dir, exist_ok=True)
    downloaded = tf.keras.utils.get_file(
        config.weights_file,
        config.url,
        file_hash=config.sha256,
        hash_algorithm="sha256",
        cache_subdir=_CACHE_SUBDIR,
        cache_dir=None if cache_dir is None else os.fspath(cache_dir),
    )
    return pathlib.Path(downloaded)
