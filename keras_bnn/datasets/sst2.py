"""A tensorflow-datasets builder for GLUE SST-2 that reads the GLUE TSV files from a local folder.

TFDS's own `glue/sst2` downloads `SST-2.zip`, which is no longer reachable. `Sst2` has the same features as
`glue/sst2` and builds them from the two TSV files of that zip, `train.tsv` and `dev.tsv`, placed in the
builder's manual folder. It never downloads anything. Importing this module registers the builder with
tfds under the name `sst2`.

Differences from `glue/sst2`:

* There is no `test` split: GLUE's test labels are not public, so the test file cannot be used for accuracy.
  Report accuracy on `validation` (GLUE's `dev.tsv`) and hold out part of `train` for tuning.
* Sentences lose the single space that GLUE puts before each tab (`glue/sst2` keeps it).

Example:
    >>> import keras_bnn
    >>> import tensorflow_datasets as tfds
    >>> from keras_bnn.datasets import raw_data_dir
    >>> builder = tfds.builder("sst2", data_dir="/tmp/keras_bnn_doc_data")
    >>> builder.download_and_prepare(
    ...     download_config=tfds.download.DownloadConfig(manual_dir=raw_data_dir() / "sst2"))
    >>> builder.info.splits["validation"].num_examples
    872
"""

from __future__ import annotations

import csv

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

__all__ = ["Sst2"]

_UrlInfo = tfds.download.checksums.UrlInfo
_NonMatchingChecksumError = tfds.download.download_manager.NonMatchingChecksumError

_CITATION = """\
@inproceedings{socher2013recursive,
  title={Recursive deep models for semantic compositionality over a sentiment treebank},
  author={Socher, Richard and Perelygin, Alex and Wu, Jean and Chuang, Jason and Manning, Christopher D
          and Ng, Andrew and Potts, Christopher},
  booktitle={Proceedings of the 2013 Conference on Empirical Methods in Natural Language Processing},
  pages={1631--1642},
  year={2013}
}
@inproceedings{wang2019glue,
  title={{GLUE}: A Multi-Task Benchmark and Analysis Platform for Natural Language Understanding},
  author={Wang, Alex and Singh, Amanpreet and Michael, Julian and Hill, Felix and Levy, Omer
          and Bowman, Samuel R.},
  booktitle={International Conference on Learning Representations},
  year={2019}
}
"""


class Sst2(tfds.core.GeneratorBasedBuilder):
    """GLUE SST-2 (binary sentiment of movie-review sentences), built from local GLUE TSV files.

    Features, as in `glue/sst2`: `idx` (int32, the row number in its file), `sentence` (Text) and
    `label` (ClassLabel `negative`/`positive`). Supervised keys are `("sentence", "label")`.
    Splits: `train` (`train.tsv`, 67,349 rows) and `validation` (`dev.tsv`, 872 rows). The files are
    checked against their known size and sha256 before anything is written.

    Example:
        >>> import keras_bnn
        >>> from keras_bnn.datasets import load
        >>> sentence, label = next(iter(load("sst2", "validation", data_dir="/tmp/keras_bnn_doc_data")))
        >>> int(label) in (0, 1)
        True
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "GLUE SST-2 train and dev, read from local TSV files."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Put the GLUE SST-2 files `train.tsv` and `dev.tsv` (the files inside GLUE's `SST-2.zip`, header
    `sentence<TAB>label`) directly in the manual folder. GLUE's `test.tsv` is not used: its labels are not public.
    """
    # Split name -> the file it is built from, with that file's known size and sha256.
    MANUAL_FILES = {
        "train": _UrlInfo(
            size=3_806_081,
            checksum="48eac26399f8456935f81dd9e3a745c1430adb6c62e233ccfe22db4a0d15d1d1",
            filename="train.tsv",
        ),
        "validation": _UrlInfo(
            size=94_931,
            checksum="54a9c12c77e402fc14d6a66a506f24d999f596b0176eb777c972cccc2f9cc4b0",
            filename="dev.tsv",
        ),
    }

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description=(
                "The Stanford Sentiment Treebank, binary version from the GLUE benchmark: sentences from "
                "movie reviews labelled negative (0) or positive (1). GLUE's test labels are not public, "
                "so only train and validation (GLUE dev) are provided."
            ),
            features=tfds.features.FeaturesDict(
                {
                    "idx": np.int32,
                    "sentence": tfds.features.Text(),
                    "label": tfds.features.ClassLabel(names=["negative", "positive"]),
                }
            ),
            supervised_keys=("sentence", "label"),
            homepage="https://nlp.stanford.edu/sentiment/index.html",
            citation=_CITATION,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        folder = dl_manager.manual_dir
        generators = {}
        for split, expected in self.MANUAL_FILES.items():
            path = folder / expected.filename
            if not path.exists():
                raise FileNotFoundError(
                    f"{path} is missing. {tfds.core.utils.dedent(self.MANUAL_DOWNLOAD_INSTRUCTIONS)}"
                )
            found = tfds.download.checksums.compute_url_info(path)
            if found != expected:  # UrlInfo equality compares size and checksum.
                raise _NonMatchingChecksumError(
                    f"{path} is not the GLUE SST-2 {expected.filename}: expected {expected.size} bytes with "
                    f"sha256 {expected.checksum}, got {found.size} bytes with sha256 {found.checksum}."
                )
            generators[split] = self._generate_examples(path)
        return generators

    def _generate_examples(self, path: epath.Path):
        with epath.Path(path).open("r", encoding="utf-8") as file:
            reader = csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE)
            header = next(reader)
            if header != ["sentence", "label"]:
                raise ValueError(f"{path}: expected the header ['sentence', 'label'], got {header}.")
            for idx, row in enumerate(reader):
                if len(row) != 2:
                    raise ValueError(f"{path}: data row {idx} has {len(row)} fields, expected 2: {row!r}.")
                sentence, label = row
                # GLUE writes "<sentence> \t<label>": drop the space before the tab.
                yield idx, {"idx": idx, "sentence": sentence.removesuffix(" "), "label": int(label)}
