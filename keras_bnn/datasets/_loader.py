"""Load real datasets as `tf.data.Dataset` through tensorflow-datasets' own builders, offline.

`load` asks tfds for the dataset's builder. When the dataset is already prepared in the data folder it is
read straight away. Otherwise the builder prepares it from the raw files in `raw_data_dir()/<name>/`,
passed to tfds as its manual folder: tfds's download manager takes a file from there when the name matches
the file name registered in the builder's checksums, checks its size and sha256, and uses it instead of
downloading. Nothing is ever downloaded unless `allow_download=True` is passed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import re
import sys
from collections.abc import Iterator

import tensorflow as tf
import tensorflow_datasets as tfds

from keras_bnn.datasets import sst2 as _sst2  # noqa: F401  (registers the `sst2` builder with tfds)

__all__ = [
    "RAW_DATA_VARIABLE",
    "DATA_DIR_VARIABLE",
    "DatasetSpec",
    "available",
    "info",
    "raw_data_dir",
    "prepared_data_dir",
    "prepare",
    "load",
]

RAW_DATA_VARIABLE = "KERAS_BNN_RAW_DATA"
DATA_DIR_VARIABLE = "KERAS_BNN_DATA_DIR"


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    """What keras_bnn knows about one dataset it can load.

    Attributes:
        name: The name given to `load`; also the tfds builder name and the raw sub-folder name.
        splits: The split names `load` accepts (tfds slicing such as `"train[:10%]"` works on them).
        supervised_keys: The features `load(..., as_supervised=True)` returns as a tuple, or None when the
            dataset has no (input, target) pair (then see `load` for what `as_supervised` does).
        description: One line about the dataset.
        notes: Anything a user should know about the splits.
    """

    name: str
    splits: tuple[str, ...]
    supervised_keys: tuple[str, str] | None
    description: str
    notes: str = ""

    @property
    def raw_files(self) -> tuple[str, ...]:
        """The file names `prepare` needs in `raw_data_dir()/<name>/`, as the tfds builder names them."""
        builder_cls = tfds.builder_cls(self.name)
        if builder_cls.url_infos:  # Files tfds would download: their names come from tfds's checksums.
            return tuple(sorted(url_info.filename for url_info in builder_cls.url_infos.values()))
        return tuple(sorted(url_info.filename for url_info in builder_cls.MANUAL_FILES.values()))

    @property
    def downloadable(self) -> bool:
        """Whether plain tfds can download this dataset from the internet (`allow_download=True`)."""
        return bool(tfds.builder_cls(self.name).url_infos)


_SPECS = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="mnist",
            splits=("train", "test"),
            supervised_keys=("image", "label"),
            description="Handwritten digits, 28x28x1 uint8 images, 10 classes (60,000 train, 10,000 test).",
        ),
        DatasetSpec(
            name="fashion_mnist",
            splits=("train", "test"),
            supervised_keys=("image", "label"),
            description="Zalando clothing images, 28x28x1 uint8, 10 classes (60,000 train, 10,000 test).",
        ),
        DatasetSpec(
            name="tiny_shakespeare",
            splits=("train", "validation", "test"),
            supervised_keys=None,
            description="Karpathy's 1.1 MB Shakespeare text for character-level language models.",
            notes=(
                "Each split has exactly one element, the whole text of that split: train is characters "
                "[:1003854], validation [1003854:1059624], test [1059624:]."
            ),
        ),
        DatasetSpec(
            name="sst2",
            splits=("train", "validation"),
            supervised_keys=("sentence", "label"),
            description="GLUE SST-2: movie-review sentences labelled negative (0) or positive (1).",
            notes=(
                "There is no test split: GLUE's test labels are not public. validation is GLUE's dev set; "
                "report accuracy on it and hold out part of train for tuning."
            ),
        ),
    )
}


def available() -> list[str]:
    """The names `load` accepts.

    Example:
        >>> import keras_bnn
        >>> keras_bnn.datasets.available()
        ['fashion_mnist', 'mnist', 'sst2', 'tiny_shakespeare']
    """
    return sorted(_SPECS)


def info(name: str) -> DatasetSpec:
    """Describes a dataset that `load` knows: its splits, supervised keys and raw files.

    Args:
        name: One of `available()`.

    Returns:
        The dataset's `DatasetSpec`. For the full tfds metadata, use `prepare(name).info`.

    Raises:
        ValueError: `name` is not one of `available()`.

    Example:
        >>> import keras_bnn
        >>> keras_bnn.datasets.info("sst2").splits
        ('train', 'validation')
    """
    if name not in _SPECS:
        raise ValueError(f"Unknown dataset {name!r}; keras_bnn.datasets knows {available()}.")
    return _SPECS[name]


def raw_data_dir() -> pathlib.Path:
    """The folder holding the raw dataset files, one sub-folder per dataset (e.g. `mnist/`).

    It is `$KERAS_BNN_RAW_DATA` when that variable is set, else `../shared/datasets` relative to the
    repository root (the folder that contains the `keras_bnn` package directory).

    Example:
        >>> import keras_bnn
        >>> (keras_bnn.datasets.raw_data_dir() / "mnist").name
        'mnist'
    """
    configured = os.environ.get(RAW_DATA_VARIABLE)
    if configured:
        return pathlib.Path(configured).expanduser()
    repository_root = pathlib.Path(__file__).resolve().parent.parent.parent
    return repository_root.parent / "shared" / "datasets"


def prepared_data_dir(data_dir: str | os.PathLike | None = None) -> str | None:
    """Where prepared tfds data is written and read: `data_dir`, else `$KERAS_BNN_DATA_DIR`, else None.

    None means tfds's own default (`$TFDS_DATA_DIR` or `~/tensorflow_datasets`).

    Example:
        >>> import keras_bnn
        >>> keras_bnn.datasets.prepared_data_dir("/tmp/prepared")
        '/tmp/prepared'
    """
    if data_dir is not None:
        return os.fspath(pathlib.Path(data_dir).expanduser())
    configured = os.environ.get(DATA_DIR_VARIABLE)
    return os.fspath(pathlib.Path(configured).expanduser()) if configured else None


def prepare(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    raw_dir: str | os.PathLike | None = None,
    allow_download: bool = False,
) -> tfds.core.DatasetBuilder:
    """Returns the tfds builder of `name`, prepared offline from the raw files if it was not prepared yet.

    Order of attempts:

    1. The dataset is already prepared in the data folder (see `prepared_data_dir`): nothing to do.
    2. All raw files are in `<raw_dir>/<name>/`: the builder's `download_and_prepare` runs with that folder
       as tfds's manual folder, so tfds checks the files' sizes and sha256 and builds the dataset without
       touching the network. Each dataset gets its own download folder, `<data folder>/downloads/<name>`:
       MNIST and Fashion-MNIST have the same file names, and in a shared folder tfds would reuse one's
       extracted files for the other.
    3. Some raw files are missing and `allow_download=True`: the same, but tfds downloads the missing files
       from their original URLs (and checks them the same way). Not possible for `sst2`.
    4. Otherwise a FileNotFoundError, at once, naming the folder and the missing files.

    Args:
        name: One of `available()`.
        data_dir: Folder for prepared data (see `prepared_data_dir()` for the default).
        raw_dir: Folder holding one sub-folder of raw files per dataset; defaults to `raw_data_dir()`.
        allow_download: Let tfds download the files when they are not in the raw folder.

    Returns:
        The prepared `tfds.core.DatasetBuilder`; its `.info` has the splits, features and counts.

    Raises:
        ValueError: Unknown `name`.
        FileNotFoundError: The data is neither prepared nor in the raw folder, and `allow_download` is False.

    Example:
        >>> import keras_bnn
        >>> builder = keras_bnn.datasets.prepare("tiny_shakespeare", data_dir="/tmp/keras_bnn_doc_data")
        >>> builder.info.splits["train"].num_examples
        1
    """
    spec = info(name)
    builder = tfds.builder(name, data_dir=prepared_data_dir(data_dir))
    if builder.is_prepared():
        return builder
    manual_dir = _raw_files_or_raise(spec, builder, raw_dir, allow_download)
    # tfds takes each file from manual_dir when its name matches the builder's registered checksums (and
    # downloads the others, which only happens when allow_download=True), then checks size and sha256.
    config = tfds.download.DownloadConfig(
        manual_dir=os.fspath(manual_dir),
        download_mode=tfds.download.GenerateMode.REUSE_DATASET_IF_EXISTS,
        try_download_gcs=False,  # Build from the raw files; never fetch tfds's pre-built copy.
    )
    # Several processes (e.g. the workers of a distributed run) may ask for the same dataset at once: one
    # prepares it, the others wait for it and then read it.
    with _exclusive(pathlib.Path(builder.data_dir_root) / f".keras_bnn_prepare_{name}.lock"):
        builder = tfds.builder(name, data_dir=prepared_data_dir(data_dir))
        if builder.is_prepared():
            return builder
        # One download (and extraction) folder per dataset: MNIST and Fashion-MNIST share file names.
        download_dir = pathlib.Path(builder.data_dir_root) / "downloads" / name
        # tfds prints its progress on stdout, which belongs to a program's results (`--json`): send it to stderr.
        with contextlib.redirect_stdout(sys.stderr):
            builder.download_and_prepare(download_dir=os.fspath(download_dir), download_config=config)
    return builder


def _raw_files_or_raise(spec: DatasetSpec, builder: tfds.core.DatasetBuilder, raw_dir: str | os.PathLike | None,
                        allow_download: bool) -> pathlib.Path:
    """The folder of `spec`'s raw files; FileNotFoundError when some are missing and cannot be downloaded."""
    raw_root = pathlib.Path(raw_dir).expanduser() if raw_dir is not None else raw_data_dir()
    manual_dir = raw_root / spec.name
    missing = [file for file in spec.raw_files if not (manual_dir / file).is_file()]
    if missing and not (allow_download and spec.downloadable):
        source = "raw_dir" if raw_dir is not None else (
            f"${RAW_DATA_VARIABLE}" if os.environ.get(RAW_DATA_VARIABLE) else "the default raw folder"
        )
        hint = (
            ", or pass allow_download=True to let tensorflow-datasets download them"
            if spec.downloadable
            else " (tensorflow-datasets cannot download this dataset)"
        )
        raise FileNotFoundError(
            f"Dataset {spec.name!r} is not prepared in {builder.data_dir_root} and its raw files are missing "
            f"from {manual_dir} (from {source}): missing {missing}. Put the files there, or set the "
            f"environment variable {RAW_DATA_VARIABLE} to a folder that holds a {spec.name}/ sub-folder with "
            f"them{hint}."
        )
    return manual_dir


