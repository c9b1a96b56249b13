"""The language-model recipe: truncated BPTT on contiguous streams of the train text, streamed evaluation.

It trains the tf-keras model (``legacy=True``; the Keras 3 recipe is not written yet).

Example (one step on the real text; ~20 s):
    >>> import keras_bnn.zoo as zoo
    >>> from keras_bnn.zoo.training.language_model import train_language_model
    >>> model, log = train_language_model(zoo.entry("binary_gru_lm.tiny_shakespeare"), steps=1, seed=0)
    ... # doctest: +ELLIPSIS
    [binary] step 1/1: train loss ...
    >>> model.output_shape, log["steps"]
    ((None, None, 65), 1)
"""

from __future__ import annotations

import math
import time

import numpy as np
import tensorflow as tf

from keras_bnn.text import CharVocabulary, tbptt_streams
from keras_bnn.zoo.registry import ZooEntry
from keras_bnn.zoo.training.recipes import LanguageModelRecipe

__all__ = ["SPLITS", "train_language_model", "vocabulary_of"]

SPLITS = ("train", "validation", "test")


def vocabulary_of(entry: ZooEntry) -> tuple[CharVocabulary, dict[str, str]]:
    """The characters of all splits of the entry's text dataset (sorted), and the splits' texts."""
    import keras_bnn.datasets

    texts = {split: keras_bnn.datasets.load_text(entry.dataset, split) for split in SPLITS}
    return CharVocabulary.from_text(*texts.values()), texts


class _Progress(tf.keras.callbacks.Callback):
    """Prints the mean training loss every `every` steps; resets the RNN states at each pass (TBPTT)."""

    def __init__(self, label: str, every: int, total: int):
        super().__init__()
        self.label, self.every, self.total = label, every, total
        self.start, self.step, self.losses = time.perf_counter(), 0, []

    def on_epoch_begin(self, epoch, logs=None):
        self.model.reset_states()

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        self.losses.append(logs["loss"])
        if self.step % self.every == 0 or self.step == self.total:
            loss = float(np.mean(self.losses[-self.every:]))
            print(f"[{self.label}] step {self.step}/{self.total}: train loss {loss:.4f} "
                  f"({loss / math.log(2):.3f} bpc), {time.perf_counter() - self.start:.0f} s", flush=True)


def train_language_model(entry: ZooEntry, *, steps: int, seed: int, binary: bool = True, log_every: int = 100,
                         texts: dict[str, str] | None = None, **builder_options) -> tuple[tf.keras.Model, dict]:
    """Train the entry's language model (or, ``binary=False``, its float twin) by its recipe.

    The train text is cut into the recipe's `batch_size` streams; each step reads the next `sequence_length`
    characters of every stream with the state carried; a pass over the streams is one Keras epoch (states reset
    between passes); `steps` is rounded up to whole passes when it exceeds one pass.

    Args:
        entry: A ``language_modeling`` zoo entry with a :class:`LanguageModelRecipe`.
        steps: Training steps.
        seed: Seed of the weights' initialisation.
        binary: False trains the float twin.
        log_every: Print the training loss every this many steps.
        texts: The splits' texts (from :func:`vocabulary_of`); loaded when None.
        **builder_options: Other arguments of the entry's builder (``units``, ``gate_scale``, ``dropout``...).

    Returns:
        (the trained tf-keras model, for any batch size and not stateful; a log of the run).
    """
    recipe: LanguageModelRecipe = entry.recipe
    if texts is None:
        vocabulary, texts = vocabulary_of(entry)
    else:
        vocabulary = CharVocabulary.from_text(*texts.values())
    tf.keras.utils.set_random_seed(seed)
    model = entry.builder(batch_size=recipe.batch_size, stateful=True, binary=binary,
                          num_classes=vocabulary.size, legacy=True, **builder_options)
    schedule = tf.keras.optimizers.schedules.CosineDecay(recipe.learning_rate, steps,
                                                         alpha=recipe.final_learning_rate_fraction)
    model.compile(tf.keras.optimizers.Adam(schedule, clipnorm=recipe.clipnorm),
                  tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    dataset, per_pass = tbptt_streams(vocabulary.encode(texts["train"]), sequence_length=recipe.sequence_length,
                                      batch_size=recipe.batch_size)
    per_epoch = min(per_pass, steps)
    epochs = -(-steps // per_epoch)
    label = "binary" if binary else "float"
    progress = _Progress(label, log_every, epochs * per_epoch)
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=per_epoch, epochs=epochs, verbose=0, callbacks=[progress])
    seconds = time.perf_counter() - start
    unbatched = entry.builder(binary=binary, num_classes=vocabulary.size, legacy=True, **builder_options)
    unbatched.set_weights(model.get_weights())
    log = {"name": entry.name, "binary": binary, "seed": seed, "steps": epochs * per_epoch, "passes": epochs,
           "train_wall_time_s": round(seconds, 1),
           "final_train_bpc": round(float(np.mean(progress.losses[-per_epoch:])) / math.log(2), 4)}
    return unbatched, log
