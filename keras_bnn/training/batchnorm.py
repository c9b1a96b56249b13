"""BatchNorm re-estimation on Keras 3: recompute BatchNormalization moving statistics with the final weights.

A BNN's BatchNorm moving averages are updated during training while the binary weights keep flipping, so at the
end they can describe networks that no longer exist; with momentum 0.99 they lag ~100 steps behind, and a single
late flip burst can leave inference accuracy far below training accuracy. `reestimate_batchnorm` replaces
every BatchNorm's moving mean and variance by their average over a number of batches computed with the final
weights, as SWA's ``update_bn`` does in PyTorch:

* each BatchNorm normalises the batch with the batch's own mean and (biased) variance, as in training, so that
  the statistics of later BatchNorms see the inputs the trained network saw;
* every other layer runs in inference mode (``training=False``: no dropout, deterministic quantizers);
* the new moving mean and variance are the cumulative averages of the per-batch means and variances, each
  batch weighted by its number of examples.

Backend-neutral: the forward passes run eagerly (``keras.ops`` only) with each BatchNormalization's ``call``
replaced, for their duration, by one that uses and records the batch statistics (the tf-keras version ran one
``tf.function``; Keras 3's BatchNormalization has no renorm or virtual batches to refuse).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_bnn.training._walk import layers_of_type

__all__ = ["BatchNormReestimation", "batchnorm_layers", "reestimate_batchnorm"]


def batchnorm_layers(model: keras.layers.Layer) -> list[keras.layers.BatchNormalization]:
    """Every BatchNormalization in `model`, nested ones (e.g. inside a block or a nested model) included.

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2), keras.layers.BatchNormalization()])
        >>> len(batchnorm_layers(model))
        1
    """
    return layers_of_type(model, keras.layers.BatchNormalization)


class _Accumulator:
    """Example-weighted sums (float64, numpy) of the per-batch means and variances of one BatchNormalization."""

    def __init__(self, layer: keras.layers.BatchNormalization) -> None:
        self.layer = layer
        self.mean_sum = np.zeros(tuple(layer.moving_mean.shape), np.float64)
        self.variance_sum = np.zeros(tuple(layer.moving_variance.shape), np.float64)
        self.count = 0

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        layer = self.layer
        dtype = layer.moving_mean.dtype
        values = ops.cast(inputs, dtype)
        rank = len(values.shape)
        axis = layer.axis % rank
        reduction = [a for a in range(rank) if a != axis]
        mean, variance = ops.moments(values, axes=reduction)
        batch = int(values.shape[0])
        self.mean_sum += batch * ops.convert_to_numpy(mean).astype(np.float64)
        self.variance_sum += batch * ops.convert_to_numpy(variance).astype(np.float64)
        self.count += batch
        outputs = ops.batch_normalization(values, mean, variance, axis=axis,
                                          offset=None if layer.beta is None else ops.cast(layer.beta, dtype),
                                          scale=None if layer.gamma is None else ops.cast(layer.gamma, dtype),
                                          epsilon=layer.epsilon)
        return ops.cast(outputs, inputs.dtype)

    def commit(self) -> None:
        self.layer.moving_mean.assign((self.mean_sum / self.count).astype(self.layer.moving_mean.dtype))
        self.layer.moving_variance.assign((self.variance_sum / self.count).astype(self.layer.moving_variance.dtype))


@contextlib.contextmanager
def _batch_statistics(layers: list[keras.layers.BatchNormalization]) -> Iterator[list[_Accumulator]]:
    """Within the context each layer's ``call`` normalises with batch statistics and accumulates them."""
    accumulators = [_Accumulator(layer) for layer in layers]
    try:
        for accumulator in accumulators:
            accumulator.layer.call = accumulator.call  # instance attribute: shadows the class' call
        yield accumulators
    finally:
        for accumulator in accumulators:
            accumulator.layer.__dict__.pop("call", None)


def _check_num_batches(num_batches: Any) -> None:
    if num_batches is None:
        return
    if isinstance(num_batches, bool) or not isinstance(num_batches, int) or num_batches < 1:
        raise ValueError(f"num_batches must be a positive int or None, got {num_batches!r}.")


