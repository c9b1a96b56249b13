"""Binarization monitor on Keras 3: per binary layer and epoch, how the binary weights and activations behave.

Recorded at the end of every epoch, for each layer with a binary (precision-1) kernel or input quantizer:

* ``flip_ratio``: share of binarized kernel values whose sign changed since the previous epoch end (since the
  start of training for the first epoch). The binarized kernel is the kernel quantizer applied to the latent
  weights; its sign uses larq's convention (+1 for values ≥ 0).
* ``clip_share``: share of latent kernel values at the clip bound, |w| ≥ c, where c is the layer's
  ``WeightClip`` value (else the monitor's `clip_value`). Such weights get no straight-through gradient.
* ``positive_share``: share of +1 among the layer's binarized input activations on a fixed probe batch
  (0.5 is balanced), from a forward pass in inference mode.

Values go to TensorBoard scalars ``<layer>/<metric>`` in `log_dir`, to ``binarization_monitor.json`` in
`log_dir` after every epoch, and to a PNG plot at the end of training; `plot_monitor` redraws the plot from the
JSON. Changed from the tf-keras version: the TensorBoard event file is written by keras_bnn itself in pure
Python (``simple_value`` scalars, which TensorBoard's scalars dashboard shows), so it works on every backend
without TensorFlow; the metrics and files are otherwise the same.
"""

from __future__ import annotations

import json
import os
import pathlib
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
from keras import ops

from keras_bnn import constraints as bnn_constraints
from keras_bnn import quantizers as bnn_quantizers
from keras_bnn.training._events import ScalarEventWriter
from keras_bnn.training._walk import all_layers

__all__ = ["BinarizationMonitor", "METRICS", "plot_monitor"]

METRICS = ("flip_ratio", "clip_share", "positive_share")
JSON_NAME = "binarization_monitor.json"
PLOT_NAME = "binarization_monitor.png"


def _binary(quantizer: Any) -> bool:
    return quantizer is not None and bnn_quantizers.is_binary(quantizer)


def _unique_names(layers: list[keras.layers.Layer]) -> list[str]:
    names, seen = [], {}
    for layer in layers:
        count = seen.get(layer.name, 0)
        seen[layer.name] = count + 1
        names.append(layer.name if count == 0 else f"{layer.name}_{count}")
    return names


