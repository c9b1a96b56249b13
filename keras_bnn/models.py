"""larq's model summary on Keras 3: parameters by precision, memory and multiply-accumulates (MACs) by precision.

`summary(model)` prints the two tables of ``larq.models.summary`` (same columns, counts and layout) for a built
Keras 3 model of keras-bnn's quantized layers and plain Keras layers:

- per layer: input precision (of its ``input_quantizer``), output shape, weight count per bit width, memory in kB
  (``8 * 1024`` 1-bit weights = 1 kB), and MACs per precision (the precision of a MAC is the larger of its
  input's and its weight's);
- totals: parameters (trainable or not), model size, size with 8-bit float weights, float-32 equivalent,
  compression ratio, number of MACs and the ratios of binarized / ternarized MACs.

A weight's bit width is its quantizer's precision (`keras_bnn.layers.variable_precision`), 32 when it is not
quantized. As in larq, MACs are counted for Dense, Conv1D/2D, SeparableConv1D/2D and DepthwiseConv2D (quantized
or not, and layers built on them such as `XNORConv2D`, `BiRealConv2D`): every non-bias weight of the layer,
times its output pixels; a BatchNormalization's beta and gamma fold into its moving statistics; layers larq
cannot count show ``?``.

Example:
    >>> import keras, keras_bnn
    >>> from keras_bnn.models import ModelProfile
    >>> model = keras.Sequential([keras.Input((8,)), keras_bnn.layers.QuantDense(
    ...     4, input_quantizer="ste_sign", kernel_quantizer="ste_sign", use_bias=False)])
    >>> profile = ModelProfile(model)
    >>> profile.weight_count(bitwidth=1), profile.op_count("mac", 1)
    (32, 32)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import keras_bnn._backend_guard  # noqa: F401  (first: a missing JAX/PyTorch names its extra)
import keras
import numpy as np

from keras_bnn.layers.quantized_base import variable_precision

__all__ = ["LayerProfile", "ModelProfile", "summary"]

# larq's classes, subclasses included (keras-bnn's quantized layers derive from these Keras classes). tf-keras'
# Conv1DTranspose and Conv2DTranspose are subclasses of Conv1D and Conv2D, so larq counts their MACs too.
MAC_CONTAINING_LAYERS = (keras.layers.Conv2D, keras.layers.SeparableConv2D, keras.layers.DepthwiseConv2D,
                         keras.layers.Dense, keras.layers.Conv1D, keras.layers.SeparableConv1D,
                         keras.layers.Conv1DTranspose, keras.layers.Conv2DTranspose)
OP_COUNT_SUPPORTED_LAYERS = (keras.layers.Flatten, keras.layers.BatchNormalization, keras.layers.MaxPooling2D,
                             keras.layers.AveragePooling2D, keras.layers.MaxPooling1D,
                             keras.layers.AveragePooling1D, *MAC_CONTAINING_LAYERS)
_MEMORY_UNITS = 8 * 1024


def _number_as_readable_str(num: float) -> str:
    """larq's number format: 3 significant figures with k/M/B/T."""
    num = float(f"{num:.3g}")
    if num < 1000:
        return str(num).rstrip("0").rstrip(".")
    if num >= 1e15:
        return f"{num:.2E}"
    magnitude = 0
    while abs(num) >= 1000 and magnitude < 4:
        magnitude += 1
        num /= 1000.0
    return f"{num:.3g}".rstrip(".") + ["", " k", " M", " B", " T"][magnitude]


def _memory_as_readable_str(num_bits: int) -> str:
    """Bits as B/KiB/MiB/GiB with two decimals (larq's ``memory_as_readable_str``)."""
    rounded, suffix = num_bits / 8, "B"
    for i, suffix in enumerate(["B", "KiB", "MiB", "GiB"]):  # noqa: B007
        rounded = num_bits / 8 / (1024**i)
        if rounded < 1024:
            break
    return f"{rounded:,.2f} {suffix}"


def _table_entry(x: Any, units: int = 1) -> float | str:
    try:
        assert not np.isnan(x)
        if type(x) is str or x == 0 or units == 1:
            return x
        return x / units
    except Exception:  # noqa: BLE001  (larq shows anything it cannot count, None included, as "?")
        return "?"


def _weight_name(weight) -> str:
    return weight.name.split("/")[-1].replace(":0", "")


@dataclass
class WeightProfile:
    """Count, bit width and memory of one weight."""

    weight: Any
    trainable: bool = True

    @property
    def bitwidth(self) -> int:
        return variable_precision(self.weight) or 32

    @property
    def count(self) -> int:
        return int(np.prod(self.weight.shape))

    @property
    def memory(self) -> int:
        return self.bitwidth * self.count

    @property
    def fp_equivalent_memory(self) -> int:
        return 32 * self.count

    @property
    def int8_fp_weights_memory(self) -> int:
        return self.count * 8 if self.bitwidth > 8 else self.bitwidth * self.count

    def is_bias(self) -> bool:
        return "bias" in self.weight.name


