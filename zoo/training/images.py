"""The image recipe: Adam with cosine decay on `train[:90%]`, augmentation, `train[90%:]` watched every epoch.

The model is the Keras 3 one (any backend) or, with ``legacy=True``, the tf-keras one; either way the data pipeline
is `tf.data` (TensorFlow reads and augments the images, Keras 3 takes the batches on every backend).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import tensorflow as tf

from keras_bnn.zoo.models._kit import kit
from keras_bnn.zoo.registry import ZooEntry
from keras_bnn.zoo.training.recipes import TRAIN_SPLIT, VALIDATION_SPLIT, ImageRecipe

__all__ = ["train_image_classifier"]


def _augment(recipe: ImageRecipe, seed: int):
    def augment(image: tf.Tensor, label: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        image = tf.cast(image, tf.float32)
        if recipe.flip:
            image = tf.image.random_flip_left_right(image, seed=seed)
        if recipe.shift:
            height, width, channels = image.shape
            padded = tf.pad(image, [[recipe.shift, recipe.shift], [recipe.shift, recipe.shift], [0, 0]])
            image = tf.image.random_crop(padded, (height, width, channels), seed=seed)
        return image, label

    return augment


def _schedule(keras: Any, recipe: ImageRecipe, steps_per_epoch: int, epochs: int) -> Any:
    total = steps_per_epoch * epochs
    warmup = steps_per_epoch * recipe.warmup_epochs
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else recipe.learning_rate,
        decay_steps=max(total - warmup, 1),
        warmup_target=recipe.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def train_image_classifier(entry: ZooEntry, *, epochs: int, seed: int, binary: bool = True,
                           strategy: tf.distribute.Strategy | None = None, train_examples: int | None = None,
                           legacy: bool = False) -> tuple[Any, dict]:
    """Train the entry's model (or its float twin) by its recipe; returns the model and a log of the run.

    `strategy` (tf-keras only, default: the current one) holds the model and optimizer; `train_examples` keeps only
    the first examples of the training split (quick checks); `legacy` trains the tf-keras model instead of the
    Keras 3 one (on the backend ``KERAS_BACKEND`` names).
    """
    import keras_bnn.datasets

    recipe: ImageRecipe = entry.recipe
    if strategy is not None and not legacy:
        raise ValueError("strategy (tf.distribute) is for the tf-keras model only (legacy=True).")
    if legacy:
        strategy = strategy or tf.distribute.get_strategy()
    keras = kit(legacy).keras
    x_train, y_train = keras_bnn.datasets.load_images(entry.dataset, TRAIN_SPLIT)
    if train_examples is not None:
        x_train, y_train = x_train[:train_examples], y_train[:train_examples]
    x_val, y_val = keras_bnn.datasets.load_images(entry.dataset, VALIDATION_SPLIT)
    train_data = (
        tf.data.Dataset.from_tensor_slices((x_train, y_train))
        .shuffle(len(x_train), seed=seed, reshuffle_each_iteration=True)
        .map(_augment(recipe, seed), num_parallel_calls=tf.data.AUTOTUNE)
        .batch(recipe.batch_size, drop_remainder=True)
        .prefetch(tf.data.AUTOTUNE)
    )
    steps_per_epoch = len(x_train) // recipe.batch_size
    with strategy.scope() if legacy else contextlib.nullcontext():
        model = entry.builder(binary=binary, legacy=legacy)
        model.compile(optimizer=keras.optimizers.Adam(_schedule(keras, recipe, steps_per_epoch, epochs)),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(train_data, epochs=epochs, validation_data=(x_val, y_val), validation_batch_size=500,
                        verbose=2)
    log = {
        "name": entry.name,
        "binary": binary,
        "epochs": epochs,
        "seed": seed,
        "replicas": strategy.num_replicas_in_sync if legacy else 1,
        "backend": "legacy" if legacy else keras.backend.backend(),
        "train_wall_time_s": round(time.perf_counter() - start, 1),
        "validation_accuracy": [round(float(v), 4) for v in history.history["val_accuracy"]],
    }
    return model, log
