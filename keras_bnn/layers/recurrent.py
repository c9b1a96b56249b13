"""Binary GRU on Keras 3: binary weights and binary matmul inputs, real gates and state (every backend).

Both matmuls of a GRU step, ``x_t @ W`` and ``h_{t-1} @ R``, are binary: their weights go through
``kernel_quantizer`` / ``recurrent_kernel_quantizer`` and their inputs through ``input_quantizer`` /
``recurrent_input_quantizer`` (all ``"ste_sign"`` by default). Gates, biases, the hidden state and its update
``h = z * h_{t-1} + (1 - z) * hh`` stay real. With every quantizer None the layer computes what
``keras.layers.GRU`` computes with the same weights (the float baseline).

**Gate scale.** A binary matmul returns integers of magnitude up to the fan-in, which saturates sigmoid/tanh.
Each matmul whose kernel is quantized is therefore followed by a learned per-unit scale (weights
``kernel_scale`` and ``recurrent_kernel_scale``, shape ``(3 * units,)``) initialised to ``1 / sqrt(fan_in)``.
``gate_scale=False`` removes it.

Weights, by name and in this order (those of ``keras_bnn.legacy.layers.BinaryGRU``, which the zoo's weight
files follow): ``kernel (input_dim, 3 * units)``, ``recurrent_kernel (units, 3 * units)``, ``bias``
(``(2, 3 * units)`` with ``reset_after``, else ``(3 * units,)``), ``kernel_scale``, ``recurrent_kernel_scale``.

The cell is ``keras.layers.GRUCell`` (its arguments, weights and per-sequence dropout masks) with a binary step;
the layer is ``keras.layers.RNN`` over it (Keras' generic loop: no fused kernel can bypass the binary cell).
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from keras_bnn import quantizers as bnn_quantizers
from keras_bnn._validation import check_fraction, check_positive_int
from keras_bnn.layers.quantized_base import QuantizerBase, _resolve
from keras_bnn.quantizers.base import PACKAGE

__all__ = ["BinaryGRU", "BinaryGRUCell"]

QUANTIZER_ARGUMENTS = ("input_quantizer", "recurrent_input_quantizer", "kernel_quantizer",
                       "recurrent_kernel_quantizer")


def _check_arguments(units: Any, dropout: Any, recurrent_dropout: Any, gate_scale: Any) -> None:
    check_positive_int("units", units)
    check_fraction("dropout", dropout, high_inclusive=True)
    check_fraction("recurrent_dropout", recurrent_dropout, high_inclusive=True)
    if not isinstance(gate_scale, bool):
        raise TypeError(f"gate_scale must be a bool, got {gate_scale!r}")


def _precision(quantizer) -> int:
    return int(getattr(quantizer, "precision", None) or 32) if quantizer is not None else 32


def _as_list(masks):
    return None if masks is None else list(masks) if isinstance(masks, (list, tuple)) else [masks]


@keras.saving.register_keras_serializable(package=PACKAGE)
class BinaryGRUCell(QuantizerBase, keras.layers.GRUCell):
    """A GRU cell whose two matmuls are binary (drop-in for ``keras.layers.GRUCell``).

    Args:
        units: Positive integer, size of the hidden state.
        input_quantizer: Quantizer of the step input ``x_t`` before ``x_t @ kernel``. Default "ste_sign".
        recurrent_input_quantizer: Quantizer of ``h_{t-1}`` before ``h_{t-1} @ recurrent_kernel`` (of
            ``r * h_{t-1}`` when ``reset_after=False``). Default "ste_sign".
        kernel_quantizer: Quantizer of ``kernel``. Default "ste_sign".
        recurrent_kernel_quantizer: Quantizer of ``recurrent_kernel``. Default "ste_sign".
        kernel_constraint: Default "weight_clip" (clip to [-1, 1]); None for a float baseline.
        recurrent_constraint: Default "weight_clip", as `kernel_constraint`.
        gate_scale: Add a learned per-unit scale (initialised to ``1 / sqrt(fan_in)``) after each matmul whose
            kernel is quantized. Float matmuls never get one.
        dropout: Fraction of the (quantized) step inputs dropped in training (the mask is applied after the
            input quantizer, so a dropped binary input is 0, not ``sign(0)``).
        recurrent_dropout: The same for the (quantized) recurrent input.
        **kwargs: Every other ``keras.layers.GRUCell`` argument (``activation``, ``recurrent_activation``,
            ``use_bias``, initializers, regularizers, ``bias_constraint``, ``reset_after``, ``seed``,
            ``implementation``, ...).

    Example:
        >>> import keras, keras_bnn
        >>> rnn = keras.layers.RNN(keras_bnn.layers.BinaryGRUCell(16), return_sequences=True)
        >>> tuple(rnn(keras.ops.ones((2, 5, 8))).shape)
        (2, 5, 16)
    """

    quantized_weights = {"kernel": "kernel_quantizer", "recurrent_kernel": "recurrent_kernel_quantizer"}

    def __init__(
        self,
        units: int,
        input_quantizer: Any = "ste_sign",
        recurrent_input_quantizer: Any = "ste_sign",
        kernel_quantizer: Any = "ste_sign",
        recurrent_kernel_quantizer: Any = "ste_sign",
        kernel_constraint: Any = "weight_clip",
        recurrent_constraint: Any = "weight_clip",
        gate_scale: bool = True,
        dropout: float = 0.0,
        recurrent_dropout: float = 0.0,
        **kwargs: Any,
    ):
        _check_arguments(units, dropout, recurrent_dropout, gate_scale)
        quantizers = {name: _resolve(name, value) for name, value in (
            ("input_quantizer", input_quantizer), ("recurrent_input_quantizer", recurrent_input_quantizer),
            ("kernel_quantizer", kernel_quantizer), ("recurrent_kernel_quantizer", recurrent_kernel_quantizer))}
        recurrent_input = quantizers.pop("recurrent_input_quantizer")
        super().__init__(units, kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint,
                         dropout=dropout, recurrent_dropout=recurrent_dropout, **quantizers, **kwargs)
        self.recurrent_input_quantizer = recurrent_input
        self.gate_scale = gate_scale
        self.kernel_scale = self.recurrent_kernel_scale = None

    # ------------------------------------------------------------------------------------------------------
    # Weights

    @property
    def recurrent_kernel_constraint(self):
        """``recurrent_constraint`` under the name `QuantizerBase` derives from ``recurrent_kernel_quantizer``."""
        return self.recurrent_constraint

    def _scaled(self, quantizer) -> bool:
        return self.gate_scale and quantizer is not None

    def build(self, input_shape) -> None:
        input_dim = int(input_shape[-1])
        self.build_matmuls(input_shape)
        for name, quantizer, fan_in in (("kernel_scale", self.kernel_quantizer, input_dim),
                                        ("recurrent_kernel_scale", self.recurrent_kernel_quantizer, self.units)):
            scale = None
            if self._scaled(quantizer):
                scale = self.add_weight(name=name, shape=(3 * self.units,),
                                        initializer=keras.initializers.Constant(1.0 / math.sqrt(fan_in)))
            setattr(self, name, scale)
        for quantizer, dim in ((self.input_quantizer, input_dim), (self.recurrent_input_quantizer, self.units)):
            if isinstance(quantizer, keras.layers.Layer) and not quantizer.built:
                quantizer.build((None, dim))
        self.built = True

    def build_matmuls(self, input_shape) -> None:
        """Hook: create the matmuls' weights (GRUCell's ``kernel``, ``recurrent_kernel`` and ``bias``)."""
        super().build(tuple(input_shape))

    @property
    def input_dim(self) -> int:
        """Features of the step input (the cell must be built)."""
        return int(self.kernel.shape[0])

    # ------------------------------------------------------------------------------------------------------
    # Step

    def project_inputs(self, inputs, masks, scale, bias):
        """Hook: the step input's matmul ``scale * (q(x_t) @ q(W)) + bias`` (all three gates)."""
        return self.project(inputs, "kernel", masks, scale, bias)

    def project(self, inputs, part: str, masks, scale, bias):
        """Hook: ``scale * (q(inputs) @ q(W_part)) + bias`` for one matmul of the step.

        `part` is "kernel" (input matmul), "recurrent" (reset_after: all 3 gates; else update + reset gates)
        or "candidate" (reset_after=False: the candidate's ``(r * h) @ R_h``). `masks` are dropout masks (one
        for all gates, or one per gate) or None.
        """
        quantizer = self.input_quantizer if part == "kernel" else self.recurrent_input_quantizer
        if quantizer is not None:
            inputs = quantizer(inputs)
        kernel = self.quantized("kernel" if part == "kernel" else "recurrent_kernel")
        units = self.units
        if part == "recurrent" and not self.reset_after:
            kernel = kernel[:, : 2 * units]
        elif part == "candidate":
            kernel = kernel[:, 2 * units:]
        if masks is None:
            outputs = ops.matmul(inputs, kernel)
        elif len(masks) > 1:
            kernels = ops.split(kernel, len(masks), axis=-1)
            outputs = ops.concatenate([ops.matmul(inputs * mask, k) for mask, k in zip(masks, kernels)], axis=-1)
        else:
            outputs = ops.matmul(inputs * masks[0], kernel)
        if scale is not None:
            outputs = outputs * scale
        if bias is not None:
            outputs = outputs + bias
        return outputs

    def call(self, inputs, states, training=False):
        nested = keras.tree.is_nested(states)
        h_tm1 = states[0] if nested else states
        dp_mask = rec_dp_mask = None
        if training and 0.0 < self.dropout < 1.0:
            dp_mask = _as_list(self.get_dropout_mask(inputs))
        if training and 0.0 < self.recurrent_dropout < 1.0:
            rec_dp_mask = _as_list(self.get_recurrent_dropout_mask(h_tm1))
        input_bias = recurrent_bias = None
        if self.use_bias:
            input_bias, recurrent_bias = (self.bias[0], self.bias[1]) if self.reset_after else (self.bias, None)
        units = self.units
        kernel_scale, recurrent_scale = self.kernel_scale, self.recurrent_kernel_scale

        projected = self.project_inputs(inputs, dp_mask, kernel_scale, input_bias)
        x_z, x_r, x_h = ops.split(projected, 3, axis=-1)
        if self.reset_after:
            recurrent = self.project(h_tm1, "recurrent", rec_dp_mask, recurrent_scale, recurrent_bias)
            recurrent_z, recurrent_r, recurrent_h = ops.split(recurrent, 3, axis=-1)
            z = self.recurrent_activation(x_z + recurrent_z)
            r = self.recurrent_activation(x_r + recurrent_r)
            hh = self.activation(x_h + r * recurrent_h)
        else:
            gate_scale = None if recurrent_scale is None else recurrent_scale[: 2 * units]
            candidate_scale = None if recurrent_scale is None else recurrent_scale[2 * units:]
            recurrent = self.project(h_tm1, "recurrent", None if rec_dp_mask is None else rec_dp_mask[:2],
                                     gate_scale, None)
            recurrent_z, recurrent_r = ops.split(recurrent, 2, axis=-1)
            z = self.recurrent_activation(x_z + recurrent_z)
            r = self.recurrent_activation(x_r + recurrent_r)
            recurrent_h = self.project(r * h_tm1, "candidate", None if rec_dp_mask is None else rec_dp_mask[2:],
                                       candidate_scale, None)
            hh = self.activation(x_h + recurrent_h)
        h = z * h_tm1 + (1 - z) * hh
        return h, [h] if nested else h

    # ------------------------------------------------------------------------------------------------------
    # Reporting and config

    def macs_per_step(self) -> dict[int, int]:
        """MACs of one time step for one sample, keyed by precision (max of input and weight bits, as larq).

        Requires a built cell; ``{1: 3 * units * (input_dim + units)}`` for the all-binary default.

        Raises:
            ValueError: the cell is not built.
        """
        if not self.built:
            raise ValueError(f"cell {self.name!r} is not built: its input size is unknown")
        macs: dict[int, int] = {}
        for fan_in, quantizers in ((self.input_dim, (self.input_quantizer, self.kernel_quantizer)),
                                   (self.units, (self.recurrent_input_quantizer, self.recurrent_kernel_quantizer))):
            precision = max(_precision(q) for q in quantizers)
            macs[precision] = macs.get(precision, 0) + int(fan_in) * 3 * self.units
        return macs

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()  # GRUCell's arguments, input/kernel/recurrent_kernel quantizers
        config.update(
            recurrent_input_quantizer=bnn_quantizers.serialize(self.recurrent_input_quantizer),
            gate_scale=self.gate_scale,
            implementation=self.implementation,
        )
        return config


