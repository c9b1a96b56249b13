r"""PCNN on Keras 3: binary convolution by learned projection with a projection loss (Gu et al., AAAI 2019).

Notation of the paper (one layer): C_i are the real kernels (latent weights), W_j (j = 1..J) learned K×K
projection matrices, Ŵ_j the tensor made by duplicating W_j along the input channels, and

* projection (Eq. 3.29/3.43): Ĉ_{i,j} = P_Ω(Ŵ_j ∘ C_i) = a·sign(Ŵ_j ∘ C_i), the nearest point of Ω = {−a, +a},
  with a the mean absolute value of the layer's real kernels (Eq. 3.57; ``scale="channel"`` uses one a per
  kernel instead, XNOR-Net's α);
* forward (Eq. 3.45-3.48): the kernels actually convolved are D_i = Ĉ_{i,1} ⊕ … ⊕ Ĉ_{i,J} (J projections
  of every kernel, concatenated along the output channels, so `filters` = J × number of real kernels);
* projection loss (Eq. 3.42): L_P = (λ/2)·Σ_{i,j} ‖Ĉ_{i,j} − Ŵ_j ∘ (C_i + η·δ_{Ĉ_{i,j}})‖², with δ_Ĉ = ∂L_S/∂Ĉ
  (the gradient of the task loss at the projected kernel) and η the learning rate; Ĉ and δ are constants;
* gradients (Eq. 3.51-3.56): ∂L_S/∂C_i = Σ_j δ_{Ĉ_{i,j}} ∘ 1_{|Ŵ_j∘C_i| ≤ 1} ∘ Ŵ_j and
  ∂L_S/∂W_j = Σ_{channels, i} δ_{Ĉ_{i,j}} ∘ 1_{|Ŵ_j∘C_i| ≤ 1} ∘ C_i (the projection's gradient is the
  indicator, without the factor a), plus the gradients of L_P.

L_P is added with ``add_loss`` at η = 0, so ``model.losses`` holds (λ/2)·Σ‖Ĉ − Ŵ∘C‖². The η·δ term needs the
gradient of the same step, so it enters through the backward pass instead: with η > 0 the gradients of C and W
receive exactly the extra terms that L_P's η·δ part contributes (its reported value stays the η = 0 one).

At inference every kernel value is ±a, so ``PCNNConv2D`` is a binary convolution with one scale per output
channel (it convolves with the ±1 kernel and scales afterwards: keras_bnn.layers' ``ExactScaleMixin``).

Backend-neutral (``keras.ops`` only): the projection's gradient is a straight-through term with a zero forward
value, the look-ahead term a ``keras.ops.custom_gradient`` of three inputs.

Reference: Gu, Li, Zhang, Han, Cao, Liu, Doermann, "Projection Convolutional Neural Networks for 1-bit CNNs via
Discrete Back Propagation", AAAI 2019, https://arxiv.org/abs/1811.12755.
"""

from __future__ import annotations

import math
from typing import Any

import keras
from keras import ops

from keras_bnn import quantizers as bnn_quantizers
from keras_bnn.layers._exact import ExactScaleMixin
from keras_bnn.layers.quantized import QuantConv2D
from keras_bnn.quantizers.base import PACKAGE, Quantizer, clipped_gradient, sign, straight_through

__all__ = ["PCNNConv2D", "PCNNProjection"]

SCALES = ("layer", "channel")

# Value 0, gradient 1_{|x| <= 1}·upstream: added to a·sign(x), it gives PCNN's projection gradient (no factor a).
_indicator_gradient = straight_through(ops.zeros_like, lambda x, upstream: clipped_gradient(x, upstream, 1.0))


def _check_nonnegative(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"PCNN {name} must be a finite number >= 0, got {value!r}.")
    return float(value)


def _tensor(value: Any) -> Any:
    """A keras.Variable read into a tensor (TensorFlow's custom_gradient must not see the variable itself)."""
    return ops.copy(value) if isinstance(value, keras.Variable) else ops.convert_to_tensor(value)


