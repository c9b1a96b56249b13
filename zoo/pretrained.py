"""Pretrained weights as data: one frozen `PretrainedConfig` per model that has weights trained here.

Every figure below was printed by the `command` field (`python -m keras_bnn.zoo.training.train NAME ...` for
the image models; a benchmark then `keras_bnn.zoo.training.export_text` for the text models) on the 2-core CPU
machine this repository is developed on; `keras_bnn.zoo.evaluate(NAME)` re-measures the test metric (top-1
accuracy, or bits per character for the language model) from the shipped file. Weights files live in
`zoo/weights/` (installed as package data); a config with a `url` can also be fetched and cached by
`tf.keras.utils.get_file`, which checks the same sha256.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib

import importlib_resources
import tensorflow as tf

from keras_bnn.zoo.weights import WeightsFileError

__all__ = ["Metric", "METRICS", "PretrainedConfig", "PRETRAINED", "pretrained_config", "weights_path"]

_CACHE_SUBDIR = "keras_bnn_zoo"


@dataclasses.dataclass(frozen=True)
class Metric:
    """A card metric.

    Attributes:
        label: Its name in cards and in `keras-bnn zoo evaluate`.
        field: Suffix of the config fields that hold it (`test_<field>`, `validation_<field>`,
            `float_twin_test_<field>`).
        higher_is_better: Whether a larger value is better.
        decimals: Decimals a card states (of the percentage for an accuracy); `evaluate` matches the card
            at this precision (for an accuracy that is the exact count of correct examples).
        percent: Whether it prints as a percentage.
    """

    label: str
    field: str
    higher_is_better: bool
    decimals: int
    percent: bool

    def format(self, value: float | None) -> str:
        """The value as a card states it, e.g. `"99.38%"` or `"2.0123 bpc"`; `"-"` for None."""
        if value is None:
            return "-"
        return f"{value:.{self.decimals}%}" if self.percent else f"{value:.{self.decimals}f} bpc"


METRICS: dict[str, Metric] = {
    "top1_accuracy": Metric("top-1 accuracy", "accuracy", higher_is_better=True, decimals=2, percent=True),
    "bits_per_character": Metric("bits per character", "bits_per_character", higher_is_better=False,
                                 decimals=4, percent=False),
}


@dataclasses.dataclass(frozen=True, kw_only=True)
class PretrainedConfig:
    """Everything known about one set of pretrained weights (keyword arguments only).

    Attributes:
        weights_file: File name in `zoo/weights/` (compact `.npz`, see `keras_bnn.zoo.weights`).
        sha256: Hex sha256 of that file; checked before every load.
        size_bytes: Size of that file.
        dataset: Dataset trained and tested on (a `keras_bnn.datasets` name).
        preprocessing: What the model expects as input.
        metric: The card's metric, a key of `METRICS` (default "top1_accuracy").
        test_split: The split the card's test figure is measured on (default "test"; GLUE SST-2 has no test
            labels, so its dev set, "validation", is the test split there).
        test_accuracy: Top-1 accuracy on the full test split, measured from the compact file (accuracy
            metric).
        test_examples: Number of test examples (images, sentences, or predicted characters).
        validation_accuracy: Top-1 accuracy on the validation data described by `validation_description`.
        float_twin_test_accuracy: Test accuracy of the same architecture without quantizers, or None.
        test_bits_per_character: Test bits per character, measured from the compact file (bpc metric).
        validation_bits_per_character: Bits per character on the validation data.
        float_twin_test_bits_per_character: Test bits per character of the float twin, or None.
        validation_description: What the validation figure is measured on.
        flatbuffer_bytes: Size of the LCE flatbuffer from `keras_bnn.tflite.converter.convert`.
        bitpacked_share: Share of binary MACs that run bitpacked in that flatbuffer (None: no binary MACs).
        flatbuffer_macs: MACs of one inference of that flatbuffer by category (`keras_bnn.tflite.inspect`:
            bitpacked, unpacked_binary, activation_binary, other), or None when not recorded. A text model's
            card counts MACs from here (larq's profile counts conv/dense layers only).
        epochs: Training epochs.
        seed: Training seed.
        train_wall_time_s: Wall time of training (the `fit` call), in seconds, on the machine named in notes.
        command: The command that reproduces the training and writes the weights file.
        license: License of the weights.
        paper: Reference of the architecture.
        url: Release URL of the weights file, or None when it only ships inside the package.
        notes: Anything a user should know (how binary weights are stored, what was not reached, ...).

    Raises:
        ValueError: an unknown `metric`, or no test figure for it.
    """

    weights_file: str
    sha256: str
    size_bytes: int
    dataset: str
    preprocessing: str
    test_examples: int
    flatbuffer_bytes: int
    bitpacked_share: float | None
    epochs: int
    seed: int
    train_wall_time_s: float
    command: str
    license: str
    paper: str
    metric: str = "top1_accuracy"
    test_split: str = "test"
    test_accuracy: float | None = None
    validation_accuracy: float | None = None
    float_twin_test_accuracy: float | None = None
    test_bits_per_character: float | None = None
    validation_bits_per_character: float | None = None
    float_twin_test_bits_per_character: float | None = None
    validation_description: str = "last 10% of train, held out"
    flatbuffer_macs: dict[str, int] | None = None
    url: str | None = None
    notes: str = ""

    def __post_init__(self) -> None:
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {sorted(METRICS)}, got {self.metric!r}.")
        if self.test_score is None:
            raise ValueError(f"A {self.metric} config needs test_{METRICS[self.metric].field}.")

    @property
    def test_score(self) -> float | None:
        """The card's test figure, in the unit of `metric`."""
        return getattr(self, f"test_{METRICS[self.metric].field}")

    @property
    def validation_score(self) -> float | None:
        """The card's validation figure, in the unit of `metric`."""
        return getattr(self, f"validation_{METRICS[self.metric].field}")

    @property
    def float_twin_test_score(self) -> float | None:
        """The float twin's test figure, in the unit of `metric`, or None."""
        return getattr(self, f"float_twin_test_{METRICS[self.metric].field}")


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
        sha256="587f86ac76d2c9efee830a3bb9c5b588be53c5a8abae3fc993a764dc102e0d20",
        size_bytes=1358700,
        dataset="mnist",
        preprocessing=_PREPROCESSING,
        test_accuracy=0.9884,
        test_examples=10000,
        validation_accuracy=0.9880,
        float_twin_test_accuracy=None,
        flatbuffer_bytes=7502504,
        bitpacked_share=1.0,
        flatbuffer_macs={"bitpacked": 8409088, "unpacked_binary": 0, "activation_binary": 0, "other": 1605632},
        epochs=20,
        seed=0,
        train_wall_time_s=2774.0,
        command="python -m keras_bnn.zoo.training.train binarynet_mlp.mnist --epochs 20 --seed 0",
        license=_LICENSE.format(data="MNIST, CC BY-SA 3.0 (LeCun & Cortes)"),
        paper="Courbariaux et al., 'Binarized Neural Networks', NeurIPS 2016",
        notes=_BITS_NOTE.format(scales="")
        + " The first layer has binary weights but a real input (the pixels), so LCE cannot bitpack it: its "
        "1.6M weights stay float32 in the flatbuffer (6.4 MB of its 7.5 MB); the three binary-input layers "
        "are bitpacked. Recipe: Adam 1e-3 with cosine decay, batch 100, random translations of up to 2 pixels "
        "(without them, 12 epochs reached 98.47% and a 30-epoch run overfit: 99.86% train, 98.40% held-out "
        "at epoch 18). Wall time is the sum of the 20 epoch times in the Keras log: the run's export step "
        "failed because a source file changed while it ran, and was redone from its checkpoint with "
        "--export-only, which printed the figures above.",
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
    "binary_gru_lm.tiny_shakespeare": PretrainedConfig(
        weights_file="binary_gru_lm.tiny_shakespeare.npz",
        sha256="a3445d5dda52d7bc59a98566bdd5f1d53f5cc99264329b86147bf5c1d394c727",
        size_bytes=131630,
        dataset="tiny_shakespeare",
        preprocessing=(
            "int32 character ids of any length: keras_bnn.zoo.tokenizer('binary_gru_lm.tiny_shakespeare')"
            ".encode(text) (the 65 characters of Tiny Shakespeare, sorted; stored in the weights file); the "
            "model returns next-character logits"
        ),
        metric="bits_per_character",
        test_bits_per_character=2.5170,
        test_examples=55744,
        validation_bits_per_character=2.3941,
        validation_description="Tiny Shakespeare validation split, streamed the same way",
        float_twin_test_bits_per_character=2.3050,
        flatbuffer_bytes=133760,
        bitpacked_share=1.0,
        flatbuffer_macs={"bitpacked": 245760, "unpacked_binary": 0, "activation_binary": 0, "other": 16640},
        epochs=13,
        seed=1,
        train_wall_time_s=856.8,
        command=(
            ".venv/bin/python benchmarks/gru_lm.py --steps 2000 --log-every 100 --tbptt --ablation-steps 150 "
            "--save-dir /tmp/gru2/weights --output /tmp/gru2/gru_lm.json && .venv/bin/python -m "
            "keras_bnn.zoo.training.export_text binary_gru_lm.tiny_shakespeare --weights "
            "/tmp/gru2/weights/binary.weights.h5 --float-weights /tmp/gru2/weights/float.weights.h5"
        ),
        license="Apache-2.0 (weights); data: Tiny Shakespeare (Karpathy's char-rnn corpus; Shakespeare's text is "
                "in the public domain)",
        paper="Cho et al., 'Learning Phrase Representations using RNN Encoder-Decoder', EMNLP 2014 (GRU); "
              "binarization: keras_bnn.layers.BinaryGRU",
        notes=(
            "Test bits per character are streamed as in benchmarks/gru_lm.py: the test text is cut into 32 "
            "contiguous streams of 1,742 characters, read 100 characters per call with the GRU state carried "
            "over (keras_bnn.zoo.evaluation.streamed_bits_per_character); 55,744 characters are predicted. "
            "From a zero state every 100 characters instead: 2.5685 bpc. The float twin is Keras' GRU of the same "
            "size (no quantizers, no gate scale) trained the same way in the same run (test 2.3050 bpc, validation "
            "2.1446). Trained with truncated BPTT on 64 "
            "contiguous streams of the train split (state carried across batches), 100 characters per step, "
            "Adam 3e-3 with cosine decay and clipnorm 1: --steps 2000 rounds up to 13 passes of 156 steps "
            "(2,028 steps). The two GRU kernels (64x768 and 256x768) are stored as packed sign bits; the "
            "embedding, biases, gate scales and the Dense head as float32. The flatbuffer is the batch-1, "
            "one-character step model (keras_bnn.text.step_model) with the state as input and output. Training "
            "ran on " + _MACHINE + ", shared with other jobs."
        ),
    ),
    "binary_transformer.sst2": PretrainedConfig(
        weights_file="binary_transformer.sst2.npz",
        sha256="1870994d7da5735546dda7d416bb132cd42c18502c64336c8b2cb75d0b5f9aed",
        size_bytes=3264288,
        dataset="sst2",
        preprocessing=(
            "int32 word ids, shape (48,), 0-padded: keras_bnn.zoo.tokenizer('binary_transformer.sst2')"
            "(sentences) (TextVectorization: lower-case, strip punctuation, split on whitespace, the 12,000-word "
            "vocabulary of SST-2 train stored in the weights file; 1 = unknown word); the model returns 2 "
            "logits (0: negative, 1: positive)"
        ),
        test_split="validation",
        test_accuracy=0.8016,
        test_examples=872,
        validation_accuracy=0.8938,
        validation_description="5,000 sentences of SST-2 train held out from training (seed 1)",
        float_twin_test_accuracy=0.7982,
        flatbuffer_bytes=3146820,
        bitpacked_share=1.0,
        flatbuffer_macs={"bitpacked": 3145728, "unpacked_binary": 0, "activation_binary": 294912, "other": 295040},
        epochs=1,
        seed=1,
        train_wall_time_s=125.0,
        command=(
            "nice -n 10 .venv/bin/python benchmarks/attention.py --variants ste_sign --save-dir "
            "/tmp/attn_ste/weights --output /tmp/attn_ste/attention.json && .venv/bin/python -m "
            "keras_bnn.zoo.training.export_text binary_transformer.sst2 --weights "
            "/tmp/attn_ste/weights/binary.weights.h5 --float-weights /tmp/attn_ste/weights/float.weights.h5 "
            "--vocabulary /tmp/attn_ste/weights/vocabulary.json"
        ),
        license="Apache-2.0 (weights); data: GLUE SST-2 (Socher et al., Stanford Sentiment Treebank, "
                "https://nlp.stanford.edu/sentiment/)",
        paper="Vaswani et al., 'Attention Is All You Need', NeurIPS 2017; binarization as in Qin et al., "
              "'BiBERT', ICLR 2022 (without Bi-Attention)",
        notes=(
            "GLUE SST-2's test labels are not public, so the card's test figure is GLUE dev (the validation "
            "split, 872 sentences), never used for a choice. Trained from scratch (no pretrained BERT): the "
            "float teacher (same blocks without quantizers, GELU feed-forward) for 2 epochs (78 s, dev 79.82%), "
            "then this binary model, initialised from it, for 1 epoch (47 s) with distillation from its logits "
            "(temperature 2, half label loss), keeping the epoch with the best held-out accuracy. This is the "
            "ste_sign variant that benchmarks/attention.py selected in benchmarks/results/attention.json "
            "(held-out 89.38%, dev 80.16%); it reproduced bit for bit here. A full rerun of the 4-variant "
            "ablation picked learnable_threshold_sign instead (held-out 89.60% there, 89.28% in the committed "
            "run: that variant's training is not bit-reproducible on this machine), so the command trains only "
            "ste_sign. All 12 binary kernels are stored as packed sign bits plus one float32 magnitude per "
            "output unit; the 12,000x64 real embedding (3.07 MB float32) is most of the file. The flatbuffer "
            "is the model at batch 1 and length 48; on all of dev LCE's interpreter agrees with Keras on every "
            "sentence (benchmarks/attention.py). Training ran on " + _MACHINE + ", shared with other jobs."
        ),
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
