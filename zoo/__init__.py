"""keras_bnn.zoo: binary architectures as data, model cards, and pretrained weights trained here.

Names are `architecture.tag`; each has one `ZooEntry` (builder, task, pretrained weights and scores, training
recipe, paper figures, card prose), defined next to its builder in `keras_bnn.zoo.models`. Models are Functional
Keras 3 models built from keras_bnn and Keras layers, on any backend (`get(name, legacy=True)` builds the same
definition with tf-keras, larq and keras_bnn.legacy layers, which is what the converter takes for now; importing
the zoo imports neither). Pretrained weights ship as compact files (binary kernels
as packed bits) checked by sha256 and are read only when a model is asked for with `pretrained=True`. Image
classifiers take pixels; the text models take token ids, and `tokenizer(name)` turns raw text into them with the
vocabulary stored in the weights file.

Example:
    >>> import keras_bnn.zoo as zoo
    >>> zoo.list_models(pretrained=True)  # doctest: +NORMALIZE_WHITESPACE
    ['binary_cnn.mnist', 'binary_gru_lm.tiny_shakespeare', 'binary_transformer.sst2', 'binarynet_mlp.mnist',
     'birealnet_small.fashion_mnist', 'xnornet_small.fashion_mnist']
    >>> zoo.get("birealnet_small.fashion_mnist", include_top=False).output_shape
    (None, 7, 7, 96)
"""

from keras_bnn.zoo import models as _models  # noqa: F401  (registers every entry)
from keras_bnn.zoo import samples, weights
from keras_bnn.zoo.api import get, list_models
from keras_bnn.zoo.cards import model_card
from keras_bnn.zoo.evaluation import evaluate
from keras_bnn.zoo.registry import METRICS, TASKS, Metric, Pretrained, Task, ZooEntry, entry, register
from keras_bnn.zoo.tokenizers import tokenizer
from keras_bnn.zoo.weights import WeightsFileError

__all__ = [
    "METRICS",
    "TASKS",
    "Metric",
    "Pretrained",
    "Task",
    "WeightsFileError",
    "ZooEntry",
    "entry",
    "evaluate",
    "get",
    "list_models",
    "model_card",
    "register",
    "samples",
    "tokenizer",
    "weights",
]
