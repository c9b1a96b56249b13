"""keras_bnn.zoo: a registry of binary architectures, model cards, and pretrained weights trained here.

Names are `architecture.dataset`. Models are Functional Keras models built from keras_bnn, larq and Keras
layers; pretrained weights ship as compact files (binary kernels as packed bits) checked by sha256. Image
classifiers take pixels; the text models take token ids, and `tokenizer(name)` turns raw text into them with
the vocabulary stored in the weights file.

Example:
    >>> import keras_bnn
    >>> keras_bnn.zoo.list_models(pretrained=True)  # doctest: +NORMALIZE_WHITESPACE
    ['binary_cnn.mnist', 'binary_gru_lm.tiny_shakespeare', 'binary_transformer.sst2', 'binarynet_mlp.mnist',
     'birealnet_small.fashion_mnist', 'xnornet_small.fashion_mnist']
    >>> model = keras_bnn.zoo.get("birealnet_small.fashion_mnist", include_top=False)
    >>> model.output_shape
    (None, 7, 7, 96)
"""

from keras_bnn.zoo import architectures  # noqa: F401  (registers the small models)
from keras_bnn.zoo import imagenet  # noqa: F401  (registers the ImageNet definitions)
from keras_bnn.zoo import text_models  # noqa: F401  (registers the text models)
from keras_bnn.zoo import weights
from keras_bnn.zoo.api import get, list_models
from keras_bnn.zoo.cards import model_card
from keras_bnn.zoo.evaluation import evaluate
from keras_bnn.zoo import pretrained
from keras_bnn.zoo.pretrained import PretrainedConfig, pretrained_config
from keras_bnn.zoo.text import tokenizer
from keras_bnn.zoo.weights import WeightsFileError

__all__ = [
    "PretrainedConfig",
    "WeightsFileError",
    "evaluate",
    "get",
    "list_models",
    "model_card",
    "pretrained",
    "pretrained_config",
    "tokenizer",
    "weights",
]
