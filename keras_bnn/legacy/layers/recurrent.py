"""Binary GRU: binary weights and binary matmul inputs, real gates and state (drop-in for Keras' GRU).

Both matmuls of a GRU step, ``x_t @ W`` and ``h_{t-1} @ R``, are binary: their weights go through
``kernel_quantizer`` / ``recurrent_kernel_quantizer`` and their inputs through ``input_quantizer`` /
``recurrent_input_quantizer`` (all ``"ste_sign"`` by default). Gates, biases, the hidden state and its update
``h = z * h_{t-1} + (1 - z) * hh`` stay real. With every quantizer None the layer computes exactly what
``tf.keras.layers.GRU`` computes with the same weights (the float baseline).

**Gate scale.** A binary matmul returns integers of magnitude up to ``F`` (fan-in), typically ``~sqrt(F)``,
which saturates sigmoid/tanh. Each matmul whose kernel is quantized is therefore followed by a learned
per-unit scale (weights ``kernel_scale`` and ``recurrent_kernel_scale``, shape ``(3 * units,)``) initialised
to ``1 / sqrt(fan_in)``, so pre-activations start with unit variance. It is one multiply per gate unit,
which LCE fuses into the bitpacked convolution's output transform when it can. Layer normalization would
need per-step reductions at inference; a per-unit scale needs none. ``gate_scale=False`` removes it.
Measured (``benchmarks/gru_lm.py --ablation-steps 150``: Tiny Shakespeare, 128 units, 150 steps, same seed):
validation 3.04 bits per character with the scale, 4.30 without.

**Conversion.** ``keras_bnn.tflite.convert`` converts the layer with its rule (``keras_bnn.tflite.rules.gru``):
each binary matmul becomes a 1x1 binary convolution, which LCE bitpacks into ``LceBconv2d`` (inside the TFLite
WHILE loop with ``unroll=False``); ``tf.keras.layers.RNN(BinaryGRUCell(...))`` (one cell or a list) and
``Bidirectional(BinaryGRU(...))`` are converted the same way. The layer itself knows nothing of conversion: it
offers two hooks, :meth:`BinaryGRUCell.project` (one matmul of a step) and :meth:`BinaryGRUCell.project_inputs`
(the step input's matmul), which the inference form overrides.

**larq.models.summary** counts ``kernel`` and ``recurrent_kernel`` as 1-bit parameters (they are larq
``QuantizedVariable``\\ s) and shows the layer's input precision, but it counts MACs for conv/dense layers
only: a GRU row shows ``?`` MACs and adds 0 to the totals. Use :meth:`BinaryGRUCell.macs_per_step`
(per time step and sample, keyed by precision as larq does) for the GRU's MACs.
"""

from __future__ import annotations

import math
from typing import Any

import larq as lq
import tensorflow as tf
from larq import context

from keras_bnn import _compat
from keras_bnn._validation import check_fraction, check_positive_int
from keras_bnn.legacy.quantizers import resolve

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


