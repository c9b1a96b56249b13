"""The sentence-classifier recipe: a float teacher, then the binary student distilled from its logits.

It trains the tf-keras models (``legacy=True``; the Keras 3 recipe is not written yet).

Both keep the epoch with the best accuracy on train sentences held out by a seeded permutation (never the dev
set); batches hold sentences of similar length, trimmed to the longest (``keras_bnn.text.length_batches``).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import tensorflow as tf

from keras_bnn.text import SentenceTokenizer, length_batches, predict_logits
from keras_bnn.legacy.training import soft_target_loss
from keras_bnn.zoo.registry import ZooEntry
from keras_bnn.zoo.training.recipes import SentenceClassifierRecipe

__all__ = ["SentenceData", "load_sentence_data", "logit_distillation_loss", "train_sentence_classifier"]


class SentenceData:
    """The train sentences split into a fitting part and a held-out part, tokenized, and the dev set.

    Attributes:
        tokenizer: Adapted on the fitting part only.
        x_fit, y_fit, x_hold, y_hold, x_dev, y_dev: Token ids and int64 labels.
    """

    def __init__(self, entry: ZooEntry, seed: int, train_examples: int | None = None):
        import keras_bnn.datasets

        recipe: SentenceClassifierRecipe = entry.recipe
        sentences, labels = keras_bnn.datasets.load_sentences(entry.dataset, "train")
        order = np.random.default_rng(seed).permutation(len(sentences))
        hold, fit = order[:recipe.holdout], order[recipe.holdout:]
        if train_examples is not None:
            fit = fit[:train_examples]
        dev_sentences, self.y_dev = keras_bnn.datasets.load_sentences(entry.dataset, "validation")
        self.tokenizer = SentenceTokenizer.adapt([sentences[i] for i in fit], max_tokens=recipe.vocabulary,
                                                 length=entry.input_shape[0])
        self.x_fit, self.y_fit = self.tokenizer([sentences[i] for i in fit]), labels[fit]
        self.x_hold, self.y_hold = self.tokenizer([sentences[i] for i in hold]), labels[hold]
        self.x_dev = self.tokenizer(dev_sentences)


def load_sentence_data(entry: ZooEntry, seed: int, train_examples: int | None = None) -> SentenceData:
    """The entry's sentence data (see :class:`SentenceData`)."""
    return SentenceData(entry, seed, train_examples)


def logit_distillation_loss(temperature: float, label_weight: float):
    """A loss over targets ``[label, teacher logits...]``: ``label_weight * CE(label) + (1 - label_weight) *
    soft_target_loss(teacher, student, temperature)`` (``keras_bnn.legacy.training.soft_target_loss``: T²·KL)."""

    def loss(targets, logits):
        labels = tf.cast(targets[:, 0], tf.int32)
        ce = tf.keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
        if label_weight == 1.0:
            return ce
        return label_weight * ce + (1 - label_weight) * soft_target_loss(targets[:, 1:], logits, temperature)

    return loss


def accuracy(model: tf.keras.Model, ids: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(np.argmax(predict_logits(model, ids), -1) == labels))


class _BestOnHoldout(tf.keras.callbacks.Callback):
    """Held-out accuracy after each epoch; the best epoch's weights are restored at the end."""

    def __init__(self, ids: np.ndarray, labels: np.ndarray):
        super().__init__()
        self.ids, self.labels = ids, labels
        self.best, self.best_weights, self.history = -1.0, None, []

    def on_epoch_end(self, epoch, logs=None):
        score = accuracy(self.model, self.ids, self.labels)
        self.history.append(score)
        print(f"  epoch {epoch + 1}: held-out accuracy {score:.4f}", flush=True)
        if score > self.best:
            self.best, self.best_weights = score, self.model.get_weights()

    def on_train_end(self, logs=None):
        self.model.set_weights(self.best_weights)


