"""The image recipe: Adam with cosine decay on `train[:90%]`, augmentation, `train[90%:]` watched every epoch."""

from __future__ import annotations

import time

import tensorflow as tf

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


def _schedule(recipe: ImageRecipe, steps_per_epoch: int, epochs: int) -> tf.keras.optimizers.schedules.LearningRateSchedule:
    total = steps_per_epoch * epochs
    warmup = steps_per_epoch * recipe.warmup_epochs
    return tf.keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else recipe.learning_rate,
        decay_steps=max(total - warmup, 1),
        warmup_target=recipe.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def train_image_classifier(entry: ZooEntry, *, epochs: int, seed: int, binary: bool = True,
                           strategy: tf.distribute.Strategy | None = None, train_examples: int | None = None
                           ) -> tuple[tf.keras.Model, dict]:
    """Train the entry's model (or its float twin) by its recipe; returns the model and a log of the run.

    `strategy` (default: the current one) holds the model and optimizer; `train_examples` keeps only the first
    examples of the training split (quick checks).
    """
    import keras_bnn.datasets

    recipe: ImageRecipe = entry.recipe
    strategy = strategy or tf.distribute.get_strategy()
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
    with strategy.scope():
        model = entry.builder(binary=binary)
        model.compile(optimizer=tf.keras.optimizers.Adam(_schedule(recipe, steps_per_epoch, epochs)),
                      loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    history = model.fit(train_data, epochs=epochs, validation_data=(x_val, y_val), validation_batch_size=500,
                        verbose=2)
    log = {
        "name": entry.name,
        "binary": binary,
        "epochs": epochs,
        "seed": seed,
        "replicas": strategy.num_replicas_in_sync,
        "train_wall_time_s": round(time.perf_counter() - start, 1),
        "validation_accuracy": [round(float(v), 4) for v in history.history["val_accuracy"]],
    }
    return model, log