def _plain(value: Any) -> Any:
    """A tensor of another framework (e.g. from a ``tf.data`` pipeline on the JAX backend) as numpy."""
    if hasattr(value, "numpy") and not ops.is_tensor(value):
        return value.numpy()
    return value


def _inputs_of(batch: Any) -> Any:
    """The model inputs of a batch: the first element of an (inputs, targets[, weights]) tuple, else the batch."""
    inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
    return keras.tree.map_structure(_plain, inputs)


def reestimate_batchnorm(model: keras.Model, dataset: Iterable, num_batches: int | None = 100) -> int:
    """Recompute the moving mean and variance of every BatchNormalization of `model` over `num_batches` batches.

    See the module docstring for the method. The model's weights other than the BatchNorm moving statistics are
    untouched.

    Args:
        model: A built Keras model.
        dataset: Batches: any iterable (a ``tf.data.Dataset``, a ``keras.utils.PyDataset``'s items, a list of
            arrays ...) of inputs or of (inputs, targets[, weights]).
        num_batches: How many batches to use (fewer if the dataset ends first); None uses them all.

    Returns:
        The number of batches used.

    Raises:
        ValueError: `num_batches` is not a positive int or None, the model has no BatchNormalization or is not
            built, or the dataset yields no batch.

    Example:
        >>> import keras, numpy as np
        >>> from keras_bnn.training import reestimate_batchnorm
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.BatchNormalization()])
        >>> reestimate_batchnorm(model, [np.array([[1.0, 2.0]], "float32"), np.array([[3.0, 6.0]], "float32")])
        2
        >>> [keras.ops.convert_to_numpy(v).tolist() for v in (model.layers[0].moving_mean,
        ...                                                     model.layers[0].moving_variance)]
        [[2.0, 4.0], [0.0, 0.0]]
    """
    _check_num_batches(num_batches)
    layers = batchnorm_layers(model)
    if not layers:
        raise ValueError(f"Model {model.name!r} has no BatchNormalization layer to re-estimate.")
    if not model.built:
        raise ValueError(f"Model {model.name!r} is not built.")
    with _batch_statistics(layers) as accumulators:
        used = 0
        for batch in dataset:
            if num_batches is not None and used >= num_batches:
                break
            model(_inputs_of(batch), training=False)
            used += 1
        if used == 0:
            raise ValueError("reestimate_batchnorm: the dataset yielded no batch.")
        for accumulator in accumulators:
            if accumulator.count:
                accumulator.commit()
    return used


class BatchNormReestimation(keras.callbacks.Callback):
    """Callback: `reestimate_batchnorm` at the end of training (and, optionally, after every epoch).

    Args:
        dataset: Batches to estimate on (usually the training set, without augmentation).
        num_batches: Batches per re-estimation; None uses the whole dataset.
        every_epoch: Also re-estimate at each epoch end (Keras validates before ``on_epoch_end``, so this
            affects later epochs' validation only).

    Example:
        >>> import keras, numpy as np
        >>> from keras_bnn.training import BatchNormReestimation
        >>> model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2), keras.layers.BatchNormalization()])
        >>> model.compile("adam", "mse")
        >>> x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
        >>> callback = BatchNormReestimation([x[i:i + 16] for i in range(0, 64, 16)], num_batches=4)
        >>> _ = model.fit(x, x, epochs=1, verbose=0, callbacks=[callback])
        >>> callback.batches_used
        4
    """

    def __init__(self, dataset: Iterable, num_batches: int | None = 100, every_epoch: bool = False) -> None:
        super().__init__()
        _check_num_batches(num_batches)
        self.dataset = dataset
        self.num_batches = num_batches
        self.every_epoch = bool(every_epoch)
        self.batches_used = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.every_epoch:
            self.batches_used = reestimate_batchnorm(self.model, self.dataset, self.num_batches)

    def on_train_end(self, logs: dict | None = None) -> None:
        self.batches_used = reestimate_batchnorm(self.model, self.dataset, self.num_batches)