@keras.saving.register_keras_serializable(package=PACKAGE)
class PCNNProjection(Quantizer):
    """PCNN's kernel quantizer: J learned projections of each real kernel onto {−a, +a}, concatenated.

    Input: the latent kernel C of shape (K_h, K_w, C_in, F/J); output: D of shape (K_h, K_w, C_in, F) with
    output channel j·(F/J) + i holding Ĉ_{i,j} = a·sign(Ŵ_j ∘ C_i). Owns the trainable projection matrices
    ``projection`` of shape (J, K_h, K_w), initialised to ones (so training starts from sign(C)).

    Used by `PCNNConv2D`, which adds `projection_loss` to the model's losses.

    Args:
        num_projections: J ≥ 1.
        projection_loss_weight: λ ≥ 0 of the projection loss (the paper uses 1e-4).
        eta: η ≥ 0 of the projection loss' look-ahead term (the paper's learning rate); 0 omits it.
        scale: ``"layer"`` (one a per layer, the paper's Eq. 3.57) or ``"channel"`` (one a per kernel).
        **kwargs: Passed to `keras.layers.Layer`.

    Raises:
        ValueError: a bad argument, or at build a kernel that is not 4-D.

    Example:
        >>> from keras import ops
        >>> from keras_bnn.training import PCNNProjection
        >>> projection = PCNNProjection(num_projections=2)
        >>> ops.convert_to_numpy(projection(ops.reshape(ops.convert_to_tensor([0.5, -1.5]), (1, 1, 1, 2)))).ravel()
        array([ 1., -1.,  1., -1.], dtype=float32)
    """

    precision = 1

    def __init__(self, num_projections: int = 1, projection_loss_weight: float = 1e-4, eta: float = 0.0,
                 scale: str = "layer", **kwargs: Any) -> None:
        if isinstance(num_projections, bool) or not isinstance(num_projections, int) or num_projections < 1:
            raise ValueError(f"PCNN num_projections must be an int >= 1, got {num_projections!r}.")
        if scale not in SCALES:
            raise ValueError(f"PCNN scale must be one of {SCALES}, got {scale!r}.")
        self.num_projections = num_projections
        self.projection_loss_weight = _check_nonnegative("projection_loss_weight", projection_loss_weight)
        self.eta = _check_nonnegative("eta", eta)
        self.scale = scale
        super().__init__(**kwargs)

    def build(self, input_shape):
        if len(input_shape) != 4:
            raise ValueError(f"PCNNProjection needs a 4-D convolution kernel, got shape {tuple(input_shape)}.")
        self.projection = self.add_weight(name="projection",
                                          shape=(self.num_projections, int(input_shape[0]), int(input_shape[1])),
                                          initializer="ones", trainable=True)
        super().build(input_shape)

    def _magnitude(self, kernel: Any) -> Any:
        axes = None if self.scale == "layer" else (0, 1, 2)
        return ops.stop_gradient(ops.mean(ops.abs(kernel), axis=axes))

    def _projected(self, kernel: Any) -> tuple[Any, Any, Any]:
        """(Ŵ ∘ C, Ĉ, Ŵ) stacked over the J projections: shapes (J, K_h, K_w, C_in, F/J) and (J, K_h, K_w, 1, 1)."""
        projection = ops.cast(_tensor(self.projection), kernel.dtype)[:, :, :, None, None]
        argument = projection * kernel[None]
        projected = ops.stop_gradient(self._magnitude(kernel) * sign(argument)) + _indicator_gradient(argument)
        return argument, projected, projection

    def call(self, inputs):
        kernel = _tensor(inputs)
        _, projected, projection = self._projected(kernel)
        if self.eta > 0 and self.projection_loss_weight > 0:
            projected = self._lookahead_gradient(projected, kernel, projection)
        height, width, channels, kernels = kernel.shape
        stacked = ops.transpose(projected, (1, 2, 3, 0, 4))  # (K_h, K_w, C_in, J, F/J): output j·F/J + i
        return ops.reshape(stacked, (height, width, channels, self.num_projections * kernels))

    def _lookahead_gradient(self, projected: Any, kernel: Any, projection: Any) -> Any:
        """Identity on Ĉ whose backward adds the gradients of L_P's η·δ terms, δ = ∂L/∂Ĉ of this step."""
        weight, eta = self.projection_loss_weight, self.eta

        @ops.custom_gradient
        def lookahead(chat, kernel, matrices):
            def grad(*args, upstream=None):
                delta = args[0] if upstream is None else upstream
                # L_P = λ/2 Σ‖Ĉ − Ŵ∘(C + ηδ)‖²: its gradients minus those of the η = 0 loss added by add_loss.
                tiled = matrices[:, :, :, None, None]
                d_kernel = weight * eta * ops.sum(ops.square(tiled) * delta, axis=0)
                d_matrices = weight * ops.sum(
                    eta * (2.0 * tiled * kernel[None] * delta - chat * delta) + eta**2 * tiled * ops.square(delta),
                    axis=(3, 4))
                return delta, d_kernel, d_matrices

            return ops.copy(chat), grad

        return lookahead(projected, kernel, projection[:, :, :, 0, 0])

    def projection_loss(self, kernel: Any) -> Any:
        """(λ/2)·Σ_{i,j} ‖Ĉ_{i,j} − Ŵ_j ∘ C_i‖² for latent kernel `kernel` (Ĉ held constant)."""
        argument, projected, _ = self._projected(_tensor(kernel))
        return 0.5 * self.projection_loss_weight * ops.sum(ops.square(ops.stop_gradient(projected) - argument))

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "num_projections": self.num_projections,
                "projection_loss_weight": self.projection_loss_weight, "eta": self.eta, "scale": self.scale}