@tf.keras.utils.register_keras_serializable(package="keras_bnn")
class BinaryGRUCell(_compat.larq_base_layer(), tf.keras.layers.GRUCell):
    """A GRU cell whose two matmuls are binary (drop-in for ``tf.keras.layers.GRUCell``).

    Args:
        units: Positive integer, size of the hidden state.
        input_quantizer: Quantizer of the step input ``x_t`` before ``x_t @ kernel``. Default "ste_sign".
        recurrent_input_quantizer: Quantizer of ``h_{t-1}`` before ``h_{t-1} @ recurrent_kernel`` (of
            ``r * h_{t-1}`` when ``reset_after=False``; a binary quantizer then makes the reset gate act only
            through signs, so prefer the default ``reset_after=True``). Default "ste_sign".
        kernel_quantizer: Quantizer of ``kernel``. Default "ste_sign".
        recurrent_kernel_quantizer: Quantizer of ``recurrent_kernel``. Default "ste_sign".
        kernel_constraint: Default "weight_clip" (larq's clip to [-1, 1]), which keeps latent weights where
            the straight-through gradient is non-zero. Pass None for a float baseline.
        recurrent_constraint: Default "weight_clip", as `kernel_constraint`.
        gate_scale: Add a learned per-unit scale (initialised to ``1 / sqrt(fan_in)``) after each matmul whose
            kernel is quantized. Float matmuls never get one.
        dropout: Fraction of the (quantized) step inputs dropped in training. The mask is applied after
            the input quantizer, so a dropped binary input is 0, not ``sign(0)``.
        recurrent_dropout: The same for the (quantized) recurrent input.
        **kwargs: Every other ``tf.keras.layers.GRUCell`` argument (``activation``, ``recurrent_activation``,
            ``use_bias``, initializers, regularizers, ``bias_constraint``, ``reset_after``, ...).

    Example:
        >>> import keras_bnn, tensorflow as tf
        >>> rnn = tf.keras.layers.RNN(keras_bnn.legacy.layers.BinaryGRUCell(16), return_sequences=True)
        >>> rnn(tf.ones((2, 5, 8))).shape
        TensorShape([2, 5, 16])
    """

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
        self.recurrent_input_quantizer = resolve("recurrent_input_quantizer", recurrent_input_quantizer)
        self.kernel_quantizer = resolve("kernel_quantizer", kernel_quantizer, kernel=True)
        self.recurrent_kernel_quantizer = resolve("recurrent_kernel_quantizer", recurrent_kernel_quantizer,
                                                  kernel=True)
        self.gate_scale = gate_scale
        super().__init__(
            units,
            input_quantizer=resolve("input_quantizer", input_quantizer),
            kernel_constraint=kernel_constraint,
            recurrent_constraint=recurrent_constraint,
            dropout=dropout,
            recurrent_dropout=recurrent_dropout,
            **kwargs,
        )

    # ------------------------------------------------------------------------------------------------------
    # Weights

    def _get_quantizer(self, name: str):
        """larq's hook: the weights named ``kernel`` / ``recurrent_kernel`` become QuantizedVariables."""
        return {"kernel": self.kernel_quantizer, "recurrent_kernel": self.recurrent_kernel_quantizer}.get(name)

    def _scaled(self, quantizer) -> bool:
        return self.gate_scale and quantizer is not None

    def build(self, input_shape: tf.TensorShape) -> None:
        input_dim = int(tf.TensorShape(input_shape)[-1])
        self.build_matmuls(input_dim)
        for name, quantizer, fan_in in (("kernel_scale", self.kernel_quantizer, input_dim),
                                        ("recurrent_kernel_scale", self.recurrent_kernel_quantizer, self.units)):
            scale = None
            if self._scaled(quantizer):
                scale = self.add_weight(name=name, shape=(3 * self.units,),
                                        initializer=tf.keras.initializers.Constant(1.0 / math.sqrt(fan_in)))
            setattr(self, name, scale)
        self.built = True

    def build_matmuls(self, input_dim: int) -> None:
        """Hook: create the matmuls' weights (here GRUCell's ``kernel``, ``recurrent_kernel`` and ``bias``)."""
        super().build(tf.TensorShape([None, input_dim]))

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
        or "candidate" (reset_after=False: the candidate's ``(r * h) @ R_h``). `masks` are per-gate dropout
        masks or None.
        """
        quantizer = self.input_quantizer if part == "kernel" else self.recurrent_input_quantizer
        if quantizer is not None:
            inputs = quantizer(inputs)
        with context.quantized_scope(True):
            kernel = tf.convert_to_tensor(self.kernel if part == "kernel" else self.recurrent_kernel)
        units = self.units
        if part == "recurrent" and not self.reset_after:
            kernel = kernel[:, : 2 * units]
        elif part == "candidate":
            kernel = kernel[:, 2 * units:]
        if masks is None:
            outputs = tf.matmul(inputs, kernel)
        elif self.implementation == 1:
            kernels = tf.split(kernel, kernel.shape[-1] // units, axis=-1)
            outputs = tf.concat([tf.matmul(inputs * mask, k) for mask, k in zip(masks, kernels)], axis=-1)
        else:
            outputs = tf.matmul(inputs * masks[0], kernel)
        if scale is not None:
            outputs = outputs * scale
        if bias is not None:
            outputs = tf.nn.bias_add(outputs, bias)
        return outputs

    def call(self, inputs, states, training=None):
        h_tm1 = states[0] if tf.nest.is_nested(states) else states
        dp_mask = rec_dp_mask = None
        if 0.0 < self.dropout < 1.0:
            dp_mask = self.get_dropout_mask_for_cell(inputs, training, count=3)
        if 0.0 < self.recurrent_dropout < 1.0:
            rec_dp_mask = self.get_recurrent_dropout_mask_for_cell(h_tm1, training, count=3)
        input_bias = recurrent_bias = None
        if self.use_bias:
            input_bias, recurrent_bias = tf.unstack(self.bias) if self.reset_after else (self.bias, None)
        units = self.units
        kernel_scale, recurrent_scale = self.kernel_scale, self.recurrent_kernel_scale

        projected = self.project_inputs(inputs, dp_mask, kernel_scale, input_bias)
        x_z, x_r, x_h = tf.split(projected, 3, axis=-1)
        if self.reset_after:
            recurrent = self.project(h_tm1, "recurrent", rec_dp_mask, recurrent_scale, recurrent_bias)
            recurrent_z, recurrent_r, recurrent_h = tf.split(recurrent, 3, axis=-1)
            z = self.recurrent_activation(x_z + recurrent_z)
            r = self.recurrent_activation(x_r + recurrent_r)
            hh = self.activation(x_h + r * recurrent_h)
        else:
            gate_scale = None if recurrent_scale is None else recurrent_scale[: 2 * units]
            candidate_scale = None if recurrent_scale is None else recurrent_scale[2 * units:]
            recurrent = self.project(h_tm1, "recurrent", None if rec_dp_mask is None else rec_dp_mask[:2],
                                      gate_scale, None)
            recurrent_z, recurrent_r = tf.split(recurrent, 2, axis=-1)
            z = self.recurrent_activation(x_z + recurrent_z)
            r = self.recurrent_activation(x_r + recurrent_r)
            recurrent_h = self.project(r * h_tm1, "candidate", None if rec_dp_mask is None else rec_dp_mask[2:],
                                        candidate_scale, None)
            hh = self.activation(x_h + recurrent_h)
        h = z * h_tm1 + (1 - z) * hh
        return h, [h] if tf.nest.is_nested(states) else h

    # ------------------------------------------------------------------------------------------------------
    # Reporting and config

    def macs_per_step(self) -> dict[int, int]:
        """MACs of one time step for one sample, keyed by precision (max of input and weight bits, as larq).

        Requires a built cell. Example: ``{1: 3 * units * (input_dim + units)}`` for the all-binary default.
        """
        if not self.built:
            raise ValueError(f"cell {self.name!r} is not built: its input size is unknown")
        input_dim = self.input_dim
        macs: dict[int, int] = {}
        for fan_in, quantizers in ((input_dim, (self.input_quantizer, self.kernel_quantizer)),
                                   (self.units, (self.recurrent_input_quantizer, self.recurrent_kernel_quantizer))):
            precision = max(_precision(q) for q in quantizers)
            macs[precision] = macs.get(precision, 0) + int(fan_in) * 3 * self.units
        return macs

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()  # GRUCell's arguments and larq's input_quantizer
        config.update(
            recurrent_input_quantizer=lq.quantizers.serialize(self.recurrent_input_quantizer),
            kernel_quantizer=lq.quantizers.serialize(self.kernel_quantizer),
            recurrent_kernel_quantizer=lq.quantizers.serialize(self.recurrent_kernel_quantizer),
            gate_scale=self.gate_scale,
        )
        return config


@tf.keras.utils.register_keras_serializable(package="keras_bnn")
class BinaryGRU(tf.keras.layers.GRU):
    """A GRU layer whose matmuls are binary (drop-in for ``tf.keras.layers.GRU``), over :class:`BinaryGRUCell`.

    Every ``tf.keras.layers.GRU`` argument is accepted (``return_sequences``, ``return_state``,
    ``go_backwards``, ``stateful``, ``unroll``, ``time_major``, ``reset_after``, dropout, masking, ...);
    it always runs Keras' generic RNN loop over the cell (never the fused cuDNN kernel). The binary arguments
    are those of :class:`BinaryGRUCell`.

    Args:
        units: Positive integer, size of the hidden state.
        input_quantizer: Quantizer of ``x_t`` (see :class:`BinaryGRUCell`). Default "ste_sign".
        recurrent_input_quantizer: Quantizer of ``h_{t-1}``. Default "ste_sign".
        kernel_quantizer: Quantizer of ``kernel``. Default "ste_sign".
        recurrent_kernel_quantizer: Quantizer of ``recurrent_kernel``. Default "ste_sign".
        kernel_constraint: Default "weight_clip"; None for a float baseline.
        recurrent_constraint: Default "weight_clip"; None for a float baseline.
        gate_scale: Learned per-unit scale after each quantized matmul (see the module docstring).
        **kwargs: Every other ``tf.keras.layers.GRU`` argument.

    Example:
        >>> import keras_bnn, tensorflow as tf
        >>> layer = keras_bnn.legacy.layers.BinaryGRU(32, return_sequences=True, return_state=True)
        >>> outputs, state = layer(tf.ones((2, 7, 16)))
        >>> outputs.shape, state.shape
        (TensorShape([2, 7, 32]), TensorShape([2, 32]))
    """

    cell_class = BinaryGRUCell  # the class of the cell __init__ makes (a hook for subclasses)
    _CELL_ARGUMENTS = (
        "activation", "recurrent_activation", "use_bias", "kernel_initializer", "recurrent_initializer",
        "bias_initializer", "kernel_regularizer", "recurrent_regularizer", "bias_regularizer",
        "bias_constraint", "dropout", "recurrent_dropout", "implementation", "reset_after",
        "enable_caching_device",
    )

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
        activity_regularizer = kwargs.pop("activity_regularizer", None)
        return_runtime = kwargs.pop("return_runtime", False)
        cell_kwargs = {name: kwargs.pop(name) for name in self._CELL_ARGUMENTS if name in kwargs}
        cell = self.cell_class(
            units, input_quantizer=input_quantizer, recurrent_input_quantizer=recurrent_input_quantizer,
            kernel_quantizer=kernel_quantizer, recurrent_kernel_quantizer=recurrent_kernel_quantizer,
            kernel_constraint=kernel_constraint, recurrent_constraint=recurrent_constraint, gate_scale=gate_scale,
            dtype=kwargs.get("dtype"), trainable=kwargs.get("trainable", True), name="binary_gru_cell",
            **cell_kwargs, **self._make_cell_kwargs())
        # Skip GRU.__init__ (it builds a float GRUCell); the mixin and RNN initialisers run as in GRU.
        super(tf.keras.layers.GRU, self).__init__(cell, **kwargs)
        self.activity_regularizer = tf.keras.regularizers.get(activity_regularizer)
        self.input_spec = [tf.keras.layers.InputSpec(ndim=3)]
        _compat.use_generic_rnn_loop(self, return_runtime)  # the fused kernel would bypass the binary cell

    input_quantizer = property(lambda self: self.cell.input_quantizer)
    recurrent_input_quantizer = property(lambda self: self.cell.recurrent_input_quantizer)
    kernel_quantizer = property(lambda self: self.cell.kernel_quantizer)
    recurrent_kernel_quantizer = property(lambda self: self.cell.recurrent_kernel_quantizer)
    gate_scale = property(lambda self: self.cell.gate_scale)

    def _make_cell_kwargs(self) -> dict[str, Any]:
        """Hook: arguments of `cell_class` beyond :class:`BinaryGRUCell`'s (none here)."""
        return {}

    def macs_per_step(self) -> dict[int, int]:
        """MACs per time step and sample, keyed by precision (see :meth:`BinaryGRUCell.macs_per_step`)."""
        return self.cell.macs_per_step()

    def get_config(self) -> dict[str, Any]:
        cell_config = self.cell.get_config()
        config = super().get_config()
        config.update({name: cell_config[name] for name in (*QUANTIZER_ARGUMENTS, "gate_scale")})
        return config


# tf-keras' legacy (.h5) loader looks up a wrapper's inner layer (Bidirectional(BinaryGRU)) by its bare class
# name, ignoring "keras_bnn>": register the bare names too, as larq does for its own layers.
for _class in (BinaryGRU, BinaryGRUCell):
    tf.keras.utils.get_custom_objects().setdefault(_class.__name__, _class)