def _fit(model, data: SentenceData, targets: np.ndarray, *, epochs: int, learning_rate: float, batch_size: int,
         loss, seed: int) -> dict:
    steps = epochs * int(np.ceil(len(data.x_fit) / batch_size))
    model.compile(tf.keras.optimizers.Adam(tf.keras.optimizers.schedules.CosineDecay(learning_rate, steps)),
                  loss=loss)
    best = _BestOnHoldout(data.x_hold, data.y_hold)
    started = time.time()
    for epoch in range(epochs):  # a new batch order each epoch
        batches, _ = length_batches(data.x_fit, targets, batch_size, seed=seed + epoch)
        model.fit(batches, initial_epoch=epoch, epochs=epoch + 1, callbacks=[best], verbose=2)
    return {"holdout_accuracy": best.best, "holdout_by_epoch": best.history,
            "train_wall_time_s": round(time.time() - started, 1)}


def _matching_weights(teacher: tf.keras.Model, student: tf.keras.Model) -> list[np.ndarray]:
    """The student's weights with every weight the teacher has under the same name and shape copied from it."""
    source = {weight.name: value for weight, value in zip(teacher.weights, teacher.get_weights())}
    return [source[weight.name] if weight.name in source and source[weight.name].shape == value.shape else value
            for weight, value in zip(student.weights, student.get_weights())]


def train_sentence_classifier(entry: ZooEntry, data: SentenceData, *, seed: int, float_epochs: int | None = None,
                              binary_epochs: int | None = None, encoder: dict[str, Any] | None = None,
                              teacher: tf.keras.Model | None = None) -> dict:
    """Train the float teacher (unless given), then the binary student initialised from it and distilled.

    Args:
        entry: A ``text_classification`` zoo entry with a :class:`SentenceClassifierRecipe`.
        data: Its sentence data (:func:`load_sentence_data`).
        seed: Seed of the initialisation and batch order.
        float_epochs: Teacher epochs (default the recipe's).
        binary_epochs: Student epochs (default the recipe's).
        encoder: The student's encoder settings (default the entry's binary model).
        teacher: A trained teacher to distil from instead of training one.

    Returns:
        ``{"teacher", "student"}`` (models for any sentence length) and ``{"teacher_log", "student_log"}``.
    """
    recipe: SentenceClassifierRecipe = entry.recipe
    vocabulary = len(data.tokenizer.vocabulary)
    fit_targets = data.y_fit[:, None].astype(np.float32)
    result: dict[str, Any] = {}
    if teacher is None:
        tf.keras.utils.set_random_seed(seed)
        teacher = entry.builder(input_shape=(None,), binary=False, legacy=True)
        _check_vocabulary(teacher, vocabulary)
        result["teacher_log"] = _fit(teacher, data, fit_targets, epochs=float_epochs or recipe.float_epochs,
                                     learning_rate=recipe.float_learning_rate, batch_size=recipe.batch_size,
                                     loss=logit_distillation_loss(1.0, 1.0), seed=seed)
    targets = np.concatenate([fit_targets, predict_logits(teacher, data.x_fit)], 1).astype(np.float32)
    tf.keras.utils.set_random_seed(seed)
    student = entry.builder(input_shape=(None,), binary=True, encoder=encoder, legacy=True)
    student.set_weights(_matching_weights(teacher, student))
    result["student_log"] = _fit(student, data, targets, epochs=binary_epochs or recipe.binary_epochs,
                                 learning_rate=recipe.binary_learning_rate, batch_size=recipe.batch_size,
                                 loss=logit_distillation_loss(recipe.temperature, recipe.label_weight), seed=seed)
    result.update(teacher=teacher, student=student)
    return result


def _check_vocabulary(model: tf.keras.Model, size: int) -> None:
    rows = model.get_layer("tokens").input_dim
    if size > rows:
        raise ValueError(f"the tokenizer has {size} words but the model's embedding only {rows} rows")