class LayerProfile:
    """Weights and MACs of one layer (larq's ``LayerProfile``)."""

    def __init__(self, layer: keras.layers.Layer):
        self._layer = layer
        self.name = layer.name
        weights = list(layer.weights)
        if isinstance(layer, keras.layers.BatchNormalization):
            for folded, into in (("beta", "moving_mean"), ("gamma", "moving_variance")):
                names = [_weight_name(w) for w in weights]
                if folded in names and into in names:
                    weights.pop(names.index(folded))
        trainable = layer.trainable_weights
        self.weight_profiles = [WeightProfile(w, trainable=any(w is t for t in trainable)) for w in weights]
        self.op_profiles: list[tuple[int, int]] = []  # (count, precision) of MACs
        if isinstance(layer, MAC_CONTAINING_LAYERS) and self.output_pixels:
            for profile in self.weight_profiles:
                if not profile.is_bias():
                    precision = max(self.input_precision or 32, profile.bitwidth)
                    self.op_profiles.append((profile.count * self.output_pixels, precision))

    @property
    def memory(self) -> int:
        return sum(p.memory for p in self.weight_profiles)

    @property
    def int8_fp_weights_memory(self) -> int:
        return sum(p.int8_fp_weights_memory for p in self.weight_profiles)

    @property
    def fp_equivalent_memory(self) -> int:
        return sum(p.fp_equivalent_memory for p in self.weight_profiles)

    def weight_count(self, bitwidth: int | None = None, trainable: bool | None = None) -> int:
        return sum(p.count for p in self.weight_profiles if (bitwidth is None or p.bitwidth == bitwidth)
                   and (trainable is None or p.trainable == trainable))

    def op_count(self, op_type: str | None = None, precision: int | None = None) -> int | None:
        """MACs of `precision` (all when None); None for a layer whose MACs are not counted."""
        if op_type != "mac":
            raise ValueError("Currently only counting of MAC-operations is supported.")
        if isinstance(self._layer, OP_COUNT_SUPPORTED_LAYERS) and self.output_pixels:
            return sum(n for n, p in self.op_profiles if precision is None or p == precision)
        return None

    @property
    def input_precision(self) -> int | None:
        try:
            return self._layer.input_quantizer.precision
        except AttributeError:
            return None

    @property
    def output_shape(self) -> Any:
        try:
            output = self._layer.output
        except (AttributeError, ValueError):
            return None
        shapes = [tuple(d if d else -1 for d in t.shape) for t in keras.tree.flatten(output)]
        return shapes[0] if len(shapes) == 1 else shapes

    @property
    def output_shape_str(self) -> str:
        return str(self.output_shape or "multiple")

    @property
    def output_pixels(self) -> int | None:
        """Pixels of one feature map (1 for a fully connected layer's output)."""
        shape = self.output_shape
        if not shape:
            return None
        if len(shape) == 4:
            return int(np.prod(shape[1:3]))
        if len(shape) == 3:
            return shape[1]
        if len(shape) == 2:
            return 1
        raise NotImplementedError(f"MACs of outputs of shape {shape} are not counted.")

    @property
    def unique_param_bitwidths(self) -> list[int]:
        return sorted({p.bitwidth for p in self.weight_profiles})

    @property
    def unique_op_precisions(self) -> list[int]:
        return sorted({p for _, p in self.op_profiles})

    def table_row(self, config: dict[str, Any]) -> list[Any]:
        return [self.name, self.input_precision or "-", self.output_shape_str, *self._counts(config)]

    def _counts(self, config: dict[str, Any]) -> list[Any]:
        return [*(_table_entry(self.weight_count(b)) for b in config["bitwidths"]),
                _table_entry(self.memory, _MEMORY_UNITS),
                *(_table_entry(self.op_count("mac", p)) for p in config["mac_precisions"])]