@contextlib.contextmanager
def _exclusive(lock_path: pathlib.Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` (created if needed) across processes; a no-op without `fcntl`."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no cross-process lock
        yield
        return
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _check_split(spec: DatasetSpec, split: str) -> None:
    """Raises ValueError when a split name in a tfds split string (`"train[:10%]+test"`) is unknown."""
    if not isinstance(split, str):
        raise TypeError(f"split must be a str such as 'train' or 'train[:10%]', got {split!r}.")
    for part in split.split("+"):
        match = re.match(r"\s*([\w-]+)", part)
        split_name = match.group(1) if match else part
        if split_name not in spec.splits and split_name != "all":
            extra = f" {spec.notes}" if spec.notes else ""
            raise ValueError(
                f"Unknown split {split_name!r} in {split!r} for dataset {spec.name!r}; its splits are "
                f"{list(spec.splits)} (tfds slicing such as 'train[:10%]' works on them).{extra}"
            )


def load(
    name: str,
    split: str,
    *,
    as_supervised: bool = True,
    shuffle_files: bool = False,
    data_dir: str | os.PathLike | None = None,
    raw_dir: str | os.PathLike | None = None,
    allow_download: bool = False,
    **tfds_kwargs,
) -> tf.data.Dataset:
    """Loads a split of a real dataset as a `tf.data.Dataset`, offline, through its tfds builder.

    The dataset is prepared once (see `prepare`) and then read from the data folder.

    Args:
        name: One of `available()`: `mnist`, `fashion_mnist`, `tiny_shakespeare`, `sst2`.
        split: A split of the dataset (`info(name).splits`), with tfds slicing allowed:
            `"train[:90%]"`, `"train+test"`.
        as_supervised: Return `(input, label)` tuples (`(image, label)`, `(sentence, label)`) instead of
            feature dicts. `tiny_shakespeare` has no label: with True each element is the split's text as a
            scalar string tensor, with False the tfds dict `{"text": ...}`.
        shuffle_files: Passed to tfds (shuffles the order of the files read, not the examples).
        data_dir: Folder for prepared data: this argument, else `$KERAS_BNN_DATA_DIR`, else tfds's default
            (`~/tensorflow_datasets`).
        raw_dir: Folder holding one sub-folder of raw files per dataset; defaults to `raw_data_dir()`
            (`$KERAS_BNN_RAW_DATA` or `<repository root>/../shared/datasets`).
        allow_download: When the data is neither prepared nor in the raw folder, let tfds download it from
            the internet instead of raising FileNotFoundError. Not possible for `sst2`.
        **tfds_kwargs: Passed on to `tfds.core.DatasetBuilder.as_dataset` (e.g. `batch_size`, `decoders`,
            `read_config`).

    Returns:
        The split as a `tf.data.Dataset` (with `batch_size=-1`, as tfds does: the whole split as tensors).

    Raises:
        ValueError: Unknown `name` or split.
        TypeError: `split` is not a str.
        FileNotFoundError: The data is neither prepared nor in the raw folder, and `allow_download` is False.

    Example:
        >>> import keras_bnn
        >>> dataset = keras_bnn.datasets.load("mnist", "test", data_dir="/tmp/keras_bnn_doc_data")
        >>> image, label = next(iter(dataset))
        >>> image.shape, image.dtype.name
        (TensorShape([28, 28, 1]), 'uint8')
    """
    spec = info(name)
    _check_split(spec, split)
    builder = prepare(name, data_dir=data_dir, raw_dir=raw_dir, allow_download=allow_download)
    if spec.supervised_keys is None:  # tiny_shakespeare: see `as_supervised` above.
        dataset = builder.as_dataset(split=split, shuffle_files=shuffle_files, **tfds_kwargs)
        if not as_supervised:
            return dataset
        if isinstance(dataset, tf.data.Dataset):
            return dataset.map(lambda example: example["text"])
        return dataset["text"]  # batch_size=-1: tfds returned the whole split as tensors.
    return builder.as_dataset(split=split, as_supervised=as_supervised, shuffle_files=shuffle_files, **tfds_kwargs)