class BinarizationMonitor(keras.callbacks.Callback):
    """Keras callback recording flip ratios, clip shares and activation sign balance of binary layers.

    After training, ``monitor.history[layer][metric]`` is the list of per-epoch values (``None`` where a metric
    does not apply to a layer) and ``monitor.epochs`` the epoch numbers.

    Args:
        probe_inputs: A fixed batch of model inputs for the activation statistics.
        log_dir: Folder for TensorBoard events, the JSON history and the PNG plot; None keeps the history in
            memory only.
        clip_value: Clip bound for layers without a ``WeightClip`` kernel constraint.
        plot: Save ``binarization_monitor.png`` in `log_dir` at the end of training.

    Raises:
        ValueError: a non-positive `clip_value`; at train begin, the model has no layer with a binary quantizer.

    Example:
        >>> import keras, keras_bnn, numpy as np
        >>> from keras_bnn.training import BinarizationMonitor
        >>> model = keras.Sequential([keras.Input((4,)), keras_bnn.layers.QuantDense(2, input_quantizer="ste_sign",
        ...     kernel_quantizer="ste_sign", kernel_constraint="weight_clip")])
        >>> model.compile("adam", "mse")
        >>> x = np.random.default_rng(0).normal(size=(16, 4)).astype("float32")
        >>> monitor = BinarizationMonitor(x[:8])
        >>> _ = model.fit(x, np.zeros((16, 2)), epochs=2, verbose=0, callbacks=[monitor])
        >>> sorted(monitor.history[model.layers[0].name]), monitor.epochs
        (['clip_share', 'flip_ratio', 'positive_share'], [0, 1])
    """

    def __init__(self, probe_inputs: Any, log_dir: str | os.PathLike | None = None, clip_value: float = 1.0,
                 plot: bool = True) -> None:
        super().__init__()
        if isinstance(clip_value, bool) or not isinstance(clip_value, (int, float)) or not clip_value > 0:
            raise ValueError(f"BinarizationMonitor clip_value must be a number > 0, got {clip_value!r}.")
        self.probe_inputs = probe_inputs
        self.log_dir = None if log_dir is None else pathlib.Path(log_dir)
        self.clip_value = float(clip_value)
        self.plot = plot
        self.history: dict[str, dict[str, list[float | None]]] = {}
        self.epochs: list[int] = []
        self._kernel_layers: dict[str, keras.layers.Layer] = {}
        self._input_layers: dict[str, keras.layers.Layer] = {}
        self._previous_signs: dict[str, np.ndarray] = {}
        self._writer: ScalarEventWriter | None = None

    # -- what is measured -------------------------------------------------------------------------------------
    @staticmethod
    def binarized_kernel(layer: keras.layers.Layer) -> np.ndarray:
        """The layer's kernel quantizer applied to its latent kernel (inference mode), as numpy."""
        return ops.convert_to_numpy(layer.kernel_quantizer(ops.convert_to_tensor(layer.kernel)))

    def clip_bound(self, layer: keras.layers.Layer) -> float:
        """The layer's ``WeightClip`` value, else the monitor's `clip_value`."""
        constraint = getattr(layer, "kernel_constraint", None)
        if isinstance(constraint, bnn_constraints.WeightClip):
            return float(constraint.clip_value)
        return self.clip_value

    def _positive_shares(self) -> dict[str, float]:
        """Share of +1 in each binary input quantizer's output, from one inference pass on the probe batch."""
        shares: dict[str, float] = {}
        patched: list[keras.layers.Layer] = []

        def recorder(name: str, original: Callable) -> Callable:
            def call(inputs, *args, **kwargs):
                outputs = original(inputs, *args, **kwargs)
                shares[name] = float(np.mean(ops.convert_to_numpy(outputs) > 0))
                return outputs

            return call

        try:
            for name, layer in self._input_layers.items():
                quantizer = layer.input_quantizer
                quantizer.call = recorder(name, quantizer.call)
                patched.append(quantizer)
            self.model(self.probe_inputs, training=False)  # eager: the recorders run
        finally:
            for quantizer in patched:
                quantizer.__dict__.pop("call", None)
        return shares

    # -- callback hooks ---------------------------------------------------------------------------------------
    def on_train_begin(self, logs: dict | None = None) -> None:
        candidates = [layer for layer in all_layers(self.model)
                      if hasattr(layer, "kernel_quantizer") or hasattr(layer, "input_quantizer")]
        names = _unique_names(candidates)
        self._kernel_layers = {
            n: layer for n, layer in zip(names, candidates)
            if _binary(getattr(layer, "kernel_quantizer", None)) and getattr(layer, "kernel", None) is not None}
        self._input_layers = {
            n: layer for n, layer in zip(names, candidates)
            if _binary(getattr(layer, "input_quantizer", None))
            and isinstance(layer.input_quantizer, keras.layers.Layer)}  # a layer's call can be recorded
        if not self._kernel_layers and not self._input_layers:
            raise ValueError(
                f"Model {self.model.name!r} has no layer with a binary (precision-1) quantizer to monitor.")
        for name in {**self._kernel_layers, **self._input_layers}:
            self.history.setdefault(name, {metric: [] for metric in METRICS})
        self._previous_signs = {n: self.binarized_kernel(layer) >= 0 for n, layer in self._kernel_layers.items()}
        if self.log_dir is not None:
            self.log_dir.mkdir(parents=True, exist_ok=True)
            self._writer = ScalarEventWriter(self.log_dir)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        record: dict[str, dict[str, float | None]] = {name: dict.fromkeys(METRICS) for name in self.history}
        for name, layer in self._kernel_layers.items():
            signs = self.binarized_kernel(layer) >= 0
            record[name]["flip_ratio"] = float(np.mean(signs != self._previous_signs[name]))
            self._previous_signs[name] = signs
            latent = ops.convert_to_numpy(layer.kernel)
            record[name]["clip_share"] = float(np.mean(np.abs(latent) >= self.clip_bound(layer)))
        if self._input_layers:
            for name, share in self._positive_shares().items():
                record[name]["positive_share"] = share
        self.epochs.append(int(epoch))
        for name, values in record.items():
            for metric, value in values.items():
                self.history[name][metric].append(value)
        if self._writer is not None:
            for name, values in record.items():
                for metric, value in values.items():
                    if value is not None:
                        self._writer.scalar(f"{name}/{metric}", value, epoch)
            self._writer.flush()
            self.save()

    def on_train_end(self, logs: dict | None = None) -> None:
        if self._writer is not None:
            self._writer.close()
        if self.log_dir is not None and self.plot and self.epochs:
            plot_monitor(self.log_dir)

    def save(self) -> pathlib.Path:
        """Write ``binarization_monitor.json`` (epochs and history) to `log_dir`."""
        if self.log_dir is None:
            raise ValueError("BinarizationMonitor has no log_dir to save to.")
        path = self.log_dir / JSON_NAME
        path.write_text(json.dumps({"epochs": self.epochs, "layers": self.history}, indent=1))
        return path


def plot_monitor(log_dir: str | os.PathLike, output: str | os.PathLike | None = None) -> pathlib.Path:
    """Plot a monitor's ``binarization_monitor.json``: one panel per metric, one line per layer.

    Args:
        log_dir: The monitor's `log_dir`.
        output: PNG path; default ``<log_dir>/binarization_monitor.png``.

    Returns:
        The PNG path.

    Raises:
        FileNotFoundError: `log_dir` has no ``binarization_monitor.json``.

    Example:
        >>> import json, pathlib, tempfile
        >>> from keras_bnn.training import plot_monitor
        >>> folder = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (folder / "binarization_monitor.json").write_text(json.dumps({"epochs": [0, 1], "layers": {"conv": {
        ...     "flip_ratio": [0.2, 0.1], "clip_share": [0.0, 0.05], "positive_share": [0.5, 0.48]}}}))
        >>> plot_monitor(folder).name
        'binarization_monitor.png'
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    source = pathlib.Path(log_dir) / JSON_NAME
    if not source.is_file():
        raise FileNotFoundError(f"No {JSON_NAME} in {log_dir}: is it a BinarizationMonitor log_dir?")
    data = json.loads(source.read_text())
    epochs, layers = data["epochs"], data["layers"]
    titles = {"flip_ratio": "flip ratio of binary weights", "clip_share": "latent weights at the clip bound",
              "positive_share": "share of +1 activations (probe batch)"}
    figure, axes = plt.subplots(1, len(METRICS), figsize=(5 * len(METRICS), 4), constrained_layout=True)
    for axis, metric in zip(axes, METRICS):
        for name, values in layers.items():
            points = [(e, v) for e, v in zip(epochs, values.get(metric, [])) if v is not None]
            if points:
                axis.plot(*zip(*points), marker="o", label=name)
        axis.set_title(titles[metric])
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    axes[-1].legend(fontsize="small", loc="best")
    path = pathlib.Path(output) if output is not None else pathlib.Path(log_dir) / PLOT_NAME
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
