"""Knowledge distillation from a real-valued teacher into a binary student, trained with compile/fit.

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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import tensorflow as tf

__all__ = ["Distiller", "attention_map", "attention_transfer_loss", "soft_target_loss"]

_EPSILON = 1e-12


def soft_target_loss(teacher_logits: tf.Tensor, student_logits: tf.Tensor, temperature: float) -> tf.Tensor:
    """Per-example T²·KL(softmax(t/T) ‖ softmax(s/T)) over the last axis (Hinton et al., 2015).

    Example:
        >>> import keras_bnn
        >>> import tensorflow as tf
        >>> from keras_bnn.legacy.training import soft_target_loss
        >>> soft_target_loss(tf.constant([[1.0, 2.0]]), tf.constant([[1.0, 2.0]]), 2.0).numpy()
        array([0.], dtype=float32)
    """
    teacher_log_probs = tf.nn.log_softmax(teacher_logits / temperature, axis=-1)
    student_log_probs = tf.nn.log_softmax(student_logits / temperature, axis=-1)
    kl = tf.reduce_sum(tf.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs), axis=-1)
    return temperature**2 * kl


def attention_map(features: tf.Tensor) -> tf.Tensor:
    """Spatial attention map of (batch, height, width, channels) features: Q = Σ_c A_c², flattened, L2-normalised.

    Returns:
        A (batch, height·width) tensor whose rows have unit L2 norm (rows of zeros stay zero).

    Example:
        >>> import keras_bnn
        >>> import tensorflow as tf
        >>> from keras_bnn.legacy.training import attention_map
        >>> attention_map(tf.constant([[[[3.0], [0.0]], [[0.0], [4.0]]]])).numpy().round(4)  # [9, 0, 0, 16] / 18.36
        array([[0.4903, 0.    , 0.    , 0.8716]], dtype=float32)
    """
    features = tf.convert_to_tensor(features)
    if features.shape.rank != 4:
        raise ValueError(f"attention_map needs (batch, height, width, channels) features, got shape {features.shape}.")
    energy = tf.reduce_sum(tf.square(features), axis=-1)
    flat = tf.reshape(energy, (tf.shape(energy)[0], -1))
    return flat / tf.maximum(tf.norm(flat, axis=-1, keepdims=True), _EPSILON)


def attention_transfer_loss(teacher_features: tf.Tensor, student_features: tf.Tensor) -> tf.Tensor:
    """Per-example ‖Q_S/‖Q_S‖₂ − Q_T/‖Q_T‖₂‖₂ between two feature maps of equal spatial size (Real-to-Binary Net)."""
    difference = attention_map(student_features) - attention_map(teacher_features)
    # sqrt(x + tiny) keeps the gradient finite where the two maps coincide.
    return tf.sqrt(tf.reduce_sum(tf.square(difference), axis=-1) + _EPSILON**2)


def _per_example_loss(identifier: Any) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    loss = tf.keras.losses.get(identifier)
    if isinstance(loss, tf.keras.losses.Loss):
        return loss.call  # the unreduced per-example values
    if callable(loss):
        return loss
    raise TypeError(f"Distiller.compile: cannot use {identifier!r} as the student's loss.")


def _check_number(name: str, value: Any, low: float, high: float, low_open: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"Distiller {name} must be a finite number, got {value!r}.")
    if value < low or value > high or (low_open and value == low):
        interval = f"({low}, {high}]" if low_open else f"[{low}, {high}]"
        raise ValueError(f"Distiller {name} must be in {interval}, got {value!r}.")
    return float(value)


@tf.keras.utils.register_keras_serializable(package="keras_bnn")
class Distiller(tf.keras.Model):
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
        **kwargs: Passed to `tf.keras.Model` (e.g. ``name``).

    Raises:
        TypeError: teacher/student is not a Keras model, or attention pairs need a layer graph that a
            subclassed model lacks.
        ValueError: temperature ≤ 0, alpha outside [0, 1], negative attention_weight, teacher and student
            outputs of different shapes, an unknown layer name, or attention features that are not 4-D or
            differ in spatial size.

    Example:
        >>> import keras_bnn, larq
        >>> import tensorflow as tf
        >>> from keras_bnn.legacy.training import Distiller
        >>> teacher = tf.keras.Sequential([tf.keras.Input((4,)), tf.keras.layers.Dense(3)])
        >>> student = tf.keras.Sequential([tf.keras.Input((4,)), larq.layers.QuantDense(3,
        ...     kernel_quantizer="ste_sign", kernel_constraint="weight_clip")])
        >>> distiller = Distiller(teacher, student, temperature=4.0, alpha=0.5)
        >>> distiller.compile("adam", loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        ...                   metrics=["accuracy"])
        >>> history = distiller.fit(tf.ones((8, 4)), tf.zeros((8,), tf.int64), verbose=0)
        >>> sorted(history.history)
        ['accuracy', 'distillation_loss', 'loss', 'student_loss']
        >>> distiller.student.output_shape
        (None, 3)
    """

    def __init__(
        self,
        teacher: tf.keras.Model,
        student: tf.keras.Model,
        temperature: float = 4.0,
        alpha: float = 0.1,
        attention_pairs: Sequence[tuple[str, str]] = (),
        attention_weight: float = 1.0,
        from_logits: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for role, model in (("teacher", teacher), ("student", student)):
            if not isinstance(model, tf.keras.Model):
                raise TypeError(f"Distiller {role} must be a tf.keras.Model, got {type(model).__name__}.")
        self.temperature = _check_number("temperature", temperature, 0.0, math.inf, low_open=True)
        self.alpha = _check_number("alpha", alpha, 0.0, 1.0, low_open=False)
        self.attention_weight = _check_number("attention_weight", attention_weight, 0.0, math.inf, low_open=False)
        if not isinstance(from_logits, bool):
            raise TypeError(f"Distiller from_logits must be a bool, got {from_logits!r}.")
        self.from_logits = from_logits
        self.attention_pairs = [tuple(pair) for pair in attention_pairs]
        for pair in self.attention_pairs:
            if len(pair) != 2 or not all(isinstance(name, str) for name in pair):
                raise ValueError(f"Each attention pair must be (teacher layer name, student layer name), got {pair!r}.")
        self._check_output_shapes(teacher, student)
        teacher.trainable = False
        self.teacher = teacher
        self.student = student
        self._teacher_features = self._feature_model(teacher, [t for t, _ in self.attention_pairs], "teacher")
        self._student_features = self._feature_model(student, [s for _, s in self.attention_pairs], "student")
        if self.attention_pairs:
            for (t_name, s_name), t_out, s_out in zip(
                self.attention_pairs, self._teacher_features.outputs[1:], self._student_features.outputs[1:]
            ):
                if t_out.shape.rank != 4 or s_out.shape.rank != 4 or t_out.shape[1:3] != s_out.shape[1:3]:
                    raise ValueError(
                        f"Attention pair ({t_name!r}, {s_name!r}) needs 4-D feature maps of equal height and "
                        f"width, got teacher {t_out.shape} and student {s_out.shape}."
                    )
        self.loss_tracker = tf.keras.metrics.Mean(name="loss")
        self.student_loss_tracker = tf.keras.metrics.Mean(name="student_loss")
        self.distillation_loss_tracker = tf.keras.metrics.Mean(name="distillation_loss")
        self.attention_loss_tracker = tf.keras.metrics.Mean(name="attention_loss") if self.attention_pairs else None
        self._student_loss_fn: Callable[[tf.Tensor, tf.Tensor], tf.Tensor] | None = None
        self._student_loss_identifier: Any = None

    @staticmethod
    def _check_output_shapes(teacher: tf.keras.Model, student: tf.keras.Model) -> None:
        shapes = []
        for model in (teacher, student):
            if getattr(model, "outputs", None) and len(model.outputs) != 1:
                raise ValueError(f"Distiller needs single-output models; {model.name!r} has {len(model.outputs)}.")
            shapes.append(tuple(model.outputs[0].shape[1:]) if getattr(model, "outputs", None) else None)
        if None not in shapes and shapes[0] != shapes[1]:
            raise ValueError(
                f"Teacher output shape {shapes[0]} differs from student output shape {shapes[1]} "
                f"(teacher {teacher.name!r}, student {student.name!r}); distillation needs equal shapes."
            )

    @staticmethod
    def _feature_model(model: tf.keras.Model, layer_names: list[str], role: str) -> tf.keras.Model | None:
        if not layer_names:
            return None
        if not getattr(model, "_is_graph_network", False):
            raise TypeError(f"Attention pairs need a Functional or Sequential {role}, got {type(model).__name__}.")
        outputs = [model.outputs[0]]
        for name in layer_names:
            try:
                outputs.append(model.get_layer(name).output)
            except ValueError as error:
                raise ValueError(f"The {role} {model.name!r} has no layer {name!r} for attention transfer.") from error
        return tf.keras.Model(model.inputs, outputs, name=f"{model.name}_features")

    def _run(self, model, feature_model, inputs, training: bool) -> list[tf.Tensor]:
        if feature_model is None:
            return [model(inputs, training=training)]
        return list(feature_model(inputs, training=training))

    def call(self, inputs: Any, training: bool | None = None) -> tf.Tensor:
        return self.student(inputs, training=training)

    def compile(self, optimizer: Any = "adam", loss: Any = None, metrics: Any = None, **kwargs: Any) -> None:
        """Configure training: `loss` is the student's hard-label loss (required), `metrics` its metrics."""
        if loss is None:
            raise ValueError("Distiller.compile needs loss=, the student's hard-label loss (e.g. a cross-entropy).")
        self._student_loss_identifier = loss
        self._student_loss_fn = _per_example_loss(loss)
        super().compile(optimizer=optimizer, metrics=metrics, **kwargs)

    def _logits(self, outputs: tf.Tensor) -> tf.Tensor:
        if self.from_logits:
            return outputs
        return tf.math.log(tf.clip_by_value(outputs, 1e-7, 1.0))

    def compute_losses(
        self,
        y: tf.Tensor,
        teacher_outputs: Sequence[tf.Tensor],
        student_outputs: Sequence[tf.Tensor],
        sample_weight: tf.Tensor | None = None,
    ) -> dict[str, tf.Tensor]:
        """The loss terms for one (per-replica) batch, each averaged over the global batch.

        Args:
            y: Hard labels.
            teacher_outputs: [teacher output, *teacher features of `attention_pairs`].
            student_outputs: [student output, *student features of `attention_pairs`].
            sample_weight: Optional per-example weights.

        Returns:
            ``{"loss", "student_loss", "distillation_loss", "attention_loss"}``; ``loss`` also includes the
            student's own losses (``student.losses``, e.g. a PCNN projection loss).
        """
        if self._student_loss_fn is None:
            raise RuntimeError("Call Distiller.compile(optimizer, loss=...) before training or evaluating.")
        teacher_out, student_out = teacher_outputs[0], student_outputs[0]
        if teacher_out.shape[1:] != student_out.shape[1:]:
            raise ValueError(
                f"Teacher output shape {teacher_out.shape} differs from student output shape {student_out.shape}."
            )

        def average(per_example: tf.Tensor) -> tf.Tensor:
            return tf.nn.compute_average_loss(per_example, sample_weight=sample_weight)

        student_loss = average(self._student_loss_fn(y, student_out))
        soft = average(
            soft_target_loss(
                tf.stop_gradient(self._logits(teacher_out)), self._logits(student_out), self.temperature
            )
        )
        attention = tf.constant(0.0)
        for teacher_features, student_features in zip(teacher_outputs[1:], student_outputs[1:]):
            attention += average(attention_transfer_loss(tf.stop_gradient(teacher_features), student_features))
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        regularization = tf.add_n([tf.constant(0.0)] + [tf.cast(x, tf.float32) for x in self.student.losses])
        total = (
            self.alpha * student_loss
            + (1.0 - self.alpha) * soft
            + self.attention_weight * attention
            + regularization / replicas
        )
        return {"loss": total, "student_loss": student_loss, "distillation_loss": soft, "attention_loss": attention}

    def _update_metrics(self, losses, y, student_out, sample_weight) -> dict[str, tf.Tensor]:
        replicas = tf.distribute.get_strategy().num_replicas_in_sync  # undo the per-replica share for logging
        self.loss_tracker.update_state(losses["loss"] * replicas)
        self.student_loss_tracker.update_state(losses["student_loss"] * replicas)
        self.distillation_loss_tracker.update_state(losses["distillation_loss"] * replicas)
        if self.attention_loss_tracker is not None:
            self.attention_loss_tracker.update_state(losses["attention_loss"] * replicas)
        self.compiled_metrics.update_state(y, student_out, sample_weight)
        return {metric.name: metric.result() for metric in self.metrics}

    def train_step(self, data: Any) -> dict[str, tf.Tensor]:
        x, y, sample_weight = tf.keras.utils.unpack_x_y_sample_weight(data)
        teacher_outputs = self._run(self.teacher, self._teacher_features, x, training=False)
        with tf.GradientTape() as tape:
            student_outputs = self._run(self.student, self._student_features, x, training=True)
            losses = self.compute_losses(y, teacher_outputs, student_outputs, sample_weight)
        self.optimizer.minimize(losses["loss"], self.student.trainable_variables, tape=tape)
        return self._update_metrics(losses, y, student_outputs[0], sample_weight)

    def test_step(self, data: Any) -> dict[str, tf.Tensor]:
        x, y, sample_weight = tf.keras.utils.unpack_x_y_sample_weight(data)
        teacher_outputs = self._run(self.teacher, self._teacher_features, x, training=False)
        student_outputs = self._run(self.student, self._student_features, x, training=False)
        losses = self.compute_losses(y, teacher_outputs, student_outputs, sample_weight)
        return self._update_metrics(losses, y, student_outputs[0], sample_weight)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "teacher": tf.keras.saving.serialize_keras_object(self.teacher),
            "student": tf.keras.saving.serialize_keras_object(self.student),
            "temperature": self.temperature,
            "alpha": self.alpha,
            "attention_pairs": [list(pair) for pair in self.attention_pairs],
            "attention_weight": self.attention_weight,
            "from_logits": self.from_logits,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any], custom_objects: dict | None = None) -> Distiller:
        config = dict(config)
        for role in ("teacher", "student"):
            config[role] = tf.keras.saving.deserialize_keras_object(config[role], custom_objects=custom_objects)
        return cls(**config)
