"""Knowledge distillation from a real-valued teacher into a binary student on Keras 3, trained with compile/fit.

`Distiller` minimises, per batch (means over the batch, weighted by ``sample_weight`` when given):

    loss = α·L_student(y, s) + (1 − α)·T²·KL(softmax(t/T) ‖ softmax(s/T)) + β·Σ_pairs L_att + student's add_loss

* L_student is the loss given to ``compile`` (hard labels); t and s are the teacher's and student's logits;
* the soft term is Hinton et al.'s (2015) distillation loss with temperature T (the T² keeps its gradient scale
  independent of T);
* L_att is the attention-transfer loss of Real-to-Binary Net (Martinez et al., ICLR 2020, after Zagoruyko &
  Komodakis, ICLR 2017) between pairs of intermediate feature maps (teacher layer, student layer):
  Q = Σ_c A_c² (the spatial attention map of a (H, W, C) activation A), and
  L_att = ‖ Q_S/‖Q_S‖₂ − Q_T/‖Q_T‖₂ ‖₂ per example.

The teacher is frozen (``teacher.trainable = False``, called in inference mode); only the student's variables
are trained. ``distiller.student`` is the original student model, which saves and converts on its own.

Keras 3 idiom: the loss is `Distiller.compute_loss` (called by every backend's trainer after the forward pass,
in ``fit`` and ``evaluate``), so the same code trains on TensorFlow, JAX and PyTorch; ``keras.ops`` only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import keras
from keras import ops

from keras_bnn.quantizers.base import PACKAGE

__all__ = ["Distiller", "attention_map", "attention_transfer_loss", "soft_target_loss"]

_EPSILON = 1e-12


def soft_target_loss(teacher_logits: Any, student_logits: Any, temperature: float) -> Any:
    """Per-example T²·KL(softmax(t/T) ‖ softmax(s/T)) over the last axis (Hinton et al., 2015).

    Example:
        >>> from keras import ops
        >>> from keras_bnn.training import soft_target_loss
        >>> logits = ops.convert_to_tensor([[1.0, 2.0]])
        >>> ops.convert_to_numpy(soft_target_loss(logits, logits, 2.0)).tolist()
        [0.0]
    """
    teacher_log_probs = ops.log_softmax(ops.divide(teacher_logits, temperature), axis=-1)
    student_log_probs = ops.log_softmax(ops.divide(student_logits, temperature), axis=-1)
    kl = ops.sum(ops.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs), axis=-1)
    return temperature**2 * kl


def attention_map(features: Any) -> Any:
    """Spatial attention map of (batch, height, width, channels) features: Q = Σ_c A_c², flattened, L2-normalised.

    Returns:
        A (batch, height·width) tensor whose rows have unit L2 norm (rows of zeros stay zero).

    Raises:
        ValueError: `features` is not 4-D.

    Example:
        >>> from keras import ops
        >>> from keras_bnn.training import attention_map
        >>> q = attention_map(ops.convert_to_tensor([[[[3.0], [0.0]], [[0.0], [4.0]]]]))  # [9, 0, 0, 16] / 18.36
        >>> [round(v, 4) for v in ops.convert_to_numpy(q)[0].tolist()]
        [0.4903, 0.0, 0.0, 0.8716]
    """
    features = ops.convert_to_tensor(features)
    if len(features.shape) != 4:
        raise ValueError(f"attention_map needs (batch, height, width, channels) features, got shape {features.shape}.")
    energy = ops.sum(ops.square(features), axis=-1)
    flat = ops.reshape(energy, (ops.shape(energy)[0], -1))
    norm = ops.sqrt(ops.sum(ops.square(flat), axis=-1, keepdims=True))
    return flat / ops.maximum(norm, _EPSILON)


def attention_transfer_loss(teacher_features: Any, student_features: Any) -> Any:
    """Per-example ‖Q_S/‖Q_S‖₂ − Q_T/‖Q_T‖₂‖₂ between two feature maps of equal spatial size (Real-to-Binary Net).

    Example:
        >>> from keras import ops
        >>> from keras_bnn.training import attention_transfer_loss
        >>> a = ops.ones((2, 3, 3, 4))
        >>> [round(v, 6) for v in ops.convert_to_numpy(attention_transfer_loss(a, 2.0 * a)).tolist()]
        [0.0, 0.0]
    """
    difference = attention_map(student_features) - attention_map(teacher_features)
    # sqrt(x + tiny) keeps the gradient finite where the two maps coincide.
    return ops.sqrt(ops.sum(ops.square(difference), axis=-1) + _EPSILON**2)


def _per_example_loss(identifier: Any) -> Callable[[Any, Any], Any]:
    try:
        loss = keras.losses.get(identifier)
    except (ValueError, TypeError) as error:
        raise TypeError(f"Distiller.compile: cannot use {identifier!r} as the student's loss ({error}).") from None
    if isinstance(loss, keras.losses.Loss):
        return loss.call  # the unreduced per-example values
    if callable(loss):
        return loss
    raise TypeError(f"Distiller.compile: cannot use {identifier!r} as the student's loss.")


class _Passthrough(keras.losses.Loss):
    """A Keras loss whose per-example values are its `y_pred`: Keras reduces it and scales it for
    ``tf.distribute`` as every Keras loss (÷ replicas in sync under a TensorFlow strategy, ×1 elsewhere)."""

    def call(self, y_true, y_pred):
        return y_pred


def _distribution_scale() -> Any:
    """1 / replicas in sync under a TensorFlow distribution strategy, else 1, through Keras' own loss reduction
    (what Keras applies to every compiled loss; the trainer undoes it for the logged ``loss``)."""
    return _Passthrough(reduction="sum_over_batch_size", name="distribution_scale")(ops.zeros((1,)), ops.ones((1,)))


def _check_number(name: str, value: Any, low: float, high: float, low_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"Distiller {name} must be a finite number, got {value!r}.")
    if value < low or value > high or (low_open and value == low):
        interval = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
        raise ValueError(f"Distiller {name} must be in {interval}, got {value!r}.")
    return float(value)


def _is_graph_model(model: Any) -> bool:
    return isinstance(model, keras.Sequential) or any(cls.__name__ == "Functional" for cls in type(model).__mro__)


@keras.saving.register_keras_serializable(package=PACKAGE)
class Distiller(keras.Model):
    """Knowledge distillation (soft targets + optional attention transfer) as a Keras model for compile/fit.

    ``compile(optimizer, loss=..., metrics=...)`` takes the student's hard-label loss as ``loss``; ``fit``
    trains the student on the combined loss (see the module docstring); ``evaluate`` reports the same loss
    terms with the student in inference mode; ``predict`` / ``__call__`` run the student alone. Logged values:
    ``loss`` (total), ``student_loss``, ``distillation_loss``, ``attention_loss`` (with attention pairs) and
    the compiled metrics of the student's outputs.

    Args:
        teacher: Trained model; frozen here (``teacher.trainable = False``). Single output.
        student: Model to train; single output of the teacher's output shape.
        temperature: T > 0.
        alpha: Weight in [0, 1] of the hard-label loss; the soft term gets 1 − alpha.
        attention_pairs: (teacher layer name, student layer name) pairs of 4-D feature maps with the same
            height and width, matched with the attention-transfer loss. Needs Functional/Sequential models.
        attention_weight: β ≥ 0, weight of the summed attention losses.
        from_logits: Whether both models output logits (default) or probabilities (then log-probabilities are
            used as logits, which gives the same tempered softmax).
        **kwargs: Passed to `keras.Model` (e.g. ``name``).

    Raises:
        TypeError: teacher/student is not a Keras model, or attention pairs need a layer graph that a
            subclassed model lacks.
        ValueError: temperature ≤ 0, alpha outside [0, 1], negative attention_weight, teacher and student
            outputs of different shapes, an unknown layer name, or attention features that are not 4-D or
            differ in spatial size.

    Example:
        >>> import keras, keras_bnn
        >>> from keras_bnn.training import Distiller
        >>> teacher = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
        >>> student = keras.Sequential([keras.Input((4,)), keras_bnn.layers.QuantDense(3,
        ...     kernel_quantizer="ste_sign", kernel_constraint="weight_clip")])
        >>> distiller = Distiller(teacher, student, temperature=4.0, alpha=0.5)
        >>> distiller.compile("adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        ...                   metrics=["accuracy"])
        >>> history = distiller.fit(keras.ops.ones((8, 4)), keras.ops.zeros((8,), "int32"), verbose=0)
        >>> sorted(history.history)
        ['accuracy', 'distillation_loss', 'loss', 'student_loss']
        >>> distiller.student.output_shape
        (None, 3)
    """

    def __init__(self, teacher: keras.Model, student: keras.Model, temperature: float = 4.0, alpha: float = 0.1,
                 attention_pairs: Sequence[tuple[str, str]] = (), attention_weight: float = 1.0,
                 from_logits: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for role, model in (("teacher", teacher), ("student", student)):
            if not isinstance(model, keras.Model):
                raise TypeError(f"Distiller {role} must be a keras.Model, got {type(model).__name__}.")
        self.temperature = _check_number("temperature", temperature, 0.0, math.inf, low_open=True)
        self.alpha = _check_number("alpha", alpha, 0.0, 1.0, low_open=False)
        self.attention_weight = _check_number("attention_weight", attention_weight, 0.0, math.inf, low_open=False)
        if not isinstance(from_logits, bool):
            raise TypeError(f"Distiller from_logits must be a bool, got {from_logits!r}.")
        self.from_logits = from_logits
        pairs = [tuple(pair) for pair in attention_pairs]
        for pair in pairs:
            if len(pair) != 2 or not all(isinstance(name, str) for name in pair):
                raise ValueError(f"Each attention pair must be (teacher layer name, student layer name), got {pair!r}.")
        self._check_output_shapes(teacher, student)
        teacher.trainable = False
        self.teacher = teacher
        self.student = student
        self._teacher_features = self._feature_model(teacher, [t for t, _ in pairs], "teacher")
        self._student_features = self._feature_model(student, [s for _, s in pairs], "student")
        if pairs:
            for (t_name, s_name), t_out, s_out in zip(pairs, self._teacher_features.outputs[1:],
                                                      self._student_features.outputs[1:]):
                if len(t_out.shape) != 4 or len(s_out.shape) != 4 or tuple(t_out.shape[1:3]) != tuple(
                        s_out.shape[1:3]):
                    raise ValueError(f"Attention pair ({t_name!r}, {s_name!r}) needs 4-D feature maps of equal "
                                     f"height and width, got teacher {t_out.shape} and student {s_out.shape}.")
        self._attention_pairs = pairs
        self.student_loss_tracker = keras.metrics.Mean(name="student_loss")
        self.distillation_loss_tracker = keras.metrics.Mean(name="distillation_loss")
        self.attention_loss_tracker = keras.metrics.Mean(name="attention_loss") if pairs else None
        self._student_loss_fn: Callable[[Any, Any], Any] | None = None
        # The student's attention features of the latest forward pass (`call`), read by `compute_loss` in the
        # same training step (the same trace on JAX and TensorFlow).
        object.__setattr__(self, "_latest_student_features", [])

    @property
    def attention_pairs(self) -> list[tuple[str, str]]:
        """The (teacher layer, student layer) name pairs of the attention-transfer loss."""
        return list(self._attention_pairs)

    @staticmethod
    def _check_output_shapes(teacher: keras.Model, student: keras.Model) -> None:
        shapes = []
        for model in (teacher, student):
            outputs = getattr(model, "outputs", None) if _is_graph_model(model) else None
            if outputs and len(outputs) != 1:
                raise ValueError(f"Distiller needs single-output models; {model.name!r} has {len(outputs)}.")
            shapes.append(tuple(outputs[0].shape[1:]) if outputs else None)
        if None not in shapes and shapes[0] != shapes[1]:
            raise ValueError(
                f"Teacher output shape {shapes[0]} differs from student output shape {shapes[1]} "
                f"(teacher {teacher.name!r}, student {student.name!r}); distillation needs equal shapes.")

    @staticmethod
    def _feature_model(model: keras.Model, layer_names: list[str], role: str) -> keras.Model | None:
        if not layer_names:
            return None
        if not _is_graph_model(model):
            raise TypeError(f"Attention pairs need a Functional or Sequential {role}, got {type(model).__name__}.")
        outputs = [model.outputs[0]]
        for name in layer_names:
            try:
                outputs.append(model.get_layer(name).output)
            except ValueError as error:
                raise ValueError(f"The {role} {model.name!r} has no layer {name!r} for attention transfer.") from error
        return keras.Model(model.inputs, outputs, name=f"{model.name}_features")

    def call(self, inputs: Any, training: bool | None = None) -> Any:
        if self._student_features is None:
            return self.student(inputs, training=training)
        outputs = self._student_features(inputs, training=training)
        self._latest_student_features[:] = list(outputs[1:])
        return outputs[0]

    def compile(self, optimizer: Any = "adam", loss: Any = None, metrics: Any = None, **kwargs: Any) -> None:
        """Configure training: `loss` is the student's hard-label loss (required), `metrics` its metrics."""
        if loss is None:
            raise ValueError("Distiller.compile needs loss=, the student's hard-label loss (e.g. a cross-entropy).")
        self._student_loss_fn = _per_example_loss(loss)
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)

    def _logits(self, outputs: Any) -> Any:
        if self.from_logits:
            return outputs
        return ops.log(ops.clip(outputs, 1e-7, 1.0))

    def compute_losses(self, y: Any, teacher_outputs: Sequence[Any], student_outputs: Sequence[Any],
                       sample_weight: Any = None) -> dict[str, Any]:
        """The loss terms for one batch, each averaged over the batch (weighted by `sample_weight`).

        Args:
            y: Hard labels.
            teacher_outputs: [teacher output, *teacher features of `attention_pairs`].
            student_outputs: [student output, *student features of `attention_pairs`].
            sample_weight: Optional per-example weights.

        Returns:
            ``{"loss", "student_loss", "distillation_loss", "attention_loss"}``, without the student's own
            losses (`compute_loss` adds those to ``loss``).
        """
        if self._student_loss_fn is None:
            raise RuntimeError("Call Distiller.compile(optimizer, loss=...) before training or evaluating.")
        teacher_out, student_out = teacher_outputs[0], student_outputs[0]
        if tuple(teacher_out.shape[1:]) != tuple(student_out.shape[1:]):
            raise ValueError(
                f"Teacher output shape {teacher_out.shape} differs from student output shape {student_out.shape}.")

        def average(per_example: Any) -> Any:
            per_example = ops.cast(per_example, "float32")
            if sample_weight is None:
                return ops.mean(per_example)
            weights = ops.reshape(ops.cast(sample_weight, "float32"), ops.shape(per_example))
            return ops.sum(per_example * weights) / ops.cast(ops.shape(per_example)[0], "float32")

        student_loss = average(self._student_loss_fn(y, student_out))
        soft = average(soft_target_loss(ops.stop_gradient(self._logits(teacher_out)), self._logits(student_out),
                                        self.temperature))
        attention = ops.convert_to_tensor(0.0)
        for teacher_features, student_features in zip(teacher_outputs[1:], student_outputs[1:]):
            attention = attention + average(attention_transfer_loss(ops.stop_gradient(teacher_features),
                                                                    student_features))
        total = self.alpha * student_loss + (1.0 - self.alpha) * soft + self.attention_weight * attention
        return {"loss": total, "student_loss": student_loss, "distillation_loss": soft, "attention_loss": attention}

    def compute_loss(self, x: Any = None, y: Any = None, y_pred: Any = None, sample_weight: Any = None,
                     training: bool = True) -> Any:
        """Keras 3's loss hook: the distillation loss of `y_pred` (the student's output for `x`), plus the
        student's own losses (``add_loss``, weight regularizers); updates the loss-term metrics. Under a
        TensorFlow distribution strategy the returned value is divided by the replicas in sync, as Keras does
        with compiled losses (its gradients are summed over the replicas)."""
        extra = [ops.cast(loss, "float32") for loss in self.losses]  # before the teacher runs
        if self._teacher_features is None:
            teacher_outputs = [self.teacher(x, training=False)]
        else:
            teacher_outputs = list(self._teacher_features(x, training=False))
        student_outputs = [y_pred, *self._latest_student_features][:1 + len(self._attention_pairs)]
        losses = self.compute_losses(y, teacher_outputs, student_outputs, sample_weight)
        self.student_loss_tracker.update_state(losses["student_loss"])
        self.distillation_loss_tracker.update_state(losses["distillation_loss"])
        if self.attention_loss_tracker is not None:
            self.attention_loss_tracker.update_state(losses["attention_loss"])
        total = losses["loss"]
        for loss in extra:
            total = total + loss
        return total * _distribution_scale()

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "teacher": keras.saving.serialize_keras_object(self.teacher),
            "student": keras.saving.serialize_keras_object(self.student),
            "temperature": self.temperature,
            "alpha": self.alpha,
            "attention_pairs": [list(pair) for pair in self._attention_pairs],
            "attention_weight": self.attention_weight,
            "from_logits": self.from_logits,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None) -> Distiller:
        config = dict(config)
        for role in ("teacher", "student"):
            config[role] = keras.saving.deserialize_keras_object(config[role], custom_objects=custom_objects)
        return cls(**config)
