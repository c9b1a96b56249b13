"""BatchNorm re-estimation: recompute BatchNormalization moving statistics with the final (binary) weights.

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
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import tensorflow as tf

__all__ = ["BatchNormReestimation", "batchnorm_layers", "reestimate_batchnorm"]


def batchnorm_layers(model: tf.keras.Model) -> list[tf.keras.layers.BatchNormalization]:
    """Every BatchNormalization in `model`, nested ones (e.g. inside a Bi-Real block) included."""
    return [m for m in model.submodules if isinstance(m, tf.keras.layers.BatchNormalization)]


class _Accumulator:
    """Weighted sums of per-batch means and variances of one BatchNormalization, in tf.Variables."""

    def __init__(self, layer: tf.keras.layers.BatchNormalization) -> None:
        if getattr(layer, "renorm", False) or getattr(layer, "virtual_batch_size", None):
            raise ValueError(f"BatchNorm re-estimation does not support renorm or virtual batches ({layer.name!r}).")
        self.layer = layer
        dtype = layer.moving_mean.dtype
        with tf.init_scope():
            self.mean_sum = tf.Variable(tf.zeros(layer.moving_mean.shape, dtype), trainable=False)
            self.variance_sum = tf.Variable(tf.zeros(layer.moving_variance.shape, dtype), trainable=False)
            self.count = tf.Variable(tf.zeros((), dtype), trainable=False)

    def call(self, inputs: tf.Tensor, training: Any = None, mask: Any = None) -> tf.Tensor:
        layer = self.layer
        dtype = layer.moving_mean.dtype
        values = tf.cast(inputs, dtype)
        rank = values.shape.rank
        axes = [a % rank for a in layer.axis]
        reduction = [a for a in range(rank) if a not in axes]
        mean, variance = tf.nn.moments(values, reduction, keepdims=True)
        batch = tf.cast(tf.shape(values)[0], dtype)
        param_shape = layer.moving_mean.shape
        self.mean_sum.assign_add(batch * tf.reshape(mean, param_shape))
        self.variance_sum.assign_add(batch * tf.reshape(variance, param_shape))
        self.count.assign_add(batch)
        broadcast = [1] * rank
        for a in axes:
            broadcast[a] = values.shape[a]
        gamma = None if layer.gamma is None else tf.reshape(tf.cast(layer.gamma, dtype), broadcast)
        beta = None if layer.beta is None else tf.reshape(tf.cast(layer.beta, dtype), broadcast)
        outputs = tf.nn.batch_normalization(values, mean, variance, beta, gamma, layer.epsilon)
        return tf.cast(outputs, inputs.dtype)

    def commit(self) -> None:
        self.layer.moving_mean.assign(self.mean_sum / self.count)
        self.layer.moving_variance.assign(self.variance_sum / self.count)


@contextlib.contextmanager
def _batch_statistics(layers: list[tf.keras.layers.BatchNormalization]) -> Iterator[list[_Accumulator]]:
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


def _inputs_of(batch: Any) -> Any:
    """The model inputs of a batch: the first element of an (inputs, targets[, weights]) tuple, else the batch."""
    return batch[0] if isinstance(batch, (tuple, list)) else batch


def reestimate_batchnorm(model: tf.keras.Model, dataset: Iterable, num_batches: int | None = 100) -> int:
    """Recompute the moving mean and variance of every BatchNormalization of `model` over `num_batches` batches.

    See the module docstring for the method. The model's weights other than the BatchNorm moving statistics are
    untouched; the forward passes run as one ``tf.function``.

    Args:
        model: A built Keras model.
        dataset: Batches: a ``tf.data.Dataset`` or any iterable, of inputs or of (inputs, targets[, weights]).
        num_batches: How many batches to use (fewer if the dataset ends first); None uses them all.

    Returns:
        The number of batches used.

    Raises:
        ValueError: `num_batches` is not a positive int or None, the model has no BatchNormalization, a
            BatchNorm uses renorm or virtual batches, or the dataset yields no batch.

    Example:
        >>> import keras_bnn
        >>> import numpy as np, tensorflow as tf
        >>> from keras_bnn.legacy.training import reestimate_batchnorm
        >>> model = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.BatchNormalization()])
        >>> data = tf.data.Dataset.from_tensor_slices(np.array([[1.0, 2.0], [3.0, 6.0]], "float32")).batch(1)
        >>> reestimate_batchnorm(model, data)
        2
        >>> model.layers[0].moving_mean.numpy(), model.layers[0].moving_variance.numpy()  # per-batch var is 0
        (array([2., 4.], dtype=float32), array([0., 0.], dtype=float32))
    """
    _check_num_batches(num_batches)
    layers = batchnorm_layers(model)
    if not layers:
        raise ValueError(f"Model {model.name!r} has no BatchNormalization layer to re-estimate.")
    if not model.built:
        raise ValueError(f"Model {model.name!r} is not built.")
    with _batch_statistics(layers) as accumulators:

        @tf.function(reduce_retracing=True)
        def forward(inputs: Any) -> Any:
            return model(inputs, training=False)

        used = 0
        for batch in dataset:
            if num_batches is not None and used >= num_batches:
                break
            forward(_inputs_of(batch))
            used += 1
        if used == 0:
            raise ValueError("reestimate_batchnorm: the dataset yielded no batch.")
        for accumulator in accumulators:
            accumulator.commit()
    return used


class BatchNormReestimation(tf.keras.callbacks.Callback):
    """Callback: `reestimate_batchnorm` at the end of training (and, optionally, after every epoch).

    Args:
        dataset: Batches to estimate on (usually the training set, without augmentation).
        num_batches: Batches per re-estimation; None uses the whole dataset.
        every_epoch: Also re-estimate at each epoch end, before validation metrics are final for the next
            epoch's logs (Keras validates before ``on_epoch_end``, so this affects later epochs only).

    Example:
        >>> import keras_bnn
        >>> import numpy as np, tensorflow as tf
        >>> from keras_bnn.legacy.training import BatchNormReestimation
        >>> model = tf.keras.Sequential([tf.keras.Input((2,)), tf.keras.layers.Dense(2),
        ...                              tf.keras.layers.BatchNormalization()])
        >>> model.compile("adam", "mse")
        >>> x = np.random.default_rng(0).normal(size=(64, 2)).astype("float32")
        >>> data = tf.data.Dataset.from_tensor_slices(x).batch(16)
        >>> _ = model.fit(x, x, epochs=1, verbose=0, callbacks=[BatchNormReestimation(data, num_batches=4)])
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