for _alias in ("pcnn_projection", "PCNNProjection"):
    bnn_quantizers.register_alias(_alias, PCNNProjection)


@keras.saving.register_keras_serializable(package=PACKAGE)
class PCNNConv2D(ExactScaleMixin, QuantConv2D):
    """PCNN projection convolution: a ``QuantConv2D`` whose kernel quantizer is `PCNNProjection`.

    The layer keeps F/J real kernels (F = `filters`, J = `num_projections`), convolves with their J binary
    projections each (F output channels) and adds the projection loss to ``model.losses`` on every call.
    Its kernel has precision 1 (Bop and the binarization monitor see it as binary); the activations are
    binarized by `input_quantizer` (default ``"ste_sign"``). See the module docstring.

    Args:
        filters: Output channels F, a multiple of `num_projections`.
        kernel_size: Kernel height and width (default 3).
        strides: Strides.
        padding: ``"same"`` (default) or ``"valid"``.
        pad_values: SAME padding value; default 1.0 (binary padding, bitpacked by LCE).
        num_projections: J ≥ 1 (the paper shows one projection already beats earlier BNNs).
        projection_loss_weight: λ ≥ 0 (paper: 1e-4).
        eta: η ≥ 0 of the look-ahead term of the projection loss (the paper's learning rate; 0 omits it).
        scale: ``"layer"`` (paper) or ``"channel"``.
        input_quantizer: Activation quantizer, default ``"ste_sign"``.
        use_bias: Default False (BatchNorm usually follows).
        **kwargs: Any other `QuantConv2D` argument except ``kernel_quantizer``.

    Raises:
        ValueError: `filters` not a multiple of `num_projections`, bad projection arguments or data_format.
        TypeError: a ``kernel_quantizer`` is passed (the projection is the kernel quantizer).

    Example:
        >>> import keras
        >>> from keras_bnn.training import PCNNConv2D
        >>> layer = PCNNConv2D(8, 3, num_projections=2)
        >>> tuple(layer(keras.ops.ones((1, 6, 6, 4))).shape)
        (1, 6, 6, 8)
        >>> tuple(layer.kernel.shape), len(layer.losses)  # 4 real kernels; one projection loss
        ((3, 3, 4, 4), 1)
    """

    def __init__(self, filters: int, kernel_size: int | tuple[int, int] = 3, strides: int | tuple[int, int] = (1, 1),
                 padding: str = "same", pad_values: float = 1.0, num_projections: int = 1,
                 projection_loss_weight: float = 1e-4, eta: float = 0.0, scale: str = "layer",
                 input_quantizer: Any = "ste_sign", use_bias: bool = False, **kwargs: Any) -> None:
        if "kernel_quantizer" in kwargs:
            raise TypeError("PCNNConv2D takes no kernel_quantizer: its kernel quantizer is the PCNN projection.")
        data_format = kwargs.get("data_format")
        if data_format not in (None, "channels_last"):
            raise ValueError(f"PCNNConv2D supports data_format='channels_last' only, got {data_format!r}.")
        kwargs["data_format"] = "channels_last"
        projection = PCNNProjection(num_projections, projection_loss_weight, eta, scale)
        if isinstance(filters, bool) or not isinstance(filters, int) or filters % num_projections:
            raise ValueError(
                f"PCNNConv2D filters ({filters!r}) must be a multiple of num_projections ({num_projections}).")
        super().__init__(filters, kernel_size, strides=strides, padding=padding, pad_values=pad_values,
                         input_quantizer=input_quantizer, kernel_quantizer=projection, use_bias=use_bias, **kwargs)

    @property
    def num_projections(self) -> int:
        return self.kernel_quantizer.num_projections

    def build(self, input_shape):
        # Keras' Conv2D.build makes a kernel with `filters` outputs; PCNN keeps filters / J real kernels.
        filters, use_bias = self.filters, self.use_bias
        self.filters, self.use_bias = filters // self.num_projections, False
        try:
            super().build(input_shape)
        finally:
            self.filters, self.use_bias = filters, use_bias
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.filters,), initializer=self.bias_initializer,
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint,
                                        trainable=True, dtype=self.dtype)
        if not self.kernel_quantizer.built:  # its projection matrices exist before any traced step
            self.kernel_quantizer.build(tuple(self.kernel.shape))

    def call(self, inputs):
        outputs = super().call(inputs)
        if self.kernel_quantizer.projection_loss_weight > 0:
            self.add_loss(self.kernel_quantizer.projection_loss(self.kernel))
        return outputs

    def get_config(self) -> dict[str, Any]:
        config = super().get_config()
        config.pop("kernel_quantizer", None)
        projection = self.kernel_quantizer
        return {**config, "num_projections": projection.num_projections,
                "projection_loss_weight": projection.projection_loss_weight, "eta": projection.eta,
                "scale": projection.scale}
