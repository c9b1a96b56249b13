"""keras_bnn.zoo: a registry of binary architectures, model cards, and pretrained weights trained here.

Names are `architecture.dataset`. Models are Functional Keras models built from keras_bnn, larq and Keras
layers; pretrained weights ship as compact files (binary kernels as packed bits) checked by sha256.

Example:
    >>> import keras_bnn
    >>> keras_bnn.zoo.list_models(pretrained=True)
    ['binary_cnn.mnist', 'binarynet_mlp.mnist', 'birealnet_small.fashion_mnist', 'xnornet_small.fashion_mnist']
    >>> model = keras_bnn.zoo.get("birealnet_small.fashion_mnist", include_top=False)
    >>> model.output_shape
    (None, 7, 7, 96)
"""

from keras_bnn.zoo import architectures  # noqa: F401  (registers the small models)
from keras_bnn.zoo import imagenet  # noqa: F401  (registers the ImageNet definitions)
from keras_bnn.zoo import weights
from keras_bnn.zoo.api import get, list_models
from keras_bnn.zoo.cards import model_card
from keras_bnn.zoo.evaluation import evaluate
from keras_bnn.zoo.pretrained import PretrainedConfig, pretrained_config
from keras_bnn.zoo.weights import WeightsFileError

__all__ = [
    "PretrainedConfig",
    "WeightsFileError",
    "evaluate",
    "get",
    "list_models",
    "model_card",
    "pretrained_config",
    "weights",
]