_CELL_ARGUMENTS = (
    "activation", "recurrent_activation", "use_bias", "kernel_initializer", "recurrent_initializer",
    "bias_initializer", "kernel_regularizer", "recurrent_regularizer", "bias_regularizer", "bias_constraint",
    "dropout", "recurrent_dropout", "implementation", "reset_after", "seed",
)


def _cell_property(name: str) -> property:
    return property(lambda self: getattr(self.cell, name), doc=f"The cell's ``{name}``.")


@keras.saving.register_keras_serializable(package=PACKAGE)
class BinaryGRU(keras.layers.RNN):
    """A GRU layer whose matmuls are binary (the arguments of ``keras.layers.GRU``), over :class:`BinaryGRUCell`.

    Every ``keras.layers.GRU`` argument is accepted (``return_sequences``, ``return_state``, ``go_backwards``,
    ``stateful``, ``unroll``, ``reset_after``, dropout, ``seed``, masking, ...) except ``use_cudnn``: it always
    runs Keras' generic RNN loop over the cell. The binary arguments are those of :class:`BinaryGRUCell`.

    Args:
        units: Positive integer, size of the hidden state.
        input_quantizer: Quantizer of ``x_t`` (see :class:`BinaryGRUCell`). Default "ste_sign".
        recurrent_input_quantizer: Quantizer of ``h_{t-1}``. Default "ste_sign".
        kernel_quantizer: Quantizer of ``kernel``. Default "ste_sign".
        recurrent_kernel_quantizer: Quantizer of ``recurrent_kernel``. Default "ste_sign".
        kernel_constraint: Default "weight_clip"; None for a float baseline.
        recurrent_constraint: Default "weight_clip"; None for a float baseline.
        gate_scale: Learned per-unit scale after each quantized matmul (see the module docstring).
        **kwargs: Every other ``keras.layers.GRU`` argument.

    Example:
        >>> import keras, keras_bnn
        >>> layer = keras_bnn.layers.BinaryGRU(32, return_sequences=True, return_state=True)
        >>> outputs, state = layer(keras.ops.ones((2, 7, 16)))
        >>> tuple(outputs.shape), tuple(state.shape)
        ((2, 7, 32), (2, 32))
    """

    cell_class = BinaryGRUCell  # the class of the cell __init__ makes (a hook for subclasses)

    def __init__(
        self,
        units: int,
        input_quantizer: Any = "ste_sign",
        recurrent_input_quantizer: Any = "ste_sign",
        kernel_quantizer: Any = "ste_sign",
        recurrent_kernel_quantizer: Any = "ste_sign",
        kernel_constraint: Any = "weight_clip",
        recurrent_constraint: Any = "weight_clip",
        gate_scale: bool = True,
        **kwargs: Any,
    ):
        cell_kwargs = {name: kwargs.pop(name) for name in _CELL_ARGUMENTS if name in kwargs}
        cell = self.cell_class(
            units, input_quantizer=input_quantizer, recurrent_input_quantizer=recurrent_input_quantizer,
            kernel_quantizer=kernel_quantizer, recurrent_kernel_quantizer=recurrent_kernel_quantizer,
            kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint, gate_scale=gate_scale,
            dtype=kwargs.get("dtype"), trainable=kwargs.get("trainable", True), name="binary_gru_cell",
            **cell_kwargs, **self._make_cell_kwargs())
        super().__init__(cell, **kwargs)
        self.input_spec = keras.layers.InputSpec(ndim=3)

    def call(self, sequences, initial_state=None, mask=None, training=False):
        return super().call(sequences, initial_state=initial_state, mask=mask, training=training)

    def _make_cell_kwargs(self) -> dict[str, Any]:
        """Hook: arguments of `cell_class` beyond :class:`BinaryGRUCell`'s (none here)."""
        return {}

    units = _cell_property("units")
    activation = _cell_property("activation")
    recurrent_activation = _cell_property("recurrent_activation")
    use_bias = _cell_property("use_bias")
    dropout = _cell_property("dropout")
    recurrent_dropout = _cell_property("recurrent_dropout")
    reset_after = _cell_property("reset_after")
    implementation = _cell_property("implementation")
    input_quantizer = _cell_property("input_quantizer")
    recurrent_input_quantizer = _cell_property("recurrent_input_quantizer")
    kernel_quantizer = _cell_property("kernel_quantizer")
    recurrent_kernel_quantizer = _cell_property("recurrent_kernel_quantizer")
    gate_scale = _cell_property("gate_scale")

    def macs_per_step(self) -> dict[int, int]:
        """MACs per time step and sample, keyed by precision (see :meth:`BinaryGRUCell.macs_per_step`)."""
        return self.cell.macs_per_step()

    def get_config(self) -> dict[str, Any]:
        cell_config = self.cell.get_config()
        config = super().get_config()
        del config["cell"]
        for name in ("name", "trainable", "dtype"):
            cell_config.pop(name, None)
        return {**config, **cell_config}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> BinaryGRU:
        return cls(**config)
