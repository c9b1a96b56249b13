"""Ranges of Keras tensors on representative data, for the int8 quantization of real-valued tensors.

Each range comes from a Keras sub-model (the model's inputs to the tensor) run batch by batch on the
representative data; a lowering rule can also ask for the range of a function of a tensor (the inside of a
composite layer such as Bi-Real's residual branch), computed from the tensor's values with the layer's own
sublayers.

Example:
    >>> import keras_bnn, numpy as np, tensorflow as tf
    >>> from keras_bnn.tflite.targets.int8.calibration import Calibrator
    >>> inputs = tf.keras.Input((3,))
    >>> model = tf.keras.Model(inputs, tf.keras.layers.Rescaling(2.0)(inputs))
    >>> Calibrator(model, np.array([[0.0, 1.0, -1.0]])).range(model.outputs[0])
    (-2.0, 2.0)
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import tensorflow as tf

__all__ = ["Calibrator", "Tap"]


class Tap:
    """The values of one Keras tensor of the model (or of a function of it) on the representative data.

    Args:
        calibrator: the :class:`Calibrator` that runs the model.
        tensor: a Keras tensor of the model.
        function: applied to each batch of the tensor's values (None: the values themselves).
        key: cache key of the range (defaults to the tensor).
    """

    def __init__(self, calibrator: "Calibrator", tensor, function=None, key=None):
        self.calibrator, self.tensor, self.function = calibrator, tensor, function
        self.key = key if key is not None else ("tensor", id(tensor))

    def batches(self) -> Iterator[np.ndarray]:
        for values in self.calibrator.batches(self.tensor):
            yield values if self.function is None else np.asarray(self.function(values))

    def range(self) -> tuple[float, float]:
        """(min, max) over the data, cached in the calibrator."""
        return self.calibrator.range_of(self.tensor, self.function, key=self.key)


class Calibrator:
    """Min/max of Keras tensors of `model` over `data`, cached.

    Args:
        model: the Keras model being lowered.
        data: representative model inputs, shape (N, ...) like the model's input.
        batch_size: samples per Keras call.
    """

    def __init__(self, model: tf.keras.Model, data: np.ndarray, batch_size: int = 128):
        self.model = model
        self.data = np.asarray(data, np.float32)
        self.batch_size = batch_size
        self._ranges: dict = {}
        self._submodels: dict = {}

    def batches(self, tensor) -> Iterator[np.ndarray]:
        """The values of a Keras tensor of the model, batch by batch."""
        key = id(tensor)
        if key not in self._submodels:
            self._submodels[key] = tf.keras.Model(self.model.inputs, tensor)
        submodel = self._submodels[key]
        for start in range(0, len(self.data), self.batch_size):
            yield np.asarray(submodel(self.data[start:start + self.batch_size], training=False))

    def range(self, tensor) -> tuple[float, float]:
        """(min, max) of a Keras tensor of the model over the data."""
        return self.range_of(tensor, None, key=("tensor", id(tensor)))

    def range_of(self, tensor, function: Callable[[np.ndarray], np.ndarray] | None, *, key) -> tuple[float, float]:
        """(min, max) of ``function(values of tensor)`` over the data, cached under `key`."""
        if key not in self._ranges:
            low, high = np.inf, -np.inf
            for values in self.batches(tensor):
                if function is not None:
                    values = np.asarray(function(values))
                low, high = min(low, float(values.min())), max(high, float(values.max()))
            self._ranges[key] = (low, high)
        return self._ranges[key]

    def tap(self, tensor, function=None, key=None) -> Tap:
        """A :class:`Tap` on a tensor (ranges and values are computed only when asked for)."""
        return Tap(self, tensor, function, key)