class ModelProfile(LayerProfile):
    """Weights and MACs of a model, layer by layer (larq's ``ModelProfile``); nested models are profiled as such."""

    def __init__(self, model: keras.Model):
        self.name = model.name
        self.layer_profiles = [ModelProfile(layer) if isinstance(layer, keras.Model) else LayerProfile(layer)
                               for layer in model.layers]

    @property
    def weight_profiles(self) -> list[WeightProfile]:
        return [w for lp in self.layer_profiles for w in lp.weight_profiles]

    @property
    def op_profiles(self) -> list[tuple[int, int]]:
        return [op for lp in self.layer_profiles for op in lp.op_profiles]

    def op_count(self, op_type: str | None = None, precision: int | None = None) -> int:
        return sum(lp.op_count(op_type, precision) or 0 for lp in self.layer_profiles)

    @property
    def input_precision(self) -> int | None:
        return self.layer_profiles[0].input_precision

    @property
    def output_shape(self) -> Any:
        return self.layer_profiles[-1].output_shape

    def generate_table(self, include_macs: bool = True) -> list[list[Any]]:
        """Header, one row per layer and the totals (larq's ``stats`` table)."""
        config = {"bitwidths": self.unique_param_bitwidths,
                  "mac_precisions": self.unique_op_precisions if include_macs else []}
        header = ["Layer", "Input prec.\n(bit)", "Outputs", *(f"# {b}-bit\nx 1" for b in config["bitwidths"]),
                  "Memory\n(kB)", *(f"{p}-bit MACs" for p in config["mac_precisions"])]
        return [header, *(lp.table_row(config) for lp in self.layer_profiles), ["Total", "", "", *self._counts(config)]]

    def generate_summary(self, include_macs: bool = True) -> list[list[Any]]:
        """The totals (larq's ``summary`` table)."""
        rows: list[list[Any]] = [
            ["Total params", _number_as_readable_str(self.weight_count())],
            ["Trainable params", _number_as_readable_str(self.weight_count(trainable=True))],
            ["Non-trainable params", _number_as_readable_str(self.weight_count(trainable=False))],
            ["Model size", _memory_as_readable_str(self.memory)],
            ["Model size (8-bit FP weights)", _memory_as_readable_str(self.int8_fp_weights_memory)],
            ["Float-32 Equivalent", _memory_as_readable_str(self.fp_equivalent_memory)],
            ["Compression Ratio of Memory", self.memory / max(1e-8, self.fp_equivalent_memory)],
        ]
        if include_macs:
            macs = max(1, self.op_count("mac"))
            rows.append(["Number of MACs", _number_as_readable_str(self.op_count("mac"))])
            for precision, kind in ((1, "binarized"), (2, "ternarized")):
                if self.op_count("mac", precision) / macs > 0:
                    rows.append([f"Ratio of MACs that are {kind}", f"{self.op_count('mac', precision) / macs:.4f}"])
        return rows


def ascii_table(rows: Sequence[Sequence[Any]], title: str, right_justified: bool, heading_border: bool,
                footing_border: bool) -> str:
    """`rows` as a bordered text table in terminaltables' ``AsciiTable`` layout without inner column borders
    (what larq prints): floats with 2 decimals, cells split on newlines, column 0 left-justified and the others
    right-justified when `right_justified`, else all left-justified.

    Example:
        >>> print(ascii_table([["a", 1.5], ["bb", "x"]], "t", True, False, False))
        +t---------+
        | a   1.50 |
        | bb     x |
        +----------+
    """
    cells = [[(f"{v:.2f}" if type(v) is float else str(v)).split("\n") for v in row] for row in rows]
    widths = [max(len(line) for row in cells for line in row[i]) for i in range(len(cells[0]))]
    inner = sum(widths) + 2 * (len(widths) - 1) + 2
    border = "+" + "-" * inner + "+"
    top = "+" + title + "-" * (inner - len(title)) + "+" if len(title) <= inner else border
    lines = [top]
    for index, row in enumerate(cells):
        if (index == 1 and heading_border) or (index == len(cells) - 1 and footing_border and index > 0):
            lines.append(border)
        for part in itertools.zip_longest(*row, fillvalue=""):
            texts = [text.ljust(width) if column == 0 or not right_justified else text.rjust(width)
                     for column, (text, width) in enumerate(zip(part, widths))]
            lines.append("| " + "  ".join(texts) + " |")
    lines.append(border)
    return "\n".join(lines)


def summary(model: keras.Model, print_fn: Callable[[str], Any] | None = None, include_macs: bool = True) -> None:
    """Print larq's summary of `model`: the per-layer ``stats`` table and the model's ``summary`` table.

    Args:
        model: A built Keras 3 model.
        print_fn: Called with each table's text (default `print`).
        include_macs: Include the MAC totals in the summary table (the stats table has its MAC columns either
            way, as in larq 0.14).

    Raises:
        ValueError: the model is not built.

    Example:
        >>> import keras, keras_bnn
        >>> from keras_bnn.models import summary
        >>> model = keras.Sequential([keras.Input((4,)), keras_bnn.layers.QuantDense(2, name="d")], name="m")
        >>> summary(model, include_macs=False)
        +m stats-----------------------------------------------------+
        | Layer  Input prec.  Outputs  # 32-bit  Memory  32-bit MACs |
        |              (bit)                x 1    (kB)              |
        +------------------------------------------------------------+
        | d                -  (-1, 2)        10    0.04            8 |
        +------------------------------------------------------------+
        | Total                              10    0.04            8 |
        +------------------------------------------------------------+
        +m summary-------------------------------+
        | Total params                   10      |
        | Trainable params               10      |
        | Non-trainable params           0       |
        | Model size                     40.00 B |
        | Model size (8-bit FP weights)  10.00 B |
        | Float-32 Equivalent            40.00 B |
        | Compression Ratio of Memory    1.00    |
        +----------------------------------------+
    """
    if not model.built:
        raise ValueError("This model has not yet been built. Build the model first by calling `model.build()` or "
                         "calling `model.fit()` with some data, or specify an `input_shape` argument in the first "
                         "layer(s) for automatic build.")
    print_fn = print_fn or print
    profile = ModelProfile(model)
    # As larq 0.14 does, the stats table always has the MAC columns; `include_macs` applies to the summary table.
    print_fn(ascii_table(profile.generate_table(), f"{model.name} stats", True, True, True))
    print_fn(ascii_table(profile.generate_summary(include_macs), f"{model.name} summary", False, False, False))
